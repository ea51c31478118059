import KnockCore

/// One grant as a node holds it: rule, peer, and seconds left (nil: no autoclose).
public struct MirroredGrant: Hashable, Sendable {
    /// The rule.
    public var rule: RuleName
    /// The peer.
    public var peer: PeerAddress

    /// Makes a grant key.
    public init(rule: RuleName, peer: PeerAddress) {
        self.rule = rule
        self.peer = peer
    }
}

/// The mirror's decisions, pure: what to add and remove so the local sets match etcd.
public enum FleetMirror {
    /// What a reconcile changes locally.
    public struct Plan: Equatable, Sendable {
        /// Grants to add (or refresh), with the seconds they have left (nil: no autoclose).
        public var add: [(grant: MirroredGrant, remaining: Int64?)]
        /// Grants to remove.
        public var remove: [MirroredGrant]

        public static func == (a: Plan, b: Plan) -> Bool {
            a.remove == b.remove && a.add.map(\.grant) == b.add.map(\.grant) && a.add.map(\.remaining) == b.add.map(\.remaining)
        }
    }

    /// Compares the local grants with etcd's at `wallSeconds`: grants only local are removed unless
    /// `localOnly` holds them (granted while etcd was unreachable, under `on_unreachable = "local"`);
    /// grants in etcd that have not lapsed are added with their remaining time, when missing locally
    /// or when etcd's time left differs from the local one by more than `tolerance` seconds.
    public static func reconcile(
        local: [MirroredGrant: Int64?], remote: [MirroredGrant: GrantValue], localOnly: Set<MirroredGrant> = [], wallSeconds: Int64,
        tolerance: Int64 = 2
    ) -> Plan {
        var plan = Plan(add: [], remove: [])
        for grant in local.keys.sorted(by: order) where remote[grant] == nil && !localOnly.contains(grant) {
            plan.remove.append(grant)
        }
        for (grant, value) in remote.sorted(by: { order($0.key, $1.key) }) {
            let remaining = value.expires.map { $0 - wallSeconds }
            if let remaining, remaining <= 0 { continue }
            if let held = local[grant] {
                switch (held, remaining) {
                case (nil, nil): continue
                case (let held?, let remaining?) where abs(held - remaining) <= tolerance: continue
                default: break
                }
            }
            plan.add.append((grant, remaining))
        }
        return plan
    }

    private static func order(_ a: MirroredGrant, _ b: MirroredGrant) -> Bool {
        a.rule == b.rule ? a.peer < b.peer : a.rule < b.rule
    }
}
