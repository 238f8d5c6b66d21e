import Glibc
import FoundationEssentials
import PGWire

/// The timestamp forms people give recovery_target_time, read well enough to check a target
/// against the WAL's commit times (PostgreSQL's own parser accepts more; what this cannot read is
/// left to it): `YYYY-MM-DD HH:MM:SS[.fraction]` (or with a `T`), then a zone — `Z`, `+HH`,
/// `+HH:MM`, `+HHMM`, ` UTC` or ` GMT` — as psql, backup_label and ISO 8601 write them.
public enum PostgresTime {
    /// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 00:00:00 UTC).
    static let epochOffset: Int64 = 946_684_800 * 1_000_000

    public static func parse(_ text: String) -> Date? {
        var scanner = Scanner(Array(text.utf8))
        scanner.skipSpaces()
        guard let year = scanner.number(digits: 4), scanner.take("-"), let month = scanner.number(digits: 2),
              scanner.take("-"), let day = scanner.number(digits: 2), scanner.take(" ") || scanner.take("T"),
              let hour = scanner.number(digits: 2), scanner.take(":"), let minute = scanner.number(digits: 2),
              scanner.take(":"), let second = scanner.number(digits: 2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var fraction = 0.0
        if scanner.take(".") {
            var scale = 0.1, any = false
            while let digit = scanner.digit() { fraction += Double(digit) * scale; scale /= 10; any = true }
            guard any else { return nil }
        }
        guard let offset = scanner.zoneOffsetSeconds() else { return nil }
        scanner.skipSpaces()
        guard scanner.atEnd else { return nil }
        var fields = tm()
        fields.tm_year = Int32(year - 1900)
        fields.tm_mon = Int32(month - 1)
        fields.tm_mday = Int32(day)
        fields.tm_hour = Int32(hour)
        fields.tm_min = Int32(minute)
        fields.tm_sec = Int32(second)
        let seconds = timegm(&fields)
        guard fields.tm_mday == Int32(day) else { return nil } // 31 February rolls over: not a date
        return Date(timeIntervalSince1970: Double(seconds - offset) + fraction)
    }

    /// `YYYY-MM-DD HH:MM:SS.ffffff+00`, as PostgreSQL prints a timestamptz in UTC.
    public static func describe(_ microseconds: Int64) -> String {
        let unix = microseconds + epochOffset
        var seconds = time_t(unix >= 0 ? unix / 1_000_000 : (unix - 999_999) / 1_000_000)
        let fraction = unix - Int64(seconds) * 1_000_000
        var fields = tm()
        gmtime_r(&seconds, &fields)
        return "\((fields.tm_year + 1900).zeroPadded(4))-\((fields.tm_mon + 1).zeroPadded(2))-\((fields.tm_mday).zeroPadded(2)) "
            + "\((fields.tm_hour).zeroPadded(2)):\((fields.tm_min).zeroPadded(2)):\((fields.tm_sec).zeroPadded(2)).\((fraction).zeroPadded(6))+00"
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { index == bytes.count }

        mutating func take(_ character: Unicode.Scalar) -> Bool {
            guard index < bytes.count, bytes[index] == UInt8(character.value) else { return false }
            index += 1
            return true
        }

        mutating func take(_ word: String) -> Bool {
            let word = Array(word.utf8)
            guard bytes.count - index >= word.count, Array(bytes[index..<index + word.count]) == word else { return false }
            index += word.count
            return true
        }

        mutating func skipSpaces() { while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 { index += 1 } }

        mutating func digit() -> Int? {
            guard index < bytes.count, (0x30...0x39).contains(bytes[index]) else { return nil }
            defer { index += 1 }
            return Int(bytes[index] - 0x30)
        }

        mutating func number(digits: Int) -> Int? {
            var value = 0
            for _ in 0..<digits {
                guard let digit = digit() else { return nil }
                value = value * 10 + digit
            }
            return value
        }

        /// Seconds east of UTC; nil when no zone is given (the check needs one) or it is malformed.
        mutating func zoneOffsetSeconds() -> Int? {
            if take("Z") || take(" UTC") || take(" GMT") || take("UTC") { return 0 }
            let sign: Int
            if take("+") { sign = 1 } else if take("-") { sign = -1 } else { return nil }
            guard let hours = number(digits: 2), hours <= 15 else { return nil }
            var minutes = 0
            if take(":") {
                guard let value = number(digits: 2) else { return nil }
                minutes = value
            } else if let value = number(digits: 2) {
                minutes = value
            }
            guard minutes < 60 else { return nil }
            return sign * (hours * 3600 + minutes * 60)
        }
    }
}

extension Date {
    /// This time as PostgreSQL's TimestampTz (microseconds since 2000-01-01 UTC).
    var postgresMicroseconds: Int64 { Int64((timeIntervalSince1970 * 1e6).rounded()) - PostgresTime.epochOffset }
}
