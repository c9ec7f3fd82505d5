/*
 * Copyright (C) edgehog
 */

/*
 * Pure-C micro-benchmark of the worker's per-event transforms for
 * bench-worker's case (a): parse (fast path), prepare and the events
 * row of a personless $pageview, 2000 messages parsed before their rows
 * are built as the worker's batches do, without Kafka or Postgres.
 * Times are the thread's CPU time: on a shared machine wall time
 * mostly measures the neighbours.  The median of BENCH_ROUNDS is
 * printed with every round.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest_message.h"
#include "ingest_output.h"
#include "ingest_props.h"


#define BENCH_BATCH    2000
#define BENCH_ROUNDS   9

#define BENCH_Q10      "xxxxxxxxxx"
#define BENCH_Q200     BENCH_Q10 BENCH_Q10 BENCH_Q10 BENCH_Q10 BENCH_Q10     \
                       BENCH_Q10 BENCH_Q10 BENCH_Q10 BENCH_Q10 BENCH_Q10     \
                       BENCH_Q10 BENCH_Q10 BENCH_Q10 BENCH_Q10 BENCH_Q10     \
                       BENCH_Q10 BENCH_Q10 BENCH_Q10 BENCH_Q10 BENCH_Q10

/* what bench/worker.py's message() writes: data is JSON in a string */
static const char  bench_msg[] =
    "{\"uuid\": \"018c0b2a-0000-7000-8000-000000000001\", "
    "\"distinct_id\": \"anon-pl-123\", \"ip\": \"127.0.0.1\", "
    "\"data\": \"{\\\"event\\\": \\\"$pageview\\\", \\\"distinct_id\\\": "
    "\\\"anon-pl-123\\\", \\\"uuid\\\": "
    "\\\"018c0b2a-0000-7000-8000-000000000001\\\", \\\"timestamp\\\": "
    "\\\"2025-07-01T10:59:58.000Z\\\", \\\"properties\\\": "
    "{\\\"$current_url\\\": \\\"https://example.com/some/page?q="
    BENCH_Q200 "\\\", \\\"$browser\\\": \\\"Firefox\\\", \\\"$os\\\": "
    "\\\"Linux\\\", \\\"$screen_height\\\": 1080, \\\"$screen_width\\\": "
    "1920, \\\"$lib\\\": \\\"web\\\", \\\"$lib_version\\\": \\\"1.200.0\\\", "
    "\\\"$process_person_profile\\\": false}}\", "
    "\"now\": \"2025-07-01T11:00:00.000Z\", \"token\": \"phc_x\", "
    "\"timestamp\": \"2025-07-01T10:59:58.000Z\"}";


static double bench_round(int n);
static int bench_cmp(const void *a, const void *b);


int
main(int argc, char **argv)
{
    int     i, n;
    double  us[BENCH_ROUNDS];

    n = (argc > 1) ? atoi(argv[1]) : 0;
    n = (n > 0) ? n : 200000;

    for (i = 0; i < BENCH_ROUNDS; i++) {
        us[i] = bench_round(n);

        if (us[i] < 0) {
            return 1;
        }
    }

    printf("parse + prepare + events row, bench-worker (a)'s message:");

    for (i = 0; i < BENCH_ROUNDS; i++) {
        printf(" %.2f", us[i]);
    }

    qsort(us, BENCH_ROUNDS, sizeof(double), bench_cmp);
    printf(" us CPU/event; median %.2f\n", us[BENCH_ROUNDS / 2]);

    return 0;
}


static double
bench_round(int n)
{
    int                  i, k;
    char                *row;
    size_t               len;
    struct timespec      a, b;
    ingest_event_row_t   er;
    ingest_team_opts_t   opts;

    static ingest_message_t  ms[BENCH_BATCH];

    memset(&opts, 0, sizeof(ingest_team_opts_t));
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);

    for (i = 0; i < n; i += BENCH_BATCH) {

        for (k = 0; k < BENCH_BATCH; k++) {
            if (ingest_message_parse_fast(&ms[k], bench_msg,
                                          sizeof(bench_msg) - 1)
                != INGEST_MSG_OK)
            {
                fprintf(stderr, "parse failed\n");
                return -1;
            }

            ms[k].team_id = 1;
            ms[k].has_team_id = 1;

            (void) ingest_message_prepare(&ms[k], &opts);
        }

        for (k = 0; k < BENCH_BATCH; k++) {
            memset(&er, 0, sizeof(ingest_event_row_t));
            er.uuid = ms[k].uuid;
            er.event = ms[k].event;
            er.distinct_id = ms[k].distinct_id;
            er.properties = ms[k].properties;
            er.fast = ms[k].fast;
            er.team_id = 1;
            er.project_id = 1;
            er.timestamp_us = 1751367598000000LL;
            er.created_at_us = 1751367600000000LL;
            er.captured_at_us = INGEST_TIME_NONE;
            er.person_id = "018c0b2a-0000-5000-8000-000000000002";
            er.person_created_at_us = INGEST_PERSONLESS_CREATED_AT_US;
            er.person_mode = INGEST_PERSON_MODE_PROPERTYLESS;

            row = ingest_output_event(&er, &len);
            if (row == NULL) {
                fprintf(stderr, "no row\n");
                return -1;
            }

            free(row);
            ingest_message_free(&ms[k]);
        }
    }

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);

    return ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / n;
}


static int
bench_cmp(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}
