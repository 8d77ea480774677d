import NIOCore

@testable import FerryCore

/// Progress files and frame journals built from a fuzzer's description with
/// right checksums, so targets reach what lies behind them.
public enum SpoolFileBytes {
    /// One progress slot (32 bytes) as ``ProgressFile`` writes it.
    public static func progressSlot(generation: UInt64, watermark: UInt64) -> [UInt8] {
        var slot = Array("FERRYPRG".utf8)
        slot += bigEndian(generation) + bigEndian(watermark) + [0, 0, 0, 0]
        slot += [0, 0, 0, 0]
        ReferenceCRC32C.store(ReferenceCRC32C.checksum(slot[0..<28]), into: &slot, at: 28)
        return slot
    }

    /// A value the fuzzer picks: small (a byte) when `byte` says so, else any 8 bytes.
    public static func number(_ input: inout FuzzInput) -> UInt64 {
        let choice = input.byte()
        return choice < 0xF0 ? UInt64(choice) : input.integer(bytes: 8)
    }

    /// Journal entries described by `input`: up to 4 frames of up to 3 runs each.
    public static func journalEntries(_ input: inout FuzzInput, now: UInt64) -> [FrameJournal.Identity: FrameJournal.Entry] {
        var entries: [FrameJournal.Identity: FrameJournal.Entry] = [:]
        for _ in 0..<(input.byte() % 5) {
            let identity = FrameJournal.Identity(sender: number(&input), sequence: UInt32(truncatingIfNeeded: number(&input)))
            let sentAt = input.byte() & 1 == 0 ? now : input.integer(bytes: 8)
            let ttl = UInt32(truncatingIfNeeded: number(&input)) &* 1_000
            var runs: [SpoolRun] = []
            for _ in 0..<(input.byte() % 4) {
                runs.append(SpoolRun(first: number(&input), count: Int(input.byte())))
            }
            entries[identity] = FrameJournal.Entry(sentAtMilliseconds: sentAt, ttlMilliseconds: ttl, runs: runs)
        }
        return entries
    }

    /// A version 2 journal of `entries`.
    public static func journal(generation: UInt64, entries: [FrameJournal.Identity: FrameJournal.Entry]) -> [UInt8] {
        Array(FrameJournal.encode(generation: generation, entries: entries).readableBytesView)
    }

    /// Recomputes the CRC-32C in the last 4 bytes (journals), in place.
    public static func sealTail(_ bytes: inout [UInt8]) {
        guard bytes.count >= 4 else { return }
        ReferenceCRC32C.store(ReferenceCRC32C.checksum(bytes[..<(bytes.count - 4)]), into: &bytes, at: bytes.count - 4)
    }

    public static func bigEndian(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) }
    }
}
