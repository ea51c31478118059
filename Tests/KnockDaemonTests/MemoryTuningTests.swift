import KnockPOSIX
import Testing

/// Issue #14: pknockd fixes glibc's mmap threshold, so a table's old storage goes back to the kernel
/// when the table grows, instead of staying resident in the heap.
@Suite struct MemoryTuningTests {
    /// Whether glibc gave `pointer` a mapping of its own: bit 1 (`IS_MMAPPED`) of the chunk's size
    /// word, just before the block (glibc's chunk layout, unchanged since 2.0).
    static func isMapped(_ pointer: UnsafeMutableRawPointer) -> Bool {
        (pointer - MemoryLayout<UInt>.size).load(as: UInt.self) & 2 != 0
    }

    @Test func aBigBlockStaysMappedAfterABiggerOneWasFreed() throws {
        #expect(MemoryTuning.apply())
        // Unfixed, freeing a mapped 8 MiB block raises glibc's threshold to 8 MiB, and the 1 MiB
        // block below would come from the heap (and stay resident when freed).
        let bigger = UnsafeMutableRawPointer.allocate(byteCount: 8 << 20, alignment: 16)
        #expect(Self.isMapped(bigger))
        bigger.deallocate()
        let block = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { block.deallocate() }
        #expect(Self.isMapped(block))
        let small = UnsafeMutableRawPointer.allocate(byteCount: 1024, alignment: 16)
        defer { small.deallocate() }
        #expect(!Self.isMapped(small), "small blocks still come from the heap")
        #expect(try #require(MemoryTuning.mappedBlocks) >= 1)
    }
}
