import ArgumentParser
import Foundation
import PGKeep
import PGWire

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a backup into a data directory, optionally to a point in time.",
        discussion: """
            Restores a plain or tar (compressed) backup into --target-dir (which must be empty, \
            or --force), with the 0700/0600 modes PostgreSQL requires. A plain backup is first \
            verified (as pgkeep verify does) and refused if it fails (--no-verify to skip). \
            Tablespaces: a tar backup's go back to the locations in its tablespace_map; a plain \
            backup's are stored with the backup, so --tablespace-mapping says where each goes.

            Point-in-time recovery: give the WAL archive (pgkeep receive-wal's directory) with \
            --wal-archive and at most one target. pgkeep writes recovery.signal and, in \
            postgresql.auto.conf, restore_command (pgkeep wal-fetch) and the recovery_target_* \
            settings; start the server on the directory to replay. A --target-lsn the backup \
            or the archive cannot reach is refused before anything is written.

            Examples:
              pgkeep restore /backups/db1/base --target-dir /srv/pg/restored \\
                --tablespace-mapping /backups/db1/ts=/srv/pg/ts
              pgkeep restore /backups/db1/base --target-dir /srv/pg/pitr --wal-archive /archive/db1 \\
                --target-time '2026-11-25 14:30:00+00' --target-action promote
            """)

    @Argument(help: ArgumentHelp("The backup directory (plain, or tar with base.tar).", valueName: "backup"))
    var backup: String

    @Option(name: [.customShort("D"), .customLong("target-dir")], help: ArgumentHelp("Where to restore to.", valueName: "directory"))
    var targetDirectory: String

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
        let targets = [targetTime, targetLSN, targetXID, targetName, target].compactMap { $0 }
        if targets.count > 1 { throw ValidationError("give at most one of --target-time, --target-lsn, --target-xid, --target-name, --target") }
        if let target, target != "immediate" { throw ValidationError("--target takes only 'immediate'") }
        if let targetLSN, LSN(targetLSN) == nil { throw ValidationError("--target-lsn '\(targetLSN)' is not a WAL position like 0/5000000") }
        if let targetAction, RecoveryTarget.Action(rawValue: targetAction) == nil { throw ValidationError("--target-action is pause, promote or shutdown") }
        if let targetTimeline, targetTimeline != "latest", targetTimeline != "current", UInt32(targetTimeline) == nil {
            throw ValidationError("--target-timeline is a number, latest or current")
        }
        if targets.isEmpty && (targetAction != nil) { throw ValidationError("--target-action needs a recovery target") }
    }

    func run() throws {
        let logger = logging.makeLogger()
        var configuration = RestoreJob.Configuration(backup: absolute(backup), targetDirectory: absolute(targetDirectory),
                                                     executable: currentExecutable())
        for mapping in tablespaceMappings {
            do { try configuration.tablespaceMapping.add(mapping) } catch { throw ValidationError("\(error)") }
        }
        configuration.force = force
        configuration.walArchive = walArchive.map(absolute)
        configuration.verify = !noVerify
        configuration.sync = !noSync
        var recovery = RecoveryTarget(action: targetAction.flatMap(RecoveryTarget.Action.init), timeline: targetTimeline)
        if let targetTime { recovery.kind = .time(targetTime) }
        if let targetLSN { recovery.kind = .lsn(LSN(targetLSN)!) }
        if let targetXID { recovery.kind = .xid(targetXID) }
        if let targetName { recovery.kind = .name(targetName) }
        if target != nil { recovery.kind = .immediate }
        configuration.target = recovery
        do {
            let summary = try RestoreJob(configuration: configuration, logger: logger).run()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(summary), as: UTF8.self))
            } else {
                print("restored \(summary.format) backup into \(summary.targetDirectory)")
                for tablespace in summary.tablespaces { print("  tablespace: \(tablespace)") }
                if !summary.recovery.isEmpty {
                    print("  recovery settings (postgresql.auto.conf, with recovery.signal):")
                    for line in summary.recovery { print("    \(line)") }
                }
            }
        } catch let error as BackupError {
            logger.error("\(error)")
            throw ExitCode(error.exitCode)
        }
    }
}

/// This binary's absolute path, for restore_command.
func currentExecutable() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    return count > 0 ? String(cString: buffer) : absolute(CommandLine.arguments[0])
}
