/// Holds an archive's end back so members can be added after everything the stream carried:
/// `-D -` puts the backup manifest, which the server sends after the archive, into base.tar as
/// its last member (as pg_basebackup does), so the one stream on standard output is a whole
/// backup.
public final class TarMemberAppender: TarMemberConsumer {
    private let next: TarMemberConsumer
    public private(set) var endReached = false

    public init(next: TarMemberConsumer) { self.next = next }

    public func beginMember(_ member: TarMember, rawHeader: UnsafeRawBufferPointer?) throws {
        try next.beginMember(member, rawHeader: rawHeader)
    }
    public func memberContents(_ bytes: UnsafeRawBufferPointer) throws { try next.memberContents(bytes) }
    public func endMember() throws { try next.endMember() }

    /// Noted, not passed on: `close()` ends the archive.
    public func endArchive() throws { endReached = true }

    /// Adds a regular file with `contents` (after the archive's own members).
    public func append(_ path: String, contents: [UInt8], mode: UInt32 = 0o600, modificationTime: Int64) throws {
        try next.beginMember(TarMember(path: try ArchivePath(validating: path), kind: .file, size: UInt64(contents.count),
                                       mode: mode, modificationTime: modificationTime), rawHeader: nil)
        if !contents.isEmpty { try contents.withUnsafeBytes { try next.memberContents($0) } }
        try next.endMember()
    }

    public func close() throws {
        guard endReached else { throw TarError.truncated("the archive had not ended when its trailer was due") }
        try next.endArchive()
    }
}
