/// The client side of BASE_BACKUP as a value: feed it what the connection received, in order, and
/// it says what to do next. It does no I/O. One path serves every version; the two layouts differ
/// only in how archives and the manifest are delimited:
///
/// - 14: one CopyOutResponse per tablespace (in the order of the tablespace list), then one more
///   carrying the manifest when it was requested. An archive ends when its COPY ends.
/// - 15+: a single CopyOutResponse. 'n' starts an archive (ending the previous one), 'm' starts
///   the manifest, 'p' reports progress; the COPY ends after the manifest (or the last archive).
///
/// The backup is good only once the end-position result and CommandComplete have both arrived:
/// an ErrorResponse may come at any point before that, including mid-stream.
public struct BaseBackupStateMachine {
    public enum Action: Equatable {
        case startPositionKnown(LSN, TimelineID)
        case tablespacesKnown([BackupTablespace])
        /// Start a new archive; `finishPrevious` when one is still open and ends here.
        case startArchive(ArchiveStart, finishPrevious: Bool)
        case forwardArchiveData(UnsafeRawBufferPointer)
        case startManifest(finishPreviousArchive: Bool)
        case forwardManifestData(UnsafeRawBufferPointer)
        case progress(UInt64)
        case finishArchive
        case finishManifest
        /// A CopyData needing no action.
        case wait
        case endPositionKnown(LSN, TimelineID)
        case done

        public static func == (lhs: Action, rhs: Action) -> Bool {
            switch (lhs, rhs) {
            case let (.startPositionKnown(a, b), .startPositionKnown(c, d)): a == c && b == d
            case let (.tablespacesKnown(a), .tablespacesKnown(b)): a == b
            case let (.startArchive(a, b), .startArchive(c, d)): a == c && b == d
            case let (.forwardArchiveData(a), .forwardArchiveData(b)): a.elementsEqual(b)
            case let (.startManifest(a), .startManifest(b)): a == b
            case let (.forwardManifestData(a), .forwardManifestData(b)): a.elementsEqual(b)
            case let (.progress(a), .progress(b)): a == b
            case (.finishArchive, .finishArchive), (.finishManifest, .finishManifest), (.wait, .wait), (.done, .done): true
            case let (.endPositionKnown(a, b), .endPositionKnown(c, d)): a == c && b == d
            default: false
            }
        }
    }

    public struct ArchiveStart: Hashable, Sendable {
        /// As the server names it (15+) or as pg_basebackup names it (14): "base.tar", "<oid>.tar", plus a
        /// compression suffix under server compression. Not yet validated: the caller must.
        public var name: String
        /// The tablespace this archive holds; nil location for the main data directory.
        public var tablespaceLocation: String?

        public init(name: String, tablespaceLocation: String?) {
            self.name = name
            self.tablespaceLocation = tablespaceLocation
        }
    }

    private enum State {
        case awaitingStartPosition
        case awaitingTablespaces
        /// Between COPYs (14), or before the single COPY (15+). `nextArchive` indexes the tablespace list.
        case awaitingCopy(nextArchive: Int)
        case inArchive(index: Int)
        /// 15+: inside the single COPY, before the first 'n' or after one archive.
        case inCopyStream(archiveOpen: Bool)
        case inManifest
        case awaitingEndPosition
        case awaitingCommandComplete
        case finished
    }

    private let version: ServerVersion
    private let manifestRequested: Bool
    private var state: State = .awaitingStartPosition
    private var tablespaces: [BackupTablespace] = []

    public init(version: ServerVersion, manifestRequested: Bool) {
        self.version = version
        self.manifestRequested = manifestRequested
    }

    public var isFinished: Bool { if case .finished = state { true } else { false } }

    public mutating func resultSetReceived(_ rows: [[String?]]) throws(WireError) -> Action {
        switch state {
        case .awaitingStartPosition:
            let (lsn, tli) = try Self.position(rows, what: "start position")
            state = .awaitingTablespaces
            return .startPositionKnown(lsn, tli)
        case .awaitingTablespaces:
            var list: [BackupTablespace] = []
            for row in rows { list.append(try BackupTablespace(row: row)) }
            guard list.filter(\.isMainDirectory).count == 1 else {
                throw .unexpectedResult("tablespace list without exactly one main data directory row")
            }
            tablespaces = list
            state = .awaitingCopy(nextArchive: 0)
            return .tablespacesKnown(list)
        case .awaitingEndPosition, .awaitingCopy:
            // On 14 the end position follows the last COPY; an early one means archives are missing.
            if case .awaitingCopy(let next) = state, next < expectedCopies {
                throw .unexpectedEvent("end position after \(next) of \(expectedCopies) archive streams")
            }
            let (lsn, tli) = try Self.position(rows, what: "end position")
            state = .awaitingCommandComplete
            return .endPositionKnown(lsn, tli)
        default:
            throw .unexpectedEvent("result set received in state \(state)")
        }
    }

    public mutating func copyOutStarted() throws(WireError) -> Action {
        guard case .awaitingCopy(let next) = state else { throw .unexpectedEvent("COPY started in state \(state)") }
        if version.sendsSingleCopyStream {
            guard next == 0 else { throw .unexpectedEvent("second COPY stream from a 15+ server") }
            state = .inCopyStream(archiveOpen: false)
            return .wait
        }
        if next < tablespaces.count {
            state = .inArchive(index: next)
            let tablespace = tablespaces[next]
            return .startArchive(ArchiveStart(name: tablespace.archiveName, tablespaceLocation: tablespace.location),
                                 finishPrevious: false)
        }
        guard manifestRequested, next == tablespaces.count else {
            throw .unexpectedEvent("more COPY streams than tablespaces")
        }
        state = .inManifest
        return .startManifest(finishPreviousArchive: false)
    }

    public mutating func copyDataReceived(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> Action {
        switch state {
        case .inArchive:
            return .forwardArchiveData(bytes)
        case .inManifest:
            if version.sendsSingleCopyStream {
                // After 'm', the manifest arrives as 'd' messages.
                guard case .data(let payload) = try ArchiveStreamMessage.decode(bytes) else {
                    throw .unexpectedEvent("non-data message after the manifest started")
                }
                return .forwardManifestData(payload)
            }
            return .forwardManifestData(bytes)
        case .inCopyStream(let archiveOpen):
            switch try ArchiveStreamMessage.decode(bytes) {
            case .newArchive(let name, let location):
                state = .inCopyStream(archiveOpen: true)
                return .startArchive(ArchiveStart(name: name, tablespaceLocation: location), finishPrevious: archiveOpen)
            case .data(let payload):
                guard archiveOpen else { throw .unexpectedEvent("archive data before any archive started") }
                return .forwardArchiveData(payload)
            case .progress(let done):
                return .progress(done)
            case .manifestFollows:
                state = .inManifest
                return .startManifest(finishPreviousArchive: archiveOpen)
            }
        default:
            throw .unexpectedEvent("CopyData received in state \(state)")
        }
    }

    public mutating func copyDoneReceived() throws(WireError) -> Action {
        switch state {
        case .inArchive(let index):
            state = .awaitingCopy(nextArchive: index + 1)
            return .finishArchive
        case .inManifest:
            state = version.sendsSingleCopyStream ? .awaitingEndPosition : .awaitingCopy(nextArchive: tablespaces.count + 1)
            return .finishManifest
        case .inCopyStream(let archiveOpen):
            guard !manifestRequested else { throw .unexpectedEvent("COPY ended before the manifest") }
            state = .awaitingEndPosition
            return archiveOpen ? .finishArchive : .wait
        default:
            throw .unexpectedEvent("COPY ended in state \(state)")
        }
    }

    public mutating func commandCompleted() throws(WireError) -> Action {
        switch state {
        case .awaitingCommandComplete:
            state = .finished
            return .done
        case .awaitingCopy, .awaitingEndPosition:
            // libpq reports the end of each COPY as its own PGRES_COMMAND_OK.
            return .wait
        default:
            throw .unexpectedEvent("CommandComplete in state \(state)")
        }
    }

    private var expectedCopies: Int { tablespaces.count + (manifestRequested ? 1 : 0) }

    private static func position(_ rows: [[String?]], what: String) throws(WireError) -> (LSN, TimelineID) {
        guard rows.count == 1, rows[0].count >= 2, let lsnText = rows[0][0], let lsn = LSN(lsnText),
              let tliText = rows[0][1], let tli = TimelineID(tliText)
        else { throw .unexpectedResult("\(what) is not one row of (LSN, timeline)") }
        return (lsn, tli)
    }
}
