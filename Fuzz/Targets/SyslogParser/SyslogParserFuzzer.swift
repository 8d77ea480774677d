import FerryCore
import FuzzSupport
import NIOCore

/// The syslog parser (``SyslogParser``), the structured-data iterators and ``UTF8Repair``.
///
/// First byte: how far into its buffer the line starts; second: the receive
/// time (one of four, New Year's Eve among them); third: the time zone. Checks:
/// every field lies inside the line and after the one before it; an unparsed
/// line is its whole self as the message and nothing else; the PRI is what
/// ``SyslogPriority`` reads; RFC 5424 header fields hold no space and its
/// structured data iterates whole, without a malformed element; an RFC 5424
/// timestamp is within a day of an independent reading of its date and time;
/// a BSD timestamp without a year lies at most 31 days after the receive time
/// and at most two years before it;
/// parsing in place in a `ByteBuffer` slice gives the same fields; the UTF-8
/// repair of the message equals Swift's own decoding, by both writers.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSyslogParser(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let offset = Int(input.byte() % 16)
    let receivedAt = receiveTimes[Int(input.byte()) % receiveTimes.count]
    let parser = SyslogParser(timeZone: zones[Int(input.byte()) % zones.count])
    let line = input.rest()

    let parsed = line.withUnsafeBytes { bytes in
        let parsed = parser.parse(bytes, receivedAt: receivedAt)
        check(parsed, bytes, receivedAt)
        return parsed
    }
    var buffer = ByteBuffer()
    buffer.writeRepeatingByte(UInt8(ascii: "<"), count: offset)
    buffer.writeBytes(line)
    buffer.moveReaderIndex(forwardBy: offset)
    invariant(parser.parse(buffer, receivedAt: receivedAt) == parsed, "parsing a ByteBuffer slice differs")
    return 0
}

private let receiveTimes: [Int64] = [1_796_688_000_000_000_000, 1_798_761_599_000_000_000, 1_798_761_601_000_000_000, 0]
private let zones: [SyslogTimeZone] = [
    .utc, SyslogTimeZone(named: "+14:00")!, SyslogTimeZone(named: "-09:30")!, SyslogTimeZone(named: "Europe/Berlin") ?? .utc,
]

private func check(_ parsed: SyslogMessage, _ bytes: UnsafeRawBufferPointer, _ receivedAt: Int64) {
    let fields = [parsed.timestampText, parsed.hostname, parsed.appName, parsed.procID, parsed.msgID, parsed.structuredData, parsed.message]
    var previousEnd = 0
    for case let field? in fields {
        invariant(field.start <= field.end && Int(field.end) <= bytes.count, "field \(field.range) outside \(bytes.count) bytes")
        invariant(Int(field.start) >= previousEnd, "field \(field.range) starts before the one before it ends (\(previousEnd))")
        previousEnd = Int(field.end)
    }
    invariant(parsed.timestamp == nil || parsed.timestampText != nil, "a timestamp value without its text")

    guard parsed.outcome != .unparsed else {
        invariant(parsed.message.range == 0..<bytes.count, "unparsed: message \(parsed.message.range) is not the whole line of \(bytes.count)")
        invariant(fields.dropLast().allSatisfy { $0 == nil } && parsed.priority == nil && parsed.timestamp == nil, "unparsed with fields")
        return
    }
    let startsWithBOM = bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF
    if !startsWithBOM {
        var line = ByteBuffer()
        line.writeBytes(bytes)
        invariant(parsed.priority == SyslogPriority(of: line), "PRI \(String(describing: parsed.priority)) differs from SyslogPriority(of:)")
    }
    let message = parsed.bytes(parsed.message, in: bytes)
    if let last = message.last { invariant(last != 0x0A && last != 0x0D && last != 0, "the message ends in a newline or NUL") }

    if parsed.outcome == .rfc5424 {
        invariant(parsed.version == 1 && parsed.priority != nil, "RFC 5424 without VERSION 1 or PRI")
        for case let field? in [parsed.timestampText, parsed.hostname, parsed.appName, parsed.procID, parsed.msgID] {
            invariant(!field.isEmpty && !parsed.bytes(field, in: bytes).contains(UInt8(ascii: " ")), "a header field is empty or holds a space")
        }
        if let sd = parsed.structuredData { checkStructuredData(sd, bytes) }
        if let text = parsed.timestampText, let value = parsed.timestamp { checkTimestamp(value, parsed.bytes(text, in: bytes)) }
    } else {
        invariant(parsed.msgID == nil && parsed.structuredData == nil && parsed.version == 0, "RFC 3164 with RFC 5424 fields")
        if let text = parsed.timestampText, let value = parsed.timestamp { checkInferredYear(value, parsed.bytes(text, in: bytes), receivedAt) }
    }
    checkRepair(message)
}

/// The elements follow one another from the field's start to its end, and their params from the SD-ID to the `]`.
private func checkStructuredData(_ sd: SyslogField, _ bytes: UnsafeRawBufferPointer) {
    var iterator = StructuredDataIterator(bytes, field: sd)
    var position = Int(sd.start)
    while let element = iterator.next() {
        invariant(Int(element.id.start) == position + 1 && bytes[position] == UInt8(ascii: "["), "element not where the last one ended")
        invariant(bytes[Int(element.params.end)] == UInt8(ascii: "]"), "params do not end at ]")
        var params = StructuredDataParamIterator(bytes, element: element)
        var paramEnd = Int(element.params.start)
        while let param = params.next() {
            invariant(Int(param.name.start) > paramEnd && Int(param.value.end) < Int(element.params.end), "param outside its element")
            var unescaped = ByteBuffer()
            StructuredData.unescape(UnsafeRawBufferPointer(rebasing: bytes[param.value.range]), into: &unescaped)
            invariant(unescaped.readableBytes <= param.value.count, "unescaping grew the value")
            invariant(param.valueHasEscapes || unescaped.readableBytes == param.value.count, "a value without escapes changed")
            paramEnd = Int(param.value.end) + 1
        }
        position = Int(element.params.end) + 1
    }
    invariant(!iterator.isMalformed && position == Int(sd.end), "structured data parsed but does not iterate whole")
}

/// Within a day of `YYYY-MM-DDThh:mm:ss` read by counting days year by year (offsets are under a day).
private func checkTimestamp(_ value: Int64, _ text: UnsafeRawBufferPointer) {
    func number(_ range: Range<Int>) -> Int { text[range].reduce(0) { $0 * 10 + Int($1 - 48) } }
    let year = number(0..<4)
    let month = number(5..<7)
    var days = 0
    for y in min(year, 1970)..<max(year, 1970) { days += (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 366 : 365 }
    if year < 1970 { days = -days }
    let monthDays = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    for m in 1..<month { days += monthDays[m - 1] + (m == 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 1 : 0) }
    days += number(8..<10) - 1
    let local = Int64(days) * 86_400 + Int64(number(11..<13) * 3600 + number(14..<16) * 60 + number(17..<19))
    let seconds = value / 1_000_000_000 - (value % 1_000_000_000 < 0 ? 1 : 0)
    invariant(abs(seconds - local) <= 86_400, "timestamp \(value) is not within a day of \(local) s")
}

/// A `Mmm dd hh:mm:ss` timestamp without a year is placed at most 31 days (and its fraction) after the receive time, within two years before it.
private func checkInferredYear(_ value: Int64, _ text: UnsafeRawBufferPointer, _ receivedAt: Int64) {
    guard let first = text.first, first >= UInt8(ascii: "A") else { return }
    var digitRun = 0
    for byte in text {
        if byte == UInt8(ascii: " ") && digitRun == 4 { return }  // a year is written
        digitRun = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? digitRun + 1 : 0
    }
    let day: Int64 = 86_400_000_000_000
    invariant(value <= receivedAt + 31 * day + 1_000_000_000, "inferred \(value) is more than a month after \(receivedAt)")
    invariant(value >= receivedAt - 2 * 366 * day, "inferred \(value) is more than two years before \(receivedAt)")
}

/// The repair equals `String(decoding:as:)`; the fixed-memory writer agrees; validity agrees with "nothing replaced".
private func checkRepair(_ message: UnsafeRawBufferPointer) {
    var buffer = ByteBuffer()
    let replaced = UTF8Repair.write(message, into: &buffer)
    let expected = String(decoding: message, as: UTF8.self)
    invariant(String(buffer: buffer) == expected, "repair differs from Swift's decoding")
    invariant(UTF8Repair.isValid(message) == (replaced == 0), "validity and replacements disagree")
    let target = UnsafeMutableRawBufferPointer.allocate(byteCount: UTF8Repair.maximumRepairedCount(message.count), alignment: 1)
    defer { target.deallocate() }
    let (written, replacedToo) = UTF8Repair.write(message, into: target)
    invariant(replacedToo == replaced && Array(target[0..<written]) == Array(expected.utf8), "the two writers disagree")
}

@main
enum SyslogParserFuzzer {
    static func main() { FuzzDriver.run(fuzzSyslogParser) }
}
