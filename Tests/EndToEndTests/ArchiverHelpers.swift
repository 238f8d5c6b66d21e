import Foundation
import TestSupport

/// A `pgkeep receive-wal` running in the background against a server.
final class RunningArchiver {
    let process: Spawned
    let arguments: [String]

    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        self.arguments = arguments
        process = try Shell.spawn([PGKeepBinary.path, "receive-wal"] + arguments, environment: environment)
    }

    /// A test that fails midway must not leave an archiver running behind it.
    deinit {
        if !process.hasExited {
            process.signal(SIGKILL)
            _ = try? process.wait(timeout: 10)
        }
    }

    /// SIGTERM, as a service manager stops it; the run's result.
    func stop() throws -> CommandResult {
        process.signal(SIGTERM)
        return try process.wait(timeout: 60, command: "pgkeep receive-wal")
    }

    /// kill -9: no chance to clean up or flush anything.
    func kill() {
        process.signal(SIGKILL)
        _ = try? process.wait(timeout: 30)
    }

    /// Fails fast with the archiver's own words if it died while we wait for something.
    func checkAlive() throws {
        if process.hasExited {
            let result = try process.wait()
            throw TestFailure("receive-wal exited with \(result.status):\n\(result.stderr)")
        }
    }
}

/// Polls `condition` every 100 ms until it holds; throws after `timeout` seconds.
func waitUntil(_ what: String, timeout: TimeInterval = 60, archiver: RunningArchiver? = nil, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return }
        try archiver?.checkAlive()
        usleep(100_000)
    }
    throw TestFailure("timed out after \(Int(timeout)) s waiting for \(what)\(archiver.map { "\narchiver says:\n" + $0.process.stderrSoFar } ?? "")")
}

/// Waits until the server lists our archiver as a streaming replication client.
func waitForStreaming(_ sql: (String) throws -> String, archiver: RunningArchiver, timeout: TimeInterval = 60) throws {
    try waitUntil("the archiver to stream", timeout: timeout, archiver: archiver) {
        (try? sql("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pgkeep_receivewal' AND state = 'streaming'")) == "1"
    }
}

/// A WAL archive as the tests look at it: complete segments by name (any compression).
struct ArchiveContents {
    let directory: String
    /// Segment name (24 hex digits) → file name in the archive.
    let complete: [String: String]
    let partial: Set<String>
    let history: Set<String>

    init(_ directory: String) throws {
        self.directory = directory
        var complete: [String: String] = [:], partial = Set<String>(), history = Set<String>()
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            let stem = String(name.prefix(24))
            let isHex = stem.count == 24 && stem.allSatisfy { $0.isHexDigit && !$0.isLowercase }
            if name.hasSuffix(".history") { history.insert(name) }
            else if isHex && name.hasSuffix(".partial") { partial.insert(stem) }
            else if isHex && [stem, stem + ".gz", stem + ".lz4", stem + ".zst"].contains(name) { complete[stem] = name }
        }
        self.complete = complete
        self.partial = partial
        self.history = history
    }

    func has(_ segment: String) -> Bool { complete[segment] != nil }

    /// The segment's bytes, decompressed with the system tools (an independent reader).
    func contents(of segment: String) throws -> Data {
        let file = directory + "/" + complete[segment]!
        let decompress: String
        switch (file as NSString).pathExtension {
        case "zst": decompress = "zstd -d -q -c"
        case "lz4": decompress = "lz4 -d -q -c"
        case "gz": decompress = "gzip -d -c"
        default: return FileManager.default.contents(atPath: file) ?? Data()
        }
        let output = NSTemporaryDirectory() + "pgkeep-seg-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: output) }
        try Shell.check(["/bin/sh", "-c", "\(decompress) '\(file)' > '\(output)'"])
        return FileManager.default.contents(atPath: output) ?? Data()
    }

    /// Segment number of a name, for continuity checks (timeline ignored).
    static func segmentNumber(_ name: String, segmentBytes: UInt64) -> UInt64 {
        let high = UInt64(name.dropFirst(8).prefix(8), radix: 16)!, low = UInt64(name.suffix(8), radix: 16)!
        return high * (0x1_0000_0000 / segmentBytes) + low
    }

    /// Checks the archive against the server's pg_wal: every segment number from the first to
    /// `last` present (on some timeline), each byte-identical to the server's copy. Returns how
    /// many segments were compared.
    @discardableResult
    func verify(against pgWal: String, through last: String, segmentBytes: UInt64) throws -> Int {
        guard has(last) else { throw TestFailure("the archive lacks \(last); it has \(complete.keys.sorted())") }
        let names = complete.keys.sorted { ($0.dropFirst(8), $0.prefix(8)) < ($1.dropFirst(8), $1.prefix(8)) }
        let numbers = Set(names.map { Self.segmentNumber($0, segmentBytes: segmentBytes) })
        let first = numbers.min()!, final = Self.segmentNumber(last, segmentBytes: segmentBytes)
        for number in first...final where !numbers.contains(number) {
            throw TestFailure("gap: no segment number \(number) between \(first) and \(final) in \(directory)")
        }
        var compared = 0
        for name in names {
            guard let server = FileManager.default.contents(atPath: pgWal + "/" + name) else {
                throw TestFailure("the server has no \(name) to compare with (wal_keep_size too small?)")
            }
            let ours = try contents(of: name)
            guard ours == server else {
                let offset = zip(ours, server).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(ours.count, server.count)
                throw TestFailure("\(complete[name]!) differs from the server's \(name) at byte \(offset) (sizes \(ours.count), \(server.count))")
            }
            compared += 1
        }
        return compared
    }
}
