import Foundation
import PGWire

/// A backup_manifest as the server writes it (version 1 on 13–16; version 2 adds the system
/// identifier, 17+). Parsed once, with its own checksum checked first: a manifest that does not
/// match its checksum says nothing reliable about the backup.
public struct BackupManifest: Sendable {
    public struct File: Sendable, Equatable {
        public var path: String
        public var size: UInt64
        public var algorithm: ChecksumAlgorithm
        public var checksum: String?
    }

    public struct WALRange: Sendable, Equatable {
        public var timeline: TimelineID
        public var start: LSN
        public var end: LSN
    }

    public var version: Int
    public var systemIdentifier: String?
    public var files: [File]
    public var walRanges: [WALRange]

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public init(bytes: [UInt8]) throws {
        try Self.checkOwnChecksum(bytes)
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(bytes)) } catch {
            throw Invalid("backup_manifest is not valid JSON: \(error.localizedDescription)")
        }
        guard let root = object as? [String: Any] else { throw Invalid("backup_manifest is not a JSON object") }
        guard let version = root["PostgreSQL-Backup-Manifest-Version"] as? Int, version == 1 || version == 2 else {
            throw Invalid("unsupported manifest version \(root["PostgreSQL-Backup-Manifest-Version"] ?? "none")")
        }
        self.version = version
        if let identifier = root["System-Identifier"] { systemIdentifier = "\(identifier)" }
        guard let files = root["Files"] as? [[String: Any]] else { throw Invalid("backup_manifest has no Files list") }
        self.files = try files.map(Self.file)
        guard let ranges = root["WAL-Ranges"] as? [[String: Any]] else { throw Invalid("backup_manifest has no WAL-Ranges") }
        walRanges = try ranges.map { range in
            guard let tli = range["Timeline"] as? Int, tli > 0, let start = (range["Start-LSN"] as? String).flatMap(LSN.init),
                  let end = (range["End-LSN"] as? String).flatMap(LSN.init) else {
                throw Invalid("backup_manifest has an invalid WAL range: \(range)")
            }
            return WALRange(timeline: TimelineID(UInt32(tli)), start: start, end: end)
        }
    }

    private static func file(_ entry: [String: Any]) throws -> File {
        let path: String
        if let plain = entry["Path"] as? String {
            path = plain
        } else if let encoded = entry["Encoded-Path"] as? String, let bytes = hexBytes(encoded) {
            path = String(decoding: bytes, as: UTF8.self)
        } else {
            throw Invalid("backup_manifest has a file without a path: \(entry)")
        }
        guard let size = (entry["Size"] as? NSNumber)?.uint64Value else { throw Invalid("\"\(path)\" has no size in backup_manifest") }
        var algorithm = ChecksumAlgorithm.none
        if let name = entry["Checksum-Algorithm"] as? String {
            guard let known = ChecksumAlgorithm(rawValue: name) else { throw Invalid("\"\(path)\": unknown checksum algorithm \(name)") }
            algorithm = known
        }
        return File(path: path, size: size, algorithm: algorithm, checksum: (entry["Checksum"] as? String)?.lowercased())
    }

    /// The rule pg_verifybackup applies (parse_manifest.c): the file ends with a newline, has at
    /// least two lines, and the SHA-256 of everything up to and including the second-to-last
    /// newline equals the Manifest-Checksum its last line states. A byte added anywhere — even a
    /// newline at the end — breaks it.
    static func checkOwnChecksum(_ bytes: [UInt8]) throws {
        guard bytes.last == 0x0A else { throw Invalid("could not parse backup manifest: last line not newline-terminated") }
        guard let penultimate = bytes.dropLast().lastIndex(of: 0x0A) else {
            throw Invalid("could not parse backup manifest: expected at least 2 lines")
        }
        let lastLine = String(decoding: bytes[(penultimate + 1)..<(bytes.count - 1)], as: UTF8.self)
        let prefix = "\"Manifest-Checksum\": \""
        guard lastLine.hasPrefix(prefix), let close = lastLine.dropFirst(prefix.count).firstIndex(of: "\""),
              lastLine[lastLine.index(after: close)...] == "}" else {
            throw Invalid("backup_manifest has no Manifest-Checksum line at its end (it may be truncated)")
        }
        let expected = String(lastLine[lastLine.index(lastLine.startIndex, offsetBy: prefix.count)..<close]).lowercased()
        let summer = Checksummer(.sha256)
        bytes.withUnsafeBytes { summer.update(UnsafeRawBufferPointer(rebasing: $0[0...penultimate])) }
        let actual = summer.finish()
        guard actual == expected else {
            throw Invalid("manifest checksum mismatch: backup_manifest says \(expected), its contents give \(actual)")
        }
    }

    private static func hexBytes(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: utf8.count, by: 2) {
            guard let byte = UInt8(String(decoding: utf8[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
