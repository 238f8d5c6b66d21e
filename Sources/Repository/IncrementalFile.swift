/// The header of an INCREMENTAL.<relation> file a PostgreSQL 17+ server sends in an incremental
/// backup (basebackup.c sendFile; reconstruct.c make_incremental_rfile): host-order (little-
/// endian) uint32 magic 0xd3ae1f0d, block count, truncation block length, the block numbers
/// (relative to the segment, ascending), zero padding to a block boundary when there are
/// blocks, then the blocks themselves in the same order.
public struct IncrementalFileHeader: Equatable, Sendable {
    public static let magic: UInt32 = 0xD3AE_1F0D
    /// Blocks per segment file (RELSEG_SIZE, 1 GiB of 8 KiB blocks).
    public static let segmentBlocks: UInt32 = 131_072

    public var blockNumbers: [UInt32]
    public var truncationBlockLength: UInt32
    /// Bytes before the first block.
    public var headerSize: Int

    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// The fixed part: magic, count, truncation length.
    public static let fixedSize = 12

    /// Decodes from the file's first bytes; `blockSize` is the cluster's BLCKSZ. Returns nil when
    /// `bytes` is too short to hold the whole header yet (ask again with more).
    public static func decode(_ bytes: some Collection<UInt8>, blockSize: Int, path: String) throws(Invalid) -> IncrementalFileHeader? {
        let array = Array(bytes.prefix(fixedSize))
        guard array.count == fixedSize else { return nil }
        let magic = uint32(array, 0), count = uint32(array, 4), truncation = uint32(array, 8)
        guard magic == Self.magic else {
            throw Invalid(description: "file \"\(path)\" has bad incremental magic number (0x\(String(magic, radix: 16)), expected 0x\(String(Self.magic, radix: 16)))")
        }
        guard count <= segmentBlocks else {
            throw Invalid(description: "file \"\(path)\" has block count \(count) in excess of segment size \(segmentBlocks)")
        }
        guard truncation <= segmentBlocks else {
            throw Invalid(description: "file \"\(path)\" has truncation block length \(truncation) in excess of segment size \(segmentBlocks)")
        }
        let listEnd = fixedSize + 4 * Int(count)
        let headerSize = count == 0 ? fixedSize : (listEnd + blockSize - 1) / blockSize * blockSize
        let all = Array(bytes.prefix(listEnd))
        guard all.count == listEnd else { return nil }
        var numbers: [UInt32] = []
        numbers.reserveCapacity(Int(count))
        for index in 0..<Int(count) {
            let number = uint32(all, fixedSize + 4 * index)
            guard number < segmentBlocks else {
                throw Invalid(description: "file \"\(path)\" names block \(number), beyond a segment")
            }
            if let last = numbers.last, number <= last {
                throw Invalid(description: "file \"\(path)\" lists its blocks out of order")
            }
            numbers.append(number)
        }
        return IncrementalFileHeader(blockNumbers: numbers, truncationBlockLength: truncation, headerSize: headerSize)
    }

    /// The reconstructed file's length in blocks: the truncation length or the highest block
    /// the file holds, whichever is more (pg_combinebackup's find_reconstructed_block_length).
    public var reconstructedBlocks: UInt32 {
        max(truncationBlockLength, blockNumbers.last.map { $0 + 1 } ?? 0)
    }

    /// The whole file's expected size.
    public func fileSize(blockSize: Int) -> Int { headerSize + blockNumbers.count * blockSize }

    static func uint32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }
}

/// Where each block of a reconstructed relation file comes from, as pg_combinebackup decides for
/// a chain of one full backup and one incremental: a block the incremental file holds comes from
/// it; else, below the truncation length and within the full file, from the full file; else it
/// is zeros (a block no WAL touched since the full). Pure: the restore performs the plan.
public enum BlockSource: Equatable, Sendable {
    /// The n-th block stored in the incremental file.
    case incremental(Int)
    /// This block of the full backup's file.
    case full(UInt32)
    case zeros
}

public func reconstructionPlan(_ header: IncrementalFileHeader, fullFileBlocks: UInt32) -> [BlockSource] {
    let length = header.reconstructedBlocks
    var plan: [BlockSource] = []
    plan.reserveCapacity(Int(length))
    var next = 0
    for block in 0..<length {
        if next < header.blockNumbers.count, header.blockNumbers[next] == block {
            plan.append(.incremental(next))
            next += 1
        } else if block < header.truncationBlockLength && block < fullFileBlocks {
            plan.append(.full(block))
        } else {
            plan.append(.zeros)
        }
    }
    return plan
}
