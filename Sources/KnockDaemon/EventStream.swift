import Foundation
import KnockControl
import KnockCore
import Synchronization

/// Fans events out from the intake loop to any number of `pknock events` readers.
///
/// ``publish(_:wallTime:)`` never blocks on a reader: each subscriber has a bounded buffer, and when
/// it is full the event is dropped and counted for that subscriber, which hears the count with its
/// next events. Safe for concurrent use.
public final class EventHub: Sendable {
    /// Events a subscriber may have waiting before new ones are dropped for it.
    public let bufferCapacity: Int
    private let subscribers = Mutex<[ObjectIdentifier: EventSubscription]>([:])
    private let subscriberCount = Atomic<Int>(0)

    /// Makes a hub whose subscribers each buffer at most `bufferCapacity` events.
    public init(bufferCapacity: Int = 1024) {
        self.bufferCapacity = max(1, bufferCapacity)
    }

    /// How many readers follow the stream.
    public var count: Int { subscriberCount.load(ordering: .relaxed) }

    /// Adds a reader; call ``EventSubscription/cancel()`` when it goes away.
    public func subscribe() -> EventSubscription {
        let subscription = EventSubscription(capacity: bufferCapacity, hub: self)
        subscribers.withLock { $0[ObjectIdentifier(subscription)] = subscription }
        subscriberCount.add(1, ordering: .relaxed)
        return subscription
    }

    func remove(_ subscription: EventSubscription) {
        let removed = subscribers.withLock { $0.removeValue(forKey: ObjectIdentifier(subscription)) }
        if removed != nil { subscriberCount.subtract(1, ordering: .relaxed) }
    }

    /// Hands `event` to every reader.
    ///
    /// Encodes it once, and not at all when nobody listens (then `wallTime` is not even read: every
    /// knock of a flood comes here).
    public func publish(_ event: KnockEvent, wallTime: @autoclosure () -> WallTime) {
        guard count > 0 else { return }
        let line = EventReport(event, wallTime: wallTime()).line
        let current = subscribers.withLock { Array($0.values) }
        for subscription in current { subscription.offer(line) }
    }
}

/// One reader's bounded queue of encoded event lines.
public final class EventSubscription: @unchecked Sendable {
    // @unchecked: every stored var is guarded by `condition`.
    private let condition = NSCondition()
    private var lines: [String] = []
    private var dropped = 0
    private var cancelled = false
    private let capacity: Int
    private weak var hub: EventHub?

    init(capacity: Int, hub: EventHub) {
        self.capacity = capacity
        self.hub = hub
    }

    func offer(_ line: String) {
        condition.lock()
        defer { condition.unlock() }
        guard !cancelled else { return }
        if lines.count >= capacity {
            dropped += 1
        } else {
            lines.append(line)
        }
        condition.signal()
    }

    /// Waits until events are waiting or `timeout` passes, then takes them: the lines in order and
    /// how many were dropped since the last call.
    ///
    /// Returns nil once cancelled.
    public func next(timeout: Duration) -> (lines: [String], dropped: Int)? {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: Double(timeout.nanosecondsClamped) / 1e9)
        while lines.isEmpty && dropped == 0 && !cancelled {
            if !condition.wait(until: deadline) { break }
        }
        if cancelled { return nil }
        let taken = (lines, dropped)
        lines = []
        dropped = 0
        return taken
    }

    /// Stops the subscription and removes it from its hub.
    public func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
        hub?.remove(self)
    }
}
