import PGWire

/// What the BASE_BACKUP driver needs from a connection. A live ReplicationConnection is one; a
/// recording of one (`RecordedStream`) is another, so the real driver, router and sinks can be
/// run on a stream captured from a real server, or on a hand-made hostile one, without a server.
public protocol CommandStream: AnyObject {
    var serverVersion: ServerVersion { get }
    func send(_ text: String) throws
    func nextResult() throws -> ResultEvent?
    func readCopyData(wait: Bool, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> CopyRead
    func waitForInput(milliseconds: Int32) throws -> Bool
}

/// A result as the protocol layer cares about it.
public enum ResultEvent: Equatable, Sendable {
    case rows([[String?]])
    case copyOut
    case copyBoth
    /// COPY BOTH after the server's CopyDone: only our side is still open (send CopyDone).
    case copyIn
    case commandOK
}

/// What a CopyData read found.
public enum CopyRead: Equatable, Sendable {
    case message
    case copyDone
    /// Non-blocking read: nothing complete yet.
    case wouldBlock
}

/// A CommandStream that can also talk back during COPY BOTH (START_REPLICATION): status updates
/// and CopyDone. What the WAL receiver needs.
public protocol ReplicationStream: CommandStream {
    func sendCopyData(_ bytes: [UInt8]) throws(ConnectionError)
    func endCopy() throws(ConnectionError)
}

extension ReplicationConnection: ReplicationStream {}
