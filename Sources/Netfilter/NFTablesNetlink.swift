/// nf_tables netlink messages that libnftables' text has no words for: claiming a table with the
/// `owner` and `persist` flags, and reading the change notifications `nft monitor` reads.
///
/// Pure: builds and parses bytes (host byte order for netlink headers, network byte order for
/// nf_tables values, as the kernel expects). The socket side is ``NFTContext/claimTable(_:flags:)``
/// and ``NFTablesMonitor``. Constants are from `<linux/netlink.h>`, `<linux/netfilter/nfnetlink.h>`
/// and `<linux/netfilter/nf_tables.h>`.
public enum NFTablesNetlink {
    /// `NFNL_SUBSYS_NFTABLES`: the high byte of every nf_tables message type.
    public static let subsystem: UInt16 = 10
    /// `NFNLGRP_NFTABLES`: the multicast group of nf_tables change notifications.
    public static let notificationGroup: UInt32 = 7
    /// `NFPROTO_INET`: the family of `inet` tables.
    public static let familyINet: UInt8 = 1

    /// `NLMSG_ERROR`: an acknowledgement, or the error a request caused.
    static let messageError: UInt16 = 2
    /// `NFNL_MSG_BATCH_BEGIN` and `NFNL_MSG_BATCH_END`: the brackets of one transaction.
    static let batchBegin: UInt16 = 0x10
    static let batchEnd: UInt16 = 0x11
    /// `NLM_F_REQUEST`, `NLM_F_ACK`, `NLM_F_CREATE`.
    static let flagRequest: UInt16 = 0x1
    static let flagAck: UInt16 = 0x4
    static let flagCreate: UInt16 = 0x400
    /// `NFTA_TABLE_NAME` and `NFTA_TABLE_FLAGS`.
    static let tableNameAttribute: UInt16 = 1
    static let tableFlagsAttribute: UInt16 = 2
    /// `NLA_TYPE_MASK`: an attribute's type without the nested and byte-order bits.
    static let attributeTypeMask: UInt16 = 0x3FFF

    /// The `NFT_TABLE_F_*` flags of a table.
    public struct TableFlags: OptionSet, Hashable, Sendable {
        /// The bits, as in `NFTA_TABLE_FLAGS`.
        public var rawValue: UInt32
        /// Makes flags from their bits.
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// `NFT_TABLE_F_DORMANT`: the table's chains do not see packets.
        public static let dormant = TableFlags(rawValue: 0x1)
        /// `NFT_TABLE_F_OWNER` (Linux ≥ 5.12): only the netlink socket that set it may change or
        /// delete the table; it goes when that socket closes, unless `persist` is set too.
        public static let owner = TableFlags(rawValue: 0x2)
        /// `NFT_TABLE_F_PERSIST` (Linux ≥ 6.9): with `owner`, the table outlives its owner's socket
        /// (orphaned: an ordinary table again) until a new owner claims it.
        public static let persist = TableFlags(rawValue: 0x4)
    }

    /// The nf_tables message types (`NFT_MSG_*`), the low byte of a message type.
    public enum MessageKind: UInt8, Sendable, CaseIterable {
        case newTable = 0, deleteTable = 2, newChain = 3, deleteChain = 5, newRule = 6, deleteRule = 8
        case newSet = 9, deleteSet = 11, newSetElement = 12, deleteSetElement = 14, newGeneration = 15
        case newObject = 18, deleteObject = 20, newFlowtable = 22, deleteFlowtable = 24
        case destroyTable = 26, destroyChain = 27, destroyRule = 28, destroySet = 29
        case destroySetElement = 30, destroyObject = 31, destroyFlowtable = 32
    }

    // MARK: - Requests

    /// One transaction that creates the `family` table `name` with `flags`, or, if it exists,
    /// sets them (which is how an orphaned persistent table gets a new owner).
    ///
    /// Three messages: `NFNL_MSG_BATCH_BEGIN` (sequence `sequence`), `NFT_MSG_NEWTABLE` with
    /// `NLM_F_CREATE | NLM_F_ACK` (sequence `sequence + 1`, the one to wait for), `NFNL_MSG_BATCH_END`.
    public static func claimTableBatch(name: String, family: UInt8 = familyINet, flags: TableFlags, sequence: UInt32) -> [UInt8] {
        var bytes: [UInt8] = []
        appendMessage(to: &bytes, type: batchBegin, flags: flagRequest, sequence: sequence, family: 0, resourceID: subsystem) { _ in }
        appendMessage(
            to: &bytes, type: subsystem << 8 | UInt16(MessageKind.newTable.rawValue),
            flags: flagRequest | flagAck | flagCreate, sequence: sequence &+ 1, family: family, resourceID: 0
        ) { body in
            appendStringAttribute(to: &body, type: tableNameAttribute, value: name)
            appendAttribute(to: &body, type: tableFlagsAttribute, value: bigEndianBytes(flags.rawValue))
        }
        appendMessage(to: &bytes, type: batchEnd, flags: flagRequest, sequence: sequence &+ 2, family: 0, resourceID: subsystem) { _ in }
        return bytes
    }

    /// The outcome `bytes` (what a netlink socket received) reports for the request with
    /// `sequence`: nil when none of its messages answers it, 0 for an acknowledgement, otherwise
    /// the positive errno of the refusal.
    public static func acknowledgement(in bytes: some Collection<UInt8>, sequence: UInt32) -> Int32? {
        for message in NetlinkMessages(bytes) where message.type == messageError && message.sequence == sequence {
            // struct nlmsgerr: int error (negative errno, 0 for an ack), then the request's header.
            guard let error = message.payload.int32(at: 0) else { return nil }
            return error == Int32.min ? Int32.max : -error
        }
        return nil
    }

    /// Calls `body` with the sequence number and outcome (0, or the positive errno of a refusal) of
    /// every acknowledgement or error in `bytes`, in order: one pass over a received datagram.
    public static func forEachAcknowledgement(in bytes: some Collection<UInt8>, _ body: (_ sequence: UInt32, _ outcome: Int32) -> Void) {
        for message in NetlinkMessages(bytes) where message.type == messageError {
            guard let error = message.payload.int32(at: 0) else { return }
            body(message.sequence, error == Int32.min ? Int32.max : -error)
        }
    }

    /// One change to a set's elements, as one `NFT_MSG_NEWSETELEM` or `NFT_MSG_DELSETELEM` message.
    public struct ElementChange: Equatable, Sendable {
        /// Add (`add element`: an existing element stays, its timeout too) or delete.
        public enum Kind: Equatable, Sendable { case add, delete }
        /// Add or delete.
        public var kind: Kind
        /// The set's name.
        public var set: String
        /// The element's key in network byte order: 4 bytes of IPv4 or 16 of IPv6 address.
        public var key: [UInt8]
        /// The element's timeout (added elements only), whole milliseconds; nil for none.
        public var timeoutMilliseconds: UInt64?

        /// Makes a change.
        public init(_ kind: Kind, set: String, key: [UInt8], timeoutMilliseconds: UInt64? = nil) {
            self.kind = kind
            self.set = set
            self.key = key
            self.timeoutMilliseconds = timeoutMilliseconds
        }
    }

    /// Set-element changes to apply as one transaction, with the nft text that says the same (for
    /// logs, errors, and executors that only speak text).
    ///
    /// The text is rendered only when asked for: the grant path sends the prepared messages and
    /// needs it only to describe a refusal.
    public struct ElementBatch: Equatable, Sendable {
        /// The `inet` table whose sets change.
        public var table: String
        /// The changes, in order.
        public var changes: [ElementChange]
        private let renderScript: @Sendable () -> NFTScript

        /// The same changes as an nft script (rendered on each use).
        public var script: NFTScript { renderScript() }

        /// Makes a batch; `script` is evaluated only when ``script`` is read.
        public init(table: String, changes: [ElementChange], script: @escaping @autoclosure @Sendable () -> NFTScript) {
            self.table = table
            self.changes = changes
            self.renderScript = script
        }

        public static func == (lhs: ElementBatch, rhs: ElementBatch) -> Bool {
            lhs.table == rhs.table && lhs.changes == rhs.changes && lhs.script == rhs.script
        }
    }

    /// `NFTA_SET_ELEM_LIST_*`, `NFTA_LIST_ELEM`, `NFTA_SET_ELEM_*`, `NFTA_DATA_VALUE`; `NLA_F_NESTED`.
    static let elementListTable: UInt16 = 1, elementListSet: UInt16 = 2, elementListElements: UInt16 = 3
    static let listElement: UInt16 = 1, elementKey: UInt16 = 1, elementTimeout: UInt16 = 4, dataValue: UInt16 = 1
    static let nestedFlag: UInt16 = 0x8000

    /// One transaction applying `batch`: batch begin (`sequence`), one message per change
    /// (`sequence + 1` …, each with `NLM_F_ACK`), batch end.
    ///
    /// Returns the bytes and the sequence
    /// numbers whose answers to wait for.
    public static func elementBatch(_ batch: ElementBatch, sequence: UInt32) -> (bytes: [UInt8], awaiting: [UInt32]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64 + batch.changes.count * 96)
        appendMessage(to: &bytes, type: batchBegin, flags: flagRequest, sequence: sequence, family: 0, resourceID: subsystem) { _ in }
        var awaiting: [UInt32] = []
        for (offset, change) in batch.changes.enumerated() {
            let messageSequence = sequence &+ UInt32(offset + 1)
            awaiting.append(messageSequence)
            let kind: MessageKind = change.kind == .add ? .newSetElement : .deleteSetElement
            let flags = flagRequest | flagAck | (change.kind == .add ? flagCreate : 0)
            appendMessage(
                to: &bytes, type: subsystem << 8 | UInt16(kind.rawValue), flags: flags, sequence: messageSequence,
                family: familyINet, resourceID: 0
            ) { body in
                appendStringAttribute(to: &body, type: elementListTable, value: batch.table)
                appendStringAttribute(to: &body, type: elementListSet, value: change.set)
                appendNested(to: &body, type: elementListElements) { elements in
                    appendNested(to: &elements, type: listElement) { element in
                        if let timeout = change.timeoutMilliseconds {
                            appendBigEndianAttribute(to: &element, type: elementTimeout, value: timeout)
                        }
                        appendNested(to: &element, type: elementKey) { key in
                            appendAttribute(to: &key, type: dataValue, value: change.key)
                        }
                    }
                }
            }
        }
        appendMessage(
            to: &bytes, type: batchEnd, flags: flagRequest, sequence: sequence &+ UInt32(batch.changes.count + 1), family: 0,
            resourceID: subsystem
        ) { _ in }
        return (bytes, awaiting)
    }

    // MARK: - Notifications

    /// What a batch of nf_tables notifications did to one table.
    public struct TableChanges: Equatable, Sendable {
        /// Some notification named the table (its table, chains, rules, sets or elements).
        public var touched = false
        /// The table itself was deleted.
        public var deleted = false
        /// Makes an empty summary.
        public init(touched: Bool = false, deleted: Bool = false) {
            self.touched = touched
            self.deleted = deleted
        }
    }

    /// Scans received notifications for changes to the `family` table `table` made by any
    /// socket other than `ownPortID` (pknockd's own changes come back as notifications too).
    ///
    /// Every nf_tables object message carries the table's name as attribute 1 (`NFTA_TABLE_NAME`,
    /// `NFTA_CHAIN_TABLE`, `NFTA_RULE_TABLE`, `NFTA_SET_TABLE`, `NFTA_SET_ELEM_LIST_TABLE`, …); a
    /// notification's `nlmsg_pid` is the port ID of the socket whose request caused it.
    public static func changes(
        in bytes: some Collection<UInt8>, table: String, family: UInt8 = familyINet, ignoringPortID ownPortID: UInt32?
    ) -> TableChanges {
        var result = TableChanges()
        let name = Array(table.utf8)
        for message in NetlinkMessages(bytes) {
            guard message.type >> 8 == subsystem, let kind = MessageKind(rawValue: UInt8(message.type & 0xFF)) else { continue }
            if kind == .newGeneration { continue }
            if let ownPortID, message.portID == ownPortID { continue }
            // struct nfgenmsg: family, version, resource ID; then the attributes.
            guard message.payload.count >= 4, message.payload.byte(at: 0) == family else { continue }
            guard let named = message.payload.attribute(tableNameAttribute, from: 4), named.cString == name[...] else {
                continue
            }
            result.touched = true
            if kind == .deleteTable || kind == .destroyTable { result.deleted = true }
        }
        return result
    }

    // MARK: - Encoding

    /// Appends one netlink message: its header, `struct nfgenmsg`, then what `attributes` appends;
    /// the length is filled in afterwards (no intermediate arrays).
    private static func appendMessage(
        to bytes: inout [UInt8], type: UInt16, flags: UInt16, sequence: UInt32, family: UInt8, resourceID: UInt16,
        attributes: (inout [UInt8]) -> Void
    ) {
        let start = bytes.count
        // struct nlmsghdr, host byte order: len (filled in below), type, flags, seq, pid (0: the kernel).
        appendLittleEndian(UInt32(0), to: &bytes)
        appendLittleEndian(type, to: &bytes)
        appendLittleEndian(flags, to: &bytes)
        appendLittleEndian(sequence, to: &bytes)
        appendLittleEndian(UInt32(0), to: &bytes)
        // struct nfgenmsg: nfgen_family, version (NFNETLINK_V0), res_id (big-endian).
        bytes.append(family)
        bytes.append(0)
        appendBigEndian(resourceID, to: &bytes)
        attributes(&bytes)
        let length = UInt32(bytes.count - start)
        for index in 0..<4 { bytes[start + index] = UInt8(truncatingIfNeeded: length >> (index * 8)) }
        pad(&bytes)
    }

    private static func appendAttribute(to bytes: inout [UInt8], type: UInt16, value: [UInt8]) {
        appendLittleEndian(UInt16(4 + value.count), to: &bytes)
        appendLittleEndian(type, to: &bytes)
        bytes.append(contentsOf: value)
        pad(&bytes)
    }

    /// A NUL-terminated string attribute, written straight from the string's UTF-8.
    private static func appendStringAttribute(to bytes: inout [UInt8], type: UInt16, value: String) {
        var utf8 = value
        utf8.withUTF8 { text in
            appendLittleEndian(UInt16(4 + text.count + 1), to: &bytes)
            appendLittleEndian(type, to: &bytes)
            bytes.append(contentsOf: text)
        }
        bytes.append(0)
        pad(&bytes)
    }

    private static func appendBigEndianAttribute(to bytes: inout [UInt8], type: UInt16, value: UInt64) {
        appendLittleEndian(UInt16(4 + 8), to: &bytes)
        appendLittleEndian(type, to: &bytes)
        appendBigEndian(value, to: &bytes)
    }

    private static func appendNested(to bytes: inout [UInt8], type: UInt16, _ body: (inout [UInt8]) -> Void) {
        let start = bytes.count
        appendLittleEndian(UInt16(0), to: &bytes)
        appendLittleEndian(type | nestedFlag, to: &bytes)
        body(&bytes)
        let length = UInt16(bytes.count - start)
        bytes[start] = UInt8(truncatingIfNeeded: length)
        bytes[start + 1] = UInt8(truncatingIfNeeded: length >> 8)
    }

    private static func pad(_ bytes: inout [UInt8]) {
        while bytes.count % 4 != 0 { bytes.append(0) }
    }

    private static func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        for index in 0..<T.bitWidth / 8 { bytes.append(UInt8(truncatingIfNeeded: value >> (index * 8))) }
    }

    private static func appendBigEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        for index in (0..<T.bitWidth / 8).reversed() { bytes.append(UInt8(truncatingIfNeeded: value >> (index * 8))) }
    }

    static func bigEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<T.bitWidth / 8).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }

    static func littleEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<T.bitWidth / 8).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }
}

// MARK: - Parsing

/// The netlink messages in a received buffer, in order; stops at the first malformed header.
///
/// Accepts any collection of bytes and any alignment; lengths are checked, never trusted
/// (a message shorter than its header or longer than what is left ends the sequence).
struct NetlinkMessages<Bytes: Collection<UInt8>>: Sequence, IteratorProtocol {
    struct Message {
        var type: UInt16
        var flags: UInt16
        var sequence: UInt32
        var portID: UInt32
        var payload: ByteView
    }

    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: Bytes) { self.bytes = Array(bytes) }

    mutating func next() -> Message? {
        // The last message's padding may reach past the end.
        guard offset < bytes.count else { return nil }
        let view = ByteView(bytes: bytes, range: offset..<bytes.count)
        guard let length = view.uint32(at: 0), length >= 16, Int(length) <= view.count,
            let type = view.uint16(at: 4), let flags = view.uint16(at: 6),
            let sequence = view.uint32(at: 8), let portID = view.uint32(at: 12)
        else { return nil }
        let payload = ByteView(bytes: bytes, range: offset + 16..<offset + Int(length))
        offset += (Int(length) + 3) & ~3
        return Message(type: type, flags: flags, sequence: sequence, portID: portID, payload: payload)
    }
}

/// A bounds-checked window on received bytes, read in netlink's host byte order (little-endian on
/// every architecture pknockd ships for).
struct ByteView {
    let bytes: [UInt8]
    let range: Range<Int>

    var count: Int { range.count }

    func byte(at offset: Int) -> UInt8? {
        guard offset >= 0, offset < count else { return nil }
        return bytes[range.lowerBound + offset]
    }

    func uint16(at offset: Int) -> UInt16? {
        guard let low = byte(at: offset), let high = byte(at: offset + 1) else { return nil }
        return UInt16(low) | UInt16(high) << 8
    }

    func uint32(at offset: Int) -> UInt32? {
        guard let low = uint16(at: offset), let high = uint16(at: offset + 2) else { return nil }
        return UInt32(low) | UInt32(high) << 16
    }

    func int32(at offset: Int) -> Int32? { uint32(at: offset).map { Int32(bitPattern: $0) } }

    /// The value of the first attribute of `type` in the attribute list from `start`.
    func attribute(_ type: UInt16, from start: Int) -> ByteView? {
        var offset = start
        while let length = uint16(at: offset), let kind = uint16(at: offset + 2), length >= 4, offset + Int(length) <= count {
            if kind & NFTablesNetlink.attributeTypeMask == type {
                return ByteView(bytes: bytes, range: range.lowerBound + offset + 4..<range.lowerBound + offset + Int(length))
            }
            offset += (Int(length) + 3) & ~3
        }
        return nil
    }

    /// The bytes up to the first NUL (a netlink string attribute).
    var cString: ArraySlice<UInt8> {
        let slice = bytes[range]
        return slice.firstIndex(of: 0).map { slice[..<$0] } ?? slice
    }
}
