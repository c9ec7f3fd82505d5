/*
 * Copyright (C) edgehog
 */

/*
 * Person property operations and identify/alias/merge decisions
 * (spec/ingestion.md §3.2-3.6, §3.8).  Pure functions over jansson
 * values and person states; the worker does the Postgres I/O.
 */

#ifndef _INGEST_PROPS_H_INCLUDED_
#define _INGEST_PROPS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>


#define INGEST_PERSON_UUID_LEN     36

/* §3.6: a ClickHouse delete row outranks the deleted person's version */
#define INGEST_DELETE_VERSION_BUMP  100

/* §3.8: created_at of the fake person of a personless event */
#define INGEST_PERSONLESS_CREATED_AT_US  5000000LL

/* ingest_props_update() result bits */
#define INGEST_PROPS_CHANGED       0x01
/* a change outside the G3 "filtered" keys: the row must be written */
#define INGEST_PROPS_SIGNIFICANT   0x02


typedef struct {
    json_t                     *set;        /* object or NULL, borrowed */
    json_t                     *set_once;   /* object or NULL, borrowed */
    json_t                     *unset;      /* array or object or NULL */
    /*
     * §3.4 step 4: for "survey shown" the caller puts the event
     * timestamp here and it is $set as $survey_last_seen_date
     */
    const char                 *survey_last_seen;
} ingest_props_ops_t;


typedef enum {
    INGEST_MERGE_NONE = 0,      /* not a merge event: plain update */
    INGEST_MERGE_SAME_ID,       /* into == other: no-op, no is_identified */
    INGEST_MERGE_ILLEGAL_ID,    /* warning, no merge; update `into` only */
    INGEST_MERGE_FETCH          /* fetch both persons, then merge_decide() */
} ingest_merge_trigger_e;


typedef struct {
    int64_t                     id;         /* posthog_person.id */
    int64_t                     version;
    unsigned                    exists:1;
    unsigned                    is_identified:1;
} ingest_person_state_t;


typedef enum {
    /* neither exists: create one person with [into, other], identified */
    INGEST_MERGE_CREATE = 1,
    /* only other exists: add distinct id `into` to the other person */
    INGEST_MERGE_ADD_TO_OTHER,
    /* only into exists: add distinct id `other` to the into person */
    INGEST_MERGE_ADD_TO_INTO,
    /* both exist and are one person: nothing to do */
    INGEST_MERGE_ALREADY_SAME,
    /* merge source = other into target = into (§3.5 mergePeople) */
    INGEST_MERGE_PEOPLE,
    /* warning cannot_merge_already_identified; go on with `into` */
    INGEST_MERGE_REFUSE_IDENTIFIED
} ingest_merge_action_e;


typedef enum {
    INGEST_PERSON_MODE_FULL = 0,
    INGEST_PERSON_MODE_PROPERTYLESS,
    INGEST_PERSON_MODE_FORCE_UPGRADE
} ingest_person_mode_e;


/* picks $set, $set_once and $unset of event properties, ignoring junk */
void ingest_props_ops(json_t *properties, ingest_props_ops_t *ops);

/*
 * §3.4 creation: { ...$set_once, ...$set, $creator_event_uuid }.  When
 * last_op is not NULL it gets properties_last_operation and, when
 * updated_at_iso is not NULL, *last_upd gets properties_last_updated_at.
 * Returns a new reference, NULL on ENOMEM.
 */
json_t *ingest_props_create(const ingest_props_ops_t *ops,
    const char *event_uuid, const char *updated_at_iso, json_t **last_op,
    json_t **last_upd);

/*
 * §3.4 update (G3 order: set_once, set, then unset of keys present in
 * the original properties), applied in place.  Returns a mask of
 * INGEST_PROPS_* bits, or -1 on ENOMEM.
 */
int ingest_props_update(json_t *props, const ingest_props_ops_t *ops);

/* 1 if this event always writes the person row (G3 PERSON_EVENTS) */
int ingest_props_person_event(const char *event);

/*
 * §3.5 merged properties { ...source, ...target } as a new reference;
 * the caller then applies the event with ingest_props_update().
 */
json_t *ingest_props_merge(json_t *source, json_t *target);

/* §3.5 isDistinctIdIllegal() */
int ingest_distinct_id_illegal(const char *id, size_t len);

/*
 * §3.5 handleIdentifyOrAlias() trigger.  On INGEST_MERGE_FETCH or
 * INGEST_MERGE_ILLEGAL_ID *other gets a malloc()ed String(other id) and
 * *illegal points at the illegal one of the pair (ILLEGAL_ID only).
 */
ingest_merge_trigger_e ingest_merge_trigger(const char *event,
    const char *distinct_id, json_t *properties, char **other,
    const char **illegal);

/* §3.5 table: what to do with the two fetched persons */
ingest_merge_action_e ingest_merge_decide(const char *event,
    const ingest_person_state_t *other, const ingest_person_state_t *into);

/*
 * §7 details of cannot_merge_with_illegal_distinct_id, and of
 * cannot_merge_already_identified / merge_race_condition; new
 * references, NULL on ENOMEM
 */
json_t *ingest_warning_illegal_id(const char *illegal, const char *other,
    const char *event_uuid);
json_t *ingest_warning_merge(const char *source_distinct_id,
    const char *target_distinct_id, const char *event_uuid);

/* JavaScript a === b for JSON values (objects, arrays never equal) */
int ingest_props_strict_eq(json_t *a, json_t *b);

/* §3.5 G3: the merge target's new version, max(target, source) + 1 */
int64_t ingest_merge_version(int64_t target_version, int64_t source_version);

/* §3.8 person_mode of a personless event for an existing person */
ingest_person_mode_e ingest_personless_mode(int person_exists,
    int64_t event_ts_us, int64_t person_created_us, int team_opt_out);

/*
 * §3.2 UUIDv5(932979b4-65c3-4424-8467-0b66ec27bc22, "<team>:<id>"),
 * lower-case text.  0 on success, -1 if the name does not fit.
 */
int ingest_person_uuid(int64_t team_id, const char *distinct_id, size_t len,
    char out[INGEST_PERSON_UUID_LEN + 1]);


#endif /* _INGEST_PROPS_H_INCLUDED_ */
