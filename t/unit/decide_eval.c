/*
 * Copyright (C) edgehog
 */

/*
 * Flag evaluation: every case of v1_evaluation.json, the 2000 cross-SDK
 * consistency cases, and the engine's own contracts (lookups,
 * dependencies, cohorts, super conditions, continuity); and the hashes
 * batched up front against hashing one by one (decide_eval_diff.h).
 */


#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "tap.h"
#include "decide_eval.h"
#include "decide_eval_diff.h"


#define DECIDE_T_EVAL_FILE  EDGEHOG_FIXTURES "/decide/v1_evaluation.json"
#define DECIDE_T_CONS_FILE  EDGEHOG_FIXTURES "/decide/consistency.json"


static void decide_t_corpus(void);
static void decide_t_case(json_t *c);
static void decide_t_consistency(void);
static void decide_t_lookup(void);
static void decide_t_dependencies(void);
static void decide_t_cohorts(void);
static void decide_t_super(void);
static void decide_t_continuity(void);
static void decide_t_description(void);
static void decide_t_reason_lengths(void);
static void decide_t_implicit_distinct_id(void);
static void decide_t_evaluation_tags(void);
static void decide_t_prehash(void);
static decide_team_t *decide_t_team(const char *flags, const char *mapping,
    const char *cohorts);
static const decide_result_t *decide_t_find(const decide_team_t *team,
    const decide_result_t *out, const char *key);
static const char *decide_t_payload(const decide_result_t *r);


/* the _n variants give the same text and its strlen() */
static void
decide_t_reason_lengths(void)
{
    int              reason, skipped, error, bad;
    size_t           len;
    const char      *s;
    decide_result_t  r;

    bad = 0;

    for (reason = 0; reason <= DECIDE_REASON_ERROR; reason++) {
        for (skipped = 0; skipped < 2; skipped++) {
            for (error = 0; error < 2; error++) {
                memset(&r, 0, sizeof(r));
                r.reason = (decide_reason_e) reason;
                r.groups_skipped = skipped;
                r.error = error ? "dependency_not_found_cohort" : NULL;

                s = decide_reason_code_n(&r, &len);
                bad += s != decide_reason_code(&r) || len != strlen(s);

                s = decide_reason_text_n(&r, &len);
                bad += s != decide_reason_text(&r) || len != strlen(s);
            }
        }
    }

    ok(bad == 0, "reason code and text lengths match strlen()");
}


int
main(void)
{
    decide_t_corpus();
    decide_t_consistency();
    decide_t_lookup();
    decide_t_dependencies();
    decide_t_cohorts();
    decide_t_super();
    decide_t_continuity();
    decide_t_description();
    decide_t_reason_lengths();
    decide_t_implicit_distinct_id();
    decide_t_evaluation_tags();
    decide_t_prehash();

    return done_testing();
}


static void
decide_t_corpus(void)
{
    size_t        i;
    json_t       *root, *c;
    json_error_t  err;

    root = json_load_file(DECIDE_T_EVAL_FILE, 0, &err);
    ok(root != NULL, "load v1_evaluation.json");
    if (root == NULL) {
        return;
    }

    is_int(json_array_size(json_object_get(root, "cases")), 31, "31 cases");

    json_array_foreach(json_object_get(root, "cases"), i, c) {
        decide_t_case(c);
    }

    json_decref(root);
}


static void
decide_t_case(json_t *c)
{
    int               idx, bad;
    char              why[256];
    size_t            i;
    json_t           *defs, *ctx, *want, *w, *reason, *v;
    unsigned          need;
    const char       *id, *key, *got_payload;
    decide_team_t    *team;
    decide_result_t  *out;
    const decide_result_t  *r;
    decide_request_t  req;

    id = json_string_value(json_object_get(c, "id"));
    defs = json_object_get(c, "definitions");
    ctx = json_object_get(c, "context");
    want = json_object_get(c, "expected");

    team = decide_team_create(json_object_get(defs, "flags"),
                              json_object_get(defs, "group_type_mapping"),
                              NULL, why, sizeof(why));
    ok(team != NULL, "%s: team", id);
    if (team == NULL) {
        return;
    }

    memset(&req, 0, sizeof(req));
    req.distinct_id = json_string_value(json_object_get(ctx, "distinct_id"));
    req.person_properties = json_object_get(ctx, "person_properties");
    req.groups = json_object_get(ctx, "groups");
    req.group_properties = json_object_get(ctx, "group_properties");
    req.runtime = DECIDE_RUNTIME_ANY;
    req.person_loaded = 1;
    req.groups_loaded = 1;
    req.overrides_loaded = 1;

    out = calloc(decide_team_nflags(team) + 1, sizeof(decide_result_t));
    need = decide_eval_flags(team, &req, out);
    is_int(need, 0, "%s: no lookup needed", id);

    json_object_foreach(json_object_get(want, "flags"), key, w) {
        r = decide_t_find(team, out, key);
        if (r == NULL || r->status != DECIDE_STATUS_OK) {
            ok(0, "%s: %s evaluated", id, key);
            continue;
        }

        reason = json_object_get(w, "reason");
        v = json_object_get(reason, "condition_index");
        idx = json_is_integer(v) ? (int) json_integer_value(v) : -1;
        got_payload = decide_t_payload(r);

        bad = 0;
        bad |= r->enabled != json_is_true(json_object_get(w, "enabled"));
        bad |= !((r->variant == NULL
                  && json_is_null(json_object_get(w, "variant")))
                 || (r->variant
                     && json_is_string(json_object_get(w, "variant"))
                     && strcmp(r->variant,
                               json_string_value(json_object_get(w,
                                                         "variant"))) == 0));
        bad |= !((got_payload == NULL
                  && json_is_null(json_object_get(w, "payload")))
                 || (got_payload
                     && json_is_string(json_object_get(w, "payload"))
                     && strcmp(got_payload,
                               json_string_value(json_object_get(w,
                                                         "payload"))) == 0));
        bad |= strcmp(decide_reason_code(r),
                      json_string_value(json_object_get(reason, "code")));
        bad |= r->condition_index != idx;

        ok(!bad, "%s: %s", id, key);
        if (bad) {
            diag("got enabled=%d variant=%s payload=%s reason=%s index=%d",
                 r->enabled, r->variant ? r->variant : "null",
                 got_payload ? got_payload : "null", decide_reason_code(r),
                 r->condition_index);
        }

        ok(!r->errors, "%s: %s no errorsWhileComputingFlags", id, key);
    }

    json_array_foreach(json_object_get(want, "omitted_flags"), i, w) {
        r = decide_t_find(team, out, json_string_value(w));
        ok(r == NULL || r->status == DECIDE_STATUS_OMITTED, "%s: %s omitted",
           id, json_string_value(w));
    }

    free(out);
    decide_team_free(team);
}


static void
decide_t_consistency(void)
{
    int               bad, simple;
    char              why[256];
    size_t            i, n, nok;
    json_t           *root, *c, *exp;
    const char       *flag;
    decide_team_t    *team;
    decide_result_t   out[2];
    decide_request_t  req;
    const decide_result_t  *r;
    json_error_t      err;

    root = json_load_file(DECIDE_T_CONS_FILE, 0, &err);
    ok(root != NULL, "load consistency.json");
    if (root == NULL) {
        return;
    }

    team = decide_team_create(json_object_get(root, "flags"), NULL, NULL,
                              why, sizeof(why));
    ok(team != NULL && decide_team_nflags(team) == 2, "consistency team");
    if (team == NULL) {
        json_decref(root);
        return;
    }

    memset(&req, 0, sizeof(req));
    req.runtime = DECIDE_RUNTIME_ANY;
    req.person_loaded = 1;
    req.groups_loaded = 1;
    req.overrides_loaded = 1;

    n = 0;
    nok = 0;

    json_array_foreach(json_object_get(root, "cases"), i, c) {
        flag = json_string_value(json_object_get(c, "flag"));
        exp = json_object_get(c, "expected");
        req.distinct_id = json_string_value(json_object_get(c,
                                                            "distinct_id"));

        (void) decide_eval_flags(team, &req, out);
        r = decide_t_find(team, out, flag);
        simple = (strcmp(flag, "simple-flag") == 0);

        bad = (r == NULL) || decide_eval_prehash_diff(team, &req, out) >= 0;

        if (!bad && json_is_false(exp)) {
            bad = r->enabled
                  || r->reason != DECIDE_REASON_OUT_OF_ROLLOUT_BOUND;

        } else if (!bad && json_is_true(exp)) {
            bad = !r->enabled || r->variant != NULL;

        } else if (!bad) {
            bad = !r->enabled || r->variant == NULL || simple
                  || strcmp(r->variant, json_string_value(exp)) != 0;
        }

        bad |= (r && r->condition_index != 0);

        n++;

        if (bad) {
            ok(0, "consistency %s %s", flag, req.distinct_id);

        } else {
            nok++;
        }
    }

    is_int(n, 2000, "2000 consistency cases run");
    is_int(nok, 2000, "2000 consistency cases match");

    decide_team_free(team);
    json_decref(root);
}


/* spec 1.4: evaluation_environments keep untagged flags and matches */
static void
decide_t_evaluation_tags(void)
{
    json_t            *env;
    decide_team_t     *team;
    decide_result_t    out[3];
    decide_request_t   req;

    team = decide_t_team(
        "[{\"id\":1,\"key\":\"web\",\"active\":true,"
        "\"evaluation_tags\":[\"app\",\"web\"],\"filters\":{\"groups\":"
        "[{\"properties\":[],\"rollout_percentage\":100}]}},"
        "{\"id\":2,\"key\":\"plain\",\"active\":true,"
        "\"evaluation_tags\":null,\"filters\":{\"groups\":"
        "[{\"properties\":[],\"rollout_percentage\":100}]}},"
        "{\"id\":3,\"key\":\"dep\",\"active\":true,\"filters\":{\"groups\":"
        "[{\"properties\":[{\"key\":\"1\",\"type\":\"flag\","
        "\"operator\":\"flag_evaluates_to\",\"value\":true}],"
        "\"rollout_percentage\":100}]}}]", NULL, NULL);

    memset(&req, 0, sizeof(req));
    req.distinct_id = "u1";
    req.runtime = DECIDE_RUNTIME_ANY;
    req.person_loaded = 1;
    req.overrides_loaded = 1;

    decide_eval_flags(team, &req, out);
    ok(out[0].status == DECIDE_STATUS_OK && out[0].enabled,
       "tags: no environments keeps a tagged flag");

    env = json_pack("[s,s]", "mobile", "web");
    req.environments = env;
    decide_eval_flags(team, &req, out);
    ok(out[0].status == DECIDE_STATUS_OK && out[0].enabled,
       "tags: a matching environment keeps it");
    ok(out[1].status == DECIDE_STATUS_OK, "tags: untagged flag kept");

    json_decref(env);
    env = json_pack("[s]", "server");
    req.environments = env;
    decide_eval_flags(team, &req, out);
    is_int(out[0].status, DECIDE_STATUS_OMITTED,
           "tags: no matching environment omits it");
    ok(out[1].status == DECIDE_STATUS_OK && out[1].enabled,
       "tags: untagged flag still evaluated");
    ok(out[2].status == DECIDE_STATUS_OK && !out[2].enabled,
       "tags: a dependency filtered out counts as false");

    json_decref(env);
    env = json_array();
    req.environments = env;
    decide_eval_flags(team, &req, out);
    ok(out[0].status == DECIDE_STATUS_OK, "tags: empty list filters nothing");

    json_decref(env);
    decide_team_free(team);
}


static void
decide_t_lookup(void)
{
    unsigned           need;
    json_t            *pp;
    decide_team_t     *team;
    decide_result_t    out[3];
    decide_request_t   req;

    team = decide_t_team(
        "[{\"id\":1,\"key\":\"a\",\"active\":true,\"filters\":{\"groups\":"
        "[{\"properties\":[{\"key\":\"plan\",\"type\":\"person\","
        "\"operator\":\"exact\",\"value\":\"pro\"}],"
        "\"rollout_percentage\":100}]}},"
        "{\"id\":2,\"key\":\"b\",\"active\":true,\"filters\":{\"groups\":"
        "[{\"properties\":[],\"rollout_percentage\":100}]}},"
        "{\"id\":3,\"key\":\"c\",\"active\":true,\"filters\":{\"groups\":"
        "[{\"properties\":[{\"key\":\"a\",\"type\":\"flag\","
        "\"operator\":\"flag_evaluates_to\",\"value\":true}],"
        "\"rollout_percentage\":100}]}}]", NULL, NULL);

    memset(&req, 0, sizeof(req));
    req.distinct_id = "u1";
    req.runtime = DECIDE_RUNTIME_ANY;
    req.overrides_loaded = 1;

    need = decide_eval_flags(team, &req, out);
    is_int(need, DECIDE_NEED_PERSON, "absent property asks for the person");
    is_int(out[0].status, DECIDE_STATUS_NEEDS_LOOKUP, "a pending");
    is_int(out[1].status, DECIDE_STATUS_OK, "b final");
    is_int(out[2].status, DECIDE_STATUS_NEEDS_LOOKUP, "c waits for a");

    pp = json_pack("{s:s}", "plan", "pro");
    req.person_properties = pp;
    need = decide_eval_flags(team, &req, out);
    is_int(need, 0, "request property suffices");
    ok(out[0].enabled && out[2].enabled, "a and c on");

    json_object_clear(pp);
    req.person_loaded = 1;
    need = decide_eval_flags(team, &req, out);
    is_int(need, 0, "loaded person: absent is absent");
    ok(!out[0].enabled && !out[2].enabled, "a and c off");
    is_str(decide_reason_code(&out[2]), "no_condition_match", "c reason");

    json_decref(pp);
    decide_team_free(team);
}


static void
decide_t_dependencies(void)
{
    decide_team_t     *team;
    decide_result_t    out[4];
    decide_request_t   req;

    /* a <-> b cycle; c depends on a by id; d on an inactive flag */
    team = decide_t_team(
        "[{\"id\":1,\"key\":\"a\",\"active\":true,\"filters\":{\"groups\":"
        "[{\"properties\":[{\"key\":\"b\",\"type\":\"flag\","
        "\"operator\":\"flag_evaluates_to\",\"value\":true}]}]}},"
        "{\"id\":2,\"key\":\"b\",\"active\":true,\"filters\":{\"groups\":"
        "[{\"properties\":[{\"key\":\"1\",\"type\":\"flag\","
        "\"operator\":\"flag_evaluates_to\",\"value\":true}]}]}},"
        "{\"id\":3,\"key\":\"c\",\"active\":true,\"filters\":{\"groups\":"
        "[{\"properties\":[{\"key\":\"4\",\"type\":\"flag\","
        "\"operator\":\"flag_evaluates_to\",\"value\":false}]}]}},"
        "{\"id\":4,\"key\":\"d\",\"active\":false,\"filters\":{}}]",
        NULL, NULL);

    memset(&req, 0, sizeof(req));
    req.distinct_id = "u1";
    req.runtime = DECIDE_RUNTIME_ANY;
    req.person_loaded = 1;
    req.groups_loaded = 1;
    req.overrides_loaded = 1;

    is_int(decide_eval_flags(team, &req, out), 0, "deps: final");
    is_str(decide_reason_code(&out[0]), "missing_dependency", "cycle a");
    is_str(decide_reason_code(&out[1]), "missing_dependency", "cycle b");
    ok(out[0].errors || out[1].errors, "cycle sets errors");
    is_int(out[0].condition_index, -1, "cycle index null");
    ok(out[2].enabled, "inactive dependency counts as false");
    is_int(out[3].status, DECIDE_STATUS_OMITTED, "inactive omitted");

    decide_team_free(team);
}


static void
decide_t_cohorts(void)
{
    json_t            *pp, *sc;
    decide_team_t     *team;
    decide_result_t    out[4];
    decide_request_t   req;

    team = decide_t_team(
        "[{\"id\":1,\"key\":\"dyn\",\"active\":true,\"filters\":{\"groups\":"
        "[{\"properties\":[{\"key\":\"id\",\"type\":\"cohort\","
        "\"value\":5}]}]}},"
        "{\"id\":2,\"key\":\"st\",\"active\":true,\"filters\":{\"groups\":"
        "[{\"properties\":[{\"key\":\"id\",\"type\":\"cohort\","
        "\"value\":\"6\"}]}]}},"
        "{\"id\":3,\"key\":\"notin\",\"active\":true,\"filters\":{\"groups\":"
        "[{\"properties\":[{\"key\":\"id\",\"type\":\"cohort\","
        "\"operator\":\"not_in\",\"value\":5}]}]}},"
        "{\"id\":4,\"key\":\"gone\",\"active\":true,\"filters\":{\"groups\":"
        "[{\"properties\":[{\"key\":\"id\",\"type\":\"cohort\","
        "\"value\":99}]}]}}]",
        NULL,
        "[{\"id\":5,\"is_static\":false,\"filters\":{\"properties\":"
        "{\"type\":\"OR\",\"values\":[{\"type\":\"AND\",\"values\":["
        "{\"key\":\"email\",\"type\":\"person\",\"operator\":\"icontains\","
        "\"value\":\"@acme\"},{\"key\":\"banned\",\"type\":\"person\","
        "\"operator\":\"is_set\",\"negation\":true},"
        "{\"key\":\"id\",\"type\":\"cohort\",\"value\":7}]}]}}},"
        "{\"id\":6,\"is_static\":true},"
        "{\"id\":7,\"filters\":{\"properties\":{\"type\":\"AND\","
        "\"values\":[{\"key\":\"email\",\"operator\":\"regex\","
        "\"value\":\"^[a-z]+@\"}]}}}]");

    pp = json_pack("{s:s}", "email", "bob@acme.com");
    sc = json_pack("[i]", 6);

    memset(&req, 0, sizeof(req));
    req.distinct_id = "u1";
    req.runtime = DECIDE_RUNTIME_ANY;
    req.person_properties = pp;
    req.overrides_loaded = 1;
    req.groups_loaded = 1;

    (void) decide_eval_flags(team, &req, out);
    is_int(out[0].status, DECIDE_STATUS_NEEDS_LOOKUP,
           "negated is_set on an absent key needs the person");
    is_int(out[1].need, DECIDE_NEED_PERSON, "static cohort needs person");

    req.person_loaded = 1;
    req.static_cohorts = sc;
    (void) decide_eval_flags(team, &req, out);
    ok(out[0].enabled, "dynamic cohort member (nested cohort, negation)");
    ok(out[1].enabled, "static cohort member by string id");
    ok(!out[2].enabled, "not_in");
    is_int(out[3].status, DECIDE_STATUS_FAILED, "unknown cohort fails");
    is_str(decide_reason_code(&out[3]), "dependency_not_found_cohort",
           "unknown cohort code");
    ok(out[3].errors, "unknown cohort sets errors");

    json_object_set_new(pp, "banned", json_true());
    (void) decide_eval_flags(team, &req, out);
    ok(!out[0].enabled && out[2].enabled, "negation excludes");

    json_decref(pp);
    json_decref(sc);
    decide_team_free(team);
}


static void
decide_t_super(void)
{
    json_t            *pp;
    decide_team_t     *team;
    decide_result_t    out[2];
    decide_request_t   req;

    team = decide_t_team(
        "[{\"id\":1,\"key\":\"ea\",\"active\":true,\"filters\":{"
        "\"feature_enrollment\":true,\"payloads\":{\"true\":\"\\\"p\\\"\"},"
        "\"groups\":[{\"properties\":[],\"rollout_percentage\":0}]}},"
        "{\"id\":2,\"key\":\"sg\",\"active\":true,\"filters\":{"
        "\"super_groups\":[{\"properties\":[{\"key\":\"$feature_enrollment/"
        "sg\",\"type\":\"person\",\"operator\":\"exact\","
        "\"value\":[\"true\"]}],\"rollout_percentage\":100}],"
        "\"groups\":[{\"properties\":[],\"rollout_percentage\":100}]}}]",
        NULL, NULL);

    pp = json_pack("{s:s,s:b}", "$feature_enrollment/ea", "true",
                   "$feature_enrollment/sg", 0);

    memset(&req, 0, sizeof(req));
    req.distinct_id = "u1";
    req.runtime = DECIDE_RUNTIME_ANY;
    req.person_properties = pp;
    req.person_loaded = 1;
    req.groups_loaded = 1;
    req.overrides_loaded = 1;

    (void) decide_eval_flags(team, &req, out);
    ok(out[0].enabled, "feature enrollment on");
    is_str(decide_reason_code(&out[0]), "super_condition_value", "ea code");
    is_int(out[0].condition_index, 0, "ea index 0");
    is_str(decide_t_payload(&out[0]), "\"p\"", "ea payload");
    ok(!out[1].enabled, "super group false overrides the groups");
    is_str(decide_reason_code(&out[1]), "super_condition_value", "sg code");

    json_object_del(pp, "$feature_enrollment/sg");
    (void) decide_eval_flags(team, &req, out);
    ok(out[1].enabled, "no super key: normal conditions");
    is_str(decide_reason_code(&out[1]), "condition_match", "sg falls back");

    json_decref(pp);
    decide_team_free(team);
}


static void
decide_t_continuity(void)
{
    json_t            *ov;
    decide_team_t     *team, *ref;
    decide_result_t    out[2], want[1];
    decide_request_t   req;

    team = decide_t_team(
        "[{\"id\":1,\"key\":\"ec\",\"active\":true,"
        "\"ensure_experience_continuity\":true,\"filters\":{\"groups\":"
        "[{\"properties\":[],\"rollout_percentage\":50}],\"multivariate\":"
        "{\"variants\":[{\"key\":\"a\",\"rollout_percentage\":50},"
        "{\"key\":\"b\",\"rollout_percentage\":50}]}}},"
        "{\"id\":2,\"key\":\"dev\",\"active\":true,"
        "\"bucketing_identifier\":\"device_id\",\"filters\":{\"groups\":"
        "[{\"properties\":[],\"rollout_percentage\":50}]}}]", NULL, NULL);
    ref = decide_t_team(
        "[{\"id\":1,\"key\":\"ec\",\"active\":true,\"filters\":{\"groups\":"
        "[{\"properties\":[],\"rollout_percentage\":50}],\"multivariate\":"
        "{\"variants\":[{\"key\":\"a\",\"rollout_percentage\":50},"
        "{\"key\":\"b\",\"rollout_percentage\":50}]}}}]", NULL, NULL);

    memset(&req, 0, sizeof(req));
    req.distinct_id = "user-1";
    req.runtime = DECIDE_RUNTIME_ANY;
    req.person_loaded = 1;
    req.groups_loaded = 1;

    is_int(decide_eval_flags(team, &req, out) & DECIDE_NEED_HASH_KEY,
           DECIDE_NEED_HASH_KEY, "continuity flag asks for overrides");

    ov = json_pack("{s:s}", "ec", "anon-1");
    req.hash_key_overrides = ov;
    req.overrides_loaded = 1;
    (void) decide_eval_flags(team, &req, out);

    req.hash_key_overrides = NULL;
    req.distinct_id = "anon-1";
    (void) decide_eval_flags(ref, &req, want);

    ok(out[0].enabled == want[0].enabled
       && out[0].reason == want[0].reason
       && ((out[0].variant == NULL && want[0].variant == NULL)
           || (out[0].variant && want[0].variant
               && strcmp(out[0].variant, want[0].variant) == 0)),
       "override hashes like the anonymous id");

    json_decref(ov);
    decide_team_free(ref);
    decide_team_free(team);
}


static void
decide_t_description(void)
{
    char             buf[128];
    decide_result_t  r;

    memset(&r, 0, sizeof(r));
    r.reason = DECIDE_REASON_CONDITION_MATCH;
    r.condition_index = 1;
    decide_reason_description(&r, buf, sizeof(buf));
    is_str(buf, "Matched condition set 2", "description N+1");

    r.reason = DECIDE_REASON_NO_CONDITION_MATCH;
    r.groups_skipped = 1;
    decide_reason_description(&r, buf, sizeof(buf));
    is_str(buf, "No matching condition set (group conditions were not "
           "evaluated because no group type was provided)",
           "groups not evaluated text");
}


/* spec 1.6: "distinct_id" is a person property unless the request sets it */
static void
decide_t_implicit_distinct_id(void)
{
    unsigned           need;
    json_t            *pp;
    decide_team_t     *team;
    decide_result_t    out[2];
    decide_request_t   req;

    team = decide_t_team(
        "[{\"id\":1,\"key\":\"by-id\",\"active\":true,\"filters\":{"
        "\"groups\":[{\"properties\":[{\"key\":\"distinct_id\","
        "\"type\":\"person\",\"operator\":\"exact\","
        "\"value\":[\"u1\"]}],\"rollout_percentage\":100}]}},"
        "{\"id\":2,\"key\":\"by-cohort\",\"active\":true,\"filters\":{"
        "\"groups\":[{\"properties\":[{\"key\":\"id\",\"type\":\"cohort\","
        "\"value\":5}],\"rollout_percentage\":100}]}}]",
        NULL,
        "[{\"id\":5,\"filters\":{\"properties\":{\"type\":\"AND\","
        "\"values\":[{\"key\":\"distinct_id\",\"type\":\"person\","
        "\"operator\":\"icontains\",\"value\":\"U\"}]}}}]");

    memset(&req, 0, sizeof(req));
    req.distinct_id = "u1";
    req.runtime = DECIDE_RUNTIME_ANY;

    need = decide_eval_flags(team, &req, out);
    is_int(need, 0, "implicit distinct_id: no lookup");
    ok(out[0].enabled, "implicit distinct_id matches a condition");
    ok(out[1].enabled, "implicit distinct_id matches a cohort");

    req.distinct_id = "x9";
    (void) decide_eval_flags(team, &req, out);
    ok(!out[0].enabled && !out[1].enabled, "other distinct_id: no match");

    pp = json_pack("{s:s}", "distinct_id", "u1");
    req.person_properties = pp;
    (void) decide_eval_flags(team, &req, out);
    ok(out[0].enabled, "request distinct_id property wins");

    json_decref(pp);
    decide_team_free(team);
}


static decide_team_t *
decide_t_team(const char *flags, const char *mapping, const char *cohorts)
{
    char            why[128];
    json_t         *f, *m, *c;
    json_error_t    err;
    decide_team_t  *team;

    f = json_loads(flags, 0, &err);
    m = mapping ? json_loads(mapping, 0, &err) : NULL;
    c = cohorts ? json_loads(cohorts, 0, &err) : NULL;

    if (f == NULL || (mapping && m == NULL) || (cohorts && c == NULL)) {
        diag("bad test JSON: %s", err.text);
        exit(1);
    }

    team = decide_team_create(f, m, c, why, sizeof(why));
    if (team == NULL) {
        diag("team: %s", why);
        exit(1);
    }

    json_decref(f);
    json_decref(m);
    json_decref(c);

    return team;
}


static const decide_result_t *
decide_t_find(const decide_team_t *team, const decide_result_t *out,
    const char *key)
{
    size_t  i;

    for (i = 0; i < decide_team_nflags(team); i++) {
        if (out[i].key && strcmp(out[i].key, key) == 0) {
            return &out[i];
        }
    }

    return NULL;
}


static const char *
decide_t_payload(const decide_result_t *r)
{
    return r->payload ? json_string_value(r->payload) : NULL;
}


/*
 * decide_eval_prehash() against one-by-one hashing on a team of 40
 * flags (more than two 16-lane batches): filterless and person-filtered
 * first conditions that pass, fail or wait for a lookup, multivariates
 * with and without a condition's variant, experience continuity, a
 * flag dependency, 0 and 100 rollouts; random ids of every length
 * around the one-block limit, empty and non-ASCII ones included.
 */
static void
decide_t_prehash(void)
{
    int               i, j, k, bad, round;
    char              flags[32768], id[128], *p;
    size_t            n, len;
    json_t           *props, *hko, *groups, *gprops;
    decide_team_t    *team;
    decide_result_t  *out;
    decide_request_t  req;

    static const char  *filters[] = {
        "[]",
        "[{\"key\":\"plan\",\"type\":\"person\",\"operator\":\"exact\","
        "\"value\":[\"enterprise\",\"pro\"]}]",
        "[{\"key\":\"email\",\"type\":\"person\",\"operator\":\"icontains\","
        "\"value\":\"@example.com\"},{\"key\":\"app_version\",\"type\":"
        "\"person\",\"operator\":\"semver_gte\",\"value\":\"1.2.0\"}]",
        "[{\"key\":\"plan\",\"type\":\"person\",\"operator\":\"is_not_set\"}]",
        "[{\"key\":\"bench-flag-1\",\"type\":\"flag\",\"operator\":"
        "\"flag_evaluates_to\",\"value\":true}]",
        /* shared filters must be the same filter: not the first's plan */
        "[{\"key\":\"plan\",\"type\":\"person\",\"operator\":\"exact\","
        "\"value\":[\"pro\"]},{\"operator\":\"icontains\",\"value\":"
        "\"@example.com\",\"type\":\"person\",\"key\":\"email\"}]",
        "[{\"key\":\"email\",\"type\":\"person\",\"operator\":\"regex\","
        "\"value\":\"^a@\"},{\"key\":\"distinct_id\",\"type\":\"person\","
        "\"operator\":\"icontains\",\"value\":\"a\"}]",
        /* group filters whose group type is the flag's aggregation */
        "[{\"key\":\"name\",\"operator\":\"exact\",\"value\":\"acme\"}]",
        "[{\"key\":\"name\",\"type\":\"group\",\"operator\":\"exact\","
        "\"value\":\"acme\"}]",
        "[{\"key\":\"app_version\",\"type\":\"person\",\"operator\":"
        "\"semver_gte\",\"value\":\"1.2.0\"},{\"key\":\"plan\",\"type\":"
        "\"person\",\"operator\":\"is_not_set\"}]"
    };

    static const char  *plans[] = { NULL, "pro", "free", "enterprise" };
    static const char  *emails[] = { NULL, "a@example.com", "b@x.org" };
    static const char  *versions[] = { NULL, "1.4.0", "1.0.0", "x" };

    p = flags;
    p += sprintf(p, "[");

    for (i = 0; i < 40; i++) {
        p += sprintf(p, "%s{\"id\":%d,\"key\":\"bench-flag-%d\",\"active\":"
                     "true,\"ensure_experience_continuity\":%s,\"filters\":"
                     "{\"groups\":[{\"properties\":%s,\"rollout_percentage\":"
                     "%d%s}%s]%s%s}}",
                     i ? "," : "", i + 1, i, i == 7 ? "true" : "false",
                     filters[i % 10], (i * 37) % 101,
                     i % 9 == 0 ? ",\"variant\":\"test\"" : "",
                     i % 4 == 0 ? ",{\"properties\":[],"
                                  "\"rollout_percentage\":50}" : "",
                     i % 3 == 0 ? ",\"multivariate\":{\"variants\":["
                                  "{\"key\":\"control\","
                                  "\"rollout_percentage\":50},{\"key\":"
                                  "\"test\",\"rollout_percentage\":50}]}"
                                : "",
                     /* the same filter text on both group types */
                     i % 10 == 7 || i % 10 == 8
                         ? (i / 10) % 2 ? ",\"aggregation_group_type_index\":1"
                                        : ",\"aggregation_group_type_index\":0"
                         : "");
    }

    sprintf(p, "]");

    team = decide_t_team(flags, "{\"0\":\"company\",\"1\":\"project\"}",
                         NULL);
    n = decide_team_nflags(team);

    /*
     * plan exact [enterprise, pro], email icontains, app_version, plan
     * is_not_set, plan exact [pro], email regex, distinct_id, and each
     * group filter once per group type: the flag filter is not shared
     */
    is_int(decide_team_nshared(team), 11, "repeated filters share slots");
    out = calloc(n + 1, sizeof(decide_result_t));

    srand(20261121);
    bad = 0;

    for (round = 0; round < 3000; round++) {
        /* ids around DECIDE_HASH_BATCH_MAX with the prefixes' lengths */
        len = (size_t) rand() % 70;

        for (j = 0; j < (int) len; j++) {
            id[j] = (char) ('a' + rand() % 26);
        }

        /* now and then two-byte characters: "é" pairs */
        if (round % 5 == 0) {
            for (j = 0; j + 1 < (int) len; j += 2) {
                id[j] = (char) 0xc3;
                id[j + 1] = (char) 0xa9;
            }

            len &= ~(size_t) 1;
        }

        id[len] = '\0';

        props = json_object();

        if (plans[rand() % 4]) {
            json_object_set_new(props, "plan",
                                json_string(plans[rand() % 3 + 1]));
        }

        if (emails[rand() % 3]) {
            json_object_set_new(props, "email",
                                json_string(emails[rand() % 2 + 1]));
        }

        if (versions[rand() % 4]) {
            json_object_set_new(props, "app_version",
                                json_string(versions[rand() % 3 + 1]));
        }

        groups = json_object();
        gprops = json_object();

        k = rand() % 4;

        if (k & 1) {
            json_object_set_new(groups, "company", json_string("g1"));
        }

        if (k & 2) {
            json_object_set_new(groups, "project", json_string("g2"));
        }

        if (rand() % 2) {
            json_object_set_new(gprops, "company",
                                json_pack("{s:s}", "name",
                                          rand() % 2 ? "acme" : "other"));
            json_object_set_new(gprops, "project",
                                json_pack("{s:s}", "name",
                                          rand() % 2 ? "acme" : "other"));
        }

        hko = NULL;

        if (round % 7 == 0) {
            hko = json_pack("{s:s}", "bench-flag-3", "other-id");
        }

        memset(&req, 0, sizeof(req));
        req.distinct_id = id;
        req.anon_distinct_id = (round % 3 == 0) ? "anon-1" : NULL;
        req.person_properties = props;
        req.hash_key_overrides = hko;
        req.groups = groups;
        req.group_properties = gprops;
        req.runtime = DECIDE_RUNTIME_ANY;
        req.person_loaded = (round & 1);
        req.overrides_loaded = (round & 2) ? 1 : 0;
        req.groups_loaded = (round & 4) ? 1 : 0;

        (void) decide_eval_flags(team, &req, out);

        j = decide_eval_prehash_diff(team, &req, out);

        if (j >= 0 && bad++ < 5) {
            diag("prehash: round %d, flag %d, id \"%s\"", round, j, id);
        }

        json_decref(props);
        json_decref(groups);
        json_decref(gprops);
        json_decref(hko);
    }

    is_int(bad, 0, "batched hashes and shared filters equal one by one "
           "(3000 requests, 40 flags)");

    free(out);
    decide_team_free(team);
}
