/*
 * Copyright (C) edgehog
 */

/*
 * The differential check of decide_eval_prehash() and of the filters a
 * team shares (decide_team_filter_share()), shared by the eval unit test
 * and fuzz_decide_eval: evaluating with the hashes (and the first
 * conditions' person filters) batched up front, and each repeated filter
 * answered once, must give every result field the one-by-one path
 * (req.no_prehash) gives.
 */

#ifndef _DECIDE_EVAL_DIFF_H_INCLUDED_
#define _DECIDE_EVAL_DIFF_H_INCLUDED_


#include <stdlib.h>
#include <string.h>

#include "decide_eval.h"


/* the index of the first result that differs, or -1 */
static int
decide_eval_prehash_diff(const decide_team_t *team,
    const decide_request_t *req, const decide_result_t *got)
{
    int                i, n, bad;
    unsigned           need;
    decide_result_t   *ref;
    decide_request_t   one;

    n = (int) decide_team_nflags(team);
    ref = calloc((size_t) n + 1, sizeof(decide_result_t));
    if (ref == NULL) {
        return -1;
    }

    one = *req;
    one.no_prehash = 1;
    need = decide_eval_flags(team, &one, ref);
    (void) need;

    bad = -1;

    for (i = 0; i < n && bad < 0; i++) {
        if (got[i].key != ref[i].key || got[i].id != ref[i].id
            || got[i].version != ref[i].version
            || (got[i].variant == NULL) != (ref[i].variant == NULL)
            || (got[i].variant && strcmp(got[i].variant, ref[i].variant))
            || got[i].payload != ref[i].payload
            || got[i].payload_json != ref[i].payload_json
            || got[i].payload_json_len != ref[i].payload_json_len
            || got[i].error != ref[i].error
            || got[i].status != ref[i].status
            || got[i].reason != ref[i].reason
            || got[i].condition_index != ref[i].condition_index
            || got[i].need != ref[i].need
            || got[i].enabled != ref[i].enabled
            || got[i].groups_skipped != ref[i].groups_skipped
            || got[i].errors != ref[i].errors)
        {
            bad = i;
        }
    }

    free(ref);

    return bad;
}


#endif /* _DECIDE_EVAL_DIFF_H_INCLUDED_ */
