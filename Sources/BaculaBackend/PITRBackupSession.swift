#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Logging
import Manifest
import PGConnection
import PGKeep
import PGWire
import PluginFrames
import Repository
import Sinks
import WAL

/// A PITR-mode job: Bacula's level Full, Incremental or Differential as the repository levels
/// full, incremental, differential. The repository's state — its slot, its backups' records and
/// manifests, the fulls' block maps — lives in the plugin's state directory on this machine; the
/// data goes to Bacula as virtual files, never through a local copy:
///
///     /@PG/<service>/data/<path>   /@PG/<service>/tablespaces/<oid>/<path>   /@PG/<service>/wal/<segment>
///     /@PG/<service>/pgkeep/<id>.json, <id>.manifest   (what the restore needs to finish)
final class PITRBackupSession {
    let options: PluginOptions
    let level: Character
    let channel: FrameChannel
    let observer: JobObserver
    let cancellation: CancellationToken
    var logger: Logger { observer.logger }

    init(options: PluginOptions, level: Character, channel: FrameChannel, observer: JobObserver, cancellation: CancellationToken) {
        self.options = options
        self.level = level
        self.channel = channel
        self.observer = observer
        self.cancellation = cancellation
    }

    var layout: RepositoryLayout { RepositoryLayout(root: options.stateDirectory + "/" + options.service) }

    /// The state, made on first use (and made anew, with a note, when the server is another cluster).
    func openState(_ connection: ConnectionParameters, system: IdentifySystem) throws -> Repository {
        if access(layout.configFile, F_OK) == 0 {
            let repository = try Repository.open(layout)
            if repository.config.systemIdentifier == system.systemIdentifier { return repository }
            let aside = layout.root + ".cluster-\(repository.config.systemIdentifier)"
            channel.message(.warning, "the state in \(layout.root) is of cluster \(repository.config.systemIdentifier), the server is \(system.systemIdentifier): starting a new state (the old one is kept as \(aside))")
            try? FileManager.default.removeItem(atPath: aside)
            guard rename(layout.root, aside) == 0 else { throw FileSystemError("move aside", layout.root) }
        }
        try TargetDirectory.makeDirectories(options.stateDirectory, mode: 0o700)
        var initOptions = RepositoryMaintenance.InitOptions(repository: layout.root, connection: connection)
        initOptions.compression = "none"
        initOptions.slot = Self.slotName(options.service)
        // A slot left by an earlier state of this service is taken over, not refused.
        _ = try? ReplicationSlots.drop(SlotName(initOptions.slot)!, connection: connection, logger: logger)
        _ = try RepositoryMaintenance.initialize(initOptions, logger: logger)
        return try Repository.open(layout)
    }

    static func slotName(_ service: String) -> String {
        let cleaned = service.lowercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? String($0) : "_" }.joined()
        return String(("pgkeep_bacula_" + cleaned).prefix(63))
    }

    func run() throws {
        let connection = options.connection
        let server = try ReplicationConnection(connection, mode: .physicalReplication, isCancelled: { [cancellation] in cancellation.isCancelled })
        let system = try server.identifySystem()
        let summarize = server.serverVersion.supportsIncremental ? (try? server.show("summarize_wal")) == "on" : false
        let repository = try openState(connection, system: system)
        let segmentSize = WALSegmentSize(bytes: repository.config.walSegmentSize)!
        let catalog = try Catalog.load(layout)
        let requested: BackupRecord.Level = level == "I" ? .incremental : level == "D" ? .differential : .full
        var plan = LevelPlan.decide(requested: requested, newestFull: catalog.newestFull,
                                    server: .init(version: server.serverVersion, systemIdentifier: system.systemIdentifier,
                                                  timeline: system.timeline, summarizeWAL: summarize))
        if plan.level != requested {
            channel.message(.warning, "this \(Self.levelName(level)) job sends a full backup instead, so the chain stays restorable: \(plan.fallbackReason ?? "")")
        } else if let reason = plan.fallbackReason {
            channel.message(.info, reason)
        }
        let id = try repository.newBackupID(level: plan.level)
        let partial = layout.partialDirectory(id)
        try repository.removeStalePartials()
        try TargetDirectory.makeDirectories(partial, mode: 0o700)
        let startedAt = Date()
        do {
            var record: BackupRecord
            if plan.level == .incremental {
                guard let previous = catalog.newest, let from = LSN(previous.walEnd) else {
                    throw PGKeepError.verification("no earlier job to continue the WAL from")
                }
                let wal = try sendWAL(from: from, repository: repository, segmentSize: segmentSize, timeline: system.timeline, mustReach: nil)
                record = BackupRecord(id: id, level: .incremental, method: .wal, parent: nil, startLSN: from.description, endLSN: wal.end.description,
                                      timeline: system.timeline.rawValue, startedAt: Repository.timestamp(startedAt), finishedAt: "",
                                      consistentAt: Repository.timestampRoundedUp(wal.switchedAt), bytesReceived: wal.bytes, bytesStored: wal.bytes,
                                      walStart: from.description, walEnd: wal.end.description, fallbackReason: nil,
                                      serverVersion: server.serverVersion.description, systemIdentifier: system.systemIdentifier)
            } else {
                (record, plan) = try dataBackup(id: id, plan: plan, repository: repository, catalog: catalog, segmentSize: segmentSize,
                                                partial: partial, startedAt: startedAt)
            }
            record.finishedAt = Repository.timestamp(Date())
            try sendMetadata(record, partial: partial)
            try repository.commit(record, from: partial, sync: true)
            channel.message(.info, "\(record.level.rawValue) backup \(record.id): WAL \(record.walStart) to \(record.walEnd) on timeline \(record.timeline)")
            if !record.deleted.isEmpty {
                let named = record.deleted.prefix(5).joined(separator: ", ") + (record.deleted.count > 5 ? ", …" : "")
                channel.message(.info, "\(record.deleted.count) file(s) of the full are gone from the cluster (\(named)): the restore leaves them out")
            }
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
    }

    static func levelName(_ level: Character) -> String {
        switch level { case "I": "Incremental"; case "D": "Differential"; default: "Full" }
    }

    // MARK: Full and differential

    private func dataBackup(id: String, plan: LevelPlan, repository: Repository, catalog: Catalog, segmentSize: WALSegmentSize,
                            partial: String, startedAt: Date) throws -> (BackupRecord, LevelPlan) {
        let parentRecord = plan.parent.flatMap(catalog.record)
        var parent: FrameArchiveStore.Parent?
        if let parentRecord {
            let manifest = try repository.manifest(of: parentRecord)
            parent = .init(files: Dictionary(manifest.files.map { ($0.path, $0) }, uniquingKeysWith: { $1 }),
                           startLSN: LSN(parentRecord.startLSN) ?? .zero, directory: layout.backupDirectory(parentRecord.id), method: plan.method)
        }
        let store = FrameArchiveStore(channel: channel, prefix: options.prefix, parent: parent, blockSize: repository.config.blockSize, mapRoot: partial)
        var backup = BackupConfiguration(connection: options.connection, targetDirectory: partial)
        backup.walMethod = .none
        backup.checkpoint = options.fastCheckpoint ? .fast : .spread
        backup.label = "pgkeep bacula \(id)"
        backup.manifestChecksums = .crc32c
        if plan.method == .incremental, let parentRecord {
            backup.incrementalManifest = layout.backupDirectory(parentRecord.id) + "/" + RepositoryLayout.manifestName
        }
        // Once files have gone to Bacula there is no second try: a refused incremental is fatal here
        // (LevelPlan has already ruled out what can be known in advance).
        let job = BackupJob(configuration: backup, observer: observer, cancellation: cancellation, consumer: store)
        let summary = try job.run()
        let consistentAt = Date()
        guard let start = LSN(summary.startLSN), let end = LSN(summary.endLSN), let manifestBytes = store.manifestBytes else {
            throw PGKeepError.protocolViolation("the backup's positions or manifest are missing")
        }
        try Durability.writeFileAtomically(manifestBytes, named: RepositoryLayout.manifestName, in: partial, sync: false)
        let manifest = try BackupManifest(bytes: manifestBytes)
        // WAL from where the state's last job ended (or this backup's start) through the switch.
        var from = start
        if let previous = catalog.newest.flatMap({ LSN($0.walEnd) }), previous <= start, catalog.newest?.timeline == summary.timeline {
            from = previous
        }
        let wal = try sendWAL(from: from, repository: repository, segmentSize: segmentSize, timeline: TimelineID(summary.timeline), mustReach: end)
        var record = BackupRecord(
            id: id, level: plan.level, method: plan.method, parent: plan.level == .differential ? parentRecord?.id : nil,
            startLSN: summary.startLSN, endLSN: summary.endLSN, timeline: summary.timeline, startedAt: Repository.timestamp(startedAt),
            finishedAt: "", consistentAt: Repository.timestampRoundedUp(consistentAt), bytesReceived: summary.bytesReceived,
            bytesStored: store.bytesSent + wal.bytes, walStart: from.description, walEnd: wal.end.description,
            fallbackReason: plan.fallbackReason, serverVersion: summary.serverVersion, systemIdentifier: summary.systemIdentifier)
        record.files = manifest.files.count
        record.unchanged = store.filesSeen
        if let parent { record.deleted = Array(Set(parent.files.keys).subtracting(manifest.files.map(\.path))).sorted() }
        record.tablespaces = store.tablespaces
        record.directories = store.directories
        return (record, plan)
    }

    /// The record and manifest the restore finishes with.
    private func sendMetadata(_ record: BackupRecord, partial: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = Array(try encoder.encode(record)) + [0x0A]
        try sendFile(options.prefix + "pgkeep/\(record.id).json", json)
        if record.hasData, let manifest = try readWholeFile(partial + "/" + RepositoryLayout.manifestName) {
            try sendFile(options.prefix + "pgkeep/\(record.id).manifest", manifest)
        }
    }

    private func sendFile(_ path: String, _ bytes: [UInt8]) throws {
        try channel.send(.file(.init(path: path, size: Int64(bytes.count), mode: 0o600, modificationTime: Int64(time(nil)))))
        try bytes.withUnsafeBytes { try channel.sendData($0) }
        try channel.send(.end)
    }

    // MARK: WAL

    struct SentWAL {
        var end: LSN
        var switchedAt: Date
        var bytes: UInt64
    }

    /// Switches the WAL segment and streams everything from `from` through that switch, from the
    /// state's slot, each segment a virtual file as it arrives.
    private func sendWAL(from: LSN, repository: Repository, segmentSize: WALSegmentSize, timeline: TimelineID, mustReach: LSN?) throws -> SentWAL {
        let switched = try Repository.switchWAL(options.connection)
        let switchedAt = Date()
        var stop = switched.rawValue % segmentSize.bytes == 0 ? switched : segmentSize.segmentStart(of: switched) + segmentSize.bytes
        if let mustReach, stop < mustReach { stop = segmentSize.segmentStart(of: mustReach) + segmentSize.bytes }
        let start = segmentSize.segmentStart(of: from)
        guard stop > start else { return SentWAL(end: start, switchedAt: switchedAt, bytes: 0) }
        let connection = try ReplicationConnection(options.connection, mode: .physicalReplication, isCancelled: { [cancellation] in cancellation.isCancelled })
        let sink = FrameWALSink(channel: channel, prefix: options.prefix + "wal/", segmentSize: segmentSize)
        let receiver = WALReceiver(connection: connection, sink: sink, segmentSize: segmentSize, timeline: timeline)
        let outcome = try receiver.stream(from: start, slot: SlotName(repository.config.slot), stopPosition: { stop },
                                          cancelled: { [cancellation] in cancellation.isCancelled })
        guard outcome.reason == .reachedStopPosition, outcome.position >= stop else {
            throw PGKeepError(.walArchive, "the WAL stream ended at \(outcome.position), before \(stop) (\(outcome.reason))",
                              hint: "the server changed timeline or stopped: run a Full job")
        }
        try sink.finish()
        return SentWAL(end: stop, switchedAt: switchedAt, bytes: stop.rawValue - start.rawValue)
    }
}

/// WAL segments as virtual files: one per segment, sent as the stream writes it (in order, from
/// its start), ended when the segment is.
final class FrameWALSink: WALSink {
    private let channel: FrameChannel
    private let prefix: String
    private let segmentSize: WALSegmentSize
    private var written: UInt64 = 0
    private var open = false
    /// A partial segment's padding, from memory that is never written (`ZeroBytes`).
    private let zeros = ZeroBytes(count: 64 << 10)

    init(channel: FrameChannel, prefix: String, segmentSize: WALSegmentSize) {
        self.channel = channel
        self.prefix = prefix
        self.segmentSize = segmentSize
    }

    func openSegment(named name: String) throws {
        try channel.send(.file(.init(path: prefix + name, size: Int64(segmentSize.bytes), mode: 0o600, modificationTime: Int64(time(nil)))))
        written = 0
        open = true
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard offset == written else { throw PGKeepError(.internalError, "WAL written out of order for Bacula") }
        try channel.sendData(bytes)
        written += UInt64(bytes.count)
    }

    func closeSegment(complete: Bool) throws {
        guard open else { return }
        // A segment is sent whole: a partial one (never, with a stop on a boundary) is padded.
        if written < segmentSize.bytes {
            try zeros.write(segmentSize.bytes - written) { try channel.sendData($0) }
            written = segmentSize.bytes
        }
        try channel.send(.end)
        open = false
    }

    func finish() throws { try closeSegment(complete: false) }
}
