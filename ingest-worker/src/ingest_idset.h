/*
 * Copyright (C) edgehog
 */

/*
 * A set of team:distinct_id (spec/ingestion.md §3.8: the personless ids
 * this process has written), holding copies of the ids.  Bounded like
 * the JSON object it replaces: at max entries it is forgotten wholesale
 * before the next one goes in.  Pure C.
 */

#ifndef _INGEST_IDSET_H_INCLUDED_
#define _INGEST_IDSET_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


typedef struct ingest_idset_s  ingest_idset_t;


ingest_idset_t *ingest_idset_new(size_t max);
void ingest_idset_free(ingest_idset_t *s);
size_t ingest_idset_size(const ingest_idset_t *s);

/* 1 when team_id:id[0..len) is in the set */
int ingest_idset_has(const ingest_idset_t *s, int64_t team_id,
    const char *id, size_t len);

/* 0, or -1 when out of memory (the set is then as before, or empty) */
int ingest_idset_add(ingest_idset_t *s, int64_t team_id, const char *id,
    size_t len);


#endif /* _INGEST_IDSET_H_INCLUDED_ */
