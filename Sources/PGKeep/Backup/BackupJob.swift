#if canImport(Glibc)
import Glibc
#endif
import Logging
import ArchiveStream
import Codecs
import PGConnection
import PGWire
import Sinks
import WAL

/// `pgkeep backup`: a base backup of a running cluster into a directory, over the replication
/// protocol, with the WAL that makes it consistent.
///
/// Order of work, and why:
/// 1. Connect and check the server (version, wal_level, segment size) before touching the disk,
///    so a misconfigured server leaves nothing behind.
/// 2. Start the WAL stream (own connection, own thread, temporary slot) before BASE_BACKUP, so the
///    server keeps every segment from the backup's start.
/// 3. Receive the archives through their stage chains; the manifest goes to backup_manifest.tmp.
/// 4. After the end position: wait for WAL up to it, sync everything, and only then rename
///    backup_manifest.tmp to backup_manifest. That rename is the mark of a complete backup; on
///    any failure what this run wrote is removed (unless `keepOnFailure`).
public final class BackupJob {
    private let configuration: BackupConfiguration
    private let observer: JobObserver
    private let cancellation: CancellationToken
    private let consumer: BackupArchiveConsumer?
    private var logger: Logger { observer.logger }
    private var warnings: [String] = []

    /// With a `consumer`, the archives go to it (and `targetDirectory`, `format` and the WAL
    /// method do not apply: the caller archives WAL its own way).
    public init(configuration: BackupConfiguration, observer: JobObserver, cancellation: CancellationToken = CancellationToken(),
                consumer: BackupArchiveConsumer? = nil) {
        self.configuration = configuration
        self.observer = observer
        self.cancellation = cancellation
        self.consumer = consumer
    }

    /// What the last run learned about the server (for callers that go on talking to it).
    public private(set) var serverFacts: ServerFacts?

    public struct ServerFacts: Sendable {
        public var version: ServerVersion
        public var system: IdentifySystem
        public var segmentSize: WALSegmentSize
    }

    public func run() throws(PGKeepError) -> BackupSummary {
        do {
            return try runUnmapped()
        } catch {
            throw PGKeepError.mapping(error)
        }
    }

    private func runUnmapped() throws -> BackupSummary {
        try configuration.validate()
        let started = MonotonicClock.now()
        let connection = try ReplicationConnection(configuration.connection, mode: .physicalReplication, onNotice: { [logger] notice in
            logger.warning("\(notice.displayText)", metadata: ["server-notice": "\(notice.sqlState)"])
        }, isCancelled: { [cancellation] in cancellation.isCancelled })
        let version = connection.serverVersion
        guard version.isSupported else {
            throw PGKeepError.unsupportedServer("server version \(version) is not supported: pgkeep needs PostgreSQL \(ServerVersion.minimumSupported.major) or later")
        }
        if version.major > ServerVersion.supportedMajors.upperBound {
            logger.warning("server version \(version) is newer than pgkeep was tested with (\(ServerVersion.supportedMajors.upperBound))")
        }
        let system = try connection.identifySystem()
        let walLevel = try connection.show("wal_level")
        guard walLevel != "minimal" else {
            throw PGKeepError.server("the server runs with wal_level = minimal, which cannot make an online backup",
                                     hint: "set wal_level = replica on the server and restart it")
        }
        let segmentSetting = try connection.show("wal_segment_size")
        guard let segmentSize = WALSegmentSize(setting: segmentSetting) else {
            throw PGKeepError.protocolViolation("wal_segment_size '\(segmentSetting)'")
        }
        // A cluster initialised with group access gets a backup the group can read too.
        let modes = FileModes(dataDirectoryMode: try connection.show("data_directory_mode"))
        serverFacts = ServerFacts(version: version, system: system, segmentSize: segmentSize)
        if let compression = configuration.compression, compression.location == .server, !version.supportsServerCompression {
            throw PGKeepError.invalidConfiguration("server-side compression needs PostgreSQL 15 or later (the server is \(version)); use client-\(compression.algorithm)")
        }
        if configuration.isServerSide, !version.supportsServerCompression {
            throw PGKeepError.invalidConfiguration("server-side backup targets need PostgreSQL 15 or later (the server is \(version))")
        }
        if configuration.incrementalManifest != nil, !version.supportsIncremental {
            throw PGKeepError.invalidConfiguration("the server (\(version)) does not support incremental backups: they need PostgreSQL 17 or later")
        }
        logger.info("connected to PostgreSQL \(version) at \(connection.endpoint), system \(system.systemIdentifier), timeline \(system.timeline), WAL segments of \(segmentSize)")

        if configuration.createSlot, let slot = configuration.slot {
            _ = try connection.run(.createPhysicalSlot(slot, temporary: false, reserveWAL: true))
            logger.info("created replication slot \(slot)")
        }

        let output = try prepareOutput(modes: modes)
        let target: TargetDirectory? = if case .directory(let directory) = output { directory } else { nil }
        var walTarget: TargetDirectory?
        let recovery = configuration.writeRecoveryConfig
            ? RecoverySettings.lines(connectionOptions: connection.optionsForStandby(), slot: configuration.slot?.rawValue,
                                     databaseName: configuration.connection.explicitDatabaseName) : nil
        let router = ArchiveRouter(configuration: configuration, version: version, output: output, recoverySettings: recovery, modes: modes)
        var streamer: WALStreamer?
        do {
            if let target {
                if configuration.manifest == .no {
                    try Durability.writeFileAtomically([], named: Self.incompleteMarker, in: target.path, sync: false, mode: modes.file)
                }
                walTarget = try prepareWALDirectory(in: target, modes: modes)
            }
            streamer = try startWALStream(segmentSize: segmentSize, timeline: system.timeline, walDirectory: walTarget?.path ?? target.map { $0.path + "/pg_wal" },
                                          tarDirectory: target?.path, modes: modes)
            if let manifestPath = configuration.incrementalManifest {
                logger.info("uploading \(manifestPath) for an incremental backup")
                try connection.uploadManifest { send in try forEachChunk(ofFileAt: manifestPath, chunkSize: 64 << 10, send) }
            }
            let stream: CommandStream = try configuration.recordStreamPath.map { try RecordingStream(recording: connection, to: $0) } ?? connection
            let driver = BaseBackupDriver(connection: stream, router: router,
                                          progress: configuration.showProgress ? ProgressPacer(observer.progress) : nil,
                                          manifestRequested: configuration.manifest != .no && !configuration.isServerSide)
            driver.onStart = { [logger] lsn, timeline in
                logger.info("backup started at \(lsn) on timeline \(timeline)")
                streamer?.begin(at: lsn)
            }
            driver.onEnd = { [logger] lsn in
                logger.info("server finished sending the backup; end position \(lsn)\(streamer == nil ? "" : ", waiting for WAL")")
                streamer?.requestStop(at: lsn)
            }
            driver.shouldAbort = { [cancellation] in
                if cancellation.isCancelled { throw PGKeepError(.cancelled, "backup cancelled") }
                if let failure = streamer?.failure { throw PGKeepError.mapping(failure) }
            }
            let options = baseBackupOptions()
            logger.info("starting base backup (checkpoint: \(options.checkpoint.rawValue))")
            let positions = try driver.run(options)
            let outcome = try streamer?.wait()
            noteChecksumWarnings(connection.collectedNotices())

            if let target {
                try makeDurable([target] + router.tablespaceTargets + (walTarget.map { [$0] } ?? []))
                // The mark of a complete backup, made last.
                if configuration.manifest == .no {
                    try Durability.remove(Self.incompleteMarker, in: target.path, sync: configuration.sync)
                } else {
                    try Durability.durableRename(in: target.path, from: ArchiveRouter.manifestTemporaryName, to: ArchiveRouter.manifestName,
                                                 sync: configuration.sync)
                }
            }

            let stats = router.statistics
            if configuration.format == .plain, target != nil {
                logger.debug("\(stats.filesMadeAhead) of \(stats.files) files were made ahead on a thread of their own, the rest as they arrived")
            }
            let where_: String = switch configuration.target {
            case .client: target?.path ?? "standard output"
            case .server(let directory): "server:" + directory
            case .blackhole: "blackhole"
            }
            return BackupSummary(
                directory: where_, format: configuration.format.rawValue, serverVersion: version.description,
                systemIdentifier: system.systemIdentifier, startLSN: positions.start.description, endLSN: positions.end.description,
                timeline: positions.timeline.rawValue, walMethod: configuration.walMethod.rawValue,
                walSegments: outcome?.segmentsWritten ?? 0,
                compression: configuration.compression?.description,
                tablespaces: router.tablespaces.filter { !$0.isMainDirectory }.map { tablespace in
                    (try? target.map { try ArchiveRouter.plainLocation(of: tablespace, root: $0.path, mapping: configuration.tablespaceMapping) }) ?? nil
                        ?? tablespace.location ?? ""
                },
                files: stats.files, bytesReceived: stats.bytesReceived, bytesWritten: stats.bytesWritten,
                seconds: Double(MonotonicClock.now() - started) / 1e6, warnings: warnings)
        } catch {
            streamer?.cancel()
            _ = try? streamer?.wait()
            let failure = Self.checksumFailure(error, notices: connection.collectedNotices()) ?? error
            if let target {
                if configuration.keepOnFailure {
                    logger.error("keeping the incomplete backup in \(target.path) (--no-clean): it has no backup_manifest and is not usable")
                } else {
                    target.discard()
                    router.tablespaceTargets.forEach { $0.discard() }
                    walTarget?.discard()
                    logger.info("removed the incomplete backup from \(target.path)")
                }
            }
            throw failure
        }
    }

    /// While a backup made without a manifest is under way, this file says so; it is removed last.
    static let incompleteMarker = "pgkeep.incomplete"

    /// The backup's own directory (new, or empty), standard output, or nothing at all.
    private func prepareOutput(modes: FileModes) throws -> ArchiveRouter.Output {
        if let consumer { return .consumer(consumer) }
        if configuration.isServerSide { return .none }
        if configuration.writesToStandardOutput {
            guard isatty(STDOUT_FILENO) == 0 else {
                throw PGKeepError.invalidConfiguration("refusing to write a tar archive to a terminal: redirect standard output (pgkeep backup -D - -F tar > base.tar)")
            }
            return .standardOutput
        }
        return .directory(try TargetDirectory(preparing: configuration.targetDirectory, mode: modes.directory))
    }

    /// `--waldir`: a new or empty directory, and pg_wal a symlink to it.
    private func prepareWALDirectory(in target: TargetDirectory, modes: FileModes) throws -> TargetDirectory? {
        guard let path = configuration.walDirectory else { return nil }
        let directory: TargetDirectory
        do { directory = try TargetDirectory(preparing: path, mode: modes.directory) } catch {
            throw PGKeepError.storage("--waldir \(path): \(error)")
        }
        guard symlink(path, target.path + "/pg_wal") == 0 else {
            directory.discard()
            throw FileSystemError("create symbolic link", target.path + "/pg_wal")
        }
        return directory
    }

    private func baseBackupOptions() -> BaseBackupOptions {
        var options = BaseBackupOptions(label: configuration.label)
        options.progress = configuration.showProgress && configuration.estimateSize
        options.checkpoint = configuration.checkpoint
        options.includeWAL = configuration.walMethod == .fetch
        options.maxRateKBps = configuration.maxRateKBps
        options.manifest = configuration.manifest
        options.manifestChecksums = configuration.manifestChecksums
        options.verifyChecksums = configuration.verifyChecksums
        options.target = configuration.target
        options.incremental = configuration.incrementalManifest != nil
        // Plain output recreates the pg_tblspc symlinks from the archive; tar output (and a
        // server-side target) wants them listed in a tablespace_map file instead, as pg_basebackup does.
        options.tablespaceMap = configuration.format == .tar || configuration.isServerSide
        if let spec = configuration.compression, spec.location == .server {
            options.serverCompression = .init(method: .init(rawValue: spec.algorithm.rawValue)!, level: spec.level, workers: spec.workers,
                                              long: spec.longDistance)
        }
        return options
    }

    private func startWALStream(segmentSize: WALSegmentSize, timeline: TimelineID, walDirectory: String?, tarDirectory: String?,
                                modes: FileModes) throws -> WALStreamer? {
        guard configuration.walMethod == .stream, let walDirectory, let tarDirectory else { return nil }
        let format = configuration.format
        let sync = configuration.sync
        let compression = configuration.compression.map {
            CompressionSpec(algorithm: $0.algorithm, location: .client, level: $0.level, workers: $0.workers, longDistance: $0.longDistance)
        }
        let temporarySlot = configuration.slot == nil && configuration.temporarySlot
        let streamer = WALStreamer(.init(
            parameters: configuration.connection, slot: configuration.slot,
            // Unique per job, not per process: two jobs may run in one process.
            temporarySlotName: temporarySlot ? SlotName("pgkeep_\(getpid())_\(String(UInt32.random(in: 0..<UInt32.max), radix: 16))") : nil,
            segmentSize: segmentSize, timeline: timeline,
            options: .init(statusIntervalSeconds: configuration.statusIntervalSeconds),
            isCancelled: { [cancellation] in cancellation.isCancelled },
            makeSink: {
                switch format {
                case .plain:
                    return try WALDirectoryWriter(directory: walDirectory, segmentSize: segmentSize, sync: sync, modes: modes)
                case .tar:
                    // WAL messages (up to 128 kB) and a segment's zeroed tail are written from where
                    // they lie; only the tar headers are gathered (copied, they kept 0.25 MB resident).
                    let file = try FileSink(path: tarDirectory + "/pg_wal.tar" + (compression?.algorithm.fileSuffix ?? ""), mode: modes.file,
                                            syncOnFinish: sync, startsWriteback: sync, writesLargeSlicesDirectly: true)
                    return WALTarWriter(output: try compression.map { try Codecs.compressor($0, next: file) } ?? file, segmentSize: segmentSize)
                }
            }))
        try streamer.start()
        return streamer
    }

    private func makeDurable(_ directories: [TargetDirectory]) throws {
        guard configuration.sync else {
            logger.info("not syncing to disk (--no-sync): the backup may be lost in a crash")
            return
        }
        let started = MonotonicClock.now()
        for directory in directories { try directory.sync(method: configuration.syncMethod) }
        logger.info("synced to disk (\(configuration.syncMethod.rawValue)) in \((Double(MonotonicClock.now() - started) / 1e6).decimal(places: 3)) s")
    }

    private func noteChecksumWarnings(_ notices: [ServerNotice]) {
        for notice in notices where notice.severity == "WARNING" { warnings.append(notice.message) }
    }

    /// The server ends a backup that met checksum failures with an ERROR (XX001), after a
    /// WARNING (XX001) per damaged page (at most five per file) and per file, and — when there
    /// was more than one failure — a last WARNING with the total (SQLSTATE 01000: it has no code
    /// of its own). The count is the server's: that total's number, else one.
    static func checksumFailure(_ error: Error, notices: [ServerNotice]) -> PGKeepError? {
        guard case .server(let serverError) = error as? ConnectionError, serverError.sqlState == "XX001" else { return nil }
        var count = 1
        if let total = notices.last, total.sqlState == "01000",
           let digits = total.message.split(whereSeparator: { !$0.isNumber }).first, let number = Int(digits) {
            count = number
        }
        let pages = notices.filter { $0.sqlState == "XX001" }.map(\.message)
        var failure = PGKeepError(.checksumFailure,
                                  "the server found \(count) data page checksum failure\(count == 1 ? "" : "s") while reading the cluster; the backup holds the pages as they are on disk and was not kept\n"
                                  + pages.prefix(10).joined(separator: "\n"), server: serverError)
        failure.hint = "find the damaged relations (pg_amcheck, or the files named above) and repair or restore them before backing up"
        return failure
    }
}
