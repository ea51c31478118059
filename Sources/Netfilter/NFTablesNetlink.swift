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

    /// A set element's key, held inline (no heap storage): up to 16 bytes in network byte order,
    /// 4 for an IPv4 address and 16 for an IPv6 one.
    public struct ElementKey: Hashable, Sendable {
        /// The key right-aligned in 16 bytes, big-endian: bytes 0–7 of that form...
        public let high: UInt64
        /// ...and bytes 8–15.
        public let low: UInt64
        /// How many of the 16 bytes, counted from the end, are the key.
        public let count: Int

        /// The last `count` bytes of the 16-byte big-endian value `high`:`low` (an IPv4-mapped
        /// address with `count` 4 is the IPv4 address).
        public init(high: UInt64, low: UInt64, count: Int) {
            precondition((0...16).contains(count), "a set element key has at most 16 bytes")
            self.high = count > 8 ? high & (count == 16 ? ~0 : (1 << UInt64(8 * (count - 8))) - 1) : 0
            self.low = count >= 8 ? low : low & ((1 << UInt64(8 * count)) - 1)
            self.count = count
        }

        /// The key of `bytes`, in network byte order (at most 16).
        public init(_ bytes: some Collection<UInt8>) {
            precondition(bytes.count <= 16, "a set element key has at most 16 bytes")
            var high: UInt64 = 0
            var low: UInt64 = 0
            for byte in bytes {
                high = high << 8 | low >> 56
                low = low << 8 | UInt64(byte)
            }
            self.init(high: high, low: low, count: bytes.count)
        }

        /// Byte `index` of the key (0 is the first on the wire).
        public subscript(index: Int) -> UInt8 {
            let position = 16 - count + index
            let word = position < 8 ? high : low
            return UInt8(truncatingIfNeeded: word >> UInt64(8 * (7 - position % 8)))
        }

        /// The key's bytes, in network byte order.
        public var bytes: [UInt8] { (0..<count).map { self[$0] } }
    }

    /// The messages of one element batch, encoded once, less the key, the timeout and the numbers.
    ///
    /// It holds its table and, per change, the kind, the set and whether the change carries the
    /// timeout. Each use fills in the key, the timeout and
    /// the sequence numbers (``encode(key:timeoutMilliseconds:sequence:into:)``), so a grant is a
    /// copy and a few stores, not a build of its messages: building them (strings, nested
    /// attributes, closures) was most of pknockd's share of a grant, because between knocks that
    /// code runs cold (BENCHMARKS.md, "Grant path").
    ///
    /// Batch begin (sequence `s`), one message per change (`s + 1` …), batch end. Only the last
    /// change asks for an acknowledgement (`NLM_F_ACK`): the kernel reports a refused change
    /// whether or not it asked, and sends its answers after the whole batch has been committed or
    /// aborted, so the last change's answer says the batch is done.
    public final class ElementBatchTemplate: Equatable, Sendable {
        /// One change of the batch.
        public struct Step: Equatable, Sendable {
            /// Add (`add element`: an existing element stays, its timeout too) or delete.
            public var kind: ElementChange.Kind
            /// The set's name.
            public var set: String
            /// Whether the change carries the batch's timeout (added elements only).
            public var timed: Bool

            /// Makes a step.
            public init(_ kind: ElementChange.Kind, set: String, timed: Bool = false) {
                precondition(!timed || kind == .add, "only an added element has a timeout")
                self.kind = kind
                self.set = set
                self.timed = timed
            }
        }

        /// The `inet` table whose sets change.
        public let table: String
        /// The changes, in order.
        public let steps: [Step]
        /// The length of the key every change carries (4 or 16 for addresses).
        public let keyLength: Int
        /// The batch with zero keys, timeouts and sequence numbers.
        let bytes: [UInt8]
        let keyOffsets: [Int]
        let timeoutOffsets: [Int]
        /// Where each message's sequence number is, in order (the message at index i has `s + i`).
        let sequenceOffsets: [Int]

        /// Encodes the batch of `steps` on `table`, for keys of `keyLength` bytes.
        public init(table: String, steps: [Step], keyLength: Int) {
            precondition(!steps.isEmpty && (0...16).contains(keyLength))
            self.table = table
            self.steps = steps
            self.keyLength = keyLength
            var bytes: [UInt8] = []
            bytes.reserveCapacity(64 + steps.count * 96)
            var keyOffsets: [Int] = []
            var timeoutOffsets: [Int] = []
            var sequenceOffsets: [Int] = [bytes.count + 8]
            appendMessage(to: &bytes, type: batchBegin, flags: flagRequest, sequence: 0, family: 0, resourceID: subsystem) { _ in }
            for (index, step) in steps.enumerated() {
                let kind: MessageKind = step.kind == .add ? .newSetElement : .deleteSetElement
                let acknowledged = index == steps.count - 1
                let flags = flagRequest | (acknowledged ? flagAck : 0) | (step.kind == .add ? flagCreate : 0)
                sequenceOffsets.append(bytes.count + 8)
                appendMessage(to: &bytes, type: subsystem << 8 | UInt16(kind.rawValue), flags: flags, sequence: 0, family: familyINet, resourceID: 0) {
                    body in
                    appendStringAttribute(to: &body, type: elementListTable, value: table)
                    appendStringAttribute(to: &body, type: elementListSet, value: step.set)
                    appendNested(to: &body, type: elementListElements) { elements in
                        appendNested(to: &elements, type: listElement) { element in
                            if step.timed {
                                timeoutOffsets.append(element.count + 4)
                                appendBigEndianAttribute(to: &element, type: elementTimeout, value: 0)
                            }
                            appendNested(to: &element, type: elementKey) { key in
                                keyOffsets.append(key.count + 4)
                                appendAttribute(to: &key, type: dataValue, value: [UInt8](repeating: 0, count: keyLength))
                            }
                        }
                    }
                }
            }
            sequenceOffsets.append(bytes.count + 8)
            appendMessage(to: &bytes, type: batchEnd, flags: flagRequest, sequence: 0, family: 0, resourceID: subsystem) { _ in }
            self.bytes = bytes
            self.keyOffsets = keyOffsets
            self.timeoutOffsets = timeoutOffsets
            self.sequenceOffsets = sequenceOffsets
        }

        /// Whether some change carries a timeout.
        public var hasTimeout: Bool { !timeoutOffsets.isEmpty }
        /// Messages in the batch, brackets included: the sequence numbers one use takes.
        public var messageCount: Int { sequenceOffsets.count }
        /// The sequence number whose answer ends the exchange, for a batch that starts at `sequence`:
        /// the last change's.
        public func acknowledgedSequence(startingAt sequence: UInt32) -> UInt32 { sequence &+ UInt32(steps.count) }

        /// Replaces `buffer`'s contents with the batch for `key` (``keyLength`` bytes), the
        /// timeout of the timed changes, and sequence numbers from `sequence`; keeps the buffer's
        /// capacity, so a buffer that is reused does not allocate.
        public func encode(key: ElementKey, timeoutMilliseconds: UInt64, sequence: UInt32, into buffer: inout [UInt8]) {
            precondition(key.count == keyLength, "the key's length is not the template's")
            buffer.removeAll(keepingCapacity: true)
            buffer.append(contentsOf: bytes)
            for (index, offset) in sequenceOffsets.enumerated() {
                let value = sequence &+ UInt32(index)
                for byte in 0..<4 { buffer[offset + byte] = UInt8(truncatingIfNeeded: value >> UInt32(8 * byte)) }
            }
            for offset in keyOffsets {
                for index in 0..<keyLength { buffer[offset + index] = key[index] }
            }
            for offset in timeoutOffsets {
                for byte in 0..<8 { buffer[offset + byte] = UInt8(truncatingIfNeeded: timeoutMilliseconds >> UInt64(8 * (7 - byte))) }
            }
        }

        public static func == (lhs: ElementBatchTemplate, rhs: ElementBatchTemplate) -> Bool {
            lhs === rhs || (lhs.table == rhs.table && lhs.steps == rhs.steps && lhs.keyLength == rhs.keyLength)
        }
    }

    /// Set-element changes to apply as one transaction: a template, the key and timeout to fill it
    /// with, and the nft text that says the same (for logs, errors, and executors that only speak
    /// text).
    ///
    /// The text is rendered only when asked for: the grant path sends the prepared messages and
    /// needs it only to describe a refusal.
    public struct ElementBatch: Equatable, Sendable {
        /// The messages, less the key and timeout.
        public let template: ElementBatchTemplate
        /// The key every change carries.
        public let key: ElementKey
        /// The timeout of the template's timed changes, whole milliseconds; nil when it has none.
        public let timeoutMilliseconds: UInt64?
        private let renderScript: @Sendable () -> NFTScript

        /// The `inet` table whose sets change.
        public var table: String { template.table }
        /// The changes, in order.
        public var changes: [ElementChange] {
            template.steps.map { .init($0.kind, set: $0.set, key: key.bytes, timeoutMilliseconds: $0.timed ? timeoutMilliseconds : nil) }
        }
        /// The same changes as an nft script (rendered on each use).
        public var script: NFTScript { renderScript() }

        /// Fills `template` with `key` and `timeoutMilliseconds` (required exactly when the template
        /// has timed changes); `script` is evaluated only when ``script`` is read.
        public init(
            template: ElementBatchTemplate, key: ElementKey, timeoutMilliseconds: UInt64?,
            script: @escaping @autoclosure @Sendable () -> NFTScript
        ) {
            precondition(key.count == template.keyLength, "the key's length is not the template's")
            precondition(template.hasTimeout == (timeoutMilliseconds != nil), "a timed template needs a timeout, and only it")
            self.template = template
            self.key = key
            self.timeoutMilliseconds = timeoutMilliseconds
            self.renderScript = script
        }

        /// Makes a batch of `changes` on `table`, encoding a template for it: changes that all
        /// carry one key and, those that have one, one timeout (as grants and revocations do).
        public init(table: String, changes: [ElementChange], script: @escaping @autoclosure @Sendable () -> NFTScript) {
            let key = changes.first?.key ?? []
            let timeouts = Set(changes.compactMap(\.timeoutMilliseconds))
            precondition(changes.allSatisfy { $0.key == key } && timeouts.count <= 1, "the changes of one batch share one key and one timeout")
            let template = ElementBatchTemplate(
                table: table, steps: changes.map { .init($0.kind, set: $0.set, timed: $0.timeoutMilliseconds != nil) }, keyLength: key.count)
            self.init(template: template, key: ElementKey(key), timeoutMilliseconds: timeouts.first, script: script())
        }

        /// Replaces `buffer`'s contents with the batch's messages, numbered from `sequence`.
        public func encode(sequence: UInt32, into buffer: inout [UInt8]) {
            template.encode(key: key, timeoutMilliseconds: timeoutMilliseconds ?? 0, sequence: sequence, into: &buffer)
        }

        public static func == (lhs: ElementBatch, rhs: ElementBatch) -> Bool {
            lhs.template == rhs.template && lhs.key == rhs.key && lhs.timeoutMilliseconds == rhs.timeoutMilliseconds
                && lhs.script == rhs.script
        }
    }

    /// `NFTA_SET_ELEM_LIST_*`, `NFTA_LIST_ELEM`, `NFTA_SET_ELEM_*`, `NFTA_DATA_VALUE`; `NLA_F_NESTED`.
    static let elementListTable: UInt16 = 1, elementListSet: UInt16 = 2, elementListElements: UInt16 = 3
    static let listElement: UInt16 = 1, elementKey: UInt16 = 1, elementTimeout: UInt16 = 4, dataValue: UInt16 = 1
    static let nestedFlag: UInt16 = 0x8000

    /// One transaction applying `batch` (see ``ElementBatchTemplate``), numbered from `sequence`.
    ///
    /// Returns the bytes and the sequence number whose answer ends the exchange.
    public static func elementBatch(_ batch: ElementBatch, sequence: UInt32) -> (bytes: [UInt8], awaiting: UInt32) {
        var bytes: [UInt8] = []
        batch.encode(sequence: sequence, into: &bytes)
        return (bytes, batch.template.acknowledgedSequence(startingAt: sequence))
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
        appendLittleEndian(UInt16(4 + value.utf8.count + 1), to: &bytes)
        appendLittleEndian(type, to: &bytes)
        bytes.append(contentsOf: value.utf8)
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
