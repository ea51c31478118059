import Foundation
import KnockControl
import KnockCore
import KnockPOSIX
import Logging
import Synchronization

/// Hands control requests from the socket threads to the intake loop, which owns the engine.
///
/// Socket threads ``submit(_:timeout:)`` and block; a submit wakes the loop (through `wake`), which
/// calls ``drain(_:)`` and answers every pending request in order. Safe for concurrent use.
public final class ControlMailbox: Sendable {
    final class Pending: @unchecked Sendable {
        // @unchecked: `reply` is written by the loop thread before `done.signal()` and read after `wait`.
        let request: ControlRequest
        var reply: ControlReply?
        let done = DispatchSemaphore(value: 0)
        init(_ request: ControlRequest) { self.request = request }
    }

    private let pending = Mutex<[Pending]>([])
    /// The most requests waiting at once; more are refused at once.
    public let capacity: Int

    /// Woken on every submit: the intake loop's ``DaemonControl/wake``.
    private let wake: WakeSignal?

    /// Makes an empty mailbox holding at most `capacity` requests; each submit wakes `wake`.
    public init(capacity: Int = 64, wake: WakeSignal? = nil) {
        self.capacity = capacity
        self.wake = wake
    }

    /// Queues `request` and waits for the loop's reply; an error reply if the loop does not answer
    /// within `timeout` or the mailbox is full.
    public func submit(_ request: ControlRequest, timeout: Duration = .seconds(5)) -> ControlReply {
        let item = Pending(request)
        let accepted = pending.withLock { queue in
            guard queue.count < capacity else { return false }
            queue.append(item)
            return true
        }
        guard accepted else { return .failure("pknockd is busy; try again") }
        wake?.wake()
        let deadline = DispatchTime.now() + .nanoseconds(Int(timeout.nanosecondsClamped))
        guard item.done.wait(timeout: deadline) == .success else {
            pending.withLock { queue in queue.removeAll { $0 === item } }
            // The loop may have answered in between.
            if item.done.wait(timeout: .now()) == .success, let reply = item.reply { return reply }
            return .failure("pknockd did not answer in time")
        }
        return item.reply ?? .failure("pknockd did not answer")
    }

    /// Answers every waiting request with `answer`, in arrival order.
    ///
    /// Call from the loop thread.
    public func drain(_ answer: (ControlRequest) -> ControlReply) {
        let items = pending.withLock { queue in
            let taken = queue
            queue.removeAll()
            return taken
        }
        for item in items {
            item.reply = answer(item.request)
            item.done.signal()
        }
    }
}

/// The control socket server: accepts connections on its own thread, reads JSON-lines requests on a
/// thread per connection, and never touches the engine itself (requests go through a ``ControlMailbox``).
///
/// A connection may send several requests; `events` turns it into an event stream until it closes.
/// Bad requests get an error reply; an overlong line gets one and the connection is closed.
public final class ControlServer: Sendable {
    /// The most connections served at once; more get an error reply and are closed.
    public static let maximumConnections = 64

    private let listener: ListeningSocket
    private let mailbox: ControlMailbox
    private let events: EventHub
    private let logger: Logger
    private let connections = Mutex<[ObjectIdentifier: LineSocket]>([:])
    private let stopped = Atomic<Bool>(false)

    /// Listens on `path` (see ``ListeningSocket/unix(path:backlog:)`` for permissions) and starts accepting.
    public init(path: String, mailbox: ControlMailbox, events: EventHub, logger: Logger) throws(SystemCallError) {
        self.listener = try ListeningSocket.unix(path: path)
        self.mailbox = mailbox
        self.events = events
        self.logger = logger
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "pknockd-control"
        thread.start()
    }

    /// Stops accepting, closes every connection and removes the socket file.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        listener.close()
        // Under the lock: a connection's thread closes its descriptor under the same lock, so this
        // never shuts down a descriptor number that has been closed and reused.
        connections.withLock { table in
            for connection in table.values { connection.shutdown() }
        }
    }

    private func acceptLoop() {
        while let connection = listener.accept() {
            if stopped.load(ordering: .acquiring) {
                connection.close()
                continue
            }
            let admitted = connections.withLock { table in
                guard table.count < Self.maximumConnections else { return false }
                table[ObjectIdentifier(connection)] = connection
                return true
            }
            guard admitted else {
                connection.setTimeouts(read: nil, write: .seconds(1))
                connection.writeLine(ControlReply.failure("too many control connections").line)
                connection.close()
                continue
            }
            let thread = Thread { [self] in
                serve(connection)
                connections.withLock { table in
                    table.removeValue(forKey: ObjectIdentifier(connection))
                    connection.close()
                }
            }
            thread.name = "pknockd-control-conn"
            thread.start()
        }
    }

    private func serve(_ connection: LineSocket) {
        // A client that sends nothing for a minute is gone; a write blocked for 5 s is a stuck reader.
        connection.setTimeouts(read: .seconds(60), write: .seconds(5))
        while !stopped.load(ordering: .acquiring) {
            switch connection.readLine(limit: ControlFraming.maximumRequestLength) {
            case .endOfStream, .failed:
                return
            case .tooLong:
                connection.writeLine(ControlReply.failure("request line too long (limit \(ControlFraming.maximumRequestLength) bytes)").line)
                return
            case .line(let bytes):
                if ControlFraming.isBlank(bytes) { continue }
                let request: ControlRequest
                do {
                    request = try ControlRequest(parsing: bytes)
                } catch {
                    logger.debug("control request refused", metadata: ["control.error": "\(error)"])
                    guard connection.writeLine(ControlReply.failure(error.message).line) else { return }
                    continue
                }
                if request == .events {
                    follow(connection)
                    return
                }
                guard connection.writeLine(mailbox.submit(request).line) else { return }
            }
        }
    }

    private func follow(_ connection: LineSocket) {
        let subscription = events.subscribe()
        defer { subscription.cancel() }
        guard connection.writeLine(ControlReply.following.line) else { return }
        logger.debug("event reader connected", metadata: ["control.readers": "\(events.count)"])
        while !stopped.load(ordering: .acquiring) {
            guard let (lines, dropped) = subscription.next(timeout: .seconds(1)) else { return }
            var batch = ""
            if dropped > 0 { batch += EventReport(droppedCount: dropped).line + "\n" }
            for line in lines { batch += line + "\n" }
            if batch.isEmpty {
                // Notice a reader that hung up even when nothing happens.
                if connection.peerHasHungUp { return }
                continue
            }
            guard connection.write(Array(batch.utf8)) else { return }
        }
    }
}
