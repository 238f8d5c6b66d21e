import Foundation

/// Files under the repository's fixtures/ directory.
public enum Fixtures {
    public static let directory: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() } // Tests/TestSupport/Fixtures.swift → repo
        return url.appendingPathComponent("fixtures").path
    }()

    public static func bytes(_ relativePath: String) throws -> [UInt8] {
        let path = directory + "/" + relativePath
        guard let data = FileManager.default.contents(atPath: path) else { throw TestFailure("missing fixture \(path)") }
        return [UInt8](data)
    }

    /// A fresh empty directory for one test; removed by `removeScratch`.
    public static func scratchDirectory(_ name: String) throws -> String {
        let path = NSTemporaryDirectory() + "pgkeep-unit-\(name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    public static func removeScratch(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

    /// Every path under `root`, relative, without following symlinks.
    public static func tree(_ root: String) -> Set<String> {
        Set((FileManager.default.enumerator(atPath: root)?.allObjects as? [String]) ?? [])
    }
}

/// This test process, as the kernel reports it.
public enum ThisProcess {
    /// The value of one field of /proc/self/status ("Umask", "VmSize"), its unit left on.
    public static func status(_ field: String) throws -> String {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else {
            throw TestFailure("no \(field) in /proc/self/status")
        }
        return line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces)
    }
}
