/*
 * Copyright (C) edgehog
 */

/*
 * Parsing of one events_plugin_ingestion message value into the event
 * the pipeline works on (spec/ingestion.md §1.2-1.6, §7).  Pure C: no
 * I/O, no nginx headers, no time source; the worker resolves the team
 * and the timestamp between the two steps.
 */

#ifndef _INGEST_MESSAGE_H_INCLUDED_
#define _INGEST_MESSAGE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>


#define INGEST_MAX_WARNINGS       4
#define INGEST_EVENT_NAME_MAX     200


typedef enum {
    INGEST_MSG_OK = 0,
    INGEST_MSG_DLQ,             /* copy the raw message to the DLQ topic */
    INGEST_MSG_DROP             /* drop; emit m->warnings if any */
} ingest_msg_rc_e;


typedef enum {
    INGEST_ROUTE_EVENT = 0,     /* normal pipeline: persons + events row */
    INGEST_ROUTE_WARNING_ONLY,  /* $$client_ingestion_warning */
    INGEST_ROUTE_HEATMAP,       /* $$heatmap: no person work, no row here */
    INGEST_ROUTE_EXCEPTION      /* $exception: no person updates */
} ingest_route_e;


typedef struct {
    const char                 *type;
    json_t                     *details;    /* owned */
    int                         always;     /* bypasses the debounce */
} ingest_warning_t;


typedef struct {
    unsigned                    anonymize_ips:1;
    unsigned                    person_processing_opt_out:1;
    /* header force_disable_person_processing or a skip list matched */
    unsigned                    force_personless:1;
} ingest_team_opts_t;


typedef struct ingest_message_s {
    /* the combined event {...data, ...outer}; everything below borrows */
    json_t                     *root;
    /*
     * fast mode (root NULL, ingest_fast.c): an owned object holding only
     * $set, $set_once and $unset, which is all persons read
     */
    json_t                     *properties;
    struct ingest_fast_s       *fast;

    const char                 *uuid;           /* 8-4-4-4-12 validated */
    const char                 *distinct_id;    /* stringified, no NULs */
    const char                 *event;          /* sanitised, <= 200 */
    const char                 *token;          /* NULL if absent */
    const char                 *ip;             /* NULL if absent */

    /* raw inputs of timestamp resolution (common/eh_time), may be NULL */
    const char                 *now;
    const char                 *sent_at;
    /* the DOM path's "timestamp" of any type; NULL in fast mode */
    json_t                     *timestamp;
    /* "timestamp" if a string (both modes), else NULL */
    const char                 *timestamp_str;
    json_t                     *offset;

    int64_t                     team_id;        /* valid if has_team_id */
    unsigned                    has_team_id:1;
    unsigned                    is_cookieless:1;
    unsigned                    historical_migration:1;
    /* capture's outer object carried "timestamp" (§2.2) */
    unsigned                    outer_timestamp:1;

    /* set by ingest_message_prepare() */
    unsigned                    process_person:1;
    ingest_route_e              route;

    /* DLQ reason, a static string: "failed_parse_message", ... */
    const char                 *error;

    ingest_warning_t            warnings[INGEST_MAX_WARNINGS];
    int                         nwarnings;
} ingest_message_t;


/*
 * §1.3 steps 1-5: parse, coerce, sanitise, $initial_* enrichment,
 * event name.  Returns INGEST_MSG_OK or INGEST_MSG_DLQ (m->error says
 * why).  Always call ingest_message_free(), whatever the result.
 */
ingest_msg_rc_e ingest_message_parse(ingest_message_t *m, const char *value,
    size_t len);

/*
 * The same, through the one-pass scanner of ingest_fast.c when the
 * message is an ordinary event (fast mode), else ingest_message_parse()
 */
ingest_msg_rc_e ingest_message_parse_fast(ingest_message_t *m,
    const char *value, size_t len);

/*
 * After team resolution: §1.4 opt-out, §1.3 step 6 (anonymize_ips),
 * §1.5 $process_person_profile and §1.6 routing.  Returns
 * INGEST_MSG_OK or INGEST_MSG_DROP; warnings are left in m->warnings
 * for the caller to stamp with the team id and produce.
 */
ingest_msg_rc_e ingest_message_prepare(ingest_message_t *m,
    const ingest_team_opts_t *team);

/*
 * Before ingest_message_prepare(): 1 if the event itself says
 * $process_person_profile: false, so that team->force_personless can
 * change nothing in it (the caller need not look for it)
 */
int ingest_message_personless(const ingest_message_t *m);

void ingest_message_free(ingest_message_t *m);

/* 1 if s is a canonical 8-4-4-4-12 hex UUID (any version, any case) */
int ingest_uuid_valid(const char *s, size_t len);

/* adds a warning, taking ownership of details; 0 or -1 if full */
int ingest_message_warn(ingest_message_t *m, const char *type,
    json_t *details, int always);


#endif /* _INGEST_MESSAGE_H_INCLUDED_ */
