/*
 * Copyright (C) edgehog
 */

/*
 * Base64 decoding for capture payloads (spec/capture.md §2.3, §2.8).
 *
 * Strict mode reproduces capture-rs (base64 crate STANDARD engine):
 * canonical padding required, no whitespace, zero trailing bits.
 * Lenient mode reproduces Django's forgiving decoder: whitespace is
 * skipped, missing '=' padding is repaired, both alphabets are accepted
 * and non-zero trailing bits are ignored.
 */

#ifndef _CAPTURE_BASE64_H_INCLUDED_
#define _CAPTURE_BASE64_H_INCLUDED_


#include <stddef.h>
#include <sys/types.h>


/* decode flags */
#define CAPTURE_BASE64_STRICT      0x01
/* strict only: '-' and '_' replace '+' and '/' (lenient takes both) */
#define CAPTURE_BASE64_URL         0x02
/* lenient only: ' ' means '+' (form bodies that did not escape '+') */
#define CAPTURE_BASE64_SPACE_PLUS  0x04

/* is_likely_base64() modes of capture-rs utils.rs */
#define CAPTURE_BASE64_LIKELY_STRICT  0
#define CAPTURE_BASE64_LIKELY_LOOSE   1
#define CAPTURE_BASE64_LIKELY_URL     2

/* how many leading bytes the detection samples, as capture-rs */
#define CAPTURE_BASE64_SAMPLE      128


/* an upper bound of the decoded size of len input bytes */
size_t capture_base64_decoded_len(size_t len);

/*
 * Decodes src into dst, which must hold capture_base64_decoded_len(len)
 * bytes; dst may equal src (decoding never overtakes the input).
 * Returns 0 and sets *dst_len, or -1 on invalid input.
 */
int capture_base64_decode(u_char *dst, size_t *dst_len, const u_char *src,
    size_t len, unsigned flags);

/* 1 if the payload "looks like base64" per spec §2.3, else 0 */
int capture_base64_is_likely(const u_char *p, size_t len, int mode);


#endif /* _CAPTURE_BASE64_H_INCLUDED_ */
