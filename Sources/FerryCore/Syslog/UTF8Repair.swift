import NIOCore

/// Makes log bytes valid UTF-8 for sinks whose strings must be (OTLP, JSON):
/// each ill-formed sequence becomes U+FFFD, and the caller learns whether
/// anything was replaced so it can keep the original bytes beside the string.
///
/// Replaces maximal subparts, one U+FFFD each (Unicode §3.9, "U+FFFD
/// Substitution of Maximal Subparts"), as Swift's `String(decoding:as:)` and
/// WHATWG's decoder do, so results agree with other tools byte for byte.
/// Writes into the caller's buffer: no allocation per log.
public enum UTF8Repair {
    /// U+FFFD REPLACEMENT CHARACTER in UTF-8.
    public static let replacement: (UInt8, UInt8, UInt8) = (0xEF, 0xBF, 0xBD)

    /// The most bytes ``write(_:into:)`` can produce for `count` input bytes (every byte replaced).
    public static func maximumRepairedCount(_ count: Int) -> Int { count * 3 }

    /// Whether `bytes` are well-formed UTF-8.
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var position = 0
        while position < bytes.count {
            position = skipASCII(bytes, from: position)
            guard position < bytes.count else { return true }
            let length = sequenceLength(bytes, at: position)
            guard length > 0 else { return false }
            position += length
        }
        return true
    }

    /// Appends `bytes` to `buffer` with ill-formed sequences replaced by
    /// U+FFFD; returns how many were replaced (0: the bytes were copied as they are).
    @discardableResult
    public static func write(_ bytes: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) -> Int {
        repair(bytes) { run in
            buffer.writeBytes(run)
        } replacement: {
            buffer.writeMultipleIntegers(replacement.0, replacement.1, replacement.2)
        }
    }

    /// Like ``write(_:into:)`` into fixed memory of at least ``maximumRepairedCount(_:)`` bytes;
    /// returns the bytes written and the replacements.
    public static func write(_ bytes: UnsafeRawBufferPointer, into target: UnsafeMutableRawBufferPointer) -> (written: Int, replaced: Int) {
        precondition(target.count >= maximumRepairedCount(bytes.count) || isValid(bytes) && target.count >= bytes.count)
        var written = 0
        let replaced = repair(bytes) { run in
            UnsafeMutableRawBufferPointer(rebasing: target[written..<written + run.count]).copyMemory(from: run)
            written += run.count
        } replacement: {
            target[written] = replacement.0
            target[written + 1] = replacement.1
            target[written + 2] = replacement.2
            written += 3
        }
        return (written, replaced)
    }

    /// The one repair scan: hands out the well-formed runs of `bytes` in order,
    /// with a `replacement` call for each ill-formed sequence between them; returns how many there were.
    @inline(__always)
    private static func repair(
        _ bytes: UnsafeRawBufferPointer, run: (UnsafeRawBufferPointer) -> Void, replacement: () -> Void
    ) -> Int {
        var replaced = 0
        var runStart = 0
        var position = 0
        while position < bytes.count {
            position = skipASCII(bytes, from: position)
            guard position < bytes.count else { break }
            let length = sequenceLength(bytes, at: position)
            if length > 0 {
                position += length
                continue
            }
            run(UnsafeRawBufferPointer(rebasing: bytes[runStart..<position]))
            replacement()
            replaced += 1
            position += maximalSubpart(bytes, at: position)
            runStart = position
        }
        run(UnsafeRawBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        return replaced
    }

    // MARK: Decoding

    /// The index of the first non-ASCII byte at or after `index`, eight bytes at a time.
    @inline(__always)
    static func skipASCII(_ bytes: UnsafeRawBufferPointer, from index: Int) -> Int {
        var position = index
        while position + 8 <= bytes.count, bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
            position += 8
        }
        while position < bytes.count, bytes[position] < 0x80 { position += 1 }
        return position
    }

    /// The allowed range of the second byte after a lead byte (Unicode Table 3-7); the others are 80–BF.
    @inline(__always)
    static func secondByteRange(lead: UInt8) -> ClosedRange<UInt8>? {
        switch lead {
        case 0xC2...0xDF, 0xE1...0xEC, 0xEE...0xEF, 0xF1...0xF3: return 0x80...0xBF
        case 0xE0: return 0xA0...0xBF
        case 0xED: return 0x80...0x9F
        case 0xF0: return 0x90...0xBF
        case 0xF4: return 0x80...0x8F
        default: return nil
        }
    }

    @inline(__always)
    static func expectedLength(lead: UInt8) -> Int { lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4 }

    /// The length of the well-formed non-ASCII sequence at `index`, or 0 when it is ill-formed.
    @inline(__always)
    static func sequenceLength(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Int {
        let lead = bytes[index]
        guard let second = secondByteRange(lead: lead) else { return 0 }
        let length = expectedLength(lead: lead)
        guard index + length <= bytes.count, second.contains(bytes[index + 1]) else { return 0 }
        for offset in 2..<length where bytes[index + offset] & 0xC0 != 0x80 { return 0 }
        return length
    }

    /// The length of the maximal subpart at an ill-formed `index`: the lead
    /// byte and the continuation bytes that were right before it went wrong (at least 1).
    @inline(__always)
    static func maximalSubpart(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Int {
        let lead = bytes[index]
        guard let second = secondByteRange(lead: lead) else { return 1 }
        let length = expectedLength(lead: lead)
        guard index + 1 < bytes.count, second.contains(bytes[index + 1]) else { return 1 }
        var taken = 2
        while taken < length, index + taken < bytes.count, bytes[index + taken] & 0xC0 == 0x80 { taken += 1 }
        return taken
    }
}
