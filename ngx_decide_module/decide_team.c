/*
 * Copyright (C) edgehog
 */

/*
 * Snapshot load: decide_team_create() compiles a team's flags into the
 * structures of decide_eval_int.h (conditions, variants with cumulative
 * boundaries, payloads rendered as JSON, enrollment, super groups and
 * holdouts), so that evaluation reads no flag JSON.  Filters are
 * compiled in decide_filter.c and cohorts in decide_cohort.c.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>

#include "decide_props.h"
#include "decide_eval.h"
#include "decide_eval_int.h"


static char *decide_team_strdup(decide_team_t *team, const char *s, size_t len);
static int decide_team_flag_init(decide_team_t *team, size_t i);
static int decide_team_flag_compile(decide_team_t *team, decide_flag_t *f);
static int decide_team_cond_compile(decide_team_t *team, decide_flag_t *f,
    decide_cond_t *c, const json_t *cond, int agg);
static int decide_team_payload_compile(decide_team_t *team, decide_payload_t *p,
    const json_t *payloads, const char *key);


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

    /* NULL (no memory) only means no filter is shared */
    team->memo_keys = json_object();

    /* cohorts first: conditions refer to them by index */
    if (decide_team_cohorts_compile(team) != 0) {
        goto nomem;
    }

    for (i = 0; i < team->nflags; i++) {
        if (decide_team_flag_init(team, i) != 0) {
            goto nomem;
        }
    }

    decide_team_share_done(team);

    return team;

nomem:

    snprintf(err, errlen, "out of memory");
    decide_team_free(team);

    return NULL;
}


/* bump allocation, zeroed, from chunks freed with the team */
void *
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
    size_t          g, p, len, t, ntags;
    json_t         *fj, *groups, *cond, *filter, *v, *variants, *tags;
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

    /* any case, as the server parses it; unknown values mean "all" */
    s = json_string_value(json_object_get(fj, "evaluation_runtime"));
    if (s && strcasecmp(s, "server") == 0) {
        f->runtime = DECIDE_RUNTIME_SERVER;

    } else if (s && strcasecmp(s, "client") == 0) {
        f->runtime = DECIDE_RUNTIME_CLIENT;

    } else {
        f->runtime = DECIDE_RUNTIME_ANY;
    }

    /*
     * evaluation tags: names of posthog_featureflagevaluationtag rows;
     * the strings stay in the flag document the team keeps
     */
    tags = json_object_get(fj, "evaluation_tags");
    ntags = json_array_size(tags);

    if (ntags) {
        f->tags = decide_team_alloc(team, ntags * sizeof(const char *));
        if (f->tags == NULL) {
            return -1;
        }

        for (t = 0; t < ntags; t++) {
            s = json_string_value(json_array_get(tags, t));
            if (s != NULL) {
                f->tags[f->ntags++] = s;
            }
        }
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

    /*
     * A first condition without filters and with a partial rollout
     * hashes the distinct id whenever the flag is evaluated: worth a
     * batched hash.  Behind filters a hash is often not needed at all,
     * and computing it anyway would cost more than the batch saves.
     */
    f->prehash = !f->device && f->nconds && f->cond[0].agg < 0
                 && f->cond[0].filters.n == 0 && f->cond[0].has_rollout
                 && f->cond[0].rollout != 100.0;

    /*
     * Behind person property filters alone, the filters are evaluated
     * first, also up front, and only a "yes" adds the hash to the batch
     * (the answer is kept for the condition, so nothing is done twice).
     */
    f->prefilter = !f->device && f->nconds && f->cond[0].agg < 0
                   && f->cond[0].filters.n != 0 && f->cond[0].has_rollout
                   && f->cond[0].rollout != 100.0 && f->ndeps == 0;

    for (i = 0; f->prefilter && i < f->cond[0].filters.n; i++) {
        agg = f->cond[0].filters.filter[i].kind;
        f->prefilter = (agg == DECIDE_FILTER_PERSON
                        || agg == DECIDE_FILTER_NEVER);
    }

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


/*
 * A dependency names its target by key (local-evaluation feed) or by
 * id as text (Postgres); -1 when neither exists.
 */
int
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
    decide_team_share_done(team);

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


size_t
decide_team_nshared(const decide_team_t *team)
{
    return team->nmemo;
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
int
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
