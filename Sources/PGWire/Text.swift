extension StringProtocol {
    /// Without leading and trailing white space (spaces, tabs, newlines): what a program's one-line
    /// answer or a one-line file is read as. The standard library's own, so no Foundation.
    public var trimmed: String {
        guard let first = firstIndex(where: { !$0.isWhitespace }),
              let last = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[first...last])
    }
}

extension BinaryInteger {
    /// Decimal digits with leading zeros to `width`: `7.zeroPadded(3)` is "007" (printf's `%03d`).
    public func zeroPadded(_ width: Int) -> String {
        let digits = String(self.magnitude)
        let padding = String(repeating: "0", count: Swift.max(0, width - digits.count))
        return (self < 0 ? "-" : "") + padding + digits
    }

    /// Lower-case hexadecimal with leading zeros to `width` (printf's `%0*x`).
    public func hexPadded(_ width: Int) -> String {
        let digits = String(self, radix: 16)
        return String(repeating: "0", count: Swift.max(0, width - digits.count)) + digits
    }
}

extension Double {
    /// Fixed-point with `places` decimals, rounded as printf's `%.*f` rounds (to nearest, ties to
    /// even): `2.25.decimal(places: 1)` is "2.2".
    public func decimal(places: Int) -> String {
        guard isFinite else { return description }
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = (Swift.abs(self) * scale).rounded(.toNearestOrEven)
        guard scaled < 9e18 else { return description }
        let units = UInt64(scaled), factor = UInt64(scale)
        let sign = self < 0 && units > 0 ? "-" : ""
        guard places > 0 else { return sign + String(units) }
        return sign + String(units / factor) + "." + (units % factor).zeroPadded(places)
    }
}

extension String {
    /// Spaces added at the end up to `width` characters (a table's column); never cut.
    public func padded(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
