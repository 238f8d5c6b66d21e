import ArgumentParser
import Foundation
import Testing
@testable import pgkeep

/// The option tables kept in GetoptTables.generated.swift are the ones each command's help
/// gives (GetoptTable(helpText:)): a changed, added or renamed option fails here until
/// tools/getopt-tables writes the file again.
@Suite struct GetoptTablesTests {
    /// Every command below the root, by the path of names that selects it ("repo init").
    static func commands(under command: ParsableCommand.Type = PGKeepCommand.self, path: [String] = []) -> [(path: String, command: ParsableCommand.Type)] {
        command.configuration.subcommands.flatMap { sub -> [(path: String, command: ParsableCommand.Type)] in
            let names = path + [sub._commandName]
            return [(names.joined(separator: " "), sub)] + commands(under: sub, path: names)
        }
    }

    @Test("every command's kept table is the one its help gives")
    func keptTablesMatchTheHelp() throws {
        let commands = Self.commands()
        #expect(commands.count >= 14)
        if let file = ProcessInfo.processInfo.environment["PGKEEP_WRITE_GETOPT_TABLES"] {
            try Self.render(commands).write(toFile: file, atomically: true, encoding: .utf8)
            return
        }
        for (path, command) in commands {
            #expect(GetoptTable.generated(for: path) == GetoptTable(command),
                    "\(path): its options changed; run tools/getopt-tables")
        }
        #expect(GetoptTable.generated(for: "no-such-command") == nil)
    }

    @Test("every command spells its name (else the parser derives it from the type's name, through the runtime's demangler, at every start)")
    func everyCommandNamesItself() {
        for (path, command) in Self.commands() {
            #expect(command.configuration.commandName != nil, "\(path)")
        }
    }

    @Test("a nested command reads its own table, not its parent's")
    func nestedCommands() throws {
        #expect(try PGKeepCommand.normalizedArguments(["repo", "init", "-Zlz4", "-Ubackup"]) ==
                ["repo", "init", "--compress=lz4", "--username=backup"])
        #expect(try PGKeepCommand.normalizedArguments(["receive-wal", "-Dx"]) == ["receive-wal", "--directory=x"])
    }

    @Test("a table and its spec line read back the same")
    func specRoundTrip() {
        let table = GetoptTable(long: ["pgdata": true, "no-sync": false, "help": false, "wal-method": true, "xlog-method": true],
                                short: ["D": .init(takesValue: true, long: "pgdata"), "?": .init(takesValue: false, long: "help"),
                                        "X": .init(takesValue: true, long: "wal-method"), "c": .init(takesValue: true, long: nil),
                                        "n": .init(takesValue: false, long: nil)])
        #expect(table.spec == "?/help D/pgdata= X/wal-method= c/= n/ no-sync xlog-method=")
        #expect(GetoptTable(spec: table.spec) == table)
        for (_, command) in Self.commands() {
            let table = GetoptTable(command)
            #expect(GetoptTable(spec: table.spec) == table)
        }
    }

    static func render(_ commands: [(path: String, command: ParsableCommand.Type)]) -> String {
        let cases = commands.map { path, command in
            let spec = GetoptTable(command).spec
            precondition(!(path + spec).contains { $0 == "\"" || $0 == "\\" || !$0.isASCII }, "\(path): a name Swift would need escaped")
            return "        case \"\(path)\": spec = \"\(spec)\"\n"
        }
        return """
            // Written by tools/getopt-tables from each command's help (GetoptTable(helpText:));
            // do not edit. GetoptTablesTests fails when a command's options no longer match.

            extension GetoptTable {
                /// The option table of the command at `path` (its names from the root, "repo init").
                static func generated(for path: String) -> GetoptTable? {
                    let spec: String
                    switch path {

            """ + cases.joined() + """
                    default: return nil
                    }
                    return GetoptTable(spec: spec)
                }
            }

            """
    }
}
