import Testing
@testable import PGWire

/// START_REPLICATION as columns of event → action, for 1 MiB segments.
@Suite struct WALStreamStateMachineTests {
    static let size = WALSegmentSize(bytes: 1 << 20)!
    typealias Action = WALStreamStateMachine.Action

    func machine(synchronous: Bool = false) -> WALStreamStateMachine {
        WALStreamStateMachine(segmentSize: Self.size, timeline: TimelineID(1),
                              options: .init(statusIntervalSeconds: 10, synchronous: synchronous))
    }

    @Test("starts at the segment's beginning, writes, and fills a segment: close, report, go on in the next")
    func segmentSplit() throws {
        var m = machine()
        let data = [UInt8](repeating: 7, count: 0x80000)
        #expect(try m.start(from: LSN(0x1234A0), now: 0) == .startReplication(LSN(0x100000)))
        #expect(m.actionCompleted() == .wait)
        #expect(try m.copyBothStarted() == .wait)
        try data.withUnsafeBytes { (first: UnsafeRawBufferPointer) throws in
            #expect(try m.xlogDataReceived(walStart: LSN(0x100000), serverWALEnd: LSN(0x300000), data: first, now: 1) == .openSegment(1))
            #expect(m.actionCompleted() == .write(first, offset: 0))
            #expect(m.actionCompleted() == .wait)
        }
        let crossing = [UInt8](repeating: 8, count: 0x80000 + 100)
        try crossing.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) throws in
            #expect(try m.xlogDataReceived(walStart: LSN(0x180000), serverWALEnd: LSN(0x300000), data: bytes, now: 2)
                    == .write(UnsafeRawBufferPointer(rebasing: bytes[0..<0x80000]), offset: 0x80000))
            #expect(m.actionCompleted() == .closeSegment(complete: true))
            #expect(m.actionCompleted() == .sendStatus(written: LSN(0x200000), flushed: LSN(0x200000)))
            #expect(m.actionCompleted() == .openSegment(2))
            #expect(m.actionCompleted() == .write(UnsafeRawBufferPointer(rebasing: bytes[0x80000...]), offset: 0))
            #expect(m.actionCompleted() == .wait)
        }
        #expect(m.progress == .init(received: LSN(0x200064), flushed: LSN(0x200000), serverEnd: LSN(0x300000)))
    }

    @Test("a gap in the stream is refused")
    func gap() throws {
        var m = machine()
        _ = try m.start(from: LSN(0x100000), now: 0)
        _ = m.actionCompleted()
        _ = try m.copyBothStarted()
        let bytes = [UInt8](repeating: 1, count: 10)
        _ = try bytes.withUnsafeBytes { (data: UnsafeRawBufferPointer) throws in
            #expect(throws: WireError.walGap(expected: LSN(0x100000), received: LSN(0x100010))) {
                _ = try m.xlogDataReceived(walStart: LSN(0x100010), serverWALEnd: .zero, data: data, now: 1)
            }
        }
    }

    @Test("shutdown: a keepalive asking for a reply makes the open segment durable and reports it; then CopyDone ends the stream")
    func shutdown() throws {
        var m = machine()
        _ = try m.start(from: LSN(0x100000), now: 0); _ = m.actionCompleted(); _ = try m.copyBothStarted()
        let bytes = [UInt8](repeating: 1, count: 4096)
        try bytes.withUnsafeBytes { (data: UnsafeRawBufferPointer) throws in
            #expect(try m.xlogDataReceived(walStart: LSN(0x100000), serverWALEnd: LSN(0x101000), data: data, now: 1) == .openSegment(1))
            #expect(m.actionCompleted() == .write(data, offset: 0))
            #expect(m.actionCompleted() == .wait)
        }
        #expect(try m.keepaliveReceived(serverWALEnd: LSN(0x101000), replyRequested: false, now: 2) == .wait)
        #expect(try m.keepaliveReceived(serverWALEnd: LSN(0x101000), replyRequested: true, now: 3) == .syncSegment)
        #expect(m.actionCompleted() == .sendStatus(written: LSN(0x101000), flushed: LSN(0x101000)))
        #expect(m.actionCompleted() == .wait)
        #expect(try m.copyDoneReceived() == .closeSegment(complete: false))
        #expect(m.actionCompleted() == .wait)
        #expect(try m.copyInReceived() == .endCopy)
        #expect(m.actionCompleted() == .wait)
        #expect(m.commandCompleted() == .wait)
        #expect(try m.resultsEnded() == .finished(.init(reason: .serverClosed, position: LSN(0x101000), segmentsCompleted: 0, segmentsWritten: 1)))
    }

    @Test("a walsender that exits after its CopyDone without CommandComplete: the stream ended; elsewhere a lost connection is an error")
    func lostAfterCopyDone() throws {
        var m = machine()
        _ = try m.start(from: LSN(0x100000), now: 0); _ = m.actionCompleted(); _ = try m.copyBothStarted()
        #expect(m.connectionLost() == nil)
        #expect(try m.copyDoneReceived() == .wait)
        #expect(m.connectionLost() == .finished(.init(reason: .serverClosed, position: LSN(0x100000), segmentsCompleted: 0, segmentsWritten: 0)))
    }

    @Test("timeline end: CopyDone, COPY IN, the next-timeline row, CommandComplete")
    func timelineEnd() throws {
        var m = machine()
        _ = try m.start(from: LSN(0x100000), now: 0); _ = m.actionCompleted(); _ = try m.copyBothStarted()
        #expect(try m.copyDoneReceived() == .wait)
        #expect(try m.copyInReceived() == .endCopy)
        #expect(m.actionCompleted() == .wait)
        #expect(try m.rowsReceived([["2", "0/1003E8"]]) == .wait)
        #expect(m.commandCompleted() == .wait)
        #expect(try m.resultsEnded() == .finished(.init(reason: .timelineEnded(nextTimeline: TimelineID(2), at: LSN(0x1003E8)),
                                                          position: LSN(0x100000), segmentsCompleted: 0, segmentsWritten: 0)))
    }

    @Test("asked for a timeline exactly at its end, the server sends the next timeline and no COPY")
    func timelineEndWithoutCopy() throws {
        var m = machine()
        _ = try m.start(from: LSN(0x300000), now: 0); _ = m.actionCompleted()
        #expect(try m.rowsReceived([["2", "0/300000"]]) == .wait)
        #expect(m.commandCompleted() == .wait)
        #expect(try m.resultsEnded() == .finished(.init(reason: .timelineEnded(nextTimeline: TimelineID(2), at: LSN(0x300000)),
                                                          position: LSN(0x300000), segmentsCompleted: 0, segmentsWritten: 0)))
    }

    @Test("the stop position: close the partial segment, report it, end our side; what follows is ignored")
    func stop() throws {
        var m = machine()
        _ = try m.start(from: LSN(0x100000), now: 0); _ = m.actionCompleted(); _ = try m.copyBothStarted()
        #expect(m.stopRequested(at: LSN(0x100100)) == .wait)
        let bytes = [UInt8](repeating: 1, count: 0x200)
        try bytes.withUnsafeBytes { (data: UnsafeRawBufferPointer) throws in
            #expect(try m.xlogDataReceived(walStart: LSN(0x100000), serverWALEnd: LSN(0x100200), data: data, now: 1) == .openSegment(1))
            #expect(m.actionCompleted() == .write(data, offset: 0))
            #expect(m.actionCompleted() == .closeSegment(complete: false))
            #expect(m.actionCompleted() == .sendStatus(written: LSN(0x100200), flushed: LSN(0x100200)))
            #expect(m.actionCompleted() == .endCopy)
            #expect(m.actionCompleted() == .wait)
            #expect(try m.xlogDataReceived(walStart: LSN(0x100200), serverWALEnd: LSN(0x100400), data: data, now: 2) == .wait)
        }
        #expect(try m.copyDoneReceived() == .wait)
        #expect(try m.copyInReceived() == .wait, "our side is already ended")
        #expect(try m.resultsEnded() == .finished(.init(reason: .reachedStopPosition, position: LSN(0x100200), segmentsCompleted: 0, segmentsWritten: 1)))
    }

    @Test("synchronous: when the server pauses, sync and report; otherwise only the status interval reports")
    func synchronousAndInterval() throws {
        var sync = machine(synchronous: true), async = machine()
        let bytes = [UInt8](repeating: 1, count: 100)
        for index in 0..<2 {
            try bytes.withUnsafeBytes { (data: UnsafeRawBufferPointer) throws in
                if index == 0 {
                    _ = try sync.start(from: LSN(0x100000), now: 0); _ = sync.actionCompleted(); _ = try sync.copyBothStarted()
                    #expect(try sync.xlogDataReceived(walStart: LSN(0x100000), serverWALEnd: .zero, data: data, now: 1) == .openSegment(1))
                    #expect(sync.actionCompleted() == .write(data, offset: 0))
                    #expect(sync.actionCompleted() == .wait)
                    #expect(sync.idle(now: 2) == .syncSegment)
                    #expect(sync.actionCompleted() == .sendStatus(written: LSN(0x100064), flushed: LSN(0x100064)))
                    #expect(sync.actionCompleted() == .wait)
                    #expect(sync.idle(now: 3) == .wait, "nothing new to make durable")
                } else {
                    _ = try async.start(from: LSN(0x100000), now: 0); _ = async.actionCompleted(); _ = try async.copyBothStarted()
                    _ = try async.xlogDataReceived(walStart: LSN(0x100000), serverWALEnd: .zero, data: data, now: 1)
                    _ = async.actionCompleted(); _ = async.actionCompleted()
                    #expect(async.idle(now: 2) == .wait)
                    #expect(async.idle(now: 10_000_001) == .sendStatus(written: LSN(0x100064), flushed: LSN(0x100000)),
                            "the interval's report never calls unsynced data flushed")
                    #expect(async.actionCompleted() == .wait)
                    #expect(async.idle(now: 10_000_002) == .wait)
                }
            }
        }
    }
}
