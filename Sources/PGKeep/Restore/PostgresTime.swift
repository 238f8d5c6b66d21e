import Foundation

/// The timestamp forms people give recovery_target_time, read well enough to check a target
/// against the WAL's commit times (PostgreSQL's own parser accepts more; what this cannot read is
/// left to it).
public enum PostgresTime {
    /// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 00:00:00 UTC).
    static let epochOffset: Int64 = 946_684_800 * 1_000_000

    public static func parse(_ text: String) -> Date? {
        var value = text.trimmingCharacters(in: .whitespaces)
        if value.hasSuffix(" UTC") || value.hasSuffix(" GMT") { value = String(value.dropLast(4)) + "+00:00" }
        // "+00" / "-05" zones as psql prints them: make them "+00:00".
        if let sign = value.lastIndex(where: { $0 == "+" || $0 == "-" }), value.distance(from: sign, to: value.endIndex) == 3,
           value[value.index(after: sign)...].allSatisfy(\.isNumber) {
            value += ":00"
        }
        let formats = ["yyyy-MM-dd HH:mm:ss.SSSSSSxxx", "yyyy-MM-dd HH:mm:ssxxx", "yyyy-MM-dd'T'HH:mm:ss.SSSSSSxxx",
                       "yyyy-MM-dd'T'HH:mm:ssxxx", "yyyy-MM-dd HH:mm:ss.SSSSSSX", "yyyy-MM-dd HH:mm:ssX"]
        for format in formats {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.dateFormat = format
            if let date = formatter.date(from: value) { return date }
        }
        // Fractions of other lengths: drop them (a second's precision is enough for the check).
        if let dot = value.firstIndex(of: "."), let zone = value[dot...].firstIndex(where: { $0 == "+" || $0 == "-" || $0 == "Z" }) {
            return parse(String(value[..<dot]) + String(value[zone...]))
        }
        return nil
    }

    public static func describe(_ microseconds: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(microseconds + epochOffset) / 1e6)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSSSSS'+00'"
        return formatter.string(from: date)
    }
}

extension Date {
    /// This time as PostgreSQL's TimestampTz (microseconds since 2000-01-01 UTC).
    var postgresMicroseconds: Int64 { Int64((timeIntervalSince1970 * 1e6).rounded()) - PostgresTime.epochOffset }
}
