#ifndef PGKEEP_MEMCPY_H
#define PGKEEP_MEMCPY_H
// memcpy and memmove for the pgkeep executable (x86-64): glibc's, except for the one case where
// glibc's `rep movsb` crawls. See memcpy.c.
#include <stddef.h>

// True when `dst` lies 1 to 63 bytes past `src` modulo a 4 KiB page and the copy is large enough
// for glibc to use `rep movsb`: the case pgkeep copies itself (always false off x86-64).
int pgkeep_copy_is_page_aliased(const void *dst, const void *src, size_t length);

#endif
