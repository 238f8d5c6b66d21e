import ArchiveStream
import CZstd
import Dispatch
import Sinks
import Synchronization

/// Zstandard on worker threads of pgkeep's own: the input is cut into 1 MiB pieces, each
/// compressed as a frame of its own by whichever worker is free, and the frames are written in
/// order. Concatenated frames are one valid zstd stream (`zstd -d`, libzstd's streaming decoder,
/// pg_verifybackup all read them as one).
///
/// Why not libzstd's own workers (`ZSTD_c_nbWorkers`): libzstd hands a job to a worker only from
/// the thread that feeds it, and that thread sleeps inside libzstd while it waits for the oldest
/// job's output. A worker that finishes meanwhile has nothing to do until the feeding thread
/// wakes: on 2 cores shared with the walsender, a fifth of the CPU stayed idle. Here a finished
/// worker takes the next queued piece itself. The pieces are what libzstd's jobs were (1 MiB, no
/// overlap, a 1 MiB window): the same compression, the same memory — `workers + 2` pieces in
/// flight, each with its input and output. Each piece at the level `ZstdPieceLevels` chooses for
/// it: the one named, or with none named, zstd's default — level 1 for pieces of random-looking
/// bytes on which it does as well.
public final class ParallelZstdCompressor: ByteStage {
    static let pieceSizeLog = 20
    static let pieceSize = 1 << pieceSizeLog
    private let next: ByteStage
    private let pool: ZstdPiecePool
    /// The slot being filled, and how much of it is.
    private var filling = 0
    private var filled = 0
    /// The oldest slot whose piece is not written yet, and how many are in flight.
    private var oldest = 0
    private var inFlight = 0
    private var submittedAny = false
    private let ownsPool: Bool

    /// `level` nil: zstd's default, with random-looking pieces at level 1 (`ZstdPieceLevels`).
    public init(level: Int?, workers: Int, next: ByteStage) throws {
        self.next = next
        pool = try Self.makePool(level: level, workers: workers)
        ownsPool = true
    }

    /// A stream on a pool kept by the caller for one stream after another (`SegmentCompressor`):
    /// no threads, contexts or buffers to set up. One stream on a pool at a time.
    init(pool: ZstdPiecePool, next: ByteStage) {
        self.next = next
        self.pool = pool
        ownsPool = false
    }

    static func makePool(level: Int?, workers: Int) throws -> ZstdPiecePool {
        try ZstdPiecePool(levels: ZstdPieceLevels(named: level), workers: max(1, workers), slots: max(1, workers) + 2, pieceSize: pieceSize)
    }

    deinit {
        // A stream given up midway (an error, a partial WAL segment) leaves pieces with the
        // workers: wait for them, so the pool's slots are free for the next stream.
        while inFlight > 0 { _ = try? pool.output(takeOldest()) }
        if ownsPool { pool.stop() }
    }

    public func consume(_ bytes: UnsafeRawBufferPointer) throws {
        var rest = bytes
        while !rest.isEmpty {
            let take = min(rest.count, Self.pieceSize - filled)
            (pool.input(filling) + filled).copyMemory(from: rest.baseAddress!, byteCount: take)
            filled += take
            rest = UnsafeRawBufferPointer(rebasing: rest[take...])
            if filled == Self.pieceSize { try submit() }
        }
    }

    public func finish() throws {
        // An empty input still becomes one (empty) frame: a valid stream, as libzstd writes.
        if filled > 0 || !submittedAny { try submit() }
        while inFlight > 0 { try writeOldest() }
        try next.finish()
    }

    private func submit() throws {
        pool.enqueue(slot: filling, count: filled)
        submittedAny = true
        inFlight += 1
        filled = 0
        filling = (filling + 1) % pool.slotCount
        // Every slot in flight: the one to fill next is the oldest, whose frame goes out first.
        if inFlight == pool.slotCount { try writeOldest() }
    }

    private func writeOldest() throws {
        try next.consume(try pool.output(takeOldest()))
    }

    /// The oldest slot in flight, taken off the books before its output is waited for: `output`
    /// consumes the worker's signal even when it then throws, and a stage given up after an error
    /// must not wait for that signal again.
    private func takeOldest() -> Int {
        let slot = oldest
        oldest = (oldest + 1) % pool.slotCount
        inFlight -= 1
        return slot
    }
}

/// The slots (input and output buffers) and the worker threads of a `ParallelZstdCompressor`.
/// The threads hold the pool: it lives until the last of them has stopped.
final class ZstdPiecePool: @unchecked Sendable {
    // @unchecked: a slot's buffers belong to the filling thread until enqueued, then to one worker
    // until it signals the slot's semaphore; the queue and the results are behind the mutex.
    let slotCount: Int
    private let workers: Int
    private let levels: ZstdPieceLevels
    private let pieceSizeLog: Int32
    private let inputs: [UnsafeMutableRawPointer]
    private let outputs: [UnsafeMutableRawPointer]
    private let outputCapacity: Int
    private let done: [DispatchSemaphore]
    private let queued = DispatchSemaphore(value: 0)
    private let state: Mutex<(queue: [(slot: Int, count: Int)], sizes: [Int])>

    init(levels: ZstdPieceLevels, workers: Int, slots: Int, pieceSize: Int) throws {
        self.slotCount = slots
        self.workers = workers
        self.levels = levels
        self.pieceSizeLog = Int32(pieceSize.trailingZeroBitCount)
        outputCapacity = ZSTD_compressBound(pieceSize)
        inputs = (0..<slots).map { _ in UnsafeMutableRawPointer.allocate(byteCount: pieceSize, alignment: 64) }
        outputs = (0..<slots).map { [outputCapacity] _ in UnsafeMutableRawPointer.allocate(byteCount: outputCapacity, alignment: 64) }
        done = (0..<slots).map { _ in DispatchSemaphore(value: 0) }
        state = Mutex(([], Array(repeating: 0, count: slots)))
        for started in 0..<workers {
            do {
                try OSThread.detach(name: "pgkeep-zstd") { [self] in work() }
            } catch {
                // Fewer workers if the system refuses a thread; none is an error.
                if started == 0 { throw CodecError.setupFailed("zstd: no compression thread: \(error)") }
                break
            }
        }
    }

    deinit {
        for buffer in inputs + outputs { buffer.deallocate() }
    }

    /// A piece's size when its worker had no compression context (libzstd could not allocate one).
    /// libzstd's error codes are negative as Int too, but small.
    private static let noContext = Int.min

    func input(_ slot: Int) -> UnsafeMutableRawPointer { inputs[slot] }

    func enqueue(slot: Int, count: Int) {
        state.withLock { $0.queue.append((slot, count)) }
        queued.signal()
    }

    /// The slot's frame, once its worker is done. Throws libzstd's error.
    func output(_ slot: Int) throws -> UnsafeRawBufferPointer {
        done[slot].wait()
        let size = state.withLock { $0.sizes[slot] }
        if size == Self.noContext { throw CodecError.setupFailed("ZSTD_createCCtx failed") }
        if ZSTD_isError(size) != 0 { throw CodecError.compressionFailed("zstd: " + String(cString: ZSTD_getErrorName(size))) }
        return UnsafeRawBufferPointer(start: outputs[slot], count: size)
    }

    /// Ends the workers once the queue is empty: a wake-up that finds nothing queued is a stop.
    func stop() {
        for _ in 0..<workers { queued.signal() }
    }

    private func work() {
        let context = ZSTD_createCCtx()
        defer { ZSTD_freeCCtx(context) }
        var level: Int32? = nil  // the context's own default: no level set on it yet
        if let context {
            // No match reaches outside its piece: a window larger than the piece only costs memory.
            // (A level set later leaves a window set here as it is.)
            _ = ZSTD_CCtx_setParameter(context, ZSTD_c_windowLog, pieceSizeLog)
        }
        while true {
            queued.wait()
            guard let job = state.withLock({ $0.queue.isEmpty ? nil : $0.queue.removeFirst() }) else { return }
            let size = context.map { compress(slot: job.slot, count: job.count, in: $0, level: &level) } ?? Self.noContext
            state.withLock { $0.sizes[job.slot] = size }
            done[job.slot].signal()
        }
    }

    /// Compresses the slot's piece into its output at the level `levels` chooses for it; `level`
    /// is the one the context is set to (nil: none set yet), kept so that it is set only when it
    /// changes.
    private func compress(slot: Int, count: Int, in context: OpaquePointer, level: inout Int32?) -> Int {
        let piece = UnsafeRawBufferPointer(start: inputs[slot], count: count)
        func frame(_ bytes: UnsafeRawBufferPointer, at wanted: Int32) -> Int {
            if wanted != level {
                let set = ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, wanted)
                if ZSTD_isError(set) != 0 { return set }
                level = wanted
            }
            return ZSTD_compress2(context, outputs[slot], outputCapacity, bytes.baseAddress, bytes.count)
        }
        var chosen = levels.level
        if let fast = levels.fastLevel, PieceSample.looksRandom(piece) {
            // The trials write into the slot's output, which the piece's own frame then replaces.
            let trial = PieceSample.trial(of: piece)
            let fastSize = frame(trial, at: fast), levelSize = frame(trial, at: levels.level)
            if ZSTD_isError(fastSize) == 0, ZSTD_isError(levelSize) == 0,
               PieceSample.fastLevelDoesAsWell(fastSize: fastSize, levelSize: levelSize) {
                chosen = fast
            }
        }
        return frame(piece, at: chosen)
    }
}
