#include "pgkeep_shims.h"
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <errno.h>
#include <sys/syscall.h>
#include <linux/fs.h>

int pgkeep_deflate_init_gzip(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

int pgkeep_inflate_init_gzip(z_stream *stream) {
    return inflateInit2(stream, 15 + 16);
}

int pgkeep_syncfs(int fd) { return syncfs(fd); }

int pgkeep_start_writeback(int fd, off_t offset, off_t nbytes) {
    return sync_file_range(fd, offset, nbytes, SYNC_FILE_RANGE_WRITE);
}

int pgkeep_fallocate(int fd, off_t offset, off_t length) {
    int rc = posix_fallocate(fd, offset, length);
    if (rc != 0) { errno = rc; return -1; }
    return 0;
}

int pgkeep_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
    return (int) syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, RENAME_NOREPLACE);
}
