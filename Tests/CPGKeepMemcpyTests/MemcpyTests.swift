import CPGKeepMemcpy
import Glibc
import Testing

/// pgkeep's memcpy/memmove (Sources/CPGKeepMemcpy): linked into this test binary as into pgkeep,
/// so `memcpy` and `memmove` here are the interposed ones. Checked byte for byte against a plain
/// loop, with the page-aliased case (destination 1–63 bytes past the source modulo 4 KiB) that
/// they copy themselves made frequent on purpose.
@Suite struct MemcpyTests {
    @Test("the page-aliased case is exactly: 2 KiB or more, destination 1 to 63 bytes past the source modulo 4 KiB")
    func classification() throws {
        #if arch(x86_64)
        let base = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 4096)
        defer { base.deallocate() }
        for ahead in 0..<4096 {
            let aliased = pgkeep_copy_is_page_aliased(base + 8192 + ahead, base, 32768) != 0
            #expect(aliased == (ahead >= 1 && ahead < 64), "\(ahead) bytes ahead")
        }
        #expect(pgkeep_copy_is_page_aliased(base + 5, base, 2047) == 0)
        #expect(pgkeep_copy_is_page_aliased(base + 5, base, 2048) != 0)
        #expect(pgkeep_copy_is_page_aliased(base, base + 5, 32768) == 0)  // behind, not ahead
        #endif
    }

    @Test("memcpy and memmove copy every size and offset right, the page-aliased ones included; memmove of overlapping ranges too")
    func copies() throws {
        let size = 600 << 10
        // Both page-aligned, so that an offset picked "1–63 bytes ahead" is that modulo 4 KiB too
        // (malloc's own placement depends on what the process freed before: in a full test run
        // only 1 copy of 600 was aliased, tried).
        let source = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096).bindMemory(to: UInt8.self, capacity: size)
        let target = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096).bindMemory(to: UInt8.self, capacity: size)
        defer { UnsafeMutableRawPointer(source).deallocate(); UnsafeMutableRawPointer(target).deallocate() }
        for index in 0..<size { source[index] = UInt8(truncatingIfNeeded: index &* 131 &+ index >> 9) }
        var generator = SystemRandomNumberGenerator()
        var aliasedCopies = 0
        for round in 0..<600 {
            // Sizes around the thresholds and up to 300 kB; half the rounds page-aliased.
            let length = [Int.random(in: 0..<64, using: &generator), Int.random(in: 2040..<2120, using: &generator),
                          Int.random(in: 0..<300_000, using: &generator)][round % 3]
            let from = Int.random(in: 0..<8192, using: &generator)
            let aliased = (round / 3) % 2 == 0
            let to = aliased ? (from + Int.random(in: 1..<64, using: &generator)) % 8192 : Int.random(in: 0..<8192, using: &generator)
            if pgkeep_copy_is_page_aliased(target + to, source + from, length) != 0 { aliasedCopies += 1 }
            memset(target, 0xA5, to + length + 64)
            if round % 2 == 0 { memcpy(target + to, source + from, length) } else { memmove(target + to, source + from, length) }
            #expect((0..<length).allSatisfy { target[to + $0] == source[from + $0] }, "round \(round): \(length) bytes \(from) → \(to)")
            #expect(to == 0 || target[to - 1] == 0xA5, "round \(round): wrote before the destination")
            #expect(target[to + length] == 0xA5, "round \(round): wrote past the destination")

            // Overlapping memmove, both directions, within one buffer.
            let shift = Int.random(in: -200...200, using: &generator)
            let start = 4096 + Int.random(in: 0..<4096, using: &generator)
            let count = Int.random(in: 0..<200_000, using: &generator)
            let original = Array(UnsafeBufferPointer(start: source + start, count: count))
            memcpy(target + start, source + start, count)
            memmove(target + start + shift, target + start, count)
            let moved = Array(UnsafeBufferPointer(start: target + start + shift, count: count)) == original
            #expect(moved, "round \(round): \(count) bytes overlapping by \(shift)")
        }
        #if arch(x86_64)
        #expect(aliasedCopies > 100, "only \(aliasedCopies) copies took the page-aliased path")
        #endif
    }

    @Test("a memcpy of overlapping, page-aliased ranges behaves as glibc's (its memcpy is its memmove): nothing corrupted")
    func overlappingMemcpy() throws {
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 16)
        defer { buffer.deallocate() }
        for distance in [4033, 4090, 4095, 8191] {  // the destination that far *before* the source: aliased, overlapping
            for index in 0..<(1 << 16) { buffer[index] = UInt8(truncatingIfNeeded: index &* 7 &+ index >> 8) }
            let source = buffer + 20000, length = 12000
            let original = Array(UnsafeBufferPointer(start: source, count: length))
            #if arch(x86_64)
            #expect(pgkeep_copy_is_page_aliased(source - distance, source, length) != 0)
            #endif
            memcpy(source - distance, source, length)
            let copied = Array(UnsafeBufferPointer(start: source - distance, count: length)) == original
            #expect(copied, "\(length) bytes copied \(distance) bytes before themselves")
        }
    }
}
