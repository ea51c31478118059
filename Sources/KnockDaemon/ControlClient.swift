import Foundation

/// The client side of the control socket, used by `pknock status|events|open|close`.
public enum ControlClient {
    /// Why a control request could not be made.
    public struct Failure: Error, Equatable, Sendable, CustomStringConvertible {
        /// What went wrong, for the user.
        public var message: String
        /// Makes a failure.
        public init(_ message: String) { self.message = message }
        /// The message.
        public var description: String { message }
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

    /// Sends one request and returns the reply.
    ///
    /// `events` is refused: use ``follow(socketPath:onEvent:)``.
    public static func send(_ request: ControlRequest, socketPath: String, timeout: Duration = .seconds(10)) throws(Failure) -> ControlReply {
        precondition(request != .events, "use follow(socketPath:onEvent:) for events")
        let socket = try connect(socketPath)
        defer { socket.close() }
        socket.setTimeouts(read: timeout, write: timeout)
        guard socket.writeLine(request.line) else { throw Failure("pknockd closed the control connection") }
        switch socket.readLine(limit: 64 << 20) {
        case .line(let bytes):
            do {
                return try ControlReply(parsing: bytes)
            } catch {
                throw Failure(error.message)
            }
        case .tooLong: throw Failure("pknockd's reply is too long")
        case .endOfStream: throw Failure("pknockd closed the control connection without replying")
        case .failed: throw Failure("no reply from pknockd within \(timeout)")
        }
    }

    /// Follows the event stream, calling `onEvent` with each event until it returns false or the
    /// daemon goes away (which throws).
    public static func follow(socketPath: String, onEvent: (EventReport) -> Bool) throws(Failure) {
        let socket = try connect(socketPath)
        defer { socket.close() }
        socket.setTimeouts(read: .seconds(10), write: .seconds(10))
        guard socket.writeLine(ControlRequest.events.line) else { throw Failure("pknockd closed the control connection") }
        guard case .line(let first) = socket.readLine(limit: 1 << 20) else { throw Failure("no reply from pknockd") }
        let reply: ControlReply
        do {
            reply = try ControlReply(parsing: first)
        } catch {
            throw Failure(error.message)
        }
        guard reply.ok else { throw Failure(reply.error ?? "pknockd refused") }
        socket.setTimeouts(read: nil, write: .seconds(10))
        while true {
            switch socket.readLine(limit: 1 << 20) {
            case .line(let bytes):
                guard let event = try? EventReport(parsing: bytes) else { continue }
                if !onEvent(event) { return }
            case .endOfStream: throw Failure("pknockd closed the event stream")
            case .tooLong, .failed: throw Failure("the event stream broke")
            }
        }
    }
}
