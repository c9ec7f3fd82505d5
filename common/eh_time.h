/*
 * Copyright (C) edgehog
 */

/*
 * Timestamps shared by capture and the ingest-worker: one permissive
 * parser to signed microseconds since the Unix epoch, the output formats
 * PostHog's Kafka messages and ClickHouse rows use, and the event
 * timestamp resolution of spec/capture.md §4.4 (capture) and
 * spec/ingestion.md §2 (ingestion) as pure functions of their inputs.
 */

#ifndef _EH_TIME_H_INCLUDED_
#define _EH_TIME_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define EH_TIME_USEC_PER_SEC   1000000LL
#define EH_TIME_USEC_PER_MSEC  1000LL

/* enough for every format below, years of any sign included, plus NUL */
#define EH_TIME_STR_MAX        48

/* parse flags */
/* all-digit epoch: 10 digits seconds (optional .fraction), 13 ms, 16 us */
#define EH_TIME_PARSE_EPOCH    0x01
/* ISO week (2021-W43-5) and ordinal (2021-302) dates, as Luxon */
#define EH_TIME_PARSE_ISO_EXT  0x02

/* what capture-rs accepts (dateparser + naive-as-UTC fallback) */
#define EH_TIME_PARSE_CAPTURE  EH_TIME_PARSE_EPOCH
/* what the Node ingestion accepts (JS Date, then Luxon fromISO) */
#define EH_TIME_PARSE_INGEST   EH_TIME_PARSE_ISO_EXT

/* resolution warnings (bit mask) */
#define EH_TIME_WARN_INVALID_SENT_AT   0x01
#define EH_TIME_WARN_INVALID_TIMESTAMP 0x02
#define EH_TIME_WARN_OUT_OF_BOUNDS     0x04
#define EH_TIME_WARN_FUTURE            0x08

/* the future cutoff of both implementations: strictly more than 23 h */
#define EH_TIME_FUTURE_CUTOFF  (23LL * 3600 * EH_TIME_USEC_PER_SEC)


typedef struct {
    /* server receive time (capture's "now") */
    int64_t       now;
    /* ingestion only: the fallback for invalid results */
    int64_t       wall_clock;

    /* event "timestamp" string; NULL when absent */
    const char   *timestamp;
    size_t        timestamp_len;

    /* "sent_at" as a string (batch field); NULL when absent ... */
    const char   *sent_at;
    size_t        sent_at_len;
    /* ... or already known (capture's query "_" in ms) */
    int64_t       sent_at_us;
    unsigned      has_sent_at_us:1;

    /* event "offset" in milliseconds */
    int64_t       offset_ms;
    unsigned      has_offset:1;

    /* properties.$ignore_sent_at === true */
    unsigned      ignore_sent_at:1;
} eh_time_resolve_in_t;


typedef struct {
    int64_t       result;
    /* before the future clamp and bounds fallback, for warning details */
    int64_t       unclamped;
    /* year of the out-of-bounds value (EH_TIME_WARN_OUT_OF_BOUNDS) */
    int64_t       parsed_year;
    unsigned      warnings;
    /* the unclamped value is meaningless (unparsable, overflow) */
    unsigned      invalid:1;
} eh_time_resolve_out_t;


/*
 * 0 and *us on success, -1 if unparsable.  Accepts RFC 3339 and ISO 8601
 * date-times with 'T', 't' or ' ', optional seconds and any number of
 * fraction digits (truncated to microseconds), zones Z, UTC, GMT, +HH,
 * +HHMM, +HH:MM (none: UTC); date-only (midnight UTC); YYYY/MM/DD and
 * MM/DD/YYYY with an optional time; RFC 2822; plus what flags add.
 * Surrounding whitespace is ignored.  Years have exactly four digits.
 */
int eh_time_parse(const char *s, size_t len, unsigned flags, int64_t *us);

/* the proleptic Gregorian year of a time, for range checks */
int64_t eh_time_year(int64_t us);

/* proleptic Gregorian calendar arithmetic; day 0 is 1970-01-01 */
int64_t eh_time_days_from_civil(int64_t y, unsigned m, unsigned d);
void eh_time_civil_from_days(int64_t z, int64_t *y, unsigned *m,
    unsigned *d);
unsigned eh_time_days_in_month(int64_t y, unsigned m);

/*
 * Formatters; each writes a NUL-terminated string into buf, which must
 * hold EH_TIME_STR_MAX bytes, and returns its length.
 */

/* chrono AutoSi (capture "now", "timestamp"): no fraction if zero, else
 * 3 or 6 digits, "Z" */
size_t eh_time_format_now(int64_t us, char *buf);

/* time crate RFC 3339 (capture "sent_at"): fraction trailing zeros
 * trimmed, "Z" */
size_t eh_time_format_sent_at(int64_t us, char *buf);

/* JS toISOString()/Luxon: always 3 fraction digits, "Z" */
size_t eh_time_format_iso_ms(int64_t us, char *buf);

/* ClickHouse DateTime64(3) text: YYYY-MM-DD HH:MM:SS.mmm */
size_t eh_time_format_ch_ms(int64_t us, char *buf);

/* ClickHouse DateTime text: YYYY-MM-DD HH:MM:SS */
size_t eh_time_format_ch(int64_t us, char *buf);

/*
 * capture-rs parse_event_timestamp() (spec/capture.md §4.4): unparsable
 * timestamp -> now (no warning); out of years 0..9999 -> Unix epoch.
 * A string sent_at is parsed like the timestamp.
 */
void eh_time_capture_resolve(const eh_time_resolve_in_t *in,
    eh_time_resolve_out_t *out);

/*
 * plugin-server parseEventTimestamp() (spec/ingestion.md §2.1): an
 * unparsable timestamp is kept invalid and, like an out-of-bounds
 * result, falls back to in->wall_clock with a warning; offset applies
 * only when non-zero.
 */
void eh_time_ingest_resolve(const eh_time_resolve_in_t *in,
    eh_time_resolve_out_t *out);

/*
 * The G3 worker step of spec/ingestion.md §2.2, for messages whose outer
 * timestamp capture already computed: parse it, fall back to wall_clock
 * when absent (s == NULL, no warning), unparsable or out of bounds.
 */
void eh_time_ingest_check(const char *s, size_t len, int64_t wall_clock,
    eh_time_resolve_out_t *out);


#endif /* _EH_TIME_H_INCLUDED_ */
