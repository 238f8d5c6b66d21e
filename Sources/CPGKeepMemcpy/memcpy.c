// memcpy and memmove, interposed for the whole pgkeep process: libpq's and libzstd's calls come
// here too (tools/ship-build exports both names from the executable, and the dynamic linker
// binds every library's memcpy to the executable's first).
//
// Why: glibc 2.36 (Debian 12) copies 2 KiB and more with `rep movsb`, which on AMD Zen CPUs runs
// at 3.4 GB/s instead of 50+ when the destination lies 1 to 63 bytes past the source modulo a
// 4 KiB page (store/load 4K aliasing, reported for Zen 3 and Zen 4; measured on the bench
// machine's AMD EPYC, where every other relative offset ran at full speed). libpq lands there
// often: it copies every CopyData message out of its input buffer into a new allocation
// (PQgetCopyData). In a tar backup that copy was 30 % of pgkeep's CPU time; with GLIBC_TUNABLES
// raising glibc's rep movsb threshold, the backup's user time fell by 80 % (farm-bench, 2 cores).
//
// What: only that case is copied here, backwards in 64-byte steps of unaligned SSE2 loads and
// stores (backwards, the loads run ahead of the stores they alias with; 46-48 GB/s for 32-256
// KiB on the same machine). Everything else, and any overlapping copy, goes to glibc's own
// implementation, reached through __memcpy_chk/__memmove_chk (glibc's exported entry points for
// fortified code) with no size limit.
#include "pgkeep_memcpy.h"
#include <stdint.h>

#if defined(__x86_64__) && defined(__linux__)
#include <emmintrin.h>

extern void *__memcpy_chk(void *dst, const void *src, size_t length, size_t dstlen);
extern void *__memmove_chk(void *dst, const void *src, size_t length, size_t dstlen);

// Called through volatile pointers: the compiler knows __memcpy_chk with an unknown destination
// size is memcpy, and would turn the call into one to memcpy, that is, to this file.
typedef void *(*copy_function)(void *, const void *, size_t, size_t);
static copy_function volatile glibc_memcpy = __memcpy_chk;
static copy_function volatile glibc_memmove = __memmove_chk;

int pgkeep_copy_is_page_aliased(const void *dst, const void *src, size_t length) {
    size_t ahead = ((uintptr_t)dst - (uintptr_t)src) & 4095;
    return length >= 2048 && ahead != 0 && ahead < 64;
}

// no_builtin: the loop must not be recognised as a copy idiom and become a call to memcpy.
__attribute__((no_builtin))
static void copy_backwards(char *dst, const char *src, size_t length) {
    size_t at = length;
    while (at >= 64) {
        at -= 64;
        __m128i a = _mm_loadu_si128((const __m128i *)(src + at));
        __m128i b = _mm_loadu_si128((const __m128i *)(src + at + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(src + at + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(src + at + 48));
        _mm_storeu_si128((__m128i *)(dst + at), a);
        _mm_storeu_si128((__m128i *)(dst + at + 16), b);
        _mm_storeu_si128((__m128i *)(dst + at + 32), c);
        _mm_storeu_si128((__m128i *)(dst + at + 48), d);
    }
    if (at > 0) glibc_memcpy(dst, src, at, (size_t)-1);  // the first 1-63 bytes: below rep movsb's size
}

// Ranges that overlap always go to glibc, for memcpy too: its x86-64 memcpy is its memmove, and
// code that (wrongly) copies overlapping ranges with memcpy keeps working as it did.
static inline int ours(const void *dst, const void *src, size_t length) {
    uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;
    return pgkeep_copy_is_page_aliased(dst, src, length) && d - s >= length && s - d >= length;
}

// memcpy and memmove differ only in the glibc function the other copies go to.
__attribute__((no_builtin))
static inline void *copy(void *dst, const void *src, size_t length, copy_function glibc) {
    if (__builtin_expect(ours(dst, src, length), 0)) {
        copy_backwards(dst, src, length);
        return dst;
    }
    return glibc(dst, src, length, (size_t)-1);
}

__attribute__((no_builtin)) void *memcpy(void *dst, const void *src, size_t length) { return copy(dst, src, length, glibc_memcpy); }
__attribute__((no_builtin)) void *memmove(void *dst, const void *src, size_t length) { return copy(dst, src, length, glibc_memmove); }

#else

int pgkeep_copy_is_page_aliased(const void *dst, const void *src, size_t length) {
    (void)dst; (void)src; (void)length;
    return 0;
}

#endif
