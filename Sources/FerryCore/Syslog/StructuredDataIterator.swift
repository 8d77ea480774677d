import NIOCore

/// One SD-ELEMENT of RFC 5424 structured data: `[id name="value" …]`.
public struct StructuredDataElement: Sendable, Hashable {
    /// The SD-ID (`exampleSDID@32473`, `timeQuality`).
    public var id: SyslogField
    /// The params after the SD-ID, up to the closing `]`; read them with ``StructuredDataParamIterator``.
    public var params: SyslogField
}

/// One SD-PARAM: a name and its value as written, escapes included.
public struct StructuredDataParam: Sendable, Hashable {
    public var name: SyslogField
    /// Between the quotes, with RFC 5424's escapes (`\"`, `\\`, `\]`) as written: ``StructuredData/unescape(_:into:)`` removes them.
    public var value: SyslogField
    /// The value holds a backslash, so unescaping may change it.
    public var valueHasEscapes: Bool
}

/// The SD-ELEMENTs of a structured-data field, in order, read in place.
///
/// Holds the pointer it was given: use it only while those bytes are alive
/// (inside `withUnsafeReadableBytes`). Stops at the first malformed element
/// and says so in ``isMalformed``; a field the parser returned never is.
public struct StructuredDataIterator: IteratorProtocol {
    private let bytes: UnsafeRawBufferPointer
    private var position: Int
    private let end: Int
    public private(set) var isMalformed = false

    /// `bytes` is the parsed line, `field` its ``SyslogMessage/structuredData``.
    public init(_ bytes: UnsafeRawBufferPointer, field: SyslogField) {
        self.bytes = bytes
        self.end = min(Int(field.end), bytes.count)
        self.position = min(Int(field.start), end)
    }

    public mutating func next() -> StructuredDataElement? {
        guard position < end else { return nil }
        guard let (element, next) = StructuredData.element(bytes, at: position, end: end) else {
            isMalformed = true
            position = end
            return nil
        }
        position = next
        return element
    }
}

/// The SD-PARAMs of one element, in order, read in place (same lifetime rule as ``StructuredDataIterator``).
public struct StructuredDataParamIterator: IteratorProtocol {
    private let bytes: UnsafeRawBufferPointer
    private var position: Int
    private let end: Int

    public init(_ bytes: UnsafeRawBufferPointer, element: StructuredDataElement) {
        self.bytes = bytes
        self.end = min(Int(element.params.end), bytes.count)
        self.position = min(Int(element.params.start), end)
    }

    public mutating func next() -> StructuredDataParam? {
        while position < end, bytes[position] == UInt8(ascii: " ") { position += 1 }
        guard position < end, let (param, next) = StructuredData.param(bytes, at: position, end: end) else {
            position = end
            return nil
        }
        position = next
        return param
    }
}

/// The RFC 5424 structured-data grammar (§6.3), read leniently.
///
/// Lenient where senders are known to stray: names of any length, several
/// spaces between params, a `]` left unescaped inside a quoted value.
public enum StructuredData {
    /// The element starting with `[` at `index`, and the index past its `]`; nil when malformed.
    static func element(_ bytes: UnsafeRawBufferPointer, at index: Int, end: Int) -> (StructuredDataElement, next: Int)? {
        guard index < end, bytes[index] == UInt8(ascii: "[") else { return nil }
        let idEnd = nameEnd(bytes, from: index + 1, end: end)
        guard idEnd > index + 1, idEnd < end else { return nil }
        var position = idEnd
        while position < end {
            let byte = bytes[position]
            if byte == UInt8(ascii: "]") {
                let element = StructuredDataElement(id: SyslogField(index + 1, idEnd), params: SyslogField(idEnd, position))
                return (element, position + 1)
            }
            guard byte == UInt8(ascii: " ") else { return nil }
            while position < end, bytes[position] == UInt8(ascii: " ") { position += 1 }
            guard position < end else { return nil }
            if bytes[position] == UInt8(ascii: "]") { continue }
            guard let (_, next) = param(bytes, at: position, end: end) else { return nil }
            position = next
        }
        return nil
    }

    /// `name="value"` at `index`, and the index past its closing quote; nil when malformed.
    @inline(__always)
    static func param(_ bytes: UnsafeRawBufferPointer, at index: Int, end: Int) -> (StructuredDataParam, next: Int)? {
        let nameEnd = nameEnd(bytes, from: index, end: end)
        guard nameEnd > index, nameEnd + 1 < end, bytes[nameEnd] == UInt8(ascii: "="), bytes[nameEnd + 1] == UInt8(ascii: "\"")
        else { return nil }
        var position = nameEnd + 2
        var escapes = false
        while position < end {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let param = StructuredDataParam(
                    name: SyslogField(index, nameEnd), value: SyslogField(nameEnd + 2, position), valueHasEscapes: escapes)
                return (param, position + 1)
            }
            if byte == UInt8(ascii: "\\") {
                escapes = true
                position += 1
            }
            position += 1
        }
        return nil
    }

    /// The end of an SD-NAME starting at `index`: printable bytes other than `=`, space, `]` and `"`.
    @inline(__always)
    static func nameEnd(_ bytes: UnsafeRawBufferPointer, from index: Int, end: Int) -> Int {
        var position = index
        while position < end {
            let byte = bytes[position]
            guard byte > 0x20, byte != 0x7F, byte != UInt8(ascii: "="), byte != UInt8(ascii: "]"), byte != UInt8(ascii: "\"") else { break }
            position += 1
        }
        return position
    }

    /// Writes a PARAM-VALUE without its escapes: `\"`, `\\` and `\]` become
    /// the escaped byte; any other backslash stays, as RFC 5424 §6.3.3 says.
    public static func unescape(_ value: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        var runStart = 0
        var position = 0
        while position < value.count {
            if value[position] == UInt8(ascii: "\\"), position + 1 < value.count,
                case let next = value[position + 1], next == UInt8(ascii: "\"") || next == UInt8(ascii: "\\") || next == UInt8(ascii: "]")
            {
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: value[runStart..<position]))
                runStart = position + 1
                position += 2
            } else {
                position += 1
            }
        }
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: value[runStart..<value.count]))
    }
}
