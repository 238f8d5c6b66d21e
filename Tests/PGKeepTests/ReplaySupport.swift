import Foundation
import ArchiveStream
import Codecs
import PGConnection
import PGWire
import Sinks
import TestSupport
@testable import PGKeep

/// A conversation written out event by event: the test-side server for hostile streams.
final class ScriptedStream: ReplicationStream {
    enum Event {
        case rows([[String?]])
        case copyOut
        case copyBoth
        case copyIn
        /// Inside a COPY: nothing more has arrived yet (a non-blocking read would block).
        case pause
        case data([UInt8])
        case copyDone
        case commandOK
        case error(sqlState: String, message: String)
    }

    let serverVersion: ServerVersion
    private var events: [Event]

    init(version: Int, _ events: [Event]) {
        serverVersion = ServerVersion(major: version)
        self.events = events
    }

    /// What the client sent, in order: command texts, and CopyData/CopyDone as the receiver
    /// sends them during START_REPLICATION.
    private(set) var sentCommands: [String] = []
    private(set) var sentCopyData: [[UInt8]] = []
    private(set) var copyEnded = false

    func send(_ text: String) throws { sentCommands.append(text) }
    func sendCopyData(_ bytes: [UInt8]) throws(ConnectionError) { sentCopyData.append(bytes) }
    func endCopy() throws(ConnectionError) { copyEnded = true }
    func waitForInput(milliseconds: Int32) throws -> Bool { true }

    func nextResult() throws -> ResultEvent? {
        guard !events.isEmpty else { return nil }
        switch events.removeFirst() {
        case .rows(let rows): return .rows(rows)
        case .copyOut: return .copyOut
        case .copyBoth: return .copyBoth
        case .copyIn: return .copyIn
        case .commandOK: return .commandOK
        case .error(let state, let message): throw ConnectionError.server(ServerError(severity: "ERROR", sqlState: state, message: message))
        case let other: throw TestFailure("script has \(other) where a result was expected")
        }
    }

    func readCopyData(wait: Bool, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> CopyRead {
        guard !events.isEmpty else { throw ConnectionError.lost("server closed the connection") }
        switch events.removeFirst() {
        case .data(let bytes):
            try bytes.withUnsafeBytes { try body($0) }
            return .message
        case .copyDone: return .copyDone
        case .pause: return .wouldBlock
        case .error(let state, let message): throw ConnectionError.server(ServerError(severity: "ERROR", sqlState: state, message: message))
        case let other: throw TestFailure("script has \(other) inside a COPY")
        }
    }

    // MARK: Building blocks of a 15+ conversation

    static let startRows: Event = .rows([["0/2000028", "1"]])
    static let endRows: Event = .rows([["0/2000100", "1"]])
    static func tablespaceRows(_ rows: [[String?]] = []) -> Event { .rows(rows + [[nil, nil, "100"]]) }
    static func newArchive(_ name: String, location: String = "") -> Event {
        .data([UInt8(ascii: "n")] + Array(name.utf8) + [0] + Array(location.utf8) + [0])
    }
    static func archiveData(_ bytes: [UInt8]) -> Event { .data([UInt8(ascii: "d")] + bytes) }
    static let manifestFollows: Event = .data([UInt8(ascii: "m")])
}

/// Runs the real driver, router and sinks on a stream, into `target`.
func replay(_ stream: CommandStream, into target: String, format: BackupConfiguration.Format = .plain,
            compression: CompressionSpec? = nil, mappings: [String] = [], recovery: String? = nil) throws -> BaseBackupDriver.Positions {
    var configuration = BackupConfiguration(connection: ConnectionParameters(), targetDirectory: target)
    configuration.format = format
    configuration.compression = compression
    for mapping in mappings { try configuration.tablespaceMapping.add(mapping) }
    let directory = try TargetDirectory(preparing: target)
    let router = ArchiveRouter(configuration: configuration, version: stream.serverVersion, target: directory, recoverySettings: recovery)
    let driver = BaseBackupDriver(connection: stream, router: router, progress: nil)
    return try driver.run(BaseBackupOptions(label: "replay"))
}

func loadRecording(_ name: String) throws -> RecordedStream {
    var bytes = try Fixtures.bytes("streams/" + name)
    if name.hasSuffix(".zst") {
        let collected = CollectingStage()
        let decompressor = try ZstdDecompressor(next: collected)
        try bytes.withUnsafeBytes { try decompressor.consume($0) }
        try decompressor.finish()
        bytes = collected.bytes
    }
    return try RecordedStream(bytes: bytes)
}

/// The server's manifest entries: path → (size, CRC32C as the manifest writes it).
func manifestFiles(_ path: String) throws -> [String: (size: Int, checksum: String?)] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    var files: [String: (Int, String?)] = [:]
    for entry in json["Files"] as! [[String: Any]] {
        files[entry["Path"] as! String] = (entry["Size"] as! Int, entry["Checksum"] as? String)
    }
    return files
}

/// CRC-32C (Castagnoli), as backup manifests use it; shown as the little-endian bytes in hex.
func crc32cHex(_ bytes: [UInt8]) -> String {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
    }
    crc = ~crc
    return withUnsafeBytes(of: crc.littleEndian) { $0.map { String(format: "%02x", $0) }.joined() }
}
