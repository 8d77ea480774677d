import NIOCore
import Testing

@testable import FerryCore

struct StructuredDataTests {
    /// Each element's SD-ID with its params as (name, unescaped value), read through the parser's field.
    private func elements(_ text: String) -> [(String, [(String, String)])]? {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { line -> [(String, [(String, String)])]? in
            let parsed = SyslogParser().parse(line, receivedAt: 0)
            guard let field = parsed.structuredData else { return nil }
            var result: [(String, [(String, String)])] = []
            var iterator = StructuredDataIterator(line, field: field)
            while let element = iterator.next() {
                var params: [(String, String)] = []
                var paramIterator = StructuredDataParamIterator(line, element: element)
                while let param = paramIterator.next() {
                    var value = ByteBuffer()
                    StructuredData.unescape(parsed.bytes(param.value, in: line), into: &value)
                    params.append((String(decoding: parsed.bytes(param.name, in: line), as: UTF8.self), String(buffer: value)))
                }
                result.append((String(decoding: parsed.bytes(element.id, in: line), as: UTF8.self), params))
            }
            #expect(!iterator.isMalformed)
            return result
        }
    }

    @Test func readsTheRFCExampleElementsAndParams() throws {
        let read = try #require(
            elements(
                #"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]"#
            ))
        #expect(read.map(\.0) == ["exampleSDID@32473", "examplePriority@32473"])
        #expect(read[0].1.map(\.0) == ["iut", "eventSource", "eventID"])
        #expect(read[0].1.map(\.1) == ["3", "Application", "1011"])
        #expect(read[1].1.map(\.0) == ["class"] && read[1].1.map(\.1) == ["high"])
    }

    /// RFC 5424 §6.3.3: `\"`, `\\` and `\]` are escapes; a backslash before anything else stays.
    @Test func unescapesQuoteBackslashAndBracket() throws {
        let read = try #require(elements(#"<13>1 - h a - - [x@1 a="App\"lic\]ation" b="C:\\temp" c="\n stays" d="" e="end\\"] m"#))
        #expect(read[0].1.map(\.1) == [#"App"lic]ation"#, #"C:\temp"#, #"\n stays"#, "", #"end\"#])
    }

    /// An element with no params, several spaces between params, an unescaped `]` inside a value, UTF-8 in a value.
    @Test func readsWhatSendersWriteLeniently() throws {
        let read = try #require(elements(#"<13>1 - h a - - [origin][meta  a="1"   b="x]y" ] [not sd"#))
        #expect(read.map(\.0) == ["origin", "meta"])
        #expect(read[0].1.isEmpty)
        #expect(read[1].1.map(\.1) == ["1", "x]y"])
        let utf8 = try #require(elements("<13>1 - h a - - [u@1 name=\"Zoë 🚢\"] m"))
        #expect(utf8[0].1.map(\.1) == ["Zoë 🚢"])
    }

    @Test(arguments: [
        #"[]"#, #"[id"#, #"[id a]"#, #"[id a=1]"#, #"[id a="1]"#, #"[id ="1"]"#, #"[id a="1"b="2"]"#, #"[id a="1\"]"#, #"x"#, #"[id="1"]"#,
    ])
    func theIteratorStopsAtAMalformedElementAndSaysSo(sd: String) {
        let bytes = Array(sd.utf8)
        bytes.withUnsafeBytes { line in
            var iterator = StructuredDataIterator(line, field: SyslogField(0, line.count))
            #expect(iterator.next() == nil)
            #expect(iterator.isMalformed)
        }
        // The parser does not take such a field as structured data.
        #expect(ParsedLine.parse("<13>1 - h a - - \(sd) m").outcome == .unparsed)
    }

    @Test func theIteratorStaysInsideItsField() {
        let bytes = Array(#"[a x="1"][b y="2"][c]"#.utf8)
        bytes.withUnsafeBytes { line in
            var iterator = StructuredDataIterator(line, field: SyslogField(0, 18))
            #expect(iterator.next() != nil && iterator.next() != nil && iterator.next() == nil && !iterator.isMalformed)
            var outOfRange = StructuredDataIterator(line, field: SyslogField(30, 40))
            #expect(outOfRange.next() == nil)
        }
    }
}
