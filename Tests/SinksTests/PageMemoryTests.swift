import Foundation
import Testing
@testable import Sinks
import TestSupport

/// The plain extraction's buffers (`PageMemory`): page-aligned for O_DIRECT, zeroed, writable end
/// to end, and given back on deallocation.
@Suite struct PageMemoryTests {
    @Test("page-aligned, zeroed and writable over the whole size", arguments: [4096, DirectWriter.bufferSize, 256 << 10])
    func alignedZeroedWritable(size: Int) {
        let memory = PageMemory.allocate(size)
        defer { PageMemory.deallocate(memory, byteCount: size) }
        #expect(Int(bitPattern: memory) % 4096 == 0)
        let bytes = memory.bindMemory(to: UInt8.self, capacity: size)
        #expect((0..<size).allSatisfy { bytes[$0] == 0 })
        for index in stride(from: 0, to: size, by: 512) { bytes[index] = UInt8(truncatingIfNeeded: index >> 9) }
        bytes[size - 1] = 0xFF
        #expect(stride(from: 0, to: size, by: 512).allSatisfy { bytes[$0] == UInt8(truncatingIfNeeded: $0 >> 9) })
        #expect(bytes[size - 1] == 0xFF)
    }

    @Test func deallocationGivesTheMappingBack() throws {
        // 1,000 buffers of 1 MiB, each freed: the process's address space must not grow by them
        // (it would by 1,000 MiB if the mappings stayed).
        let before = try Self.virtualSize()
        for round in 0..<1000 {
            let memory = PageMemory.allocate(1 << 20)
            memory.storeBytes(of: UInt8(truncatingIfNeeded: round), as: UInt8.self)
            PageMemory.deallocate(memory, byteCount: 1 << 20)
        }
        #expect(try Self.virtualSize() - before < 256 << 20)
    }

    /// VmSize from /proc/self/status ("123456 kB"), in bytes.
    private static func virtualSize() throws -> Int {
        let kilobytes = try #require(Int(try ThisProcess.status("VmSize").split(separator: " ")[0]))
        return kilobytes << 10
    }
}
