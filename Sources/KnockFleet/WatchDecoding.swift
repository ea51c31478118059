import Foundation
import KnockCore

/// Splits a byte stream of concatenated JSON objects (the gateway's watch stream, with or without
/// newlines between them) into whole objects.
///
/// Empty on init. Not safe for concurrent use; owned by one watch.
public struct JSONObjectSplitter: Sendable {
    private var buffer: [UInt8] = []
    private var depth = 0
    private var inString = false
    private var escaped = false
    private var start: Int?
    /// The largest object accepted; a longer one is a protocol error.
    public let maximumObjectSize: Int

    /// Makes a splitter.
    public init(maximumObjectSize: Int = 16 << 20) { self.maximumObjectSize = maximumObjectSize }

    /// Adds `bytes`; returns the objects they complete.
    ///
    /// Throws when an object grows past the maximum.
    public mutating func feed(_ bytes: some Sequence<UInt8>) throws(FleetError) -> [[UInt8]] {
        var objects: [[UInt8]] = []
        for byte in bytes {
            if start == nil {
                // Between objects: skip whitespace and anything else until an object opens.
                guard byte == UInt8(ascii: "{") else { continue }
                start = 0
                buffer.removeAll(keepingCapacity: true)
            }
            buffer.append(byte)
            if buffer.count > maximumObjectSize { throw FleetError("a watch message is larger than \(maximumObjectSize) bytes") }
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "}"):
                depth -= 1
                if depth == 0 {
                    objects.append(buffer)
                    start = nil
                }
            default: break
            }
        }
        return objects
    }
}

/// An error of the fleet's etcd client, in words.
public struct FleetError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public var message: String
    /// Makes an error.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// What one watch message means for the mirror.
public enum WatchUpdate: Equatable, Sendable {
    /// The watch is set up.
    case created(revision: Int64)
    /// Changes to grants, in order, and the revision they bring the mirror to.
    case changes([GrantChange], revision: Int64)
    /// A progress notification: nothing changed up to `revision`.
    case progress(revision: Int64)
    /// The start revision was compacted away: range again and watch from there.
    case compacted(revision: Int64)
    /// The server ended the watch (for example no leader); watch again.
    case canceled(reason: String)
}

/// One change to a grant key.
public enum GrantChange: Equatable, Sendable {
    /// A grant was put (or replaced) at `revision`.
    case put(rule: RuleName, peer: PeerAddress, value: GrantValue, revision: Int64)
    /// A grant was deleted (revoked, or its lease ran out).
    case delete(rule: RuleName, peer: PeerAddress, revision: Int64)
}

extension WatchUpdate {
    /// Decodes one watch message; keys outside the grants and unreadable values are skipped.
    public static func decode(_ object: [UInt8], layout: FleetKeyLayout) throws(FleetError) -> WatchUpdate {
        let message: EtcdMessages.WatchMessage
        do {
            message = try JSONDecoder().decode(EtcdMessages.WatchMessage.self, from: Data(object))
        } catch {
            throw FleetError("unreadable watch message: \(error)")
        }
        if let failure = message.error { throw FleetError("watch failed: \(failure.message ?? "code \(failure.code ?? 0)")") }
        guard let result = message.result else { throw FleetError("watch message without a result") }
        let revision = result.header?.revisionNumber ?? 0
        if let compacted = result.compact_revision.flatMap(Int64.init), compacted > 0 { return .compacted(revision: compacted) }
        if result.canceled == true { return .canceled(reason: result.cancel_reason ?? "canceled by the server") }
        if result.created == true { return .created(revision: revision) }
        guard let events = result.events, !events.isEmpty else { return .progress(revision: revision) }
        var changes: [GrantChange] = []
        for event in events {
            guard let kv = event.kv, let (rule, peer) = layout.grant(fromKey: kv.keyText) else { continue }
            if event.type == "DELETE" {
                changes.append(.delete(rule: rule, peer: peer, revision: kv.modRevision))
            } else if let value = GrantValue(json: kv.valueBytes) {
                changes.append(.put(rule: rule, peer: peer, value: value, revision: kv.modRevision))
            }
        }
        return .changes(changes, revision: revision)
    }
}
