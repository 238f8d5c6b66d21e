import Dispatch
import Synchronization
import PGWire
import WAL
import Sinks

/// Streams a backup's WAL on a second connection, on a thread of its own (libpq blocks, and must
/// stay off Swift's cooperative pool). The connection and the sink live and die on that thread;
/// the owner talks to it only through this object's lock-protected control state.
///
/// Life cycle: `start()` connects and creates the temporary slot (so the server keeps WAL from
/// before the backup's start), `begin(at:)` once BASE_BACKUP names its start position,
/// `requestStop(at:)` once it names the end, then `wait()`. `cancel()` at any point.
public final class WALStreamer: Sendable {
    public struct Configuration: Sendable {
        public var parameters: ConnectionParameters
        /// The slot to stream from; nil with `temporarySlotName` set makes a temporary one.
        public var slot: SlotName?
        public var temporarySlotName: SlotName?
        public var segmentSize: WALSegmentSize
        public var timeline: TimelineID
        public var options: WALStreamStateMachine.Options
        /// Polled while waiting for WAL: a stop asked for from outside (a signal).
        public var isCancelled: @Sendable () -> Bool
        /// Builds the sink on the streaming thread.
        public var makeSink: @Sendable () throws -> WALSink

        public init(parameters: ConnectionParameters, slot: SlotName?, temporarySlotName: SlotName?,
                    segmentSize: WALSegmentSize, timeline: TimelineID, options: WALStreamStateMachine.Options = .init(),
                    isCancelled: @escaping @Sendable () -> Bool = { false },
                    makeSink: @escaping @Sendable () throws -> WALSink) {
            self.parameters = parameters
            self.slot = slot
            self.temporarySlotName = temporarySlotName
            self.segmentSize = segmentSize
            self.timeline = timeline
            self.options = options
            self.isCancelled = isCancelled
            self.makeSink = makeSink
        }
    }

    private struct Control {
        var start: LSN?
        var stop: LSN?
        var cancelled = false
        var connectError: WALStreamError?
        var result: Result<WALReceiver.Outcome, WALStreamError>?
    }

    private let configuration: Configuration
    private let control = Mutex(Control())
    private let connected = DispatchSemaphore(value: 0)
    private let startGiven = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    public init(_ configuration: Configuration) { self.configuration = configuration }

    public func start() throws {
        do { try OSThread.detach(name: "pgkeep-wal") { [self] in run() } } catch {
            throw WALStreamError("WAL streaming: \(error)", underlying: error)
        }
        connected.wait()
        if let error = control.withLock({ $0.connectError }) { throw error }
    }

    public func begin(at start: LSN) {
        control.withLock { $0.start = start }
        startGiven.signal()
    }

    public func requestStop(at end: LSN) { control.withLock { $0.stop = end } }

    public func cancel() {
        control.withLock { $0.cancelled = true }
        startGiven.signal()
    }

    /// Waits for the thread to end; the outcome, or why it failed.
    public func wait() throws -> WALReceiver.Outcome {
        finished.wait()
        finished.signal() // later waits return at once
        switch control.withLock({ $0.result }) {
        case .success(let outcome): return outcome
        case .failure(let error): throw error
        case nil: throw WALStreamError("WAL streaming ended without a result")
        }
    }

    /// Non-nil once the thread has failed: lets the owner stop early instead of finishing the backup.
    public var failure: WALStreamError? {
        if case .failure(let error) = control.withLock({ $0.result }) { return error }
        return nil
    }

    private func run() {
        defer { finished.signal() }
        let connection: ReplicationConnection
        do {
            connection = try ReplicationConnection(configuration.parameters, mode: .physicalReplication,
                                                   isCancelled: configuration.isCancelled)
            if let temporary = configuration.temporarySlotName {
                _ = try connection.run(.createPhysicalSlot(temporary, temporary: true, reserveWAL: true))
            }
        } catch {
            let failure = WALStreamError("WAL streaming connection: \(error)", underlying: error)
            control.withLock { $0.connectError = failure; $0.result = .failure(failure) }
            connected.signal()
            return
        }
        connected.signal()
        startGiven.wait()
        guard let start = control.withLock({ $0.cancelled ? nil : $0.start }) else {
            control.withLock { $0.result = .failure(WALStreamError("WAL streaming cancelled before it began")) }
            return
        }
        do {
            let sink = try configuration.makeSink()
            let receiver = WALReceiver(connection: connection, sink: sink, segmentSize: configuration.segmentSize,
                                       timeline: configuration.timeline, options: configuration.options)
            let outcome = try receiver.stream(from: start, slot: configuration.slot ?? configuration.temporarySlotName,
                                              stopPosition: { control.withLock { $0.stop } },
                                              cancelled: { [configuration] in control.withLock { $0.cancelled } || configuration.isCancelled() })
            guard outcome.reason == .reachedStopPosition else {
                throw WALStreamError("the server ended WAL streaming at \(outcome.position) before the backup's end (\(outcome.reason))")
            }
            try sink.finish()
            control.withLock { $0.result = .success(outcome) }
        } catch let error as WALStreamError {
            control.withLock { $0.result = .failure(error) }
        } catch {
            control.withLock { $0.result = .failure(WALStreamError("\(error)", underlying: error)) }
        }
    }
}
