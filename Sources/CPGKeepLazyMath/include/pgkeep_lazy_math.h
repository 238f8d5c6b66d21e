#ifndef PGKEEP_LAZY_MATH_H
#define PGKEEP_LAZY_MATH_H
// The C math functions the Swift runtime links to, defined in the pgkeep executable so that it
// does not load libm.so.6 at start. See lazy_math.c.

// 1 when ceil, floor, trunc, rint, nearbyint and round (double and float) run on the CPU's own
// rounding instruction (SSE4.1), 0 when they call libm's.
int pgkeep_math_rounds_in_hardware(void);

// 1 once libm.so.6 has been loaded (by a call to one of the other functions).
int pgkeep_math_libm_loaded(void);

#endif
