/*
 * Copyright (C) edgehog
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_capture_module.h"
#include "ngx_http_capture_metrics.h"
#include "ngx_http_edgehog_response.h"


static ngx_uint_t ngx_http_capture_route(ngx_http_request_t *r);
static ngx_uint_t ngx_http_capture_status_index(ngx_uint_t status);
static u_char *ngx_http_capture_metric(u_char *p, u_char *last,
    const char *name, const char *labels, ngx_atomic_uint_t v);


static const char  *ngx_http_capture_routes[] = {
    "/e", "/capture", "/track", "/engage", "/i/v0/e", "/batch", "other"
};

static const ngx_uint_t  ngx_http_capture_statuses[] = {
    200, 204, 400, 401, 405, 408, 413, 503, 0
};

static const char  *ngx_http_capture_causes[] = {
    "performance_event", "events_over_quota", "token_dropper",
    "request_rejected", "kafka_error", "event_restriction"
};

/* delivery latency buckets, milliseconds */
static const ngx_msec_t  ngx_http_capture_le[] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 5000, 20000
};


/* counters and overflow buckets survive reloads */

ngx_int_t
ngx_http_capture_metrics_init_zone(ngx_shm_zone_t *zone, void *data)
{
    return ngx_http_edgehog_shm_init(zone, data,
                                     sizeof(ngx_http_capture_shm_t),
                                     offsetof(ngx_http_capture_shm_t, mutex),
                                     offsetof(ngx_http_capture_shm_t, lock));
}


ngx_http_capture_shm_t *
ngx_http_capture_shm(ngx_http_request_t *r)
{
    ngx_http_capture_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_capture_module);

    if (mcf == NULL || mcf->shm_zone == NULL) {
        return NULL;
    }

    return mcf->shm_zone->data;
}


void
ngx_http_capture_metrics_add(ngx_http_request_t *r, ngx_atomic_t *a,
    ngx_atomic_int_t n)
{
    (void) ngx_atomic_fetch_add(a, n);
}


void
ngx_http_capture_metrics_latency(ngx_http_capture_shm_t *shm,
    ngx_msec_t ms)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_CAPTURE_BUCKETS; i++) {
        if (ms <= ngx_http_capture_le[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&shm->latency[i], 1);
    (void) ngx_atomic_fetch_add(&shm->latency_sum_ms, ms);
}


/* log phase: every answer of a capture location, errors and 413 too */

ngx_int_t
ngx_http_capture_metrics_log(ngx_http_request_t *r)
{
    ngx_http_capture_shm_t       *shm;
    ngx_http_capture_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_capture_module);
    shm = ngx_http_capture_shm(r);

    if (!lcf->enable || shm == NULL || r != r->main) {
        return NGX_OK;
    }

    (void) ngx_atomic_fetch_add(&shm->requests[ngx_http_capture_route(r)]
                           [ngx_http_capture_status_index(
                                                 r->headers_out.status)], 1);
    (void) ngx_atomic_fetch_add(&shm->bytes_in, r->request_length);

    return NGX_OK;
}


static ngx_uint_t
ngx_http_capture_route(ngx_http_request_t *r)
{
    size_t      len;
    ngx_uint_t  i;

    len = r->uri.len;

    if (len > 1 && r->uri.data[len - 1] == '/') {
        len--;
    }

    for (i = 0; i < NGX_HTTP_CAPTURE_ROUTES - 1; i++) {
        if (ngx_strlen(ngx_http_capture_routes[i]) == len
            && ngx_strncmp(r->uri.data, ngx_http_capture_routes[i], len) == 0)
        {
            return i;
        }
    }

    return NGX_HTTP_CAPTURE_ROUTES - 1;
}


static ngx_uint_t
ngx_http_capture_status_index(ngx_uint_t status)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_CAPTURE_STATUSES - 1; i++) {
        if (ngx_http_capture_statuses[i] == status) {
            return i;
        }
    }

    return NGX_HTTP_CAPTURE_STATUSES - 1;
}


static u_char *
ngx_http_capture_metric(u_char *p, u_char *last, const char *name,
    const char *labels, ngx_atomic_uint_t v)
{
    return ngx_slprintf(p, last, "%s%s %uA\n", name, labels, v);
}


ngx_int_t
ngx_http_capture_metrics_handler(ngx_http_request_t *r)
{
    u_char                  *p, *last, labels[96];
    ngx_int_t                rc;
    ngx_str_t                body, type;
    ngx_uint_t               i, k;
    ngx_atomic_uint_t        sum, depth;
    ngx_http_capture_shm_t  *shm;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    shm = ngx_http_capture_shm(r);
    if (shm == NULL) {
        return ngx_http_edgehog_send_error(r, NGX_HTTP_NOT_FOUND,
                                           "not_found", "no capture metrics");
    }

    p = ngx_pnalloc(r->pool, 16384);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = p;
    last = p + 16384;

    p = ngx_slprintf(p, last, "# TYPE http_requests_total counter\n");

    for (i = 0; i < NGX_HTTP_CAPTURE_ROUTES; i++) {
        for (k = 0; k < NGX_HTTP_CAPTURE_STATUSES; k++) {
            if (shm->requests[i][k] == 0) {
                continue;
            }

            if (ngx_http_capture_statuses[k]) {
                ngx_snprintf(labels, sizeof(labels),
                             "{path=\"%s\",status=\"%ui\"}%Z",
                             ngx_http_capture_routes[i],
                             ngx_http_capture_statuses[k]);
            } else {
                ngx_snprintf(labels, sizeof(labels),
                             "{path=\"%s\",status=\"other\"}%Z",
                             ngx_http_capture_routes[i]);
            }

            p = ngx_http_capture_metric(p, last, "http_requests_total",
                                        (char *) labels, shm->requests[i][k]);
        }
    }

    p = ngx_slprintf(p, last, "# TYPE capture_events_received_total "
                              "counter\n");
    p = ngx_http_capture_metric(p, last, "capture_events_received_total", "",
                                shm->events_received);
    p = ngx_slprintf(p, last, "# TYPE capture_events_ingested_total "
                              "counter\n");
    p = ngx_http_capture_metric(p, last, "capture_events_ingested_total", "",
                                shm->events_ingested);
    p = ngx_slprintf(p, last, "# TYPE capture_events_dropped_total "
                              "counter\n");

    for (i = 0; i < NGX_HTTP_CAPTURE_CAUSES; i++) {
        ngx_snprintf(labels, sizeof(labels), "{cause=\"%s\"}%Z",
                     ngx_http_capture_causes[i]);
        p = ngx_http_capture_metric(p, last, "capture_events_dropped_total",
                                    (char *) labels, shm->dropped[i]);
    }

    p = ngx_slprintf(p, last, "# TYPE capture_events_rerouted_overflow "
                              "counter\n");
    p = ngx_http_capture_metric(p, last, "capture_events_rerouted_overflow",
                                "{reason=\"rate_limited\"}", shm->overflow[0]);
    p = ngx_http_capture_metric(p, last, "capture_events_rerouted_overflow",
                                "{reason=\"force_limited\"}",
                                shm->overflow[1]);
    p = ngx_slprintf(p, last, "# TYPE capture_request_bytes_total counter\n");
    p = ngx_http_capture_metric(p, last, "capture_request_bytes_total", "",
                                shm->bytes_in);
    p = ngx_slprintf(p, last, "# TYPE capture_decoded_bytes_total counter\n");
    p = ngx_http_capture_metric(p, last, "capture_decoded_bytes_total", "",
                                shm->bytes_decoded);
    p = ngx_slprintf(p, last, "# TYPE capture_kafka_delivery_errors_total "
                              "counter\n");
    p = ngx_http_capture_metric(p, last,
                                "capture_kafka_delivery_errors_total", "",
                                shm->delivery_errors);

    p = ngx_slprintf(p, last, "# TYPE capture_kafka_delivery_seconds "
                              "histogram\n");
    sum = 0;

    for (i = 0; i <= NGX_HTTP_CAPTURE_BUCKETS; i++) {
        sum += shm->latency[i];

        if (i < NGX_HTTP_CAPTURE_BUCKETS) {
            ngx_snprintf(labels, sizeof(labels), "{le=\"%.3f\"}%Z",
                         (double) ngx_http_capture_le[i] / 1000);
        } else {
            ngx_snprintf(labels, sizeof(labels), "{le=\"+Inf\"}%Z");
        }

        p = ngx_http_capture_metric(p, last,
                                    "capture_kafka_delivery_seconds_bucket",
                                    (char *) labels, sum);
    }

    p = ngx_slprintf(p, last, "capture_kafka_delivery_seconds_sum %.3f\n",
                     (double) shm->latency_sum_ms / 1000);
    p = ngx_http_capture_metric(p, last,
                                "capture_kafka_delivery_seconds_count", "",
                                sum);

    depth = 0;

    for (i = 0; i < NGX_HTTP_CAPTURE_WORKERS; i++) {
        depth += shm->queue_depth[i];
    }

    p = ngx_slprintf(p, last, "# TYPE capture_kafka_queue_depth gauge\n");
    p = ngx_http_capture_metric(p, last, "capture_kafka_queue_depth", "",
                                depth);
    p = ngx_slprintf(p, last, "# TYPE capture_quota_limited_tokens gauge\n");
    p = ngx_http_capture_metric(p, last, "capture_quota_limited_tokens", "",
                                shm->quota_tokens);

    body.len = p - body.data;

    ngx_str_set(&type, "text/plain; version=0.0.4");

    return ngx_http_edgehog_send(r, NGX_HTTP_OK, &type, &body);
}


/*
 * /_liveness: 500 once no broker was seen up for liveness_timeout
 * (statistics callback), as capture-rs's health registry; /_readiness:
 * static "capture"
 */

ngx_int_t
ngx_http_capture_health_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_str_t                      body, type;
    ngx_uint_t                     status;
    ngx_http_capture_loc_conf_t   *lcf;
    ngx_http_capture_main_conf_t  *mcf;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_capture_module);
    mcf = ngx_http_get_module_main_conf(r, ngx_http_capture_module);

    ngx_str_set(&type, "text/plain; charset=utf-8");
    status = NGX_HTTP_OK;
    ngx_str_set(&body, "capture");

    if (lcf->health == 1) {
        if (mcf->rk == NULL
            || ngx_time() - mcf->broker_up > mcf->liveness_timeout)
        {
            status = NGX_HTTP_INTERNAL_SERVER_ERROR;
            ngx_str_set(&body, "rdkafka: unhealthy (no broker up)");

        } else {
            ngx_str_set(&body, "rdkafka: healthy");
        }
    }

    return ngx_http_edgehog_send(r, status, &type, &body);
}
