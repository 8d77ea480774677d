extension SyslogTimestamp {
    /// How far past the receive time an RFC 3164 timestamp may lie before it is
    /// taken to be from the year before: a month, so a clock that runs a little
    /// fast keeps its year and only the turn of the year changes one.
    static let yearInferenceFutureSeconds: Int64 = 31 * 86_400

    /// `Mmm dd hh:mm:ss[.frac]` at `start` (RFC 3164 §4.1.2: month names in any
    /// case, the day space- or zero-padded or a single digit, and, as Cisco
    /// writes it, an optional year after the day), ending at `end` or a space.
    ///
    /// The line carries no year: it is the year, of the three around the
    /// receive time, that puts the time latest but not more than a month after
    /// it (`Dec 31 23:59:59` received on 1 January is last year's; `Jan  1
    /// 00:00:01` received on 31 December is next year's). Nil when the bytes are
    /// not such a timestamp; a reading without value for 29 February when none
    /// of those years has one.
    static func rfc3164(_ bytes: UnsafeRawBufferPointer, at start: Int, end: Int, zone: SyslogTimeZone, receivedAt: Int64) -> Reading? {
        guard start + 14 <= end, let month = month(bytes, at: start), bytes[start + 3] == UInt8(ascii: " ") else { return nil }
        var position = start + 4
        if bytes[position] == UInt8(ascii: " ") { position += 1 }
        guard position < end else { return nil }
        var day = Int(bytes[position] &- UInt8(ascii: "0"))
        guard day < 10 else { return nil }
        position += 1
        if position < end, case let digit = bytes[position] &- UInt8(ascii: "0"), digit < 10 {
            day = day * 10 + Int(digit)
            position += 1
        }
        guard day >= 1, day <= daysInMonth(year: 2000, month: month), position < end, bytes[position] == UInt8(ascii: " ") else { return nil }
        position += 1
        var year: Int?
        if position + 5 <= end, bytes[position + 4] == UInt8(ascii: " "), let written = digits(bytes, position, 4, end: end) {
            year = written
            position += 5
        }
        guard let clock = timeOfDay(bytes, at: position, end: end), let (fractionNanoseconds, afterFraction) = fraction(bytes, position + 8, end: end)
        else { return nil }
        position = afterFraction
        guard position == end || bytes[position] == UInt8(ascii: " ") || bytes[position] == UInt8(ascii: ":") else { return nil }
        let seconds: Int64?
        if let year {
            seconds =
                day <= daysInMonth(year: year, month: month)
                ? zone.utc(fromLocal: Int64(daysFromCivil(year: year, month: month, day: day)) * 86_400 + Int64(clock)) : nil
        } else {
            seconds = inferYear(month: month, day: day, secondOfDay: clock, zone: zone, receivedAt: receivedAt)
        }
        return Reading(nanoseconds: seconds.flatMap { nanoseconds(seconds: $0, fraction: fractionNanoseconds) }, end: position)
    }

    /// UTC seconds of a month, day and time without a year, placed by the receive time (see ``rfc3164(_:at:end:zone:receivedAt:)``).
    static func inferYear(month: Int, day: Int, secondOfDay: Int, zone: SyslogTimeZone, receivedAt: Int64) -> Int64? {
        let receivedSeconds = receivedAt / 1_000_000_000
        let localDays = (receivedSeconds + zone.offset(atUTC: receivedSeconds)) / 86_400
        let receivedYear = year(ofDays: Int(localDays))
        let latest = receivedSeconds + yearInferenceFutureSeconds
        for step in 0..<3 {
            let candidate = receivedYear + 1 - step
            guard day <= daysInMonth(year: candidate, month: month) else { continue }
            let local = Int64(daysFromCivil(year: candidate, month: month, day: day)) * 86_400 + Int64(secondOfDay)
            let utc = zone.utc(fromLocal: local)
            if utc <= latest { return utc }
        }
        return nil
    }

    /// A three-letter English month name, any case: 1–12.
    @inline(__always)
    static func month(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Int? {
        let name = UInt32(bytes[index] | 0x20) << 16 | UInt32(bytes[index + 1] | 0x20) << 8 | UInt32(bytes[index + 2] | 0x20)
        switch name {
        case 0x6A_616E: return 1  // jan
        case 0x66_6562: return 2  // feb
        case 0x6D_6172: return 3  // mar
        case 0x61_7072: return 4  // apr
        case 0x6D_6179: return 5  // may
        case 0x6A_756E: return 6  // jun
        case 0x6A_756C: return 7  // jul
        case 0x61_7567: return 8  // aug
        case 0x73_6570: return 9  // sep
        case 0x6F_6374: return 10  // oct
        case 0x6E_6F76: return 11  // nov
        case 0x64_6563: return 12  // dec
        default: return nil
        }
    }
}
