import Foundation
import KnockConfig
import KnockCore
import Netfilter

/// The `inet` table pknockd installs, rendered as nft scripts, and the readers of its `nft -j` listings.
///
/// The table only ever refuses or passes packets (`accept` in our base chain lets a packet go on to
/// the host's other tables). It refuses the way this host refuses a port nothing listens on, so a
/// scan cannot tell knock ports and protected ports from unused ones: with ``closedPortResponse``
/// `.reset` (the default) TCP gets `reject with tcp reset` and UDP `reject with icmpx
/// port-unreachable`, exactly what Linux sends for a closed port; with `.drop` everything refused is
/// dropped silently, for hosts that drop every closed port. nft's reject sends its ICMP through the
/// kernel's `icmp_send`/`icmpv6_send` (net/ipv4/netfilter/nf_reject_ipv4.c `nf_send_unreach`,
/// net/ipv6/netfilter/nf_reject_ipv6.c `nf_send_unreach6`), the same function and so the same rate
/// limits (`net.ipv4.icmp_ratelimit`, `icmp_msgs_per_sec`, `net.ipv6.icmp.ratelimit`) as the
/// port-unreachable of a closed UDP port; TCP resets of closed ports are not rate-limited by Linux,
/// and neither are nft's. So no `limit` statement is needed for the answers to match.
///
/// One base chain, `input`, hooks in at priority -10, before the usual filter chains at 0, and
/// holds, in this order:
///
/// 1. Knock ports of all rules: TCP SYNs (`tcp flags & (syn | ack) == syn`) and UDP datagrams are
///    logged to the NFLOG group, watching rules (strict, or with a `max_wrong_knocks` budget: see
///    ``Rule/watchesPeers``) also note the source in their kernel-filled
///    `NAME_watch4`/`NAME_watch6` sets, and then every packet to a knock port is refused (after it
///    is logged; TCP segments that are not SYNs too, as a closed port answers them with a reset).
/// 2. For watching rules, every new TCP/UDP connection from a watched source (a peer that knocked on
///    one of the rule's ports within the rule's `time`) is logged, not dropped, so the daemon sees the
///    wrong knocks that make a strict peer start over or use up a non-strict attempt's budget. For SPA rules with a close secret, UDP
///    datagrams of an SPA payload's length from an allowed source are logged, so a close knock to any
///    port is seen.
/// 3. Protected ports: established/related traffic passes, sources in a protecting rule's
///    `NAME_allowed4`/`NAME_allowed6` set pass, everything else is refused.
///
/// Set names are the rule name and a suffix. nft identifiers must start with a letter, `_` or `.`
/// (a rule name may start with a digit or `-`), so a rule name that does not start with a letter
/// gets a `_` in front (`2fa` → `_2fa_allowed4`, `_x` → `__x_allowed4`): names starting with a
/// letter stay as written, and no two rule names share a set. `-` inside an identifier is accepted
/// unquoted by nft (checked with nft 1.0.6); nft cannot quote set names in these commands.
public struct FirewallLayout: Equatable, Sendable {
    /// The table's name, in family `inet`.
    public var table: String {
        didSet { grantBatches = Self.grantBatches(table: table, rules: rules) }
    }
    /// The NFLOG group knocks are logged to.
    public var nflogGroup: UInt16
    /// How many bytes of each logged packet NFLOG copies (network header onwards).
    public var snaplen: Int
    /// The rules, in configuration order.
    public var rules: [Rule] {
        didSet { grantBatches = Self.grantBatches(table: table, rules: rules) }
    }
    /// Each rule's grant and revoke messages, encoded once per table and rules (``commandBatch(_:)``).
    private var grantBatches: [GrantBatches]
    /// How refused packets are answered: like a closed port (`.reset`) or not at all (`.drop`).
    public var closedPortResponse: ClosedPortResponse

    /// The base chain's name.
    public static let chainName = "input"
    /// The base chain's hook priority: before the usual filter chains at priority 0.
    public static let chainPriority = -10
    /// The default NFLOG snaplen: enough for an SPA payload behind IPv6 extension headers.
    public static let defaultSnaplen = 256
    /// The longest element timeout rendered, in seconds; nft 1.0.6 refuses `timeout 100000000s`.
    public static let maximumTimeoutSeconds: Int64 = 99_999_999
    /// The watch-set timeout of a strict rule without `time`.
    public static let defaultWatchTimeout: Duration = .seconds(3600)

    /// Describes the table for `rules`.
    public init(
        table: String, nflogGroup: UInt16, snaplen: Int = FirewallLayout.defaultSnaplen, rules: [Rule],
        closedPortResponse: ClosedPortResponse = .reset
    ) {
        self.table = table
        self.nflogGroup = nflogGroup
        self.snaplen = snaplen
        self.rules = rules
        self.closedPortResponse = closedPortResponse
        self.grantBatches = Self.grantBatches(table: table, rules: rules)
    }

    /// Describes the table of `configuration`: its daemon settings and rules.
    public init(configuration: Configuration) {
        self.init(
            table: configuration.daemon.table, nflogGroup: configuration.daemon.nflogGroup, rules: configuration.rules,
            closedPortResponse: configuration.daemon.closedPortResponse)
    }

    // MARK: Names

    /// The kind of a set in the table.
    public enum SetKind: String, Sendable, CaseIterable {
        /// Peers allowed through the rule's protected ports (filled by the daemon, with timeouts).
        case allowed
        /// Sources that knocked on a strict rule's ports recently (filled by the kernel).
        case watch
    }

    /// The name of `rule`'s `kind` set for `family`: `SSH_allowed4`, `SSH_watch6`, `_2fa_allowed4`.
    public static func setName(rule: RuleName, kind: SetKind, family: IPFamily) -> String {
        let name = rule.rawValue
        let startsWithLetter = name.unicodeScalars.first.map { ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") } ?? false
        return (startsWithLetter ? "" : "_") + name + "_" + kind.rawValue + (family == .ipv4 ? "4" : "6")
    }

    // MARK: Scripts

    /// One nft script that installs or replaces the table's chain and sets atomically, keeping the
    /// elements of existing allowed sets.
    ///
    /// It adds the table, chain and allowed sets (`add` keeps an existing one and its elements),
    /// flushes the chain, recreates the watch sets (so a changed `time` or size takes effect on
    /// kernels that refuse to change an existing set; their contents are short-lived anyway), deletes
    /// the sets in `existingSets` that no rule uses any more, then adds the rules.
    /// `existingSets` is what ``setNames(inListing:)`` read from `nft -j list sets table inet <table>`.
    ///
    /// `createTable: false` leaves out `add table`, for a table pknockd has claimed with the `owner`
    /// flag already: libnftables 1.0.6 sends `add table` with flags 0, and the kernel refuses a change
    /// that would drop `owner`.
    public func installScript(existingSets: Set<String>, createTable: Bool = true) -> String {
        var lines = ["# PortKnockO: table \(target), installed by pknockd; changes made by hand are lost on reload."]
        if createTable { lines.append("add table \(target)") }
        lines += [
            "add chain \(target) \(Self.chainName) { type filter hook input priority \(Self.chainPriority); policy accept; }",
            "flush chain \(target) \(Self.chainName)",
        ]
        lines += setLines(existingSets: existingSets)
        lines += knockPortLines()
        lines += watchAndCloseLines()
        lines += protectedPortLines()
        return lines.joined(separator: "\n") + "\n"
    }

    /// `inet <table>`.
    private var target: String { "inet \(table)" }

    /// `add rule inet <table> input`.
    private var addRule: String { "add rule \(target) \(Self.chainName)" }

    /// `log group G snaplen S`.
    private var logStatement: String { "log group \(nflogGroup) snaplen \(snaplen)" }

    /// The verdict for a refused `transport` packet: what a closed port of this host answers, or drop.
    private func refusal(_ transport: TransportProtocol) -> String {
        switch (closedPortResponse, transport) {
        case (.drop, _): "drop"
        case (.reset, .tcp): "reject with tcp reset"
        case (.reset, .udp): "reject with icmpx port-unreachable"
        }
    }

    /// Adds every rule's sets (recreating watch sets), then deletes the existing sets no rule uses.
    private func setLines(existingSets: Set<String>) -> [String] {
        var lines: [String] = []
        var used: Set<String> = []
        for rule in rules {
            for family in [IPFamily.ipv4, .ipv6] {
                let name = Self.setName(rule: rule.name, kind: .allowed, family: family)
                used.insert(name)
                lines.append("add set \(target) \(name) { type \(Self.addressType(family)); flags timeout; }")
            }
            guard rule.watchesPeers else { continue }
            let timeout = Self.timeoutSeconds(rule.maxKnockGap ?? Self.defaultWatchTimeout)
            for family in [IPFamily.ipv4, .ipv6] {
                let name = Self.setName(rule: rule.name, kind: .watch, family: family)
                used.insert(name)
                if existingSets.contains(name) { lines.append("delete set \(target) \(name)") }
                lines.append(
                    "add set \(target) \(name) { type \(Self.addressType(family)); size \(rule.maxTrackedPeers); "
                        + "flags dynamic,timeout; timeout \(timeout)s; }")
            }
        }
        for name in existingSets.subtracting(used).sorted() {
            lines.append("delete set \(target) \(name)")
        }
        return lines
    }

    /// Section 1: log knocks (and fill strict rules' watch sets), then refuse everything to a knock port.
    private func knockPortLines() -> [String] {
        var lines: [String] = []
        for transport in TransportProtocol.allCases {
            func ports(of rules: [Rule]) -> Set<KnockCore.Port> {
                Set(rules.flatMap { $0.knockSequence.filter { $0.transport == transport }.map(\.port) })
            }
            let all = ports(of: rules)
            guard !all.isEmpty else { continue }
            // A TCP knock is a connection request; other segments to the port are refused unlogged.
            let knocks = transport == .tcp ? " tcp flags & (syn | ack) == syn" : ""
            let verb = closedPortResponse == .drop ? "drop" : "answer as a closed port"
            lines.append("# Knock ports (\(transport)): log \(transport == .tcp ? "SYNs" : "datagrams"), then \(verb).")
            lines.append("\(addRule) \(transport) dport \(Self.portList(all))\(knocks) \(logStatement)")
            for rule in rules where rule.watchesPeers {
                let own = ports(of: [rule])
                guard !own.isEmpty else { continue }
                for family in [IPFamily.ipv4, .ipv6] {
                    let watch = Self.setName(rule: rule.name, kind: .watch, family: family)
                    lines.append(
                        "\(addRule) \(transport) dport \(Self.portList(own))\(knocks) "
                            + "update @\(watch) { \(Self.addressField(family)) }")
                }
            }
            lines.append("\(addRule) \(transport) dport \(Self.portList(all)) \(refusal(transport))")
        }
        return lines
    }

    /// Section 2: log new connections of watched sources, and SPA-sized datagrams of allowed ones.
    private func watchAndCloseLines() -> [String] {
        var lines: [String] = []
        let watchingRules = rules.filter(\.watchesPeers)
        if !watchingRules.isEmpty {
            lines.append("# Strict rules: log new connections from sources in the middle of a sequence.")
        }
        for rule in watchingRules {
            for family in [IPFamily.ipv4, .ipv6] {
                let watch = Self.setName(rule: rule.name, kind: .watch, family: family)
                lines.append(
                    "\(addRule) ct state new meta l4proto { tcp, udp } \(Self.addressField(family)) @\(watch) \(logStatement)")
            }
        }
        let closingRules = rules.filter { $0.spa?.closeSecret != nil }
        if !closingRules.isEmpty {
            lines.append("# SPA rules with a close secret: log SPA-sized datagrams from allowed sources to any port.")
        }
        for rule in closingRules {
            // UDP header, then the MAC in hex, then optionally the original's one trailing byte.
            let length = 8 + (rule.spa?.format == .md5 ? 32 : 64)
            for family in [IPFamily.ipv4, .ipv6] {
                let allowed = Self.setName(rule: rule.name, kind: .allowed, family: family)
                lines.append(
                    "\(addRule) \(Self.addressField(family)) @\(allowed) udp length { \(length), \(length + 1) } \(logStatement)")
            }
        }
        return lines
    }

    /// Section 3: protected ports, grouped by the list of rules that protect them.
    private func protectedPortLines() -> [String] {
        var groups: [(transport: TransportProtocol, rules: [RuleName], ports: Set<KnockCore.Port>)] = []
        var seen: Set<ServicePort> = []
        for rule in rules {
            for servicePort in rule.protectedPorts where seen.insert(servicePort).inserted {
                let protecting = rules.filter { $0.protectedPorts.contains(servicePort) }.map(\.name)
                if let index = groups.firstIndex(where: { $0.transport == servicePort.transport && $0.rules == protecting }) {
                    groups[index].ports.insert(servicePort.port)
                } else {
                    groups.append((servicePort.transport, protecting, [servicePort.port]))
                }
            }
        }
        var lines: [String] = []
        for group in groups {
            let match = "\(group.transport) dport \(Self.portList(group.ports))"
            let names = group.rules.map(\.rawValue).joined(separator: ", ")
            lines.append("# Protected: \(match), for rule\(group.rules.count == 1 ? "" : "s") \(names).")
            lines.append("\(addRule) \(match) ct state established,related accept")
            for name in group.rules {
                for family in [IPFamily.ipv4, .ipv6] {
                    let allowed = Self.setName(rule: name, kind: .allowed, family: family)
                    lines.append("\(addRule) \(match) \(Self.addressField(family)) @\(allowed) accept")
                }
            }
            lines.append("\(addRule) \(match) \(refusal(group.transport))")
        }
        return lines
    }

    /// A grant as the repair of a damaged table puts it back: the rule, the peer, the time left
    /// (nil: no timeout).
    public struct RestoredGrant: Equatable, Sendable {
        /// The rule whose allowed set holds the peer.
        public var rule: RuleName
        /// The allowed address.
        public var peer: PeerAddress
        /// How long the grant has left; nil when it never expires.
        public var remaining: Duration?

        /// Makes a grant to restore.
        public init(rule: RuleName, peer: PeerAddress, remaining: Duration?) {
            self.rule = rule
            self.peer = peer
            self.remaining = remaining
        }
    }

    /// The lines that empty every rule's allowed sets and fill them with exactly `grants`: appended
    /// to ``installScript(existingSets:createTable:)`` they make one transaction that puts a damaged
    /// or deleted table back as the daemon knows it, dropping elements someone else added.
    public func restoreAllowedScript(_ grants: [RestoredGrant]) -> String {
        var lines: [String] = []
        for rule in rules {
            for family in [IPFamily.ipv4, .ipv6] {
                let name = Self.setName(rule: rule.name, kind: .allowed, family: family)
                lines.append("flush set \(target) \(name)")
                let elements = grants.filter { $0.rule == rule.name && $0.peer.isIPv4 == (family == .ipv4) }.map { grant in
                    "\(grant.peer)" + (grant.remaining.map { " timeout \(Self.timeoutSeconds($0))s" } ?? "")
                }
                if !elements.isEmpty {
                    lines.append("add element \(target) \(name) { \(elements.joined(separator: ", ")) }")
                }
            }
        }
        return lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
    }

    /// The script that removes the table, its chain, sets and every allowed peer.
    public func teardownScript() -> String {
        "delete table inet \(table)\n"
    }

    /// The script that carries out `command` as one batch that succeeds whether or not the peer is
    /// already in the set.
    ///
    /// `allow` adds the address, deletes it and adds it again with its timeout, so an existing
    /// element's timeout is replaced (also on kernels that cannot update one in place, and from
    /// "timeout" to "none"). `revoke` adds then deletes, so revoking an element that has already
    /// expired succeeds. Timeouts are whole seconds, rounded up, at least 1 and at most
    /// ``maximumTimeoutSeconds``.
    public func commandScript(_ command: FirewallCommand) -> String {
        Self.commandScript(command, table: table)
    }

    /// ``commandScript(_:)`` for the table `table`: what a batch's script closure captures (the
    /// table's name, not the whole layout).
    static func commandScript(_ command: FirewallCommand, table: String) -> String {
        switch command {
        case .allow(let rule, let peer, let ttl):
            let prefix = elementPrefix(table: table, rule: rule, peer: peer)
            let timeout = ttl.map { " timeout \(Self.timeoutSeconds($0))s" } ?? ""
            return "add element \(prefix) { \(peer) }\n"
                + "delete element \(prefix) { \(peer) }\n"
                + "add element \(prefix) { \(peer)\(timeout) }\n"
        case .revoke(let rule, let peer):
            let prefix = elementPrefix(table: table, rule: rule, peer: peer)
            return "add element \(prefix) { \(peer) }\n"
                + "delete element \(prefix) { \(peer) }\n"
        }
    }

    /// `command` as prepared set-element changes (what ``commandScript(_:)`` says, without the
    /// text parse): the same add / delete / add with timeout, or add / delete, in one batch.
    ///
    /// The messages come from the rule's templates, encoded when the layout was made: a grant
    /// builds no set names and no messages, and its script is rendered only when read (issue #14).
    public func commandBatch(_ command: FirewallCommand) -> NFTablesNetlink.ElementBatch {
        // The script closure captures the name alone, not a copy of the layout.
        let table = self.table
        switch command {
        case .allow(let rule, let peer, let ttl):
            let batches = grantBatches(of: rule)
            let family = peer.isIPv4 ? 0 : 1
            return .init(
                template: ttl == nil ? batches.allowWithoutTimeout[family] : batches.allow[family], key: Self.elementKey(peer),
                timeoutMilliseconds: ttl.map { UInt64(Self.timeoutSeconds($0)) * 1000 }, script: NFTScript(Self.commandScript(command, table: table)))
        case .revoke(let rule, let peer):
            return .init(
                template: grantBatches(of: rule).revoke[peer.isIPv4 ? 0 : 1], key: Self.elementKey(peer), timeoutMilliseconds: nil,
                script: NFTScript(Self.commandScript(command, table: table)))
        }
    }

    /// One rule's element batches, by family (index 0: its `…_allowed4` set, 1: `…_allowed6`).
    struct GrantBatches: Equatable, Sendable {
        var rule: RuleName
        /// Add, delete, add with the grant's timeout: a grant, or a renewal that replaces the timeout.
        var allow: [NFTablesNetlink.ElementBatchTemplate]
        /// The same for a grant without a time limit.
        var allowWithoutTimeout: [NFTablesNetlink.ElementBatchTemplate]
        /// Add, delete: gone whether it was there or not.
        var revoke: [NFTablesNetlink.ElementBatchTemplate]

        init(table: String, rule: RuleName) {
            self.rule = rule
            func batches(_ steps: (String) -> [NFTablesNetlink.ElementBatchTemplate.Step]) -> [NFTablesNetlink.ElementBatchTemplate] {
                [(IPFamily.ipv4, 4), (IPFamily.ipv6, 16)].map { family, keyLength in
                    .init(table: table, steps: steps(FirewallLayout.setName(rule: rule, kind: .allowed, family: family)), keyLength: keyLength)
                }
            }
            allow = batches { [.init(.add, set: $0), .init(.delete, set: $0), .init(.add, set: $0, timed: true)] }
            allowWithoutTimeout = batches { [.init(.add, set: $0), .init(.delete, set: $0), .init(.add, set: $0)] }
            revoke = batches { [.init(.add, set: $0), .init(.delete, set: $0)] }
        }
    }

    private static func grantBatches(table: String, rules: [Rule]) -> [GrantBatches] {
        rules.map { GrantBatches(table: table, rule: $0.name) }
    }

    /// The rule's batches; encoded on the spot for a rule not in the layout (a command that
    /// outlived its rule's reload).
    private func grantBatches(of rule: RuleName) -> GrantBatches {
        grantBatches.first { $0.rule == rule } ?? GrantBatches(table: table, rule: rule)
    }

    /// The peer's address as a set element key: 4 bytes for IPv4, 16 for IPv6.
    static func elementKey(_ peer: PeerAddress) -> NFTablesNetlink.ElementKey {
        .init(high: peer.high, low: peer.low, count: peer.isIPv4 ? 4 : 16)
    }

    private static func elementPrefix(table: String, rule: RuleName, peer: PeerAddress) -> String {
        "inet \(table) \(setName(rule: rule, kind: .allowed, family: peer.isIPv4 ? .ipv4 : .ipv6))"
    }

    private static func addressType(_ family: IPFamily) -> String { family == .ipv4 ? "ipv4_addr" : "ipv6_addr" }

    private static func addressField(_ family: IPFamily) -> String { family == .ipv4 ? "ip saddr" : "ip6 saddr" }

    /// `22` or `{ 2001, 2002, 2004 }`, ascending.
    private static func portList(_ ports: Set<KnockCore.Port>) -> String {
        let sorted = ports.sorted()
        if sorted.count == 1, let only = sorted.first { return "\(only)" }
        return "{ " + sorted.map(\.description).joined(separator: ", ") + " }"
    }

    /// Whole seconds, rounded up, clamped to 1...maximumTimeoutSeconds.
    static func timeoutSeconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let rounded = attoseconds > 0 && seconds < Int64.max ? seconds + 1 : seconds
        return min(max(rounded, 1), maximumTimeoutSeconds)
    }
}

// MARK: - Reading `nft -j` listings

extension FirewallLayout {
    /// An element of an allowed set, as `nft -j list set` shows it.
    public struct AllowedElement: Equatable, Sendable {
        /// The rule whose set it is in.
        public var rule: RuleName
        /// The peer's address (IPv4 from a `NAME_allowed4` set, IPv6 from `NAME_allowed6`).
        public var address: PeerAddress
        /// The timeout it was added with; nil when it never expires.
        public var timeout: Duration?
        /// How long it has left (nft's `expires`, whole seconds); nil when nft shows none.
        public var expires: Duration?

        /// Makes an element.
        public init(rule: RuleName, address: PeerAddress, timeout: Duration?, expires: Duration?) {
            self.rule = rule
            self.address = address
            self.timeout = timeout
            self.expires = expires
        }
    }

    /// A listing that is not the JSON `nft -j` prints.
    public struct ListingError: Error, Equatable, Sendable, CustomStringConvertible {
        /// What was wrong with it.
        public var message: String

        /// Makes an error.
        public init(_ message: String) { self.message = message }

        /// The message.
        public var description: String { message }
    }

    /// The names of the sets in the output of `nft -j list sets table inet <table>` (or any `nft -j`
    /// listing: every `set` object counts).
    ///
    /// An empty string (no output) has no sets.
    public static func setNames(inListing json: String) throws(ListingError) -> Set<String> {
        Set(try sets(inListing: json).compactMap { $0["name"] as? String })
    }

    /// The elements of every allowed set in the output of `nft -j list set inet <table> <set>` (or of
    /// `list sets`, `list table`): rule, address, timeout and time left.
    ///
    /// Other sets (watch sets, sets
    /// not named after a rule) and elements that are not single addresses are skipped.
    public static func allowedElements(inListing json: String) throws(ListingError) -> [AllowedElement] {
        var found: [AllowedElement] = []
        for set in try sets(inListing: json) {
            guard let name = set["name"] as? String, let (rule, family) = allowedSetOwner(name),
                let elements = set["elem"] as? [Any]
            else { continue }
            for element in elements {
                var text = element as? String
                var fields: [String: Any] = [:]
                if let wrapper = element as? [String: Any], let inner = wrapper["elem"] as? [String: Any] {
                    fields = inner
                    text = inner["val"] as? String
                }
                guard let text, let address = PeerAddress(text), address.isIPv4 == (family == .ipv4) else { continue }
                found.append(
                    AllowedElement(
                        rule: rule, address: address, timeout: jsonSeconds(fields["timeout"]),
                        expires: jsonSeconds(fields["expires"])))
            }
        }
        return found
    }

    /// The rule and family an allowed set belongs to: the inverse of ``setName(rule:kind:family:)``
    /// for `.allowed`; nil for any other name.
    public static func allowedSetOwner(_ setName: String) -> (rule: RuleName, family: IPFamily)? {
        let family: IPFamily
        var base = Substring(setName)
        if base.hasSuffix("_allowed4") {
            family = .ipv4
        } else if base.hasSuffix("_allowed6") {
            family = .ipv6
        } else {
            return nil
        }
        base = base.dropLast("_allowed4".count)
        if base.hasPrefix("_") { base = base.dropFirst() }
        guard let rule = RuleName(rawValue: String(base)), setName == Self.setName(rule: rule, kind: .allowed, family: family) else {
            return nil
        }
        return (rule, family)
    }

    private static func jsonSeconds(_ value: Any?) -> Duration? {
        guard let number = value as? NSNumber else { return nil }
        return .seconds(number.int64Value)
    }

    private static func sets(inListing json: String) throws(ListingError) -> [[String: Any]] {
        if json.allSatisfy(\.isWhitespace) { return [] }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(json.utf8))
        } catch {
            throw ListingError("nft listing is not JSON: \(error)")
        }
        guard let root = object as? [String: Any], let items = root["nftables"] as? [Any] else {
            throw ListingError("nft listing has no \"nftables\" array")
        }
        return items.compactMap { ($0 as? [String: Any])?["set"] as? [String: Any] }
    }
}
