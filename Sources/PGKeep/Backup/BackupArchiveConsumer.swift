import ArchiveStream
import PGWire

/// Where a backup's archives go when the caller keeps them itself — a repository that stores
/// each file on its own, the Bacula plugin backend that sends each as a virtual file. The
/// engine does the protocol, the parsing (decompressing server-compressed archives) and the
/// member policy; the consumer gets members, and the manifest at the end.
public protocol BackupArchiveConsumer: AnyObject {
    /// The server's tablespace list, before any archive (the main directory has a nil oid).
    func tablespacesKnown(_ tablespaces: [BackupTablespace]) throws
    /// An archive begins; its members (already checked: no absolute paths, no "..", symlinks
    /// only at pg_tblspc/<oid> to a listed tablespace) go to the consumer returned.
    func startArchive(_ tablespace: BackupTablespace) throws -> TarMemberConsumer
    /// The server's backup_manifest, whole (only when one was asked for).
    func manifestReceived(_ bytes: [UInt8]) throws
}
