/// The level each 1 MiB piece of a `ParallelZstdCompressor` is compressed at.
///
/// A level the user names applies to every piece, exactly. With none, pieces compress at zstd's
/// default level, 3 — except a piece whose bytes look random and on which level 1 does as well:
/// there level 3's match finder costs four times level 1's CPU for nothing. Rows of random bytes
/// between tuple headers (hashes, encrypted or already compressed values) compressed at 430 MB/s
/// at level 3 and 1,610 MB/s at level 1, to the same size (0.883 of the input either way), while
/// on the tables and indexes around them level 3 wins (an index: 0.19 against 0.25).
///
/// The choice is the piece's own, made in two steps so that most pieces pay almost nothing:
/// 1. `PieceSample.looksRandom`: bytes sampled across the piece (16 kB) are nearly as varied as
///    random bytes. Tables and indexes fall far short of it: their tuple headers, page headers
///    and repeated values make two sampled bytes equal several times as often.
/// 2. Only then a trial: a contiguous 64 kB of the piece compressed at both levels; level 1 is
///    taken if its output is no more than 1 % larger (`fastLevelDoesAsWell`). Random-looking
///    bytes that repeat within the piece (one value in many rows) keep level 3 here.
/// A piece's choice depends on its bytes only: the same input gives the same output.
public struct ZstdPieceLevels: Hashable, Sendable {
    /// The level every piece compresses at unless `fastLevel` is chosen for it.
    public let level: Int32
    /// The level tried on pieces that look random; nil: `level` for every piece.
    public let fastLevel: Int32?

    /// zstd's own default (`ZSTD_CLEVEL_DEFAULT`), pg_basebackup's for `-Z zstd`.
    public static let defaultLevel: Int32 = 3

    /// `level` as the user gave it: nil (none named) chooses per piece; a number is kept exactly.
    public init(named level: Int?) {
        if let level {
            self.level = Int32(level)
            fastLevel = nil
        } else {
            self.level = Self.defaultLevel
            fastLevel = 1
        }
    }
}

/// What `ZstdPieceLevels` looks at in a piece: pure functions of its bytes.
enum PieceSample {
    static let sliceCount = 64
    static let sliceSize = 256
    static let trialSize = 64 << 10
    /// Smaller pieces (the end of a stream) keep the level: too small to sample or worth a trial.
    static let smallestSampled = 2 * trialSize

    /// Whether bytes sampled across `piece` are nearly as varied as random bytes: two of them
    /// are equal less often than 1 time in 32 (random bytes: 1 in 256). One slice of
    /// `sliceSize` bytes from each of `sliceCount` equal stretches, at an offset that moves from
    /// stretch to stretch — a fixed one would land on the same place in each 8 kB page (the
    /// stretches are 16 kB), and page headers alone are anything but random.
    static func looksRandom(_ piece: UnsafeRawBufferPointer) -> Bool {
        guard piece.count >= smallestSampled else { return false }
        let stretch = piece.count / sliceCount
        return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 256) { counts in
            counts.initialize(repeating: 0)
            for slice in 0..<sliceCount {
                let start = slice * stretch + (slice &* 2731) % (stretch - sliceSize + 1)
                for byte in piece[start..<start + sliceSize] { counts[Int(byte)] &+= 1 }
            }
            // Σ count² / n² is the chance two sampled bytes are equal.
            var pairs: UInt64 = 0
            for count in counts { pairs &+= UInt64(count) * UInt64(count) }
            let sampled = UInt64(sliceCount * sliceSize)
            return pairs * 32 < sampled * sampled
        }
    }

    /// The stretch of `piece` compressed at both levels: its middle `trialSize` bytes.
    static func trial(of piece: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let start = (piece.count - min(piece.count, trialSize)) / 2
        return UnsafeRawBufferPointer(rebasing: piece[start..<start + min(piece.count, trialSize)])
    }

    /// Level 1's trial output is no more than 1 % larger than the level's.
    static func fastLevelDoesAsWell(fastSize: Int, levelSize: Int) -> Bool {
        fastSize * 100 <= levelSize * 101
    }
}
