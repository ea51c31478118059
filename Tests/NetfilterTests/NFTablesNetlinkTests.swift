import Netfilter
import Testing

/// Bytes of nf_tables netlink messages: our table claim, the kernel's answers, and notifications
/// captured once in a network namespace (an `nft` process with port ID 0x7b33… made the changes).
@Suite struct NFTablesNetlinkTests {
    static func bytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.filter { !$0.isWhitespace }.utf8)
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
    }

    // Captured: `nft add table inet pknock` (NEWTABLE, then NEWGEN), port ID 0x7b33.
    static let addTable = bytes(
        "3c000000000a000001000000337b0000010000020b000100706b6e6f636b000008000300000000000c00040000000000000000010800020000000000")
    static let newGeneration = bytes("2c0000000f0a000001000000337b00000000000208000100000000020800020000007b33080003006e667400")
    // Captured: `nft add element inet pknock allowed4 { 192.0.2.7 timeout 60s }`, port ID 0x7b71.
    static let addElement = bytes(
        "5c0000000c0a000400000000717b0000010000040b000100706b6e6f636b00000d000200616c6c6f77656434000000002c000300280001000c00010008000100c00002070c000400000000000000ea600c000500000000000000ea60"
    )
    // Captured: `nft add table inet other`, port ID 0x7b76.
    static let addOtherTable = bytes(
        "3c000000000a000001000000767b0000010000050a0001006f7468657200000008000300000000000c00040000000000000000020800020000000000")
    // Captured: `nft flush ruleset` with tables pknock (one set) and other: DELSET, DELTABLE, DELTABLE in one datagram.
    static let flushRuleset = bytes(
        """
        3c0000000b0a0000010000007b7b0000010000060b000100706b6e6f636b00000d000200616c6c6f77656434000000000c0010000000000000000001
        34000000020a0000010000007b7b0000010000060b000100706b6e6f636b000008000300000000000c0004000000000000000001
        34000000020a0000010000007b7b0000010000060a0001006f7468657200000008000300000000000c0004000000000000000002
        """)

    @Test func claimBatchIsBeginNewTableWithFlagsEnd() {
        let batch = NFTablesNetlink.claimTableBatch(name: "pk", flags: [.owner, .persist], sequence: 100)
        let expected = Self.bytes(
            """
            14000000 1000 0100 64000000 00000000 0000000a
            24000000 000a 0504 65000000 00000000 01000000 0700 0100 706b0000 0800 0200 00000006
            14000000 1100 0100 66000000 00000000 0000000a
            """)
        #expect(batch == expected)
    }

    @Test func tableFlagsHaveTheKernelsValues() {
        #expect(NFTablesNetlink.TableFlags.owner.rawValue == 2)
        #expect(NFTablesNetlink.TableFlags.persist.rawValue == 4)
        #expect(NFTablesNetlink.TableFlags([.owner, .persist]).rawValue == 6)
    }

    /// An NLMSG_ERROR message answering sequence `sequence` with `error` (0: an acknowledgement).
    static func answer(sequence: UInt32, error: Int32) -> [UInt8] {
        func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { (0..<T.bitWidth / 8).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } }
        let request = le(UInt32(36)) + le(UInt16(0x0a00)) + le(UInt16(0x405)) + le(sequence) + le(UInt32(0))
        return le(UInt32(36)) + le(UInt16(2)) + le(UInt16(0x100)) + le(sequence) + le(UInt32(4242)) + le(error) + request
    }

    @Test(arguments: [(Int32(0), Int32(0)), (-1, 1), (-95, 95)])
    func acknowledgementReadsTheErrorOfTheRightSequence(error: Int32, expected: Int32) {
        let received = Self.newGeneration + Self.answer(sequence: 7, error: -13) + Self.answer(sequence: 8, error: error)
        #expect(NFTablesNetlink.acknowledgement(in: received, sequence: 8) == expected)
        #expect(NFTablesNetlink.acknowledgement(in: received, sequence: 7) == 13)
        #expect(NFTablesNetlink.acknowledgement(in: received, sequence: 9) == nil)
    }

    @Test func everyAnswerInADatagramIsReadInOnePass() {
        let received = Self.newGeneration + Self.answer(sequence: 7, error: -13) + Self.answer(sequence: 8, error: 0)
        var seen: [(UInt32, Int32)] = []
        NFTablesNetlink.forEachAcknowledgement(in: received) { seen.append(($0, $1)) }
        #expect(seen.map(\.0) == [7, 8], "the NEWGEN notification is no answer")
        #expect(seen.map(\.1) == [13, 0])
        var truncated: [UInt32] = []
        NFTablesNetlink.forEachAcknowledgement(in: Self.answer(sequence: 9, error: 0).prefix(20)) { sequence, _ in truncated.append(sequence) }
        #expect(truncated.isEmpty)
    }

    /// Issue #14: a grant's nft text is rendered only when something reads it (a refusal's message,
    /// an executor that speaks text), not for every grant.
    @Test func aBatchRendersItsScriptOnlyWhenRead() {
        final class Count: @unchecked Sendable { var renders = 0 }
        let count = Count()
        @Sendable func render() -> NFTScript {
            count.renders += 1
            return "add element inet pk a4 { 192.0.2.7 }"
        }
        let batch = NFTablesNetlink.ElementBatch(table: "pk", changes: [.init(.add, set: "a4", key: [192, 0, 2, 7])], script: render())
        _ = NFTablesNetlink.elementBatch(batch, sequence: 1)
        #expect(count.renders == 0)
        #expect(batch.script.text == "add element inet pk a4 { 192.0.2.7 }")
        #expect(count.renders == 1)
    }

    @Test func truncatedOrLyingLengthsEndTheScanSafely() {
        var answer = Self.answer(sequence: 8, error: 0)
        #expect(NFTablesNetlink.acknowledgement(in: answer.prefix(20), sequence: 8) == nil)
        answer[0] = 0xFF  // a length past the end
        #expect(NFTablesNetlink.acknowledgement(in: answer, sequence: 8) == nil)
        answer[0] = 8  // a length shorter than a header
        #expect(NFTablesNetlink.acknowledgement(in: answer, sequence: 8) == nil)
        #expect(NFTablesNetlink.changes(in: Self.addElement.prefix(30), table: "pknock", ignoringPortID: nil) == .init())
    }

    /// Found by FuzzNetlink: a last message whose length is not a multiple of 4 trapped.
    @Test func aLastMessageWithAnOddLengthDoesNotTrap() {
        var bytes = Self.addTable
        bytes[0] = 0x39  // 57 bytes of a 60-byte datagram: the padding would reach past the end
        #expect(NFTablesNetlink.changes(in: bytes.prefix(58), table: "pknock", ignoringPortID: nil) == .init(touched: true))
        #expect(NFTablesNetlink.acknowledgement(in: bytes.prefix(58), sequence: 1) == nil)
    }

    @Test func changesToTheTableBySomeoneElseAreSeen() {
        #expect(NFTablesNetlink.changes(in: Self.addTable, table: "pknock", ignoringPortID: nil) == .init(touched: true))
        #expect(NFTablesNetlink.changes(in: Self.addElement, table: "pknock", ignoringPortID: 1) == .init(touched: true))
    }

    @Test func ourOwnChangesOtherTablesAndGenerationsAreIgnored() {
        #expect(NFTablesNetlink.changes(in: Self.addElement, table: "pknock", ignoringPortID: 0x7b71) == .init())
        #expect(NFTablesNetlink.changes(in: Self.addOtherTable, table: "pknock", ignoringPortID: nil) == .init())
        #expect(NFTablesNetlink.changes(in: Self.newGeneration, table: "pknock", ignoringPortID: nil) == .init())
        // Same name, other family: `ip pknock` is not ours.
        var ipFamily = Self.addTable
        ipFamily[16] = 2
        #expect(NFTablesNetlink.changes(in: ipFamily, table: "pknock", ignoringPortID: nil) == .init())
        // A name that merely starts like ours.
        #expect(NFTablesNetlink.changes(in: Self.addTable, table: "pknoc", ignoringPortID: nil) == .init())
    }

    @Test func flushRulesetDeletesTheTable() {
        #expect(NFTablesNetlink.changes(in: Self.flushRuleset, table: "pknock", ignoringPortID: nil) == .init(touched: true, deleted: true))
        #expect(NFTablesNetlink.changes(in: Self.flushRuleset, table: "other", ignoringPortID: nil) == .init(touched: true, deleted: true))
        #expect(NFTablesNetlink.changes(in: Self.flushRuleset, table: "third", ignoringPortID: nil) == .init())
    }

    /// What `nft --debug=mnl add element inet pk a4 { 192.0.2.7 timeout 90s }` sends, less the
    /// set ID it adds (NFTA_SET_ELEM_LIST_SET_ID, for sets created in the same batch): table, set,
    /// then the nested element with its timeout (big-endian milliseconds) and key.
    @Test func anAddedElementIsEncodedAsNftEncodesIt() {
        let batch = NFTablesNetlink.ElementBatch(
            table: "pk", changes: [.init(.add, set: "a4", key: [192, 0, 2, 7], timeoutMilliseconds: 90_000)],
            script: "add element inet pk a4 { 192.0.2.7 timeout 90s }")
        let (bytes, awaiting) = NFTablesNetlink.elementBatch(batch, sequence: 10)
        #expect(awaiting == 11)
        let expected = Self.bytes(
            """
            14000000 1000 0100 0a000000 00000000 0000000a
            44000000 0c0a 0504 0b000000 00000000 01000000
            0700 0100 706b0000  0700 0200 61340000
            2000 0380  1c00 0180  0c00 0400 00000000 00015f90  0c00 0180 0800 0100 c0000207
            14000000 1100 0100 0c000000 00000000 0000000a
            """)
        #expect(bytes == expected)
    }

    @Test func aDeletionHasNoTimeoutOrCreateFlagAndOnlyTheLastChangeAsksForAnAnswer() {
        let key: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [7]
        let batch = NFTablesNetlink.ElementBatch(
            table: "pk", changes: [.init(.add, set: "a6", key: key), .init(.delete, set: "a6", key: key)], script: "")
        let (bytes, awaiting) = NFTablesNetlink.elementBatch(batch, sequence: 100)
        #expect(awaiting == 102)
        // Message 1, after the 20-byte batch begin: NEWSETELEM with REQUEST | CREATE, no ACK (the
        // kernel reports a refusal anyway; the last change's answer says the batch is done).
        #expect(Array(bytes[24...27]) == [0x0c, 0x0a, 0x01, 0x04])
        // Message 2 (after the add, its length in its first byte): DELSETELEM with REQUEST | ACK,
        // and no timeout attribute.
        let addLength = Int(bytes[20])
        #expect(addLength == 56 + 12)
        let deletion = Array(bytes[(20 + addLength)...])
        #expect(Array(deletion[4...7]) == [0x0e, 0x0a, 0x05, 0x00])
        #expect(!Array(deletion.prefix(Int(deletion[0]))).windowsMatch([0x0c, 0x00, 0x04, 0x00]))
        #expect(bytes.suffix(20).prefix(6) == [0x14, 0, 0, 0, 0x11, 0])
        // Sequence numbers: 100 (begin), 101, 102, 103 (end).
        #expect(Array(bytes[8...11]) == [100, 0, 0, 0] && Array(bytes[28...31]) == [101, 0, 0, 0])
        #expect(Array(deletion[8...11]) == [102, 0, 0, 0] && Array(bytes.suffix(12).prefix(4)) == [103, 0, 0, 0])
    }

    @Test(arguments: [[], [192, 0, 2, 7], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9], [1, 2, 3, 4, 5, 6, 7, 8, 9]] as [[UInt8]])
    func anElementKeyHoldsItsBytesInline(_ bytes: [UInt8]) {
        let key = NFTablesNetlink.ElementKey(bytes)
        #expect(key.count == bytes.count)
        #expect(key.bytes == bytes)
    }

    @Test func anIPv4MappedAddressGivesTheFourByteKey() {
        // ::ffff:192.0.2.7 as the two halves of its IPv6 form.
        let key = NFTablesNetlink.ElementKey(high: 0, low: 0x0000_FFFF_C000_0207, count: 4)
        #expect(key == NFTablesNetlink.ElementKey([192, 0, 2, 7]))
        #expect(
            NFTablesNetlink.ElementKey(high: 0x2001_0db8_0000_0000, low: 9, count: 16).bytes == [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [
                9
            ])
    }

    /// The grant path encodes each batch into one buffer, kept from grant to grant: every fill
    /// must be the whole batch for its own key, timeout and numbers, with nothing left of the last.
    @Test func aTemplateFilledAgainInTheSameBufferIsTheFreshBatch() {
        func changes(_ key: [UInt8], _ milliseconds: UInt64) -> [NFTablesNetlink.ElementChange] {
            [
                .init(.add, set: "LAT_allowed6", key: key), .init(.delete, set: "LAT_allowed6", key: key),
                .init(.add, set: "LAT_allowed6", key: key, timeoutMilliseconds: milliseconds),
            ]
        }
        let first: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
        let second: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0xff] + [UInt8](repeating: 0xee, count: 11)
        let template = NFTablesNetlink.ElementBatch(table: "pknock", changes: changes(first, 60_000), script: "").template
        var buffer: [UInt8] = []
        NFTablesNetlink.ElementBatch(template: template, key: .init(first), timeoutMilliseconds: 60_000, script: "").encode(sequence: 7, into: &buffer)
        #expect(buffer == NFTablesNetlink.elementBatch(.init(table: "pknock", changes: changes(first, 60_000), script: ""), sequence: 7).bytes)
        let capacity = buffer.capacity
        NFTablesNetlink.ElementBatch(template: template, key: .init(second), timeoutMilliseconds: 3_600_000, script: "")
            .encode(sequence: UInt32.max - 1, into: &buffer)
        #expect(buffer == NFTablesNetlink.elementBatch(.init(table: "pknock", changes: changes(second, 3_600_000), script: ""), sequence: UInt32.max - 1).bytes)
        #expect(buffer.capacity == capacity, "the buffer was reallocated")
        // The numbers wrap: begin UInt32.max - 1, the changes UInt32.max, 0, 1, the end 2.
        #expect(Array(buffer.suffix(12).prefix(4)) == [2, 0, 0, 0])
        #expect(buffer.windowsMatch(second) && !buffer.windowsMatch(first))
    }
}

extension Array where Element == UInt8 {
    /// Whether `pattern` occurs anywhere in the bytes.
    func windowsMatch(_ pattern: [UInt8]) -> Bool {
        guard count >= pattern.count else { return false }
        return (0...(count - pattern.count)).contains { Array(self[$0..<$0 + pattern.count]) == pattern }
    }
}
