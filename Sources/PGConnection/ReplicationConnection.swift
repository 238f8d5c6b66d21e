#if canImport(Glibc)
import Glibc
#endif
import CLibPQ
import PGWire

/// One libpq connection, confined to the thread that made it (it is deliberately not Sendable).
/// It turns every PGresult into plain values before anyone else sees it, and hands CopyData to a
/// closure as a borrowed slice of libpq's buffer, freed as soon as the closure returns.
public final class ReplicationConnection {
    private let conn: OpaquePointer
    public let serverVersion: ServerVersion
    private let notices: NoticeCollector

    /// Connects. `onNotice` sees every notice as it arrives (on this connection's thread);
    /// `isCancelled` is polled while connecting (a host that does not answer can take long).
    ///
    /// The attempt runs non-blocking with libpq's verbose error format, so that a refusal
    /// carries the server's SQLSTATE whatever language the server and the client speak: libpq
    /// keeps the fields of a startup-time ErrorResponse to itself, and only the verbose message
    /// has the code. `connect_timeout` (or PGCONNECT_TIMEOUT) is honoured per host, as libpq does.
    public init(_ parameters: ConnectionParameters, mode: ConnectionParameters.Mode,
                onNotice: @escaping (ServerNotice) -> Void = { _ in },
                isCancelled: () -> Bool = { false }) throws(ConnectionError) {
        let pairs = parameters.keywordValues(mode: mode)
        let started: OpaquePointer? = withCStringArray(pairs.map(\.0)) { keywords in
            withCStringArray(pairs.map(\.1)) { values in PQconnectStartParams(keywords, values, 1) }
        }
        guard let connection = started else { throw .connectFailed(ConnectFailure(message: "out of memory")) }
        if PQstatus(connection) != CONNECTION_BAD {
            PQsetErrorVerbosity(connection, PQERRORS_VERBOSE)
            do { try Self.completeConnection(connection, isCancelled: isCancelled) } catch {
                PQfinish(connection)
                throw error
            }
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let (sqlState, display) = ConnectFailure.parseVerbose(Self.trimmed(PQerrorMessage(connection)))
            let failure = ConnectFailure(message: display, sqlState: sqlState,
                                         passwordNeeded: PQconnectionNeedsPassword(connection) == 1,
                                         passwordUsed: PQconnectionUsedPassword(connection) == 1)
            PQfinish(connection)
            throw .connectFailed(failure)
        }
        PQsetErrorVerbosity(connection, PQERRORS_DEFAULT)
        conn = connection
        serverVersion = ServerVersion(number: Int(PQserverVersion(connection)))
        notices = NoticeCollector(onNotice)
        PQsetNoticeReceiver(connection, { context, result in
            guard let context, let result else { return }
            Unmanaged<NoticeCollector>.fromOpaque(context).takeUnretainedValue().receive(result)
        }, Unmanaged.passUnretained(notices).toOpaque())
    }

    /// Drives PQconnectPoll to the end, waiting on the socket in short slices so cancellation is
    /// seen, and giving each host `connect_timeout` seconds (libpq's blocking connect does that
    /// itself; with PQconnectPoll it is the caller's job).
    private static func completeConnection(_ connection: OpaquePointer, isCancelled: () -> Bool) throws(ConnectionError) {
        let timeout = connectTimeout(connection)
        var state = PGRES_POLLING_WRITING
        var host = currentHost(connection)
        var deadline = timeout.map { monotonicNow() + $0 }
        while state != PGRES_POLLING_OK && state != PGRES_POLLING_FAILED {
            var descriptor = pollfd(fd: PQsocket(connection), events: Int16(state == PGRES_POLLING_READING ? POLLIN : POLLOUT), revents: 0)
            let ready = poll(&descriptor, 1, 200)
            if ready < 0 && errno != EINTR { throw .connectFailed(ConnectFailure(message: "poll failed: errno \(errno)")) }
            if isCancelled() { throw .cancelled }
            if ready <= 0 {
                if let limit = deadline, monotonicNow() > limit {
                    throw .connectFailed(ConnectFailure(message: "timeout expired after \(timeout!) s connecting to \(host)"))
                }
                continue
            }
            state = PQconnectPoll(connection)
            let now = currentHost(connection)
            if now != host { host = now; deadline = timeout.map { monotonicNow() + $0 } }
        }
    }

    /// connect_timeout as libpq reads it (conninfo, PGCONNECT_TIMEOUT); nil for none. Values
    /// below 2 s are raised to 2, as libpq does.
    private static func connectTimeout(_ connection: OpaquePointer) -> Int? {
        guard let options = PQconninfo(connection) else { return nil }
        defer { PQconninfoFree(options) }
        var option = options
        while let keyword = option.pointee.keyword {
            if String(cString: keyword) == "connect_timeout", let value = option.pointee.val, let seconds = Int(String(cString: value)), seconds > 0 {
                return max(seconds, 2)
            }
            option += 1
        }
        return nil
    }

    private static func currentHost(_ connection: OpaquePointer) -> String {
        (PQhost(connection).map { String(cString: $0) } ?? "") + ":" + (PQport(connection).map { String(cString: $0) } ?? "")
    }

    private static func monotonicNow() -> Int {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return spec.tv_sec
    }

    deinit { PQfinish(conn) }

    /// The server's host and port as libpq resolved them, for messages (no secrets).
    public var endpoint: String {
        let host = PQhost(conn).map { String(cString: $0) } ?? "?"
        let port = PQport(conn).map { String(cString: $0) } ?? "?"
        return host.hasPrefix("/") ? "socket \(host)/.s.PGSQL.\(port)" : "\(host):\(port)"
    }

    public var user: String { PQuser(conn).map { String(cString: $0) } ?? "" }

    /// Connected through a Unix socket or to this machine's loopback address.
    public var isLocal: Bool {
        let host = PQhost(conn).map { String(cString: $0) } ?? ""
        return host.hasPrefix("/") || host == "localhost" || host.hasPrefix("127.") || host == "::1"
    }

    // MARK: Simple queries

    /// Runs one command to completion and returns its rows (none for a command without rows).
    public func query(_ text: String) throws(ConnectionError) -> [[String?]] {
        do {
            try send(text)
            var rows: [[String?]] = []
            while let event = try nextResult() {
                switch event {
                case .rows(let result): rows = result
                case .commandOK: continue
                case .copyOut, .copyBoth, .copyIn: throw ConnectionError.protocolViolation("a COPY in answer to \(text.prefix(40))")
                }
            }
            return rows
        } catch let error as ConnectionError {
            throw error
        } catch {
            throw .lost("\(error)")
        }
    }

    public func run(_ command: ReplicationCommand) throws(ConnectionError) -> [[String?]] {
        try query(command.text(for: serverVersion))
    }

    public func identifySystem() throws(ConnectionError) -> IdentifySystem {
        let rows = try run(.identifySystem)
        guard rows.count == 1 else { throw .protocolViolation("IDENTIFY_SYSTEM returned \(rows.count) rows") }
        do { return try IdentifySystem(row: rows[0]) } catch { throw .protocolViolation(error.description) }
    }

    /// A setting's value via SHOW (allowed on replication connections).
    public func show(_ setting: String) throws(ConnectionError) -> String {
        let rows = try run(.show(setting: setting))
        guard let value = rows.first?.first ?? nil else { throw .protocolViolation("SHOW \(setting) returned nothing") }
        return value
    }

    // MARK: Asynchronous command flow

    public func send(_ text: String) throws {
        guard PQsendQuery(conn, text) == 1 else { throw ConnectionError.lost(errorMessage) }
    }

    /// The next result of the command in flight, or nil when it is complete. Blocks.
    /// An ErrorResponse is thrown as `.server`, after draining the remaining results.
    public func nextResult() throws -> ResultEvent? {
        guard let result = PQgetResult(conn) else { return nil }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK:
            let rowCount = PQntuples(result), columnCount = PQnfields(result)
            var rows: [[String?]] = []
            rows.reserveCapacity(Int(rowCount))
            for row in 0..<rowCount {
                rows.append((0..<columnCount).map { column in
                    PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
                })
            }
            return .rows(rows)
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY: return .commandOK
        case PGRES_COPY_OUT: return .copyOut
        case PGRES_COPY_BOTH: return .copyBoth
        case PGRES_COPY_IN: return .copyIn
        default:
            let error = Self.serverError(result) ?? ServerError(severity: "ERROR", sqlState: "", message: errorMessage)
            while let rest = PQgetResult(conn) { PQclear(rest) }
            if error.sqlState.isEmpty && PQstatus(conn) != CONNECTION_OK { throw ConnectionError.lost(error.message) }
            throw ConnectionError.server(error)
        }
    }

    // MARK: COPY

    /// Reads one CopyData message and passes it to `body` as a borrowed slice; libpq's buffer is
    /// freed when `body` returns. With `wait` false, returns `.wouldBlock` instead of blocking
    /// (call `waitForInput` then try again).
    public func readCopyData(wait: Bool, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> CopyRead {
        var buffer: UnsafeMutablePointer<CChar>? = nil
        var length = PQgetCopyData(conn, &buffer, wait ? 0 : 1)
        if length == 0 {
            // Nothing whole in libpq's buffer: read what the socket has, and look again before
            // saying "would block" (else a message completed by this read waits for the next poll).
            guard PQconsumeInput(conn) == 1 else { throw ConnectionError.lost(errorMessage) }
            length = PQgetCopyData(conn, &buffer, 1)
        }
        if length > 0, let buffer {
            defer { PQfreemem(buffer) }
            try body(UnsafeRawBufferPointer(start: buffer, count: Int(length)))
            return .message
        }
        switch length {
        case 0:
            return .wouldBlock
        case -1: return .copyDone
        default: throw ConnectionError.lost(errorMessage)
        }
    }

    /// Waits until the socket is readable or `milliseconds` pass; true when input arrived.
    /// Reading it is left to `readCopyData`, which consumes input whenever libpq has no whole
    /// message: consuming here too cost one empty recv(2) per wake-up (measured: half of the
    /// archiver's recv calls returned EAGAIN).
    public func waitForInput(milliseconds: Int32) throws -> Bool {
        var descriptor = pollfd(fd: PQsocket(conn), events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, milliseconds)
        if ready < 0 && errno != EINTR { throw ConnectionError.lost("poll failed: errno \(errno)") }
        return ready > 0
    }

    public func sendCopyData(_ bytes: [UInt8]) throws(ConnectionError) {
        let sent = bytes.withUnsafeBufferPointer { PQputCopyData(conn, UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), Int32($0.count)) }
        guard sent == 1, PQflush(conn) == 0 else { throw .lost(errorMessage) }
    }

    /// Sends CopyDone (ending our side of a COPY BOTH).
    public func endCopy() throws(ConnectionError) {
        guard PQputCopyEnd(conn, nil) == 1, PQflush(conn) == 0 else { throw .lost(errorMessage) }
    }

    /// UPLOAD_MANIFEST (17+): sends an earlier backup's manifest for an incremental BASE_BACKUP on
    /// this same connection, in 64 KiB CopyData messages.
    public func uploadManifest(_ chunks: (_ send: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        try send("UPLOAD_MANIFEST")
        guard case .copyIn? = try nextResult() else { throw ConnectionError.protocolViolation("UPLOAD_MANIFEST did not start a COPY") }
        try chunks { bytes in
            let sent = PQputCopyData(conn, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
            guard sent == 1 else { throw ConnectionError.lost(errorMessage) }
        }
        guard PQputCopyEnd(conn, nil) == 1, PQflush(conn) == 0 else { throw ConnectionError.lost(errorMessage) }
        while let event = try nextResult() {
            guard event == .commandOK else { throw ConnectionError.protocolViolation("UPLOAD_MANIFEST answered with \(event)") }
        }
    }

    // MARK: Connection facts

    /// The connection options libpq used, for primary_conninfo (`-R`): as pg_basebackup writes
    /// them, without the replication and database options and without empty values — and
    /// without those still at libpq's built-in default. The standby's server parses the string
    /// with its *own* libpq, which may be older than ours and refuse a keyword it does not know
    /// (a PostgreSQL 16 server rejects 17's `sslnegotiation=postgres`); a default value says
    /// nothing the standby's libpq would not assume anyway.
    public func optionsForStandby() -> [(String, String)] {
        guard let options = PQconninfo(conn) else { return [] }
        defer { PQconninfoFree(options) }
        var builtIn: [String: String] = [:]
        if let defaults = PQconndefaults() {
            var option = defaults
            while let keyword = option.pointee.keyword {
                let key = String(cString: keyword)
                if let compiled = option.pointee.compiled { builtIn[key] = String(cString: compiled) }
                option += 1
            }
            PQconninfoFree(defaults)
        }
        // libpq's implicit passfile is ~/.pgpass of whoever takes the backup: meaningless to the
        // standby's server (an explicit PGPASSFILE or passfile= is kept).
        if let home = getenv("HOME") { builtIn["passfile"] = String(cString: home) + "/.pgpass" }
        var pairs: [(String, String)] = []
        var option = options
        while let keyword = option.pointee.keyword {
            let key = String(cString: keyword)
            if let value = option.pointee.val, value.pointee != 0,
               !["replication", "dbname", "fallback_application_name"].contains(key) {
                let text = String(cString: value)
                let essential = ["host", "hostaddr", "port", "user", "password"].contains(key)
                if essential || builtIn[key] != text { pairs.append((key, text)) }
            }
            option += 1
        }
        return pairs
    }

    /// A conninfo string that reaches this server again later (a repository records it): the
    /// options as for a standby, never the password (libpq finds it in ~/.pgpass or PGPASSWORD),
    /// plus the database when one was named.
    public func reusableConnectionString(databaseName: String?) -> String {
        var pairs = optionsForStandby().filter { $0.0 != "password" }
        if let databaseName { pairs.append(("dbname", databaseName)) }
        return pairs.map { "\($0.0)=\(ConnectionParameters.conninfoValue($0.1))" }.joined(separator: " ")
    }

    public func collectedNotices() -> [ServerNotice] { notices.all }

    private var errorMessage: String { Self.trimmed(PQerrorMessage(conn)) }

    private static func trimmed(_ text: UnsafePointer<CChar>?) -> String {
        guard let text else { return "unknown libpq error" }
        var message = String(cString: text)
        while message.last == "\n" || message.last == " " { message.removeLast() }
        return message
    }

    static func serverError(_ result: OpaquePointer) -> ServerError? {
        func field(_ code: Character) -> String? {
            PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
        }
        guard let message = field("M") else { return nil }
        return ServerError(severity: field("V") ?? field("S") ?? "ERROR", localizedSeverity: field("S"), sqlState: field("C") ?? "",
                           message: message, detail: field("D"), hint: field("H"))
    }
}

/// Receives notices from libpq's callback (on the connection's thread) and keeps them.
final class NoticeCollector {
    private(set) var all: [ServerNotice] = []
    private let forward: (ServerNotice) -> Void
    init(_ forward: @escaping (ServerNotice) -> Void) { self.forward = forward }

    func receive(_ result: OpaquePointer) {
        guard let error = ReplicationConnection.serverError(result) else { return }
        let notice = ServerNotice(severity: error.severity, localizedSeverity: error.localizedSeverity, sqlState: error.sqlState,
                                  message: error.message, detail: error.detail)
        all.append(notice)
        forward(notice)
    }
}

/// Calls `body` with a NULL-terminated C array of C strings.
private func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let duplicated = strings.map { strdup($0) }
    defer { duplicated.forEach { free($0) } }
    var pointers: [UnsafePointer<CChar>?] = duplicated.map { UnsafePointer($0) }
    pointers.append(nil)
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
