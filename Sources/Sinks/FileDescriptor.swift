#if canImport(Glibc)
import Glibc
#endif
import CPGKeepShims

/// An owned file descriptor: closed exactly once, when the last reference goes.
public final class FileDescriptor {
    public let raw: Int32
    public let path: String
    private let owned: Bool

    /// `owned` false: a descriptor someone else closes (standard output).
    public init(raw: Int32, path: String, owned: Bool = true) {
        self.raw = raw
        self.path = path
        self.owned = owned
    }

    deinit { if owned && raw >= 0 { Glibc.close(raw) } }

    /// Opens a directory without following a symlink at its last component.
    public static func openDirectory(_ path: String) throws(FileSystemError) -> FileDescriptor {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw FileSystemError("open directory", path) }
        return FileDescriptor(raw: fd, path: path)
    }

    /// Writes all of `bytes`, retrying short writes and EINTR.
    public func writeAll(_ bytes: UnsafeRawBufferPointer) throws(FileSystemError) {
        var offset = 0
        while offset < bytes.count {
            let written = try retrying("write", path) { Glibc.write(raw, bytes.baseAddress! + offset, bytes.count - offset) }
            offset += written
        }
    }

    /// pwrite all of `bytes` at `position`.
    public func writeAll(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws(FileSystemError) {
        var offset = 0
        while offset < bytes.count {
            let written = try retrying("write", path) {
                Glibc.pwrite(raw, bytes.baseAddress! + offset, bytes.count - offset, off_t(position) + off_t(offset))
            }
            offset += written
        }
    }

    /// Switches the descriptor's O_DIRECT on or off; false (nothing changed) where that fails — on,
    /// where the file system takes no O_DIRECT. Set after creating the file, not at open: an open
    /// with O_CREAT that fails on O_DIRECT (tmpfs before Linux 6.6) has created the file all the same.
    func setDirectIO(_ on: Bool) -> Bool {
        let flags = fcntl(raw, F_GETFL)
        return flags >= 0 && fcntl(raw, F_SETFL, on ? flags | pgkeep_o_direct() : flags & ~pgkeep_o_direct()) == 0
    }

    public func sync() throws(FileSystemError) {
        try retrying("fsync", path) { Int(Glibc.fsync(raw)) }
    }

    /// Reserves `length` bytes so later writes cannot run out of space.
    public func allocate(_ length: Int64) throws(FileSystemError) {
        try retrying("allocate space for", path) { Int(pgkeep_fallocate(raw, off_t(0), off_t(length))) }
    }
}
