/*
 * Copyright (C) edgehog
 */

/*
 * A minimal TAP producer for the pure-C unit tests, in the spirit of
 * redis's testhelp.h: prove(1) reads the output, ASan/UBSan abort on
 * memory errors, so a test binary needs nothing beyond libc.
 */

#ifndef _EDGEHOG_TAP_H_INCLUDED_
#define _EDGEHOG_TAP_H_INCLUDED_


#include <stdio.h>
#include <string.h>


static int  tap_run, tap_failed;


#define ok(cond, ...)                                                         \
    do {                                                                      \
        int  tap_c_ = (cond) ? 1 : 0;                                         \
        tap_run++;                                                            \
        if (!tap_c_) {                                                        \
            tap_failed++;                                                     \
        }                                                                     \
        printf("%sok %d - ", tap_c_ ? "" : "not ", tap_run);                  \
        printf(__VA_ARGS__);                                                  \
        printf("\n");                                                         \
        if (!tap_c_) {                                                        \
            printf("#   failed at %s line %d\n", __FILE__, __LINE__);         \
        }                                                                     \
    } while (0)

#define is_int(got, want, ...)                                                \
    do {                                                                      \
        long long  tap_g_ = (long long) (got), tap_w_ = (long long) (want);   \
        ok(tap_g_ == tap_w_, __VA_ARGS__);                                    \
        if (tap_g_ != tap_w_) {                                               \
            printf("#   got: %lld\n#   expected: %lld\n", tap_g_, tap_w_);    \
        }                                                                     \
    } while (0)

#define is_str(got, want, ...)                                                \
    do {                                                                      \
        const char  *tap_g_ = (got), *tap_w_ = (want);                        \
        int          tap_e_ = (tap_g_ && tap_w_) ? strcmp(tap_g_, tap_w_) == 0\
                                                 : tap_g_ == tap_w_;          \
        ok(tap_e_, __VA_ARGS__);                                              \
        if (!tap_e_) {                                                        \
            printf("#   got: '%s'\n#   expected: '%s'\n",                     \
                   tap_g_ ? tap_g_ : "(null)", tap_w_ ? tap_w_ : "(null)");   \
        }                                                                     \
    } while (0)

#define diag(...)                                                             \
    do { printf("# "); printf(__VA_ARGS__); printf("\n"); } while (0)

/* prints the plan at the end, so tests need not count their cases */
#define done_testing()                                                        \
    (printf("1..%d\n", tap_run), tap_failed ? 1 : 0)

/* fixtures live in ../shared beside the checkout; make passes the path */
#ifndef EDGEHOG_FIXTURES
#define EDGEHOG_FIXTURES  "../shared/fixtures"
#endif


#endif /* _EDGEHOG_TAP_H_INCLUDED_ */
