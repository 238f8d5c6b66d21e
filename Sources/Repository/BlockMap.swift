import CPGKeepShims
import PGWire
import Sinks

/// A relation file's pages as the full backup stored them: one CRC-32C per page. A later
/// differential compares each page it reads with these, so a page whose bytes changed without
/// its LSN moving (hint bits set on a cluster without checksums or wal_log_hints) is still sent,
/// and the file the restore rebuilds is byte for byte the one the differential's manifest lists.
/// Kept per file (`blockmaps/<stored path>`, little-endian UInt32s): memory is one file's map.
public enum BlockMap {
    public static func path(in backup: String, manifestPath: String) -> String {
        backup + "/blockmaps/" + RepositoryLayout.storedPath(forManifestPath: manifestPath)
    }

    public static func read(_ path: String) throws -> [UInt32]? {
        guard let bytes = try readWholeFile(path), bytes.count % 4 == 0 else { return nil }
        return bytes.withUnsafeBytes { raw in
            stride(from: 0, to: raw.count, by: 4).map { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0, as: UInt32.self)) }
        }
    }

    public static func write(_ crcs: [UInt32], to path: String) throws {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(crcs.count * 4)
        for crc in crcs { withUnsafeBytes(of: crc.littleEndian) { bytes += $0 } }
        if let slash = path.lastIndex(of: "/") { try TargetDirectory.makeDirectories(String(path[..<slash]), mode: 0o700) }
        try Durability.writeFileAtomically(bytes, named: String(path[path.index(after: path.lastIndex(of: "/")!)...]),
                                           in: String(path[..<path.lastIndex(of: "/")!]), sync: false)
    }

    public static func crc(_ page: UnsafeRawBufferPointer) -> UInt32 {
        ~pgkeep_crc32c_update(0xFFFF_FFFF, page.baseAddress!, page.count)
    }
}

/// Cuts a byte stream into pages and hands each whole page on (the stream's pieces may end
/// anywhere).
public struct PageSplitter {
    public let blockSize: Int
    private var pending: [UInt8] = []

    public init(blockSize: Int) {
        self.blockSize = blockSize
        pending.reserveCapacity(blockSize)
    }

    public var hasPartialPage: Bool { !pending.isEmpty }

    public mutating func consume(_ bytes: UnsafeRawBufferPointer, _ page: (UnsafeRawBufferPointer) throws -> Void) throws {
        var offset = 0
        while offset < bytes.count {
            if pending.isEmpty && bytes.count - offset >= blockSize {
                try page(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + blockSize]))
                offset += blockSize
                continue
            }
            let take = min(blockSize - pending.count, bytes.count - offset)
            pending.append(contentsOf: bytes[offset..<offset + take])
            offset += take
            if pending.count == blockSize {
                try pending.withUnsafeBytes { try page($0) }
                pending.removeAll(keepingCapacity: true)
            }
        }
    }
}

/// Whether a relation file's page changed since the full backup a differential rests on: a page
/// past the full's length always; one the full's block map covers, when its CRC differs (bytes
/// that changed without the LSN moving count too); otherwise when its LSN is at or past the
/// full's start (changed by WAL since). The repository's delta files and the plugin's delta
/// frames both send exactly these pages.
public struct PageChangeRule: Sendable {
    public let since: LSN
    public let baseBlocks: UInt64
    public let baseMap: [UInt32]?

    public init(since: LSN, baseBlocks: UInt64, baseMap: [UInt32]?) {
        self.since = since
        self.baseBlocks = baseBlocks
        self.baseMap = baseMap
    }

    public func changed(_ page: UnsafeRawBufferPointer, block: UInt64) -> Bool {
        if block >= baseBlocks { return true }
        if let baseMap, block < UInt64(baseMap.count) { return BlockMap.crc(page) != baseMap[Int(block)] }
        let high = UInt64(page.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian)
        let low = UInt64(page.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian)
        return LSN(high << 32 | low) >= since
    }
}
