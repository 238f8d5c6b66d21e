/// The other replication commands pgkeep sends, rendered per server version.
public enum ReplicationCommand: Hashable, Sendable {
    case identifySystem
    case show(setting: String)
    case createPhysicalSlot(SlotName, temporary: Bool, reserveWAL: Bool)
    case dropSlot(SlotName, wait: Bool)
    case readReplicationSlot(SlotName)
    case startPhysicalReplication(slot: SlotName?, start: LSN, timeline: TimelineID)
    case timelineHistory(TimelineID)

    public func text(for version: ServerVersion) -> String {
        switch self {
        case .identifySystem:
            return "IDENTIFY_SYSTEM"
        case .show(let setting):
            return "SHOW \(setting)"
        case .createPhysicalSlot(let slot, let temporary, let reserveWAL):
            var text = "CREATE_REPLICATION_SLOT \(slot.quoted)\(temporary ? " TEMPORARY" : "") PHYSICAL"
            if reserveWAL { text += version.usesParenthesizedOptions ? " (RESERVE_WAL)" : " RESERVE_WAL" }
            return text
        case .dropSlot(let slot, let wait):
            return "DROP_REPLICATION_SLOT \(slot.quoted)\(wait ? " WAIT" : "")"
        case .readReplicationSlot(let slot):
            return "READ_REPLICATION_SLOT \(slot.quoted)"
        case .startPhysicalReplication(let slot, let start, let timeline):
            let slotPart = slot.map { "SLOT \($0.quoted) " } ?? ""
            return "START_REPLICATION \(slotPart)PHYSICAL \(start) TIMELINE \(timeline)"
        case .timelineHistory(let timeline):
            return "TIMELINE_HISTORY \(timeline)"
        }
    }
}

/// A replication slot name: lower-case letters, digits and underscores, at most 63 bytes, as the
/// server requires (ReplicationSlotValidateName). Validated once so commands never need escaping.
public struct SlotName: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init?(_ text: String) {
        guard !text.isEmpty, text.utf8.count <= 63,
              text.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F })
        else { return nil }
        rawValue = text
    }
    public var description: String { rawValue }
    var quoted: String { "\"\(rawValue)\"" }
}
