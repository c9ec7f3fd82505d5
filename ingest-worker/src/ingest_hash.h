/*
 * Copyright (C) edgehog
 */

/*
 * FNV-1a: the string hash of the worker's open-addressing tables (the
 * fast parser's key index, the overflow buckets); short keys, no
 * adversary worth a keyed hash since a collision only costs a probe.
 */

#ifndef _INGEST_HASH_H_INCLUDED_
#define _INGEST_HASH_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


static inline uint32_t
ingest_hash(const char *s, size_t len)
{
    size_t    i;
    uint32_t  h;

    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h = (h ^ (unsigned char) s[i]) * 16777619u;
    }

    return h;
}


#endif /* _INGEST_HASH_H_INCLUDED_ */
