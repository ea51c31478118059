import Foundation
import KnockCore

/// Where the fleet keeps its keys in etcd, all under one prefix.
///
///     PREFIX/grants/RULE/PEER                      a grant (value: ``GrantValue``)
///     PREFIX/replay/spa1/RULE/PEER/EPOCH_MINUTE    an SPA v1 open (value: the origin node)
///     PREFIX/replay/spa2/RULE/NONCE_HEX            an SPA v2 nonce
///     PREFIX/replay/fwknop/RULE/DIGEST_HEX         an fwknop packet digest
///
/// PEER is the address as `pknock status` prints it.
public struct FleetKeyLayout: Equatable, Sendable {
    /// The prefix, without a trailing slash ("/pknock").
    public var prefix: String

    /// Makes a layout under `prefix`.
    public init(prefix: String) { self.prefix = prefix }

    /// The directory of all grants (ranged at start, watched after).
    public var grantsPrefix: String { prefix + "/grants/" }

    /// The key of `peer`'s grant under `rule`.
    public func grantKey(rule: RuleName, peer: PeerAddress) -> String {
        "\(grantsPrefix)\(rule.rawValue)/\(peer)"
    }

    /// The replay key of an SPA open of `peer` under `rule`.
    public func replayKey(_ key: ReplayKey, rule: RuleName, peer: PeerAddress) -> String {
        switch key {
        case .spa1(let minute): "\(prefix)/replay/spa1/\(rule.rawValue)/\(peer)/\(minute)"
        case .spa2(let nonce): "\(prefix)/replay/spa2/\(rule.rawValue)/\(Self.hex(nonce))"
        case .fwknop(let digest): "\(prefix)/replay/fwknop/\(rule.rawValue)/\(Self.hex(digest))"
        }
    }

    /// The rule and peer a grant key names; nil for any other key (or a malformed one).
    public func grant(fromKey key: String) -> (rule: RuleName, peer: PeerAddress)? {
        guard key.hasPrefix(grantsPrefix) else { return nil }
        let rest = key.dropFirst(grantsPrefix.count)
        guard let slash = rest.firstIndex(of: "/"), let rule = RuleName(rawValue: String(rest[..<slash])),
            let peer = PeerAddress(String(rest[rest.index(after: slash)...]))
        else { return nil }
        return (rule, peer)
    }

    /// Lowercase hex of `bytes`.
    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// The value of a grant key: when it ends, which node granted it, and by what kind of knock.
public struct GrantValue: Codable, Equatable, Sendable {
    /// How the grant was obtained.
    public enum GrantProtocol: String, Codable, Sendable {
        case knock, spa1, spa2, fwknop, admin
    }

    /// Unix seconds when the grant ends; nil: no autoclose.
    public var expires: Int64?
    /// The node that granted it.
    public var origin: String
    /// How it was granted.
    public var `protocol`: GrantProtocol

    /// Makes a value.
    public init(expires: Int64?, origin: String, protocol: GrantProtocol) {
        self.expires = expires
        self.origin = origin
        self.protocol = `protocol`
    }

    /// The JSON text stored in etcd (`expires` is written as null when absent).
    public var json: [UInt8] {
        let expiresText = expires.map { "\($0)" } ?? "null"
        let origin = (try? JSONEncoder().encode(origin)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
        return Array("{\"expires\":\(expiresText),\"origin\":\(origin),\"protocol\":\"\(self.protocol.rawValue)\"}".utf8)
    }

    /// Reads a stored value; nil when it is not one.
    public init?(json bytes: [UInt8]) {
        guard let value = try? JSONDecoder().decode(GrantValue.self, from: Data(bytes)) else { return nil }
        self = value
    }

    /// The protocol of a grant with `replayKey` (nil: a knock sequence), or `admin` for `pknock open`.
    public static func grantProtocol(replayKey: ReplayKey?, admin: Bool) -> GrantProtocol {
        if admin { return .admin }
        switch replayKey {
        case nil: return .knock
        case .spa1: return .spa1
        case .spa2: return .spa2
        case .fwknop: return .fwknop
        }
    }
}
