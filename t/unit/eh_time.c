/*
 * Copyright (C) edgehog
 */

/*
 * Formats, the parser, and both resolvers against
 * fixtures/ingestion/timestamps.json.
 */


#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tap.h"
#include "eh_time.h"


static int64_t P(const char *s);
static int parses(const char *s, unsigned flags, int64_t *us);
static void fixture_resolve(json_t *cases, int ingest, int64_t wall);
static void fixture_parse(json_t *list, unsigned flags, int want,
    const char *expected, const char *what);
static unsigned warning_bits(json_t *warning, int ingest);
static int formats_as_printf(int64_t us);


static char  t_buf[EH_TIME_STR_MAX];
static char  want_buf[EH_TIME_STR_MAX];


/* parses a string the test knows to be valid */

static int64_t
P(const char *s)
{
    int64_t  us;

    if (eh_time_parse(s, strlen(s), EH_TIME_PARSE_INGEST, &us) != 0) {
        diag("test bug: cannot parse '%s'", s);
        return INT64_MIN;
    }

    return us;
}


static int
parses(const char *s, unsigned flags, int64_t *us)
{
    return eh_time_parse(s, strlen(s), flags, us) == 0;
}


static unsigned
warning_bits(json_t *warning, int ingest)
{
    json_t      *details, *field;
    const char  *type, *reason;

    if (!json_is_object(warning)) {
        return 0;
    }

    type = json_string_value(json_object_get(warning, "type"));
    details = json_object_get(warning, "details");

    if (strcmp(type, "event_timestamp_in_future") == 0) {
        return EH_TIME_WARN_FUTURE;
    }

    field = json_object_get(details, "field");
    reason = json_string_value(json_object_get(details, "reason"));

    if (field && strcmp(json_string_value(field), "sent_at") == 0) {
        return EH_TIME_WARN_INVALID_SENT_AT;
    }

    if (reason && strcmp(reason, "out of bounds") == 0) {
        return EH_TIME_WARN_OUT_OF_BOUNDS;
    }

    if (field) {
        return EH_TIME_WARN_INVALID_TIMESTAMP;
    }

    /* details null (Rust cases): only the type is asserted */
    return 0;
}


static void
fixture_resolve(json_t *cases, int ingest, int64_t wall)
{
    size_t                 i;
    json_t                *c, *v, *w;
    unsigned               want;
    const char            *name;
    eh_time_resolve_in_t   in;
    eh_time_resolve_out_t  out;

    json_array_foreach(cases, i, c) {
        name = json_string_value(json_object_get(c, "name"));

        memset(&in, 0, sizeof(in));

        in.now = P(json_string_value(json_object_get(c, "now")));
        in.wall_clock = wall;

        v = json_object_get(c, "timestamp");
        if (json_is_string(v)) {
            in.timestamp = json_string_value(v);
            in.timestamp_len = json_string_length(v);
        }

        v = json_object_get(c, "sent_at");
        if (json_is_string(v)) {
            in.sent_at = json_string_value(v);
            in.sent_at_len = json_string_length(v);
        }

        v = json_object_get(c, "offset");
        if (json_is_integer(v)) {
            in.has_offset = 1;
            in.offset_ms = json_integer_value(v);
        }

        in.ignore_sent_at = json_is_true(json_object_get(c, "ignore_sent_at"));

        if (ingest) {
            eh_time_ingest_resolve(&in, &out);

        } else {
            eh_time_capture_resolve(&in, &out);
        }

        eh_time_format_iso_ms(out.result, t_buf);
        eh_time_format_iso_ms(P(json_string_value(json_object_get(c,
                                                              "expected"))),
                              want_buf);
        is_str(t_buf, want_buf, "%s: %s", ingest ? "ingest" : "capture",
               name);

        w = json_object_get(c, "warning");
        want = warning_bits(w, ingest);

        if (json_is_object(w) && want == 0) {
            /* only the type is known */
            want = strcmp(json_string_value(json_object_get(w, "type")),
                          "event_timestamp_in_future") == 0
                   ? EH_TIME_WARN_FUTURE
                   : (EH_TIME_WARN_INVALID_SENT_AT
                      | EH_TIME_WARN_INVALID_TIMESTAMP
                      | EH_TIME_WARN_OUT_OF_BOUNDS);
            ok((out.warnings & want) != 0, "%s: warning type", name);

        } else {
            is_int(out.warnings, want, "%s: warnings", name);
        }

        v = json_object_get(json_object_get(w, "details"), "parsed_year");
        if (v) {
            is_int(out.parsed_year, json_integer_value(v),
                   "%s: parsed_year", name);
        }

        v = json_object_get(json_object_get(w, "details"), "result");
        if (v) {
            eh_time_format_iso_ms(out.unclamped, t_buf);
            is_str(t_buf, json_string_value(v), "%s: unclamped result",
                   name);
        }
    }
}


static void
fixture_parse(json_t *list, unsigned flags, int want, const char *expected,
    const char *what)
{
    size_t       i;
    json_t      *c;
    int64_t      us;
    const char  *s;

    json_array_foreach(list, i, c) {
        s = json_is_string(c) ? json_string_value(c)
                              : json_string_value(json_object_get(c, "input"));

        ok(parses(s, flags, &us) == want, "%s: '%s'", what, s);

        if (want && expected) {
            is_int(us, P(expected), "%s: '%s' value", what, s);
        }
    }
}


/*
 * the hand-written formatters against snprintf() on the same calendar
 * fields: years of 0..9999 and beyond, every fraction width
 */

static int
formats_as_printf(int64_t us)
{
    int64_t   days, rem, y;
    unsigned  m, d, sub, hh, mm, ss;
    char      date[32], want[EH_TIME_STR_MAX], got[EH_TIME_STR_MAX];

    days = us / 86400000000LL;
    rem = us % 86400000000LL;

    if (rem < 0) {
        rem += 86400000000LL;
        days--;
    }

    eh_time_civil_from_days(days, &y, &m, &d);

    sub = (unsigned) (rem % 1000000);
    rem /= 1000000;
    hh = (unsigned) (rem / 3600);
    mm = (unsigned) (rem / 60 % 60);
    ss = (unsigned) (rem % 60);

    if (y >= 0 && y <= 9999) {
        snprintf(date, sizeof(date), "%04lld", (long long) y);

    } else {
        snprintf(date, sizeof(date), "%c%04llu", y < 0 ? '-' : '+',
                 y < 0 ? 0ULL - (unsigned long long) y
                       : (unsigned long long) y);
    }

    snprintf(want, sizeof(want), "%s-%02u-%02u %02u:%02u:%02u.%03u", date,
             m, d, hh, mm, ss, sub / 1000);
    eh_time_format_ch_ms(us, got);

    if (strcmp(got, want) != 0) {
        diag("%s != %s", got, want);
        return 0;
    }

    snprintf(want, sizeof(want), "%s-%02u-%02uT%02u:%02u:%02u.%06uZ", date,
             m, d, hh, mm, ss, sub);
    eh_time_format_sent_at(us, got);

    /* sent_at trims trailing zeros of the fraction, and a zero fraction */
    if (strncmp(got, want, strlen(got) - 1) != 0) {
        diag("%s !~ %s", got, want);
        return 0;
    }

    eh_time_format_now(us, got);

    if (strncmp(got, want, strlen(got) - 1) != 0
        || strlen(got) != strlen(want) - (sub == 0 ? 7
                                          : sub % 1000 == 0 ? 3 : 0))
    {
        diag("%s !~ %s", got, want);
        return 0;
    }

    return 1;
}


int
main(void)
{
    json_t                *root, *v;
    int64_t                us, wall;
    json_error_t           err;
    eh_time_resolve_in_t   in;
    eh_time_resolve_out_t  out;

    /* formats, spec/capture.md §6.3 */
    us = P("2025-07-01T11:00:00Z");
    eh_time_format_now(us, t_buf);
    is_str(t_buf, "2025-07-01T11:00:00Z", "now: no fraction");
    eh_time_format_now(us + 918578, t_buf);
    is_str(t_buf, "2025-07-01T11:00:00.918578Z", "now: 6 digits");
    eh_time_format_now(us + 500000, t_buf);
    is_str(t_buf, "2025-07-01T11:00:00.500Z", "now: 3 digits");
    eh_time_format_sent_at(us + 900000, t_buf);
    is_str(t_buf, "2025-07-01T11:00:00.9Z", "sent_at: trimmed");
    eh_time_format_sent_at(us + 325000, t_buf);
    is_str(t_buf, "2025-07-01T11:00:00.325Z", "sent_at: .325");
    eh_time_format_sent_at(us, t_buf);
    is_str(t_buf, "2025-07-01T11:00:00Z", "sent_at: none");
    eh_time_format_iso_ms(us + 1999, t_buf);
    is_str(t_buf, "2025-07-01T11:00:00.001Z", "iso_ms truncates");
    eh_time_format_ch_ms(us + 123456, t_buf);
    is_str(t_buf, "2025-07-01 11:00:00.123", "clickhouse ms");
    eh_time_format_ch(us + 123456, t_buf);
    is_str(t_buf, "2025-07-01 11:00:00", "clickhouse");
    eh_time_format_now(-1, t_buf);
    is_str(t_buf, "1969-12-31T23:59:59.999999Z", "before the epoch");
    eh_time_format_now(0, t_buf);
    is_str(t_buf, "1970-01-01T00:00:00Z", "epoch");
    eh_time_format_iso_ms(P("9999-12-31T23:59:59.999Z") + 1000, t_buf);
    is_str(t_buf, "+10000-01-01T00:00:00.000Z", "year 10000 signed");
    eh_time_format_iso_ms(P("0000-01-01T00:00:00Z") - 1000, t_buf);
    is_str(t_buf, "-0001-12-31T23:59:59.999Z", "year -1 signed");
    is_int(eh_time_year(P("2024-02-29T00:00:00Z")), 2024, "year");

    /* the parser */
    ok(parses("2021-10-29T00:00:00.123456789Z", 0, &us)
       && us == P("2021-10-29T00:00:00Z") + 123456, "9 fraction digits");
    ok(parses("2021-10-29t00:00:00z", 0, &us), "lower-case t and z");
    ok(parses("2021-10-29T03:00:00+03", 0, &us)
       && us == P("2021-10-29T00:00:00Z"), "+HH offset");
    ok(parses("2021-10-29T03:30:00+0330", 0, &us)
       && us == P("2021-10-29T00:00:00Z"), "+HHMM offset");
    ok(parses("2021-10-28T21:00:00-03:00", 0, &us)
       && us == P("2021-10-29T00:00:00Z"), "-HH:MM offset");
    ok(parses("2021-10-29 00:00", 0, &us)
       && us == P("2021-10-29T00:00:00Z"), "no seconds");
    ok(parses("  2021-10-29T00:00:00Z\n", 0, &us), "whitespace trimmed");
    ok(parses("2016-12-31T23:59:60Z", 0, &us)
       && us == P("2017-01-01T00:00:00Z"), "leap second");
    ok(parses("2024-02-29", 0, &us), "leap day");
    ok(!parses("2023-02-29", 0, &us), "not a leap year");
    ok(!parses("2021-13-01", 0, &us), "month 13");
    ok(!parses("2021-10-29T24:00:00Z", 0, &us), "hour 24");
    ok(!parses("2021-10-29T00:00:00+24:00", 0, &us), "offset 24h");
    ok(!parses("2021-10-29T00:00:00.Z", 0, &us), "empty fraction");
    ok(!parses("2021-10-29T00:00:00Zjunk", 0, &us), "trailing junk");
    ok(!parses("2021-10-29T", 0, &us), "T without time");
    ok(!parses("21-10-29", 0, &us), "two-digit year");
    ok(!parses("1672574400", 0, &us), "epoch needs the flag");
    ok(parses("1672574400.5", EH_TIME_PARSE_EPOCH, &us)
       && us == 1672574400500000LL, "epoch seconds with fraction");
    ok(parses("1672574400123456", EH_TIME_PARSE_EPOCH, &us)
       && us == 1672574400123456LL, "epoch microseconds");
    ok(!parses("12345", EH_TIME_PARSE_EPOCH, &us), "5 digits not an epoch");
    ok(parses("Sat, 01 Jul 2023 10:52:37 GMT", 0, &us)
       && us == P("2023-07-01T10:52:37Z"), "RFC 2822 GMT");
    ok(parses("1 Jul 2003 10:52 EST", 0, &us)
       && us == P("2003-07-01T15:52:00Z"), "RFC 2822 no weekday, EST");
    ok(!parses("Tue, 32 Jul 2003 10:52:37 +0200", 0, &us), "RFC 2822 day 32");
    ok(parses("2021-W52-7", EH_TIME_PARSE_ISO_EXT, &us)
       && us == P("2022-01-02"), "ISO week across the year");
    ok(parses("2020-W01-1", EH_TIME_PARSE_ISO_EXT, &us)
       && us == P("2019-12-30"), "ISO week 1 starting in December");
    ok(parses("2020-366", EH_TIME_PARSE_ISO_EXT, &us)
       && us == P("2020-12-31"), "ordinal leap");
    ok(!parses("2021-366", EH_TIME_PARSE_ISO_EXT, &us), "ordinal 366");
    ok(!parses("", 0, &us), "empty");

    /* capture §4.4 / AC-02, AC-03 */
    memset(&in, 0, sizeof(in));
    in.now = P("2025-07-01T11:00:00Z");
    in.timestamp = "2025-07-01T10:59:55Z";
    in.timestamp_len = strlen(in.timestamp);
    in.has_sent_at_us = 1;
    in.sent_at_us = P("2025-07-01T11:00:05Z");
    eh_time_capture_resolve(&in, &out);
    eh_time_format_now(out.result, t_buf);
    is_str(t_buf, "2025-07-01T10:59:50Z", "AC-02 skew correction");

    in.has_sent_at_us = 0;
    in.timestamp = "2025-07-01T10:59:59.5Z";
    in.timestamp_len = strlen(in.timestamp);
    eh_time_capture_resolve(&in, &out);
    eh_time_format_now(out.result, t_buf);
    is_str(t_buf, "2025-07-01T10:59:59.500Z", "AC-03 fraction");

    in.timestamp = NULL;
    in.has_offset = 1;
    in.offset_ms = 1500;
    eh_time_capture_resolve(&in, &out);
    eh_time_format_now(out.result, t_buf);
    is_str(t_buf, "2025-07-01T10:59:58.500Z", "AC-03 offset");

    in.offset_ms = INT64_MIN;
    eh_time_capture_resolve(&in, &out);
    ok(out.result == 0 && (out.warnings & EH_TIME_WARN_OUT_OF_BOUNDS),
       "overflowing offset -> epoch");

    in.has_offset = 0;
    in.timestamp = "1672574400000";
    in.timestamp_len = strlen(in.timestamp);
    eh_time_capture_resolve(&in, &out);
    is_int(out.result, 1672574400000000LL, "capture: epoch millis timestamp");

    /* fixtures */
    root = json_load_file(EDGEHOG_FIXTURES "/ingestion/timestamps.json", 0,
                          &err);
    ok(root != NULL, "timestamps.json loads");

    if (root == NULL) {
        diag("%s", err.text);
        return done_testing();
    }

    wall = P(json_string_value(json_object_get(root, "fake_system_time")));

    fixture_resolve(json_object_get(root, "cases"), 1, wall);
    fixture_parse(json_object_get(json_object_get(root, "parse_date_cases"),
                                  "cases"),
                  EH_TIME_PARSE_INGEST, 1, "2021-10-29T00:00:00Z",
                  "node parseDate");

    v = json_object_get(root, "rust_capture_cases");
    fixture_resolve(json_object_get(v, "cases"), 0, wall);

    v = json_object_get(v, "parse_date");
    fixture_parse(json_object_get(v, "valid"), EH_TIME_PARSE_CAPTURE, 1,
                  NULL, "rust valid");
    fixture_parse(json_object_get(v, "invalid"), EH_TIME_PARSE_CAPTURE, 0,
                  NULL, "rust invalid");
    fixture_parse(json_object_get(v, "iso8601_variants_parse_to_2021_10"),
                  EH_TIME_PARSE_CAPTURE, 1, "2021-10-29T00:00:00Z",
                  "rust iso8601");
    fixture_parse(json_object_get(v, "rejected"), EH_TIME_PARSE_CAPTURE, 0,
                  NULL, "rust rejected");

    ok(parses("Tue, 1 Jul 2003 10:52:37 +0200", EH_TIME_PARSE_CAPTURE, &us)
       && us == P("2003-07-01T08:52:37Z"), "rust RFC 2822 value");
    ok(parses("01/01/2023", EH_TIME_PARSE_CAPTURE, &us)
       && us == P("2023-01-01"), "rust MM/DD/YYYY value");
    ok(parses("1672574400", EH_TIME_PARSE_CAPTURE, &us)
       && us == P("2023-01-01T12:00:00Z"), "rust epoch seconds value");

    /* G3: the worker only checks capture's timestamp */
    {
        size_t       i;
        json_t      *c, *ts;
        const char  *name;

        json_array_foreach(json_object_get(root, "nodejs_cases"), i, c) {
            name = json_string_value(json_object_get(c, "name"));
            ts = json_object_get(c, "timestamp");

            eh_time_ingest_check(json_string_value(ts),
                                 json_is_string(ts) ? json_string_length(ts)
                                                    : 0,
                                 wall, &out);

            is_int(out.result,
                   P(json_string_value(json_object_get(c, "expected"))),
                   "nodejs: %s", name);
            is_int(out.warnings != 0,
                   json_is_object(json_object_get(c, "warning")),
                   "nodejs: %s warning", name);
        }
    }

    json_decref(root);

    {
        int       i, good;
        int64_t   us;
        uint64_t  x;

        good = 1;
        x = 88172645463325252ULL;

        for (i = 0; good && i < 200000; i++) {
            /* xorshift: over +-20000 years, or +-20 around the epoch */
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            us = (int64_t) (x % 1260000000000000000ULL)
                 - 630000000000000000LL;
            us = i % 2 ? us / 1000 : us;
            us = i % 3 == 0 ? us / 1000000 * 1000000
                 : i % 3 == 1 ? us / 1000 * 1000 : us;
            good = formats_as_printf(us);
        }

        ok(good, "formatters agree with snprintf()");
    }

    return done_testing();
}
