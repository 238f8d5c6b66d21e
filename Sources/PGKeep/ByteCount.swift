/// Sizes as people read them: "512 B", "1.5 kB", "12.0 GB" (1024-based, one decimal).
public enum ByteCount {
    public static func describe(_ bytes: UInt64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(bytes), unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        guard unit > 0 else { return "\(bytes) B" }
        // Rounded as printf's %.1f rounds: to nearest, ties to even.
        let tenths = Int((value * 10).rounded(.toNearestOrEven))
        return "\(tenths / 10).\(tenths % 10) \(units[unit])"
    }
}
