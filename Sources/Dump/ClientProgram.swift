#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PGKeep
import Sinks

/// PostgreSQL's client programs (pg_dump, pg_dumpall, pg_restore, psql) of one installation,
/// and running them: standard output streamed to a callback as it comes (never gathered whole),
/// standard error kept for the error message, the child killable (a cancelled job ends every
/// program it started).
public struct ClientPrograms: Sendable {
    public let directory: String
    public let major: Int

    /// `binDirectory`, or the newest installation found (PATH, /usr/lib/postgresql/*/bin).
    public static func find(binDirectory: String?) throws -> ClientPrograms {
        var candidates: [String] = []
        if let binDirectory {
            candidates = [binDirectory]
        } else {
            let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
            candidates = path.split(separator: ":").map(String.init)
            let installed = ((try? directoryEntries("/usr/lib/postgresql")) ?? []).compactMap(Int.init).sorted(by: >)
            candidates += installed.map { "/usr/lib/postgresql/\($0)/bin" }
        }
        var best: ClientPrograms?
        for directory in candidates where access(directory + "/pg_dump", X_OK) == 0 {
            guard let major = try? Self.version(of: directory + "/pg_dump") else { continue }
            if best == nil || major > best!.major { best = ClientPrograms(directory: directory, major: major) }
            if binDirectory != nil { break }
        }
        guard let best else {
            throw PGKeepError.invalidConfiguration(binDirectory.map { "no pg_dump in \($0)" } ?? "no pg_dump found on PATH or in /usr/lib/postgresql: give its directory with --bin-dir")
        }
        return best
    }

    /// "pg_dump (PostgreSQL) 17.10" → 17.
    static func version(of program: String) throws -> Int {
        var output: [UInt8] = []
        let status = try ChildProcess.run([program, "--version"], environment: [:]) { output.append(contentsOf: $0) }
        let text = String(decoding: output, as: UTF8.self)
        guard status.succeeded, let number = text.split(separator: " ").last?.split(separator: ".").first.flatMap({ Int($0.filter(\.isNumber)) }) else {
            throw PGKeepError.invalidConfiguration("\(program) --version said: \(text)")
        }
        return number
    }

    public func path(_ program: String) -> String { directory + "/" + program }
}

/// One child process: argv, an environment overlay, stdout to a callback, stderr kept.
public final class ChildProcess {
    public struct Status: Sendable {
        public var exitCode: Int32
        public var stderr: String
        public var succeeded: Bool { exitCode == 0 }
    }

    /// Runs `arguments` to the end; `output` gets standard output as it arrives. `isCancelled`
    /// is polled: when it says so, the child is sent SIGTERM (then SIGKILL) and
    /// PGKeepError(.cancelled) is thrown. `stdin`: a file to read standard input from.
    @discardableResult
    public static func run(_ arguments: [String], environment: [String: String], stdin: String? = nil,
                           isCancelled: () -> Bool = { false },
                           output: (UnsafeRawBufferPointer) throws -> Void) throws -> Status {
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { throw FileSystemError("create a pipe for", arguments[0]) }
        let errorPath = PathName.temporaryDirectory + "/pgkeep-child-\(getpid())-\(UUID().uuidString.prefix(8)).err"
        defer { unlink(errorPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
        posix_spawn_file_actions_addclose(&actions, pipeFDs[1])
        posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        let cArguments = arguments.map { strdup($0) } + [nil]
        let cEnvironment = env.map { strdup("\($0)=\($1)") } + [nil]
        defer { (cArguments + cEnvironment).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, arguments[0], &actions, &attributes, cArguments, cEnvironment)
        close(pipeFDs[1])
        let readEnd = FileDescriptor(raw: pipeFDs[0], path: arguments[0] + " output")
        guard spawned == 0 else { throw PGKeepError(.toolFailed, "cannot run \(arguments[0]): \(String(cString: strerror(spawned)))") }

        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 64)
        defer { buffer.deallocate() }
        var failure: Error?
        reading: while true {
            var descriptor = pollfd(fd: readEnd.raw, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 200)
            if isCancelled() {
                terminate(pid)
                failure = PGKeepError(.cancelled, "cancelled")
                break reading
            }
            if ready <= 0 { continue }
            let count = read(readEnd.raw, buffer.baseAddress, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            do { try output(UnsafeRawBufferPointer(rebasing: buffer[0..<count])) } catch {
                // Our side failed (a full disk): stop the producer, report our failure.
                terminate(pid)
                failure = error
                break reading
            }
        }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        if let failure { throw failure }
        let code = raw & 0x7F == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
        let stderr = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        return Status(exitCode: code, stderr: stderr.trimmed)
    }

    private static func terminate(_ pid: pid_t) {
        kill(pid, SIGTERM)
        for _ in 0..<50 {
            var raw: Int32 = 0
            if waitpid(pid, &raw, WNOHANG) == pid {
                // Reaped here; put nothing back: the caller's waitpid then fails with ECHILD.
                return
            }
            usleep(100_000)
        }
        kill(pid, SIGKILL)
    }
}
