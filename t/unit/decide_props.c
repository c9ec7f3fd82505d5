/*
 * Copyright (C) edgehog
 */

/*
 * Property operators with server semantics: the cases of spec/decide.md
 * section 10 C plus conversions, dates, semver and regex limits.
 */


#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "tap.h"
#include "decide_props.h"
#include "decide_eval.h"


/* 2024-06-15T12:00:00Z, the "now" of the relative-date cases */
#define DECIDE_T_NOW  1718452800.0


static int decide_t_match(const char *filter, const char *props);
static void decide_t_section_c(void);
static void decide_t_conversions(void);
static void decide_t_dates(void);
static void decide_t_semver(void);
static void decide_t_regex(void);
static void decide_t_condition_order(void);
static void decide_t_exact_ascii(void);


static decide_regex_cache_t  *decide_t_cache;


int
main(void)
{
    decide_t_section_c();
    decide_t_conversions();
    decide_t_dates();
    decide_t_semver();

    decide_t_regex();
    decide_t_cache = decide_regex_cache_create();
    decide_regex_cache_add(decide_t_cache, "\\.com$", 6);
    decide_regex_cache_add(decide_t_cache, "?*", 2);
    decide_t_regex();
    decide_regex_cache_free(decide_t_cache);

    decide_t_condition_order();
    decide_t_exact_ascii();

    return done_testing();
}


/* 1 match, 0 no match; aborts on bad test JSON */
static int
decide_t_match(const char *filter, const char *props)
{
    int                   rc;
    json_t               *f, *p;
    json_error_t          err;
    decide_props_ctx_t    ctx;
    decide_prop_filter_t  pf;

    f = json_loads(filter, JSON_ALLOW_NUL, &err);
    p = json_loads(props, JSON_ALLOW_NUL, &err);

    if (f == NULL || p == NULL) {
        diag("bad test JSON: %s", err.text);
        exit(1);
    }

    ctx.now = DECIDE_T_NOW;
    ctx.regex = decide_t_cache;

    rc = decide_props_match(f, p, &ctx);

    /* the prepared fast paths must agree with the generic matcher */
    decide_props_prepare(&pf, f, decide_t_cache);

    if (decide_props_match_prepared(&pf, (pf.key && json_is_object(p))
                                         ? json_object_get(p, pf.key) : NULL,
                                    &ctx)
        != rc)
    {
        ok(0, "prepared disagrees: %s on %s", filter, props);
    }

    json_decref(f);
    json_decref(p);

    return rc;
}


static void
decide_t_section_c(void)
{
    const char  *f;

    /* 23 */
    f = "{\"key\":\"country\",\"type\":\"person\",\"operator\":\"exact\","
        "\"value\":[\"US\",\"CA\",\"Uk\"]}";
    ok(decide_t_match(f, "{\"country\":\"uk\"}"), "C23 exact list ci");
    ok(!decide_t_match(f, "{\"country\":\"de\"}"), "C23 exact list miss");

    /* 24 */
    f = "{\"key\":\"is_beta\",\"operator\":\"exact\",\"value\":[\"true\"]}";
    ok(decide_t_match(f, "{\"is_beta\":true}"), "C24 bool vs [\"true\"]");
    ok(!decide_t_match(f, "{\"is_beta\":\"False\"}"), "C24 \"False\"");

    /* 25 */
    f = "{\"key\":\"plan\",\"operator\":\"is_not\",\"value\":\"free\"}";
    ok(decide_t_match(f, "{}"), "C25 is_not absent");
    ok(!decide_t_match(f, "{\"plan\":\"FREE\"}"), "C25 is_not ci");

    /* 26 */
    f = "{\"key\":\"email\",\"operator\":\"is_set\"}";
    ok(decide_t_match(f, "{\"email\":null}"), "C26 is_set null");
    ok(!decide_t_match(f, "{}"), "C26 is_set absent");
    ok(decide_t_match("{\"key\":\"email\",\"operator\":\"is_not_set\"}",
                      "{}"), "C26 is_not_set absent");

    /* 27 */
    f = "{\"key\":\"code\",\"operator\":\"icontains\",\"value\":\"3\"}";
    ok(decide_t_match(f, "{\"code\":323}"), "C27 icontains number");
    ok(!decide_t_match(f, "{\"code\":\"three\"}"), "C27 icontains miss");
    ok(decide_t_match("{\"key\":\"code\",\"operator\":\"not_icontains\","
                      "\"value\":\"3\"}", "{}"), "C27 not_icontains absent");

    /* 28 */
    f = "{\"key\":\"email\",\"operator\":\"regex\",\"value\":\"\\\\.com$\"}";
    ok(decide_t_match(f, "{\"email\":\"value.com\"}"), "C28 regex");
    ok(!decide_t_match(f, "{\"email\":\".com343tfvalue5\"}"),
       "C28 regex miss");
    ok(!decide_t_match("{\"key\":\"email\",\"operator\":\"regex\","
                       "\"value\":\"?*\"}", "{\"email\":\"x\"}"),
       "C28 invalid regex");
    ok(!decide_t_match("{\"key\":\"email\",\"operator\":\"not_regex\","
                       "\"value\":\"?*\"}", "{\"email\":\"x\"}"),
       "C28 invalid not_regex");

    /* 29 */
    f = "{\"key\":\"age\",\"operator\":\"gt\",\"value\":1}";
    ok(decide_t_match(f, "{\"age\":\"23\"}"), "C29 gt numeric string");
    ok(!decide_t_match(f, "{\"age\":\"abc\"}"), "C29 gt non-numeric");
    ok(decide_t_match("{\"key\":\"age\",\"operator\":\"gt\",\"value\":25}",
                      "{\"age\":\"100\"}"), "C29 gt numeric not string");

    /* 30 */
    f = "{\"key\":\"signup\",\"operator\":\"is_date_before\","
        "\"value\":\"2024-01-01\"}";
    ok(decide_t_match(f, "{\"signup\":\"2023-06-01T12:00:00Z\"}"),
       "C30 date before");
    ok(!decide_t_match(f, "{\"signup\":1718000000}"),
       "C30 timestamp not before");
    ok(decide_t_match("{\"key\":\"signup\",\"operator\":\"is_date_after\","
                      "\"value\":\"2024-01-01\"}", "{\"signup\":1718000000}"),
       "C30 timestamp after");

    /* 31 */
    ok(decide_t_match("{\"key\":\"app_version\",\"operator\":\"semver_gte\","
                      "\"value\":\"1.2.0\"}", "{\"app_version\":\"v1.10.0\"}"),
       "C31 semver_gte");
    f = "{\"key\":\"v\",\"operator\":\"semver_tilde\",\"value\":\"1.2.3\"}";
    ok(decide_t_match(f, "{\"v\":\"1.2.9\"}"), "C31 tilde in");
    ok(!decide_t_match(f, "{\"v\":\"1.3.0\"}"), "C31 tilde out");
}


static void
decide_t_conversions(void)
{
    char         buf[DECIDE_PROPS_STR_MAX];
    size_t       len, i;
    json_t      *v;
    const char  *s;

    static const struct {
        const char  *json;
        const char  *str;
    } cases[] = {
        { "123", "123" },
        { "1.5", "1.5" },
        { "1.0", "1.0" },
        { "-0.25", "-0.25" },
        { "1e21", "1e21" },
        { "1.5e-7", "1.5e-7" },
        { "0.0001", "0.0001" },
        { "123456789012345680000.0", "1.2345678901234568e20" },
        { "true", "true" },
        { "null", "null" },
        { "[1,\"a\"]", "[1,\"a\"]" },
        { "{\"b\":1,\"a\":2}", "{\"a\":2,\"b\":1}" }
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        s = decide_props_str(v, buf, sizeof(buf), &len);
        ok(s && len == strlen(cases[i].str)
           && memcmp(s, cases[i].str, len) == 0, "str(%s) = %s",
           cases[i].json, cases[i].str);
        json_decref(v);
    }

    ok(!decide_t_match("{\"key\":\"n\",\"value\":1}", "{\"n\":1.0}"),
       "filter 1 does not exact-match 1.0");
    ok(decide_t_match("{\"key\":\"n\",\"value\":\"1.0\"}", "{\"n\":1.0}"),
       "\"1.0\" exact-matches 1.0");
    ok(decide_t_match("{\"key\":\"n\",\"value\":\"ÉCOLE\"}",
                      "{\"n\":\"école\"}"), "exact: Unicode lowercase");
    ok(!decide_t_match("{\"key\":\"n\",\"operator\":\"icontains\","
                       "\"value\":\"É\"}", "{\"n\":\"é\"}"),
       "icontains: ASCII folding only");
    ok(decide_t_match("{\"key\":\"n\",\"operator\":\"exact\","
                      "\"value\":false}", "{\"n\":\"no\"}"),
       "bool filter: non-true string is false");
    ok(!decide_t_match("{\"key\":\"n\",\"value\":null}", "{\"n\":null}"),
       "null filter value never matches");
    ok(!decide_t_match("{\"key\":\"n\",\"operator\":\"is_not\","
                       "\"value\":null}", "{}"), "null filter with is_not");
    ok(!decide_t_match("{\"key\":\"n\",\"operator\":\"bogus\","
                       "\"value\":1}", "{\"n\":1}"), "unknown operator");
    ok(decide_t_match("{\"key\":\"n\",\"operator\":\"lte\",\"value\":\"5\"}",
                      "{\"n\":5}"), "lte numeric string filter");
    ok(!decide_t_match("{\"key\":\"n\",\"operator\":\"lt\",\"value\":5}",
                       "{\"n\":\" 4\"}"), "no whitespace in numbers");
    ok(!decide_t_match("{\"key\":\"n\",\"operator\":\"lt\",\"value\":5}",
                       "{\"n\":\"0x3\"}"), "no hex numbers");
    ok(decide_t_match("{\"key\":\"n\",\"operator\":\"icontains_multi\","
                      "\"value\":[\"zz\",\"OO\"]}", "{\"n\":\"foo\"}"),
       "icontains_multi");
    ok(decide_t_match("{\"key\":\"n\",\"operator\":\"not_icontains_multi\","
                      "\"value\":[\"zz\",\"yy\"]}", "{\"n\":\"foo\"}"),
       "not_icontains_multi");
    ok(decide_t_match("{\"key\":\"n\",\"operator\":\"starts_with\","
                      "\"value\":\"FO\"}", "{\"n\":\"foo\"}"), "starts_with");
    ok(decide_t_match("{\"key\":\"n\",\"operator\":\"not_ends_with\","
                      "\"value\":\"FO\"}", "{\"n\":\"foo\"}"),
       "not_ends_with");
    ok(decide_t_match("{\"key\":\"n\",\"operator\":\"not_starts_with\","
                      "\"value\":\"x\"}", "{}"), "not_starts_with absent");
}


static void
decide_t_dates(void)
{
    double  t;

    ok(decide_props_parse_date("2024-01-01", 10, 0, &t) == 0
       && t == 1704067200.0, "bare date is UTC midnight");
    ok(decide_props_parse_date("2024-01-01T01:00:00+01:00", 25, 0, &t) == 0
       && t == 1704067200.0, "offset");
    ok(decide_props_parse_date("2024-01-01 00:00:01.5", 21, 0, &t) == 0
       && t == 1704067201.5, "space separator and fraction");
    ok(decide_props_parse_date("2024-02-30", 10, 0, &t) != 0, "bad day");
    ok(decide_props_parse_date("-30d", 4, DECIDE_T_NOW, &t) == 0
       && t == DECIDE_T_NOW - 30 * 86400.0, "-30d");
    ok(decide_props_parse_date("2w", 2, DECIDE_T_NOW, &t) == 0
       && t == DECIDE_T_NOW - 14 * 86400.0, "2w without sign");
    ok(decide_props_parse_date("-10000d", 7, DECIDE_T_NOW, &t) != 0,
       "n >= 10000 rejected");

    /* 2024-03-31 minus one month clamps to 2024-02-29 */
    ok(decide_props_parse_date("-1m", 3, 1711886400.0, &t) == 0
       && t == 1709208000.0, "-1m clamps the day");
    ok(decide_props_parse_date("-1y", 3, 1709208000.0, &t) == 0
       && t == 1677585600.0, "-1y from Feb 29");

    ok(decide_t_match("{\"key\":\"d\",\"operator\":\"is_date_after\","
                      "\"value\":\"-30d\"}", "{\"d\":\"2024-06-01\"}"),
       "relative after");
    ok(!decide_t_match("{\"key\":\"d\",\"operator\":\"is_date_after\","
                       "\"value\":\"-30d\"}", "{\"d\":\"2024-05-01\"}"),
       "relative not after");
    ok(decide_t_match("{\"key\":\"d\",\"operator\":\"is_date_exact\","
                      "\"value\":\"2024-01-01T00:00:00Z\"}",
                      "{\"d\":\"1704067200\"}"), "exact with numeric string");
    ok(!decide_t_match("{\"key\":\"d\",\"operator\":\"is_date_before\","
                       "\"value\":\"garbage\"}", "{\"d\":\"2020-01-01\"}"),
       "unparseable filter date");
    ok(!decide_t_match("{\"key\":\"d\",\"operator\":\"is_date_before\","
                       "\"value\":20240101}", "{\"d\":\"2020-01-01\"}"),
       "non-string filter date");
}


static void
decide_t_semver(void)
{
    decide_semver_t  a, b;

    ok(decide_semver_parse("3.10", 4, &a) == 0 && a.major == 3
       && a.minor == 10 && a.patch == 0, "pad 3.10");
    ok(decide_semver_parse(" v01.002.0003 ", 14, &a) == 0 && a.major == 1
       && a.minor == 2 && a.patch == 3, "v prefix, trim, leading zeros");
    ok(decide_semver_parse("1.2.3.4", 7, &a) != 0, "four parts invalid");
    ok(decide_semver_parse("abc", 3, &a) != 0, "garbage invalid");

    decide_semver_parse("1.0.0-alpha", 11, &a);
    decide_semver_parse("1.0.0", 5, &b);
    ok(decide_semver_cmp(&a, &b) < 0, "pre-release < release");
    decide_semver_parse("1.0.0-alpha.1", 13, &b);
    ok(decide_semver_cmp(&a, &b) < 0, "alpha < alpha.1");
    decide_semver_parse("1.0.0-alpha.beta", 16, &a);
    ok(decide_semver_cmp(&b, &a) < 0, "alpha.1 < alpha.beta");
    decide_semver_parse("1.0.0-rc.11", 11, &a);
    decide_semver_parse("1.0.0-rc.2", 10, &b);
    ok(decide_semver_cmp(&b, &a) < 0, "rc.2 < rc.11");
    decide_semver_parse("1.0.0+build", 11, &a);
    decide_semver_parse("1.0.0", 5, &b);
    ok(decide_semver_cmp(&a, &b) == 0, "build metadata ignored");

    ok(decide_t_match("{\"key\":\"v\",\"operator\":\"semver_caret\","
                      "\"value\":\"^0.2.3\"}", "{\"v\":\"0.2.9\"}"),
       "caret 0.2.x in");
    ok(!decide_t_match("{\"key\":\"v\",\"operator\":\"semver_caret\","
                       "\"value\":\"0.2.3\"}", "{\"v\":\"0.3.0\"}"),
       "caret 0.2.x out");
    ok(!decide_t_match("{\"key\":\"v\",\"operator\":\"semver_caret\","
                       "\"value\":\"0.0.3\"}", "{\"v\":\"0.0.4\"}"),
       "caret 0.0.3 out");
    ok(decide_t_match("{\"key\":\"v\",\"operator\":\"semver_caret\","
                      "\"value\":\"1.2.3\"}", "{\"v\":\"1.9.0\"}"),
       "caret 1.x in");
    ok(decide_t_match("{\"key\":\"v\",\"operator\":\"semver_wildcard\","
                      "\"value\":\"1.*\"}", "{\"v\":\"1.99.1\"}"),
       "wildcard 1.*");
    ok(!decide_t_match("{\"key\":\"v\",\"operator\":\"semver_wildcard\","
                       "\"value\":\"1.2.*\"}", "{\"v\":\"1.3.0\"}"),
       "wildcard 1.2.* out");
    ok(decide_t_match("{\"key\":\"v\",\"operator\":\"semver_lt\","
                      "\"value\":\"2.0.0\"}", "{\"v\":\"2.0.0-beta\"}"),
       "semver_lt pre-release");
    ok(decide_t_match("{\"key\":\"v\",\"operator\":\"semver_neq\","
                      "\"value\":\"2.0\"}", "{\"v\":\"2.0.1\"}"),
       "semver_neq");
    ok(!decide_t_match("{\"key\":\"v\",\"operator\":\"semver_eq\","
                       "\"value\":\"2.0\"}", "{\"v\":\"banana\"}"),
       "unparseable person version");
    ok(!decide_t_match("{\"key\":\"v\",\"operator\":\"semver_eq\","
                       "\"value\":\"x\"}", "{\"v\":\"1.0.0\"}"),
       "invalid filter version");
}


static void
decide_t_regex(void)
{
    const char  *tag;

    tag = decide_t_cache ? "cached" : "uncached";

    ok(decide_t_match("{\"key\":\"e\",\"operator\":\"regex\","
                      "\"value\":\"\\\\.com$\"}", "{\"e\":\"a.com\"}"),
       "%s regex", tag);
    ok(!decide_t_match("{\"key\":\"e\",\"operator\":\"not_regex\","
                       "\"value\":\"\\\\.com$\"}", "{\"e\":\"a.com\"}"),
       "%s not_regex", tag);
    ok(!decide_t_match("{\"key\":\"e\",\"operator\":\"not_regex\","
                       "\"value\":\"?*\"}", "{\"e\":\"a\"}"),
       "%s invalid not_regex", tag);
    ok(decide_t_match("{\"key\":\"e\",\"operator\":\"regex\","
                      "\"value\":\"(?<=a)b\"}", "{\"e\":\"ab\"}"),
       "%s look-behind", tag);
    ok(decide_t_match("{\"key\":\"e\",\"operator\":\"regex\","
                      "\"value\":\"^\\\\d+$\"}", "{\"e\":123}"),
       "%s regex over str(number)", tag);

    /* catastrophic backtracking stops at the match limit: no match */
    ok(!decide_t_match("{\"key\":\"e\",\"operator\":\"regex\","
                       "\"value\":\"^(a+)+$\"}",
                       "{\"e\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\"}"),
       "%s backtracking capped", tag);
    ok(!decide_t_match("{\"key\":\"e\",\"operator\":\"not_regex\","
                       "\"value\":\"^(a+)+$\"}",
                       "{\"e\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\"}"),
       "%s capped not_regex is false too", tag);
}


/* spec 10 C 32: stored order, the override group is not promoted */
static void
decide_t_condition_order(void)
{
    char              why[128];
    json_t           *flags, *pp;
    decide_team_t    *team;
    decide_result_t   out[1];
    decide_request_t  req;

    flags = json_loads(
        "[{\"id\":1,\"key\":\"order-test\",\"active\":true,\"filters\":{"
        "\"groups\":[{\"properties\":[],\"rollout_percentage\":100},"
        "{\"properties\":[{\"key\":\"email\",\"type\":\"person\","
        "\"operator\":\"icontains\",\"value\":\"@vip.com\"}],"
        "\"rollout_percentage\":100,\"variant\":\"vip-variant\"}],"
        "\"multivariate\":{\"variants\":[{\"key\":\"control\","
        "\"rollout_percentage\":100},{\"key\":\"vip-variant\","
        "\"rollout_percentage\":0}]}}}]", 0, NULL);
    pp = json_pack("{s:s}", "email", "user@vip.com");

    team = decide_team_create(flags, NULL, NULL, why, sizeof(why));

    memset(&req, 0, sizeof(req));
    req.distinct_id = "user123";
    req.person_properties = pp;
    req.runtime = DECIDE_RUNTIME_ANY;
    req.person_loaded = 1;
    req.groups_loaded = 1;
    req.overrides_loaded = 1;

    (void) decide_eval_flags(team, &req, out);
    is_str(out[0].variant, "control", "C32 stored condition order");
    is_int(out[0].condition_index, 0, "C32 index 0");

    decide_team_free(team);
    json_decref(flags);
    json_decref(pp);
}


/*
 * exact and is_not over ASCII values are prepared (DECIDE_PF_EXACT);
 * decide_t_match() checks every case against the generic matcher too.
 */
static void
decide_t_exact_ascii(void)
{
    const char  *f, *g;

    f = "{\"key\":\"plan\",\"operator\":\"exact\","
        "\"value\":[\"enterprise\",\"Pro\"]}";
    g = "{\"key\":\"plan\",\"operator\":\"is_not\",\"value\":\"pro\"}";

    ok(decide_t_match(f, "{\"plan\":\"pRO\"}"), "exact ascii ci");
    ok(!decide_t_match(f, "{\"plan\":\"pros\"}"), "exact ascii longer");
    ok(!decide_t_match(f, "{\"plan\":\"pr\"}"), "exact ascii shorter");
    ok(!decide_t_match(f, "{}"), "exact ascii absent");
    ok(!decide_t_match(f, "{\"plan\":null}"), "exact ascii null");
    ok(decide_t_match(g, "{}"), "is_not ascii absent");
    ok(!decide_t_match(g, "{\"plan\":\"PRO\"}"), "is_not ascii ci");
    ok(decide_t_match(g, "{\"plan\":\"free\"}"), "is_not ascii other");

    /* U+0130 lowercases to an ASCII "i": the generic way decides */
    f = "{\"key\":\"n\",\"operator\":\"exact\",\"value\":\"i\"}";
    ok(decide_t_match(f, "{\"n\":\"\\u0130\"}"), "exact non-ascii prop");
    ok(!decide_t_match(f, "{\"n\":\"\\u00e9\"}"), "exact other non-ascii");
    ok(decide_t_match("{\"key\":\"n\",\"operator\":\"is_not\","
                      "\"value\":\"i\"}", "{\"n\":\"\\u00e9\"}"),
       "is_not non-ascii prop");

    /* str() of other property types */
    f = "{\"key\":\"n\",\"operator\":\"exact\",\"value\":[\"12\",\"1.5\"]}";
    ok(decide_t_match(f, "{\"n\":12}"), "exact ascii integer prop");
    ok(decide_t_match(f, "{\"n\":1.5}"), "exact ascii real prop");
    ok(!decide_t_match(f, "{\"n\":[12]}"), "exact ascii array prop");
    ok(decide_t_match("{\"key\":\"n\",\"operator\":\"exact\","
                      "\"value\":\"null\"}", "{\"n\":null}"),
       "exact \"null\" null prop");

    /* NUL bytes count in the length */
    f = "{\"key\":\"n\",\"operator\":\"exact\",\"value\":\"a\\u0000B\"}";
    ok(decide_t_match(f, "{\"n\":\"A\\u0000b\"}"), "exact ascii with NUL");
    ok(!decide_t_match(f, "{\"n\":\"a\"}"), "exact ascii NUL prefix");

    /* not prepared: booleans, non-ASCII and mixed values */
    ok(decide_t_match("{\"key\":\"n\",\"operator\":\"exact\","
                      "\"value\":[\"TRUE\"]}", "{\"n\":true}"),
       "exact boolish list");
    ok(decide_t_match("{\"key\":\"n\",\"operator\":\"exact\","
                      "\"value\":\"\\u00c9\"}", "{\"n\":\"\\u00e9\"}"),
       "exact non-ascii value");
    ok(decide_t_match("{\"key\":\"n\",\"operator\":\"exact\","
                      "\"value\":[\"a\",7]}", "{\"n\":7}"),
       "exact mixed list");
    ok(!decide_t_match("{\"key\":\"n\",\"operator\":\"exact\","
                       "\"value\":[]}", "{\"n\":\"a\"}"),
       "exact empty list");
}
