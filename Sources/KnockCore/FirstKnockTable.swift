/// The memory of first knocks: "this source knocked port 1 of this rule, at about this time", for
/// every sequence rule, in one dense table of 16-byte entries.
///
/// A first knock costs nothing to send and can come from any spoofed source, so this is the table a
/// flood fills. It keeps no address: an entry is a keyed fingerprint of (rule, source) and a coarse
/// deadline, so millions fit in little memory and a legitimate first knock outlives its rule's `time`
/// under a flood at a sender's maximum rate (see Docs/man/pknock.toml.5, `first_knock_capacity`).
///
/// Layout: buckets of ``bucketSize`` entries, in ``subTableCount`` sub-tables of up to
/// 2^``subTableShift`` buckets. A (rule, source) belongs to one sub-table and may live in one of two
/// of its buckets, all chosen by SipHash-2-4 under a per-process random key (so nobody can aim
/// sources at one bucket). An entry whose deadline has passed is a free slot; when both buckets are
/// full of live entries, the one closest to its deadline is evicted (the oldest, for entries of one
/// rule).
///
/// The table grows with its load (linear hashing): each sub-table starts with 2^``initialLevel``
/// buckets, and while more than 3/8 of the slots in use hold an entry, each insert first splits one
/// bucket into itself and a new one at the end, moving the entries whose bucket choice now falls on
/// the new one, until the sub-tables reach their full size. A bucket is chosen by the low bits of one
/// of two 28-bit fields of the entry's tag, as many as the sub-table's size needs, so a split knows
/// where each entry goes from the entry alone. A light load thus stays in little memory, which a
/// flood's lookups, each a cache and TLB miss, reach faster: a 50k packets/s flood cost 0.2 to 0.5 µs
/// less per packet in a 16 MiB table than in the full 80 MiB (BENCHMARKS.md, "First-knock table by
/// load, intake by Span").
///
/// Entry (two words, 16 bytes, no other overhead):
/// - word 0: fingerprint tag (56 bits, never 0: 0 marks a free slot) | wrong knocks so far (8 bits);
/// - word 1: deadline in ticks of 2⁻²⁰ s ≈ 1.05 ms (40 bits, wraps after 36 years) | retransmission
///   fingerprint of the knock (24 bits: TCP source port and sequence number, or UDP source port and
///   payload).
///
/// A lookup compares the 56-bit tag with the 16 entries of its two buckets. The entries there share
/// the bits that chose the bucket (at most 28, 17 at the default capacity), so a source that never
/// knocked matches someone else's entry with probability at most 16 × 2^-(56 - 17) ≈ 3 × 10⁻¹¹ per
/// lookup at the default capacity (16 × 2⁻²⁸ at the largest).
///
/// Storage is taken in chunks of 512 buckets (64 KiB) the first time an entry in the chunk is
/// written; an untouched chunk reads as all free. Idle, the table costs a pointer per chunk; it grows
/// with the load to at most `capacity` × 16 bytes. Allocation happens at most once per chunk over
/// the table's life, never per knock afterwards.
///
/// Empty on init. Not safe for concurrent use; owned by ``KnockEngine``.
public struct FirstKnockTable {
    /// One slot: see the type's documentation for the bit layout.
    struct Entry: Equatable {
        var word0: UInt64 = 0
        var word1: UInt64 = 0
    }

    /// What a slot says, decoded.
    public struct Attempt: Equatable, Sendable {
        /// Where it is, for ``update(_:wrongKnocks:)`` and ``remove(_:)``.
        public var slot: Int
        /// Its deadline in ticks.
        public var deadline: Int64
        /// Wrong knocks counted against this attempt.
        public var wrongKnocks: UInt8
        /// The retransmission fingerprint of the knock (24 bits; 0: none).
        public var retransmission: UInt32
        /// Whether the deadline has passed.
        public var lapsed: Bool
    }

    /// Entries per bucket: 8 × 16 bytes is two cache lines.
    public static let bucketSize = 8
    /// Buckets per storage chunk: 512 × 8 × 16 bytes = 64 KiB.
    public static let bucketsPerChunk = 512
    static let entriesPerChunk = bucketSize * bucketsPerChunk
    /// The default capacity: 5 × 2²⁰ = 5,242,880 entries, 80 MiB when full.
    ///
    /// At 250,000 spoofed first
    /// knocks a second and a 10 s `time`, 2.5M entries are live (48 % of the slots), and a simulation of
    /// this insert policy (50M inserts) evicted none, nor did 12M at 300,000/s
    /// (`FirstKnockTableSimulation`, opt-in).
    public static let defaultCapacity = 5_242_880
    /// The capacities a table may be made with (up to 2³² entries, 64 GiB).
    public static let capacityRange = 1...(1 << 32)

    /// The capacity of a table made with `requested`: rounded up, by less than an eighth, to whole
    /// sub-tables (the default is exact: 10 sub-tables of 2¹⁶ buckets).
    public static func capacity(forRequested requested: Int) -> Int {
        let layout = layout(forRequested: requested)
        return layout.subTables << layout.shift * bucketSize
    }

    /// Sub-tables grow to at most 2²⁷ buckets: the address of a bucket in a sub-table of 2^(L+1)
    /// then takes at most 28 bits, one placement field of the tag.
    static let maximumSubTableShift = 27
    /// Each sub-table starts with 2⁶ buckets (at most its full size): 512 entries.
    static let initialLevel = 6
    /// Bits of one placement field of the tag.
    private static let placementFieldMask: UInt64 = (1 << 28) - 1

    /// The sub-tables of a table of `requested` entries: their count (8 to 16, or fewer when tiny)
    /// and the log₂ of their full size in buckets.
    static func layout(forRequested requested: Int) -> (subTables: Int, shift: Int) {
        let buckets = Swift.max(1, (requested + bucketSize - 1) / bucketSize)
        let shift = Swift.min(maximumSubTableShift, Swift.max(0, Int.bitWidth - buckets.leadingZeroBitCount - 4))
        return ((buckets + (1 << shift) - 1) >> shift, shift)
    }

    /// Bits of a deadline: ticks of 2⁻²⁰ s (about 1.05 ms).
    public static let tickShift: Int64 = 20
    /// Entries of a rule without `time` get a deadline this many ticks ahead (2³⁸ ticks, 9 years).
    public static let unlimitedTicks: Int64 = 1 << 38
    private static let deadlineBits: UInt64 = 40
    private static let deadlineMask: UInt64 = (1 << 40) - 1
    /// Mask of a retransmission fingerprint.
    public static let retransmissionMask: UInt32 = (1 << 24) - 1

    /// How many entries fit once the table has grown to its full size.
    public let capacity: Int
    /// How many buckets there are at the full size.
    public let bucketCount: Int
    /// How many sub-tables there are.
    public let subTableCount: Int
    /// A sub-table's full size is 2^subTableShift buckets.
    public let subTableShift: Int
    /// Each sub-table has 2^level + split buckets in use; bucket `split` is the next to split.
    private var level: Int
    private var split = 0
    /// The bucket the next insert sweeps (sub-table, bucket within it): see ``sweepNextBucket(nowTicks:)``.
    private var sweepSubTable = 0
    private var sweepBucket = 0
    /// The fingerprint key.
    public let key: SipHashKey
    /// The entries, in chunks; shared between copies until one of them writes.
    private var chunks: [UnsafeMutablePointer<Entry>?]
    /// Owns the chunks (frees them); shared between copies of the table until one of them writes.
    private var owner: Owner
    /// Slots holding an entry, lapsed or not (a lapsed one is reused in place).
    public private(set) var occupied = 0
    /// Live entries evicted to make room since the table was made.
    public private(set) var evictions = 0

    /// Makes an empty table of at least `capacity` entries (see ``capacity(forRequested:)``), at its
    /// initial size.
    public init(capacity: Int, key: SipHashKey) {
        precondition(Self.capacityRange.contains(capacity), "first-knock table capacity out of range")
        (subTableCount, subTableShift) = Self.layout(forRequested: capacity)
        bucketCount = subTableCount << subTableShift
        self.capacity = bucketCount * Self.bucketSize
        level = Swift.min(Self.initialLevel, subTableShift)
        self.key = key
        chunks = Array(repeating: nil, count: (bucketCount + Self.bucketsPerChunk - 1) / Self.bucketsPerChunk)
        owner = Owner()
    }

    /// How many entries fit at the table's present size (it grows to ``capacity``).
    public var currentCapacity: Int { subTableCount * ((1 << level) + split) * Self.bucketSize }

    /// Bytes of entry storage in use now (chunks written so far).
    public var residentBytes: Int {
        owner.allocated.count * Self.entriesPerChunk * MemoryLayout<Entry>.stride
    }

    /// The tick of `instant`.
    @inline(__always)
    public static func ticks(_ instant: Instant) -> Int64 { instant.nanoseconds >> tickShift }

    /// The length of `duration` in ticks, rounded up.
    public static func ticks(_ duration: Duration) -> Int64 {
        let nanoseconds = duration.nanosecondsClamped
        guard nanoseconds > 0 else { return 0 }
        return Swift.min((nanoseconds - 1) >> tickShift + 1, unlimitedTicks)
    }

    /// Where (rule, source) may live, and its tag.
    ///
    /// Computed once per knock, used for the lookup and the insert that may follow. It names no
    /// bucket: the buckets follow from the tag and the table's size at the time of use (an insert may
    /// grow the table first).
    public struct Place: Equatable, Sendable {
        var subTable: Int
        var tag: UInt64
    }

    /// The place of (rule, source).
    @inline(__always)
    public func place(rule: UInt64, source: PeerAddress) -> Place {
        let (h0, h1) = SipHash.hash128(rule, source.high, source.low, key: key)
        var tag = h0 >> 8
        if tag == 0 { tag = 1 }
        return Place(subTable: Int(((h1 & 0xFFFF_FFFF) &* UInt64(subTableCount)) >> 32), tag: tag)
    }

    /// The bucket, within its sub-table, that placement field `field` picks at the present size:
    /// its low `level` + 1 bits while that bucket has split, else its low `level` bits.
    @inline(__always)
    private func address(_ field: UInt64) -> Int {
        let wide = Int(truncatingIfNeeded: field) & ((2 << level) - 1)
        return wide < (1 << level) + split ? wide : wide & ((1 << level) - 1)
    }

    /// The two buckets `tag` may live in, in sub-table `subTable` (equal when both fields pick one).
    @inline(__always)
    private func buckets(subTable: Int, tag: UInt64) -> (first: Int, second: Int) {
        let base = subTable << subTableShift
        return (base + address(tag & Self.placementFieldMask), base + address(tag >> 28))
    }

    @inline(__always)
    private func entry(at slot: Int) -> Entry {
        let chunk = slot / Self.entriesPerChunk
        guard let entries = chunks[chunk] else { return Entry() }
        return entries[slot - chunk * Self.entriesPerChunk]
    }

    @inline(__always)
    private mutating func store(_ value: Entry, at slot: Int) {
        let chunk = slot / Self.entriesPerChunk
        if !isKnownUniquelyReferenced(&owner) { copyChunks() }
        let entries: UnsafeMutablePointer<Entry>
        if let existing = chunks[chunk] {
            entries = existing
        } else {
            entries = owner.allocateChunk()
            chunks[chunk] = entries
        }
        entries[slot - chunk * Self.entriesPerChunk] = value
    }

    /// Gives this table chunks of its own (a copy shared them until now).
    private mutating func copyChunks() {
        let copy = Owner()
        for index in chunks.indices {
            guard let entries = chunks[index] else { continue }
            let mine = copy.allocateChunk()
            mine.update(from: entries, count: Self.entriesPerChunk)
            chunks[index] = mine
        }
        owner = copy
    }

    /// Signed distance from `now` to `deadline`, both in ticks, modulo 2⁴⁰.
    @inline(__always)
    private static func remaining(_ deadline: UInt64, now: Int64) -> Int64 {
        Int64(bitPattern: ((deadline &- UInt64(bitPattern: now)) & deadlineMask) << 24) >> 24
    }

    /// The entry of (rule, source), if any, lapsed or not.
    public func find(rule: UInt64, source: PeerAddress, now: Instant) -> Attempt? {
        find(place(rule: rule, source: source), now: now)
    }

    /// The entries of `bucket`, or nil while its chunk was never written (every slot free).
    @inline(__always)
    private func entries(ofBucket bucket: Int) -> UnsafeMutablePointer<Entry>? {
        let chunk = bucket / Self.bucketsPerChunk
        guard let entries = chunks[chunk] else { return nil }
        return entries + (bucket - chunk * Self.bucketsPerChunk) * Self.bucketSize
    }

    /// The entry at `place`, if any, lapsed or not.
    ///
    /// The two buckets are scanned side by side, so their memory is fetched at once: during a flood
    /// nearly every lookup finds nothing, and a table of megabytes is not in the cache.
    ///
    /// The slot it names stays valid until the next insert (which may move entries as it grows the
    /// table).
    public func find(_ place: Place, now: Instant) -> Attempt? {
        let (firstBucket, secondBucket) = buckets(subTable: place.subTable, tag: place.tag)
        let first = entries(ofBucket: firstBucket)
        let second = firstBucket != secondBucket ? entries(ofBucket: secondBucket) : nil
        for index in 0..<Self.bucketSize {
            if let first, first[index].word0 >> 8 == place.tag {
                return attempt(first[index], slot: firstBucket * Self.bucketSize + index, now: now)
            }
            if let second, second[index].word0 >> 8 == place.tag {
                return attempt(second[index], slot: secondBucket * Self.bucketSize + index, now: now)
            }
        }
        return nil
    }

    private func attempt(_ value: Entry, slot: Int, now: Instant) -> Attempt {
        let nowTicks = Self.ticks(now)
        let remaining = Self.remaining(value.word1 >> 24, now: nowTicks)
        return Attempt(
            slot: slot, deadline: nowTicks + remaining, wrongKnocks: UInt8(truncatingIfNeeded: value.word0),
            retransmission: UInt32(truncatingIfNeeded: value.word1) & Self.retransmissionMask, lapsed: remaining < 0)
    }

    /// Remembers a first knock of (rule, source) until `deadline` (ticks), replacing its entry if it
    /// has one.
    ///
    /// Until the table has its full size, first frees the lapsed entries of one bucket
    /// (``sweepNextBucket(nowTicks:)``) and then, while more than 3/8 of the slots in use hold an
    /// entry, grows the table by one bucket per sub-table. Then takes a lapsed or else an empty slot of
    /// its two buckets, else evicts the live entry closest to its deadline; returns whether a live
    /// entry was evicted.
    @discardableResult
    public mutating func insert(rule: UInt64, source: PeerAddress, deadline: Int64, retransmission: UInt32, now: Instant) -> Bool {
        insert(place(rule: rule, source: source), deadline: deadline, retransmission: retransmission, now: now)
    }

    /// ``insert(rule:source:deadline:retransmission:now:)`` at a place already computed.
    @discardableResult
    public mutating func insert(_ place: Place, deadline: Int64, retransmission: UInt32, now: Instant) -> Bool {
        let nowTicks = Self.ticks(now)
        if level < subTableShift {
            sweepNextBucket(nowTicks: nowTicks)
            if occupied * 8 > currentCapacity * 3 { splitNextBucket() }
        }
        let value = Entry(
            word0: place.tag << 8,
            word1: (UInt64(bitPattern: deadline) & Self.deadlineMask) << 24 | UInt64(retransmission & Self.retransmissionMask))
        // Two choices: the bucket with more free slots (empty, or lapsed) takes the entry, which keeps
        // buckets evenly loaded; a lapsed slot before an empty one, so that `occupied` follows the
        // live load and the table grows no further than that needs. When neither bucket has a free
        // slot, the live entry closest to its deadline goes.
        let (firstBucket, secondBucket) = buckets(subTable: place.subTable, tag: place.tag)
        var target = -1
        var targetFree = 0
        var targetEmpty = false
        var victim = -1
        var victimRemaining = Int64.max
        for choice in 0..<(firstBucket == secondBucket ? 1 : 2) {
            let base = (choice == 0 ? firstBucket : secondBucket) * Self.bucketSize
            var free = 0
            var freeSlot = -1
            var freeSlotEmpty = false
            for slot in base..<(base + Self.bucketSize) {
                let current = entry(at: slot)
                if current.word0 == 0 {
                    free += 1
                    if freeSlot < 0 { (freeSlot, freeSlotEmpty) = (slot, true) }
                    continue
                }
                if current.word0 >> 8 == place.tag {
                    store(value, at: slot)
                    return false
                }
                let remaining = Self.remaining(current.word1 >> 24, now: nowTicks)
                if remaining < 0 {
                    free += 1
                    if freeSlot < 0 || freeSlotEmpty { (freeSlot, freeSlotEmpty) = (slot, false) }
                } else if remaining < victimRemaining {
                    (victim, victimRemaining) = (slot, remaining)
                }
            }
            if free > targetFree { (target, targetFree, targetEmpty) = (freeSlot, free, freeSlotEmpty) }
        }
        let evicted = target < 0
        if evicted {
            target = victim
            evictions += 1
        } else if targetEmpty {
            occupied += 1
        }
        store(value, at: target)
        return evicted
    }

    /// Splits bucket `split` of every sub-table: its entries whose bucket choice at the next size is
    /// the new bucket 2^level + split move there (it was never used, so it is empty and they fit).
    private mutating func splitNextBucket() {
        let partnerOffset = 1 << level
        let lowMask = UInt64(partnerOffset - 1)
        for subTable in 0..<subTableCount {
            let bucket = subTable << subTableShift + split
            var moved = (bucket + partnerOffset) * Self.bucketSize
            for slot in bucket * Self.bucketSize..<(bucket + 1) * Self.bucketSize {
                let value = entry(at: slot)
                guard value.word0 != 0 else { continue }
                // It stays if a field that picked this bucket (its low `level` bits) still picks it
                // (bit `level` is 0).
                let tag = value.word0 >> 8
                guard !Self.staysOnSplit(tag & Self.placementFieldMask, bucket: split, level: level, lowMask: lowMask),
                    !Self.staysOnSplit(tag >> 28, bucket: split, level: level, lowMask: lowMask)
                else { continue }
                store(value, at: moved)
                store(Entry(), at: slot)
                moved += 1
            }
        }
        split += 1
        if split == partnerOffset {
            level += 1
            split = 0
        }
    }

    /// Frees the lapsed entries of one bucket, the next in turn over the buckets in use.
    ///
    /// Every insert does this until the table has its full size, so that the load that grows it is
    /// the live entries': without it, slots lapsed where no insert came again would count for ever,
    /// and a steady flood of 50,000 first knocks a second (10 s `time`) grew the table to 2.7 million
    /// slots instead of 1.5 million within a minute (a simulation of this policy). At the full size a
    /// lapsed entry costs nothing: it is a free slot to the next insert there.
    ///
    /// A late knock whose first knock was swept finds nothing rather than a lapsed attempt: its
    /// `time exceeded` event is not reported (the knock itself is handled the same).
    private mutating func sweepNextBucket(nowTicks: Int64) {
        if sweepBucket >= (1 << level) + split {
            sweepBucket = 0
            sweepSubTable = sweepSubTable + 1 == subTableCount ? 0 : sweepSubTable + 1
        }
        let bucket = sweepSubTable << subTableShift + sweepBucket
        sweepBucket += 1
        guard let entries = entries(ofBucket: bucket) else { return }
        for index in 0..<Self.bucketSize
        where entries[index].word0 != 0 && Self.remaining(entries[index].word1 >> 24, now: nowTicks) < 0 {
            store(Entry(), at: bucket * Self.bucketSize + index)
            occupied -= 1
        }
    }

    @inline(__always)
    private static func staysOnSplit(_ field: UInt64, bucket: Int, level: Int, lowMask: UInt64) -> Bool {
        field & lowMask == UInt64(bucket) && (field >> UInt64(level)) & 1 == 0
    }

    /// Sets the wrong-knock count of the entry at `slot`.
    public mutating func update(_ slot: Int, wrongKnocks: UInt8) {
        var value = entry(at: slot)
        guard value.word0 != 0 else { return }
        value.word0 = value.word0 & ~0xFF | UInt64(wrongKnocks)
        store(value, at: slot)
    }

    /// Frees the entry at `slot`.
    public mutating func remove(_ slot: Int) {
        guard entry(at: slot).word0 != 0 else { return }
        occupied -= 1
        store(Entry(), at: slot)
    }

    /// How many entries are live at `now` (a scan of the table: for status and tests, not per knock).
    public func liveCount(at now: Instant) -> Int {
        let nowTicks = Self.ticks(now)
        var live = 0
        for case let entries? in chunks {
            for index in 0..<Self.entriesPerChunk
            where entries[index].word0 != 0 && Self.remaining(entries[index].word1 >> 24, now: nowTicks) >= 0 {
                live += 1
            }
        }
        return live
    }
}

extension FirstKnockTable {
    /// Allocates chunks (zeroed: every slot free) and frees them when the last table sharing them
    /// goes.
    ///
    /// A chunk is allocated the first time an entry in it is written.
    final class Owner {
        private(set) var allocated: [UnsafeMutablePointer<Entry>] = []

        /// A bucket's size, so that no bucket straddles more than its two cache lines.
        static let alignment = FirstKnockTable.bucketSize * MemoryLayout<Entry>.stride

        func allocateChunk() -> UnsafeMutablePointer<Entry> {
            let bytes = UnsafeMutableRawPointer.allocate(
                byteCount: FirstKnockTable.entriesPerChunk * MemoryLayout<Entry>.stride, alignment: Self.alignment)
            let entries = bytes.initializeMemory(as: Entry.self, repeating: Entry(), count: FirstKnockTable.entriesPerChunk)
            allocated.append(entries)
            return entries
        }

        deinit {
            for entries in allocated { UnsafeMutableRawPointer(entries).deallocate() }
        }
    }
}
