import KnockPOSIX
import Testing

/// Issue #14: pknockd fixes glibc's mmap threshold and uses one arena, so a table's old storage goes
/// back to the kernel when the table grows. The effect on resident memory is measured by
/// Scripts/bench/memory.sh (bytes per later-stage peer); here, that glibc takes both settings.
@Suite struct MemoryTuningTests {
    @Test func glibcAcceptsBothAllocatorSettings() throws {
        #expect(MemoryTuning.apply(), "mallopt refused M_MMAP_THRESHOLD or M_ARENA_MAX")
        // Whether a block is mapped on its own also depends on the free memory the test process's
        // heap already holds (a big enough free chunk is reused first), so only the count is read.
        let block = UnsafeMutableRawPointer.allocate(byteCount: 64 << 20, alignment: 16)
        defer { block.deallocate() }
        #expect(try #require(MemoryTuning.mappedBlocks) >= 0)
    }
}
