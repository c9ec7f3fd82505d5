/*
 * Copyright (C) edgehog
 */


#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "eh_time.h"


#define EH_TIME_USEC_PER_DAY  (86400LL * EH_TIME_USEC_PER_SEC)


typedef struct {
    const char  *p;
    const char  *end;
} eh_time_cur_t;


static int eh_time_digits(eh_time_cur_t *c, size_t n, unsigned *v);
static int eh_time_char(eh_time_cur_t *c, char ch);
static void eh_time_spaces(eh_time_cur_t *c);
static int eh_time_epoch(const char *p, const char *end, int64_t *us);
static int eh_time_date(eh_time_cur_t *c, unsigned flags, int64_t *days);
static int eh_time_rfc2822(eh_time_cur_t *c, int64_t *us);
static int eh_time_clock(eh_time_cur_t *c, int64_t *us);
static int eh_time_zone(eh_time_cur_t *c, int64_t *off);
static int eh_time_word(eh_time_cur_t *c, const char *w);
static int eh_time_put_digits(char *buf, uint64_t v, int width);
static size_t eh_time_format(int64_t us, char *buf, int date_sep,
    int frac, int zone);
static int eh_time_in_bounds(int64_t us);
static int eh_time_skew(int64_t now, int64_t ts, int64_t sent_at,
    int64_t *result);


/* "AutoSi" picks 0, 3 or 6 digits; "trim" drops trailing zeros */
#define EH_TIME_FRAC_AUTO   -1
#define EH_TIME_FRAC_TRIM   -2


int
eh_time_parse(const char *s, size_t len, unsigned flags, int64_t *us)
{
    int64_t        days, t, off;
    eh_time_cur_t  c, save;

    c.p = s;
    c.end = s + len;

    eh_time_spaces(&c);

    while (c.end > c.p && (c.end[-1] == ' ' || c.end[-1] == '\t'
                           || c.end[-1] == '\n' || c.end[-1] == '\r'))
    {
        c.end--;
    }

    if (c.p == c.end) {
        return -1;
    }

    if ((flags & EH_TIME_PARSE_EPOCH) && eh_time_epoch(c.p, c.end, us) == 0) {
        return 0;
    }

    save = c;

    if (eh_time_date(&c, flags, &days) == 0) {
        t = 0;
        off = 0;

        if (c.p < c.end) {
            if (*c.p != 'T' && *c.p != 't' && *c.p != ' ') {
                goto rfc2822;
            }

            c.p++;

            if (eh_time_clock(&c, &t) != 0) {
                goto rfc2822;
            }

            eh_time_spaces(&c);

            if (c.p < c.end && eh_time_zone(&c, &off) != 0) {
                goto rfc2822;
            }

            if (c.p != c.end) {
                goto rfc2822;
            }
        }

        *us = days * EH_TIME_USEC_PER_DAY + t - off;

        return 0;
    }

rfc2822:

    c = save;

    return eh_time_rfc2822(&c, us);
}


int64_t
eh_time_year(int64_t us)
{
    int64_t   y, days;
    unsigned  m, d;

    days = us / EH_TIME_USEC_PER_DAY;

    if (us % EH_TIME_USEC_PER_DAY < 0) {
        days--;
    }

    eh_time_civil_from_days(days, &y, &m, &d);

    return y;
}


size_t
eh_time_format_now(int64_t us, char *buf)
{
    return eh_time_format(us, buf, 'T', EH_TIME_FRAC_AUTO, 1);
}


size_t
eh_time_format_sent_at(int64_t us, char *buf)
{
    return eh_time_format(us, buf, 'T', EH_TIME_FRAC_TRIM, 1);
}


size_t
eh_time_format_iso_ms(int64_t us, char *buf)
{
    return eh_time_format(us, buf, 'T', 3, 1);
}


size_t
eh_time_format_ch_ms(int64_t us, char *buf)
{
    return eh_time_format(us, buf, ' ', 3, 0);
}


size_t
eh_time_format_ch(int64_t us, char *buf)
{
    return eh_time_format(us, buf, ' ', 0, 0);
}


void
eh_time_capture_resolve(const eh_time_resolve_in_t *in,
    eh_time_resolve_out_t *out)
{
    int      has_sent_at;
    int64_t  ts, sent_at, result, off;

    memset(out, 0, sizeof(eh_time_resolve_out_t));

    has_sent_at = 0;
    sent_at = 0;

    if (in->has_sent_at_us) {
        has_sent_at = 1;
        sent_at = in->sent_at_us;

    } else if (in->sent_at) {
        if (eh_time_parse(in->sent_at, in->sent_at_len,
                          EH_TIME_PARSE_CAPTURE, &sent_at) == 0)
        {
            has_sent_at = 1;

        } else {
            out->warnings |= EH_TIME_WARN_INVALID_SENT_AT;
        }
    }

    result = in->now;

    /* an unparsable timestamp silently stays "now" in capture-rs */
    if (in->timestamp
        && eh_time_parse(in->timestamp, in->timestamp_len,
                         EH_TIME_PARSE_CAPTURE, &ts) == 0)
    {
        if (has_sent_at && !in->ignore_sent_at) {
            /* clock-skew correction */
            if (eh_time_skew(in->now, ts, sent_at, &result) != 0) {
                out->invalid = 1;
                out->warnings |= EH_TIME_WARN_OUT_OF_BOUNDS;
                out->result = 0;
                return;
            }

        } else {
            result = ts;
        }
    }

    if (in->has_offset) {
        if (__builtin_mul_overflow(in->offset_ms, EH_TIME_USEC_PER_MSEC,
                                   &off)
            || __builtin_sub_overflow(in->now, off, &result))
        {
            out->invalid = 1;
            out->warnings |= EH_TIME_WARN_OUT_OF_BOUNDS;
            out->result = 0;
            return;
        }
    }

    out->unclamped = result;

    if (result > in->now && result - in->now > EH_TIME_FUTURE_CUTOFF) {
        out->warnings |= EH_TIME_WARN_FUTURE;
        result = in->now;
    }

    if (!eh_time_in_bounds(result)) {
        out->warnings |= EH_TIME_WARN_OUT_OF_BOUNDS;
        out->parsed_year = eh_time_year(result);
        result = 0;
    }

    out->result = result;
}


void
eh_time_ingest_resolve(const eh_time_resolve_in_t *in,
    eh_time_resolve_out_t *out)
{
    int      has_sent_at, valid;
    int64_t  ts, sent_at, result, off;

    memset(out, 0, sizeof(eh_time_resolve_out_t));

    has_sent_at = 0;
    sent_at = 0;

    if (!in->ignore_sent_at) {
        if (in->has_sent_at_us) {
            has_sent_at = 1;
            sent_at = in->sent_at_us;

        } else if (in->sent_at) {
            if (eh_time_parse(in->sent_at, in->sent_at_len,
                              EH_TIME_PARSE_INGEST, &sent_at) == 0)
            {
                has_sent_at = 1;

            } else {
                out->warnings |= EH_TIME_WARN_INVALID_SENT_AT;
            }
        }
    }

    result = in->now;
    valid = 1;

    if (in->timestamp) {
        if (eh_time_parse(in->timestamp, in->timestamp_len,
                          EH_TIME_PARSE_INGEST, &ts) != 0)
        {
            /* JS keeps the Invalid Date; the offset may still replace it */
            valid = 0;

        } else if (has_sent_at) {
            if (eh_time_skew(in->now, ts, sent_at, &result) != 0) {
                valid = 0;
            }

        } else {
            result = ts;
        }
    }

    /* a JS truthiness test: offset 0 does not count */
    if (in->has_offset && in->offset_ms != 0) {
        valid = 1;

        if (__builtin_mul_overflow(in->offset_ms, EH_TIME_USEC_PER_MSEC,
                                   &off)
            || __builtin_sub_overflow(in->now, off, &result))
        {
            valid = 0;
        }
    }

    out->unclamped = result;
    out->invalid = !valid;

    if (valid && result > in->now
        && result - in->now > EH_TIME_FUTURE_CUTOFF)
    {
        out->warnings |= EH_TIME_WARN_FUTURE;
        result = in->now;
    }

    if (!valid) {
        out->warnings |= EH_TIME_WARN_INVALID_TIMESTAMP;
        result = in->wall_clock;

    } else if (!eh_time_in_bounds(result)) {
        out->warnings |= EH_TIME_WARN_OUT_OF_BOUNDS;
        out->parsed_year = eh_time_year(result);
        result = in->wall_clock;
    }

    out->result = result;
}


void
eh_time_ingest_check(const char *s, size_t len, int64_t wall_clock,
    eh_time_resolve_out_t *out)
{
    int64_t  ts;

    memset(out, 0, sizeof(eh_time_resolve_out_t));

    out->result = wall_clock;

    if (s == NULL) {
        return;
    }

    if (eh_time_parse(s, len, EH_TIME_PARSE_INGEST, &ts) != 0) {
        out->invalid = 1;
        out->warnings |= EH_TIME_WARN_INVALID_TIMESTAMP;
        return;
    }

    out->unclamped = ts;

    if (!eh_time_in_bounds(ts)) {
        out->warnings |= EH_TIME_WARN_OUT_OF_BOUNDS;
        out->parsed_year = eh_time_year(ts);
        return;
    }

    out->result = ts;
}


/* Howard Hinnant's days_from_civil(), valid for any int64 year range used */

int64_t
eh_time_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t   era;
    unsigned  yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned) (y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + (int64_t) doe - 719468;
}


void
eh_time_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t   era;
    unsigned  doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned) (z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;

    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t) yoe + era * 400 + (*m <= 2);
}


unsigned
eh_time_days_in_month(int64_t y, unsigned m)
{
    static const unsigned  dim[] = {
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) {
        return 29;
    }

    return dim[m - 1];
}


static int
eh_time_digits(eh_time_cur_t *c, size_t n, unsigned *v)
{
    size_t  i;

    if ((size_t) (c->end - c->p) < n) {
        return -1;
    }

    *v = 0;

    for (i = 0; i < n; i++) {
        if (c->p[i] < '0' || c->p[i] > '9') {
            return -1;
        }

        *v = *v * 10 + (c->p[i] - '0');
    }

    c->p += n;

    return 0;
}


static int
eh_time_char(eh_time_cur_t *c, char ch)
{
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 0;
    }

    return -1;
}


static void
eh_time_spaces(eh_time_cur_t *c)
{
    while (c->p < c->end
           && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n'
               || *c->p == '\r'))
    {
        c->p++;
    }
}


/* dateparser's unix timestamps: 10 digits (+fraction) s, 13 ms, 16 us */

static int
eh_time_epoch(const char *p, const char *end, int64_t *us)
{
    size_t       n, i;
    int64_t      v, frac, scale;
    const char  *q;

    v = 0;

    for (q = p; q < end && *q >= '0' && *q <= '9'; q++) {
        v = v * 10 + (*q - '0');

        if (q - p >= 16) {
            return -1;
        }
    }

    n = q - p;

    if (q < end) {
        if (*q != '.' || n != 10 || q + 1 == end) {
            return -1;
        }

        frac = 0;
        scale = EH_TIME_USEC_PER_SEC;

        for (i = 0, q++; q < end; q++, i++) {
            if (*q < '0' || *q > '9' || i >= 9) {
                return -1;
            }

            if (i < 6) {
                scale /= 10;
                frac += (*q - '0') * scale;
            }
        }

        *us = v * EH_TIME_USEC_PER_SEC + frac;
        return 0;
    }

    switch (n) {
    case 10:
        *us = v * EH_TIME_USEC_PER_SEC;
        return 0;
    case 13:
        *us = v * EH_TIME_USEC_PER_MSEC;
        return 0;
    case 16:
        *us = v;
        return 0;
    }

    return -1;
}


static int
eh_time_date(eh_time_cur_t *c, unsigned flags, int64_t *days)
{
    char           sep;
    unsigned       y, m, d, w, wd;
    int64_t        jan4;
    eh_time_cur_t  save;

    save = *c;

    if (eh_time_digits(c, 4, &y) == 0) {
        if (c->p >= c->end || (*c->p != '-' && *c->p != '/')) {
            return -1;
        }

        sep = *c->p++;

        if ((flags & EH_TIME_PARSE_ISO_EXT) && sep == '-') {

            if (eh_time_char(c, 'W') == 0) {
                /* ISO week date: week 1 holds January 4th */
                if (eh_time_digits(c, 2, &w) != 0 || w < 1 || w > 53) {
                    return -1;
                }

                wd = 1;

                if (eh_time_char(c, '-') == 0
                    && (eh_time_digits(c, 1, &wd) != 0 || wd < 1 || wd > 7))
                {
                    return -1;
                }

                jan4 = eh_time_days_from_civil(y, 1, 4);

                /* 1970-01-01 was a Thursday: ISO weekday 4 */
                *days = jan4 - ((jan4 % 7 + 7 + 3) % 7)
                        + (int64_t) (w - 1) * 7 + (wd - 1);

                return 0;
            }

            if (c->end - c->p >= 3 && eh_time_digits(c, 3, &d) == 0) {
                if (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
                    return -1;
                }

                /* ordinal date */
                if (d < 1 || d > 365 + (eh_time_days_in_month(y, 2) == 29)) {
                    return -1;
                }

                *days = eh_time_days_from_civil(y, 1, 1) + d - 1;

                return 0;
            }

            *c = save;
            c->p += 5;
        }

        if (eh_time_digits(c, 2, &m) != 0 || eh_time_char(c, sep) != 0
            || eh_time_digits(c, 2, &d) != 0)
        {
            return -1;
        }

    } else {
        /* MM/DD/YYYY, the US order JS Date and dateparser both read */
        *c = save;

        if (eh_time_digits(c, 2, &m) != 0 || eh_time_char(c, '/') != 0
            || eh_time_digits(c, 2, &d) != 0 || eh_time_char(c, '/') != 0
            || eh_time_digits(c, 4, &y) != 0)
        {
            return -1;
        }
    }

    if (m < 1 || m > 12 || d < 1 || d > eh_time_days_in_month(y, m)) {
        return -1;
    }

    *days = eh_time_days_from_civil(y, m, d);

    return 0;
}


static int
eh_time_clock(eh_time_cur_t *c, int64_t *us)
{
    int64_t   frac, scale;
    unsigned  h, mi, s, i;

    if (eh_time_digits(c, 2, &h) != 0 || eh_time_char(c, ':') != 0
        || eh_time_digits(c, 2, &mi) != 0)
    {
        return -1;
    }

    s = 0;
    frac = 0;

    if (eh_time_char(c, ':') == 0) {
        if (eh_time_digits(c, 2, &s) != 0) {
            return -1;
        }

        if (c->p < c->end && (*c->p == '.' || *c->p == ',')) {
            c->p++;

            scale = EH_TIME_USEC_PER_SEC;

            for (i = 0; c->p < c->end && *c->p >= '0' && *c->p <= '9';
                 c->p++, i++)
            {
                /* digits past microseconds are truncated, as chrono */
                if (i < 6) {
                    scale /= 10;
                    frac += (*c->p - '0') * scale;
                }
            }

            if (i == 0) {
                return -1;
            }
        }
    }

    /* a leap second :60 is accepted and lands on the next minute */
    if (h > 23 || mi > 59 || s > 60) {
        return -1;
    }

    *us = ((int64_t) h * 3600 + mi * 60 + s) * EH_TIME_USEC_PER_SEC + frac;

    return 0;
}


static int
eh_time_zone(eh_time_cur_t *c, int64_t *off)
{
    int       sign;
    unsigned  h, m;

    if (eh_time_char(c, 'Z') == 0 || eh_time_char(c, 'z') == 0
        || eh_time_word(c, "UTC") == 0 || eh_time_word(c, "GMT") == 0)
    {
        *off = 0;
        return 0;
    }

    if (c->p >= c->end || (*c->p != '+' && *c->p != '-')) {
        return -1;
    }

    sign = *c->p++ == '-' ? -1 : 1;

    if (eh_time_digits(c, 2, &h) != 0) {
        return -1;
    }

    m = 0;

    if (eh_time_char(c, ':') == 0) {
        if (eh_time_digits(c, 2, &m) != 0) {
            return -1;
        }

    } else if (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (eh_time_digits(c, 2, &m) != 0) {
            return -1;
        }
    }

    if (h > 23 || m > 59) {
        return -1;
    }

    *off = sign * ((int64_t) h * 3600 + m * 60) * EH_TIME_USEC_PER_SEC;

    return 0;
}


static int
eh_time_word(eh_time_cur_t *c, const char *w)
{
    size_t  n;

    n = strlen(w);

    if ((size_t) (c->end - c->p) >= n && strncmp(c->p, w, n) == 0) {
        c->p += n;
        return 0;
    }

    return -1;
}


/* RFC 2822: [Day, ] D Mon YYYY HH:MM[:SS] zone */

static int
eh_time_rfc2822(eh_time_cur_t *c, int64_t *us)
{
    size_t              i;
    int64_t             t, off;
    unsigned            d, m, y;
    static const char  *months[] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
    };
    static const char  *wdays[] = {
        "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"
    };
    static const struct {
        const char     *name;
        int             hours;
    } zones[] = {
        { "UT", 0 }, { "EST", -5 }, { "EDT", -4 }, { "CST", -6 },
        { "CDT", -5 }, { "MST", -7 }, { "MDT", -6 }, { "PST", -8 },
        { "PDT", -7 }
    };

    for (i = 0; i < 7; i++) {
        if (eh_time_word(c, wdays[i]) == 0) {
            if (eh_time_char(c, ',') != 0) {
                return -1;
            }

            eh_time_spaces(c);
            break;
        }
    }

    if (eh_time_digits(c, 2, &d) != 0 && eh_time_digits(c, 1, &d) != 0) {
        return -1;
    }

    if (eh_time_char(c, ' ') != 0) {
        return -1;
    }

    for (i = 0; i < 12; i++) {
        if (eh_time_word(c, months[i]) == 0) {
            break;
        }
    }

    if (i == 12) {
        return -1;
    }

    m = (unsigned) i + 1;

    if (eh_time_char(c, ' ') != 0 || eh_time_digits(c, 4, &y) != 0
        || eh_time_char(c, ' ') != 0)
    {
        return -1;
    }

    if (d < 1 || d > eh_time_days_in_month(y, m)) {
        return -1;
    }

    if (eh_time_clock(c, &t) != 0) {
        return -1;
    }

    eh_time_spaces(c);

    off = 0;

    if (c->p < c->end && eh_time_zone(c, &off) != 0) {
        for (i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
            if (eh_time_word(c, zones[i].name) == 0) {
                off = zones[i].hours * 3600LL * EH_TIME_USEC_PER_SEC;
                break;
            }
        }

        if (i == sizeof(zones) / sizeof(zones[0])) {
            return -1;
        }
    }

    if (c->p != c->end) {
        return -1;
    }

    *us = eh_time_days_from_civil(y, m, d) * EH_TIME_USEC_PER_DAY + t - off;

    return 0;
}


/* v in decimal, zero-padded to at least width digits; returns the length */

static int
eh_time_put_digits(char *buf, uint64_t v, int width)
{
    int   n, k;
    char  tmp[24];

    /*
     * the fields of a date fit their width: two digits per table lookup
     * instead of a division per digit (this runs for every event)
     */
    static const char  pairs[] =
        "000102030405060708091011121314151617181920212223242526272829"
        "303132333435363738394041424344454647484950515253545556575859"
        "606162636465666768697071727374757677787980818283848586878889"
        "90919293949596979899";

    if (width == 2 && v < 100) {
        memcpy(buf, pairs + 2 * v, 2);
        return 2;
    }

    if (width == 4 && v < 10000) {
        memcpy(buf, pairs + 2 * (v / 100), 2);
        memcpy(buf + 2, pairs + 2 * (v % 100), 2);
        return 4;
    }

    if (width == 6 && v < 1000000) {
        memcpy(buf, pairs + 2 * (v / 10000), 2);
        memcpy(buf + 2, pairs + 2 * (v / 100 % 100), 2);
        memcpy(buf + 4, pairs + 2 * (v % 100), 2);
        return 6;
    }

    n = 0;

    do {
        tmp[n++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    while (n < width) {
        tmp[n++] = '0';
    }

    for (k = 0; k < n; k++) {
        buf[k] = tmp[n - 1 - k];
    }

    return n;
}


static size_t
eh_time_format(int64_t us, char *buf, int date_sep, int frac, int zone)
{
    int       n, k;
    int64_t   days, rem, y;
    unsigned  m, d, sub, hh, mm, ss;
    char      fbuf[8];

    days = us / EH_TIME_USEC_PER_DAY;
    rem = us % EH_TIME_USEC_PER_DAY;

    if (rem < 0) {
        rem += EH_TIME_USEC_PER_DAY;
        days--;
    }

    eh_time_civil_from_days(days, &y, &m, &d);

    sub = (unsigned) (rem % EH_TIME_USEC_PER_SEC);
    rem /= EH_TIME_USEC_PER_SEC;
    hh = (unsigned) (rem / 3600);
    mm = (unsigned) (rem / 60 % 60);
    ss = (unsigned) (rem % 60);

    /*
     * written by hand: this runs several times per captured event, and
     * snprintf() was most of its cost.  chrono writes years outside
     * 0..9999 with a sign and at least 4 digits.
     */
    if (y >= 0 && y <= 9999) {
        n = eh_time_put_digits(buf, (uint64_t) y, 4);

    } else {
        buf[0] = y < 0 ? '-' : '+';
        n = 1 + eh_time_put_digits(buf + 1,
                               y < 0 ? (uint64_t) 0 - (uint64_t) y
                                     : (uint64_t) y, 4);
    }

    buf[n++] = '-';
    n += eh_time_put_digits(buf + n, m, 2);
    buf[n++] = '-';
    n += eh_time_put_digits(buf + n, d, 2);
    buf[n++] = (char) date_sep;
    n += eh_time_put_digits(buf + n, hh, 2);
    buf[n++] = ':';
    n += eh_time_put_digits(buf + n, mm, 2);
    buf[n++] = ':';
    n += eh_time_put_digits(buf + n, ss, 2);

    eh_time_put_digits(fbuf, sub, 6);

    if (frac == EH_TIME_FRAC_AUTO) {
        frac = sub == 0 ? 0 : (sub % 1000 == 0 ? 3 : 6);

    } else if (frac == EH_TIME_FRAC_TRIM) {
        frac = 6;

        while (frac > 0 && fbuf[frac - 1] == '0') {
            frac--;
        }
    }

    if (frac > 0) {
        buf[n++] = '.';

        for (k = 0; k < frac; k++) {
            buf[n++] = fbuf[k];
        }
    }

    if (zone) {
        buf[n++] = 'Z';
    }

    buf[n] = '\0';

    return (size_t) n;
}


static int
eh_time_in_bounds(int64_t us)
{
    int64_t  y;

    y = eh_time_year(us);

    return y >= 0 && y <= 9999;
}


/* now + (ts - sent_at); a caller-supplied sent_at may be anything */

static int
eh_time_skew(int64_t now, int64_t ts, int64_t sent_at, int64_t *result)
{
    int64_t  d;

    if (__builtin_sub_overflow(ts, sent_at, &d)
        || __builtin_add_overflow(now, d, result))
    {
        return -1;
    }

    return 0;
}
