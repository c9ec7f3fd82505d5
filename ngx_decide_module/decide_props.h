/*
 * Copyright (C) edgehog
 */

/*
 * Property filter operators with PostHog server semantics
 * (spec/decide.md section 4).  Pure C over jansson values, no nginx
 * headers.  Nothing here allocates per call except regex match data for
 * patterns that are not in a cache and the rare str() of an array or
 * object value.
 */

#ifndef _DECIDE_PROPS_H_INCLUDED_
#define _DECIDE_PROPS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>


/* PCRE2 budget per match, the analogue of fancy-regex's step cap */
#define DECIDE_REGEX_MATCH_LIMIT  100000
#define DECIDE_REGEX_DEPTH_LIMIT  1000

/* str() of arrays and objects longer than this never matches */
#define DECIDE_PROPS_STR_MAX      1024


typedef enum {
    DECIDE_OP_UNKNOWN = 0,
    DECIDE_OP_EXACT,
    DECIDE_OP_IS_NOT,
    DECIDE_OP_IS_SET,
    DECIDE_OP_IS_NOT_SET,
    DECIDE_OP_ICONTAINS,
    DECIDE_OP_NOT_ICONTAINS,
    DECIDE_OP_ICONTAINS_MULTI,
    DECIDE_OP_NOT_ICONTAINS_MULTI,
    DECIDE_OP_STARTS_WITH,
    DECIDE_OP_NOT_STARTS_WITH,
    DECIDE_OP_ENDS_WITH,
    DECIDE_OP_NOT_ENDS_WITH,
    DECIDE_OP_REGEX,
    DECIDE_OP_NOT_REGEX,
    DECIDE_OP_GT,
    DECIDE_OP_GTE,
    DECIDE_OP_LT,
    DECIDE_OP_LTE,
    DECIDE_OP_DATE_BEFORE,
    DECIDE_OP_DATE_AFTER,
    DECIDE_OP_DATE_EXACT,
    DECIDE_OP_SEMVER_EQ,
    DECIDE_OP_SEMVER_NEQ,
    DECIDE_OP_SEMVER_GT,
    DECIDE_OP_SEMVER_GTE,
    DECIDE_OP_SEMVER_LT,
    DECIDE_OP_SEMVER_LTE,
    DECIDE_OP_SEMVER_TILDE,
    DECIDE_OP_SEMVER_CARET,
    DECIDE_OP_SEMVER_WILDCARD,
    DECIDE_OP_IN,
    DECIDE_OP_NOT_IN,
    DECIDE_OP_FLAG_EVALUATES_TO
} decide_op_e;


/*
 * Compiled regex patterns keyed by pattern text.  A team snapshot fills
 * one when it is built, so requests never compile.  It also owns one
 * match-data block, so a cache must not be shared between threads
 * (nginx workers are single-threaded).
 */
typedef struct decide_regex_cache_s  decide_regex_cache_t;


typedef struct {
    double                 now;     /* unix seconds, for relative dates */
    decide_regex_cache_t  *regex;   /* may be NULL: compile per match */
} decide_props_ctx_t;


typedef struct {
    uint64_t               major;
    uint64_t               minor;
    uint64_t               patch;
    const char            *pre;     /* pre-release, not NUL-terminated */
    size_t                 pre_len;
} decide_semver_t;


/*
 * A filter prepared once per snapshot: the operator resolved, the value
 * parsed where its operator allows (numbers, versions) and its regex
 * looked up in the snapshot's cache, so a match does no JSON lookups on
 * the filter.  Points into the filter JSON and the cache, which must
 * outlive it.
 */
typedef struct {
    const char            *key;     /* NULL: never matches */
    size_t                 key_len; /* strlen(key): what lookups hash */
    const json_t          *value;
    decide_regex_cache_t  *cache;
    void                  *regex;   /* pcre2_code from the cache */
    decide_op_e            op;
    int                    prepared; /* DECIDE_PF_* */
    double                 num;
    decide_semver_t        lo;
    decide_semver_t        hi;
} decide_prop_filter_t;


/* "exact" for NULL; DECIDE_OP_UNKNOWN for names we do not know */
decide_op_e decide_props_op(const char *name);

/*
 * Evaluates one filter {"key","value","operator"} against a property
 * object (NULL = no properties): 1 match, 0 no match.  An absent key
 * gets the server's non-partial outcome (4.3).  Errors (bad regex,
 * non-numeric gt) are "no match", as on the server.
 */
int decide_props_match(const json_t *filter, const json_t *props,
    const decide_props_ctx_t *ctx);

/*
 * Prepares {"key","value","operator"}; regexes are added to cache
 * (which may be NULL: matched uncached).  Never fails: whatever cannot
 * be prepared is matched the slow way.
 */
void decide_props_prepare(decide_prop_filter_t *pf, const json_t *filter,
    decide_regex_cache_t *cache);

/*
 * decide_props_match() of a prepared filter against the property value
 * itself (NULL = absent), which the caller has looked up by pf->key.
 */
int decide_props_match_prepared(const decide_prop_filter_t *pf,
    const json_t *prop, const decide_props_ctx_t *ctx);

/* the same for an operator and values; prop NULL means absent */
int decide_props_match_op(decide_op_e op, const json_t *value,
    const json_t *prop, const decide_props_ctx_t *ctx);

/*
 * str(v) of 4.1: a string raw, anything else its compact JSON text
 * rendered like serde_json.  Returns a pointer to the string (possibly
 * into v or into buf) and its length, or NULL if it does not fit.
 */
const char *decide_props_str(const json_t *v, char *buf, size_t size,
    size_t *len);

/* num(v) of 4.1: 0 and *out set, or -1 when not numeric */
int decide_props_num(const json_t *v, double *out);

/* a date filter value as unix seconds: 0, or -1 if unparseable */
int decide_props_parse_date(const char *s, size_t len, double now,
    double *out);

/* 4.5 normalisation and SemVer 2.0 parse: 0, or -1 if invalid */
int decide_semver_parse(const char *s, size_t len, decide_semver_t *v);
int decide_semver_cmp(const decide_semver_t *a, const decide_semver_t *b);

decide_regex_cache_t *decide_regex_cache_create(void);
void decide_regex_cache_free(decide_regex_cache_t *cache);
/* compiles and stores a pattern (invalid ones too, as "never"): 0 or -1 */
int decide_regex_cache_add(decide_regex_cache_t *cache, const char *pattern,
    size_t len);


#endif /* _DECIDE_PROPS_H_INCLUDED_ */
