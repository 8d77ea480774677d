import FerryCore
import FuzzSupport
import NIOCore

/// The syslog PRI reader (``SyslogPriority/init(of:)``), which routes and
/// counts every log by severity, and the severity and facility names of the
/// configuration.
///
/// First byte: how far into its buffer the message starts. Checks: the PRI
/// read is what an independent reading of `<` 1–3 digits `>` (0–191) gives;
/// severity and facility are its parts; nothing past the message is read
/// (AddressSanitizer); a name maps to a severity that maps back, and to a
/// facility code in 0–23.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSyslogPriority(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let offset = Int(input.byte() % 16)
    let message = input.rest()
    var buffer = ByteBuffer()
    buffer.writeRepeatingByte(UInt8(ascii: "<"), count: offset)
    buffer.writeBytes(message)
    buffer.moveReaderIndex(forwardBy: offset)
    let priority = SyslogPriority(of: buffer)
    let expected = reference(message)
    invariant(priority?.value == expected, "PRI \(String(describing: priority?.value)), expected \(String(describing: expected))")
    if let priority {
        invariant(
            priority.severity.rawValue == priority.value % 8 && priority.facility == priority.value / 8,
            "severity or facility is not a part of \(priority.value)")
        invariant((0..<SyslogFacility.names.count).contains(priority.facility), "facility \(priority.facility)")
    }

    let name = String(decoding: message.prefix(24), as: UTF8.self)
    if let severity = SyslogSeverity(name: name) {
        invariant(SyslogSeverity(name: severity.description) == severity, "severity \(severity) does not map back")
    }
    if let code = SyslogFacility.code(named: name) {
        invariant((0..<24).contains(code), "facility code \(code) for \(name)")
    }
    return 0
}

/// `<`, one to three digits, `>`, as the first bytes; the value at most 191.
private func reference(_ bytes: [UInt8]) -> Int? {
    guard bytes.first == UInt8(ascii: "<") else { return nil }
    var digits = 0
    while digits < 3, 1 + digits < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[1 + digits]) { digits += 1 }
    guard digits > 0, 1 + digits < bytes.count, bytes[1 + digits] == UInt8(ascii: ">") else { return nil }
    let value = bytes[1...digits].reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    return value <= 191 ? value : nil
}

@main
enum SyslogPriorityFuzzer {
    static func main() { FuzzDriver.run(fuzzSyslogPriority) }
}
