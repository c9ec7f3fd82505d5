/*
 * Copyright (C) edgehog
 */


#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>

#include "decide_hash.h"


/* inputs above this size (very long flag keys) use the heap */
#define DECIDE_HASH_BUF  512


uint64_t
decide_hash_n(const char *prefix, size_t prefix_len, const char *id,
    size_t id_len, const char *salt, size_t salt_len)
{
    size_t          len;
    uint64_t        n;
    unsigned char  *p, *in, buf[DECIDE_HASH_BUF];
    unsigned char   md[SHA_DIGEST_LENGTH];

    len = prefix_len + id_len + salt_len;

    if (len <= sizeof(buf)) {
        in = buf;

    } else {
        in = malloc(len);
        if (in == NULL) {
            /* an allocation failure buckets into the last slot */
            return 0xfffffffffffffffULL;
        }
    }

    p = in;

    /* memcpy() with a NULL source is undefined even for zero bytes */
    if (prefix_len) {
        memcpy(p, prefix, prefix_len);
        p += prefix_len;
    }

    if (id_len) {
        memcpy(p, id, id_len);
        p += id_len;
    }

    if (salt_len) {
        memcpy(p, salt, salt_len);
    }

    /* the one-shot SHA1() is not deprecated in OpenSSL 3, SHA1_Init() is */
    SHA1(in, len, md);

    if (in != buf) {
        free(in);
    }

    n = ((uint64_t) md[0] << 56) | ((uint64_t) md[1] << 48)
        | ((uint64_t) md[2] << 40) | ((uint64_t) md[3] << 32)
        | ((uint64_t) md[4] << 24) | ((uint64_t) md[5] << 16)
        | ((uint64_t) md[6] << 8) | (uint64_t) md[7];

    return n >> 4;
}


double
decide_hash_sha1_60(const char *prefix, size_t prefix_len, const char *id,
    size_t id_len, const char *salt, size_t salt_len)
{
    uint64_t  n;

    n = decide_hash_n(prefix, prefix_len, id, id_len, salt, salt_len);

    /*
     * Both operands are converted to binary64 first and divided once;
     * (double) 0xfffffffffffffff is exactly 2^60.  Rounding the exact
     * quotient instead differs in the last bit for some inputs.
     */
    return (double) n / (double) 0xfffffffffffffffULL;
}


size_t
decide_hash_truncate(const char *s, size_t len)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        /* count lead bytes only: continuation bytes are 10xxxxxx */
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            if (n == DECIDE_HASH_ID_MAX_SCALARS) {
                return i;
            }

            n++;
        }
    }

    return len;
}


int
decide_hash_in_rollout(double hash01, double pct)
{
    if (pct == 100.0) {
        return 1;
    }

    return hash01 <= pct / 100.0;
}


int
decide_hash_variant_index(double hash01, const double *pct, size_t n)
{
    size_t  i;
    double  cum;

    cum = 0.0;

    for (i = 0; i < n; i++) {
        cum += pct[i] / 100.0;

        if (hash01 < cum) {
            return (int) i;
        }
    }

    return -1;
}
