/*
 * Copyright (C) edgehog
 */


#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <openssl/evp.h>

#include "decide_hash.h"


static void decide_hash_init(void);
static EVP_MD_CTX *decide_hash_ctx(void);


/*
 * OpenSSL 3's one-shot SHA1() fetches the implementation on every call,
 * with locks and reference counting: a quarter of a 20-flag evaluation.
 * The algorithm is fetched once per process and each thread keeps one
 * context (requests evaluate on the nginx thread, snapshots are built in
 * pool threads); these statics are that cache.  A thread's context lives
 * as long as the thread.
 */
static EVP_MD                  *decide_hash_md;
static pthread_once_t           decide_hash_once = PTHREAD_ONCE_INIT;
static __thread EVP_MD_CTX     *decide_hash_tls_ctx;


static void
decide_hash_init(void)
{
    decide_hash_md = EVP_MD_fetch(NULL, "SHA1", NULL);
}


static EVP_MD_CTX *
decide_hash_ctx(void)
{
    pthread_once(&decide_hash_once, decide_hash_init);

    if (decide_hash_md == NULL) {
        return NULL;
    }

    if (decide_hash_tls_ctx == NULL) {
        decide_hash_tls_ctx = EVP_MD_CTX_new();
    }

    return decide_hash_tls_ctx;
}


uint64_t
decide_hash_n(const char *prefix, size_t prefix_len, const char *id,
    size_t id_len, const char *salt, size_t salt_len)
{
    uint64_t        n;
    unsigned int    mdlen;
    EVP_MD_CTX     *ctx;
    unsigned char   md[EVP_MAX_MD_SIZE];

    ctx = decide_hash_ctx();

    /* the parts are hashed in place: no concatenation, no allocation */
    if (ctx == NULL
        || EVP_DigestInit_ex2(ctx, decide_hash_md, NULL) != 1
        || EVP_DigestUpdate(ctx, prefix, prefix_len) != 1
        || EVP_DigestUpdate(ctx, id, id_len) != 1
        || EVP_DigestUpdate(ctx, salt, salt_len) != 1
        || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
    {
        /* a failure (out of memory) buckets into the last slot */
        return 0xfffffffffffffffULL;
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
