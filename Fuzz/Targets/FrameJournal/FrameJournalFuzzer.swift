import FuzzSupport
import NIOCore

@testable import FerryCore

/// The frame journal (``FrameJournal``), versions 1 (`FERRYFJ1`) and 2
/// (`FERRYFJ2`): a snapshot decoded from any bytes, and two files loaded as a
/// restarted lane loads them.
///
/// First byte: bit 0 takes the rest raw (bit 1 then fixes its CRC), else
/// builds a snapshot (bit 2: as version 1) and bit 3 damages a byte. Checks:
/// a snapshot that decodes holds runs that are ranges of spool sequences
/// (their end fits: the spool and the lane add first and count); it encodes
/// and decodes again to itself; a built one decodes to what was built;
/// version 1 entries belong to the legacy sender; loading two files takes the
/// newer good one.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrameJournal(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let legacySender = SpoolFileBytes.number(&input)
    let generation = SpoolFileBytes.number(&input)
    var built: [FrameJournal.Identity: FrameJournal.Entry]?
    var bytes: [UInt8]
    if mode & 1 != 0 {
        bytes = input.rest()
        if mode & 2 != 0 { SpoolFileBytes.sealTail(&bytes) }
    } else {
        var entries = SpoolFileBytes.journalEntries(&input, now: 1_700_000_000_000)
        if mode & 4 != 0 {
            let legacy = entries.map { (FrameJournal.Identity(sender: legacySender, sequence: $0.key.sequence), $0.value) }
            entries = Dictionary(legacy, uniquingKeysWith: { first, _ in first })
            bytes = version1(generation: generation, entries: entries)
        } else {
            bytes = SpoolFileBytes.journal(generation: generation, entries: entries)
        }
        built = entries
        if mode & 8 != 0, !bytes.isEmpty {
            bytes[Int(input.byte()) % bytes.count] ^= input.byte() | 1
            built = nil
        }
    }
    let decoded = FrameJournal.decode(ByteBuffer(bytes: bytes), legacySender: legacySender)
    if let built {
        // A run that ends past UInt64.max is not one Ferry writes: such a journal is not read.
        let runsFit = built.values.allSatisfy { $0.runs.allSatisfy { !$0.first.addingReportingOverflow(UInt64($0.count)).overflow } }
        invariant(
            runsFit ? decoded?.0 == generation && decoded?.1.entries == built : decoded == nil,
            "a journal as written does not decode to itself")
    }
    if let (generation, snapshot) = decoded {
        check(generation, snapshot, version1: bytes.starts(with: "FERRYFJ1".utf8), legacySender: legacySender)
    }
    checkLoad(bytes, decoded, legacySender: legacySender, input: &input)
    return 0
}

private func check(_ generation: UInt64, _ snapshot: FrameJournal.Snapshot, version1: Bool, legacySender: UInt64) {
    for (identity, entry) in snapshot.entries {
        invariant(!version1 || identity.sender == legacySender, "a version 1 entry of sender \(identity.sender)")
        for run in entry.runs {
            invariant(
                run.count >= 0 && run.first.addingReportingOverflow(UInt64(run.count)).overflow == false, "run \(run.first)+\(run.count) overflows")
        }
    }
    let encoded = FrameJournal.encode(generation: generation, entries: snapshot.entries)
    let again = FrameJournal.decode(encoded, legacySender: legacySender)
    invariant(again?.0 == generation && again?.1 == snapshot, "a snapshot does not survive encoding")
}

/// Loads `bytes` as the `.0` file beside a built `.1` file: the newer good one wins (`.1` on a tie).
private func checkLoad(_ bytes: [UInt8], _ decoded: (UInt64, FrameJournal.Snapshot)?, legacySender: UInt64, input: inout FuzzInput) {
    let directory = ScratchDirectory.fresh("journal")
    let otherGeneration = SpoolFileBytes.number(&input)
    let otherEntries = SpoolFileBytes.journalEntries(&input, now: 1_700_000_000_000)
    let otherBytes = SpoolFileBytes.journal(generation: otherGeneration, entries: otherEntries)
    ScratchDirectory.write(bytes, to: directory + "/frames-k.0")
    ScratchDirectory.write(otherBytes, to: directory + "/frames-k.1")
    let loaded = FrameJournal(directory: directory, shard: 0, key: "k").load(legacySender: legacySender)
    let other = FrameJournal.decode(ByteBuffer(bytes: otherBytes), legacySender: legacySender)
    let expected: FrameJournal.Snapshot?
    if let decoded, let other {
        expected = decoded.0 > other.0 ? decoded.1 : other.1
    } else {
        expected = decoded?.1 ?? other?.1
    }
    invariant(loaded == expected, "loaded another snapshot than the newer good one")
}

/// A version 1 journal as earlier releases wrote it (entries of one sender).
private func version1(generation: UInt64, entries: [FrameJournal.Identity: FrameJournal.Entry]) -> [UInt8] {
    var buffer = ByteBuffer()
    buffer.writeBytes(Array("FERRYFJ1".utf8))
    buffer.writeInteger(generation)
    buffer.writeInteger(UInt32(7))  // next sequence, unused since version 2
    buffer.writeInteger(UInt32(entries.count))
    for (identity, entry) in entries.sorted(by: { $0.key < $1.key }) {
        buffer.writeInteger(identity.sequence)
        buffer.writeInteger(entry.sentAtMilliseconds)
        buffer.writeInteger(entry.ttlMilliseconds)
        buffer.writeInteger(UInt16(entry.runs.count))
        for run in entry.runs {
            buffer.writeInteger(run.first)
            buffer.writeInteger(UInt32(run.count))
        }
    }
    var bytes = Array(buffer.readableBytesView) + [0, 0, 0, 0]
    SpoolFileBytes.sealTail(&bytes)
    return bytes
}

@main
enum FrameJournalFuzzer {
    static func main() { FuzzDriver.run(fuzzFrameJournal) }
}
