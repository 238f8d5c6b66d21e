/// The server's version as libpq's PQserverVersion reports it (e.g. 150004), with the protocol
/// capabilities that differ between the versions pgkeep supports. Version differences are checked
/// through these properties, exactly where they matter, never by comparing numbers elsewhere.
public struct ServerVersion: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let number: Int
    public init(number: Int) { self.number = number }
    public init(major: Int) { self.number = major * 10000 }

    public var major: Int { number / 10000 }
    public var description: String { "\(major).\(number % 10000)" }

    public static let minimumSupported = ServerVersion(major: 14)
    public static let supportedMajors = 14...18
    public var isSupported: Bool { self >= .minimumSupported }

    /// 15+: `BASE_BACKUP (OPTION value, …)`; 14: the old keyword syntax.
    public var usesParenthesizedOptions: Bool { major >= 15 }
    /// 15+: one CopyOutResponse whose CopyData carry a type byte ('n','d','p','m');
    /// 14: one CopyOutResponse per tablespace, then one for the manifest.
    public var sendsSingleCopyStream: Bool { major >= 15 }
    /// 15+ servers end each tar with the two zero blocks; 14 leaves that to the client.
    public var terminatesTar: Bool { major >= 15 }
    /// 15+: server-side gzip/lz4/zstd compression of the archives (COMPRESSION option).
    public var supportsServerCompression: Bool { major >= 15 }
    /// 15+: READ_REPLICATION_SLOT.
    public var supportsReadReplicationSlot: Bool { major >= 15 }
    /// 17+: UPLOAD_MANIFEST and INCREMENTAL.
    public var supportsIncremental: Bool { major >= 17 }
    /// 17+: manifest version 2 with System-Identifier.
    public var manifestVersion: Int { major >= 17 ? 2 : 1 }

    public static func < (lhs: ServerVersion, rhs: ServerVersion) -> Bool { lhs.number < rhs.number }
}
