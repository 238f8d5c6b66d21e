import Foundation
import Testing
@testable import Manifest

/// Checksums against published test vectors, and the manifest's own checksum rule.
@Suite struct ManifestTests {
    static func checksum(_ algorithm: ChecksumAlgorithm, _ text: String, split: Int = 1 << 30) -> String {
        let summer = Checksummer(algorithm)
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + split)
            bytes[start..<end].withUnsafeBytes { summer.update($0) }
            start = end
        }
        return summer.finish()
    }

    @Test func checksumsMatchKnownVectors() {
        // CRC-32C("123456789") = 0xE3069283, written as its little-endian bytes.
        #expect(Self.checksum(.crc32c, "123456789") == "839206e3")
        #expect(Self.checksum(.crc32c, "123456789", split: 1) == "839206e3")
        let long = String(repeating: "pgkeep WAL ", count: 1000)
        #expect(Self.checksum(.crc32c, long) == Self.checksum(.crc32c, long, split: 7), "the SSE 4.2 and byte-wise paths agree")
        #expect(Self.checksum(.sha224, "abc") == "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7")
        #expect(Self.checksum(.sha256, "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Self.checksum(.sha384, "abc").hasPrefix("cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"))
        #expect(Self.checksum(.sha512, "abc").hasPrefix("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"))
        #expect(Self.checksum(.none, "abc") == "")
    }

    /// `edit` changes the body before its checksum is taken, `tamper` after.
    static func manifest(files: String, edit: (String) -> String = { $0 }, tamper: (String) -> String = { $0 }) -> [UInt8] {
        let body = edit("""
            { "PostgreSQL-Backup-Manifest-Version": 2,
            "System-Identifier": 7312345678901234567,
            "Files": [
            \(files)
            ],
            "WAL-Ranges": [
            { "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000138" }
            ],

            """)
        let sum = checksum(.sha256, body)
        return Array((tamper(body) + "\"Manifest-Checksum\": \"\(sum)\"}\n").utf8)
    }

    @Test func parsesAManifestWhoseChecksumHolds() throws {
        let parsed = try BackupManifest(bytes: Self.manifest(files: """
            { "Path": "PG_VERSION", "Size": 3, "Last-Modified": "2026-11-25 10:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "ABCDEF01" },
            { "Encoded-Path": "626173652f31", "Size": 0, "Last-Modified": "2026-11-25 10:00:00 GMT" }
            """))
        #expect(parsed.version == 2 && parsed.systemIdentifier == "7312345678901234567")
        #expect(parsed.files == [.init(path: "PG_VERSION", size: 3, algorithm: .crc32c, checksum: "abcdef01"),
                                 .init(path: "base/1", size: 0, algorithm: .none, checksum: nil)])
        #expect(parsed.walRanges.first?.end.description == "0/2000138")
    }

    @Test func refusesAManifestChangedAfterItsChecksum() {
        let changed = Self.manifest(files: "{ \"Path\": \"PG_VERSION\", \"Size\": 3 }", tamper: { $0.replacingOccurrences(of: "\"Size\": 3", with: "\"Size\": 4") })
        #expect(throws: BackupManifest.Invalid.self) { try BackupManifest(bytes: changed) }
        let truncated = Array(Self.manifest(files: "").dropLast(30))
        #expect(throws: BackupManifest.Invalid.self) { try BackupManifest(bytes: truncated) }
        // What its checksum covers is exact: a newline added at the end is a change (pg_verifybackup agrees).
        #expect(throws: BackupManifest.Invalid.self) { try BackupManifest(bytes: Self.manifest(files: "") + [0x0A]) }
        #expect(throws: BackupManifest.Invalid.self) { try BackupManifest(bytes: Self.manifest(files: "").dropLast()) }
        #expect(throws: Never.self) { try BackupManifest(bytes: Self.manifest(files: "")) }
    }

    @Test func explainsWhatIsWrongInAManifestWhoseChecksumHolds() {
        func message(_ files: String, edit: (String) -> String = { $0 }) -> String {
            do { _ = try BackupManifest(bytes: Self.manifest(files: files, edit: edit)); return "parsed" } catch { return "\(error)" }
        }
        #expect(message("{ \"Path\": \"PG_VERSION\" }").contains("\"PG_VERSION\" has no size"))
        #expect(message("{ \"Size\": 3 }").contains("a file without a path"))
        #expect(message("{ \"Path\": \"x\", \"Size\": 1, \"Checksum-Algorithm\": \"MD5\" }").contains("unknown checksum algorithm MD5"))
        #expect(message("") == "parsed")
        #expect(message("", edit: { $0.replacingOccurrences(of: "\"Files\"", with: "\"Filez\"") }).contains("has no Files"))
        #expect(message("", edit: { $0.replacingOccurrences(of: "Version\": 2", with: "Version\": 3") }).contains("unsupported manifest version 3"))
        #expect(message("", edit: { $0.replacingOccurrences(of: "\"Timeline\": 1", with: "\"Timeline\": 0") }).contains("invalid WAL range"))
        #expect(message("", edit: { $0.replacingOccurrences(of: "\"Timeline\": 1", with: "\"Timeline\": \"one\"") }).contains("invalid value"))
    }
}
