/// One configuration key: its name, flag, environment variable, default, allowed values and help, written once.
///
/// Every key is a static member (`ConfigurationKey.tcpIdleTimeout`, in `ConfigurationKey+Definitions.swift`)
/// and ``FerryConfiguration/keys`` lists them in the order `check-config` prints them. From the definition come
/// the `ferry serve` flag with its help text and shown default (`ConfigOptions`), the value the reader uses
/// when no source sets the key, the range it checks and the error it throws (``ConfigValues``), and the
/// table of docs/configuration.md (``ConfigurationReference``).
public struct ConfigurationKey: Sendable, Hashable, CustomStringConvertible {
    /// Dotted key as used in files (`queue.capacity-logs`).
    public let name: String
    /// Long flag without dashes (`queue-capacity-logs`).
    public let flag: String
    /// What a value may be; the reader checks it.
    public let allowed: Allowed
    /// The value used when no source sets the key, written as a file would write it (`600s`, `16MiB`);
    /// nil when unset means something (off, none, derived).
    public let defaultValue: String?
    /// What the default means, shown beside it (`from the file-descriptor limit`), or instead of it when unset.
    public let defaultNote: String?
    /// What the value means, one plain-text phrase: `--help` shows it, the reference starts with it.
    public let help: String
    /// More for the reference only (markdown: links, metric names), after ``help``.
    public let details: String?

    /// What a key's value may be.
    public enum Allowed: Sendable {
        /// A whole number in the range.
        case integer(ClosedRange<Int>)
        /// A number in the range.
        case decimal(ClosedRange<Double>)
        /// A size in bytes in the range, with optional `KiB`, `MiB`, `GiB` suffix.
        case byteSize(ClosedRange<Int>)
        /// A duration in the range: seconds, or with an `us`, `ms` or `s` suffix.
        case duration(ClosedRange<Duration>)
        /// `true` or `false` (also on/off, yes/no, 1/0).
        case boolean
        /// One of these words (case does not matter).
        case choice([String])
        /// Text the reader parses itself; the string says what is allowed.
        case text(String)
        /// A list: a YAML or JSON array, comma-separated in the environment, a repeated flag; the string says what each item may be.
        case list(String)
    }

    public init(
        _ name: String, flag: String? = nil, _ allowed: Allowed, default defaultValue: String? = nil, defaultNote: String? = nil,
        help: String, details: String? = nil
    ) {
        self.name = name
        self.flag = flag ?? name.replacingDots()
        self.allowed = allowed
        self.defaultValue = defaultValue
        self.defaultNote = defaultNote
        self.help = help
        self.details = details
    }

    /// `FERRY_` plus the key in upper case with `.` and `-` as `_`.
    public var environmentVariable: String { Self.environmentVariable(for: name) }

    /// The environment variable of a key name (also of names that are not keys, for warnings).
    public static func environmentVariable(for name: String) -> String {
        "FERRY_" + name.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }.map(String.init).joined()
    }

    /// Whether the key takes a list (a repeated flag, a comma-separated variable).
    public var isList: Bool {
        if case .list = allowed { return true }
        return false
    }

    /// The default as `--help` and the reference show it: the value, its note, or both.
    public var shownDefault: String {
        switch (defaultValue, defaultNote) {
        case (let value?, let note?): "\(value) (\(note))"
        case (let value?, nil): value
        case (nil, let note?): note
        case (nil, nil): "none"
        }
    }

    /// The flag's help text: what the value means, what is allowed, the key and its default.
    public var helpLine: String {
        var range = allowed.summary.map { " (\($0))" } ?? ""
        if case .list(let items) = allowed { range = " (\(items); repeatable)" }
        return "\(help.prefix(1).uppercased())\(help.dropFirst())\(range). Key \(name), default: \(shownDefault)."
    }

    public var description: String { name }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.name == rhs.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }
}

extension ConfigurationKey.Allowed {
    /// What an error message says is allowed (the texts `ferry` has always printed).
    public var description: String {
        switch self {
        case .integer(let range): "a whole number in \(range.lowerBound)...\(range.upperBound)"
        case .decimal(let range): "a number in \(range.lowerBound)...\(range.upperBound)"
        case .byteSize(let range): "a size in bytes in \(range.lowerBound)...\(range.upperBound) (suffixes KiB, MiB, GiB allowed)"
        case .duration(let range): "a duration from \(range.lowerBound) to \(range.upperBound): a number of seconds, or with suffix ms or s"
        case .boolean: "true or false (also on/off, yes/no, 1/0)"
        case .choice(let words): words.joined(separator: ", ")
        case .text(let allowed), .list(let allowed): allowed
        }
    }

    /// The range or the choices in a few characters, as a value would be written (`1s...86400s`); nil for text and lists.
    public var summary: String? {
        switch self {
        case .integer(let range): "\(range.lowerBound)...\(range.upperBound)"
        case .decimal(let range): "\(Self.number(range.lowerBound))...\(Self.number(range.upperBound))"
        case .byteSize(let range): "\(Self.bytes(range.lowerBound))...\(Self.bytes(range.upperBound))"
        case .duration(let range): "\(Self.duration(range.lowerBound))...\(Self.duration(range.upperBound))"
        case .boolean: "true or false"
        case .choice(let words): words.dropLast().joined(separator: ", ") + (words.count > 1 ? " or " : "") + (words.last ?? "")
        case .text, .list: nil
        }
    }

    static func number(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    static func bytes(_ value: Int) -> String {
        for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] where value >= 1 << shift && value % (1 << shift) == 0 {
            return "\(value >> shift)\(unit)"
        }
        return String(value)
    }

    static func duration(_ value: Duration) -> String {
        let (seconds, attoseconds) = value.components
        let microseconds = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        if microseconds % 1_000_000 == 0 { return "\(microseconds / 1_000_000)s" }
        if microseconds % 1_000 == 0 { return "\(microseconds / 1_000)ms" }
        return "\(microseconds)us"
    }
}

extension String {
    fileprivate func replacingDots() -> String {
        String(map { $0 == "." ? "-" : $0 })
    }
}
