#if canImport(Glibc)
    import CKnockPOSIX
#endif

/// The daemon's settings for glibc's allocator (issue #14: memory given back, not kept resident).
///
/// By default glibc raises its mmap threshold each time a large mapped block is freed (up to
/// 32 MiB), so once a growing table has been reallocated, later big blocks come from the heap and
/// stay resident after they are freed. Fixing the threshold keeps every block of at least
/// ``largeAllocationThreshold`` bytes in a mapping of its own, returned to the kernel when freed;
/// one allocation arena instead of one per thread (pknockd's threads mostly wait) keeps idle
/// memory from being spread over several arenas.
public enum MemoryTuning {
    /// Blocks of at least this many bytes are mapped on their own (glibc's initial default).
    public static let largeAllocationThreshold: Int32 = 128 * 1024

    /// Applies the settings to this process; false where the C library has no such settings.
    ///
    /// The corresponding C function is `mallopt` (`M_MMAP_THRESHOLD`, `M_ARENA_MAX`).
    @discardableResult
    public static func apply() -> Bool {
        #if canImport(Glibc)
            CKnockPOSIX_tune_malloc(largeAllocationThreshold) == 1
        #else
            false
        #endif
    }

    /// How many blocks the allocator holds in mappings of their own now (glibc's `hblks`); nil
    /// where unknown. For tests and diagnostics.
    public static var mappedBlocks: Int? {
        #if canImport(Glibc)
            let count = CKnockPOSIX_mapped_blocks()
            return count < 0 ? nil : count
        #else
            nil
        #endif
    }
}
