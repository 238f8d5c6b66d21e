import Glibc
import Synchronization
import Testing
import Sinks

/// The disk-bound pool behind the parallel fsync and restore's copies.
@Suite struct OSThreadTests {
    @Test("every index once, on at most the workers asked for", arguments: [1, 3, 16, 64])
    func everyIndexOnce(workers: Int) {
        let seen = Mutex([Int](repeating: 0, count: 40))
        let threads = Mutex(Set<pthread_t>())
        OSThread.forEach(40, workers: workers, name: "pgkeep-test") { index in
            seen.withLock { $0[index] += 1 }
            threads.withLock { _ = $0.insert(pthread_self()) }
        }
        #expect(seen.withLock { $0 } == [Int](repeating: 1, count: 40))
        #expect(threads.withLock { $0.count } <= min(workers, 40))
    }

    @Test func nothingToDoRunsNothing() {
        let calls = Atomic<Int>(0)
        OSThread.forEach(0, workers: 4, name: "pgkeep-test") { _ in calls.add(1, ordering: .relaxed) }
        let count = calls.load(ordering: .relaxed)
        #expect(count == 0)
    }

    struct Stop: Error, Equatable { let index: Int }

    @Test func aThrowStopsTheRestAndIsThrown() {
        let started = Atomic<Int>(0)
        #expect(throws: Stop(index: 5)) {
            try OSThread.forEach(1000, workers: 1, name: "pgkeep-test") { (index) throws(Stop) in
                started.add(1, ordering: .relaxed)
                if index == 5 { throw Stop(index: index) }
            }
        }
        let count = started.load(ordering: .relaxed)
        #expect(count == 6, "one worker: indices 0 to 5, none after the throw")
    }

    @Test func aDetachedThreadRuns() async throws {
        let ran = Atomic<Bool>(false)
        try OSThread.detach(name: "pgkeep-test") { ran.store(true, ordering: .releasing) }
        for _ in 0..<500 where !ran.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(2)) }
        let done = ran.load(ordering: .acquiring)
        #expect(done)
    }
}
