import NIOCore
import Testing

@testable import FerryCore

/// What keeps real lines from being lost: unparsed lines whole, BOMs, trailing newlines and NULs, invalid UTF-8.
struct SyslogParserLenienceTests {
    @Test(arguments: [
        "", "\n", "plain text without any header", "Use the BFG!", "<192>Dec  7 18:42:41 host app: PRI too large",
        "<13>1 2026-12-07T18:42:41Z host app - - [unterminated x=\"1\"", "<13>1 2026-13-07T18:42:41Z host app - - - bad month",
        "<13>1 2026-12-07 18:42:41Z host app - - - space in timestamp", "<13>1 - host app - -", "<13>1 - host app - - -msg",
        "<13>1  - host app - - - two spaces", "<13>1 - host app - - [a@1 x=\"1\"][b", "1 2026-12-07T18:42:41Z host app - - - no PRI",
        "{\"level\":\"info\",\"msg\":\"json line\"}\n",
    ])
    func aLineNeitherGrammarReadsIsTheWholeMessage(text: String) {
        let line = ParsedLine.parse(text)
        #expect(line.outcome == .unparsed)
        #expect(line.message == Array(text.utf8))
        #expect(line.priority == nil && line.timestamp == nil && line.hostname == nil && line.appName == nil)
    }

    @Test func trailingNewlinesCarriageReturnsAndNULsAreNotPartOfTheMessage() {
        #expect(ParsedLine.parse("<13>1 - h a - - - msg\n").messageText == "msg")
        #expect(ParsedLine.parse("<13>1 - h a - - - msg\r\n").messageText == "msg")
        #expect(ParsedLine.parse(Array("<13>Dec  7 18:42:41 h a: msg\n".utf8) + [0, 0, 0]).messageText == "msg")
        #expect(ParsedLine.parse(Array("<13>1 - h a - - -".utf8) + [0]).message.isEmpty)
        // A NUL inside the message stays.
        #expect(ParsedLine.parse(Array("<13>1 - h a - - - a".utf8) + [0] + Array("b".utf8)).message == [97, 0, 98])
    }

    @Test func aBOMBeforeTheLineOrTheMessageIsSkippedAndNoted() {
        let beforeLine = ParsedLine.parse([0xEF, 0xBB, 0xBF] + Array("<13>1 - h a - - - msg".utf8))
        #expect(beforeLine.outcome == .rfc5424 && beforeLine.messageText == "msg" && !beforeLine.messageHasBOM)
        let bsd = ParsedLine.parse(Array("<13>Dec  7 18:42:41 h app: ".utf8) + [0xEF, 0xBB, 0xBF] + Array("msg".utf8))
        #expect(bsd.outcome == .rfc3164 && bsd.messageText == "msg" && bsd.messageHasBOM)
        let bomOnly = ParsedLine.parse(Array("<13>1 - h a - - - ".utf8) + [0xEF, 0xBB, 0xBF])
        #expect(bomOnly.message.isEmpty && bomOnly.messageHasBOM)
    }

    /// Invalid UTF-8 is carried as it is; ``UTF8Repair`` makes the string for sinks that need one.
    @Test func invalidUTF8IsKeptAsBytes() {
        let bytes = Array("<13>Dec  7 18:42:41 vm t: bad ".utf8) + [0xFF, 0xFE] + Array(" utf8 \u{00E9}".utf8) + [0xC3]
        let line = ParsedLine.parse(bytes)
        #expect(line.outcome == .rfc3164 && line.appName == "t")
        #expect(line.message == Array("bad ".utf8) + [0xFF, 0xFE] + Array(" utf8 \u{00E9}".utf8) + [0xC3])
        var repaired = ByteBuffer()
        let replaced = line.message.withUnsafeBytes { UTF8Repair.write($0, into: &repaired) }
        #expect(replaced == 3)
        #expect(String(buffer: repaired) == "bad \u{FFFD}\u{FFFD} utf8 \u{00E9}\u{FFFD}")
        let hostname = ParsedLine.parse(Array("<13>1 - h\u{00E9}".utf8) + [0xFF] + Array(" a - - - m".utf8))
        #expect(hostname.outcome == .rfc5424)
    }

    /// A ByteBuffer slice: offsets count from its reader index, and slices of the fields share its storage.
    @Test func parsesASliceOfALargerBufferInPlace() {
        var buffer = ByteBuffer(string: "xxxxxxxx<165>1 2003-10-11T22:14:15.003Z host app 12 ID7 - hello")
        buffer.moveReaderIndex(forwardBy: 8)
        let parsed = SyslogParser().parse(buffer, receivedAt: ParsedLine.receivedAt)
        #expect(parsed.outcome == .rfc5424)
        #expect(String(buffer: parsed.slice(parsed.hostname!, of: buffer)) == "host")
        #expect(String(buffer: parsed.slice(parsed.message, of: buffer)) == "hello")
        #expect(parsed.priority?.severity == .notice && parsed.priority?.facility == 20)
    }

    @Test func countsLinesByOutcome() {
        let counters = SyslogParseCounters()
        for text in ["<13>1 - h a - - - m", "<13>Dec  7 18:42:41 h a: m", "junk", "more junk"] {
            counters.count(ParsedLine.parse(text).outcome)
        }
        #expect(SyslogParseOutcome.allCases.map { counters[$0] } == [1, 1, 2])
        #expect(SyslogParseOutcome.allCases.map(\.description) == ["rfc5424", "rfc3164", "unparsed"])
    }
}
