import Testing
import PGWire

@Suite struct LSNTests {
    @Test("parses and prints PostgreSQL's X/Y form", arguments: [
        ("0/0", 0 as UInt64), ("16/B374D848", 0x16_B374_D848), ("FFFFFFFF/FFFFFFFF", UInt64.max), ("0/1000000", 0x100_0000),
    ])
    func roundTrip(text: String, value: UInt64) {
        #expect(LSN(text) == LSN(value))
        #expect(LSN(value).description == text)
    }

    @Test("rejects what is not an LSN", arguments: ["", "0", "0/", "/0", "G/0", "1/2/3", "123456789/0", " 0/0"])
    func rejects(text: String) { #expect(LSN(text) == nil) }
}

@Suite struct ServerVersionTests {
    @Test("capabilities switch exactly where the protocol changed", arguments: ServerVersion.supportedMajors)
    func capabilities(major: Int) {
        let version = ServerVersion(major: major)
        #expect(version.isSupported)
        #expect(version.usesParenthesizedOptions == (major >= 15))
        #expect(version.sendsSingleCopyStream == (major >= 15))
        #expect(version.terminatesTar == (major >= 15))
        #expect(version.supportsIncremental == (major >= 17))
        #expect(version.manifestVersion == (major >= 17 ? 2 : 1))
    }

    @Test("13 and older are not supported")
    func tooOld() {
        #expect(!ServerVersion(number: 130012).isSupported)
        #expect(ServerVersion(number: 140000).isSupported)
        #expect(ServerVersion(number: 150004).description == "15.4")
    }
}
