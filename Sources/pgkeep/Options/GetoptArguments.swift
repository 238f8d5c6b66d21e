import ArgumentParser

/// Makes argv read as PostgreSQL's tools read theirs (getopt_long), so a script written for
/// pg_basebackup, pg_receivewal or pg_verifybackup works unchanged: glued short values (`-Ft`,
/// `-Xfetch`, `-cfast`, `-Z9`, `-p5432`), clusters of short flags (`-vP`), unambiguous
/// abbreviations of long options (`--checkp=fast`), `--opt=value` and `--opt value`. The
/// result is argv in a form swift-argument-parser parses: every option with a value as
/// `--long=value` (so a value such as `-` stays a value), every flag spelled out.
///
/// The option table comes from the command's own help (names, and whether each takes a value):
/// there is no second list of options to keep in step. Rendering that help took a third of the
/// instructions of every command's start-up (1 ms of its 11), so each command's table is also
/// kept, already read, as a `spec` line in GetoptTables.generated.swift: tools/getopt-tables
/// writes it, and GetoptTablesTests fails when it no longer matches the help.
struct GetoptTable: Equatable {
    /// Long name (without dashes) → takes a value.
    var long: [String: Bool] = [:]
    /// Short letter → (takes a value, its long name if it has one).
    var short: [Character: Short] = [:]

    struct Short: Equatable {
        var takesValue: Bool
        var long: String?
    }

    /// Reads the option lines of an argument-parser help text:
    /// `  -D, --pgdata <directory>   …`, `  --no-manifest   …`, `  -?, --help   …`.
    init(helpText: String) {
        for line in helpText.split(separator: "\n") {
            let trimmed = line.drop(while: { $0 == " " })
            guard trimmed.hasPrefix("-") else { continue }
            // The names end where the description starts (two spaces), or at the line's end.
            let names = trimmed.firstRange(of: "  ").map { trimmed[..<$0.lowerBound] } ?? trimmed
            let tokens = names.split(separator: " ")
            let takesValue = tokens.contains { $0.hasPrefix("<") }
            var shortName: Character?, longNames: [String] = []
            for token in tokens {
                let word = token.hasSuffix(",") ? token.dropLast() : token
                if word.hasPrefix("--"), word.count > 2 { longNames.append(String(word.dropFirst(2))) }
                else if word.hasPrefix("-"), word.count == 2 { shortName = word.last }
            }
            for name in longNames { long[name] = takesValue }
            if let shortName { short[shortName] = Short(takesValue: takesValue, long: longNames.first) }
        }
    }

    /// The table read from `command`'s help, hidden options included.
    init(_ command: ParsableCommand.Type) {
        self.init(helpText: PGKeepCommand.helpMessage(for: command, includeHidden: true, columns: 10_000))
    }

    /// Reads a table written as `spec`: one word per option, `[letter/][long][=]` — `D/pgdata=`
    /// (-D and --pgdata, with a value), `no-sync` (a long flag), `?/help`; `=` marks a value.
    init(spec: String) {
        for word in spec.split(separator: " ") {
            let takesValue = word.hasSuffix("=")
            let names = takesValue ? word.dropLast() : word
            let slash = names.firstIndex(of: "/")
            let name = slash.map { names[names.index(after: $0)...] } ?? names
            if !name.isEmpty { long[String(name)] = takesValue }
            if let slash, let letter = names[..<slash].first {
                short[letter] = Short(takesValue: takesValue, long: name.isEmpty ? nil : String(name))
            }
        }
    }

    /// The table as `init(spec:)` reads it, options in a stable order.
    var spec: String {
        let shortNames = Set(short.values.compactMap(\.long))
        let shorts = short.map { letter, option in "\(letter)/\(option.long ?? "")\(option.takesValue ? "=" : "")" }
        let longs = long.filter { !shortNames.contains($0.key) }.map { name, takesValue in name + (takesValue ? "=" : "") }
        return (shorts + longs).sorted().joined(separator: " ")
    }

    init(long: [String: Bool], short: [Character: Short]) {
        self.long = long
        self.short = short
    }
}

enum GetoptArguments {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Rewrites `arguments` (without the program and subcommand names) by `table`.
    static func normalize(_ arguments: [String], table: GetoptTable) throws -> [String] {
        var out: [String] = []
        var index = 0
        func nextValue(for option: String) throws -> String {
            index += 1
            guard index < arguments.count else { throw Failure(description: "option '\(option)' requires an argument") }
            return arguments[index]
        }
        while index < arguments.count {
            let argument = arguments[index]
            defer { index += 1 }
            if argument == "--" {
                out += arguments[index...]
                index = arguments.count
                break
            }
            if argument.hasPrefix("--") {
                let body = argument.dropFirst(2)
                let (name, attached) = body.firstIndex(of: "=").map { (String(body[..<$0]), Optional(String(body[body.index(after: $0)...]))) }
                    ?? (String(body), nil)
                guard let resolved = try resolve(name, in: table) else {
                    out.append(argument) // unknown: the parser says so in its own words
                    continue
                }
                if table.long[resolved] == true {
                    let value = try attached ?? nextValue(for: "--" + resolved)
                    // "--name=" would read as a missing value: an empty one goes as its own word.
                    out += value.isEmpty ? ["--\(resolved)", ""] : ["--\(resolved)=\(value)"]
                } else {
                    if attached != nil { throw Failure(description: "option '--\(resolved)' doesn't allow an argument") }
                    out.append("--\(resolved)")
                }
                continue
            }
            guard argument.hasPrefix("-"), argument.count > 1 else {
                out.append(argument) // a positional value, or "-" (standard output)
                continue
            }
            // A cluster of short options: flags, then at most one option whose value is the rest
            // of the word or the next argument.
            var letters = argument.dropFirst()
            while let letter = letters.first {
                letters = letters.dropFirst()
                guard let short = table.short[letter] else {
                    out.append("-\(letter)") // unknown: left for the parser to refuse
                    continue
                }
                let spelled = short.long.map { "--" + $0 } ?? "-\(letter)"
                if short.takesValue {
                    let value = letters.isEmpty ? try nextValue(for: "-\(letter)") : String(letters)
                    out += short.long != nil && !value.isEmpty ? ["\(spelled)=\(value)"] : [spelled, value]
                    break
                }
                out.append(spelled)
            }
        }
        return out
    }

    /// getopt_long's matching: an exact name, else the one name the text abbreviates.
    static func resolve(_ name: String, in table: GetoptTable) throws -> String? {
        if table.long[name] != nil { return name }
        let candidates = table.long.keys.filter { $0.hasPrefix(name) }.sorted()
        guard candidates.count <= 1 else {
            throw Failure(description: "option '--\(name)' is ambiguous; possibilities: " + candidates.map { "'--\($0)'" }.joined(separator: " "))
        }
        return candidates.first
    }
}
