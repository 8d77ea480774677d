import Testing

@testable import FerryCore

struct DedupeWindowTests {
    @Test func newThenDuplicate() {
        var window = DedupeWindow()
        #expect(window.check(10) == .new)
        window.mark(10)
        #expect(window.check(10) == .duplicate)
        #expect(window.check(11) == .new)
        #expect(window.check(9) == .new)  // older but never seen: a reordered frame
        window.mark(9)
        #expect(window.check(9) == .duplicate)
    }

    @Test func windowEdges() {
        var window = DedupeWindow()
        window.mark(5_000)
        let oldestInside = UInt32(5_000 - DedupeWindow.size + 1)
        #expect(window.check(oldestInside) == .new)
        window.mark(oldestInside)
        #expect(window.check(oldestInside) == .duplicate)
        #expect(window.check(oldestInside - 1) == .tooOld)
        // Moving ahead by one pushes the oldest out.
        window.mark(5_001)
        #expect(window.check(oldestInside) == .tooOld)
        #expect(window.check(5_000) == .duplicate)
    }

    @Test func sequenceWrapAround() {
        var window = DedupeWindow()
        window.mark(UInt32.max - 1)
        window.mark(UInt32.max)
        #expect(window.check(0) == .new)
        window.mark(0)
        window.mark(1)
        #expect(window.check(UInt32.max) == .duplicate)
        #expect(window.check(UInt32.max - 1) == .duplicate)
        #expect(window.check(UInt32.max - 2) == .new)
        #expect(window.check(1) == .duplicate)
        #expect(window.check(2) == .new)
    }

    @Test func aLargeJumpForgetsEverything() {
        var window = DedupeWindow()
        for sequence in UInt32(0)..<100 { window.mark(sequence) }
        window.mark(100 + UInt32(DedupeWindow.size) + 50)
        #expect(window.check(99) == .tooOld)
        #expect(window.check(100 + UInt32(DedupeWindow.size)) == .new)
    }

    @Test func shiftsAcrossWordBoundariesKeepBits() {
        var window = DedupeWindow()
        window.mark(1_000)
        window.mark(1_000 + 70)  // shift by 70: crosses a 64-bit word
        #expect(window.check(1_000) == .duplicate)
        #expect(window.check(1_001) == .new)
        window.mark(1_000 + 70 + 129)
        #expect(window.check(1_000) == .duplicate)
        #expect(window.check(1_070) == .duplicate)
    }
}
