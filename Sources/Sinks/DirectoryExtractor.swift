#if canImport(Glibc)
import Glibc
#endif
import ArchiveStream
import CPGKeepShims

/// Writes tar members as files under a root directory (the plain format), safely:
/// - every path is resolved component by component from the root with O_NOFOLLOW, so no symlink,
///   whether made by an earlier member or already there, can lead a write outside the root;
/// - a symlink member is created only when `linkPolicy` accepts it, which also names its target;
/// - files are created O_EXCL, so a member can never overwrite another one.
/// Contents are gathered into large writes; the libpq buffer is never held past `memberContents`.
public final class DirectoryExtractor: TarMemberConsumer {
    /// Given a symlink member (path, server target), the target to create, or a thrown refusal.
    public typealias LinkPolicy = (ArchivePath, [UInt8]) throws -> [UInt8]

    public let root: String
    private let rootFD: FileDescriptor
    private let linkPolicy: LinkPolicy
    private let modes: FileModes
    /// `--waldir`: members under `pg_wal/` go to this directory instead (the root's pg_wal is a
    /// symlink to it, made by the caller; it is never followed).
    private let walRoot: (path: String, fd: FileDescriptor)?
    /// Files of `directIOSize` or more are written O_DIRECT (synced backups only) until the file
    /// system refuses it once.
    private var directIO: Bool
    static let directIOSize: UInt64 = 1 << 20
    private var buffer: WriteBuffer
    private var parentPath: ArraySlice<UInt8>? = nil
    private var parentBase = ""
    private var parentFD: FileDescriptor? = nil
    private var file: FileDescriptor? = nil
    private var createdLinks: [ArchivePath] = []
    /// Files made ahead on a thread of their own (`InodeReserve`); nil where the file system
    /// cannot, and once the archive has ended.
    private var reserve: InodeReserve?
    public private(set) var filesWritten = 0
    /// Of `filesWritten`, those named from the reserve made ahead (the rest were created as they
    /// arrived, on the caller's thread).
    public private(set) var filesMadeAhead = 0
    public private(set) var bytesWritten: UInt64 = 0

    /// `startsWriteback`: the backup will be fsynced at the end; start writeback as we go.
    /// `modes`: for directories the archive does not list itself (a member's own group bits
    /// decide for the rest, as the server sends them).
    public init(root: String, startsWriteback: Bool = false, modes: FileModes = .ownerOnly, walDirectory: String? = nil,
                linkPolicy: @escaping LinkPolicy) throws {
        self.root = root
        self.directIO = startsWriteback
        self.buffer = WriteBuffer(capacity: preferredWriteSize, startsWriteback: startsWriteback, writesLargeSlicesDirectly: true,
                                  mapped: true)
        self.rootFD = try FileDescriptor.openDirectory(root)
        // Made with the mode most of the cluster's files have; a member with other group bits
        // is created where it arrives.
        self.reserve = InodeReserve(in: rootFD, mode: modes.file)
        self.modes = modes
        self.walRoot = try walDirectory.map { ($0, try FileDescriptor.openDirectory($0)) }
        self.linkPolicy = linkPolicy
    }

    public func beginMember(_ member: TarMember, rawHeader: UnsafeRawBufferPointer?) throws {
        if let link = createdLinks.first(where: { member.path.hasPrefix($0) }) {
            throw TarError.unsafePath(member.path.description, reason: "it lies under the symlink \(link) made earlier in the archive")
        }
        var path = member.path.bytes[...]
        var base = (path: root, fd: rootFD)
        if let walRoot, path.starts(with: Self.walPrefix) && (path.count == 6 || path[path.startIndex + 6] == UInt8(ascii: "/")) {
            // The pg_wal entry itself is the caller's symlink; what lies under it goes to --waldir.
            if path.count == 6 { return }
            path = path.dropFirst(7)
            base = walRoot
        }
        let name = path.split(separator: UInt8(ascii: "/")).last!
        let parent = path[..<(name.startIndex == path.startIndex ? path.startIndex : name.startIndex - 1)]
        let group = member.mode & 0o070 != 0
        let parentFD = try openParent(parent, from: base, display: member.path)
        let cName = Array(name) + [0]

        switch member.kind {
        case .directory:
            let made = cName.withUnsafeBufferPointer {
                mkdirat(parentFD, UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), group ? 0o750 : 0o700)
            }
            if made != 0 {
                guard errno == EEXIST, isDirectory(parentFD, cName) else { throw FileSystemError("create directory", display(member.path)) }
            }
        case .symlink(let serverTarget):
            let target = try linkPolicy(member.path, serverTarget) + [0]
            let result = target.withUnsafeBufferPointer { t in
                cName.withUnsafeBufferPointer { n in
                    symlinkat(UnsafeRawPointer(t.baseAddress!).assumingMemoryBound(to: CChar.self), parentFD,
                              UnsafeRawPointer(n.baseAddress!).assumingMemoryBound(to: CChar.self))
                }
            }
            guard result == 0 else { throw FileSystemError("create symlink", display(member.path)) }
            createdLinks.append(member.path)
        case .file:
            let created = try create(cName, in: parentFD, group: group, display: display(member.path))
            if directIO && member.size >= Self.directIOSize {
                try buffer.prepareDirectWriter()
                if created.setDirectIO(true) {
                    buffer.beginDirectFile()
                } else {
                    // This file system takes no O_DIRECT: the page cache, from now on.
                    directIO = false
                }
            }
            file = created
            filesWritten += 1
        }
    }

    public func memberContents(_ bytes: UnsafeRawBufferPointer) throws {
        guard let file else { return }
        try buffer.append(bytes, flushingTo: file)
        bytesWritten += UInt64(bytes.count)
    }

    public func endMember() throws {
        guard let file = file.take() else { return }
        try buffer.finishFile(file)
    }

    public func endArchive() throws {
        parentFD = nil
        parentPath = nil
        reserve?.stop()
        reserve = nil
    }

    deinit { reserve?.stop() }

    /// A new file `cName` in `parent`, never over an existing one: named from the reserve made
    /// ahead when its files have the mode this one needs, else created here.
    private func create(_ cName: [UInt8], in parent: Int32, group: Bool, display path: String) throws -> FileDescriptor {
        try cName.withUnsafeBufferPointer { buffer throws -> FileDescriptor in
            let name = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            if let reserve, group == (reserve.mode & 0o070 != 0) {
                switch reserve.link(name, in: parent) {
                case .named(let fd):
                    filesMadeAhead += 1
                    return FileDescriptor(raw: fd, path: path)
                case .taken: throw Self.createFailure(path, errno: EEXIST)
                case .unavailable: break
                }
            }
            let fd = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, group ? 0o640 : 0o600)
            guard fd >= 0 else { throw Self.createFailure(path, errno: errno) }
            return FileDescriptor(raw: fd, path: path)
        }
    }

    private static func createFailure(_ path: String, errno code: Int32) -> FileSystemError {
        FileSystemError(code == EEXIST ? "create (the archive names it twice)" : "create", path, errno: code)
    }

    // MARK: Path resolution

    private static let walPrefix = Array("pg_wal".utf8)

    /// The directory `parent` (relative to `base`), opened without following any symlink.
    /// Creates missing directories, as servers list directories before their contents but an
    /// archive need not. Caches the last one: members arrive grouped by directory.
    private func openParent(_ parent: ArraySlice<UInt8>, from base: (path: String, fd: FileDescriptor),
                            display path: ArchivePath) throws -> Int32 {
        if parent.isEmpty { return base.fd.raw }
        if let parentPath, parentPath.elementsEqual(parent), parentBase == base.path, let parentFD { return parentFD.raw }
        var current = base.fd
        var walked = base.path
        for component in parent.split(separator: UInt8(ascii: "/")) {
            let cName = Array(component) + [0]
            walked += "/" + String(decoding: component, as: UTF8.self)
            let next: Int32 = cName.withUnsafeBufferPointer { n in
                let name = UnsafeRawPointer(n.baseAddress!).assumingMemoryBound(to: CChar.self)
                var fd = openat(current.raw, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if fd < 0 && errno == ENOENT {
                    if mkdirat(current.raw, name, modes.directory) == 0 || errno == EEXIST {
                        fd = openat(current.raw, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    }
                }
                return fd
            }
            guard next >= 0 else {
                if errno == ELOOP || errno == ENOTDIR {
                    throw TarError.unsafePath(path.description, reason: "\(walked) is a symlink or not a directory")
                }
                throw FileSystemError("open directory", walked)
            }
            current = FileDescriptor(raw: next, path: walked)
        }
        parentPath = parent
        parentBase = base.path
        let raw = current.raw
        parentFD = current
        return raw
    }

    private func isDirectory(_ parent: Int32, _ cName: [UInt8]) -> Bool {
        var info = stat()
        let result = cName.withUnsafeBufferPointer {
            fstatat(parent, UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), &info, AT_SYMLINK_NOFOLLOW)
        }
        return result == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    private func display(_ path: ArchivePath) -> String { root + "/" + path.description }
}
