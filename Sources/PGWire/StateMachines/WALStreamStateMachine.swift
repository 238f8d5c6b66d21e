/// The client side of START_REPLICATION … PHYSICAL as a value: what the connection received goes
/// in, what to do next comes out. It does no I/O and keeps no clock of its own (events carry the
/// time). One machine streams one timeline, from the start of the segment holding `start`, so a
/// segment file is only ever written whole.
///
/// The rules it keeps:
/// - every XLogData continues exactly where the last one ended (a gap is refused);
/// - data is split at segment boundaries; a segment is opened when its first byte arrives and
///   closed (made durable by the sink) when its last byte is written;
/// - flush is reported only for what is durable: whole segments, or — synchronous mode, or when
///   the server asks for a reply (it does at shutdown, waiting for our flush position) — the open
///   segment after a sync;
/// - a status update goes out after every completed segment, when the server asks, and otherwise
///   every `statusInterval`;
/// - once the stop position is reached: the open segment is closed as partial, reported, and our
///   side of the COPY ended; what the server still sends is ignored;
/// - after the COPY: a result row names the next timeline (the timeline ended), or nothing does
///   (the server closed the stream); on a timeline asked for exactly at its end the server sends
///   that row without any COPY at all.
///
/// Driving it: an event returns one action; after performing any action but `.wait` and
/// `.finished`, the driver reports `actionCompleted()` and performs what that returns, until
/// `.wait` (read the next input) or `.finished`. A `.write` slice borrows the XLogData buffer
/// passed in: the driver must perform the whole chain before that buffer goes.
public struct WALStreamStateMachine {
    public enum Action: Equatable {
        /// Send START_REPLICATION from this position (a segment start) on the machine's timeline.
        case startReplication(LSN)
        /// Open the file for this segment number (nothing is open).
        case openSegment(UInt64)
        /// Write into the open segment at this offset.
        case write(UnsafeRawBufferPointer, offset: UInt64)
        /// Close the open segment, durably; `complete` when all of it was received.
        case closeSegment(complete: Bool)
        /// Make what was written to the open segment durable.
        case syncSegment
        /// Send a standby status update ('r') with these positions.
        case sendStatus(written: LSN, flushed: LSN)
        /// Send CopyDone (our side of the COPY BOTH).
        case endCopy
        /// Read the next input.
        case wait
        /// The stream is over.
        case finished(WALStreamOutcome)

        public static func == (lhs: Action, rhs: Action) -> Bool {
            switch (lhs, rhs) {
            case let (.startReplication(a), .startReplication(b)): a == b
            case let (.openSegment(a), .openSegment(b)): a == b
            case let (.write(a, x), .write(b, y)): a.elementsEqual(b) && x == y
            case let (.closeSegment(a), .closeSegment(b)): a == b
            case let (.sendStatus(a, x), .sendStatus(b, y)): a == b && x == y
            case (.syncSegment, .syncSegment), (.endCopy, .endCopy), (.wait, .wait): true
            case let (.finished(a), .finished(b)): a == b
            default: false
            }
        }
    }

    public struct Options: Sendable, Equatable {
        /// Microseconds between status updates when nothing else prompts one.
        public var statusInterval: Int64
        /// Sync and report flushed whenever the server pauses (a synchronous standby).
        public var synchronous: Bool
        public init(statusIntervalSeconds: Int = 10, synchronous: Bool = false) {
            statusInterval = Int64(statusIntervalSeconds) * 1_000_000
            self.synchronous = synchronous
        }
    }

    /// Positions for an observer: what we have, what is durable, what the server has.
    public struct Progress: Equatable, Sendable {
        public var received: LSN
        public var flushed: LSN
        public var serverEnd: LSN
    }

    private enum Phase {
        case notStarted
        /// START_REPLICATION sent; waiting for COPY BOTH (or the next-timeline row).
        case starting
        case streaming
        /// The COPY is over; draining the results.
        case copyEnded
        case finished
    }

    /// What the last emitted action was, so `actionCompleted` knows what happened.
    private enum Pending {
        case none, startReplication, openSegment, write(Int), closeSegment(complete: Bool), syncSegment, sendStatus, endCopy
    }

    public let segmentSize: WALSegmentSize
    public let timeline: TimelineID
    private let options: Options
    private var phase = Phase.notStarted
    private var pending = Pending.none

    private var position = LSN.zero
    private var flushed = LSN.zero
    private var serverEnd = LSN.zero
    /// The end of the open segment; nil when none is open.
    private var openSegmentEnd: LSN?
    private var segmentsCompleted = 0
    private var segmentsWritten = 0

    /// The XLogData payload being written, and how much of it is.
    private var data: UnsafeRawBufferPointer?
    private var consumed = 0

    private var stopPosition: LSN?
    private var stopping = false
    private var closePartialOwed = false
    private var syncOwed = false
    private var statusOwed = false
    private var endCopyOwed = false
    private var copyEndedByUs = false
    private var nextTimeline: (TimelineID, LSN)?

    private var now: Int64 = 0
    private var lastStatus: Int64 = 0

    public init(segmentSize: WALSegmentSize, timeline: TimelineID, options: Options = Options()) {
        self.segmentSize = segmentSize
        self.timeline = timeline
        self.options = options
    }

    public var progress: Progress { Progress(received: position, flushed: flushed, serverEnd: max(serverEnd, position)) }

    // MARK: Events

    /// Begin: streaming restarts at the start of the segment holding `start`.
    public mutating func start(from start: LSN, now: Int64) throws(WireError) -> Action {
        guard case .notStarted = phase else { throw .unexpectedEvent("START_REPLICATION twice") }
        self.now = now
        lastStatus = now
        position = segmentSize.segmentStart(of: start)
        flushed = position
        phase = .starting
        return emit(.startReplication, .startReplication(position))
    }

    public mutating func copyBothStarted() throws(WireError) -> Action {
        guard case .starting = phase else { throw .unexpectedEvent("COPY BOTH while \(phase)") }
        phase = .streaming
        return .wait
    }

    /// A result set: before or after the COPY, the one row (next timeline, its start position)
    /// that says the timeline ended.
    public mutating func rowsReceived(_ rows: [[String?]]) throws(WireError) -> Action {
        switch phase {
        case .starting, .copyEnded:
            guard let row = rows.first, rows.count == 1, row.count >= 2, let tli = row[0].flatMap({ TimelineID($0) }),
                  let lsn = row[1].flatMap({ LSN($0) }) else {
                throw .unexpectedResult("START_REPLICATION answered with a result that does not name the next timeline")
            }
            if !stopping { nextTimeline = (tli, lsn) }
            return .wait
        default:
            throw .unexpectedEvent("result set while \(phase)")
        }
    }

    public mutating func xlogDataReceived(walStart: LSN, serverWALEnd: LSN, data payload: UnsafeRawBufferPointer,
                                          now: Int64) throws(WireError) -> Action {
        guard case .streaming = phase, data == nil else { throw .unexpectedEvent("XLogData while \(phase)") }
        self.now = now
        if stopping { return .wait }
        guard walStart == position else { throw .walGap(expected: position, received: walStart) }
        serverEnd = max(serverEnd, serverWALEnd)
        if !payload.isEmpty {
            data = payload
            consumed = 0
        }
        return decide()
    }

    public mutating func keepaliveReceived(serverWALEnd: LSN, replyRequested: Bool, now: Int64) throws(WireError) -> Action {
        guard case .streaming = phase else { throw .unexpectedEvent("keepalive while \(phase)") }
        self.now = now
        if stopping { return .wait }
        serverEnd = max(serverEnd, serverWALEnd)
        if replyRequested {
            // At shutdown a walsender waits until our *flush* position reaches its end of WAL:
            // make the open segment durable and say so, or a fast shutdown never finishes.
            if openSegmentEnd != nil && position > flushed { syncOwed = true }
            statusOwed = true
        }
        return decide()
    }

    /// The server has nothing more for now (a read would block).
    public mutating func idle(now: Int64) -> Action {
        self.now = now
        guard case .streaming = phase, !stopping else { return decide() }
        if options.synchronous && position > flushed {
            if openSegmentEnd != nil { syncOwed = true } else { flushed = position }
            statusOwed = true
        }
        if now - lastStatus >= options.statusInterval { statusOwed = true }
        return decide()
    }

    /// Stop once WAL up to `lsn` has been received (the open segment is kept as partial).
    public mutating func stopRequested(at lsn: LSN) -> Action {
        if stopPosition == nil || lsn < stopPosition! { stopPosition = lsn }
        return decide()
    }

    /// The server's CopyDone: it ended the stream (timeline end or shutdown), or answered ours.
    public mutating func copyDoneReceived() throws(WireError) -> Action {
        guard case .streaming = phase, data == nil else { throw .unexpectedEvent("CopyDone while \(phase)") }
        phase = .copyEnded
        if openSegmentEnd != nil { closePartialOwed = true }
        return decide()
    }

    /// After the server's CopyDone libpq reports COPY IN: only our side is open. End it.
    public mutating func copyInReceived() throws(WireError) -> Action {
        guard case .copyEnded = phase else { throw .unexpectedEvent("COPY IN while \(phase)") }
        if !copyEndedByUs { endCopyOwed = true }
        return decide()
    }

    public mutating func commandCompleted() -> Action { .wait }

    /// No more results: the command is over.
    public mutating func resultsEnded() throws(WireError) -> Action {
        switch phase {
        case .starting:
            guard let (tli, lsn) = nextTimeline else { throw .unexpectedEvent("START_REPLICATION ended without streaming") }
            return finish(.timelineEnded(nextTimeline: tli, at: lsn))
        case .copyEnded:
            if let (tli, lsn) = nextTimeline { return finish(.timelineEnded(nextTimeline: tli, at: lsn)) }
            return finish(stopping ? .reachedStopPosition : .serverClosed)
        default:
            throw .unexpectedEvent("end of results while \(phase)")
        }
    }

    /// The connection broke. A shutting-down walsender sends CopyDone and exits without
    /// CommandComplete: after its CopyDone that is the stream's normal end. Anywhere else it is
    /// a failure: nil, and the driver passes the error on.
    public mutating func connectionLost() -> Action? {
        guard case .copyEnded = phase, !stopping else { return nil }
        return finish(.serverClosed)
    }

    /// The last action was performed; what comes next.
    public mutating func actionCompleted() -> Action {
        switch pending {
        case .none, .startReplication:
            break
        case .openSegment:
            openSegmentEnd = segmentSize.segmentStart(of: position) + segmentSize.bytes
            segmentsWritten += 1
        case .write(let count):
            position = position + UInt64(count)
            consumed += count
            if consumed == data?.count { data = nil }
        case .closeSegment(let complete):
            openSegmentEnd = nil
            flushed = position
            if complete { segmentsCompleted += 1 }
            // Report at once: a slot then releases the segment, and lag stays honest. (After the
            // server's CopyDone there is nobody to tell.)
            if case .streaming = phase { statusOwed = true }
        case .syncSegment:
            flushed = position
        case .sendStatus:
            lastStatus = now
        case .endCopy:
            copyEndedByUs = true
        }
        pending = .none
        return decide()
    }

    // MARK: Deciding

    private mutating func emit(_ kind: Pending, _ action: Action) -> Action {
        pending = kind
        return action
    }

    /// What is owed, in order: finish the segment just filled, make durable what must be, report,
    /// write the rest of the message, then see whether the stop position is reached.
    private mutating func decide() -> Action {
        if let end = openSegmentEnd, position == end { return emit(.closeSegment(complete: true), .closeSegment(complete: true)) }
        if closePartialOwed {
            closePartialOwed = false
            if openSegmentEnd != nil { return emit(.closeSegment(complete: false), .closeSegment(complete: false)) }
        }
        if syncOwed {
            syncOwed = false
            statusOwed = true
            if openSegmentEnd != nil && position > flushed { return emit(.syncSegment, .syncSegment) }
        }
        if statusOwed {
            statusOwed = false
            return emit(.sendStatus, .sendStatus(written: position, flushed: flushed))
        }
        if let data {
            guard openSegmentEnd != nil else { return emit(.openSegment, .openSegment(segmentSize.segmentNumber(of: position))) }
            let take = min(data.count - consumed, Int(openSegmentEnd!.rawValue - position.rawValue))
            return emit(.write(take), .write(UnsafeRawBufferPointer(rebasing: data[consumed..<consumed + take]),
                                             offset: segmentSize.offset(of: position)))
        }
        if case .streaming = phase, !stopping, let stop = stopPosition, position >= stop {
            stopping = true
            closePartialOwed = true
            statusOwed = true
            endCopyOwed = true
            return decide()
        }
        if endCopyOwed {
            endCopyOwed = false
            return emit(.endCopy, .endCopy)
        }
        return .wait
    }

    private mutating func finish(_ reason: WALStreamOutcome.EndReason) -> Action {
        phase = .finished
        return .finished(WALStreamOutcome(reason: reason, position: position, segmentsCompleted: segmentsCompleted,
                                          segmentsWritten: segmentsWritten))
    }
}

/// How a START_REPLICATION stream ended.
public struct WALStreamOutcome: Equatable, Sendable {
    public enum EndReason: Equatable, Sendable {
        /// We reached the stop position and ended the stream.
        case reachedStopPosition
        /// The server ended the timeline; streaming continues on `nextTimeline` from `at`.
        case timelineEnded(nextTimeline: TimelineID, at: LSN)
        /// The server closed the stream (shutdown).
        case serverClosed
    }

    public var reason: EndReason
    /// Everything before this is written and durable.
    public var position: LSN
    public var segmentsCompleted: Int
    /// Segments written at all: the completed ones plus a partly filled last one.
    public var segmentsWritten: Int

    public init(reason: EndReason, position: LSN, segmentsCompleted: Int, segmentsWritten: Int) {
        self.reason = reason
        self.position = position
        self.segmentsCompleted = segmentsCompleted
        self.segmentsWritten = segmentsWritten
    }
}
