import Testing

@testable import KnockCore

/// The later-stage peer table (issue #14): a dense open-addressing table with recency order.
///
/// Every operation is checked against a plain model (a dictionary and an ordered list).
@Suite struct DensePeerTableTests {
    /// What the table must behave like: addresses stalest first, with their values.
    struct Model {
        let capacity: Int
        var order: [PeerAddress] = []
        var values: [PeerAddress: Int] = [:]

        mutating func upsert(_ address: PeerAddress, _ value: Int) -> (PeerAddress, Int)? {
            if values[address] != nil {
                order.removeAll { $0 == address }
                order.append(address)
                values[address] = value
                return nil
            }
            var evicted: (PeerAddress, Int)?
            if order.count >= capacity {
                let oldest = order.removeFirst()
                evicted = (oldest, values.removeValue(forKey: oldest)!)
            }
            order.append(address)
            values[address] = value
            return evicted
        }

        mutating func remove(_ address: PeerAddress) -> Int? {
            guard let value = values.removeValue(forKey: address) else { return nil }
            order.removeAll { $0 == address }
            return value
        }
    }

    static func ipv4(_ index: Int) -> PeerAddress { PeerAddress(ipv4: 0xC633_6400 &+ UInt32(index)) }  // from 198.51.100.0
    static func ipv6(_ index: Int) -> PeerAddress { PeerAddress(high: 0x2001_0DB8_0000_0000, low: UInt64(index)) }

    func expectSame(_ table: PeerTable<Int>, _ model: Model, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(table.count == model.order.count, sourceLocation: sourceLocation)
        #expect(table.entries.map(\.address) == model.order, sourceLocation: sourceLocation)
        #expect(table.entries.map(\.value) == model.order.map { model.values[$0]! }, sourceLocation: sourceLocation)
        #expect(table.stalestEntry?.address == model.order.first, sourceLocation: sourceLocation)
        for address in model.order { #expect(table[address] == model.values[address], sourceLocation: sourceLocation) }
    }

    @Test func growsFromEmptyAndFindsEveryEntry() {
        var table = PeerTable<Int>(capacity: 100_000)
        #expect(table.storageBytes == 0, "nothing is allocated before the first entry")
        for index in 0..<50_000 { #expect(table.upsert(Self.ipv6(index), index) == nil) }
        #expect(table.count == 50_000)
        for index in 0..<50_000 { #expect(table[Self.ipv6(index)] == index) }
        #expect(table[Self.ipv6(50_000)] == nil)
        #expect(table[Self.ipv4(0)] == nil, "an IPv4 address is not its IPv6 namesake")
        #expect(table.entries.map(\.value) == Array(0..<50_000), "stalest first, in insertion order")
    }

    @Test func ipv4AndIPv6AddressesAreDistinctKeys() {
        var table = PeerTable<Int>(capacity: 16)
        let v4 = Fixture.address("192.0.2.1")
        let mapped = PeerAddress(high: 0, low: 0x0000_FFFF_C000_0201)  // ::ffff:192.0.2.1 is the same peer
        let v6 = Fixture.address("2001:db8::c000:201")
        table.upsert(v4, 1)
        table.upsert(v6, 2)
        #expect(table[v4] == 1)
        #expect(table[mapped] == 1)
        #expect(table[v6] == 2)
        #expect(table.remove(v4) == 1)
        #expect(table[v6] == 2)
        #expect(table[v4] == nil)
    }

    @Test func upsertRefreshesAndUpdateKeepsTheOrder() {
        var table = PeerTable<Int>(capacity: 8)
        for index in 0..<4 { table.upsert(Self.ipv4(index), index) }
        table.upsert(Self.ipv4(0), 10)
        #expect(table.entries.map(\.address) == [1, 2, 3, 0].map(Self.ipv4))
        table.update(Self.ipv4(1), 11)
        #expect(table.entries.map(\.address) == [1, 2, 3, 0].map(Self.ipv4))
        #expect(table[Self.ipv4(1)] == 11)
        table.update(Self.ipv4(7), 7)
        #expect(table[Self.ipv4(7)] == nil, "update never inserts")
    }

    @Test func aFullTableEvictsTheStalest() {
        var table = PeerTable<Int>(capacity: 3)
        for index in 0..<3 { table.upsert(Self.ipv6(index), index) }
        #expect(table.isFull)
        table.upsert(Self.ipv6(0), 0)  // touched: 1 is now the stalest
        let evicted = table.upsert(Self.ipv6(9), 9)
        #expect(evicted?.address == Self.ipv6(1))
        #expect(evicted?.value == 1)
        #expect(table.entries.map(\.address) == [2, 0, 9].map(Self.ipv6))
        #expect(table.count == 3)
    }

    @Test func removeStalestStopsAtTheFirstLiveEntry() {
        var table = PeerTable<Int>(capacity: 10)
        for index in 0..<6 { table.upsert(Self.ipv4(index), index) }
        let removed = table.removeStalest { _, value in value < 3 }
        #expect(removed.map(\.value) == [0, 1, 2])
        #expect(table.entries.map(\.value) == [3, 4, 5])
        #expect(table.removeStalest { _, _ in false }.isEmpty)
    }

    @Test func deletionKeepsEveryOtherEntryReachable() {
        // Removing from the middle of probe runs (backward shift) and from every place in the recency list.
        var table = PeerTable<Int>(capacity: 5_000)
        var model = Model(capacity: 5_000)
        for index in 0..<4_000 {
            _ = table.upsert(Self.ipv6(index), index)
            _ = model.upsert(Self.ipv6(index), index)
        }
        for index in stride(from: 0, to: 4_000, by: 3) {
            #expect(table.remove(Self.ipv6(index)) == model.remove(Self.ipv6(index)))
        }
        #expect(table.remove(Self.ipv6(0)) == nil, "already gone")
        expectSame(table, model)
        for index in 0..<4_000 where index % 3 != 0 { #expect(table.remove(Self.ipv6(index)) == index) }
        #expect(table.count == 0)
        #expect(table.stalestEntry == nil)
        #expect(table.entries.isEmpty)
        table.upsert(Self.ipv4(1), 1)
        #expect(table.entries.map(\.value) == [1], "an emptied table works as new")
    }

    @Test func randomOperationsMatchTheModel() {
        var generator = SplitMix(seed: 14)
        var table = PeerTable<Int>(capacity: 300)
        var model = Model(capacity: 300)
        for step in 0..<20_000 {
            // 600 addresses, half IPv4 and half IPv6, for a table of 300: evictions are frequent.
            let pick = Int(generator.next() % 600)
            let address = pick < 300 ? Self.ipv4(pick) : Self.ipv6(pick)
            switch generator.next() % 10 {
            case 0..<6:
                let evicted = table.upsert(address, step)
                let expected = model.upsert(address, step)
                #expect(evicted?.address == expected?.0)
                #expect(evicted?.value == expected?.1)
            case 6..<9:
                #expect(table.remove(address) == model.remove(address))
            default:
                if model.values[address] != nil { model.values[address] = -step }
                table.update(address, -step)
            }
            if step % 1_000 == 0 { expectSame(table, model) }
        }
        expectSame(table, model)
    }

    @Test func laterStagePeersCostAtMost48Bytes() {
        // The engine's attempt (16 bytes) in a slot of 40, plus at most 7.5 bytes of index per entry,
        // at every size on the way up.
        var table = PeerTable<KnockEngine.Attempt>(capacity: 2_000_000)
        let attempt = KnockEngine.Attempt(knocksDone: 2, wrongKnocks: 0, transport: .tcp, retransmission: 0, lastKnock: .seconds(1))
        for index in 0..<1_000_000 {
            table.upsert(Self.ipv6(index), attempt)
            if index >= 1_000, index % 997 == 0 || index == 999_999 {
                #expect(table.storageBytes <= 48 * table.count, "at \(table.count) entries: \(table.storageBytes) bytes")
            }
        }
        #expect(MemoryLayout<KnockEngine.Attempt>.stride == 16)
        #expect(MemoryLayout<KnockEngine.Grant>.stride <= 16)
    }
}

/// A small deterministic generator for the randomized test.
private struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
