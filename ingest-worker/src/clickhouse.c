/*
 * Copyright (C) edgehog
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "worker.h"


#define WORKER_CH_SQL_MAX  8192


typedef struct {
    char                       *data;
    size_t                      len;
} worker_ch_buf_t;


typedef struct {
    const worker_config_t      *cf;
    const char                 *brokers;
    int                         cluster;
} worker_ch_ctx_t;


static int worker_ch_node(const worker_ch_ctx_t *ctx, const char *url);
static int worker_ch_exec(CURL *curl, const char *url, const char *sql);
static size_t worker_ch_write(char *ptr, size_t size, size_t nmemb,
    void *userdata);


/*
 * Columns of the events tables (spec/ingestion.md §5.2) as ClickHouse
 * 18.16 can take them.  The worker writes times as "YYYY-MM-DD
 * HH:MM:SS.mmm", which 18.16's DateTime does not parse in JSONEachRow, so
 * the Kafka table reads them as String and the view converts.
 */

#define WORKER_CH_EVENT_KAFKA_COLUMNS                                         \
    "uuid String, event String, properties String, timestamp String, "       \
    "team_id Int64, distinct_id String, elements_chain String, "              \
    "created_at String, person_id String, person_created_at String, "         \
    "person_properties String, "                                              \
    "group0_properties String, group1_properties String, "                    \
    "group2_properties String, group3_properties String, "                    \
    "group4_properties String, "                                              \
    "person_mode String"

#define WORKER_CH_EVENT_COLUMNS                                               \
    "uuid UUID, event String, properties String, timestamp DateTime('UTC'), " \
    "team_id Int64, distinct_id String, elements_chain String, "              \
    "created_at DateTime('UTC'), person_id UUID, "                            \
    "person_created_at DateTime('UTC'), person_properties String, "           \
    "group0_properties String, group1_properties String, "                    \
    "group2_properties String, group3_properties String, "                    \
    "group4_properties String, "                                              \
    "person_mode Enum8('full' = 0, 'propertyless' = 1, "                      \
    "'force_upgrade' = 2), "                                                  \
    "_timestamp DateTime, _offset UInt64"

/* 18.16 has no cityHash64(UUID): hash the text form */
#define WORKER_CH_EVENT_ORDER                                                 \
    "PARTITION BY toYYYYMM(timestamp) "                                       \
    "ORDER BY (team_id, toDate(timestamp), event, cityHash64(distinct_id), "  \
    "cityHash64(toString(uuid))) "                                            \
    "SAMPLE BY cityHash64(distinct_id)"

#define WORKER_CH_EVENT_SELECT                                                \
    "SELECT toUUID(uuid) AS uuid, event, properties, "                        \
    "parseDateTimeBestEffort(timestamp) AS timestamp, team_id, "              \
    "distinct_id, elements_chain, "                                           \
    "parseDateTimeBestEffort(created_at) AS created_at, "                     \
    "toUUID(person_id) AS person_id, "                                        \
    "parseDateTimeBestEffort(person_created_at) AS person_created_at, "       \
    "person_properties, group0_properties, group1_properties, "               \
    "group2_properties, group3_properties, group4_properties, "               \
    "CAST(if(person_mode = '', 'full', person_mode) AS "                      \
    "Enum8('full' = 0, 'propertyless' = 1, 'force_upgrade' = 2)) "            \
    "AS person_mode, now() AS _timestamp, toUInt64(0) AS _offset "            \
    "FROM kafka_events_json"

#define WORKER_CH_PERSON_KAFKA_COLUMNS                                        \
    "id String, created_at String, team_id Int64, properties String, "        \
    "is_identified Int8, is_deleted Int8, version UInt64"

#define WORKER_CH_PERSON_COLUMNS                                              \
    "id UUID, created_at DateTime('UTC'), team_id Int64, properties String, " \
    "is_identified Int8, is_deleted Int8, version UInt64, "                   \
    "_timestamp DateTime, _offset UInt64"

#define WORKER_CH_PERSON_SELECT                                               \
    "SELECT toUUID(id) AS id, "                                               \
    "parseDateTimeBestEffort(created_at) AS created_at, team_id, "            \
    "properties, is_identified, is_deleted, version, now() AS _timestamp, "   \
    "toUInt64(0) AS _offset FROM kafka_person"

/* groups (posthog/models/group/sql.py), ReplacingMergeTree(_timestamp) */
#define WORKER_CH_GROUPS_KAFKA_COLUMNS                                        \
    "group_type_index UInt8, group_key String, created_at String, "          \
    "team_id Int64, group_properties String"

#define WORKER_CH_GROUPS_COLUMNS                                              \
    "group_type_index UInt8, group_key String, created_at DateTime('UTC'), " \
    "team_id Int64, group_properties String, _timestamp DateTime, "          \
    "_offset UInt64"

#define WORKER_CH_GROUPS_SELECT                                               \
    "SELECT group_type_index, group_key, "                                    \
    "parseDateTimeBestEffort(created_at) AS created_at, team_id, "            \
    "group_properties, now() AS _timestamp, toUInt64(0) AS _offset "          \
    "FROM kafka_groups"

#define WORKER_CH_PDI_KAFKA_COLUMNS                                           \
    "team_id Int64, distinct_id String, person_id String, is_deleted Int8, "  \
    "version Int64"

#define WORKER_CH_PDI_COLUMNS                                                 \
    "team_id Int64, distinct_id String, person_id UUID, is_deleted Int8, "    \
    "version Int64, _timestamp DateTime, _offset UInt64, _partition UInt64"

#define WORKER_CH_PDI_SELECT                                                  \
    "SELECT team_id, distinct_id, toUUID(person_id) AS person_id, "           \
    "is_deleted, version, now() AS _timestamp, toUInt64(0) AS _offset, "      \
    "toUInt64(0) AS _partition FROM kafka_person_distinct_id2"


int
worker_clickhouse_migrate(const worker_config_t *cf)
{
    int               rc;
    char             *urls, *url, *save;
    worker_ch_ctx_t   ctx;

    ctx.cf = cf;
    ctx.cluster = cf->clickhouse_cluster[0] != '\0';
    ctx.brokers = cf->clickhouse_kafka_brokers[0] ? cf->clickhouse_kafka_brokers
                                                 : cf->kafka_brokers;

    curl_global_init(CURL_GLOBAL_DEFAULT);

    urls = strdup(cf->clickhouse_url);
    rc = urls ? 0 : -1;

    /* every node gets its own tables: 18.16 ON CLUSTER needs more setup */

    for (url = strtok_r(urls, ",", &save); url && rc == 0;
         url = strtok_r(NULL, ",", &save))
    {
        rc = worker_ch_node(&ctx, url);
    }

    free(urls);
    curl_global_cleanup();

    return rc;
}


static int
worker_ch_node(const worker_ch_ctx_t *ctx, const char *url)
{
    int          i, rc;
    char         sql[16][WORKER_CH_SQL_MAX];
    CURL        *curl;
    const char  *cl, *events_target;

    cl = ctx->cf->clickhouse_cluster;
    i = 0;

    if (ctx->cluster) {
        snprintf(sql[i++], WORKER_CH_SQL_MAX,
                 "CREATE TABLE IF NOT EXISTS sharded_events ("
                 WORKER_CH_EVENT_COLUMNS ") ENGINE = "
                 "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/"
                 "posthog.sharded_events', '{replica}', _timestamp) "
                 WORKER_CH_EVENT_ORDER);

        snprintf(sql[i++], WORKER_CH_SQL_MAX,
                 "CREATE TABLE IF NOT EXISTS writable_events ("
                 WORKER_CH_EVENT_COLUMNS ") ENGINE = "
                 "Distributed('%s', 'default', 'sharded_events', "
                 "sipHash64(distinct_id))", cl);

        snprintf(sql[i++], WORKER_CH_SQL_MAX,
                 "CREATE TABLE IF NOT EXISTS events ("
                 WORKER_CH_EVENT_COLUMNS ") ENGINE = "
                 "Distributed('%s', 'default', 'sharded_events', "
                 "sipHash64(distinct_id))", cl);

        /* persons are small: a full copy on every node */
        snprintf(sql[i++], WORKER_CH_SQL_MAX,
                 "CREATE TABLE IF NOT EXISTS person ("
                 WORKER_CH_PERSON_COLUMNS ") ENGINE = "
                 "ReplicatedReplacingMergeTree('/clickhouse/tables/noshard/"
                 "posthog.person', '{replica}-{shard}', version) "
                 "ORDER BY (team_id, id)");

        snprintf(sql[i++], WORKER_CH_SQL_MAX,
                 "CREATE TABLE IF NOT EXISTS person_distinct_id2 ("
                 WORKER_CH_PDI_COLUMNS ") ENGINE = "
                 "ReplicatedReplacingMergeTree('/clickhouse/tables/noshard/"
                 "posthog.person_distinct_id2', '{replica}-{shard}', version) "
                 "ORDER BY (team_id, distinct_id) "
                 "SETTINGS index_granularity = 512");

        snprintf(sql[i++], WORKER_CH_SQL_MAX,
                 "CREATE TABLE IF NOT EXISTS groups ("
                 WORKER_CH_GROUPS_COLUMNS ") ENGINE = "
                 "ReplicatedReplacingMergeTree('/clickhouse/tables/noshard/"
                 "posthog.groups', '{replica}-{shard}', _timestamp) "
                 "ORDER BY (team_id, group_type_index, group_key)");

        events_target = "writable_events";

    } else {
        snprintf(sql[i++], WORKER_CH_SQL_MAX,
                 "CREATE TABLE IF NOT EXISTS events ("
                 WORKER_CH_EVENT_COLUMNS ") ENGINE = "
                 "ReplacingMergeTree(_timestamp) " WORKER_CH_EVENT_ORDER);

        snprintf(sql[i++], WORKER_CH_SQL_MAX,
                 "CREATE TABLE IF NOT EXISTS person ("
                 WORKER_CH_PERSON_COLUMNS ") ENGINE = "
                 "ReplacingMergeTree(version) ORDER BY (team_id, id)");

        snprintf(sql[i++], WORKER_CH_SQL_MAX,
                 "CREATE TABLE IF NOT EXISTS person_distinct_id2 ("
                 WORKER_CH_PDI_COLUMNS ") ENGINE = "
                 "ReplacingMergeTree(version) ORDER BY (team_id, distinct_id) "
                 "SETTINGS index_granularity = 512");

        snprintf(sql[i++], WORKER_CH_SQL_MAX,
                 "CREATE TABLE IF NOT EXISTS groups ("
                 WORKER_CH_GROUPS_COLUMNS ") ENGINE = "
                 "ReplacingMergeTree(_timestamp) "
                 "ORDER BY (team_id, group_type_index, group_key)");

        events_target = "events";
    }

    snprintf(sql[i++], WORKER_CH_SQL_MAX,
             "CREATE TABLE IF NOT EXISTS kafka_events_json ("
             WORKER_CH_EVENT_KAFKA_COLUMNS ") ENGINE = "
             "Kafka('%s', '%s', 'group1', 'JSONEachRow')",
             ctx->brokers, ctx->cf->events_topic);

    snprintf(sql[i++], WORKER_CH_SQL_MAX,
             "CREATE MATERIALIZED VIEW IF NOT EXISTS events_json_mv TO %s "
             "AS " WORKER_CH_EVENT_SELECT, events_target);

    snprintf(sql[i++], WORKER_CH_SQL_MAX,
             "CREATE TABLE IF NOT EXISTS kafka_person ("
             WORKER_CH_PERSON_KAFKA_COLUMNS ") ENGINE = "
             "Kafka('%s', '%s', 'group1', 'JSONEachRow')",
             ctx->brokers, ctx->cf->person_topic);

    snprintf(sql[i++], WORKER_CH_SQL_MAX,
             "CREATE MATERIALIZED VIEW IF NOT EXISTS person_mv TO person "
             "AS " WORKER_CH_PERSON_SELECT);

    snprintf(sql[i++], WORKER_CH_SQL_MAX,
             "CREATE TABLE IF NOT EXISTS kafka_person_distinct_id2 ("
             WORKER_CH_PDI_KAFKA_COLUMNS ") ENGINE = "
             "Kafka('%s', '%s', 'group1', 'JSONEachRow')",
             ctx->brokers, ctx->cf->distinct_id_topic);

    snprintf(sql[i++], WORKER_CH_SQL_MAX,
             "CREATE MATERIALIZED VIEW IF NOT EXISTS person_distinct_id2_mv "
             "TO person_distinct_id2 AS " WORKER_CH_PDI_SELECT);

    snprintf(sql[i++], WORKER_CH_SQL_MAX,
             "CREATE TABLE IF NOT EXISTS kafka_groups ("
             WORKER_CH_GROUPS_KAFKA_COLUMNS ") ENGINE = "
             "Kafka('%s', '%s', 'group1', 'JSONEachRow')",
             ctx->brokers, ctx->cf->groups_topic);

    snprintf(sql[i++], WORKER_CH_SQL_MAX,
             "CREATE MATERIALIZED VIEW IF NOT EXISTS groups_mv TO groups "
             "AS " WORKER_CH_GROUPS_SELECT);

    curl = curl_easy_init();
    if (curl == NULL) {
        return -1;
    }

    rc = 0;

    for (int k = 0; k < i && rc == 0; k++) {
        rc = worker_ch_exec(curl, url, sql[k]);
    }

    curl_easy_cleanup(curl);

    return rc;
}


/* the HTTP interface: the query is the POST body, errors come back 500 */

static int
worker_ch_exec(CURL *curl, const char *url, const char *sql)
{
    long             status;
    CURLcode         res;
    worker_ch_buf_t  out;

    out.data = NULL;
    out.len = 0;

    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, sql);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, worker_ch_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out);

    res = curl_easy_perform(curl);
    status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);

    if (res != CURLE_OK || status != 200) {
        worker_log(WORKER_LOG_ERROR, "clickhouse %s failed: %s%s\n%s",
                   url, res != CURLE_OK ? curl_easy_strerror(res) : "",
                   out.data ? out.data : "", sql);
        free(out.data);
        return -1;
    }

    free(out.data);

    return 0;
}


static size_t
worker_ch_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    char             *p;
    size_t            n;
    worker_ch_buf_t  *out = userdata;

    n = size * nmemb;

    p = realloc(out->data, out->len + n + 1);
    if (p == NULL) {
        return 0;
    }

    memcpy(p + out->len, ptr, n);
    out->data = p;
    out->len += n;
    out->data[out->len] = '\0';

    return n;
}
