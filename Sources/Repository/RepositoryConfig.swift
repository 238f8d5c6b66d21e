import Codecs

/// `pgkeep.repo`: which cluster a repository holds and how. Written once by `repo init`; every
/// later command checks the server it talks to against it.
public struct RepositoryConfig: Codable, Sendable, Equatable {
    public var formatVersion: Int = 1
    public var systemIdentifier: String
    public var serverVersion: Int
    public var walSegmentSize: UInt64
    public var blockSize: Int
    /// The connection as given to `repo init`, without a password (libpq finds that itself).
    public var connection: String?
    /// gzip, lz4, zstd or none: how each stored file and WAL segment is compressed.
    public var compression: String
    public var slot: String
    public var createdAt: String

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", systemIdentifier = "system_identifier", serverVersion = "server_version"
        case walSegmentSize = "wal_segment_size", blockSize = "block_size", connection, compression, slot
        case createdAt = "created_at"
    }

    public init(systemIdentifier: String, serverVersion: Int, walSegmentSize: UInt64, blockSize: Int, connection: String?,
                compression: String, slot: String, createdAt: String) {
        self.systemIdentifier = systemIdentifier
        self.serverVersion = serverVersion
        self.walSegmentSize = walSegmentSize
        self.blockSize = blockSize
        self.connection = connection
        self.compression = compression
        self.slot = slot
        self.createdAt = createdAt
    }

    /// The compression of stored files, nil for none.
    public var compressionSpec: CompressionSpec? {
        CompressionSpec.Algorithm(rawValue: compression).map { CompressionSpec(algorithm: $0) }
    }
}
