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

    static func render(_ commands: [(path: String, command: ParsableCommand.Type)]) -> String {
        func quoted(_ text: String) -> String {
            precondition(text.allSatisfy { $0.isASCII && $0 != "\"" && $0 != "\\" }, "an option name Swift would need escaped: \(text)")
            return "\"\(text)\""
        }
        var cases: [String] = []
        for (path, command) in commands {
            let table = GetoptTable(command)
            let long = table.long.sorted { $0.key < $1.key }.map { "\(quoted($0.key)): \($0.value)" }
            let short = table.short.sorted { $0.key < $1.key }.map { letter, short in
                "\(quoted(String(letter))): .init(takesValue: \(short.takesValue), long: \(short.long.map(quoted) ?? "nil"))"
            }
            func literal(_ entries: [String]) -> String {
                entries.isEmpty ? "[:]" : "[\n" + entries.map { "                    \($0),\n" }.joined() + "                ]"
            }
            cases.append("""
                        case \(quoted(path)):
                            return GetoptTable(
                                long: \(literal(long)),
                                short: \(literal(short)))

                """)
        }
        return """
            // Written by tools/getopt-tables from each command's help (GetoptTable(helpText:));
            // do not edit. GetoptTablesTests fails when a command's options no longer match.

            extension GetoptTable {
                /// The option table of the command at `path` (its names from the root, "repo init").
                static func generated(for path: String) -> GetoptTable? {
                    switch path {

            """ + cases.joined() + """
                    default:
                        return nil
                    }
                }
            }

            """
    }
}
