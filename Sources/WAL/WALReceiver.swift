#if canImport(Glibc)
import Glibc
#endif
import PGWire
import PGConnection

/// Receives WAL over START_REPLICATION … PHYSICAL into a WALSink: checks every XLogData continues
/// exactly where the last one ended, splits data at segment boundaries, closes (fsyncs) each
/// segment as it fills, and reports as flushed only what is durable.
///
/// Runs on the connection's thread and blocks it. One receiver streams one timeline; `backup -X
/// stream` and `receive-wal` both drive it.
public final class WALReceiver {
    public enum EndReason: Equatable, Sendable {
        /// We reached the stop position and ended the stream.
        case reachedStopPosition
        /// The server ended the timeline; streaming continues on `nextTimeline` from `at`.
        case timelineEnded(nextTimeline: TimelineID, at: LSN)
        /// The server closed the stream (shutdown).
        case serverClosed
    }

    public struct Outcome: Equatable, Sendable {
        public var reason: EndReason
        /// Everything before this is written and durable.
        public var position: LSN
        public var segmentsCompleted: Int
        /// Segments written at all: the completed ones plus a partly filled last one.
        public var segmentsWritten: Int
    }

    public struct Options: Sendable {
        /// How often to tell the server where we are when nothing else prompts it.
        public var statusIntervalSeconds: Int = 10
        /// Make every write durable and report it flushed as soon as the server has nothing more
        /// to send (a synchronous standby); otherwise only whole segments are reported flushed.
        public var synchronous = false
        public init(statusIntervalSeconds: Int = 10, synchronous: Bool = false) {
            self.statusIntervalSeconds = statusIntervalSeconds
            self.synchronous = synchronous
        }
    }

    /// Positions for an observer (metrics, logs): what we have, what is durable, what the server has.
    public struct Progress: Equatable, Sendable {
        public var received: LSN
        public var flushed: LSN
        public var serverEnd: LSN
    }

    private let connection: ReplicationStream
    private let sink: WALSink
    private let segmentSize: WALSegmentSize
    private let timeline: TimelineID
    private let options: Options
    private let onProgress: (Progress) -> Void
    private var position = LSN.zero
    private var flushed = LSN.zero
    private var serverEnd = LSN.zero
    private var segmentOpen = false
    private var segmentsCompleted = 0
    private var segmentsWritten = 0
    private var lastStatus: Int64 = 0

    public init(connection: ReplicationStream, sink: WALSink, segmentSize: WALSegmentSize, timeline: TimelineID,
                options: Options = Options(), onProgress: @escaping (Progress) -> Void = { _ in }) {
        self.connection = connection
        self.sink = sink
        self.segmentSize = segmentSize
        self.timeline = timeline
        self.options = options
        self.onProgress = onProgress
    }

    /// Streams from the segment holding `start` until `stopPosition()` names a position we have
    /// reached, the server ends the stream or the timeline, or `cancelled()` (then throws).
    /// Always restarts at a segment's beginning, so a segment file is only ever written whole.
    public func stream(from start: LSN, slot: SlotName?, stopPosition: () -> LSN?,
                       cancelled: () -> Bool) throws -> Outcome {
        position = segmentSize.segmentStart(of: start)
        flushed = position
        try connection.send(ReplicationCommand.startPhysicalReplication(slot: slot, start: position, timeline: timeline)
            .text(for: connection.serverVersion))
        switch try connection.nextResult() {
        case .copyBoth:
            break
        case .rows(let rows):
            // Asked for a timeline exactly where it ends, the server sends no COPY at all, only
            // the next timeline (pg_receivewal loops here when it restarts at a switch boundary).
            guard let next = Self.nextTimeline(rows) else { throw WALStreamError("START_REPLICATION answered with an unexpected row") }
            while try connection.nextResult() != nil {}
            return outcome(.timelineEnded(nextTimeline: next.timeline, at: next.start))
        default:
            throw WALStreamError("START_REPLICATION did not start streaming")
        }

        var stopping = false
        while true {
            let read = try connection.readCopyData(wait: false) { bytes in
                if !stopping { try handle(bytes) }
            }
            switch read {
            case .message:
                break
            case .wouldBlock:
                if cancelled() { throw WALStreamError("WAL streaming cancelled") }
                if options.synchronous, !stopping, position > flushed { try syncAndReport() }
                reportProgress()
                try sendStatusIfDue()
                _ = try connection.waitForInput(milliseconds: 100)
            case .copyDone:
                return try finishStream(stopping: stopping)
            }
            if !stopping, let stop = stopPosition(), position >= stop {
                try closeSegmentIfOpen(complete: false)
                try sendStatus(replyRequested: false)
                try connection.endCopy()
                stopping = true
            }
        }
    }

    private func handle(_ bytes: UnsafeRawBufferPointer) throws {
        switch try ReplicationMessage.decode(bytes) {
        case .xlogData(let walStart, let end, _, let data):
            guard walStart == position else {
                throw WALStreamError("WAL gap: expected data at \(position), server sent \(walStart)")
            }
            serverEnd = max(serverEnd, end)
            try write(data)
        case .primaryKeepalive(let end, _, let replyRequested):
            serverEnd = max(serverEnd, end)
            if replyRequested {
                // The server asks when it must know what we hold: at shutdown a walsender waits
                // until our *flush* position reaches its end of WAL. So make the partial segment
                // durable and say so (as pg_receivewal does), or a fast shutdown never finishes.
                if segmentOpen && position > flushed {
                    try sink.syncSegment()
                    flushed = position
                }
                try sendStatus(replyRequested: false)
            }
        }
    }

    /// Observers hear once per burst (when the server has nothing more for now) and on every
    /// completed segment, not per message: under load that is thousands of calls a second fewer.
    private func reportProgress() {
        onProgress(Progress(received: position, flushed: flushed, serverEnd: max(serverEnd, position)))
    }

    private func write(_ data: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < data.count {
            if !segmentOpen {
                try sink.openSegment(named: segmentSize.fileName(segment: segmentSize.segmentNumber(of: position), timeline: timeline))
                segmentOpen = true
                segmentsWritten += 1
            }
            let inSegment = segmentSize.offset(of: position)
            let take = Int(min(UInt64(data.count - offset), segmentSize.bytes - inSegment))
            try sink.write(UnsafeRawBufferPointer(rebasing: data[offset..<offset + take]), at: inSegment)
            offset += take
            position = position + UInt64(take)
            if segmentSize.offset(of: position) == 0 {
                try sink.closeSegment(complete: true)
                segmentOpen = false
                segmentsCompleted += 1
                flushed = position
                // Tell the server at once: a slot then releases the segment, and lag stays honest.
                try sendStatus(replyRequested: false)
                reportProgress()
            }
        }
    }

    private func syncAndReport() throws {
        if segmentOpen { try sink.syncSegment() }
        flushed = position
        try sendStatus(replyRequested: false)
    }

    private func closeSegmentIfOpen(complete: Bool) throws {
        guard segmentOpen else { return }
        try sink.closeSegment(complete: complete)
        segmentOpen = false
        flushed = position
    }

    /// After the COPY ends: the server may send a result set naming the next timeline, then
    /// CommandComplete.
    private func finishStream(stopping: Bool) throws -> Outcome {
        try closeSegmentIfOpen(complete: false)
        var reason: EndReason = stopping ? .reachedStopPosition : .serverClosed
        do {
            while let event = try connection.nextResult() {
                switch event {
                case .copyIn:
                    // The server ended its side first (timeline end, shutdown): end ours.
                    try connection.endCopy()
                case .rows(let rows):
                    if let next = Self.nextTimeline(rows), !stopping { reason = .timelineEnded(nextTimeline: next.timeline, at: next.start) }
                default:
                    continue
                }
            }
        } catch ConnectionError.lost where !stopping {
            // A walsender that shuts down sends CopyDone and exits without a CommandComplete:
            // everything up to `position` arrived; the stream simply ended.
            return outcome(.serverClosed)
        }
        return outcome(reason)
    }

    private func outcome(_ reason: EndReason) -> Outcome {
        Outcome(reason: reason, position: position, segmentsCompleted: segmentsCompleted, segmentsWritten: segmentsWritten)
    }

    /// The single row (next_tli, next_tli_startpos) sent after a historic timeline's stream.
    private static func nextTimeline(_ rows: [[String?]]) -> (timeline: TimelineID, start: LSN)? {
        guard let row = rows.first, row.count >= 2, let tliText = row[0], let tli = TimelineID(tliText),
              let lsnText = row[1], let lsn = LSN(lsnText) else { return nil }
        return (tli, lsn)
    }

    private func sendStatusIfDue() throws {
        if Self.now() - lastStatus >= Int64(options.statusIntervalSeconds) * 1_000_000 { try sendStatus(replyRequested: false) }
    }

    private func sendStatus(replyRequested: Bool) throws {
        let now = Self.now()
        lastStatus = now
        let update = StandbyStatusUpdate(written: position, flushed: flushed, applied: .zero,
                                         clock: now - StandbyStatusUpdate.postgresEpochOffset * 1_000_000,
                                         replyRequested: replyRequested)
        try connection.sendCopyData(update.encoded())
    }

    /// Microseconds since the Unix epoch.
    static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000
    }
}

public struct WALStreamError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
