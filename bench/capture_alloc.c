/*
 * Copyright (C) edgehog
 */

/*
 * Pure-C micro-benchmark of one capture request's heap traffic in an
 * nginx worker, with the real builder and the real librdkafka calls: the
 * request pool and header buffer nginx allocates (4 KB each, as with
 * bench-capture's client_header_buffer_size), capture_event_build() on
 * bench-capture's ~1 KB event, the message's headers and producev() as
 * ngx_http_capture_kafka_produce() does, and delivery reports served
 * in bursts by rd_kafka_poll(), as a produce response brings them.  No
 * broker: the burst is made by rd_kafka_purge(), whose reports free the
 * messages exactly as successful ones do.
 *
 *   make bench-capture-alloc [BENCH_N=200000] [BENCH_ARGS="..."]
 *
 * arguments: "delivery" keeps each request's pool and buffer until its
 * report (capture_ack delivery, bench-capture (b)), "enqueue" (default)
 * frees them right after producev() ((c)); "mxfast0" disables glibc's
 * fastbins; "batch" sends bench-capture's (d) /batch/ of 50 events, its
 * body copied twice as nginx reads and flattens it; "burst=N" reports
 * per burst (default 256).  Times are the thread's CPU time of the
 * whole loop, reports included.
 *
 * Session 5: the 4 KB allocations consolidate the fastbins that the
 * bursts of header frees fill (malloc_consolidate() in perf of (b)), but
 * mxfast0 did not help: delivery 2399 against 2410 ns per request, the
 * medians of five runs each; batch delivery 1851 against 1852 ns per
 * event.
 */


#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <librdkafka/rdkafka.h>

#include "capture_blocks.h"
#include "capture_event.h"
#include "capture_bench_event.h"


typedef struct {
    void                 *pool;
    void                 *buf;
    void                 *body;
    void                 *waiter;
} bench_req_t;


typedef struct {
    capture_blocks_t     *blocks;
    size_t                reports;
} bench_ctx_t;


static void
bench_dr(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    bench_ctx_t  *ctx = opaque;

    if (msg->payload) {
        capture_blocks_free(ctx->blocks, msg->payload);
    }

    ctx->reports++;
}


int
main(int argc, char **argv)
{
    int                   delivery, batch, i;
    char                 *payload, *p;
    size_t                len, per;
    const char           *fastbins;
    char                  errstr[512];
    double                s;
    size_t                n, j, k, h, nmsgs, burst, inflight;
    bench_ctx_t           ctx;
    bench_req_t          *reqs;
    rd_kafka_t           *rk;
    capture_msg_t        *msgs;
    struct timespec       t0, t1;
    capture_error_t       err;
    rd_kafka_conf_t      *conf;
    rd_kafka_topic_t     *rkt;
    capture_request_t     req;
    rd_kafka_headers_t   *hdrs;
    capture_msg_alloc_t   arena;

    n = 200000;
    burst = 256;
    delivery = 0;
    batch = 0;
    fastbins = "default";

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "delivery") == 0) {
            delivery = 1;

        } else if (strcmp(argv[i], "enqueue") == 0
                   || strcmp(argv[i], "default") == 0)
        {
            /* the defaults, named */

        } else if (strcmp(argv[i], "mxfast0") == 0) {
            mallopt(M_MXFAST, 0);
            fastbins = "mxfast0";

        } else if (strcmp(argv[i], "batch") == 0) {
            batch = 1;

        } else if (strncmp(argv[i], "burst=", 6) == 0) {
            burst = strtoul(argv[i] + 6, NULL, 10);

        } else {
            n = strtoul(argv[i], NULL, 10);
        }
    }

    ctx.blocks = capture_blocks_create(65536, 64);
    ctx.reports = 0;

    arena.ctx = ctx.blocks;
    arena.resize = capture_blocks_resize;
    arena.free = capture_blocks_free;

    conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr))
           != RD_KAFKA_CONF_OK)
    {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }

    rd_kafka_conf_set_opaque(conf, &ctx);
    rd_kafka_conf_set_dr_msg_cb(conf, bench_dr);

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }

    rkt = rd_kafka_topic_new(rk, "events_plugin_ingestion", NULL);

    /* bench-capture's (d): 50 events, the body flattened into a copy */
    per = batch ? 50 : 1;
    payload = malloc(64 + 50 * sizeof(BENCH_EVENT));
    if (payload == NULL) {
        return 1;
    }

    if (batch) {
        p = payload + sprintf(payload,
                              "{\"api_key\":\"phc_bench_token\",\"batch\":[");

        for (i = 0; i < 50; i++) {
            p += sprintf(p, "%s%s", i ? "," : "", BENCH_EVENT);
        }

        sprintf(p, "]}");

    } else {
        strcpy(payload, BENCH_SINGLE);
    }

    len = strlen(payload);
    reqs = calloc(burst, sizeof(bench_req_t));

    memset(&req, 0, sizeof(req));
    req.ip = "203.0.113.7";
    req.now_us = 1751367600000000LL;
    req.sent_at_us = req.now_us;
    req.has_sent_at = 1;
    req.max_message_size = CAPTURE_MAX_MESSAGE_SIZE;
    req.alloc = &arena;

    inflight = 0;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);

    for (j = 0; j < n; j++) {
        /* ngx_http_create_request()'s pool, the connection's buffer */
        reqs[inflight].pool = memalign(16, 4096);
        reqs[inflight].buf = malloc(4096);
        memset(reqs[inflight].pool, 0, 1024);

        /* a body larger than the header buffer: read into its own, copied */
        reqs[inflight].body = batch ? malloc(2 * len) : NULL;

        if (reqs[inflight].body) {
            memcpy(reqs[inflight].body, payload, len);
            memcpy((char *) reqs[inflight].body + len, payload, len);
        }

        if (capture_event_build(&req, payload, len, &msgs, &nmsgs, &err)
            != 0 || nmsgs != per)
        {
            fprintf(stderr, "build failed: %s\n", err.error);
            return 1;
        }

        reqs[inflight].waiter = delivery ? calloc(1, 120) : NULL;

        for (k = 0; k < nmsgs; k++) {
            hdrs = rd_kafka_headers_new(msgs[k].nheaders);

            for (h = 0; h < msgs[k].nheaders; h++) {
                rd_kafka_header_add(hdrs, msgs[k].headers[h].name,
                                    msgs[k].headers[h].name_len,
                                    msgs[k].headers[h].value,
                                    msgs[k].headers[h].value_len);
            }

            if (rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt),
                                  RD_KAFKA_V_MSGFLAGS(0),
                                  RD_KAFKA_V_VALUE(msgs[k].value,
                                                   msgs[k].value_len),
                                  RD_KAFKA_V_KEY(msgs[k].key,
                                                 msgs[k].key_len),
                                  RD_KAFKA_V_HEADERS(hdrs),
                                  RD_KAFKA_V_OPAQUE(NULL),
                                  RD_KAFKA_V_END)
                != RD_KAFKA_RESP_ERR_NO_ERROR)
            {
                fprintf(stderr, "producev failed\n");
                return 1;
            }

            msgs[k].value = NULL;
        }

        capture_msgs_free(msgs, nmsgs);

        if (!delivery) {
            free(reqs[inflight].body);
            free(reqs[inflight].buf);
            free(reqs[inflight].pool);

        } else {
            inflight++;
        }

        if ((j + 1) % (batch ? burst / 50 + 1 : burst)) {
            continue;
        }

        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE);
        rd_kafka_poll(rk, 0);

        for (k = 0; k < inflight; k++) {
            free(reqs[k].waiter);
            free(reqs[k].body);
            free(reqs[k].buf);
            free(reqs[k].pool);
        }

        inflight = 0;
    }

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);

    s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;

    printf("%-9s %-6s burst %4zu %-8s %6.0f ns/event  (%zu reports)\n",
           delivery ? "delivery" : "enqueue", batch ? "batch" : "single",
           burst, fastbins, s * 1e9 / (n * per), ctx.reports);

    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    capture_blocks_destroy(ctx.blocks);
    free(reqs);
    free(payload);

    return 0;
}
