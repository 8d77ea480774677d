import NIOCore
import Testing

@testable import FerryCore

struct UTF8RepairTests {
    private func repair(_ bytes: [UInt8]) -> (String, Int) {
        var buffer = ByteBuffer()
        let replaced = bytes.withUnsafeBytes { UTF8Repair.write($0, into: &buffer) }
        return (String(buffer: buffer), replaced)
    }

    @Test func validUTF8IsCopiedUnchanged() {
        for text in ["", "plain ASCII that is longer than eight bytes", "Zoë 🚢 日本語 \u{10FFFF}", String(repeating: "é", count: 100)] {
            let bytes = Array(text.utf8)
            #expect(bytes.withUnsafeBytes { UTF8Repair.isValid($0) })
            #expect(repair(bytes) == (text, 0))
        }
    }

    /// Unicode §3.9's examples of maximal subparts, and the sequences UTF-8 forbids, each against Swift's own decoder.
    @Test(
        arguments: [
            [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80], [0xFF], [0x80], [0xBF, 0xBF],
            [0xE2, 0x82], [0xF0, 0x9F, 0x9A], [0x61, 0xF1, 0x80, 0x80, 0xE1, 0x80, 0xC2, 0x62, 0x80, 0x63, 0x80, 0xBF, 0x64],
            [0xC2, 0x41, 0x42], [0xE1, 0x80, 0x41], [0xF0, 0x80, 0x80, 0x80], [0xC3],
        ] as [[UInt8]])
    func replacesEachMaximalSubpartOnceAsSwiftDoes(bytes: [UInt8]) {
        #expect(!bytes.withUnsafeBytes { UTF8Repair.isValid($0) })
        let (text, replaced) = repair(bytes)
        #expect(text == String(decoding: bytes, as: UTF8.self))
        #expect(replaced == text.unicodeScalars.filter { $0 == "\u{FFFD}" }.count)
    }

    /// Random bytes, mostly ASCII with UTF-8 fragments: the repair equals Swift's decoding, and both writers agree.
    @Test func randomBytesRepairAsSwiftDecodes() {
        var generator = SplitMix(seed: 0x5EED)
        let pieces: [[UInt8]] = [
            [0x41], [0x20], [0xC3, 0xA9], [0xE2, 0x82, 0xAC], [0xF0, 0x9F, 0x9A, 0xA2], [0x80], [0xC3], [0xE2, 0x82], [0xFF], [0xED, 0xA0],
        ]
        for _ in 0..<2_000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int(generator.next() % 24) { bytes += pieces[Int(generator.next() % UInt64(pieces.count))] }
            let (text, replaced) = repair(bytes)
            #expect(text == String(decoding: bytes, as: UTF8.self))
            #expect(bytes.withUnsafeBytes { UTF8Repair.isValid($0) } == (replaced == 0))
            var target = [UInt8](repeating: 0, count: UTF8Repair.maximumRepairedCount(bytes.count))
            let (written, replacedToo) = bytes.withUnsafeBytes { source in
                target.withUnsafeMutableBytes { UTF8Repair.write(source, into: $0) }
            }
            #expect(replacedToo == replaced && Array(target[0..<written]) == Array(text.utf8))
        }
    }

    private struct SplitMix {
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
}
