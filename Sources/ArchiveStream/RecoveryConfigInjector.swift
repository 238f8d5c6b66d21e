/// Makes a backup start as a standby (`-R`): appends settings (primary_conninfo, primary_slot_name)
/// to the archive's postgresql.auto.conf and adds an empty standby.signal, as pg_basebackup does.
/// Sits between the parser and the writer of the main archive, so plain and tar output share it.
public final class RecoveryConfigInjector: TarMemberConsumer {
    private let next: TarMemberConsumer
    private let settings: [UInt8]
    private var autoConf: TarMember?
    private var autoConfContents: [UInt8] = []
    private var sawAutoConf = false
    private var sawStandbySignal = false
    /// postgresql.auto.conf is a small text file; a huge one would mean something is wrong.
    private static let autoConfLimit = 16 << 20

    /// `settings` are complete lines, e.g. "primary_conninfo = '…'\n".
    public init(next: TarMemberConsumer, settings: String) {
        self.next = next
        self.settings = Array(settings.utf8)
    }

    public func beginMember(_ member: TarMember, rawHeader: UnsafeRawBufferPointer?) throws {
        if member.kind == .file, member.path == "postgresql.auto.conf" {
            guard member.size <= Self.autoConfLimit else {
                throw TarError.memberTooLarge(path: member.path.description, size: member.size, limit: UInt64(Self.autoConfLimit))
            }
            autoConf = member
            autoConfContents.reserveCapacity(Int(member.size) + settings.count)
            return
        }
        if member.path == "standby.signal" { sawStandbySignal = true }
        try next.beginMember(member, rawHeader: rawHeader)
    }

    public func memberContents(_ bytes: UnsafeRawBufferPointer) throws {
        if autoConf != nil { autoConfContents.append(contentsOf: bytes) } else { try next.memberContents(bytes) }
    }

    public func endMember() throws {
        guard let member = autoConf else { return try next.endMember() }
        autoConf = nil
        sawAutoConf = true
        try emit(member, contents: autoConfContents + settings)
    }

    public func endArchive() throws {
        if !sawAutoConf {
            try emit(TarMember(path: try ArchivePath(validating: "postgresql.auto.conf"), kind: .file, size: 0, mode: 0o600,
                               modificationTime: 0), contents: settings)
        }
        if !sawStandbySignal {
            try emit(TarMember(path: try ArchivePath(validating: "standby.signal"), kind: .file, size: 0, mode: 0o600,
                               modificationTime: 0), contents: [])
        }
        try next.endArchive()
    }

    private func emit(_ member: TarMember, contents: [UInt8]) throws {
        var changed = member
        changed.size = UInt64(contents.count)
        try next.beginMember(changed, rawHeader: nil)
        if !contents.isEmpty { try contents.withUnsafeBytes { try next.memberContents($0) } }
        try next.endMember()
    }
}
