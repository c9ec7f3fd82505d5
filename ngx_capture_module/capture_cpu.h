/*
 * Copyright (C) edgehog
 */

/*
 * Which vector instructions the running CPU has, asked once: the hot
 * string loops take 32 bytes at a time where AVX2 is there, and the
 * build stays for any x86-64 (and any other CPU).
 */

#ifndef _CAPTURE_CPU_H_INCLUDED_
#define _CAPTURE_CPU_H_INCLUDED_


#if (__x86_64__)

static inline int
capture_cpu_avx2(void)
{
    /* one per file; set twice at worst, to the same value */
    static int  avx2 = -1;

    if (avx2 < 0) {
        __builtin_cpu_init();
        avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    }

    return avx2;
}

#endif


#endif /* _CAPTURE_CPU_H_INCLUDED_ */
