/*
 * Copyright (C) edgehog
 */

/*
 * Pure-C micro-benchmark of capture_event_build(): the bench-capture
 * payloads (one ~1 KB event, a 50-event batch) without nginx or Kafka,
 * so the builder's share of a request can be profiled on its own.  Times
 * are the thread's CPU time: on a shared machine wall time mostly
 * measures the neighbours.  Each case runs with malloc() and with the
 * message arena nginx uses (capture_blocks.c).
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capture_blocks.h"
#include "capture_event.h"
#include "capture_bench_event.h"


static double bench_run(const char *name, const char *payload, size_t n,
    size_t per, const capture_msg_alloc_t *alloc);


int
main(int argc, char **argv)
{
    char                 *batch, *p;
    size_t                i, n, len;
    capture_msg_alloc_t   arena;

    n = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;

    arena.ctx = capture_blocks_create(65536, 64);
    if (arena.ctx == NULL) {
        return 1;
    }

    arena.resize = capture_blocks_resize;
    arena.free = capture_blocks_free;

    bench_run("single event", BENCH_SINGLE, n, 1, NULL);
    bench_run("  arena", BENCH_SINGLE, n, 1, &arena);

    len = sizeof("{\"api_key\":\"phc_bench_token\",\"batch\":[]}")
          + 50 * sizeof(BENCH_EVENT);
    batch = malloc(len);
    if (batch == NULL) {
        return 1;
    }

    p = batch + sprintf(batch, "{\"api_key\":\"phc_bench_token\",\"batch\":[");

    for (i = 0; i < 50; i++) {
        p += sprintf(p, "%s%s", i ? "," : "", BENCH_EVENT);
    }

    sprintf(p, "]}");

    bench_run("batch of 50", batch, n / 50, 50, NULL);
    bench_run("  arena", batch, n / 50, 50, &arena);

    free(batch);
    capture_blocks_destroy(arena.ctx);

    return 0;
}


static double
bench_run(const char *name, const char *payload, size_t n, size_t per,
    const capture_msg_alloc_t *alloc)
{
    size_t             i, nmsgs;
    double             s;
    capture_msg_t     *msgs;
    struct timespec    t0, t1;
    capture_error_t    err;
    capture_request_t  req;

    memset(&req, 0, sizeof(req));
    req.ip = "203.0.113.7";
    req.now_us = 1751367600000000LL;
    req.sent_at_us = req.now_us;
    req.has_sent_at = 1;
    req.max_message_size = CAPTURE_MAX_MESSAGE_SIZE;
    req.alloc = alloc;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);

    for (i = 0; i < n; i++) {
        if (capture_event_build(&req, payload, strlen(payload), &msgs,
                                &nmsgs, &err)
            != 0 || nmsgs != per)
        {
            fprintf(stderr, "%s: build failed: %s\n", name, err.error);
            exit(1);
        }

        capture_msgs_free(msgs, nmsgs);
    }

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);

    s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;

    printf("%-14s %8.0f ns/event  %9.0f events/s\n", name,
           s * 1e9 / (n * per), n * per / s);

    return s;
}
