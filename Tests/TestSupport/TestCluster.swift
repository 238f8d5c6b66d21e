import Foundation

/// A real, throwaway PostgreSQL cluster: initdb'ed with data checksums as the postgres user in a
/// private directory, listening on a private socket directory and a free loopback port.
/// `destroy()` stops it and removes everything; call it in a defer.
public final class TestCluster: @unchecked Sendable {
    // @unchecked: used from one test at a time; fields are set once in init.
    public let installation: PostgresInstallation
    public let root: String
    public let dataDirectory: String
    public let socketDirectory: String
    public let port: Int
    private var running = false

    public struct Settings: Sendable {
        public var walLevel = "replica"
        public var maxWalSenders = 10
        public var extraConfig: [String] = []
        public var extraHBA: [String] = []
        public var walSegmentSizeMB: Int? = nil
        /// More initdb arguments (`-g` for a group-readable cluster).
        public var initdbArguments: [String] = []
        public var dataChecksums = true
        public init() {}
    }

    public init(major: Int, settings: Settings = Settings()) throws {
        installation = try PostgresInstallation(major: major)
        root = try Self.makeRoot(prefix: "pg\(major)")
        dataDirectory = root + "/data"
        socketDirectory = root + "/sock"
        port = try freePort()
        try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        try chownToPostgres(root)
        var initdb = [installation.tool("initdb"), "-D", dataDirectory, "-A", "trust", "-U", "postgres",
                      "--no-sync", "-E", "UTF8", "--locale=C"] + (settings.dataChecksums ? ["--data-checksums"] : [])
        if let size = settings.walSegmentSizeMB { initdb += ["--wal-segsize", String(size)] }
        initdb += settings.initdbArguments
        try Shell.check(initdb, asPostgres: true)
        var config = [
            "port = \(port)", "listen_addresses = '127.0.0.1'", "unix_socket_directories = '\(socketDirectory)'",
            "wal_level = \(settings.walLevel)", "max_wal_senders = \(settings.maxWalSenders)",
            "fsync = off", "shared_buffers = 32MB", "max_connections = 30", "log_min_messages = warning",
        ]
        if settings.walLevel == "minimal" { config.append("max_wal_senders = 0") }
        config += settings.extraConfig
        try append(config.joined(separator: "\n") + "\n", to: dataDirectory + "/postgresql.conf")
        // hba lines are matched first to last: ours go before initdb's trust lines.
        let hba = try String(contentsOfFile: dataDirectory + "/pg_hba.conf", encoding: .utf8)
        try (settings.extraHBA.joined(separator: "\n") + "\n" + hba).write(toFile: dataDirectory + "/pg_hba.conf", atomically: true, encoding: .utf8)
        try start()
    }

    public func start() throws {
        try Shell.check([installation.tool("pg_ctl"), "-D", dataDirectory, "-l", root + "/server.log", "-w", "-t", "60", "start"],
                        asPostgres: true)
        running = true
    }

    public func stop() throws {
        guard running else { return }
        try Shell.check([installation.tool("pg_ctl"), "-D", dataDirectory, "-m", "fast", "-w", "stop"], asPostgres: true)
        running = false
    }

    public func destroy() {
        try? stop()
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Runs SQL with psql as postgres; returns the unaligned, tuples-only output, trimmed.
    @discardableResult
    public func sql(_ statement: String, database: String = "postgres") throws -> String {
        try sql(statement, database: database, port: port, socket: socketDirectory)
    }

    @discardableResult
    public func sql(_ statement: String, database: String = "postgres", port: Int, socket: String) throws -> String {
        let result = try Shell.check([installation.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At",
                                      "-h", socket, "-p", String(port), "-U", "postgres", "-d", database, "-c", statement])
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A new directory owned by postgres inside this cluster's root (for tablespaces, backups).
    public func makeDirectory(_ name: String) throws -> String {
        let path = root + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try chownToPostgres(path)
        return path
    }

    /// pgkeep's connection flags for this cluster (unix socket, superuser).
    public var connectionArguments: [String] { ["-h", socketDirectory, "-p", String(port), "-U", "postgres"] }

    public var serverLog: String { (try? String(contentsOfFile: root + "/server.log", encoding: .utf8)) ?? "" }

    static func makeRoot(prefix: String) throws -> String {
        let base = ProcessInfo.processInfo.environment["PGKEEP_TEST_TMP"] ?? "/tmp/pgkeep-tests"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        chmod(base, 0o755)
        var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw TestFailure("mkdtemp failed in \(base)")
        }
        let path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        chmod(path, 0o755)
        return path
    }
}

public func chownToPostgres(_ path: String) throws {
    if getuid() == 0 { try Shell.check(["/bin/chown", "-R", "postgres:postgres", path]) }
}

public func append(_ text: String, to path: String) throws {
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.seekToEnd()
    try handle.write(contentsOf: Data(text.utf8))
}

/// A loopback TCP port nobody listens on now (the kernel picks it).
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    guard bound == 0 else { throw TestFailure("bind() failed") }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}
