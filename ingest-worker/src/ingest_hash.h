/*
 * Copyright (C) edgehog
 */

/*
 * The string hash of the worker's open-addressing tables (the
 * fast parser's key index, the overflow buckets); short keys, no
 * adversary worth a keyed hash since a collision only costs a probe.
 */

#ifndef _INGEST_HASH_H_INCLUDED_
#define _INGEST_HASH_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <string.h>


/*
 * 8 bytes per step (a multiply and a shift each), not FNV-1a's multiply
 * per byte: the overflow plan hashes every "token:distinct_id" of a
 * batch, the parser every property name.  Values only place entries in
 * tables and flag possible duplicates (checked again byte by byte), so
 * nothing outside depends on them.
 */

static inline uint32_t
ingest_hash(const char *s, size_t len)
{
    size_t    i;
    uint64_t  h, w;

    h = 0x9e3779b97f4a7c15ULL ^ len;

    while (len >= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
        s += 8;
        len -= 8;
    }

    if (len) {
        w = 0;

        for (i = 0; i < len; i++) {
            w |= (uint64_t) (unsigned char) s[i] << (i * 8);
        }

        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
    }

    h *= 0x94d049bb133111ebULL;
    h ^= h >> 32;

    return (uint32_t) h;
}


#endif /* _INGEST_HASH_H_INCLUDED_ */
