import CPGKeepShims

/// A large, fixed write buffer: small slices are gathered into big writes; slices as big as the
/// buffer go straight to the file. Allocated once per writer, reused for every file.
///
/// With `startsWriteback`, each write is followed by sync_file_range(SYNC_FILE_RANGE_WRITE): the
/// kernel starts putting the data on disk while the backup is still being received, so the fsync
/// at the end (which is what makes a backup durable, and what pg_basebackup spends its last
/// seconds on) finds little left to do. It never waits, and its errors are ignored: the fsync
/// that follows is what reports them.
struct WriteBuffer: ~Copyable {
    private let base: UnsafeMutableRawPointer
    let capacity: Int
    private let startsWriteback: Bool
    private(set) var count = 0
    /// Slices at least this large skip the buffer (the server sends 32 KiB messages).
    static let directWriteSize = 16 << 10

    init(capacity: Int, startsWriteback: Bool = false) {
        self.capacity = capacity
        self.startsWriteback = startsWriteback
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 4096)
    }
    deinit { base.deallocate() }

    mutating func append(_ bytes: UnsafeRawBufferPointer, flushingTo file: FileDescriptor) throws(FileSystemError) {
        if count + bytes.count > capacity { try flush(to: file) }
        if bytes.count >= Self.directWriteSize {
            // A whole CopyData message's worth: write it from where it lies, while it is still
            // in the CPU cache (copying it here first cost measurably more kernel time).
            try flush(to: file)
            try file.writeAll(bytes)
            startWriteback(file)
        } else {
            (base + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            count += bytes.count
        }
    }

    mutating func flush(to file: FileDescriptor) throws(FileSystemError) {
        guard count > 0 else { return }
        try file.writeAll(UnsafeRawBufferPointer(start: base, count: count))
        count = 0
        startWriteback(file)
    }

    /// Offset 0, length 0: the whole file; pages already under writeback are skipped.
    private func startWriteback(_ file: FileDescriptor) {
        if startsWriteback { _ = pgkeep_start_writeback(file.raw, 0, 0) }
    }

    mutating func discard() { count = 0 }
}
