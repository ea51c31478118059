import ArgumentParser
import KnockCore
import KnockDaemon

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
            guard let parsed = Self.parseDuration(duration) else {
                throw ValidationError("--for: expected a duration like 90s, 10m, 2h or 1d, found \"\(duration)\"")
            }
            length = parsed
        }
        return .open(rule: name, peer: peer, duration: length)
    }

    func run() throws {
        let reply = try socket.send(try parsedRequest())
        print(reply.result ?? "ok")
    }

    /// "90", "90s", "10m", "2h", "1d" → a duration of 1 s to 366 days; nil otherwise.
    static func parseDuration(_ text: String) -> Duration? {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        var digits = Substring(text)
        var multiplier: Int64 = 1
        if let last = text.last, let unit = units[last] {
            digits = digits.dropLast()
            multiplier = unit
        }
        guard let value = Int64(digits), value > 0, value <= 366 * 86_400 / multiplier else { return nil }
        return .seconds(value * multiplier)
    }
}
