#if canImport(Glibc)
import Glibc
#endif
import Logging
import PGConnection
import PGWire
import Sinks
import WAL

/// `pgkeep receive-wal`: streams a server's WAL into an archive directory for as long as it runs.
///
/// One session = connect, check the archive belongs to this cluster, find where the archive ends,
/// stream timeline after timeline until stopped or disconnected. Sessions repeat (with backoff)
/// after a lost connection or a server restart; what cannot get better by retrying — another
/// cluster's archive, WAL the server no longer has, a full disk, a gap in the stream — ends the
/// run with an error instead.
public final class WALArchiver {
    public struct Summary: Sendable {
        public var segmentsArchived: Int
        public var position: LSN
        public var timeline: TimelineID?
        public var reason: String
        /// Where the first session began streaming (the archive's end then).
        public var firstStart: LSN?
    }

    private enum SessionEnd {
        case stopped(String)
        case serverClosed
    }

    private let configuration: ReceiveWALConfiguration
    private let logger: Logger
    private let cancellation: CancellationToken
    private let metrics: ArchiverMetrics
    private let archive: WALArchiveDirectory
    private var segmentsArchived = 0
    private var position = LSN.zero
    private var timeline: TimelineID?
    private var firstStart: LSN?

    /// Opens and locks the archive directory.
    public init(configuration: ReceiveWALConfiguration, observer: JobObserver, cancellation: CancellationToken = CancellationToken(),
                metrics: ArchiverMetrics = ArchiverMetrics()) throws(PGKeepError) {
        self.configuration = configuration
        self.logger = observer.logger
        self.cancellation = cancellation
        self.metrics = metrics
        do {
            archive = try WALArchiveDirectory(path: configuration.archiveDirectory)
            try archive.lock()
        } catch let error as WALArchiveDirectory.Locked {
            throw PGKeepError(.busy, "\(error)", hint: "stop the other archiver first; one directory takes one archiver")
        } catch {
            throw PGKeepError.storage("\(error)")
        }
    }

    /// Runs until stopped (signal, `--endpos`), or until a failure retrying cannot fix.
    public func run() throws(PGKeepError) -> Summary {
        var failures = 0
        while true {
            let before = segmentsArchived, positionBefore = position
            let failure: PGKeepError
            do {
                switch try session() {
                case .stopped(let reason):
                    return Summary(segmentsArchived: segmentsArchived, position: position, timeline: timeline, reason: reason, firstStart: firstStart)
                case .serverClosed:
                    failure = .connection("the server ended the WAL stream (shut down or restarted)", hint: nil)
                }
            } catch {
                failure = Self.map(error)
            }
            try retryOrFail(failure, failures: &failures, progressed: position > positionBefore || segmentsArchived > before)
            if cancellation.isCancelled {
                return Summary(segmentsArchived: segmentsArchived, position: position, timeline: timeline, reason: "stopped on request",
                               firstStart: firstStart)
            }
        }
    }

    /// Rethrows what retrying cannot fix; otherwise logs, counts and waits before the next try.
    private func retryOrFail(_ error: PGKeepError, failures: inout Int, progressed: Bool) throws(PGKeepError) {
        metrics.update { $0.connected = false }
        if cancellation.isCancelled { return }
        guard let policy = configuration.reconnect, error.isTransient else { throw error }
        failures = progressed ? 1 : failures + 1
        if let limit = policy.maxAttempts, failures > limit {
            var final = error
            final.code = .connection
            final.message = "giving up after \(limit) reconnection attempts: \(error.message)"
            throw final
        }
        let delay = policy.delay(beforeAttempt: failures)
        logger.warning("\(error); reconnecting in \(Self.seconds(delay)) s (attempt \(failures)\(policy.maxAttempts.map { " of \($0)" } ?? ""))")
        metrics.update { $0.reconnects += 1 }
        var waited = 0.0
        while waited < delay && !cancellation.isCancelled {
            usleep(100_000)
            waited += 0.1
        }
    }

    // MARK: One session

    private func session() throws -> SessionEnd {
        let connection = try ReplicationConnection(configuration.connection, mode: .physicalReplication, onNotice: { [logger] notice in
            logger.warning("\(notice.displayText)", metadata: ["server-notice": "\(notice.sqlState)"])
        }, isCancelled: { [cancellation] in cancellation.isCancelled })
        let version = connection.serverVersion
        guard version.isSupported else {
            throw PGKeepError.unsupportedServer("server version \(version) is not supported: pgkeep needs PostgreSQL \(ServerVersion.minimumSupported.major) or later")
        }
        let system = try connection.identifySystem()
        let setting = try connection.show("wal_segment_size")
        guard let segmentSize = WALSegmentSize(setting: setting) else { throw PGKeepError.protocolViolation("wal_segment_size '\(setting)'") }
        do {
            try archive.checkIdentity(.init(systemIdentifier: system.systemIdentifier, segmentSize: segmentSize), sync: configuration.sync)
        } catch let error as WALArchiveDirectory.IdentityMismatch {
            throw PGKeepError.walArchive(error.description, hint: nil)
        }
        logger.info("connected to PostgreSQL \(version) at \(connection.endpoint), system \(system.systemIdentifier), timeline \(system.timeline), WAL segments of \(segmentSize)")

        var (start, tli) = try startingPoint(connection, system: system, segmentSize: segmentSize)
        if firstStart == nil { firstStart = start }
        metrics.update { $0.connected = true }
        let writer = WALArchiveWriter(directory: archive.path, segmentSize: segmentSize, compression: configuration.compression,
                                      sync: configuration.sync) { [logger, metrics] segment in
            logger.notice("archived \(segment.fileName)", metadata: ["segment": "\(segment.name)", "bytes": "\(segment.bytesOnDisk)"])
            metrics.update { $0.segmentsArchived += 1; $0.bytesArchived += segment.bytesOnDisk }
        }
        while true {
            try ensureHistoryFile(tli, connection: connection)
            timeline = tli
            metrics.update { $0.timeline = tli.rawValue }
            logger.info("streaming timeline \(tli) from \(segmentSize.segmentStart(of: start))")
            let receiver = WALReceiver(connection: connection, sink: writer, segmentSize: segmentSize, timeline: tli,
                                       options: .init(statusIntervalSeconds: configuration.statusIntervalSeconds,
                                                      synchronous: configuration.synchronous)) { [metrics] progress in
                metrics.update { $0.received = progress.received; $0.flushed = progress.flushed; $0.serverEnd = progress.serverEnd }
            }
            let endPosition = configuration.endPosition
            let outcome: WALReceiver.Outcome
            do {
                outcome = try receiver.stream(from: start, slot: configuration.slot,
                                              stopPosition: { cancellation.isCancelled ? LSN.zero : endPosition },
                                              cancelled: { false })
            } catch {
                // Keep what arrived: the open segment stays a (synced) .partial for the next session.
                try? writer.finish()
                throw error
            }
            segmentsArchived += outcome.segmentsCompleted
            position = max(position, outcome.position)
            metrics.update { $0.flushed = outcome.position; $0.received = max($0.received, outcome.position) }
            switch outcome.reason {
            case .reachedStopPosition:
                try writer.finish()
                let why = cancellation.isCancelled ? "stopped on request" : "reached end position \(endPosition.map(\.description) ?? "")"
                logger.info("\(why) at \(outcome.position)")
                return .stopped(why)
            case .timelineEnded(let next, let at):
                logger.notice("timeline \(tli) ended at \(at); following timeline \(next)")
                tli = next
                start = at
            case .serverClosed:
                try writer.finish()
                return .serverClosed
            }
        }
    }

    /// Where the archive ends (the newest segment there), or where the slot stands, or where the
    /// server is now — in that order — and the timeline that position belongs to on the server's
    /// history (a position at or past a timeline's end belongs to the next one).
    private func startingPoint(_ connection: ReplicationConnection, system: IdentifySystem,
                               segmentSize: WALSegmentSize) throws -> (LSN, TimelineID) {
        var slotPosition: (LSN, TimelineID?)?
        if let slot = configuration.slot {
            if connection.serverVersion.supportsReadReplicationSlot {
                let rows = try connection.run(.readReplicationSlot(slot))
                guard let row = rows.first, row.count >= 3, row[0] != nil else {
                    throw PGKeepError.walArchive("replication slot \"\(slot)\" does not exist on the server",
                                                 hint: "create it with: pgkeep receive-wal --slot \(slot) --create-slot")
                }
                if let lsnText = row[1], let lsn = LSN(lsnText) { slotPosition = (lsn, row[2].flatMap { TimelineID($0) }) }
            }
        }
        var start: LSN, tli: TimelineID
        if let resume = try archive.resumePoint(segmentSize: segmentSize) {
            (start, tli) = (resume.start, resume.timeline)
            logger.info("archive ends with \(resume.basedOn): resuming at \(start) on timeline \(tli)")
        } else if let given = configuration.startIfEmpty {
            (start, tli) = (segmentSize.segmentStart(of: given), system.timeline)
            logger.info("empty archive: starting at \(start)")
        } else if let (lsn, slotTimeline) = slotPosition {
            (start, tli) = (segmentSize.segmentStart(of: lsn), slotTimeline ?? system.timeline)
            logger.info("empty archive: starting where slot \(configuration.slot!) stands, \(start)")
        } else {
            (start, tli) = (segmentSize.segmentStart(of: system.walPosition), system.timeline)
            logger.info("empty archive: starting at the server's current WAL segment, \(start)")
        }
        if tli > system.timeline {
            throw PGKeepError.walArchive("the archive holds WAL of timeline \(tli), newer than the server's timeline \(system.timeline)",
                                         hint: "this server is not the one (or not the branch) the archive was following")
        }
        if system.timeline.rawValue > 1 {
            let history = try fetchHistory(system.timeline, connection: connection)
            guard history.includes(tli) else {
                throw PGKeepError.walArchive("the archive's newest WAL is on timeline \(tli), which is not in the history of the server's timeline \(system.timeline)",
                                             hint: "the archive belongs to another branch of this cluster; use a new directory")
            }
            if let end = history.end(of: tli), start >= end {
                let next = history.timeline(containing: start)
                logger.info("\(start) is at or past the end of timeline \(tli) (\(end)): continuing on timeline \(next)")
                tli = next
            }
        }
        if let end = configuration.endPosition, start > end {
            throw PGKeepError.invalidConfiguration("--endpos \(end) is before where the archive ends (\(start))")
        }
        return (start, tli)
    }

    private func fetchHistory(_ tli: TimelineID, connection: ReplicationConnection) throws -> TimelineHistory {
        let rows = try connection.run(.timelineHistory(tli))
        guard let row = rows.first, row.count >= 2, let content = row[1] else {
            throw PGKeepError.protocolViolation("TIMELINE_HISTORY \(tli) returned no file")
        }
        if !archive.hasHistoryFile(tli) {
            try archive.writeHistoryFile(tli, content: Array(content.utf8), sync: configuration.sync)
            logger.notice("archived \(WALFileName.historyFileName(tli))")
        }
        return try TimelineHistory(current: tli, content: content)
    }

    /// Every timeline after the first has a history file; restore needs it to follow the switch.
    private func ensureHistoryFile(_ tli: TimelineID, connection: ReplicationConnection) throws {
        guard tli.rawValue > 1, !archive.hasHistoryFile(tli) else { return }
        _ = try fetchHistory(tli, connection: connection)
    }

    // MARK: Errors

    /// The shared mapping, plus what only an archiver has to say: which WAL is gone for good,
    /// and that a full disk has damaged nothing.
    static func map(_ error: Error) -> PGKeepError {
        switch error {
        case ConnectionError.server(let serverError) where serverError.sqlState == "58P01":
            return PGKeepError(.walArchive, serverError.description, hint: "the server has already removed WAL the archive still needs: the archive has a gap from here; use a replication slot (--slot) so the server keeps WAL while the archiver is away, and take a new base backup",
                               server: serverError)
        case let error as FileSystemError where error.isNoSpace:
            return .storage("\(error)\nnothing archived so far is damaged; free space and start the archiver again: it resumes where the archive ends")
        default:
            return PGKeepError.mapping(error)
        }
    }

    private static func seconds(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}
