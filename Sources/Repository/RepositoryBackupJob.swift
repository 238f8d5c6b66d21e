#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Logging
import Codecs
import Manifest
import PGConnection
import PGKeep
import PGWire
import Sinks
import WAL

/// `pgkeep backup --repo DIR --level full|incremental|differential`.
///
/// Order of work, and why:
/// 1. Check the server is the repository's cluster and decide what the level means now
///    (`LevelPlan`): a differential with no usable full becomes a full, and says why.
/// 2. Full and differential: take the repository's backup lock (one such job at a time), and run
///    BASE_BACKUP through the engine into `backups/.partial-<id>/`, one stored file per file.
///    Meanwhile the WAL already waiting on the server is archived on a second connection
///    (`WALCatchUp`), as pg_basebackup streams WAL beside the data.
/// 3. Every level: force a WAL segment switch (pg_switch_wal) and archive the WAL from where the
///    archive ends through that switch into `wal/`, from the repository's slot — or, when a
///    receive-wal is archiving there, wait for it to archive that segment.
/// 4. Write backup.json, sync, and rename the partial directory to `backups/<id>`: that rename
///    is the commit. A job killed at any moment leaves at most a `.partial-` directory, which
///    `list` ignores and the next job removes; WAL archived before a kill is simply kept.
public final class RepositoryBackupJob {
    public struct Configuration: Sendable {
        public var repository: String
        public var level: BackupRecord.Level
        /// nil: the connection recorded by `repo init`.
        public var connection: ConnectionParameters?
        public var checkpoint: BaseBackupOptions.Checkpoint = .spread
        public var showProgress = false
        public var sync = true
        /// How long to wait for a running receive-wal to archive the switched segment.
        public var walWaitSeconds = 600
        public init(repository: String, level: BackupRecord.Level) {
            self.repository = repository
            self.level = level
        }
    }

    private let configuration: Configuration
    private let observer: JobObserver
    private let cancellation: CancellationToken
    private var logger: Logger { observer.logger }
    private let layout: RepositoryLayout

    public init(configuration: Configuration, observer: JobObserver, cancellation: CancellationToken = CancellationToken()) {
        self.configuration = configuration
        self.observer = observer
        self.cancellation = cancellation
        layout = RepositoryLayout(root: configuration.repository)
    }

    public func run() throws(PGKeepError) -> BackupRecord {
        do {
            return try runUnmapped()
        } catch {
            throw PGKeepError.mapping(error)
        }
    }

    private func runUnmapped() throws -> BackupRecord {
        let repository = try Repository.open(layout)
        let parameters = try repository.connectionParameters(override: configuration.connection)
        let startedAt = Date()

        // The server, and what the level means today.
        let server = try ReplicationConnection(parameters, mode: .physicalReplication, isCancelled: { [cancellation] in cancellation.isCancelled })
        let system = try server.identifySystem()
        try repository.checkCluster(systemIdentifier: system.systemIdentifier)
        let summarize = server.serverVersion.supportsIncremental ? (try? server.show("summarize_wal")) == "on" : false
        let segmentSize = try WALSegmentSize(bytes: repository.config.walSegmentSize)
            .orThrow(PGKeepError.verification("\(layout.configFile) records an invalid segment size"))
        let catalog = try Catalog.load(layout)
        var plan = LevelPlan.decide(requested: configuration.level, newestFull: catalog.newestFull,
                                    server: .init(version: server.serverVersion, systemIdentifier: system.systemIdentifier,
                                                  timeline: system.timeline, summarizeWAL: summarize))
        if let reason = plan.fallbackReason {
            if plan.level == configuration.level {
                logger.notice("\(reason)")
            } else {
                logger.warning("taking a \(plan.level.rawValue) backup instead of the \(configuration.level.rawValue) asked for: \(reason)")
            }
        }
        let id = try repository.newBackupID(level: plan.level)

        var lock: FileLock?
        var partial: String?
        do {
            var record: BackupRecord
            if plan.level == .incremental {
                record = try walOnlyJob(id: id, repository: repository, parameters: parameters, system: system, segmentSize: segmentSize,
                                        startedAt: startedAt, catalog: catalog)
            } else {
                lock = try FileLock.acquire(layout.backupLock, describing: "\(getpid()) \(id) \(plan.level.rawValue)") { holder in
                    PGKeepError(.busy, "another full or differential backup is running on \(configuration.repository): \(holder.isEmpty ? "unknown job" : "pid " + holder)")
                }
                try repository.removeStalePartials()
                partial = layout.partialDirectory(id)
                (record, plan) = try dataJob(id: id, plan: plan, repository: repository, parameters: parameters, segmentSize: segmentSize,
                                             serverWAL: system.walPosition, startedAt: startedAt, catalog: catalog, partial: partial!)
            }
            record.finishedAt = Repository.timestamp(Date())
            let directory = partial ?? layout.partialDirectory(id)
            if partial == nil { try TargetDirectory.makeDirectories(directory, mode: 0o700) }
            try repository.commit(record, from: directory, sync: configuration.sync)
            logger.notice("\(record.level.rawValue) backup \(record.id) stored: \(record.files) files, \(record.bytesStored) bytes, WAL \(record.walStart) to \(record.walEnd)")
            _ = lock
            return record
        } catch {
            if let partial { try? FileManager.default.removeItem(atPath: partial) }
            throw error
        }
    }

    // MARK: Full and differential

    private func dataJob(id: String, plan: LevelPlan, repository: Repository, parameters: ConnectionParameters, segmentSize: WALSegmentSize,
                         serverWAL: LSN, startedAt: Date, catalog: Catalog, partial: String) throws -> (BackupRecord, LevelPlan) {
        var plan = plan
        var parentRecord = plan.parent.flatMap(catalog.record)
        let archivedBefore = try repository.archiveEnd(segmentSize: segmentSize)
        let catchUp = WALCatchUp.start(walArchiving(repository: repository, parameters: parameters), through: segmentSize.segmentStart(of: serverWAL),
                                       archiveEnd: archivedBefore, observer: observer, job: cancellation)
        var taken: BaseBackupTaken
        do {
            do {
                taken = try takeBaseBackup(id: id, plan: plan, parent: parentRecord, repository: repository, parameters: parameters, partial: partial)
            } catch let error where plan.method == .incremental && (error as? PGKeepError)?.sqlState == "55000" {
                // The server cannot take it incrementally (summaries gone, a timeline it does not
                // know): a full backup keeps the chain restorable.
                let reason = (error as? PGKeepError).map { $0.server?.message ?? $0.message } ?? "\(error)"
                plan = LevelPlan(level: .full, method: .base, parent: nil, fallbackReason: "the server refused an incremental backup: \(reason)")
                parentRecord = nil
                logger.warning("taking a full backup instead of the differential asked for: \(plan.fallbackReason!)")
                taken = try takeBaseBackup(id: id, plan: plan, parent: nil, repository: repository, parameters: parameters, partial: partial)
            }
        } catch {
            _ = catchUp?.finish(stop: true)
            throw error
        }
        var caughtUp = 0
        if let catchUp {
            switch catchUp.finish(stop: false) {
            case .success(let summary) where summary.segmentsArchived > 0:
                caughtUp = summary.segmentsArchived
                logger.notice("archived \(caughtUp) WAL segments, through \(summary.position), while the backup ran")
            case .failure(let error):
                logger.warning("archiving the waiting WAL alongside the backup failed (\(error)); archiving it now")
            case .success:
                break
            }
        }
        let summary = taken.summary, store = taken.store, facts = taken.facts
        guard let start = LSN(summary.startLSN), let end = LSN(summary.endLSN) else {
            throw PGKeepError.protocolViolation("the backup's positions \(summary.startLSN)–\(summary.endLSN)")
        }
        let wal = try archiveWAL(repository: repository, parameters: parameters, segmentSize: segmentSize, timeline: facts.system.timeline,
                                 archivedBefore: archivedBefore, alreadyArchived: caughtUp, startIfEmpty: start, mustReach: end)
        guard let manifest = store.manifest else { throw PGKeepError.protocolViolation("the server sent no backup manifest") }
        var record = BackupRecord(
            id: id, level: plan.level, method: plan.method, parent: plan.level == .differential ? parentRecord?.id : nil,
            startLSN: summary.startLSN, endLSN: summary.endLSN, timeline: summary.timeline,
            startedAt: Repository.timestamp(startedAt), finishedAt: "", consistentAt: Repository.timestampRoundedUp(taken.consistentAt),
            bytesReceived: summary.bytesReceived, bytesStored: store.bytesStored + UInt64(try repository.fileSize(partial + "/" + RepositoryLayout.manifestName)),
            walStart: wal.start.description, walEnd: wal.end.description, fallbackReason: plan.fallbackReason,
            serverVersion: facts.version.description, systemIdentifier: facts.system.systemIdentifier)
        record.files = manifest.files.count
        record.unchanged = store.filesUnchanged
        record.deleted = store.deletedSinceParent()
        record.tablespaces = store.tablespaces
        record.directories = store.directories
        return (record, plan)
    }

    struct BaseBackupTaken {
        var summary: BackupSummary
        var store: RepositoryFileStore
        var facts: BackupJob.ServerFacts
        var consistentAt: Date
    }

    /// BASE_BACKUP through the engine into the partial directory, one stored file per file.
    private func takeBaseBackup(id: String, plan: LevelPlan, parent: BackupRecord?, repository: Repository, parameters: ConnectionParameters,
                                partial: String) throws -> BaseBackupTaken {
        try? FileManager.default.removeItem(atPath: partial)
        try TargetDirectory.makeDirectories(partial, mode: 0o700)
        var parentFiles: RepositoryFileStore.Parent?
        if plan.method == .file, let parent {
            let manifest = try repository.manifest(of: parent)
            parentFiles = .init(files: Dictionary(manifest.files.map { ($0.path, $0) }, uniquingKeysWith: { $1 }),
                                startLSN: LSN(parent.startLSN) ?? .zero, blockSize: repository.config.blockSize,
                                directory: layout.backupDirectory(parent.id))
        }
        let store = RepositoryFileStore(root: partial, compression: repository.config.compressionSpec, parent: parentFiles, sync: configuration.sync,
                                        blockSize: repository.config.blockSize)
        var backup = BackupConfiguration(connection: parameters, targetDirectory: partial)
        backup.walMethod = .none
        backup.checkpoint = configuration.checkpoint
        backup.label = "pgkeep \(id)"
        backup.showProgress = configuration.showProgress
        backup.manifestChecksums = .crc32c
        backup.sync = configuration.sync
        if plan.method == .incremental, let parent {
            backup.incrementalManifest = layout.backupDirectory(parent.id) + "/" + RepositoryLayout.manifestName
        }
        let job = BackupJob(configuration: backup, observer: observer, cancellation: cancellation, consumer: store)
        let summary = try job.run()
        return BaseBackupTaken(summary: summary, store: store, facts: job.serverFacts!, consistentAt: Date())
    }

    // MARK: Incremental

    private func walOnlyJob(id: String, repository: Repository, parameters: ConnectionParameters, system: IdentifySystem,
                            segmentSize: WALSegmentSize, startedAt: Date, catalog: Catalog) throws -> BackupRecord {
        let previousEnd = catalog.newest.flatMap { LSN($0.walEnd) }
        let wal = try archiveWAL(repository: repository, parameters: parameters, segmentSize: segmentSize, timeline: system.timeline,
                                 archivedBefore: try repository.archiveEnd(segmentSize: segmentSize), startIfEmpty: previousEnd ?? system.walPosition, mustReach: nil)
        return BackupRecord(
            id: id, level: .incremental, method: .wal, parent: nil, startLSN: wal.start.description, endLSN: wal.end.description,
            timeline: system.timeline.rawValue, startedAt: Repository.timestamp(startedAt), finishedAt: "",
            consistentAt: Repository.timestampRoundedUp(wal.switchedAt), bytesReceived: wal.bytes, bytesStored: wal.bytesStored,
            walStart: wal.start.description, walEnd: wal.end.description, fallbackReason: nil,
            serverVersion: String(repository.config.serverVersion / 10000), systemIdentifier: system.systemIdentifier)
    }

    // MARK: WAL

    struct ArchivedWAL {
        var start: LSN
        var end: LSN
        var switchedAt: Date
        var bytes: UInt64
        var bytesStored: UInt64
    }

    /// How this job archives WAL: from the repository's slot into its `wal/`, no reconnecting.
    private func walArchiving(repository: Repository, parameters: ConnectionParameters) -> ReceiveWALConfiguration {
        var archive = ReceiveWALConfiguration(connection: parameters, archiveDirectory: layout.walDirectory)
        archive.slot = SlotName(repository.config.slot)
        archive.compression = repository.config.compressionSpec
        archive.reconnect = nil
        archive.sync = configuration.sync
        return archive
    }

    /// Switches to a new WAL segment and archives everything before it into the repository:
    /// itself, from the repository's slot, or — when a receive-wal holds the archive — by waiting
    /// until that archiver has the switched segment. `archivedBefore` is where the archive ended
    /// when the job began; `alreadyArchived` counts the segments the job archived since.
    private func archiveWAL(repository: Repository, parameters: ConnectionParameters, segmentSize: WALSegmentSize, timeline: TimelineID,
                            archivedBefore before: LSN?, alreadyArchived: Int = 0, startIfEmpty: LSN, mustReach: LSN?) throws -> ArchivedWAL {
        let switched = try Repository.switchWAL(parameters)
        let switchedAt = Date()
        // Everything before the switch point's segment boundary is in whole segments.
        var stop = switched.rawValue % segmentSize.bytes == 0 ? switched : segmentSize.segmentStart(of: switched) + segmentSize.bytes
        if let mustReach, stop < mustReach { stop = segmentSize.segmentStart(of: mustReach) + segmentSize.bytes }
        var archive = walArchiving(repository: repository, parameters: parameters)
        archive.endPosition = stop
        archive.startIfEmpty = startIfEmpty
        do {
            let archiver = try WALArchiver(configuration: archive, observer: observer, cancellation: cancellation)
            logger.info("archiving WAL through \(stop) into \(layout.walDirectory)")
            let summary = try archiver.run()
            if cancellation.isCancelled { throw PGKeepError(.cancelled, "backup cancelled") }
            let start = before ?? summary.firstStart ?? startIfEmpty
            return ArchivedWAL(start: start, end: summary.position, switchedAt: switchedAt, bytes: summary.position.rawValue - min(start.rawValue, summary.position.rawValue),
                               bytesStored: UInt64(alreadyArchived + summary.segmentsArchived) * segmentSize.bytes)
        } catch let error as PGKeepError where error.code == .busy {
            // A receive-wal (or another job) archives into the repository: let it.
            let last = segmentSize.fileName(segment: segmentSize.segmentNumber(of: stop) - 1, timeline: timeline)
            logger.notice("a receive-wal archives into \(layout.walDirectory): waiting for it to archive \(last)")
            let deadline = Date().addingTimeInterval(Double(configuration.walWaitSeconds))
            while !(try WALArchiveDirectory.has(segment: last, in: layout.walDirectory)) {
                if cancellation.isCancelled { throw PGKeepError(.cancelled, "backup cancelled") }
                guard Date() < deadline else {
                    throw PGKeepError(.walArchive, "the receive-wal archiving into \(layout.walDirectory) did not archive \(last) within \(configuration.walWaitSeconds) s",
                                      hint: "is it running and connected? pgkeep receive-wal logs why it is not")
                }
                usleep(200_000)
            }
            let start = before ?? startIfEmpty
            return ArchivedWAL(start: start, end: stop, switchedAt: switchedAt, bytes: stop.rawValue - min(start.rawValue, stop.rawValue), bytesStored: 0)
        }
    }
}

extension Optional {
    func orThrow(_ error: @autoclosure () -> PGKeepError) throws -> Wrapped {
        guard let value = self else { throw error() }
        return value
    }
}
