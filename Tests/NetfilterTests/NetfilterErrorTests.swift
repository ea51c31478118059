import Glibc
import Netfilter
import Testing

@Suite struct NetfilterErrorTests {
    @Test func descriptionNamesOperationErrnoTextAndMessage() {
        let error = NetfilterError(operation: "nflog_bind_group", errno: EPERM, message: "NFLOG group 5 is taken")
        #expect(
            error.description
                == "nflog_bind_group failed: Operation not permitted (errno \(EPERM)): NFLOG group 5 is taken"
        )
    }

    @Test func descriptionWithOnlyAnOperation() {
        #expect(NetfilterError(operation: "nft_ctx_new").description == "nft_ctx_new failed")
    }

    @Test func descriptionWithErrnoOnly() {
        let error = NetfilterError(operation: "poll", errno: EPERM)
        #expect(error.description == "poll failed: Operation not permitted (errno 1)")
    }

    @Test func libnftablesErrorBufferKeepsItsLinesAndLosesTheTrailingNewline() {
        let buffer = """
            Error: syntax error, unexpected junk
            junk
            ^^^^

            """
        let error = NetfilterError(operation: "nft_run_cmd_from_buffer", message: buffer)
        #expect(
            error.description
                == "nft_run_cmd_from_buffer failed:\nError: syntax error, unexpected junk\njunk\n^^^^"
        )
    }

    @Test func emptyMessageIsLeftOut() {
        #expect(
            NetfilterError(operation: "recv", errno: EIO, message: "").description
                == "recv failed: Input/output error (errno 5)")
    }

    @Test func equalityComparesEveryField() {
        let error = NetfilterError(operation: "recv", errno: EIO, message: "m")
        #expect(error == NetfilterError(operation: "recv", errno: EIO, message: "m"))
        #expect(error != NetfilterError(operation: "recv", errno: EAGAIN, message: "m"))
        #expect(error != NetfilterError(operation: "recv", errno: EIO, message: nil))
        #expect(error != NetfilterError(operation: "poll", errno: EIO, message: "m"))
    }
}
