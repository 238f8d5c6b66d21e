/// Feeds the same bytes to a consumer in differently sized pieces, as NIO's
/// ByteToMessageDecoderVerifier does: a streaming stage must give identical results whatever
/// the split.
public enum ChunkSplit: CustomStringConvertible, Sendable, CaseIterable {
    case whole, oneByte, blockMinusOne, block, blockPlusOne, random

    public var description: String {
        switch self {
        case .whole: "whole"
        case .oneByte: "1-byte pieces"
        case .blockMinusOne: "511-byte pieces"
        case .block: "512-byte pieces"
        case .blockPlusOne: "513-byte pieces"
        case .random: "random pieces"
        }
    }

    public func pieces(of count: Int, seed: UInt64 = 42) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = 0
        var generator = SplitMix64(seed: seed)
        while start < count {
            let size: Int
            switch self {
            case .whole: size = count
            case .oneByte: size = 1
            case .blockMinusOne: size = 511
            case .block: size = 512
            case .blockPlusOne: size = 513
            case .random: size = Int(generator.next() % 2000) + 1
            }
            ranges.append(start..<min(count, start + size))
            start += size
        }
        return ranges
    }

    public func feed(_ bytes: [UInt8], _ consume: (UnsafeRawBufferPointer) throws -> Void) throws {
        try bytes.withUnsafeBytes { all in
            for range in pieces(of: all.count) { try consume(UnsafeRawBufferPointer(rebasing: all[range])) }
        }
    }
}

/// A small deterministic generator for reproducible "random" tests.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
