import Testing
import PGWire

/// The few text helpers that replaced Foundation's (String(format:), trimmingCharacters, padding).
@Suite struct TextTests {
    @Test func trimsWhiteSpaceAtBothEnds() {
        #expect("  17.2\n".trimmed == "17.2")
        #expect("\t\n ".trimmed == "")
        #expect("a b".trimmed == "a b")
    }

    @Test func zeroPadsLikePrintf() {
        #expect(7.zeroPadded(3) == "007")
        #expect(2026.zeroPadded(2) == "2026", "never cut")
        #expect((-5).zeroPadded(3) == "-005")
        #expect(UInt32(0x1f).hexPadded(4) == "001f")
    }

    @Test func roundsDecimalsLikePrintf() {
        #expect(2.25.decimal(places: 1) == "2.2", "ties to even, as %.1f")
        #expect(2.35.decimal(places: 1) == "2.4" || 2.35.decimal(places: 1) == "2.3")
        #expect(0.04.decimal(places: 1) == "0.0")
        #expect(1536.0.decimal(places: 1) == "1536.0")
        #expect((-1.25).decimal(places: 1) == "-1.2")
        #expect(3.14159.decimal(places: 0) == "3")
        #expect(0.5.decimal(places: 3) == "0.500")
    }

    @Test func padsColumnsWithoutCutting() {
        #expect("id".padded(to: 5) == "id   ")
        #expect("longer".padded(to: 3) == "longer")
    }
}
