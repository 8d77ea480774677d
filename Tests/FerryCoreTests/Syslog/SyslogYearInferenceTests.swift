import Testing

@testable import FerryCore

/// RFC 3164 timestamps carry no year: it is taken from the receive time, across New Year both ways.
struct SyslogYearInferenceTests {
    private func timestamp(_ stamp: String, receivedAt: String, zone: String = "UTC") -> Int64? {
        let parser = SyslogParser(timeZone: SyslogTimeZone(named: zone)!)
        return ParsedLine.parse("<13>\(stamp) host app: m", receivedAt: ParsedLine.nanoseconds(receivedAt), parser: parser).timestamp
    }

    @Test(arguments: [
        // Sent just before midnight on New Year's Eve, received just after (rsyslog#4765): last year.
        ("Dec 31 23:59:59", "2027-01-01T00:00:01Z", "2026-12-31T23:59:59Z"),
        // Sent just after midnight by a clock a little ahead, received just before: next year.
        ("Jan  1 00:00:05", "2026-12-31T23:59:58Z", "2027-01-01T00:00:05Z"),
        // A December log delivered late in January.
        ("Dec 20 10:00:00", "2027-01-15T00:00:00Z", "2026-12-20T10:00:00Z"),
        ("Mar  1 00:00:00", "2026-06-15T00:00:00Z", "2026-03-01T00:00:00Z"),
        // Up to a month ahead of the receive time stays in its year; further ahead is last year's.
        ("Feb  1 00:00:00", "2026-01-15T00:00:00Z", "2026-02-01T00:00:00Z"),
        ("Mar  1 00:00:00", "2026-01-15T00:00:00Z", "2025-03-01T00:00:00Z"),
        ("Dec  8 16:48:11", "2026-12-07T18:00:00Z", "2026-12-08T16:48:11Z"),
        // 29 February goes to a year that has one.
        ("Feb 29 12:00:00", "2028-03-01T00:00:00Z", "2028-02-29T12:00:00Z"),
        ("Feb 29 12:00:00", "2029-01-10T00:00:00Z", "2028-02-29T12:00:00Z"),
    ])
    func infersTheYearFromTheReceiveTime(stamp: String, receivedAt: String, expected: String) {
        #expect(timestamp(stamp, receivedAt: receivedAt) == ParsedLine.nanoseconds(expected))
    }

    /// No year around the receive time has 29 February: the line is read, without a time.
    @Test func aTwentyNinthOfFebruaryWithoutALeapYearNearbyHasNoTime() {
        let line = ParsedLine.parse("<13>Feb 29 12:00:00 host app: m", receivedAt: ParsedLine.nanoseconds("2026-06-01T00:00:00Z"))
        #expect(line.outcome == .rfc3164 && line.timestamp == nil && line.timestampText == "Feb 29 12:00:00" && line.hostname == "host")
    }

    /// The turn of the year is the configured zone's: in UTC+14 the new year starts ten hours before UTC's day does.
    @Test func newYearIsTheConfiguredZones() {
        // 2026-12-31T10:30Z is 2027-01-01 00:30 in +14:00: a log "Jan  1 00:20:00" is from ten minutes ago.
        #expect(timestamp("Jan  1 00:20:00", receivedAt: "2026-12-31T10:30:00Z", zone: "+14:00") == ParsedLine.nanoseconds("2026-12-31T10:20:00Z"))
        // In -10:00 it is still 31 December 14:05 when UTC's new year has begun: "Dec 31 23:50:00" is that local day's.
        #expect(timestamp("Dec 31 23:50:00", receivedAt: "2027-01-01T00:05:00Z", zone: "-10:00") == ParsedLine.nanoseconds("2027-01-01T09:50:00Z"))
    }

    @Test func timeZoneNamesAndOffsets() {
        #expect(SyslogTimeZone(named: "UTC") == .utc)
        #expect(SyslogTimeZone(named: "+01:00")?.offset(atUTC: 0) == 3600)
        #expect(SyslogTimeZone(named: "-0530")?.offset(atUTC: 0) == -19_800)
        #expect(SyslogTimeZone(named: "+01:00")?.description == "+01:00")
        #expect(SyslogTimeZone(named: "-0530")?.description == "-05:30")
        #expect(SyslogTimeZone(named: "+19:00") == nil)
        #expect(SyslogTimeZone(named: "+1:00") == nil)
        #expect(SyslogTimeZone(named: "Mars/Olympus_Mons") == nil)
        let newYork = SyslogTimeZone(named: "America/New_York")
        #expect(newYork?.offset(atUTC: ParsedLine.nanoseconds("2026-07-01T00:00:00Z") / 1_000_000_000) == -4 * 3600)
        #expect(newYork?.offset(atUTC: ParsedLine.nanoseconds("2026-12-01T00:00:00Z") / 1_000_000_000) == -5 * 3600)
    }

    /// Around daylight-saving changes a named zone reads skipped and repeated local times one way each.
    @Test func daylightSavingGapsAndRepeats() throws {
        let berlin = try #require(SyslogTimeZone(named: "Europe/Berlin"))
        func utc(_ local: String) -> Int64 { berlin.utc(fromLocal: ParsedLine.nanoseconds(local) / 1_000_000_000) * 1_000_000_000 }
        #expect(utc("2026-03-29T01:30:00Z") == ParsedLine.nanoseconds("2026-03-29T00:30:00Z"))
        #expect(utc("2026-03-29T02:30:00Z") == ParsedLine.nanoseconds("2026-03-29T01:30:00Z"))  // skipped: read at +01:00
        #expect(utc("2026-03-29T03:30:00Z") == ParsedLine.nanoseconds("2026-03-29T01:30:00Z"))
        #expect(utc("2026-10-25T01:30:00Z") == ParsedLine.nanoseconds("2026-10-24T23:30:00Z"))
        #expect(utc("2026-10-25T02:30:00Z") == ParsedLine.nanoseconds("2026-10-25T01:30:00Z"))  // repeated: the second, +01:00
        #expect(utc("2026-10-25T03:30:00Z") == ParsedLine.nanoseconds("2026-10-25T02:30:00Z"))
    }

    /// The calendar arithmetic agrees with Foundation's reading of RFC 3339 over four centuries of first days.
    @Test func civilDatesAgreeWithFoundation() {
        for year in stride(from: 1700, through: 2200, by: 7) {
            for month in [1, 2, 3, 12] {
                let text = String(format: "%04d-%02d-01T00:00:00Z", year, month)
                let days = SyslogTimestamp.daysFromCivil(year: year, month: month, day: 1)
                #expect(Int64(days) * 86_400 * 1_000_000_000 == ParsedLine.nanoseconds(text), "\(text)")
                #expect(SyslogTimestamp.year(ofDays: days) == year && SyslogTimestamp.year(ofDays: days - 1) == (month == 1 ? year - 1 : year))
            }
        }
    }
}
