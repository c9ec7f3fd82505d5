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
    char                   holdout_variant[DECIDE_HOLDOUT_VARIANT];
    unsigned               evaluable:1;
    unsigned               ec:1;
    unsigned               device:1;
    unsigned               needs_hash_key:1;
    unsigned               runtime:2;
} decide_flag_t;


struct decide_team_s {
    json_t                *flags;
    json_t                *by_key;          /* key -> index */
    json_t                *by_id;           /* "id" -> index */
    json_t                *cohorts;         /* "id" -> cohort */
    json_t                *mapping;
    const char            *group_types[DECIDE_GROUP_TYPES_MAX];
    decide_flag_t         *flag;
    size_t                 nflags;
    decide_regex_cache_t  *regex;
};


typedef struct {
    const decide_team_t    *team;
    const decide_request_t *req;
    decide_result_t        *out;
    decide_props_ctx_t      pctx;
    int                     depth;      /* cohort nesting via "groups" */
} decide_ctx_t;


static int decide_team_flag_init(decide_team_t *team, size_t i);
static int decide_team_resolve(const decide_team_t *team, const json_t *key);
static void decide_team_regex_walk(decide_team_t *team, json_t *v,
    int depth);
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
static int decide_eval_filters(decide_ctx_t *ctx, decide_flag_t *f,
    const json_t *props, int agg, unsigned *need, const char **err);
static int decide_eval_property(decide_ctx_t *ctx, const json_t *filter,
    int agg, unsigned *need);
static int decide_eval_flag_filter(decide_ctx_t *ctx, const json_t *filter);
static int decide_eval_cohort(decide_ctx_t *ctx, const json_t *id,
    int depth, unsigned *need, const char **err);
static int decide_eval_cohort_node(decide_ctx_t *ctx, const json_t *node,
    int depth, unsigned *need, const char **err);
static int decide_eval_cohort_leaf(decide_ctx_t *ctx, const json_t *leaf,
    int depth, unsigned *need, const char **err);
static int decide_eval_rollout(const decide_flag_t *f, const json_t *cond,
    const char *id, size_t len);
static const char *decide_eval_variant(const decide_flag_t *f,
    const char *id, size_t len);
static int decide_eval_has_variant(const decide_flag_t *f,
    const char *variant);
static const json_t *decide_eval_payload(const decide_flag_t *f,
    const char *variant);
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
    team->regex = decide_regex_cache_create();

    if (team->by_key == NULL || team->by_id == NULL || team->cohorts == NULL
        || team->regex == NULL)
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

    for (i = 0; i < team->nflags; i++) {
        if (decide_team_flag_init(team, i) != 0) {
            goto nomem;
        }
    }

    /* compile every regex now, so requests never do */
    decide_team_regex_walk(team, flags, 0);
    decide_team_regex_walk(team, team->cohorts, 0);

    return team;

nomem:

    snprintf(err, errlen, "out of memory");
    decide_team_free(team);

    return NULL;
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

    len = strlen(f->key);
    f->prefix = malloc(len + 2);
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

    if (f->ndeps == 0) {
        return 0;
    }

    f->deps = malloc(f->ndeps * sizeof(int));
    if (f->deps == NULL) {
        return -1;
    }

    f->ndeps = 0;

    json_array_foreach(groups, g, cond) {
        json_array_foreach(json_object_get(cond, "properties"), p, filter) {
            s = json_string_value(json_object_get(filter, "type"));
            if (s && strcmp(s, "flag") == 0) {
                f->deps[f->ndeps++] =
                    decide_team_resolve(team, json_object_get(filter, "key"));
            }
        }
    }

    return 0;
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


static void
decide_team_regex_walk(decide_team_t *team, json_t *v, int depth)
{
    size_t       i;
    json_t      *item, *value;
    const char  *k, *op;
    char         buf[DECIDE_PROPS_STR_MAX];
    size_t       len;
    const char  *s;

    if (depth > DECIDE_DEPTH_MAX) {
        return;
    }

    if (json_is_array(v)) {
        json_array_foreach(v, i, item) {
            decide_team_regex_walk(team, item, depth + 1);
        }

        return;
    }

    if (!json_is_object(v)) {
        return;
    }

    op = json_string_value(json_object_get(v, "operator"));
    value = json_object_get(v, "value");

    if (op && value && !json_is_null(value)
        && (strcmp(op, "regex") == 0 || strcmp(op, "not_regex") == 0))
    {
        s = decide_props_str(value, buf, sizeof(buf), &len);

        /* a failed add only means compiling per request */
        if (s) {
            (void) decide_regex_cache_add(team->regex, s, len);
        }
    }

    json_object_foreach(v, k, item) {
        if (json_is_object(item) || json_is_array(item)) {
            decide_team_regex_walk(team, item, depth + 1);
        }
    }
}


void
decide_team_free(decide_team_t *team)
{
    size_t  i;

    if (team == NULL) {
        return;
    }

    for (i = 0; team->flag && i < team->nflags; i++) {
        free(team->flag[i].prefix);
        free(team->flag[i].deps);
    }

    free(team->flag);
    decide_regex_cache_free(team->regex);

    /* json_decref() accepts NULL */
    json_decref(team->flags);
    json_decref(team->by_key);
    json_decref(team->by_id);
    json_decref(team->cohorts);
    json_decref(team->mapping);
    free(team);
}


size_t
decide_team_nflags(const decide_team_t *team)
{
    return team->nflags;
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
    ctx.depth = 0;

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
    }
}


/* spec 3.3 get_match */
static void
decide_eval_match(decide_ctx_t *ctx, decide_flag_t *f, decide_result_t *r)
{
    int              rc, agg, skip, in;
    char             buf[DECIDE_NUM_BUF];
    size_t           i, len;
    json_t          *groups, *cond, *v;
    unsigned         need;
    const char      *id, *variant, *err;
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

    groups = json_object_get(f->filters, "groups");

    best = DECIDE_REASON_NO_GROUP_TYPE;
    best_index = -1;

    json_array_foreach(groups, i, cond) {
        v = json_object_get(cond, "aggregation_group_type_index");

        /* absent inherits the flag's aggregation, null means person */
        agg = v ? decide_json_index(v) : f->agg;

        skip = decide_eval_identifier(ctx, f, agg, 1, &id, &len, buf);

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

        rc = decide_eval_filters(ctx, f, json_object_get(cond, "properties"),
                                 agg, &need, &err);

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

        in = decide_eval_rollout(f, cond, id, len);

        if (!in) {
            reason = DECIDE_REASON_OUT_OF_ROLLOUT_BOUND;

            if (json_is_true(json_object_get(f->filters, "early_exit"))) {
                r->reason = reason;
                r->condition_index = (int) i;
                return;
            }

            goto next;
        }

        variant = json_string_value(json_object_get(cond, "variant"));

        if (variant == NULL || !decide_eval_has_variant(f, variant)) {
            variant = decide_eval_variant(f, id, len);
        }

        r->enabled = 1;
        r->variant = variant;
        r->payload = decide_eval_payload(f, variant);
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
    char          buf[DECIDE_NUM_BUF], key[512];
    size_t        i, len;
    json_t       *sg, *filter, *v, *props;
    unsigned      need;
    const char   *id, *err, *k;

    props = ctx->req->person_properties;

    if (json_is_true(json_object_get(f->filters, "feature_enrollment"))) {
        if (snprintf(key, sizeof(key), "$feature_enrollment/%s", f->key)
            < (int) sizeof(key))
        {
            v = json_object_get(props, key);

            if (v == NULL && !ctx->req->person_loaded) {
                r->status = DECIDE_STATUS_NEEDS_LOOKUP;
                r->need = DECIDE_NEED_PERSON;
                return DECIDE_NEED;
            }

            if (v) {
                r->enabled = json_is_true(v)
                             || (json_is_string(v)
                                 && strcmp(json_string_value(v), "true")
                                    == 0);
                goto matched;
            }
        }
    }

    sg = json_array_get(json_object_get(f->filters, "super_groups"), 0);
    if (!json_is_object(sg)) {
        return DECIDE_NO;
    }

    /* it applies only when one of its keys is known for the person */
    rc = 0;

    json_array_foreach(json_object_get(sg, "properties"), i, filter) {
        k = json_string_value(json_object_get(filter, "key"));
        if (k && json_object_get(props, k)) {
            rc = 1;
            break;
        }
    }

    if (!rc) {
        if (!ctx->req->person_loaded
            && json_array_size(json_object_get(sg, "properties")))
        {
            r->status = DECIDE_STATUS_NEEDS_LOOKUP;
            r->need = DECIDE_NEED_PERSON;
            return DECIDE_NEED;
        }

        return DECIDE_NO;
    }

    need = 0;
    err = NULL;

    rc = decide_eval_filters(ctx, f, json_object_get(sg, "properties"), -1,
                             &need, &err);

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
                      && decide_eval_rollout(f, sg, id, len));
    }

matched:

    r->reason = DECIDE_REASON_SUPER_CONDITION_VALUE;
    r->condition_index = 0;
    r->variant = NULL;
    r->payload = r->enabled ? decide_eval_payload(f, NULL) : NULL;

    return DECIDE_YES;
}


/* spec 3.8 */
static int
decide_eval_holdout(decide_ctx_t *ctx, decide_flag_t *f, decide_result_t *r)
{
    int           skip;
    char          buf[DECIDE_NUM_BUF];
    double        pct;
    size_t        len;
    json_t       *h, *v;
    const char   *id, *variant;

    h = json_object_get(f->filters, "holdout");

    if (json_is_object(h) && f->holdout_variant[0]) {
        v = json_object_get(h, "exclusion_percentage");
        pct = json_is_number(v) ? json_number_value(v) : 0.0;

        if (pct < 0.0) {
            pct = 0.0;
        }

        if (pct > 100.0) {
            pct = 100.0;
        }

        if (pct < 100.0) {
            /* stored hash-key overrides do not apply to holdouts */
            skip = decide_eval_identifier(ctx, f, f->agg, 0, &id, &len, buf);
            if (skip != DECIDE_ID_OK) {
                return DECIDE_NO;
            }

            /* no empty-identifier shortcut here: "holdout-" is hashed */
            if (decide_hash_sha1_60("holdout-", 8, id, len, "", 0)
                > pct / 100.0)
            {
                return DECIDE_NO;
            }
        }

        variant = f->holdout_variant;
        goto member;
    }

    h = json_array_get(json_object_get(f->filters, "holdout_groups"), 0);
    if (!json_is_object(h)) {
        return DECIDE_NO;
    }

    if (json_array_size(json_object_get(h, "properties")) > 0) {
        return DECIDE_NO;
    }

    skip = decide_eval_identifier(ctx, f, f->agg, 0, &id, &len, buf);
    if (skip != DECIDE_ID_OK) {
        return DECIDE_NO;
    }

    v = json_object_get(h, "rollout_percentage");

    if (json_is_number(v)
        && decide_hash_sha1_60("holdout-", 8, id, len, "", 0)
           > json_number_value(v) / 100.0)
    {
        return DECIDE_NO;
    }

    variant = json_string_value(json_object_get(h, "variant"));

    if (variant == NULL) {
        variant = decide_eval_variant(f, id, len);
    }

    if (variant == NULL) {
        variant = "holdout";
    }

member:

    r->enabled = 1;
    r->variant = variant;
    r->payload = decide_eval_payload(f, variant);
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

    } else if (overrides
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
 * definite "no" wins over a pending lookup.
 */
static int
decide_eval_filters(decide_ctx_t *ctx, decide_flag_t *f,
    const json_t *props, int agg, unsigned *need, const char **err)
{
    int          rc, pending, cohorts;
    size_t       i;
    json_t      *filter, *op;
    const char  *type, *ops;

    pending = 0;
    cohorts = 0;

    json_array_foreach(props, i, filter) {
        type = json_string_value(json_object_get(filter, "type"));

        if (type && strcmp(type, "cohort") == 0) {
            cohorts = 1;
            continue;
        }

        if (type && strcmp(type, "flag") == 0) {
            rc = decide_eval_flag_filter(ctx, filter);

        } else {
            rc = decide_eval_property(ctx, filter, agg, need);
        }

        if (rc == DECIDE_NO) {
            return DECIDE_NO;
        }

        if (rc == DECIDE_NEED) {
            pending = 1;
        }
    }

    if (cohorts) {
        json_array_foreach(props, i, filter) {
            type = json_string_value(json_object_get(filter, "type"));

            if (type == NULL || strcmp(type, "cohort") != 0) {
                continue;
            }

            rc = decide_eval_cohort(ctx, json_object_get(filter, "value"),
                                    ctx->depth, need, err);

            if (rc == DECIDE_ERR) {
                return rc;
            }

            op = json_object_get(filter, "operator");
            ops = json_string_value(op);

            if (ops && strcmp(ops, "not_in") == 0 && rc != DECIDE_NEED) {
                rc = (rc == DECIDE_YES) ? DECIDE_NO : DECIDE_YES;

            } else if (ops && strcmp(ops, "in") != 0
                       && strcmp(ops, "exact") != 0
                       && strcmp(ops, "not_in") != 0)
            {
                rc = DECIDE_NO;
            }

            if (rc == DECIDE_NO) {
                return DECIDE_NO;
            }

            if (rc == DECIDE_NEED) {
                pending = 1;
            }
        }
    }

    return pending ? DECIDE_NEED : DECIDE_YES;
}


static int
decide_eval_property(decide_ctx_t *ctx, const json_t *filter, int agg,
    unsigned *need)
{
    int            gti, known;
    const char    *type, *key;
    const json_t  *props;

    type = json_string_value(json_object_get(filter, "type"));
    key = json_string_value(json_object_get(filter, "key"));

    if (key == NULL) {
        return DECIDE_NO;
    }

    if (type && strcmp(type, "group") == 0) {
        gti = decide_json_index(json_object_get(filter, "group_type_index"));
        if (gti < 0) {
            gti = agg;
        }

        if (gti < 0) {
            return DECIDE_NO;
        }

        props = decide_eval_group_props(ctx, gti, &known);

        if (json_object_get(props, key) == NULL && known
            && !ctx->req->groups_loaded)
        {
            *need |= DECIDE_NEED_GROUPS;
            return DECIDE_NEED;
        }

    } else if (type == NULL && agg >= 0) {
        /* legacy untyped filters follow the condition's aggregation */
        props = decide_eval_group_props(ctx, agg, &known);

        if (json_object_get(props, key) == NULL && known
            && !ctx->req->groups_loaded)
        {
            *need |= DECIDE_NEED_GROUPS;
            return DECIDE_NEED;
        }

    } else if (type == NULL || strcmp(type, "person") == 0) {
        props = ctx->req->person_properties;

        if (json_object_get(props, key) == NULL
            && !ctx->req->person_loaded)
        {
            *need |= DECIDE_NEED_PERSON;
            return DECIDE_NEED;
        }

    } else {
        /* person_metadata, behavioural, ...: not evaluable here */
        return DECIDE_NO;
    }

    return decide_props_match(filter, props, &ctx->pctx) ? DECIDE_YES
                                                         : DECIDE_NO;
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
decide_eval_flag_filter(decide_ctx_t *ctx, const json_t *filter)
{
    int               i;
    json_t           *value;
    const char       *op;
    decide_result_t  *t;

    op = json_string_value(json_object_get(filter, "operator"));
    if (op == NULL || strcmp(op, "flag_evaluates_to") != 0) {
        return DECIDE_NO;
    }

    i = decide_team_resolve(ctx->team, json_object_get(filter, "key"));
    if (i < 0) {
        return DECIDE_NO;
    }

    t = &ctx->out[i];
    value = json_object_get(filter, "value");

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
decide_eval_cohort(decide_ctx_t *ctx, const json_t *id, int depth,
    unsigned *need, const char **err)
{
    char          buf[DECIDE_NUM_BUF];
    size_t        i;
    json_t       *cohort, *filters, *groups, *g, *item;
    const char   *k;
    json_int_t    n;
    unsigned      lneed;
    int           rc, pending, saved;

    if (depth > DECIDE_DEPTH_MAX) {
        *err = "cohort_dependency_cycle";
        return DECIDE_ERR;
    }

    if (json_is_integer(id)) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(id));
        k = buf;

    } else if (json_is_string(id)) {
        k = json_string_value(id);

    } else {
        *err = "dependency_not_found_cohort";
        return DECIDE_ERR;
    }

    cohort = json_object_get(ctx->team->cohorts, k);

    if (!json_is_object(cohort)
        || json_is_true(json_object_get(cohort, "deleted")))
    {
        *err = "dependency_not_found_cohort";
        return DECIDE_ERR;
    }

    if (json_is_true(json_object_get(cohort, "is_static"))) {
        if (!ctx->req->person_loaded) {
            *need |= DECIDE_NEED_PERSON;
            return DECIDE_NEED;
        }

        n = strtoll(k, NULL, 10);

        json_array_foreach(ctx->req->static_cohorts, i, item) {
            if ((json_is_integer(item) && json_integer_value(item) == n)
                || (json_is_string(item)
                    && strcmp(json_string_value(item), k) == 0))
            {
                return DECIDE_YES;
            }
        }

        return DECIDE_NO;
    }

    filters = json_object_get(cohort, "filters");

    if (json_is_object(json_object_get(filters, "properties"))) {
        return decide_eval_cohort_node(ctx,
                                       json_object_get(filters, "properties"),
                                       depth, need, err);
    }

    /* legacy "groups": OR of ANDed property lists */
    groups = json_object_get(cohort, "groups");
    pending = 0;

    json_array_foreach(groups, i, g) {
        lneed = 0;

        /* cohort filters inside recurse through here: carry the depth */
        saved = ctx->depth;
        ctx->depth = depth + 1;
        rc = decide_eval_filters(ctx, NULL, json_object_get(g, "properties"),
                                 -1, &lneed, err);
        ctx->depth = saved;

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


/* {"type": "AND"|"OR", "values": [node or filter, ...]} */
static int
decide_eval_cohort_node(decide_ctx_t *ctx, const json_t *node, int depth,
    unsigned *need, const char **err)
{
    int          rc, is_or, pending;
    size_t       i;
    json_t      *values, *child;
    const char  *type;

    if (depth > DECIDE_DEPTH_MAX) {
        *err = "cohort_dependency_cycle";
        return DECIDE_ERR;
    }

    type = json_string_value(json_object_get(node, "type"));
    values = json_object_get(node, "values");

    is_or = (type && strcmp(type, "OR") == 0);
    pending = 0;

    if (!json_is_array(values) || json_array_size(values) == 0) {
        /* an empty group matches everyone in AND, no one in OR */
        return is_or ? DECIDE_NO : DECIDE_YES;
    }

    json_array_foreach(values, i, child) {
        if (json_is_array(json_object_get(child, "values"))) {
            rc = decide_eval_cohort_node(ctx, child, depth + 1, need, err);

        } else {
            rc = decide_eval_cohort_leaf(ctx, child, depth + 1, need, err);
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


static int
decide_eval_cohort_leaf(decide_ctx_t *ctx, const json_t *leaf, int depth,
    unsigned *need, const char **err)
{
    int          rc;
    const char  *type, *key;

    type = json_string_value(json_object_get(leaf, "type"));

    if (type && strcmp(type, "cohort") == 0) {
        rc = decide_eval_cohort(ctx, json_object_get(leaf, "value"),
                                depth + 1, need, err);

    } else if (type == NULL || strcmp(type, "person") == 0) {
        key = json_string_value(json_object_get(leaf, "key"));

        if (key == NULL) {
            return DECIDE_NO;
        }

        if (json_object_get(ctx->req->person_properties, key) == NULL
            && !ctx->req->person_loaded)
        {
            *need |= DECIDE_NEED_PERSON;
            return DECIDE_NEED;
        }

        rc = decide_props_match(leaf, ctx->req->person_properties,
                                &ctx->pctx) ? DECIDE_YES : DECIDE_NO;

    } else {
        /* behavioural filters need an event store: never a member */
        return DECIDE_NO;
    }

    if (rc == DECIDE_YES || rc == DECIDE_NO) {
        if (json_is_true(json_object_get(leaf, "negation"))) {
            rc = (rc == DECIDE_YES) ? DECIDE_NO : DECIDE_YES;
        }
    }

    return rc;
}


/* spec 3.1 rollout test, with the empty-identifier shortcut of 3.2 */
static int
decide_eval_rollout(const decide_flag_t *f, const json_t *cond,
    const char *id, size_t len)
{
    double   pct, h;
    json_t  *v;

    v = json_object_get(cond, "rollout_percentage");

    if (!json_is_number(v)) {
        return 1;
    }

    pct = json_number_value(v);

    if (pct == 100.0) {
        return 1;
    }

    h = (len == 0) ? 0.0 : decide_hash_sha1_60(f->prefix, f->prefix_len,
                                               id, len, "", 0);

    return decide_hash_in_rollout(h, pct);
}


/* the hashed variant of 3.1, or NULL past the last boundary */
static const char *
decide_eval_variant(const decide_flag_t *f, const char *id, size_t len)
{
    double   h, cum;
    size_t   i;
    json_t  *variants, *var, *v;

    variants = json_object_get(json_object_get(f->filters, "multivariate"),
                               "variants");

    if (json_array_size(variants) == 0) {
        return NULL;
    }

    h = (len == 0) ? 0.0 : decide_hash_sha1_60(f->prefix, f->prefix_len,
                                               id, len, "variant", 7);
    cum = 0.0;

    json_array_foreach(variants, i, var) {
        v = json_object_get(var, "rollout_percentage");

        /* the same left-to-right binary64 sum as decide_hash_variant_index */
        cum += (json_is_number(v) ? json_number_value(v) : 0.0) / 100.0;

        if (h < cum) {
            return json_string_value(json_object_get(var, "key"));
        }
    }

    return NULL;
}


static int
decide_eval_has_variant(const decide_flag_t *f, const char *variant)
{
    size_t       i;
    json_t      *variants, *var;
    const char  *k;

    variants = json_object_get(json_object_get(f->filters, "multivariate"),
                               "variants");

    json_array_foreach(variants, i, var) {
        k = json_string_value(json_object_get(var, "key"));
        if (k && strcmp(k, variant) == 0) {
            return 1;
        }
    }

    return 0;
}


static const json_t *
decide_eval_payload(const decide_flag_t *f, const char *variant)
{
    json_t  *payloads;

    payloads = json_object_get(f->filters, "payloads");

    return json_object_get(payloads, variant ? variant : "true");
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


size_t
decide_reason_description(const decide_result_t *r, char *buf, size_t size)
{
    int          n;
    const char  *s;

    switch (r->reason) {
    case DECIDE_REASON_MISSING_DEPENDENCY:
        s = "Flag cannot be evaluated due to missing dependency";
        break;
    case DECIDE_REASON_FLAG_DISABLED:
        s = "Feature flag is disabled";
        break;
    case DECIDE_REASON_NO_GROUP_TYPE:
        s = "No group type";
        break;
    case DECIDE_REASON_NO_CONDITION_MATCH:
        s = r->groups_skipped
            ? "No matching condition set (group conditions were not "
              "evaluated because no group type was provided)"
            : "No matching condition set";
        break;
    case DECIDE_REASON_OUT_OF_ROLLOUT_BOUND:
        s = "Out of rollout bound";
        break;
    case DECIDE_REASON_CONDITION_MATCH:
        n = snprintf(buf, size, "Matched condition set %d",
                     r->condition_index + 1);
        return (n < 0) ? 0 : ((size_t) n >= size ? size - 1 : (size_t) n);
    case DECIDE_REASON_HOLDOUT_CONDITION_VALUE:
        s = "Holdout condition value";
        break;
    case DECIDE_REASON_SUPER_CONDITION_VALUE:
        s = "Super condition value";
        break;
    default:
        s = "Flag evaluation failed";
        break;
    }

    n = snprintf(buf, size, "%s", s);

    return (n < 0) ? 0 : ((size_t) n >= size ? size - 1 : (size_t) n);
}
