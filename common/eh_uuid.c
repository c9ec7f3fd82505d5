/*
 * Copyright (C) edgehog
 */


#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <strings.h>

#include <pthread.h>
#include <openssl/evp.h>

#include "eh_uuid.h"


static int eh_uuid_hex(unsigned char ch);


/*
 * Accepts what the Rust uuid crate's parse_str() accepts, since that is
 * what capture-rs validates with: hyphenated (8-4-4-4-12), simple (32
 * hex), braced {hyphenated} and urn:uuid:hyphenated, any case.
 */

int
eh_uuid_parse(const char *s, size_t len, unsigned char out[16])
{
    int     hi, lo;
    size_t  i, n;

    if (len == 45 && strncasecmp(s, "urn:uuid:", 9) == 0) {
        s += 9;
        len -= 9;

    } else if (len == 38 && s[0] == '{' && s[37] == '}') {
        s++;
        len -= 2;
    }

    if (len != 36 && len != 32) {
        return -1;
    }

    n = 0;

    for (i = 0; i < len; ) {
        if (len == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (s[i] != '-') {
                return -1;
            }

            i++;
            continue;
        }

        hi = eh_uuid_hex((unsigned char) s[i]);
        lo = eh_uuid_hex((unsigned char) s[i + 1]);

        if (hi < 0 || lo < 0) {
            return -1;
        }

        out[n++] = (unsigned char) (hi << 4 | lo);
        i += 2;
    }

    return 0;
}


void
eh_uuid_format(const unsigned char u[16], char out[EH_UUID_STR_LEN + 1])
{
    int                i;
    char              *p;
    static const char  hex[] = "0123456789abcdef";

    p = out;

    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            *p++ = '-';
        }

        *p++ = hex[u[i] >> 4];
        *p++ = hex[u[i] & 0x0f];
    }

    *p = '\0';
}


void
eh_uuid_v7(uint64_t ms, const unsigned char rnd[10], unsigned char out[16])
{
    int  i;

    /* 48-bit big-endian unix milliseconds (RFC 9562 §5.7) */
    for (i = 0; i < 6; i++) {
        out[i] = (unsigned char) (ms >> (40 - 8 * i));
    }

    memcpy(out + 6, rnd, 10);

    out[6] = (unsigned char) (0x70 | (out[6] & 0x0f));
    out[8] = (unsigned char) (0x80 | (out[8] & 0x3f));
}


/*
 * EVP_sha1() makes OpenSSL 3 look the implementation up on every
 * EVP_DigestInit_ex(), which cost as much as the hash: fetched once
 */

static EVP_MD  *eh_uuid_sha1;


static void
eh_uuid_sha1_fetch(void)
{
    eh_uuid_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
}


void
eh_uuid_v5(const unsigned char ns[16], const char *name, size_t len,
    unsigned char out[16])
{
    static pthread_once_t  once = PTHREAD_ONCE_INIT;

    /*
     * one context per thread, initialised again for every hash: a
     * new and freed one per call cost a quarter of the time (the worker
     * hashes every personless event's distinct id)
     */
    static __thread EVP_MD_CTX  *ctx;

    unsigned int    n;
    unsigned char   md[EVP_MAX_MD_SIZE];

    /*
     * EVP_MD_CTX_new() fails only when out of memory; the void API then
     * yields a fixed, still well-formed UUID rather than garbage
     */
    memset(md, 0, sizeof(md));

    (void) pthread_once(&once, eh_uuid_sha1_fetch);

    if (ctx == NULL) {
        ctx = EVP_MD_CTX_new();
    }

    if (ctx != NULL) {
        if (EVP_DigestInit_ex(ctx, eh_uuid_sha1 ? eh_uuid_sha1 : EVP_sha1(),
                              NULL) != 1
            || EVP_DigestUpdate(ctx, ns, 16) != 1
            || EVP_DigestUpdate(ctx, name, len) != 1
            || EVP_DigestFinal_ex(ctx, md, &n) != 1)
        {
            memset(md, 0, sizeof(md));
        }
    }

    memcpy(out, md, 16);

    out[6] = (unsigned char) (0x50 | (out[6] & 0x0f));
    out[8] = (unsigned char) (0x80 | (out[8] & 0x3f));
}


static int
eh_uuid_hex(unsigned char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }

    ch |= 0x20;

    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }

    return -1;
}
