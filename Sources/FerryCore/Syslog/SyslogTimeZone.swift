import Foundation

/// The time zone in which timestamps without an offset are read (RFC 3164's
/// `Mmm dd hh:mm:ss`, and ISO 8601 without one): UTC unless configured.
///
/// A named zone's offsets are looked up once, when it is made, into a table of
/// transitions, so converting a time on the data path is a binary search with
/// no Foundation call and no allocation.
public struct SyslogTimeZone: Sendable, Equatable, CustomStringConvertible {
    /// The name or offset it was made from.
    public let description: String
    /// UTC seconds at which `offsets[i + 1]` starts; `offsets[0]` holds before the first.
    private let transitions: [Int64]
    private let offsets: [Int32]

    public static let utc = SyslogTimeZone(description: "UTC", transitions: [], offsets: [0])

    private init(description: String, transitions: [Int64], offsets: [Int32]) {
        self.description = description
        self.transitions = transitions
        self.offsets = offsets
    }

    /// A fixed offset east of UTC, in seconds (−18 hours to +18 hours).
    public static func fixed(secondsEastOfUTC seconds: Int) -> SyslogTimeZone? {
        guard abs(seconds) <= 18 * 3600 else { return nil }
        let sign = seconds < 0 ? "-" : "+"
        let minutes = abs(seconds) / 60
        let name = sign + String(minutes / 600) + String(minutes / 60 % 10) + ":" + String(minutes % 60 / 10) + String(minutes % 10)
        return SyslogTimeZone(description: name, transitions: [], offsets: [Int32(seconds)])
    }

    /// `UTC`, an offset (`+01:00`, `-0530`), or an IANA name (`Europe/Berlin`) from the system's zone database.
    public init?(named name: String) {
        if name == "UTC" || name == "Z" || name == "GMT" {
            self = .utc
            return
        }
        if let first = name.utf8.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
            let digits = name.utf8.dropFirst().filter { $0 != UInt8(ascii: ":") }
            guard digits.count == 4 || digits.count == 2, digits.allSatisfy({ (48...57).contains($0) }) else { return nil }
            let values = digits.map { Int($0) - 48 }
            let hours = values[0] * 10 + values[1]
            let minutes = values.count == 4 ? values[2] * 10 + values[3] : 0
            guard minutes < 60, let zone = Self.fixed(secondsEastOfUTC: (first == UInt8(ascii: "-") ? -1 : 1) * (hours * 3600 + minutes * 60))
            else { return nil }
            self = zone
            return
        }
        guard let zone = TimeZone(identifier: name) else { return nil }
        // Transitions from 1970 to 2100: the range year inference and real log timestamps need.
        var transitions: [Int64] = []
        var offsets: [Int32] = [Int32(zone.secondsFromGMT(for: Date(timeIntervalSince1970: 0)))]
        var instant = Date(timeIntervalSince1970: 0)
        let end = Date(timeIntervalSince1970: 4_102_444_800)
        while let next = zone.nextDaylightSavingTimeTransition(after: instant), next < end, transitions.count < 1_000 {
            transitions.append(Int64(next.timeIntervalSince1970.rounded()))
            offsets.append(Int32(zone.secondsFromGMT(for: next)))
            instant = next
        }
        self.init(description: name, transitions: transitions, offsets: offsets)
    }

    /// The offset east of UTC, in seconds, at `utcSeconds`.
    @inline(__always)
    public func offset(atUTC utcSeconds: Int64) -> Int64 {
        guard !transitions.isEmpty else { return Int64(offsets[0]) }
        var low = 0
        var high = transitions.count
        while low < high {
            let middle = (low + high) / 2
            if transitions[middle] <= utcSeconds { low = middle + 1 } else { high = middle }
        }
        return Int64(offsets[low])
    }

    /// The UTC seconds of a local wall-clock time. A time that a change to summer time skips is read with
    /// the offset before the change; one that the change back repeats, as the second of the two.
    @inline(__always)
    public func utc(fromLocal localSeconds: Int64) -> Int64 {
        guard !transitions.isEmpty else { return localSeconds - Int64(offsets[0]) }
        let guess = localSeconds - offset(atUTC: localSeconds - Int64(offsets[0]))
        return localSeconds - offset(atUTC: guess)
    }
}
