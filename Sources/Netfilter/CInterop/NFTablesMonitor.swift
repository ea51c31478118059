import Glibc

/// Watches one nftables table for changes made by anyone else: the nf_tables notifications that
/// `nft monitor` reads (netlink group `NFNLGRP_NFTABLES`), filtered to the table.
///
/// pknockd uses it where the kernel cannot protect the table (no `owner`/`persist` flags): a
/// `flush ruleset` or a hand edit is seen at once and the table is put back. Its own changes come
/// back as notifications too and are told apart by the port ID of the socket that made them.
/// Not thread-safe: one owner polls ``fileDescriptor`` and calls ``drain()``.
@safe
public final class NFTablesMonitor {
    /// The table watched, in family `inet`.
    public let table: String
    /// Changes from this netlink port (pknockd's libnftables context) are not reported.
    public let ignoredPortID: UInt32?
    /// How often the kernel dropped notifications because the socket's buffer was full.
    public private(set) var overrunCount = 0

    private let descriptor: Int32
    private var buffer = [UInt8](repeating: 0, count: 65_536)

    /// Subscribes to nf_tables notifications (needs CAP_NET_ADMIN in the network namespace).
    ///
    /// The corresponding C calls are `socket(AF_NETLINK, …, NETLINK_NETFILTER)`, `bind` and
    /// `setsockopt(NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTABLES)`.
    public init(table: String, ignoringPortID: UInt32?, receiveBufferBytes: Int = 4 << 20) throws(NetfilterError) {
        self.table = table
        self.ignoredPortID = ignoringPortID
        self.descriptor = try NetlinkSocket.openSubscribed(group: NFTablesNetlink.notificationGroup, receiveBufferBytes: receiveBufferBytes)
    }

    deinit {
        _ = Glibc.close(descriptor)
    }

    /// The socket, for a poll loop: readable when notifications are queued.
    public var fileDescriptor: Int32 { descriptor }

    /// Reads every queued notification without waiting and sums up what others did to the table.
    ///
    /// A buffer overrun (notifications lost) is reported as a change, since what was lost is unknown.
    public func drain() throws(NetfilterError) -> NFTablesNetlink.TableChanges {
        var changes = NFTablesNetlink.TableChanges()
        while true {
            switch try NetlinkSocket.receive(on: descriptor, into: &buffer) {
            case .empty:
                return changes
            case .overrun:
                overrunCount += 1
                changes.touched = true
            case .datagram(let count):
                let found = NFTablesNetlink.changes(in: buffer[..<count], table: table, ignoringPortID: ignoredPortID)
                changes.touched = changes.touched || found.touched
                changes.deleted = changes.deleted || found.deleted
            }
        }
    }

    /// Waits up to `milliseconds` for a change by others and returns what was seen (empty on timeout).
    public func waitForChanges(milliseconds: Int) throws(NetfilterError) -> NFTablesNetlink.TableChanges {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(milliseconds)
        var changes = NFTablesNetlink.TableChanges()
        while clock.now < deadline {
            _ = try NetlinkSocket.waitReadable(descriptor, milliseconds: 20)
            let found = try drain()
            changes.touched = changes.touched || found.touched
            changes.deleted = changes.deleted || found.deleted
            // Notifications of one transaction arrive together; give the rest of it a moment.
            if changes.touched, !(try NetlinkSocket.waitReadable(descriptor, milliseconds: 20)) { return changes }
        }
        return changes
    }
}
