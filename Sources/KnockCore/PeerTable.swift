/// A fixed-capacity map from peer address to a small value, kept in least-recently-touched order.
///
/// Empty on init. Lookup, insert, touch and remove are O(1); the stalest entry is always at hand,
/// so eviction and expiry never scan. Slots are reused, so memory stops growing at `capacity`.
/// Not safe for concurrent use; owned by ``KnockEngine``.
struct PeerTable<Value> {
    /// A stored entry and its place in the recency list.
    private struct Slot {
        var address: PeerAddress
        var value: Value
        var older: Int32
        var newer: Int32
    }

    /// The most entries the table holds.
    let capacity: Int
    private var slotByAddress: [PeerAddress: Int32] = [:]
    private var slots: [Slot] = []
    private var freeSlots: [Int32] = []
    private var stalest: Int32 = -1
    private var freshest: Int32 = -1

    init(capacity: Int) {
        precondition(capacity >= 1 && capacity < Int(Int32.max), "peer table capacity out of range")
        self.capacity = capacity
    }

    /// How many entries the table holds.
    var count: Int { slotByAddress.count }

    /// Whether no more entries fit.
    var isFull: Bool { count >= capacity }

    /// The value for `address`, if present.
    subscript(address: PeerAddress) -> Value? {
        guard let slot = slotByAddress[address] else { return nil }
        return slots[Int(slot)].value
    }

    /// The stalest entry: the one touched longest ago.
    var stalestEntry: (address: PeerAddress, value: Value)? {
        guard stalest >= 0 else { return nil }
        let slot = slots[Int(stalest)]
        return (slot.address, slot.value)
    }

    /// Sets the value for `address` and makes it the freshest entry.
    ///
    /// When the address is new and the table is full, the stalest entry is evicted and returned.
    @discardableResult
    mutating func upsert(_ address: PeerAddress, _ value: Value) -> (address: PeerAddress, value: Value)? {
        if let slot = slotByAddress[address] {
            slots[Int(slot)].value = value
            moveToFreshest(slot)
            return nil
        }
        var evicted: (address: PeerAddress, value: Value)?
        if isFull, let oldest = stalestEntry {
            evicted = oldest
            remove(oldest.address)
        }
        let slot: Int32
        let entry = Slot(address: address, value: value, older: freshest, newer: -1)
        if let reused = freeSlots.popLast() {
            slot = reused
            slots[Int(slot)] = entry
        } else {
            slot = Int32(slots.count)
            slots.append(entry)
        }
        if freshest >= 0 { slots[Int(freshest)].newer = slot }
        freshest = slot
        if stalest < 0 { stalest = slot }
        slotByAddress[address] = slot
        return evicted
    }

    /// Changes the value for `address` without changing its place in the recency order.
    mutating func update(_ address: PeerAddress, _ value: Value) {
        guard let slot = slotByAddress[address] else { return }
        slots[Int(slot)].value = value
    }

    /// Removes `address`; returns its value if it was present.
    @discardableResult
    mutating func remove(_ address: PeerAddress) -> Value? {
        guard let slot = slotByAddress.removeValue(forKey: address) else { return nil }
        unlink(slot)
        freeSlots.append(slot)
        return slots[Int(slot)].value
    }

    /// Removes and returns stalest entries for as long as `isExpired` says so.
    mutating func removeStalest(while isExpired: (PeerAddress, Value) -> Bool) -> [(address: PeerAddress, value: Value)] {
        var removed: [(address: PeerAddress, value: Value)] = []
        while let oldest = stalestEntry, isExpired(oldest.address, oldest.value) {
            remove(oldest.address)
            removed.append(oldest)
        }
        return removed
    }

    /// Every entry, stalest first.
    var entries: [(address: PeerAddress, value: Value)] {
        var result: [(address: PeerAddress, value: Value)] = []
        result.reserveCapacity(count)
        var cursor = stalest
        while cursor >= 0 {
            let slot = slots[Int(cursor)]
            result.append((slot.address, slot.value))
            cursor = slot.newer
        }
        return result
    }

    private mutating func moveToFreshest(_ slot: Int32) {
        guard slot != freshest else { return }
        unlink(slot)
        slots[Int(slot)].older = freshest
        slots[Int(slot)].newer = -1
        if freshest >= 0 { slots[Int(freshest)].newer = slot }
        freshest = slot
        if stalest < 0 { stalest = slot }
    }

    private mutating func unlink(_ slot: Int32) {
        let older = slots[Int(slot)].older
        let newer = slots[Int(slot)].newer
        if older >= 0 { slots[Int(older)].newer = newer } else { stalest = newer }
        if newer >= 0 { slots[Int(newer)].older = older } else { freshest = older }
        slots[Int(slot)].older = -1
        slots[Int(slot)].newer = -1
    }
}
