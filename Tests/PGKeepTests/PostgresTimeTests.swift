import Foundation
import Testing
@testable import PGKeep

/// recovery_target_time as people and PostgreSQL write it, read without Foundation's formatters.
@Suite struct PostgresTimeTests {
    static let noon = 1_764_417_600.0 // 2025-11-29 12:00:00 UTC

    @Test func readsTheFormsPsqlAndBackupLabelWrite() {
        #expect(PostgresTime.parse("2025-11-29 12:00:00+00")?.timeIntervalSince1970 == Self.noon)
        #expect(PostgresTime.parse("2025-11-29 12:00:00 UTC")?.timeIntervalSince1970 == Self.noon, "backup_label's START TIME")
        #expect(PostgresTime.parse("2025-11-29T12:00:00Z")?.timeIntervalSince1970 == Self.noon)
        #expect(PostgresTime.parse("2025-11-29 14:00:00+02:00")?.timeIntervalSince1970 == Self.noon)
        #expect(PostgresTime.parse("2025-11-29 06:30:00-0530")?.timeIntervalSince1970 == Self.noon)
        #expect(PostgresTime.parse("  2025-11-29 12:00:00.25+00 ")?.timeIntervalSince1970 == Self.noon + 0.25)
        #expect(PostgresTime.parse("2025-11-29 12:00:00.123456789+00").map { abs($0.timeIntervalSince1970 - Self.noon - 0.123456789) < 1e-6 } == true)
    }

    @Test func refusesWhatItCannotRead() {
        #expect(PostgresTime.parse("2025-11-29 12:00:00") == nil, "no zone: left to the server")
        #expect(PostgresTime.parse("2025-02-30 12:00:00+00") == nil)
        #expect(PostgresTime.parse("2025-11-29 25:00:00+00") == nil)
        #expect(PostgresTime.parse("yesterday") == nil)
        #expect(PostgresTime.parse("2025-11-29 12:00:00+00 trailing") == nil)
        #expect(PostgresTime.parse("2025-11-29 12:00:00.+00") == nil)
    }

    @Test func describesAsPostgresPrintsUTC() {
        let micros = Int64(Self.noon * 1e6) - PostgresTime.epochOffset + 42
        #expect(PostgresTime.describe(micros) == "2025-11-29 12:00:00.000042+00")
        #expect(PostgresTime.describe(0) == "2000-01-01 00:00:00.000000+00")
        #expect(PostgresTime.describe(-1) == "1999-12-31 23:59:59.999999+00")
        #expect(PostgresTime.parse(PostgresTime.describe(micros))?.postgresMicroseconds == micros)
    }
}
