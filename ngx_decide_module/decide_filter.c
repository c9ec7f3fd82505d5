/*
 * Copyright (C) edgehog
 */

/*
 * A condition's filters (spec 3.4): compiled once per snapshot into
 * person, group, flag and cohort filters with prepared property
 * matchers (decide_props.c), then evaluated per request.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "decide_props.h"
#include "decide_eval.h"
#include "decide_eval_int.h"


static void decide_team_filter_compile(decide_team_t *team, decide_filter_t *ft,
    const json_t *filter, int agg);
static void decide_team_filter_share(decide_team_t *team, decide_filter_t *ft,
    const json_t *filter);
static int decide_eval_property(decide_ctx_t *ctx, const decide_filter_t *ft,
    unsigned *need);
static const json_t *decide_eval_group_props(decide_ctx_t *ctx, int gti,
    int *known);
static int decide_eval_flag_filter(decide_ctx_t *ctx,
    const decide_filter_t *ft);


int
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
        ft->distinct_id = (strcmp(ft->pf.key, "distinct_id") == 0);
    }

    /* person_metadata, behavioural, ...: not evaluable here */

    if (ft->kind == DECIDE_FILTER_PERSON || ft->kind == DECIDE_FILTER_GROUP) {
        decide_team_filter_share(team, ft, filter);
    }
}


/*
 * A person or group filter that occurs more than once in the team (the
 * same JSON, keys sorted, on the same group type) compiles to the same
 * thing, and within one evaluation its answer depends on the request
 * alone: the occurrences share a memo slot, and decide_eval_property()
 * matches the property once per evaluation instead of once per flag
 * ("email icontains @ourcompany.com" on many flags; bench/decide.py's
 * team has three filters on 5 of its 20 flags).  Best effort: without
 * memory, or past DECIDE_MEMO_MAX shared filters, a filter stays on its
 * own.
 */
static void
decide_team_filter_share(decide_team_t *team, decide_filter_t *ft,
    const json_t *filter)
{
    char              *text, *key;
    size_t             n, len;
    json_t            *v;
    decide_filter_t   *first, **a;

    if (team->memo_keys == NULL) {
        return;
    }

    text = json_dumps(filter, JSON_COMPACT | JSON_SORT_KEYS
                              | JSON_ENCODE_ANY);
    if (text == NULL) {
        return;
    }

    len = strlen(text) + DECIDE_NUM_BUF;
    key = malloc(len);

    if (key == NULL) {
        free(text);
        return;
    }

    /* agg only matters through the group type index it resolved to */
    snprintf(key, len, "%d:%s",
             ft->kind == DECIDE_FILTER_GROUP ? ft->index : -1, text);
    free(text);

    v = json_object_get(team->memo_keys, key);

    if (v != NULL) {
        first = team->memo_first[json_integer_value(v)];

        if (first->memo == 0 && team->nmemo < DECIDE_MEMO_MAX) {
            first->memo = (unsigned) ++team->nmemo;
        }

        ft->memo = first->memo;
        free(key);
        return;
    }

    if (team->nmemo_first == team->memo_first_size) {
        n = team->memo_first_size ? team->memo_first_size * 2 : 64;
        a = realloc(team->memo_first, n * sizeof(decide_filter_t *));

        if (a == NULL) {
            free(key);
            return;
        }

        team->memo_first = a;
        team->memo_first_size = n;
    }

    if (json_object_set_new(team->memo_keys, key,
                            json_integer((json_int_t) team->nmemo_first))
        == 0)
    {
        team->memo_first[team->nmemo_first++] = ft;
    }

    free(key);
}


/* the compile-time tables of decide_team_filter_share() go */
void
decide_team_share_done(decide_team_t *team)
{
    json_decref(team->memo_keys);
    team->memo_keys = NULL;
    free(team->memo_first);
    team->memo_first = NULL;
    team->nmemo_first = 0;
    team->memo_first_size = 0;
}


/*
 * The AND of a condition's filters (spec 3.4): flag and property
 * filters in order, cohorts last.  Kleene logic over DECIDE_NEED, so a
 * definite "no" wins over a pending lookup.  depth: cohort nesting.
 */
int
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
    int            known, rc;
    size_t         w;
    uint64_t       m;
    const json_t  *props, *prop;

    w = 0;
    m = 0;

    if (ft->memo && ctx->memo) {
        w = (ft->memo - 1) / 64;
        m = (uint64_t) 1 << ((ft->memo - 1) % 64);

        if (ctx->memo_done[w] & m) {
            return (ctx->memo_yes[w] & m) ? DECIDE_YES : DECIDE_NO;
        }
    }

    if (ft->kind == DECIDE_FILTER_GROUP) {
        props = decide_eval_group_props(ctx, ft->index, &known);
        prop = json_object_getn(props, ft->pf.key, ft->pf.key_len);

        if (prop == NULL && known && !ctx->req->groups_loaded) {
            *need |= DECIDE_NEED_GROUPS;
            return DECIDE_NEED;
        }

    } else {
        prop = decide_eval_person_prop(ctx, &ft->pf, ft->distinct_id);

        if (prop == NULL && !ctx->req->person_loaded) {
            *need |= DECIDE_NEED_PERSON;
            return DECIDE_NEED;
        }
    }

    rc = decide_props_match_prepared(&ft->pf, prop, &ctx->pctx)
         ? DECIDE_YES : DECIDE_NO;

    /* a pending lookup above is asked again: it sets *need */
    if (m) {
        ctx->memo_done[w] |= m;

        if (rc == DECIDE_YES) {
            ctx->memo_yes[w] |= m;

        } else {
            ctx->memo_yes[w] &= ~m;
        }
    }

    return rc;
}


/*
 * A person property of the request.  "distinct_id" defaults to the
 * request's distinct id when the properties lack it (spec 1.6, as the
 * current Rust service does), so filters on it never need a lookup.
 */
const json_t *
decide_eval_person_prop(decide_ctx_t *ctx, const decide_prop_filter_t *pf,
    unsigned distinct_id)
{
    const json_t  *prop;

    /* key_len is strlen(key), as json_object_get() would measure it */
    prop = json_object_getn(ctx->req->person_properties, pf->key,
                            pf->key_len);

    if (prop || !distinct_id) {
        return prop;
    }

    if (ctx->distinct_id == NULL) {
        /* NULL again (memory, invalid UTF-8) reads as absent */
        ctx->distinct_id = json_string(ctx->req->distinct_id
                                       ? ctx->req->distinct_id : "");
    }

    return ctx->distinct_id;
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
