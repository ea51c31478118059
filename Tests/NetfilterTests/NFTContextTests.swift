import Netfilter
import Testing

/// libnftables without the kernel: these tests only parse, so they run anywhere, unprivileged,
/// and never touch the host's ruleset.
@Suite struct NFTContextTests {
    @Test func outputOptionsAreLibnftablesFlags() {
        // Values from <nftables/libnftables.h>.
        #expect(NFTContext.OutputOptions.handles.rawValue == 1 << 3)
        #expect(NFTContext.OutputOptions.json.rawValue == 1 << 4)
        #expect(NFTContext.OutputOptions.echo.rawValue == 1 << 5)
        #expect(NFTContext.OutputOptions.stateless.rawValue == 1 << 2)
        #expect(NFTContext.OutputOptions.terse.rawValue == 1 << 11)
        #expect(NFTContext.OutputOptions.numeric.rawValue == 0b1111 << 7)
    }

    @Test func outputOptionsReachTheContext() throws {
        let context = try NFTContext(output: .json)
        #expect(context.output == .json)
        context.output = [.handles, .stateless]
        #expect(context.output == [.handles, .stateless])
    }

    @Test func dryRunCanBeSwitched() throws {
        let context = try NFTContext()
        #expect(context.isDryRun == false)
        context.isDryRun = true
        #expect(context.isDryRun)
    }

    @Test func syntaxErrorThrowsTheErrorBuffer() throws {
        let context = try NFTContext()
        let error = #expect(throws: NetfilterError.self) {
            try context.run("this is not nft")
        }
        #expect(error?.operation == "nft_run_cmd_from_buffer")
        #expect(error?.errno == nil)
        #expect(error?.message?.contains("syntax error") == true)
        #expect(error?.message?.contains("this is not nft") == true)
    }

    @Test func errorBufferIsFreshForEachRun() throws {
        let context = try NFTContext()
        _ = try? context.run("first bad script")
        let error = #expect(throws: NetfilterError.self) {
            try context.run("second bad script")
        }
        #expect(error?.message?.contains("second bad script") == true)
        #expect(error?.message?.contains("first bad script") == false)
    }
}
