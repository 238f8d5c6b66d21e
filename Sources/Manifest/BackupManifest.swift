import FoundationEssentials
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
        let document: Document
        do { document = try JSONDecoder().decode(Document.self, from: Data(bytes)) } catch let error as Invalid {
            throw error
        } catch DecodingError.keyNotFound(let key, let context) {
            throw Invalid("backup_manifest has no \(key.stringValue)\(Self.location(context))")
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            throw Invalid("backup_manifest has an invalid value\(Self.location(context)): \(context.debugDescription)")
        } catch {
            throw Invalid("backup_manifest is not valid JSON: \(error)")
        }
        guard document.version == 1 || document.version == 2 else {
            throw Invalid("unsupported manifest version \(document.version)")
        }
        version = document.version
        systemIdentifier = document.systemIdentifier.map(String.init)
        files = document.files.map { File(path: $0.path, size: $0.size, algorithm: $0.algorithm, checksum: $0.checksum) }
        walRanges = try document.walRanges.map { range in
            guard range.timeline > 0, let start = LSN(range.start), let end = LSN(range.end) else {
                throw Invalid("backup_manifest has an invalid WAL range: timeline \(range.timeline), \(range.start) to \(range.end)")
            }
            return WALRange(timeline: TimelineID(range.timeline), start: start, end: end)
        }
    }

    private static func location(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: " ")
        return path.isEmpty ? "" : " at \(path)"
    }

    /// The manifest's JSON, as far as pgkeep reads it (unknown keys are ignored, as
    /// pg_verifybackup's parser would reject them only for its own version checks).
    private struct Document: Decodable {
        var version: Int
        var systemIdentifier: UInt64?
        var files: [Entry]
        var walRanges: [Range]

        enum CodingKeys: String, CodingKey {
            case version = "PostgreSQL-Backup-Manifest-Version", systemIdentifier = "System-Identifier"
            case files = "Files", walRanges = "WAL-Ranges"
        }
    }

    private struct Range: Decodable {
        var timeline: UInt32
        var start: String
        var end: String
        enum CodingKeys: String, CodingKey { case timeline = "Timeline", start = "Start-LSN", end = "End-LSN" }
    }

    private struct Entry: Decodable {
        var path: String
        var size: UInt64
        var algorithm: ChecksumAlgorithm
        var checksum: String?

        enum CodingKeys: String, CodingKey {
            case path = "Path", encodedPath = "Encoded-Path", size = "Size"
            case algorithm = "Checksum-Algorithm", checksum = "Checksum"
        }

        init(from decoder: any Decoder) throws {
            let entry = try decoder.container(keyedBy: CodingKeys.self)
            if let plain = try entry.decodeIfPresent(String.self, forKey: .path) {
                path = plain
            } else if let encoded = try entry.decodeIfPresent(String.self, forKey: .encodedPath),
                      let bytes = BackupManifest.hexBytes(encoded) {
                path = String(decoding: bytes, as: UTF8.self)
            } else {
                throw Invalid("backup_manifest has a file without a path")
            }
            guard let size = try? entry.decode(UInt64.self, forKey: .size) else {
                throw Invalid("\"\(path)\" has no size in backup_manifest")
            }
            self.size = size
            algorithm = .none
            if let name = try entry.decodeIfPresent(String.self, forKey: .algorithm) {
                guard let known = ChecksumAlgorithm(rawValue: name) else {
                    throw Invalid("\"\(path)\": unknown checksum algorithm \(name)")
                }
                algorithm = known
            }
            checksum = try entry.decodeIfPresent(String.self, forKey: .checksum)?.lowercased()
        }
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
