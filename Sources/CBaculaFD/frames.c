/* The frame codec of pgkeep-fd.so (see include/pgkeep_frames.h). */
#include "pgkeep_frames.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }

static int read_exactly(int fd, int timeout_ms, uint8_t *out, size_t count, int allow_eof) {
    size_t done = 0;
    while (done < count) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN, .revents = 0 };
        int ready = poll(&pfd, 1, timeout_ms);
        if (ready < 0) { if (errno == EINTR) continue; return -1; }
        if (ready == 0) { errno = ETIMEDOUT; return -1; }
        ssize_t got = read(fd, out + done, count - done);
        if (got < 0) { if (errno == EINTR) continue; return -1; }
        if (got == 0) {
            if (done == 0 && allow_eof) return 0;
            errno = EPIPE;
            return -1;
        }
        done += (size_t)got;
    }
    return 1;
}

int pgk_read_frame(int fd, int timeout_ms, pgk_reader *reader, pgk_frame *frame) {
    uint8_t header[PGK_FRAME_HEADER];
    int got = read_exactly(fd, timeout_ms, header, sizeof header, 1);
    if (got <= 0) return got;
    uint8_t kind = header[0];
    uint32_t length = get32(header + 1);
    if (length > PGK_FRAME_MAX_PAYLOAD || !strchr("FDESMZ", kind) || kind == 0) { errno = EPROTO; return -1; }
    if (reader->capacity < length + 1) {
        uint8_t *grown = realloc(reader->buffer, length + 1);
        if (!grown) return -1;
        reader->buffer = grown;
        reader->capacity = length + 1;
    }
    if (length > 0 && read_exactly(fd, timeout_ms, reader->buffer, length, 0) != 1) return -1;
    reader->buffer[length] = 0;
    frame->kind = kind;
    frame->length = length;
    frame->payload = reader->buffer;
    return 1;
}

/* send(2) with MSG_NOSIGNAL on the socket pair: a backend that went away is an error to report,
 * not a SIGPIPE that ends the File Daemon. */
static int write_all(int fd, const uint8_t *bytes, size_t count) {
    while (count > 0) {
        ssize_t wrote = send(fd, bytes, count, MSG_NOSIGNAL);
        if (wrote < 0 && errno == ENOTSOCK) wrote = write(fd, bytes, count);
        if (wrote < 0) { if (errno == EINTR) continue; return -1; }
        bytes += wrote;
        count -= (size_t)wrote;
    }
    return 0;
}

int pgk_write_frame(int fd, uint8_t kind, const void *payload, uint32_t length) {
    uint8_t header[PGK_FRAME_HEADER];
    header[0] = kind;
    put32(header + 1, length);
    if (write_all(fd, header, sizeof header) != 0) return -1;
    return length ? write_all(fd, payload, length) : 0;
}

size_t pgk_encode_file(uint8_t *out, size_t capacity, const char *path, int64_t size, uint32_t mode, int64_t mtime, char type) {
    size_t length = strlen(path);
    size_t total = 4 + length + 8 + 4 + 8 + 1;
    if (total > capacity) return 0;
    put32(out, (uint32_t)length);
    memcpy(out + 4, path, length);
    put64(out + 4 + length, (uint64_t)size);
    put32(out + 12 + length, mode);
    put64(out + 16 + length, (uint64_t)mtime);
    out[24 + length] = (uint8_t)type;
    return total;
}

static int take_string(const uint8_t *payload, uint32_t available, uint32_t *offset, char **text) {
    if (available - *offset < 4) return -1;
    uint32_t length = get32(payload + *offset);
    *offset += 4;
    if (available - *offset < length) return -1;
    *text = malloc(length + 1);
    if (!*text) return -1;
    memcpy(*text, payload + *offset, length);
    (*text)[length] = 0;
    *offset += length;
    return 0;
}

int pgk_parse_file(const pgk_frame *frame, char **path, int64_t *size, uint32_t *mode, int64_t *mtime, char *type) {
    uint32_t offset = 0;
    if (frame->kind != PGK_FRAME_FILE || take_string(frame->payload, frame->length, &offset, path) != 0) return -1;
    if (frame->length - offset != 21 || (frame->payload[offset + 20] != PGK_FILE_REGULAR && frame->payload[offset + 20] != PGK_FILE_DIRECTORY)) {
        free(*path);
        *path = NULL;
        return -1;
    }
    *type = (char)frame->payload[offset + 20];
    *size = (int64_t)get64(frame->payload + offset);
    *mode = get32(frame->payload + offset + 8);
    *mtime = (int64_t)get64(frame->payload + offset + 12);
    return 0;
}

int pgk_parse_string(const pgk_frame *frame, char **text) {
    uint32_t offset = 0;
    if (take_string(frame->payload, frame->length, &offset, text) != 0) return -1;
    if (offset != frame->length) { free(*text); *text = NULL; return -1; }
    return 0;
}

int pgk_parse_message(const pgk_frame *frame, char *severity, char **text) {
    uint32_t offset = 1;
    if (frame->kind != PGK_FRAME_MESSAGE || frame->length < 1 || !strchr("IWEF", frame->payload[0])) return -1;
    *severity = (char)frame->payload[0];
    if (take_string(frame->payload, frame->length, &offset, text) != 0) return -1;
    if (offset != frame->length) { free(*text); *text = NULL; return -1; }
    return 0;
}

int pgk_parse_done(const pgk_frame *frame, int *ok) {
    if (frame->kind != PGK_FRAME_DONE || frame->length != 1 || frame->payload[0] > 1) return -1;
    *ok = frame->payload[0] == 0;
    return 0;
}
