/*
 * Copyright (C) edgehog
 */


#include <stdlib.h>
#include <string.h>

/*
 * SHA1_Init() and SHA1_Transform() are deprecated in OpenSSL 3 but still
 * shipped and still dispatch to the SHA-NI/AVX code; the EVP layer costs
 * more than the compression itself for these one-block inputs.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include "decide_hash.h"


/* what fits in one 64-byte block after the 0x80 and the 8-byte length */
#define DECIDE_HASH_ONE_BLOCK  55


uint64_t
decide_hash_n(const char *prefix, size_t prefix_len, const char *id,
    size_t id_len, const char *salt, size_t salt_len)
{
    size_t         len;
    uint64_t       bits;
    SHA_CTX        sha;
    unsigned char  block[64], md[SHA_DIGEST_LENGTH];

    len = prefix_len + id_len + salt_len;

    if (len <= DECIDE_HASH_ONE_BLOCK) {
        /* pad by hand (FIPS 180-4 5.1.1) and run one compression */
        memcpy(block, prefix, prefix_len);
        memcpy(block + prefix_len, id, id_len);
        memcpy(block + prefix_len + id_len, salt, salt_len);
        block[len] = 0x80;
        memset(block + len + 1, 0, 56 - len - 1);

        bits = (uint64_t) len * 8;
        block[56] = (unsigned char) (bits >> 56);
        block[57] = (unsigned char) (bits >> 48);
        block[58] = (unsigned char) (bits >> 40);
        block[59] = (unsigned char) (bits >> 32);
        block[60] = (unsigned char) (bits >> 24);
        block[61] = (unsigned char) (bits >> 16);
        block[62] = (unsigned char) (bits >> 8);
        block[63] = (unsigned char) bits;

        SHA1_Init(&sha);
        SHA1_Transform(&sha, block);

        /* SHA_CTX's h0..h4 are the big-endian words of the digest */
        return ((((uint64_t) sha.h0) << 32) | sha.h1) >> 4;
    }

    SHA1_Init(&sha);
    SHA1_Update(&sha, prefix, prefix_len);
    SHA1_Update(&sha, id, id_len);
    SHA1_Update(&sha, salt, salt_len);
    SHA1_Final(md, &sha);

    return (((uint64_t) md[0] << 56) | ((uint64_t) md[1] << 48)
            | ((uint64_t) md[2] << 40) | ((uint64_t) md[3] << 32)
            | ((uint64_t) md[4] << 24) | ((uint64_t) md[5] << 16)
            | ((uint64_t) md[6] << 8) | (uint64_t) md[7]) >> 4;
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
