#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import ArchiveStream
import Codecs
import Manifest
import PGWire
import Sinks
import WAL

/// `pgkeep restore`: a backup back into a data directory that PostgreSQL can start, optionally
/// set up for point-in-time recovery from a receive-wal archive.
///
/// Order, and why: everything that can be refused is refused before a byte is written (a backup
/// that fails verification, a recovery target outside the WAL there is, a tablespace with nowhere
/// to go, a non-empty target); then files are copied (plain) or extracted (tar) with the modes
/// PostgreSQL requires, the recovery settings written, and everything fsynced. On failure, what
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
            let report = try BackupVerifier(directory: backup, walArchive: configuration.walArchive).run()
            guard report.ok else {
                throw PGKeepError.verification("the backup does not verify, so it is not restored (--no-verify to restore it anyway):\n"
                                               + report.problems.joined(separator: "\n"))
            }
            logger.info("backup verified: \(report.filesChecked) files, \(report.walRecords) WAL records")
        }
        try checkTarget(manifest)
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
                try copyTree(from: backup, to: target.path, skipping: ["pg_tblspc"], summary: &summary)
                try makeDirectory(target.path + "/pg_tblspc")
                for (oid, source, destination) in tablespaces {
                    let directory = try TargetDirectory(preparing: destination)
                    created.append(directory)
                    try copyTree(from: source, to: destination, skipping: [], summary: &summary)
                    guard symlink(destination, target.path + "/pg_tblspc/" + oid) == 0 else {
                        throw FileSystemError("create tablespace link", target.path + "/pg_tblspc/" + oid)
                    }
                    summary.tablespaces.append(destination)
                }
            }
            summary.recovery = try writeRecoverySettings(into: target.path)
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

    /// A target the WAL cannot reach is refused now, not after a long restore and replay.
    private func checkTarget(_ manifest: BackupManifest) throws {
        guard let kind = configuration.target.kind else { return }
        guard let backupEnd = manifest.walRanges.map(\.end).max() else { return }
        if case .lsn(let lsn) = kind {
            guard lsn >= backupEnd else {
                throw PGKeepError.invalidConfiguration("--target-lsn \(lsn) is before the backup's end (\(backupEnd)): recovery from this backup cannot stop there; use an older backup")
            }
            if lsn > backupEnd {
                guard let archive = configuration.walArchive else {
                    throw PGKeepError.invalidConfiguration("--target-lsn \(lsn) is past the backup's end (\(backupEnd)): give the WAL archive with --wal-archive")
                }
                let reach = try archiveEnd(archive)
                guard let reach, lsn <= reach else {
                    throw PGKeepError.invalidConfiguration("--target-lsn \(lsn) is past the WAL the archive holds (it ends at \(reach.map(\.description) ?? "nothing")); recovery could not reach it")
                }
            }
        } else if configuration.walArchive == nil, kind != .immediate {
            throw PGKeepError.invalidConfiguration("a recovery target past the backup needs the WAL archive: add --wal-archive DIR")
        } else if let archive = configuration.walArchive, kind != .immediate {
            try checkTargetInArchive(kind, manifest: manifest, archive: archive)
        }
    }

    /// A target time before the backup started or after the archive's last transaction, an xid
    /// whose commit, or a restore point whose name, is not in the WAL after the backup: recovery
    /// could not reach them, so they are refused now. Reads the WAL from the backup's start to the
    /// archive's end (which also proves it continuous). Skipped, with a note, for a time this
    /// cannot parse (PostgreSQL will) or an archive that changes timeline.
    private func checkTargetInArchive(_ kind: RecoveryTarget.Kind, manifest: BackupManifest, archive: String) throws {
        var wanted: Date?
        if case .time(let text) = kind {
            guard let time = PostgresTime.parse(text) else {
                logger.info("cannot read --target-time '\(text)' here; PostgreSQL will check it")
                return
            }
            wanted = time
            if let label = try readWholeFile(configuration.backup + "/backup_label").map({ String(decoding: $0, as: UTF8.self) }),
               let line = label.split(separator: "\n").first(where: { $0.hasPrefix("START TIME: ") }),
               let started = PostgresTime.parse(String(line.dropFirst("START TIME: ".count))), time < started {
                throw PGKeepError.invalidConfiguration("--target-time \(text) is before the backup started (\(line.dropFirst("START TIME: ".count))); use an older backup")
            }
        }
        guard let range = manifest.walRanges.first, manifest.walRanges.count == 1,
              !(try FileManager.default.contentsOfDirectory(atPath: archive)).contains(where: { $0.hasSuffix(".history") }) else {
            logger.info("the archive changes timeline; the recovery target is left for PostgreSQL to check")
            return
        }
        // The archive first: the backup's own last segment is only valid up to the backup's end
        // (zeros after it), while the archive's copy of it is whole.
        let source = WALSegmentSource(directories: [archive, configuration.backup + "/pg_wal"])
        guard let size = try source.segmentSize() else { return }
        var checker = WALRecordChecker(segmentSize: size, source: source)
        var latest: Int64?, found = false
        checker.onTargetEvent = { position, event in
            guard position >= range.end else { return }
            switch (event, kind) {
            case (.transactionEnd(_, let time), .time): latest = max(latest ?? time, time)
            case (.transactionEnd(let xid, _), .xid(let wantedXID)): if String(xid) == wantedXID { found = true }
            case (.restorePoint(let name), .name(let wantedName)): if name == wantedName { found = true }
            default: break
            }
        }
        do {
            _ = try checker.check(timeline: range.timeline, from: range.start, to: LSN(UInt64.max))
        } catch let failure as WALRecordChecker.Failure where failure.isMissingSegment {
            // The end of the archive.
        } catch {
            throw PGKeepError.verification("the WAL archive cannot be read through to its end: \(error)")
        }
        switch kind {
        case .time(let text):
            guard let latest, let wanted, wanted.postgresMicroseconds <= latest else {
                let last = latest.map { PostgresTime.describe($0) } ?? "none"
                throw PGKeepError.invalidConfiguration("--target-time \(text) is after the last transaction in the WAL archive (\(last)); recovery could not reach it")
            }
        case .xid(let xid) where !found:
            throw PGKeepError.invalidConfiguration("--target-xid \(xid): no commit or abort of that transaction in the WAL after the backup; recovery could not reach it")
        case .name(let name) where !found:
            throw PGKeepError.invalidConfiguration("--target-name \(name): no such restore point in the WAL after the backup; recovery could not reach it")
        default:
            break
        }
    }

    /// The end of the newest complete segment in the archive.
    private func archiveEnd(_ archive: String) throws -> LSN? {
        let source = WALSegmentSource(directories: [archive])
        guard let size = try source.segmentSize() else { return nil }
        let segments = try WALArchiveDirectory(path: archive).completeSegments(segmentSize: size)
        guard let last = segments.last, case .segment(_, let number, _, _)? = WALFileName(last, segmentSize: size) else { return nil }
        return LSN((number + 1) * size.bytes)
    }

    /// pg_tblspc links of a plain backup: where each tablespace is stored, and where it goes.
    private func plainTablespaces() throws -> [(oid: String, source: String, destination: String)] {
        let directory = configuration.backup + "/pg_tblspc"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return try entries.sorted().map { oid in
            let source = try FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + oid)
            var destination = configuration.tablespaceMapping.target(for: source)
            if destination == source, let scratch = configuration.unmappedTablespacesUnder { destination = scratch + "/" + oid }
            guard destination != source else {
                throw PGKeepError.invalidConfiguration("tablespace \(oid) of the backup is stored at \(source); say where the restored cluster keeps it with --tablespace-mapping \(source)=NEW_DIRECTORY")
            }
            return (oid, source, destination)
        }
    }

    // MARK: Plain

    /// Copies a directory tree: directories 0700, files 0600 (what PostgreSQL requires), symlinks
    /// refused outside pg_tblspc (handled by the caller).
    private func copyTree(from source: String, to destination: String, skipping: Set<String>, summary: inout Summary) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: source).sorted()
        for name in names where !skipping.contains(name) {
            if cancellation.isCancelled { throw PGKeepError(.cancelled, "restore cancelled") }
            let from = source + "/" + name, to = destination + "/" + name
            var info = stat()
            guard lstat(from, &info) == 0 else { throw FileSystemError("stat", from) }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                try makeDirectory(to)
                try copyTree(from: from, to: to, skipping: [], summary: &summary)
            case S_IFREG:
                summary.bytes += try copyFile(from, to)
                summary.files += 1
            default:
                throw PGKeepError.unsafeArchive("\(from) is neither a file nor a directory; a backup holds only those (and pg_tblspc links)")
            }
        }
    }

    private func makeDirectory(_ path: String) throws {
        guard mkdir(path, 0o700) == 0 else { throw FileSystemError("create directory", path) }
    }

    private func copyFile(_ from: String, _ to: String) throws -> UInt64 {
        let sink = try FileSink(path: to, syncOnFinish: false)
        try forEachChunk(ofFileAt: from, chunkSize: preferredWriteSize) { try sink.consume($0) }
        try sink.finish()
        return sink.bytesWritten
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
                if destination == original, let scratch = configuration.unmappedTablespacesUnder { destination = scratch + "/" + oid }
                guard let archive = try FileManager.default.contentsOfDirectory(atPath: backup).first(where: { $0 == oid + ".tar" || $0.hasPrefix(oid + ".tar.") }) else {
                    throw PGKeepError.unsafeArchive("tablespace_map names tablespace \(oid), but the backup has no \(oid).tar")
                }
                let directory: TargetDirectory
                do { directory = try TargetDirectory(preparing: destination) } catch let error as FileSystemError where error.errno == ENOTEMPTY {
                    throw PGKeepError.invalidConfiguration("tablespace \(oid) would be restored to \(destination), which is not empty; choose another place with --tablespace-mapping \(original)=NEW_DIRECTORY")
                }
                created.append(directory)
                try TarBackupReader.extract(backup + "/" + archive, into: destination)
                mapLines.append("\(oid) \(destination)")
                summary.tablespaces.append(destination)
            }
            try Durability.writeFileAtomically(Array((mapLines.joined(separator: "\n") + "\n").utf8), named: "tablespace_map", in: root, sync: false)
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

    private func writeRecoverySettings(into root: String) throws -> [String] {
        let target = configuration.target
        guard configuration.walArchive != nil || target.kind != nil else { return [] }
        let command = configuration.walArchive.map { "\(Self.shellQuote(configuration.executable)) wal-fetch %f %p --wal-archive \(Self.shellQuote($0))" }
        let lines = target.settings(restoreCommand: command)
        let path = root + "/postgresql.auto.conf"
        let existing = (try readWholeFile(path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let text = existing + (existing.isEmpty || existing.hasSuffix("\n") ? "" : "\n")
            + "# recovery settings written by pgkeep restore\n" + lines.joined(separator: "\n") + "\n"
        try Durability.writeFileAtomically(Array(text.utf8), named: "postgresql.auto.conf", in: root, sync: false)
        try Durability.writeFileAtomically([], named: "recovery.signal", in: root, sync: false)
        return lines
    }

    static func shellQuote(_ text: String) -> String {
        text.allSatisfy { $0.isLetter || $0.isNumber || "/._-=".contains($0) } ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    // MARK: Helpers

    /// --force: the target's contents go (the directory itself stays, with its mode).
    static func empty(_ path: String) throws {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
        for entry in entries { try FileManager.default.removeItem(atPath: path + "/" + entry) }
    }
}
