import FuzzSupport
import Logging
import NIOCore

@testable import FerryCore

#if canImport(Glibc)
    import Glibc
#endif

/// A spool directory of any bytes: segments (built or raw, under any name),
/// progress files, frame journals, foreign files, directories and FIFOs where
/// files should be, in two shards. Opened as Ferry opens it at start, the
/// journal's frames claimed as a restarted lane claims them, everything read
/// back, then closed and opened once more.
///
/// Checks: it opens (or fails with a ``SpoolError``) and never hangs; every
/// log read back is a record with a right checksum and its own sequence in
/// one of the files given; none twice; what is read, lost and claimed adds up
/// to what recovery counted; the read-back ends.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpoolRecovery(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let root = ScratchDirectory.fresh("spool")
    var segments: [[UInt8]] = []
    for shard in 0..<2 { _ = mkdir("\(root)/shard-\(shard)", 0o700) }
    for _ in 0..<8 where !input.isEmpty {
        let kind = input.byte()
        let shard = "\(root)/shard-\(kind >> 7)"
        var part = FuzzInput(bytes: input.take(Int(input.integer(bytes: 2) % 4096)))
        switch kind % 6 {
        case 0, 1:
            let first = SpoolFileBytes.number(&part) &+ 1
            var file = SpoolBytes.segmentHeader(shard: 0, firstSequence: first)
            file += kind & 0x10 != 0 ? part.rest() : SpoolBytes(&part, firstSequence: first &+ UInt64(kind >> 5 & 3)).bytes
            if kind & 0x08 != 0 { file = Array(file.prefix(Int(part.byte()))) }
            ScratchDirectory.write(file, to: shard + "/" + segmentName(first))
            segments.append(file)
        case 2:
            var file = SpoolFileBytes.progressSlot(generation: SpoolFileBytes.number(&part), watermark: SpoolFileBytes.number(&part))
            if kind & 0x10 != 0 {
                file += SpoolFileBytes.progressSlot(generation: SpoolFileBytes.number(&part), watermark: SpoolFileBytes.number(&part))
            }
            if kind & 0x08 != 0 { file = part.rest() }
            ScratchDirectory.write(file, to: shard + "/progress-default")
        case 3:
            let entries = SpoolFileBytes.journalEntries(&part, now: WallClock.milliseconds())
            var file = SpoolFileBytes.journal(generation: SpoolFileBytes.number(&part), entries: entries)
            if kind & 0x08 != 0 {
                file = part.rest()
                SpoolFileBytes.sealTail(&file)
            }
            ScratchDirectory.write(file, to: shard + "/" + journalName + (kind & 0x10 != 0 ? ".1" : ".0"))
        case 4:
            let raw = String(decoding: part.take(Int(part.byte() % 24) + 1).map { $0 == 0 || $0 == 0x2F ? 0x5F : $0 }, as: UTF8.self)
            let name = raw.isEmpty || raw == "." || raw == ".." ? "_" + raw : raw
            ScratchDirectory.write(part.rest(), to: shard + "/" + name)
        default:
            let names = [segmentName(SpoolFileBytes.number(&part) &+ 1), "progress-default", journalName + ".0", "LOCK", "sender-id"]
            let name = names[Int(part.byte()) % names.count]
            let path = (name == "LOCK" || name == "sender-id" ? root : shard) + "/" + name
            ScratchDirectory.remove(path)
            _ = kind & 0x10 != 0 ? mkdir(path, 0o700) : mkfifo(path, 0o600)
        }
    }
    openAndReadBack(root, segments: segments)
    openAndReadBack(root, segments: segments)
    return 0
}

private let upstream = "ferry://fuzz.invalid:5515"
/// The journal's file name for ``upstream`` (as ``Spool/journal(shard:upstream:)`` names it: FNV-1a of the URL).
private let journalName: String = {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in upstream.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
    return "frames-" + String(hash, radix: 16)
}()

private func segmentName(_ first: UInt64) -> String {
    let hex = String(first, radix: 16)
    return String(repeating: "0", count: max(0, 16 - hex.count)) + hex + ".seg"
}

private let logger = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })

private func openAndReadBack(_ root: String, segments: [[UInt8]]) {
    let settings = SpoolSettings(directory: root, maxBytes: 1 << 30, segmentBytes: 4096, sync: .never, syncInterval: .seconds(1))
    let spool: Spool
    do {
        spool = try Spool.open(settings: settings, shardCount: 1, logger: logger)
    } catch {
        invariant(error is SpoolError, "open failed with \(error)")
        return
    }
    defer { spool.close() }
    let capacity = BufferCapacity(logs: BufferCapacity.maxLogs, bytes: BufferCapacity.maxBytes)
    for (index, shard) in spool.shards.enumerated() {
        let recovery = spool.recoveries[index]
        // As a restarted lane does first: claim the frames its journal holds.
        var claimed = Set<UInt64>()
        if index == 0, let snapshot = spool.journal(shard: 0, upstream: upstream).load() {
            for (_, entry) in snapshot.entries.sorted(by: { $0.key < $1.key }) {
                guard let records = shard.claim(entry.runs) else { continue }
                invariant(records.count == entry.runs.reduce(0) { $0 + $1.count }, "a claim returned \(records.count) records")
                for run in entry.runs { claimed.formUnion(run.first..<run.end) }
            }
        }
        var seen = Set<UInt64>()
        var lost = 0
        var rounds = 0
        while shard.isSpilling {
            rounds += 1
            invariant(rounds <= 10_000, "the read-back does not end")
            let read = shard.readSpilled(maxRecords: 64, capacity: capacity, allocator: ByteBufferAllocator())
            capacity.release(count: read.records.count, bytes: read.bytes)
            lost += read.lost
            let sequences = read.spans.runs.flatMap { Array($0.first..<$0.end) }
            invariant(sequences.count == read.records.count, "\(read.records.count) records with \(sequences.count) sequences")
            for (sequence, record) in zip(sequences, read.records) {
                invariant(seen.insert(sequence).inserted, "sequence \(sequence) read back twice")
                invariant(!claimed.contains(sequence), "sequence \(sequence) read back though a frame claimed it")
                let payload = Array(record.readableBytesView)
                invariant(segments.contains { isRecord($0, sequence: sequence, payload: payload) }, "sequence \(sequence) is not a record given")
            }
            if read.records.isEmpty && read.lost == 0 && shard.isSpilling {
                invariant(false, "the read-back makes no progress")
            }
        }
        invariant(
            seen.count + lost + claimed.count == recovery.recovered,
            "read \(seen.count), lost \(lost), claimed \(claimed.count) of \(recovery.recovered) recovered")
    }
}

/// Whether `file` holds a good record of `sequence` with `payload` somewhere.
private func isRecord(_ file: [UInt8], sequence: UInt64, payload: [UInt8]) -> Bool {
    let key = SpoolFileBytes.bigEndian(sequence)
    var offset = 0
    while offset + SpoolRecordFormat.recordHeaderBytes <= file.count {
        if file[(offset + 8)..<(offset + 16)].elementsEqual(key), SpoolBytes.isGoodRecord(file, at: offset, sequence: sequence, payload: payload) {
            return true
        }
        offset += 1
    }
    return false
}

@main
enum SpoolRecoveryFuzzer {
    static func main() { FuzzDriver.run(fuzzSpoolRecovery) }
}
