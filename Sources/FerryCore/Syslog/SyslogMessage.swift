import NIOCore

/// Which grammar a line was read with, counted per line (`rfc5424`, `rfc3164`, `unparsed`).
public enum SyslogParseOutcome: Int, CaseIterable, Sendable, CustomStringConvertible {
    case rfc5424
    case rfc3164
    /// Neither grammar fits: the whole line is the message, byte for byte.
    case unparsed

    public var description: String {
        switch self {
        case .rfc5424: return "rfc5424"
        case .rfc3164: return "rfc3164"
        case .unparsed: return "unparsed"
        }
    }
}

/// Where a field lies in the parsed bytes: offsets from their start.
///
/// Eight bytes instead of a `Range<Int>`'s sixteen, so a parsed message stays
/// small enough to pass around by value for every log.
public struct SyslogField: Sendable, Hashable {
    public var start: UInt32
    public var end: UInt32

    @inline(__always)
    init(_ start: Int, _ end: Int) {
        self.start = UInt32(truncatingIfNeeded: start)
        self.end = UInt32(truncatingIfNeeded: end)
    }

    public var range: Range<Int> { Int(start)..<Int(end) }
    public var count: Int { Int(end &- start) }
    public var isEmpty: Bool { start == end }
}

/// One syslog line read into fields: views into the line's bytes, never copies.
///
/// Fields absent from the line, or given as RFC 5424's NILVALUE `-`, are nil.
/// Offsets count from the first byte handed to ``SyslogParser``; read them
/// with ``bytes(_:in:)`` or slice the `ByteBuffer` the line came in.
public struct SyslogMessage: Sendable, Equatable {
    public var outcome: SyslogParseOutcome
    /// PRI value 0–191, or `noPriority`.
    var priorityValue: UInt8 = noPriority
    /// RFC 5424 VERSION (1), or 0 for RFC 3164 and unparsed lines.
    public var version: UInt8 = 0
    /// The time the line carries, in nanoseconds since the Unix epoch (UTC);
    /// nil with NILVALUE, without a timestamp, or when out of range.
    public var timestamp: Int64?
    /// The timestamp as written.
    public var timestampText: SyslogField?
    public var hostname: SyslogField?
    public var appName: SyslogField?
    public var procID: SyslogField?
    public var msgID: SyslogField?
    /// The STRUCTURED-DATA elements, `[`…`]` included; read them with ``StructuredDataIterator``.
    public var structuredData: SyslogField?
    /// The MSG part, without a leading UTF-8 BOM and trailing newlines or NULs;
    /// for an unparsed line, the whole line.
    public var message: SyslogField
    /// The message started with a UTF-8 byte order mark (not part of `message`).
    public var messageHasBOM = false

    static let noPriority: UInt8 = 0xFF

    init(outcome: SyslogParseOutcome, message: SyslogField) {
        self.outcome = outcome
        self.message = message
    }

    /// The PRI, nil when the line has none (RFC 3164 §4.3.3 suggests user.notice, 13, for those).
    public var priority: SyslogPriority? {
        priorityValue == Self.noPriority ? nil : SyslogPriority(value: Int(priorityValue))
    }

    /// The bytes of `field` within `line` (the bytes that were parsed).
    @inline(__always)
    public func bytes(_ field: SyslogField, in line: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: line[field.range])
    }

    /// A slice of `buffer` (as parsed: offsets count from its reader index) holding `field`; shares its storage.
    @inline(__always)
    public func slice(_ field: SyslogField, of buffer: ByteBuffer) -> ByteBuffer {
        buffer.getSlice(at: buffer.readerIndex + Int(field.start), length: field.count)!
    }
}
