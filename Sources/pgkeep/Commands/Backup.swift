import ArgumentParser
import Codecs
import Foundation
import Logging
import PGConnection
import PGKeep
import PGWire
import Sinks

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Take a base backup of a running cluster into a directory.",
        discussion: """
            The server sends the cluster's files with BASE_BACKUP; by default the WAL written \
            meanwhile is streamed alongside (-X stream), so the backup is self-contained: it can \
            be started as a server, or checked with pg_verifybackup.

            The backup is complete once backup_manifest exists in the directory: pgkeep writes it \
            last, after everything else is on disk. If the backup fails, pgkeep removes what it \
            wrote (keep it for inspection with --no-clean).

            Examples:
              pgkeep backup -d 'host=db1 user=backup' -D /backups/db1/2026-11-25 -P
              pgkeep backup -h /run/postgresql -D /backups/base -F tar -Z zstd:level=3,workers=2
              pgkeep backup -D /backups/base -Z server-lz4 -c fast --json
            """)

    @OptionGroup(title: "Connection") var connection: ConnectionOptions

    @Option(name: [.customShort("D"), .customLong("pgdata")],
            help: ArgumentHelp("Directory to write the backup to; created, or must be empty.", valueName: "directory"))
    var directory: String

    @Option(name: [.customShort("F"), .long], help: ArgumentHelp(
        "Output format: plain (a data directory, ready to start) or tar (base.tar, <oid>.tar, pg_wal.tar).",
        valueName: "plain|tar"))
    var format: BackupConfiguration.Format = .plain

    @Option(name: [.customShort("X"), .customLong("wal-method")], help: ArgumentHelp(
        "WAL to include: stream (on a second connection, during the backup), fetch (at the end, in the archive; the server must still have it) or none.",
        valueName: "stream|fetch|none"))
    var walMethod: BackupConfiguration.WALMethod = .stream

    @Option(name: [.customShort("Z"), .long], help: ArgumentHelp(
        "Compression: [client-|server-]gzip|lz4|zstd[:LEVEL or level=N,workers=N], none, or 0-9 (gzip). Client compression needs -F tar; server compression (15+) is undone for -F plain.",
        valueName: "spec"))
    var compress: String?

    @Option(name: [.customShort("T"), .customLong("tablespace-mapping")], help: ArgumentHelp(
        "Write the tablespace at OLD into NEW instead (plain format; repeatable).", valueName: "OLD=NEW"))
    var tablespaceMappings: [String] = []

    @Option(name: [.customShort("c"), .long], help: ArgumentHelp(
        "Checkpoint to start with: fast (now, with I/O burst) or spread (paced by the server).", valueName: "fast|spread"))
    var checkpoint: BaseBackupOptions.Checkpoint = .spread

    @Option(name: [.customShort("l"), .long], help: "Backup label.")
    var label: String = "pgkeep base backup"

    @Flag(name: [.customShort("P"), .long], help: "Show progress.")
    var progress = false

    @Option(name: [.customShort("r"), .customLong("max-rate")], help: ArgumentHelp(
        "Limit the server's send rate (kB/s; suffix k or M), 32k to 1024M.", valueName: "rate"))
    var maxRate: String?

    @Flag(name: [.customShort("R"), .customLong("write-recovery-conf")],
          help: "Make the backup start as a standby of this server (standby.signal, primary_conninfo).")
    var writeRecoveryConf = false

    @Option(name: [.customShort("S"), .long], help: "Stream WAL from this replication slot (else a temporary one).")
    var slot: String?

    @Flag(name: [.customShort("C"), .customLong("create-slot")], help: "Create the --slot first (it persists).")
    var createSlot = false

    @Flag(name: [.customShort("N"), .customLong("no-sync")], help: "Do not wait for the backup to reach the disk (faster, unsafe).")
    var noSync = false

    @Option(name: .customLong("sync-method"), help: ArgumentHelp(
        "How to make the backup durable: fsync (each file and directory) or syncfs (the whole file system at once).",
        valueName: "fsync|syncfs"))
    var syncMethod: Durability.Method = .fsync

    @Option(name: .customLong("manifest-checksums"), help: ArgumentHelp(
        "Checksum in backup_manifest: NONE, CRC32C, SHA224, SHA256, SHA384, SHA512.", valueName: "algorithm"))
    var manifestChecksums: BaseBackupOptions.ManifestChecksums = .crc32c

    @Flag(name: [.customShort("n"), .customLong("no-clean")],
          help: "On failure, keep what was written (it stays without backup_manifest: incomplete).")
    var noClean = false

    @Flag(name: .long, help: "Print a JSON summary on stdout (LSNs, timeline, bytes, seconds, files, warnings).")
    var json = false

    @OptionGroup var logging: LoggingOptions

    @Option(name: .customLong("record-stream"), help: ArgumentHelp("Write the BASE_BACKUP conversation to a file (for test fixtures).",
                                                                   visibility: .hidden))
    var recordStream: String?

    func validate() throws {
        if connection.noPassword && connection.promptPassword { throw ValidationError("-w and -W contradict each other") }
        if createSlot && slot == nil { throw ValidationError("--create-slot needs --slot NAME") }
        if let slot, SlotName(slot) == nil {
            throw ValidationError("slot name '\(slot)' is invalid: use lower-case letters, digits and underscores (at most 63)")
        }
        if let compress { _ = try parseCompression(compress) }
        if let maxRate { _ = try parseRate(maxRate) }
    }

    func run() throws {
        let logger = logging.makeLogger()
        var configuration = try makeConfiguration()
        if connection.promptPassword { configuration.connection.password = try readPassword() }
        do {
            let summary = try runPrompting(&configuration, logger: logger)
            try report(summary)
        } catch let error as PGKeepError {
            logger.error("\(error)")
            throw ExitCode(error.exitCode)
        }
    }

    /// Runs the job; when the server wants a password we did not have and a person is at the
    /// terminal, asks once and tries again (nothing is written before the connection succeeds).
    private func runPrompting(_ configuration: inout BackupConfiguration, logger: Logger) throws -> BackupSummary {
        let renderer = ProgressRenderer()
        let observer = JobObserver(logger: logger) { renderer.render($0) }
        cancelJobOnSignals()
        do {
            return try BackupJob(configuration: configuration, observer: observer, cancellation: processCancellation).run()
        } catch {
            guard error.passwordNeeded, configuration.connection.password == nil, !connection.noPassword, isatty(STDIN_FILENO) == 1
            else { throw error }
            configuration.connection.password = try readPassword()
            return try BackupJob(configuration: configuration, observer: observer, cancellation: processCancellation).run()
        }
    }

    private func makeConfiguration() throws -> BackupConfiguration {
        var configuration = BackupConfiguration(connection: connection.parameters, targetDirectory: absolute(directory))
        configuration.format = format
        configuration.walMethod = walMethod
        configuration.compression = try compress.flatMap(parseCompression)
        for mapping in tablespaceMappings {
            do { try configuration.tablespaceMapping.add(mapping) } catch { throw ValidationError("\(error)") }
        }
        configuration.checkpoint = checkpoint
        configuration.label = label
        configuration.showProgress = progress
        configuration.maxRateKBps = try maxRate.map(parseRate)
        configuration.writeRecoveryConfig = writeRecoveryConf
        configuration.slot = slot.flatMap(SlotName.init)
        configuration.createSlot = createSlot
        configuration.sync = !noSync
        configuration.syncMethod = syncMethod
        configuration.manifestChecksums = manifestChecksums
        configuration.keepOnFailure = noClean
        configuration.recordStreamPath = recordStream.map(absolute)
        do { try configuration.validate() } catch { throw ValidationError("\(error)") }
        return configuration
    }

    private func report(_ summary: BackupSummary) throws {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
            return
        }
        let megabytes = Double(summary.bytesWritten) / 1_048_576
        print("backup complete: \(summary.directory)")
        print("  PostgreSQL \(summary.serverVersion), timeline \(summary.timeline), WAL \(summary.startLSN) to \(summary.endLSN)")
        print("  \(summary.files) files, \(String(format: "%.1f", megabytes)) MB written in \(String(format: "%.1f", summary.seconds)) s")
        for warning in summary.warnings { print("  warning: \(warning)") }
    }
}

// MARK: Parsing helpers

private func parseCompression(_ text: String) throws -> CompressionSpec? {
    do { return try CompressionSpec.parse(text) } catch { throw ValidationError("--compress: \(error)") }
}

/// pg_basebackup's --max-rate: kB/s, or with a k or M suffix.
private func parseRate(_ text: String) throws -> Int {
    var digits = Substring(text), factor = 1
    if text.hasSuffix("M") { digits = digits.dropLast(); factor = 1024 } else if text.hasSuffix("k") { digits = digits.dropLast() }
    guard let value = Int(digits), value > 0 else { throw ValidationError("--max-rate '\(text)' is not a rate like 512k or 100M") }
    let rate = value * factor
    guard (32...1_048_576).contains(rate) else { throw ValidationError("--max-rate must be between 32k and 1024M") }
    return rate
}

