import NIOCore

/// The severity of a syslog message (RFC 5424 §6.2.1): 0 is the most severe.
public enum SyslogSeverity: Int, CaseIterable, Sendable, Comparable, CustomStringConvertible {
    case emergency = 0
    case alert, critical, error, warning, notice, informational, debug

    /// The name used in configuration, metrics and status (`logger -p` spells them the same way).
    public var description: String {
        switch self {
        case .emergency: return "emerg"
        case .alert: return "alert"
        case .critical: return "crit"
        case .error: return "err"
        case .warning: return "warning"
        case .notice: return "notice"
        case .informational: return "info"
        case .debug: return "debug"
        }
    }

    /// From a name as rsyslog, syslog-ng and `logger` accept them (`warning` or `warn`, `err` or `error`, …) or a number 0–7.
    public init?(name: String) {
        let name = name.lowercased()
        if let number = Int(name), let severity = SyslogSeverity(rawValue: number) {
            self = severity
            return
        }
        switch name {
        case "emerg", "emergency", "panic": self = .emergency
        case "alert": self = .alert
        case "crit", "critical": self = .critical
        case "err", "error": self = .error
        case "warning", "warn": self = .warning
        case "notice": self = .notice
        case "info", "informational": self = .informational
        case "debug": self = .debug
        default: return nil
        }
    }

    public static func < (lhs: SyslogSeverity, rhs: SyslogSeverity) -> Bool { lhs.rawValue < rhs.rawValue }

    static let allowedNames = "emerg, alert, crit, err, warning, notice, info, debug (or 0-7)"
}

/// Syslog facilities (RFC 5424 §6.2.1, with the names rsyslog uses): 24 values, so a label set that stays bounded.
public enum SyslogFacility {
    /// Names by code.
    public static let names = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert", "clock",
        "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
    ]

    /// The code of a facility name (`local3`, `daemon`, `security` for `audit`) or of a number 0–23.
    public static func code(named name: String) -> Int? {
        let name = name.lowercased()
        if let number = Int(name), (0..<names.count).contains(number) { return number }
        if name == "security" { return 13 }
        if name == "console" { return 14 }
        return names.firstIndex(of: name)
    }

    static let allowedNames =
        "kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, audit, alert, clock, local0-local7 (or 0-23)"
}

/// The PRI part (`<165>`) that starts an RFC 5424 or RFC 3164 message: facility × 8 + severity.
///
/// Read in place from the first bytes of the message, never copied and never
/// changed: Ferry forwards the original bytes, PRI included.
public struct SyslogPriority: Sendable, Equatable {
    public var value: Int

    public var severity: SyslogSeverity { SyslogSeverity(rawValue: value & 7)! }
    public var facility: Int { value >> 3 }

    public init?(value: Int) {
        guard (0...191).contains(value) else { return nil }
        self.value = value
    }

    /// The PRI of `message`: `<` then 1 to 3 digits (0–191) then `>`, as its first bytes; nil when it has none.
    @inline(__always)
    public init?(of message: ByteBuffer) {
        let parsed: Int? = message.withUnsafeReadableBytes { bytes in
            guard bytes.count >= 3, bytes[0] == UInt8(ascii: "<") else { return nil }
            var value = 0
            var index = 1
            while index < bytes.count, index <= 4 {
                let byte = bytes[index]
                if byte == UInt8(ascii: ">") { return index > 1 ? value : nil }
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), index <= 3 else { return nil }
                value = value * 10 + Int(byte &- UInt8(ascii: "0"))
                index += 1
            }
            return nil
        }
        guard let parsed, let priority = SyslogPriority(value: parsed) else { return nil }
        self = priority
    }
}
