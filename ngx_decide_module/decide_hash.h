/*
 * Copyright (C) edgehog
 */

/*
 * PostHog's "sha1_60_v1" bucketing hash (spec/decide.md 3.1): the first
 * 60 bits of SHA-1(prefix + identifier + salt) scaled to [0, 1].
 * Pure C, no nginx headers.
 */

#ifndef _DECIDE_HASH_H_INCLUDED_
#define _DECIDE_HASH_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* identifiers are cut to this many Unicode scalar values before hashing */
#define DECIDE_HASH_ID_MAX_SCALARS  200


/* first 60 bits of SHA-1(prefix + id + salt) as an integer */
uint64_t decide_hash_n(const char *prefix, size_t prefix_len,
    const char *id, size_t id_len, const char *salt, size_t salt_len);

/* the longest prefix + id + salt decide_hash_n_batch() speeds up */
#define DECIDE_HASH_BATCH_MAX  55

/* whether decide_hash_n_batch() is faster than hashing one by one */
int decide_hash_batch_fast(void);

/*
 * decide_hash_n() of n prefixes with the same id and salt into out[];
 * much faster per hash than one by one where the CPU has SHA-NI.
 */
void decide_hash_n_batch(const char *const *prefix, const size_t *prefix_len,
    size_t n, const char *id, size_t id_len, const char *const *salt,
    const size_t *salt_len, uint64_t *out);

/*
 * hash01 of n: both operands are converted to binary64 first and divided
 * once; (double) 0xfffffffffffffff is exactly 2^60.  Rounding the exact
 * quotient instead differs in the last bit for some inputs.
 */
static inline double
decide_hash_01(uint64_t n)
{
    return (double) n / (double) 0xfffffffffffffffULL;
}

/* hash01: (double) n / (double) 0xfffffffffffffff, one binary64 division */
double decide_hash_sha1_60(const char *prefix, size_t prefix_len,
    const char *id, size_t id_len, const char *salt, size_t salt_len);

/*
 * Byte length of the first DECIDE_HASH_ID_MAX_SCALARS scalar values of
 * the UTF-8 string s; s is not validated (jansson strings are).
 */
size_t decide_hash_truncate(const char *s, size_t len);

/* rollout test: 100 short-circuits, otherwise hash01 <= pct / 100 */
int decide_hash_in_rollout(double hash01, double pct);

/*
 * Variant choice over percentages: index of the first cumulative
 * boundary (pct / 100 summed left to right) above hash01, or -1.
 */
int decide_hash_variant_index(double hash01, const double *pct, size_t n);


#endif /* _DECIDE_HASH_H_INCLUDED_ */
