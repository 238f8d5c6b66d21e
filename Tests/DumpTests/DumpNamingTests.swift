import Testing
@testable import Dump

@Suite struct DumpNamingTests {
    @Test("psql patterns: * and ?, letters folded unless quoted")
    func patterns() {
        #expect(DatabasePattern("app*").matches("app_prod"))
        #expect(DatabasePattern("APP*").matches("app_prod"), "unquoted letters fold to lower case")
        #expect(!DatabasePattern("\"APP\"*").matches("app_prod"), "quoted ones keep their case")
        #expect(DatabasePattern("\"APP\"*").matches("APP_x"))
        #expect(DatabasePattern("a?c").matches("abc") && !DatabasePattern("a?c").matches("ac"))
        #expect(DatabasePattern("*").matches("") && DatabasePattern("*x*y").matches("axbxcy"))
        #expect(DatabasePattern("my db").matches("my db") && !DatabasePattern("my db").matches("my dbx"))
        #expect(DatabasePattern("\"a\"\"b\"").matches("a\"b"), "a doubled quote inside quotes is a quote")
    }

    @Test("directory names: unsafe characters escaped, reversibly", arguments: ["plain", ".hidden", "a/b", "100%", "tab\there", "ünïcødé space", "..", "x\u{7F}"])
    func directories(name: String) {
        let directory = DumpDirectoryName.encode(name)
        #expect(!directory.contains("/") && !directory.hasPrefix(".") && !directory.contains("\t"))
        #expect(DumpDirectoryName.decode(directory) == name)
    }
}
