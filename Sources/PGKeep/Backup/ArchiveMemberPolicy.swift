import ArchiveStream
import PGWire

/// What a backup archive may hold beyond files and directories: symlinks only at
/// `pg_tblspc/<oid>` in the main archive, pointing at a tablespace the server listed. Applies to
/// plain and tar output alike, so a tar backup never carries a link a restore would follow out of
/// its target.
final class ArchiveMemberPolicy: TarMemberConsumer {
    private let next: TarMemberConsumer
    private let tablespaces: [BackupTablespace]
    private let isMainArchive: Bool

    init(next: TarMemberConsumer, tablespaces: [BackupTablespace], isMainArchive: Bool) {
        self.next = next
        self.tablespaces = tablespaces
        self.isMainArchive = isMainArchive
    }

    func beginMember(_ member: TarMember, rawHeader: UnsafeRawBufferPointer?) throws {
        if case .symlink(let target) = member.kind {
            _ = try Self.tablespace(for: member.path, target: target, in: tablespaces, isMainArchive: isMainArchive)
        }
        try next.beginMember(member, rawHeader: rawHeader)
    }

    func memberContents(_ bytes: UnsafeRawBufferPointer) throws { try next.memberContents(bytes) }
    func endMember() throws { try next.endMember() }
    func endArchive() throws { try next.endArchive() }

    /// The tablespace a symlink member stands for, or a refusal naming why not.
    static func tablespace(for path: ArchivePath, target: [UInt8], in tablespaces: [BackupTablespace],
                           isMainArchive: Bool) throws(TarError) -> BackupTablespace {
        let components = path.components
        let targetText = String(decoding: target, as: UTF8.self)
        guard isMainArchive, components.count == 2, components[0].elementsEqual("pg_tblspc".utf8),
              let oid = UInt32(String(decoding: components[1], as: UTF8.self))
        else { throw .unsafePath(path.description, reason: "symlink to '\(targetText)' outside pg_tblspc/<oid>") }
        guard let tablespace = tablespaces.first(where: { $0.oid == oid }), tablespace.location == targetText else {
            throw .unsafePath(path.description, reason: "symlink to '\(targetText)', which is not a tablespace the server listed")
        }
        return tablespace
    }
}
