import Glibc

/// Page-aligned memory mapped straight from the kernel, for the plain extraction's buffers (made
/// once per backup), and given back to it when freed.
///
/// Not `malloc`: glibc raises its mmap threshold to the size of any mapped block it frees (and its
/// trim threshold to twice that), so once the extraction's 512 KiB buffers had been freed, every
/// later allocation up to that size came from a heap and stayed resident after it was freed. At
/// the end of a plain backup that was the WAL stream's last messages (up to 128 KiB each) and
/// libpq's input buffer grown to 256 KiB: 0.55 MB added after the backup's own buffers were gone,
/// and the command's peak resident set (`GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072`,
/// which pins the threshold, showed the same). Buffers made file after file keep malloc, whose
/// reuse of a freed block saves their page faults.
enum PageMemory {
    /// `byteCount` bytes, zeroed, page-aligned (O_DIRECT's alignment). Out of memory is fatal, as
    /// it is for Swift's own allocations.
    static func allocate(_ byteCount: Int) -> UnsafeMutableRawPointer {
        guard let pointer = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              pointer != MAP_FAILED else {
            fatalError("out of memory: could not map \(byteCount) bytes (errno \(errno))")
        }
        return pointer
    }

    static func deallocate(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        munmap(pointer, byteCount)
    }
}

/// Zeros to write from, that cost no memory: mapped and never written, every page of them is the
/// kernel's shared zero page (a read fault on untouched anonymous memory maps it, uncounted in the
/// resident set). For padding written in large pieces (a WAL segment's unreceived tail).
public final class ZeroBytes: @unchecked Sendable {
    // @unchecked: the bytes are never written after the mapping is made.
    public let bytes: UnsafeRawBufferPointer

    public init(count: Int) {
        bytes = UnsafeRawBufferPointer(start: PageMemory.allocate(count), count: count)
    }

    /// Hands `total` zero bytes to `write`, `bytes.count` at a time (the last piece shorter).
    public func write(_ total: UInt64, to write: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        var left = total
        while left > 0 {
            let take = Int(min(UInt64(bytes.count), left))
            try write(UnsafeRawBufferPointer(rebasing: bytes[0..<take]))
            left -= UInt64(take)
        }
    }

    deinit { PageMemory.deallocate(UnsafeMutableRawPointer(mutating: bytes.baseAddress!), byteCount: bytes.count) }
}
