/*
 * Copyright (C) edgehog
 */


#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "worker.h"


typedef enum {
    WORKER_CONF_STR = 0,
    WORKER_CONF_INT,
    WORKER_CONF_LEVEL,
    WORKER_CONF_KAFKA           /* repeatable "name value" */
} worker_conf_type_e;


typedef struct {
    const char                 *name;
    worker_conf_type_e          type;
    size_t                      offset;
    const char                 *dflt;
    long                        min;
    long                        max;
} worker_conf_key_t;


static int worker_config_set(worker_config_t *cf, const worker_conf_key_t *k,
    const char *value, const char *path, int line);
static char *worker_config_trim(char *s);
static int worker_config_kafka(worker_kafka_opts_t *o, const char *value,
    const char *path, int line);


#define WORKER_STR(name, dflt)                                                \
    { #name, WORKER_CONF_STR, offsetof(worker_config_t, name), dflt, 0, 0 }
#define WORKER_INT(name, dflt, min, max)                                      \
    { #name, WORKER_CONF_INT, offsetof(worker_config_t, name), dflt, min, max }


static const worker_conf_key_t  worker_conf_keys[] = {
    WORKER_STR(kafka_brokers, "127.0.0.1:9092"),
    WORKER_STR(input_topic, "events_plugin_ingestion"),
    WORKER_STR(group_id, "edgehog-ingestion"),
    WORKER_STR(events_topic, "clickhouse_events_json"),
    WORKER_STR(person_topic, "clickhouse_person"),
    WORKER_STR(distinct_id_topic, "clickhouse_person_distinct_id"),
    WORKER_STR(warnings_topic, "clickhouse_ingestion_warnings"),
    WORKER_STR(dlq_topic, "events_plugin_ingestion_dlq"),
    WORKER_STR(groups_topic, "clickhouse_groups"),
    WORKER_STR(postgres_dsn, "postgresql://postgres@127.0.0.1:5432/edgehog"),
    WORKER_STR(clickhouse_url, "http://127.0.0.1:8123"),
    WORKER_STR(clickhouse_cluster, ""),
    /* what ClickHouse's Kafka engine connects to, if it differs */
    WORKER_STR(clickhouse_kafka_brokers, ""),
    WORKER_STR(redis_address, "127.0.0.1:6379"),
    /*
     * 2000, not PostHog's 500: the per-batch work (the persons query,
     * progress save, commit, large per-batch allocations that make
     * glibc consolidate its fastbins) spread over more events.
     * bench-worker A/B, 2000 against 500: (a) 98.8k/72.4k against
     * 73.8k/57.4k events/s (Postgres 1.7 against 3.2 us/event), (b)
     * 67.4k/62.3k against 37.0k/39.9k (main thread 7.3-7.9 against
     * 11.7-12.1 us/event), (d) 879/1136 against 1156/1046 merges/s
     */
    WORKER_INT(batch_size, "2000", 1, 100000),
    WORKER_INT(batch_wait_ms, "50", 0, 60000),
    WORKER_INT(team_cache_ttl_s, "5", 0, 86400),
    /* PostHog refreshes its team objects about every 2 minutes */
    WORKER_INT(team_refresh_s, "120", 0, 86400),
    WORKER_STR(overflow_topic, "events_plugin_ingestion_overflow"),
    /*
     * 0 for the overflow consumer (input_topic = the overflow topic),
     * which tells teams with ingestion_capacity_overflow warnings
     */
    WORKER_INT(overflow_enabled, "1", 0, 1),
    WORKER_INT(overflow_bucket_capacity, "1000", 1, 100000000),
    WORKER_INT(overflow_bucket_replenish_rate, "1", 0, 100000000),
    WORKER_INT(overflow_preserve_locality, "0", 0, 1),
    /* Prometheus text on 127.0.0.1:<port>/metrics, 0 = off */
    WORKER_INT(metrics_port, "0", 0, 65535),
    { "log_level", WORKER_CONF_LEVEL, offsetof(worker_config_t, log_level),
      "info", 0, 0 },
    /* librdkafka settings past the worker's own, e.g. message.max.bytes */
    { "kafka_producer_option", WORKER_CONF_KAFKA,
      offsetof(worker_config_t, producer_opts), NULL, 0, 0 },
    { "kafka_consumer_option", WORKER_CONF_KAFKA,
      offsetof(worker_config_t, consumer_opts), NULL, 0, 0 },
    { NULL, 0, 0, NULL, 0, 0 }
};


/*
 * "key = value" lines, '#' comments.  Any unknown key or bad value stops
 * the worker with the file, line and value named.
 */

int
worker_config_load(worker_config_t *cf, const char *path)
{
    int                       line;
    char                      buf[4096], *p, *key, *value, *eq;
    FILE                     *f;
    const worker_conf_key_t  *k;

    memset(cf, 0, sizeof(worker_config_t));

    for (k = worker_conf_keys; k->name; k++) {
        if (k->dflt && worker_config_set(cf, k, k->dflt, "(default)", 0) != 0)
        {
            return -1;
        }
    }

    if (path == NULL) {
        return 0;
    }

    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "ingest-worker: cannot open config \"%s\": %s\n",
                path, strerror(errno));
        return -1;
    }

    line = 0;

    while (fgets(buf, sizeof(buf), f)) {
        line++;

        p = strchr(buf, '#');
        if (p) {
            *p = '\0';
        }

        p = worker_config_trim(buf);
        if (*p == '\0') {
            continue;
        }

        eq = strchr(p, '=');
        if (eq == NULL) {
            fprintf(stderr, "ingest-worker: %s:%d: expected \"key = value\", "
                    "got \"%s\"\n", path, line, p);
            fclose(f);
            return -1;
        }

        *eq = '\0';
        key = worker_config_trim(p);
        value = worker_config_trim(eq + 1);

        for (k = worker_conf_keys; k->name; k++) {
            if (strcmp(k->name, key) == 0) {
                break;
            }
        }

        if (k->name == NULL) {
            fprintf(stderr, "ingest-worker: %s:%d: unknown key \"%s\"\n",
                    path, line, key);
            fclose(f);
            return -1;
        }

        if (worker_config_set(cf, k, value, path, line) != 0) {
            fclose(f);
            return -1;
        }
    }

    fclose(f);

    return 0;
}


static int
worker_config_set(worker_config_t *cf, const worker_conf_key_t *k,
    const char *value, const char *path, int line)
{
    int    i;
    long   n;
    char  *end, **str;

    static const char  *levels[] = { "error", "warn", "info", "debug" };

    switch (k->type) {

    case WORKER_CONF_STR:
        str = (char **) ((char *) cf + k->offset);
        free(*str);
        *str = strdup(value);
        return *str ? 0 : -1;

    case WORKER_CONF_INT:
        errno = 0;
        n = strtol(value, &end, 10);

        if (errno || end == value || *end != '\0' || n < k->min
            || n > k->max)
        {
            fprintf(stderr, "ingest-worker: %s:%d: invalid value \"%s\" "
                    "for \"%s\" (an integer from %ld to %ld)\n",
                    path, line, value, k->name, k->min, k->max);
            return -1;
        }

        *(int *) ((char *) cf + k->offset) = (int) n;
        return 0;

    case WORKER_CONF_LEVEL:
        for (i = 0; i < 4; i++) {
            if (strcmp(value, levels[i]) == 0) {
                *(worker_log_level_e *) ((char *) cf + k->offset) = i;
                return 0;
            }
        }

        fprintf(stderr, "ingest-worker: %s:%d: invalid value \"%s\" for "
                "\"%s\" (error, warn, info or debug)\n",
                path, line, value, k->name);
        return -1;

    case WORKER_CONF_KAFKA:
        return worker_config_kafka((worker_kafka_opts_t *)
                                       ((char *) cf + k->offset),
                                   value, path, line);
    }

    return -1;
}


/* checked by librdkafka now, so a typo stops the worker at startup */

static int
worker_config_kafka(worker_kafka_opts_t *o, const char *value,
    const char *path, int line)
{
    char              errstr[256], *name, *v, **kv;
    size_t            len;
    rd_kafka_conf_t  *conf;

    len = strcspn(value, " \t");
    v = (char *) value + len;
    v += strspn(v, " \t");

    if (len == 0 || *v == '\0') {
        fprintf(stderr, "ingest-worker: %s:%d: expected \"name value\" for "
                "a kafka option, got \"%s\"\n", path, line, value);
        return -1;
    }

    name = strndup(value, len);
    conf = rd_kafka_conf_new();

    if (name == NULL || conf == NULL
        || rd_kafka_conf_set(conf, name, v, errstr, sizeof(errstr))
           != RD_KAFKA_CONF_OK)
    {
        fprintf(stderr, "ingest-worker: %s:%d: invalid kafka option \"%s\": "
                "%s\n", path, line, value, name ? errstr : "no memory");
        free(name);
        if (conf) {
            rd_kafka_conf_destroy(conf);
        }
        return -1;
    }

    rd_kafka_conf_destroy(conf);

    kv = realloc(o->kv, (o->n + 1) * 2 * sizeof(char *));
    if (kv == NULL) {
        free(name);
        return -1;
    }

    o->kv = kv;
    kv[o->n * 2] = name;
    kv[o->n * 2 + 1] = strdup(v);

    if (kv[o->n * 2 + 1] == NULL) {
        free(name);
        return -1;
    }

    o->n++;

    return 0;
}


static char *
worker_config_trim(char *s)
{
    char  *e;

    while (isspace((unsigned char) *s)) {
        s++;
    }

    e = s + strlen(s);

    while (e > s && isspace((unsigned char) e[-1])) {
        *--e = '\0';
    }

    return s;
}


void
worker_config_free(worker_config_t *cf)
{
    int                       i;
    worker_kafka_opts_t      *o;
    const worker_conf_key_t  *k;

    for (k = worker_conf_keys; k->name; k++) {
        if (k->type == WORKER_CONF_STR) {
            free(*(char **) ((char *) cf + k->offset));

        } else if (k->type == WORKER_CONF_KAFKA) {
            o = (worker_kafka_opts_t *) ((char *) cf + k->offset);

            for (i = 0; i < o->n * 2; i++) {
                free(o->kv[i]);
            }

            free(o->kv);
        }
    }
}
