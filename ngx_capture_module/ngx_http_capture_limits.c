/*
 * Copyright (C) edgehog
 */

/*
 * Routing controls of spec/capture.md §7 applied to the built messages:
 * the billing quota (§7.1), the token dropper (§7.4), the event
 * restrictions of ngx_http_capture_restrict.c (§7.5) and overflow
 * routing (§7.2) with a token bucket per event key shared by all workers
 * through shared memory, plus the forced-key list.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_capture_module.h"
#include "ngx_http_capture_metrics.h"
#include "capture_event.h"


static ngx_int_t ngx_http_capture_limits_match(ngx_array_t *list,
    capture_msg_t *m);
static ngx_int_t ngx_http_capture_limits_take(ngx_http_capture_shm_t *shm,
    ngx_http_capture_loc_conf_t *lcf, const char *key);


ngx_int_t
ngx_http_capture_limits_apply(ngx_http_request_t *r, capture_msg_t *msgs,
    ngx_uint_t n)
{
    ngx_int_t                      rc;
    ngx_uint_t                     i, forced;
    ngx_http_capture_shm_t        *shm;
    ngx_http_capture_loc_conf_t   *lcf;
    ngx_http_capture_main_conf_t  *mcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_capture_module);
    mcf = ngx_http_get_module_main_conf(r, ngx_http_capture_module);
    shm = ngx_http_capture_shm(r);

    if (shm && mcf->quota) {
        shm->quota_tokens = mcf->quota->loaded;
    }

    for (i = 0; i < n; i++) {

        /* §7.1: billing limits drop silently, the answer stays 200 */
        if (mcf->quota
            && ngx_http_capture_quota_limited(mcf->quota, &msgs[i]))
        {
            msgs[i].dropped = 1;

            if (shm) {
                (void) ngx_atomic_fetch_add(
                        &shm->dropped[NGX_HTTP_CAPTURE_DROP_QUOTA], 1);
            }

            continue;
        }

        if (lcf->dropper && ngx_http_capture_limits_match(lcf->dropper,
                                                          &msgs[i]))
        {
            msgs[i].dropped = 1;

            if (shm) {
                (void) ngx_atomic_fetch_add(
                        &shm->dropped[NGX_HTTP_CAPTURE_DROP_DROPPER], 1);
            }

            continue;
        }

        /* §7.5, after the dropper and before overflow stamping */
        if (lcf->restrictions) {
            rc = ngx_http_capture_restrict(r, lcf, &msgs[i]);

            if (rc == NGX_DECLINED) {
                msgs[i].dropped = 1;

                if (shm) {
                    (void) ngx_atomic_fetch_add(
                          &shm->dropped[NGX_HTTP_CAPTURE_DROP_RESTRICTED], 1);
                }

                continue;
            }

            if (rc != NGX_OK) {
                return NGX_ERROR;
            }
        }

        /* only analytics-main events are considered (§7.2) */
        if (msgs[i].topic != CAPTURE_TOPIC_MAIN || msgs[i].topic_name) {
            continue;
        }

        forced = lcf->overflow_force
                 && ngx_http_capture_limits_match(lcf->overflow_force,
                                                  &msgs[i]);

        if (!forced
            && (lcf->overflow_rate == 0 || shm == NULL || msgs[i].key == NULL
                || ngx_http_capture_limits_take(shm, lcf, msgs[i].key)
                   == NGX_OK))
        {
            continue;
        }

        msgs[i].topic = CAPTURE_TOPIC_OVERFLOW;

        /* no key: a random partition takes the hot key's load */
        msgs[i].key = NULL;
        msgs[i].key_len = 0;

        if (forced && !msgs[i].person_skip
            && msgs[i].nheaders < CAPTURE_MAX_HEADERS)
        {
            capture_msg_header_add(&msgs[i], "force_disable_person_processing",
                            sizeof("force_disable_person_processing") - 1,
                            "true", 4);
            msgs[i].person_skip = 1;
        }

        if (shm) {
            (void) ngx_atomic_fetch_add(&shm->overflow[forced ? 1 : 0], 1);
        }
    }

    return NGX_OK;
}


/* entries are "token" (any distinct_id), "token:*" or "token:distinct_id" */

static ngx_int_t
ngx_http_capture_limits_match(ngx_array_t *list, capture_msg_t *m)
{
    size_t       tlen, dlen;
    ngx_str_t   *e;
    ngx_uint_t   i;

    tlen = ngx_strlen(m->token);
    dlen = ngx_strlen(m->distinct_id);
    e = list->elts;

    for (i = 0; i < list->nelts; i++) {
        if (e[i].len < tlen
            || ngx_strncmp(e[i].data, m->token, tlen) != 0)
        {
            continue;
        }

        if (e[i].len == tlen) {
            return 1;
        }

        if (e[i].data[tlen] != ':') {
            continue;
        }

        if ((e[i].len == tlen + 2 && e[i].data[tlen + 1] == '*')
            || (e[i].len == tlen + 1 + dlen
                && ngx_strncmp(e[i].data + tlen + 1, m->distinct_id, dlen)
                   == 0))
        {
            return 1;
        }
    }

    return 0;
}


/* a token bucket per event key: rate per second, burst capacity */

static ngx_int_t
ngx_http_capture_limits_take(ngx_http_capture_shm_t *shm,
    ngx_http_capture_loc_conf_t *lcf, const char *key)
{
    return ngx_http_edgehog_bucket_take(&shm->mutex, shm->buckets,
                                        NGX_HTTP_CAPTURE_OVERFLOW_SLOTS,
                                        (u_char *) key, ngx_strlen(key),
                                        lcf->overflow_rate,
                                        lcf->overflow_burst);
}
