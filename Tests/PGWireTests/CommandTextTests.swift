import Testing
import PGWire

/// The command text is the interface with the server: pinned, per syntax.
@Suite struct CommandTextTests {
    @Test("BASE_BACKUP in 14's keyword syntax")
    func legacyBaseBackup() {
        var options = BaseBackupOptions(label: "it's mine")
        options.progress = true
        options.checkpoint = .fast
        options.maxRateKBps = 1024
        options.tablespaceMap = false
        #expect(options.command(for: ServerVersion(major: 14))
                == "BASE_BACKUP LABEL 'it''s mine' PROGRESS FAST NOWAIT MAX_RATE 1024 MANIFEST 'yes' MANIFEST_CHECKSUMS 'CRC32C'")
    }

    @Test("BASE_BACKUP in 15+'s option list, with server compression")
    func parenthesizedBaseBackup() {
        var options = BaseBackupOptions(label: "nightly")
        options.includeWAL = true
        options.manifestChecksums = .sha256
        options.serverCompression = .init(method: .zstd, level: 3, workers: 2)
        #expect(options.command(for: ServerVersion(major: 17))
                == "BASE_BACKUP (LABEL 'nightly', WAL, WAIT false, TABLESPACE_MAP, MANIFEST 'yes', MANIFEST_CHECKSUMS 'SHA256', COMPRESSION 'zstd', COMPRESSION_DETAIL 'level=3,workers=2')")
    }

    @Test("the options scripts use: no checksum verification, force-encoded manifest, server targets, incremental, zstd long")
    func moreOptions() {
        var options = BaseBackupOptions(label: "x")
        options.verifyChecksums = false
        options.manifest = .forceEncode
        #expect(options.command(for: ServerVersion(major: 14))
                == "BASE_BACKUP LABEL 'x' NOWAIT TABLESPACE_MAP NOVERIFY_CHECKSUMS MANIFEST 'force-encode' MANIFEST_CHECKSUMS 'CRC32C'")
        options.target = .server(directory: "/srv/it's")
        options.serverCompression = .init(method: .zstd, level: 5, long: true)
        options.incremental = true
        #expect(options.command(for: ServerVersion(major: 17))
                == "BASE_BACKUP (LABEL 'x', WAIT false, TABLESPACE_MAP, VERIFY_CHECKSUMS false, MANIFEST 'force-encode', MANIFEST_CHECKSUMS 'CRC32C', TARGET 'server', TARGET_DETAIL '/srv/it''s', COMPRESSION 'zstd', COMPRESSION_DETAIL 'level=5,long', INCREMENTAL)")
        options = BaseBackupOptions(label: "y")
        options.manifest = .no
        options.target = .blackhole
        #expect(options.command(for: ServerVersion(major: 15)) == "BASE_BACKUP (LABEL 'y', WAIT false, TABLESPACE_MAP, TARGET 'blackhole')")
    }

    @Test("slot commands per version")
    func slots() throws {
        let slot = try #require(SlotName("pgkeep_42"))
        #expect(ReplicationCommand.createPhysicalSlot(slot, temporary: true, reserveWAL: true).text(for: ServerVersion(major: 14))
                == "CREATE_REPLICATION_SLOT \"pgkeep_42\" TEMPORARY PHYSICAL RESERVE_WAL")
        #expect(ReplicationCommand.createPhysicalSlot(slot, temporary: false, reserveWAL: true).text(for: ServerVersion(major: 16))
                == "CREATE_REPLICATION_SLOT \"pgkeep_42\" PHYSICAL (RESERVE_WAL)")
        #expect(ReplicationCommand.startPhysicalReplication(slot: slot, start: LSN(0x300_0000), timeline: TimelineID(2))
                    .text(for: ServerVersion(major: 15)) == "START_REPLICATION SLOT \"pgkeep_42\" PHYSICAL 0/3000000 TIMELINE 2")
    }

    @Test("slot names are validated once, so commands never need escaping", arguments: ["", "Upper", "a-b", "a b", "x\"y", String(repeating: "a", count: 64)])
    func invalidSlotNames(name: String) { #expect(SlotName(name) == nil) }
}
