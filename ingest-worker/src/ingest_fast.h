/*
 * Copyright (C) edgehog
 */

/*
 * The fast path of message parsing: one pass over the capture message
 * without a DOM for the common event (an ordinary event name, string
 * fields, unique keys, no top-level $set).  It re-emits every property
 * in the exact text json_dumps(JSON_COMPACT) would give, so rows built
 * from it equal those of the DOM path byte for byte; anything unusual
 * is left to ingest_message_parse(), which stays the reference.
 */

#ifndef _INGEST_FAST_H_INCLUDED_
#define _INGEST_FAST_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <jansson.h>


typedef struct ingest_fast_s  ingest_fast_t;


/* a growable text buffer; failed is sticky */
typedef struct {
    char                       *data;
    size_t                      len;
    size_t                      size;
    int                         failed;
} ingest_str_t;


struct ingest_message_s;


/* a string literal */
#define ingest_str_lit(b, s)  ingest_str_add(b, s, sizeof(s) - 1)


/* ingest_str_add() when the buffer must grow (or has failed) */
void ingest_str_add_grow(ingest_str_t *b, const char *s, size_t len);

/*
 * inline: a row or a canonical text is built from ~90 adds per event,
 * most of them a few bytes that fit, and a literal's copy inlined is a
 * store (bench-worker-build: 25.7k -> 23.0k instructions/event)
 */
static inline void
ingest_str_add(ingest_str_t *b, const char *s, size_t len)
{
    if (b->len + len + 1 <= b->size && !b->failed) {
        memcpy(b->data + b->len, s, len);
        b->len += len;
        b->data[b->len] = '\0';
        return;
    }

    ingest_str_add_grow(b, s, len);
}

int ingest_str_reserve(ingest_str_t *b, size_t n);

void ingest_str_add_int(ingest_str_t *b, int64_t v);

/* s (valid UTF-8) as a JSON string, escaped as jansson's dump does */
void ingest_str_add_json(ingest_str_t *b, const char *s, size_t len);

/*
 * 1: m is filled in fast mode (m->fast set, m->root NULL); 0: the
 * message is not eligible, m is untouched; -1: no memory.
 */
int ingest_fast_parse(struct ingest_message_s *m, const char *value,
    size_t len);

/* ingest_message_prepare() of a fast-mode message */
int ingest_fast_prepare(struct ingest_message_s *m, int anonymize_ips,
    int force_personless);

/*
 * The final properties text of the events row; groups = 0 leaves out
 * $group_0..4 (personless rows).  0 or -1.
 */
int ingest_fast_properties(const ingest_fast_t *f, int groups,
    ingest_str_t *out);

/* $process_person_profile: false in the event (forced or not) */
int ingest_fast_personless(const ingest_fast_t *f);

/* elements_chain of the row: $elements_chain as sent, or "" */
const char *ingest_fast_elements_chain(const ingest_fast_t *f, size_t *len);

void ingest_fast_free(ingest_fast_t *f);


#endif /* _INGEST_FAST_H_INCLUDED_ */
