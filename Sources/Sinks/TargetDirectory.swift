#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials

/// A directory a backup writes into: created by this run, or found empty. On failure, `discard`
/// removes what this run put there (the directory itself too, if this run created it), so a failed
/// backup never leaves something that looks like a backup.
public final class TargetDirectory: @unchecked Sendable {
    // @unchecked: immutable after init; `discard` is called once, by the owning job.
    public let path: String
    public let createdByUs: Bool

    public init(preparing path: String, mode: mode_t = 0o700) throws {
        self.path = path
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw FileSystemError("use as a backup directory (it exists and is not a directory)", path, errno: ENOTDIR)
            }
            let entries = try FileManager.default.contentsOfDirectory(atPath: path)
            guard entries.isEmpty else {
                throw FileSystemError("use as a backup directory (it exists and is not empty)", path, errno: ENOTEMPTY)
            }
            createdByUs = false
        } else {
            guard errno == ENOENT else { throw FileSystemError("inspect", path) }
            try Self.makeDirectories(path, mode: mode)
            createdByUs = true
        }
    }

    /// mkdir -p, each new directory with `mode`. True when the last directory was made here
    /// (the caller then owes its parent an fsync for the new entry to be durable).
    @discardableResult
    public static func makeDirectories(_ path: String, mode: mode_t) throws -> Bool {
        var prefix = path.hasPrefix("/") ? "" : "."
        var madeLast = false
        for component in path.split(separator: "/") {
            prefix += "/" + component
            madeLast = mkdir(prefix, mode) == 0
            if !madeLast && errno != EEXIST { throw FileSystemError("create directory", prefix) }
        }
        return madeLast
    }

    /// A new, empty, private (0700) directory under the temporary directory: `prefix` plus six
    /// random characters (mkdtemp).
    public static func makeTemporary(prefix: String) throws(FileSystemError) -> String {
        let base = (getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp") + "/" + prefix
        var template = Array((base + "XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw FileSystemError("create a temporary directory", base + "XXXXXX")
        }
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Makes everything under the directory durable and, when this run created it, the parent's
    /// entry for it too: a new directory is only durable once that entry is.
    public func sync(method: Durability.Method) throws(FileSystemError) {
        try Durability.syncTree(path, method: method)
        guard createdByUs else { return }
        let slash = path.lastIndex(of: "/")
        try Durability.syncDirectory(slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? ".")
    }

    /// Removes what this run wrote. Symlinks are removed, never followed.
    public func discard() {
        if createdByUs {
            try? FileManager.default.removeItem(atPath: path)
        } else if let entries = try? FileManager.default.contentsOfDirectory(atPath: path) {
            for entry in entries { try? FileManager.default.removeItem(atPath: path + "/" + entry) }
        }
    }
}
