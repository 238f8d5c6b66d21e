// The math functions of the C library (libm), for the pgkeep executable alone: loaded on first
// use instead of at start.
//
// The Swift standard library and its Glibc overlay call 107 of libm's functions (Float, Double
// and Float80's elementary functions, rounding), so a statically linked Swift program names
// libm.so.6 as a dependency and the dynamic linker loads it at every start. Loading it costs
// 0.4 MB of resident set: libm's relocation runs 21 IFUNC resolvers scattered over its 460 kB of
// code, each one a page fault that maps a 64 kB window. pgkeep calls none of those functions
// but the rounding ones (the standard library's Dictionary and Int(exactly:) round Doubles), and
// pg_basebackup, on Debian's libpq, does not load libm at all.
//
// So the executable defines them itself:
//   - ceil, floor, trunc, rint, nearbyint and round, for double and float: on the CPU's own
//     rounding instruction (SSE4.1's roundsd/roundss, x86-64 CPUs since 2008) when it has it;
//   - every other one, and the rounding ones on a CPU without SSE4.1: forwarded to libm's,
//     which is loaded (dlopen) at the first such call, and looked up once per function.
// tools/ship-build gives the runtime's -lm an empty archive, so libm.so.6 is no dependency; a
// function a later Swift's runtime starts to name fails that link, named ("undefined symbol").
//
// Linked into the pgkeep executable only, never into the Bacula plugin (bacula-fd's process).
#define _GNU_SOURCE
#include "pgkeep_lazy_math.h"

#include <dlfcn.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static _Atomic(void *) libm_handle;

static void *libm_function(const char *name) {
    void *handle = atomic_load_explicit(&libm_handle, memory_order_acquire);
    if (handle == NULL) {
        // dlopen of an already loaded library returns the same handle: a race costs nothing.
        handle = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
        if (handle == NULL) {
            fprintf(stderr, "pgkeep: cannot load the C math library: %s\n", dlerror());
            abort();
        }
        atomic_store_explicit(&libm_handle, handle, memory_order_release);
    }
    void *function = dlsym(handle, name);
    if (function == NULL) {
        fprintf(stderr, "pgkeep: the C math library has no %s: %s\n", name, dlerror());
        abort();
    }
    return function;
}

int pgkeep_math_libm_loaded(void) {
    return atomic_load_explicit(&libm_handle, memory_order_acquire) != NULL;
}

// One function forwarded to libm's: `type name params`, called with `args` (FORWARD_AS: a
// function of this file, `linkage` static, that calls libm's `symbol`). Looked up on its
// first call; a lookup by two threads at once finds the same address.
#define FORWARD(type, name, params, args) FORWARD_AS(, type, name, #name, params, args)
#define FORWARD_AS(linkage, type, name, symbol, params, args)                             \
    linkage type name params {                                                            \
        static _Atomic(type(*) params) real;                                              \
        type(*function) params = atomic_load_explicit(&real, memory_order_acquire);       \
        if (function == NULL) {                                                           \
            function = (type(*) params)libm_function(symbol);                             \
            atomic_store_explicit(&real, function, memory_order_release);                 \
        }                                                                                 \
        return function args;                                                             \
    }
#define FORWARD1(type, name) FORWARD(type, name, (type x), (x))
#define FORWARD2(type, name) FORWARD(type, name, (type x, type y), (x, y))

// Double.
FORWARD1(double, cos) FORWARD1(double, sin) FORWARD1(double, exp) FORWARD1(double, exp2)
FORWARD1(double, log) FORWARD1(double, log10) FORWARD1(double, log2) FORWARD1(double, sqrt)
FORWARD2(double, fmod) FORWARD2(double, remainder)
FORWARD(double, fma, (double x, double y, double z), (x, y, z))
FORWARD(double, remquo, (double x, double y, int *quotient), (x, y, quotient))
FORWARD(double, lgamma_r, (double x, int *sign), (x, sign))
FORWARD(double, jn, (int order, double x), (order, x))
FORWARD(double, yn, (int order, double x), (order, x))

// Float.
FORWARD1(float, acosf) FORWARD1(float, acoshf) FORWARD1(float, asinf) FORWARD1(float, asinhf)
FORWARD1(float, atanf) FORWARD1(float, atanhf) FORWARD1(float, cbrtf) FORWARD1(float, cosf)
FORWARD1(float, coshf) FORWARD1(float, erfcf) FORWARD1(float, erff) FORWARD1(float, exp2f)
FORWARD1(float, expf) FORWARD1(float, expm1f) FORWARD1(float, log10f) FORWARD1(float, log1pf)
FORWARD1(float, log2f) FORWARD1(float, logbf) FORWARD1(float, logf) FORWARD1(float, sinf)
FORWARD1(float, sinhf) FORWARD1(float, sqrtf) FORWARD1(float, tanf) FORWARD1(float, tanhf)
FORWARD1(float, tgammaf)
FORWARD2(float, atan2f) FORWARD2(float, fdimf) FORWARD2(float, fmodf) FORWARD2(float, hypotf)
FORWARD2(float, nextafterf) FORWARD2(float, powf) FORWARD2(float, remainderf)
FORWARD(float, fmaf, (float x, float y, float z), (x, y, z))
FORWARD(float, remquof, (float x, float y, int *quotient), (x, y, quotient))
FORWARD(float, lgammaf_r, (float x, int *sign), (x, sign))
FORWARD(float, nanf, (const char *tag), (tag))

// Float80.
FORWARD1(long double, acoshl) FORWARD1(long double, acosl) FORWARD1(long double, asinhl)
FORWARD1(long double, asinl) FORWARD1(long double, atanhl) FORWARD1(long double, atanl)
FORWARD1(long double, cbrtl) FORWARD1(long double, ceill) FORWARD1(long double, coshl)
FORWARD1(long double, cosl) FORWARD1(long double, erfcl) FORWARD1(long double, erfl)
FORWARD1(long double, exp2l) FORWARD1(long double, expl) FORWARD1(long double, expm1l)
FORWARD1(long double, floorl) FORWARD1(long double, log10l) FORWARD1(long double, log1pl)
FORWARD1(long double, log2l) FORWARD1(long double, logbl) FORWARD1(long double, logl)
FORWARD1(long double, nearbyintl) FORWARD1(long double, rintl) FORWARD1(long double, roundl)
FORWARD1(long double, sinhl) FORWARD1(long double, sinl) FORWARD1(long double, sqrtl)
FORWARD1(long double, tanhl) FORWARD1(long double, tanl) FORWARD1(long double, tgammal)
FORWARD1(long double, truncl)
FORWARD2(long double, atan2l) FORWARD2(long double, fdiml) FORWARD2(long double, fmaxl)
FORWARD2(long double, fminl) FORWARD2(long double, fmodl) FORWARD2(long double, hypotl)
FORWARD2(long double, nextafterl) FORWARD2(long double, powl) FORWARD2(long double, remainderl)
FORWARD(long double, fmal, (long double x, long double y, long double z), (x, y, z))
FORWARD(long double, remquol, (long double x, long double y, int *quotient), (x, y, quotient))
FORWARD(long double, lgammal_r, (long double x, int *sign), (x, sign))
FORWARD(long double, nanl, (const char *tag), (tag))

// Rounding: the standard library calls these in ordinary work (a Dictionary's capacity, a
// Double's conversion to an integer), so they must not load libm. SSE4.1 rounds in one
// instruction exactly as C specifies: ceil, floor and trunc to their direction, rint in the
// current rounding mode, nearbyint likewise without raising "inexact". round (halves away from
// zero) has no instruction: trunc, then a step away from zero when the dropped part is at least
// one half (x - trunc(x) is exact, so no double rounding; NaN and the infinities pass through).
#if defined(__x86_64__)
#include <cpuid.h>

int pgkeep_math_rounds_in_hardware(void) {
    static _Atomic int known;  // 0: not asked yet, 1: no, 2: yes
    int answer = atomic_load_explicit(&known, memory_order_relaxed);
    if (answer == 0) {
        unsigned int eax, ebx, ecx, edx;
        answer = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_SSE4_1) ? 2 : 1;
        atomic_store_explicit(&known, answer, memory_order_relaxed);
    }
    return answer == 2;
}

// One rounding function `name` of a family (suffix `s`: none for double, f for float): SSE4.1's
// version, `instruction`, when the CPU has it, else libm's.
#define ROUNDING(type, name, s, instruction)                                                   \
    FORWARD_AS(static, type, libm_##name##s, #name #s, (type x), (x))                        \
    __attribute__((target("sse4.1"))) static type sse41_##name##s(type x) { instruction }    \
    type name##s(type x) { return pgkeep_math_rounds_in_hardware() ? sse41_##name##s(x) : libm_##name##s(x); }
#else
int pgkeep_math_rounds_in_hardware(void) { return 0; }
#define ROUNDING(type, name, s, instruction) \
    FORWARD_AS(, type, name##s, #name #s, (type x), (x))
#endif

#define ROUNDING_FAMILY(type, s)                                                               \
    ROUNDING(type, ceil, s, return __builtin_ceil##s(x);)                                       \
    ROUNDING(type, floor, s, return __builtin_floor##s(x);)                                     \
    ROUNDING(type, trunc, s, return __builtin_trunc##s(x);)                                     \
    ROUNDING(type, rint, s, return __builtin_rint##s(x);)                                       \
    ROUNDING(type, nearbyint, s, return __builtin_nearbyint##s(x);)                             \
    ROUNDING(type, round, s, type whole = __builtin_trunc##s(x);                                \
             return __builtin_fabs##s(x - whole) >= (type)0.5 ? whole + __builtin_copysign##s((type)1, x) : whole;)
ROUNDING_FAMILY(double, )
ROUNDING_FAMILY(float, f)
