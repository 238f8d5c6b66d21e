#ifndef PGKEEP_FRAMES_H
#define PGKEEP_FRAMES_H
/*
 * The frames between pgkeep-fd.so and its backend (`pgkeep bacula backend`): a type byte, a
 * big-endian uint32 payload length, the payload. In payloads integers are big-endian and strings
 * a uint32 length then the bytes. The Swift side is Sources/PluginFrames/Frame.swift; both are
 * tested against fixtures/frames.
 */
#include <stddef.h>
#include <stdint.h>

#define PGK_FRAME_FILE    'F'
#define PGK_FRAME_DATA    'D'
#define PGK_FRAME_END     'E'
#define PGK_FRAME_SEEN    'S'
#define PGK_FRAME_MESSAGE 'M'
#define PGK_FRAME_DONE    'Z'

#define PGK_FILE_REGULAR   'f'
#define PGK_FILE_DIRECTORY 'd'

#define PGK_FRAME_HEADER 5
#define PGK_FRAME_MAX_PAYLOAD (1u << 20)

typedef struct {
    uint8_t kind;
    uint32_t length;
    uint8_t *payload; /* owned by the reader's buffer; valid until the next read */
} pgk_frame;

typedef struct {
    uint8_t *buffer;
    size_t capacity;
} pgk_reader;

/* Reads one whole frame from fd, waiting at most timeout_ms for each piece (-1: for ever).
 * Returns 1 on a frame, 0 on end of file before any byte, -1 on error (errno; ETIMEDOUT for a
 * timeout, EPROTO for a malformed frame). */
int pgk_read_frame(int fd, int timeout_ms, pgk_reader *reader, pgk_frame *frame);

/* Writes a frame with this payload (all of it, retrying). Returns 0, or -1 with errno. */
int pgk_write_frame(int fd, uint8_t kind, const void *payload, uint32_t length);

/* File header payload: path, size, mode, mtime, type (PGK_FILE_*). Encode returns the payload size (0 if it does
 * not fit); parse returns 0, or -1 when malformed (the path is malloc'd). */
size_t pgk_encode_file(uint8_t *out, size_t capacity, const char *path, int64_t size, uint32_t mode, int64_t mtime, char type);
int pgk_parse_file(const pgk_frame *frame, char **path, int64_t *size, uint32_t *mode, int64_t *mtime, char *type);
/* A payload that is one string (seen). */
int pgk_parse_string(const pgk_frame *frame, char **text);
/* Message payload: severity byte ('I','W','E','F') then the text. */
int pgk_parse_message(const pgk_frame *frame, char *severity, char **text);
/* Done payload: 0 ok, 1 failed. */
int pgk_parse_done(const pgk_frame *frame, int *ok);

#endif
