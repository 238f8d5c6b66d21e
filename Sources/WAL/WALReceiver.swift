#if canImport(Glibc)
import Glibc
#endif
import PGWire
import PGConnection

/// Receives WAL over START_REPLICATION … PHYSICAL into a WALSink: checks every XLogData continues
/// exactly where the last one ended, splits data at segment boundaries, closes (fsyncs) each
/// segment as it fills, and reports as flushed only what is durable.
///
/// Runs on the connection's thread and blocks it. Shared by `backup -X stream`; the continuous
/// archiver builds on the same loop.
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

    private let connection: ReplicationConnection
    private let sink: WALSink
    private let segmentSize: WALSegmentSize
    private let timeline: TimelineID
    private let statusIntervalMicroseconds: Int64
    private var position = LSN.zero
    private var flushed = LSN.zero
    private var segmentOpen = false
    private var segmentsCompleted = 0
    private var segmentsWritten = 0
    private var lastStatus: Int64 = 0

    public init(connection: ReplicationConnection, sink: WALSink, segmentSize: WALSegmentSize,
                timeline: TimelineID, statusIntervalSeconds: Int = 10) {
        self.connection = connection
        self.sink = sink
        self.segmentSize = segmentSize
        self.timeline = timeline
        self.statusIntervalMicroseconds = Int64(statusIntervalSeconds) * 1_000_000
    }

    /// Streams from the segment holding `start` until `stopPosition()` names a position we have
    /// reached, the server ends the stream, or `cancelled()` (then throws).
    public func stream(from start: LSN, slot: SlotName?, stopPosition: () -> LSN?,
                       cancelled: () -> Bool) throws -> Outcome {
        position = segmentSize.segmentStart(of: start)
        flushed = position
        try connection.send(ReplicationCommand.startPhysicalReplication(slot: slot, start: position, timeline: timeline)
            .text(for: connection.serverVersion))
        guard try connection.nextResult() == .copyBoth else { throw WALStreamError("START_REPLICATION did not start streaming") }

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
        case .xlogData(let walStart, _, _, let data):
            guard walStart == position else {
                throw WALStreamError("WAL gap: expected data at \(position), server sent \(walStart)")
            }
            try write(data)
        case .primaryKeepalive(_, _, let replyRequested):
            if replyRequested { try sendStatus(replyRequested: false) }
        }
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
            }
        }
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
        if !stopping { try connection.endCopy() }
        while let event = try connection.nextResult() {
            if case .rows(let rows) = event, let row = rows.first, row.count >= 2,
               let tliText = row[0], let tli = TimelineID(tliText), let lsnText = row[1], let lsn = LSN(lsnText) {
                if !stopping { reason = .timelineEnded(nextTimeline: tli, at: lsn) }
            }
        }
        return Outcome(reason: reason, position: position, segmentsCompleted: segmentsCompleted, segmentsWritten: segmentsWritten)
    }

    private func sendStatusIfDue() throws {
        if Self.now() - lastStatus >= statusIntervalMicroseconds { try sendStatus(replyRequested: false) }
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
