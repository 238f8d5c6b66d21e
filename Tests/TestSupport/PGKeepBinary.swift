import Foundation

/// The `pgkeep` executable built next to the test bundle (or $PGKEEP_BINARY).
public enum PGKeepBinary {
    public static var path: String {
        if let explicit = ProcessInfo.processInfo.environment["PGKEEP_BINARY"] { return explicit }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // Inside an .xctest bundle on some platforms the binary is nested deeper.
        while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("pgkeep").path),
              directory.path != "/" {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("pgkeep").path
    }

    @discardableResult
    public static func run(_ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 300) throws -> CommandResult {
        try Shell.run([path] + arguments, environment: environment, timeout: timeout)
    }

    /// Runs pgkeep under GNU time and returns its peak resident set in kilobytes too. GNU time
    /// forks pgkeep from its own small process, so the figure is pgkeep's alone (a child spawned
    /// straight from the test process inherits the test process's peak at execve).
    public static func runMeasuringPeakRSS(_ arguments: [String], timeout: TimeInterval = 300) throws -> (CommandResult, peakKilobytes: Int) {
        let report = NSTemporaryDirectory() + "pgkeep-rss-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: report) }
        let result = try Shell.run(["/usr/bin/time", "-f", "%M", "-o", report, path] + arguments, timeout: timeout)
        let text = (try? String(contentsOfFile: report, encoding: .utf8)) ?? ""
        guard let peak = text.split(separator: "\n").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) else {
            throw TestFailure("no peak RSS from /usr/bin/time (is the time package installed?): \(text)")
        }
        return (result, peak)
    }
}
