/*
 * Copyright (C) edgehog
 */

/*
 * LZString.decompressFromBase64() of the lz-string JS library, as used by
 * posthog-js "compression=lz64" (spec/capture.md §2.6 step 2), producing
 * UTF-8.  Memory is bounded: the UTF-16 output is capped at max_size
 * code units and dictionary entries are 8-byte (offset, length)
 * references into that output, so nothing grows quadratically.  Peak
 * use is 2 bytes per output unit, 8 bytes per dictionary entry (at most
 * two per code read, so at most 2 * min(max_size, 8 * len / 3)), plus
 * the UTF-8 result.
 */

#ifndef _CAPTURE_LZSTRING_H_INCLUDED_
#define _CAPTURE_LZSTRING_H_INCLUDED_


#include <stddef.h>
#include <sys/types.h>

#include "capture_alloc.h"


#define CAPTURE_LZ_OK          0
/* bad character, bad dictionary code, or input ended before the end mark */
#define CAPTURE_LZ_EINVAL     -1
/* the UTF-8 result would exceed max_size bytes */
#define CAPTURE_LZ_ETOOLARGE  -2
#define CAPTURE_LZ_ENOMEM     -3
/* a lone UTF-16 surrogate, only with CAPTURE_LZ_STRICT_UTF16 */
#define CAPTURE_LZ_EUTF16     -4

/* lone surrogates are an error (capture-rs String::from_utf16) */
#define CAPTURE_LZ_STRICT_UTF16  0x01
/* ' ' reads as '+' (Django turned form-decoded spaces back into '+') */
#define CAPTURE_LZ_SPACE_PLUS    0x02


/*
 * On CAPTURE_LZ_OK *out is allocated with a->alloc, holds *out_len bytes
 * of UTF-8 plus a NUL (not counted), and belongs to the caller.  By
 * default lone surrogates become U+FFFD, as a browser's TextEncoder does.
 */
int capture_lzstring_decompress_base64(const u_char *in, size_t len,
    size_t max_size, unsigned flags, const capture_alloc_t *a, u_char **out,
    size_t *out_len);

/* a static message for an error code, for logs and error bodies */
const char *capture_lzstring_strerror(int rc);


#endif /* _CAPTURE_LZSTRING_H_INCLUDED_ */
