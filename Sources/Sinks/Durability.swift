#if canImport(Glibc)
import Glibc
#endif
import CPGKeepShims
import Synchronization

/// Making what we wrote durable, the way PostgreSQL does it: fsync each file, then the directory
/// that names it; or syncfs the whole file system in one call.
public enum Durability {
    public enum Method: String, Sendable, CaseIterable {
        /// fsync every file and directory under the target (PostgreSQL's default; reports every error).
        case fsync
        /// One syncfs(2) per file system (fast; errors are reported on Linux 5.8+ only).
        case syncfs
    }

    public static func syncDirectory(_ path: String) throws(FileSystemError) {
        let directory = try FileDescriptor.openDirectory(path)
        try directory.sync()
    }

    public static func syncFileSystem(containing path: String) throws(FileSystemError) {
        let directory = try FileDescriptor.openDirectory(path)
        try retrying("syncfs", path) { Int(pgkeep_syncfs(directory.raw)) }
    }

    /// Makes everything under `root` durable with `method`. Symlinks are not followed: a
    /// tablespace is synced through its own root.
    public static func syncTree(_ root: String, method: Method) throws(FileSystemError) {
        switch method {
        case .syncfs:
            try syncFileSystem(containing: root)
        case .fsync:
            try fsyncTree(root)
        }
    }

    /// fsync calls in flight at once. Each one on its own waits for a journal commit of its own
    /// (ext4, XFS); issued together they share commits, which makes syncing a tree of thousands
    /// of files as fast as syncfs while every file's error is still reported.
    static let fsyncWorkers = 16

    /// Files in batches as the walk finds them (memory stays bounded by the batch, whatever the
    /// number of files), then every directory deepest first (a directory after the entries it
    /// names); the first error is thrown once the calls in flight have returned.
    private static func fsyncTree(_ root: String) throws(FileSystemError) {
        var batch: [String] = [], directories: [String] = []
        batch.reserveCapacity(fsyncBatch)
        try collect(root, batch: &batch, directories: &directories)
        try fsyncAll(batch, opening: O_RDONLY, operation: "open")
        try fsyncAll(directories.reversed(), opening: O_RDONLY | O_DIRECTORY, operation: "open directory")
    }

    static let fsyncBatch = 4096

    private static func collect(_ path: String, batch: inout [String], directories: inout [String]) throws(FileSystemError) {
        directories.append(path)
        guard let stream = opendir(path) else { throw FileSystemError("open directory", path) }
        var subdirectories: [String] = []
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name == "." || name == ".." { continue }
            switch Int32(entry.pointee.d_type) {
            case Int32(DT_DIR): subdirectories.append(path + "/" + name)
            case Int32(DT_REG):
                batch.append(path + "/" + name)
                if batch.count == fsyncBatch {
                    try fsyncAll(batch, opening: O_RDONLY, operation: "open")
                    batch.removeAll(keepingCapacity: true)
                }
            default: continue // symlinks and others: nothing to sync
            }
        }
        for directory in subdirectories { try collect(directory, batch: &batch, directories: &directories) }
    }

    private static func fsyncAll(_ paths: [String], opening flags: Int32, operation: String) throws(FileSystemError) {
        try OSThread.forEach(paths.count, workers: fsyncWorkers, name: "pgkeep-fsync") { (index) throws(FileSystemError) in
            let path = paths[index]
            let fd = Glibc.open(path, flags | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { throw FileSystemError(operation, path) }
            try FileDescriptor(raw: fd, path: path).sync()
        }
    }

    /// Renames within one directory, then (with `sync`) makes the rename durable. Never replaces
    /// an existing file.
    public static func durableRename(in directory: String, from: String, to: String, sync: Bool = true) throws(FileSystemError) {
        let dir = try FileDescriptor.openDirectory(directory)
        try retrying("rename", directory + "/" + from) { Int(pgkeep_rename_noreplace(dir.raw, from, dir.raw, to)) }
        if sync { try dir.sync() }
    }

    /// Renames within one directory, replacing `to` if it exists (a segment streamed again after
    /// a crash), then (with `sync`) makes the rename durable.
    public static func durableReplace(in directory: String, from: String, to: String, sync: Bool = true) throws(FileSystemError) {
        let dir = try FileDescriptor.openDirectory(directory)
        try retrying("rename", directory + "/" + from) { Int(renameat(dir.raw, from, dir.raw, to)) }
        if sync { try dir.sync() }
    }

    /// Removes a file and (with `sync`) makes the removal durable.
    public static func remove(_ name: String, in directory: String, sync: Bool = true) throws(FileSystemError) {
        guard unlink(directory + "/" + name) == 0 || errno == ENOENT else { throw FileSystemError("remove", directory + "/" + name) }
        if sync { try syncDirectory(directory) }
    }

    /// Writes `bytes` to a new file `name` in `directory` as PostgreSQL writes its own small
    /// files: to name.tmp, fsync, rename over name, fsync the directory.
    public static func writeFileAtomically(_ bytes: [UInt8], named name: String, in directory: String, sync: Bool = true,
                                           mode: mode_t = 0o600) throws(FileSystemError) {
        let temporary = name + ".tmp"
        let path = directory + "/" + temporary
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FileSystemError("create", path) }
        let file = FileDescriptor(raw: fd, path: path)
        var failure: FileSystemError?
        bytes.withUnsafeBytes { buffer in
            do { try file.writeAll(buffer) } catch { failure = error as? FileSystemError ?? FileSystemError("write", path, errno: EIO) }
        }
        if let failure { throw failure }
        if sync { try file.sync() }
        try durableReplace(in: directory, from: temporary, to: name, sync: sync)
    }
}
