/*
 * Copyright (C) edgehog
 */

/*
 * Event restrictions (spec/capture.md §7.5), configured by directive
 * rather than read from Redis:
 *
 *     capture_event_restriction <action> token=<t> [distinct_id=<a,b>]
 *                               [session_id=<..>] [event=<..>]
 *                               [uuid=<..>] [topic=<name>];
 *
 * action: drop_event, force_overflow, skip_person_processing,
 * redirect_to_dlq, or redirect_to_topic (which needs topic=).  A rule
 * applies to an event of its token when every filter it names matches
 * (a comma-separated filter matches any of its values); a rule without
 * filters applies to every event of the token.  Several rules may apply:
 * a drop wins, then the DLQ, then a topic, then overflow; skipping
 * person processing combines with any route.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_capture_module.h"
#include "ngx_http_capture_metrics.h"
#include "capture_event.h"
#include "eh_time.h"


#define NGX_HTTP_CAPTURE_RESTRICT_DROP      0x01
#define NGX_HTTP_CAPTURE_RESTRICT_OVERFLOW  0x02
#define NGX_HTTP_CAPTURE_RESTRICT_PERSON    0x04
#define NGX_HTTP_CAPTURE_RESTRICT_DLQ       0x08
#define NGX_HTTP_CAPTURE_RESTRICT_TOPIC     0x10

#define NGX_HTTP_CAPTURE_RESTRICT_FILTERS   4


struct ngx_http_capture_restriction_s {
    ngx_uint_t                  action;
    ngx_str_t                   token;
    /* distinct_id, session_id, event, uuid; NULL: any */
    ngx_array_t                *filters[NGX_HTTP_CAPTURE_RESTRICT_FILTERS];
    ngx_str_t                   topic;
};


static ngx_int_t ngx_http_capture_restrict_split(ngx_conf_t *cf,
    ngx_str_t *value, ngx_array_t **list);
static ngx_int_t ngx_http_capture_restrict_in(ngx_array_t *list,
    const char *p, size_t len);
static ngx_int_t ngx_http_capture_restrict_header(ngx_http_request_t *r,
    capture_msg_t *msg, const char *name, const char *value);


static ngx_conf_enum_t  ngx_http_capture_restrict_actions[] = {
    { ngx_string("drop_event"), NGX_HTTP_CAPTURE_RESTRICT_DROP },
    { ngx_string("force_overflow"), NGX_HTTP_CAPTURE_RESTRICT_OVERFLOW },
    { ngx_string("skip_person_processing"), NGX_HTTP_CAPTURE_RESTRICT_PERSON },
    { ngx_string("redirect_to_dlq"), NGX_HTTP_CAPTURE_RESTRICT_DLQ },
    { ngx_string("redirect_to_topic"), NGX_HTTP_CAPTURE_RESTRICT_TOPIC },
    { ngx_null_string, 0 }
};


/* filter names, in the order of ngx_http_capture_restriction_t.filters */
static ngx_str_t  ngx_http_capture_restrict_keys[] = {
    ngx_string("distinct_id="),
    ngx_string("session_id="),
    ngx_string("event="),
    ngx_string("uuid=")
};


char *
ngx_http_capture_restriction(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_capture_loc_conf_t *lcf = conf;

    ngx_str_t                       *value, v;
    ngx_uint_t                       i, k;
    ngx_conf_enum_t                 *e;
    ngx_http_capture_restriction_t  *rule;

    if (lcf->restrictions == NGX_CONF_UNSET_PTR) {
        lcf->restrictions = ngx_array_create(cf->pool, 4,
                                    sizeof(ngx_http_capture_restriction_t));
        if (lcf->restrictions == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rule = ngx_array_push(lcf->restrictions);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rule, sizeof(ngx_http_capture_restriction_t));

    value = cf->args->elts;

    for (e = ngx_http_capture_restrict_actions; e->name.len; e++) {
        if (e->name.len == value[1].len
            && ngx_strncmp(e->name.data, value[1].data, value[1].len) == 0)
        {
            rule->action = e->value;
            break;
        }
    }

    if (rule->action == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid action \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (value[i].len > 6 && ngx_strncmp(value[i].data, "token=", 6) == 0)
        {
            rule->token.data = value[i].data + 6;
            rule->token.len = value[i].len - 6;
            continue;
        }

        if (value[i].len > 6 && ngx_strncmp(value[i].data, "topic=", 6) == 0)
        {
            rule->topic.data = value[i].data + 6;
            rule->topic.len = value[i].len - 6;
            continue;
        }

        for (k = 0; k < NGX_HTTP_CAPTURE_RESTRICT_FILTERS; k++) {
            if (value[i].len > ngx_http_capture_restrict_keys[k].len
                && ngx_strncmp(value[i].data,
                               ngx_http_capture_restrict_keys[k].data,
                               ngx_http_capture_restrict_keys[k].len)
                   == 0)
            {
                break;
            }
        }

        if (k == NGX_HTTP_CAPTURE_RESTRICT_FILTERS || rule->filters[k]) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        v.data = value[i].data + ngx_http_capture_restrict_keys[k].len;
        v.len = value[i].len - ngx_http_capture_restrict_keys[k].len;

        if (ngx_http_capture_restrict_split(cf, &v, &rule->filters[k])
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (rule->token.len == 0) {
        return "needs token=";
    }

    if ((rule->action == NGX_HTTP_CAPTURE_RESTRICT_TOPIC)
        != (rule->topic.len != 0))
    {
        return "takes topic= with redirect_to_topic only";
    }

    return NGX_CONF_OK;
}


/* "a,b,c" into an array of non-empty strings */

static ngx_int_t
ngx_http_capture_restrict_split(ngx_conf_t *cf, ngx_str_t *value,
    ngx_array_t **list)
{
    u_char     *p, *last, *comma;
    ngx_str_t  *s;

    *list = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
    if (*list == NULL) {
        return NGX_ERROR;
    }

    p = value->data;
    last = p + value->len;

    while (p <= last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        if (comma == p) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "empty value in \"%V\"", value);
            return NGX_ERROR;
        }

        s = ngx_array_push(*list);
        if (s == NULL) {
            return NGX_ERROR;
        }

        s->data = p;
        s->len = comma - p;

        p = comma + 1;
    }

    return NGX_OK;
}


/*
 * Applies the rules to one message: NGX_DECLINED when it is to be
 * dropped, NGX_ERROR when out of memory, else NGX_OK (maybe rerouted)
 */

ngx_int_t
ngx_http_capture_restrict(ngx_http_request_t *r,
    ngx_http_capture_loc_conf_t *lcf, capture_msg_t *msg)
{
    u_char                          *ts;
    size_t                           tlen;
    ngx_uint_t                       i, k, actions;
    const char                      *v[NGX_HTTP_CAPTURE_RESTRICT_FILTERS];
    size_t                           vlen[NGX_HTTP_CAPTURE_RESTRICT_FILTERS];
    ngx_http_capture_restriction_t  *rule, *topic;

    tlen = ngx_strlen(msg->token);

    v[0] = msg->distinct_id;
    v[1] = msg->session_id;
    v[2] = msg->event;
    v[3] = msg->headers[4].value;    /* uuid */

    vlen[0] = ngx_strlen(v[0]);
    vlen[1] = msg->session_id_len;
    vlen[2] = ngx_strlen(v[2]);
    vlen[3] = ngx_strlen(v[3]);

    actions = 0;
    topic = NULL;
    rule = lcf->restrictions->elts;

    for (i = 0; i < lcf->restrictions->nelts; i++) {
        if (rule[i].token.len != tlen
            || ngx_strncmp(rule[i].token.data, msg->token, tlen) != 0)
        {
            continue;
        }

        for (k = 0; k < NGX_HTTP_CAPTURE_RESTRICT_FILTERS; k++) {
            if (rule[i].filters[k]
                && (v[k] == NULL
                    || !ngx_http_capture_restrict_in(rule[i].filters[k],
                                                     v[k], vlen[k])))
            {
                break;
            }
        }

        if (k < NGX_HTTP_CAPTURE_RESTRICT_FILTERS) {
            continue;
        }

        actions |= rule[i].action;

        if (rule[i].action == NGX_HTTP_CAPTURE_RESTRICT_TOPIC
            && topic == NULL)
        {
            topic = &rule[i];
        }
    }

    if (actions == 0) {
        return NGX_OK;
    }

    if (actions & NGX_HTTP_CAPTURE_RESTRICT_DROP) {
        return NGX_DECLINED;
    }

    if (actions & NGX_HTTP_CAPTURE_RESTRICT_PERSON) {
        if (ngx_http_capture_restrict_header(r, msg,
                                             "force_disable_person_processing",
                                             "true")
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        msg->person_skip = 1;
    }

    if (actions & NGX_HTTP_CAPTURE_RESTRICT_DLQ) {
        ts = ngx_pnalloc(r->pool, EH_TIME_STR_MAX);
        if (ts == NULL) {
            return NGX_ERROR;
        }

        eh_time_format_iso_ms((int64_t) ngx_time() * 1000000
                              + (int64_t) ngx_timeofday()->msec * 1000,
                              (char *) ts);

        msg->topic = CAPTURE_TOPIC_DLQ;

        if (ngx_http_capture_restrict_header(r, msg, "dlq_reason",
                                             "event_restriction") != NGX_OK
            || ngx_http_capture_restrict_header(r, msg, "dlq_step",
                                                "capture") != NGX_OK
            || ngx_http_capture_restrict_header(r, msg, "dlq_timestamp",
                                                (char *) ts) != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (topic) {
        msg->topic_name = (const char *) topic->topic.data;
        msg->topic_name_len = topic->topic.len;

    } else if (actions & NGX_HTTP_CAPTURE_RESTRICT_OVERFLOW) {
        /* as forced overflow (§7.2): no key, a random partition */
        msg->topic = CAPTURE_TOPIC_OVERFLOW;
        msg->key = NULL;
        msg->key_len = 0;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_capture_restrict_in(ngx_array_t *list, const char *p, size_t len)
{
    ngx_str_t   *s;
    ngx_uint_t   i;

    s = list->elts;

    for (i = 0; i < list->nelts; i++) {
        if (s[i].len == len && ngx_strncmp(s[i].data, p, len) == 0) {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_capture_restrict_header(ngx_http_request_t *r, capture_msg_t *msg,
    const char *name, const char *value)
{
    if (msg->nheaders == CAPTURE_MAX_HEADERS) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "capture: no room for header \"%s\"", name);
        return NGX_ERROR;
    }

    capture_msg_header_add(msg, name, ngx_strlen(name), value,
                           ngx_strlen(value));

    return NGX_OK;
}
