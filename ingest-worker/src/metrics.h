/*
 * Copyright (C) edgehog
 */

/*
 * Prometheus text metrics of the ingest-worker, served by a small
 * thread on 127.0.0.1:metrics_port.  The consumer publishes a snapshot
 * after each batch, so the thread never reads live counters.
 */

#ifndef _WORKER_METRICS_H_INCLUDED_
#define _WORKER_METRICS_H_INCLUDED_


#include <stdint.h>


#define WORKER_METRICS_BUCKETS  8


typedef struct {
    unsigned long               events_in;
    unsigned long               events_out;
    unsigned long               dropped_unknown_token;
    unsigned long               dropped_other;
    unsigned long               dlq;
    unsigned long               overflowed;
    unsigned long               warnings;
    unsigned long               batches;
    unsigned long               batch_retries;
    unsigned long               persons_created;
    unsigned long               persons_updated;
    unsigned long               persons_merged;
    unsigned long               pg_errors;
    /* batch latency histogram, seconds */
    unsigned long               latency_buckets[WORKER_METRICS_BUCKETS];
    double                      latency_sum;
    unsigned long               latency_count;
    long long                   lag;
} worker_metrics_t;


typedef struct worker_metrics_server_s  worker_metrics_server_t;


/* NULL when port is 0 or the socket cannot be bound (logged) */
worker_metrics_server_t *worker_metrics_start(int port);
void worker_metrics_publish(worker_metrics_server_t *ms,
    const worker_metrics_t *m);
void worker_metrics_observe(worker_metrics_t *m, double seconds);
void worker_metrics_stop(worker_metrics_server_t *ms);


#endif /* _WORKER_METRICS_H_INCLUDED_ */
