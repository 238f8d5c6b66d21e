#if canImport(Glibc)
import Glibc
#endif
import ArchiveStream

/// The modes a backup's directories and files get: PostgreSQL's own (0700/0600), or, for a
/// cluster initialised with group access (`initdb -g`, data_directory_mode 0750), 0750/0640 —
/// as pg_basebackup makes them, so the group can read the backup as it reads the cluster.
public struct FileModes: Sendable, Equatable {
    public var directory: mode_t
    public var file: mode_t

    public static let ownerOnly = FileModes(directory: 0o700, file: 0o600)
    public static let groupReadable = FileModes(directory: 0o750, file: 0o640)

    public init(directory: mode_t, file: mode_t) {
        self.directory = directory
        self.file = file
    }

    /// From the server's data_directory_mode setting ("0750", "0700").
    public init(dataDirectoryMode setting: String) {
        let mode = Int(setting, radix: 8) ?? 0o700
        self = mode & 0o070 != 0 ? .groupReadable : .ownerOnly
    }
}

/// A byte stage that writes to a descriptor it does not own, such as standard output (`-D -`):
/// large buffered writes, nothing synced (a pipe cannot be), never closed here.
public final class DescriptorSink: ByteStage {
    private let file: FileDescriptor
    private var buffer: WriteBuffer
    public private(set) var bytesWritten: UInt64 = 0

    public init(descriptor: Int32, name: String) {
        file = FileDescriptor(raw: descriptor, path: name, owned: false)
        buffer = WriteBuffer(capacity: preferredWriteSize)
    }

    public func consume(_ bytes: UnsafeRawBufferPointer) throws {
        try buffer.append(bytes, flushingTo: file)
        bytesWritten += UInt64(bytes.count)
    }

    public func finish() throws { try buffer.flush(to: file) }
}
