import FuzzSupport
import NIOCore

@testable import FerryCore

/// The receiver's saved dedupe windows (``DedupeJournal``): any bytes
/// restored into a table, and tables built from the input saved and restored.
///
/// First byte: bit 0 takes the rest raw (bit 1 then fixes its CRC), else
/// marks frames of a few senders into a small table. Checks: bytes restore
/// (true) exactly when they are a whole, checksummed snapshot, and what they
/// restore saves and restores to itself; a built table, saved and restored,
/// gives every frame the verdict the original gives it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDedupeJournal(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    if mode & 1 != 0 {
        var bytes = input.rest()
        if mode & 2 != 0 { SpoolFileBytes.sealTail(&bytes) }
        let buffer = ByteBuffer(bytes: bytes)
        let valid = DedupeJournal.validGeneration(buffer) != nil
        var restored = SenderWindows(capacity: FrameReceiver.maximumSenders)
        let decoded = DedupeJournal.decode(buffer, into: &restored)
        invariant(valid || !decoded, "an invalid snapshot was restored")
        invariant(decoded || restored.count == 0, "a refused snapshot restored senders")
        if decoded {
            var again = SenderWindows(capacity: FrameReceiver.maximumSenders)
            invariant(DedupeJournal.decode(DedupeJournal.encode(restored, generation: 1), into: &again), "a restored table does not save")
            invariant(same(again, restored), "a restored table does not survive saving")
        }
        return 0
    }
    var table = SenderWindows(capacity: Int(input.byte() % 8) + 1)
    var probes: [(UInt64, UInt32)] = []
    while input.remaining >= 4 {
        let sender = UInt64(input.byte() % 12)
        let sequence = UInt32(input.integer(bytes: 2)) &* UInt32(input.byte() % 3 + 1)
        let sentAt = UInt64(input.byte()) * 100
        if table.check(sender: sender, sequence: sequence, sentAt: sentAt) == .new {
            table.mark(sender: sender, sequence: sequence, sentAt: sentAt, now: 20_000)
        }
        probes.append((sender, sequence))
        probes.append((sender, sequence &+ 1))
    }
    var restored = SenderWindows(capacity: table.capacity)
    invariant(DedupeJournal.decode(DedupeJournal.encode(table, generation: 7), into: &restored), "a saved table was refused")
    invariant(same(table, restored), "a table does not survive saving")
    for (sender, sequence) in probes {
        var original = table
        let verdict = original.check(sender: sender, sequence: sequence, sentAt: 0)
        invariant(restored.check(sender: sender, sequence: sequence, sentAt: 0) == verdict, "sender \(sender) frame \(sequence): not \(verdict)")
    }
    return 0
}

/// Same senders in the same order of use, same windows, times and horizon.
private func same(_ one: SenderWindows, _ other: SenderWindows) -> Bool {
    let (a, b) = (one.saved, other.saved)
    guard one.evictedHorizon == other.evictedHorizon, a.count == b.count else { return false }
    return zip(a, b).allSatisfy { left, right in
        left.sender == right.sender && left.newestSentAt == right.newestSentAt && left.window.saved.highest == right.window.saved.highest
            && left.window.saved.bits == right.window.saved.bits
    }
}

@main
enum DedupeJournalFuzzer {
    static func main() { FuzzDriver.run(fuzzDedupeJournal) }
}
