/// Malformed or unexpected protocol input. Server bytes never trap: they throw this.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncatedMessage(String)
    case unknownMessageType(context: String, byte: UInt8)
    case unexpectedResult(String)
    case unexpectedEvent(String)
    /// XLogData that does not continue where the previous one ended.
    case walGap(expected: LSN, received: LSN)

    public var description: String {
        switch self {
        case .truncatedMessage(let what): "truncated \(what) message from server"
        case .unknownMessageType(let context, let byte):
            "unknown \(context) message type 0x\(String(byte, radix: 16)) from server"
        case .unexpectedResult(let what): "unexpected result from server: \(what)"
        case .unexpectedEvent(let what): "protocol violation: \(what)"
        case .walGap(let expected, let received): "WAL gap: expected data at \(expected), server sent \(received)"
        }
    }
}
