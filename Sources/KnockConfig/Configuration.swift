import KnockCore

/// Settings of the daemon itself, from the `[daemon]` table of `pknock.toml`.
public struct DaemonSettings: Equatable, Sendable {
    /// The default nftables table name.
    public static let defaultTable = "pknock"
    /// The default NFLOG group knocks are logged to.
    public static let defaultNFLogGroup: UInt16 = 7
    /// The default directory for state kept across restarts.
    public static let defaultStateDirectory = "/var/lib/pknock"
    /// The default path of the control socket.
    public static let defaultControlSocket = "/run/pknock/control.sock"
    /// The default `hook_timeout`.
    public static let defaultHookTimeout: Duration = .seconds(10)

    /// The nftables table (family `inet`) the daemon owns.
    public var table: String
    /// The NFLOG group the table logs knocks to.
    public var nflogGroup: UInt16
    /// Where the daemon keeps state across restarts.
    public var stateDirectory: String
    /// The Unix socket `pknock status` and `pknock events` talk to.
    public var controlSocket: String
    /// The tracked-peer cap of rules that do not set `max_tracked_peers`.
    public var maxTrackedPeers: Int
    /// Entries of the first-knock table shared by all rules (`first_knock_capacity`).
    public var firstKnockCapacity: Int = FirstKnockTable.defaultCapacity
    /// The values `first_knock_capacity` may take.
    public static let firstKnockCapacityRange = 1024...(1 << 32)
    /// The longest a rule's `on_open`/`on_close` command may run before its process group is killed.
    public var hookTimeout: Duration = DaemonSettings.defaultHookTimeout
    /// Where the Prometheus metrics responder listens (`metrics_listen`, "127.0.0.1:9472" or
    /// "[::1]:9472"); nil (the default) for no metrics.
    public var metricsListen: MetricsListenAddress?
    /// How far an SPA v2 packet's timestamp may be from the server's clock (`spa2_clock_window`).
    public var spa2ClockWindow: Duration = .seconds(60)
    /// How far an fwknop packet's timestamp may be from the server's clock (`fwknop_clock_window`).
    public var fwknopClockWindow: Duration = .seconds(120)
    /// How knock ports and not-yet-opened protected ports answer (`closed_port_response`).
    public var closedPortResponse: ClosedPortResponse = .reset
    /// Whether the kernel may gather knock packets into one NFLOG message during a flood
    /// (`nflog_batching`; off: one message per packet at every rate).
    public var nflogBatching = true

    /// Makes daemon settings; every argument has the documented default.
    public init(
        table: String = DaemonSettings.defaultTable,
        nflogGroup: UInt16 = DaemonSettings.defaultNFLogGroup,
        stateDirectory: String = DaemonSettings.defaultStateDirectory,
        controlSocket: String = DaemonSettings.defaultControlSocket,
        maxTrackedPeers: Int = Rule.defaultMaxTrackedPeers
    ) {
        self.table = table
        self.nflogGroup = nflogGroup
        self.stateDirectory = stateDirectory
        self.controlSocket = controlSocket
        self.maxTrackedPeers = maxTrackedPeers
    }
}

/// How the table answers packets to knock ports and to protected ports a peer may not reach yet:
/// like a closed port of this host, so that a scan cannot tell them from unused ports.
public enum ClosedPortResponse: String, Equatable, Sendable, CaseIterable {
    /// TCP reset for TCP, ICMP port unreachable for UDP: what Linux answers for a port nothing
    /// listens on (the default).
    case reset
    /// Silence, for hosts whose firewall drops every closed port.
    case drop
}

/// A local address for the metrics responder: an IP literal and a port.
public struct MetricsListenAddress: Equatable, Sendable, CustomStringConvertible {
    /// The IPv4 or IPv6 literal, without brackets.
    public var host: String
    /// The TCP port.
    public var port: UInt16

    /// Makes an address.
    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses "HOST:PORT" or "[V6HOST]:PORT"; nil when malformed.
    public init?(parsing text: String) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = UInt16(portText), port > 0, PeerAddress(String(host)) != nil else { return nil }
        self.init(host: String(host), port: port)
    }

    /// "host:port", with brackets around an IPv6 host.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Commands a rule runs when a peer gains or loses access (knockd's start_command/stop_command).
public struct RuleHooks: Equatable, Sendable {
    /// Run through `/bin/sh -c` when a peer is allowed.
    public var onOpen: String?
    /// Run through `/bin/sh -c` when a peer's access ends (close knock, autoclose, `pknock close`).
    public var onClose: String?

    /// Makes hooks.
    public init(onOpen: String? = nil, onClose: String? = nil) {
        self.onOpen = onOpen
        self.onClose = onClose
    }
}

/// The `[fleet]` table: gateways that share their grants through etcd.
public struct FleetSettings: Equatable, Sendable {
    /// What a node does with a new grant when it cannot commit it to etcd in time.
    public enum OnUnreachable: String, Equatable, Sendable, CaseIterable {
        /// Refuse it (fail closed, the default): it could be neither replay-checked nor mirrored.
        case refuse
        /// Grant it on this node only, unreplicated.
        case local
    }

    /// The default key prefix.
    public static let defaultPrefix = "/pknock"
    /// The default `commit_timeout`.
    public static let defaultCommitTimeout: Duration = .milliseconds(200)

    /// etcd client URLs ("http://198.51.100.11:2379" or https://).
    public var endpoints: [String]
    /// This gateway's name, unique in the fleet (default: the host name).
    public var node: String
    /// Where the fleet's keys live, without a trailing slash.
    public var prefix: String = FleetSettings.defaultPrefix
    /// The bound on a grant's transaction.
    public var commitTimeout: Duration = FleetSettings.defaultCommitTimeout
    /// What to do when etcd cannot be reached in time.
    public var onUnreachable: OnUnreachable = .refuse
    /// TLS: the CA that signs etcd's certificates, and the client certificate and key.
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    /// etcd authentication: the user and the password (read from `password_file`).
    public var username: String?
    public var password: String?

    /// Makes settings.
    public init(endpoints: [String], node: String) {
        self.endpoints = endpoints
        self.node = node
    }

    /// Why `name` cannot be a node name, or nil.
    public static func nodeProblem(_ name: String) -> String? {
        guard !name.isEmpty, name.utf8.count <= 64 else { return "must be 1 to 64 characters" }
        let allowed = name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: ".")
        }
        return allowed ? nil : "may hold only letters, digits, '.', '_' and '-'"
    }
}

/// A loaded, validated configuration: what the daemon runs and `pknock check` prints.
public struct Configuration: Equatable, Sendable {
    /// The daemon's own settings (defaults for a rules file).
    public var daemon: DaemonSettings
    /// The rules, in file order.
    public var rules: [Rule]
    /// Warnings: the configuration loads, but the administrator should hear about these.
    public var warnings: [ConfigDiagnostic]
    /// The hook commands of rules that have any, by rule name.
    public var hooks: [RuleName: RuleHooks] = [:]
    /// The SPA v2 clients (`[[client]]`): who may open which v2 rules, with which key.
    public var clients: [SPAv2Client] = []
    /// The fwknop clients (`[[client]]` with `fwknop_key_file`): who may open which fwknop rules.
    public var fwknopClients: [FwknopClient] = []
    /// The fleet this gateway belongs to (`[fleet]`); nil: a single gateway.
    public var fleet: FleetSettings?

    /// Makes a configuration.
    public init(daemon: DaemonSettings = DaemonSettings(), rules: [Rule], warnings: [ConfigDiagnostic] = []) {
        self.daemon = daemon
        self.rules = rules
        self.warnings = warnings
    }
}
