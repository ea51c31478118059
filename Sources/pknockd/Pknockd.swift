import ArgumentParser
import Foundation
import KnockConfig
import KnockCore
import KnockDaemon
import KnockPOSIX
import Logging
import Netfilter
import ServiceLifecycle

/// The PortKnockO daemon: installs the nftables table, reads knocks through NFLOG, opens access.
@main
struct Pknockd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pknockd",
        abstract: "PortKnockO daemon: hides ports behind knock sequences and single-packet authorization.",
        discussion: """
            pknockd installs the nftables table `inet pknock` (one atomic transaction), drops knock packets \
            in the kernel and reads them through NFLOG, and grants access by adding the knocking address to \
            the rule's nftables set with a kernel-side timeout. It runs in the foreground and logs to \
            standard error (journald under systemd). SIGHUP reloads the configuration; SIGTERM and SIGINT \
            stop it, leaving the table in place (allowed peers keep access, everyone else stays locked out) \
            unless --remove-on-exit is given.

            The table belongs to pknockd in the kernel (nftables flags owner and persist, Linux 6.9 and \
            later): other processes can list it, but `nft flush ruleset`, `nft delete table`, a firewall \
            reload or a manager's rewrite cannot change or remove it, and it stays in force when pknockd \
            stops or crashes, until the next pknockd takes it over. Change grants with `pknock open` and \
            `pknock close`; remove the table with --teardown (or --remove-on-exit) once pknockd is \
            stopped. On older kernels pknockd watches the table instead (nf_tables notifications and a \
            check every 2 seconds) and puts it back, with its grants, whenever someone changes or removes \
            it; in that mode the protected ports are open for the few milliseconds until it is back. \
            The start-up log says which protection is in force (nft.protection).

            Exit status: 0 on a clean stop, 2 when the configuration is invalid or the firewall, NFLOG or \
            privileges are unavailable.
            """,
        version: portKnockOVersion
    )

    @Option(name: .long, help: ArgumentHelp("Configuration file (TOML).", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Rules in the original xt_pknock iptables syntax, one per line.", valueName: "file"))
    var rulesFile: String?

    @Option(name: .long, help: ArgumentHelp("NFLOG group knocks are logged to (overrides the configuration).", valueName: "n"))
    var nflogGroup: UInt16?

    @Option(name: .long, help: ArgumentHelp("nftables table name, family inet (overrides the configuration).", valueName: "name"))
    var table: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Control socket for pknock status/events/open/close (overrides the configuration; default /run/pknock/control.sock).",
            valueName: "path"))
    var controlSocket: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Where state that outlives a restart is kept, such as the SPA replay memory (overrides the configuration; default /var/lib/pknock).",
            valueName: "dir"))
    var stateDirectory: String?

    @Flag(name: .long, help: "Run in the foreground (pknockd always does; accepted for compatibility).")
    var foreground = false

    @Option(name: .long, help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel: Logger.Level = .info

    @Flag(name: .long, help: "Remove the table, and with it every allowed peer, when stopping.")
    var removeOnExit = false

    @Flag(
        name: .long,
        help: "Remove the table and exit. With --table, no configuration is read (it may be missing).")
    var teardown = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "How the table is kept from other processes: auto (owned by pknockd in the kernel where it can be, Linux 6.9 and later; else watch) or watch (put back on every change; meant for testing that path).",
            valueName: "mode"))
    var tableProtection: KnockService.TableProtectionChoice = .auto

    func validate() throws {
        if config != nil && rulesFile != nil {
            throw ValidationError("give --config or --rules-file, not both")
        }
        if let table, let problem = Syntax.tableNameProblem(table) {
            throw ValidationError("--table: \(problem)")
        }
        if let controlSocket, !controlSocket.hasPrefix("/") {
            throw ValidationError("--control-socket must be an absolute path")
        }
        if let stateDirectory, !stateDirectory.hasPrefix("/") {
            throw ValidationError("--state-directory must be an absolute path")
        }
    }

    func loadConfiguration() throws -> Configuration {
        var loaded: Configuration
        if let rulesFile {
            loaded = try ConfigLoader.load(path: rulesFile)
        } else {
            loaded = try ConfigLoader.load(path: config ?? ConfigLoader.defaultPath)
        }
        if let nflogGroup { loaded.daemon.nflogGroup = nflogGroup }
        if let table { loaded.daemon.table = table }
        if let controlSocket { loaded.daemon.controlSocket = controlSocket }
        if let stateDirectory { loaded.daemon.stateDirectory = stateDirectory }
        return loaded
    }

    func run() async throws {
        // Before anything big is allocated: large blocks mapped on their own, one arena (#14).
        MemoryTuning.apply()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        let logger = Logger(label: "pknockd")

        if teardown, let table {
            // The table's name is all a teardown needs: work without a readable configuration.
            removeTable(table)
            return
        }
        let configuration: Configuration
        do {
            configuration = try loadConfiguration()
        } catch {
            fail("the configuration is invalid:\n\(error)" + (teardown ? "\n(--teardown --table NAME needs no configuration)" : ""))
        }
        for warning in configuration.warnings {
            logger.warning("configuration warning", metadata: ["config.warning": "\(warning)"])
        }

        if geteuid() != 0 {
            logger.warning("not running as root: pknockd needs CAP_NET_ADMIN")
        }
        if let problem = NFTContext.probe() {
            fail("nftables is not available: \(problem)")
        }
        let context: NFTContext
        do {
            context = try NFTContext(output: [.json])
        } catch {
            fail("cannot open libnftables: \(error)")
        }
        let service = KnockService(
            configuration: configuration, executor: context, logger: logger,
            replayStore: teardown ? nil : ReplayStore(directory: configuration.daemon.stateDirectory))

        if teardown {
            removeTable(configuration.daemon.table)
            return
        }

        let reader: NFLogReader
        do {
            reader = try NFLogReader(group: configuration.daemon.nflogGroup, snaplen: UInt32(FirewallLayout.defaultSnaplen))
        } catch {
            fail("cannot read NFLOG group \(configuration.daemon.nflogGroup): \(error)")
        }
        let control: DaemonControl
        do {
            control = try DaemonControl()
        } catch {
            fail("cannot set up the intake loop: \(error)")
        }
        let loop = DaemonLoop(
            service: service, reader: reader, control: control, loadConfiguration: loadConfiguration, logger: logger)
        if !configuration.daemon.nflogBatching { loop.batching = nil }

        // Events go to the log (KnockService), the event stream and the hooks; neither blocks the loop.
        let events = EventHub()
        let hooks = HookRunner(timeout: configuration.daemon.hookTimeout, logger: logger)
        service.onEvent = { [unowned service] event in
            // Both read the clock and the configuration only when a reader listens or a hook may run.
            events.publish(event, wallTime: DaemonLoop.wallTime())
            hooks.handle(event, configuration: service.configuration)
        }
        loop.events = events
        loop.hooks = hooks
        let mailbox = ControlMailbox(wake: control.wake)
        var controlServer: ControlServer?
        do {
            controlServer = try ControlServer(path: configuration.daemon.controlSocket, mailbox: mailbox, events: events, logger: logger)
            loop.mailbox = mailbox
            logger.info("control socket ready", metadata: ["control.socket": "\(configuration.daemon.controlSocket)"])
        } catch {
            // Knock handling matters more than the control socket: carry on without it.
            logger.error("control socket unavailable; pknock status/events/open/close will not work", metadata: ["error": "\(error)"])
        }
        var metricsServer: MetricsServer?
        if let address = configuration.daemon.metricsListen {
            do {
                metricsServer = try MetricsServer(host: address.host, port: address.port, logger: logger)
                loop.metrics = metricsServer
                logger.info("metrics responder ready", metadata: ["metrics.listen": "\(address)"])
            } catch {
                logger.error("metrics responder unavailable", metadata: ["error": "\(error)"])
            }
        }

        // The intake loop ends the group: when it stops (SIGTERM, SIGINT) the other parts shut down
        // after it, and when it fails the group fails.
        let table = configuration.daemon.table
        let portID = context.portID
        let intake = IntakeService(loop: loop, control: control, protection: tableProtection) { () throws(NetfilterError) in
            try NFTablesMonitor(table: table, ignoringPortID: portID)
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: intake, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
            .init(service: ReloadSignalService(control: control)),
            .init(service: StoppableService("hooks") { await hooks.finish(within: .seconds(2)) }),
            // Start-up's code pages leave the resident set once the daemon is up (#14).
            .init(service: StartupPagesRelease(after: .seconds(2), logger: logger)),
        ]
        if let controlServer { services.append(.init(service: StoppableService("control socket") { controlServer.stop() })) }
        if let metricsServer { services.append(.init(service: StoppableService("metrics") { metricsServer.stop() })) }
        if let fleet = configuration.fleet {
            // Grants wait for etcd from the first packet on; the fleet service commits and mirrors them.
            let bridge = FleetBridge(settings: fleet, wake: control.wake)
            service.attachFleet(bridge)
            do {
                services.append(.init(service: try FleetService(bridge: bridge, logger: logger)))
            } catch {
                fail("[fleet]: cannot set up the etcd client: \(error)")
            }
            logger.info("fleet configured", metadata: ["fleet.node": "\(fleet.node)", "fleet.endpoints": "\(fleet.endpoints.joined(separator: ","))"])
        }
        var groupConfiguration = ServiceGroupConfiguration(services: services, logger: logger)
        groupConfiguration.gracefulShutdownSignals = [.sigterm, .sigint]
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(10)
        do {
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            fail("\(error)")
        }
        reader.close()
        if removeOnExit {
            do {
                try service.teardown()
                logger.notice("table removed", metadata: ["nft.table": "inet \(configuration.daemon.table)"])
            } catch {
                logger.error("could not remove the table", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Removes table `inet name` and exits, or fails with the reason.
    func removeTable(_ name: String) {
        let configuration = Configuration(daemon: DaemonSettings(table: name), rules: [])
        do {
            let context = try NFTContext(output: [.json])
            try KnockService(configuration: configuration, executor: context, logger: Logger(label: "pknockd")).teardown()
            print("removed table inet \(name)")
        } catch {
            fail("could not remove table inet \(name): \(error)")
        }
    }

    /// Prints `message` as pknockd's error and exits with status 2.
    func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("pknockd: \(message)\n".utf8))
        Foundation.exit(2)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

extension KnockService.TableProtectionChoice: ExpressibleByArgument {}
