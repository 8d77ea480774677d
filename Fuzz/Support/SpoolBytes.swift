import NIOCore

@testable import FerryCore

/// Spool records built from a fuzzer's description with Ferry's own encoder,
/// then damaged as the description says: the fuzzer reaches good records
/// (their checksums are right) and every kind of damage around them.
public struct SpoolBytes {
    /// A record as built, before any damage.
    public struct Built: Equatable {
        public var sequence: UInt64
        public var payload: [UInt8]
    }

    public var bytes: [UInt8] = []
    public var built: [Built] = []
    /// No damage, no garbage, no cut, and sequences from 1 that rise by 1...15: every record must be read.
    public var intact = true

    /// Reads records from `input` until it ends. Each record is an op byte
    /// (low 4 bits: sequence step; 0x10: length ×16; 0x20: flip a byte;
    /// 0x40: cut the record short and stop; 0x80: garbage before it), a
    /// length byte, the payload, and the byte the flags consume.
    public init(_ input: inout FuzzInput, firstSequence: UInt64, maximumRecords: Int = 64) {
        var sequence = firstSequence
        var first = true
        while !input.isEmpty, built.count < maximumRecords {
            let op = input.byte()
            let step = UInt64(op & 0x0F)
            if !first && step == 0 { intact = false }
            let (next, wrapped) = sequence.addingReportingOverflow(step)
            if wrapped || next == 0 || next >= SpoolRecordFormat.sequenceLimit { intact = false }  // sequences are 1..<limit
            sequence = next
            first = false
            var length = Int(input.byte())
            if op & 0x10 != 0 { length *= 16 }
            if op & 0x80 != 0 {
                bytes += input.take(Int(input.byte()) % 40 + 1)
                intact = false
            }
            let payload = input.take(length)
            var record = ByteBuffer()
            SpoolRecordFormat.encodeRecord(sequence: sequence, payload: ByteBuffer(bytes: payload), into: &record)
            var encoded = Array(record.readableBytesView)
            if op & 0x20 != 0 {
                let at = Int(input.byte()) % encoded.count
                encoded[at] ^= 0x5A
                intact = false
            }
            if op & 0x40 != 0 {
                bytes += encoded.prefix(Int(input.byte()) % encoded.count)
                intact = false
                break
            }
            bytes += encoded
            built.append(Built(sequence: sequence, payload: payload))
        }
    }

    /// A segment header for `shard` whose records start at `firstSequence`.
    public static func segmentHeader(shard: Int, firstSequence: UInt64) -> [UInt8] {
        var header = ByteBuffer()
        SpoolRecordFormat.encodeSegmentHeader(shard: shard, firstSequence: firstSequence, into: &header)
        return Array(header.readableBytesView)
    }

    /// Whether `bytes[offset...]` holds a record of `sequence` with `payload` whose checksum is right (by ``ReferenceCRC32C``).
    public static func isGoodRecord(_ bytes: [UInt8], at offset: Int, sequence: UInt64, payload: [UInt8]) -> Bool {
        let end = offset + SpoolRecordFormat.recordHeaderBytes + payload.count
        guard offset >= 0, end <= bytes.count else { return false }
        guard ReferenceCRC32C.load(bytes, at: offset + 4, count: 4) == UInt64(payload.count),
            ReferenceCRC32C.load(bytes, at: offset + 8, count: 8) == sequence,
            bytes[(offset + SpoolRecordFormat.recordHeaderBytes)..<end].elementsEqual(payload)
        else { return false }
        return ReferenceCRC32C.load(bytes, at: offset, count: 4) == UInt64(ReferenceCRC32C.checksum(bytes[(offset + 4)..<end]))
    }
}
