import KnockCore
import KnockPOSIX

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The client side of the control socket, used by `pknock status|events|open|close`.
public enum ControlClient {
    /// Why a control request could not be made, or what pknockd answered when it refused.
    public struct Failure: Error, Equatable, Sendable, CustomStringConvertible {
        /// What went wrong, for the user.
        public var message: String
        /// Makes a failure.
        public init(_ message: String) { self.message = message }
        /// The message.
        public var description: String { message }
    }

    /// The tracked peers of `rule` (nil: of every rule).
    public static func status(rule: RuleName?, socketPath: String) throws(Failure) -> [RuleStatusReport] {
        try statusWithFleet(rule: rule, socketPath: socketPath).rules
    }

    /// As ``status(rule:socketPath:)``, with the fleet's state when the gateway is in one.
    public static func statusWithFleet(rule: RuleName?, socketPath: String) throws(Failure) -> (rules: [RuleStatusReport], fleet: FleetStatusReport?) {
        guard case .status(let rules, let fleet) = try send(.status(rule: rule), socketPath: socketPath) else {
            throw Failure("pknockd answered status with something else")
        }
        return (rules, fleet)
    }

    /// Asks pknockd to allow `peer` under `rule`; returns what it did, in words.
    public static func open(rule: RuleName, peer: PeerAddress, duration: Duration?, socketPath: String) throws(Failure) -> String {
        try done(send(.open(rule: rule, peer: peer, duration: duration), socketPath: socketPath))
    }

    /// Asks pknockd to revoke `peer`'s access under `rule`; returns what it did, in words.
    public static func close(rule: RuleName, peer: PeerAddress, socketPath: String) throws(Failure) -> String {
        try done(send(.close(rule: rule, peer: peer), socketPath: socketPath))
    }

    private static func done(_ reply: ControlReply) throws(Failure) -> String {
        guard case .done(let result) = reply else { throw Failure("pknockd answered with something else") }
        return result
    }

    /// Sends one request and returns the reply.
    ///
    /// A ``ControlReply/failure(_:)`` reply is thrown as a ``Failure`` with pknockd's message.
    /// `events` is refused: use ``follow(socketPath:onEvent:)``.
    public static func send(_ request: ControlRequest, socketPath: String, timeout: Duration = .seconds(10)) throws(Failure) -> ControlReply {
        precondition(request != .events, "use follow(socketPath:onEvent:) for events")
        let socket = try connect(socketPath)
        defer { socket.close() }
        socket.setTimeouts(read: timeout, write: timeout)
        guard socket.writeLine(request.line) else { throw Failure("pknockd closed the control connection") }
        let reply: ControlReply
        switch socket.readLine(limit: ControlFraming.maximumReplyLength) {
        case .line(let bytes): reply = try parse(bytes)
        case .tooLong: throw Failure("pknockd's reply is too long")
        case .endOfStream: throw Failure("pknockd closed the control connection without replying")
        case .failed: throw Failure("no reply from pknockd within \(timeout)")
        }
        if case .failure(let message) = reply { throw Failure(message) }
        return reply
    }

    /// Follows the event stream, calling `onEvent` with each event until it returns false.
    ///
    /// Throws when the daemon goes away. Lines that are not events are skipped.
    public static func follow(socketPath: String, onEvent: (EventReport) -> Bool) throws(Failure) {
        let socket = try connect(socketPath)
        defer { socket.close() }
        socket.setTimeouts(read: .seconds(10), write: .seconds(10))
        guard socket.writeLine(ControlRequest.events.line) else { throw Failure("pknockd closed the control connection") }
        guard case .line(let first) = socket.readLine(limit: ControlFraming.maximumEventLength) else {
            throw Failure("no reply from pknockd")
        }
        switch try parse(first) {
        case .following: break
        case .failure(let message): throw Failure(message)
        default: throw Failure("pknockd answered events with something else")
        }
        socket.setTimeouts(read: nil, write: .seconds(10))
        while true {
            switch socket.readLine(limit: ControlFraming.maximumEventLength) {
            case .line(let bytes):
                guard let event = try? EventReport(parsing: bytes) else { continue }
                if !onEvent(event) { return }
            case .endOfStream: throw Failure("pknockd closed the event stream")
            case .tooLong, .failed: throw Failure("the event stream broke")
            }
        }
    }

    private static func parse(_ bytes: [UInt8]) throws(Failure) -> ControlReply {
        do {
            return try ControlReply(parsing: bytes)
        } catch {
            throw Failure(error.message)
        }
    }

    /// Connects to `path`, translating the usual errors into advice.
    static func connect(_ path: String) throws(Failure) -> LineSocket {
        do {
            return try LineSocket.connect(unixPath: path)
        } catch {
            switch error.errno {
            case ENOENT, ECONNREFUSED:
                throw Failure("pknockd is not running, or not with control socket \(path) (\(error.reason))")
            case EACCES, EPERM:
                throw Failure("no permission to use \(path): the control socket is root-only")
            default:
                throw Failure("cannot connect to \(path): \(error.reason)")
            }
        }
    }
}
