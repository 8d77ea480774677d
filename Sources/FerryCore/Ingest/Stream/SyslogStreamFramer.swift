import NIOCore

/// Splits one connection's byte stream into syslog messages (RFC 6587), as a
/// pure state machine: bytes in through ``append(_:)``, events out of
/// ``next()``, and ``finish()`` when the peer closes.
///
/// - Octet counting (§3.4.1): `MSG-LEN SP MSG`, `MSG-LEN` a non-zero digit and
///   up to nine more. A message longer than `maxMessageBytes` is skipped as it
///   streams past (never buffered) and reported once as ``Event/oversize(_:)``;
///   a length beyond ``impossibleLength(maxMessageBytes:)``, or a header that
///   is not digits and a space, is ``Event/fatal(_:)``: the stream cannot be
///   resynchronised, so the connection is closed.
/// - LF (§3.4.2, non-transparent): one message per line, the LF not part of it;
///   empty lines are skipped; a line longer than `maxMessageBytes` is skipped to
///   its LF and reported once as oversize. At the end, an unterminated last line
///   is a message (as rsyslog and syslog-ng take it).
/// - Detect: the first byte of the connection decides, a digit meaning octet
///   counting and anything else LF.
///
/// Messages are slices of the bytes read (no copy), byte for byte as sent.
struct SyslogStreamFramer {
    enum Event: Equatable {
        case message(ByteBuffer)
        /// A message of this many bytes (at least; for a line, what was seen) was skipped.
        case oversize(Int)
        /// The stream cannot be framed further; the connection must close.
        case fatal(StreamFramingError)
    }

    private(set) var framing: StreamFraming
    let maxMessageBytes: Int
    private var buffer: ByteBuffer?
    /// Bytes of an oversize octet-counted message still to skip.
    private var skipping = 0
    /// In LF mode: discarding an oversize line up to its LF.
    private var discardingLine = false
    private var failed = false
    private let allocator = ByteBufferAllocator()

    init(framing: StreamFraming, maxMessageBytes: Int) {
        self.framing = framing
        self.maxMessageBytes = maxMessageBytes
    }

    /// The largest octet count taken as a (too long) message rather than a
    /// broken stream: 1 MiB, or `maxMessageBytes` if that is larger.
    static func impossibleLength(maxMessageBytes: Int) -> Int { max(1 << 20, maxMessageBytes) }

    /// Bytes held for a message not yet complete.
    var bufferedBytes: Int { buffer?.readableBytes ?? 0 }

    mutating func append(_ bytes: ByteBuffer) {
        guard !failed, bytes.readableBytes > 0 else { return }
        guard var rest = buffer, rest.readableBytes > 0 else {
            buffer = bytes
            return
        }
        // The rest of the last read shares its storage with the messages already handed on: writing
        // onto it would copy that whole storage (and grow it). A new buffer of exactly the rest and
        // the new bytes costs one copy and lets the old storage go once its messages are forwarded.
        var joined = allocator.buffer(capacity: rest.readableBytes + bytes.readableBytes)
        joined.writeBuffer(&rest)
        joined.writeImmutableBuffer(bytes)
        buffer = joined
    }

    /// The next message or event from the bytes appended so far; nil when more are needed.
    mutating func next() -> Event? {
        guard !failed, var bytes = buffer else { return nil }
        defer { buffer = bytes }
        while bytes.readableBytes > 0 {
            if framing == .detect {
                let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self)!
                framing = (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) ? .octet : .lf
            }
            if skipping > 0 {
                let skipped = min(skipping, bytes.readableBytes)
                bytes.moveReaderIndex(forwardBy: skipped)
                skipping -= skipped
                continue
            }
            switch framing {
            case .octet, .detect:
                switch Self.octetHeader(bytes, maxMessageBytes: maxMessageBytes) {
                case .needMore:
                    return nil
                case .failed(let error):
                    failed = true
                    return .fatal(error)
                case .header(let headerBytes, let length):
                    if length > maxMessageBytes {
                        bytes.moveReaderIndex(forwardBy: headerBytes)
                        skipping = length
                        return .oversize(length)
                    }
                    guard bytes.readableBytes >= headerBytes + length else { return nil }
                    bytes.moveReaderIndex(forwardBy: headerBytes)
                    return .message(bytes.readSlice(length: length)!)
                }
            case .lf:
                let view = bytes.readableBytesView
                guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
                    if !discardingLine, bytes.readableBytes > maxMessageBytes {
                        discardingLine = true
                        let seen = bytes.readableBytes
                        bytes.moveReaderIndex(forwardBy: seen)
                        return .oversize(seen)
                    }
                    if discardingLine { bytes.moveReaderIndex(forwardBy: bytes.readableBytes) }
                    return nil
                }
                let length = newline - view.startIndex
                if discardingLine {
                    discardingLine = false
                    bytes.moveReaderIndex(forwardBy: length + 1)
                    continue
                }
                let line = bytes.readSlice(length: length)!
                bytes.moveReaderIndex(forwardBy: 1)
                if length == 0 { continue }
                if length > maxMessageBytes { return .oversize(length) }
                return .message(line)
            }
        }
        return nil
    }

    /// What the end of the stream leaves: an unterminated last line (LF), or
    /// whether an octet-counted message was cut off (`truncated`).
    mutating func finish() -> (message: ByteBuffer?, truncated: Bool) {
        defer { buffer = nil }
        guard !failed, let rest = buffer, rest.readableBytes > 0 else { return (nil, false) }
        switch framing {
        case .lf:
            if discardingLine { return (nil, false) }
            return rest.readableBytes <= maxMessageBytes ? (rest, false) : (nil, true)
        case .octet, .detect:
            return (nil, true)
        }
    }

    private enum OctetHeader {
        case needMore
        case failed(StreamFramingError)
        case header(bytes: Int, length: Int)
    }

    /// Reads `MSG-LEN SP` at the start of `bytes`.
    private static func octetHeader(_ bytes: ByteBuffer, maxMessageBytes: Int) -> OctetHeader {
        var length = 0
        var digits = 0
        for byte in bytes.readableBytesView {
            if byte == UInt8(ascii: " ") {
                guard digits > 0 else { return .failed(.badLength) }
                guard length <= impossibleLength(maxMessageBytes: maxMessageBytes) else { return .failed(.impossibleLength(length)) }
                return .header(bytes: digits + 1, length: length)
            }
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte), !(digits == 0 && byte == UInt8(ascii: "0")) else {
                return .failed(.badLength)
            }
            digits += 1
            guard digits <= 10 else { return .failed(.impossibleLength(length)) }
            length = length * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return .needMore
    }
}

/// Why a stream could not be framed further.
enum StreamFramingError: Error, Equatable, CustomStringConvertible {
    /// An octet-counted message did not start with `MSG-LEN SP`.
    case badLength
    /// A length no sender of syslog would write (the stream is out of step).
    case impossibleLength(Int)

    var description: String {
        switch self {
        case .badLength: return "an octet-counted message did not start with a length (digits, then a space)"
        case .impossibleLength(let length): return "octet count \(length) is beyond any syslog message; the stream is out of step"
        }
    }

    /// The `reason` label of the connection closed by it.
    var reason: String {
        switch self {
        case .badLength: return "bad_length"
        case .impossibleLength: return "impossible_length"
        }
    }
}
