import PGWire
import ArchiveStream
import Sinks

/// Writes segments as members of a tar (pg_wal.tar, possibly compressed by the stage chain it
/// feeds). Each member is a full segment: the unreceived tail of the last one is zeros, as
/// pg_basebackup writes it.
public final class WALTarWriter: WALSink {
    private let archiver: TarArchiver
    private let segmentSize: WALSegmentSize
    private var written: UInt64 = 0
    private var open = false
    private var completed: [String] = []
    private var currentName = ""
    /// The zeros a segment's unreceived tail is written from: mapped and only ever read, so they
    /// stay the kernel's shared zero page and add nothing to the resident set (an array of zeros
    /// is written when made: 64 kB).
    private let zeros = ZeroBytes(count: 64 << 10)

    /// `output` receives the tar bytes (a compressor then a FileSink, or a FileSink).
    public init(output: ByteStage, segmentSize: WALSegmentSize) {
        self.archiver = TarArchiver(next: output)
        self.segmentSize = segmentSize
    }

    public func openSegment(named name: String) throws {
        try archiver.beginMember(TarMember(path: try ArchivePath(validating: name), kind: .file, size: segmentSize.bytes,
                                           mode: 0o600, modificationTime: Self.now()), rawHeader: nil)
        written = 0
        open = true
        currentName = name
    }

    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        precondition(offset == written, "tar WAL must be written sequentially")
        try archiver.memberContents(bytes)
        written += UInt64(bytes.count)
    }

    public func closeSegment(complete: Bool) throws {
        guard open else { return }
        if written < segmentSize.bytes {
            try zeros.write(segmentSize.bytes - written) { try archiver.memberContents($0) }
            written = segmentSize.bytes
        }
        try archiver.endMember()
        open = false
        if complete { completed.append(currentName) }
    }

    public func finish() throws {
        try closeSegment(complete: false)
        for name in completed {
            try archiver.beginMember(TarMember(path: try ArchivePath(validating: "archive_status/\(name).done"), kind: .file,
                                               size: 0, mode: 0o600, modificationTime: Self.now()), rawHeader: nil)
            try archiver.endMember()
        }
        try archiver.endArchive()
    }

    private static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec)
    }
}

#if canImport(Glibc)
import Glibc
#endif
