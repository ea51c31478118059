import KnockCore

/// A grant to replicate: what the intake loop hands the fleet before it opens the firewall.
public struct FleetGrant: Equatable, Sendable {
    /// The rule.
    public var rule: RuleName
    /// The peer allowed.
    public var peer: PeerAddress
    /// Unix seconds when it ends; nil: no autoclose.
    public var expires: Int64?
    /// Seconds the grant has left (its lease's TTL before slack); nil: no autoclose.
    public var ttlSeconds: Int64?
    /// What makes the open unique, for SPA.
    public var replayKey: ReplayKey?
    /// The lifetime of the replay key (the protocol's clock window), in seconds.
    public var replayTTLSeconds: Int64
    /// How the grant was obtained.
    public var grantProtocol: GrantValue.GrantProtocol

    /// Makes a grant.
    public init(
        rule: RuleName, peer: PeerAddress, expires: Int64?, ttlSeconds: Int64?, replayKey: ReplayKey?, replayTTLSeconds: Int64,
        grantProtocol: GrantValue.GrantProtocol
    ) {
        self.rule = rule
        self.peer = peer
        self.expires = expires
        self.ttlSeconds = ttlSeconds
        self.replayKey = replayKey
        self.replayTTLSeconds = replayTTLSeconds
        self.grantProtocol = grantProtocol
    }
}

/// Builds the etcd requests of the fleet's writes (pure: the leases are obtained beforehand).
public enum FleetTransactions {
    /// Seconds a grant's lease outlives the grant, so a mirror never loses a grant before its kernel timeout.
    public static let leaseSlackSeconds: Int64 = 5

    /// The lease TTLs a grant needs: for the grant key (nil: no lease) and for the replay key (nil: none).
    public static func leaseTTLs(of grant: FleetGrant) -> (grant: Int64?, replay: Int64?) {
        (grant.ttlSeconds.map { max(1, $0) + leaseSlackSeconds }, grant.replayKey == nil ? nil : max(1, grant.replayTTLSeconds) + leaseSlackSeconds)
    }

    /// The replay key's value: the origin node and a token drawn for this commit, so that a
    /// transaction sent again after its answer was lost (a member that died mid-call) tells its own
    /// earlier success from a replay.
    public static func replayValue(origin: String, token: UInt64) -> String {
        origin + " " + String(token, radix: 16)
    }

    /// The grant transaction.
    ///
    /// When there is a replay key, it must never have been created; then the replay key (value:
    /// ``replayValue(origin:token:)``) and the grant key are put, each on its lease. When the replay
    /// key exists, the transaction reads it back (see ``committed(_:replayValue:)``).
    public static func grantTransaction(
        _ grant: FleetGrant, layout: FleetKeyLayout, origin: String, token: UInt64, grantLease: Int64?, replayLease: Int64?
    ) -> EtcdMessages.TxnRequest {
        let value = GrantValue(expires: grant.expires, origin: origin, protocol: grant.grantProtocol)
        let grantPut = EtcdMessages.RequestOp(
            request_put: .init(
                key: EtcdMessages.base64(layout.grantKey(rule: grant.rule, peer: grant.peer)), value: EtcdMessages.base64(value.json),
                lease: grantLease.map { "\($0)" }))
        guard let replayKey = grant.replayKey else {
            return EtcdMessages.TxnRequest(compare: [], success: [grantPut], failure: [])
        }
        let key = EtcdMessages.base64(layout.replayKey(replayKey, rule: grant.rule, peer: grant.peer))
        return EtcdMessages.TxnRequest(
            compare: [.init(key: key, target: "CREATE", result: "EQUAL", create_revision: "0")],
            success: [
                .init(request_put: .init(key: key, value: EtcdMessages.base64(replayValue(origin: origin, token: token)), lease: replayLease.map { "\($0)" })),
                grantPut,
            ],
            failure: [.init(request_range: .init(key: key))])
    }

    /// Whether a grant transaction committed the grant.
    ///
    /// It did when it succeeded, or when its replay key already holds `replayValue`, which only
    /// this commit writes (an earlier try of the same transaction succeeded and its answer was
    /// lost). Any other value is a replay.
    public static func committed(_ response: EtcdMessages.TxnResponse, replayValue: String) -> Bool {
        if response.succeeded == true { return true }
        let existing = response.responses?.first?.response_range?.kvs?.first?.valueBytes
        return existing == Array(replayValue.utf8)
    }
}
