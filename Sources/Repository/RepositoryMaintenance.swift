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

/// `pgkeep repo init`, `list`, `expire` and `verify --repo`.
public enum RepositoryMaintenance {
    // MARK: init

    public struct InitOptions: Sendable {
        public var repository: String
        public var connection: ConnectionParameters
        public var compression: String = "zstd"
        public var slot: String = "pgkeep"
        public init(repository: String, connection: ConnectionParameters) {
            self.repository = repository
            self.connection = connection
        }
    }

    /// Records the cluster and creates the physical slot that keeps WAL for the next job.
    public static func initialize(_ options: InitOptions, logger: Logger) throws(PGKeepError) -> RepositoryConfig {
        do {
            let layout = RepositoryLayout(root: options.repository)
            guard ["zstd", "lz4", "gzip", "none"].contains(options.compression) else {
                throw PGKeepError.invalidConfiguration("--compress is zstd, lz4, gzip or none")
            }
            guard let slot = SlotName(options.slot) else {
                throw PGKeepError.invalidConfiguration("slot name '\(options.slot)' is invalid: use lower-case letters, digits and underscores (at most 63)")
            }
            if access(layout.configFile, F_OK) == 0 {
                throw PGKeepError.invalidConfiguration("\(layout.root) is already a pgkeep repository")
            }
            let target = try TargetDirectory(preparing: layout.root)
            do {
                let connection = try ReplicationConnection(options.connection, mode: .physicalReplication)
                guard connection.serverVersion.isSupported else {
                    throw PGKeepError.unsupportedServer("server version \(connection.serverVersion) is not supported: pgkeep needs PostgreSQL \(ServerVersion.minimumSupported.major) or later")
                }
                let system = try connection.identifySystem()
                guard let segmentSize = WALSegmentSize(setting: try connection.show("wal_segment_size")) else {
                    throw PGKeepError.protocolViolation("wal_segment_size")
                }
                let blockSize = Int(try connection.show("block_size")) ?? 8192
                let conninfo = connection.reusableConnectionString(databaseName: options.connection.explicitDatabaseName)
                _ = try connection.run(.createPhysicalSlot(slot, temporary: false, reserveWAL: true))
                logger.notice("created replication slot \"\(slot)\": the server keeps WAL from now on for this repository's next job")
                let config = RepositoryConfig(systemIdentifier: system.systemIdentifier, serverVersion: connection.serverVersion.number,
                                              walSegmentSize: segmentSize.bytes, blockSize: blockSize, connection: conninfo,
                                              compression: options.compression, slot: slot.rawValue, createdAt: Repository.timestamp(Date()))
                try TargetDirectory.makeDirectories(layout.backupsDirectory, mode: 0o700)
                let archive = try WALArchiveDirectory(path: layout.walDirectory)
                try archive.checkIdentity(.init(systemIdentifier: system.systemIdentifier, segmentSize: segmentSize), sync: true)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try Durability.writeFileAtomically(Array(try encoder.encode(config)) + [0x0A], named: "pgkeep.repo", in: layout.root)
                try target.sync(method: .fsync)
                return config
            } catch {
                target.discard()
                throw error
            }
        } catch {
            throw PGKeepError.mapping(error)
        }
    }

    // MARK: list

    /// The point-in-time window: from the oldest backup's consistent point to the end of the
    /// archived WAL.
    public struct Window: Sendable, Encodable {
        public var from: String
        public var fromLSN: String
        public var toLSN: String?
    }

    public static func window(_ layout: RepositoryLayout, catalog: Catalog) throws -> Window? {
        guard let oldest = catalog.restorable.first else { return nil }
        let repository = try Repository.open(layout)
        let end = try WALSegmentSize(bytes: repository.config.walSegmentSize).flatMap { try repository.archiveEnd(segmentSize: $0) }
        return Window(from: oldest.consistentAt, fromLSN: oldest.endLSN, toLSN: end?.description)
    }

    // MARK: expire

    public struct ExpireResult: Sendable {
        public var plan: ExpirePlan
        public var walSegmentsRemoved: [String]
    }

    public static func expire(_ repositoryPath: String, rule: ExpirePlan.Rule, dryRun: Bool, logger: Logger) throws(PGKeepError) -> ExpireResult {
        do {
            let layout = RepositoryLayout(root: repositoryPath)
            let repository = try Repository.open(layout)
            let lock = try FileLock.acquire(layout.backupLock, describing: "\(getpid()) expire") { holder in
                PGKeepError(.busy, "a backup is running on \(repositoryPath) (\(holder)); expire when it has finished")
            }
            defer { _ = lock }
            let catalog = try Catalog.load(layout)
            let plan = ExpirePlan.make(catalog, rule: rule, now: Date().timeIntervalSince1970) {
                Repository.date($0.finishedAt)?.timeIntervalSince1970 ?? 0
            }
            var walRemoved: [String] = []
            if let before = plan.walBefore, let size = WALSegmentSize(bytes: repository.config.walSegmentSize) {
                let firstNeeded = size.segmentNumber(of: before)
                for name in (try? directoryEntries(layout.walDirectory)) ?? [] {
                    guard case .segment(_, let number, _, _)? = WALFileName(name, segmentSize: size), number < firstNeeded else { continue }
                    walRemoved.append(name)
                }
                walRemoved.sort()
            }
            if !dryRun {
                for removal in plan.removals {
                    // Renamed out of the catalog first, so a kill mid-way never leaves half a backup listed.
                    let doomed = layout.partialDirectory("expired-" + removal.id)
                    try Durability.durableRename(in: layout.backupsDirectory, from: removal.id, to: String(doomed.dropFirst(layout.backupsDirectory.count + 1)))
                    try FileManager.default.removeItem(atPath: doomed)
                    logger.notice("removed backup \(removal.id): \(removal.reason)")
                }
                for name in walRemoved { _ = unlink(layout.walDirectory + "/" + name) }
                if !walRemoved.isEmpty {
                    try Durability.syncDirectory(layout.walDirectory)
                    logger.notice("removed \(walRemoved.count) WAL segment(s) older than the oldest kept backup's start (\(plan.walBefore!))")
                }
            }
            return ExpireResult(plan: plan, walSegmentsRemoved: walRemoved)
        } catch {
            throw PGKeepError.mapping(error)
        }
    }

    // MARK: verify

    public struct VerifyReport: Sendable, Encodable {
        public var backups: [String] = []
        public var filesChecked = 0
        public var bytesChecked: UInt64 = 0
        public var walRecords = 0
        public var problems: [String] = []
        public var ok: Bool { problems.isEmpty }
    }

    /// Every stored file against its manifest (decompressed, checksummed), what a differential
    /// left to its full, and the WAL each backup needs read as recovery would read it.
    public static func verify(_ repositoryPath: String, backup id: String?) throws(PGKeepError) -> VerifyReport {
        do {
            let layout = RepositoryLayout(root: repositoryPath)
            let repository = try Repository.open(layout)
            let catalog = try Catalog.load(layout)
            var records = catalog.restorable
            if let id {
                guard let record = catalog.record(id) else { throw PGKeepError.invalidConfiguration("the repository has no backup \(id)") }
                records = [record]
            }
            var report = VerifyReport()
            let compression = repository.config.compressionSpec?.algorithm
            let segmentSize = WALSegmentSize(bytes: repository.config.walSegmentSize)!
            for record in records {
                report.backups.append(record.id)
                guard record.hasData else { continue }
                let manifest: BackupManifest
                do { manifest = try repository.manifest(of: record) } catch {
                    report.problems.append("\(record.id): \(error)")
                    continue
                }
                let full = catalog.full(of: record)
                let fullFiles = try full.map { Dictionary(try repository.manifest(of: $0).files.map { ($0.path, $0) }, uniquingKeysWith: { $1 }) } ?? [:]
                for file in manifest.files {
                    var stored = StoredFile(path: layout.backupDirectory(record.id) + "/" + RepositoryLayout.storedPath(forManifestPath: file.path)
                                            + (compression?.fileSuffix ?? ""), compression: compression)
                    if access(stored.path, F_OK) != 0, record.method == .file,
                       access(layout.backupDirectory(record.id) + "/" + RepositoryLayout.storedPath(forManifestPath: file.path) + RepositoryLayout.deltaSuffix
                              + (compression?.fileSuffix ?? ""), F_OK) == 0 {
                        // A block delta: the restore merges it with the full's copy and checks the
                        // result; here, that the full's copy is whole.
                        guard let full, let base = fullFiles[file.path] else {
                            report.problems.append("\(record.id): \"\(file.path)\" has a block delta but the full backup has no such file")
                            continue
                        }
                        stored.path = layout.backupDirectory(full.id) + "/" + RepositoryLayout.storedPath(forManifestPath: file.path) + (compression?.fileSuffix ?? "")
                        let summer = Checksummer(base.algorithm)
                        var size: UInt64 = 0
                        do { try stored.stream { summer.update($0); size += UInt64($0.count) } } catch {
                            report.problems.append("\(record.id): \"\(file.path)\" (full's copy): \(error)")
                            continue
                        }
                        if size != base.size || (base.algorithm != .none && summer.finish() != base.checksum) {
                            report.problems.append("\(record.id): the full's copy of \"\(file.path)\" is damaged")
                        } else {
                            report.filesChecked += 1
                        }
                        continue
                    }
                    if access(stored.path, F_OK) != 0 {
                        guard record.level == .differential, let full, let base = fullFiles[file.path], base.checksum == file.checksum,
                              base.size == file.size else {
                            report.problems.append("\(record.id): \"\(file.path)\" is in the manifest but not in the repository")
                            continue
                        }
                        stored.path = layout.backupDirectory(full.id) + "/" + RepositoryLayout.storedPath(forManifestPath: file.path)
                            + (compression?.fileSuffix ?? "")
                    }
                    let summer = Checksummer(file.algorithm)
                    var size: UInt64 = 0
                    do {
                        try stored.stream { summer.update($0); size += UInt64($0.count) }
                    } catch {
                        report.problems.append("\(record.id): \"\(file.path)\": \(error)")
                        continue
                    }
                    if size != file.size {
                        report.problems.append("\(record.id): \"\(file.path)\" has size \(size) in the repository but size \(file.size) in the manifest")
                    } else if file.algorithm != .none, let expected = file.checksum, summer.finish() != expected {
                        report.problems.append("\(record.id): checksum mismatch for file \"\(file.path)\"")
                    } else {
                        report.filesChecked += 1
                        report.bytesChecked += size
                    }
                }
                var checker = WALRecordChecker(segmentSize: segmentSize, source: WALSegmentSource(directories: [layout.walDirectory]))
                for range in manifest.walRanges {
                    do {
                        report.walRecords += try checker.check(timeline: range.timeline, from: range.start, to: range.end).records
                    } catch {
                        report.problems.append("\(record.id): WAL from \(range.start) to \(range.end): \(error)")
                    }
                }
            }
            // The archive itself: no missing segment between the oldest backup's WAL and the newest job's.
            if id == nil, let first = catalog.records.first.flatMap({ LSN($0.walStart) }), let last = catalog.records.last.flatMap({ LSN($0.walEnd) }),
               last > first {
                let present = Set(try WALArchiveDirectory(path: layout.walDirectory).completeSegments(segmentSize: segmentSize))
                let names = Set(present.map { String($0.dropFirst(8)) })
                for segment in segmentSize.segmentNumber(of: first)..<segmentSize.segmentNumber(of: last) {
                    let name = segmentSize.fileName(segment: segment, timeline: TimelineID(1))
                    if !names.contains(String(name.dropFirst(8))) {
                        report.problems.append("the WAL archive is missing segment \(name.dropFirst(8)) (any timeline): point-in-time recovery cannot pass it")
                    }
                }
            }
            return report
        } catch {
            throw PGKeepError.mapping(error)
        }
    }
}
