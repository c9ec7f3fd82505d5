/*
 * Copyright (C) edgehog
 */

/*
 * Person processing against Postgres (spec/ingestion.md §3): creation,
 * property updates, identify/alias/merge and personless bookkeeping,
 * plus the Redis person entries ngx_decide_module reads.  The decisions
 * are the pure ingest_props_* functions; this file does the I/O.
 */

#ifndef _WORKER_PERSON_H_INCLUDED_
#define _WORKER_PERSON_H_INCLUDED_


#include <stdint.h>
#include <jansson.h>

#include "worker.h"
#include "ingest_message.h"
#include "ingest_props.h"


#define WORKER_PERSON_OK       0
/* a dependency (Postgres) is unavailable: retry the whole batch */
#define WORKER_PERSON_RETRY   -1
/* a non-retriable error for this event: DLQ it */
#define WORKER_PERSON_FAIL    -2


typedef struct worker_persons_s  worker_persons_t;

/* produces one output message; 0 or -1 */
typedef int (*worker_emit_pt)(void *data, const char *topic,
    const char *value, size_t len);
/* an ingestion warning of the team; takes ownership of details */
typedef void (*worker_warn_pt)(void *data, int64_t team_id,
    const char *type, json_t *details, int always);


typedef struct {
    char                        uuid[INGEST_PERSON_UUID_LEN + 1];
    int64_t                     created_at_us;
    json_t                     *properties;     /* owned, NULL personless */
    /*
     * instead of properties when nothing changed: their JSON text,
     * borrowed from the cache until the next call
     */
    const char                 *properties_text;
    size_t                      properties_len;
    ingest_person_mode_e        mode;
} worker_person_result_t;


/* one event of a batch, for worker_persons_prefetch() */
typedef struct {
    int64_t                     team_id;
    const char                 *distinct_id;
    unsigned                    personless:1;
    unsigned                    merge:1;        /* may read personless ids */
} worker_person_key_t;


typedef struct {
    unsigned long               created;
    unsigned long               updated;
    unsigned long               merged;
    unsigned long               pg_errors;
} worker_person_stats_t;


worker_persons_t *worker_persons_open(const worker_config_t *cf,
    worker_emit_pt emit, worker_warn_pt warn, void *data);
void worker_persons_close(worker_persons_t *ps);

/*
 * Resolves (and creates, updates, merges) the person of one prepared
 * event.  res->properties must be json_decref()ed by the caller.
 */
int worker_persons_process(worker_persons_t *ps, int64_t team_id,
    ingest_message_t *m, int64_t timestamp_us, int team_opt_out,
    worker_person_result_t *res);

/*
 * Starts a batch: applies other workers' changes to the cache, reads
 * the persons it misses in one query and records new personless ids in
 * one statement.  -1 on failure, which only costs round trips later.
 */
int worker_persons_prefetch(worker_persons_t *ps,
    const worker_person_key_t *keys, int n);
/*
 * The same in two halves on a connection of its own, so Postgres
 * answers while the caller works: _send() queries without waiting (0
 * also when nothing was to ask), _finish() takes the answer into the
 * cache, _drop() lets it go.  With early (the keys of the batch before,
 * which has no merge event and is processed between the two), those
 * keys are left out and answers the processing may have outdated are
 * not cached.  -1 on failure, as above.
 */
int worker_persons_prefetch_send(worker_persons_t *ps,
    const worker_person_key_t *keys, int n,
    const worker_person_key_t *early, int nearly);
int worker_persons_prefetch_finish(worker_persons_t *ps);
void worker_persons_prefetch_drop(worker_persons_t *ps);

/*
 * Emits the person row and the distinct id row of distinct_id again, as
 * they are now, for an event read again after its outputs failed; for a
 * merge, the rows of every distinct id of the person and of the persons
 * merged into it.  -1 on failure (the batch is retried).
 */
int worker_persons_replay(worker_persons_t *ps, int64_t team_id,
    const char *distinct_id, int merge);

/* drops every cached person: partitions were reassigned */
void worker_persons_reset(worker_persons_t *ps);

const worker_person_stats_t *worker_persons_stats(worker_persons_t *ps);


#endif /* _WORKER_PERSON_H_INCLUDED_ */
