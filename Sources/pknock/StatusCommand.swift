import ArgumentParser
import Foundation
import KnockConfig
import KnockControl
import KnockCore

/// The `--control-socket` option of the commands that talk to pknockd.
struct ControlSocketOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp("pknockd's control socket (default: control_socket of the configuration, else /run/pknock/control.sock).", valueName: "path"))
    var controlSocket: String?

    @Option(name: .long, help: ArgumentHelp("Configuration whose control_socket to use.", valueName: "file"))
    var config: String?

    /// The socket path: the option, else the configuration's (when it loads), else the default.
    var path: String {
        if let controlSocket { return controlSocket }
        let file = config ?? ConfigLoader.defaultPath
        if FileManager.default.fileExists(atPath: file), let configuration = try? ConfigLoader.load(path: file) {
            return configuration.daemon.controlSocket
        }
        return DaemonSettings.defaultControlSocket
    }

    /// Runs `body` with the socket path, throwing a client failure (or the daemon's refusal) as
    /// exit status 1 with its message.
    func call<T>(_ body: (String) throws(ControlClient.Failure) -> T) throws -> T {
        do {
            return try body(path)
        } catch {
            throw CLIFailure(error.message)
        }
    }
}

/// An error `pknock` reports as "pknock: MESSAGE" with exit status 1.
struct CLIFailure: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// `pknock status`: the peers each rule tracks, like the original's /proc/net/xt_pknock/NAME.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the peers pknockd tracks, per rule.",
        discussion: """
            One block per rule: a "rule NAME (N peers)" line, then one line per peer in the format of the \
            original's /proc/net/xt_pknock/NAME: src=ADDRESS proto=TCP|UDP status=MATCHING|ALLOWED \
            accepted_knock_count=N, then for a peer mid-sequence expir_time=SECONDS-LEFT (when the rule \
            has a time limit) next_port_id=INDEX next_port=PORT:PROTO, and for an allowed peer \
            autoclose_time=SECONDS-LEFT (when the rule has autoclose). --json prints the daemon's reply \
            (see Docs/control-protocol.md). Exit status: 0, or 1 when pknockd cannot be reached or the \
            rule does not exist.
            """
    )

    @Argument(help: "Only this rule.")
    var rule: String?

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @OptionGroup var socket: ControlSocketOptions

    func validate() throws {
        if let rule, let problem = RuleName.problem(with: rule) { throw ValidationError(problem) }
    }

    func run() throws {
        let name = rule.flatMap(RuleName.init(rawValue:))
        let (rules, fleet) = try socket.call { path throws(ControlClient.Failure) in
            try ControlClient.statusWithFleet(rule: name, socketPath: path)
        }
        if json {
            print(ControlReply.status(rules, fleet: fleet).line)
        } else {
            print(RuleStatusReport.text(rules), terminator: "")
            if let fleet { print(fleet.text) }
        }
    }
}
