#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Logging
import Codecs
import Manifest
import PGKeep
import PGWire
import Sinks
import Synchronization
import WAL

/// `pgkeep restore --repo DIR [--backup ID|latest] --target-dir DIR [recovery target]`.
///
/// Picks the newest full (with its differential) consistent before the target, rebuilds its
/// files into the target directory — a differential's unchanged files from the full, a 17+
/// incremental file's blocks merged with the full's file exactly as pg_combinebackup does —
/// checks every file against the manifests as it is written, and writes the recovery settings
/// that fetch WAL from the repository.
public final class RepositoryRestoreJob {
    public struct Configuration: Sendable {
        public var repository: String
        /// A backup id, "latest", or nil (chosen by the recovery target).
        public var backup: String?
        public var targetDirectory: String
        public var tablespaceMapping = TablespaceMapping()
        public var target = RecoveryTarget()
        public var force = false
        public var sync = true
        public var executable: String
        /// A drill's scratch area: tablespaces nobody mapped go to <this>/<oid>.
        public var unmappedTablespacesUnder: String?
        /// `repo export`: write the backup as a backup directory as the server sent it (a 17+
        /// differential's INCREMENTAL files as they are, its backup_manifest), for
        /// pg_combinebackup or pg_verifybackup; no recovery settings.
        public var exportAsBackup = false
        public init(repository: String, targetDirectory: String, executable: String) {
            self.repository = repository
            self.targetDirectory = targetDirectory
            self.executable = executable
        }
    }

    public struct Summary: Sendable, Encodable {
        public var backup: String
        public var full: String
        public var targetDirectory: String
        public var files = 0
        public var reconstructed = 0
        /// Visibility maps left for VACUUM to rebuild (see IncrementalVisibilityMap).
        public var visibilityMapsDropped = 0
        public var bytes: UInt64 = 0
        public var tablespaces: [String] = []
        public var recovery: [String] = []
    }

    private let configuration: Configuration
    private let logger: Logger
    private let cancellation: CancellationToken
    private let layout: RepositoryLayout

    public init(configuration: Configuration, observer: JobObserver, cancellation: CancellationToken = CancellationToken()) {
        self.configuration = configuration
        self.logger = observer.logger
        self.cancellation = cancellation
        layout = RepositoryLayout(root: configuration.repository)
    }

    public func run() throws(PGKeepError) -> Summary {
        do {
            return try runUnmapped()
        } catch {
            throw PGKeepError.mapping(error)
        }
    }

    private func runUnmapped() throws -> Summary {
        let repository = try Repository.open(layout)
        let catalog = try Catalog.load(layout)
        let chosen = try choose(catalog)
        guard let full = catalog.full(of: chosen) else {
            throw PGKeepError.verification("backup \(chosen.id) depends on full backup \(chosen.parent ?? "?"), which the repository no longer has")
        }
        logger.info("restoring \(chosen.level.rawValue) backup \(chosen.id)\(chosen.id == full.id ? "" : " on full backup \(full.id)")")
        let manifest = try repository.manifest(of: chosen)
        let fullManifest = chosen.id == full.id ? manifest : try repository.manifest(of: full)
        let compression = repository.config.compressionSpec?.algorithm
        let blockSize = repository.config.blockSize

        let planner = RecoveryPlanner(target: configuration.target, walArchive: layout.walDirectory, executable: configuration.executable,
                                      backupWALDirectory: nil, backupLabel: nil, logger: logger)
        if !configuration.exportAsBackup { try planner.check(walRanges: manifest.walRanges) }
        if configuration.target.kind == nil, !configuration.exportAsBackup, let consistent = LSN(chosen.endLSN), let end = try repository.archiveEnd(segmentSize: .init(bytes: repository.config.walSegmentSize)!),
           end < consistent {
            throw PGKeepError.verification("the repository's WAL ends at \(end), before backup \(chosen.id) is consistent (\(consistent))")
        }

        // Tablespaces go where they were, or where -T says; in-place ones stay inside.
        let tablespaces = try chosen.tablespaces.map { tablespace -> (BackupRecord.Tablespace, String) in
            if !tablespace.location.hasPrefix("/") {
                guard tablespace.location == "pg_tblspc/\(tablespace.oid)" else {
                    throw PGKeepError.unsafeArchive("tablespace \(tablespace.oid) has the location '\(tablespace.location)'")
                }
                return (tablespace, configuration.targetDirectory + "/" + tablespace.location)
            }
            var destination = configuration.tablespaceMapping.target(for: tablespace.location)
            if destination == tablespace.location, let scratch = configuration.unmappedTablespacesUnder { destination = scratch + "/\(tablespace.oid)" }
            return (tablespace, destination)
        }

        if configuration.force { try RestoreJob.empty(configuration.targetDirectory) }
        let target: TargetDirectory
        do { target = try TargetDirectory(preparing: configuration.targetDirectory) } catch let error as FileSystemError where error.errno == ENOTEMPTY {
            throw PGKeepError.invalidConfiguration("\(configuration.targetDirectory) is not empty; restore into an empty directory, or add --force to replace its contents")
        }
        guard chmod(target.path, 0o700) == 0 else { throw FileSystemError("set mode 0700 on", target.path) }
        var created: [TargetDirectory] = []
        do {
            var summary = Summary(backup: chosen.id, full: full.id, targetDirectory: target.path)
            // Directories first (empty ones too), then tablespace links.
            for directory in chosen.directories.sorted() where !Self.isInsideTablespace(directory) {
                try TargetDirectory.makeDirectories(resolve(directory, root: target.path, tablespaces: tablespaces), mode: 0o700)
            }
            for (tablespace, destination) in tablespaces where !tablespace.location.hasPrefix("/") {
                try TargetDirectory.makeDirectories(destination, mode: 0o700)
            }
            for (tablespace, destination) in tablespaces where tablespace.location.hasPrefix("/") {
                do { created.append(try TargetDirectory(preparing: destination)) } catch let error as FileSystemError where error.errno == ENOTEMPTY {
                    throw PGKeepError.invalidConfiguration("tablespace \(tablespace.oid) would be restored to \(destination), which is not empty; choose another place with --tablespace-mapping \(tablespace.location)=NEW_DIRECTORY")
                }
                _ = unlink(target.path + "/pg_tblspc/\(tablespace.oid)")
                try? FileManager.default.removeItem(atPath: target.path + "/pg_tblspc/\(tablespace.oid)")
                guard symlink(destination, target.path + "/pg_tblspc/\(tablespace.oid)") == 0 else {
                    throw FileSystemError("create tablespace link", target.path + "/pg_tblspc/\(tablespace.oid)")
                }
                summary.tablespaces.append(destination)
            }
            for directory in chosen.directories.sorted() where Self.isInsideTablespace(directory) {
                try TargetDirectory.makeDirectories(resolve(directory, root: target.path, tablespaces: tablespaces), mode: 0o700)
            }

            // What each file takes is decided here, in order (and anything missing refused);
            // `perform` then does the work.
            let fullFiles = Dictionary(fullManifest.files.map { ($0.path, $0) }, uniquingKeysWith: { $1 })
            var steps: [Step] = []
            for file in manifest.files {
                if cancellation.isCancelled { throw PGKeepError(.cancelled, "restore cancelled") }
                let stored = StoredFile(path: layout.backupDirectory(chosen.id) + "/" + RepositoryLayout.storedPath(forManifestPath: file.path)
                                        + (compression?.fileSuffix ?? ""), compression: compression)
                if chosen.method == .incremental, !configuration.exportAsBackup, let relation = Self.relationName(ofIncremental: file.path) {
                    guard let base = fullFiles[relation] else {
                        throw PGKeepError.verification("\(relation): the full backup \(full.id) has no such file to apply \(file.path) to")
                    }
                    if IncrementalVisibilityMap.isVisibilityMap(relation), !IncrementalVisibilityMap.isTrusted(serverVersion: chosen.serverVersion) {
                        summary.visibilityMapsDropped += 1
                        continue
                    }
                    let source = StoredFile(path: layout.backupDirectory(full.id) + "/" + RepositoryLayout.storedPath(forManifestPath: relation)
                                            + (compression?.fileSuffix ?? ""), compression: compression)
                    steps.append(Step(size: file.size, work: .reconstruct(incremental: stored, entry: file, full: source, fullEntry: base,
                                                                          to: resolve(relation, root: target.path, tablespaces: tablespaces))))
                    continue
                }
                var source = stored
                var expected = file
                let delta = StoredFile(path: layout.backupDirectory(chosen.id) + "/" + RepositoryLayout.storedPath(forManifestPath: file.path)
                                       + RepositoryLayout.deltaSuffix + (compression?.fileSuffix ?? ""), compression: compression)
                if access(stored.path, F_OK) != 0, access(delta.path, F_OK) == 0, let base = fullFiles[file.path] {
                    // A relation file's changed pages, merged with the full's copy.
                    let source = StoredFile(path: layout.backupDirectory(full.id) + "/" + RepositoryLayout.storedPath(forManifestPath: file.path)
                                            + (compression?.fileSuffix ?? ""), compression: compression)
                    steps.append(Step(size: file.size, work: .applyDelta(delta, full: source, fullEntry: base, entry: file,
                                                                         to: resolve(file.path, root: target.path, tablespaces: tablespaces))))
                    continue
                }
                if access(stored.path, F_OK) != 0 {
                    // A file-comparison differential did not store what the full has unchanged.
                    guard chosen.level == .differential, let base = fullFiles[file.path], base.size == file.size, base.checksum == file.checksum else {
                        throw PGKeepError.verification("\(stored.path) is missing from the repository")
                    }
                    source = StoredFile(path: layout.backupDirectory(full.id) + "/" + RepositoryLayout.storedPath(forManifestPath: file.path)
                                        + (compression?.fileSuffix ?? ""), compression: compression)
                    expected = base
                }
                let stripIncrementalLines = file.path == "backup_label" && chosen.method == .incremental && !configuration.exportAsBackup
                steps.append(Step(size: file.size, work: .copy(source, entry: expected, to: resolve(file.path, root: target.path, tablespaces: tablespaces),
                                                               stripIncrementalLines: stripIncrementalLines)))
            }
            try perform(steps, blockSize: blockSize, summary: &summary)
            if summary.visibilityMapsDropped > 0 {
                logger.notice("\(summary.visibilityMapsDropped) visibility map(s) left out: PostgreSQL \(chosen.serverVersion)'s incremental backups can miss cleared bits (fixed in 18.6); VACUUM rebuilds them (run VACUUM after the restore for index-only scans to be fast again)")
            }
            if configuration.exportAsBackup {
                let manifestBytes = try readWholeFile(layout.backupDirectory(chosen.id) + "/" + RepositoryLayout.manifestName) ?? []
                try Durability.writeFileAtomically(manifestBytes, named: RepositoryLayout.manifestName, in: target.path, sync: false)
            } else {
                summary.recovery = try planner.writeSettings(into: target.path)
            }
            if configuration.sync {
                try target.sync(method: .fsync)
                for directory in created { try directory.sync(method: .fsync) }
            }
            return summary
        } catch {
            target.discard()
            created.forEach { $0.discard() }
            throw error
        }
    }

    /// One restored file: what makes it, and how large it will be (the largest go first).
    struct Step: Sendable {
        enum Work: Sendable {
            case reconstruct(incremental: StoredFile, entry: BackupManifest.File, full: StoredFile, fullEntry: BackupManifest.File, to: String)
            case applyDelta(StoredFile, full: StoredFile, fullEntry: BackupManifest.File, entry: BackupManifest.File, to: String)
            case copy(StoredFile, entry: BackupManifest.File, to: String, stripIncrementalLines: Bool)
        }
        var size: UInt64
        var work: Work

        /// The file the step writes.
        var destination: String {
            switch work {
            case .reconstruct(_, _, _, _, let to), .applyDelta(_, _, _, _, let to), .copy(_, _, let to, _): to
            }
        }
    }

    /// Does the steps on a thread per processor, the largest files first (decompressing and
    /// reconstructing are CPU work; one file's read waits while another's write goes on); one more
    /// thread creates the files ahead of them (`OSThread.fillCreated`). With `sync`, the tree is
    /// fsynced at the end, and writeback starts as each file is written, as the plain restore does.
    private func perform(_ steps: [Step], blockSize: Int, summary: inout Summary) throws {
        let order = steps.indices.sorted { steps[$0].size > steps[$1].size }
        let outcome = Mutex((bytes: UInt64(0), files: 0, reconstructed: 0))
        let cancellation = cancellation, sync = configuration.sync
        try OSThread.fillCreated(order.map { steps[$0].destination }, workers: Processors.online, name: "pgkeep-restore",
                                 stopped: { cancellation.isCancelled }) { position in
            if cancellation.isCancelled { throw PGKeepError(.cancelled, "restore cancelled") }
            switch steps[order[position]].work {
            case .reconstruct(let incremental, let entry, let full, let fullEntry, let destination):
                let bytes = try Reconstruction.reconstruct(incremental: incremental, entry: entry, full: full, fullEntry: fullEntry,
                                                           blockSize: blockSize, to: Reconstruction.Output(destination, created: true, startsWriteback: sync))
                outcome.withLock { $0.bytes += bytes; $0.reconstructed += 1; $0.files += 1 }
            case .applyDelta(let delta, let full, let fullEntry, let entry, let destination):
                let bytes = try Reconstruction.applyDelta(delta, full: full, fullEntry: fullEntry, entry: entry, blockSize: blockSize,
                                                          to: Reconstruction.Output(destination, created: true, startsWriteback: sync))
                outcome.withLock { $0.bytes += bytes; $0.reconstructed += 1; $0.files += 1 }
            case .copy(let source, let entry, let destination, let strip):
                let bytes = try Reconstruction.copy(source, entry: entry, to: Reconstruction.Output(destination, created: true, startsWriteback: sync),
                                                    stripIncrementalLines: strip)
                outcome.withLock { $0.bytes += bytes; $0.files += 1 }
            }
        }
        if cancellation.isCancelled { throw PGKeepError(.cancelled, "restore cancelled") }
        let result = outcome.withLock { $0 }
        summary.bytes += result.bytes
        summary.files += result.files
        summary.reconstructed += result.reconstructed
    }

    // MARK: Choosing

    private func choose(_ catalog: Catalog) throws -> BackupRecord {
        if let id = configuration.backup, id != "latest" {
            guard let record = catalog.record(id) else { throw PGKeepError.invalidConfiguration("the repository has no backup \(id) (pgkeep list --repo shows them)") }
            guard record.hasData else {
                throw PGKeepError.invalidConfiguration("\(id) is an incremental (WAL only); restore its full or differential with a recovery target instead")
            }
            return record
        }
        let candidates = catalog.restorable
        guard !candidates.isEmpty else { throw PGKeepError.invalidConfiguration("the repository has no full backup to restore") }
        switch configuration.target.kind {
        case .lsn(let lsn)?:
            guard let record = candidates.last(where: { (LSN($0.endLSN) ?? LSN(UInt64.max)) <= lsn }) else {
                throw PGKeepError.invalidConfiguration("--target-lsn \(lsn) is before every backup in the repository is consistent (the oldest at \(candidates[0].endLSN))")
            }
            return record
        case .time(let text)?:
            guard let wanted = PostgresTime.parse(text) else { return candidates.last! }
            guard let record = candidates.last(where: { (Repository.date($0.consistentAt) ?? .distantFuture) <= wanted }) else {
                throw PGKeepError.invalidConfiguration("--target-time \(text) is before every backup in the repository is consistent (the oldest at \(candidates[0].consistentAt))")
            }
            return record
        default:
            return candidates.last!
        }
    }

    // MARK: Files

    static func isInsideTablespace(_ path: String) -> Bool { path.hasPrefix("pg_tblspc/") }

    /// A manifest path's place in the restored cluster: tablespace files under their tablespace's
    /// destination, everything else under the data directory.
    private func resolve(_ path: String, root: String, tablespaces: [(BackupRecord.Tablespace, String)]) -> String {
        let parts = path.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        if parts.count >= 2, parts[0] == "pg_tblspc", let oid = UInt32(parts[1]),
           let destination = tablespaces.first(where: { $0.0.oid == oid })?.1 {
            return parts.count == 3 ? destination + "/" + parts[2] : destination
        }
        return root + "/" + path
    }

    /// "base/5/INCREMENTAL.16384.1" → "base/5/16384.1", where pg_combinebackup treats it as
    /// incremental (under base/, global/, pg_tblspc/); nil for any other file.
    public static func relationName(ofIncremental path: String) -> String? {
        guard path.hasPrefix("base/") || path.hasPrefix("global/") || path.hasPrefix("pg_tblspc/") else { return nil }
        let slash = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        guard path[slash...].hasPrefix("INCREMENTAL.") else { return nil }
        return String(path[..<slash]) + String(path[slash...].dropFirst("INCREMENTAL.".count))
    }

}
