// Written by tools/getopt-tables from each command's help (GetoptTable(helpText:));
// do not edit. GetoptTablesTests fails when a command's options no longer match.

extension GetoptTable {
    /// The option table of the command at `path` (its names from the root, "repo init").
    static func generated(for path: String) -> GetoptTable? {
        switch path {
        case "backup":
            return GetoptTable(
                long: [
                    "checkpoint": true,
                    "compress": true,
                    "create-slot": false,
                    "dbname": true,
                    "format": true,
                    "gzip": false,
                    "help": false,
                    "host": true,
                    "incremental": true,
                    "json": false,
                    "label": true,
                    "level": true,
                    "manifest-checksums": true,
                    "manifest-force-encode": false,
                    "max-rate": true,
                    "no-clean": false,
                    "no-estimate-size": false,
                    "no-manifest": false,
                    "no-password": false,
                    "no-slot": false,
                    "no-sync": false,
                    "no-verify-checksums": false,
                    "password": false,
                    "pgdata": true,
                    "port": true,
                    "progress": false,
                    "record-stream": true,
                    "repo": true,
                    "slot": true,
                    "status-interval": true,
                    "sync-method": true,
                    "tablespace-mapping": true,
                    "target": true,
                    "username": true,
                    "verbose": false,
                    "version": false,
                    "wal-method": true,
                    "waldir": true,
                    "write-recovery-conf": false,
                ],
                short: [
                    "?": .init(takesValue: false, long: "help"),
                    "C": .init(takesValue: false, long: "create-slot"),
                    "D": .init(takesValue: true, long: "pgdata"),
                    "F": .init(takesValue: true, long: "format"),
                    "N": .init(takesValue: false, long: "no-sync"),
                    "P": .init(takesValue: false, long: "progress"),
                    "R": .init(takesValue: false, long: "write-recovery-conf"),
                    "S": .init(takesValue: true, long: "slot"),
                    "T": .init(takesValue: true, long: "tablespace-mapping"),
                    "U": .init(takesValue: true, long: "username"),
                    "W": .init(takesValue: false, long: "password"),
                    "X": .init(takesValue: true, long: "wal-method"),
                    "Z": .init(takesValue: true, long: "compress"),
                    "c": .init(takesValue: true, long: "checkpoint"),
                    "d": .init(takesValue: true, long: "dbname"),
                    "h": .init(takesValue: true, long: "host"),
                    "i": .init(takesValue: true, long: "incremental"),
                    "l": .init(takesValue: true, long: "label"),
                    "n": .init(takesValue: false, long: "no-clean"),
                    "p": .init(takesValue: true, long: "port"),
                    "r": .init(takesValue: true, long: "max-rate"),
                    "s": .init(takesValue: true, long: "status-interval"),
                    "t": .init(takesValue: true, long: "target"),
                    "v": .init(takesValue: false, long: "verbose"),
                    "w": .init(takesValue: false, long: "no-password"),
                    "z": .init(takesValue: false, long: "gzip"),
                ])
        case "receive-wal":
            return GetoptTable(
                long: [
                    "compress": true,
                    "create-slot": false,
                    "dbname": true,
                    "directory": true,
                    "drop-slot": false,
                    "endpos": true,
                    "help": false,
                    "host": true,
                    "if-not-exists": false,
                    "json": false,
                    "metrics-addr": true,
                    "no-loop": false,
                    "no-password": false,
                    "no-sync": false,
                    "password": false,
                    "port": true,
                    "reconnect-attempts": true,
                    "reconnect-max-delay": true,
                    "slot": true,
                    "status-interval": true,
                    "synchronous": false,
                    "username": true,
                    "verbose": false,
                    "version": false,
                ],
                short: [
                    "?": .init(takesValue: false, long: "help"),
                    "D": .init(takesValue: true, long: "directory"),
                    "E": .init(takesValue: true, long: "endpos"),
                    "S": .init(takesValue: true, long: "slot"),
                    "U": .init(takesValue: true, long: "username"),
                    "W": .init(takesValue: false, long: "password"),
                    "Z": .init(takesValue: true, long: "compress"),
                    "d": .init(takesValue: true, long: "dbname"),
                    "h": .init(takesValue: true, long: "host"),
                    "n": .init(takesValue: false, long: "no-loop"),
                    "p": .init(takesValue: true, long: "port"),
                    "s": .init(takesValue: true, long: "status-interval"),
                    "v": .init(takesValue: false, long: "verbose"),
                    "w": .init(takesValue: false, long: "no-password"),
                ])
        case "verify":
            return GetoptTable(
                long: [
                    "backup": true,
                    "exit-on-error": false,
                    "format": true,
                    "help": false,
                    "ignore": true,
                    "json": false,
                    "manifest-path": true,
                    "no-parse-wal": false,
                    "no-wal": false,
                    "progress": false,
                    "quiet": false,
                    "repo": true,
                    "skip-checksums": false,
                    "version": false,
                    "wal-archive": true,
                    "wal-directory": true,
                ],
                short: [
                    "?": .init(takesValue: false, long: "help"),
                    "F": .init(takesValue: true, long: "format"),
                    "P": .init(takesValue: false, long: "progress"),
                    "e": .init(takesValue: false, long: "exit-on-error"),
                    "i": .init(takesValue: true, long: "ignore"),
                    "m": .init(takesValue: true, long: "manifest-path"),
                    "n": .init(takesValue: false, long: "no-parse-wal"),
                    "q": .init(takesValue: false, long: "quiet"),
                    "s": .init(takesValue: false, long: "skip-checksums"),
                    "w": .init(takesValue: true, long: "wal-directory"),
                ])
        case "restore":
            return GetoptTable(
                long: [
                    "backup": true,
                    "drill": false,
                    "drill-timeout": true,
                    "force": false,
                    "help": false,
                    "json": false,
                    "keep": false,
                    "no-sync": false,
                    "no-verify": false,
                    "pg-bin": true,
                    "repo": true,
                    "tablespace-mapping": true,
                    "target": true,
                    "target-action": true,
                    "target-dir": true,
                    "target-lsn": true,
                    "target-name": true,
                    "target-time": true,
                    "target-timeline": true,
                    "target-xid": true,
                    "verbose": false,
                    "version": false,
                    "wal-archive": true,
                ],
                short: [
                    "?": .init(takesValue: false, long: "help"),
                    "D": .init(takesValue: true, long: "target-dir"),
                    "N": .init(takesValue: false, long: "no-sync"),
                    "T": .init(takesValue: true, long: "tablespace-mapping"),
                    "v": .init(takesValue: false, long: "verbose"),
                ])
        case "wal-fetch":
            return GetoptTable(
                long: [
                    "help": false,
                    "partial": false,
                    "version": false,
                    "wal-archive": true,
                ],
                short: [
                    "?": .init(takesValue: false, long: "help"),
                ])
        case "repo":
            return GetoptTable(
                long: [
                    "help": false,
                    "version": false,
                ],
                short: [
                    "?": .init(takesValue: false, long: "help"),
                ])
        case "repo init":
            return GetoptTable(
                long: [
                    "compress": true,
                    "dbname": true,
                    "help": false,
                    "host": true,
                    "no-password": false,
                    "password": false,
                    "port": true,
                    "repo": true,
                    "slot": true,
                    "username": true,
                    "verbose": false,
                    "version": false,
                ],
                short: [
                    "?": .init(takesValue: false, long: "help"),
                    "U": .init(takesValue: true, long: "username"),
                    "W": .init(takesValue: false, long: "password"),
                    "Z": .init(takesValue: true, long: "compress"),
                    "d": .init(takesValue: true, long: "dbname"),
                    "h": .init(takesValue: true, long: "host"),
                    "p": .init(takesValue: true, long: "port"),
                    "v": .init(takesValue: false, long: "verbose"),
                    "w": .init(takesValue: false, long: "no-password"),
                ])
        case "repo export":
            return GetoptTable(
                long: [
                    "backup": true,
                    "help": false,
                    "repo": true,
                    "tablespace-mapping": true,
                    "target-dir": true,
                    "verbose": false,
                    "version": false,
                ],
                short: [
                    "?": .init(takesValue: false, long: "help"),
                    "D": .init(takesValue: true, long: "target-dir"),
                    "T": .init(takesValue: true, long: "tablespace-mapping"),
                    "v": .init(takesValue: false, long: "verbose"),
                ])
        case "list":
            return GetoptTable(
                long: [
                    "help": false,
                    "json": false,
                    "repo": true,
                    "version": false,
                ],
                short: [
                    "?": .init(takesValue: false, long: "help"),
                ])
        case "expire":
            return GetoptTable(
                long: [
                    "dry-run": false,
                    "help": false,
                    "keep-days": true,
                    "keep-full": true,
                    "repo": true,
                    "verbose": false,
                    "version": false,
                ],
                short: [
                    "?": .init(takesValue: false, long: "help"),
                    "v": .init(takesValue: false, long: "verbose"),
                ])
        case "dump":
            return GetoptTable(
                long: [
                    "abort-on-error": false,
                    "bin-dir": true,
                    "database": true,
                    "dbname": true,
                    "dump-opt": true,
                    "estimate": false,
                    "exclude-database": true,
                    "format": true,
                    "help": false,
                    "host": true,
                    "jobs": true,
                    "json": false,
                    "no-password": false,
                    "output": true,
                    "password": false,
                    "port": true,
                    "progress": false,
                    "username": true,
                    "verbose": false,
                    "version": false,
                ],
                short: [
                    "?": .init(takesValue: false, long: "help"),
                    "P": .init(takesValue: false, long: "progress"),
                    "U": .init(takesValue: true, long: "username"),
                    "W": .init(takesValue: false, long: "password"),
                    "d": .init(takesValue: true, long: "dbname"),
                    "h": .init(takesValue: true, long: "host"),
                    "j": .init(takesValue: true, long: "jobs"),
                    "o": .init(takesValue: true, long: "output"),
                    "p": .init(takesValue: true, long: "port"),
                    "v": .init(takesValue: false, long: "verbose"),
                    "w": .init(takesValue: false, long: "no-password"),
                ])
        case "restore-dump":
            return GetoptTable(
                long: [
                    "bin-dir": true,
                    "database": true,
                    "dbname": true,
                    "help": false,
                    "host": true,
                    "jobs": true,
                    "new-name": true,
                    "no-password": false,
                    "password": false,
                    "port": true,
                    "replace": true,
                    "roles": false,
                    "schema-only": false,
                    "table": true,
                    "username": true,
                    "verbose": false,
                    "version": false,
                ],
                short: [
                    "?": .init(takesValue: false, long: "help"),
                    "U": .init(takesValue: true, long: "username"),
                    "W": .init(takesValue: false, long: "password"),
                    "d": .init(takesValue: true, long: "dbname"),
                    "h": .init(takesValue: true, long: "host"),
                    "j": .init(takesValue: true, long: "jobs"),
                    "p": .init(takesValue: true, long: "port"),
                    "s": .init(takesValue: false, long: "schema-only"),
                    "t": .init(takesValue: true, long: "table"),
                    "v": .init(takesValue: false, long: "verbose"),
                    "w": .init(takesValue: false, long: "no-password"),
                ])
        case "bacula":
            return GetoptTable(
                long: [
                    "help": false,
                    "version": false,
                ],
                short: [
                    "?": .init(takesValue: false, long: "help"),
                ])
        case "bacula install-plugin":
            return GetoptTable(
                long: [
                    "help": false,
                    "plugin": true,
                    "plugin-dir": true,
                    "version": false,
                ],
                short: [
                    "?": .init(takesValue: false, long: "help"),
                ])
        case "bacula backend":
            return GetoptTable(
                long: [
                    "accurate": true,
                    "command": true,
                    "help": false,
                    "job-id": true,
                    "job-name": true,
                    "level": true,
                    "mode": true,
                    "replace": true,
                    "since": true,
                    "version": false,
                    "where": true,
                ],
                short: [
                    "?": .init(takesValue: false, long: "help"),
                ])
        case "check":
            return GetoptTable(
                long: [
                    "dbname": true,
                    "directory": true,
                    "help": false,
                    "host": true,
                    "json": false,
                    "no-password": false,
                    "password": false,
                    "port": true,
                    "repo": true,
                    "slot": true,
                    "username": true,
                    "version": false,
                ],
                short: [
                    "?": .init(takesValue: false, long: "help"),
                    "D": .init(takesValue: true, long: "directory"),
                    "S": .init(takesValue: true, long: "slot"),
                    "U": .init(takesValue: true, long: "username"),
                    "W": .init(takesValue: false, long: "password"),
                    "d": .init(takesValue: true, long: "dbname"),
                    "h": .init(takesValue: true, long: "host"),
                    "p": .init(takesValue: true, long: "port"),
                    "w": .init(takesValue: false, long: "no-password"),
                ])
        default:
            return nil
        }
    }
}
