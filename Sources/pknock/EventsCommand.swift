import ArgumentParser
import Foundation
import KnockControl

/// `pknock events`: follow pknockd's event stream (the original's netlink notifications).
struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow pknockd's events: knocks matching, peers allowed, rejected, closed, expired.",
        discussion: """
            Prints one line per event until interrupted: TIME RULE src=PEER [proto=P port=N] event=KIND \
            and details (step=N/M, expected=PORT, reset, autoclose_time=S). KIND is one of MATCHING, \
            ALLOWED, DIDNT_MATCH, TIME_EXCEEDED, BLOCKED, BAD_MAC, CLOSED, AUTOCLOSED, EVICTED, \
            REFUSED_FULL. A reader that falls behind loses events rather than slowing pknockd, and is told \
            how many ("-- N events dropped"). --json prints the event objects of Docs/control-protocol.md.
            """
    )

    @Flag(help: "Print one JSON object per event.")
    var json = false

    @Option(help: ArgumentHelp("Exit after this many events.", valueName: "n"))
    var count: Int?

    @OptionGroup var socket: ControlSocketOptions

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func run() throws {
        var seen = 0
        do {
            try ControlClient.follow(socketPath: socket.path) { event in
                // One write per line so a pipe (e.g. into grep) sees each event at once.
                FileHandle.standardOutput.write(Data(((json ? event.line : event.text) + "\n").utf8))
                if event.event != .dropped { seen += 1 }
                return count.map { seen < $0 } ?? true
            }
        } catch {
            throw CLIFailure(error.message)
        }
    }
}
