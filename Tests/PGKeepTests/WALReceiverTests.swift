import Foundation
import Testing
import PGConnection
import PGWire
import TestSupport
@testable import WAL

/// The receive loop on scripted START_REPLICATION conversations: where segments split, what is
/// reported flushed, how a timeline ends, and what is refused.
@Suite struct WALReceiverTests {
    static let size = WALSegmentSize(bytes: 1 << 20)!

    /// A sink that remembers what happened to it.
    final class RecordingSink: WALSink {
        var events: [String] = []
        var bytes: [String: [UInt8]] = [:]
        private var current = ""
        func openSegment(named name: String) throws { events.append("open \(name)"); current = name; bytes[name] = [] }
        func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws {
            #expect(UInt64(bytes[current]!.count) == offset, "writes arrive in order")
            bytes[current]! += data
        }
        func syncSegment() throws { events.append("sync \(current)") }
        func closeSegment(complete: Bool) throws { events.append("close \(current) \(complete ? "complete" : "partial")") }
        func finish() throws { events.append("finish") }
    }

    static func xlogData(at start: UInt64, _ count: Int, fill: UInt8 = 7) -> ScriptedStream.Event {
        var message: [UInt8] = [UInt8(ascii: "w")]
        message.appendInteger(start)
        message.appendInteger(UInt64(0x1000_0000))
        message.appendInteger(Int64(0))
        message += [UInt8](repeating: fill, count: count)
        return .data(message)
    }

    static func flushedPositions(_ stream: ScriptedStream) -> [UInt64] {
        stream.sentCopyData.map { update in
            update.withUnsafeBytes { raw in UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 9, as: UInt64.self)) }
        }
    }

    @Test func restartingExactlyAtTheEndOfATimelineFollowsTheNextOneWithoutStreaming() throws {
        // The server answers START_REPLICATION on a timeline at its very end with the next
        // timeline only, and no COPY: pg_receivewal loops on this.
        let stream = ScriptedStream(version: 17, [.rows([["2", "0/300000"]]), .commandOK])
        let sink = RecordingSink()
        let receiver = WALReceiver(connection: stream, sink: sink, segmentSize: Self.size, timeline: TimelineID(1))
        let outcome = try receiver.stream(from: LSN(0x300000), slot: nil, stopPosition: { nil }, cancelled: { false })
        #expect(outcome.reason == .timelineEnded(nextTimeline: TimelineID(2), at: LSN(0x300000)))
        #expect(sink.events.isEmpty)
        #expect(stream.sentCommands == ["START_REPLICATION PHYSICAL 0/300000 TIMELINE 1"])
    }

    @Test func splitsAtSegmentBoundariesAndReportsOnlyWholeSegmentsFlushed() throws {
        let half = 1 << 19
        let stream = ScriptedStream(version: 16, [
            .copyBoth,
            Self.xlogData(at: 0x100000, half, fill: 1),
            Self.xlogData(at: 0x100000 + UInt64(half), half + 1000, fill: 2), // crosses into segment 2
            .copyDone, .copyIn,
            .rows([["3", "0/2003E8"]]), .commandOK,
        ])
        let sink = RecordingSink()
        let receiver = WALReceiver(connection: stream, sink: sink, segmentSize: Self.size, timeline: TimelineID(2))
        let outcome = try receiver.stream(from: LSN(0x1234A0), slot: SlotName("arch"), stopPosition: { nil }, cancelled: { false })

        #expect(stream.sentCommands == ["START_REPLICATION SLOT \"arch\" PHYSICAL 0/100000 TIMELINE 2"], "restarts at the segment's start")
        #expect(sink.events == ["open 000000020000000000000001", "close 000000020000000000000001 complete",
                                "open 000000020000000000000002", "close 000000020000000000000002 partial"])
        #expect(sink.bytes["000000020000000000000001"]! == [UInt8](repeating: 1, count: half) + [UInt8](repeating: 2, count: half))
        #expect(sink.bytes["000000020000000000000002"]! == [UInt8](repeating: 2, count: 1000))
        #expect(outcome.reason == .timelineEnded(nextTimeline: TimelineID(3), at: LSN(0x2003E8)))
        #expect(outcome.position == LSN(0x2003E8))
        #expect(outcome.segmentsCompleted == 1 && outcome.segmentsWritten == 2)
        // The completed segment is reported flushed at once; never anything past it while streaming.
        #expect(Self.flushedPositions(stream).first == 0x200000)
        #expect(stream.copyEnded)
    }

    @Test func synchronousModeSyncsAndReportsEveryWriteWhenTheServerPauses() throws {
        let script: [ScriptedStream.Event] = [.copyBoth, Self.xlogData(at: 0x100000, 4096), .pause, Self.xlogData(at: 0x101000, 4096),
                                              .copyDone, .commandOK]
        let synchronous = ScriptedStream(version: 17, script), sink = RecordingSink()
        _ = try WALReceiver(connection: synchronous, sink: sink, segmentSize: Self.size, timeline: TimelineID(1),
                            options: .init(synchronous: true))
            .stream(from: LSN(0x100000), slot: nil, stopPosition: { nil }, cancelled: { false })
        #expect(sink.events.prefix(2) == ["open 000000010000000000000001", "sync 000000010000000000000001"])
        #expect(Self.flushedPositions(synchronous).first == 0x101000, "flushed reported mid-segment, right after the sync")

        // Without --synchronous the same pause reports nothing flushed mid-segment.
        let asynchronous = ScriptedStream(version: 17, script), quiet = RecordingSink()
        _ = try WALReceiver(connection: asynchronous, sink: quiet, segmentSize: Self.size, timeline: TimelineID(1))
            .stream(from: LSN(0x100000), slot: nil, stopPosition: { nil }, cancelled: { false })
        #expect(!quiet.events.contains { $0.hasPrefix("sync") })
        #expect(Self.flushedPositions(asynchronous).allSatisfy { $0 == 0x100000 })
    }

    @Test func aGapInTheStreamIsRefused() throws {
        let stream = ScriptedStream(version: 17, [
            .copyBoth, Self.xlogData(at: 0x100000, 100), Self.xlogData(at: 0x100000 + 200, 100),
        ])
        let receiver = WALReceiver(connection: stream, sink: RecordingSink(), segmentSize: Self.size, timeline: TimelineID(1))
        let error = #expect(throws: WireError.self) {
            try receiver.stream(from: LSN(0x100000), slot: nil, stopPosition: { nil }, cancelled: { false })
        }
        #expect(error?.description.contains("expected data at 0/100064, server sent 0/1000C8") == true)
    }

    @Test func stopsAtTheStopPositionAndKeepsThePartialSegment() throws {
        let stream = ScriptedStream(version: 15, [
            .copyBoth, Self.xlogData(at: 0x100000, 300), Self.xlogData(at: 0x100000 + 300, 300),
            .copyDone, .commandOK,
        ])
        let sink = RecordingSink()
        let receiver = WALReceiver(connection: stream, sink: sink, segmentSize: Self.size, timeline: TimelineID(1))
        let outcome = try receiver.stream(from: LSN(0x100000), slot: nil, stopPosition: { LSN(0x100000 + 200) }, cancelled: { false })
        #expect(outcome.reason == .reachedStopPosition)
        #expect(outcome.position == LSN(0x100000 + 300), "data after the stop request is not written")
        #expect(sink.events == ["open 000000010000000000000001", "close 000000010000000000000001 partial"])
        #expect(stream.copyEnded)
        #expect(Self.flushedPositions(stream).last == 0x100000 + 300, "the final status reports the synced partial data")
    }
}
