import ArgumentParser
import KnockControl
import KnockCore

/// `pknock open`: let an address through a rule's ports now, as if it had knocked.
struct Open: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Allow an address under a rule, without knocking.",
        discussion: """
            Adds ADDRESS to the rule's allowed set for DURATION (e.g. 90s, 10m, 2h, 1d; a bare number is \
            seconds), or for the rule's autoclose when --for is not given. The grant is reported on the \
            event stream and runs the rule's on_open hook. Exit status: 0, or 1 when pknockd cannot be \
            reached, the rule does not exist or is full.
            """
    )

    @Argument(help: "The rule.")
    var rule: String

    @Argument(help: "The IPv4 or IPv6 address to allow.")
    var address: String

    @Option(name: .customLong("for"), help: ArgumentHelp("How long (default: the rule's autoclose).", valueName: "duration"))
    var duration: String?

    @OptionGroup var socket: ControlSocketOptions

    func validate() throws {
        _ = try parsedRequest()
    }

    func parsedRequest() throws -> ControlRequest {
        guard let name = RuleName(rawValue: rule) else { throw ValidationError(RuleName.problem(with: rule) ?? "invalid rule name") }
        guard let peer = PeerAddress(address) else { throw ValidationError("\"\(address)\" is not an IPv4 or IPv6 address") }
        var length: Duration?
        if let duration {
            switch Self.parseDuration(duration) {
            case .success(let parsed): length = parsed
            case .failure(let problem): throw ValidationError("--for: \(problem.message)")
            }
        }
        return .open(rule: name, peer: peer, duration: length)
    }

    func run() throws {
        guard case .open(let name, let peer, let duration) = try parsedRequest() else { return }
        print(
            try socket.call { path throws(ControlClient.Failure) in
                try ControlClient.open(rule: name, peer: peer, duration: duration, socketPath: path)
            })
    }

    /// "90", "90s", "10m", "2h", "1d" (the one duration syntax, a bare number in seconds), limited
    /// to what the control protocol takes: 1 second to 366 days.
    static func parseDuration(_ text: String) -> Result<Duration, Syntax.Problem> {
        Syntax.duration(text, bareUnitSeconds: 1).flatMap { duration in
            let maximum = ControlRequest.maximumOpenSeconds
            guard duration >= .seconds(1), duration <= .seconds(maximum) else {
                return .failure(Syntax.Problem("the duration \(text) is not between 1 second and 366 days"))
            }
            return .success(duration)
        }
    }
}
