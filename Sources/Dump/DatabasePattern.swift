/// A database name pattern as psql reads one (\l, pg_dumpall --exclude-database): `*` any
/// run of characters, `?` one character, unquoted letters folded to lower case, double quotes
/// keeping what they hold literally ("" is a quote). Everything else matches itself.
public struct DatabasePattern: Equatable, Sendable, CustomStringConvertible {
    enum Token: Equatable, Sendable {
        case literal(Character)
        case anyRun
        case anyOne
    }

    let tokens: [Token]
    public let description: String

    public init(_ text: String) {
        description = text
        var tokens: [Token] = []
        var quoted = false
        var characters = Array(text)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if character == "\"" {
                if quoted, index + 1 < characters.count, characters[index + 1] == "\"" {
                    tokens.append(.literal("\""))
                    index += 2
                    continue
                }
                quoted.toggle()
            } else if quoted {
                tokens.append(.literal(character))
            } else if character == "*" {
                tokens.append(.anyRun)
            } else if character == "?" {
                tokens.append(.anyOne)
            } else {
                tokens.append(.literal(Character(character.lowercased())))
            }
            index += 1
        }
        characters.removeAll()
        self.tokens = tokens
    }

    public func matches(_ name: String) -> Bool {
        let name = Array(name)
        // Classic glob matching with backtracking on the last `*`.
        var n = 0, t = 0
        var star: (token: Int, name: Int)?
        while n < name.count {
            if t < tokens.count {
                switch tokens[t] {
                case .anyRun:
                    star = (t, n)
                    t += 1
                    continue
                case .anyOne:
                    n += 1; t += 1
                    continue
                case .literal(let character) where character == name[n]:
                    n += 1; t += 1
                    continue
                default:
                    break
                }
            }
            guard let (starToken, starName) = star else { return false }
            t = starToken + 1
            n = starName + 1
            star = (starToken, starName + 1)
        }
        while t < tokens.count, tokens[t] == .anyRun { t += 1 }
        return t == tokens.count
    }
}

/// A database's directory in a dump: its name when that is safe as one path component, else the
/// name with `%XX` for each unsafe character ('/', '%', control characters, a leading '.').
/// Reversible; databases.json records the mapping too.
public enum DumpDirectoryName {
    public static func encode(_ name: String) -> String {
        var out = ""
        for (index, scalar) in name.unicodeScalars.enumerated() {
            let value = scalar.value
            if scalar == "/" || scalar == "%" || value < 0x20 || value == 0x7F || (index == 0 && scalar == ".") {
                out += "%" + (value < 16 ? "0" : "") + String(value, radix: 16, uppercase: true)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    public static func decode(_ directory: String) -> String {
        var bytes: [UInt8] = []
        let utf8 = Array(directory.utf8)
        var index = 0
        while index < utf8.count {
            if utf8[index] == UInt8(ascii: "%"), index + 2 < utf8.count,
               let value = UInt8(String(decoding: utf8[index + 1...index + 2], as: UTF8.self), radix: 16) {
                bytes.append(value)
                index += 3
            } else {
                bytes.append(utf8[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Words of an argument string as a shell splits plain words and quotes (no expansion): dump_opt,
/// --dump-opt. nil when a quote is left open.
public enum ShellWords {
    public static func split(_ text: String) -> [String]? {
        var words: [String] = [], current = "", inWord = false
        var quote: Character?
        var escaped = false
        for character in text {
            if escaped { current.append(character); escaped = false; inWord = true; continue }
            if let open = quote {
                if character == open { quote = nil } else if character == "\\" && open == "\"" { escaped = true } else { current.append(character) }
                continue
            }
            switch character {
            case "'", "\"": quote = character; inWord = true
            case "\\": escaped = true
            case " ", "\t", "\n":
                if inWord { words.append(current); current = ""; inWord = false }
            default: current.append(character); inWord = true
            }
        }
        if quote != nil || escaped { return nil }
        if inWord { words.append(current) }
        return words
    }
}
