/// Reads the timestamps syslog lines carry into nanoseconds since the Unix epoch.
///
/// Plain integer arithmetic on the bytes (civil dates after Howard Hinnant's
/// `days_from_civil`): no calendar object, no allocation.
enum SyslogTimestamp {
    /// A timestamp read at some offset: its value (nil when it does not fit in
    /// nanoseconds since 1970 as an `Int64`, 1677–2262) and the index just past it.
    struct Reading {
        var nanoseconds: Int64?
        var end: Int
    }

    // MARK: Calendar

    static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 to the given proleptic Gregorian date.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let shifted = month <= 2 ? year - 1 : year
        let era = (shifted >= 0 ? shifted : shifted - 399) / 400
        let yearOfEra = shifted - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The year of the date `days` after 1970-01-01.
    static func year(ofDays days: Int) -> Int {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        return yearOfEra + era * 400 + (monthIndex >= 10 ? 1 : 0)
    }

    /// Seconds and a fraction as nanoseconds, nil when outside `Int64`.
    @inline(__always)
    static func nanoseconds(seconds: Int64, fraction: Int64) -> Int64? {
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return nil }
        let (sum, overflow2) = scaled.addingReportingOverflow(fraction)
        return overflow2 ? nil : sum
    }

    // MARK: Digits

    /// `count` ASCII digits at `index` as a number, or nil.
    @inline(__always)
    static func digits(_ bytes: UnsafeRawBufferPointer, _ index: Int, _ count: Int, end: Int) -> Int? {
        guard index + count <= end else { return nil }
        var value = 0
        for offset in 0..<count {
            let digit = bytes[index + offset] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value * 10 + Int(digit)
        }
        return value
    }

    /// `.` and 1 or more digits at `index`: the fraction in nanoseconds (digits past 9 are read and dropped) and its end.
    @inline(__always)
    static func fraction(_ bytes: UnsafeRawBufferPointer, _ index: Int, end: Int) -> (nanoseconds: Int64, end: Int)? {
        guard index < end, bytes[index] == UInt8(ascii: ".") else { return (0, index) }
        var position = index + 1
        var value: Int64 = 0
        var scale: Int64 = 1_000_000_000
        while position < end {
            let digit = bytes[position] &- UInt8(ascii: "0")
            guard digit < 10 else { break }
            if scale > 1 {
                scale /= 10
                value += Int64(digit) * scale
            }
            position += 1
        }
        return position > index + 1 ? (value, position) : nil
    }

    // MARK: RFC 3339 / ISO 8601

    /// `YYYY-MM-DDThh:mm:ss[.frac][Z|±hh:mm|±hhmm|±hh]` at `start`, `T` or `t`
    /// (RFC 3339 §5.6), ending at `end` or a space. Without an offset, the time
    /// is read in `zone`. Nil when it is not such a timestamp or not a real date and time.
    static func rfc3339(_ bytes: UnsafeRawBufferPointer, at start: Int, end: Int, zone: SyslogTimeZone) -> Reading? {
        guard start + 19 <= end,
            let year = digits(bytes, start, 4, end: end), bytes[start + 4] == UInt8(ascii: "-"),
            let month = digits(bytes, start + 5, 2, end: end), bytes[start + 7] == UInt8(ascii: "-"),
            let day = digits(bytes, start + 8, 2, end: end),
            bytes[start + 10] | 0x20 == UInt8(ascii: "t"),
            let clock = timeOfDay(bytes, at: start + 11, end: end)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month),
            let (fractionNanoseconds, afterFraction) = fraction(bytes, start + 19, end: end)
        else { return nil }
        var position = afterFraction
        let local = Int64(daysFromCivil(year: year, month: month, day: day)) * 86_400 + Int64(clock)
        let utc: Int64
        if position < end, bytes[position] | 0x20 == UInt8(ascii: "z") {
            utc = local
            position += 1
        } else if position < end, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
            let sign: Int64 = bytes[position] == UInt8(ascii: "-") ? -1 : 1
            guard let hours = digits(bytes, position + 1, 2, end: end), hours <= 23 else { return nil }
            position += 3
            var minutes = 0
            if position < end, bytes[position] == UInt8(ascii: ":") {
                guard let value = digits(bytes, position + 1, 2, end: end) else { return nil }
                minutes = value
                position += 3
            } else if let value = digits(bytes, position, 2, end: end) {
                minutes = value
                position += 2
            }
            guard minutes <= 59 else { return nil }
            utc = local - sign * Int64(hours * 3600 + minutes * 60)
        } else {
            utc = zone.utc(fromLocal: local)
        }
        guard position == end || bytes[position] == UInt8(ascii: " ") else { return nil }
        return Reading(nanoseconds: nanoseconds(seconds: utc, fraction: fractionNanoseconds), end: position)
    }

    /// `hh:mm:ss` at `index` as seconds of the day (a leap second 60 is allowed).
    @inline(__always)
    static func timeOfDay(_ bytes: UnsafeRawBufferPointer, at index: Int, end: Int) -> Int? {
        guard let hour = digits(bytes, index, 2, end: end), hour <= 23, index + 8 <= end, bytes[index + 2] == UInt8(ascii: ":"),
            let minute = digits(bytes, index + 3, 2, end: end), minute <= 59, bytes[index + 5] == UInt8(ascii: ":"),
            let second = digits(bytes, index + 6, 2, end: end), second <= 60
        else { return nil }
        return hour * 3600 + minute * 60 + second
    }
}
