/*
 * Copyright (C) edgehog
 */

/*
 * Feature-flag evaluation with PostHog /flags server semantics
 * (spec/decide.md 3.3-3.8, 4.6).  Pure C over jansson, no nginx headers.
 *
 * Use:
 *
 *     team = decide_team_create(flags, group_type_mapping, cohorts,
 *                               err, sizeof(err));
 *         once per snapshot, off the request path: the flags and
 *         cohorts are compiled (decide_team.c, decide_filter.c,
 *         decide_cohort.c); the team is immutable afterwards and
 *         holds references to the JSON it was given;
 *
 *     out = <decide_team_nflags(team) results, e.g. from r->pool>;
 *     need = decide_eval_flags(team, &req, out);
 *
 *         need == 0: every out[i] is final.  Otherwise some flags
 *         are DECIDE_STATUS_NEEDS_LOOKUP and need holds the union of
 *         DECIDE_NEED_* bits: fetch what is asked for (person
 *         properties and static cohort membership, group properties,
 *         hash-key overrides), merge it into req (request values win
 *         over stored ones), set the matching *_loaded bit and call
 *         decide_eval_flags() again.  With all three bits set the
 *         result never needs a lookup, so two passes at most.
 *
 * out[i] corresponds to the i-th element of the flags array.  Results
 * point into the team (keys, variants, payloads) and stay valid while
 * the team lives, payloads with their JSON text (payload_json) rendered
 * at load.  Evaluation reads no flag JSON and allocates only for the
 * rare str() of an array or object property (decide_props.h).  A
 * team and its regex cache (one match-data block) serve one thread at a
 * time.
 */

#ifndef _DECIDE_EVAL_H_INCLUDED_
#define _DECIDE_EVAL_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>


#define DECIDE_GROUP_TYPES_MAX  5
#define DECIDE_DEPTH_MAX        32

#define DECIDE_NEED_PERSON      0x01    /* person properties, cohorts */
#define DECIDE_NEED_GROUPS      0x02    /* group properties */
#define DECIDE_NEED_HASH_KEY    0x04    /* experience continuity */


/* in priority-score order, so reasons compare with < and >= */
typedef enum {
    DECIDE_REASON_MISSING_DEPENDENCY = 0,
    DECIDE_REASON_FLAG_DISABLED,
    DECIDE_REASON_NO_GROUP_TYPE,
    DECIDE_REASON_NO_CONDITION_MATCH,
    DECIDE_REASON_OUT_OF_ROLLOUT_BOUND,
    DECIDE_REASON_CONDITION_MATCH,
    DECIDE_REASON_HOLDOUT_CONDITION_VALUE,
    DECIDE_REASON_SUPER_CONDITION_VALUE,
    DECIDE_REASON_ERROR                 /* failed: see result.error */
} decide_reason_e;


typedef enum {
    DECIDE_STATUS_OMITTED = 0,          /* inactive, deleted, runtime */
    DECIDE_STATUS_OK,
    DECIDE_STATUS_NEEDS_LOOKUP,
    DECIDE_STATUS_FAILED,               /* "failed": true in flags-v2 */
    DECIDE_STATUS_BUSY,                 /* internal: being evaluated */
    DECIDE_STATUS_PENDING               /* internal: not yet evaluated */
} decide_status_e;


/* evaluation_runtime filtering (spec 5.2) */
typedef enum {
    DECIDE_RUNTIME_UNKNOWN = 0,         /* gets flags with null or "all" */
    DECIDE_RUNTIME_SERVER,
    DECIDE_RUNTIME_CLIENT,
    DECIDE_RUNTIME_ANY                  /* no filtering at all */
} decide_runtime_e;


typedef struct decide_team_s  decide_team_t;


typedef struct {
    const char        *distinct_id;       /* required, may be "" */
    const char        *device_id;         /* $device_id or NULL */
    const char        *anon_distinct_id;  /* $anon_distinct_id or NULL */

    json_t            *person_properties; /* {key: value} or NULL */
    json_t            *groups;            /* {group type name: key} */
    json_t            *group_properties;  /* {type name: {key: value}} */
    json_t            *hash_key_overrides;/* {flag key: hash key} */
    json_t            *static_cohorts;    /* [cohort id, ...] */

    double             now;               /* unix seconds */
    decide_runtime_e   runtime;

    /*
     * evaluation_environments: array of strings or NULL.  When it has
     * entries, a flag with evaluation tags is kept only if one of them
     * is listed; flags without tags are always kept (spec 1.4).
     */
    json_t            *environments;

    /*
     * Set once stored data was merged in: an absent key then really is
     * absent.  While clear, a filter on an absent key asks for a lookup.
     */
    unsigned           person_loaded:1;
    unsigned           groups_loaded:1;
    unsigned           overrides_loaded:1;

    /*
     * tests: every hash on demand, as on a CPU without SHA-NI, and every
     * filter matched on its own, none answered from the memo
     */
    unsigned           no_prehash:1;
} decide_request_t;


typedef struct {
    const char        *key;
    json_int_t         id;
    json_int_t         version;           /* 0 when null */
    const char        *variant;           /* NULL: boolean */
    const json_t      *payload;           /* NULL: no payload entry */
    const char        *payload_json;      /* its compact JSON or NULL */
    size_t             payload_json_len;
    const char        *error;             /* DECIDE_STATUS_FAILED code */
    decide_status_e    status;
    decide_reason_e    reason;
    int                condition_index;   /* -1: null */
    unsigned           need;              /* DECIDE_NEED_* when pending */
    unsigned           enabled:1;
    unsigned           groups_skipped:1;  /* "groups not evaluated" text */
    unsigned           errors:1;          /* errorsWhileComputingFlags */
} decide_result_t;


/*
 * flags: array of PostHog flag objects (id, key, active, deleted,
 * filters, version, ensure_experience_continuity, bucketing_identifier,
 * evaluation_runtime).  group_type_mapping: {"0": "organization"} or
 * rows [{"group_type": .., "group_type_index": ..}], may be NULL.
 * cohorts: {"<id>": cohort} or [cohort with "id"], may be NULL; a
 * cohort has is_static and filters {"properties": {...}} (or legacy
 * groups).  NULL and a message on failure.
 */
decide_team_t *decide_team_create(json_t *flags, json_t *group_type_mapping,
    json_t *cohorts, char *err, size_t errlen);
void decide_team_free(decide_team_t *team);
size_t decide_team_nflags(const decide_team_t *team);
/* tests: filters the team answers once per evaluation, in memo slots */
size_t decide_team_nshared(const decide_team_t *team);

/* key (NULL: not a usable flag), id and version of flag i */
const char *decide_team_flag_key(const decide_team_t *team, size_t i,
    json_int_t *id, json_int_t *version);

/* the group type index of a group type name, -1 if not mapped */
int decide_team_group_type_index(const decide_team_t *team,
    const char *name);

/* fills out[0 .. nflags-1]; returns the DECIDE_NEED_* union, 0 if final */
unsigned decide_eval_flags(const decide_team_t *team,
    const decide_request_t *req, decide_result_t *out);

/* "condition_match" etc.; the error code for DECIDE_REASON_ERROR */
const char *decide_reason_code(const decide_result_t *r);
/* the same, its length in *len unless len is NULL */
const char *decide_reason_code_n(const decide_result_t *r, size_t *len);

/*
 * The description as a constant; for condition_match it is the text
 * before the 1-based condition number ("Matched condition set ").
 */
const char *decide_reason_text(const decide_result_t *r);
const char *decide_reason_text_n(const decide_result_t *r, size_t *len);

/* the fixed description text ("Matched condition set 2") */
size_t decide_reason_description(const decide_result_t *r, char *buf,
    size_t size);


#endif /* _DECIDE_EVAL_H_INCLUDED_ */
