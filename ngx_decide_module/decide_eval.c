/*
 * Copyright (C) edgehog
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "decide_hash.h"
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

    unsigned               evaluable:1;
    unsigned               ec:1;
    unsigned               device:1;
    unsigned               needs_hash_key:1;
    unsigned               runtime:2;
    unsigned               has_super:1;
    unsigned               early_exit:1;
    unsigned               holdout_has_pct:1;
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
};


typedef struct {
    const decide_team_t    *team;
    const decide_request_t *req;
    decide_result_t        *out;
    decide_props_ctx_t      pctx;
} decide_ctx_t;


static void *decide_team_alloc(decide_team_t *team, size_t size);
static char *decide_team_strdup(decide_team_t *team, const char *s,
    size_t len);
static int decide_team_flag_init(decide_team_t *team, size_t i);
static int decide_team_flag_compile(decide_team_t *team, decide_flag_t *f);
static int decide_team_cond_compile(decide_team_t *team, decide_flag_t *f,
    decide_cond_t *c, const json_t *cond, int agg);
static int decide_team_filters_compile(decide_team_t *team,
    decide_filters_t *fs, const json_t *props, int agg);
static void decide_team_filter_compile(decide_team_t *team,
    decide_filter_t *ft, const json_t *filter, int agg);
static int decide_team_payload_compile(decide_team_t *team,
    decide_payload_t *p, const json_t *payloads, const char *key);
static int decide_team_cohorts_compile(decide_team_t *team);
static int decide_team_node_compile(decide_team_t *team, decide_node_t *nd,
    const json_t *node, int depth);
static int decide_team_cohort_ref(const decide_team_t *team,
    const json_t *id);
static int decide_team_resolve(const decide_team_t *team, const json_t *key);
static int decide_json_index(const json_t *v);
static void decide_eval_flag(decide_ctx_t *ctx, size_t i, int depth);
static void decide_eval_match(decide_ctx_t *ctx, decide_flag_t *f,
    decide_result_t *r);
static int decide_eval_super(decide_ctx_t *ctx, decide_flag_t *f,
    decide_result_t *r);
static int decide_eval_holdout(decide_ctx_t *ctx, decide_flag_t *f,
    decide_result_t *r);
static int decide_eval_identifier(decide_ctx_t *ctx, decide_flag_t *f,
    int agg, int overrides, const char **id, size_t *len, char *buf);
static int decide_eval_filters(decide_ctx_t *ctx, const decide_filters_t *fs,
    int depth, unsigned *need, const char **err);
static int decide_eval_property(decide_ctx_t *ctx, const decide_filter_t *ft,
    unsigned *need);
static int decide_eval_flag_filter(decide_ctx_t *ctx,
    const decide_filter_t *ft);
static int decide_eval_cohort(decide_ctx_t *ctx, int index, int depth,
    unsigned *need, const char **err);
static int decide_eval_cohort_node(decide_ctx_t *ctx,
    const decide_node_t *nd, int depth, unsigned *need, const char **err);
static int decide_eval_rollout(const decide_flag_t *f, const decide_cond_t *c,
    const char *id, size_t len);
static const char *decide_eval_variant(const decide_flag_t *f,
    const char *id, size_t len);
static void decide_eval_payload(const decide_flag_t *f, const char *variant,
    decide_result_t *r);
static const json_t *decide_eval_group_props(decide_ctx_t *ctx, int gti,
    int *known);


decide_team_t *
decide_team_create(json_t *flags, json_t *group_type_mapping,
    json_t *cohorts, char *err, size_t errlen)
{
    int             idx;
    char            buf[DECIDE_NUM_BUF];
    size_t          i;
    json_t         *v, *c;
    const char     *k;
    decide_team_t  *team;

    if (!json_is_array(flags)) {
        snprintf(err, errlen, "flags is not an array");
        return NULL;
    }

    team = calloc(1, sizeof(decide_team_t));
    if (team == NULL) {
        goto nomem;
    }

    team->flags = json_incref(flags);
    team->nflags = json_array_size(flags);
    team->by_key = json_object();
    team->by_id = json_object();
    team->cohorts = json_object();
    team->cohort_index = json_object();
    team->regex = decide_regex_cache_create();

    if (team->by_key == NULL || team->by_id == NULL || team->cohorts == NULL
        || team->cohort_index == NULL || team->regex == NULL)
    {
        goto nomem;
    }

    if (team->nflags) {
        team->flag = calloc(team->nflags, sizeof(decide_flag_t));
        if (team->flag == NULL) {
            goto nomem;
        }
    }

    /* group type mapping: {"0": "organization"} or table rows */
    if (json_is_object(group_type_mapping)) {
        team->mapping = json_incref(group_type_mapping);

        json_object_foreach(group_type_mapping, k, v) {
            idx = atoi(k);
            if (json_is_string(v) && idx >= 0
                && idx < DECIDE_GROUP_TYPES_MAX)
            {
                team->group_types[idx] = json_string_value(v);
            }
        }

    } else if (json_is_array(group_type_mapping)) {
        team->mapping = json_incref(group_type_mapping);

        json_array_foreach(group_type_mapping, i, v) {
            idx = decide_json_index(json_object_get(v, "group_type_index"));
            c = json_object_get(v, "group_type");
            if (json_is_string(c) && idx >= 0) {
                team->group_types[idx] = json_string_value(c);
            }
        }
    }

    /* cohorts keyed by id text */
    if (json_is_object(cohorts)) {
        json_object_foreach(cohorts, k, v) {
            if (json_object_set(team->cohorts, k, v) != 0) {
                goto nomem;
            }
        }

    } else if (json_is_array(cohorts)) {
        json_array_foreach(cohorts, i, v) {
            c = json_object_get(v, "id");

            if (json_is_integer(c)) {
                snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                         json_integer_value(c));
                k = buf;

            } else if (json_is_string(c)) {
                k = json_string_value(c);

            } else {
                continue;
            }

            if (json_object_set(team->cohorts, k, v) != 0) {
                goto nomem;
            }
        }
    }

    /* the first flag with a key or an id wins lookups */
    for (i = 0; i < team->nflags; i++) {
        v = json_array_get(flags, i);

        k = json_string_value(json_object_get(v, "key"));
        if (k && json_object_get(team->by_key, k) == NULL) {
            if (json_object_set_new(team->by_key, k, json_integer(i)) != 0) {
                goto nomem;
            }
        }

        c = json_object_get(v, "id");
        if (json_is_integer(c)) {
            snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(c));

            if (json_object_get(team->by_id, buf) == NULL
                && json_object_set_new(team->by_id, buf, json_integer(i))
                   != 0)
            {
                goto nomem;
            }
        }
    }

    /* cohorts first: conditions refer to them by index */
    if (decide_team_cohorts_compile(team) != 0) {
        goto nomem;
    }

    for (i = 0; i < team->nflags; i++) {
        if (decide_team_flag_init(team, i) != 0) {
            goto nomem;
        }
    }

    return team;

nomem:

    snprintf(err, errlen, "out of memory");
    decide_team_free(team);

    return NULL;
}


/* bump allocation, zeroed, from chunks freed with the team */
static void *
decide_team_alloc(decide_team_t *team, size_t size)
{
    size_t           chunk, head;
    decide_arena_t  *a;

    /* malloc() alignment for the header and every block */
    head = (sizeof(decide_arena_t) + 15) & ~(size_t) 15;
    size = (size + 15) & ~(size_t) 15;
    a = team->arena;

    if (a == NULL || a->size - a->used < size) {
        chunk = (size > DECIDE_ARENA_CHUNK) ? size : DECIDE_ARENA_CHUNK;

        a = malloc(head + chunk);
        if (a == NULL) {
            return NULL;
        }

        a->next = team->arena;
        a->used = 0;
        a->size = chunk;
        team->arena = a;
    }

    a->used += size;

    return memset((char *) a + head + a->used - size, 0, size);
}


static char *
decide_team_strdup(decide_team_t *team, const char *s, size_t len)
{
    char  *p;

    p = decide_team_alloc(team, len + 1);
    if (p == NULL) {
        return NULL;
    }

    memcpy(p, s, len);
    p[len] = '\0';

    return p;
}


static int
decide_team_flag_init(decide_team_t *team, size_t i)
{
    size_t          g, p, len;
    json_t         *fj, *groups, *cond, *filter, *v, *variants;
    const char     *s;
    decide_flag_t  *f;

    f = &team->flag[i];
    fj = json_array_get(team->flags, i);

    f->json = fj;
    f->agg = -1;
    f->key = json_string_value(json_object_get(fj, "key"));

    if (!json_is_object(fj) || f->key == NULL) {
        return 0;
    }

    f->id = json_integer_value(json_object_get(fj, "id"));
    f->version = json_integer_value(json_object_get(fj, "version"));
    f->filters = json_object_get(fj, "filters");

    if (!json_is_object(f->filters)) {
        f->filters = NULL;
    }

    /* active must be true; deleted flags are omitted like inactive ones */
    f->evaluable = json_is_true(json_object_get(fj, "active"))
                   && !json_is_true(json_object_get(fj, "deleted"));

    f->ec = json_is_true(json_object_get(fj,
                                         "ensure_experience_continuity"));

    s = json_string_value(json_object_get(fj, "bucketing_identifier"));
    f->device = (s && strcmp(s, "device_id") == 0);

    s = json_string_value(json_object_get(fj, "evaluation_runtime"));
    if (s && strcmp(s, "server") == 0) {
        f->runtime = DECIDE_RUNTIME_SERVER;

    } else if (s && strcmp(s, "client") == 0) {
        f->runtime = DECIDE_RUNTIME_CLIENT;

    } else {
        f->runtime = DECIDE_RUNTIME_ANY;
    }

    /* the hash salt prefix "<flag key>." */
    len = strlen(f->key);
    f->prefix = decide_team_alloc(team, len + 2);
    if (f->prefix == NULL) {
        return -1;
    }

    memcpy(f->prefix, f->key, len);
    f->prefix[len] = '.';
    f->prefix[len + 1] = '\0';
    f->prefix_len = len + 1;

    if (f->filters == NULL) {
        return 0;
    }

    f->agg = decide_json_index(json_object_get(f->filters,
                                               "aggregation_group_type_index"));

    v = json_object_get(json_object_get(f->filters, "holdout"), "id");
    if (json_is_integer(v)) {
        snprintf(f->holdout_variant, sizeof(f->holdout_variant),
                 "holdout-%" JSON_INTEGER_FORMAT, json_integer_value(v));
    }

    variants = json_object_get(json_object_get(f->filters, "multivariate"),
                               "variants");
    groups = json_object_get(f->filters, "groups");

    /* continuity matters only where hashing decides (spec 3.9 step 1) */
    if (f->ec && !f->device) {
        f->needs_hash_key = json_array_size(variants) > 0;

        json_array_foreach(groups, g, cond) {
            v = json_object_get(cond, "rollout_percentage");
            if (json_is_number(v) && json_number_value(v) < 100.0) {
                f->needs_hash_key = 1;
            }
        }
    }

    /* flag-on-flag dependencies of all conditions */
    json_array_foreach(groups, g, cond) {
        json_array_foreach(json_object_get(cond, "properties"), p, filter) {
            s = json_string_value(json_object_get(filter, "type"));
            if (s && strcmp(s, "flag") == 0) {
                f->ndeps++;
            }
        }
    }

    if (f->ndeps) {
        f->deps = decide_team_alloc(team, f->ndeps * sizeof(int));
        if (f->deps == NULL) {
            return -1;
        }

        f->ndeps = 0;

        json_array_foreach(groups, g, cond) {
            json_array_foreach(json_object_get(cond, "properties"), p,
                               filter)
            {
                s = json_string_value(json_object_get(filter, "type"));
                if (s && strcmp(s, "flag") == 0) {
                    f->deps[f->ndeps++] =
                        decide_team_resolve(team,
                                            json_object_get(filter, "key"));
                }
            }
        }
    }

    return decide_team_flag_compile(team, f);
}


/* conditions, variants, payloads, enrollment, super groups, holdouts */
static int
decide_team_flag_compile(decide_team_t *team, decide_flag_t *f)
{
    int             agg;
    char            key[DECIDE_ENROLL_MAX];
    double          cum;
    size_t          i, n;
    json_t         *groups, *cond, *variants, *var, *v, *h, *sg;
    const char     *k;

    f->payloads = json_object_get(f->filters, "payloads");

    if (decide_team_payload_compile(team, &f->payload_true, f->payloads,
                                    "true")
        != 0)
    {
        return -1;
    }

    /* the same left-to-right binary64 sum as decide_hash_variant_index */
    variants = json_object_get(json_object_get(f->filters, "multivariate"),
                               "variants");
    f->nvariants = json_array_size(variants);

    if (f->nvariants) {
        f->variant = decide_team_alloc(team,
                                       f->nvariants * sizeof(decide_variant_t));
        if (f->variant == NULL) {
            return -1;
        }

        cum = 0.0;

        json_array_foreach(variants, i, var) {
            v = json_object_get(var, "rollout_percentage");
            cum += (json_is_number(v) ? json_number_value(v) : 0.0) / 100.0;

            f->variant[i].cum = cum;
            f->variant[i].key = json_string_value(json_object_get(var,
                                                                  "key"));

            if (f->variant[i].key
                && decide_team_payload_compile(team, &f->variant[i].payload,
                                               f->payloads,
                                               f->variant[i].key)
                   != 0)
            {
                return -1;
            }
        }
    }

    groups = json_object_get(f->filters, "groups");
    f->nconds = json_array_size(groups);

    if (f->nconds) {
        f->cond = decide_team_alloc(team, f->nconds * sizeof(decide_cond_t));
        if (f->cond == NULL) {
            return -1;
        }

        json_array_foreach(groups, i, cond) {
            v = json_object_get(cond, "aggregation_group_type_index");

            /* absent inherits the flag's aggregation, null means person */
            agg = v ? decide_json_index(v) : f->agg;

            if (decide_team_cond_compile(team, f, &f->cond[i], cond, agg)
                != 0)
            {
                return -1;
            }
        }
    }

    f->early_exit = json_is_true(json_object_get(f->filters, "early_exit"));

    if (json_is_true(json_object_get(f->filters, "feature_enrollment"))
        && snprintf(key, sizeof(key), "$feature_enrollment/%s", f->key)
           < (int) sizeof(key))
    {
        f->enroll_key = decide_team_strdup(team, key, strlen(key));
        if (f->enroll_key == NULL) {
            return -1;
        }
    }

    sg = json_array_get(json_object_get(f->filters, "super_groups"), 0);

    if (json_is_object(sg)) {
        f->has_super = 1;

        if (decide_team_cond_compile(team, f, &f->super, sg, -1) != 0) {
            return -1;
        }

        v = json_object_get(sg, "properties");
        f->nsuper_props = json_array_size(v);

        if (f->nsuper_props) {
            f->super_keys = decide_team_alloc(team,
                                        f->nsuper_props * sizeof(char *));
            if (f->super_keys == NULL) {
                return -1;
            }
        }

        n = 0;

        json_array_foreach(v, i, cond) {
            k = json_string_value(json_object_get(cond, "key"));
            if (k) {
                f->super_keys[n++] = k;
            }
        }

        f->nsuper_keys = n;
    }

    h = json_object_get(f->filters, "holdout");

    if (json_is_object(h) && f->holdout_variant[0]) {
        f->holdout = DECIDE_HOLDOUT_OBJECT;

        v = json_object_get(h, "exclusion_percentage");
        f->holdout_pct = json_is_number(v) ? json_number_value(v) : 0.0;

        if (f->holdout_pct < 0.0) {
            f->holdout_pct = 0.0;
        }

        if (f->holdout_pct > 100.0) {
            f->holdout_pct = 100.0;
        }

        return decide_team_payload_compile(team, &f->holdout_payload,
                                           f->payloads, f->holdout_variant);
    }

    h = json_array_get(json_object_get(f->filters, "holdout_groups"), 0);

    /* holdout groups with properties never apply */
    if (json_is_object(h)
        && json_array_size(json_object_get(h, "properties")) == 0)
    {
        f->holdout = DECIDE_HOLDOUT_GROUPS;

        v = json_object_get(h, "rollout_percentage");
        f->holdout_has_pct = json_is_number(v);
        f->holdout_pct = json_number_value(v);
        f->holdout_group_variant = json_string_value(json_object_get(h,
                                                                "variant"));
    }

    return 0;
}


static int
decide_team_cond_compile(decide_team_t *team, decide_flag_t *f,
    decide_cond_t *c, const json_t *cond, int agg)
{
    size_t        i;
    json_t       *v;
    const char   *variant;

    c->agg = agg;

    v = json_object_get(cond, "rollout_percentage");
    c->has_rollout = json_is_number(v);
    c->rollout = json_number_value(v);

    /* an override that names no variant of the flag is ignored */
    variant = json_string_value(json_object_get(cond, "variant"));

    for (i = 0; variant && i < f->nvariants; i++) {
        if (f->variant[i].key && strcmp(f->variant[i].key, variant) == 0) {
            c->variant = variant;
            break;
        }
    }

    return decide_team_filters_compile(team, &c->filters,
                                       json_object_get(cond, "properties"),
                                       agg);
}


static int
decide_team_filters_compile(decide_team_t *team, decide_filters_t *fs,
    const json_t *props, int agg)
{
    size_t   i;
    json_t  *filter;

    fs->n = json_array_size(props);

    if (fs->n == 0) {
        return 0;
    }

    fs->filter = decide_team_alloc(team, fs->n * sizeof(decide_filter_t));
    if (fs->filter == NULL) {
        return -1;
    }

    json_array_foreach(props, i, filter) {
        decide_team_filter_compile(team, &fs->filter[i], filter, agg);

        if (fs->filter[i].kind == DECIDE_FILTER_COHORT) {
            fs->cohorts = 1;
        }
    }

    return 0;
}


/* spec 3.4: what decide_eval_property() and friends need of a filter */
static void
decide_team_filter_compile(decide_team_t *team, decide_filter_t *ft,
    const json_t *filter, int agg)
{
    int          gti;
    const char  *type, *op;

    type = json_string_value(json_object_get(filter, "type"));
    ft->kind = DECIDE_FILTER_NEVER;
    ft->index = -1;

    if (type && strcmp(type, "cohort") == 0) {
        ft->kind = DECIDE_FILTER_COHORT;
        ft->index = decide_team_cohort_ref(team,
                                           json_object_get(filter, "value"));

        op = json_string_value(json_object_get(filter, "operator"));

        if (op == NULL || strcmp(op, "in") == 0 || strcmp(op, "exact") == 0)
        {
            ft->cohort_op = DECIDE_COHORT_IN;

        } else if (strcmp(op, "not_in") == 0) {
            ft->cohort_op = DECIDE_COHORT_NOT_IN;

        } else {
            ft->cohort_op = DECIDE_COHORT_OTHER;
        }

        return;
    }

    if (type && strcmp(type, "flag") == 0) {
        op = json_string_value(json_object_get(filter, "operator"));

        if (op && strcmp(op, "flag_evaluates_to") == 0) {
            ft->index = decide_team_resolve(team,
                                            json_object_get(filter, "key"));
            ft->value = json_object_get(filter, "value");
            ft->kind = (ft->index < 0) ? DECIDE_FILTER_NEVER
                                       : DECIDE_FILTER_FLAG;
        }

        return;
    }

    decide_props_prepare(&ft->pf, filter, team->regex);

    if (ft->pf.key == NULL) {
        return;
    }

    if (type && strcmp(type, "group") == 0) {
        gti = decide_json_index(json_object_get(filter, "group_type_index"));
        ft->index = (gti < 0) ? agg : gti;

        if (ft->index >= 0) {
            ft->kind = DECIDE_FILTER_GROUP;
        }

    } else if (type == NULL && agg >= 0) {
        /* legacy untyped filters follow the condition's aggregation */
        ft->kind = DECIDE_FILTER_GROUP;
        ft->index = agg;

    } else if (type == NULL || strcmp(type, "person") == 0) {
        ft->kind = DECIDE_FILTER_PERSON;
    }

    /* person_metadata, behavioural, ...: not evaluable here */
}


/* the payload stored for key, rendered once as compact JSON */
static int
decide_team_payload_compile(decide_team_t *team, decide_payload_t *p,
    const json_t *payloads, const char *key)
{
    char  *s;

    p->json = json_object_get(payloads, key);
    p->text = NULL;
    p->len = 0;

    if (p->json == NULL) {
        return 0;
    }

    s = json_dumps(p->json, JSON_COMPACT|JSON_ENCODE_ANY);
    if (s == NULL) {
        return -1;
    }

    p->len = strlen(s);
    p->text = decide_team_strdup(team, s, p->len);
    free(s);

    return p->text ? 0 : -1;
}


/* every cohort of team->cohorts, indexed in the same order */
static int
decide_team_cohorts_compile(decide_team_t *team)
{
    size_t            i, j;
    json_t           *cohort, *filters, *props, *groups, *g;
    const char       *k;
    decide_cohort_t  *ch;

    team->ncohorts = json_object_size(team->cohorts);

    if (team->ncohorts == 0) {
        return 0;
    }

    team->cohort = decide_team_alloc(team,
                                     team->ncohorts * sizeof(decide_cohort_t));
    if (team->cohort == NULL) {
        return -1;
    }

    i = 0;

    json_object_foreach(team->cohorts, k, cohort) {
        team->cohort[i].id = k;

        if (json_object_set_new(team->cohort_index, k, json_integer(i)) != 0)
        {
            return -1;
        }

        i++;
    }

    /* bodies after the index, so references between cohorts resolve */
    for (i = 0; i < team->ncohorts; i++) {
        ch = &team->cohort[i];
        cohort = json_object_get(team->cohorts, ch->id);

        if (!json_is_object(cohort)
            || json_is_true(json_object_get(cohort, "deleted")))
        {
            ch->kind = DECIDE_COHORT_MISSING;
            continue;
        }

        if (json_is_true(json_object_get(cohort, "is_static"))) {
            ch->kind = DECIDE_COHORT_STATIC;
            ch->n = strtoll(ch->id, NULL, 10);
            continue;
        }

        filters = json_object_get(cohort, "filters");
        props = json_object_get(filters, "properties");

        if (json_is_object(props)) {
            ch->kind = DECIDE_COHORT_TREE;

            if (decide_team_node_compile(team, &ch->root, props, 0) != 0) {
                return -1;
            }

            continue;
        }

        /* legacy "groups": OR of ANDed property lists */
        ch->kind = DECIDE_COHORT_LEGACY;
        groups = json_object_get(cohort, "groups");
        ch->ngroups = json_array_size(groups);

        if (ch->ngroups == 0) {
            continue;
        }

        ch->groups = decide_team_alloc(team,
                                       ch->ngroups * sizeof(decide_filters_t));
        if (ch->groups == NULL) {
            return -1;
        }

        json_array_foreach(groups, j, g) {
            if (decide_team_filters_compile(team, &ch->groups[j],
                                            json_object_get(g, "properties"),
                                            -1)
                != 0)
            {
                return -1;
            }
        }
    }

    return 0;
}


/* {"type": "AND"|"OR", "values": [node or filter, ...]} or a leaf */
static int
decide_team_node_compile(decide_team_t *team, decide_node_t *nd,
    const json_t *node, int depth)
{
    size_t       i;
    json_t      *values, *child;
    const char  *type;

    /* deeper than evaluation may go: it would fail there anyway */
    if (depth > DECIDE_DEPTH_MAX) {
        nd->kind = DECIDE_NODE_TOO_DEEP;
        return 0;
    }

    type = json_string_value(json_object_get(node, "type"));
    values = json_object_get(node, "values");

    nd->kind = (type && strcmp(type, "OR") == 0) ? DECIDE_NODE_OR
                                                 : DECIDE_NODE_AND;
    nd->n = json_array_size(values);

    if (nd->n == 0) {
        return 0;
    }

    nd->child = decide_team_alloc(team, nd->n * sizeof(decide_node_t));
    if (nd->child == NULL) {
        return -1;
    }

    json_array_foreach(values, i, child) {
        if (json_is_array(json_object_get(child, "values"))) {
            if (decide_team_node_compile(team, &nd->child[i], child,
                                         depth + 1)
                != 0)
            {
                return -1;
            }

            continue;
        }

        /* a leaf */
        type = json_string_value(json_object_get(child, "type"));
        nd->child[i].negation = json_is_true(json_object_get(child,
                                                             "negation"));

        if (type && strcmp(type, "cohort") == 0) {
            nd->child[i].kind = DECIDE_NODE_COHORT;
            nd->child[i].index = decide_team_cohort_ref(team,
                                         json_object_get(child, "value"));

        } else if ((type == NULL || strcmp(type, "person") == 0)
                   && json_is_string(json_object_get(child, "key")))
        {
            nd->child[i].kind = DECIDE_NODE_PERSON;
            decide_props_prepare(&nd->child[i].pf, child, team->regex);

        } else {
            /* keyless, or behavioural: needs an event store, never */
            nd->child[i].kind = DECIDE_NODE_NEVER;
        }
    }

    return 0;
}


/* a cohort filter's value (id or id text): index, -1 if not usable */
static int
decide_team_cohort_ref(const decide_team_t *team, const json_t *id)
{
    char         buf[DECIDE_NUM_BUF];
    json_t      *v;
    const char  *k;

    if (json_is_integer(id)) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(id));
        k = buf;

    } else if (json_is_string(id)) {
        k = json_string_value(id);

    } else {
        return -1;
    }

    v = json_object_get(team->cohort_index, k);

    return v ? (int) json_integer_value(v) : -1;
}


/*
 * A dependency names its target by key (local-evaluation feed) or by
 * id as text (Postgres); -1 when neither exists.
 */
static int
decide_team_resolve(const decide_team_t *team, const json_t *key)
{
    char         buf[DECIDE_NUM_BUF];
    json_t      *v;
    const char  *k;

    if (json_is_integer(key)) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(key));
        k = buf;

    } else {
        k = json_string_value(key);
        if (k == NULL) {
            return -1;
        }

        v = json_object_get(team->by_key, k);
        if (v) {
            return (int) json_integer_value(v);
        }
    }

    v = json_object_get(team->by_id, k);

    return v ? (int) json_integer_value(v) : -1;
}


void
decide_team_free(decide_team_t *team)
{
    decide_arena_t  *a, *next;

    if (team == NULL) {
        return;
    }

    for (a = team->arena; a; a = next) {
        next = a->next;
        free(a);
    }

    free(team->flag);
    decide_regex_cache_free(team->regex);

    /* json_decref() accepts NULL */
    json_decref(team->flags);
    json_decref(team->by_key);
    json_decref(team->by_id);
    json_decref(team->cohorts);
    json_decref(team->cohort_index);
    json_decref(team->mapping);
    free(team);
}


size_t
decide_team_nflags(const decide_team_t *team)
{
    return team->nflags;
}


const char *
decide_team_flag_key(const decide_team_t *team, size_t i, json_int_t *id,
    json_int_t *version)
{
    const decide_flag_t  *f;

    f = &team->flag[i];
    *id = f->id;
    *version = f->version;

    /* flags without a key are never evaluated, hence never answered */
    return f->prefix ? f->key : NULL;
}


int
decide_team_group_type_index(const decide_team_t *team, const char *name)
{
    int  i;

    for (i = 0; i < DECIDE_GROUP_TYPES_MAX; i++) {
        if (team->group_types[i] && strcmp(team->group_types[i], name) == 0)
        {
            return i;
        }
    }

    return -1;
}


/* a group type index: integer or numeric string 0..4, else -1 */
static int
decide_json_index(const json_t *v)
{
    json_int_t   n;
    const char  *s;

    if (json_is_integer(v)) {
        n = json_integer_value(v);

    } else if (json_is_string(v)) {
        s = json_string_value(v);
        if (s[0] < '0' || s[0] > '9' || s[1] != '\0') {
            return -1;
        }

        n = s[0] - '0';

    } else {
        return -1;
    }

    return (n >= 0 && n < DECIDE_GROUP_TYPES_MAX) ? (int) n : -1;
}


unsigned
decide_eval_flags(const decide_team_t *team, const decide_request_t *req,
    decide_result_t *out)
{
    size_t        i;
    unsigned      need;
    decide_ctx_t  ctx;

    ctx.team = team;
    ctx.req = req;
    ctx.out = out;
    ctx.pctx.now = req->now;
    ctx.pctx.regex = team->regex;

    for (i = 0; i < team->nflags; i++) {
        memset(&out[i], 0, sizeof(decide_result_t));
        out[i].status = DECIDE_STATUS_PENDING;
    }

    need = 0;

    for (i = 0; i < team->nflags; i++) {
        decide_eval_flag(&ctx, i, 0);
        need |= out[i].need;
    }

    return need;
}


/* evaluates flag i after its dependencies (memoised in ctx->out) */
static void
decide_eval_flag(decide_ctx_t *ctx, size_t i, int depth)
{
    int               missing;
    size_t            d;
    decide_flag_t    *f;
    decide_result_t  *r, *t;

    r = &ctx->out[i];

    if (r->status != DECIDE_STATUS_PENDING) {
        return;
    }

    f = &ctx->team->flag[i];

    r->key = f->key;
    r->id = f->id;
    r->version = f->version;
    r->condition_index = -1;

    if (!f->evaluable
        || (f->runtime != DECIDE_RUNTIME_ANY
            && ctx->req->runtime != DECIDE_RUNTIME_ANY
            && (int) f->runtime != (int) ctx->req->runtime))
    {
        r->status = DECIDE_STATUS_OMITTED;
        return;
    }

    r->status = DECIDE_STATUS_BUSY;

    /*
     * Dependencies first, as the server's topological stages do; a
     * missing or cyclic one fails the flag closed even if the condition
     * that names it would not be reached.
     */
    missing = 0;

    for (d = 0; d < f->ndeps; d++) {
        if (f->deps[d] < 0) {
            missing = 1;
            continue;
        }

        t = &ctx->out[f->deps[d]];

        if (t->status == DECIDE_STATUS_BUSY || depth >= DECIDE_DEPTH_MAX) {
            /* a cycle: the server reports it as an error too */
            missing = 1;
            r->errors = 1;
            continue;
        }

        decide_eval_flag(ctx, (size_t) f->deps[d], depth + 1);

        if (t->status == DECIDE_STATUS_NEEDS_LOOKUP) {
            r->need |= t->need;

        } else if (t->status == DECIDE_STATUS_OK
                   && t->reason == DECIDE_REASON_MISSING_DEPENDENCY)
        {
            missing = 1;
        }
    }

    if (missing) {
        r->status = DECIDE_STATUS_OK;
        r->reason = DECIDE_REASON_MISSING_DEPENDENCY;
        return;
    }

    if (r->need) {
        r->status = DECIDE_STATUS_NEEDS_LOOKUP;
        return;
    }

    if (f->needs_hash_key && !ctx->req->overrides_loaded) {
        r->status = DECIDE_STATUS_NEEDS_LOOKUP;
        r->need = DECIDE_NEED_HASH_KEY;
        return;
    }

    r->status = DECIDE_STATUS_OK;

    decide_eval_match(ctx, f, r);

    if (r->status != DECIDE_STATUS_OK) {
        r->enabled = 0;
        r->variant = NULL;
        r->payload = NULL;
        r->payload_json = NULL;
        r->payload_json_len = 0;
    }
}


/* spec 3.3 get_match */
static void
decide_eval_match(decide_ctx_t *ctx, decide_flag_t *f, decide_result_t *r)
{
    int              rc, skip, in;
    char             buf[DECIDE_NUM_BUF];
    size_t           i, len;
    unsigned         need;
    const char      *id, *variant, *err;
    decide_cond_t   *c;
    decide_reason_e  reason, best;
    int              best_index;

    if (f->filters == NULL) {
        r->reason = DECIDE_REASON_NO_GROUP_TYPE;
        return;
    }

    rc = decide_eval_super(ctx, f, r);
    if (rc != DECIDE_NO) {
        return;
    }

    rc = decide_eval_holdout(ctx, f, r);
    if (rc != DECIDE_NO) {
        return;
    }

    best = DECIDE_REASON_NO_GROUP_TYPE;
    best_index = -1;

    for (i = 0; i < f->nconds; i++) {
        c = &f->cond[i];

        skip = decide_eval_identifier(ctx, f, c->agg, 1, &id, &len, buf);

        if (skip == DECIDE_ID_NO_GROUP) {
            reason = DECIDE_REASON_NO_GROUP_TYPE;
            r->groups_skipped = 1;
            goto next;
        }

        if (skip == DECIDE_ID_NO_DEVICE) {
            reason = DECIDE_REASON_OUT_OF_ROLLOUT_BOUND;
            goto next;
        }

        need = 0;
        err = NULL;

        rc = decide_eval_filters(ctx, &c->filters, 0, &need, &err);

        if (rc == DECIDE_ERR) {
            r->status = DECIDE_STATUS_FAILED;
            r->reason = DECIDE_REASON_ERROR;
            r->error = err;
            r->errors = 1;
            return;
        }

        if (rc == DECIDE_NEED) {
            r->status = DECIDE_STATUS_NEEDS_LOOKUP;
            r->need = need;
            return;
        }

        if (rc == DECIDE_NO) {
            reason = DECIDE_REASON_NO_CONDITION_MATCH;
            goto next;
        }

        in = decide_eval_rollout(f, c, id, len);

        if (!in) {
            reason = DECIDE_REASON_OUT_OF_ROLLOUT_BOUND;

            if (f->early_exit) {
                r->reason = reason;
                r->condition_index = (int) i;
                return;
            }

            goto next;
        }

        variant = c->variant ? c->variant : decide_eval_variant(f, id, len);

        r->enabled = 1;
        r->variant = variant;
        decide_eval_payload(f, variant, r);
        r->reason = DECIDE_REASON_CONDITION_MATCH;
        r->condition_index = (int) i;
        return;

    next:

        /* ties go to the later condition */
        if (reason >= best) {
            best = reason;
            best_index = (int) i;
        }
    }

    r->reason = best;
    r->condition_index = best_index;
}


/* feature enrollment and legacy super_groups[0] (spec 3.3 step 1) */
static int
decide_eval_super(decide_ctx_t *ctx, decide_flag_t *f, decide_result_t *r)
{
    int           rc, skip;
    char          buf[DECIDE_NUM_BUF];
    size_t        i, len;
    json_t       *v, *props;
    unsigned      need;
    const char   *id, *err;

    props = ctx->req->person_properties;

    if (f->enroll_key) {
        v = json_object_get(props, f->enroll_key);

        if (v == NULL && !ctx->req->person_loaded) {
            r->status = DECIDE_STATUS_NEEDS_LOOKUP;
            r->need = DECIDE_NEED_PERSON;
            return DECIDE_NEED;
        }

        if (v) {
            r->enabled = json_is_true(v)
                         || (json_is_string(v)
                             && strcmp(json_string_value(v), "true") == 0);
            goto matched;
        }
    }

    if (!f->has_super) {
        return DECIDE_NO;
    }

    /* it applies only when one of its keys is known for the person */
    rc = 0;

    for (i = 0; i < f->nsuper_keys; i++) {
        if (json_object_get(props, f->super_keys[i])) {
            rc = 1;
            break;
        }
    }

    if (!rc) {
        if (!ctx->req->person_loaded && f->nsuper_props) {
            r->status = DECIDE_STATUS_NEEDS_LOOKUP;
            r->need = DECIDE_NEED_PERSON;
            return DECIDE_NEED;
        }

        return DECIDE_NO;
    }

    need = 0;
    err = NULL;

    rc = decide_eval_filters(ctx, &f->super.filters, 0, &need, &err);

    if (rc == DECIDE_NEED) {
        r->status = DECIDE_STATUS_NEEDS_LOOKUP;
        r->need = need;
        return rc;
    }

    if (rc == DECIDE_ERR) {
        r->status = DECIDE_STATUS_FAILED;
        r->reason = DECIDE_REASON_ERROR;
        r->error = err;
        r->errors = 1;
        return rc;
    }

    r->enabled = 0;

    if (rc == DECIDE_YES) {
        skip = decide_eval_identifier(ctx, f, -1, 1, &id, &len, buf);
        r->enabled = (skip == DECIDE_ID_OK
                      && decide_eval_rollout(f, &f->super, id, len));
    }

matched:

    r->reason = DECIDE_REASON_SUPER_CONDITION_VALUE;
    r->condition_index = 0;
    r->variant = NULL;

    if (r->enabled) {
        decide_eval_payload(f, NULL, r);
    }

    return DECIDE_YES;
}


/* spec 3.8 */
static int
decide_eval_holdout(decide_ctx_t *ctx, decide_flag_t *f, decide_result_t *r)
{
    int           skip;
    char          buf[DECIDE_NUM_BUF];
    size_t        len;
    const char   *id, *variant;

    switch (f->holdout) {

    case DECIDE_HOLDOUT_OBJECT:
        if (f->holdout_pct < 100.0) {
            /* stored hash-key overrides do not apply to holdouts */
            skip = decide_eval_identifier(ctx, f, f->agg, 0, &id, &len, buf);
            if (skip != DECIDE_ID_OK) {
                return DECIDE_NO;
            }

            /* no empty-identifier shortcut here: "holdout-" is hashed */
            if (decide_hash_sha1_60("holdout-", 8, id, len, "", 0)
                > f->holdout_pct / 100.0)
            {
                return DECIDE_NO;
            }
        }

        r->enabled = 1;
        r->variant = f->holdout_variant;
        r->payload = f->holdout_payload.json;
        r->payload_json = f->holdout_payload.text;
        r->payload_json_len = f->holdout_payload.len;
        break;

    case DECIDE_HOLDOUT_GROUPS:
        skip = decide_eval_identifier(ctx, f, f->agg, 0, &id, &len, buf);
        if (skip != DECIDE_ID_OK) {
            return DECIDE_NO;
        }

        if (f->holdout_has_pct
            && decide_hash_sha1_60("holdout-", 8, id, len, "", 0)
               > f->holdout_pct / 100.0)
        {
            return DECIDE_NO;
        }

        variant = f->holdout_group_variant;

        if (variant == NULL) {
            variant = decide_eval_variant(f, id, len);
        }

        if (variant == NULL) {
            variant = "holdout";
        }

        r->enabled = 1;
        r->variant = variant;
        decide_eval_payload(f, variant, r);
        break;

    default:
        return DECIDE_NO;
    }

    r->reason = DECIDE_REASON_HOLDOUT_CONDITION_VALUE;
    r->condition_index = -1;

    return DECIDE_YES;
}


/* spec 3.2; overrides: whether stored hash-key overrides apply */
static int
decide_eval_identifier(decide_ctx_t *ctx, decide_flag_t *f, int agg,
    int overrides, const char **id, size_t *len, char *buf)
{
    int                      n;
    json_t                  *v;
    const char              *name, *s;
    const decide_request_t  *req;

    req = ctx->req;

    if (agg >= 0) {
        name = ctx->team->group_types[agg];
        if (name == NULL) {
            return DECIDE_ID_NO_GROUP;
        }

        v = json_object_get(req->groups, name);

        if (json_is_string(v) && json_string_length(v) > 0) {
            s = json_string_value(v);
            *id = s;
            *len = decide_hash_truncate(s, json_string_length(v));
            return DECIDE_ID_OK;
        }

        if (json_is_integer(v)) {
            n = snprintf(buf, DECIDE_NUM_BUF, "%" JSON_INTEGER_FORMAT,
                         json_integer_value(v));
            *id = buf;
            *len = (size_t) n;
            return DECIDE_ID_OK;
        }

        return DECIDE_ID_NO_GROUP;
    }

    s = NULL;

    if (f->device) {
        if (req->device_id == NULL || req->device_id[0] == '\0') {
            return DECIDE_ID_NO_DEVICE;
        }

        s = req->device_id;

    } else if (overrides && req->hash_key_overrides
               && (v = json_object_get(req->hash_key_overrides, f->key))
               && json_is_string(v))
    {
        s = json_string_value(v);

    } else if (f->ec && req->anon_distinct_id
               && req->anon_distinct_id[0] != '\0')
    {
        s = req->anon_distinct_id;
    }

    if (s == NULL) {
        s = req->distinct_id ? req->distinct_id : "";
    }

    *id = s;
    *len = decide_hash_truncate(s, strlen(s));

    return DECIDE_ID_OK;
}


/*
 * The AND of a condition's filters (spec 3.4): flag and property
 * filters in order, cohorts last.  Kleene logic over DECIDE_NEED, so a
 * definite "no" wins over a pending lookup.  depth: cohort nesting.
 */
static int
decide_eval_filters(decide_ctx_t *ctx, const decide_filters_t *fs,
    int depth, unsigned *need, const char **err)
{
    int                     rc, pending;
    size_t                  i;
    const decide_filter_t  *ft;

    pending = 0;

    for (i = 0; i < fs->n; i++) {
        ft = &fs->filter[i];

        switch (ft->kind) {
        case DECIDE_FILTER_COHORT:
            continue;
        case DECIDE_FILTER_FLAG:
            rc = decide_eval_flag_filter(ctx, ft);
            break;
        case DECIDE_FILTER_NEVER:
            return DECIDE_NO;
        default:
            rc = decide_eval_property(ctx, ft, need);
            break;
        }

        if (rc == DECIDE_NO) {
            return DECIDE_NO;
        }

        if (rc == DECIDE_NEED) {
            pending = 1;
        }
    }

    for (i = 0; fs->cohorts && i < fs->n; i++) {
        ft = &fs->filter[i];

        if (ft->kind != DECIDE_FILTER_COHORT) {
            continue;
        }

        rc = decide_eval_cohort(ctx, ft->index, depth, need, err);

        if (rc == DECIDE_ERR) {
            return rc;
        }

        if (ft->cohort_op == DECIDE_COHORT_NOT_IN && rc != DECIDE_NEED) {
            rc = (rc == DECIDE_YES) ? DECIDE_NO : DECIDE_YES;

        } else if (ft->cohort_op == DECIDE_COHORT_OTHER) {
            rc = DECIDE_NO;
        }

        if (rc == DECIDE_NO) {
            return DECIDE_NO;
        }

        if (rc == DECIDE_NEED) {
            pending = 1;
        }
    }

    return pending ? DECIDE_NEED : DECIDE_YES;
}


static int
decide_eval_property(decide_ctx_t *ctx, const decide_filter_t *ft,
    unsigned *need)
{
    int            known;
    const json_t  *props, *prop;

    if (ft->kind == DECIDE_FILTER_GROUP) {
        props = decide_eval_group_props(ctx, ft->index, &known);
        prop = json_object_get(props, ft->pf.key);

        if (prop == NULL && known && !ctx->req->groups_loaded) {
            *need |= DECIDE_NEED_GROUPS;
            return DECIDE_NEED;
        }

    } else {
        prop = json_object_get(ctx->req->person_properties, ft->pf.key);

        if (prop == NULL && !ctx->req->person_loaded) {
            *need |= DECIDE_NEED_PERSON;
            return DECIDE_NEED;
        }
    }

    return decide_props_match_prepared(&ft->pf, prop, &ctx->pctx)
           ? DECIDE_YES : DECIDE_NO;
}


/*
 * The properties of group type gti named in the request; *known tells
 * whether the request names a key for that group at all (only then
 * can a lookup find anything).
 */
static const json_t *
decide_eval_group_props(decide_ctx_t *ctx, int gti, int *known)
{
    const char  *name;

    name = ctx->team->group_types[gti];

    if (known) {
        *known = name && json_object_get(ctx->req->groups, name) != NULL;
    }

    if (name == NULL) {
        return NULL;
    }

    return json_object_get(ctx->req->group_properties, name);
}


/* spec 3.7: dependencies were evaluated before this flag */
static int
decide_eval_flag_filter(decide_ctx_t *ctx, const decide_filter_t *ft)
{
    const json_t     *value;
    decide_result_t  *t;

    t = &ctx->out[ft->index];
    value = ft->value;

    /* filtered-out and failed dependencies count as false */
    if (t->status != DECIDE_STATUS_OK) {
        return json_is_false(value) ? DECIDE_YES : DECIDE_NO;
    }

    if (json_is_true(value)) {
        return t->enabled ? DECIDE_YES : DECIDE_NO;
    }

    if (json_is_false(value)) {
        return t->enabled ? DECIDE_NO : DECIDE_YES;
    }

    if (json_is_string(value)) {
        return (t->enabled && t->variant
                && strcmp(t->variant, json_string_value(value)) == 0)
               ? DECIDE_YES : DECIDE_NO;
    }

    return DECIDE_NO;
}


/* spec 4.6 */
static int
decide_eval_cohort(decide_ctx_t *ctx, int index, int depth, unsigned *need,
    const char **err)
{
    int               rc, pending;
    size_t            i;
    json_t           *item;
    unsigned          lneed;
    const decide_cohort_t  *ch;

    if (depth > DECIDE_DEPTH_MAX) {
        *err = "cohort_dependency_cycle";
        return DECIDE_ERR;
    }

    if (index < 0 || ctx->team->cohort[index].kind == DECIDE_COHORT_MISSING)
    {
        *err = "dependency_not_found_cohort";
        return DECIDE_ERR;
    }

    ch = &ctx->team->cohort[index];

    switch (ch->kind) {

    case DECIDE_COHORT_STATIC:
        if (!ctx->req->person_loaded) {
            *need |= DECIDE_NEED_PERSON;
            return DECIDE_NEED;
        }

        json_array_foreach(ctx->req->static_cohorts, i, item) {
            if ((json_is_integer(item) && json_integer_value(item) == ch->n)
                || (json_is_string(item)
                    && strcmp(json_string_value(item), ch->id) == 0))
            {
                return DECIDE_YES;
            }
        }

        return DECIDE_NO;

    case DECIDE_COHORT_TREE:
        return decide_eval_cohort_node(ctx, &ch->root, depth, need, err);

    default:
        break;
    }

    /* legacy "groups": OR of ANDed property lists */
    pending = 0;

    for (i = 0; i < ch->ngroups; i++) {
        lneed = 0;

        /* cohort filters inside recurse through here: carry the depth */
        rc = decide_eval_filters(ctx, &ch->groups[i], depth + 1, &lneed,
                                 err);

        if (rc == DECIDE_YES || rc == DECIDE_ERR) {
            return rc;
        }

        if (rc == DECIDE_NEED) {
            *need |= lneed;
            pending = 1;
        }
    }

    /* unparseable or behavioural-only definitions: not a member */
    return pending ? DECIDE_NEED : DECIDE_NO;
}


static int
decide_eval_cohort_node(decide_ctx_t *ctx, const decide_node_t *nd,
    int depth, unsigned *need, const char **err)
{
    int                   rc, is_or, pending;
    size_t                i;
    const json_t         *prop;
    const decide_node_t  *child;

    if (depth > DECIDE_DEPTH_MAX || nd->kind == DECIDE_NODE_TOO_DEEP) {
        *err = "cohort_dependency_cycle";
        return DECIDE_ERR;
    }

    is_or = (nd->kind == DECIDE_NODE_OR);
    pending = 0;

    /* an empty group matches everyone in AND, no one in OR */
    if (nd->n == 0) {
        return is_or ? DECIDE_NO : DECIDE_YES;
    }

    for (i = 0; i < nd->n; i++) {
        child = &nd->child[i];

        switch (child->kind) {

        case DECIDE_NODE_AND:
        case DECIDE_NODE_OR:
        case DECIDE_NODE_TOO_DEEP:
            rc = decide_eval_cohort_node(ctx, child, depth + 1, need, err);
            break;

        case DECIDE_NODE_COHORT:
            rc = decide_eval_cohort(ctx, child->index, depth + 2, need, err);
            break;

        case DECIDE_NODE_PERSON:
            prop = json_object_get(ctx->req->person_properties,
                                   child->pf.key);

            if (prop == NULL && !ctx->req->person_loaded) {
                *need |= DECIDE_NEED_PERSON;
                rc = DECIDE_NEED;
                break;
            }

            rc = decide_props_match_prepared(&child->pf, prop, &ctx->pctx)
                 ? DECIDE_YES : DECIDE_NO;
            break;

        default:
            /* behavioural filters need an event store: never a member */
            rc = DECIDE_NO;
            break;
        }

        if ((child->kind == DECIDE_NODE_COHORT
             || child->kind == DECIDE_NODE_PERSON)
            && child->negation
            && (rc == DECIDE_YES || rc == DECIDE_NO))
        {
            rc = (rc == DECIDE_YES) ? DECIDE_NO : DECIDE_YES;
        }

        if (rc == DECIDE_ERR) {
            return rc;
        }

        if (rc == DECIDE_NEED) {
            pending = 1;
            continue;
        }

        if (is_or && rc == DECIDE_YES) {
            return DECIDE_YES;
        }

        if (!is_or && rc == DECIDE_NO) {
            return DECIDE_NO;
        }
    }

    if (pending) {
        return DECIDE_NEED;
    }

    return is_or ? DECIDE_NO : DECIDE_YES;
}


/* spec 3.1 rollout test, with the empty-identifier shortcut of 3.2 */
static int
decide_eval_rollout(const decide_flag_t *f, const decide_cond_t *c,
    const char *id, size_t len)
{
    double  h;

    if (!c->has_rollout || c->rollout == 100.0) {
        return 1;
    }

    h = (len == 0) ? 0.0 : decide_hash_sha1_60(f->prefix, f->prefix_len,
                                               id, len, "", 0);

    return decide_hash_in_rollout(h, c->rollout);
}


/* the hashed variant of 3.1, or NULL past the last boundary */
static const char *
decide_eval_variant(const decide_flag_t *f, const char *id, size_t len)
{
    double  h;
    size_t  i;

    if (f->nvariants == 0) {
        return NULL;
    }

    h = (len == 0) ? 0.0 : decide_hash_sha1_60(f->prefix, f->prefix_len,
                                               id, len, "variant", 7);

    for (i = 0; i < f->nvariants; i++) {
        if (h < f->variant[i].cum) {
            return f->variant[i].key;
        }
    }

    return NULL;
}


/* the payload of a variant (NULL: "true") with its prerendered text */
static void
decide_eval_payload(const decide_flag_t *f, const char *variant,
    decide_result_t *r)
{
    size_t                   i;
    const decide_payload_t  *p;

    p = NULL;

    if (variant == NULL) {
        p = &f->payload_true;

    } else {
        for (i = 0; i < f->nvariants; i++) {
            if (f->variant[i].key == variant) {
                p = &f->variant[i].payload;
                break;
            }
        }
    }

    if (p) {
        r->payload = p->json;
        r->payload_json = p->text;
        r->payload_json_len = p->len;
        return;
    }

    /* a holdout group's own variant name: looked up, rendered later */
    r->payload = json_object_get(f->payloads, variant);
    r->payload_json = NULL;
    r->payload_json_len = 0;
}


const char *
decide_reason_code(const decide_result_t *r)
{
    switch (r->reason) {
    case DECIDE_REASON_MISSING_DEPENDENCY:
        return "missing_dependency";
    case DECIDE_REASON_FLAG_DISABLED:
        return "flag_disabled";
    case DECIDE_REASON_NO_GROUP_TYPE:
        return "no_group_type";
    case DECIDE_REASON_NO_CONDITION_MATCH:
        return "no_condition_match";
    case DECIDE_REASON_OUT_OF_ROLLOUT_BOUND:
        return "out_of_rollout_bound";
    case DECIDE_REASON_CONDITION_MATCH:
        return "condition_match";
    case DECIDE_REASON_HOLDOUT_CONDITION_VALUE:
        return "holdout_condition_value";
    case DECIDE_REASON_SUPER_CONDITION_VALUE:
        return "super_condition_value";
    default:
        return r->error ? r->error : "unknown_error";
    }
}


const char *
decide_reason_text(const decide_result_t *r)
{
    switch (r->reason) {
    case DECIDE_REASON_MISSING_DEPENDENCY:
        return "Flag cannot be evaluated due to missing dependency";
    case DECIDE_REASON_FLAG_DISABLED:
        return "Feature flag is disabled";
    case DECIDE_REASON_NO_GROUP_TYPE:
        return "No group type";
    case DECIDE_REASON_NO_CONDITION_MATCH:
        return r->groups_skipped
               ? "No matching condition set (group conditions were not "
                 "evaluated because no group type was provided)"
               : "No matching condition set";
    case DECIDE_REASON_OUT_OF_ROLLOUT_BOUND:
        return "Out of rollout bound";
    case DECIDE_REASON_CONDITION_MATCH:
        return "Matched condition set ";
    case DECIDE_REASON_HOLDOUT_CONDITION_VALUE:
        return "Holdout condition value";
    case DECIDE_REASON_SUPER_CONDITION_VALUE:
        return "Super condition value";
    default:
        return "Flag evaluation failed";
    }
}


size_t
decide_reason_description(const decide_result_t *r, char *buf, size_t size)
{
    int  n;

    if (r->reason == DECIDE_REASON_CONDITION_MATCH) {
        n = snprintf(buf, size, "%s%d", decide_reason_text(r),
                     r->condition_index + 1);

    } else {
        n = snprintf(buf, size, "%s", decide_reason_text(r));
    }

    return (n < 0) ? 0 : ((size_t) n >= size ? size - 1 : (size_t) n);
}
