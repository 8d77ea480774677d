import FerryTestSupport
import Foundation
import NIOCore
import Synchronization
import Testing

@testable import FerryCore

/// The record of what a route's spool evicted: runs merge and are forgotten
/// behind the watermark, the file reads back what was written, and a damaged
/// or foreign file means no runs (a gap counted twice at worst, never a log lost).
struct EvictedRunsTests {
    @Test func runsMergeOverlapAndAreForgottenBehindTheWatermark() {
        var runs = EvictedRuns()
        runs.add(10..<20)
        runs.add(30..<40)
        runs.add(20..<25)  // adjacent: merged
        #expect(runs.runs == [10..<25, 30..<40])
        #expect(runs.overlap(0..<100) == 25)
        #expect(runs.overlap(22..<32) == 5)
        runs.forget(below: 12)
        #expect(runs.runs == [12..<25, 30..<40])
        runs.forget(below: 35)
        #expect(runs.runs == [35..<40])
    }

    @Test func theFileReadsBackWhatWasWrittenAndIsRemovedWhenEmpty() throws {
        let dir = try scratchDirectory("evicted")
        var runs = EvictedRuns()
        runs.add(5..<9)
        runs.add(100..<300)
        #expect(runs.write(directory: dir))
        #expect(EvictedRuns.read(directory: dir) == runs)
        runs.forget(below: 1_000)
        #expect(runs.write(directory: dir))
        #expect(!FileManager.default.fileExists(atPath: dir + "/" + EvictedRuns.fileName))
    }

    /// A FIFO where the file or its temporary goes never blocks the read (at
    /// start) or the write (on the loop): it reads as no runs, and is replaced.
    @Test func aFIFOInItsPlaceHoldsNothing() throws {
        let dir = try scratchDirectory("evicted")
        #expect(mkfifo(dir + "/" + EvictedRuns.fileName, 0o600) == 0)
        #expect(mkfifo(dir + "/" + EvictedRuns.fileName + ".new", 0o600) == 0)
        let done = finishes(within: 10, fifos: [dir + "/" + EvictedRuns.fileName, dir + "/" + EvictedRuns.fileName + ".new"]) {
            #expect(EvictedRuns.read(directory: dir) == EvictedRuns())
            var runs = EvictedRuns()
            runs.add(1..<5)
            #expect(runs.write(directory: dir))
            #expect(EvictedRuns.read(directory: dir) == runs)
        }
        #expect(done, "a FIFO held the read or the write")
    }

    @Test func aDamagedOrForeignFileMeansNoRuns() throws {
        var runs = EvictedRuns()
        runs.add(1..<2)
        let good = runs.encode()
        for position in 0..<good.readableBytes {
            var bytes = Array(good.readableBytesView)
            bytes[position] ^= 0x40
            #expect(EvictedRuns.decode(ByteBuffer(bytes: bytes)) == nil, "a flipped byte at \(position) was trusted")
        }
        #expect(EvictedRuns.decode(ByteBuffer(bytes: Array(good.readableBytesView.dropLast()))) == nil)
        #expect(EvictedRuns.decode(ByteBuffer(string: "FERRYEV1")) == nil)
        // Checksummed but past the last sequence a spool uses: counting it would overflow.
        var huge = ByteBuffer()
        huge.writeBytes(EvictedRuns.magic)
        huge.writeInteger(UInt32(1))
        huge.writeInteger(UInt64(0))
        huge.writeInteger(UInt64.max)
        huge.writeInteger(huge.withUnsafeReadableBytes { CRC32C.checksum($0) })
        #expect(EvictedRuns.decode(huge) == nil)
        // Checksummed but not as Ferry writes runs (overlapping, touching, out of order): not trusted.
        for pair in [[(10, 20), (15, 30)], [(10, 20), (20, 30)], [(40, 50), (10, 20)]] {
            var file = ByteBuffer()
            file.writeBytes(EvictedRuns.magic)
            file.writeInteger(UInt32(pair.count))
            for (first, end) in pair {
                file.writeInteger(UInt64(first))
                file.writeInteger(UInt64(end))
            }
            file.writeInteger(file.withUnsafeReadableBytes { CRC32C.checksum($0) })
            #expect(EvictedRuns.decode(file) == nil, "\(pair)")
        }
    }
}
