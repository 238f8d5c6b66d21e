#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Logging
import ArchiveStream
import Codecs
import Manifest
import PGWire
import Sinks
import WAL
import Synchronization

/// `pgkeep restore`: a backup back into a data directory that PostgreSQL can start, optionally
/// set up for point-in-time recovery from a receive-wal archive.
///
/// Order, and why: everything that can be refused is refused before a byte is written (a backup
/// that fails verification, a recovery target outside the WAL there is, a tablespace with nowhere
/// to go, a non-empty target); then files are copied (plain) or extracted (tar) with the modes
/// PostgreSQL requires, the recovery settings written, and everything fsynced. A plain backup's
/// file checksums are the one check made while copying, from the bytes being copied (so each
/// byte is read once): a mismatch fails the restore like any other error. On failure, what
/// this run wrote is removed.
public final class RestoreJob {
    public struct Configuration: Sendable {
        public var backup: String
        public var targetDirectory: String
        public var tablespaceMapping = TablespaceMapping()
        public var force = false
        public var walArchive: String?
        public var target = RecoveryTarget()
        public var verify = true
        /// The pgkeep binary restore_command should run (absolute).
        public var executable: String
        public var sync = true
        /// A drill's scratch area: tablespaces nobody mapped go to <this>/<oid>.
        public var unmappedTablespacesUnder: String?

        public init(backup: String, targetDirectory: String, executable: String) {
            self.backup = backup
            self.targetDirectory = targetDirectory
            self.executable = executable
        }
    }

    public struct Summary: Sendable, Encodable {
        public var targetDirectory: String
        public var format: String
        public var files = 0
        public var bytes: UInt64 = 0
        public var tablespaces: [String] = []
        public var recovery: [String] = []
    }

    private let configuration: Configuration
    private let logger: Logger
    private let cancellation: CancellationToken

    public init(configuration: Configuration, observer: JobObserver, cancellation: CancellationToken = CancellationToken()) {
        self.configuration = configuration
        self.logger = observer.logger
        self.cancellation = cancellation
    }

    public func run() throws(PGKeepError) -> Summary {
        do {
            return try runUnmapped()
        } catch {
            throw PGKeepError.mapping(error)
        }
    }

    private var planner: RecoveryPlanner {
        RecoveryPlanner(target: configuration.target, walArchive: configuration.walArchive, executable: configuration.executable,
                        backupWALDirectory: configuration.backup + "/pg_wal", backupLabel: configuration.backup + "/backup_label", logger: logger)
    }

    private func runUnmapped() throws -> Summary {
        let backup = configuration.backup
        let isTar = Self.baseTar(in: backup) != nil
        guard isTar || access(backup + "/PG_VERSION", F_OK) == 0 else {
            throw PGKeepError.invalidConfiguration("\(backup) is not a backup: it has neither PG_VERSION nor base.tar")
        }
        guard let manifestBytes = try readWholeFile(backup + "/backup_manifest") else {
            throw PGKeepError.invalidConfiguration("\(backup) has no backup_manifest: the backup is incomplete and cannot be restored")
        }
        let manifest: BackupManifest
        do { manifest = try BackupManifest(bytes: manifestBytes) } catch { throw PGKeepError.verification("\(backup)/backup_manifest: \(error)") }

        if configuration.verify {
            // A plain backup's file checksums are checked as the files are copied (each byte is
            // read once); everything else — the manifest, sizes, the WAL — before a byte is written.
            var options = BackupVerifier.Options()
            options.walArchive = configuration.walArchive
            options.skipChecksums = !isTar
            let report = try BackupVerifier(directory: backup, options: options).run()
            guard report.ok else { throw Self.doesNotVerify(report.problems) }
            logger.info("backup verified\(isTar ? "" : " (checksums as it is copied)"): \(report.filesChecked) files, \(report.walRecords) WAL records")
        }
        try planner.check(walRanges: manifest.walRanges)
        let tablespaces = isTar ? [] : try plainTablespaces()

        if configuration.force { try Self.empty(configuration.targetDirectory) }
        let target: TargetDirectory
        do { target = try TargetDirectory(preparing: configuration.targetDirectory) } catch let error as FileSystemError where error.errno == ENOTEMPTY {
            throw PGKeepError.invalidConfiguration("\(configuration.targetDirectory) is not empty; restore into an empty directory, or add --force to replace its contents")
        }
        // PostgreSQL refuses a data directory group- or world-accessible beyond 0750.
        guard chmod(target.path, 0o700) == 0 else { throw FileSystemError("set mode 0700 on", target.path) }
        var created: [TargetDirectory] = []
        do {
            var summary = Summary(targetDirectory: target.path, format: isTar ? "tar" : "plain")
            if isTar {
                try restoreTar(into: target.path, summary: &summary, created: &created)
            } else {
                // Directories and links first, in order; then the files, on several threads.
                var copies: [FileCopy] = []
                try planTree(from: backup, to: target.path, manifestPath: "", skipping: ["pg_tblspc"], into: &copies)
                try makeDirectory(target.path + "/pg_tblspc")
                // In-place tablespaces are directories inside the backup: they stay inside.
                for oid in try inPlaceTablespaces() {
                    try makeDirectory(target.path + "/pg_tblspc/" + oid)
                    try planTree(from: backup + "/pg_tblspc/" + oid, to: target.path + "/pg_tblspc/" + oid,
                                 manifestPath: "pg_tblspc/" + oid, skipping: [], into: &copies)
                }
                for (oid, source, destination) in tablespaces {
                    let directory = try TargetDirectory(preparing: destination)
                    created.append(directory)
                    try planTree(from: source, to: destination, manifestPath: "pg_tblspc/" + oid, skipping: [], into: &copies)
                    guard symlink(destination, target.path + "/pg_tblspc/" + oid) == 0 else {
                        throw FileSystemError("create tablespace link", target.path + "/pg_tblspc/" + oid)
                    }
                    summary.tablespaces.append(destination)
                }
                try copy(copies, checking: configuration.verify ? manifest : nil, summary: &summary)
            }
            summary.recovery = try planner.writeSettings(into: target.path)
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

    // MARK: Checks before writing

    /// pg_tblspc links of a plain backup: where each tablespace is stored, and where it goes.
    private func plainTablespaces() throws -> [(oid: String, source: String, destination: String)] {
        let directory = configuration.backup + "/pg_tblspc"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        let inPlace = Set(try inPlaceTablespaces())
        return try entries.sorted().filter { !inPlace.contains($0) }.map { oid in
            let source = try FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + oid)
            var destination = configuration.tablespaceMapping.target(for: source)
            if destination == source, let scratch = configuration.unmappedTablespacesUnder { destination = scratch + "/" + oid }
            guard destination != source else {
                throw PGKeepError.invalidConfiguration("tablespace \(oid) of the backup is stored at \(source); say where the restored cluster keeps it with --tablespace-mapping \(source)=NEW_DIRECTORY")
            }
            return (oid, source, destination)
        }
    }

    /// pg_tblspc entries of a plain backup that are directories, not links: in-place tablespaces.
    private func inPlaceTablespaces() throws -> [String] {
        let directory = configuration.backup + "/pg_tblspc"
        guard let entries = try? directoryEntries(directory) else { return [] }
        return entries.sorted().filter { name in
            var info = stat()
            return lstat(directory + "/" + name, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
        }
    }

    // MARK: Plain

    static func doesNotVerify(_ problems: [String]) -> PGKeepError {
        PGKeepError.verification("the backup does not verify, so it is not restored (--no-verify to restore it anyway):\n"
                                 + problems.joined(separator: "\n"))
    }

    /// One file to copy: where from, where to, and its path in the backup's manifest.
    struct FileCopy: Sendable {
        var from: String
        var to: String
        var manifestPath: String
        var size: UInt64
    }

    /// Walks a directory tree: creates its directories (0700) in the target, and lists its files
    /// (created 0600 by `copy`, as PostgreSQL requires); symlinks are refused outside pg_tblspc
    /// (handled by the caller).
    private func planTree(from source: String, to destination: String, manifestPath: String, skipping: Set<String>,
                          into copies: inout [FileCopy]) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: source).sorted()
        for name in names where !skipping.contains(name) {
            if cancellation.isCancelled { throw PGKeepError(.cancelled, "restore cancelled") }
            let from = source + "/" + name, to = destination + "/" + name
            let relative = manifestPath.isEmpty ? name : manifestPath + "/" + name
            var info = stat()
            guard lstat(from, &info) == 0 else { throw FileSystemError("stat", from) }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                try makeDirectory(to)
                try planTree(from: from, to: to, manifestPath: relative, skipping: [], into: &copies)
            case S_IFREG:
                copies.append(FileCopy(from: from, to: to, manifestPath: relative, size: UInt64(info.st_size)))
            default:
                throw PGKeepError.unsafeArchive("\(from) is neither a file nor a directory; a backup holds only those (and pg_tblspc links)")
            }
        }
    }

    /// Copies the files on a thread per processor (copying between page caches is CPU work, and
    /// a file's read waits while another's write goes on), the largest first; one more thread
    /// creates the files, in that order, ahead of the copies (`OSThread.fillCreated`). With a manifest,
    /// each file's checksum is computed from the bytes as they are copied and compared with it:
    /// a mismatch fails the restore, which then removes what it wrote.
    private func copy(_ copies: [FileCopy], checking manifest: BackupManifest?, summary: inout Summary) throws {
        let expected = Dictionary((manifest?.files ?? []).filter { $0.algorithm != .none && $0.checksum != nil }.map { ($0.path, $0) },
                                  uniquingKeysWith: { first, _ in first })
        let order = copies.indices.sorted { copies[$0].size > copies[$1].size }
        let outcome = Mutex((bytes: UInt64(0), mismatches: [String]()))
        let sync = configuration.sync, cancellation = cancellation
        try OSThread.fillCreated(order.map { copies[$0].to }, workers: max(2, Processors.online), name: "pgkeep-restore",
                                 stopped: { cancellation.isCancelled }) { position in
            if cancellation.isCancelled { throw PGKeepError(.cancelled, "restore cancelled") }
            let file = copies[order[position]]
            let listed = expected[file.manifestPath]
            let summer = listed.map { Checksummer($0.algorithm) }
            // The tree is fsynced at the end; writeback starts as each buffer is written, so
            // that the final fsyncs find most of it on disk already (as backups are written).
            let sink = try FileSink(path: file.to, syncOnFinish: false, startsWriteback: sync, placeholder: true)
            try forEachChunk(ofFileAt: file.from, chunkSize: preferredWriteSize) { chunk in
                summer?.update(chunk)
                try sink.consume(chunk)
            }
            try sink.finish()
            let mismatch = listed.flatMap { listed in summer?.finish() == listed.checksum ? nil : listed.path }
            outcome.withLock {
                $0.bytes += sink.bytesWritten
                if let mismatch { $0.mismatches.append("checksum mismatch for file \"\(mismatch)\"") }
            }
        }
        if cancellation.isCancelled { throw PGKeepError(.cancelled, "restore cancelled") }
        let result = outcome.withLock { $0 }
        guard result.mismatches.isEmpty else { throw Self.doesNotVerify(result.mismatches.sorted()) }
        summary.files += copies.count
        summary.bytes += result.bytes
    }

    private func makeDirectory(_ path: String) throws {
        guard mkdir(path, 0o700) == 0 else { throw FileSystemError("create directory", path) }
    }

    // MARK: Tar

    /// base.tar into the target, each <oid>.tar where tablespace_map (rewritten for the mapping)
    /// says, pg_wal.tar into pg_wal. The server makes the pg_tblspc links from tablespace_map.
    private func restoreTar(into root: String, summary: inout Summary, created: inout [TargetDirectory]) throws {
        let backup = configuration.backup
        guard let base = Self.baseTar(in: backup) else { return }
        try TarBackupReader.extract(backup + "/" + base, into: root)
        var mapLines: [String] = []
        if let map = try readWholeFile(root + "/tablespace_map") {
            for line in String(decoding: map, as: UTF8.self).split(separator: "\n") {
                guard let space = line.firstIndex(of: " ") else { continue }
                let oid = String(line[..<space]), original = String(line[line.index(after: space)...])
                var destination = configuration.tablespaceMapping.target(for: original)
                if !original.hasPrefix("/") {
                    // An in-place tablespace: inside the data directory, and nowhere else.
                    guard original == "pg_tblspc/" + oid, UInt32(oid) != nil else {
                        throw PGKeepError.unsafeArchive("tablespace_map places tablespace \(oid) at '\(original)', outside the data directory")
                    }
                    destination = root + "/" + original
                } else if destination == original, let scratch = configuration.unmappedTablespacesUnder { destination = scratch + "/" + oid }
                guard let archive = try FileManager.default.contentsOfDirectory(atPath: backup).first(where: { $0 == oid + ".tar" || $0.hasPrefix(oid + ".tar.") }) else {
                    throw PGKeepError.unsafeArchive("tablespace_map names tablespace \(oid), but the backup has no \(oid).tar")
                }
                let directory: TargetDirectory
                do { directory = try TargetDirectory(preparing: destination) } catch let error as FileSystemError where error.errno == ENOTEMPTY {
                    throw PGKeepError.invalidConfiguration("tablespace \(oid) would be restored to \(destination), which is not empty; choose another place with --tablespace-mapping \(original)=NEW_DIRECTORY")
                }
                created.append(directory)
                try TarBackupReader.extract(backup + "/" + archive, into: destination)
                // An in-place tablespace's directory is already where the server looks; a map
                // line would have the server try to replace that directory with a link.
                if original.hasPrefix("/") { mapLines.append("\(oid) \(destination)") }
                summary.tablespaces.append(destination)
            }
            if mapLines.isEmpty {
                try Durability.remove("tablespace_map", in: root, sync: false)
            } else {
                try Durability.writeFileAtomically(Array((mapLines.joined(separator: "\n") + "\n").utf8), named: "tablespace_map", in: root, sync: false)
            }
        }
        if let wal = try FileManager.default.contentsOfDirectory(atPath: backup).first(where: { $0 == "pg_wal.tar" || $0.hasPrefix("pg_wal.tar.") }) {
            if access(root + "/pg_wal", F_OK) != 0 { try makeDirectory(root + "/pg_wal") }
            try TarBackupReader.extract(backup + "/" + wal, into: root + "/pg_wal")
        }
    }

    static func baseTar(in backup: String) -> String? {
        (try? FileManager.default.contentsOfDirectory(atPath: backup))?.first { $0 == "base.tar" || $0.hasPrefix("base.tar.") }
    }

    // MARK: Recovery settings

    // MARK: Helpers

    /// --force: the target's contents go (the directory itself stays, with its mode).
    public static func empty(_ path: String) throws {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
        for entry in entries { try FileManager.default.removeItem(atPath: path + "/" + entry) }
    }
}
