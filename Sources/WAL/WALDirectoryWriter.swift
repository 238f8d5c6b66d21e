#if canImport(Glibc)
import Glibc
#endif
import PGWire
import Sinks

/// Writes each segment as a full-size file in a pg_wal directory, as pg_basebackup does: space
/// reserved up front (so a full disk fails at open, not halfway), fsynced when closed, and a
/// complete segment marked `.done` in archive_status so the restored server won't archive it again.
public final class WALDirectoryWriter: WALSink {
    private let directory: String
    private let segmentSize: WALSegmentSize
    private let sync: Bool
    private let modes: FileModes
    private var current: FileDescriptor?
    private var currentName = ""

    /// `sync` false (`--no-sync`): never fsync. On ext4 one fsync can force out every dirty page
    /// of the journal transaction, gigabytes during a backup, so "no sync" has to mean none at all.
    public init(directory: String, segmentSize: WALSegmentSize, sync: Bool = true, modes: FileModes = .ownerOnly) throws {
        self.directory = directory
        self.segmentSize = segmentSize
        self.sync = sync
        self.modes = modes
        for path in [directory, directory + "/archive_status"] where mkdir(path, modes.directory) != 0 && errno != EEXIST {
            throw FileSystemError("create directory", path)
        }
    }

    public func openSegment(named name: String) throws {
        let path = directory + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, modes.file)
        guard fd >= 0 else { throw FileSystemError("create WAL segment", path) }
        let file = FileDescriptor(raw: fd, path: path)
        try file.allocate(Int64(segmentSize.bytes))
        current = file
        currentName = name
    }

    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard let current else { preconditionFailure("WAL write with no open segment") }
        try current.writeAll(bytes, at: Int64(offset))
    }

    public func closeSegment(complete: Bool) throws {
        guard let file = current.take() else { return }
        if sync { try file.sync() }
        if complete {
            let marker = directory + "/archive_status/" + currentName + ".done"
            let fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, modes.file)
            guard fd >= 0 else { throw FileSystemError("create", marker) }
            close(fd)
        }
    }

    public func finish() throws {
        try closeSegment(complete: false)
        guard sync else { return }
        try Durability.syncDirectory(directory + "/archive_status")
        try Durability.syncDirectory(directory)
    }
}
