#ifndef PGKEEP_BACULA_FD_API_H
#define PGKEEP_BACULA_FD_API_H
/*
 * The Bacula 9.6.x File Daemon plugin interface, version 14, declared here field for field
 * (Bacula's own headers are C++ and not shipped by Debian). Layouts as in Release-9.6.7's
 * src/filed/fd_plugins.h and src/lib/plugins.h, checked below for x86-64 Linux.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define FD_PLUGIN_MAGIC "*FDPluginData*"
#define FD_PLUGIN_INTERFACE_VERSION 14

typedef enum {
    bRC_OK = 0, bRC_Stop = 1, bRC_Error = 2, bRC_More = 3, bRC_Term = 4, bRC_Seen = 5, bRC_Core = 6,
    bRC_Skip = 7, bRC_Cancel = 8, bRC_Max = 9999
} bRC;

typedef struct s_bpContext { void *bContext; void *pContext; } bpContext;
typedef struct s_baculaInfo { uint32_t size; uint32_t version; } bInfo;
typedef struct s_bEvent { uint32_t eventType; } bEvent;
typedef int64_t utime_t;

typedef enum {
    bVarJobId = 1, bVarFDName = 2, bVarLevel = 3, bVarType = 4, bVarClient = 5, bVarJobName = 6, bVarJobStatus = 7,
    bVarSinceTime = 8, bVarAccurate = 9, bVarFileSeen = 10, bVarVssObject = 11, bVarVssDllHandle = 12, bVarWorkingDir = 13,
    bVarWhere = 14, bVarRegexWhere = 15, bVarExePath = 16, bVarVersion = 17, bVarDistName = 18, bVarxxx = 19,
    bVarPrevJobName = 20, bVarPrefixLinks = 21, bVarInteractiveSession = 22, bVarFileIndex = 23, bVarReplace = 24
} bVariable;

typedef enum {
    bEventJobStart = 1, bEventJobEnd = 2, bEventStartBackupJob = 3, bEventEndBackupJob = 4, bEventStartRestoreJob = 5,
    bEventEndRestoreJob = 6, bEventStartVerifyJob = 7, bEventEndVerifyJob = 8, bEventBackupCommand = 9,
    bEventRestoreCommand = 10, bEventEstimateCommand = 11, bEventLevel = 12, bEventSince = 13, bEventCancelCommand = 14,
    bEventRestoreObject = 18, bEventEndFileSet = 19, bEventPluginCommand = 20
} bEventType;

typedef enum { pVarName = 1, pVarDescription = 2 } pVariable;

/* FT_* file types, CF_* create statuses, message types, I/O functions. */
enum { FT_REG = 3, FT_DIREND = 5, FT_DELETED = 23 };
enum { CF_SKIP = 1, CF_ERROR = 2, CF_EXTRACT = 3, CF_CREATED = 4, CF_CORE = 5 };
enum { M_FATAL = 3, M_ERROR = 4, M_WARNING = 5, M_INFO = 6 };
enum { IO_OPEN = 1, IO_READ = 2, IO_WRITE = 3, IO_CLOSE = 4, IO_SEEK = 5 };
#define FO_PORTABLE (1 << 10)

struct save_pkt {
    int32_t pkt_size;
    char *fname;
    char *link;
    struct stat statp;
    int32_t type;
    uint64_t flags;
    bool no_read;
    bool portable;
    bool accurate_found;
    char *cmd;
    uint32_t delta_seq;
    char *object_name;
    char *object;
    int32_t object_len;
    int32_t index;
    int32_t LinkFI;
    int32_t pkt_end;
};

struct restore_pkt {
    int32_t pkt_size;
    int32_t stream;
    int32_t data_stream;
    int32_t type;
    int32_t file_index;
    int32_t LinkFI;
    uid_t uid;
    struct stat statp;
    const char *attrEx;
    const char *ofname;
    const char *olname;
    const char *where;
    const char *RegexWhere;
    int replace;
    int create_status;
    uint32_t delta_seq;
    int32_t pkt_end;
};

struct io_pkt {
    int32_t pkt_size;
    int32_t func;
    int32_t count;
    int32_t flags;
    mode_t mode;
    char *buf;
    const char *fname;
    int32_t status;
    int32_t io_errno;
    int32_t lerror;
    int32_t whence;
    off_t offset;
    bool win32;
    int32_t pkt_end;
};

struct xacl_pkt { int32_t pkt_size; int32_t func; int32_t count; char *content; int32_t pkt_end; };
struct stream_pkt { int32_t pkt_size; int32_t stream; int32_t pkt_end; };

typedef struct s_baculaFuncs {
    uint32_t size;
    uint32_t version;
    bRC (*registerBaculaEvents)(bpContext *ctx, ...);
    bRC (*getBaculaValue)(bpContext *ctx, bVariable var, void *value);
    bRC (*setBaculaValue)(bpContext *ctx, bVariable var, void *value);
    bRC (*JobMessage)(bpContext *ctx, const char *file, int line, int type, utime_t mtime, const char *fmt, ...);
    bRC (*DebugMessage)(bpContext *ctx, const char *file, int line, int level, const char *fmt, ...);
    void *(*baculaMalloc)(bpContext *ctx, const char *file, int line, size_t size);
    void (*baculaFree)(bpContext *ctx, const char *file, int line, void *mem);
    bRC (*AddExclude)(bpContext *ctx, const char *file);
    bRC (*AddInclude)(bpContext *ctx, const char *file);
    bRC (*AddOptions)(bpContext *ctx, const char *opts);
    bRC (*AddRegex)(bpContext *ctx, const char *item, int type);
    bRC (*AddWild)(bpContext *ctx, const char *item, int type);
    bRC (*NewOptions)(bpContext *ctx);
    bRC (*NewInclude)(bpContext *ctx);
    bRC (*NewPreInclude)(bpContext *ctx);
    bRC (*checkChanges)(bpContext *ctx, struct save_pkt *sp);
    bRC (*AcceptFile)(bpContext *ctx, struct save_pkt *sp);
} bFuncs;

typedef struct s_pluginInfo {
    uint32_t size;
    uint32_t version;
    const char *plugin_magic;
    const char *plugin_license;
    const char *plugin_author;
    const char *plugin_date;
    const char *plugin_version;
    const char *plugin_description;
} pInfo;

typedef struct s_pluginFuncs {
    uint32_t size;
    uint32_t version;
    bRC (*newPlugin)(bpContext *ctx);
    bRC (*freePlugin)(bpContext *ctx);
    bRC (*getPluginValue)(bpContext *ctx, pVariable var, void *value);
    bRC (*setPluginValue)(bpContext *ctx, pVariable var, void *value);
    bRC (*handlePluginEvent)(bpContext *ctx, bEvent *event, void *value);
    bRC (*startBackupFile)(bpContext *ctx, struct save_pkt *sp);
    bRC (*endBackupFile)(bpContext *ctx);
    bRC (*startRestoreFile)(bpContext *ctx, const char *cmd);
    bRC (*endRestoreFile)(bpContext *ctx);
    bRC (*pluginIO)(bpContext *ctx, struct io_pkt *io);
    bRC (*createFile)(bpContext *ctx, struct restore_pkt *rp);
    bRC (*setFileAttributes)(bpContext *ctx, struct restore_pkt *rp);
    bRC (*checkFile)(bpContext *ctx, char *fname);
    bRC (*handleXACLdata)(bpContext *ctx, struct xacl_pkt *xacl);
    bRC (*checkStream)(bpContext *ctx, struct stream_pkt *sp);
} pFuncs;

/* The layout the 9.6.7 File Daemon was compiled with (x86-64 Linux, glibc). */
#if defined(__x86_64__)
_Static_assert(sizeof(struct stat) == 144, "struct stat");
_Static_assert(sizeof(struct save_pkt) == 240 && offsetof(struct save_pkt, statp) == 24 && offsetof(struct save_pkt, type) == 168
               && offsetof(struct save_pkt, flags) == 176 && offsetof(struct save_pkt, no_read) == 184 && offsetof(struct save_pkt, cmd) == 192
               && offsetof(struct save_pkt, pkt_end) == 236, "save_pkt");
_Static_assert(sizeof(struct restore_pkt) == 232 && offsetof(struct restore_pkt, statp) == 32 && offsetof(struct restore_pkt, ofname) == 184
               && offsetof(struct restore_pkt, where) == 200 && offsetof(struct restore_pkt, replace) == 216
               && offsetof(struct restore_pkt, create_status) == 220, "restore_pkt");
_Static_assert(sizeof(struct io_pkt) == 72 && offsetof(struct io_pkt, buf) == 24 && offsetof(struct io_pkt, status) == 40
               && offsetof(struct io_pkt, offset) == 56 && offsetof(struct io_pkt, win32) == 64, "io_pkt");
_Static_assert(sizeof(bFuncs) == 144, "bFuncs");
_Static_assert(sizeof(pInfo) == 56, "pInfo");
_Static_assert(sizeof(pFuncs) == 128, "pFuncs");
#endif

#endif
