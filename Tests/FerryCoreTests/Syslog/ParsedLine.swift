import Foundation
import NIOCore

@testable import FerryCore

/// A parsed line with its fields as strings, so tests compare what a reader would see.
struct ParsedLine: Equatable {
    var outcome: SyslogParseOutcome
    var priority: Int?
    var timestamp: Int64?
    var timestampText: String?
    var hostname: String?
    var appName: String?
    var procID: String?
    var msgID: String?
    var structuredData: String?
    var message: [UInt8]
    var messageHasBOM: Bool

    var messageText: String { String(decoding: message, as: UTF8.self) }

    /// 2026-12-07T18:00:00Z, the receive time unless a test gives one.
    static let receivedAt = nanoseconds("2026-12-07T18:00:00Z")

    static func parse(_ text: String, receivedAt: Int64 = receivedAt, parser: SyslogParser = SyslogParser()) -> ParsedLine {
        parse(Array(text.utf8), receivedAt: receivedAt, parser: parser)
    }

    static func parse(_ bytes: [UInt8], receivedAt: Int64 = receivedAt, parser: SyslogParser = SyslogParser()) -> ParsedLine {
        bytes.withUnsafeBytes { line in
            let parsed = parser.parse(line, receivedAt: receivedAt)
            func text(_ field: SyslogField?) -> String? {
                field.map { String(decoding: parsed.bytes($0, in: line), as: UTF8.self) }
            }
            return ParsedLine(
                outcome: parsed.outcome, priority: parsed.priority?.value, timestamp: parsed.timestamp, timestampText: text(parsed.timestampText),
                hostname: text(parsed.hostname), appName: text(parsed.appName), procID: text(parsed.procID), msgID: text(parsed.msgID),
                structuredData: text(parsed.structuredData), message: Array(parsed.bytes(parsed.message, in: line)),
                messageHasBOM: parsed.messageHasBOM)
        }
    }

    /// An RFC 3339 time as nanoseconds since the epoch, read by Foundation (not by the code under test).
    static func nanoseconds(_ text: String, fraction: Int64 = 0) -> Int64 {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        guard let date = formatter.date(from: text) else { fatalError("not an RFC 3339 time: \(text)") }
        return Int64(date.timeIntervalSince1970.rounded()) * 1_000_000_000 + fraction
    }
}
