import Testing

@testable import FerryCore

struct SyslogParserRFC3164Tests {
    /// RFC 3164 §5.4, example 1, and `logger --rfc3164 -i` (util-linux 2.38).
    @Test(
        arguments: [
            (
                "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8", 34, "2026-10-11T22:14:15Z", "mymachine", "su", nil,
                "'su root' failed for lonvick on /dev/pts/8"
            ),
            ("<35>Dec  7 18:42:41 vm myapp[20778]: failed password", 35, "2026-12-07T18:42:41Z", "vm", "myapp", "20778", "failed password"),
            ("<13>Dec  7 18:42:41 vm root: no tag given", 13, "2026-12-07T18:42:41Z", "vm", "root", nil, "no tag given"),
        ] as [(String, Int, String, String, String, String?, String)])
    func readsTheRFCAndLoggerForms(text: String, priority: Int, utc: String, host: String, app: String, pid: String?, message: String) {
        let line = ParsedLine.parse(text)
        #expect(line.outcome == .rfc3164)
        #expect(line.priority == priority)
        #expect(line.timestamp == ParsedLine.nanoseconds(utc))
        #expect(line.hostname == host)
        #expect(line.appName == app)
        #expect(line.procID == pid)
        #expect(line.msgID == nil && line.structuredData == nil)
        #expect(line.messageText == message)
    }

    /// Example 2: a hostname (an address) and then no tag: the message starts after the hostname.
    @Test func aLineWithoutATagIsMessageAfterTheHostname() {
        let line = ParsedLine.parse("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!")
        #expect(line.outcome == .rfc3164)
        #expect(line.timestamp == ParsedLine.nanoseconds("2026-02-05T17:32:18Z"))
        #expect(line.hostname == "10.0.0.99")
        #expect(line.appName == nil)
        #expect(line.messageText == "Use the BFG!")
    }

    /// Example 3: as the RFC says a relay reads it, "CST" is the hostname and the content starts at "1987".
    @Test func readsTheThirdExampleAsTheRFCSaysARelayWould() {
        let line = ParsedLine.parse("<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time to make the do-nuts.")
        #expect(line.outcome == .rfc3164)
        #expect(line.hostname == "CST")
        #expect(line.messageText == "1987 mymachine myproc[10]: %% It's time to make the do-nuts.")
    }

    /// Example 4 and a key=value firewall line: a PRI but no timestamp, so the rest is all message (§4.3.2).
    @Test(arguments: [
        ("<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!", 0),
        (#"<189>date=2026-12-07 time=18:42:41 devname="FGT60F" logid="0000000013" type="traffic""#, 189),
        ("<13>hello", 13),
    ])
    func aPriWithoutTimestampMakesTheRestTheMessage(text: String, priority: Int) {
        let line = ParsedLine.parse(text)
        #expect(line.outcome == .rfc3164)
        #expect(line.priority == priority)
        #expect(line.timestamp == nil && line.timestampText == nil && line.hostname == nil && line.appName == nil)
        #expect(line.messageText == String(text.drop { $0 != ">" }.dropFirst()))
    }

    /// What glibc's `syslog()` writes to /dev/log, and so what a local relay gets: no hostname.
    @Test(
        arguments: [
            ("<13>Dec  7 18:42:41 myapp[123]: hello", "myapp", "123", "hello"),
            ("<86>Dec  7 18:42:41 sshd[4321]: Accepted publickey for root", "sshd", "4321", "Accepted publickey for root"),
            ("<14>Dec  7 18:42:41 kernel: [ 12.345678] usb 1-1: new device", "kernel", nil, "[ 12.345678] usb 1-1: new device"),
            ("<78>Dec  7 18:42:41 /usr/sbin/cron[99]: (root) CMD (run-parts)", "/usr/sbin/cron", "99", "(root) CMD (run-parts)"),
        ] as [(String, String, String?, String)])
    func readsLinesWithoutHostname(text: String, app: String, pid: String?, message: String) {
        let line = ParsedLine.parse(text)
        #expect(line.outcome == .rfc3164)
        #expect(line.hostname == nil)
        #expect(line.appName == app)
        #expect(line.procID == pid)
        #expect(line.messageText == message)
    }

    /// `TAG[PID]` without the colon, and an empty PID.
    @Test func readsTagVariants() {
        let noColon = ParsedLine.parse("<13>Dec  7 18:42:41 host app[7] started")
        #expect(noColon.appName == "app" && noColon.procID == "7" && noColon.messageText == "started")
        let emptyPID = ParsedLine.parse("<13>Dec  7 18:42:41 host app[]: x")
        #expect(emptyPID.appName == "app" && emptyPID.procID == nil && emptyPID.messageText == "x")
        let colonOnly = ParsedLine.parse("<13>Dec  7 18:42:41 host : x")
        #expect(colonOnly.appName == nil && colonOnly.messageText == ": x")
        let noSpace = ParsedLine.parse("<13>Dec  7 18:42:41 host app:")
        #expect(noSpace.appName == "app" && noSpace.message.isEmpty)
    }

    /// High-precision and ISO 8601 timestamps (rsyslog's `RSYSLOG_ForwardFormat`, syslog-ng's `ts-format(iso)`).
    @Test(arguments: [
        ("<30>2026-12-07T18:42:41.123456+01:00 web-01 nginx[812]: GET /", "2026-12-07T17:42:41Z", Int64(123_456_000)),
        ("<30>2026-12-07T18:42:41Z web-01 nginx[812]: GET /", "2026-12-07T18:42:41Z", 0),
        ("<30>2026-12-07T18:42:41.5 web-01 nginx[812]: GET /", "2026-12-07T18:42:41Z", 500_000_000),
    ])
    func readsISO8601Timestamps(text: String, utc: String, fraction: Int64) {
        let line = ParsedLine.parse(text)
        #expect(line.outcome == .rfc3164)
        #expect(line.timestamp == ParsedLine.nanoseconds(utc, fraction: fraction))
        #expect(line.hostname == "web-01" && line.appName == "nginx" && line.procID == "812")
        #expect(line.messageText == "GET /")
    }

    /// Network devices: Cisco's fraction and trailing colon, its year after the day, a single-digit day, lower case.
    @Test func readsNetworkDeviceTimestamps() {
        let cisco = ParsedLine.parse("<189>Dec  7 18:42:41.123: %SYS-5-CONFIG_I: Configured from console by vty0")
        #expect(cisco.outcome == .rfc3164)
        #expect(cisco.timestamp == ParsedLine.nanoseconds("2026-12-07T18:42:41Z", fraction: 123_000_000))
        #expect(cisco.timestampText == "Dec  7 18:42:41.123")
        #expect(cisco.hostname == nil && cisco.appName == "%SYS-5-CONFIG_I")
        #expect(cisco.messageText == "Configured from console by vty0")

        let withYear = ParsedLine.parse("<187>Jan 15 2024 03:04:05: %LINK-3-UPDOWN: Interface Gi0/1, changed state to down")
        #expect(withYear.timestamp == ParsedLine.nanoseconds("2024-01-15T03:04:05Z"))
        #expect(withYear.appName == "%LINK-3-UPDOWN")

        let oneDigit = ParsedLine.parse("<13>dec 7 18:42:41 host app: x")
        #expect(oneDigit.timestamp == ParsedLine.nanoseconds("2026-12-07T18:42:41Z"))
        let zeroPadded = ParsedLine.parse("<13>Dec 07 18:42:41 host app: x")
        #expect(zeroPadded.timestamp == oneDigit.timestamp && zeroPadded.hostname == "host")
    }

    /// A log file's lines, or a sender that leaves the PRI out (vector#5441): read, with no priority.
    @Test func readsLinesWithoutPri() {
        let line = ParsedLine.parse("Dec  8 16:48:11 node-01 auditd[38707]: Audit daemon rotating log files")
        #expect(line.outcome == .rfc3164)
        #expect(line.priority == nil)
        #expect(line.timestamp == ParsedLine.nanoseconds("2026-12-08T16:48:11Z"))
        #expect(line.hostname == "node-01" && line.appName == "auditd" && line.procID == "38707")
        #expect(line.messageText == "Audit daemon rotating log files")
    }

    /// IPv6 addresses are hostnames too.
    @Test func anIPv6AddressIsAHostname() {
        let line = ParsedLine.parse("<13>Dec  7 18:42:41 2001:db8::1 app[1]: x")
        #expect(line.hostname == "2001:db8::1" && line.appName == "app")
    }

    /// The time zone setting places BSD timestamps; a named zone follows daylight saving time.
    @Test func theTimeZoneSettingPlacesTimestamps() throws {
        let india = SyslogParser(timeZone: try #require(SyslogTimeZone(named: "+05:30")))
        #expect(ParsedLine.parse("<13>Dec  7 18:42:41 h a: x", parser: india).timestamp == ParsedLine.nanoseconds("2026-12-07T13:12:41Z"))
        let berlin = SyslogParser(timeZone: try #require(SyslogTimeZone(named: "Europe/Berlin")))
        let summer = ParsedLine.parse("<13>Jul  1 12:00:00 h a: x", receivedAt: ParsedLine.nanoseconds("2026-07-01T10:00:05Z"), parser: berlin)
        #expect(summer.timestamp == ParsedLine.nanoseconds("2026-07-01T10:00:00Z"))
        let winter = ParsedLine.parse("<13>Dec  7 12:00:00 h a: x", parser: berlin)
        #expect(winter.timestamp == ParsedLine.nanoseconds("2026-12-07T11:00:00Z"))
        // An ISO timestamp with its own offset keeps it.
        let iso = ParsedLine.parse("<13>2026-12-07T12:00:00Z h a: x", parser: berlin)
        #expect(iso.timestamp == ParsedLine.nanoseconds("2026-12-07T12:00:00Z"))
    }
}
