/*
 * Copyright (C) edgehog
 */

/*
 * Cohorts (spec 4.6): static membership, property trees and the legacy
 * OR of ANDed groups, compiled once per snapshot and evaluated with the
 * nesting depth as the cycle guard.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "decide_props.h"
#include "decide_eval.h"
#include "decide_eval_int.h"


static int decide_team_node_compile(decide_team_t *team, decide_node_t *nd,
    const json_t *node, int depth);
static int decide_eval_cohort_node(decide_ctx_t *ctx, const decide_node_t *nd,
    int depth, unsigned *need, const char **err);


/* every cohort of team->cohorts, indexed in the same order */
int
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
            nd->child[i].distinct_id =
                           (strcmp(nd->child[i].pf.key, "distinct_id") == 0);

        } else {
            /* keyless, or behavioural: needs an event store, never */
            nd->child[i].kind = DECIDE_NODE_NEVER;
        }
    }

    return 0;
}


/* a cohort filter's value (id or id text): index, -1 if not usable */
int
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


/* spec 4.6 */
int
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
            prop = decide_eval_person_prop(ctx, &child->pf,
                                           child->distinct_id);

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
