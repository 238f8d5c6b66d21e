import Glibc
import Synchronization
import Testing
import Sinks
import TestSupport

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

    /// Restore's files: each exists, empty and private, when its filler opens it as a placeholder,
    /// and is filled once; a path that cannot be created stops everything after it.
    @Test("fillCreated: every file created before it is filled, each filled once; a create that fails is thrown")
    func fillCreated() throws {
        let scratch = try Fixtures.scratchDirectory("fill-created")
        defer { Fixtures.removeScratch(scratch) }
        let paths = (0..<200).map { scratch + "/file\($0)" }
        let filled = Mutex([Int](repeating: 0, count: paths.count))
        try OSThread.fillCreated(paths, workers: 3, name: "pgkeep-test", stopped: { false }) { index in
            var info = stat()
            #expect(lstat(paths[index], &info) == 0 && info.st_size == 0 && info.st_mode & 0o777 == 0o600)
            let sink = try FileSink(path: paths[index], syncOnFinish: false, placeholder: true)
            try Array("\(index)".utf8).withUnsafeBytes { try sink.consume($0) }
            try sink.finish()
            filled.withLock { $0[index] += 1 }
        }
        #expect(filled.withLock { $0 } == [Int](repeating: 1, count: paths.count))
        let contents = paths.map { path in String(decoding: (try? readWholeFile(path)) ?? nil ?? [], as: UTF8.self) }
        #expect(contents == paths.indices.map { "\($0)" })

        // File 50's directory does not exist: its create throws; nothing after it is filled.
        var broken = (0..<100).map { scratch + "/again\($0)" }
        broken[50] = scratch + "/missing/again50"
        let after = Atomic<Int>(0)
        #expect(throws: FileSystemError.self) {
            try OSThread.fillCreated(broken, workers: 2, name: "pgkeep-test", stopped: { false }) { index in
                if index >= 50 { after.add(1, ordering: .relaxed) }
            }
        }
        let late = after.load(ordering: .relaxed)
        #expect(late == 0)
        #expect(access(scratch + "/again51", F_OK) != 0)
    }
}
