import ArgumentParser
import KnockControl
import KnockCore

/// `pknock close`: take an address's access under a rule away now.
struct Close: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Revoke an address's access under a rule.",
        discussion: """
            Removes ADDRESS from the rule's allowed set (connections already established stay up, as with \
            autoclose). The revocation is reported on the event stream and runs the rule's on_close hook. \
            Exit status: 0, or 1 when pknockd cannot be reached or the rule does not exist.
            """
    )

    @Argument(help: "The rule.")
    var rule: String

    @Argument(help: "The IPv4 or IPv6 address.")
    var address: String

    @OptionGroup var socket: ControlSocketOptions

    func validate() throws {
        _ = try parsedRequest()
    }

    func parsedRequest() throws -> ControlRequest {
        guard let name = RuleName(rawValue: rule) else { throw ValidationError(RuleName.problem(with: rule) ?? "invalid rule name") }
        guard let peer = PeerAddress(address) else { throw ValidationError("\"\(address)\" is not an IPv4 or IPv6 address") }
        return .close(rule: name, peer: peer)
    }

    func run() throws {
        guard case .close(let name, let peer) = try parsedRequest() else { return }
        print(try socket.call { path throws(ControlClient.Failure) in try ControlClient.close(rule: name, peer: peer, socketPath: path) })
    }
}
