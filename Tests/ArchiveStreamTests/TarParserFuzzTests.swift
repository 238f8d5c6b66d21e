import Foundation
import Testing
import ArchiveStream
import TestSupport

/// Mutation fuzzing of the parser: corpus inputs from fixtures/fuzz with random byte flips,
/// truncations, insertions and header-field rewrites, fed in random splits. The parser must never
/// trap, and when it accepts an input, what it reports must be consistent: every path safe,
/// every member's contents exactly its declared size.
@Suite struct TarParserFuzzTests {
    static let iterations = 3000

    static func corpus() throws -> [(String, [UInt8])] {
        let directory = Fixtures.directory + "/fuzz"
        return try FileManager.default.contentsOfDirectory(atPath: directory).sorted().map { ($0, try Fixtures.bytes("fuzz/" + $0)) }
    }

    @Test("corpus inputs parse as recorded")
    func corpusReplays() throws {
        let corpus = try Self.corpus()
        #expect(corpus.count >= 4)
        for (name, bytes) in corpus {
            let outcome = Self.run(bytes, split: .random, requiresTerminator: !name.contains("unterminated"))
            #expect(outcome.accepted == !name.hasPrefix("bad-"), "\(name): \(outcome.error ?? "accepted")")
        }
    }

    @Test("mutated inputs never trap and accepted ones are consistent")
    func mutations() throws {
        var random = SplitMix64(seed: 0x5EED)
        let corpus = try Self.corpus().map(\.1)
        var accepted = 0
        for iteration in 0..<Self.iterations {
            var input = corpus[iteration % corpus.count]
            for _ in 0..<Int(random.next() % 4 + 1) { Self.mutate(&input, &random) }
            let split: ChunkSplit = [.whole, .oneByte, .random, .blockPlusOne][Int(random.next() % 4)]
            let outcome = Self.run(input, split: split, requiresTerminator: random.next() % 2 == 0)
            if outcome.accepted { accepted += 1 }
        }
        #expect(accepted > 0, "no mutant was accepted: the fuzzer is not reaching the success path")
    }

    struct Outcome { var accepted: Bool; var error: String? }

    static func run(_ input: [UInt8], split: ChunkSplit, requiresTerminator: Bool) -> Outcome {
        let checker = ConsistencyChecker()
        let parser = TarParser(next: checker, requiresTerminator: requiresTerminator)
        do {
            if input.isEmpty { try parser.finish() } else {
                try split.feed(input) { try parser.consume($0) }
                try parser.finish()
            }
            #expect(checker.problems.isEmpty, "accepted an inconsistent archive: \(checker.problems)")
            return Outcome(accepted: true)
        } catch let error as TarError {
            return Outcome(accepted: false, error: error.description)
        } catch {
            Issue.record("unexpected error type: \(error)")
            return Outcome(accepted: false, error: "\(error)")
        }
    }

    static func mutate(_ input: inout [UInt8], _ random: inout SplitMix64) {
        guard !input.isEmpty else { input = [UInt8](repeating: 0, count: 512); return }
        let position = Int(random.next() % UInt64(input.count))
        switch random.next() % 6 {
        case 0: input[position] ^= UInt8(truncatingIfNeeded: random.next() | 1)
        case 1: input.removeLast(Int(random.next() % UInt64(min(input.count, 1024))))
        case 2: input.insert(contentsOf: [UInt8](repeating: UInt8(truncatingIfNeeded: random.next()), count: Int(random.next() % 700)), at: position)
        case 3: // rewrite a header's size field with digits, keeping the checksum right
            let header = position / 512 * 512
            guard header + 512 <= input.count else { return }
            let digits = Array(String(random.next() % 100_000, radix: 8).utf8)
            for index in 0..<11 { input[header + 124 + index] = index < 11 - digits.count ? 0x30 : digits[index - (11 - digits.count)] }
            fixChecksum(&input, header)
        case 4: // put a hostile name in a header, keeping the checksum right
            let header = position / 512 * 512
            guard header + 512 <= input.count else { return }
            let names = ["../../etc/passwd", "/abs", "a/../../b", "./././", "x/\u{0}y"]
            let name = Array(names[Int(random.next() % UInt64(names.count))].utf8)
            for index in 0..<100 { input[header + index] = index < name.count ? name[index] : 0 }
            fixChecksum(&input, header)
        default: input[position] = 0
        }
    }

    static func fixChecksum(_ input: inout [UInt8], _ header: Int) {
        for index in 148..<156 { input[header + index] = 0x20 }
        let sum = input[header..<header + 512].reduce(0) { $0 + Int($1) }
        let digits = Array(String(sum, radix: 8).utf8)
        for index in 0..<6 { input[header + 148 + index] = index < 6 - digits.count ? 0x30 : digits[index - (6 - digits.count)] }
        input[header + 154] = 0
    }
}

/// Checks the member protocol and each member's claims while the parser runs.
final class ConsistencyChecker: TarMemberConsumer {
    var problems: [String] = []
    private var open: TarMember?
    private var received: UInt64 = 0

    func beginMember(_ member: TarMember, rawHeader: UnsafeRawBufferPointer?) throws {
        if open != nil { problems.append("begin inside \(open!.path)") }
        let text = member.path.description
        if text.hasPrefix("/") || member.path.components.contains(where: { $0.elementsEqual("..".utf8) }) || text.isEmpty {
            problems.append("unsafe path \(text)")
        }
        open = member
        received = 0
    }
    func memberContents(_ bytes: UnsafeRawBufferPointer) throws { received += UInt64(bytes.count) }
    func endMember() throws {
        guard let member = open else { problems.append("end without begin"); return }
        if received != member.size { problems.append("\(member.path): \(received) of \(member.size) bytes") }
        open = nil
    }
    func endArchive() throws { if open != nil { problems.append("archive ended inside a member") } }
}
