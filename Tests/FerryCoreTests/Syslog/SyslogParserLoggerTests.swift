import FerryTestSupport
import Foundation
import NIOCore
import Testing

@testable import FerryCore

/// Lines written by util-linux `logger` (not by anyone here), read back field by field.
struct SyslogParserLoggerTests {
    /// `logger --no-act --stderr` prints the line it would send (to a port nothing listens on) without sending it.
    private func loggerLine(_ arguments: [String]) throws -> [UInt8] {
        let (status, output) = try ExternalTool.run("logger", ["-n", "127.0.0.1", "-P", "9", "--no-act", "--stderr"] + arguments)
        guard status == 0, output.hasSuffix("\n") else { throw ExternalToolError.failed("logger", output) }
        return Array(output.utf8)
    }

    @Test(arguments: ["--rfc5424", "--rfc3164"])
    func readsEverySeverityAndFacilityLoggerWrites(format: String) throws {
        try #require(ExternalTool.shouldRun("logger"))
        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        let text = #"Zoë says "hi" [x]"#
        for facility in ["user", "auth", "local4"] {
            for severity in SyslogSeverity.allCases {
                var arguments = [format, "-t", "ferry-test", "-i", "-p", "\(facility).\(severity)"]
                if format == "--rfc5424" { arguments += ["--msgid", "ID47", "--sd-id", "origin@32473", "--sd-param", #"note="a\"b\]c""#] }
                let bytes = try loggerLine(arguments + [text])
                let line = ParsedLine.parse(bytes, receivedAt: now)
                #expect(line.outcome == (format == "--rfc5424" ? .rfc5424 : .rfc3164), "\(String(decoding: bytes, as: UTF8.self))")
                #expect(line.priority == SyslogFacility.code(named: facility)! * 8 + severity.rawValue)
                #expect(line.appName == "ferry-test")
                #expect(line.procID.flatMap { Int($0) } != nil)
                #expect(line.hostname?.isEmpty == false)
                #expect(line.messageText == text)
                // RFC 5424 carries its offset; RFC 3164 is local time read as UTC here, so within a day.
                let slack: Int64 = format == "--rfc5424" ? 60 : 15 * 3600
                #expect(abs((line.timestamp ?? 0) - now) < slack * 1_000_000_000)
                if format == "--rfc5424" {
                    #expect(line.msgID == "ID47")
                    #expect(try structuredData(bytes)["origin@32473"] == ["note": #"a"b]c"#])
                }
            }
        }
    }

    @Test func readsLoggersOptionalHeaderParts() throws {
        try #require(ExternalTool.shouldRun("logger"))
        let noTime = ParsedLine.parse(try loggerLine(["--rfc5424=notime,notq", "-t", "app", "no time"]))
        #expect(noTime.outcome == .rfc5424 && noTime.timestamp == nil && noTime.structuredData == nil && noTime.messageText == "no time")
        let noHost = ParsedLine.parse(try loggerLine(["--rfc5424=nohost", "-t", "app", "no host"]))
        #expect(noHost.outcome == .rfc5424 && noHost.hostname == nil && noHost.structuredData?.hasPrefix("[timeQuality ") == true)
        let noTag = ParsedLine.parse(try loggerLine(["--rfc3164", "no tag given"]))
        #expect(noTag.outcome == .rfc3164 && noTag.appName != nil && noTag.messageText == "no tag given")
    }

    /// SD-ID → params, unescaped.
    private func structuredData(_ bytes: [UInt8]) throws -> [String: [String: String]] {
        try bytes.withUnsafeBytes { line in
            let parsed = SyslogParser().parse(line, receivedAt: 0)
            var result: [String: [String: String]] = [:]
            var elements = StructuredDataIterator(line, field: try #require(parsed.structuredData))
            while let element = elements.next() {
                var params = StructuredDataParamIterator(line, element: element)
                var values: [String: String] = [:]
                while let param = params.next() {
                    var value = ByteBuffer()
                    StructuredData.unescape(parsed.bytes(param.value, in: line), into: &value)
                    values[String(decoding: parsed.bytes(param.name, in: line), as: UTF8.self)] = String(buffer: value)
                }
                result[String(decoding: parsed.bytes(element.id, in: line), as: UTF8.self)] = values
            }
            return result
        }
    }
}
