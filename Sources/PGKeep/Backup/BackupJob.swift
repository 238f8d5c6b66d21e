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
    private var logger: Logger { observer.logger }
    private var warnings: [String] = []

    public init(configuration: BackupConfiguration, observer: JobObserver, cancellation: CancellationToken = CancellationToken()) {
        self.configuration = configuration
        self.observer = observer
        self.cancellation = cancellation
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
        if let compression = configuration.compression, compression.location == .server, !version.supportsServerCompression {
            throw PGKeepError.invalidConfiguration("server-side compression needs PostgreSQL 15 or later (the server is \(version)); use client-\(compression.algorithm)")
        }
        logger.info("connected to PostgreSQL \(version) at \(connection.endpoint), system \(system.systemIdentifier), timeline \(system.timeline), WAL segments of \(segmentSize)")

        if configuration.createSlot, let slot = configuration.slot {
            _ = try connection.run(.createPhysicalSlot(slot, temporary: false, reserveWAL: true))
            logger.info("created replication slot \(slot)")
        }

        let target = try TargetDirectory(preparing: configuration.targetDirectory)
        let recovery = configuration.writeRecoveryConfig
            ? RecoverySettings.lines(connectionOptions: connection.optionsForStandby(), slot: configuration.slot?.rawValue) : nil
        let router = ArchiveRouter(configuration: configuration, version: version, target: target, recoverySettings: recovery)
        var streamer: WALStreamer?
        do {
            streamer = try startWALStream(segmentSize: segmentSize, timeline: system.timeline, target: target)
            let stream: CommandStream = try configuration.recordStreamPath.map { try RecordingStream(recording: connection, to: $0) } ?? connection
            let driver = BaseBackupDriver(connection: stream, router: router,
                                          progress: configuration.showProgress ? ProgressPacer(observer.progress) : nil)
            driver.onStart = { [logger] lsn, timeline in
                logger.info("backup started at \(lsn) on timeline \(timeline)")
                streamer?.begin(at: lsn)
            }
            driver.onEnd = { [logger] lsn in
                logger.info("server finished sending the backup; end position \(lsn), waiting for WAL")
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

            try makeDurable(target: target, router: router)
            try Durability.durableRename(in: target.path, from: ArchiveRouter.manifestTemporaryName, to: ArchiveRouter.manifestName,
                                         sync: configuration.sync)

            let stats = router.statistics
            return BackupSummary(
                directory: target.path, format: configuration.format.rawValue, serverVersion: version.description,
                systemIdentifier: system.systemIdentifier, startLSN: positions.start.description, endLSN: positions.end.description,
                timeline: positions.timeline.rawValue, walMethod: configuration.walMethod.rawValue,
                walSegments: outcome?.segmentsWritten ?? 0,
                compression: configuration.compression?.description,
                tablespaces: router.tablespaces.compactMap(\.location).map { configuration.tablespaceMapping.target(for: $0) },
                files: stats.files, bytesReceived: stats.bytesReceived, bytesWritten: stats.bytesWritten,
                seconds: Double(MonotonicClock.now() - started) / 1e6, warnings: warnings)
        } catch {
            streamer?.cancel()
            _ = try? streamer?.wait()
            let failure = Self.checksumFailure(error, notices: connection.collectedNotices()) ?? error
            if configuration.keepOnFailure {
                logger.error("keeping the incomplete backup in \(target.path) (--no-clean): it has no backup_manifest and is not usable")
            } else {
                target.discard()
                router.tablespaceTargets.forEach { $0.discard() }
                logger.info("removed the incomplete backup from \(target.path)")
            }
            throw failure
        }
    }

    private func baseBackupOptions() -> BaseBackupOptions {
        var options = BaseBackupOptions(label: configuration.label)
        options.progress = configuration.showProgress
        options.checkpoint = configuration.checkpoint
        options.includeWAL = configuration.walMethod == .fetch
        options.maxRateKBps = configuration.maxRateKBps
        options.manifestChecksums = configuration.manifestChecksums
        // Plain output recreates the pg_tblspc symlinks from the archive; only tar output wants
        // them listed in a tablespace_map file instead (as pg_basebackup does).
        options.tablespaceMap = configuration.format == .tar
        if let spec = configuration.compression, spec.location == .server {
            options.serverCompression = .init(method: .init(rawValue: spec.algorithm.rawValue)!, level: spec.level, workers: spec.workers)
        }
        return options
    }

    private func startWALStream(segmentSize: WALSegmentSize, timeline: TimelineID, target: TargetDirectory) throws -> WALStreamer? {
        guard configuration.walMethod == .stream else { return nil }
        let directory = target.path
        let format = configuration.format
        let sync = configuration.sync
        let compression = configuration.compression.map { CompressionSpec(algorithm: $0.algorithm, location: .client, level: $0.level, workers: $0.workers) }
        let streamer = WALStreamer(.init(
            parameters: configuration.connection, slot: configuration.slot,
            // Unique per job, not per process: two jobs may run in one process.
            temporarySlotName: configuration.slot == nil ? SlotName("pgkeep_\(getpid())_\(String(UInt32.random(in: 0..<UInt32.max), radix: 16))") : nil,
            segmentSize: segmentSize, timeline: timeline,
            isCancelled: { [cancellation] in cancellation.isCancelled },
            makeSink: {
                switch format {
                case .plain:
                    return try WALDirectoryWriter(directory: directory + "/pg_wal", segmentSize: segmentSize, sync: sync)
                case .tar:
                    let file = try FileSink(path: directory + "/pg_wal.tar" + (compression?.algorithm.fileSuffix ?? ""), syncOnFinish: sync,
                                            startsWriteback: sync)
                    return WALTarWriter(output: try compression.map { try Codecs.compressor($0, next: file) } ?? file, segmentSize: segmentSize)
                }
            }))
        try streamer.start()
        return streamer
    }

    private func makeDurable(target: TargetDirectory, router: ArchiveRouter) throws {
        guard configuration.sync else {
            logger.info("not syncing to disk (--no-sync): the backup may be lost in a crash")
            return
        }
        let started = MonotonicClock.now()
        for directory in [target] + router.tablespaceTargets { try directory.sync(method: configuration.syncMethod) }
        logger.info("synced to disk (\(configuration.syncMethod.rawValue)) in \(Double(MonotonicClock.now() - started) / 1e6) s")
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
