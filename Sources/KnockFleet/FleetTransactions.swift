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

    /// The grant transaction: when there is a replay key, it must never have been created; then the
    /// replay key (value: the origin node) and the grant key are put, each on its lease.
    public static func grantTransaction(
        _ grant: FleetGrant, layout: FleetKeyLayout, origin: String, grantLease: Int64?, replayLease: Int64?
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
            success: [.init(request_put: .init(key: key, value: EtcdMessages.base64(origin), lease: replayLease.map { "\($0)" })), grantPut],
            failure: [])
    }
}
