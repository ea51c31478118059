import Foundation
import Testing

/// `pknock check` on hostile TOML (issue #11 item 9): a clear file:line error and exit 2, never a crash.
@Suite struct CheckLimitsTests {
    @Test func deeplyNestedArraysAreAnErrorNotACrash() throws {
        let examples = try CheckCommandTests.Examples()
        defer { examples.cleanUp() }
        // The report's document: 100,000 nested arrays, 200 KB.
        let path = try examples.write(
            "deep.toml", "# hostile\nx = " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n")
        let run = try CheckCommandTests.run(["check", path])
        #expect(run.status == 2)
        #expect(run.stdout == "")
        #expect(run.stderr == "\(path):2: nested too deeply: tables, arrays and inline tables may nest at most 64 levels\n")
    }

    @Test func aFileOverOneMebibyteIsRefused() throws {
        let examples = try CheckCommandTests.Examples()
        defer { examples.cleanUp() }
        let path = try examples.write("big.toml", String(repeating: "# padding\n", count: 110_000))
        let run = try CheckCommandTests.run(["check", path])
        #expect(run.status == 2)
        #expect(
            run.stderr
                == "\(path):104858: the file is larger than the limit of 1 MiB (1048576 bytes; it has 1100000); the limit is crossed on this line\n"
        )
    }

    /// What people copy from other TOML files: dotted keys, inline tables and multi-line strings load.
    @Test func dottedKeysAndInlineTablesLoad() throws {
        let examples = try CheckCommandTests.Examples()
        defer { examples.cleanUp() }
        let path = try examples.write(
            "dotted.toml",
            """
            daemon.table = "pk_dotted"
            daemon.nflog_group = 9

            [[rule]]
            name = "SSH"
            knock = [2002, 2001, 2004]
            protect = [22]
            on_open = '''
            logger opened'''
            """)
        let run = try CheckCommandTests.run(["check", path])
        #expect(run.status == 0)
        #expect(run.stderr == "")
        #expect(run.stdout.hasSuffix("configuration OK\n"))
    }

    @Test func aFloatIsRefusedWithItsKeyAndLine() throws {
        let examples = try CheckCommandTests.Examples()
        defer { examples.cleanUp() }
        let path = try examples.write(
            "float.toml", "[daemon]\nnflog_group = 1.5\n\n[[rule]]\nname = \"SSH\"\nknock = [2002]\nprotect = [22]\n")
        let run = try CheckCommandTests.run(["check", path])
        #expect(run.status == 2)
        #expect(run.stderr == "\(path):2: daemon.nflog_group: expected an integer, found a float; settings take whole numbers\n")
    }
}
