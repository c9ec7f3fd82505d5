/*
 * Copyright (C) edgehog
 */

/*
 * The Kafka message of one event (spec/capture.md §4.4-§6): value, key,
 * header values and the session id laid out in one allocation.  The
 * value comes first, so the block is the pointer the delivery report
 * frees; the key and the headers are copied by rd_kafka_producev().
 */


#include <stdlib.h>
#include <string.h>

#include "capture_event_int.h"


static void capture_event_times(capture_ctx_t *ctx);
static capture_topic_e capture_event_topic(capture_ctx_t *ctx,
    const char *event, size_t len);
static size_t capture_event_ms(int64_t us, char *buf);
static void capture_sbuf_field(capture_sbuf_t *b, const char *name,
    size_t name_len, const char *value, size_t len);
static size_t capture_sbuf_cstr(capture_sbuf_t *b, const char *s,
    size_t len);
static void capture_sbuf_free(capture_sbuf_t *b);
static int capture_sbuf_plain8(uint64_t x);


/* the names of the headers whose values the block holds, in its order */
static const struct {
    const char              *data;
    size_t                   len;
} capture_emit_headers[] = {
    { "token", sizeof("token") - 1 },
    { "distinct_id", sizeof("distinct_id") - 1 },
    { "timestamp", sizeof("timestamp") - 1 },
    { "event", sizeof("event") - 1 },
    { "uuid", sizeof("uuid") - 1 },
    { "now", sizeof("now") - 1 },
};


#define capture_sbuf_lit(b, s)  capture_sbuf_add(b, s, sizeof(s) - 1)
#define capture_sbuf_name(b, n, v, l)                                        \
    capture_sbuf_field(b, n, sizeof(n) - 1, v, l)


int
capture_event_emit(capture_ctx_t *ctx, capture_fields_t *f,
    capture_data_pt data, void *arg, capture_msg_t *msg, capture_error_t *err)
{
    char                     ts[EH_TIME_STR_MAX], ms[24], *nb;
    size_t                   tslen, mslen, iplen, hint;
    size_t                   i, key, hv[7], hl[7];
    const char              *ip;
    unsigned char            u[16], rnd[10];
    capture_sbuf_t           b;
    eh_time_resolve_in_t     tin;
    eh_time_resolve_out_t    tout;
    const capture_request_t *req;

    req = ctx->req;

    if (!ctx->times) {
        capture_event_times(ctx);
    }

    if (f->uuid[0] == '\0') {
        /* arc4random_buf never blocks once the kernel pool is ready */
        arc4random_buf(rnd, sizeof(rnd));
        eh_uuid_v7((uint64_t) (req->now_us / 1000), rnd, u);
        eh_uuid_format(u, f->uuid);
    }

    /* §4.4 */

    memset(&tin, 0, sizeof(tin));
    tin.now = req->now_us;
    tin.timestamp = f->timestamp;
    tin.timestamp_len = f->timestamp_len;
    tin.sent_at_us = ctx->sent_at_us;
    tin.has_sent_at_us = ctx->has_sent_at;
    tin.offset_ms = f->offset_ms;
    tin.has_offset = f->has_offset;
    tin.ignore_sent_at = f->ignore_sent_at;

    eh_time_capture_resolve(&tin, &tout);

    tslen = eh_time_format_now(tout.result, ts);
    mslen = capture_event_ms(tout.result, ms);

    /* §4.6 */
    ip = f->internal ? "127.0.0.1" : req->ip;
    iplen = strlen(ip);

    /*
     * §6.3: field order is the contract.  Escaping at most doubles the
     * distinct_id, the event name and "data" (whose writer reserves that
     * much), so the block is allocated once; the rest is a hint.
     */

    hint = 256 + 2 * (f->did_len + f->event_len + f->data_hint)
           + f->token_len
           + 2 * tslen + 2 * ctx->now_len + ctx->sent_len + iplen
           + f->token_len + 1 + (f->cookieless ? iplen : f->did_len)
           + f->token_len + f->did_len + f->event_len + mslen
           + EH_UUID_STR_LEN + f->session_id_len;

    memset(&b, 0, sizeof(b));
    b.alloc = req->alloc;
    capture_sbuf_reserve(&b, hint);

    capture_sbuf_lit(&b, "{\"uuid\":\"");
    capture_sbuf_add(&b, f->uuid, EH_UUID_STR_LEN);
    capture_sbuf_lit(&b, "\"");
    capture_sbuf_name(&b, ",\"distinct_id\":\"", f->did, f->did_len);
    capture_sbuf_name(&b, ",\"ip\":\"", ip, iplen);
    capture_sbuf_lit(&b, ",\"data\":\"");
    data(&b, arg);
    capture_sbuf_lit(&b, "\"");
    capture_sbuf_name(&b, ",\"now\":\"", ctx->now, ctx->now_len);

    if (ctx->sent_len) {
        capture_sbuf_name(&b, ",\"sent_at\":\"", ctx->sent, ctx->sent_len);
    }

    capture_sbuf_name(&b, ",\"token\":\"", f->token, f->token_len);
    capture_sbuf_name(&b, ",\"event\":\"", f->event, f->event_len);
    capture_sbuf_name(&b, ",\"timestamp\":\"", ts, tslen);

    if (f->cookieless) {
        capture_sbuf_lit(&b, ",\"is_cookieless_mode\":true");
    }

    if (ctx->historical) {
        capture_sbuf_lit(&b, ",\"historical_migration\":true");
    }

    capture_sbuf_add(&b, "}", 2);

    msg->value_len = b.len - 1;

    /* the key and the header values follow, each NUL-terminated */

    key = b.len;
    capture_sbuf_add(&b, f->token, f->token_len);
    capture_sbuf_add(&b, ":", 1);

    if (f->cookieless) {
        capture_sbuf_add(&b, ip, iplen);

    } else {
        capture_sbuf_add(&b, f->did, f->did_len);
    }

    capture_sbuf_add(&b, "", 1);

    msg->key_len = b.len - 1 - key;

    hl[0] = capture_sbuf_cstr(&b, f->token, f->token_len);
    hl[1] = capture_sbuf_cstr(&b, f->did, f->did_len);
    hl[2] = capture_sbuf_cstr(&b, ms, mslen);
    hl[3] = capture_sbuf_cstr(&b, f->event, f->event_len);
    hl[4] = capture_sbuf_cstr(&b, f->uuid, EH_UUID_STR_LEN);
    hl[5] = capture_sbuf_cstr(&b, ctx->now, ctx->now_len);

    if (f->session_id) {
        hl[6] = capture_sbuf_cstr(&b, f->session_id, f->session_id_len);

    } else {
        hl[6] = 0;
    }

    if (b.failed) {
        capture_sbuf_free(&b);
        return capture_error_set(err, 500, "internal",
                                 "internal server error: out of memory");
    }

    /*
     * the reservation covers the worst case of escaping, about twice
     * what is used: given back, the blocks of a batch sit together in
     * half the heap (malloc shrinks in place), and a batch no longer
     * grows the heap past the trim threshold and page-faults it back in
     * on the next one (measured: bench-capture-build); an arena shrinks
     * its newest block in place, so any slack is worth giving back there
     */
    if (b.cap - b.len >= (b.alloc ? 1 : 512)) {
        nb = b.alloc ? b.alloc->resize(b.alloc->ctx, b.data, b.len)
                     : realloc(b.data, b.len);
        if (nb != NULL) {
            b.data = nb;
            b.cap = b.len;
        }
    }

    /* offsets of the header values: the block may have moved */
    hv[6] = b.len - hl[6];
    hv[5] = hv[6] - hl[5];
    hv[4] = hv[5] - hl[4];
    hv[3] = hv[4] - hl[3];
    hv[2] = hv[3] - hl[2];
    hv[1] = hv[2] - hl[1];
    hv[0] = hv[1] - hl[0];

    msg->topic = capture_event_topic(ctx, f->event, f->event_len);
    msg->value = b.data;
    msg->alloc = b.alloc;
    msg->key = b.data + key;

    msg->nheaders = 0;

    for (i = 0; i < 6; i++) {
        capture_msg_header_add(msg, capture_emit_headers[i].data,
                               capture_emit_headers[i].len, b.data + hv[i],
                               hl[i] - 1);
    }

    capture_msg_header_add(msg, "historical_migration",
                           sizeof("historical_migration") - 1,
                           ctx->historical ? "true" : "false",
                           ctx->historical ? 4 : 5);

    if (f->session_id) {
        msg->session_id = b.data + hv[6];
        msg->session_id_len = f->session_id_len;
    }

    msg->product_tour = f->product_tour;

    msg->token = msg->headers[0].value;
    msg->distinct_id = msg->headers[1].value;
    msg->event = msg->headers[3].value;

    /* §8: what Kafka would refuse is refused before anything is sent */
    if (req->max_message_size
        && msg->value_len + msg->key_len > req->max_message_size)
    {
        return capture_error_set(err, 413, "payload_too_large",
                                 "maximum event size exceeded: Event "
                                 "rejected by kafka during send");
    }

    return 0;
}


/* now and sent_at are the same for every event of a request */

static void
capture_event_times(capture_ctx_t *ctx)
{
    const capture_request_t  *req;

    req = ctx->req;

    if (ctx->batch_sent_at
        && eh_time_parse(ctx->batch_sent_at, ctx->batch_sent_at_len,
                         EH_TIME_PARSE_CAPTURE, &ctx->sent_at_us) == 0)
    {
        ctx->has_sent_at = 1;

    } else if (req->has_sent_at) {
        ctx->sent_at_us = req->sent_at_us;
        ctx->has_sent_at = 1;
    }

    ctx->sent_len = ctx->has_sent_at
                    ? eh_time_format_sent_at(ctx->sent_at_us, ctx->sent)
                    : 0;

    ctx->now_len = eh_time_format_now(req->now_us, ctx->now);
    ctx->times = 1;
}


/* §4.7: special names win over the historical topic */

static capture_topic_e
capture_event_topic(capture_ctx_t *ctx, const char *event, size_t len)
{
#define capture_event_is(s)                                                  \
    (len == sizeof(s) - 1 && memcmp(event, s, sizeof(s) - 1) == 0)

    if (capture_event_is("$$client_ingestion_warning")) {
        return CAPTURE_TOPIC_WARNINGS;
    }

    if (capture_event_is("$exception")) {
        return CAPTURE_TOPIC_EXCEPTIONS;
    }

    if (capture_event_is("$$heatmap")) {
        return CAPTURE_TOPIC_HEATMAPS;
    }

#undef capture_event_is

    return ctx->historical ? CAPTURE_TOPIC_HISTORICAL : CAPTURE_TOPIC_MAIN;
}


/* milliseconds since the epoch, rounded down, as decimal text */

static size_t
capture_event_ms(int64_t us, char *buf)
{
    char      tmp[24], *p;
    size_t    len;
    uint64_t  v;
    int64_t   ms;

    ms = us >= 0 ? us / 1000 : (us - 999) / 1000;

    /* the magnitude as unsigned: -INT64_MIN does not fit an int64_t */
    v = ms < 0 ? (uint64_t) 0 - (uint64_t) ms : (uint64_t) ms;

    p = tmp + sizeof(tmp);

    do {
        *--p = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    if (ms < 0) {
        *--p = '-';
    }

    len = tmp + sizeof(tmp) - p;
    memcpy(buf, p, len);
    buf[len] = '\0';

    return len;
}


void
capture_sbuf_reserve(capture_sbuf_t *b, size_t len)
{
    char    *n;
    size_t   cap;

    if (b->failed || b->len + len <= b->cap) {
        return;
    }

    if (b->cap == 0) {
        /* the first reservation is a computed size: taken as it is */
        cap = len > 512 ? len : 512;

    } else {
        cap = b->cap * 2;

        while (cap < b->len + len) {
            cap *= 2;
        }
    }

    n = b->alloc ? b->alloc->resize(b->alloc->ctx, b->data, cap)
                 : realloc(b->data, cap);
    if (n == NULL) {
        b->failed = 1;
        return;
    }

    b->data = n;
    b->cap = cap;
}


/* serde_json's escaping: '"', '\\', control characters; UTF-8 as is */

void
capture_sbuf_esc(capture_sbuf_t *b, const char *s, size_t len)
{
    char                 esc[8];
    uint64_t             x;
    const char          *start;
    const unsigned char *p, *end;
    static const char    hex[] = "0123456789abcdef";

    start = s;
    end = (const unsigned char *) s + len;

    for (p = (const unsigned char *) s; p < end; p++) {

        /* most fields have nothing to escape: eight bytes at a time */
        while (end - p >= 8) {
            memcpy(&x, p, 8);

            if (!capture_sbuf_plain8(x)) {
                break;
            }

            p += 8;
        }

        /*
         * the tail by the last eight bytes, which may overlap bytes seen
         * (a short field goes byte by byte: a narrower copy into x would
         * stall the wide load on its stores)
         */
        if (end - p < 8 && len >= 8) {
            memcpy(&x, end - 8, 8);

            if (capture_sbuf_plain8(x)) {
                break;
            }
        }

        if (*p >= 0x20 && *p != '"' && *p != '\\') {
            continue;
        }

        capture_sbuf_add(b, start, (const char *) p - start);
        start = (const char *) p + 1;

        switch (*p) {
        case '"':  capture_sbuf_add(b, "\\\"", 2); break;
        case '\\': capture_sbuf_add(b, "\\\\", 2); break;
        case '\n': capture_sbuf_add(b, "\\n", 2); break;
        case '\r': capture_sbuf_add(b, "\\r", 2); break;
        case '\t': capture_sbuf_add(b, "\\t", 2); break;
        case '\b': capture_sbuf_add(b, "\\b", 2); break;
        case '\f': capture_sbuf_add(b, "\\f", 2); break;
        default:
            esc[0] = '\\'; esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
            esc[4] = hex[*p >> 4]; esc[5] = hex[*p & 0xf];
            capture_sbuf_add(b, esc, 6);
        }
    }

    capture_sbuf_add(b, start, (const char *) end - start);
}


/*
 * 1 when none of eight bytes needs escaping: no byte below 0x20, no '"'
 * and no '\\' (the zero-byte tests of "Bit Twiddling Hacks"; a byte
 * above 0x7f only ever clears its own lane's flag)
 */

static int
capture_sbuf_plain8(uint64_t x)
{
    uint64_t  lo, hi;

    lo = 0x0101010101010101ULL;
    hi = 0x8080808080808080ULL;

    return (((x - 0x20 * lo) | ((x ^ ('"' * lo)) - lo)
             | ((x ^ ('\\' * lo)) - lo)) & ~x & hi) == 0;
}


/* name is the text up to the value's opening quote: ,"name":" */

static void
capture_sbuf_field(capture_sbuf_t *b, const char *name, size_t name_len,
    const char *value, size_t len)
{
    capture_sbuf_add(b, name, name_len);
    capture_sbuf_esc(b, value, len);
    capture_sbuf_add(b, "\"", 1);
}


/* a NUL-terminated copy; returns the bytes it took */

static size_t
capture_sbuf_cstr(capture_sbuf_t *b, const char *s, size_t len)
{
    capture_sbuf_add(b, s, len);
    capture_sbuf_add(b, "", 1);

    return len + 1;
}


static void
capture_sbuf_free(capture_sbuf_t *b)
{
    if (b->data == NULL) {
        return;
    }

    if (b->alloc) {
        b->alloc->free(b->alloc->ctx, b->data);

    } else {
        free(b->data);
    }
}
