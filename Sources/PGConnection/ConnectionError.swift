/// An ErrorResponse's fields, as PQresultErrorField gives them. `sqlState` is what callers decide
/// by: `message`, `detail` and `hint` are in the server's language (lc_messages), for people.
public struct ServerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Severity as the server names it in English (ERROR, FATAL, WARNING; the non-localised
    /// field), whatever its lc_messages.
    public var severity: String
    /// The severity in the server's language, as PostgreSQL's tools print it.
    public var localizedSeverity: String
    public var sqlState: String
    public var message: String
    public var detail: String?
    public var hint: String?

    public init(severity: String, localizedSeverity: String? = nil, sqlState: String, message: String, detail: String? = nil,
                hint: String? = nil) {
        self.severity = severity
        self.localizedSeverity = localizedSeverity ?? severity
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
    }

    /// The SQLSTATE's class: its first two characters ("08" connection exception, "28"
    /// authorization, "57" operator intervention, …).
    public var sqlStateClass: Substring { sqlState.prefix(2) }

    public var description: String {
        var text = "server \(severity.lowercased()): \(message)"
        if let detail { text += "\nDETAIL: \(detail)" }
        if let hint { text += "\nHINT: \(hint)" }
        return text
    }
}

/// Why a connection attempt failed, in the terms libpq gives: its message (client-side words are
/// in the client's language), the server's SQLSTATE when the server refused us, and whether a
/// password was wanted or used. Never holds the password.
public struct ConnectFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    /// The SQLSTATE of the server's refusal (28P01 bad password, 28000 no pg_hba entry, 42501
    /// no REPLICATION, 53300 no free slot, 57P03 starting up, …); nil when no server answered.
    public var sqlState: String?
    /// The server asked for a password and none was available (PQconnectionNeedsPassword).
    public var passwordNeeded: Bool
    /// A password was sent (PQconnectionUsedPassword).
    public var passwordUsed: Bool

    public init(message: String, sqlState: String? = nil, passwordNeeded: Bool = false, passwordUsed: Bool = false) {
        self.message = message
        self.sqlState = sqlState
        self.passwordNeeded = passwordNeeded
        self.passwordUsed = passwordUsed
    }

    public var description: String { message }

    /// Splits a message libpq formatted with PQERRORS_VERBOSE into the SQLSTATE of its last
    /// server error ("FATAL:  28P01: …") and the text a person should read: the code and the
    /// source-location lines removed. Severity words and labels are localised, so nothing here
    /// depends on them: the code is the 5-character token after the first ":  " of a line, and a
    /// location line is the one ending in "<file>.c:<line>".
    public static func parseVerbose(_ text: String) -> (sqlState: String?, display: String) {
        var sqlState: String?
        var lines: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if isLocationLine(line) { continue }
            var kept = String(line)
            if let range = kept.firstRange(of: ":  ") {
                let after = kept[range.upperBound...]
                let code = after.prefix(5)
                if code.count == 5, code.utf8.allSatisfy(isCodeCharacter), after.dropFirst(5).hasPrefix(": ") {
                    sqlState = String(code)
                    kept.removeSubrange(range.upperBound..<after.index(after.startIndex, offsetBy: 7))
                }
            }
            lines.append(kept)
        }
        var display = lines.joined(separator: "\n")
        while display.last == "\n" || display.last == " " { display.removeLast() }
        return (sqlState, display)
    }

    private static func isCodeCharacter(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A)
    }

    /// "LOCATION:  auth_failed, auth.c:326" (the label is translated; the rest is not).
    private static func isLocationLine(_ line: Substring) -> Bool {
        guard let colon = line.lastIndex(of: ":"), line[line.index(after: colon)...].allSatisfy(\.isNumber),
              colon != line.endIndex, line.index(after: colon) != line.endIndex else { return false }
        return line[..<colon].hasSuffix(".c") && line.contains(", ")
    }
}

public enum ConnectionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// libpq could not connect or authenticate.
    case connectFailed(ConnectFailure)
    /// The server raised an error (an ErrorResponse) on an established connection.
    case server(ServerError)
    /// The connection broke without an error from the server (server gone, network, desync).
    case lost(String)
    /// The server answered with something the protocol does not allow here.
    case protocolViolation(String)
    /// Connecting was given up because the caller cancelled.
    case cancelled

    public var description: String {
        switch self {
        case .connectFailed(let failure): "could not connect to the server: \(failure.message)"
        case .server(let error): error.description
        case .lost(let message): "connection to the server lost: \(message)"
        case .protocolViolation(let message): "unexpected answer from the server: \(message)"
        case .cancelled: "cancelled while connecting"
        }
    }
}
