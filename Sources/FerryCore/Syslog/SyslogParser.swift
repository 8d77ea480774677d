import NIOCore

/// Reads RFC 5424 and RFC 3164 ("BSD") syslog lines into ``SyslogMessage``s,
/// leniently and in place.
///
/// Pure: no I/O, no clock (the caller passes the receive time), no allocation.
/// It reads what real senders write — the NILVALUE timestamp, BSD lines
/// without a year, with ISO 8601 timestamps, without hostname or PRI, a UTF-8
/// BOM, trailing newlines and NULs — and never drops a byte: a line it cannot
/// read is ``SyslogParseOutcome/unparsed``, its message the whole line.
/// Bytes are not checked as UTF-8 here; ``UTF8Repair`` does that where a
/// string must be valid.
public struct SyslogParser: Sendable {
    /// Where timestamps without an offset are read: RFC 3164's, and ISO 8601 ones without `Z` or `±hh:mm`.
    public var timeZone: SyslogTimeZone

    public init(timeZone: SyslogTimeZone = .utc) {
        self.timeZone = timeZone
    }

    /// Parses `line`; `receivedAt` (nanoseconds since the epoch) places RFC 3164 timestamps, which carry no year.
    public func parse(_ line: UnsafeRawBufferPointer, receivedAt: Int64) -> SyslogMessage {
        precondition(line.count <= Int(UInt32.max), "a syslog line longer than 4 GiB")
        var end = line.count
        while end > 0, line[end - 1] == 0x0A || line[end - 1] == 0x0D || line[end - 1] == 0 { end -= 1 }
        var position = Self.hasBOM(line, at: 0, end: end) ? 3 : 0
        var priority = SyslogMessage.noPriority
        if let (value, next) = Self.priority(line, at: position, end: end) {
            priority = value
            position = next
        }
        if priority != SyslogMessage.noPriority, position + 1 < end, line[position] == UInt8(ascii: "1"), line[position + 1] == UInt8(ascii: " ") {
            guard var message = parseRFC5424(line, from: position + 2, end: end) else { return Self.unparsed(line) }
            message.priorityValue = priority
            return message
        }
        return parseRFC3164(line, from: position, end: end, priority: priority, receivedAt: receivedAt) ?? Self.unparsed(line)
    }

    /// Parses the readable bytes of `line`; the fields' offsets count from its reader index.
    public func parse(_ line: ByteBuffer, receivedAt: Int64) -> SyslogMessage {
        line.withUnsafeReadableBytes { parse($0, receivedAt: receivedAt) }
    }

    // MARK: Shared pieces

    /// The whole line as the message.
    @inline(__always)
    static func unparsed(_ line: UnsafeRawBufferPointer) -> SyslogMessage {
        SyslogMessage(outcome: .unparsed, message: SyslogField(0, line.count))
    }

    /// `<` 1–3 digits `>` with a value of at most 191, and the index past it.
    @inline(__always)
    static func priority(_ line: UnsafeRawBufferPointer, at start: Int, end: Int) -> (UInt8, next: Int)? {
        guard start + 2 < end, line[start] == UInt8(ascii: "<") else { return nil }
        var value = 0
        var position = start + 1
        while position < end, position <= start + 4 {
            let byte = line[position]
            if byte == UInt8(ascii: ">") {
                return position > start + 1 && value <= 191 ? (UInt8(value), position + 1) : nil
            }
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10, position <= start + 3 else { return nil }
            value = value * 10 + Int(digit)
            position += 1
        }
        return nil
    }

    @inline(__always)
    static func hasBOM(_ line: UnsafeRawBufferPointer, at index: Int, end: Int) -> Bool {
        index + 3 <= end && line[index] == 0xEF && line[index + 1] == 0xBB && line[index + 2] == 0xBF
    }

    /// The end of the run of bytes other than a space starting at `index`.
    @inline(__always)
    static func wordEnd(_ line: UnsafeRawBufferPointer, from index: Int, end: Int) -> Int {
        var position = index
        while position < end, line[position] != UInt8(ascii: " ") { position += 1 }
        return position
    }

    /// Sets the message to `start..<end`, leaving out a leading BOM.
    @inline(__always)
    static func setMessage(_ message: inout SyslogMessage, _ line: UnsafeRawBufferPointer, from start: Int, end: Int) {
        if hasBOM(line, at: start, end: end) {
            message.messageHasBOM = true
            message.message = SyslogField(start + 3, end)
        } else {
            message.message = SyslogField(start, max(start, end))
        }
    }
}
