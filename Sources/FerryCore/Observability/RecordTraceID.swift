import Foundation
import NIOCore

/// Finds the trace id a log carries itself: a JSON log with a `"trace_id"`
/// field (32 hex digits) or a `"traceparent"` (`00-<trace id>-<span id>-<flags>`).
/// Only used for sampled logs, so it may scan.
enum RecordTraceID {
    static func extract(from record: ByteBuffer) -> String? {
        guard let text = record.getString(at: record.readerIndex, length: min(record.readableBytes, 8192)),
            text.first == "{"
        else { return nil }
        if let id = value(after: "\"trace_id\"", in: text, prefixLength: 0) { return id }
        return value(after: "\"traceparent\"", in: text, prefixLength: 3)
    }

    private static func value(after key: String, in text: String, prefixLength: Int) -> String? {
        guard let keyRange = text.range(of: key) else { return nil }
        var rest = text[keyRange.upperBound...].drop { $0 == " " || $0 == ":" }
        guard rest.first == "\"" else { return nil }
        rest = rest.dropFirst().dropFirst(prefixLength)
        let candidate = rest.prefix(32)
        guard candidate.count == 32, candidate.allSatisfy(\.isHexDigit) else { return nil }
        return candidate.lowercased()
    }
}
