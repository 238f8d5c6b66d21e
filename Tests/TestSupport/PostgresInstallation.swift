import Foundation

/// A PostgreSQL server build of one major version, from the cache tools/install-servers.sh fills
/// ($PGKEEP_SERVER_CACHE, default /var/cache/pgkeep/servers/<major>/bin).
public struct PostgresInstallation: Sendable {
    public let major: Int
    public let bin: String

    public static let supportedMajors = [14, 15, 16, 17, 18]

    public init(major: Int) throws {
        let cache = ProcessInfo.processInfo.environment["PGKEEP_SERVER_CACHE"] ?? "/var/cache/pgkeep/servers"
        let bin = "\(cache)/\(major)/bin"
        guard FileManager.default.isExecutableFile(atPath: bin + "/postgres") else {
            throw TestFailure("PostgreSQL \(major) is not installed in \(bin): run tools/install-servers.sh")
        }
        self.major = major
        self.bin = bin
    }

    public func tool(_ name: String) -> String { bin + "/" + name }

    /// Server-side lz4/zstd: the 18 build used here has gzip only.
    public var serverCompressions: [String] {
        switch major {
        case 14: []
        case 18: ["gzip"]
        default: ["gzip", "lz4", "zstd"]
        }
    }
}
