import Foundation

/// The events of one trace, gathered from Ferry log files of every hop and put
/// in time order: what `ferry trace` prints.
public struct TraceTimeline: Sendable {
    /// One log line that carries the trace id.
    public struct Event: Sendable, Equatable {
        public var time: String
        public var seconds: Double
        public var instance: String
        public var event: String
        public var level: String
        public var file: String
        public var fields: [String: String]
    }

    public private(set) var events: [Event] = []
    /// Lines that were not JSON (for example, from `--log-format text`).
    public private(set) var unreadableLines = 0

    public init() {}

    /// The files to read for `path`: the file itself and its rotated siblings
    /// (`PATH.1` … newest to oldest), oldest first.
    public static func filesWithRotations(of path: String) -> [String] {
        var files: [String] = []
        var index = 1
        while FileManager.default.fileExists(atPath: "\(path).\(index)") {
            files.append("\(path).\(index)")
            index += 1
        }
        return files.reversed() + (FileManager.default.fileExists(atPath: path) ? [path] : [])
    }

    /// Adds every line of `contents` (read from `file`) whose `trace_id` is `traceID`.
    public mutating func add(contents: String, file: String, traceID: String) {
        let wanted = traceID.lowercased()
        for line in contents.split(separator: "\n") where line.contains(wanted) || line.contains(traceID) {
            guard let data = line.data(using: .utf8),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            else {
                unreadableLines += 1
                continue
            }
            guard (object["trace_id"] as? String)?.lowercased() == wanted else { continue }
            let time = object["time"] as? String ?? ""
            var fields: [String: String] = [:]
            for (key, value) in object where !["time", "level", "message", "logger", "trace_id", "instance"].contains(key) {
                fields[key] = "\(value)"
            }
            events.append(
                Event(
                    time: time, seconds: Self.seconds(fromRFC3339: time) ?? 0,
                    instance: object["instance"] as? String ?? (file as NSString).lastPathComponent,
                    event: object["message"] as? String ?? "", level: object["level"] as? String ?? "", file: file, fields: fields))
        }
        events.sort { $0.seconds < $1.seconds }
    }

    /// Seconds since the epoch of `2026-11-25T03:39:06.123456Z`.
    static func seconds(fromRFC3339 text: String) -> Double? {
        let parts = text.split(whereSeparator: { "-T:Z".contains($0) })
        guard parts.count == 6, let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
            let hour = Int(parts[3]), let minute = Int(parts[4]), let second = Double(parts[5])
        else { return nil }
        // Days from civil (Howard Hinnant's algorithm), UTC.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return Double(days * 86_400 + hour * 3_600 + minute * 60) + second
    }

    /// A table: time, time since the first event, instance, event and details.
    public func renderText() -> String {
        guard let first = events.first else { return "" }
        let width = max(8, events.map(\.instance.count).max() ?? 8)
        var out = "TIME                          +SINCE_FIRST  \("INSTANCE".padding(toLength: width, withPad: " ", startingAt: 0))  EVENT\n"
        for event in events {
            let elapsed = String(format: "+%.6fs", event.seconds - first.seconds)
            let details = event.fields.keys.sorted().map { "\($0)=\(event.fields[$0]!)" }.joined(separator: " ")
            out += "\(event.time.padding(toLength: 29, withPad: " ", startingAt: 0)) \(elapsed.padding(toLength: 13, withPad: " ", startingAt: 0))  "
            out += "\(event.instance.padding(toLength: width, withPad: " ", startingAt: 0))  \(event.event)  \(details)\n"
        }
        return out
    }

    /// JSON Lines, one event per line, with `elapsed_seconds` since the first event.
    public func renderJSON() -> String {
        guard let first = events.first else { return "" }
        var out = ""
        for event in events {
            var object: [String: Any] = [
                "time": event.time, "elapsed_seconds": event.seconds - first.seconds, "instance": event.instance,
                "event": event.event, "level": event.level, "file": event.file,
            ]
            for (key, value) in event.fields { object["field.\(key)"] = value }
            if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
                out += String(decoding: data, as: UTF8.self) + "\n"
            }
        }
        return out
    }
}

extension TraceTimeline {
    /// The lines of `bytes` that are valid UTF-8, joined again, and how many were not.
    /// A log file with one damaged line (a torn write, binary junk) is still read.
    public static func validLines(of bytes: [UInt8]) -> (contents: String, invalid: Int) {
        var valid: [String] = []
        var invalid = 0
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            if let text = String(validating: line, as: UTF8.self) {
                valid.append(text)
            } else {
                invalid += 1
            }
        }
        return (valid.joined(separator: "\n"), invalid)
    }
}
