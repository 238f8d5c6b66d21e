import Testing
import PGWire

/// Columns of events and the actions they must produce, per protocol layout.
@Suite struct BaseBackupStateMachineTests {
    let start: [[String?]] = [["0/2000028", "1"]]
    let end: [[String?]] = [["0/2000100", "1"]]
    let tablespaces: [[String?]] = [["16385", "/srv/ts", "10"], [nil, nil, "100"]]

    @Test("14: one COPY per tablespace, then one for the manifest")
    func version14() throws {
        var m = BaseBackupStateMachine(version: ServerVersion(major: 14), manifestRequested: true)
        #expect(try m.resultSetReceived(start) == .startPositionKnown(LSN(0x200_0028), TimelineID(1)))
        #expect(try m.resultSetReceived(tablespaces) == .tablespacesKnown([
            BackupTablespace(oid: 16385, location: "/srv/ts", sizeKB: 10), BackupTablespace(oid: nil, location: nil, sizeKB: 100)]))
        #expect(try m.copyOutStarted() == .startArchive(.init(name: "16385.tar", tablespaceLocation: "/srv/ts"), finishPrevious: false))
        let data: [UInt8] = [1, 2, 3]
        #expect(try data.withUnsafeBytes { raw in try m.copyDataReceived(raw) == .forwardArchiveData(raw) })
        #expect(try m.copyDoneReceived() == .finishArchive)
        #expect(try m.commandCompleted() == .wait)
        #expect(try m.copyOutStarted() == .startArchive(.init(name: "base.tar", tablespaceLocation: nil), finishPrevious: false))
        #expect(try m.copyDoneReceived() == .finishArchive)
        #expect(try m.copyOutStarted() == .startManifest(finishPreviousArchive: false))
        #expect(try data.withUnsafeBytes { raw in try m.copyDataReceived(raw) == .forwardManifestData(raw) })
        #expect(try m.copyDoneReceived() == .finishManifest)
        #expect(try m.resultSetReceived(end) == .endPositionKnown(LSN(0x200_0100), TimelineID(1)))
        #expect(try m.commandCompleted() == .done)
        #expect(m.isFinished)
    }

    @Test("15+: one COPY with 'n', 'd', 'p', 'm'")
    func version15() throws {
        var m = BaseBackupStateMachine(version: ServerVersion(major: 15), manifestRequested: true)
        _ = try m.resultSetReceived(start)
        _ = try m.resultSetReceived(tablespaces)
        #expect(try m.copyOutStarted() == .wait)
        func feed(_ bytes: [UInt8]) throws -> BaseBackupStateMachine.Action { try bytes.withUnsafeBytes { try m.copyDataReceived($0) } }
        #expect(try feed(Array("n16385.tar\0/srv/ts\0".utf8)) == .startArchive(.init(name: "16385.tar", tablespaceLocation: "/srv/ts"), finishPrevious: false))
        let payload: [UInt8] = [9, 9]
        // The payload is forwarded as a view of the message, without its type byte.
        #expect(try ([UInt8(ascii: "d")] + payload).withUnsafeBytes { raw in
            try m.copyDataReceived(raw) == .forwardArchiveData(UnsafeRawBufferPointer(rebasing: raw[1...]))
        })
        #expect(try feed([UInt8(ascii: "p"), 0, 0, 0, 0, 0, 0, 4, 0]) == .progress(1024))
        #expect(try feed(Array("nbase.tar\0\0".utf8)) == .startArchive(.init(name: "base.tar", tablespaceLocation: nil), finishPrevious: true))
        #expect(try feed([UInt8(ascii: "m")]) == .startManifest(finishPreviousArchive: true))
        let manifestByte: [UInt8] = [7]
        #expect(try ([UInt8(ascii: "d")] + manifestByte).withUnsafeBytes { raw in
            try m.copyDataReceived(raw) == .forwardManifestData(UnsafeRawBufferPointer(rebasing: raw[1...]))
        })
        #expect(try m.copyDoneReceived() == .finishManifest)
        #expect(try m.commandCompleted() == .wait)
        #expect(try m.resultSetReceived(end) == .endPositionKnown(LSN(0x200_0100), TimelineID(1)))
        #expect(try m.commandCompleted() == .done)
    }

    @Test("protocol violations throw")
    func violations() throws {
        var m = BaseBackupStateMachine(version: ServerVersion(major: 16), manifestRequested: true)
        #expect(throws: WireError.self) { try m.copyOutStarted() }
        _ = try m.resultSetReceived(start)
        #expect(throws: WireError.self) { try m.resultSetReceived([[nil, nil, nil], [nil, nil, nil]]) } // two main directories
        _ = try m.resultSetReceived(tablespaces)
        _ = try m.copyOutStarted()
        #expect(throws: WireError.self) { try [UInt8(ascii: "d"), 1].withUnsafeBytes { _ = try m.copyDataReceived($0) } } // data before 'n'
        #expect(throws: WireError.self) { try m.copyDoneReceived() } // COPY ends before the manifest
    }

    @Test("14: an end position before every archive arrived is refused")
    func earlyEnd() throws {
        var m = BaseBackupStateMachine(version: ServerVersion(major: 14), manifestRequested: true)
        _ = try m.resultSetReceived(start)
        _ = try m.resultSetReceived(tablespaces)
        _ = try m.copyOutStarted()
        _ = try m.copyDoneReceived()
        #expect(throws: WireError.self) { try m.resultSetReceived(end) }
    }
}
