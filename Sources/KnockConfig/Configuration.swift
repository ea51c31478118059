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
    /// The most characters a table name may have.
    public static let maximumTableNameLength = 32

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

    /// Why `name` is not a valid table name (letters, digits, `_`; at most 32), or nil when it is.
    public static func tableNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "the table name is empty" }
        if name.utf8.count > maximumTableNameLength {
            return "the table name is longer than \(maximumTableNameLength) characters"
        }
        let allowed = name.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_"
        }
        return allowed ? nil : "the table name may only contain letters, digits and '_'"
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

    /// Makes a configuration.
    public init(daemon: DaemonSettings = DaemonSettings(), rules: [Rule], warnings: [ConfigDiagnostic] = []) {
        self.daemon = daemon
        self.rules = rules
        self.warnings = warnings
    }
}
