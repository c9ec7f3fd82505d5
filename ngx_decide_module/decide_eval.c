/*
 * Copyright (C) edgehog
 */

/*
 * Flag evaluation over a compiled team (spec 3.1-3.9): dependencies,
 * enrollment and super groups, holdouts, conditions in stored order
 * with the reason priority rules, rollout and variant hashing.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "decide_hash.h"
#include "decide_props.h"
#include "decide_eval.h"
#include "decide_eval_int.h"


static void decide_eval_flag(decide_ctx_t *ctx, size_t i, int depth);
static int decide_eval_tags_match(const decide_flag_t *f,
    const json_t *environments);
static void decide_eval_match(decide_ctx_t *ctx, decide_flag_t *f,
    decide_result_t *r);
static int decide_eval_super(decide_ctx_t *ctx, decide_flag_t *f,
    decide_result_t *r);
static int decide_eval_holdout(decide_ctx_t *ctx, decide_flag_t *f,
    decide_result_t *r);
static int decide_eval_identifier(decide_ctx_t *ctx, decide_flag_t *f, int agg,
    int overrides, const char **id, size_t *len, char *buf);
static void decide_eval_prehash(decide_ctx_t *ctx);
static int decide_eval_prefilter(decide_ctx_t *ctx, const decide_flag_t *f);
static int decide_eval_rollout(decide_ctx_t *ctx, const decide_flag_t *f,
    const decide_cond_t *c, const char *id, size_t len);
static const char *decide_eval_variant(decide_ctx_t *ctx,
    const decide_flag_t *f, const char *id, size_t len);
static void decide_eval_payload(const decide_flag_t *f, const char *variant,
    decide_result_t *r);


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
    ctx.distinct_id = NULL;

    /* the shared filters' slots start unanswered */
    ctx.memo = (team->nmemo && !req->no_prehash);

    if (ctx.memo) {
        memset(ctx.memo_done, 0, (team->nmemo + 63) / 64 * sizeof(uint64_t));
    }

    /* the identifier most conditions hash, measured once */
    ctx.id = req->distinct_id ? req->distinct_id : "";
    ctx.id_len = decide_hash_truncate(ctx.id, strlen(ctx.id));

    decide_eval_prehash(&ctx);

    /* one memset: per-element ones were a slow short "rep stos" each */
    memset(out, 0, team->nflags * sizeof(decide_result_t));

    for (i = 0; i < team->nflags; i++) {
        out[i].status = DECIDE_STATUS_PENDING;
    }

    need = 0;

    for (i = 0; i < team->nflags; i++) {
        decide_eval_flag(&ctx, i, 0);
        need |= out[i].need;
    }

    json_decref(ctx.distinct_id);

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
            && (int) f->runtime != (int) ctx->req->runtime)
        || !decide_eval_tags_match(f, ctx->req->environments))
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
/* spec 1.4: without environments, or without tags, a flag is kept */
static int
decide_eval_tags_match(const decide_flag_t *f, const json_t *environments)
{
    size_t       t, e, n;
    const char  *s;

    /* most flags have no tags: no call into jansson for them */
    if (f->ntags == 0) {
        return 1;
    }

    n = json_array_size(environments);

    if (n == 0) {
        return 1;
    }

    for (e = 0; e < n; e++) {
        s = json_string_value(json_array_get(environments, e));

        if (s == NULL) {
            continue;
        }

        for (t = 0; t < f->ntags; t++) {
            if (strcmp(f->tags[t], s) == 0) {
                return 1;
            }
        }
    }

    return 0;
}


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

        if (i == 0 && (ctx->c0_yes & decide_eval_bit(f - ctx->team->flag))) {
            /* decide_eval_prehash() asked these filters already */
            rc = DECIDE_YES;

        } else if (i == 0
                   && (ctx->c0_no & decide_eval_bit(f - ctx->team->flag)))
        {
            rc = DECIDE_NO;

        } else {
            rc = decide_eval_filters(ctx, &c->filters, 0, &need, &err);
        }

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

        in = decide_eval_rollout(ctx, f, c, id, len);

        if (!in) {
            reason = DECIDE_REASON_OUT_OF_ROLLOUT_BOUND;

            if (f->early_exit) {
                r->reason = reason;
                r->condition_index = (int) i;
                return;
            }

            goto next;
        }

        variant = c->variant ? c->variant
                             : decide_eval_variant(ctx, f, id, len);

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
                      && decide_eval_rollout(ctx, f, &f->super, id, len));
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
            variant = decide_eval_variant(ctx, f, id, len);
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
        *id = ctx->id;
        *len = ctx->id_len;
        return DECIDE_ID_OK;
    }

    *id = s;
    *len = decide_hash_truncate(s, strlen(s));

    return DECIDE_ID_OK;
}


/*
 * The rollout hashes of the distinct id for the flags that will need
 * one, computed together up front: in AVX-512 or SHA-NI lanes a batch
 * costs a fraction of hashing them one by one when a condition asks
 * (up to 16 lanes cost about what one does).  A flag's first condition
 * without filters always needs its hash (decide_team.c sets prehash);
 * one behind person property filters only (prefilter) needs it if they
 * say yes, so they are evaluated here and their answer is kept for
 * decide_eval_match().  Lanes the batch pays for anyway then take the
 * variant hashes of the multivariate flags among them: they are needed
 * whenever the rollout lets the person in.  Without SHA-NI nothing is
 * batched.  Measured: decide_engine shows no gain (its hot loop overlaps
 * the on-demand hashes with other work), the nginx worker does: CPU per
 * /flags request A/B, bench team, 7.84 -> 7.68 us (12 interleaved
 * rounds, either build as the first server).
 */
static void
decide_eval_prehash(decide_ctx_t *ctx)
{
    int                   rc;
    size_t                i, k, n, nr, cap, ngo;
    size_t                len[2 * DECIDE_EVAL_PREHASH];
    size_t                slen[2 * DECIDE_EVAL_PREHASH];
    uint64_t              h[2 * DECIDE_EVAL_PREHASH];
    const char           *prefix[2 * DECIDE_EVAL_PREHASH];
    const char           *salt[2 * DECIDE_EVAL_PREHASH];
    unsigned char         idx[2 * DECIDE_EVAL_PREHASH];
    unsigned char         go[DECIDE_EVAL_PREHASH];
    const decide_flag_t  *f;

    ctx->hashed = 0;
    ctx->vhashed = 0;
    ctx->c0_yes = 0;
    ctx->c0_no = 0;

    if (ctx->id_len == 0 || ctx->req->no_prehash
        || !decide_hash_batch_fast())
    {
        return;
    }

    n = 0;
    ngo = 0;

    for (i = 0; i < ctx->team->nflags && i < DECIDE_EVAL_PREHASH; i++) {
        f = &ctx->team->flag[i];

        if (!(f->prehash || f->prefilter) || !f->evaluable
            || f->prefix_len + ctx->id_len > DECIDE_HASH_BATCH_MAX)
        {
            continue;
        }

        if (f->prefilter) {
            rc = decide_eval_prefilter(ctx, f);

            if (rc == DECIDE_NO) {
                ctx->c0_no |= decide_eval_bit(i);
            }

            if (rc != DECIDE_YES) {
                continue;
            }

            ctx->c0_yes |= decide_eval_bit(i);
        }

        prefix[n] = f->prefix;
        len[n] = f->prefix_len;
        salt[n] = "";
        slen[n] = 0;
        idx[n++] = (unsigned char) i;

        if (f->nvariants && f->cond[0].variant == NULL
            && f->prefix_len + ctx->id_len + 7 <= DECIDE_HASH_BATCH_MAX)
        {
            go[ngo++] = (unsigned char) i;
        }
    }

    /* the lanes decide_hash_n_batch() spends on n hashes anyway */
    nr = n;
    cap = (n <= 4) ? (n + 1) / 2 * 2 : (n <= 8) ? 8 : (n + 15) / 16 * 16;

    for (k = 0; k < ngo && n < cap; k++) {
        f = &ctx->team->flag[go[k]];
        prefix[n] = f->prefix;
        len[n] = f->prefix_len;
        salt[n] = "variant";
        slen[n] = 7;
        idx[n++] = go[k];
    }

    if (n < 2) {
        return;
    }

    decide_hash_n_batch(prefix, len, n, ctx->id, ctx->id_len, salt, slen, h);

    for (k = 0; k < n; k++) {
        i = idx[k];

        if (k < nr) {
            ctx->hash[i] = h[k];
            ctx->hashed |= decide_eval_bit(i);

        } else {
            ctx->vhash[i] = h[k];
            ctx->vhashed |= decide_eval_bit(i);
        }
    }
}


/*
 * The filters of a prefilter flag's first condition, if evaluating the
 * flag gets to them for certain; else DECIDE_NEED, and the condition is
 * left to decide_eval_match() as usual.  Only person properties of the
 * request are read, so the answer is the one decide_eval_match() would
 * get, and a pending lookup is not kept.
 */
static int
decide_eval_prefilter(decide_ctx_t *ctx, const decide_flag_t *f)
{
    unsigned     need;
    const char  *err;

    if (f->filters == NULL || f->enroll_key || f->has_super
        || f->holdout != DECIDE_HOLDOUT_NONE
        || (f->needs_hash_key && !ctx->req->overrides_loaded)
        || (f->runtime != DECIDE_RUNTIME_ANY
            && ctx->req->runtime != DECIDE_RUNTIME_ANY
            && (int) f->runtime != (int) ctx->req->runtime)
        || !decide_eval_tags_match(f, ctx->req->environments))
    {
        return DECIDE_NEED;
    }

    need = 0;
    err = NULL;

    return decide_eval_filters(ctx, &f->cond[0].filters, 0, &need, &err);
}


/* spec 3.1 rollout test, with the empty-identifier shortcut of 3.2 */
static int
decide_eval_rollout(decide_ctx_t *ctx, const decide_flag_t *f,
    const decide_cond_t *c, const char *id, size_t len)
{
    double  h;
    size_t  i;

    if (!c->has_rollout || c->rollout == 100.0) {
        return 1;
    }

    i = f - ctx->team->flag;

    if (id == ctx->id && len == ctx->id_len
        && (ctx->hashed & decide_eval_bit(i)))
    {
        /* the same bytes decide_eval_prehash() hashed */
        h = decide_hash_01(ctx->hash[i]);

    } else {
        h = (len == 0) ? 0.0 : decide_hash_sha1_60(f->prefix, f->prefix_len,
                                                   id, len, "", 0);
    }

    return decide_hash_in_rollout(h, c->rollout);
}


/* the hashed variant of 3.1, or NULL past the last boundary */
static const char *
decide_eval_variant(decide_ctx_t *ctx, const decide_flag_t *f,
    const char *id, size_t len)
{
    double  h;
    size_t  i;

    if (f->nvariants == 0) {
        return NULL;
    }

    if (id == ctx->id && len == ctx->id_len
        && (ctx->vhashed & decide_eval_bit(f - ctx->team->flag)))
    {
        /* the same bytes decide_eval_prehash() hashed */
        h = decide_hash_01(ctx->vhash[f - ctx->team->flag]);

    } else {
        h = (len == 0) ? 0.0 : decide_hash_sha1_60(f->prefix, f->prefix_len,
                                                   id, len, "variant", 7);
    }

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


/* a constant and, for the response writer, its length without strlen() */
#define decide_reason_return(s)                                               \
    do {                                                                      \
        if (len) {                                                            \
            *len = sizeof(s) - 1;                                             \
        }                                                                     \
        return s;                                                             \
    } while (0)


const char *
decide_reason_code(const decide_result_t *r)
{
    return decide_reason_code_n(r, NULL);
}


const char *
decide_reason_code_n(const decide_result_t *r, size_t *len)
{
    switch (r->reason) {
    case DECIDE_REASON_MISSING_DEPENDENCY:
        decide_reason_return("missing_dependency");
    case DECIDE_REASON_FLAG_DISABLED:
        decide_reason_return("flag_disabled");
    case DECIDE_REASON_NO_GROUP_TYPE:
        decide_reason_return("no_group_type");
    case DECIDE_REASON_NO_CONDITION_MATCH:
        decide_reason_return("no_condition_match");
    case DECIDE_REASON_OUT_OF_ROLLOUT_BOUND:
        decide_reason_return("out_of_rollout_bound");
    case DECIDE_REASON_CONDITION_MATCH:
        decide_reason_return("condition_match");
    case DECIDE_REASON_HOLDOUT_CONDITION_VALUE:
        decide_reason_return("holdout_condition_value");
    case DECIDE_REASON_SUPER_CONDITION_VALUE:
        decide_reason_return("super_condition_value");
    default:
        if (r->error == NULL) {
            decide_reason_return("unknown_error");
        }

        if (len) {
            *len = strlen(r->error);
        }

        return r->error;
    }
}


const char *
decide_reason_text(const decide_result_t *r)
{
    return decide_reason_text_n(r, NULL);
}


const char *
decide_reason_text_n(const decide_result_t *r, size_t *len)
{
    switch (r->reason) {
    case DECIDE_REASON_MISSING_DEPENDENCY:
        decide_reason_return(
            "Flag cannot be evaluated due to missing dependency");
    case DECIDE_REASON_FLAG_DISABLED:
        decide_reason_return("Feature flag is disabled");
    case DECIDE_REASON_NO_GROUP_TYPE:
        decide_reason_return("No group type");
    case DECIDE_REASON_NO_CONDITION_MATCH:
        if (r->groups_skipped) {
            decide_reason_return("No matching condition set (group "
                                 "conditions were not evaluated because no "
                                 "group type was provided)");
        }

        decide_reason_return("No matching condition set");
    case DECIDE_REASON_OUT_OF_ROLLOUT_BOUND:
        decide_reason_return("Out of rollout bound");
    case DECIDE_REASON_CONDITION_MATCH:
        decide_reason_return("Matched condition set ");
    case DECIDE_REASON_HOLDOUT_CONDITION_VALUE:
        decide_reason_return("Holdout condition value");
    case DECIDE_REASON_SUPER_CONDITION_VALUE:
        decide_reason_return("Super condition value");
    default:
        decide_reason_return("Flag evaluation failed");
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
