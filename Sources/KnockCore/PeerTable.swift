/// A fixed-capacity map from peer address to a small value, kept in least-recently-touched order.
///
/// Empty on init: storage grows with the entries, never past what `capacity` needs. Lookup, insert,
/// touch and remove are O(1) on average; the stalest entry is always at hand, so eviction and
/// expiry never scan. Not safe for concurrent use; owned by ``KnockEngine``.
///
/// Layout (issue #14: at most 48 bytes per entry): the entries sit densely in one array of slots
/// (address, value and two 4-byte recency links: 40 bytes for a 16-byte value), and an
/// open-addressing index of 4-byte slot numbers finds them, with linear probing and deletion by
/// backward shift (no tombstones). The index is at most 80 % full and grows by half, so it costs at
/// most 7.5 bytes per entry; a removed entry's slot is filled by the last one, so the slots stay
/// dense. Buckets are chosen with a per-process keyed hash (Swift's `Hasher`): addresses an attacker
/// picks cannot be made to collide on purpose.
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
    /// The entries, densely: slot numbers `0..<count`.
    private var slots: [Slot] = []
    /// Open-addressing index: 0 is an empty bucket, otherwise the slot number plus one.
    private var buckets: [UInt32] = []
    private var stalest: Int32 = -1
    private var freshest: Int32 = -1

    /// The index is grown before it is fuller than `maximumLoad` out of `loadScale`.
    private static var maximumLoad: Int { 4 }
    private static var loadScale: Int { 5 }
    /// The smallest index made.
    private static var minimumBuckets: Int { 8 }

    init(capacity: Int) {
        precondition(capacity >= 1 && capacity < Int(Int32.max), "peer table capacity out of range")
        self.capacity = capacity
    }

    /// How many entries the table holds.
    var count: Int { slots.count }

    /// Whether no more entries fit.
    var isFull: Bool { count >= capacity }

    /// Bytes of entry storage in use: the slots written and the whole index (what a resident-memory
    /// figure sees of the table; slot capacity reserved but never written is not touched).
    var storageBytes: Int { slots.count * MemoryLayout<Slot>.stride + buckets.count * MemoryLayout<UInt32>.stride }

    /// The value for `address`, if present.
    subscript(address: PeerAddress) -> Value? {
        guard let slot = find(address).slot else { return nil }
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
        if let slot = find(address).slot {
            slots[Int(slot)].value = value
            moveToFreshest(slot)
            return nil
        }
        var evicted: (address: PeerAddress, value: Value)?
        if isFull, let oldest = stalestEntry {
            evicted = oldest
            remove(oldest.address)
        }
        if (slots.count + 1) * Self.loadScale > buckets.count * Self.maximumLoad { growIndex() }
        if slots.count == slots.capacity {
            // Grow by half (not Array's doubling), never past the capacity.
            slots.reserveCapacity(min(capacity, max(Self.minimumBuckets, slots.count + slots.count / 2)))
        }
        let slot = Int32(slots.count)
        slots.append(Slot(address: address, value: value, older: freshest, newer: -1))
        if freshest >= 0 { slots[Int(freshest)].newer = slot }
        freshest = slot
        if stalest < 0 { stalest = slot }
        buckets[find(address).bucket] = UInt32(slot) + 1
        return evicted
    }

    /// Changes the value for `address` without changing its place in the recency order.
    mutating func update(_ address: PeerAddress, _ value: Value) {
        guard let slot = find(address).slot else { return }
        slots[Int(slot)].value = value
    }

    /// Removes `address`; returns its value if it was present.
    @discardableResult
    mutating func remove(_ address: PeerAddress) -> Value? {
        let (bucket, found) = find(address)
        guard let slot = found else { return nil }
        let value = slots[Int(slot)].value
        unlink(slot)
        removeBucket(bucket)
        let last = Int32(slots.count - 1)
        if slot != last {
            // The last entry fills the hole: its neighbours, the list's ends and its bucket follow it.
            let moved = slots[Int(last)]
            slots[Int(slot)] = moved
            if moved.older >= 0 { slots[Int(moved.older)].newer = slot } else { stalest = slot }
            if moved.newer >= 0 { slots[Int(moved.newer)].older = slot } else { freshest = slot }
            let movedBucket = find(moved.address).bucket
            buckets[movedBucket] = UInt32(slot) + 1
        }
        slots.removeLast()
        return value
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

    // MARK: Index

    /// The bucket `address` starts probing from: the keyed hash scaled to the bucket count
    /// (the count need not be a power of two).
    private func home(_ address: PeerAddress) -> Int {
        var hasher = Hasher()
        hasher.combine(address.high)
        hasher.combine(address.low)
        let hash = UInt64(UInt(bitPattern: hasher.finalize()))
        return Int(hash.multipliedFullWidth(by: UInt64(buckets.count)).high)
    }

    /// Where `address` is (its bucket and slot), or the empty bucket where it would go.
    private func find(_ address: PeerAddress) -> (bucket: Int, slot: Int32?) {
        guard !buckets.isEmpty else { return (0, nil) }
        var bucket = home(address)
        while true {
            let entry = buckets[bucket]
            if entry == 0 { return (bucket, nil) }
            let slot = Int32(entry - 1)
            if slots[Int(slot)].address == address { return (bucket, slot) }
            bucket += 1
            if bucket == buckets.count { bucket = 0 }
        }
    }

    /// Empties `bucket` and shifts back the entries after it that probed past it, so every entry
    /// stays reachable from its home bucket without tombstones.
    private mutating func removeBucket(_ bucket: Int) {
        var hole = bucket
        var next = bucket
        while true {
            next += 1
            if next == buckets.count { next = 0 }
            let entry = buckets[next]
            if entry == 0 { break }
            let home = home(slots[Int(entry - 1)].address)
            // The entry may move into the hole when its home is not cyclically in (hole, next].
            let distanceToNext = (next - home + buckets.count) % buckets.count
            let distanceToHole = (hole - home + buckets.count) % buckets.count
            if distanceToHole < distanceToNext {
                buckets[hole] = entry
                hole = next
            }
        }
        buckets[hole] = 0
    }

    /// Makes the index half as big again (at least ``minimumBuckets``) and reinserts every entry.
    private mutating func growIndex() {
        let needed = (slots.count + 1) * Self.loadScale / Self.maximumLoad + 1
        let size = max(Self.minimumBuckets, needed, buckets.count + buckets.count / 2)
        buckets = [UInt32](repeating: 0, count: size)
        for slot in slots.indices {
            buckets[find(slots[slot].address).bucket] = UInt32(slot) + 1
        }
    }

    // MARK: Recency list

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
