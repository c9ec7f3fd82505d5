/*
 * Copyright (C) edgehog
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_capture_module.h"
#include "ngx_http_capture_kafka.h"
#include "ngx_http_capture_metrics.h"


#define NGX_HTTP_CAPTURE_POLL_INTERVAL  1000


static ngx_int_t ngx_http_capture_kafka_conf(ngx_cycle_t *cycle,
    ngx_http_capture_main_conf_t *mcf, rd_kafka_conf_t *conf);
static ngx_int_t ngx_http_capture_kafka_set(ngx_log_t *log,
    rd_kafka_conf_t *conf, const char *key, const char *value);
static void ngx_http_capture_kafka_notify(ngx_event_t *rev);
static void ngx_http_capture_kafka_poll(ngx_event_t *ev);
static void ngx_http_capture_kafka_arm_timer(
    ngx_http_capture_main_conf_t *mcf);
static rd_kafka_topic_t *ngx_http_capture_kafka_topic(
    ngx_http_capture_main_conf_t *mcf, ngx_str_t *name);
static void ngx_http_capture_kafka_dr(rd_kafka_t *rk,
    const rd_kafka_message_t *msg, void *opaque);
static void ngx_http_capture_kafka_error(rd_kafka_t *rk, int err,
    const char *reason, void *opaque);
static int ngx_http_capture_kafka_stats(rd_kafka_t *rk, char *json,
    size_t len, void *opaque);
static void ngx_http_capture_kafka_log(const rd_kafka_t *rk, int level,
    const char *fac, const char *buf);
static ngx_http_capture_waiter_t *ngx_http_capture_waiter_alloc(
    ngx_http_capture_main_conf_t *mcf, ngx_log_t *log);
static ngx_int_t ngx_http_capture_waiter_wait(
    ngx_http_capture_main_conf_t *mcf, ngx_http_capture_waiter_t *w,
    ngx_msec_t timeout);
static void ngx_http_capture_waiter_unqueue(ngx_http_capture_waiter_t *w);
static void ngx_http_capture_waiter_answer(ngx_http_capture_waiter_t *w);
static void ngx_http_capture_ack_timeout(ngx_event_t *ev);
static void ngx_http_capture_waiter_cleanup(void *data);
static void ngx_http_capture_waiter_free(ngx_http_capture_waiter_t *w);


char *
ngx_http_capture_kafka_check_option(ngx_conf_t *cf, ngx_str_t *key,
    ngx_str_t *value)
{
    char              errstr[512];
    u_char           *k, *v;
    rd_kafka_conf_t  *conf;

    k = ngx_pnalloc(cf->pool, key->len + 1);
    v = ngx_pnalloc(cf->pool, value->len + 1);
    if (k == NULL || v == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_cpystrn(k, key->data, key->len + 1);
    ngx_cpystrn(v, value->data, value->len + 1);

    /* a conf object starts no threads, so this is safe under nginx -t */
    conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, (char *) k, (char *) v, errstr,
                          sizeof(errstr))
        != RD_KAFKA_CONF_OK)
    {
        rd_kafka_conf_destroy(conf);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid capture_kafka_option \"%V\" \"%V\": %s",
                           key, value, errstr);
        return NGX_CONF_ERROR;
    }

    rd_kafka_conf_destroy(conf);

    /* keep NUL-terminated copies for init_process */
    key->data = k;
    value->data = v;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_capture_kafka_init_process(ngx_cycle_t *cycle,
    ngx_http_capture_main_conf_t *mcf)
{
    int                 fds[2];
    char                errstr[512];
    rd_kafka_t         *rk;
    rd_kafka_conf_t    *conf;
    ngx_connection_t   *c;
    rd_kafka_queue_t   *q;

    mcf->log = cycle->log;

    /*
     * 64 KB chunks: a /batch/ of 50 events fills about one; 64 empty ones
     * (4 MB) cover the blocks in flight at some thousand batches a second
     */
    mcf->blocks = capture_blocks_create(65536, 64);
    if (mcf->blocks == NULL) {
        return NGX_ERROR;
    }

    mcf->msg_alloc.resize = capture_blocks_resize;
    mcf->msg_alloc.free = capture_blocks_free;
    mcf->msg_alloc.ctx = mcf->blocks;

    /* a grace period: the first statistics come after the interval */
    mcf->broker_up = ngx_time();

    if (ngx_array_init(&mcf->topics, cycle->pool, 4,
                       sizeof(ngx_http_capture_topic_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_array_init(&mcf->ack_queues, cycle->pool, 2,
                       sizeof(ngx_http_capture_ack_queue_t *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_queue_init(&mcf->free_waiters);

    conf = rd_kafka_conf_new();

    if (ngx_http_capture_kafka_conf(cycle, mcf, conf) != NGX_OK) {
        rd_kafka_conf_destroy(conf);
        return NGX_ERROR;
    }

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "rd_kafka_new() failed: %s", errstr);
        return NGX_ERROR;
    }

    /* logs are served by rd_kafka_poll() on this thread, never by ours */
    rd_kafka_set_log_queue(rk, NULL);

    mcf->rk = rk;

    if (pipe2(fds, O_NONBLOCK|O_CLOEXEC) == -1) {
        ngx_log_error(NGX_LOG_CRIT, cycle->log, ngx_errno, "pipe2() failed");
        return NGX_ERROR;
    }

    c = ngx_get_connection(fds[0], cycle->log);
    if (c == NULL) {
        close(fds[0]);
        close(fds[1]);
        return NGX_ERROR;
    }

    c->data = mcf;
    c->read->handler = ngx_http_capture_kafka_notify;
    c->read->log = cycle->log;
    /* not a client connection: shutdown must not close it */
    c->read->channel = 1;
    c->write->channel = 1;

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_close_connection(c);
        close(fds[1]);
        return NGX_ERROR;
    }

    mcf->notify = c;
    mcf->notify_wfd = fds[1];

    q = rd_kafka_queue_get_main(rk);
    rd_kafka_queue_io_event_enable(q, fds[1], "1", 1);
    rd_kafka_queue_destroy(q);

    /*
     * the io event fires only on an empty-to-non-empty transition, and
     * rd_kafka_new() may have queued ops already: drain after arming
     */
    rd_kafka_poll(rk, 0);

    mcf->poll_timer.handler = ngx_http_capture_kafka_poll;
    mcf->poll_timer.data = mcf;
    mcf->poll_timer.log = cycle->log;

    ngx_http_capture_kafka_arm_timer(mcf);

    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                  "capture: kafka producer created for \"%V\"",
                  &mcf->brokers);

    return NGX_OK;
}


static ngx_int_t
ngx_http_capture_kafka_conf(ngx_cycle_t *cycle,
    ngx_http_capture_main_conf_t *mcf, rd_kafka_conf_t *conf)
{
    u_char        *brokers;
    u_char         id[64];
    ngx_uint_t     i;
    ngx_keyval_t  *kv;

    brokers = ngx_pnalloc(cycle->pool, mcf->brokers.len + 1);
    if (brokers == NULL) {
        return NGX_ERROR;
    }

    ngx_cpystrn(brokers, mcf->brokers.data, mcf->brokers.len + 1);
    ngx_snprintf(id, sizeof(id), "edgehog-capture-%P%Z", ngx_pid);

    /*
     * defaults first, so capture_kafka_option overrides them; the 1 GiB
     * default queue is per worker, and PostHog keys need murmur2.
     * linger.ms 10 made produce requests ten times fewer and larger than
     * 1 did: measured with bench-capture, the broker's CPU per message
     * fell from 6.8 to 2.1 us and ours from 15.0 to 13.6 us, for 10 ms
     * more until a delivery ack.  Session 7, kept out: linger.ms 20,
     * capture-rs's default (spec/capture.md §8).  Against 10, builds
     * alternating, (b) gained in 3 of 3 runs (nginx CPU per request
     * 25.4 -> 24.6, 23.2 -> 21.6, 21.3 -> 19.6 us; Kafka 6.0 -> 3.9,
     * 3.6 -> 3.0, 3.4 -> 2.9 us), but (d) did not: nginx CPU per batch
     * 389 -> 376, 345 -> 328, 290 -> 322, 283 -> 301 us (the event loop
     * thread 256 -> 250, 232 -> 220, 189 -> 215, 186 -> 201 us; perhaps
     * as its delivery reports free memory held 10 ms longer, colder),
     * and Kafka 152 -> 118, 117 -> 92, 90 -> 88, 96 -> 95 us.  lz4 costs
     * us little and saves the broker more: without it, its CPU per
     * 50-event batch rose from 88 to 342 us.  Measured against these
     * defaults in one run (session 4) and kept out: snappy (broker CPU
     * per batch 67 -> 124 us), linger.ms 5 (broker 73 -> 88 us, no more
     * throughput), message.copy.max.bytes 0 (no change: lz4 copies the
     * values anyway), and glibc's tcache_count 4096 for the worker's
     * burst of header frees (event loop CPU per batch 180 -> 232 us).
     * Session 5, also kept out: glibc without fastbins (mallopt M_MXFAST
     * 0; bench-capture-alloc: no change), and mallopt M_MMAP_THRESHOLD
     * 8 MB with M_TRIM_THRESHOLD 32 MB: the 0.13-0.24 page faults per
     * request of (b) and (c), all in librdkafka's broker thread filling
     * fresh produce buffers, went to none, but that thread's CPU per
     * request moved within the noise (1.4 -> 1.1 us in (c), 1.6 -> 1.5
     * in (b)), and a worker would keep 32 MB it no longer uses.
     * Session 6, kept out after A/B on bench-capture's stack (nginx CPU
     * per (d) batch, medians of 4-5 interleaved rounds): header sets
     * detached in the delivery report (rd_kafka_message_detach_headers)
     * and destroyed just before the next set is built, so their nine
     * blocks go through glibc's tcache (bench-capture-alloc: 1530 -> 1345
     * ns per event), made it worse, 164 -> 172 us, the broker thread's
     * share most: recycled blocks are scattered, where carved from
     * consolidated memory a message's headers sit together; and mallopt
     * M_MXFAST 0 in the worker, 170 -> 173 us.  Session 10, kept out:
     * socket.nagle.disable true (option A/B, medians of 3 rounds: (b)
     * nginx CPU per request 24.8 -> 25.7 us, Kafka 4.9 -> 5.4 us, p50 46
     * -> 50 ms; (c) 13.6 -> 13.8 us).  librdkafka's statistics during
     * (b) at 29k req/s: int_latency p50 7.6-7.8 ms (linger), broker rtt
     * p50 0.9-1.2 ms, while wrk saw a p50 of 33 ms: the rest of (b)'s
     * latency, which bounds its req/s at 1024 connections, is waiting
     * for a core on the shared machine, not Kafka.
     */
    if (ngx_http_capture_kafka_set(cycle->log, conf, "bootstrap.servers",
                                   (char *) brokers) != NGX_OK
        || ngx_http_capture_kafka_set(cycle->log, conf, "client.id",
                                      (char *) id) != NGX_OK
        || ngx_http_capture_kafka_set(cycle->log, conf, "log.queue", "true")
           != NGX_OK
        || ngx_http_capture_kafka_set(cycle->log, conf, "acks", "all")
           != NGX_OK
        || ngx_http_capture_kafka_set(cycle->log, conf, "partitioner",
                                      "murmur2_random") != NGX_OK
        || ngx_http_capture_kafka_set(cycle->log, conf,
                                      "queue.buffering.max.kbytes", "131072")
           != NGX_OK
        || ngx_http_capture_kafka_set(cycle->log, conf, "linger.ms", "10")
           != NGX_OK
        || ngx_http_capture_kafka_set(cycle->log, conf, "message.timeout.ms",
                                      "10000") != NGX_OK
        || ngx_http_capture_kafka_set(cycle->log, conf, "compression.codec",
                                      "lz4") != NGX_OK
        || ngx_http_capture_kafka_set(cycle->log, conf,
                                      "statistics.interval.ms", "5000")
           != NGX_OK
        /*
         * a broker thread that waits to reconnect also waits to expire
         * messages: a short backoff keeps 503s within message.timeout.ms
         */
        || ngx_http_capture_kafka_set(cycle->log, conf,
                                      "reconnect.backoff.max.ms", "1000")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (mcf->options) {
        kv = mcf->options->elts;

        for (i = 0; i < mcf->options->nelts; i++) {
            if (ngx_http_capture_kafka_set(cycle->log, conf,
                                           (char *) kv[i].key.data,
                                           (char *) kv[i].value.data)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    rd_kafka_conf_set_opaque(conf, mcf);
    rd_kafka_conf_set_dr_msg_cb(conf, ngx_http_capture_kafka_dr);
    rd_kafka_conf_set_error_cb(conf, ngx_http_capture_kafka_error);
    rd_kafka_conf_set_log_cb(conf, ngx_http_capture_kafka_log);
    rd_kafka_conf_set_stats_cb(conf, ngx_http_capture_kafka_stats);

    return NGX_OK;
}


static ngx_int_t
ngx_http_capture_kafka_set(ngx_log_t *log, rd_kafka_conf_t *conf,
    const char *key, const char *value)
{
    char  errstr[512];

    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr))
        != RD_KAFKA_CONF_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "rd_kafka_conf_set(\"%s\", \"%s\") failed: %s",
                      key, value, errstr);
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_capture_kafka_exit_process(ngx_cycle_t *cycle,
    ngx_http_capture_main_conf_t *mcf)
{
    int                        left;
    ngx_uint_t                 i;
    ngx_queue_t               *q;
    rd_kafka_queue_t          *rkq;
    ngx_http_capture_topic_t  *t;

    rkq = rd_kafka_queue_get_main(mcf->rk);
    rd_kafka_queue_io_event_enable(rkq, -1, NULL, 0);
    rd_kafka_queue_destroy(rkq);

    if (mcf->notify) {
        ngx_close_connection(mcf->notify);
        mcf->notify = NULL;
    }

    if (mcf->notify_wfd != NGX_INVALID_FILE) {
        close(mcf->notify_wfd);
        mcf->notify_wfd = NGX_INVALID_FILE;
    }

    /* the one bounded block allowed: the last chance to deliver */
    rd_kafka_flush(mcf->rk, (int) mcf->flush_timeout);

    left = rd_kafka_outq_len(mcf->rk);
    if (left > 0) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "capture: %d kafka messages lost at exit", left);
    }

    t = mcf->topics.elts;
    for (i = 0; i < mcf->topics.nelts; i++) {
        rd_kafka_topic_destroy(t[i].rkt);
    }

    rd_kafka_destroy(mcf->rk);
    mcf->rk = NULL;

    while (!ngx_queue_empty(&mcf->free_waiters)) {
        q = ngx_queue_head(&mcf->free_waiters);
        ngx_queue_remove(q);
        ngx_free(ngx_queue_data(q, ngx_http_capture_waiter_t, queue));
    }

    /* blocks of messages never reported stay allocated until exit */
    capture_blocks_destroy(mcf->blocks);
    mcf->blocks = NULL;
}


static void
ngx_http_capture_kafka_notify(ngx_event_t *rev)
{
    u_char                         buf[256];
    ssize_t                        n;
    ngx_connection_t              *c;
    ngx_http_capture_main_conf_t  *mcf;

    c = rev->data;
    mcf = c->data;

    /* edge-triggered: drain to EAGAIN before serving the queue */

    for ( ;; ) {
        n = read(c->fd, buf, sizeof(buf));

        if (n > 0) {
            continue;
        }

        if (n == -1 && ngx_errno == NGX_EINTR) {
            continue;
        }

        break;
    }

    rev->ready = 0;

    rd_kafka_poll(mcf->rk, 0);

    ngx_http_capture_kafka_arm_timer(mcf);
}


static void
ngx_http_capture_kafka_poll(ngx_event_t *ev)
{
    ngx_http_capture_main_conf_t  *mcf;

    mcf = ev->data;

    rd_kafka_poll(mcf->rk, 0);

    ngx_http_capture_kafka_arm_timer(mcf);
}


/*
 * The safety timer serves the queue even if a wake-up is missed.  While
 * messages are in flight it is not cancelable, so a quitting worker keeps
 * serving delivery reports (bounded by message.timeout.ms).
 */

static void
ngx_http_capture_kafka_arm_timer(ngx_http_capture_main_conf_t *mcf)
{
    int                      depth;
    ngx_uint_t               busy;
    ngx_http_capture_shm_t  *shm;

    depth = rd_kafka_outq_len(mcf->rk);
    busy = depth > 0;

    shm = mcf->shm_zone ? mcf->shm_zone->data : NULL;
    if (shm && ngx_worker < NGX_HTTP_CAPTURE_WORKERS) {
        shm->queue_depth[ngx_worker] = depth;
    }

    if (ngx_exiting && !busy) {
        if (mcf->poll_timer.timer_set) {
            ngx_del_timer(&mcf->poll_timer);
        }

        return;
    }

    mcf->poll_timer.cancelable = busy ? 0 : 1;

    if (!mcf->poll_timer.timer_set) {
        ngx_add_timer(&mcf->poll_timer, NGX_HTTP_CAPTURE_POLL_INTERVAL);
    }
}


static rd_kafka_topic_t *
ngx_http_capture_kafka_topic(ngx_http_capture_main_conf_t *mcf,
    ngx_str_t *name)
{
    u_char                    *p;
    ngx_uint_t                 i;
    rd_kafka_topic_t          *rkt;
    ngx_http_capture_topic_t  *t;

    t = mcf->topics.elts;

    for (i = 0; i < mcf->topics.nelts; i++) {
        if (t[i].name.len == name->len
            && ngx_strncmp(t[i].name.data, name->data, name->len) == 0)
        {
            return t[i].rkt;
        }
    }

    p = ngx_pnalloc(mcf->topics.pool, name->len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_cpystrn(p, name->data, name->len + 1);

    /* creates a local handle only; metadata is fetched by librdkafka */
    rkt = rd_kafka_topic_new(mcf->rk, (char *) p, NULL);
    if (rkt == NULL) {
        return NULL;
    }

    t = ngx_array_push(&mcf->topics);
    if (t == NULL) {
        rd_kafka_topic_destroy(rkt);
        return NULL;
    }

    t->name.data = p;
    t->name.len = name->len;
    t->rkt = rkt;

    return rkt;
}


ngx_int_t
ngx_http_capture_kafka_produce(ngx_http_request_t *r, capture_msg_t *msgs,
    ngx_uint_t n, ngx_http_capture_done_pt done)
{
    size_t                         h;
    ngx_str_t                      name;
    ngx_uint_t                     i, produced;
    rd_kafka_topic_t              *rkt;
    ngx_pool_cleanup_t            *cln;
    rd_kafka_headers_t            *hdrs;
    rd_kafka_resp_err_t            err;
    ngx_http_capture_waiter_t     *w;
    ngx_http_capture_loc_conf_t   *lcf;
    ngx_http_capture_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_capture_module);
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_capture_module);

    if (mcf->rk == NULL) {
        done(r, NGX_HTTP_SERVICE_UNAVAILABLE);
        return NGX_DONE;
    }

    w = NULL;
    produced = 0;

    if (lcf->ack == NGX_HTTP_CAPTURE_ACK_DELIVERY) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        w = ngx_http_capture_waiter_alloc(mcf, r->connection->log);
        if (w == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        w->r = r;
        w->start = ngx_current_msec;
        w->done = done;

        cln->handler = ngx_http_capture_waiter_cleanup;
        cln->data = w;
    }

    for (i = 0; i < n; i++) {
        if (msgs[i].dropped) {
            continue;
        }

        if (msgs[i].topic_name) {
            /* a restriction's topic (§7.5), from the configuration */
            name.data = (u_char *) msgs[i].topic_name;
            name.len = msgs[i].topic_name_len;
            rkt = ngx_http_capture_kafka_topic(mcf, &name);

        } else {
            rkt = ngx_http_capture_kafka_topic(mcf,
                                               &lcf->topics[msgs[i].topic]);
        }

        if (rkt == NULL) {
            err = RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
            goto failed;
        }

        /* the delivery report frees the block into the worker's arena */
        if (msgs[i].alloc != &mcf->msg_alloc) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "capture: message block not from the arena");
            err = RD_KAFKA_RESP_ERR__INVALID_ARG;
            goto failed;
        }

        /*
         * librdkafka makes 2 + nheaders allocations here, all freed in
         * the delivery report burst (produce_batch() takes no headers).
         * Session 9, perf of bench-capture (d) (dwarf call graphs): of
         * the event loop's CPU, the allocator took 25% (headers 14%:
         * add 6.5, destroy 6.0, new 1.7; the message 4%; nginx's pool
         * free, which consolidates the fastbins those bursts fill, 3.8%),
         * rd_kafka_producev() 9.7% and rd_kafka_poll() 12% besides our
         * report callback; the broker thread, a third of the worker's CPU
         * (86 us per batch), copies the values (memcpy 13%), compresses
         * (lz4 6.6%) and faults pages.  The builder was 36%, the body's
         * recv() 5%, the answer's writev() 6%.  The lengths are given:
         * no strlen() of 14 strings per message (callgrind of
         * bench-capture-alloc batch, with the spare message array of
         * capture_event.c: 22040 -> 21880 instructions per event).
         * Session 10, uprobes on malloc during (b): 13.4 malloc() and 1
         * realloc() per request, 14 free(): librdkafka's 7 header_add(),
         * 2 for the header set and 1 for the message; nginx's 3 (the
         * request pool, its second 4 KB block, the header buffer) as in
         * (a); the module itself none.
         */
        hdrs = rd_kafka_headers_new(msgs[i].nheaders);

        for (h = 0; h < msgs[i].nheaders; h++) {
            rd_kafka_header_add(hdrs, msgs[i].headers[h].name,
                                msgs[i].headers[h].name_len,
                                msgs[i].headers[h].value,
                                msgs[i].headers[h].value_len);
        }


        err = rd_kafka_producev(mcf->rk,
                                RD_KAFKA_V_RKT(rkt),
                                RD_KAFKA_V_MSGFLAGS(0),
                                RD_KAFKA_V_VALUE(msgs[i].value,
                                                 msgs[i].value_len),
                                RD_KAFKA_V_KEY(msgs[i].key, msgs[i].key_len),
                                RD_KAFKA_V_HEADERS(hdrs),
                                RD_KAFKA_V_OPAQUE(w),
                                RD_KAFKA_V_END);

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* headers are ours again when producev fails */
            rd_kafka_headers_destroy(hdrs);
            goto failed;
        }

        /*
         * neither F_FREE nor F_COPY: librdkafka reads the value until the
         * delivery report, which frees the block; the key and the header
         * values in it were copied by producev
         */
        msgs[i].value = NULL;
        produced++;

        if (w) {
            w->pending++;
        }
    }

    /*
     * a message just produced keeps the queue busy: once the safety timer
     * is uncancelable nothing changes, and the depth gauge waits for the
     * next poll (rd_kafka_outq_len() takes two of librdkafka's locks)
     */
    if (produced == 0
        || !mcf->poll_timer.timer_set || mcf->poll_timer.cancelable)
    {
        ngx_http_capture_kafka_arm_timer(mcf);
    }

    if (w == NULL) {
        done(r, NGX_HTTP_OK);
        return NGX_DONE;
    }

    if (w->pending == 0) {
        done(r, NGX_HTTP_OK);
        return NGX_DONE;
    }

    if (ngx_http_capture_waiter_wait(mcf, w, lcf->ack_timeout) != NGX_OK) {
        /* the reports still come; the request cannot wait for them */
        w->failed = 1;
        w->answered = 1;
        done(r, NGX_HTTP_SERVICE_UNAVAILABLE);
    }

    return NGX_DONE;

failed:

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "capture: produce failed: %s", rd_kafka_err2str(err));

    if (w) {
        w->failed = 1;
        w->answered = 1;
    }

    ngx_http_capture_kafka_arm_timer(mcf);

    done(r, err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE
            ? NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
            : NGX_HTTP_SERVICE_UNAVAILABLE);

    return NGX_DONE;
}


/* served inside rd_kafka_poll(), on the nginx thread */

static void
ngx_http_capture_kafka_dr(rd_kafka_t *rk, const rd_kafka_message_t *msg,
    void *opaque)
{
    ngx_http_capture_shm_t        *shm;
    ngx_http_capture_waiter_t     *w;
    ngx_http_capture_main_conf_t  *mcf;

    mcf = opaque;
    w = msg->_private;
    shm = mcf->shm_zone ? mcf->shm_zone->data : NULL;

    /* every message was produced from a block of the arena, unowned */
    if (msg->payload) {
        capture_blocks_free(mcf->blocks, msg->payload);
    }

    if (shm) {
        (void) ngx_atomic_fetch_add(msg->err ? &shm->delivery_errors
                                             : &shm->events_ingested, 1);

        if (w && !msg->err) {
            ngx_http_capture_metrics_latency(shm,
                                             ngx_current_msec - w->start);
        }
    }

    if (msg->err) {
        mcf->delivery_errors++;

        if (ngx_time() != mcf->last_error_log) {
            mcf->last_error_log = ngx_time();
            ngx_log_error(NGX_LOG_ERR, mcf->log, 0,
                          "capture: kafka delivery failed: %s "
                          "(%ui failures so far)",
                          rd_kafka_err2str(msg->err), mcf->delivery_errors);
        }
    }

    if (w == NULL) {
        return;
    }

    w->pending--;

    if (msg->err) {
        w->failed = 1;
    }

    if (!w->answered && w->r && (w->pending == 0 || w->failed)) {
        ngx_http_capture_waiter_answer(w);
        return;
    }

    if (w->pending == 0 && w->r == NULL) {
        ngx_http_capture_waiter_free(w);
    }
}


static void
ngx_http_capture_kafka_error(rd_kafka_t *rk, int err, const char *reason,
    void *opaque)
{
    ngx_http_capture_main_conf_t  *mcf = opaque;

    char  fatal[512];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        ngx_log_error(NGX_LOG_CRIT, mcf->log, 0,
                      "capture: kafka fatal error: %s", fatal);
        return;
    }

    if (ngx_time() != mcf->last_error_log) {
        mcf->last_error_log = ngx_time();
        ngx_log_error(NGX_LOG_ERR, mcf->log, 0, "capture: kafka: %s",
                      reason);
    }
}


/*
 * served inside rd_kafka_poll(): liveness needs one broker "UP"; a
 * substring test is enough for librdkafka's fixed statistics layout
 */

static int
ngx_http_capture_kafka_stats(rd_kafka_t *rk, char *json, size_t len,
    void *opaque)
{
    ngx_http_capture_main_conf_t  *mcf = opaque;

    if (ngx_strlcasestrn((u_char *) json, (u_char *) json + len,
                         (u_char *) "\"state\":\"UP\"",
                         sizeof("\"state\":\"UP\"") - 2)
        != NULL)
    {
        mcf->broker_up = ngx_time();
    }

    /* 0: librdkafka frees the JSON */
    return 0;
}


static void
ngx_http_capture_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    ngx_uint_t                     lvl;
    ngx_http_capture_main_conf_t  *mcf;

    /* log.queue=true: this runs inside rd_kafka_poll() on our thread */

    mcf = rd_kafka_opaque(rk);

    /* syslog levels: 0..3 are errors for librdkafka */
    lvl = (level <= 3) ? NGX_LOG_ERR : NGX_LOG_INFO;

    ngx_log_error(lvl, mcf->log, 0,
                  "capture: kafka %s: %s", fac, buf);
}


/*
 * Waiters are reused: a request with capture_ack delivery would otherwise
 * take a malloc() and a free() of its own
 */

static ngx_http_capture_waiter_t *
ngx_http_capture_waiter_alloc(ngx_http_capture_main_conf_t *mcf,
    ngx_log_t *log)
{
    ngx_queue_t                *q;
    ngx_http_capture_waiter_t  *w;

    if (ngx_queue_empty(&mcf->free_waiters)) {
        return ngx_calloc(sizeof(ngx_http_capture_waiter_t), log);
    }

    q = ngx_queue_head(&mcf->free_waiters);
    ngx_queue_remove(q);

    w = ngx_queue_data(q, ngx_http_capture_waiter_t, queue);
    ngx_memzero(w, sizeof(ngx_http_capture_waiter_t));

    return w;
}


/*
 * One timer per ack timeout instead of one per request: a request's
 * timer took two operations on the worker's timer tree, with a thousand
 * requests waiting (bench-capture (b)) each some ten levels deep
 */

static ngx_int_t
ngx_http_capture_waiter_wait(ngx_http_capture_main_conf_t *mcf,
    ngx_http_capture_waiter_t *w, ngx_msec_t timeout)
{
    ngx_uint_t                      i;
    ngx_http_capture_ack_queue_t  **aqs, *aq, **p;

    aq = NULL;
    aqs = mcf->ack_queues.elts;

    for (i = 0; i < mcf->ack_queues.nelts; i++) {
        if (aqs[i]->timeout == timeout) {
            aq = aqs[i];
            break;
        }
    }

    if (aq == NULL) {
        aq = ngx_pcalloc(mcf->ack_queues.pool,
                         sizeof(ngx_http_capture_ack_queue_t));
        p = ngx_array_push(&mcf->ack_queues);
        if (aq == NULL || p == NULL) {
            return NGX_ERROR;
        }

        *p = aq;

        aq->timeout = timeout;
        ngx_queue_init(&aq->waiters);
        aq->timer.handler = ngx_http_capture_ack_timeout;
        aq->timer.data = aq;
        aq->timer.log = mcf->log;
    }

    w->ack = aq;
    w->deadline = ngx_current_msec + timeout;
    ngx_queue_insert_tail(&aq->waiters, &w->queue);

    /*
     * not cancelable, as the timers of requests are not: a quitting
     * worker still answers its waiters
     */
    if (!aq->timer.timer_set) {
        ngx_add_timer(&aq->timer, timeout);
    }

    return NGX_OK;
}


static void
ngx_http_capture_waiter_unqueue(ngx_http_capture_waiter_t *w)
{
    ngx_http_capture_ack_queue_t  *aq;

    aq = w->ack;

    if (aq == NULL) {
        return;
    }

    ngx_queue_remove(&w->queue);
    w->ack = NULL;

    /* an idle timer would keep a quitting worker until it fires */
    if (ngx_queue_empty(&aq->waiters) && aq->timer.timer_set) {
        ngx_del_timer(&aq->timer);
    }
}


static void
ngx_http_capture_waiter_answer(ngx_http_capture_waiter_t *w)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = w->r;
    c = r->connection;

    w->answered = 1;

    ngx_http_capture_waiter_unqueue(w);

    /* may free the waiter through the request pool cleanup */
    w->done(r, w->failed ? NGX_HTTP_SERVICE_UNAVAILABLE : NGX_HTTP_OK);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_capture_ack_timeout(ngx_event_t *ev)
{
    ngx_queue_t                   *q;
    ngx_http_capture_waiter_t     *w;
    ngx_http_capture_ack_queue_t  *aq;

    aq = ev->data;

    while (!ngx_queue_empty(&aq->waiters)) {
        q = ngx_queue_head(&aq->waiters);
        w = ngx_queue_data(q, ngx_http_capture_waiter_t, queue);

        if ((ngx_msec_int_t) (w->deadline - ngx_current_msec) > 0) {
            ngx_add_timer(ev, w->deadline - ngx_current_msec);
            return;
        }

        /* queued waiters have a request and no answer yet */

        ngx_log_error(NGX_LOG_ERR, w->r->connection->log, 0,
                      "capture: no kafka acknowledgement in time, "
                      "%ui messages pending", w->pending);

        w->failed = 1;
        ngx_http_capture_waiter_answer(w);
    }
}


static void
ngx_http_capture_waiter_cleanup(void *data)
{
    ngx_http_capture_waiter_t  *w = data;

    w->r = NULL;

    ngx_http_capture_waiter_unqueue(w);

    /* freed by whichever comes last: the request or the last report */
    if (w->pending == 0) {
        ngx_http_capture_waiter_free(w);
    }
}


static void
ngx_http_capture_waiter_free(ngx_http_capture_waiter_t *w)
{
    ngx_http_capture_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                              ngx_http_capture_module);

    ngx_queue_insert_head(&mcf->free_waiters, &w->queue);
}
