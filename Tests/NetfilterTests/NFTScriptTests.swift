import Netfilter
import Testing

@Suite struct NFTScriptTests {
    @Test func linesAreJoinedWithNewlines() {
        let script = NFTScript(lines: ["add table inet pknock", "flush table inet pknock"])
        #expect(script.text == "add table inet pknock\nflush table inet pknock")
    }

    @Test func stringLiteralIsTheText() {
        let script: NFTScript = "list tables"
        #expect(script == NFTScript("list tables"))
        #expect(script.description == "list tables")
    }

    @Test(arguments: [
        ("", true), ("  \n\t", true), ("list tables", false), ("\nlist tables\n", false),
    ])
    func isEmptyMeansOnlyWhitespace(text: String, empty: Bool) {
        #expect(NFTScript(text).isEmpty == empty)
    }

    @Test func appendingPutsTheSecondScriptOnItsOwnLine() {
        let first: NFTScript = "add table inet t"
        let second: NFTScript = "add chain inet t c"
        #expect((first + second).text == "add table inet t\nadd chain inet t c")
        #expect(NFTScript("add table inet t\n").appending(second).text == "add table inet t\nadd chain inet t c")
    }

    @Test func appendingAnEmptyScriptChangesNothing() {
        let script: NFTScript = "add table inet t"
        #expect(script + "" == script)
        #expect("" + script == script)
    }
}
