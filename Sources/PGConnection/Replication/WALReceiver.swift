#if canImport(Glibc)
import Glibc
#endif
import PGWire
import WAL

/// Receives WAL over START_REPLICATION … PHYSICAL into a WALSink: the loop that performs what
/// `WALStreamStateMachine` decides. Every protocol rule (gap check, segment splits, what may be
/// reported flushed, when to report, how the stream ends) is the machine's; this class reads the
/// connection, feeds events in, and does the I/O of each action in one switch.
///
/// Runs on the connection's thread and blocks it. One receiver streams one timeline; `backup -X
/// stream` and `receive-wal` both drive it.
public final class WALReceiver {
    public typealias Outcome = WALStreamOutcome
    public typealias Options = WALStreamStateMachine.Options
    public typealias Progress = WALStreamStateMachine.Progress

    private let connection: ReplicationStream
    private let sink: WALSink
    private let options: Options
    private let onProgress: (Progress) -> Void
    private var machine: WALStreamStateMachine

    /// How long WAL may gather after a wake-up when not synchronous: at most 200 wake-ups a second.
    static let gatherMicroseconds: useconds_t = 5_000

    public init(connection: ReplicationStream, sink: WALSink, segmentSize: WALSegmentSize, timeline: TimelineID,
                options: Options = Options(), onProgress: @escaping (Progress) -> Void = { _ in }) {
        self.connection = connection
        self.sink = sink
        self.options = options
        self.onProgress = onProgress
        machine = WALStreamStateMachine(segmentSize: segmentSize, timeline: timeline, options: options)
    }

    /// Streams from the segment holding `start` until `stopPosition()` names a position we have
    /// reached, the server ends the stream or the timeline, or `cancelled()` (then throws).
    public func stream(from start: LSN, slot: SlotName?, stopPosition: () -> LSN?,
                       cancelled: () -> Bool) throws -> Outcome {
        if let outcome = try perform(machine.start(from: start, now: Self.now()), slot: slot) { return outcome }
        var stopGiven: LSN?
        // Until the COPY starts (or the server answers with the next timeline and no COPY).
        starting: while true {
            switch try connection.nextResult() {
            case .copyBoth: _ = try machine.copyBothStarted(); break starting
            case .rows(let rows): _ = try machine.rowsReceived(rows)
            case .commandOK: continue
            case nil: if let outcome = try perform(machine.resultsEnded(), slot: slot) { return outcome }
            case .copyOut, .copyIn: throw WireError.unexpectedEvent("START_REPLICATION answered with a plain COPY")
            }
        }
        // The COPY. `behind`: the server's last message said it has WAL beyond what it sent.
        var behind = false
        copying: while true {
            let read = try connection.readCopyData(wait: false) { bytes in
                let action: WALStreamStateMachine.Action
                switch try ReplicationMessage.decode(bytes) {
                case .xlogData(let walStart, let serverEnd, _, let data):
                    behind = serverEnd.rawValue > walStart.rawValue &+ UInt64(data.count)
                    action = try machine.xlogDataReceived(walStart: walStart, serverWALEnd: serverEnd, data: data, now: Self.now())
                case .primaryKeepalive(let serverEnd, _, let replyRequested):
                    action = try machine.keepaliveReceived(serverWALEnd: serverEnd, replyRequested: replyRequested, now: Self.now())
                }
                _ = try perform(action, slot: slot)
            }
            switch read {
            case .message:
                break
            case .wouldBlock:
                if cancelled() { throw WALStreamError("WAL streaming cancelled") }
                _ = try perform(machine.idle(now: Self.now()), slot: slot)
                onProgress(machine.progress)
                let ready = try connection.waitForInput(milliseconds: 100)
                // Unless synchronous, nothing is reported per write: let WAL gather for a moment
                // after a wake-up rather than waking for each commit's few hundred bytes (under
                // pgbench -c 8, thousands of wake-ups a second, most of the archiver's CPU). Not
                // while catching up: the server has more, and each pause would cap the rate at a
                // socket buffer per 5 ms (40 MB/s, measured on a differential's WAL).
                if ready && !options.synchronous && !behind { usleep(Self.gatherMicroseconds) }
            case .copyDone:
                _ = try perform(machine.copyDoneReceived(), slot: slot)
                break copying
            }
            if let stop = stopPosition(), stop != stopGiven {
                stopGiven = stop
                _ = try perform(machine.stopRequested(at: stop), slot: slot)
            }
        }
        // After the COPY: COPY IN (end ours), the next-timeline row, CommandComplete.
        do {
            while let event = try connection.nextResult() {
                switch event {
                case .copyIn: _ = try perform(machine.copyInReceived(), slot: slot)
                case .rows(let rows): _ = try machine.rowsReceived(rows)
                case .commandOK, .copyBoth, .copyOut: _ = machine.commandCompleted()
                }
            }
        } catch ConnectionError.lost(let message) {
            guard let action = machine.connectionLost() else { throw ConnectionError.lost(message) }
            return try perform(action, slot: slot)!
        }
        return try perform(machine.resultsEnded(), slot: slot)!
    }

    /// Performs `action` and those that follow it, until the machine waits for input (nil) or
    /// the stream is finished (its outcome).
    private func perform(_ first: WALStreamStateMachine.Action, slot: SlotName?) throws -> Outcome? {
        var action = first
        while true {
            switch action {
            case .wait:
                return nil
            case .finished(let outcome):
                onProgress(machine.progress)
                return outcome
            case .startReplication(let start):
                try connection.send(ReplicationCommand.startPhysicalReplication(slot: slot, start: start, timeline: machine.timeline)
                    .text(for: connection.serverVersion))
            case .openSegment(let segment):
                try sink.openSegment(named: machine.segmentSize.fileName(segment: segment, timeline: machine.timeline))
            case .write(let bytes, let offset):
                try sink.write(bytes, at: offset)
            case .closeSegment(let complete):
                try sink.closeSegment(complete: complete)
            case .syncSegment:
                try sink.syncSegment()
            case .sendStatus(let written, let flushed):
                let now = Self.now()
                let update = StandbyStatusUpdate(written: written, flushed: flushed, applied: .zero,
                                                 clock: now - StandbyStatusUpdate.postgresEpochOffset * 1_000_000)
                try connection.sendCopyData(update.encoded())
            case .endCopy:
                try connection.endCopy()
            }
            let completed = action
            action = machine.actionCompleted()
            // Observers hear on every completed segment and once per burst, not per message.
            if case .closeSegment(complete: true) = completed { onProgress(machine.progress) }
        }
    }

    /// Microseconds since the Unix epoch.
    static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000
    }
}
