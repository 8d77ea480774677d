import Testing

@testable import FerryCore

struct SyslogParserRFC5424Tests {
    private let bom = "\u{FEFF}"

    /// RFC 5424 §6.5, example 1: no structured data, a BOM before the message.
    @Test func readsTheFirstExampleOfTheRFC() {
        let line = ParsedLine.parse(
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \(bom)'su root' failed for lonvick on /dev/pts/8")
        #expect(line.outcome == .rfc5424)
        #expect(line.priority == 34)
        #expect(line.timestamp == ParsedLine.nanoseconds("2003-10-11T22:14:15Z", fraction: 3_000_000))
        #expect(line.timestampText == "2003-10-11T22:14:15.003Z")
        #expect(line.hostname == "mymachine.example.com")
        #expect(line.appName == "su")
        #expect(line.procID == nil)
        #expect(line.msgID == "ID47")
        #expect(line.structuredData == nil)
        #expect(line.messageText == "'su root' failed for lonvick on /dev/pts/8")
        #expect(line.messageHasBOM)
    }

    /// Example 2: an offset of -07:00, microseconds, an IPv4 address as hostname, no MSGID.
    @Test func readsTheSecondExampleWithAnOffset() {
        let line = ParsedLine.parse("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.")
        #expect(line.outcome == .rfc5424)
        #expect(line.timestamp == ParsedLine.nanoseconds("2003-08-24T12:14:15Z", fraction: 3_000))
        #expect(line.hostname == "192.0.2.1")
        #expect(line.appName == "myproc")
        #expect(line.procID == "8710")
        #expect(line.msgID == nil)
        #expect(line.messageText == "%% It's time to make the do-nuts.")
        #expect(!line.messageHasBOM)
    }

    /// Examples 3 and 4: one and two SD-ELEMENTs, the last one with no message after it.
    @Test func readsStructuredDataWithAndWithoutAMessage() {
        let sd = #"[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]"#
        let three = ParsedLine.parse(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 \(sd) \(bom)An application event log entry...")
        #expect(three.outcome == .rfc5424)
        #expect(three.structuredData == sd)
        #expect(three.messageText == "An application event log entry...")
        let four = ParsedLine.parse(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 \(sd)[examplePriority@32473 class=\"high\"]")
        #expect(four.outcome == .rfc5424)
        #expect(four.structuredData == sd + #"[examplePriority@32473 class="high"]"#)
        #expect(four.message.isEmpty)
    }

    /// `logger --rfc5424` (util-linux 2.38): its timeQuality element, escapes, UTF-8, a missing hostname.
    @Test func readsWhatLoggerWrites() {
        let escaped = ParsedLine.parse(
            #"<156>1 2026-12-07T18:42:43.706229+00:00 vm myapp - - [timeQuality tzKnown="1" isSynced="0"][exampleSDID@32473 iut="3" eventSource="App\"lic\]ation"] hello ünïcode"#
        )
        #expect(escaped.outcome == .rfc5424)
        #expect(escaped.priority == 156)
        #expect(escaped.timestamp == ParsedLine.nanoseconds("2026-12-07T18:42:43Z", fraction: 706_229_000))
        #expect(escaped.structuredData?.hasSuffix(#"eventSource="App\"lic\]ation"]"#) == true)
        #expect(escaped.messageText == "hello ünïcode")

        let noHost = ParsedLine.parse(#"<13>1 2026-12-07T18:42:41.576675+00:00 - root - ID47 [timeQuality tzKnown="1" isSynced="0"] nohost"#)
        #expect(noHost.hostname == nil)
        #expect(noHost.appName == "root")
        #expect(noHost.msgID == "ID47")
        #expect(noHost.messageText == "nohost")

        let withPID = ParsedLine.parse(#"<13>1 2026-12-07T18:42:41.579098+00:00 vm sshd 20781 - [timeQuality tzKnown="1" isSynced="0"] plain"#)
        #expect(withPID.procID == "20781")
    }

    /// The NILVALUE timestamp (`logger --rfc5424=notime`; vector#23567): no time, every other field read.
    @Test func readsTheNilTimestamp() {
        let line = ParsedLine.parse("<13>1 - vm app - - - no time")
        #expect(line.outcome == .rfc5424)
        #expect(line.timestamp == nil)
        #expect(line.timestampText == nil)
        #expect(line.hostname == "vm")
        #expect(line.appName == "app")
        #expect(line.messageText == "no time")
    }

    /// Everything NILVALUE and no message at all.
    @Test func readsAnAllNilHeader() {
        let line = ParsedLine.parse("<0>1 - - - - - -")
        #expect(line.outcome == .rfc5424)
        #expect(line.priority == 0)
        #expect([line.hostname, line.appName, line.procID, line.msgID, line.structuredData].allSatisfy { $0 == nil })
        #expect(line.message.isEmpty)
    }

    /// relay-bench's `--syslog` lines, the shape the end-to-end measurements use.
    @Test func readsRelayBenchLines() {
        let line = ParsedLine.parse("<14>1 2026-12-07T10:00:00.000Z web-01 app 4242 ID47 - @SEQ 17 1765101600000000 xxxxxxxx")
        #expect(line.outcome == .rfc5424)
        #expect(line.priority == 14)
        #expect(line.procID == "4242")
        #expect(line.messageText == "@SEQ 17 1765101600000000 xxxxxxxx")
    }

    @Test(arguments: [
        ("2026-12-07T18:42:43Z", "2026-12-07T18:42:43Z", Int64(0)),
        ("2026-12-07t18:42:43z", "2026-12-07T18:42:43Z", 0),
        ("2026-12-07T18:42:43.1+01:00", "2026-12-07T17:42:43Z", 100_000_000),
        ("2026-12-07T18:42:43.123456789-05:30", "2026-12-08T00:12:43Z", 123_456_789),
        ("2026-12-07T18:42:43.1234567891234Z", "2026-12-07T18:42:43Z", 123_456_789),
        ("2024-02-29T23:59:60Z", "2024-03-01T00:00:00Z", 0),
        ("2026-12-07T18:42:43+0100", "2026-12-07T17:42:43Z", 0),
        ("2026-12-07T18:42:43+01", "2026-12-07T17:42:43Z", 0),
    ])
    func readsRFC3339TimestampsToNanoseconds(written: String, utc: String, fraction: Int64) {
        let line = ParsedLine.parse("<13>1 \(written) h a - - - m")
        #expect(line.outcome == .rfc5424)
        #expect(line.timestamp == ParsedLine.nanoseconds(utc, fraction: fraction))
    }

    /// A timestamp without an offset is read in the configured zone, as RFC 3164 ones are.
    @Test func readsATimestampWithoutOffsetInTheConfiguredZone() {
        let parser = SyslogParser(timeZone: SyslogTimeZone(named: "+02:00")!)
        let line = ParsedLine.parse("<13>1 2026-12-07T18:42:43 h a - - - m", parser: parser)
        #expect(line.timestamp == ParsedLine.nanoseconds("2026-12-07T16:42:43Z"))
    }

    /// A year beyond what nanoseconds in an Int64 hold keeps its text but has no value.
    @Test func aTimestampOutOfRangeHasTextButNoValue() {
        let line = ParsedLine.parse("<13>1 9999-12-31T23:59:59Z h a - - - m")
        #expect(line.outcome == .rfc5424)
        #expect(line.timestamp == nil)
        #expect(line.timestampText == "9999-12-31T23:59:59Z")
    }
}
