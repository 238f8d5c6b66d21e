/*
 * pgkeep-fd.so: a Bacula File Daemon plugin (interface version 14, Bacula 9.6.x) that backs up
 * and restores PostgreSQL with pgkeep. It does no PostgreSQL work itself: when a backup,
 * estimate or restore starts it spawns `pgkeep bacula backend` and relays frames between it and
 * Bacula (include/pgkeep_frames.h). The backend decides everything; this file only translates:
 *
 *   backend → Bacula   file header → startBackupFile, data → pluginIO(IO_READ), end → EOF,
 *                      seen → bVarFileSeen (accurate mode), message → JobMessage, done → the end;
 *   Bacula → backend   (restore) createFile + IO_OPEN → file header, IO_WRITE → data,
 *                      IO_CLOSE → end; the end of the restore job → done, then its answer.
 *
 * A failure ends the job fatally (M_FATAL): a backend that cannot start, dies, stops answering
 * for `timeout` seconds, or says so. Cancelling the job ends the backend's whole process group
 * (and every pg_dump it started).
 *
 * FileSet: Plugin = "pgkeep: mode=pitr service=main conninfo='…' state_dir=/var/lib/pgkeep …"
 * The options are the backend's to read; this file looks only at pgkeep=, service= and timeout=.
 */
#define _GNU_SOURCE
#include "bacula_fd_api.h"
#include "pgkeep_frames.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static bFuncs *bfuncs;

static pInfo plugin_info = {
    sizeof(pInfo), FD_PLUGIN_INTERFACE_VERSION, FD_PLUGIN_MAGIC, "AGPLv3", "the pgkeep developers", "November 2026", "1",
    "pgkeep: PostgreSQL point-in-time (base backups, WAL) and dump backups"
};

struct plugin_ctx {
    char level;
    long long since;
    char *command;
    char *pgkeep;
    char *prefix; /* "/@PG/<service>/" */
    int timeout_ms;
    pid_t backend;
    int to_backend;
    int from_backend;
    pgk_reader reader;
    bool estimate;
    bool dump; /* mode=dump: every job sends everything */
    bool restoring;
    bool failed;
    bool finished;
    /* backup: the header read ahead, the file Bacula is reading */
    bool have_header;
    char *header_path;
    int64_t header_size;
    uint32_t header_mode;
    int64_t header_mtime;
    char header_type;
    char *current_path;
    char *current_link; /* a directory's name with its trailing slash */
    bool file_ended;
    uint8_t *data;
    uint32_t data_length;
    uint32_t data_offset;
    /* restore: the file being created */
    char *restore_path;
    mode_t restore_mode;
    int64_t restore_size;
    int64_t restore_mtime;
};

static struct plugin_ctx *context(bpContext *ctx) { return (struct plugin_ctx *)ctx->pContext; }

static void message(bpContext *ctx, int type, const char *format, ...) {
    char text[1800];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    if (bfuncs) bfuncs->JobMessage(ctx, __FILE__, __LINE__, type, 0, "%s\n", text);
}

/* Ends the job: once, fatally. */
static void fail(bpContext *ctx, const char *format, ...) {
    struct plugin_ctx *p = context(ctx);
    char text[1800];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    if (!p->failed) message(ctx, M_FATAL, "pgkeep: %s", text);
    p->failed = true;
}

/* The value of `key=` in the plugin string (unquoted, or in single or double quotes). */
static char *option(const char *command, const char *key) {
    size_t key_length = strlen(key);
    for (const char *at = command; (at = strstr(at, key)) != NULL; at += key_length) {
        if ((at != command && at[-1] != ' ' && at[-1] != ':') || at[key_length] != '=') continue;
        const char *value = at + key_length + 1;
        char quote = (*value == '\'' || *value == '"') ? *value++ : 0;
        const char *end = value;
        while (*end && (quote ? *end != quote : *end != ' ')) end++;
        return strndup(value, (size_t)(end - value));
    }
    return NULL;
}

/* pgkeep= in the plugin string, else what `pgkeep bacula install-plugin` wrote beside this file. */
static char *backend_binary(const char *command) {
    char *given = option(command, "pgkeep");
    if (given) return given;
    Dl_info self;
    if (!dladdr((void *)&plugin_info, &self) || !self.dli_fname) return NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s", self.dli_fname);
    char *slash = strrchr(path, '/');
    if (!slash) return NULL;
    snprintf(slash + 1, sizeof path - (size_t)(slash + 1 - path), "pgkeep-fd.conf");
    FILE *file = fopen(path, "r");
    /* No pgkeep-fd.conf: the Debian package's pgkeep. */
    if (!file) return access("/usr/bin/pgkeep", X_OK) == 0 ? strdup("/usr/bin/pgkeep") : NULL;
    char line[4096];
    char *found = NULL;
    while (!found && fgets(line, sizeof line, file)) {
        line[strcspn(line, "\r\n")] = 0;
        if (strncmp(line, "pgkeep=", 7) == 0) found = strdup(line + 7);
    }
    fclose(file);
    return found;
}

static int write_frame(struct plugin_ctx *p, uint8_t kind, const void *payload, uint32_t length) {
    return pgk_write_frame(p->to_backend, kind, payload, length);
}

/* Starts `pgkeep bacula backend` in a process group of its own, talking over a socket pair. */
static bool spawn_backend(bpContext *ctx, const char *mode) {
    struct plugin_ctx *p = context(ctx);
    if (p->backend > 0) return true;
    free(p->pgkeep);
    p->pgkeep = backend_binary(p->command);
    if (!p->pgkeep) {
        fail(ctx, "cannot find the pgkeep program: run `pgkeep bacula install-plugin`, or give pgkeep=PATH in the plugin string");
        return false;
    }
    int channel[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel) != 0) {
        fail(ctx, "cannot create a socket pair for the backend: %s", strerror(errno));
        return false;
    }
    int job_id = 0, accurate = 0, replace = 'a';
    char *job_name = NULL, *where = NULL;
    bfuncs->getBaculaValue(ctx, bVarJobId, &job_id);
    bfuncs->getBaculaValue(ctx, bVarJobName, &job_name);
    bfuncs->getBaculaValue(ctx, bVarAccurate, &accurate);
    if (strcmp(mode, "restore") == 0) {
        bfuncs->getBaculaValue(ctx, bVarWhere, &where);
        bfuncs->getBaculaValue(ctx, bVarReplace, &replace);
    }
    char level[2] = { p->level ? p->level : 'F', 0 }, since[32], id[32], accurate_text[2] = { accurate ? '1' : '0', 0 },
         replace_text[2] = { (char)replace, 0 };
    snprintf(since, sizeof since, "%lld", p->since);
    snprintf(id, sizeof id, "%d", job_id);
    char *argv[] = {
        p->pgkeep, "bacula", "backend", "--mode", (char *)mode, "--level", level, "--since", since, "--job-id", id,
        "--job-name", job_name ? job_name : "", "--accurate", accurate_text, "--where", where ? where : "",
        "--replace", replace_text, "--command", p->command, NULL
    };
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, channel[1], 0);
    posix_spawn_file_actions_adddup2(&actions, channel[1], 1);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    pid_t pid;
    int spawned = posix_spawn(&pid, p->pgkeep, &actions, &attributes, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    close(channel[1]);
    if (spawned != 0) {
        close(channel[0]);
        fail(ctx, "cannot run %s: %s", p->pgkeep, strerror(spawned));
        return false;
    }
    p->backend = pid;
    p->to_backend = channel[0];
    p->from_backend = channel[0];
    return true;
}

/* Waits for the backend to exit (after its last frame), then forgets it. */
static void reap_backend(bpContext *ctx, bool kill_it) {
    struct plugin_ctx *p = context(ctx);
    if (p->backend <= 0) return;
    if (kill_it) kill(-p->backend, SIGTERM);
    int status = 0;
    for (int waited = 0; waitpid(p->backend, &status, WNOHANG) == 0; waited++) {
        if (waited == 100) kill(-p->backend, SIGKILL);
        usleep(100000);
    }
    /* Whatever the backend left running in its group (a pg_dump, when it was killed) goes with it. */
    kill(-p->backend, SIGKILL);
    if (!p->finished && !p->failed && !kill_it) {
        fail(ctx, "the pgkeep backend ended without finishing (%s %d)", WIFSIGNALED(status) ? "signal" : "exit status",
             WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
    close(p->to_backend);
    p->backend = 0;
    p->to_backend = p->from_backend = -1;
}

/*
 * The next frame that is not a message or a seen note (those are handled here). Returns 1 with a
 * file, data, end or done frame in *frame; -1 when the backend failed or went away (reported).
 */
static int next_frame(bpContext *ctx, pgk_frame *frame) {
    struct plugin_ctx *p = context(ctx);
    for (;;) {
        int got = pgk_read_frame(p->from_backend, p->timeout_ms, &p->reader, frame);
        if (got == 0) {
            reap_backend(ctx, false);
            fail(ctx, "the pgkeep backend ended without finishing");
            return -1;
        }
        if (got < 0) {
            if (errno == ETIMEDOUT) fail(ctx, "no answer from the pgkeep backend in %d s (timeout=)", p->timeout_ms / 1000);
            else fail(ctx, "reading from the pgkeep backend: %s", strerror(errno));
            return -1;
        }
        if (frame->kind == PGK_FRAME_MESSAGE) {
            char severity, *text = NULL;
            if (pgk_parse_message(frame, &severity, &text) != 0) { fail(ctx, "a malformed message frame"); return -1; }
            if (severity == 'F') fail(ctx, "%s", text);
            else message(ctx, severity == 'E' ? M_ERROR : severity == 'W' ? M_WARNING : M_INFO, "pgkeep: %s", text);
            free(text);
            continue;
        }
        if (frame->kind == PGK_FRAME_SEEN) {
            char *path = NULL;
            if (pgk_parse_string(frame, &path) != 0) { fail(ctx, "a malformed seen frame"); return -1; }
            bfuncs->setBaculaValue(ctx, bVarFileSeen, path); /* an error just means accurate mode is off */
            free(path);
            continue;
        }
        if (frame->kind == PGK_FRAME_DONE) {
            int ok = 0;
            if (pgk_parse_done(frame, &ok) != 0) { fail(ctx, "a malformed done frame"); return -1; }
            p->finished = true;
            if (!ok) fail(ctx, "the backend could not finish the job");
        }
        return 1;
    }
}

/* Reads ahead to the next file header (true) or the end of the job (false). */
static bool read_next_header(bpContext *ctx) {
    struct plugin_ctx *p = context(ctx);
    pgk_frame frame;
    while (!p->finished && !p->failed) {
        if (next_frame(ctx, &frame) != 1) return false;
        if (frame.kind == PGK_FRAME_DONE) return false;
        if (frame.kind == PGK_FRAME_FILE) {
            free(p->header_path);
            if (pgk_parse_file(&frame, &p->header_path, &p->header_size, &p->header_mode, &p->header_mtime,
                               &p->header_type) != 0) {
                fail(ctx, "a malformed file frame");
                return false;
            }
            p->have_header = true;
            return true;
        }
        if (frame.kind == PGK_FRAME_DATA || frame.kind == PGK_FRAME_END) continue; /* the rest of a file nobody read */
    }
    return false;
}

/* MARK: Plugin entry points */

static bRC newPlugin(bpContext *ctx) {
    struct plugin_ctx *p = calloc(1, sizeof *p);
    if (!p) return bRC_Error;
    p->to_backend = p->from_backend = -1;
    p->timeout_ms = 300 * 1000;
    ctx->pContext = p;
    return bRC_OK; /* no backend here: only when a backup, estimate or restore starts */
}

static bRC freePlugin(bpContext *ctx) {
    struct plugin_ctx *p = context(ctx);
    if (!p) return bRC_OK;
    reap_backend(ctx, true);
    free(p->command); free(p->pgkeep); free(p->prefix); free(p->reader.buffer); free(p->header_path);
    free(p->current_path); free(p->current_link); free(p->restore_path);
    free(p);
    ctx->pContext = NULL;
    return bRC_OK;
}

static bRC getPluginValue(bpContext *ctx, pVariable var, void *value) { (void)ctx; (void)var; (void)value; return bRC_OK; }
static bRC setPluginValue(bpContext *ctx, pVariable var, void *value) { (void)ctx; (void)var; (void)value; return bRC_OK; }

static void take_command(struct plugin_ctx *p, const char *command) {
    if (!command) return;
    free(p->command);
    p->command = strdup(command);
    char *timeout = option(command, "timeout");
    if (timeout && atoi(timeout) > 0) p->timeout_ms = atoi(timeout) * 1000;
    free(timeout);
    char *mode = option(command, "mode");
    p->dump = mode && strcmp(mode, "dump") == 0;
    free(mode);
    char *service = option(command, "service");
    free(p->prefix);
    if (asprintf(&p->prefix, "/@PG/%s/", service && *service ? service : "main") < 0) p->prefix = NULL;
    free(service);
}

static bRC handlePluginEvent(bpContext *ctx, bEvent *event, void *value) {
    struct plugin_ctx *p = context(ctx);
    switch (event->eventType) {
    case bEventLevel:
        p->level = (char)(intptr_t)value;
        break;
    case bEventSince:
        p->since = (long long)(intptr_t)value;
        break;
    case bEventPluginCommand:
        take_command(p, value);
        break;
    case bEventBackupCommand:
    case bEventEstimateCommand:
        take_command(p, value);
        p->estimate = event->eventType == bEventEstimateCommand;
        if (!spawn_backend(ctx, p->estimate ? "estimate" : "backup")) return bRC_Error;
        break;
    case bEventRestoreCommand:
        take_command(p, value);
        if (!p->restoring) {
            p->restoring = true;
            if (!spawn_backend(ctx, "restore")) return bRC_Error;
        }
        break;
    case bEventEndRestoreJob:
        if (p->restoring && p->backend > 0 && !p->failed) {
            /* The backend finishes the restore now (combining, recovery settings), and says how it went. */
            if (write_frame(p, PGK_FRAME_DONE, "\0", 1) != 0) {
                fail(ctx, "telling the backend the restore is complete: %s", strerror(errno));
            } else {
                pgk_frame frame;
                while (!p->finished && next_frame(ctx, &frame) == 1) {}
            }
        }
        reap_backend(ctx, p->failed);
        break;
    case bEventEndBackupJob:
        reap_backend(ctx, !p->finished || p->failed);
        break;
    case bEventCancelCommand:
        /* From another thread: end the backend and everything it started. */
        if (p->backend > 0) kill(-p->backend, SIGTERM);
        break;
    case bEventJobEnd:
        reap_backend(ctx, true);
        break;
    default:
        break;
    }
    return bRC_OK;
}

static bRC startBackupFile(bpContext *ctx, struct save_pkt *sp) {
    struct plugin_ctx *p = context(ctx);
    if (p->backend <= 0 || p->failed) return bRC_Error;
    if (!p->have_header && !read_next_header(ctx)) return p->failed ? bRC_Error : bRC_Stop;
    free(p->current_path);
    p->current_path = p->header_path;
    p->header_path = NULL;
    p->have_header = false;
    p->file_ended = false;
    p->data_length = p->data_offset = 0;
    free(p->current_link);
    p->current_link = NULL;
    sp->fname = p->current_path;
    sp->link = NULL;
    memset(&sp->statp, 0, sizeof sp->statp);
    if (p->header_type == PGK_FILE_DIRECTORY) {
        /* Bacula stores a directory under its name with a trailing slash, and reads nothing. */
        if (asprintf(&p->current_link, "%s/", p->current_path) < 0) p->current_link = NULL;
        sp->link = p->current_link;
        sp->type = FT_DIREND;
        sp->statp.st_mode = S_IFDIR | (p->header_mode & 07777);
        sp->no_read = true;
        p->file_ended = true;
    } else {
        sp->type = FT_REG;
        sp->statp.st_mode = S_IFREG | (p->header_mode & 07777);
        sp->statp.st_size = p->header_size < 0 ? 0 : p->header_size; /* -1: not known in advance (a pg_dump) */
        sp->no_read = p->estimate;
    }
    sp->statp.st_mtime = sp->statp.st_ctime = sp->statp.st_atime = (time_t)p->header_mtime;
    sp->statp.st_nlink = 1;
    sp->statp.st_blksize = 65536;
    return bRC_OK;
}

static bRC endBackupFile(bpContext *ctx) {
    struct plugin_ctx *p = context(ctx);
    if (p->failed) return bRC_Error;
    return read_next_header(ctx) ? bRC_More : bRC_OK;
}

static bRC startRestoreFile(bpContext *ctx, const char *cmd) { (void)ctx; (void)cmd; return bRC_OK; }
static bRC endRestoreFile(bpContext *ctx) { (void)ctx; return bRC_OK; }

static bRC createFile(bpContext *ctx, struct restore_pkt *rp) {
    struct plugin_ctx *p = context(ctx);
    if (p->failed || p->backend <= 0) {
        rp->create_status = CF_ERROR;
        return bRC_Error;
    }
    if (rp->type == FT_DIREND) {
        /* A directory: its header alone (no data follows), and Bacula writes nothing. */
        uint8_t payload[8192];
        size_t length = pgk_encode_file(payload, sizeof payload, rp->ofname ? rp->ofname : "", 0, rp->statp.st_mode & 07777,
                                        rp->statp.st_mtime, PGK_FILE_DIRECTORY);
        if (length == 0 || write_frame(p, PGK_FRAME_FILE, payload, (uint32_t)length) != 0) {
            fail(ctx, "sending %s to the backend: %s", rp->ofname ? rp->ofname : "?", length ? strerror(errno) : "name too long");
            rp->create_status = CF_ERROR;
            return bRC_Error;
        }
        rp->create_status = CF_CREATED;
        return bRC_OK;
    }
    if (rp->type != FT_REG) {
        rp->create_status = CF_CREATED; /* nothing else is ever sent */
        return bRC_OK;
    }
    free(p->restore_path);
    p->restore_path = strdup(rp->ofname ? rp->ofname : "");
    p->restore_mode = rp->statp.st_mode;
    p->restore_size = rp->statp.st_size;
    p->restore_mtime = rp->statp.st_mtime;
    rp->create_status = CF_EXTRACT;
    return bRC_OK;
}

static bRC setFileAttributes(bpContext *ctx, struct restore_pkt *rp) { (void)ctx; (void)rp; return bRC_OK; }

/* Keeps what earlier jobs sent and this one need not send again: WAL and job records. */
static bRC checkFile(bpContext *ctx, char *fname) {
    struct plugin_ctx *p = context(ctx);
    if (p && p->prefix && strncmp(fname, p->prefix, strlen(p->prefix)) == 0) {
        const char *rest = fname + strlen(p->prefix);
        if (strncmp(rest, "wal/", 4) == 0 || strncmp(rest, "pgkeep/", 7) == 0) return bRC_Seen;
        /* An Incremental sends WAL alone: the data files of the jobs before it are all still there. */
        if (p->level == 'I' && !p->dump) return bRC_Seen;
    }
    return bRC_OK;
}

static bRC pluginIO(bpContext *ctx, struct io_pkt *io) {
    struct plugin_ctx *p = context(ctx);
    io->status = 0;
    io->io_errno = 0;
    if (p->failed) {
        io->status = -1;
        io->io_errno = EIO;
        return bRC_Error;
    }
    switch (io->func) {
    case IO_OPEN:
        if (p->restoring) {
            uint8_t payload[8192];
            size_t length = pgk_encode_file(payload, sizeof payload, p->restore_path ? p->restore_path : io->fname, p->restore_size,
                                            p->restore_mode & 07777, p->restore_mtime, PGK_FILE_REGULAR);
            if (length == 0 || write_frame(p, PGK_FRAME_FILE, payload, (uint32_t)length) != 0) {
                fail(ctx, "sending %s to the backend: %s", io->fname, length ? strerror(errno) : "name too long");
                io->status = -1;
                io->io_errno = EIO;
            }
        }
        return bRC_OK;
    case IO_READ:
        if (p->file_ended) return bRC_OK;
        while (p->data_offset == p->data_length) {
            pgk_frame frame;
            if (next_frame(ctx, &frame) != 1 || frame.kind == PGK_FRAME_DONE || frame.kind == PGK_FRAME_FILE) {
                if (!p->failed) fail(ctx, "the backend's file %s ended early", p->current_path ? p->current_path : "?");
                io->status = -1;
                io->io_errno = EIO;
                return bRC_Error;
            }
            if (frame.kind == PGK_FRAME_END) {
                p->file_ended = true;
                return bRC_OK;
            }
            p->data = frame.payload;
            p->data_length = frame.length;
            p->data_offset = 0;
        }
        {
            uint32_t take = p->data_length - p->data_offset;
            if (take > (uint32_t)io->count) take = (uint32_t)io->count;
            memcpy(io->buf, p->data + p->data_offset, take);
            p->data_offset += take;
            io->status = (int32_t)take;
        }
        return bRC_OK;
    case IO_WRITE:
        if (write_frame(p, PGK_FRAME_DATA, io->buf, (uint32_t)io->count) != 0) {
            fail(ctx, "sending %s to the backend: %s", p->restore_path ? p->restore_path : "?", strerror(errno));
            io->status = -1;
            io->io_errno = EIO;
            return bRC_Error;
        }
        io->status = io->count;
        return bRC_OK;
    case IO_CLOSE:
        if (p->restoring && write_frame(p, PGK_FRAME_END, NULL, 0) != 0) {
            fail(ctx, "sending %s to the backend: %s", p->restore_path ? p->restore_path : "?", strerror(errno));
            io->status = -1;
        }
        return bRC_OK;
    case IO_SEEK:
        return bRC_OK;
    default:
        io->status = -1;
        io->io_errno = EINVAL;
        return bRC_Error;
    }
}

static pFuncs plugin_funcs = {
    sizeof(pFuncs), FD_PLUGIN_INTERFACE_VERSION, newPlugin, freePlugin, getPluginValue, setPluginValue, handlePluginEvent,
    startBackupFile, endBackupFile, startRestoreFile, endRestoreFile, pluginIO, createFile, setFileAttributes, checkFile,
    NULL, NULL
};

__attribute__((visibility("default"))) bRC loadPlugin(bInfo *lbinfo, bFuncs *lbfuncs, pInfo **pinfo, pFuncs **pfuncs) {
    bfuncs = lbfuncs;
    if (!lbinfo || lbinfo->version != FD_PLUGIN_INTERFACE_VERSION) {
        unsigned found = lbinfo ? lbinfo->version : 0;
        fprintf(stderr, "pgkeep-fd: this File Daemon has plugin interface version %u; pgkeep-fd.so is built for version %d "
                        "(Bacula 9.6.x): not loaded\n", found, FD_PLUGIN_INTERFACE_VERSION);
        if (lbfuncs && lbfuncs->JobMessage)
            lbfuncs->JobMessage(NULL, __FILE__, __LINE__, M_ERROR, 0,
                                "pgkeep-fd: this File Daemon has plugin interface version %u; pgkeep-fd.so is built for version %d "
                                "(Bacula 9.6.x): not loaded\n", found, FD_PLUGIN_INTERFACE_VERSION);
        return bRC_Error;
    }
    *pinfo = &plugin_info;
    *pfuncs = &plugin_funcs;
    return bRC_OK;
}

__attribute__((visibility("default"))) bRC unloadPlugin(void) { return bRC_OK; }
