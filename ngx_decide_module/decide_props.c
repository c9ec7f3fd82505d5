/*
 * Copyright (C) edgehog
 */


#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#define PCRE2_CODE_UNIT_WIDTH  8
#include <pcre2.h>

#include "decide_props.h"
#include "eh_time.h"


/* relative dates: "-30d"; the server rejects n >= 10000 */
#define DECIDE_DATE_REL_MAX  10000

/* numeric strings longer than this are not numbers for gt/lt */
#define DECIDE_NUM_MAX       128


/* decide_prop_filter_t.prepared */
#define DECIDE_PF_RAW        0      /* match through decide_props_match_op */
#define DECIDE_PF_NEVER      1      /* the value can never match */
#define DECIDE_PF_NUM        2      /* gt/gte/lt/lte with num set */
#define DECIDE_PF_SEMVER     3      /* semver_* with lo (and hi) set */
#define DECIDE_PF_REGEX      4      /* regex/not_regex, regex may be NULL */
#define DECIDE_PF_EXACT      5      /* exact/is_not over ASCII strings */


typedef struct {
    char                  *pattern;
    size_t                 len;
    pcre2_code            *code;        /* NULL: invalid pattern */
} decide_regex_t;


struct decide_regex_cache_s {
    decide_regex_t        *items;
    size_t                 n;
    size_t                 cap;
    pcre2_match_data      *md;
    pcre2_match_context   *mctx;
};


typedef struct {
    const char            *name;
    decide_op_e            op;
} decide_op_name_t;


static int decide_props_exact(const json_t *value, const json_t *prop);
static int decide_props_boolish(const json_t *v);
static int decide_props_truthy(const json_t *v);
static int decide_props_str_eq_ci(const json_t *a, const json_t *b);
static int decide_props_contains(const json_t *value, const json_t *prop,
    int mode);
static int decide_props_regex(const json_t *value, const json_t *prop,
    const decide_props_ctx_t *ctx);
static int decide_props_cmp_num(decide_op_e op, const json_t *value,
    const json_t *prop);
static int decide_props_date(decide_op_e op, const json_t *value,
    const json_t *prop, const decide_props_ctx_t *ctx);
static int decide_props_semver(decide_op_e op, const json_t *value,
    const json_t *prop);
static int decide_props_semver_range(decide_op_e op, const char *s,
    size_t len, decide_semver_t *lo, decide_semver_t *hi);
static const char *decide_props_real(double d, char *buf, size_t size,
    size_t *len);
static int decide_props_parse_num(const char *s, size_t len, double *out);
static uint32_t decide_utf8_next(const unsigned char **p,
    const unsigned char *end);
static uint32_t decide_utf8_lower(uint32_t c);
static int decide_ascii_lower(int c);
static int decide_ascii_find(const char *h, size_t hlen, const char *n,
    size_t nlen, int where);
static int decide_ascii_only(const char *s, size_t len);
static int decide_props_exact_ascii(const json_t *value, const char *s,
    size_t len);
static int decide_date_relative(const char *s, size_t len, double now,
    double *out);
static int decide_regex_compile(const char *pattern, size_t len,
    pcre2_code **code);
static pcre2_code *decide_regex_cache_find(decide_regex_cache_t *cache,
    const char *pattern, size_t len, int *found);
static int decide_regex_run(pcre2_code *code, pcre2_match_data *md,
    pcre2_match_context *mctx, const char *s, size_t len);


static const decide_op_name_t  decide_op_names[] = {
    { "exact", DECIDE_OP_EXACT },
    { "is_not", DECIDE_OP_IS_NOT },
    { "is_set", DECIDE_OP_IS_SET },
    { "is_not_set", DECIDE_OP_IS_NOT_SET },
    { "icontains", DECIDE_OP_ICONTAINS },
    { "not_icontains", DECIDE_OP_NOT_ICONTAINS },
    { "icontains_multi", DECIDE_OP_ICONTAINS_MULTI },
    { "not_icontains_multi", DECIDE_OP_NOT_ICONTAINS_MULTI },
    { "starts_with", DECIDE_OP_STARTS_WITH },
    { "not_starts_with", DECIDE_OP_NOT_STARTS_WITH },
    { "ends_with", DECIDE_OP_ENDS_WITH },
    { "not_ends_with", DECIDE_OP_NOT_ENDS_WITH },
    { "regex", DECIDE_OP_REGEX },
    { "not_regex", DECIDE_OP_NOT_REGEX },
    { "gt", DECIDE_OP_GT },
    { "gte", DECIDE_OP_GTE },
    { "lt", DECIDE_OP_LT },
    { "lte", DECIDE_OP_LTE },
    { "is_date_before", DECIDE_OP_DATE_BEFORE },
    { "is_date_after", DECIDE_OP_DATE_AFTER },
    { "is_date_exact", DECIDE_OP_DATE_EXACT },
    { "semver_eq", DECIDE_OP_SEMVER_EQ },
    { "semver_neq", DECIDE_OP_SEMVER_NEQ },
    { "semver_gt", DECIDE_OP_SEMVER_GT },
    { "semver_gte", DECIDE_OP_SEMVER_GTE },
    { "semver_lt", DECIDE_OP_SEMVER_LT },
    { "semver_lte", DECIDE_OP_SEMVER_LTE },
    { "semver_tilde", DECIDE_OP_SEMVER_TILDE },
    { "semver_caret", DECIDE_OP_SEMVER_CARET },
    { "semver_wildcard", DECIDE_OP_SEMVER_WILDCARD },
    { "in", DECIDE_OP_IN },
    { "not_in", DECIDE_OP_NOT_IN },
    { "flag_evaluates_to", DECIDE_OP_FLAG_EVALUATES_TO },
    { NULL, DECIDE_OP_UNKNOWN }
};


decide_op_e
decide_props_op(const char *name)
{
    const decide_op_name_t  *o;

    if (name == NULL) {
        return DECIDE_OP_EXACT;
    }

    for (o = decide_op_names; o->name; o++) {
        if (strcmp(o->name, name) == 0) {
            return o->op;
        }
    }

    return DECIDE_OP_UNKNOWN;
}


int
decide_props_match(const json_t *filter, const json_t *props,
    const decide_props_ctx_t *ctx)
{
    const char    *key;
    const json_t  *op, *prop;

    key = json_string_value(json_object_get(filter, "key"));
    if (key == NULL) {
        return 0;
    }

    op = json_object_get(filter, "operator");

    /* "operator": null means the default, as an absent key does */
    if (op != NULL && !json_is_null(op) && !json_is_string(op)) {
        return 0;
    }

    prop = json_is_object(props) ? json_object_get(props, key) : NULL;

    return decide_props_match_op(decide_props_op(json_string_value(op)),
                                 json_object_get(filter, "value"), prop,
                                 ctx);
}


void
decide_props_prepare(decide_prop_filter_t *pf, const json_t *filter,
    decide_regex_cache_t *cache)
{
    int            found, c;
    char           buf[DECIDE_PROPS_STR_MAX];
    size_t         len;
    json_t        *item;
    const char    *s;
    const json_t  *op;

    memset(pf, 0, sizeof(decide_prop_filter_t));

    pf->key = json_string_value(json_object_get(filter, "key"));
    pf->key_len = pf->key ? strlen(pf->key) : 0;
    pf->value = json_object_get(filter, "value");
    pf->cache = cache;

    op = json_object_get(filter, "operator");

    /* "operator": null means the default, as an absent key does */
    if (op != NULL && !json_is_null(op) && !json_is_string(op)) {
        pf->op = DECIDE_OP_UNKNOWN;
        return;
    }

    pf->op = decide_props_op(json_string_value(op));

    /* absent and null values keep the generic path's early answers */
    if (pf->value == NULL || json_is_null(pf->value)) {
        return;
    }

    switch (pf->op) {

    case DECIDE_OP_EXACT:
    case DECIDE_OP_IS_NOT:
        /*
         * ASCII strings, not the "true"/"false" of boolean matching:
         * against an ASCII string property, Unicode lowercasing is
         * ASCII case folding and equal strings have equal lengths.
         */
        if (decide_props_boolish(pf->value)) {
            return;
        }

        if (json_is_string(pf->value)) {
            if (decide_ascii_only(json_string_value(pf->value),
                                  json_string_length(pf->value)))
            {
                pf->prepared = DECIDE_PF_EXACT;
            }

            return;
        }

        if (!json_is_array(pf->value) || json_array_size(pf->value) == 0) {
            return;
        }

        json_array_foreach(pf->value, len, item) {
            if (!json_is_string(item)
                || !decide_ascii_only(json_string_value(item),
                                      json_string_length(item)))
            {
                return;
            }
        }

        pf->prepared = DECIDE_PF_EXACT;
        return;

    case DECIDE_OP_GT:
    case DECIDE_OP_GTE:
    case DECIDE_OP_LT:
    case DECIDE_OP_LTE:
        pf->prepared = (decide_props_num(pf->value, &pf->num) == 0)
                       ? DECIDE_PF_NUM : DECIDE_PF_NEVER;
        return;

    case DECIDE_OP_SEMVER_EQ:
    case DECIDE_OP_SEMVER_NEQ:
    case DECIDE_OP_SEMVER_GT:
    case DECIDE_OP_SEMVER_GTE:
    case DECIDE_OP_SEMVER_LT:
    case DECIDE_OP_SEMVER_LTE:
        /* lo.pre points into the filter's string, which outlives pf */
        if (!json_is_string(pf->value)
            || decide_semver_parse(json_string_value(pf->value),
                                   json_string_length(pf->value), &pf->lo)
               != 0)
        {
            pf->prepared = DECIDE_PF_NEVER;
            return;
        }

        pf->prepared = DECIDE_PF_SEMVER;
        return;

    case DECIDE_OP_SEMVER_TILDE:
    case DECIDE_OP_SEMVER_CARET:
    case DECIDE_OP_SEMVER_WILDCARD:
        c = json_is_string(pf->value)
            ? decide_props_semver_range(pf->op,
                                        json_string_value(pf->value),
                                        json_string_length(pf->value),
                                        &pf->lo, &pf->hi)
            : -1;

        pf->prepared = (c == 0) ? DECIDE_PF_SEMVER : DECIDE_PF_NEVER;
        return;

    case DECIDE_OP_REGEX:
    case DECIDE_OP_NOT_REGEX:
        if (cache == NULL) {
            return;
        }

        s = decide_props_str(pf->value, buf, sizeof(buf), &len);
        if (s == NULL) {
            /* str() does not fit: an error, false for both operators */
            pf->prepared = DECIDE_PF_REGEX;
            return;
        }

        if (decide_regex_cache_add(cache, s, len) != 0) {
            return;
        }

        pf->regex = decide_regex_cache_find(cache, s, len, &found);
        pf->prepared = found ? DECIDE_PF_REGEX : DECIDE_PF_RAW;
        return;

    default:
        return;
    }
}


int
decide_props_match_prepared(const decide_prop_filter_t *pf,
    const json_t *prop, const decide_props_ctx_t *ctx)
{
    int                    c;
    char                   buf[DECIDE_PROPS_STR_MAX];
    size_t                 len;
    double                 p;
    const char            *s;
    decide_semver_t        pv;
    decide_regex_cache_t  *cache;

    if (pf->key == NULL) {
        return 0;
    }

    switch (pf->prepared) {

    case DECIDE_PF_NEVER:
        /* none of these operators is negated: absent is no match too */
        return 0;

    case DECIDE_PF_NUM:
        if (prop == NULL || decide_props_num(prop, &p) != 0) {
            return 0;
        }

        switch (pf->op) {
        case DECIDE_OP_GT:
            return p > pf->num;
        case DECIDE_OP_GTE:
            return p >= pf->num;
        case DECIDE_OP_LT:
            return p < pf->num;
        default:
            return p <= pf->num;
        }

    case DECIDE_PF_SEMVER:
        if (prop == NULL) {
            return 0;
        }

        s = decide_props_str(prop, buf, sizeof(buf), &len);

        if (s == NULL || decide_semver_parse(s, len, &pv) != 0) {
            return 0;
        }

        c = decide_semver_cmp(&pv, &pf->lo);

        switch (pf->op) {
        case DECIDE_OP_SEMVER_EQ:
            return c == 0;
        case DECIDE_OP_SEMVER_NEQ:
            return c != 0;
        case DECIDE_OP_SEMVER_GT:
            return c > 0;
        case DECIDE_OP_SEMVER_GTE:
            return c >= 0;
        case DECIDE_OP_SEMVER_LT:
            return c < 0;
        case DECIDE_OP_SEMVER_LTE:
            return c <= 0;
        default:
            return c >= 0 && decide_semver_cmp(&pv, &pf->hi) < 0;
        }

    case DECIDE_PF_EXACT:
        if (!json_is_string(prop)) {
            /* absent, or str() of a number, bool, ...: the generic way */
            return decide_props_match_op(pf->op, pf->value, prop, ctx);
        }

        s = json_string_value(prop);
        len = json_string_length(prop);

        if (!decide_ascii_only(s, len)) {
            /* e.g. U+0130 lowercases to an ASCII "i" */
            return decide_props_match_op(pf->op, pf->value, prop, ctx);
        }

        c = decide_props_exact_ascii(pf->value, s, len);

        return (pf->op == DECIDE_OP_EXACT) ? c : !c;

    case DECIDE_PF_REGEX:
        if (prop == NULL) {
            return pf->op == DECIDE_OP_NOT_REGEX;
        }

        c = -1;
        cache = pf->cache;
        s = decide_props_str(prop, buf, sizeof(buf), &len);

        if (pf->regex && s) {
            c = decide_regex_run(pf->regex, cache->md, cache->mctx, s, len);
        }

        /* an invalid pattern or a blown budget is false for both */
        return (pf->op == DECIDE_OP_REGEX) ? (c == 1) : (c == 0);

    default:
        return decide_props_match_op(pf->op, pf->value, prop, ctx);
    }
}


int
decide_props_match_op(decide_op_e op, const json_t *value,
    const json_t *prop, const decide_props_ctx_t *ctx)
{
    int  negated;

    switch (op) {

    case DECIDE_OP_IS_SET:
        return prop != NULL;

    case DECIDE_OP_IS_NOT_SET:
        return prop == NULL;

    case DECIDE_OP_UNKNOWN:
    case DECIDE_OP_IN:
    case DECIDE_OP_NOT_IN:
    case DECIDE_OP_FLAG_EVALUATES_TO:
        /* not property operators: the server errors, i.e. no match */
        return 0;

    default:
        break;
    }

    /* a value-requiring operator with a null value never matches */
    if (value == NULL || json_is_null(value)) {
        return 0;
    }

    negated = (op == DECIDE_OP_IS_NOT || op == DECIDE_OP_NOT_ICONTAINS
               || op == DECIDE_OP_NOT_ICONTAINS_MULTI
               || op == DECIDE_OP_NOT_STARTS_WITH
               || op == DECIDE_OP_NOT_ENDS_WITH || op == DECIDE_OP_NOT_REGEX);

    if (prop == NULL) {
        return negated;
    }

    switch (op) {

    case DECIDE_OP_EXACT:
        return decide_props_exact(value, prop);

    case DECIDE_OP_IS_NOT:
        return !decide_props_exact(value, prop);

    case DECIDE_OP_ICONTAINS:
    case DECIDE_OP_ICONTAINS_MULTI:
        return decide_props_contains(value, prop, 0);

    case DECIDE_OP_NOT_ICONTAINS:
    case DECIDE_OP_NOT_ICONTAINS_MULTI:
        return !decide_props_contains(value, prop, 0);

    case DECIDE_OP_STARTS_WITH:
        return decide_props_contains(value, prop, 1);

    case DECIDE_OP_NOT_STARTS_WITH:
        return !decide_props_contains(value, prop, 1);

    case DECIDE_OP_ENDS_WITH:
        return decide_props_contains(value, prop, 2);

    case DECIDE_OP_NOT_ENDS_WITH:
        return !decide_props_contains(value, prop, 2);

    case DECIDE_OP_REGEX:
        return decide_props_regex(value, prop, ctx) == 1;

    case DECIDE_OP_NOT_REGEX:
        /* an invalid pattern or a blown budget is false for both */
        return decide_props_regex(value, prop, ctx) == 0;

    case DECIDE_OP_GT:
    case DECIDE_OP_GTE:
    case DECIDE_OP_LT:
    case DECIDE_OP_LTE:
        return decide_props_cmp_num(op, value, prop);

    case DECIDE_OP_DATE_BEFORE:
    case DECIDE_OP_DATE_AFTER:
    case DECIDE_OP_DATE_EXACT:
        return decide_props_date(op, value, prop, ctx);

    default:
        return decide_props_semver(op, value, prop);
    }
}


static int
decide_props_exact(const json_t *value, const json_t *prop)
{
    int      t;
    size_t   i;
    json_t  *item;

    if (decide_props_boolish(value)) {
        t = decide_props_truthy(prop);

        if (!json_is_array(value)) {
            return decide_props_truthy(value) == t;
        }

        json_array_foreach(value, i, item) {
            if (decide_props_truthy(item) == t) {
                return 1;
            }
        }

        return 0;
    }

    if (json_is_array(value)) {
        json_array_foreach(value, i, item) {
            if (decide_props_str_eq_ci(item, prop)) {
                return 1;
            }
        }

        return 0;
    }

    return decide_props_str_eq_ci(value, prop);
}


/* a bool, "true"/"false" in any case, or a non-empty array of those */
static int
decide_props_boolish(const json_t *v)
{
    size_t       i, len;
    json_t      *item;
    const char  *s;

    if (json_is_boolean(v)) {
        return 1;
    }

    if (json_is_string(v)) {
        s = json_string_value(v);
        len = json_string_length(v);

        return (len == 4 && strcasecmp(s, "true") == 0)
               || (len == 5 && strcasecmp(s, "false") == 0);
    }

    if (json_is_array(v) && json_array_size(v) > 0) {
        json_array_foreach(v, i, item) {
            if (json_is_array(item) || !decide_props_boolish(item)) {
                return 0;
            }
        }

        return 1;
    }

    return 0;
}


static int
decide_props_truthy(const json_t *v)
{
    if (json_is_true(v)) {
        return 1;
    }

    return json_is_string(v) && json_string_length(v) == 4
           && strcasecmp(json_string_value(v), "true") == 0;
}


/* Unicode-lowercased str(a) == str(b) */
static int
decide_props_str_eq_ci(const json_t *a, const json_t *b)
{
    char                  abuf[DECIDE_PROPS_STR_MAX];
    char                  bbuf[DECIDE_PROPS_STR_MAX];
    size_t                alen, blen;
    const char           *as, *bs;
    const unsigned char  *ap, *bp, *aend, *bend;

    as = decide_props_str(a, abuf, sizeof(abuf), &alen);
    bs = decide_props_str(b, bbuf, sizeof(bbuf), &blen);

    if (as == NULL || bs == NULL) {
        return 0;
    }

    ap = (const unsigned char *) as;
    bp = (const unsigned char *) bs;
    aend = ap + alen;
    bend = bp + blen;

    while (ap < aend && bp < bend) {
        if (decide_utf8_lower(decide_utf8_next(&ap, aend))
            != decide_utf8_lower(decide_utf8_next(&bp, bend)))
        {
            return 0;
        }
    }

    return ap == aend && bp == bend;
}


/*
 * mode 0: contains, 1: starts with, 2: ends with; ASCII case folding.
 * An array value (icontains_multi) matches when any element does.
 */
static int
decide_props_contains(const json_t *value, const json_t *prop, int mode)
{
    char         pbuf[DECIDE_PROPS_STR_MAX], vbuf[DECIDE_PROPS_STR_MAX];
    size_t       i, plen, vlen;
    json_t      *item;
    const char  *ps, *vs;

    ps = decide_props_str(prop, pbuf, sizeof(pbuf), &plen);
    if (ps == NULL) {
        return 0;
    }

    if (json_is_array(value)) {
        json_array_foreach(value, i, item) {
            vs = decide_props_str(item, vbuf, sizeof(vbuf), &vlen);

            if (vs && decide_ascii_find(ps, plen, vs, vlen, mode)) {
                return 1;
            }
        }

        return 0;
    }

    vs = decide_props_str(value, vbuf, sizeof(vbuf), &vlen);

    return vs != NULL && decide_ascii_find(ps, plen, vs, vlen, mode);
}


static int
decide_props_regex(const json_t *value, const json_t *prop,
    const decide_props_ctx_t *ctx)
{
    int                   rc;
    char                  vbuf[DECIDE_PROPS_STR_MAX];
    char                  pbuf[DECIDE_PROPS_STR_MAX];
    size_t                i, vlen, plen;
    const char           *vs, *ps;
    pcre2_code           *code;
    pcre2_match_data     *md;
    pcre2_match_context  *mctx;
    decide_regex_cache_t *cache;

    vs = decide_props_str(value, vbuf, sizeof(vbuf), &vlen);
    ps = decide_props_str(prop, pbuf, sizeof(pbuf), &plen);

    if (vs == NULL || ps == NULL) {
        return -1;
    }

    cache = ctx ? ctx->regex : NULL;

    if (cache) {
        for (i = 0; i < cache->n; i++) {
            if (cache->items[i].len == vlen
                && memcmp(cache->items[i].pattern, vs, vlen) == 0)
            {
                if (cache->items[i].code == NULL) {
                    return -1;
                }

                return decide_regex_run(cache->items[i].code, cache->md,
                                        cache->mctx, ps, plen);
            }
        }
    }

    if (decide_regex_compile(vs, vlen, &code) != 0) {
        return -1;
    }

    md = pcre2_match_data_create(1, NULL);
    mctx = pcre2_match_context_create(NULL);

    if (md == NULL || mctx == NULL) {
        rc = -1;

    } else {
        pcre2_set_match_limit(mctx, DECIDE_REGEX_MATCH_LIMIT);
        pcre2_set_depth_limit(mctx, DECIDE_REGEX_DEPTH_LIMIT);
        rc = decide_regex_run(code, md, mctx, ps, plen);
    }

    /* all three pcre2 *_free() functions accept NULL */
    pcre2_match_context_free(mctx);
    pcre2_match_data_free(md);
    pcre2_code_free(code);

    return rc;
}


static int
decide_regex_compile(const char *pattern, size_t len, pcre2_code **code)
{
    int         err;
    PCRE2_SIZE  off;

    /*
     * fancy-regex is Unicode-aware (\w, \d, case folding) and searches
     * unanchored; PCRE2_UCP gives the same classes.  Subjects come from
     * jansson and are valid UTF-8, MATCH_INVALID_UTF is belt and braces.
     */
    *code = pcre2_compile((PCRE2_SPTR) pattern, len,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF,
                          &err, &off, NULL);

    return *code ? 0 : -1;
}


/* 1 match, 0 no match, -1 error (match limit, depth limit, memory) */
static int
decide_regex_run(pcre2_code *code, pcre2_match_data *md,
    pcre2_match_context *mctx, const char *s, size_t len)
{
    int  rc;

    rc = pcre2_match(code, (PCRE2_SPTR) s, len, 0, 0, md, mctx);

    if (rc >= 0) {
        return 1;
    }

    return rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}


static int
decide_props_cmp_num(decide_op_e op, const json_t *value,
    const json_t *prop)
{
    double  v, p;

    if (decide_props_num(value, &v) != 0 || decide_props_num(prop, &p) != 0)
    {
        return 0;
    }

    switch (op) {
    case DECIDE_OP_GT:
        return p > v;
    case DECIDE_OP_GTE:
        return p >= v;
    case DECIDE_OP_LT:
        return p < v;
    default:
        return p <= v;
    }
}


static int
decide_props_date(decide_op_e op, const json_t *value, const json_t *prop,
    const decide_props_ctx_t *ctx)
{
    double  now, v, p;

    if (!json_is_string(value)) {
        return 0;
    }

    now = ctx ? ctx->now : 0;

    if (decide_props_parse_date(json_string_value(value),
                                json_string_length(value), now, &v)
        != 0)
    {
        return 0;
    }

    /* numbers and numeric strings are unix seconds */
    if (json_is_number(prop)) {
        p = json_number_value(prop);

    } else if (json_is_string(prop)) {
        if (decide_props_parse_num(json_string_value(prop),
                                   json_string_length(prop), &p)
            != 0
            && decide_props_parse_date(json_string_value(prop),
                                       json_string_length(prop), now, &p)
               != 0)
        {
            return 0;
        }

    } else {
        return 0;
    }

    switch (op) {
    case DECIDE_OP_DATE_BEFORE:
        return p < v;
    case DECIDE_OP_DATE_AFTER:
        return p > v;
    default:
        return p == v;
    }
}


static int
decide_props_semver(decide_op_e op, const json_t *value, const json_t *prop)
{
    int              c;
    char             buf[DECIDE_PROPS_STR_MAX];
    size_t           len;
    const char      *s;
    decide_semver_t  pv, fv, hi;

    s = decide_props_str(prop, buf, sizeof(buf), &len);

    if (s == NULL || decide_semver_parse(s, len, &pv) != 0) {
        return 0;
    }

    if (!json_is_string(value)) {
        return 0;
    }

    s = json_string_value(value);
    len = json_string_length(value);

    if (op == DECIDE_OP_SEMVER_TILDE || op == DECIDE_OP_SEMVER_CARET
        || op == DECIDE_OP_SEMVER_WILDCARD)
    {
        if (decide_props_semver_range(op, s, len, &fv, &hi) != 0) {
            return 0;
        }

        return decide_semver_cmp(&pv, &fv) >= 0
               && decide_semver_cmp(&pv, &hi) < 0;
    }

    if (decide_semver_parse(s, len, &fv) != 0) {
        return 0;
    }

    c = decide_semver_cmp(&pv, &fv);

    switch (op) {
    case DECIDE_OP_SEMVER_EQ:
        return c == 0;
    case DECIDE_OP_SEMVER_NEQ:
        return c != 0;
    case DECIDE_OP_SEMVER_GT:
        return c > 0;
    case DECIDE_OP_SEMVER_GTE:
        return c >= 0;
    case DECIDE_OP_SEMVER_LT:
        return c < 0;
    default:
        return c <= 0;
    }
}


/* [lo, hi) for ~x.y.z, ^x.y.z and x.*, x.y.* */
static int
decide_props_semver_range(decide_op_e op, const char *s, size_t len,
    decide_semver_t *lo, decide_semver_t *hi)
{
    char    buf[64];
    size_t  i, n, parts;

    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }

    if (len && ((op == DECIDE_OP_SEMVER_TILDE && *s == '~')
                || (op == DECIDE_OP_SEMVER_CARET && *s == '^')))
    {
        s++;
        len--;
    }

    if (op != DECIDE_OP_SEMVER_WILDCARD) {
        if (decide_semver_parse(s, len, lo) != 0) {
            return -1;
        }

        *hi = *lo;
        hi->pre = NULL;
        hi->pre_len = 0;

        if (op == DECIDE_OP_SEMVER_TILDE) {
            hi->minor++;
            hi->patch = 0;

        } else if (lo->major > 0) {
            hi->major++;
            hi->minor = 0;
            hi->patch = 0;

        } else if (lo->minor > 0) {
            hi->minor++;
            hi->patch = 0;

        } else {
            hi->patch++;
        }

        return 0;
    }

    /* "1.*" / "1.2.x": cut at the first wildcard component */
    if (len >= sizeof(buf)) {
        return -1;
    }

    n = 0;
    parts = 1;

    for (i = 0; i < len; i++) {
        if (s[i] == '*' || s[i] == 'x' || s[i] == 'X') {
            break;
        }

        if (s[i] == '.') {
            parts++;
        }

        buf[n++] = s[i];
    }

    if (i == len) {
        /* no wildcard: the range of exactly that version */
        if (decide_semver_parse(s, len, lo) != 0) {
            return -1;
        }

        *hi = *lo;
        hi->pre = NULL;
        hi->pre_len = 0;
        hi->patch++;
        return 0;
    }

    if (n == 0 || buf[n - 1] != '.' || parts > 3) {
        return -1;
    }

    n--;

    if (decide_semver_parse(buf, n, lo) != 0 || lo->pre_len) {
        return -1;
    }

    *hi = *lo;

    if (parts == 2) {
        hi->major++;

    } else {
        hi->minor++;
    }

    /* lo points into buf, which dies here: ranges carry no pre-release */
    lo->pre = NULL;
    hi->pre = NULL;

    return 0;
}


int
decide_semver_parse(const char *s, size_t len, decide_semver_t *v)
{
    size_t       i, part, digits;
    uint64_t     n[3];
    const char  *end;

    while (len && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) {
        s++;
        len--;
    }

    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'
                   || s[len - 1] == '\n' || s[len - 1] == '\r'))
    {
        len--;
    }

    if (len && (*s == 'v' || *s == 'V')) {
        s++;
        len--;
    }

    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }

    end = s + len;
    n[0] = n[1] = n[2] = 0;
    part = 0;
    digits = 0;

    for (i = 0; i < len; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            if (n[part] > (UINT64_MAX - 9) / 10) {
                return -1;
            }

            n[part] = n[part] * 10 + (uint64_t) (s[i] - '0');
            digits++;
            continue;
        }

        if (s[i] == '.') {
            if (digits == 0 || part == 2) {
                return -1;
            }

            part++;
            digits = 0;
            continue;
        }

        break;
    }

    if (digits == 0) {
        return -1;
    }

    v->major = n[0];
    v->minor = n[1];
    v->patch = n[2];
    v->pre = NULL;
    v->pre_len = 0;

    s += i;

    if (s == end) {
        return 0;
    }

    if (*s == '-') {
        s++;
        v->pre = s;

        while (s < end && *s != '+') {
            if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z')
                  || (*s >= 'A' && *s <= 'Z') || *s == '-' || *s == '.'))
            {
                return -1;
            }

            /* empty identifiers: "1.0.0-", "1.0.0-a..b" */
            if (*s == '.' && (s == v->pre || s[-1] == '.')) {
                return -1;
            }

            s++;
        }

        v->pre_len = (size_t) (s - v->pre);

        if (v->pre_len == 0 || v->pre[v->pre_len - 1] == '.') {
            return -1;
        }
    }

    if (s == end) {
        return 0;
    }

    /* build metadata is ignored for precedence but must not be empty */
    if (*s != '+' || s + 1 == end) {
        return -1;
    }

    for (s++; s < end; s++) {
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z')
              || (*s >= 'A' && *s <= 'Z') || *s == '-' || *s == '.'))
        {
            return -1;
        }
    }

    return 0;
}


int
decide_semver_cmp(const decide_semver_t *a, const decide_semver_t *b)
{
    int          an, bn, c;
    size_t       ai, bi, al, bl, k;
    const char  *ap, *bp;

    if (a->major != b->major) {
        return a->major < b->major ? -1 : 1;
    }

    if (a->minor != b->minor) {
        return a->minor < b->minor ? -1 : 1;
    }

    if (a->patch != b->patch) {
        return a->patch < b->patch ? -1 : 1;
    }

    /* a release sorts after its pre-releases */
    if (a->pre_len == 0 || b->pre_len == 0) {
        return (a->pre_len == 0) - (b->pre_len == 0);
    }

    ai = 0;
    bi = 0;

    while (ai < a->pre_len && bi < b->pre_len) {
        ap = a->pre + ai;
        bp = b->pre + bi;

        for (al = 0; ai + al < a->pre_len && ap[al] != '.'; al++) {
            /* void */
        }

        for (bl = 0; bi + bl < b->pre_len && bp[bl] != '.'; bl++) {
            /* void */
        }

        an = 1;
        for (k = 0; k < al; k++) {
            if (ap[k] < '0' || ap[k] > '9') {
                an = 0;
            }
        }

        bn = 1;
        for (k = 0; k < bl; k++) {
            if (bp[k] < '0' || bp[k] > '9') {
                bn = 0;
            }
        }

        if (an && bn) {
            /* numeric identifiers: compare without leading zeros */
            while (al > 1 && *ap == '0') {
                ap++;
                al--;
            }

            while (bl > 1 && *bp == '0') {
                bp++;
                bl--;
            }

            if (al != bl) {
                return al < bl ? -1 : 1;
            }

            c = memcmp(ap, bp, al);

        } else if (an != bn) {
            return an ? -1 : 1;

        } else {
            c = memcmp(ap, bp, al < bl ? al : bl);

            if (c == 0 && al != bl) {
                return al < bl ? -1 : 1;
            }
        }

        if (c != 0) {
            return c < 0 ? -1 : 1;
        }

        ai += (ap - (a->pre + ai)) + al + 1;
        bi += (bp - (b->pre + bi)) + bl + 1;
    }

    if (ai >= a->pre_len && bi >= b->pre_len) {
        return 0;
    }

    return ai >= a->pre_len ? -1 : 1;
}


const char *
decide_props_str(const json_t *v, char *buf, size_t size, size_t *len)
{
    int     n;
    size_t  r;

    switch (json_typeof(v)) {

    case JSON_STRING:
        *len = json_string_length(v);
        return json_string_value(v);

    case JSON_INTEGER:
        n = snprintf(buf, size, "%" JSON_INTEGER_FORMAT,
                     json_integer_value(v));
        if (n < 0 || (size_t) n >= size) {
            return NULL;
        }

        *len = (size_t) n;
        return buf;

    case JSON_REAL:
        return decide_props_real(json_real_value(v), buf, size, len);

    case JSON_TRUE:
        *len = 4;
        return "true";

    case JSON_FALSE:
        *len = 5;
        return "false";

    case JSON_NULL:
        *len = 4;
        return "null";

    default:
        /* serde_json without preserve_order sorts object keys */
        r = json_dumpb(v, buf, size, JSON_COMPACT | JSON_SORT_KEYS
                                     | JSON_ENCODE_ANY);
        if (r == 0 || r > size) {
            return NULL;
        }

        *len = r;
        return buf;
    }
}


/*
 * A double the way serde_json (ryu) prints it: the shortest digits that
 * round-trip, "1.0" for integral values, exponent form outside
 * 1e-5 .. 1e16 ("1e21", "1.5e-7").
 */
static const char *
decide_props_real(double d, char *buf, size_t size, size_t *len)
{
    int     prec, exp, kk, nd, i;
    char    tmp[40], digits[24], *p, *e, *o;
    double  back;

    if (size < 40 || !isfinite(d)) {
        return NULL;
    }

    for (prec = 0; prec < 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec, d);
        back = strtod(tmp, NULL);

        if (back == d) {
            break;
        }
    }

    p = tmp;
    o = buf;

    if (*p == '-') {
        *o++ = '-';
        p++;
    }

    nd = 0;

    for ( /* void */ ; *p && *p != 'e'; p++) {
        if (*p != '.') {
            digits[nd++] = *p;
        }
    }

    e = p;
    exp = (*e == 'e') ? atoi(e + 1) : 0;

    while (nd > 1 && digits[nd - 1] == '0') {
        nd--;
    }

    if (nd == 1 && digits[0] == '0') {
        memcpy(o, "0.0", 3);
        o += 3;
        *len = (size_t) (o - buf);
        return buf;
    }

    kk = exp + 1;

    if (nd <= kk && kk <= 16) {
        for (i = 0; i < nd; i++) {
            *o++ = digits[i];
        }

        for (i = nd; i < kk; i++) {
            *o++ = '0';
        }

        *o++ = '.';
        *o++ = '0';

    } else if (kk > 0 && kk <= 16) {
        for (i = 0; i < nd; i++) {
            if (i == kk) {
                *o++ = '.';
            }

            *o++ = digits[i];
        }

    } else if (kk > -5 && kk <= 0) {
        *o++ = '0';
        *o++ = '.';

        for (i = kk; i < 0; i++) {
            *o++ = '0';
        }

        for (i = 0; i < nd; i++) {
            *o++ = digits[i];
        }

    } else {
        *o++ = digits[0];

        if (nd > 1) {
            *o++ = '.';

            for (i = 1; i < nd; i++) {
                *o++ = digits[i];
            }
        }

        o += snprintf(o, (size_t) (buf + size - o), "e%d", kk - 1);
    }

    *len = (size_t) (o - buf);

    return buf;
}


int
decide_props_num(const json_t *v, double *out)
{
    char         buf[DECIDE_PROPS_STR_MAX];
    size_t       len;
    const char  *s;

    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }

    s = decide_props_str(v, buf, sizeof(buf), &len);
    if (s == NULL) {
        return -1;
    }

    return decide_props_parse_num(s, len, out);
}


/* Rust's f64::from_str: no spaces, no hex, "inf"/"nan" allowed */
static int
decide_props_parse_num(const char *s, size_t len, double *out)
{
    char    buf[DECIDE_NUM_MAX + 1];
    char   *end;
    size_t  i;

    if (len == 0 || len > DECIDE_NUM_MAX) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (s[i] == 'x' || s[i] == 'X' || s[i] == 'p' || s[i] == 'P'
            || s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'
            || s[i] == '\f' || s[i] == '\v' || s[i] == '\0' || s[i] == '(')
        {
            return -1;
        }
    }

    memcpy(buf, s, len);
    buf[len] = '\0';

    *out = strtod(buf, &end);

    return (end == buf + len) ? 0 : -1;
}


int
decide_props_parse_date(const char *s, size_t len, double now, double *out)
{
    int64_t  us;

    if (decide_date_relative(s, len, now, out) == 0) {
        return 0;
    }

    /* naive times are UTC: the team timezone is not modelled yet */
    if (eh_time_parse(s, len, 0, &us) != 0) {
        return -1;
    }

    *out = (double) us / 1e6;

    return 0;
}


/* "-30d", "2w", "12h", "3m", "1y": always in the past, n < 10000 */
static int
decide_date_relative(const char *s, size_t len, double now, double *out)
{
    double       secs;
    size_t       i;
    int64_t      days, y;
    unsigned     n, m, d, k, dim;

    if (len && *s == '-') {
        s++;
        len--;
    }

    if (len < 2 || len > 6) {
        return -1;
    }

    n = 0;

    for (i = 0; i < len - 1; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        n = n * 10 + (unsigned) (s[i] - '0');
    }

    if (n >= DECIDE_DATE_REL_MAX) {
        return -1;
    }

    switch (s[len - 1]) {
    case 'h':
        *out = now - n * 3600.0;
        return 0;
    case 'd':
        *out = now - n * 86400.0;
        return 0;
    case 'w':
        *out = now - n * 604800.0;
        return 0;
    case 'm':
    case 'y':
        break;
    default:
        return -1;
    }

    days = (int64_t) floor(now / 86400.0);
    secs = now - (double) days * 86400.0;

    eh_time_civil_from_days(days, &y, &m, &d);

    /* calendar steps, one unit at a time, clamping the day each time */
    for (k = 0; k < n; k++) {
        if (s[len - 1] == 'y') {
            y--;

        } else if (m == 1) {
            m = 12;
            y--;

        } else {
            m--;
        }

        dim = eh_time_days_in_month(y, m);
        if (d > dim) {
            d = dim;
        }
    }

    *out = (double) eh_time_days_from_civil(y, m, d) * 86400.0 + secs;

    return 0;
}






/* decodes one UTF-8 scalar; a stray byte decodes as itself */
static uint32_t
decide_utf8_next(const unsigned char **p, const unsigned char *end)
{
    size_t          n, i;
    uint32_t        c;
    const unsigned  char *s;

    s = *p;
    c = *s;

    if (c < 0x80) {
        *p = s + 1;
        return c;
    }

    if ((c & 0xe0) == 0xc0) {
        n = 1;
        c &= 0x1f;

    } else if ((c & 0xf0) == 0xe0) {
        n = 2;
        c &= 0x0f;

    } else if ((c & 0xf8) == 0xf0) {
        n = 3;
        c &= 0x07;

    } else {
        *p = s + 1;
        return 0x110000 + *s;
    }

    if ((size_t) (end - s) <= n) {
        *p = s + 1;
        return 0x110000 + *s;
    }

    for (i = 1; i <= n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *p = s + 1;
            return 0x110000 + *s;
        }

        c = (c << 6) | (s[i] & 0x3f);
    }

    *p = s + n + 1;

    return c;
}


/*
 * Simple lowercase mapping for Latin, Greek and Cyrillic; the server
 * uses full Unicode to_lowercase(), other scripts rarely have case.
 */
static uint32_t
decide_utf8_lower(uint32_t c)
{
    if (c < 0x80) {
        return (uint32_t) decide_ascii_lower((int) c);
    }

    if ((c >= 0xc0 && c <= 0xde && c != 0xd7)
        || (c >= 0x391 && c <= 0x3ab && c != 0x3a2)
        || (c >= 0x410 && c <= 0x42f))
    {
        return c + 32;
    }

    if (c >= 0x400 && c <= 0x40f) {
        return c + 80;
    }

    if ((c >= 0x100 && c <= 0x137 && c != 0x130)
        || (c >= 0x14a && c <= 0x177)
        || (c >= 0x460 && c <= 0x481) || (c >= 0x48a && c <= 0x4bf)
        || (c >= 0x1e00 && c <= 0x1eff))
    {
        return c | 1;
    }

    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) {
        return (c & 1) ? c + 1 : c;
    }

    if (c == 0x178) {
        return 0xff;
    }

    if (c == 0x130) {
        return 'i';
    }

    return c;
}


static int
decide_ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}


static int
decide_ascii_only(const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] >= 0x80) {
            return 0;
        }
    }

    return 1;
}


/* a prepared exact value (an ASCII string or array of them) against s */
static int
decide_props_exact_ascii(const json_t *value, const char *s, size_t len)
{
    size_t         i, n;
    const json_t  *item;

    n = json_is_array(value) ? json_array_size(value) : 1;

    for (i = 0; i < n; i++) {
        item = json_is_array(value) ? json_array_get(value, i) : value;

        if (json_string_length(item) == len
            && decide_ascii_find(s, len, json_string_value(item), len, 1))
        {
            return 1;
        }
    }

    return 0;
}


/* where: 0 anywhere, 1 prefix, 2 suffix; ASCII case-insensitive */
static int
decide_ascii_find(const char *h, size_t hlen, const char *n, size_t nlen,
    int where)
{
    size_t  i, j, from, to;

    if (nlen > hlen) {
        return 0;
    }

    from = (where == 2) ? hlen - nlen : 0;
    to = (where == 1) ? 0 : hlen - nlen;

    for (i = from; i <= to; i++) {
        for (j = 0; j < nlen; j++) {
            if (decide_ascii_lower((unsigned char) h[i + j])
                != decide_ascii_lower((unsigned char) n[j]))
            {
                break;
            }
        }

        if (j == nlen) {
            return 1;
        }
    }

    return 0;
}


decide_regex_cache_t *
decide_regex_cache_create(void)
{
    decide_regex_cache_t  *cache;

    cache = calloc(1, sizeof(decide_regex_cache_t));
    if (cache == NULL) {
        return NULL;
    }

    cache->md = pcre2_match_data_create(1, NULL);
    cache->mctx = pcre2_match_context_create(NULL);

    if (cache->md == NULL || cache->mctx == NULL) {
        decide_regex_cache_free(cache);
        return NULL;
    }

    pcre2_set_match_limit(cache->mctx, DECIDE_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(cache->mctx, DECIDE_REGEX_DEPTH_LIMIT);

    return cache;
}


void
decide_regex_cache_free(decide_regex_cache_t *cache)
{
    size_t  i;

    if (cache == NULL) {
        return;
    }

    for (i = 0; i < cache->n; i++) {
        free(cache->items[i].pattern);
        pcre2_code_free(cache->items[i].code);
    }

    free(cache->items);
    pcre2_match_data_free(cache->md);
    pcre2_match_context_free(cache->mctx);
    free(cache);
}


static pcre2_code *
decide_regex_cache_find(decide_regex_cache_t *cache, const char *pattern,
    size_t len, int *found)
{
    size_t  i;

    for (i = 0; i < cache->n; i++) {
        if (cache->items[i].len == len
            && memcmp(cache->items[i].pattern, pattern, len) == 0)
        {
            *found = 1;
            return cache->items[i].code;
        }
    }

    *found = 0;

    return NULL;
}


int
decide_regex_cache_add(decide_regex_cache_t *cache, const char *pattern,
    size_t len)
{
    size_t           i, cap;
    decide_regex_t  *items, *r;

    for (i = 0; i < cache->n; i++) {
        if (cache->items[i].len == len
            && memcmp(cache->items[i].pattern, pattern, len) == 0)
        {
            return 0;
        }
    }

    if (cache->n == cache->cap) {
        cap = cache->cap ? cache->cap * 2 : 8;
        items = realloc(cache->items, cap * sizeof(decide_regex_t));
        if (items == NULL) {
            return -1;
        }

        cache->items = items;
        cache->cap = cap;
    }

    r = &cache->items[cache->n];

    r->pattern = malloc(len + 1);
    if (r->pattern == NULL) {
        return -1;
    }

    memcpy(r->pattern, pattern, len);
    r->pattern[len] = '\0';
    r->len = len;

    /* an invalid pattern is remembered too, so requests skip it fast */
    if (decide_regex_compile(pattern, len, &r->code) == 0) {
        /*
         * JIT where the platform has it (the interpreter otherwise);
         * pcre2_match() still enforces the match limit on JIT code.
         */
        (void) pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE);
    }

    cache->n++;

    return 0;
}
