import NIOCore
import Testing

@testable import FerryCore

/// The one reader of spool bytes, on good, damaged and random input.
struct SpoolRecordScannerTests {
    /// Records `first..<first+count` with payloads "log N".
    private func encoded(first: UInt64, count: Int) -> [UInt8] {
        var buffer = ByteBuffer()
        for sequence in first..<(first + UInt64(count)) {
            SpoolRecordFormat.encodeRecord(sequence: sequence, payload: ByteBuffer(string: "log \(sequence)"), into: &buffer)
        }
        return Array(buffer.readableBytesView)
    }

    /// Found by the SpoolScanner fuzz target: records of sequence 2^64 − 1 in a
    /// segment whose first sequence is 2^64 − 1 were all taken, each "after"
    /// the one before (the next floor wrapped to 0), and recovery's end of
    /// such a record (sequence + 1) overflowed. No record has that sequence,
    /// nor any from ``SpoolRecordFormat/sequenceLimit`` on.
    @Test func noRecordHasTheLastSequenceAndNothingFollowsIt() {
        let limit = SpoolRecordFormat.sequenceLimit
        let bytes = encoded(first: limit - 1, count: 1) + record(.max) + record(.max)
        #expect(scan(bytes, lowest: limit - 1).sequences == [limit - 1])
        #expect(scan(record(.max) + record(.max), lowest: .max).sequences.isEmpty)
        #expect(scan(record(limit), lowest: 1).sequences.isEmpty)  // past the limit: damage
        var scanner = SpoolRecordScanner(lowestSequence: 1, lastSequence: .max)
        let good = encoded(first: 5, count: 1)
        #expect(good.withUnsafeBytes { scanner.step(in: $0, at: 0, atEnd: true) } == .damaged(resumeAt: good.count))
    }

    private func record(_ sequence: UInt64) -> [UInt8] {
        var buffer = ByteBuffer()
        SpoolRecordFormat.encodeRecord(sequence: sequence, payload: ByteBuffer(), into: &buffer)
        return Array(buffer.readableBytesView)
    }

    /// Scans `bytes` as a whole file; returns the sequences found and the damage seen.
    private func scan(_ bytes: [UInt8], lowest: UInt64 = 1) -> (sequences: [UInt64], payloads: [String], damaged: Int, steps: Int) {
        var scanner = SpoolRecordScanner(lowestSequence: lowest)
        var sequences: [UInt64] = []
        var payloads: [String] = []
        var damaged = 0
        var steps = 0
        bytes.withUnsafeBytes { region in
            var position = 0
            while position < region.count {
                steps += 1
                switch scanner.step(in: region, at: position, atEnd: true) {
                case .record(let sequence, let payload, let next):
                    sequences.append(sequence)
                    payloads.append(String(decoding: region[payload], as: UTF8.self))
                    #expect(next > position)
                    position = next
                case .needMore:
                    Issue.record("needMore at the end of a whole file")
                    return
                case .damaged(let resumeAt):
                    #expect(resumeAt > position)  // always forward: it cannot loop
                    damaged += resumeAt - position
                    position = resumeAt
                }
            }
        }
        return (sequences, payloads, damaged, steps)
    }

    @Test func readsEveryGoodRecord() {
        let found = scan(encoded(first: 1, count: 50))
        #expect(found.sequences == Array(1...50))
        #expect(found.payloads[49] == "log 50" && found.damaged == 0)
    }

    @Test func aFlippedBitLosesOnlyItsOwnRecord() {
        var bytes = encoded(first: 1, count: 20)
        let recordBytes = SpoolRecordFormat.recordHeaderBytes + "log 10".utf8.count
        let tenth = 9 * (SpoolRecordFormat.recordHeaderBytes + "log 9".utf8.count)
        bytes[tenth + SpoolRecordFormat.recordHeaderBytes + 2] ^= 0x20  // inside record 10's payload
        let found = scan(bytes)
        #expect(found.sequences == Array(1...9) + Array(11...20))
        #expect(found.damaged == recordBytes)
    }

    @Test func aDamagedLengthCannotSkipGoodRecords() {
        var bytes = encoded(first: 1, count: 20)
        bytes[4] = 0x00
        bytes[5] = 0x0F  // record 1 claims ~1 MiB
        let found = scan(bytes)
        #expect(found.sequences == Array(2...20))
    }

    @Test func zerosAndATornTailAreDamageNotRecords() {
        var bytes = encoded(first: 1, count: 10) + [UInt8](repeating: 0, count: 4096) + encoded(first: 11, count: 10)
        bytes.removeLast(3)  // the last record torn
        let found = scan(bytes)
        #expect(found.sequences == Array(1...19))
        #expect(found.damaged == 4096 + SpoolRecordFormat.recordHeaderBytes + "log 20".utf8.count - 3)
    }

    @Test func sequencesMustMoveForward() {
        // A stale copy of older records after newer ones (a resurrected block) is not read twice.
        let bytes = encoded(first: 1, count: 10) + encoded(first: 5, count: 3) + encoded(first: 11, count: 2)
        let found = scan(bytes)
        #expect(found.sequences == Array(1...12))
    }

    /// Random bytes, random records with random damage: never a crash, never a
    /// loop, every record reported is one that was written, in order.
    @Test func survivesAnyBytePattern() {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<300 {
            var bytes: [UInt8]
            switch round % 3 {
            case 0:
                bytes = (0..<Int.random(in: 0...4096, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            case 1:
                bytes = encoded(first: 1, count: 40)
                for _ in 0..<Int.random(in: 1...30, using: &generator) {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
            default:
                bytes = encoded(first: 1, count: 40)
                let cut = Int.random(in: 0..<bytes.count, using: &generator)
                bytes.removeSubrange(cut..<min(bytes.count, cut + Int.random(in: 1...200, using: &generator)))
            }
            let found = scan(bytes)
            #expect(found.steps <= bytes.count + 1)
            #expect(found.sequences == found.sequences.sorted() && Set(found.sequences).count == found.sequences.count)
            if round % 3 != 0 {
                for (sequence, payload) in zip(found.sequences, found.payloads) { #expect(payload == "log \(sequence)") }
            }
        }
    }
}
