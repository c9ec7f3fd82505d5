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
    int            known;
    const json_t  *props, *prop;

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

    return decide_props_match_prepared(&ft->pf, prop, &ctx->pctx)
           ? DECIDE_YES : DECIDE_NO;
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
