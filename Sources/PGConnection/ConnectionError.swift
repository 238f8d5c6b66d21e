/// An ErrorResponse's fields, as PQresultErrorField gives them.
public struct ServerError: Error, Equatable, Sendable, CustomStringConvertible {
    public var severity: String
    public var sqlState: String
    public var message: String
    public var detail: String?
    public var hint: String?

    public init(severity: String, sqlState: String, message: String, detail: String? = nil, hint: String? = nil) {
        self.severity = severity
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
    }

    public var description: String {
        var text = "server \(severity.lowercased()): \(message)"
        if let detail { text += "\nDETAIL: \(detail)" }
        if let hint { text += "\nHINT: \(hint)" }
        return text
    }
}

public enum ConnectionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// libpq could not connect or authenticate; `message` is libpq's (never holds the password).
    case connectFailed(message: String, passwordNeeded: Bool)
    case server(ServerError)
    /// The connection broke (server gone, network, protocol desync).
    case lost(String)
    case unsupportedServer(String)

    public var description: String {
        switch self {
        case .connectFailed(let message, _): "could not connect to the server: \(message)"
        case .server(let error): error.description
        case .lost(let message): "connection to the server lost: \(message)"
        case .unsupportedServer(let message): message
        }
    }
}
