import NIOCore
import Testing

@testable import FerryCore

struct SyslogPriorityTests {
    private func priority(_ text: String) -> SyslogPriority? {
        SyslogPriority(of: ByteBuffer(string: text))
    }

    @Test func readsThePriOfRFC5424AndRFC3164Messages() {
        #expect(priority("<165>1 2003-10-11T22:14:15.003Z host app - ID47 - msg")?.value == 165)
        #expect(priority("<34>Oct 11 22:14:15 mymachine su: 'su root' failed")?.value == 34)
        #expect(priority("<0>x")?.value == 0)
        #expect(priority("<191>")?.value == 191)
        #expect(priority("<007>leading zeros are digits")?.value == 7)
        let local4Notice = priority("<165>")!
        #expect(local4Notice.severity == .notice)
        #expect(local4Notice.facility == 20)
        #expect(SyslogFacility.names[local4Notice.facility] == "local4")
    }

    @Test(arguments: [
        "", "<", "<>", "<>msg", "<1", "<192>too large", "<999>", "<1234>four digits", "<-1>", "< 1>", "<1 >", "<a>", "13> no bracket",
        " <13> leading space", "plain text",
    ])
    func aMessageWithoutAValidPriHasNone(_ text: String) {
        #expect(priority(text) == nil)
    }

    @Test func readsInPlaceFromASliceWithoutChangingIt() {
        var buffer = ByteBuffer(string: "xxxx<12>msg")
        buffer.moveReaderIndex(forwardBy: 4)
        let before = buffer
        #expect(SyslogPriority(of: buffer)?.value == 12)
        #expect(buffer == before)
    }

    @Test func severityAndFacilityNamesAreTheOnesLoggerAndRsyslogUse() {
        #expect(SyslogSeverity(name: "warn") == .warning)
        #expect(SyslogSeverity(name: "WARNING") == .warning)
        #expect(SyslogSeverity(name: "error") == .error)
        #expect(SyslogSeverity(name: "panic") == .emergency)
        #expect(SyslogSeverity(name: "3") == .error)
        #expect(SyslogSeverity(name: "8") == nil)
        #expect(SyslogSeverity(name: "loud") == nil)
        #expect(SyslogFacility.code(named: "local7") == 23)
        #expect(SyslogFacility.code(named: "authpriv") == 10)
        #expect(SyslogFacility.code(named: "security") == 13)
        #expect(SyslogFacility.code(named: "24") == nil)
        #expect(SyslogFacility.code(named: "local8") == nil)
    }

    @Test func aSeverityMatchTakesThatSeverityAndWorseOnly() {
        let match = RouteMatch(severity: .warning, facilities: [4, 10]).compiled(listeners: ListenerPositions(names: []))
        for value in 0...191 {
            let priority = SyslogPriority(value: value)!
            let expected = priority.severity <= .warning && [4, 10].contains(priority.facility)
            #expect(match.takes(priority: priority, source: nil) == expected, "PRI \(value)")
        }
        #expect(!match.takes(priority: nil, source: nil), "a log without a PRI does not match a route that asks for one")
        #expect(RouteMatch().compiled(listeners: ListenerPositions(names: [])).takes(priority: nil, source: nil))
    }

    @Test func countsBySeverityAndFacilityIncludeLogsWithoutAPri() {
        let counters = PipelineCounters()
        counters.countPriorities(["<11>a", "<11>b", "<165>c", "no pri", "<300>bad"].map { ByteBuffer(string: $0) })
        let totals = PipelineTotals(summing: [counters])
        #expect(totals.bySeverity["err"] == 2)
        #expect(totals.bySeverity["notice"] == 1)
        #expect(totals.bySeverity["none"] == 2)
        #expect(totals.byFacility["user"] == 2)
        #expect(totals.byFacility["local4"] == 1)
        #expect(totals.byFacility.values.reduce(0, +) == 3)
    }
}
