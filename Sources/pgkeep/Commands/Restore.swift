import ArgumentParser
import FoundationEssentials
import Glibc
import Logging
import PGKeep
import Repository
import PGWire
import Sinks

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a backup into a data directory, optionally to a point in time.",
        discussion: """
            Restores a plain or tar (compressed) backup into --target-dir (which must be empty, \
            or --force), with the 0700/0600 modes PostgreSQL requires. The backup is verified \
            as pgkeep verify does and refused if it fails (--no-verify to skip): a plain \
            backup's file checksums as the files are copied (on a thread per processor), \
            everything else first; on any failure, nothing restored is left. \
            Tablespaces: a tar backup's go back to the locations in its tablespace_map; a plain \
            backup's are stored with the backup, so --tablespace-mapping says where each goes.

            Point-in-time recovery: give the WAL archive (pgkeep receive-wal's directory) with \
            --wal-archive and at most one target. pgkeep writes recovery.signal and, in \
            postgresql.auto.conf, restore_command (pgkeep wal-fetch) and the recovery_target_* \
            settings; start the server on the directory to replay. A target recovery cannot \
            reach (an LSN, time, xid or restore point the backup and the archive do not cover) \
            is refused before anything is written.

            --drill restores into a scratch directory, starts a server there, waits for \
            recovery, runs pg_amcheck, reports and cleans up: a restore test to schedule.

            Examples:
              pgkeep restore /backups/db1/base --target-dir /srv/pg/restored \\
                --tablespace-mapping /backups/db1/ts=/srv/pg/ts
              pgkeep restore /backups/db1/base --target-dir /srv/pg/pitr \\
                --wal-archive /archive/db1 --target-time '2026-11-25 14:30:00+00'
              pgkeep restore /backups/db1/base --drill --wal-archive /archive/db1 \\
                --pg-bin /usr/lib/postgresql/17/bin
            """)

    @Argument(help: ArgumentHelp("The backup directory (plain, or tar with base.tar).", valueName: "backup"))
    var backup: String?

    @Option(name: .long, help: ArgumentHelp(
        "Restore from this repository instead: the newest full (and its differential) consistent before the target, WAL from the repository.",
        valueName: "directory"))
    var repo: String?

    @Option(name: .customLong("backup"), help: ArgumentHelp("With --repo: this backup, or latest (default: chosen by the target).", valueName: "id"))
    var backupID: String?

    @Option(name: [.customShort("D"), .customLong("target-dir")], help: ArgumentHelp(
        "Where to restore to (with --drill: the scratch directory; default a new one under /tmp).", valueName: "directory"))
    var targetDirectory: String?

    @Flag(name: .long, help: "Restore drill: restore into a scratch directory, start a server, wait for recovery, run pg_amcheck, report, clean up.")
    var drill = false

    @Option(name: .customLong("pg-bin"), help: ArgumentHelp("With --drill: the PostgreSQL programs to use (default: pg_ctl's directory on PATH).", valueName: "directory"))
    var pgBin: String?

    @Option(name: .customLong("drill-timeout"), help: ArgumentHelp("With --drill: give up after this many seconds.", valueName: "seconds"))
    var drillTimeout: Int = 3600

    @Flag(name: .customLong("keep"), help: "With --drill: keep the scratch directory (the server is stopped either way).")
    var keep = false

    @Option(name: [.customShort("T"), .customLong("tablespace-mapping")], help: ArgumentHelp(
        "Restore the tablespace at OLD into NEW (repeatable).", valueName: "OLD=NEW"))
    var tablespaceMappings: [String] = []

    @Flag(name: .long, help: "Replace the contents of a non-empty target directory.")
    var force = false

    @Option(name: .customLong("wal-archive"), help: ArgumentHelp("WAL archive to recover from (sets restore_command).", valueName: "directory"))
    var walArchive: String?

    @Option(name: .customLong("target-time"), help: ArgumentHelp("Recover up to this time (a timestamp with time zone).", valueName: "timestamp"))
    var targetTime: String?

    @Option(name: .customLong("target-lsn"), help: ArgumentHelp("Recover up to this WAL position.", valueName: "lsn"))
    var targetLSN: String?

    @Option(name: .customLong("target-xid"), help: ArgumentHelp("Recover up to this transaction's commit.", valueName: "xid"))
    var targetXID: String?

    @Option(name: .customLong("target-name"), help: ArgumentHelp("Recover up to this restore point (pg_create_restore_point).", valueName: "name"))
    var targetName: String?

    @Option(name: .customLong("target"), help: ArgumentHelp("'immediate': stop as soon as the backup is consistent.", valueName: "immediate"))
    var target: String?

    @Option(name: .customLong("target-action"), help: ArgumentHelp("What the server does at the target.", valueName: "pause|promote|shutdown"))
    var targetAction: String?

    @Option(name: .customLong("target-timeline"), help: ArgumentHelp("Timeline to recover along: a number, latest or current.", valueName: "timeline"))
    var targetTimeline: String?

    @Flag(name: .customLong("no-verify"), help: "Restore without verifying the backup first.")
    var noVerify = false

    @Flag(name: [.customShort("N"), .customLong("no-sync")], help: "Do not fsync the restored files (faster, unsafe).")
    var noSync = false

    @Flag(name: .long, help: "Print a JSON summary on stdout.")
    var json = false

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if (backup == nil) == (repo == nil) { throw ValidationError("give a backup directory, or --repo DIR") }
        if backupID != nil && repo == nil { throw ValidationError("--backup ID goes with --repo") }
        if repo != nil && walArchive != nil { throw ValidationError("--repo restores with the repository's own WAL: drop --wal-archive") }
        let targets = [targetTime, targetLSN, targetXID, targetName, target].compactMap { $0 }
        if targets.count > 1 { throw ValidationError("give at most one of --target-time, --target-lsn, --target-xid, --target-name, --target") }
        if let target, target != "immediate" { throw ValidationError("--target takes only 'immediate'") }
        if let targetLSN, LSN(targetLSN) == nil { throw ValidationError("--target-lsn '\(targetLSN)' is not a WAL position like 0/5000000") }
        if let targetAction, RecoveryTarget.Action(rawValue: targetAction) == nil { throw ValidationError("--target-action is pause, promote or shutdown") }
        if let targetTimeline, targetTimeline != "latest", targetTimeline != "current", UInt32(targetTimeline) == nil {
            throw ValidationError("--target-timeline is a number, latest or current")
        }
        if targets.isEmpty && (targetAction != nil) { throw ValidationError("--target-action needs a recovery target") }
        if targetDirectory == nil && !drill { throw ValidationError("give the directory to restore to with --target-dir") }
        if drill && targetAction == "shutdown" { throw ValidationError("--drill needs a server that stays up: --target-action promote or pause") }
    }

    func run() throws {
        let logger = logging.makeLogger(quietest: drill ? .notice : .warning)
        let scratch = try drill ? (targetDirectory.map(absolute) ?? makeScratch()) : nil
        let dataDirectory = scratch.map { $0 + "/data" } ?? absolute(targetDirectory!)
        var configuration = RestoreJob.Configuration(backup: absolute(backup ?? ""), targetDirectory: dataDirectory,
                                                     executable: currentExecutable())
        for mapping in tablespaceMappings {
            do { try configuration.tablespaceMapping.add(mapping) } catch { throw ValidationError("\(error)") }
        }
        configuration.force = force
        configuration.walArchive = walArchive.map(absolute)
        configuration.verify = !noVerify
        configuration.sync = !noSync && !drill
        configuration.unmappedTablespacesUnder = scratch.map { $0 + "/tablespaces" }
        var recovery = RecoveryTarget(action: targetAction.flatMap(RecoveryTarget.Action.init), timeline: targetTimeline)
        if let targetTime { recovery.kind = .time(targetTime) }
        if let targetLSN { recovery.kind = .lsn(LSN(targetLSN)!) }
        if let targetXID { recovery.kind = .xid(targetXID) }
        if let targetName { recovery.kind = .name(targetName) }
        if target != nil { recovery.kind = .immediate }
        // A drill waits for the promoted server; PostgreSQL's default at a target is to pause.
        if drill && recovery.kind != nil && recovery.action == nil { recovery.action = .promote }
        configuration.target = recovery
        let started = Date()
        if let repo {
            try restoreFromRepository(repo, recovery: recovery, scratch: scratch, dataDirectory: dataDirectory, started: started, logger: logger)
            return
        }
        let restored = try runJob(scratch: scratch, dataDirectory: dataDirectory, started: started, logger: logger) { () throws(PGKeepError) in
            try RestoreJob(configuration: configuration, observer: JobObserver(logger: logger), cancellation: processCancellation).run()
        }
        guard let summary = restored else { return }
        if json {
            try printJSON(summary)
        } else {
            print("restored \(summary.format) backup into \(summary.targetDirectory)")
            for tablespace in summary.tablespaces { print("  tablespace: \(tablespace)") }
            if !summary.recovery.isEmpty {
                print("  recovery settings (postgresql.auto.conf, with recovery.signal):")
                for line in summary.recovery { print("    \(line)") }
            }
        }
    }

    private func restoreFromRepository(_ repo: String, recovery: RecoveryTarget, scratch: String?, dataDirectory: String, started: Date,
                                       logger: Logger) throws {
        var configuration = RepositoryRestoreJob.Configuration(repository: absolute(repo), targetDirectory: dataDirectory,
                                                               executable: currentExecutable())
        for mapping in tablespaceMappings {
            do { try configuration.tablespaceMapping.add(mapping) } catch { throw ValidationError("\(error)") }
        }
        configuration.backup = backupID
        configuration.target = recovery
        configuration.force = force
        configuration.sync = !noSync && !drill
        configuration.unmappedTablespacesUnder = scratch.map { $0 + "/tablespaces" }
        let restored = try runJob(scratch: scratch, dataDirectory: dataDirectory, started: started, logger: logger) { () throws(PGKeepError) in
            try RepositoryRestoreJob(configuration: configuration, observer: JobObserver(logger: logger), cancellation: processCancellation).run()
        }
        guard let summary = restored else { return }
        if json {
            try printJSON(summary)
        } else {
            print("restored backup \(summary.backup)\(summary.full == summary.backup ? "" : " (on full \(summary.full))") into \(summary.targetDirectory)")
            print("  \(summary.files) files, \(summary.reconstructed) rebuilt from incremental blocks")
            for tablespace in summary.tablespaces { print("  tablespace: \(tablespace)") }
            print("  recovery settings (postgresql.auto.conf, with recovery.signal):")
            for line in summary.recovery { print("    \(line)") }
        }
    }

    /// Runs a restore job that SIGINT and SIGTERM cancel. A failure is logged, a drill's own
    /// scratch area removed, and the job's exit code thrown; a drill then starts what was
    /// restored (and nil is returned: the drill reported). Else the job's summary, to print.
    private func runJob<Summary>(scratch: String?, dataDirectory: String, started: Date, logger: Logger,
                                 _ job: () throws(PGKeepError) -> Summary) throws -> Summary? {
        let summary: Summary
        do {
            cancelJobOnSignals()
            summary = try job()
        } catch {
            logger.error("\(error)")
            if let scratch, targetDirectory == nil { try? FileManager.default.removeItem(atPath: scratch) }
            throw ExitCode(error.exitCode)
        }
        if let scratch {
            try runDrill(scratch: scratch, dataDirectory: dataDirectory, restoreSeconds: Date().timeIntervalSince(started), logger: logger)
            return nil
        }
        return summary
    }

    private func runDrill(scratch: String, dataDirectory: String, restoreSeconds: Double, logger: Logger) throws {
        defer {
            if keep { logger.notice("drill: kept \(scratch)") } else { try? FileManager.default.removeItem(atPath: scratch) }
        }
        guard let binaries = pgBin.map(absolute) ?? RestoreDrill.binariesOnPath() else {
            logger.error("drill: no PostgreSQL programs found; give their directory with --pg-bin")
            throw ExitCode(2)
        }
        let report: RestoreDrill.Report
        do {
            report = try RestoreDrill(binaries: binaries, timeoutSeconds: drillTimeout, logger: logger)
                .run(dataDirectory: dataDirectory, scratch: scratch, restoreSeconds: restoreSeconds)
        } catch {
            logger.error("drill failed: \(error)")
            throw ExitCode(1)
        }
        if json {
            try printJSON(report)
        } else {
            print("drill \(report.ok ? "passed" : "FAILED"): \(report.serverVersion)")
            print("  restored in \(report.restoreSeconds.decimal(places: 1)) s, recovered to \(report.recoveredTo) (timeline \(report.timeline)) in \(report.recoverySeconds.decimal(places: 1)) s")
            print("  pg_amcheck: \(report.amcheckPassed ? "passed" : "found problems")")
            if !report.amcheckPassed { print(report.amcheck) }
        }
        if !report.ok { throw ExitCode(1) }
    }

    /// Traversable by the postgres user the drill's server runs as (its data directory inside
    /// is 0700).
    private func makeScratch() throws -> String {
        let path = try TargetDirectory.makeTemporary(prefix: "pgkeep-drill-")
        chmod(path, 0o755)
        return path
    }
}

/// This binary's absolute path, for restore_command.
func currentExecutable() -> String {
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = buffer.withUnsafeMutableBytes { readlink("/proc/self/exe", $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count - 1) }
    return count > 0 ? String(decoding: buffer.prefix(count), as: UTF8.self) : absolute(CommandLine.arguments[0])
}
