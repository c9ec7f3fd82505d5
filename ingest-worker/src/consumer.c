/*
 * Copyright (C) edgehog
 */


#define _GNU_SOURCE  /* memmem() */

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "worker.h"
#include "eh_time.h"
#include "ingest_message.h"
#include "ingest_output.h"
#include "ingest_props.h"
#include "person.h"
#include "metrics.h"
#include "ingest_overflow.h"


#define WORKER_DELIVERY_WAIT_MS  100
#define WORKER_RETRY_BACKOFF_MS  1000
/* §4.4: debounced warnings pass once per team and type per hour */
#define WORKER_WARN_DEBOUNCE_S   3600
/* bounded memory for per-key state: forgotten wholesale when full */
#define WORKER_STATE_MAX         1000000
#define WORKER_STAGE_LOG_S       10


enum {
    WORKER_STAGE_COLLECT = 0,
    WORKER_STAGE_PARSE,
    WORKER_STAGE_PERSONS,
    WORKER_STAGE_PROCESS,
    WORKER_STAGE_DELIVERY,
    WORKER_STAGE_COMMIT,
    WORKER_STAGE_N
};


/* one message of the batch between the parse and the process passes */
typedef struct {
    ingest_message_t            m;
    int64_t                     team_id;
    int64_t                     ts;         /* resolved timestamp, µs */
    int                         flags;      /* WORKER_TEAM_* */
    unsigned                    event:1;    /* persons and a row to do */
} worker_item_t;


/*
 * A batch goes through three stages: collected and parsed (its persons
 * query sent to Postgres), then processed (its outputs produced), then
 * pending: its offsets are committed once its delivery reports
 * (counted here through the message opaque) are all in.  While one
 * batch waits for Postgres and others for their acks, the next one is
 * read and parsed.  Up to WORKER_PENDING batches wait for acks, so the
 * loop does not stall on the broker's round trip (nor on the producer's
 * linger, which saves the broker requests); they commit in order.
 */

typedef struct {
    rd_kafka_message_t        **msgs;
    worker_item_t              *items;
    char                       *overflow;   /* per message */
    worker_person_key_t        *keys;       /* of its events */
    int                         nkeys;
    unsigned                    merges:1;   /* one of them may merge */
    unsigned                    asked:1;    /* its persons query sent */
    unsigned                    saved:1;    /* worker_progress_save */
    int                         n;
    long                        in_flight;
    long                        failed;
    long                        too_large;  /* refused by the broker */
    int64_t                     start;
} worker_batch_t;

#define WORKER_PENDING  32
#define WORKER_BATCHES  (WORKER_PENDING + 2)


typedef struct {
    int32_t                     partition;
    int64_t                     until;
} worker_replay_t;

/* the input topic's partitions a worker may hold at once */
#define WORKER_REPLAY_MAX  1024

#define WORKER_TRIM_PERIOD_S  3600


typedef struct {
    const worker_config_t      *cf;
    rd_kafka_t                 *consumer;
    rd_kafka_t                 *producer;
    worker_pg_t                *pg;
    json_t                     *teams;       /* token -> [id, anon, exp] */
    json_t                     *warned;      /* "team:type" -> last time */
    worker_persons_t           *persons;
    worker_groups_t            *groups;
    worker_team_limits_t       *limits;
    ingest_buckets_t           *buckets;     /* per Kafka key */
    /* the plan's input: a batch's keys, key lengths, message times */
    const char                **bkeys;
    size_t                     *blens;
    int64_t                    *bts;
    json_t                     *lags;        /* "topic/part" -> lag */
    worker_metrics_t            metrics;
    worker_metrics_server_t    *metrics_server;
    unsigned long               unknown_token;
    worker_batch_t              batches[WORKER_BATCHES];
    worker_batch_t             *acct;        /* what produce counts on */
    worker_batch_t             *work;        /* parsed, persons asked */
    /* produced, not committed: oldest first */
    worker_batch_t             *pend[WORKER_PENDING];
    int                         npend;
    worker_batch_t             *collect;     /* being read (its n grows) */

    /*
     * Per input partition, the last offset read again after a failure:
     * up to there, person and distinct id rows are emitted again
     * (worker_persons_replay)
     */
    worker_replay_t             replay[WORKER_REPLAY_MAX];
    int                         nreplay;
    time_t                      trim_at;    /* worker_pg_trim_deletions */

    /*
     * The broker refused a produce request as too large (a topic whose
     * max.message.bytes is below the producer's message.max.bytes).
     * librdkafka fails every message of that request alike, so the
     * batch is read again and produced one message per request: only
     * the culprit fails then, and it is dropped like one refused
     * locally, instead of the batch being retried for ever.
     */
    unsigned                    solo:1;
    rd_kafka_resp_err_t         solo_err;
    unsigned long               events_out;
    unsigned long               dropped;
    unsigned long               dlq;

    /* where a batch's time goes, logged every WORKER_STAGE_LOG_S */
    int64_t                     stage[WORKER_STAGE_N];
    int64_t                     stage_total[WORKER_STAGE_N];
    int64_t                     stage_start;
    int64_t                     stage_mark;
    int64_t                     stage_logged;
    unsigned long               stage_events;
} worker_ctx_t;


typedef enum {
    WORKER_OK = 0,
    WORKER_RETRY                 /* a dependency failed: redo the batch */
} worker_rc_e;


static rd_kafka_t *worker_kafka_new(const worker_config_t *cf,
    rd_kafka_type_t type, worker_ctx_t *ctx);
static worker_rc_e worker_parse(worker_ctx_t *ctx, rd_kafka_message_t *msg,
    worker_item_t *it);
static worker_rc_e worker_process(worker_ctx_t *ctx, rd_kafka_message_t *msg,
    worker_item_t *it);
static void worker_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *parts, void *opaque);
static int worker_team(worker_ctx_t *ctx, const char *token,
    int64_t *team_id, int *flags);
static int worker_produce(worker_ctx_t *ctx, const char *topic,
    const char *key, size_t klen, const char *value, size_t len);
static int worker_produce_flags(worker_ctx_t *ctx, const char *topic,
    const char *key, size_t klen, char *value, size_t len, int flags);
static int worker_collect(worker_ctx_t *ctx, worker_batch_t *b);
static worker_rc_e worker_parse_batch(worker_ctx_t *ctx, worker_batch_t *b);
static int worker_finish_work(worker_ctx_t *ctx, worker_batch_t *next,
    int parsed);
static worker_batch_t *worker_free_batch(worker_ctx_t *ctx);
static void worker_batch_drop(worker_batch_t *b);
static void worker_revoke(worker_ctx_t *ctx,
    rd_kafka_topic_partition_list_t *revoked);
static void worker_replay_mark(worker_ctx_t *ctx, rd_kafka_message_t **msgs,
    int n);
static int worker_replaying(worker_ctx_t *ctx, rd_kafka_message_t *msg,
    int forget);
static void worker_replay_until(worker_ctx_t *ctx, int32_t partition,
    int64_t offset);
static int worker_progress_save(worker_ctx_t *ctx, worker_batch_t *b);
static void worker_progress_mark(void *data, int32_t partition,
    int64_t offset);
static int worker_replay_persons(worker_ctx_t *ctx, int64_t team_id,
    ingest_message_t *m);
static int worker_wait_deliveries(worker_ctx_t *ctx, worker_batch_t *b);
static int worker_settle(worker_ctx_t *ctx, worker_batch_t *b,
    worker_batch_t **later, int nlater, int async);
static int worker_settle_pending(worker_ctx_t *ctx, int all,
    worker_batch_t *b, worker_batch_t *next, int async);
static void worker_commit(worker_ctx_t *ctx, rd_kafka_message_t **batch,
    int n, int async);
static void worker_rewind(worker_ctx_t *ctx, rd_kafka_message_t **batch,
    int n);
static void worker_dr(rd_kafka_t *rk, const rd_kafka_message_t *msg,
    void *opaque);
static int64_t worker_now_us(void);
static int worker_emit(void *data, const char *topic, const char *value,
    size_t len);
static void worker_warn(void *data, int64_t team_id, const char *type,
    json_t *details, int always);
static void worker_warn_keyed(worker_ctx_t *ctx, int64_t team_id,
    const char *type, const char *key, json_t *details, int always);
static void worker_warnings(worker_ctx_t *ctx, ingest_message_t *m,
    int64_t team_id);
static int worker_header_true(rd_kafka_message_t *msg, const char *name);
static int64_t worker_timestamp(worker_ctx_t *ctx, rd_kafka_message_t *msg,
    ingest_message_t *m, int64_t team_id);
static worker_rc_e worker_dlq(worker_ctx_t *ctx, rd_kafka_message_t *msg,
    const char *uuid);
static void worker_overflow_plan(worker_ctx_t *ctx, worker_batch_t *b);
static worker_rc_e worker_overflow(worker_ctx_t *ctx,
    rd_kafka_message_t *msg);
static void worker_prefetch(worker_ctx_t *ctx, worker_batch_t *b);
static void worker_batch_metrics(worker_ctx_t *ctx,
    rd_kafka_message_t **batch, int n, int committed, int64_t start);
static void worker_backoff(int ms);
static void worker_stage(worker_ctx_t *ctx, int stage);
static void worker_stage_log(worker_ctx_t *ctx, int n);


int
worker_run(const worker_config_t *cf)
{
    int                          i, n;
    worker_ctx_t                 ctx;
    worker_rc_e                  rc;
    worker_batch_t              *cur;
    rd_kafka_resp_err_t          err;
    rd_kafka_topic_partition_list_t  *topics;

    memset(&ctx, 0, sizeof(worker_ctx_t));
    ctx.cf = cf;
    ctx.teams = json_object();
    ctx.warned = json_object();
    ctx.buckets = ingest_buckets_new(WORKER_STATE_MAX);
    ctx.bkeys = calloc(cf->batch_size, sizeof(char *));
    ctx.blens = calloc(cf->batch_size, sizeof(size_t));
    ctx.bts = calloc(cf->batch_size, sizeof(int64_t));
    ctx.lags = json_object();
    ctx.metrics_server = worker_metrics_start(cf->metrics_port);

    n = 1;

    for (i = 0; i < WORKER_BATCHES; i++) {
        ctx.batches[i].msgs = calloc(cf->batch_size,
                                     sizeof(rd_kafka_message_t *));
        ctx.batches[i].items = calloc(cf->batch_size, sizeof(worker_item_t));
        ctx.batches[i].overflow = calloc(cf->batch_size, 1);
        ctx.batches[i].keys = calloc(cf->batch_size,
                                     sizeof(worker_person_key_t));

        if (ctx.batches[i].msgs == NULL || ctx.batches[i].items == NULL
            || ctx.batches[i].overflow == NULL || ctx.batches[i].keys == NULL)
        {
            n = 0;
        }
    }

    cur = &ctx.batches[0];

    /*
     * Postgres may come up after the worker (or be restarting): wait for
     * it rather than exit, as an outage later is waited out too
     */
    while ((ctx.pg = worker_pg_connect(cf->postgres_dsn)) == NULL
           && !worker_stop)
    {
        worker_log(WORKER_LOG_WARN, "waiting for postgres");
        worker_backoff(WORKER_RETRY_BACKOFF_MS);
    }

    ctx.producer = worker_kafka_new(cf, RD_KAFKA_PRODUCER, &ctx);
    ctx.consumer = worker_kafka_new(cf, RD_KAFKA_CONSUMER, &ctx);
    ctx.persons = worker_persons_open(cf, worker_emit, worker_warn, &ctx);
    ctx.groups = worker_groups_open(cf, worker_emit, &ctx);
    ctx.limits = worker_team_limits_open(cf);

    if (n == 0
        || ctx.teams == NULL || ctx.pg == NULL
        || ctx.warned == NULL || ctx.persons == NULL || ctx.groups == NULL
        || ctx.limits == NULL
        || ctx.buckets == NULL || ctx.lags == NULL || ctx.bkeys == NULL
        || ctx.blens == NULL || ctx.bts == NULL
        || (cf->metrics_port && ctx.metrics_server == NULL)
        || ctx.producer == NULL || ctx.consumer == NULL)
    {
        worker_log(WORKER_LOG_ERROR, "worker start failed");
        return 1;
    }

    rd_kafka_poll_set_consumer(ctx.consumer);

    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, cf->input_topic,
                                      RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(ctx.consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);

    if (err) {
        worker_log(WORKER_LOG_ERROR, "subscribe to \"%s\" failed: %s",
                   cf->input_topic, rd_kafka_err2str(err));
        return 1;
    }

    worker_log(WORKER_LOG_INFO, "consuming \"%s\" as group \"%s\"",
               cf->input_topic, cf->group_id);

    while (!worker_stop) {

        if (time(NULL) >= ctx.trim_at) {
            worker_pg_trim_deletions(ctx.pg);
            ctx.trim_at = time(NULL) + WORKER_TRIM_PERIOD_S;
        }

        n = worker_collect(&ctx, cur);

        rc = WORKER_OK;

        if (n || ctx.work) {
            worker_stage(&ctx, WORKER_STAGE_COLLECT);
        }

        if (n) {
            /* parsed while Postgres answers the persons of ctx.work */
            rc = worker_parse_batch(&ctx, cur);
            worker_stage(&ctx, WORKER_STAGE_PARSE);

        } else if (ctx.work == NULL) {
            ctx.stage_mark = worker_now_us();
            continue;
        }

        if (ctx.work
            && worker_finish_work(&ctx, n ? cur : NULL, rc == WORKER_OK)
               != 0)
        {
            /* cur is read again with the batches before it */
            continue;
        }

        if (n == 0) {
            continue;
        }

        if (rc != WORKER_OK) {
            /* its outputs so far must report before it is read again */
            cur->failed++;
            (void) worker_settle(&ctx, cur, NULL, 0, 1);

        } else {
            if (!cur->asked) {
                /* answered while the next batch is read and parsed */
                (void) worker_persons_prefetch_send(ctx.persons, cur->keys,
                                                    cur->nkeys, NULL, 0);
            }

            ctx.work = cur;
            cur = worker_free_batch(&ctx);
        }

        worker_stage(&ctx, WORKER_STAGE_PERSONS);
        worker_stage_log(&ctx, n);
    }

    /* SIGTERM: the batches read are finished and committed */
    if (ctx.work) {
        (void) worker_finish_work(&ctx, NULL, 0);
    }

    (void) worker_settle_pending(&ctx, 1, NULL, NULL, 0);

    worker_log(WORKER_LOG_INFO, "stopping: %lu events out, %lu dropped, "
               "%lu to DLQ", ctx.events_out, ctx.dropped, ctx.dlq);

    /* the whole run's shares */
    memcpy(ctx.stage, ctx.stage_total, sizeof(ctx.stage));
    ctx.stage_logged = ctx.stage_start;
    ctx.stage_events = ctx.metrics.events_in;
    worker_stage_log(&ctx, 0);

    rd_kafka_consumer_close(ctx.consumer);
    rd_kafka_destroy(ctx.consumer);
    rd_kafka_flush(ctx.producer, 10000);
    rd_kafka_destroy(ctx.producer);
    worker_pg_close(ctx.pg);
    worker_persons_close(ctx.persons);
    worker_groups_close(ctx.groups);
    worker_team_limits_close(ctx.limits);
    worker_metrics_stop(ctx.metrics_server);
    json_decref(ctx.teams);
    json_decref(ctx.warned);
    ingest_buckets_free(ctx.buckets);
    free(ctx.bkeys);
    free(ctx.blens);
    free(ctx.bts);
    json_decref(ctx.lags);

    for (i = 0; i < WORKER_BATCHES; i++) {
        free(ctx.batches[i].msgs);
        free(ctx.batches[i].items);
        free(ctx.batches[i].overflow);
        free(ctx.batches[i].keys);
    }

    return 0;
}


/*
 * A batch: up to batch_size messages or batch_wait_ms after the first
 * one.  One rd_kafka_consumer_poll() per message (about 2.5% of the
 * worker's CPU in bench (a)), not rd_kafka_consume_batch_queue(): that
 * one may call the rebalance callback in the middle of filling its
 * array, and the messages it then returns are in no batch that
 * worker_revoke() lets go or rewinds.  With a parsed batch waiting, an empty consumer queue ends the
 * wait at once: that batch is not held back for company.
 */

static int
worker_collect(worker_ctx_t *ctx, worker_batch_t *b)
{
    int64_t               deadline;
    rd_kafka_message_t   *msg;

    /*
     * b->n counts as the messages come: a rebalance (called from the
     * poll) may drop them, and the batch starts again from nothing
     */
    b->n = 0;
    ctx->collect = b;
    deadline = 0;

    while (b->n < ctx->cf->batch_size && !worker_stop) {
        msg = rd_kafka_consumer_poll(ctx->consumer,
                                     b->n ? 10 : (ctx->work ? 0 : 200));

        if (msg == NULL) {
            if (b->n && worker_now_us() >= deadline) {
                break;
            }

            if (b->n == 0 && ctx->work) {
                break;
            }

            /* idle: the pending batches need no company to commit */
            if (b->n == 0 && ctx->npend) {
                (void) worker_settle_pending(ctx, 1, NULL, NULL, 1);
            }

            continue;
        }

        if (msg->err) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                worker_log(WORKER_LOG_WARN, "consumer: %s",
                           rd_kafka_message_errstr(msg));
            }

            rd_kafka_message_destroy(msg);
            continue;
        }

        if (b->n == 0) {
            deadline = worker_now_us() + ctx->cf->batch_wait_ms * 1000LL;
        }

        b->msgs[b->n++] = msg;

        if (worker_now_us() >= deadline) {
            break;
        }
    }

    ctx->collect = NULL;

    return b->n;
}


/*
 * Everything first that needs no person, so the persons of the batch
 * are read (and its personless ids written) in one round trip
 */

static worker_rc_e
worker_parse_batch(worker_ctx_t *ctx, worker_batch_t *b)
{
    int          i;
    worker_rc_e  rc;

    b->in_flight = 0;
    b->failed = 0;
    b->too_large = 0;
    b->start = worker_now_us();
    ctx->acct = b;

    memset(b->overflow, 0, b->n);

    if (ctx->cf->overflow_enabled) {
        worker_overflow_plan(ctx, b);
    }

    memset(b->items, 0, b->n * sizeof(worker_item_t));

    b->saved = 0;
    rc = WORKER_OK;

    for (i = 0; i < b->n && rc == WORKER_OK; i++) {
        if (!b->overflow[i]) {
            rc = worker_parse(ctx, b->msgs[i], &b->items[i]);
        }
    }

    b->asked = 0;

    if (rc == WORKER_OK) {
        worker_prefetch(ctx, b);
    }

    return rc;
}


/*
 * The parsed batch (ctx->work) gets its persons and its outputs; the
 * batch before it is committed once acked.  next: the batch parsed
 * meanwhile (parsed: without failure), read again too when these are.
 * 0, or -1 when the batches were rewound (next included).
 */

static int
worker_finish_work(worker_ctx_t *ctx, worker_batch_t *next, int parsed)
{
    int              i;
    worker_rc_e      rc;
    worker_batch_t  *b;

    b = ctx->work;
    ctx->work = NULL;

    /* a failure only costs the events their own round trips */
    (void) worker_persons_prefetch_finish(ctx->persons);

    /*
     * next's persons are asked for while this batch is processed, but
     * for the ids this one has: their persons it may change (and a
     * merge may move any id: then they are asked for afterwards)
     */
    if (next && parsed && !b->merges) {
        (void) worker_persons_prefetch_send(ctx->persons, next->keys,
                                            next->nkeys, b->keys, b->nkeys);
        next->asked = 1;
    }

    worker_stage(ctx, WORKER_STAGE_PERSONS);

    ctx->acct = b;
    rc = WORKER_OK;

    /*
     * one message after the other in offset order: events of one
     * token:distinct_id (one partition) keep their Kafka order
     */
    for (i = 0; i < b->n && rc == WORKER_OK; i++) {
        if (b->overflow[i]) {
            rc = worker_overflow(ctx, b->msgs[i]);

        } else if (b->items[i].event) {
            rc = worker_process(ctx, b->msgs[i], &b->items[i]);
        }
    }

    for (i = 0; i < b->n; i++) {
        ingest_message_free(&b->items[i].m);
    }

    /* produce from here on counts on the batch parsed next */
    ctx->acct = next ? next : b;

    worker_stage(ctx, WORKER_STAGE_PROCESS);

    /*
     * offsets move only once every output of a batch is acked: the
     * earlier batches' acks came in while this one was processed (a
     * failed one is read again after all of those)
     */

    if (worker_settle_pending(ctx, rc != WORKER_OK, b, next, 1) != 0) {
        /* rewound to a pending batch: the later ones are read again */
        worker_persons_prefetch_drop(ctx->persons);
        worker_stage(ctx, WORKER_STAGE_DELIVERY);
        return -1;
    }

    worker_stage(ctx, WORKER_STAGE_DELIVERY);

    if (rc != WORKER_OK) {
        /* its outputs so far must report before it is read again */
        b->failed++;
        (void) worker_settle(ctx, b, &next, next ? 1 : 0, 1);
        worker_persons_prefetch_drop(ctx->persons);
        worker_stage(ctx, WORKER_STAGE_COMMIT);
        return next ? -1 : 0;
    }

    /* worker_settle_pending() left room */
    ctx->pend[ctx->npend++] = b;
    worker_stage(ctx, WORKER_STAGE_COMMIT);

    return 0;
}


static worker_batch_t *
worker_free_batch(worker_ctx_t *ctx)
{
    int  i, j;

    for (i = 0; i < WORKER_BATCHES; i++) {
        if (&ctx->batches[i] == ctx->work) {
            continue;
        }

        for (j = 0; j < ctx->npend; j++) {
            if (ctx->pend[j] == &ctx->batches[i]) {
                break;
            }
        }

        if (j == ctx->npend) {
            return &ctx->batches[i];
        }
    }

    /* not reached: slots for collecting, work and every pending one */
    return &ctx->batches[0];
}


/* its parsed events and messages are let go (nothing committed here) */

static void
worker_batch_drop(worker_batch_t *b)
{
    int  i;

    for (i = 0; i < b->n; i++) {
        ingest_message_free(&b->items[i].m);
        rd_kafka_message_destroy(b->msgs[i]);
    }

    b->n = 0;
}


static rd_kafka_t *
worker_kafka_new(const worker_config_t *cf, rd_kafka_type_t type,
    worker_ctx_t *ctx)
{
    char                        errstr[512];
    size_t                      i;
    rd_kafka_t                 *rk;
    rd_kafka_conf_t            *conf;
    const worker_kafka_opts_t  *o;

    /*
     * outputs are acked while the next batches are processed
     * (WORKER_PENDING of them).  linger.ms 20 instead of 5: fewer,
     * larger produce requests roughly halve the broker's CPU per event
     * (bench-worker A/B: (a) 1.7-2.0 us/event against 2.8-3.2, (d)
     * 85-98 us/merge against ~190); the 10-15% slower merges once
     * blamed on it were the bench's first-(d)-run effect, gone with its
     * untimed merges: (d) 1299/1087 against 1137/1443 merges/s.
     * compression.codec lz4 stays too: a Kafka-only experiment with rows
     * of bench (a)'s size at 50k/s (warmed broker) cost the broker 1.8-2.3
     * us per row with lz4, 2.3-2.4 with zstd (and the producer 1 us more)
     * and 3.3-7 with none (more bytes to take in and validate).
     */
    static const char  *producer_opts[][2] = {
        { "acks", "all" },
        { "linger.ms", "20" },
        { "batch.num.messages", "10000" },
        { "enable.idempotence", "true" },
        { "compression.codec", "lz4" },
        { NULL, NULL }
    };

    /* offsets are committed by hand after the outputs are acknowledged */
    static const char  *consumer_opts[][2] = {
        { "enable.auto.commit", "false" },
        { "enable.auto.offset.store", "false" },
        { "auto.offset.reset", "earliest" },
        /* a killed worker's partitions move on within seconds */
        { "session.timeout.ms", "10000" },
        { "heartbeat.interval.ms", "1000" },
        { NULL, NULL }
    };

    const char  *(*opts)[2];

    conf = rd_kafka_conf_new();
    opts = (type == RD_KAFKA_PRODUCER) ? producer_opts : consumer_opts;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", cf->kafka_brokers,
                          errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK
        || (type == RD_KAFKA_CONSUMER
            && rd_kafka_conf_set(conf, "group.id", cf->group_id, errstr,
                                 sizeof(errstr)) != RD_KAFKA_CONF_OK))
    {
        worker_log(WORKER_LOG_ERROR, "kafka config: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }

    for (i = 0; opts[i][0]; i++) {
        if (rd_kafka_conf_set(conf, opts[i][0], opts[i][1], errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK)
        {
            worker_log(WORKER_LOG_ERROR, "kafka config: %s", errstr);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }

    /* the config's own come last, so they win */
    o = (type == RD_KAFKA_PRODUCER) ? &cf->producer_opts : &cf->consumer_opts;

    for (i = 0; i < (size_t) o->n; i++) {
        if (rd_kafka_conf_set(conf, o->kv[i * 2], o->kv[i * 2 + 1], errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK)
        {
            worker_log(WORKER_LOG_ERROR, "kafka config: %s", errstr);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }

    rd_kafka_conf_set_opaque(conf, ctx);

    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set_dr_msg_cb(conf, worker_dr);

    } else {
        rd_kafka_conf_set_rebalance_cb(conf, worker_rebalance);
    }

    rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        worker_log(WORKER_LOG_ERROR, "rd_kafka_new() failed: %s", errstr);
    }

    return rk;
}


/*
 * Parse, team, prepare (spec §1): what needs no person.  Drops, DLQ
 * copies and warnings happen here; it->event tells whether persons and
 * a row remain to do.
 */

static worker_rc_e
worker_parse(worker_ctx_t *ctx, rd_kafka_message_t *msg, worker_item_t *it)
{
    int                  rc, flags;
    json_t              *d;
    int64_t              team_id, ts;
    ingest_msg_rc_e      mrc;
    ingest_message_t    *m;
    ingest_team_opts_t   opts;

    m = &it->m;

    mrc = ingest_message_parse_fast(m, msg->payload, msg->len);

    if (mrc == INGEST_MSG_DLQ) {
        /* the original bytes, so nothing is lost to a parser bug */
        worker_log(WORKER_LOG_INFO, "message to DLQ: %s", m->error);
        ingest_message_free(m);

        return worker_dlq(ctx, msg, NULL);
    }

    rc = m->token ? worker_team(ctx, m->token, &team_id, &flags) : 0;

    if (rc < 0) {
        return WORKER_RETRY;
    }

    if (rc == 0) {
        ctx->dropped++;
        ctx->unknown_token++;
        ingest_message_free(m);
        return WORKER_OK;
    }

    memset(&opts, 0, sizeof(ingest_team_opts_t));
    opts.anonymize_ips = (flags & WORKER_TEAM_ANONYMIZE_IPS) != 0;
    opts.person_processing_opt_out = (flags & WORKER_TEAM_PERSON_OPT_OUT) != 0;
    /*
     * the header can only turn person processing off: not looked for
     * in an event that does so itself.  librdkafka parses a message's
     * headers into a list of allocations on first access: 2.4% of the
     * worker's samples in bench-worker (a), whose messages carry none
     * (capture's carry several)
     */
    opts.force_personless = !ingest_message_personless(m)
                            && worker_header_true(msg,
                                   "force_disable_person_processing");

    m->team_id = team_id;
    m->has_team_id = 1;

    /* hook: the overflow consumer tells the team, G2-style (spec §6) */
    if (!ctx->cf->overflow_enabled) {
        worker_warn_keyed(ctx, team_id, "ingestion_capacity_overflow",
                          m->distinct_id,
                          json_pack("{s:s}", "overflowDistinctId",
                                    m->distinct_id), 0);
    }

    mrc = ingest_message_prepare(m, &opts);

    /* drops and warning-only events still carry their warnings */
    worker_warnings(ctx, m, team_id);

    if (mrc != INGEST_MSG_OK
        || (m->route != INGEST_ROUTE_EVENT
            && m->route != INGEST_ROUTE_EXCEPTION))
    {
        ctx->dropped++;
        ingest_message_free(m);
        return WORKER_OK;
    }

    ts = worker_timestamp(ctx, msg, m, team_id);

    /* hook: team.drop_events_older_than_seconds (team_limits.c, §1.4) */
    rc = worker_team_too_old(ctx->limits, team_id, m, ts, worker_now_us(),
                             &d);
    if (rc != 0) {
        if (rc > 0) {
            worker_warn(ctx, team_id, "event_dropped_too_old", d, 0);
            ctx->dropped++;
        }

        ingest_message_free(m);
        return rc > 0 ? WORKER_OK : WORKER_RETRY;
    }

    if (m->process_person && !ctx->acct->saved
        && worker_progress_save(ctx, ctx->acct) != 0)
    {
        ingest_message_free(m);
        return WORKER_RETRY;
    }

    /* hook: $group_N properties, $groupidentify upserts (groups.c) */
    if (m->process_person) {
        rc = worker_groups_process(ctx->groups, team_id, m, ts,
                                   ctx->nreplay
                                   && worker_replaying(ctx, msg, 0));

        if (rc != 0) {
            rc = (rc == -1) ? WORKER_RETRY : worker_dlq(ctx, msg, m->uuid);
            ingest_message_free(m);
            return rc;
        }
    }

    it->team_id = team_id;
    it->flags = flags;
    it->ts = ts;
    it->event = 1;

    return WORKER_OK;
}


/* persons (spec §3), then the events row (§4.1) */

static worker_rc_e
worker_process(worker_ctx_t *ctx, rd_kafka_message_t *msg, worker_item_t *it)
{
    int                      rc;
    char                    *row;
    size_t                   len;
    int64_t                  team_id, ts;
    ingest_message_t        *m;
    ingest_event_row_t       er;
    worker_person_result_t   person;

    m = &it->m;
    team_id = it->team_id;
    ts = it->ts;

    rc = worker_persons_process(ctx->persons, team_id, m, ts,
                                (it->flags & WORKER_TEAM_PERSON_OPT_OUT) != 0,
                                &person);

    if (rc == WORKER_PERSON_RETRY) {
        return WORKER_RETRY;
    }

    if (rc == WORKER_PERSON_FAIL) {
        worker_log(WORKER_LOG_WARN, "person processing failed for event "
                   "%s: to DLQ", m->uuid);
        return worker_dlq(ctx, msg, m->uuid);
    }

    if (ctx->nreplay && m->process_person && worker_replaying(ctx, msg, 1)
        && worker_replay_persons(ctx, team_id, m) != 0)
    {
        json_decref(person.properties);
        return WORKER_RETRY;
    }

    memset(&er, 0, sizeof(ingest_event_row_t));
    er.uuid = m->uuid;
    er.event = m->event;
    er.distinct_id = m->distinct_id;
    er.properties = m->properties;
    er.fast = m->fast;
    er.team_id = team_id;
    er.project_id = team_id;
    er.timestamp_us = ts;
    er.created_at_us = worker_now_us();
    er.captured_at_us = INGEST_TIME_NONE;
    er.person_id = person.uuid;
    er.person_properties = person.properties;
    er.person_properties_text = person.properties_text;
    er.person_properties_len = person.properties_len;
    er.person_created_at_us = person.created_at_us;
    er.person_mode = person.mode;
    er.historical_migration = m->historical_migration;

    row = ingest_output_event(&er, &len);
    json_decref(person.properties);

    if (row == NULL) {
        ctx->dropped++;
        return WORKER_OK;
    }

    /* events are keyed by uuid, as PostHog's ingestion does */
    rc = worker_produce_flags(ctx, ctx->cf->events_topic, m->uuid,
                              strlen(m->uuid), row, len, RD_KAFKA_MSG_F_FREE);

    /* hook: §4.1 a row too large for Kafka is dropped with a warning */
    if (rc == -2) {
        worker_warn(ctx, team_id, "message_size_too_large",
                    json_pack("{s:s, s:s}", "eventUuid", m->uuid,
                              "distinctId", m->distinct_id), 0);
        ctx->dropped++;
        return WORKER_OK;
    }

    if (rc != 0) {
        return WORKER_RETRY;
    }

    ctx->events_out++;

    return WORKER_OK;
}


/* §4.5: original bytes and key, header event-id when known */

static worker_rc_e
worker_dlq(worker_ctx_t *ctx, rd_kafka_message_t *msg, const char *uuid)
{
    rd_kafka_resp_err_t   err;
    rd_kafka_headers_t   *hdrs;

    hdrs = rd_kafka_headers_new(1);

    if (uuid) {
        rd_kafka_header_add(hdrs, "event-id", -1, uuid, -1);
    }

    err = rd_kafka_producev(ctx->producer,
                            RD_KAFKA_V_TOPIC(ctx->cf->dlq_topic),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_VALUE(msg->payload, msg->len),
                            RD_KAFKA_V_KEY(msg->key, msg->key_len),
                            RD_KAFKA_V_HEADERS(hdrs),
                            RD_KAFKA_V_OPAQUE(ctx->acct),
                            RD_KAFKA_V_END);
    if (err) {
        /* producev() owns the headers only on success */
        rd_kafka_headers_destroy(hdrs);
        worker_log(WORKER_LOG_ERROR, "produce to \"%s\" failed: %s",
                   ctx->cf->dlq_topic, rd_kafka_err2str(err));
        return WORKER_RETRY;
    }

    ctx->acct->in_flight++;
    ctx->dlq++;

    return WORKER_OK;
}


static int
worker_emit(void *data, const char *topic, const char *value, size_t len)
{
    return worker_produce(data, topic, NULL, 0, value, len);
}


/* §4.4: stamped with the team, debounced unless always sent */

static void
worker_warn(void *data, int64_t team_id, const char *type, json_t *details,
    int always)
{
    worker_warn_keyed(data, team_id, type, NULL, details, always);
}


/* debounced per team:type, or per team:type:key when a key is given */

static void
worker_warn_keyed(worker_ctx_t *ctx, int64_t team_id, const char *type,
    const char *dkey, json_t *details, int always)
{
    char           key[512], *v;
    size_t         len;
    int64_t        now;
    json_t        *last;

    now = worker_now_us();

    if (!always) {
        snprintf(key, sizeof(key), "%lld:%s%s%.256s", (long long) team_id,
                 type, dkey ? ":" : "", dkey ? dkey : "");

        if (json_object_size(ctx->warned) > WORKER_STATE_MAX) {
            json_object_clear(ctx->warned);
        }

        last = json_object_get(ctx->warned, key);

        if (last && now / 1000000 - json_integer_value(last)
                    < WORKER_WARN_DEBOUNCE_S)
        {
            json_decref(details);
            return;
        }

        json_object_set_new(ctx->warned, key,
                            json_integer(now / 1000000));
    }

    v = ingest_output_warning(team_id, type, details, now, &len);
    json_decref(details);

    if (v == NULL) {
        return;
    }

    /* fire and forget in PostHog; here it is acked with the batch */
    if (worker_produce(ctx, ctx->cf->warnings_topic, NULL, 0, v, len) == 0) {
        ctx->metrics.warnings++;
    }
    free(v);
}


static void
worker_warnings(worker_ctx_t *ctx, ingest_message_t *m, int64_t team_id)
{
    int  i;

    for (i = 0; i < m->nwarnings; i++) {
        worker_warn(ctx, team_id, m->warnings[i].type,
                    m->warnings[i].details, m->warnings[i].always);
        m->warnings[i].details = NULL;
    }

    m->nwarnings = 0;
}


/* §1.1: a capture header whose value is exactly "true" */

static int
worker_header_true(rd_kafka_message_t *msg, const char *name)
{
    size_t               size;
    const void          *value;
    rd_kafka_headers_t  *hdrs;

    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR
        || rd_kafka_header_get_last(hdrs, name, &value, &size)
           != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
        return 0;
    }

    return value != NULL && size == 4 && memcmp(value, "true", 4) == 0;
}


/*
 * §2.2: capture's outer timestamp is authoritative (no second skew
 * correction); a message without one gets the full §2.1 algorithm.
 * The parser notes the outer key (m->outer_timestamp): no second parse.
 */

static int64_t
worker_timestamp(worker_ctx_t *ctx, rd_kafka_message_t *msg,
    ingest_message_t *m, int64_t team_id)
{
    char                   buf[4][EH_TIME_STR_MAX];
    int64_t                wall;
    json_t                *d, *ign, *tsv;
    const char            *ts;
    eh_time_resolve_in_t   in;
    eh_time_resolve_out_t  out;

    wall = worker_now_us();
    ts = m->timestamp_str;

    memset(&in, 0, sizeof(eh_time_resolve_in_t));
    memset(&out, 0, sizeof(eh_time_resolve_out_t));

    if (m->outer_timestamp) {
        eh_time_ingest_check(ts, ts ? strlen(ts) : 0, wall, &out);

    } else {
        in.wall_clock = wall;

        if (m->now == NULL
            || eh_time_parse(m->now, strlen(m->now), EH_TIME_PARSE_INGEST,
                             &in.now) != 0)
        {
            in.now = wall;
        }

        in.timestamp = ts;
        in.timestamp_len = ts ? strlen(ts) : 0;
        in.sent_at = m->sent_at;
        in.sent_at_len = m->sent_at ? strlen(m->sent_at) : 0;

        if (json_is_number(m->offset)) {
            in.offset_ms = (int64_t) json_number_value(m->offset);
            in.has_offset = in.offset_ms != 0;
        }

        ign = json_object_get(m->properties, "$ignore_sent_at");
        in.ignore_sent_at = json_is_true(ign);

        eh_time_ingest_resolve(&in, &out);
    }

    if (out.warnings & EH_TIME_WARN_INVALID_SENT_AT) {
        worker_warn(ctx, team_id, "ignored_invalid_timestamp",
                    json_pack("{ssssss?ss}", "eventUuid", m->uuid,
                              "field", "sent_at", "value", m->sent_at,
                              "reason", "invalid"), 0);
    }

    if (out.warnings & EH_TIME_WARN_FUTURE) {
        eh_time_format_iso_ms(in.now, buf[0]);
        eh_time_format_iso_ms(out.unclamped, buf[1]);
        /* fast mode has the string only (ingest_fast.c) */
        tsv = m->timestamp ? json_incref(m->timestamp)
              : ts ? json_stringn_nocheck(ts, strlen(ts)) : json_null();
        d = json_pack("{sossso ssssssss}",
                      "timestamp", tsv,
                      "sentAt", m->sent_at ? m->sent_at : "",
                      "offset", m->offset ? json_incref(m->offset)
                                          : json_string(""),
                      "now", buf[0], "result", buf[1],
                      "eventUuid", m->uuid, "eventName", m->event);
        worker_warn(ctx, team_id, "event_timestamp_in_future", d, 0);
    }

    if (out.warnings & (EH_TIME_WARN_INVALID_TIMESTAMP
                        | EH_TIME_WARN_OUT_OF_BOUNDS))
    {
        d = json_pack("{ssssss?ss}", "eventUuid", m->uuid,
                      "field", "timestamp", "value", ts,
                      "reason", (out.warnings & EH_TIME_WARN_OUT_OF_BOUNDS)
                                ? "out of bounds" : "invalid");

        if (d && (out.warnings & EH_TIME_WARN_OUT_OF_BOUNDS)) {
            json_object_set_new(d, "parsed_year",
                                json_integer(out.parsed_year));
            if (m->offset) {
                json_object_set(d, "offset", m->offset);
            }
        }

        worker_warn(ctx, team_id, "ignored_invalid_timestamp", d, 0);
    }

    return out.result;
}


/*
 * a token cache: misses for team_cache_ttl_s, hits for team_refresh_s
 * (spec §1.4: PostHog refreshes teams), so settings changes apply
 */

static int
worker_team(worker_ctx_t *ctx, const char *token, int64_t *team_id,
    int *flags)
{
    int      rc;
    json_t  *e;
    int64_t  now;

    now = worker_now_us() / 1000000;
    e = json_object_get(ctx->teams, token);

    if (e && json_integer_value(json_array_get(e, 2)) > now) {
        *team_id = json_integer_value(json_array_get(e, 0));
        *flags = (int) json_integer_value(json_array_get(e, 1));
        return *team_id > 0;
    }

    rc = worker_pg_team_lookup(ctx->pg, token, team_id, flags);
    if (rc < 0) {
        return -1;
    }

    if (rc == 0) {
        *team_id = -1;
        *flags = 0;
        worker_log(WORKER_LOG_INFO, "dropping events of unknown token");
    }

    json_object_set_new(ctx->teams, token,
                        json_pack("[III]", (json_int_t) *team_id,
                                  (json_int_t) *flags,
                                  (json_int_t) (now + (rc
                                                ? ctx->cf->team_refresh_s
                                                : ctx->cf->team_cache_ttl_s))));

    return rc;
}


static int
worker_produce(worker_ctx_t *ctx, const char *topic, const char *key,
    size_t klen, const char *value, size_t len)
{
    return worker_produce_flags(ctx, topic, key, klen, (char *) value, len,
                                RD_KAFKA_MSG_F_COPY);
}


/* with RD_KAFKA_MSG_F_FREE the value is taken over, freed even on failure */

static int
worker_produce_flags(worker_ctx_t *ctx, const char *topic, const char *key,
    size_t klen, char *value, size_t len, int flags)
{
    rd_kafka_resp_err_t  err;

    for ( ;; ) {
        err = rd_kafka_producev(ctx->producer,
                                RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_MSGFLAGS(flags),
                                RD_KAFKA_V_VALUE((void *) value, len),
                                RD_KAFKA_V_KEY((void *) key, klen),
                                RD_KAFKA_V_OPAQUE(ctx->acct),
                                RD_KAFKA_V_END);

        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            break;
        }

        /* the worker may block: it is not an nginx process */
        rd_kafka_poll(ctx->producer, WORKER_DELIVERY_WAIT_MS);
    }

    if (err) {
        worker_log(WORKER_LOG_ERROR, "produce to \"%s\" failed: %s", topic,
                   rd_kafka_err2str(err));

        /* a failed producev() leaves the value with the caller */
        if (flags & RD_KAFKA_MSG_F_FREE) {
            free(value);
        }

        /* retrying cannot help this one: -2 */
        return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? -2 : -1;
    }

    ctx->acct->in_flight++;

    if (ctx->solo) {
        /* everything before it has reported: this report is its own */
        ctx->solo_err = RD_KAFKA_RESP_ERR_NO_ERROR;

        while (ctx->acct->in_flight > 0) {
            rd_kafka_poll(ctx->producer, WORKER_DELIVERY_WAIT_MS);
        }

        if (ctx->solo_err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
            worker_log(WORKER_LOG_WARN, "a message to \"%s\" of %zu bytes "
                       "is over the topic's max.message.bytes", topic, len);
            return -2;
        }
    }

    return 0;
}


static int
worker_wait_deliveries(worker_ctx_t *ctx, worker_batch_t *b)
{
    /* bounded by message.timeout.ms: every message gets a report */
    while (b->in_flight > 0) {
        rd_kafka_poll(ctx->producer, WORKER_DELIVERY_WAIT_MS);
    }

    return b->failed ? -1 : 0;
}


/*
 * The pending batches, oldest first, are committed as their acks are
 * in; all: waiting for every one (else only for the oldest while no
 * room is left).  A failed one is read again with the pending ones
 * after it and b and next (the batches read after them).  0, or -1
 * when rewound.
 */

static int
worker_settle_pending(worker_ctx_t *ctx, int all, worker_batch_t *b,
    worker_batch_t *next, int async)
{
    int              i, nlater;
    worker_batch_t  *p, *later[WORKER_PENDING + 1];

    /* the delivery reports that came in meanwhile */
    rd_kafka_poll(ctx->producer, 0);

    while (ctx->npend) {
        p = ctx->pend[0];

        if (!all && p->in_flight > 0 && ctx->npend < WORKER_PENDING) {
            return 0;
        }

        nlater = 0;

        for (i = 1; i < ctx->npend; i++) {
            later[nlater++] = ctx->pend[i];
        }

        if (b) {
            later[nlater++] = b;
        }

        if (next) {
            later[nlater++] = next;
        }

        if (worker_settle(ctx, p, later, nlater, async) != 0) {
            ctx->npend = 0;
            return -1;
        }

        ctx->npend--;
        memmove(&ctx->pend[0], &ctx->pend[1],
                ctx->npend * sizeof(worker_batch_t *));
    }

    return 0;
}


/*
 * A produced batch is done: committed when all its outputs are acked,
 * else read again (with later, the batches read after it, whose
 * partitions rewind as well).  0 committed, -1 rewound.
 */

static int
worker_settle(worker_ctx_t *ctx, worker_batch_t *b, worker_batch_t **later,
    int nlater, int async)
{
    int                   j, n, rc;
    long                  too_large;
    rd_kafka_message_t  **all;

    rc = worker_wait_deliveries(ctx, b);

    if (rc == 0) {
        /* the batch that needed it went through */
        ctx->solo = 0;

        worker_commit(ctx, b->msgs, b->n, async);
        worker_batch_metrics(ctx, b->msgs, b->n, 1, b->start);
        worker_batch_drop(b);

        return 0;
    }

    worker_log(WORKER_LOG_WARN, "batch of %d not committed, retrying", b->n);
    worker_batch_metrics(ctx, b->msgs, b->n, 0, b->start);

    n = b->n;
    too_large = b->too_large;

    for (j = 0; j < nlater; j++) {
        if (later[j]) {
            /* their outputs report to their counters: wait for them too */
            (void) worker_wait_deliveries(ctx, later[j]);
            n += later[j]->n;
            too_large += later[j]->too_large;
        }
    }

    if (too_large) {
        worker_log(WORKER_LOG_ERROR, "the broker refused a produce request "
                   "as too large: set message.max.bytes no higher than the "
                   "output topics' max.message.bytes; until then batches "
                   "are retried one message per request");
        ctx->solo = 1;
    }

    /* the first offset seen per partition wins: b's come first */
    all = malloc(n * sizeof(rd_kafka_message_t *));

    if (all) {
        memcpy(all, b->msgs, b->n * sizeof(rd_kafka_message_t *));
        n = b->n;

        for (j = 0; j < nlater; j++) {
            if (later[j]) {
                memcpy(all + n, later[j]->msgs,
                       later[j]->n * sizeof(rd_kafka_message_t *));
                n += later[j]->n;
            }
        }

        worker_rewind(ctx, all, n);
        free(all);

    } else {
        worker_rewind(ctx, b->msgs, b->n);
    }

    worker_batch_drop(b);

    for (j = 0; j < nlater; j++) {
        if (later[j]) {
            worker_batch_drop(later[j]);
        }
    }

    worker_backoff(WORKER_RETRY_BACKOFF_MS);

    return -1;
}


static void
worker_dr(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    worker_ctx_t    *ctx = opaque;
    worker_batch_t  *b = msg->_private;

    /* the opaque of producev(): the batch the message belongs to */
    b->in_flight--;

    if (ctx->solo && b == ctx->acct) {
        ctx->solo_err = msg->err;

        /* the producer drops it with a warning */
        if (msg->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
            return;
        }

    } else if (msg->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
        b->too_large++;
    }

    if (msg->err) {
        b->failed++;
        worker_log(WORKER_LOG_ERROR, "delivery to \"%s\" failed: %s",
                   rd_kafka_topic_name(msg->rkt), rd_kafka_err2str(msg->err));
    }
}


/*
 * Partitions moved: the distinct ids this worker owns changed, so the
 * person cache of the ids it owned is no longer its to trust
 */

static void
worker_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    int                  cooperative;
    rd_kafka_error_t    *error;
    worker_ctx_t        *ctx = opaque;

    worker_persons_reset(ctx->persons);

    if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        worker_revoke(ctx, parts);
    }

    cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE")
                  == 0;
    error = NULL;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /*
         * marks of partitions not assigned here are never met: their
         * messages are not read; an outage only costs the re-emission
         */
        if (worker_pg_progress_load(ctx->pg, ctx->cf->group_id,
                                    ctx->cf->input_topic,
                                    worker_progress_mark, ctx)
            != 0)
        {
            worker_log(WORKER_LOG_WARN, "rebalance: where the last owner "
                       "got to is unknown: rows it may not have emitted "
                       "are not emitted again");
        }

        if (cooperative) {
            error = rd_kafka_incremental_assign(rk, parts);

        } else {
            (void) rd_kafka_assign(rk, parts);
        }

    } else {
        if (cooperative) {
            error = rd_kafka_incremental_unassign(rk, parts);

        } else {
            (void) rd_kafka_assign(rk, NULL);
        }
    }

    if (error) {
        worker_log(WORKER_LOG_ERROR, "rebalance: %s",
                   rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
}


/*
 * Partitions are taken away.  The pending batches are committed in order
 * while they are ours, up to the first whose outputs failed.  Everything
 * else read and not committed is let go: that one and the pending ones
 * after it, the batch parsed and the one being collected.  A later batch
 * committed past a failed one would lose the failed one's events, so
 * nothing read before the move is committed after it.  The next owner,
 * or this worker for the partitions it gets back, reads from the
 * committed offsets; partitions that stay (cooperative protocol) are
 * sought back to the first message let go.
 */

static void
worker_revoke(worker_ctx_t *ctx, rd_kafka_topic_partition_list_t *revoked)
{
    int                   i, j, n, nb;
    worker_batch_t       *b[WORKER_PENDING + 2];
    rd_kafka_message_t  **keep;

    nb = 0;

    for (i = 0; i < ctx->npend; i++) {
        if (nb == 0 && worker_wait_deliveries(ctx, ctx->pend[i]) == 0) {
            worker_commit(ctx, ctx->pend[i]->msgs, ctx->pend[i]->n, 0);
            worker_batch_drop(ctx->pend[i]);
            continue;
        }

        if (nb == 0) {
            worker_log(WORKER_LOG_WARN, "batch of %d not committed, let go "
                       "at a rebalance: read again from the committed "
                       "offsets", ctx->pend[i]->n);
        }

        b[nb++] = ctx->pend[i];
    }

    ctx->npend = 0;

    if (ctx->work) {
        worker_persons_prefetch_drop(ctx->persons);
        b[nb++] = ctx->work;
        ctx->work = NULL;
    }

    if (ctx->collect) {
        b[nb++] = ctx->collect;
    }

    n = 0;

    for (j = 0; j < nb; j++) {
        /* their outputs report to their counters first */
        (void) worker_wait_deliveries(ctx, b[j]);
        n += b[j]->n;
    }

    keep = n ? malloc(n * sizeof(rd_kafka_message_t *)) : NULL;

    if (n && keep == NULL) {
        /* stopped before anything later is committed: a restart reads */
        worker_log(WORKER_LOG_ERROR, "rebalance: no memory to rewind the "
                   "partitions that stay: stopping");
        worker_stop = 1;
    }

    n = 0;

    for (j = 0; j < nb; j++) {
        /* oldest first: the first offset seen per partition wins */
        for (i = 0; keep && i < b[j]->n; i++) {
            if (rd_kafka_topic_partition_list_find(revoked,
                                  rd_kafka_topic_name(b[j]->msgs[i]->rkt),
                                  b[j]->msgs[i]->partition)
                == NULL)
            {
                keep[n++] = b[j]->msgs[i];
            }
        }
    }

    if (n) {
        worker_log(WORKER_LOG_INFO, "rebalance: %d messages of the "
                   "partitions that stay are read again", n);
        worker_rewind(ctx, keep, n);
    }

    free(keep);

    for (j = 0; j < nb; j++) {
        /* those of partitions that come back are read again too */
        worker_replay_mark(ctx, b[j]->msgs, b[j]->n);
        worker_batch_drop(b[j]);
    }
}


/* the messages are read again after a failure: see ctx->replay */

static void
worker_replay_mark(worker_ctx_t *ctx, rd_kafka_message_t **msgs, int n)
{
    int  i;

    for (i = 0; i < n; i++) {
        worker_replay_until(ctx, msgs[i]->partition, msgs[i]->offset);
    }
}


static void
worker_replay_until(worker_ctx_t *ctx, int32_t partition, int64_t offset)
{
    int  j;

    for (j = 0; j < ctx->nreplay; j++) {
        if (ctx->replay[j].partition == partition) {
            break;
        }
    }

    if (j == ctx->nreplay) {
        if (j == WORKER_REPLAY_MAX) {
            return;
        }

        ctx->nreplay++;
        ctx->replay[j].partition = partition;
        ctx->replay[j].until = offset;
    }

    if (ctx->replay[j].until < offset) {
        ctx->replay[j].until = offset;
    }
}


/*
 * Before a batch changes persons or groups, how far it reaches in each
 * partition is saved (edgehog_partition_progress).  A worker killed
 * after Postgres changed but before the rows reached Kafka commits
 * nothing; the next owner reads those messages again, and up to that
 * mark treats them as read again after a failure (ctx->replay): their
 * rows are emitted again.  Personless batches skip the round trip.
 */

static int
worker_progress_save(worker_ctx_t *ctx, worker_batch_t *b)
{
    int      i, j, np, rc;
    char    *parts, *offs, *pp, *op;
    int32_t *pn;
    int64_t *on;

    pn = malloc(b->n * sizeof(int32_t));
    on = malloc(b->n * sizeof(int64_t));
    parts = malloc(b->n * 12 + 3);
    offs = malloc(b->n * 21 + 3);

    rc = -1;

    if (pn == NULL || on == NULL || parts == NULL || offs == NULL) {
        goto done;
    }

    np = 0;

    for (i = 0; i < b->n; i++) {
        for (j = 0; j < np && pn[j] != b->msgs[i]->partition; j++) {
            /* void */
        }

        if (j == np) {
            pn[np] = b->msgs[i]->partition;
            on[np++] = b->msgs[i]->offset;

        } else if (on[j] < b->msgs[i]->offset) {
            on[j] = b->msgs[i]->offset;
        }
    }

    pp = parts;
    op = offs;
    *pp++ = '{';
    *op++ = '{';

    for (j = 0; j < np; j++) {
        pp += sprintf(pp, j ? ",%d" : "%d", (int) pn[j]);
        op += sprintf(op, j ? ",%lld" : "%lld", (long long) on[j]);
    }

    strcpy(pp, "}");
    strcpy(op, "}");

    rc = worker_pg_progress_save(ctx->pg, ctx->cf->group_id,
                                 ctx->cf->input_topic, parts, offs);
    if (rc == 0) {
        b->saved = 1;
    }

done:

    free(pn);
    free(on);
    free(parts);
    free(offs);

    return rc;
}


/* a partition assigned to this worker: see worker_progress_save */

static void
worker_progress_mark(void *data, int32_t partition, int64_t offset)
{
    worker_ctx_t  *ctx = data;

    worker_replay_until(ctx, partition, offset);
}


/*
 * 1 when msg is read again.  forget: msg is processed in offset order
 * (not parsed ahead), so a partition read past its mark is done.
 */

static int
worker_replaying(worker_ctx_t *ctx, rd_kafka_message_t *msg, int forget)
{
    int  j;

    for (j = 0; j < ctx->nreplay; j++) {
        if (ctx->replay[j].partition != msg->partition) {
            continue;
        }

        if (msg->offset <= ctx->replay[j].until) {
            return 1;
        }

        if (forget) {
            ctx->replay[j] = ctx->replay[--ctx->nreplay];
        }

        return 0;
    }

    return 0;
}


/* the event's distinct ids, and for a merge the other one too */

static int
worker_replay_persons(worker_ctx_t *ctx, int64_t team_id,
    ingest_message_t *m)
{
    int                      rc;
    char                    *other;
    const char              *illegal;
    ingest_merge_trigger_e   trig;

    trig = ingest_merge_trigger(m->event, m->distinct_id, m->properties,
                                &other, &illegal);

    rc = worker_persons_replay(ctx->persons, team_id, m->distinct_id,
                               trig == INGEST_MERGE_FETCH);

    if (trig == INGEST_MERGE_FETCH && rc == 0) {
        /* the merge may not have happened: other is its own person */
        rc = worker_persons_replay(ctx->persons, team_id, other, 1);
    }

    if (trig == INGEST_MERGE_FETCH || trig == INGEST_MERGE_ILLEGAL_ID) {
        free(other);
    }

    return rc;
}


static void
worker_commit(worker_ctx_t *ctx, rd_kafka_message_t **batch, int n,
    int async)
{
    int                                i;
    rd_kafka_resp_err_t                err;
    rd_kafka_topic_partition_t        *p;
    rd_kafka_topic_partition_list_t   *offsets;

    worker_replay_mark(ctx, batch, n);

    /*
     * sized for n, not for the few partitions: a list of 4 instead
     * measured the same (33 us per batch of 2000 either way, the finds
     * dominate; micro-benchmark, session 9)
     */
    offsets = rd_kafka_topic_partition_list_new(n);

    for (i = 0; i < n; i++) {
        p = rd_kafka_topic_partition_list_find(offsets,
                                      rd_kafka_topic_name(batch[i]->rkt),
                                      batch[i]->partition);
        if (p == NULL) {
            p = rd_kafka_topic_partition_list_add(offsets,
                                      rd_kafka_topic_name(batch[i]->rkt),
                                      batch[i]->partition);
        }

        /* the committed offset is the next one to read */
        if (batch[i]->offset + 1 > p->offset) {
            p->offset = batch[i]->offset + 1;
        }
    }

    /*
     * asynchronous in the loop: the outputs are acknowledged already,
     * so a commit that fails only means reading the batch again; the
     * consumer's close waits for commits in flight
     */
    err = rd_kafka_commit(ctx->consumer, offsets, async);
    if (err) {
        /* harmless for at-least-once: the batch is read again */
        worker_log(WORKER_LOG_WARN, "commit failed: %s",
                   rd_kafka_err2str(err));
    }

    rd_kafka_topic_partition_list_destroy(offsets);
}


/* seek every partition of the batch back to its first message */

static void
worker_rewind(worker_ctx_t *ctx, rd_kafka_message_t **batch, int n)
{
    int                                i;
    rd_kafka_error_t                  *error;
    rd_kafka_topic_partition_t        *p;
    rd_kafka_topic_partition_list_t   *offsets;

    worker_replay_mark(ctx, batch, n);

    offsets = rd_kafka_topic_partition_list_new(n);

    for (i = 0; i < n; i++) {
        p = rd_kafka_topic_partition_list_find(offsets,
                                      rd_kafka_topic_name(batch[i]->rkt),
                                      batch[i]->partition);
        if (p == NULL) {
            p = rd_kafka_topic_partition_list_add(offsets,
                                      rd_kafka_topic_name(batch[i]->rkt),
                                      batch[i]->partition);
            p->offset = batch[i]->offset;
        }
    }

    error = rd_kafka_seek_partitions(ctx->consumer, offsets, 5000);
    if (error) {
        worker_log(WORKER_LOG_ERROR, "seek failed: %s",
                   rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }

    rd_kafka_topic_partition_list_destroy(offsets);
}


static void
worker_stage(worker_ctx_t *ctx, int stage)
{
    int64_t  now;

    now = worker_now_us();

    if (ctx->stage_mark) {
        ctx->stage[stage] += now - ctx->stage_mark;
        ctx->stage_total[stage] += now - ctx->stage_mark;

    } else {
        ctx->stage_start = now;
    }

    ctx->stage_mark = now;
}


static void
worker_stage_log(worker_ctx_t *ctx, int n)
{
    int            i;
    double         total;
    static const char  *names[] = {
        "collect", "parse", "persons", "process", "delivery", "commit"
    };
    char           line[256];
    size_t         len;

    ctx->stage_events += n;

    if (ctx->stage_logged == 0) {
        ctx->stage_logged = ctx->stage_mark;
        return;
    }

    if (n && ctx->stage_mark - ctx->stage_logged
             < WORKER_STAGE_LOG_S * 1000000LL)
    {
        return;
    }

    if (ctx->stage_mark <= ctx->stage_logged) {
        return;
    }

    total = (double) (ctx->stage_mark - ctx->stage_logged);
    len = 0;

    for (i = 0; i < WORKER_STAGE_N && len < sizeof(line); i++) {
        len += snprintf(line + len, sizeof(line) - len, " %s %.0f%%",
                        names[i], 100.0 * ctx->stage[i] / total);
        ctx->stage[i] = 0;
    }

    worker_log(WORKER_LOG_INFO, "%.0f events/s, time:%s",
               ctx->stage_events / (total / 1e6), line);

    ctx->stage_events = 0;
    ctx->stage_logged = ctx->stage_mark;
}


static int64_t
worker_now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


static void
worker_backoff(int ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;

    /* a signal ends it early, which is what shutdown wants */
    nanosleep(&ts, NULL);
}


/*
 * §6: a token bucket per token:distinct_id on Kafka message time; a key
 * whose events of this batch do not fit goes to the overflow topic as
 * a whole, so its events are never split between two consumers
 */

static void
worker_overflow_plan(worker_ctx_t *ctx, worker_batch_t *b)
{
    int  i;

    for (i = 0; i < b->n; i++) {
        ctx->bkeys[i] = b->msgs[i]->key;
        ctx->blens[i] = b->msgs[i]->key_len;
        ctx->bts[i] = rd_kafka_message_timestamp(b->msgs[i], NULL);
    }

    /* out of memory: nothing overflows this time */
    (void) ingest_buckets_plan(ctx->buckets, ctx->bkeys, ctx->blens, ctx->bts,
                               b->n, ctx->cf->overflow_bucket_capacity,
                               ctx->cf->overflow_bucket_replenish_rate,
                               b->overflow);
}


/* §4.6: the same bytes and headers; the key only to keep locality */

static worker_rc_e
worker_overflow(worker_ctx_t *ctx, rd_kafka_message_t *msg)
{
    rd_kafka_resp_err_t   err;
    rd_kafka_headers_t   *hdrs, *copy;

    copy = NULL;

    if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        copy = rd_kafka_headers_copy(hdrs);
    }

    if (copy == NULL) {
        copy = rd_kafka_headers_new(0);
    }

    err = rd_kafka_producev(ctx->producer,
                            RD_KAFKA_V_TOPIC(ctx->cf->overflow_topic),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_VALUE(msg->payload, msg->len),
                            RD_KAFKA_V_KEY(ctx->cf->overflow_preserve_locality
                                           ? msg->key : NULL,
                                           ctx->cf->overflow_preserve_locality
                                           ? msg->key_len : 0),
                            RD_KAFKA_V_HEADERS(copy),
                            RD_KAFKA_V_OPAQUE(ctx->acct),
                            RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(copy);
        worker_log(WORKER_LOG_ERROR, "produce to \"%s\" failed: %s",
                   ctx->cf->overflow_topic, rd_kafka_err2str(err));
        return WORKER_RETRY;
    }

    ctx->acct->in_flight++;
    ctx->metrics.overflowed++;

    return WORKER_OK;
}


static void
worker_batch_metrics(worker_ctx_t *ctx, rd_kafka_message_t **batch, int n,
    int committed, int64_t start)
{
    int                            i, j, nseen;
    char                           key[300];
    rd_kafka_message_t            *seen[64];
    int64_t                        lo, hi;
    json_t                        *v;
    const char                    *k;
    long long                      lag;
    worker_metrics_t              *m;
    const worker_person_stats_t   *ps;

    m = &ctx->metrics;

    if (committed) {
        m->batches++;
        m->events_in += n;

        nseen = 0;

        for (i = n - 1; i >= 0; i--) {
            /* the partition's last message of the batch is enough */
            for (j = 0; j < nseen; j++) {
                if (seen[j] == batch[i]) {
                    break;
                }

                if (seen[j]->partition == batch[i]->partition
                    && seen[j]->rkt == batch[i]->rkt)
                {
                    break;
                }
            }

            if (j < nseen) {
                continue;
            }

            if (nseen < (int) (sizeof(seen) / sizeof(seen[0]))) {
                seen[nseen++] = batch[i];
            }

            /* the cached watermark: no broker round trip */
            if (rd_kafka_get_watermark_offsets(ctx->consumer,
                                            rd_kafka_topic_name(batch[i]->rkt),
                                            batch[i]->partition, &lo, &hi)
                == RD_KAFKA_RESP_ERR_NO_ERROR && hi >= 0)
            {
                snprintf(key, sizeof(key), "%s/%d",
                         rd_kafka_topic_name(batch[i]->rkt),
                         (int) batch[i]->partition);
                json_object_set_new(ctx->lags, key,
                    json_integer(hi > batch[i]->offset + 1
                                 ? hi - batch[i]->offset - 1 : 0));
            }
        }

    } else {
        m->batch_retries++;
    }

    lag = 0;
    json_object_foreach(ctx->lags, k, v) {
        lag += json_integer_value(v);
    }

    m->lag = lag;
    m->events_out = ctx->events_out;
    m->dlq = ctx->dlq;
    m->dropped_unknown_token = ctx->unknown_token;
    m->dropped_other = ctx->dropped - ctx->unknown_token;

    ps = worker_persons_stats(ctx->persons);
    m->persons_created = ps->created;
    m->persons_updated = ps->updated;
    m->persons_merged = ps->merged;
    m->pg_errors = ps->pg_errors;

    worker_metrics_observe(m, (worker_now_us() - start) / 1e6);
    worker_metrics_publish(ctx->metrics_server, m);
}


/*
 * The persons the batch's events need, asked for in one query (a merge
 * event may read personless ids: persons.c then keeps those writes per
 * event)
 */

static void
worker_prefetch(worker_ctx_t *ctx, worker_batch_t *b)
{
    int                   i, k;
    ingest_message_t     *m;
    worker_person_key_t  *keys;

    keys = b->keys;
    b->merges = 0;

    for (i = 0, k = 0; i < b->n; i++) {
        m = &b->items[i].m;

        if (!b->items[i].event) {
            continue;
        }

        keys[k].team_id = b->items[i].team_id;
        keys[k].distinct_id = m->distinct_id;
        keys[k].personless = !m->process_person;
        keys[k].merge = strcmp(m->event, "$identify") == 0
                        || strcmp(m->event, "$create_alias") == 0
                        || strcmp(m->event, "$merge_dangerously") == 0;
        b->merges |= keys[k].merge;
        k++;
    }

    b->nkeys = k;
}
