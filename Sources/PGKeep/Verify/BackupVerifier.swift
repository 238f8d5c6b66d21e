#if canImport(Glibc)
import Glibc
#endif
import Codecs
import FoundationEssentials
import Manifest
import PGWire
import Sinks
import Synchronization
import WAL

/// `pgkeep verify`: checks a plain-format backup against its backup_manifest, as pg_verifybackup
/// does — the manifest's own checksum, every file present with its size and checksum, nothing
/// unexpected — and that the WAL from the backup's start to its end is all there and reads
/// cleanly (in the backup's pg_wal or a WAL archive).
public struct BackupVerifier {
    public struct Report: Sendable, Encodable {
        public var backup: String
        public var manifestVersion: Int
        public var systemIdentifier: String?
        public var filesChecked = 0
        public var bytesChecked: UInt64 = 0
        public var walRecords = 0
        public var walSegments = 0
        public var problems: [String] = []
        public var ok: Bool { problems.isEmpty }
    }

    /// What to check, as pg_verifybackup's options say it.
    public struct Options: Sendable {
        /// Also look for WAL here (a receive-wal archive), after the WAL directory.
        public var walArchive: String?
        /// `-w`: the WAL is here instead of the backup's pg_wal.
        public var walDirectory: String?
        /// `-n` off: parse the WAL from the backup's start to its end.
        public var checkWAL = true
        /// `-s` on: compare sizes only, not checksums.
        public var skipChecksums = false
        /// `-i`: more paths (relative to the backup; a directory covers what is under it) to leave out.
        public var ignore: [String] = []
        /// `-e`: stop at the first problem.
        public var exitOnError = false
        /// `-m`: the manifest is here instead of the backup's backup_manifest.
        public var manifestPath: String?
        /// Called with the bytes checked so far (`-P`).
        public var progress: (@Sendable (JobProgress) -> Void)?
        public init() {}
    }

    /// Files pg_verifybackup does not expect in the manifest: the manifest itself, WAL (checked on
    /// its own), and what a restore or `-R` may add.
    static let ignored: Set<String> = ["backup_manifest", "pg_wal", "postgresql.auto.conf", "recovery.signal", "standby.signal"]

    func isIgnored(_ path: String) -> Bool {
        if Self.ignored.contains(String(path.prefix { $0 != "/" })) { return true }
        return options.ignore.contains { path == $0 || path.hasPrefix($0 + "/") }
    }

    public let directory: String
    public let options: Options
    public var walArchive: String? { options.walArchive }
    public var checkWAL: Bool { options.checkWAL }

    public init(directory: String, options: Options) {
        self.directory = directory
        var options = options
        options.ignore = options.ignore.map { path in var path = path; while path.hasSuffix("/") { path.removeLast() }; return path }
        self.options = options
    }

    public init(directory: String, walArchive: String? = nil, checkWAL: Bool = true) {
        var options = Options()
        options.walArchive = walArchive
        options.checkWAL = checkWAL
        self.init(directory: directory, options: options)
    }

    /// Runs every check and reports all problems found (not just the first, unless
    /// `exitOnError`). Throws only when the backup cannot be judged at all (no manifest, a
    /// manifest that fails its own checksum).
    public func run() throws(PGKeepError) -> Report {
        let manifest: BackupManifest
        let manifestPath = options.manifestPath ?? directory + "/backup_manifest"
        do {
            guard let bytes = try readWholeFile(manifestPath) else {
                throw PGKeepError.invalidConfiguration("\(manifestPath) does not exist: \(directory) is not a backup, or an incomplete one")
            }
            manifest = try BackupManifest(bytes: bytes)
        } catch let error as PGKeepError {
            throw error
        } catch {
            throw PGKeepError.verification("\(manifestPath): \(error)")
        }
        var report = Report(backup: directory, manifestVersion: manifest.version, systemIdentifier: manifest.systemIdentifier)
        var pacer = options.progress.map(ProgressPacer.init)
        pacer?.totalBytes = manifest.files.reduce(0) { $0 + $1.size }
        if let archives = TarBackupReader.Archives(in: directory) {
            checkTar(manifest, archives, into: &report, pacer: &pacer)
        } else {
            checkControlFile(manifest, bytes: try? readFirstBytes(directory + "/global/pg_control", count: 8), path: directory + "/global/pg_control",
                             into: &report)
            if stop(report) { return report }
            checkFiles(manifest, into: &report, pacer: &pacer)
            if stop(report) { return report }
            if checkWAL { checkWALRanges(manifest, walDirectory: options.walDirectory ?? directory + "/pg_wal", into: &report) }
        }
        pacer?.update(doneBytes: report.bytesChecked, final: true)
        return report
    }

    private func stop(_ report: Report) -> Bool { options.exitOnError && !report.ok }

    /// pg_control's system identifier (its first eight bytes) must be the manifest's (17+).
    private func checkControlFile(_ manifest: BackupManifest, bytes: [UInt8]?, path: String, into report: inout Report) {
        guard let expected = manifest.systemIdentifier, let bytes, bytes.count >= 8 else { return }
        let actual = bytes.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        if String(actual) != expected {
            report.problems.append("\(path): manifest system identifier is \(expected), but control file has \(actual)")
        }
    }

    private func readFirstBytes(_ path: String, count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        try forEachChunk(ofFileAt: path, chunkSize: 4096) { chunk in
            if out.count < count { out.append(contentsOf: chunk.prefix(count - out.count)) }
        }
        return out
    }

    // MARK: Tar

    /// A tar backup: every archive streamed once (decompressed), each member checksummed as it
    /// passes; pg_wal.tar unpacked to a scratch directory for the WAL check.
    private func checkTar(_ manifest: BackupManifest, _ archives: TarBackupReader.Archives, into report: inout Report,
                          pacer: inout ProgressPacer?) {
        var algorithms: [String: ChecksumAlgorithm] = [:]
        for file in manifest.files { algorithms[file.path] = options.skipChecksums ? ChecksumAlgorithm.none : file.algorithm }
        var seen: [String: ChecksummingMemberConsumer.Seen] = [:]
        var controlFile: [UInt8]?
        let inputs = [(archives.base, "")] + archives.tablespaces.map { ($0.file, "pg_tblspc/\($0.oid)/") }
        for (file, prefix) in inputs {
            let consumer = ChecksummingMemberConsumer(prefix: prefix) { algorithms[$0] ?? .none }
            do {
                try TarBackupReader.stream(directory + "/" + file, into: consumer)
                seen.merge(consumer.files) { $1 }
                if prefix.isEmpty { controlFile = consumer.controlFilePrefix }
            } catch {
                report.problems.append("\(file): \(error)")
            }
            pacer?.update(doneBytes: seen.values.reduce(0) { $0 + $1.size })
            if stop(report) { return }
        }
        checkControlFile(manifest, bytes: controlFile, path: archives.base + ":global/pg_control", into: &report)
        if stop(report) { return }
        compare(manifest, sizes: seen.mapValues(\.size), into: &report, pacer: &pacer) { file in seen[file.path]?.checksum }
        guard checkWAL, !stop(report) else { return }
        if let walDirectory = options.walDirectory {
            checkWALRanges(manifest, walDirectory: walDirectory, into: &report)
            return
        }
        var scratch: String?
        if let wal = archives.wal {
            do {
                scratch = try TargetDirectory.makeTemporary(prefix: "pgkeep-verify-wal-")
                try TarBackupReader.extract(directory + "/" + wal, into: scratch!)
            } catch {
                report.problems.append("\(wal): \(error)")
            }
        }
        defer { if let scratch { try? FileManager.default.removeItem(atPath: scratch) } }
        checkWALRanges(manifest, walDirectory: scratch ?? directory + "/pg_wal", into: &report)
    }

    // MARK: Files

    private func checkFiles(_ manifest: BackupManifest, into report: inout Report, pacer: inout ProgressPacer?) {
        var onDisk: [String: UInt64] = [:]
        do { try walk("", into: &onDisk) } catch { report.problems.append("\(error)") }
        // pg_verifybackup checksums one file at a time; this reads them on every processor, the
        // largest first, and compares in the manifest's order after.
        var checksums: [String: Result<String, any Error>] = [:]
        if !options.skipChecksums {
            let files = manifest.files
                .filter { !isIgnored($0.path) && $0.algorithm != .none && $0.checksum != nil && onDisk[$0.path] == $0.size }
                .sorted { $0.size > $1.size }
            let directory = directory
            let progress = Mutex((pacer: pacer, done: UInt64(0)))
            let sums = ParallelMap.map(count: files.count, workers: Processors.online) { index in
                let sum = Result { try Self.checksum(directory + "/" + files[index].path, algorithm: files[index].algorithm) }
                progress.withLock { state in
                    state.done += files[index].size
                    state.pacer?.update(doneBytes: state.done)
                }
                return sum
            }
            pacer = progress.withLock { $0.pacer }
            for (file, sum) in zip(files, sums) { checksums[file.path] = sum }
        }
        // Progress was reported while checksumming; comparing is quick.
        var comparing: ProgressPacer? = options.skipChecksums ? pacer : nil
        compare(manifest, sizes: onDisk, into: &report, pacer: &comparing) { file in
            try checksums[file.path]?.get()
        }
    }

    /// The manifest against what is there: unlisted files, missing ones, sizes, then checksums
    /// (computed by `checksum` only for files whose size matched).
    private func compare(_ manifest: BackupManifest, sizes onDisk: [String: UInt64], into report: inout Report,
                         pacer: inout ProgressPacer?, checksum: (BackupManifest.File) throws -> String?) {
        var expected: [String: BackupManifest.File] = [:]
        for file in manifest.files { expected[file.path] = file }
        for path in onDisk.keys.sorted() where expected[path] == nil && !isIgnored(path) {
            report.problems.append("\"\(path)\" is present on disk but not in the manifest")
            if stop(report) { return }
        }
        for file in manifest.files where !isIgnored(file.path) {
            if stop(report) { return }
            pacer?.update(doneBytes: report.bytesChecked)
            guard let size = onDisk[file.path] else {
                report.problems.append("\"\(file.path)\" is present in the manifest but not on disk")
                continue
            }
            guard size == file.size else {
                report.problems.append("\"\(file.path)\" has size \(size) on disk but size \(file.size) in the manifest")
                continue
            }
            report.filesChecked += 1
            report.bytesChecked += size
            guard file.algorithm != .none, let expectedChecksum = file.checksum else { continue }
            do {
                guard let actual = try checksum(file) else { continue }
                if actual != expectedChecksum { report.problems.append("checksum mismatch for file \"\(file.path)\"") }
            } catch {
                report.problems.append("\"\(file.path)\": \(error)")
            }
        }
    }

    /// Regular files under the backup, by path relative to it; tablespace links in pg_tblspc are
    /// followed (their files are part of the backup), other symlinks are reported.
    private func walk(_ relative: String, into files: inout [String: UInt64]) throws {
        let path = relative.isEmpty ? directory : directory + "/" + relative
        for name in try directoryEntries(path) {
            let child = relative.isEmpty ? name : relative + "/" + name
            if isIgnored(child) { continue }
            var info = stat()
            guard lstat(directory + "/" + child, &info) == 0 else { throw FileSystemError("stat", directory + "/" + child) }
            var kind = info.st_mode & S_IFMT
            if kind == S_IFLNK && relative == "pg_tblspc" {
                guard stat(directory + "/" + child, &info) == 0 else { throw FileSystemError("follow tablespace link", directory + "/" + child) }
                kind = info.st_mode & S_IFMT
            }
            switch kind {
            case S_IFDIR: try walk(child, into: &files)
            case S_IFREG: files[child] = UInt64(info.st_size)
            default: files[child] = UInt64(info.st_size) // reported as unexpected unless listed
            }
        }
    }

    static func checksum(_ path: String, algorithm: ChecksumAlgorithm) throws -> String {
        let summer = Checksummer(algorithm)
        try forEachChunk(ofFileAt: path) { summer.update($0) }
        return summer.finish()
    }

    // MARK: WAL

    private func checkWALRanges(_ manifest: BackupManifest, walDirectory: String, into report: inout Report) {
        let source = WALSegmentSource(directories: [walDirectory] + (options.walArchive.map { [$0] } ?? []))
        let segmentSize: WALSegmentSize
        do {
            guard let size = try source.segmentSize() else {
                report.problems.append("no WAL segment found in \(source.directories.joined(separator: " or ")): the backup's WAL is missing")
                return
            }
            segmentSize = size
        } catch {
            report.problems.append("cannot read the WAL segment size: \(error)")
            return
        }
        var checker = WALRecordChecker(segmentSize: segmentSize, source: source)
        for range in manifest.walRanges {
            do {
                let summary = try checker.check(timeline: range.timeline, from: range.start, to: range.end)
                report.walRecords += summary.records
                report.walSegments += summary.segments
            } catch {
                report.problems.append("WAL from \(range.start) to \(range.end) on timeline \(range.timeline): \(error)")
            }
        }
    }
}
