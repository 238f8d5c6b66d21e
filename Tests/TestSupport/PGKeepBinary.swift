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
}
