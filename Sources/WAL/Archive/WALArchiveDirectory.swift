#if canImport(Glibc)
import Glibc
#endif
import PGWire
import Sinks

/// The directory `receive-wal` archives into: segments (complete, `.partial`, compressed),
/// timeline history files, the archive's identity (which cluster, which segment size) and a lock
/// that keeps a second archiver out.
public final class WALArchiveDirectory {
    public let path: String
    private var lockFile: FileDescriptor?

    /// Where streaming resumes: after the newest complete segment, or at the start of the newest
    /// `.partial` one (it is streamed again whole, so a torn tail is never trusted).
    public struct ResumePoint: Equatable, Sendable {
        public var timeline: TimelineID
        public var start: LSN
        /// The newest file the position was derived from, for the log.
        public var basedOn: String
    }

    /// The file recording which cluster this archive belongs to.
    static let identityFileName = "pgkeep.archive"
    static let lockFileName = ".pgkeep-receive-wal.lock"

    /// Opens (creating, mode 0700, if missing) the archive directory.
    public init(path: String) throws {
        self.path = path
        let created = try TargetDirectory.makeDirectories(path, mode: 0o700)
        var info = stat()
        guard stat(path, &info) == 0 else { throw FileSystemError("open", path) }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw FileSystemError("use as a directory", path, errno: ENOTDIR) }
        if created, let slash = path.lastIndex(of: "/") {
            try Durability.syncDirectory(slash == path.startIndex ? "/" : String(path[..<slash]))
        }
    }

    // MARK: Lock

    public struct Locked: Error, CustomStringConvertible {
        public let path: String
        public let holder: String
        public var description: String {
            "another pgkeep receive-wal\(holder.isEmpty ? "" : " (pid \(holder))") is already archiving into \(path)"
        }
    }

    /// Takes the archive's lock for the life of this object (flock: released by the kernel if we
    /// die, so a kill -9 never leaves a stale lock behind).
    public func lock() throws {
        let lockPath = path + "/" + Self.lockFileName
        let fd = open(lockPath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FileSystemError("open lock file", lockPath) }
        let file = FileDescriptor(raw: fd, path: lockPath)
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            if errno == EWOULDBLOCK {
                var buffer = [UInt8](repeating: 0, count: 32)
                let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
                let holder = String(decoding: buffer.prefix(max(0, count)), as: UTF8.self).filter(\.isNumber)
                throw Locked(path: path, holder: holder)
            }
            throw FileSystemError("lock", lockPath)
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        try pid.withUnsafeBytes { bytes in try file.writeAll(bytes, at: 0) }
        lockFile = file
    }

    // MARK: Identity

    public struct Identity: Equatable, Sendable {
        public var systemIdentifier: String
        public var segmentSize: WALSegmentSize
        public init(systemIdentifier: String, segmentSize: WALSegmentSize) {
            self.systemIdentifier = systemIdentifier
            self.segmentSize = segmentSize
        }
    }

    public struct IdentityMismatch: Error, CustomStringConvertible {
        public let description: String
    }

    /// Records the identity on first use; afterwards refuses a server of another cluster (its WAL
    /// would interleave with ours under the same names) or another segment size.
    public func checkIdentity(_ identity: Identity, sync: Bool) throws {
        let file = path + "/" + Self.identityFileName
        if let bytes = try? readWholeFile(file) {
            let text = String(decoding: bytes, as: UTF8.self)
            var fields: [String: String] = [:]
            for line in text.split(separator: "\n") {
                let pair = line.split(separator: "=", maxSplits: 1)
                if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
            }
            if let recorded = fields["system_identifier"], recorded != identity.systemIdentifier {
                throw IdentityMismatch(description: "\(path) archives WAL of the cluster with system identifier \(recorded), but the server is cluster \(identity.systemIdentifier); use another directory for this cluster")
            }
            if let recorded = fields["wal_segment_size"], recorded != String(identity.segmentSize.bytes) {
                throw IdentityMismatch(description: "\(path) holds WAL segments of \(recorded) bytes, but the server's wal_segment_size is \(identity.segmentSize.bytes)")
            }
            if fields["system_identifier"] != nil, fields["wal_segment_size"] != nil { return }
        }
        let text = "# written by pgkeep receive-wal: the cluster whose WAL this directory holds\nsystem_identifier=\(identity.systemIdentifier)\nwal_segment_size=\(identity.segmentSize.bytes)\n"
        try Durability.writeFileAtomically(Array(text.utf8), named: Self.identityFileName, in: path, sync: sync)
    }

    // MARK: Scan

    /// Finds where to resume. Removes leftovers of an interrupted run first: temporary files,
    /// and `.partial` files whose segment is already complete (the crash came between writing
    /// the compressed copy and removing the partial one).
    public func resumePoint(segmentSize: WALSegmentSize) throws -> ResumePoint? {
        var complete = Set<String>()
        var parsed: [(name: String, timeline: TimelineID, segment: UInt64, partial: Bool)] = []
        for name in try directoryEntries(path) {
            if name.hasSuffix(".tmp") && WALFileName(String(name.dropLast(4)), segmentSize: segmentSize) != nil {
                try remove(name)
                continue
            }
            guard case .segment(let timeline, let segment, let partial, _)? = WALFileName(name, segmentSize: segmentSize) else { continue }
            let stem = segmentSize.fileName(segment: segment, timeline: timeline)
            if !partial { complete.insert(stem) }
            parsed.append((name, timeline, segment, partial))
        }
        var newest: (name: String, timeline: TimelineID, segment: UInt64, partial: Bool)?
        for entry in parsed {
            if entry.partial && complete.contains(segmentSize.fileName(segment: entry.segment, timeline: entry.timeline)) {
                try remove(entry.name)
                continue
            }
            guard let best = newest else { newest = entry; continue }
            if (entry.segment, entry.timeline.rawValue, entry.partial ? 0 : 1) > (best.segment, best.timeline.rawValue, best.partial ? 0 : 1) {
                newest = entry
            }
        }
        guard let newest else { return nil }
        let segment = newest.partial ? newest.segment : newest.segment + 1
        return ResumePoint(timeline: newest.timeline, start: LSN(segment * segmentSize.bytes), basedOn: newest.name)
    }

    /// Complete segments in the archive (any compression), by name without suffix: for tests and
    /// gap checks.
    public func completeSegments(segmentSize: WALSegmentSize) throws -> [String] {
        try directoryEntries(path).compactMap { name in
            guard case .segment(let timeline, let segment, false, _)? = WALFileName(name, segmentSize: segmentSize) else { return nil }
            return segmentSize.fileName(segment: segment, timeline: timeline)
        }.sorted()
    }

    /// Whether `directory` holds the complete segment `name` (any compression).
    public static func has(segment name: String, in directory: String) throws -> Bool {
        ([""] + WALFileName.compressedSuffixes.map { "." + $0 }).contains { access(directory + "/" + name + $0, F_OK) == 0 }
    }

    // MARK: History files

    public func hasHistoryFile(_ timeline: TimelineID) -> Bool {
        access(path + "/" + WALFileName.historyFileName(timeline), F_OK) == 0
    }

    public func writeHistoryFile(_ timeline: TimelineID, content: [UInt8], sync: Bool) throws {
        try Durability.writeFileAtomically(content, named: WALFileName.historyFileName(timeline), in: path, sync: sync)
    }

    // MARK: Helpers

    private func remove(_ name: String) throws {
        guard unlink(path + "/" + name) == 0 || errno == ENOENT else { throw FileSystemError("remove", path + "/" + name) }
    }
}
