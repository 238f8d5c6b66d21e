import CPGKeepShims

/// How far a file's writeback has been started. `advance` hands the kernel each new stretch of
/// written bytes, once it reaches `atLeast`, with sync_file_range(SYNC_FILE_RANGE_WRITE): the
/// kernel puts it on disk while more arrives, so the fsync that makes the file durable finds
/// little left to do. It never waits, and its errors are ignored: that fsync is what reports them.
public struct Writeback {
    /// What `advance` waits for by default: one MiB of new data.
    public static let chunk: Int64 = 1 << 20
    /// Bytes from the file's start whose writeback was started.
    public private(set) var started: Int64 = 0

    public init() {}

    /// The file is written up to `end`: starts writeback of what lies past `started`, once that
    /// is `atLeast` bytes.
    public mutating func advance(_ file: FileDescriptor, to end: Int64, atLeast minimum: Int64 = chunk) {
        guard end - started >= minimum else { return }
        _ = pgkeep_start_writeback(file.raw, off_t(started), off_t(end - started))
        started = end
    }
}
