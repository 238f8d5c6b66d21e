import ArgumentParser
import Codecs
import FoundationEssentials
import Glibc
import Logging
import PGConnection
import PGKeep
import PGWire
import Repository
import Sinks

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
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

    @Option(name: .long, help: ArgumentHelp(
        "Back up into this repository (pgkeep repo init) instead of a directory; with --level.", valueName: "directory"))
    var repo: String?

    @Option(name: .long, help: ArgumentHelp(
        "With --repo: full (a base backup and its WAL), differential (what changed since the newest full, and its WAL) or incremental (the WAL since the previous job).",
        valueName: "full|differential|incremental"))
    var level: BackupRecord.Level?

    @Option(name: [.customShort("D"), .customLong("pgdata")],
            help: ArgumentHelp("Directory to write the backup to; created, or must be empty. '-' writes the tar archive to standard output (-F tar, one tablespace, -X fetch or none).",
                               valueName: "directory"))
    var directory: String?

    @Option(name: [.customShort("F"), .long], help: ArgumentHelp(
        "Output format: plain (a data directory, ready to start) or tar (base.tar, <oid>.tar, pg_wal.tar).",
        valueName: "plain|tar"))
    var format: BackupConfiguration.Format = .plain

    @Option(name: [.customShort("X"), .customLong("wal-method")], help: ArgumentHelp(
        "WAL to include: stream (on a second connection, during the backup), fetch (at the end, in the archive; the server must still have it) or none.",
        valueName: "stream|fetch|none"))
    var walMethod: BackupConfiguration.WALMethod = .stream

    @Option(name: [.customShort("Z"), .long], help: ArgumentHelp(
        "Compression: [client-|server-]gzip|lz4|zstd[:LEVEL or level=N,workers=N], none, or 0-9 (gzip). Client compression needs -F tar; client zstd compresses on every online processor unless workers=N says otherwise (workers=0: one thread), and with no level named at level 3, except 1 MiB pieces of random-looking bytes that level 1 compresses as well (a named level applies to every piece); server compression (15+) is undone for -F plain.",
        valueName: "spec"))
    var compress: String?

    @Flag(name: [.customShort("z"), .long], help: "Compress the tar output with gzip (as -Z gzip).")
    var gzip = false

    @Option(name: [.customShort("t"), .long], help: ArgumentHelp(
        "Where the server puts the backup (15+): client (default), server:DIRECTORY (on the server's disk; needs pg_write_server_files), or blackhole (discarded). With a server target there is no -D, and -X must be fetch or none.",
        valueName: "target"))
    var target: String?

    @Option(name: .customLong("waldir"), help: ArgumentHelp(
        "Plain format: write WAL into this directory (absolute; new or empty) and make pg_wal a link to it.", valueName: "directory"))
    var walDirectory: String?

    @Option(name: [.customShort("i"), .long], help: ArgumentHelp(
        "Take an incremental backup (17+, summarize_wal = on) against this earlier backup's backup_manifest; combine with pg_combinebackup.",
        valueName: "manifest"))
    var incremental: String?

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

    @Flag(name: .customLong("no-slot"), help: "Stream WAL without a temporary replication slot (the server may remove WAL the backup still needs).")
    var noSlot = false

    @Option(name: [.customShort("s"), .customLong("status-interval")], help: ArgumentHelp(
        "Seconds between status reports while streaming WAL.", valueName: "seconds"))
    var statusInterval: Int = 10

    @Flag(name: [.customShort("N"), .customLong("no-sync")], help: "Do not wait for the backup to reach the disk (faster, unsafe).")
    var noSync = false

    @Option(name: .customLong("sync-method"), help: ArgumentHelp(
        "How to make the backup durable: fsync (each file and directory) or syncfs (the whole file system at once).",
        valueName: "fsync|syncfs"))
    var syncMethod: Durability.Method = .fsync

    @Option(name: .customLong("manifest-checksums"), help: ArgumentHelp(
        "Checksum in backup_manifest: NONE, CRC32C, SHA224, SHA256, SHA384, SHA512.", valueName: "algorithm"))
    var manifestChecksums: BaseBackupOptions.ManifestChecksums = .crc32c

    @Flag(name: .customLong("manifest-force-encode"), help: "Hex-encode every file name in backup_manifest.")
    var manifestForceEncode = false

    @Flag(name: .customLong("no-manifest"), help: "Ask for no backup_manifest (pgkeep then marks an unfinished backup with pgkeep.incomplete).")
    var noManifest = false

    @Flag(name: .customLong("no-verify-checksums"), help: "Do not let the server verify data-page checksums while reading.")
    var noVerifyChecksums = false

    @Flag(name: .customLong("no-estimate-size"), help: "With -P: do not let the server estimate the backup's size first.")
    var noEstimateSize = false

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
        if gzip && compress != nil { throw ValidationError("-z and -Z both choose the compression: give one") }
        if let maxRate { _ = try parseRate(maxRate) }
        if repo != nil {
            guard level != nil else { throw ValidationError("--repo needs --level full, differential or incremental") }
            guard directory == nil, target == nil else { throw ValidationError("--repo and -D/--target choose where the backup goes: give one") }
            return
        }
        if level != nil { throw ValidationError("--level goes with --repo") }
        let serverSide = try target.map(parseTarget) != .some(.client) && target != nil
        if serverSide && directory != nil { throw ValidationError("cannot specify both an output directory (-D) and a server-side --target") }
        if !serverSide && directory == nil { throw ValidationError("give the directory to write the backup to with -D DIRECTORY (or '-' for standard output)") }
        if directory == "-" && json { throw ValidationError("--json and -D - would both write to standard output") }
        if manifestForceEncode && noManifest { throw ValidationError("--manifest-force-encode and --no-manifest contradict each other") }
        guard statusInterval >= 0 else { throw ValidationError("--status-interval cannot be negative") }
    }

    func run() throws {
        if let repo, let level {
            try runRepository(repo, level: level)
            return
        }
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

    private func runRepository(_ repo: String, level: BackupRecord.Level) throws {
        let logger = logging.makeLogger(quietest: .notice)
        var configuration = RepositoryBackupJob.Configuration(repository: absolute(repo), level: level)
        var parameters = connection.parameters
        if connection.promptPassword { parameters.password = try readPassword() }
        configuration.connection = parameters
        configuration.checkpoint = checkpoint
        configuration.showProgress = progress
        configuration.sync = !noSync
        let renderer = ProgressRenderer()
        cancelJobOnSignals()
        let record: BackupRecord
        do {
            record = try RepositoryBackupJob(configuration: configuration, observer: JobObserver(logger: logger) { renderer.render($0) },
                                             cancellation: processCancellation).run()
        } catch {
            logger.error("\(error)")
            throw ExitCode(error.exitCode)
        }
        do {
            if json {
                try printJSON(record)
            } else {
                print("\(record.level.rawValue) backup \(record.id) stored in \(absolute(repo))")
                if let reason = record.fallbackReason { print("  note: \(reason)") }
                print("  WAL \(record.startLSN) to \(record.endLSN) on timeline \(record.timeline); \(record.files) files, \(ByteCount.describe(record.bytesReceived)) received, \(ByteCount.describe(record.bytesStored)) stored")
            }
        }
    }

    private func makeConfiguration() throws -> BackupConfiguration {
        let output = directory.map { $0 == "-" ? "-" : absolute($0) } ?? ""
        var configuration = BackupConfiguration(connection: connection.parameters, targetDirectory: output)
        configuration.format = format
        configuration.walMethod = walMethod
        configuration.compression = gzip ? CompressionSpec(algorithm: .gzip) : try compress.flatMap(parseCompression)
        configuration.target = try target.map(parseTarget) ?? .client
        configuration.walDirectory = walDirectory
        configuration.incrementalManifest = incremental.map(absolute)
        configuration.temporarySlot = !noSlot
        configuration.statusIntervalSeconds = max(1, statusInterval)
        configuration.manifest = noManifest ? .no : manifestForceEncode ? .forceEncode : .yes
        configuration.verifyChecksums = !noVerifyChecksums
        configuration.estimateSize = !noEstimateSize
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
            try printJSON(summary)
            return
        }
        let megabytes = Double(summary.bytesWritten) / 1_048_576
        var lines = ["backup complete: \(summary.directory)",
                     "  PostgreSQL \(summary.serverVersion), timeline \(summary.timeline), WAL \(summary.startLSN) to \(summary.endLSN)",
                     "  \(summary.files) files, \(megabytes.decimal(places: 1)) MB written in \(summary.seconds.decimal(places: 1)) s"]
        lines += summary.warnings.map { "  warning: \($0)" }
        // With -D - standard output carries the archive: the report goes to standard error.
        if directory == "-" { writeStandardError(lines.joined(separator: "\n") + "\n") } else { lines.forEach { print($0) } }
    }
}

// MARK: Parsing helpers

/// --target: client, server:/dir, blackhole (as pg_basebackup spells them).
private func parseTarget(_ text: String) throws -> BaseBackupOptions.Target {
    if text == "client" { return .client }
    if text == "blackhole" { return .blackhole }
    if text.hasPrefix("server:") {
        let directory = String(text.dropFirst("server:".count))
        guard directory.hasPrefix("/") else { throw ValidationError("--target server:DIRECTORY needs an absolute directory on the server") }
        return .server(directory: directory)
    }
    if text == "server" { throw ValidationError("--target server needs a directory: server:/path/on/the/server") }
    throw ValidationError("--target '\(text)': expected client, server:DIRECTORY or blackhole")
}

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

