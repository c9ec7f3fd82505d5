/*
 * Copyright (C) edgehog
 */

/*
 * The compiled form of a team, shared by the engine's files only:
 * decide_team.c builds it, decide_filter.c and decide_cohort.c compile
 * and evaluate filters and cohorts, decide_eval.c evaluates flags.
 */

#ifndef _DECIDE_EVAL_INT_H_INCLUDED_
#define _DECIDE_EVAL_INT_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>

#include "decide_props.h"
#include "decide_eval.h"


/* outcome of a filter, a condition's filters or a cohort */
#define DECIDE_NO      0
#define DECIDE_YES     1
#define DECIDE_NEED    2
#define DECIDE_ERR     3

/* why a condition was skipped before its filters were read */
#define DECIDE_ID_OK            0
#define DECIDE_ID_NO_GROUP      1
#define DECIDE_ID_NO_DEVICE     2

/* "holdout-" + a 64-bit id */
#define DECIDE_HOLDOUT_VARIANT  32

/* decimal group keys and numeric cohort ids */
#define DECIDE_NUM_BUF          32
/* flags (the first ones of a team) whose rollout hash is batched */
#define DECIDE_EVAL_PREHASH     64

/* flag i's bit in decide_ctx_t's masks, none past DECIDE_EVAL_PREHASH */
#define decide_eval_bit(i)                                                    \
    ((size_t) (i) < DECIDE_EVAL_PREHASH ? (uint64_t) 1 << (i) : 0)

/* "$feature_enrollment/<flag key>" must fit this, as on the server */
#define DECIDE_ENROLL_MAX       512

/* what a compiled filter is */
#define DECIDE_FILTER_NEVER     0       /* always "no" */
#define DECIDE_FILTER_PERSON    1
#define DECIDE_FILTER_GROUP     2
#define DECIDE_FILTER_FLAG      3
#define DECIDE_FILTER_COHORT    4

/* a cohort filter's operator */
#define DECIDE_COHORT_IN        0
#define DECIDE_COHORT_NOT_IN    1
#define DECIDE_COHORT_OTHER     2

/* what a compiled cohort node is */
#define DECIDE_NODE_AND         0
#define DECIDE_NODE_OR          1
#define DECIDE_NODE_PERSON      2
#define DECIDE_NODE_COHORT      3
#define DECIDE_NODE_NEVER       4
#define DECIDE_NODE_TOO_DEEP    5

/* what a compiled cohort is */
#define DECIDE_COHORT_MISSING   0       /* not an object, or deleted */
#define DECIDE_COHORT_STATIC    1
#define DECIDE_COHORT_TREE      2
#define DECIDE_COHORT_LEGACY    3

/* holdout forms (spec 3.8) */
#define DECIDE_HOLDOUT_NONE     0
#define DECIDE_HOLDOUT_OBJECT   1
#define DECIDE_HOLDOUT_GROUPS   2

#define DECIDE_ARENA_CHUNK      16384

/* filters answered once per evaluation, see decide_team_filter_share() */
#define DECIDE_MEMO_MAX         256


/*
 * Everything below is built once per snapshot by decide_team_create()
 * from the flag and cohort JSON (which it keeps referenced, since the
 * compiled form points into it), so evaluation does no JSON lookups on
 * definitions, only on request values.
 */

typedef struct decide_arena_s  decide_arena_t;

struct decide_arena_s {
    decide_arena_t        *next;
    size_t                 used;
    size_t                 size;
    /* data follows, aligned like malloc() */
};


typedef struct {
    const json_t          *json;        /* NULL: no payload entry */
    char                  *text;        /* compact JSON, NULL: render */
    size_t                 len;
} decide_payload_t;


typedef struct {
    int                    kind;        /* DECIDE_FILTER_* */
    int                    index;       /* group type, flag or cohort */
    int                    cohort_op;   /* DECIDE_COHORT_IN etc. */
    const json_t          *value;       /* flag filters */
    decide_prop_filter_t   pf;          /* person and group filters */
    unsigned               memo;        /* 1 + its memo slot, 0: none */
    unsigned               distinct_id:1; /* person "distinct_id" */
} decide_filter_t;


typedef struct {
    decide_filter_t       *filter;
    size_t                 n;
    unsigned               cohorts:1;   /* any cohort filter */
} decide_filters_t;


typedef struct {
    decide_filters_t       filters;
    int                    agg;         /* -1: person */
    double                 rollout;
    const char            *variant;     /* a valid override or NULL */
    unsigned               has_rollout:1;
} decide_cond_t;


typedef struct {
    const char            *key;         /* NULL: a keyless variant */
    double                 cum;         /* cumulative boundary */
    decide_payload_t       payload;
} decide_variant_t;


typedef struct decide_node_s  decide_node_t;

struct decide_node_s {
    int                    kind;        /* DECIDE_NODE_* */
    int                    index;       /* cohort nodes */
    decide_node_t         *child;
    size_t                 n;
    decide_prop_filter_t   pf;          /* person nodes */
    unsigned               negation:1;
    unsigned               distinct_id:1; /* person "distinct_id" */
};


typedef struct {
    const char            *id;          /* the key it is looked up by */
    json_int_t             n;           /* id as a number, static ones */
    int                    kind;        /* DECIDE_COHORT_* */
    decide_node_t          root;
    decide_filters_t      *groups;      /* legacy OR of ANDs */
    size_t                 ngroups;
} decide_cohort_t;


typedef struct {
    json_t                *json;
    json_t                *filters;
    const char            *key;
    char                  *prefix;          /* "<key>." */
    size_t                 prefix_len;
    json_int_t             id;
    json_int_t             version;
    int                   *deps;            /* team flag index or -1 */
    size_t                 ndeps;
    int                    agg;             /* -1: person */

    decide_cond_t         *cond;
    size_t                 nconds;
    decide_variant_t      *variant;
    size_t                 nvariants;
    decide_payload_t       payload_true;
    const json_t          *payloads;

    char                  *enroll_key;      /* NULL: no enrollment */
    decide_cond_t          super;
    const char           **super_keys;
    size_t                 nsuper_keys;
    size_t                 nsuper_props;

    int                    holdout;         /* DECIDE_HOLDOUT_* */
    double                 holdout_pct;
    const char            *holdout_group_variant;
    decide_payload_t       holdout_payload;
    char                   holdout_variant[DECIDE_HOLDOUT_VARIANT];

    const char           **tags;            /* evaluation tags */
    size_t                 ntags;

    unsigned               evaluable:1;
    unsigned               ec:1;
    unsigned               device:1;
    unsigned               needs_hash_key:1;
    unsigned               runtime:2;
    unsigned               has_super:1;
    unsigned               early_exit:1;
    unsigned               holdout_has_pct:1;
    unsigned               prehash:1;       /* see decide_eval_prehash() */
    unsigned               prefilter:1;     /* see decide_eval_prehash() */
} decide_flag_t;


struct decide_team_s {
    json_t                *flags;
    json_t                *by_key;          /* key -> index */
    json_t                *by_id;           /* "id" -> index */
    json_t                *cohorts;         /* "id" -> cohort */
    json_t                *cohort_index;    /* "id" -> index in cohort */
    json_t                *mapping;
    const char            *group_types[DECIDE_GROUP_TYPES_MAX];
    decide_flag_t         *flag;
    size_t                 nflags;
    decide_cohort_t       *cohort;
    size_t                 ncohorts;
    decide_regex_cache_t  *regex;
    decide_arena_t        *arena;
    size_t                 nmemo;           /* memo slots handed out */
    /* while compiling: filter text -> index in memo_first */
    json_t                *memo_keys;
    decide_filter_t      **memo_first;
    size_t                 nmemo_first;
    size_t                 memo_first_size;
};


typedef struct {
    const decide_team_t    *team;
    const decide_request_t *req;
    decide_result_t        *out;
    decide_props_ctx_t      pctx;
    json_t                 *distinct_id; /* made on first use */
    const char             *id;          /* req->distinct_id or "" */
    size_t                  id_len;      /* cut for hashing (3.2) */
    /* decide_hash_n(prefix, id, "") of flag i if bit i of hashed is set */
    uint64_t                hashed;
    uint64_t                hash[DECIDE_EVAL_PREHASH];
    /* decide_hash_n(prefix, id, "variant") likewise */
    uint64_t                vhashed;
    uint64_t                vhash[DECIDE_EVAL_PREHASH];
    /* flag i's first condition's filters said yes (no) if bit i is set */
    uint64_t                c0_yes;
    uint64_t                c0_no;
    /* shared filters' answers (decide_filter_t.memo), if memo is set */
    unsigned                memo;
    uint64_t                memo_done[DECIDE_MEMO_MAX / 64];
    uint64_t                memo_yes[DECIDE_MEMO_MAX / 64];
} decide_ctx_t;


void *decide_team_alloc(decide_team_t *team, size_t size);
int decide_json_index(const json_t *v);
int decide_team_resolve(const decide_team_t *team, const json_t *key);
int decide_team_filters_compile(decide_team_t *team, decide_filters_t *fs,
    const json_t *props, int agg);
int decide_team_cohorts_compile(decide_team_t *team);
int decide_team_cohort_ref(const decide_team_t *team, const json_t *id);
void decide_team_share_done(decide_team_t *team);
const json_t *decide_eval_person_prop(decide_ctx_t *ctx,
    const decide_prop_filter_t *pf, unsigned distinct_id);
int decide_eval_filters(decide_ctx_t *ctx, const decide_filters_t *fs,
    int depth, unsigned *need, const char **err);
int decide_eval_cohort(decide_ctx_t *ctx, int index, int depth, unsigned *need,
    const char **err);


#endif /* _DECIDE_EVAL_INT_H_INCLUDED_ */
