#ifndef PGKEEP_SHIMS_H
#define PGKEEP_SHIMS_H
// Thin wrappers for C that Swift cannot reach directly: zlib's init macros, and glibc calls that
// are only declared under _GNU_SOURCE (this target is compiled with it).
#include <zlib.h>
#include <stdint.h>
#include <sys/types.h>

// zlib: deflateInit2/inflateInit2 are macros. windowBits 15+16 selects the gzip wrapper.
int pgkeep_deflate_init_gzip(z_stream *stream, int level);
int pgkeep_inflate_init_gzip(z_stream *stream);

// Flush every dirty page and inode of the file system holding fd (Linux syncfs(2)).
int pgkeep_syncfs(int fd);
// Start write-back of a range without waiting (Linux sync_file_range(2), SYNC_FILE_RANGE_WRITE),
// so the final fsync has little left to do. Advisory: errors are ignored by callers.
int pgkeep_start_writeback(int fd, off_t offset, off_t nbytes);
// O_DIRECT (declared only under _GNU_SOURCE; its value differs between architectures).
int pgkeep_o_direct(void);
// A new file without a name in the directory dirfd (open(2)'s O_TMPFILE), open for writing:
// what allocating an inode costs is paid here. -1 and errno when the file system cannot.
int pgkeep_open_tmpfile(int dirfd, mode_t mode);
// Gives such a file the name `name` in dirfd (linkat through /proc/self/fd, which needs no
// privilege): EEXIST if the name is taken, never replacing or following what is there.
int pgkeep_link_tmpfile(int fd, int dirfd, const char *name);
// Reserve space for a file up front so later writes cannot fail with ENOSPC halfway.
int pgkeep_fallocate(int fd, off_t offset, off_t length);
// Names the calling thread for ps -L and debuggers (pthread_setname_np, 15 bytes at most).
void pgkeep_set_thread_name(const char *name);
// renameat2 with RENAME_NOREPLACE: never clobbers an existing file.
int pgkeep_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);

// CRC-32C (Castagnoli), as PostgreSQL computes it for WAL records and backup manifests: continue
// `crc` (start with 0xFFFFFFFF, finish by inverting) over `length` bytes. Uses the SSE 4.2
// instruction when the CPU has it, else a slicing-by-8 table.
uint32_t pgkeep_crc32c_update(uint32_t crc, const void *data, size_t length);

#endif
