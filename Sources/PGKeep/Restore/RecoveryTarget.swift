import PGWire

/// Where point-in-time recovery stops, and what the server does there: PostgreSQL's
/// recovery_target_* settings, one target at most.
public struct RecoveryTarget: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case time(String)
        case lsn(LSN)
        case xid(String)
        case name(String)
        case immediate
    }

    public enum Action: String, Sendable, CaseIterable { case pause, promote, shutdown }

    public var kind: Kind?
    public var action: Action?
    /// A timeline number, or "latest" / "current".
    public var timeline: String?

    public init(kind: Kind? = nil, action: Action? = nil, timeline: String? = nil) {
        self.kind = kind
        self.action = action
        self.timeline = timeline
    }

    /// The lines for postgresql.auto.conf (quoted as PostgreSQL's own config writer does).
    func settings(restoreCommand: String?) -> [String] {
        var lines: [String] = []
        if let restoreCommand { lines.append("restore_command = \(Self.quote(restoreCommand))") }
        switch kind {
        case .time(let time): lines.append("recovery_target_time = \(Self.quote(time))")
        case .lsn(let lsn): lines.append("recovery_target_lsn = '\(lsn)'")
        case .xid(let xid): lines.append("recovery_target_xid = \(Self.quote(xid))")
        case .name(let name): lines.append("recovery_target_name = \(Self.quote(name))")
        case .immediate: lines.append("recovery_target = 'immediate'")
        case nil: break
        }
        if let action { lines.append("recovery_target_action = '\(action.rawValue)'") }
        if let timeline { lines.append("recovery_target_timeline = \(Self.quote(timeline))") }
        return lines
    }

    static func quote(_ value: String) -> String {
        "'" + value.replacing("\\", with: "\\\\").replacing("'", with: "''") + "'"
    }
}
