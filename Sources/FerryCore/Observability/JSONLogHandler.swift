import Foundation
import Logging

/// A swift-log handler that writes one JSON object per line (JSON Lines).
///
/// Each line has `time` (RFC 3339, microseconds, UTC), `level`, `message`
/// (a constant text), `logger` (the label) and every metadata key as given
/// (dotted keys such as `upstream` or `drop.reason` stay flat). With a
/// metadata provider, trace ids arrive as `trace_id` and `span_id`.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level
    private let label: String
    private let writer: LogWriter
    private let format: FerryConfiguration.LogFormat

    public init(
        label: String, level: Logger.Level, format: FerryConfiguration.LogFormat, writer: LogWriter, metadataProvider: Logger.MetadataProvider? = nil
    ) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.writer = writer
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() {
            merged.merge(provided) { _, new in new }
        }
        if let extra = event.metadata {
            merged.merge(extra) { _, new in new }
        }
        let time = LogTimestamp.now()
        let line: String
        switch format {
        case .json:
            line = Self.jsonLine(time: time, level: event.level, message: event.message.description, label: label, metadata: merged)
        case .text:
            line = Self.textLine(time: time, level: event.level, message: event.message.description, label: label, metadata: merged)
        }
        writer.enqueue(Array(line.utf8))
    }

    static func jsonLine(time: String, level: Logger.Level, message: String, label: String, metadata: Logger.Metadata) -> String {
        var out = "{\"time\":\"\(time)\",\"level\":\"\(level.rawValue)\",\"message\":"
        JSONString.append(message, to: &out)
        out += ",\"logger\":"
        JSONString.append(label, to: &out)
        for key in metadata.keys.sorted() {
            out += ","
            JSONString.append(key, to: &out)
            out += ":"
            JSONString.append(metadata[key]!, to: &out)
        }
        out += "}\n"
        return out
    }

    static func textLine(time: String, level: Logger.Level, message: String, label: String, metadata: Logger.Metadata) -> String {
        var out = "\(time) \(level.rawValue.uppercased()) \(label): \(message)"
        for key in metadata.keys.sorted() {
            out += " \(key)=\(metadata[key]!)"
        }
        out += "\n"
        return out
    }
}

/// JSON string and value encoding for log lines (no Foundation encoder on the logging path).
enum JSONString {
    static func append(_ string: String, to out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    static func append(_ value: Logger.MetadataValue, to out: inout String) {
        switch value {
        case .string(let string): append(string, to: &out)
        case .stringConvertible(let convertible): append(convertible.description, to: &out)
        case .array(let array):
            out += "["
            for (index, element) in array.enumerated() {
                if index > 0 { out += "," }
                append(element, to: &out)
            }
            out += "]"
        case .dictionary(let dictionary):
            out += "{"
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                append(key, to: &out)
                out += ":"
                append(dictionary[key]!, to: &out)
            }
            out += "}"
        }
    }
}

/// RFC 3339 timestamps in UTC with microseconds (`2026-11-25T03:39:06.123456Z`).
enum LogTimestamp {
    static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = time_t(spec.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let micros = Int(spec.tv_nsec) / 1000
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let microText = String(micros)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + String(repeating: "0", count: 6 - microText.count) + microText + "Z"
    }
}
