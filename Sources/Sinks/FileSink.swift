#if canImport(Glibc)
import Glibc
#endif
import ArchiveStream

/// Writes a byte stream to a new file (never an existing one, never through a symlink) in large
/// writes; on `finish` flushes, fsyncs (unless told not to) and closes.
public final class FileSink: ByteStage {
    public let path: String
    private var file: FileDescriptor?
    private var buffer: WriteBuffer
    private let syncOnFinish: Bool
    public private(set) var bytesWritten: UInt64 = 0

    /// `placeholder`: the file exists already, empty, made by `createPlaceholder` (restore creates
    /// its files on one thread and fills them on others: threads creating files in one directory
    /// at once spin on its lock). `writesLargeSlicesDirectly`: slices of 16 KiB and more are
    /// written from where they lie instead of copied into the buffer (`WriteBuffer`) — for a stream
    /// of large pieces (WAL messages, segments), whose buffer then stays almost untouched.
    public init(path: String, mode: mode_t = 0o600, syncOnFinish: Bool = true, startsWriteback: Bool = false,
                bufferSize: Int = preferredWriteSize, placeholder: Bool = false, writesLargeSlicesDirectly: Bool = false) throws {
        let fd = placeholder ? Glibc.open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
                             : Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FileSystemError(placeholder ? "open" : "create", path) }
        self.path = path
        self.file = FileDescriptor(raw: fd, path: path)
        self.buffer = WriteBuffer(capacity: bufferSize, startsWriteback: startsWriteback, writesLargeSlicesDirectly: writesLargeSlicesDirectly)
        self.syncOnFinish = syncOnFinish
    }

    /// Creates `path`, empty, never over an existing file or through a symlink.
    public static func createPlaceholder(_ path: String, mode: mode_t = 0o600) throws(FileSystemError) {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FileSystemError("create", path) }
        Glibc.close(fd)
    }

    public func consume(_ bytes: UnsafeRawBufferPointer) throws {
        guard let file else { throw FileSystemError("write", path, errno: EBADF) }
        try buffer.append(bytes, flushingTo: file)
        bytesWritten += UInt64(bytes.count)
    }

    public func finish() throws {
        guard let file = file.take() else { return }
        try buffer.finishFile(file)
        if syncOnFinish { try file.sync() }
    }
}
