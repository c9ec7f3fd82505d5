/*
 * Copyright (C) edgehog
 */

/*
 * Rows the worker produces for ClickHouse's Kafka engine tables
 * (spec/ingestion.md §4).  One unparsable row stops a Kafka table for
 * good, so every builder emits valid UTF-8 JSON whatever it is given:
 * bytes are repaired, UUIDs are checked and times are clamped.
 */

#ifndef _INGEST_OUTPUT_H_INCLUDED_
#define _INGEST_OUTPUT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "eh_time.h"
#include "ingest_props.h"


/* "absent" for optional times (captured_at, last_seen_at) */
#define INGEST_TIME_NONE        INT64_MIN

#define INGEST_ELEMENT_TEXT_MAX  400
#define INGEST_ELEMENT_HREF_MAX  2048

/* what eh_time formatters need */
#define INGEST_TIME_BUF_LEN      EH_TIME_STR_MAX


typedef struct {
    const char                 *uuid;
    const char                 *event;
    const char                 *distinct_id;

    /*
     * the final event properties; the builder takes $elements and
     * $elements_chain out of them (and $group_0..4 when personless)
     */
    json_t                     *properties;

    int64_t                     team_id;
    int64_t                     project_id;     /* < 0: not sent */

    int64_t                     timestamp_us;
    int64_t                     created_at_us;  /* processing time */
    int64_t                     captured_at_us; /* INGEST_TIME_NONE: null */

    const char                 *person_id;
    /* full mode: the person's properties after the update, or NULL */
    json_t                     *person_properties;
    int64_t                     person_created_at_us;
    ingest_person_mode_e        person_mode;

    unsigned                    historical_migration:1;

    /*
     * fast mode (ingest_fast.c): the properties come from the scanner
     * and row->properties holds only the $set the person merge needs
     */
    const struct ingest_fast_s *fast;
    /* full mode: the person's properties as text when nothing changed */
    const char                 *person_properties_text;
    size_t                      person_properties_len;
} ingest_event_row_t;


/*
 * Formats unix microseconds as "YYYY-MM-DD HH:MM:SS.mmm" (ms != 0) or
 * "YYYY-MM-DD HH:MM:SS", UTC, truncating; clamped to years 0000-9999.
 */
void ingest_time_format(int64_t us, int ms, char buf[INGEST_TIME_BUF_LEN]);

/*
 * elements_chain (§4.1): $elements_chain as sent, else built from
 * $elements as PostHog's elementsToString(), else "".  Both properties
 * are removed.  Returns malloc()ed UTF-8, NULL on ENOMEM.
 */
char *ingest_elements_chain(json_t *properties);

/*
 * The clickhouse_events_json value, malloc()ed, NUL-terminated; NULL on
 * ENOMEM or when uuid or person_id are not UUIDs (a bug upstream: the
 * row would stop the ClickHouse table).
 */
char *ingest_output_event(ingest_event_row_t *row, size_t *len);

/* clickhouse_person (§4.2); last_seen_us may be INGEST_TIME_NONE */
char *ingest_output_person(const char *uuid, int64_t team_id,
    int64_t created_at_us, json_t *properties, int is_identified,
    int is_deleted, int64_t version, int64_t last_seen_us, size_t *len);

/* clickhouse_person_distinct_id (§4.3) */
char *ingest_output_distinct_id(const char *person_uuid, int64_t team_id,
    const char *distinct_id, size_t distinct_id_len, int64_t version,
    int is_deleted, size_t *len);

/* clickhouse_ingestion_warnings (§4.4); details may be NULL */
char *ingest_output_warning(int64_t team_id, const char *type,
    json_t *details, int64_t now_us, size_t *len);


#endif /* _INGEST_OUTPUT_H_INCLUDED_ */
