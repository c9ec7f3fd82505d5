/*
 * Copyright (C) edgehog
 */

/*
 * Shared declarations of the ingest-worker daemon: configuration, logging
 * and the subsystems main.c drives.  The pure transforms (ingest_*.c)
 * do not include this file.
 */

#ifndef _WORKER_H_INCLUDED_
#define _WORKER_H_INCLUDED_


#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>


typedef enum {
    WORKER_LOG_ERROR = 0,
    WORKER_LOG_WARN,
    WORKER_LOG_INFO,
    WORKER_LOG_DEBUG
} worker_log_level_e;


/* librdkafka "name value" pairs from the config, applied in order */
typedef struct {
    char                      **kv;         /* name, value, name, ... */
    int                         n;          /* pairs */
} worker_kafka_opts_t;


typedef struct {
    char                       *kafka_brokers;
    char                       *input_topic;
    char                       *group_id;
    char                       *events_topic;
    char                       *person_topic;
    char                       *distinct_id_topic;
    char                       *warnings_topic;
    char                       *dlq_topic;
    char                       *groups_topic;
    char                       *postgres_dsn;
    char                       *clickhouse_url;     /* comma-separated */
    char                       *clickhouse_cluster; /* "" = single node */
    char                       *clickhouse_kafka_brokers;
    char                       *redis_address;
    int                         batch_size;
    int                         batch_wait_ms;
    int                         team_cache_ttl_s;
    /* found teams are read again after this, so settings changes apply */
    int                         team_refresh_s;
    /* overflow (spec/ingestion.md §6) and metrics, see consumer.c */
    char                       *overflow_topic;
    int                         overflow_enabled;
    int                         overflow_bucket_capacity;
    int                         overflow_bucket_replenish_rate;
    int                         overflow_preserve_locality;
    int                         metrics_port;
    worker_log_level_e          log_level;
    worker_kafka_opts_t         producer_opts;
    worker_kafka_opts_t         consumer_opts;
} worker_config_t;


extern volatile sig_atomic_t  worker_stop;


int worker_config_load(worker_config_t *cf, const char *path);
void worker_config_free(worker_config_t *cf);

void worker_log(worker_log_level_e level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void worker_log_set_level(worker_log_level_e level);

/* pg.c */
typedef struct worker_pg_s  worker_pg_t;

worker_pg_t *worker_pg_connect(const char *dsn);
void worker_pg_close(worker_pg_t *pg);
int worker_pg_migrate(worker_pg_t *pg);
int worker_pg_team_create(worker_pg_t *pg, const char *name,
    const char *token, int64_t *id, char *token_out, size_t size);
/* flags: the team's settings the worker uses */
#define WORKER_TEAM_ANONYMIZE_IPS   0x01
#define WORKER_TEAM_PERSON_OPT_OUT  0x02

/* 1 found, 0 unknown token, -1 database error; sets *flags when found */
int worker_pg_team_lookup(worker_pg_t *pg, const char *token,
    int64_t *team_id, int *flags);
/* 0, or -1 on a database error */
int worker_pg_progress_save(worker_pg_t *pg, const char *group,
    const char *topic, const char *partitions, const char *offsets);
int worker_pg_progress_load(worker_pg_t *pg, const char *group,
    const char *topic, void (*mark)(void *data, int32_t partition,
    int64_t offset), void *data);
void worker_pg_trim_deletions(worker_pg_t *pg);
/* 0, or -1 with the error logged (what: the connection's name) */
struct pg_conn;
int worker_pg_index_plans(struct pg_conn *conn, const char *what);

/* clickhouse.c */
int worker_clickhouse_migrate(const worker_config_t *cf);

/* consumer.c */
int worker_run(const worker_config_t *cf);

/* sync.c: the flag snapshot publisher thread of `run` */
int worker_sync_start(const worker_config_t *cf);
void worker_sync_stop(void);
int worker_sync_once(const worker_config_t *cf);

/* redis.c: NULL (logged) on failure */
#define WORKER_REDIS_RETRY_S  5

struct redisContext;
struct redisReply;
struct redisContext *worker_redis_connect(const char *addr, int timeout_s,
    const char *who);
struct redisReply *worker_redis_command(struct redisContext **rc,
    time_t *retry, const char *addr, int timeout_s, const char *who,
    const char *fmt, ...);

/* hko.c: a merged-away person's hash-key overrides move in Redis */
#define WORKER_HKO_MOVED_PREFIX  "edgehog:hko:moved:"

int worker_hko_move(struct redisContext *r, int64_t team_id,
    int64_t target_id, int64_t source_id);

/* republish.c: refill a wiped Redis from Postgres (sync.c) */
#define WORKER_SYNC_MARKER_KEY  "edgehog:sync:marker"

/* 1 if the marker is gone (Redis was wiped), 0 if not, -1 on error */
int worker_republish_needed(struct redisContext *r);
/* hash-key overrides, groups, persons, then the marker; 0 or -1 */
int worker_republish_entries(void *pg, struct redisContext *r);

/* groups.c: groups of events (spec/ingestion.md §3.9) */
typedef struct worker_groups_s  worker_groups_t;
struct ingest_message_s;

/* produces one output message; 0 or -1 */
typedef int (*worker_groups_emit_pt)(void *data, const char *topic,
    const char *value, size_t len);

worker_groups_t *worker_groups_open(const worker_config_t *cf,
    worker_groups_emit_pt emit, void *data);
void worker_groups_close(worker_groups_t *gs);
/*
 * $groups -> $group_<index>, and $groupidentify; only for events with
 * person processing.  replay: the event is read again after its outputs
 * failed, its group row is emitted even when unchanged.  0 done, -1
 * dependency down (retry the batch), -2 DLQ the event
 */
int worker_groups_process(worker_groups_t *gs, int64_t team_id,
    struct ingest_message_s *m, int64_t timestamp_us, int replay);

/* team_limits.c: team settings that drop events (drop_events_older_...) */
typedef struct worker_team_limits_s  worker_team_limits_t;

worker_team_limits_t *worker_team_limits_open(const worker_config_t *cf);
void worker_team_limits_close(worker_team_limits_t *tl);
/*
 * 1: drop the event, *details = event_dropped_too_old details (owned by
 * the caller); 0: keep it; -1: Postgres is down, retry the batch
 */
struct json_t;
int worker_team_too_old(worker_team_limits_t *tl, int64_t team_id,
    struct ingest_message_s *m, int64_t ts_us, int64_t now_us,
    struct json_t **details);

/* admin.c */
int worker_cmd_flag(const worker_config_t *cf, int argc, char **argv);


#endif /* _WORKER_H_INCLUDED_ */
