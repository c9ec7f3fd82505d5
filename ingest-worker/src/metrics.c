/*
 * Copyright (C) edgehog
 */


#define _GNU_SOURCE  /* accept4() */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "worker.h"
#include "metrics.h"


struct worker_metrics_server_s {
    int                         fd;
    volatile int                stop;
    pthread_t                   thread;
    pthread_mutex_t             lock;
    worker_metrics_t            snap;
};


static void *worker_metrics_loop(void *data);
static void worker_metrics_serve(worker_metrics_server_t *ms, int c);


static const double  worker_metrics_le[WORKER_METRICS_BUCKETS] = {
    0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30
};


worker_metrics_server_t *
worker_metrics_start(int port)
{
    int                       one;
    struct sockaddr_in        sin;
    worker_metrics_server_t  *ms;

    if (port == 0) {
        return NULL;
    }

    ms = calloc(1, sizeof(worker_metrics_server_t));
    if (ms == NULL) {
        return NULL;
    }

    ms->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    one = 1;
    setsockopt(ms->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));

    memset(&sin, 0, sizeof(struct sockaddr_in));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (ms->fd < 0
        || bind(ms->fd, (struct sockaddr *) &sin, sizeof(sin)) != 0
        || listen(ms->fd, 16) != 0)
    {
        worker_log(WORKER_LOG_ERROR, "metrics: bind() to port %d failed: %s",
                   port, strerror(errno));
        if (ms->fd >= 0) {
            close(ms->fd);
        }
        free(ms);
        return NULL;
    }

    pthread_mutex_init(&ms->lock, NULL);

    if (pthread_create(&ms->thread, NULL, worker_metrics_loop, ms) != 0) {
        close(ms->fd);
        free(ms);
        return NULL;
    }

    worker_log(WORKER_LOG_INFO, "metrics on 127.0.0.1:%d/metrics", port);

    return ms;
}


void
worker_metrics_publish(worker_metrics_server_t *ms, const worker_metrics_t *m)
{
    if (ms == NULL) {
        return;
    }

    pthread_mutex_lock(&ms->lock);
    ms->snap = *m;
    pthread_mutex_unlock(&ms->lock);
}


void
worker_metrics_observe(worker_metrics_t *m, double seconds)
{
    int  i;

    for (i = 0; i < WORKER_METRICS_BUCKETS; i++) {
        if (seconds <= worker_metrics_le[i]) {
            m->latency_buckets[i]++;
        }
    }

    m->latency_sum += seconds;
    m->latency_count++;
}


void
worker_metrics_stop(worker_metrics_server_t *ms)
{
    if (ms == NULL) {
        return;
    }

    ms->stop = 1;
    pthread_join(ms->thread, NULL);
    close(ms->fd);
    pthread_mutex_destroy(&ms->lock);
    free(ms);
}


static void *
worker_metrics_loop(void *data)
{
    int                       c;
    struct pollfd             pfd;
    worker_metrics_server_t  *ms = data;

    pfd.fd = ms->fd;
    pfd.events = POLLIN;

    while (!ms->stop) {
        /* a timeout so that stop is noticed */
        if (poll(&pfd, 1, 200) <= 0) {
            continue;
        }

        c = accept4(ms->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            continue;
        }

        worker_metrics_serve(ms, c);
        close(c);
    }

    return NULL;
}


static void
worker_metrics_serve(worker_metrics_server_t *ms, int c)
{
    int               i, n, off;
    char              req[2048], body[8192], head[256];
    struct timeval    tv = { 2, 0 };
    worker_metrics_t  m;

    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

    /* the request line is all we need; any path gets the metrics */
    if (read(c, req, sizeof(req)) <= 0) {
        return;
    }

    pthread_mutex_lock(&ms->lock);
    m = ms->snap;
    pthread_mutex_unlock(&ms->lock);

#define WM_COUNTER(name, help)                                                \
    "# HELP " name " " help "\n# TYPE " name " counter\n"

    off = snprintf(body, sizeof(body),
        WM_COUNTER("edgehog_ingest_events_in_total",
                   "Messages consumed from the input topic")
        "edgehog_ingest_events_in_total %lu\n"
        WM_COUNTER("edgehog_ingest_events_total", "Events by outcome")
        "edgehog_ingest_events_total{outcome=\"ingested\"} %lu\n"
        "edgehog_ingest_events_total{outcome=\"dropped\","
        "reason=\"unknown_token\"} %lu\n"
        "edgehog_ingest_events_total{outcome=\"dropped\","
        "reason=\"other\"} %lu\n"
        "edgehog_ingest_events_total{outcome=\"dlq\"} %lu\n"
        "edgehog_ingest_events_total{outcome=\"overflow\"} %lu\n"
        WM_COUNTER("edgehog_ingest_warnings_total",
                   "Ingestion warnings produced")
        "edgehog_ingest_warnings_total %lu\n"
        WM_COUNTER("edgehog_ingest_batches_total", "Batches by result")
        "edgehog_ingest_batches_total{result=\"committed\"} %lu\n"
        "edgehog_ingest_batches_total{result=\"retried\"} %lu\n"
        WM_COUNTER("edgehog_ingest_persons_total", "Person writes")
        "edgehog_ingest_persons_total{op=\"created\"} %lu\n"
        "edgehog_ingest_persons_total{op=\"updated\"} %lu\n"
        "edgehog_ingest_persons_total{op=\"merged\"} %lu\n"
        WM_COUNTER("edgehog_ingest_postgres_errors_total",
                   "Failed Postgres statements and connections")
        "edgehog_ingest_postgres_errors_total %lu\n"
        "# HELP edgehog_ingest_consumer_lag Messages behind the high "
        "watermark\n# TYPE edgehog_ingest_consumer_lag gauge\n"
        "edgehog_ingest_consumer_lag %lld\n"
        "# HELP edgehog_ingest_batch_seconds Batch processing time\n"
        "# TYPE edgehog_ingest_batch_seconds histogram\n",
        m.events_in, m.events_out, m.dropped_unknown_token, m.dropped_other,
        m.dlq, m.overflowed, m.warnings, m.batches, m.batch_retries,
        m.persons_created, m.persons_updated, m.persons_merged, m.pg_errors,
        m.lag);

    for (i = 0; i < WORKER_METRICS_BUCKETS && off < (int) sizeof(body); i++) {
        off += snprintf(body + off, sizeof(body) - off,
                        "edgehog_ingest_batch_seconds_bucket{le=\"%g\"} %lu\n",
                        worker_metrics_le[i], m.latency_buckets[i]);
    }

    if (off < (int) sizeof(body)) {
        off += snprintf(body + off, sizeof(body) - off,
                        "edgehog_ingest_batch_seconds_bucket{le=\"+Inf\"} "
                        "%lu\nedgehog_ingest_batch_seconds_sum %f\n"
                        "edgehog_ingest_batch_seconds_count %lu\n",
                        m.latency_count, m.latency_sum, m.latency_count);
    }

    if (off >= (int) sizeof(body)) {
        off = sizeof(body) - 1;
    }

    n = snprintf(head, sizeof(head),
                 "HTTP/1.0 200 OK\r\n"
                 "Content-Type: text/plain; version=0.0.4\r\n"
                 "Content-Length: %d\r\nConnection: close\r\n\r\n", off);

    if (write(c, head, n) == n) {
        (void) !write(c, body, off);
    }
}
