#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Sinks
import Logging

/// `pgkeep restore --drill`: proves a backup (and the archive) can be brought back. Restores into
/// a scratch directory, starts a server there on a private socket and a free port, waits until
/// recovery has reached its target and the server is promoted, runs pg_amcheck over every
/// database, reports, then stops the server and removes the scratch directory.
public struct RestoreDrill {
    public struct Report: Sendable, Encodable {
        public var ok: Bool
        public var serverVersion: String
        public var recoveredTo: String
        public var timeline: String
        public var restoreSeconds: Double
        public var recoverySeconds: Double
        public var amcheck: String
        public var amcheckPassed: Bool
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Where PostgreSQL's programs are (pg_ctl, psql, pg_amcheck): --pg-bin, or the first pg_ctl
    /// on PATH.
    let binaries: String
    let timeoutSeconds: Int
    let logger: Logger

    public init(binaries: String, timeoutSeconds: Int, logger: Logger) {
        self.binaries = binaries
        self.timeoutSeconds = timeoutSeconds
        self.logger = logger
    }

    /// The first directory on PATH holding pg_ctl.
    public static func binariesOnPath() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map(String.init).first { access($0 + "/pg_ctl", X_OK) == 0 }
    }

    /// Runs the drill on a directory `restore` just filled; always stops the server it started.
    public func run(dataDirectory: String, scratch: String, restoreSeconds: Double) throws -> Report {
        let version = try output([binaries + "/postgres", "--version"]).trimmed
        let backupMajor = (try? String(contentsOfFile: dataDirectory + "/PG_VERSION", encoding: .utf8))?.trimmed ?? "?"
        guard version.contains(" \(backupMajor).") else {
            throw Failure("the backup is of PostgreSQL \(backupMajor) but \(binaries)/postgres is \(version); give the right --pg-bin")
        }
        let socket = scratch + "/socket"
        mkdir(socket, 0o700)
        let port = try Self.freePort()
        if getuid() == 0 {
            // PostgreSQL will not run as root: hand the scratch tree to postgres.
            _ = try output(["/bin/chown", "-R", "postgres:postgres", scratch] + Self.tablespaceTargets(dataDirectory))
        }
        let started = Date()
        logger.notice("drill: starting PostgreSQL on the restored directory (port \(port)) and waiting for recovery")
        let start = try run([binaries + "/pg_ctl", "-D", dataDirectory, "-l", scratch + "/server.log", "-w", "-t", String(timeoutSeconds),
                             "-o", "-p \(port) -k \(socket) -c listen_addresses='' -c archive_mode=off", "start"])
        defer { _ = try? run([binaries + "/pg_ctl", "-D", dataDirectory, "-m", "fast", "-w", "stop"]) }
        guard start.status == 0 else { throw Failure("the restored server did not start:\n\(start.text)\n\(log(scratch))") }
        let psql = [binaries + "/psql", "-X", "-At", "-h", socket, "-p", String(port), "-U", "postgres", "-d", "postgres", "-c"]
        var inRecovery = "t"
        while inRecovery != "f" {
            if Date().timeIntervalSince(started) > Double(timeoutSeconds) { throw Failure("recovery did not finish within \(timeoutSeconds) s\n\(log(scratch))") }
            let answer = try run(psql + ["SELECT pg_is_in_recovery()"])
            if answer.status != 0 && !isRunning(dataDirectory) { throw Failure("the restored server stopped during recovery:\n\(log(scratch))") }
            inRecovery = answer.status == 0 ? answer.text.trimmed : "t"
            if inRecovery != "f" { usleep(200_000) }
        }
        let recovered = Date()
        let position = try output(psql + ["SELECT pg_current_wal_lsn() || ' ' || timeline_id FROM pg_control_checkpoint()"])
            .trimmed.split(separator: " ")
        logger.notice("drill: recovery done; checking every database with pg_amcheck")
        let amcheck = try run([binaries + "/pg_amcheck", "-h", socket, "-p", String(port), "-U", "postgres", "--install-missing",
                               "--all", "--heapallindexed"])
        return Report(ok: amcheck.status == 0, serverVersion: version, recoveredTo: position.first.map(String.init) ?? "?",
                      timeline: position.count > 1 ? String(position[1]) : "?", restoreSeconds: restoreSeconds,
                      recoverySeconds: recovered.timeIntervalSince(started), amcheck: amcheck.text.isEmpty ? "no problems found" : amcheck.text,
                      amcheckPassed: amcheck.status == 0)
    }

    // MARK: Processes

    private struct Result { var status: Int32; var text: String }

    /// Runs a program (as postgres when we are root) and waits for it, output captured in a file:
    /// not a pipe, which the postmaster pg_ctl starts would inherit and hold open. posix_spawn and
    /// waitpid rather than Foundation's Process, whose waitUntilExit can hang on Linux.
    private func run(_ arguments: [String]) throws -> Result {
        let asPostgres = getuid() == 0 && arguments[0].hasPrefix(binaries)
        let argv = asPostgres ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + arguments : arguments
        let outputPath = PathName.temporaryDirectory + "/pgkeep-drill-\(getpid())-\(UUID().uuidString.prefix(8)).out"
        defer { unlink(outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var pid: pid_t = 0
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArguments, environ)
        guard spawned == 0 else { throw Failure("cannot run \(argv[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let exitStatus = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return Result(status: exitStatus, text: text)
    }

    private func output(_ arguments: [String]) throws -> String {
        let result = try run(arguments)
        guard result.status == 0 else { throw Failure("\(arguments.joined(separator: " ")) failed: \(result.text)") }
        return result.text
    }

    private func isRunning(_ dataDirectory: String) -> Bool {
        (try? run([binaries + "/pg_ctl", "-D", dataDirectory, "status"]))?.status == 0
    }

    private func log(_ scratch: String) -> String {
        let text = (try? String(contentsOfFile: scratch + "/server.log", encoding: .utf8)) ?? ""
        return "server log (last lines):\n" + text.split(separator: "\n").suffix(15).joined(separator: "\n")
    }

    static func tablespaceTargets(_ dataDirectory: String) -> [String] {
        let links = (try? FileManager.default.contentsOfDirectory(atPath: dataDirectory + "/pg_tblspc")) ?? []
        return links.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: dataDirectory + "/pg_tblspc/" + $0) }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("cannot create a socket") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw Failure("cannot find a free port") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
