/*
 * Copyright (C) edgehog
 */


#include <stdlib.h>
#include <string.h>
#if (__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

/*
 * SHA1_Init() and SHA1_Transform() are deprecated in OpenSSL 3 but still
 * shipped and still dispatch to the SHA-NI/AVX code; the EVP layer costs
 * more than the compression itself for these one-block inputs.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include "decide_hash.h"


/* what fits in one 64-byte block after the 0x80 and the 8-byte length */
#define DECIDE_HASH_ONE_BLOCK  DECIDE_HASH_BATCH_MAX

/*
 * Blocks hashed side by side, up to 16: with AVX-512 as 32-bit lanes of
 * plain SHA-1 arithmetic (8 on 256-bit registers, 16 on 512-bit ones),
 * else (and for a few) two at a time with SHA-NI, whose single-block
 * speed SHA1RNDS4's latency bounds.  Two SHA-NI chains keep all their
 * state in the 16 registers SHA-NI can use; four spilled and were
 * slower.  The lanes are latency-bound too: 16 lanes took 150 ns, 8
 * lanes 145 ns, two interleaved 16-lane chains (32) 277 ns, so 16 is
 * where more lanes stop being free (micro-benchmark, this Xeon).  In
 * the nginx worker (session 7, clock_gettime around the batch, bench
 * team: 27 hashes per /flags request) 16 lanes took 0.72-0.92 us, 8
 * lanes 0.68-0.77 us (same within noise), SHA-NI pairs 1.70-1.76 us;
 * leaving out decide_hash_block_avx512()'s masked salt load when the
 * salt is empty (where perf put half the block's samples) changed
 * nothing measurable either, so neither was kept.
 */
#define DECIDE_HASH_LANES      16


static void decide_hash_block(unsigned char *block, const char *prefix,
    size_t prefix_len, const char *id, size_t id_len, const char *salt,
    size_t salt_len);
#if (__x86_64__)
static int decide_hash_shani(void);
static int decide_hash_avx512vl(void);
static void decide_hash_flush(unsigned char *blocks, size_t k,
    uint64_t *out);
static void decide_hash_shani_x2(const unsigned char *blocks,
    uint64_t *out);
static void decide_hash_avx512vl_x8(const unsigned char *blocks,
    uint64_t *out);
static int decide_hash_avx512bw(void);
static void decide_hash_avx512_x16(const unsigned char *blocks,
    uint64_t *out);
static void decide_hash_block_avx512(unsigned char *block,
    const char *prefix, size_t prefix_len, const char *id, size_t id_len,
    const char *salt, size_t salt_len);
#endif


/* the padded single block of a message of at most 55 bytes */
static void
decide_hash_block(unsigned char *block, const char *prefix,
    size_t prefix_len, const char *id, size_t id_len, const char *salt,
    size_t salt_len)
{
    size_t    len;
    uint64_t  bits;

    len = prefix_len + id_len + salt_len;

    /* pad by hand (FIPS 180-4 5.1.1) */
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
}


uint64_t
decide_hash_n(const char *prefix, size_t prefix_len, const char *id,
    size_t id_len, const char *salt, size_t salt_len)
{
    size_t         len;
    SHA_CTX        sha;
    unsigned char  block[64], md[SHA_DIGEST_LENGTH];

    len = prefix_len + id_len + salt_len;

    if (len <= DECIDE_HASH_ONE_BLOCK) {
        /* one compression */
        decide_hash_block(block, prefix, prefix_len, id, id_len, salt,
                          salt_len);

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


int
decide_hash_batch_fast(void)
{
#if (__x86_64__)
    return decide_hash_shani();
#else
    return 0;
#endif
}


/*
 * decide_hash_n() of n messages that share id and salt, such as the
 * rollout hashes of every flag for one distinct id: with SHA-NI the
 * one-block ones go DECIDE_HASH_LANES at a time through interleaved
 * compressions, which cost about as much as one alone.
 */
void
decide_hash_n_batch(const char *const *prefix, const size_t *prefix_len,
    size_t n, const char *id, size_t id_len, const char *const *salt,
    const size_t *salt_len, uint64_t *out)
{
    size_t         i, j, k, lane[DECIDE_HASH_LANES];
    uint64_t       h[DECIDE_HASH_LANES];
    unsigned char  blocks[DECIDE_HASH_LANES * 64];

#if (__x86_64__)

    if (decide_hash_shani()) {
        k = 0;

        for (i = 0; i < n; i++) {
            if (prefix_len[i] + id_len + salt_len[i]
                > DECIDE_HASH_ONE_BLOCK)
            {
                out[i] = decide_hash_n(prefix[i], prefix_len[i], id, id_len,
                                       salt[i], salt_len[i]);

            } else if (decide_hash_avx512bw()) {
                decide_hash_block_avx512(blocks + k * 64, prefix[i],
                                         prefix_len[i], id, id_len, salt[i],
                                         salt_len[i]);
                lane[k++] = i;

            } else {
                decide_hash_block(blocks + k * 64, prefix[i], prefix_len[i],
                                  id, id_len, salt[i], salt_len[i]);
                lane[k++] = i;
            }

            if (k == DECIDE_HASH_LANES || (k && i == n - 1)) {
                decide_hash_flush(blocks, k, h);

                for (j = 0; j < k; j++) {
                    out[lane[j]] = h[j];
                }

                k = 0;
            }
        }

        return;
    }

#endif

    (void) j;
    (void) k;
    (void) lane;
    (void) h;
    (void) blocks;

    for (i = 0; i < n; i++) {
        out[i] = decide_hash_n(prefix[i], prefix_len[i], id, id_len, salt[i],
                               salt_len[i]);
    }
}


#if (__x86_64__)

/* the 60 bits of each of k padded blocks: eight lanes pay from five on */
static void
decide_hash_flush(unsigned char *blocks, size_t k, uint64_t *out)
{
    size_t    j;
    uint64_t  h[2];

    if (k > 8 && decide_hash_avx512bw()) {
        for (j = k; j < 16; j++) {
            memcpy(blocks + j * 64, blocks, 64);
        }

        decide_hash_avx512_x16(blocks, out);
        return;
    }

    if (k > 8) {
        decide_hash_flush(blocks, 8, out);
        decide_hash_flush(blocks + 8 * 64, k - 8, out + 8);
        return;
    }

    if (k > 4 && decide_hash_avx512vl()) {
        /* idle lanes hash a copy of the first block */
        for (j = k; j < 8; j++) {
            memcpy(blocks + j * 64, blocks, 64);
        }

        decide_hash_avx512vl_x8(blocks, out);
        return;
    }

    for (j = 0; j < k; j += 2) {
        if (j + 1 == k) {
            memcpy(blocks + (j + 1) * 64, blocks + j * 64, 64);
        }

        decide_hash_shani_x2(blocks + j * 64, h);

        out[j] = h[0];

        if (j + 1 < k) {
            out[j + 1] = h[1];
        }
    }
}


/*
 * Whether the CPU and the kernel let us use AVX-512F/VL on 256-bit
 * registers (the OS saves the opmask and upper register state).  A
 * static for the reason decide_hash_shani() gives.
 */
static int
decide_hash_avx512vl(void)
{
    unsigned int  a, b, c, d, lo, hi;
    static int    has = -1;

    if (has < 0) {
        has = 0;

        if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE)
            && __get_cpuid_count(7, 0, &a, &b, &c, &d)
            && (b & bit_AVX512F) && (b & bit_AVX512VL))
        {
            __asm__ volatile ("xgetbv" : "=a" (lo), "=d" (hi) : "c" (0));
            has = (lo & 0xe6) == 0xe6;
        }
    }

    return has;
}


/*
 * Eight padded blocks as eight lanes of FIPS 180-4 SHA-1 on 256-bit
 * registers: AVX-512VL gives the rotates (VPROLD) and the round
 * functions and three-way xors (VPTERNLOGD) in one instruction each.
 * The words of the blocks are gathered across lanes and byte-swapped.
 */

#define decide_hash_lanes(W, from, to, fn, kk)                                \
    _Pragma("GCC unroll 20")                                                  \
    for (t = from; t < to; t++) {                                             \
        if (t >= 16) {                                                        \
            w[t & 15] = W##_rol_epi32(W##_xor_epi32(                          \
                            W##_ternarylogic_epi32(w[(t - 3) & 15],           \
                                                   w[(t - 8) & 15],           \
                                                   w[(t - 14) & 15],          \
                                                   0x96),                     \
                            w[t & 15]), 1);                                   \
        }                                                                     \
        x = W##_add_epi32(                                                    \
                W##_add_epi32(W##_rol_epi32(a, 5),                            \
                              W##_ternarylogic_epi32(b, c, d, fn)),           \
                W##_add_epi32(W##_add_epi32(e, W##_set1_epi32(kk)),           \
                              w[t & 15]));                                    \
        e = d;                                                                \
        d = c;                                                                \
        c = W##_rol_epi32(b, 30);                                             \
        b = a;                                                                \
        a = x;                                                                \
    }


__attribute__((target("avx2,avx512f,avx512vl")))
static void
decide_hash_avx512vl_x8(const unsigned char *blocks, uint64_t *out)
{
    int       t, l;
    uint32_t  ha[8], hb[8];
    __m256i   w[16], a, b, c, d, e, x, idx, swap;

    /* block l's word t is at int offset 16 * l + t */
    idx = _mm256_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112);
    swap = _mm256_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8,
                            15, 14, 13, 12, 3, 2, 1, 0, 7, 6, 5, 4,
                            11, 10, 9, 8, 15, 14, 13, 12);

    _Pragma("GCC unroll 16")
    for (t = 0; t < 16; t++) {
        w[t] = _mm256_shuffle_epi8(_mm256_i32gather_epi32(
                   (const int *) (blocks + 4 * t), idx, 4), swap);
    }

    a = _mm256_set1_epi32(0x67452301);
    b = _mm256_set1_epi32((int) 0xefcdab89);
    c = _mm256_set1_epi32((int) 0x98badcfe);
    d = _mm256_set1_epi32(0x10325476);
    e = _mm256_set1_epi32((int) 0xc3d2e1f0);

    /* Ch, parity, majority, parity as VPTERNLOGD truth tables */
    decide_hash_lanes(_mm256, 0, 20, 0xca, 0x5a827999);
    decide_hash_lanes(_mm256, 20, 40, 0x96, 0x6ed9eba1);
    decide_hash_lanes(_mm256, 40, 60, 0xe8, (int) 0x8f1bbcdc);
    decide_hash_lanes(_mm256, 60, 80, 0x96, (int) 0xca62c1d6);

    /* h0 and h1 are all the 60 bits need */
    _mm256_storeu_si256((__m256i *) ha,
                        _mm256_add_epi32(a, _mm256_set1_epi32(0x67452301)));
    _mm256_storeu_si256((__m256i *) hb,
                        _mm256_add_epi32(b,
                                         _mm256_set1_epi32((int) 0xefcdab89)));

    for (l = 0; l < 8; l++) {
        out[l] = (((uint64_t) ha[l] << 32) | hb[l]) >> 4;
    }
}


/* whether AVX-512F/BW on 512-bit registers is usable, as above */
static int
decide_hash_avx512bw(void)
{
    unsigned int  a, b, c, d;
    static int    has = -1;

    if (has < 0) {
        has = decide_hash_avx512vl()
              && __get_cpuid_count(7, 0, &a, &b, &c, &d)
              && (b & bit_AVX512BW);
    }

    return has;
}


/*
 * decide_hash_block() in one 512-bit register: each part is a masked
 * load at its offset (bytes outside the mask are not read, so the
 * loads never reach past a part's end), then the 0x80 and the bit
 * length, which fits the last two bytes for one-block messages.  Three
 * short memcpy() calls and a memset() per block were a quarter of the
 * batch's time (decide_engine).
 */
__attribute__((target("avx512f,avx512bw")))
static void
decide_hash_block_avx512(unsigned char *block, const char *prefix,
    size_t prefix_len, const char *id, size_t id_len, const char *salt,
    size_t salt_len)
{
    size_t     len, at;
    __m512i    v;
    uintptr_t  base;

    len = prefix_len + id_len + salt_len;

    v = _mm512_maskz_loadu_epi8(((uint64_t) 1 << prefix_len) - 1, prefix);

    /* each part's bytes at [at, at + n): the load starts at part - at */
    at = prefix_len;
    base = (uintptr_t) id - at;
    v = _mm512_mask_loadu_epi8(v, (((uint64_t) 1 << id_len) - 1) << at,
                               (const void *) base);

    at += id_len;
    base = (uintptr_t) salt - at;
    v = _mm512_mask_loadu_epi8(v, (((uint64_t) 1 << salt_len) - 1) << at,
                               (const void *) base);

    v = _mm512_mask_set1_epi8(v, (uint64_t) 1 << len, (char) 0x80);
    v = _mm512_mask_set1_epi8(v, (uint64_t) 1 << 62, (char) (len * 8 >> 8));
    v = _mm512_mask_set1_epi8(v, (uint64_t) 1 << 63, (char) (len * 8));

    _mm512_storeu_si512(block, v);
}


/*
 * decide_hash_avx512vl_x8() on 512-bit registers: sixteen lanes (the
 * rounds are the same macro, on _mm512 intrinsics)
 */


__attribute__((target("avx2,avx512f,avx512bw")))
static void
decide_hash_avx512_x16(const unsigned char *blocks, uint64_t *out)
{
    int       t, l;
    uint32_t  ha[16], hb[16];
    __m512i   w[16], a, b, c, d, e, x, idx, swap;

    idx = _mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160,
                            176, 192, 208, 224, 240);
    swap = _mm512_broadcast_i32x4(_mm_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4,
                                                11, 10, 9, 8, 15, 14, 13,
                                                12));

    _Pragma("GCC unroll 16")
    for (t = 0; t < 16; t++) {
        w[t] = _mm512_shuffle_epi8(_mm512_i32gather_epi32(idx,
                   (const int *) (blocks + 4 * t), 4), swap);
    }

    a = _mm512_set1_epi32(0x67452301);
    b = _mm512_set1_epi32((int) 0xefcdab89);
    c = _mm512_set1_epi32((int) 0x98badcfe);
    d = _mm512_set1_epi32(0x10325476);
    e = _mm512_set1_epi32((int) 0xc3d2e1f0);

    decide_hash_lanes(_mm512, 0, 20, 0xca, 0x5a827999);
    decide_hash_lanes(_mm512, 20, 40, 0x96, 0x6ed9eba1);
    decide_hash_lanes(_mm512, 40, 60, 0xe8, (int) 0x8f1bbcdc);
    decide_hash_lanes(_mm512, 60, 80, 0x96, (int) 0xca62c1d6);

    _mm512_storeu_si512(ha, _mm512_add_epi32(a,
                                      _mm512_set1_epi32(0x67452301)));
    _mm512_storeu_si512(hb, _mm512_add_epi32(b,
                                      _mm512_set1_epi32((int) 0xefcdab89)));

    for (l = 0; l < 16; l++) {
        out[l] = (((uint64_t) ha[l] << 32) | hb[l]) >> 4;
    }
}


/*
 * Whether the CPU has SHA-NI (and the SSSE3/SSE4.1 the code around it
 * uses).  A static because CPUID is slow and the answer never changes:
 * threads racing on the first call store the same value.
 */
static int
decide_hash_shani(void)
{
    unsigned int  a, b, c, d;
    static int    has = -1;

    if (has < 0) {
        has = __get_cpuid(1, &a, &b, &c, &d)
              && (c & bit_SSSE3) && (c & bit_SSE4_1)
              && __get_cpuid_count(7, 0, &a, &b, &c, &d)
              && (b & bit_SHA);
    }

    return has;
}


/*
 * Two padded blocks through SHA-1 side by side (the SHA-NI sequence of
 * Intel's "New Instructions Supporting the Secure Hash Algorithm on
 * Intel Architecture Processors"), each from the initial state; out[l]
 * gets the first 60 bits of digest l.  The two chains are independent,
 * so the CPU overlaps their SHA1RNDS4 latencies.
 */

#define decide_hash_x2(stmt)                                                  \
    { int l = 0; stmt; } { int l = 1; stmt; }

/* rounds 4g..4g+3; W for them is in m[l][g % 4] */
#define decide_hash_rounds(g)                                                 \
    decide_hash_x2(                                                           \
        if ((g) >= 4) {                                                       \
            m[l][(g) % 4] = _mm_sha1msg2_epu32(                               \
                _mm_xor_si128(_mm_sha1msg1_epu32(m[l][(g) % 4],               \
                                                 m[l][((g) + 1) % 4]),        \
                              m[l][((g) + 2) % 4]),                           \
                m[l][((g) + 3) % 4]);                                         \
        }                                                                     \
        e[l] = ((g) == 0) ? _mm_add_epi32(e[l], m[l][0])                      \
                          : _mm_sha1nexte_epu32(prev[l], m[l][(g) % 4]);      \
        prev[l] = abcd[l];                                                    \
        abcd[l] = _mm_sha1rnds4_epu32(abcd[l], e[l], (g) / 5))


__attribute__((target("sha,ssse3,sse4.1")))
static void
decide_hash_shani_x2(const unsigned char *blocks, uint64_t *out)
{
    __m128i  abcd[2], e[2], prev[2], m[2][4], init, mask;

    /* h0 in the top lane, h3 in the bottom one; e (h4) alone on top */
    init = _mm_set_epi32(0x67452301, (int) 0xefcdab89, (int) 0x98badcfe,
                         0x10325476);
    mask = _mm_set_epi64x(0x0001020304050607ULL, 0x08090a0b0c0d0e0fULL);

    decide_hash_x2(
        abcd[l] = init;
        e[l] = _mm_set_epi32((int) 0xc3d2e1f0, 0, 0, 0);
        prev[l] = init;
        m[l][0] = _mm_shuffle_epi8(_mm_loadu_si128(
                      (const __m128i *) (blocks + l * 64)), mask);
        m[l][1] = _mm_shuffle_epi8(_mm_loadu_si128(
                      (const __m128i *) (blocks + l * 64 + 16)), mask);
        m[l][2] = _mm_shuffle_epi8(_mm_loadu_si128(
                      (const __m128i *) (blocks + l * 64 + 32)), mask);
        m[l][3] = _mm_shuffle_epi8(_mm_loadu_si128(
                      (const __m128i *) (blocks + l * 64 + 48)), mask))

    decide_hash_rounds(0);
    decide_hash_rounds(1);
    decide_hash_rounds(2);
    decide_hash_rounds(3);
    decide_hash_rounds(4);
    decide_hash_rounds(5);
    decide_hash_rounds(6);
    decide_hash_rounds(7);
    decide_hash_rounds(8);
    decide_hash_rounds(9);
    decide_hash_rounds(10);
    decide_hash_rounds(11);
    decide_hash_rounds(12);
    decide_hash_rounds(13);
    decide_hash_rounds(14);
    decide_hash_rounds(15);
    decide_hash_rounds(16);
    decide_hash_rounds(17);
    decide_hash_rounds(18);
    decide_hash_rounds(19);

    /* h0 and h1 are all the 60 bits need; e is not finished */
    decide_hash_x2(
        abcd[l] = _mm_add_epi32(abcd[l], init);
        out[l] = (((uint64_t) (uint32_t) _mm_extract_epi32(abcd[l], 3)
                   << 32)
                  | (uint32_t) _mm_extract_epi32(abcd[l], 2)) >> 4)
}

#endif


double
decide_hash_sha1_60(const char *prefix, size_t prefix_len, const char *id,
    size_t id_len, const char *salt, size_t salt_len)
{
    uint64_t  n;

    n = decide_hash_n(prefix, prefix_len, id, id_len, salt, salt_len);

    return decide_hash_01(n);
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
