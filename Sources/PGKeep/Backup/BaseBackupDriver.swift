import PGWire
import PGConnection

/// Runs BASE_BACKUP on a connection: feeds each result and CopyData to the state machine and
/// carries out the actions it returns against the archive router. The only place where
/// protocol events become I/O.
final class BaseBackupDriver {
    struct Positions {
        var start: LSN = .zero
        var end: LSN = .zero
        var timeline = TimelineID(1)
    }

    private let connection: CommandStream
    private let router: ArchiveRouter
    private var progress: ProgressPacer?
    private var machine: BaseBackupStateMachine
    private var positions = Positions()
    private var serverProgressBytes: UInt64 = 0

    /// Hooks for the WAL streamer and for early abort (cancellation, WAL streaming failure).
    var onStart: (LSN, TimelineID) throws -> Void = { _, _ in }
    var onEnd: (LSN) -> Void = { _ in }
    var shouldAbort: () throws -> Void = {}

    init(connection: CommandStream, router: ArchiveRouter, progress: ProgressPacer?, manifestRequested: Bool = true) {
        self.connection = connection
        self.router = router
        self.progress = progress
        self.machine = BaseBackupStateMachine(version: connection.serverVersion, manifestRequested: manifestRequested)
    }

    func run(_ options: BaseBackupOptions) throws -> Positions {
        try connection.send(options.command(for: connection.serverVersion))
        while let event = try connection.nextResult() {
            switch event {
            case .rows(let rows): try perform(machine.resultSetReceived(rows))
            case .commandOK: try perform(machine.commandCompleted())
            case .copyBoth, .copyIn: throw PGKeepError.protocolViolation("COPY BOTH in answer to BASE_BACKUP")
            case .copyOut:
                try perform(machine.copyOutStarted())
                try receiveCopy()
            }
        }
        guard machine.isFinished else { throw PGKeepError.protocolViolation("the server ended BASE_BACKUP before its end position") }
        progress?.update(doneBytes: max(serverProgressBytes, router.statistics.bytesReceived), final: true)
        return positions
    }

    /// Reads CopyData until the COPY ends. Non-blocking with a poll, so cancellation and a
    /// failed WAL stream are noticed within half a second even when the server is quiet
    /// (e.g. during a spread checkpoint).
    private func receiveCopy() throws {
        while true {
            let read = try connection.readCopyData(wait: false) { bytes in try perform(machine.copyDataReceived(bytes)) }
            switch read {
            case .message: continue
            case .copyDone:
                try perform(machine.copyDoneReceived())
                return
            case .wouldBlock:
                try shouldAbort()
                _ = try connection.waitForInput(milliseconds: 500)
            }
        }
    }

    private func perform(_ action: BaseBackupStateMachine.Action) throws {
        switch action {
        case .startPositionKnown(let lsn, let timeline):
            positions.start = lsn
            positions.timeline = timeline
            try onStart(lsn, timeline)
        case .tablespacesKnown(let tablespaces):
            try router.prepare(tablespaces)
            progress?.totalBytes = tablespaces.reduce(0) { $0 + ($1.sizeKB ?? 0) } * 1024
        case .startArchive(let start, let finishPrevious):
            if finishPrevious { try router.finishArchive() }
            try router.startArchive(start)
        case .forwardArchiveData(let bytes):
            try router.archiveData(bytes)
            if !connection.serverVersion.sendsSingleCopyStream { progress?.update(doneBytes: router.statistics.bytesReceived) }
        case .startManifest(let finishPreviousArchive):
            if finishPreviousArchive { try router.finishArchive() }
            try router.startManifest()
        case .forwardManifestData(let bytes):
            try router.manifestData(bytes)
        case .progress(let bytes):
            serverProgressBytes = bytes
            progress?.update(doneBytes: bytes)
        case .finishArchive:
            try router.finishArchive()
        case .finishManifest:
            try router.finishManifest()
        case .endPositionKnown(let lsn, _):
            positions.end = lsn
            onEnd(lsn)
        case .wait, .done:
            break
        }
    }
}
