import Foundation

/// Runs programs for tests: output captured, exit status checked by the caller.
///
/// Built on posix_spawn and waitpid rather than Foundation's Process, whose waitUntilExit can
/// hang on Linux when called off the main thread. Output goes to temporary files, so a chatty
/// child (or a daemon that inherits the descriptors) can never block on a full pipe.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    // No peak RSS here: posix_spawn starts the child with vfork, and Linux records the parent's
    // peak at the child's execve into the child's ru_maxrss — a test process at 110 MB made every
    // child "peak" at 110 MB. `PGKeepBinary.runMeasuringPeakRSS` measures through GNU time.
    public var succeeded: Bool { status == 0 }
    public var output: String { stdout + stderr }
}

/// A child process started by the tests.
public final class Spawned: @unchecked Sendable {
    // @unchecked: pid is immutable; `status` is written once, by the thread that reaps.
    public let pid: pid_t
    private let outputPath: String
    private let errorPath: String
    private var status: Int32?

    init(pid: pid_t, outputPath: String, errorPath: String) {
        self.pid = pid
        self.outputPath = outputPath
        self.errorPath = errorPath
    }

    public func signal(_ signal: Int32) { kill(pid, signal) }

    /// True once the child has ended (it is reaped then; `wait` still returns its result).
    public var hasExited: Bool {
        if status != nil { return true }
        var raw: Int32 = 0
        guard waitpid(pid, &raw, WNOHANG) == pid else { return false }
        status = raw & 0x7F == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
        return true
    }

    /// What the child has written to stderr so far (it keeps running).
    public var stderrSoFar: String { Self.text(errorPath) }

    /// A file's text; bytes that are not UTF-8 become U+FFFD rather than losing the whole output.
    static func text(_ path: String) -> String {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// Waits for the child; kills it and throws after `timeout` seconds.
    @discardableResult
    public func wait(timeout: TimeInterval = 300, command: String = "") throws -> CommandResult {
        let deadline = Date().addingTimeInterval(timeout)
        while status == nil {
            var raw: Int32 = 0
            let reaped = waitpid(pid, &raw, WNOHANG)
            if reaped == pid {
                // WIFEXITED: low 7 bits zero; then the exit code is bits 8–15. Killed: 128 + signal.
                status = raw & 0x7F == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
            } else if reaped < 0 && errno != EINTR {
                throw TestFailure("waitpid failed for \(command)")
            } else if Date() > deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &raw, 0)
                throw TestFailure("timed out after \(Int(timeout)) s: \(command)")
            } else {
                usleep(10_000)
            }
        }
        let out = Self.text(outputPath)
        let err = Self.text(errorPath)
        try? FileManager.default.removeItem(atPath: outputPath)
        try? FileManager.default.removeItem(atPath: errorPath)
        return CommandResult(status: status!, stdout: out, stderr: err)
    }
}

public enum Shell {
    /// Starts `arguments[0]` with the rest as arguments; `asPostgres` runs it as the postgres
    /// user (initdb and postgres refuse root). Standard input is /dev/null; a bare name is looked
    /// up in PATH.
    public static func spawn(_ arguments: [String], asPostgres: Bool = false, environment: [String: String] = [:]) throws -> Spawned {
        var argv = arguments
        if asPostgres && getuid() == 0 {
            argv = ["/usr/sbin/runuser", "-u", "postgres", "--", "/usr/bin/env"] + environment.map { "\($0)=\($1)" } + arguments
        }
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        let base = NSTemporaryDirectory() + "pgkeep-test-\(getpid())-\(UUID().uuidString.prefix(8))"
        let outputPath = base + ".out", errorPath = base + ".err"

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // Children inherit the spawning thread's signal mask, and test-runner threads block
        // signals: unblock all and reset handlers, or pgbench never sees its SIGALRM and
        // servers and pgkeep never see the signals tests send.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0)=\($1)") } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        let result = posix_spawnp(&pid, argv[0], &actions, &attributes, cArgs, cEnv)
        guard result == 0 else { throw TestFailure("could not start \(argv[0]): \(String(cString: strerror(result)))") }
        return Spawned(pid: pid, outputPath: outputPath, errorPath: errorPath)
    }

    @discardableResult
    public static func run(_ arguments: [String], asPostgres: Bool = false, environment: [String: String] = [:],
                           timeout: TimeInterval = 300) throws -> CommandResult {
        try spawn(arguments, asPostgres: asPostgres, environment: environment)
            .wait(timeout: timeout, command: arguments.joined(separator: " "))
    }

    /// Runs and throws with the output when the command fails.
    @discardableResult
    public static func check(_ arguments: [String], asPostgres: Bool = false, environment: [String: String] = [:],
                             timeout: TimeInterval = 300) throws -> CommandResult {
        let result = try run(arguments, asPostgres: asPostgres, environment: environment, timeout: timeout)
        guard result.succeeded else {
            throw TestFailure("\(arguments.joined(separator: " ")) exited \(result.status):\n\(result.output)")
        }
        return result
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
