#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Logging
import ArchiveStream
import Codecs
import Manifest
import PGKeep
import PluginFrames
import Repository
import Sinks
import Synchronization

/// A PITR-mode restore with where=/dir: Bacula sends the virtual files back and this writes them
/// — /dir/<service>/data, /dir/<service>/tablespaces/<oid>, /dir/<service>/wal — then, when the
/// restore job ends, finishes what Bacula cannot: a differential's changed pages and incremental
/// files merged with the full's files, every file checked against the differential's manifest
/// (files it does not list removed), the tablespace links, and recovery settings whose
/// restore_command is pgkeep wal-fetch on the restored WAL.
final class PITRRestoreSession {
    let options: PluginOptions
    let whereDirectory: String
    let channel: FrameChannel
    let logger: Logger
    let executable: String

    init(options: PluginOptions, where whereDirectory: String, channel: FrameChannel, logger: Logger, executable: String) {
        self.options = options
        self.whereDirectory = whereDirectory
        self.channel = channel
        self.logger = logger
        self.executable = executable
    }

    var root: String { whereDirectory + "/" + options.service }
    var dataDirectory: String { root + "/data" }

    func run() throws {
        guard whereDirectory.hasPrefix("/"), whereDirectory != "/" else {
            throw PGKeepError.invalidConfiguration("a PITR restore writes a data directory: give the restore a where=/directory (it goes to /directory/\(options.service)/data)")
        }
        // where= is the administrator's directory (others may need to pass through it); the
        // cluster's own directory is private, as PostgreSQL requires.
        try TargetDirectory.makeDirectories(whereDirectory, mode: 0o755)
        try TargetDirectory.makeDirectories(root, mode: 0o700)
        try receiveFiles(channel: channel, where: whereDirectory, prefix: options.prefix, into: root)
        try finish()
    }

    // MARK: Finishing

    private func finish() throws {
        let meta = root + "/pgkeep"
        var records: [BackupRecord] = []
        for name in (try? directoryEntries(meta)) ?? [] where name.hasSuffix(".json") {
            guard let bytes = try readWholeFile(meta + "/" + name) else { continue }
            records.append(try JSONDecoder().decode(BackupRecord.self, from: Data(bytes)))
        }
        let catalog = Catalog(records: records)
        guard let chosen = catalog.restorable.last else {
            throw PGKeepError.verification("the restored files hold no full backup's record (/@PG/\(options.service)/pgkeep/*.json): select the Full job's files too")
        }
        guard let full = catalog.full(of: chosen) else {
            throw PGKeepError.verification("differential \(chosen.id) rests on full backup \(chosen.parent ?? "?"), whose files were not restored")
        }
        let manifest = try BackupManifest(bytes: try readWholeFile(meta + "/\(chosen.id).manifest") ?? [])
        let fullManifest = chosen.id == full.id ? manifest : try BackupManifest(bytes: try readWholeFile(meta + "/\(full.id).manifest") ?? [])
        let fullFiles = Dictionary(fullManifest.files.map { ($0.path, $0) }, uniquingKeysWith: { $1 })
        let tablespaceRoots = Dictionary(uniqueKeysWithValues: chosen.tablespaces.filter { $0.location.hasPrefix("/") }
            .map { ($0.oid, root + "/tablespaces/\($0.oid)") })
        func place(_ path: String) -> String {
            let parts = path.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
            if parts.count == 3, parts[0] == "pg_tblspc", let oid = UInt32(parts[1]), let directory = tablespaceRoots[oid] {
                return directory + "/" + parts[2]
            }
            return dataDirectory + "/" + path
        }
        channel.message(.info, "finishing the restore of \(chosen.level.rawValue) backup \(chosen.id)\(chosen.id == full.id ? "" : " on full backup \(full.id)") in \(dataDirectory)")

        for directory in chosen.directories.sorted() { try TargetDirectory.makeDirectories(place(directory), mode: 0o700) }
        // What each file needs is decided here, in the manifest's order (anything missing from the
        // full refused before a file is touched); the work is then done on a thread per processor.
        var listed = Set<String>()
        var droppedMaps = 0
        var steps: [FinishStep] = []
        for file in manifest.files {
            let relation = chosen.method == .incremental ? RepositoryRestoreJob.relationName(ofIncremental: file.path) : nil
            let target = place(relation ?? file.path)
            listed.insert(target)
            if let relation {
                guard let base = fullFiles[relation] else { throw PGKeepError.verification("\(relation): the full backup has no such file") }
                let incremental = place(file.path)
                if IncrementalVisibilityMap.isVisibilityMap(relation), !IncrementalVisibilityMap.isTrusted(serverVersion: chosen.serverVersion) {
                    listed.remove(target) // the full's stale copy goes too
                    unlink(incremental)
                    droppedMaps += 1
                    continue
                }
                steps.append(FinishStep(size: file.size, work: .reconstruct(incremental: incremental, entry: file, target: target, fullEntry: base)))
                continue
            }
            let delta = target + RepositoryLayout.deltaSuffix
            if access(delta, F_OK) == 0, let base = fullFiles[file.path] {
                steps.append(FinishStep(size: file.size, work: .applyDelta(delta, entry: file, target: target, fullEntry: base)))
                continue
            }
            if file.path == "backup_label", chosen.method == .incremental {
                steps.append(FinishStep(size: file.size, work: .writeWholeBackupLabel(in: dataDirectory)))
                continue
            }
            steps.append(FinishStep(size: file.size, work: .check(target, entry: file)))
        }
        let rebuilt = try Self.perform(steps, blockSize: blockSize(manifest))
        // What the differential's manifest does not list is gone from the cluster (without accurate
        // mode, Bacula restores the full's copies too).
        var removed = 0
        for base in [dataDirectory] + tablespaceRoots.values.sorted() {
            for path in try regularFiles(under: base) where !listed.contains(path) && !BackupRecordIgnored.isIgnored(path, dataDirectory: dataDirectory) {
                unlink(path)
                removed += 1
            }
        }
        for (oid, directory) in tablespaceRoots {
            let link = dataDirectory + "/pg_tblspc/\(oid)"
            try? FileManager.default.removeItem(atPath: link)
            try TargetDirectory.makeDirectories(dataDirectory + "/pg_tblspc", mode: 0o700)
            guard symlink(directory, link) == 0 else { throw FileSystemError("create tablespace link", link) }
        }
        try TargetDirectory.makeDirectories(dataDirectory + "/pg_wal/archive_status", mode: 0o700)
        guard chmod(dataDirectory, 0o700) == 0 else { throw FileSystemError("set mode 0700 on", dataDirectory) }
        let planner = RecoveryPlanner(target: RecoveryTarget(), walArchive: root + "/wal", executable: executable, backupWALDirectory: nil,
                                      backupLabel: nil, logger: logger)
        _ = try planner.writeSettings(into: dataDirectory)
        try Durability.syncTree(root, method: .fsync)
        if droppedMaps > 0 {
            channel.message(.info, "\(droppedMaps) visibility map(s) left out: PostgreSQL \(chosen.serverVersion)'s incremental backups can miss cleared bits (fixed in 18.6); VACUUM rebuilds them (run it after the restore for index-only scans to be fast again)")
        }
        channel.message(.info, "restored \(manifest.files.count) files (\(rebuilt) rebuilt from a differential, \(removed) not in it removed); WAL in \(root)/wal")
        channel.message(.info, "to start it: chown -R postgres \(root) && pg_ctl -D \(dataDirectory) start (recovery replays the restored WAL, then promotes). For a point in time, first add recovery_target_time = '…' and recovery_target_action = 'promote' to \(dataDirectory)/postgresql.auto.conf")
    }

    private func blockSize(_ manifest: BackupManifest) -> Int { 8192 }

    /// What finishing does to one file the chosen backup's manifest lists.
    struct FinishStep: Sendable {
        enum Work: Sendable {
            /// Restored as the backup has it: its size and checksum are checked.
            case check(String, entry: BackupManifest.File)
            /// A 17+ INCREMENTAL file merged with the full's copy at `target`, as pg_combinebackup does it.
            case reconstruct(incremental: String, entry: BackupManifest.File, target: String, fullEntry: BackupManifest.File)
            /// A file-comparison differential's changed pages over the full's copy at `target`.
            case applyDelta(String, entry: BackupManifest.File, target: String, fullEntry: BackupManifest.File)
            /// backup_label without its INCREMENTAL FROM lines: the label of a whole backup.
            case writeWholeBackupLabel(in: String)
        }
        var size: UInt64
        var work: Work
    }

    /// Does `steps` on a thread per processor, the largest files first (checking and rebuilding
    /// are reading and CPU: one file's read waits while another's checksum goes on); the first
    /// error stops the rest and is thrown. Returns how many files were rebuilt.
    static func perform(_ steps: [FinishStep], blockSize: Int) throws -> Int {
        let order = steps.indices.sorted { steps[$0].size > steps[$1].size }
        let rebuilt = Atomic<Int>(0)
        try OSThread.forEach(order.count, workers: Processors.online, name: "pgkeep-finish") { index in
            switch steps[order[index]].work {
            case .reconstruct(let incremental, let entry, let target, let fullEntry):
                _ = try Reconstruction.reconstruct(incremental: StoredFile(path: incremental, compression: nil), entry: entry,
                                                   full: StoredFile(path: target, compression: nil), fullEntry: fullEntry,
                                                   blockSize: blockSize, to: Reconstruction.Output(target + ".pgkeep-new"))
                try replace(target, with: target + ".pgkeep-new")
                unlink(incremental)
                rebuilt.add(1, ordering: .relaxed)
            case .applyDelta(let delta, let entry, let target, let fullEntry):
                _ = try Reconstruction.applyDelta(StoredFile(path: delta, compression: nil), full: StoredFile(path: target, compression: nil),
                                                  fullEntry: fullEntry, entry: entry, blockSize: blockSize, to: Reconstruction.Output(target + ".pgkeep-new"))
                try replace(target, with: target + ".pgkeep-new")
                unlink(delta)
                rebuilt.add(1, ordering: .relaxed)
            case .writeWholeBackupLabel(let dataDirectory):
                let label = try readWholeFile(dataDirectory + "/backup_label") ?? []
                try Durability.writeFileAtomically(Reconstruction.wholeBackupLabel(label), named: "backup_label", in: dataDirectory, sync: false)
            case .check(let path, let entry):
                try check(path, against: entry)
            }
        }
        return rebuilt.load(ordering: .relaxed)
    }

    private static func replace(_ target: String, with new: String) throws {
        guard rename(new, target) == 0 else { throw FileSystemError("rename", new) }
    }

    private static func check(_ path: String, against entry: BackupManifest.File) throws {
        let summer = Checksummer(entry.algorithm)
        var size: UInt64 = 0
        do {
            try forEachChunk(ofFileAt: path) { summer.update($0); size += UInt64($0.count) }
        } catch {
            throw PGKeepError.verification("\"\(entry.path)\" was not restored (\(path)): select every file of the jobs in the chain")
        }
        guard size == entry.size, entry.algorithm == .none || summer.finish() == entry.checksum else {
            throw PGKeepError.verification("\"\(entry.path)\" restored with other contents than the backup's manifest says (\(path))")
        }
    }

    private func regularFiles(under directory: String) throws -> [String] {
        var found: [String] = []
        guard let names = try? directoryEntries(directory) else { return [] }
        for name in names {
            let path = directory + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            if info.st_mode & S_IFMT == S_IFDIR { found += try regularFiles(under: path) }
            else if info.st_mode & S_IFMT == S_IFREG { found.append(path) }
        }
        return found
    }
}

/// Files a restored data directory keeps although no manifest lists them.
enum BackupRecordIgnored {
    static func isIgnored(_ path: String, dataDirectory: String) -> Bool {
        let relative = path.hasPrefix(dataDirectory + "/") ? String(path.dropFirst(dataDirectory.count + 1)) : path
        return relative == "backup_manifest" || relative.hasPrefix("pg_wal/") || relative == "recovery.signal" || relative == "standby.signal"
    }
}

/// Writes the files Bacula restores: each virtual path /@PG/<service>/<rest> (after the where
/// prefix Bacula put in front) becomes `into`/<rest>, never anywhere else.
func receiveFiles(channel: FrameChannel, where whereDirectory: String, prefix: String, into root: String) throws {
    var current: (sink: FileSink, path: String)?
    var files = 0
    let data = { (bytes: UnsafeRawBufferPointer) throws in
        guard let current else { throw PGKeepError.protocolViolation("data outside a file") }
        try current.sink.consume(bytes)
    }
    while let frame = try channel.receive(data: data) {
        switch frame {
        case .file(let header):
            guard current == nil else { throw PGKeepError.protocolViolation("a file began before the last one ended") }
            let relative = try restoredRelativePath(header.path, where: whereDirectory, prefix: prefix)
            let path = root + "/" + relative
            if header.type == .directory {
                try TargetDirectory.makeDirectories(path, mode: 0o700)
                continue
            }
            if let slash = path.lastIndex(of: "/") { try TargetDirectory.makeDirectories(String(path[..<slash]), mode: 0o700) }
            unlink(path)
            current = (try FileSink(path: path, mode: 0o600, syncOnFinish: false), path)
        case .data:
            continue // went to `data`
        case .end:
            guard let file = current.take() else { throw PGKeepError.protocolViolation("the end of no file") }
            try file.sink.finish()
            files += 1
        case .done:
            if let file = current.take() { try file.sink.finish() }
            channel.message(.info, "received \(files) files")
            return
        case .seen, .message:
            continue
        }
    }
    throw PGKeepError.protocolViolation("the plugin went away before the end of the restore")
}

/// "/dir/@PG/main/data/base/1/2" (where /dir) → "data/base/1/2": checked, as an archive path is.
func restoredRelativePath(_ path: String, where whereDirectory: String, prefix: String) throws -> String {
    var rest = Substring(path)
    let base = whereDirectory == "/" ? "" : whereDirectory
    if !base.isEmpty, rest.hasPrefix(base) { rest = rest.dropFirst(base.count) }
    guard rest.hasPrefix(prefix) else {
        throw PGKeepError.unsafeArchive("refusing to restore \(path): it is not one of this backup's files (\(prefix)…)")
    }
    var relative = String(rest.dropFirst(prefix.count))
    while relative.hasSuffix("/") { relative.removeLast() } // a directory, as Bacula names it
    do { return try ArchivePath(validating: relative).description } catch {
        throw PGKeepError.unsafeArchive("refusing to restore \(path): \(error)")
    }
}
