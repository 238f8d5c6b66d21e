/// A large, fixed write buffer: small slices are gathered into big writes; slices as big as the
/// buffer go straight to the file. Allocated once per writer, reused for every file.
struct WriteBuffer: ~Copyable {
    private let base: UnsafeMutableRawPointer
    let capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 4096)
    }
    deinit { base.deallocate() }

    mutating func append(_ bytes: UnsafeRawBufferPointer, flushingTo file: FileDescriptor) throws(FileSystemError) {
        if count + bytes.count > capacity { try flush(to: file) }
        if bytes.count >= capacity {
            try file.writeAll(bytes)
        } else {
            (base + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            count += bytes.count
        }
    }

    mutating func flush(to file: FileDescriptor) throws(FileSystemError) {
        guard count > 0 else { return }
        try file.writeAll(UnsafeRawBufferPointer(start: base, count: count))
        count = 0
    }

    mutating func discard() { count = 0 }
}
