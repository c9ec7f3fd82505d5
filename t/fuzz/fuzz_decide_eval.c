/*
 * Copyright (C) edgehog
 */

/*
 * libFuzzer target for the flag engine.  The input is one JSON
 * document: either an array of flags, or an object
 *
 *     {"flags": [...], "group_type_mapping": ..., "cohorts": ...,
 *      "distinct_id": "..", "person_properties": {..}, "groups": {..},
 *      "group_properties": {..}, "hash_key_overrides": {..},
 *      "static_cohorts": [..], "filter": {..}}
 *
 * Every flag is evaluated twice, first as a request without stored
 * data (lookups pending), then with everything loaded, the way the
 * module does.  decide_team_create() compiles the flags and cohorts, so
 * that step is fuzzed too.  "filter" also goes straight to
 * decide_props_match() and, prepared the way the team compiles filters,
 * to decide_props_match_prepared(): both must agree (regexes aside,
 * where JIT and interpreter may hit their limits at different points).
 * Both passes must also give what they give with every hash computed
 * one by one (t/unit/decide_eval_diff.h).
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "decide_eval.h"
#include "decide_props.h"
#include "decide_eval_diff.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                    a, b;
    char                   buf[128];
    size_t                 i, n;
    json_t                *root, *flags, *filter, *props;
    decide_regex_cache_t  *cache;
    decide_prop_filter_t   pf;
    decide_team_t      *team;
    decide_result_t    *out;
    decide_request_t    req;
    decide_props_ctx_t  pctx;

    root = json_loadb((const char *) data, size, JSON_DECODE_ANY, NULL);
    if (root == NULL) {
        return 0;
    }

    flags = json_is_array(root) ? root : json_object_get(root, "flags");

    pctx.now = 1718452800.0;
    pctx.regex = NULL;
    filter = json_object_get(root, "filter");
    props = json_object_get(root, "person_properties");
    a = decide_props_match(filter, props, &pctx);

    cache = decide_regex_cache_create();
    if (cache) {
        decide_props_prepare(&pf, filter, cache);
        b = decide_props_match_prepared(&pf, (pf.key && json_is_object(props))
                                             ? json_object_get(props, pf.key)
                                             : NULL,
                                        &pctx);

        if (a != b && pf.op != DECIDE_OP_REGEX
            && pf.op != DECIDE_OP_NOT_REGEX)
        {
            abort();
        }

        decide_regex_cache_free(cache);
    }

    team = decide_team_create(flags, json_object_get(root,
                                                     "group_type_mapping"),
                              json_object_get(root, "cohorts"), buf,
                              sizeof(buf));
    if (team == NULL) {
        json_decref(root);
        return 0;
    }

    n = decide_team_nflags(team);
    out = calloc(n + 1, sizeof(decide_result_t));

    memset(&req, 0, sizeof(req));
    req.distinct_id = json_string_value(json_object_get(root, "distinct_id"));
    if (req.distinct_id == NULL) {
        req.distinct_id = "user-1";
    }

    req.device_id = json_string_value(json_object_get(root, "device_id"));
    req.anon_distinct_id = json_string_value(json_object_get(root,
                                                        "anon_distinct_id"));
    req.person_properties = json_object_get(root, "person_properties");
    req.groups = json_object_get(root, "groups");
    req.group_properties = json_object_get(root, "group_properties");
    req.hash_key_overrides = json_object_get(root, "hash_key_overrides");
    req.static_cohorts = json_object_get(root, "static_cohorts");
    req.now = 1718452800.0;
    req.runtime = (decide_runtime_e) (size % 4);

    if (out) {
        (void) decide_eval_flags(team, &req, out);

        /* the hashes batched up front change no result */
        if (decide_eval_prehash_diff(team, &req, out) >= 0) {
            abort();
        }

        req.person_loaded = 1;
        req.groups_loaded = 1;
        req.overrides_loaded = 1;

        if (decide_eval_flags(team, &req, out) != 0) {
            /* everything loaded: nothing may stay pending */
            abort();
        }

        if (decide_eval_prehash_diff(team, &req, out) >= 0) {
            abort();
        }

        for (i = 0; i < n; i++) {
            (void) decide_reason_code(&out[i]);
            (void) decide_reason_description(&out[i], buf, sizeof(buf));
        }
    }

    free(out);
    decide_team_free(team);
    json_decref(root);

    return 0;
}
