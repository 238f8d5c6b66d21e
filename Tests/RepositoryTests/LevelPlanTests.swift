import Testing
import PGWire
@testable import Repository

/// What each level means, as a table.
@Suite struct LevelPlanTests {
    static func record(_ id: String, level: BackupRecord.Level = .full, timeline: UInt32 = 1, system: String = "42") -> BackupRecord {
        BackupRecord(id: id, level: level, method: .base, parent: nil, startLSN: "0/2000028", endLSN: "0/2000100", timeline: timeline,
                     startedAt: "", finishedAt: "", consistentAt: "", bytesReceived: 0, bytesStored: 0, walStart: "0/2000000",
                     walEnd: "0/3000000", fallbackReason: nil, serverVersion: "17", systemIdentifier: system)
    }
    static func server(_ major: Int, summarize: Bool = true, timeline: UInt32 = 1) -> LevelPlan.Server {
        .init(version: ServerVersion(major: major), systemIdentifier: "42", timeline: TimelineID(timeline), summarizeWAL: summarize)
    }

    @Test("a full is a full; a differential or incremental with no usable full becomes one, and says why")
    func fallbacks() {
        #expect(LevelPlan.decide(requested: .full, newestFull: nil, server: Self.server(17)) == .init(level: .full, method: .base, parent: nil, fallbackReason: nil))
        let none = LevelPlan.decide(requested: .differential, newestFull: nil, server: Self.server(17))
        #expect(none.level == .full && none.fallbackReason?.contains("no full backup") == true)
        let incremental = LevelPlan.decide(requested: .incremental, newestFull: nil, server: Self.server(15))
        #expect(incremental.level == .full && incremental.fallbackReason != nil)
        let timeline = LevelPlan.decide(requested: .differential, newestFull: Self.record("F1"), server: Self.server(17, timeline: 2))
        #expect(timeline.level == .full && timeline.fallbackReason?.contains("timeline 2") == true)
        let cluster = LevelPlan.decide(requested: .differential, newestFull: Self.record("F1", system: "7"), server: Self.server(17))
        #expect(cluster.level == .full && cluster.fallbackReason?.contains("cluster 7") == true)
    }

    @Test("a differential: the server's incremental backup on 17+ with summaries, else a comparison with the full")
    func differentials() {
        #expect(LevelPlan.decide(requested: .differential, newestFull: Self.record("F1"), server: Self.server(17))
                == .init(level: .differential, method: .incremental, parent: "F1", fallbackReason: nil))
        #expect(LevelPlan.decide(requested: .differential, newestFull: Self.record("F1"), server: Self.server(15))
                == .init(level: .differential, method: .file, parent: "F1", fallbackReason: nil))
        let off = LevelPlan.decide(requested: .differential, newestFull: Self.record("F1"), server: Self.server(18, summarize: false))
        #expect(off.level == .differential && off.method == .file && off.fallbackReason?.contains("summarize_wal is off") == true)
        #expect(LevelPlan.decide(requested: .incremental, newestFull: Self.record("F1"), server: Self.server(16))
                == .init(level: .incremental, method: .wal, parent: nil, fallbackReason: nil))
    }
}
