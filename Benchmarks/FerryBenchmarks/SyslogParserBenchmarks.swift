import Benchmark
import FerryCore
import NIOCore

/// The syslog parser on typical lines, each a ByteBuffer as records are held:
/// one iteration parses one line (and reads every field, so nothing is left
/// unused), so the figures are per log. Target (issue 34): under 200 ns for a
/// typical 200-byte RFC 5424 line, 0 mallocs.
func registerSyslogParserBenchmarks() {
    let parser = SyslogParser()
    let receivedAt: Int64 = 1_796_688_000_000_000_000  // 2026-12-07T00:00:00Z
    /// `header` filled with a message of `x` to 200 bytes.
    func line(_ header: String) -> ByteBuffer { ByteBuffer(string: header + String(repeating: "x", count: 200 - header.utf8.count)) }
    // The header relay-bench --syslog writes, with a timeQuality element as `logger` adds.
    let rfc5424 = line(#"<14>1 2026-12-07T10:00:00.000Z web-01 app 4242 ID47 [timeQuality tzKnown="1" isSynced="1"] @SEQ 17 1765101600000000 "#)
    // A BSD line as rsyslog forwards it: hostname, a tag with PID.
    let rfc3164 = line("<38>Dec  7 10:00:00 web-01 sshd[4242]: Accepted publickey for deploy from 10.0.0.7 port 52144 ssh2: ")
    let structured = ByteBuffer(
        string:
            #"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="App\"lic\]ation" eventID="1011"] An application event log entry"#
    )
    var invalid = ByteBuffer(string: "<13>Dec  7 10:00:00 host app: caf")
    invalid.writeBytes([0xE9, 0x20])
    invalid.writeString(String(repeating: "é and ascii ", count: 12))
    invalid.writeString(String(repeating: "x", count: 200 - invalid.readableBytes))

    for (name, line) in [("RFC 5424, 200 B", rfc5424), ("RFC 3164, 200 B", rfc3164)] {
        Benchmark("SyslogParser.parse: \(name)", configuration: ferryConfiguration(.kilo)) { benchmark in
            precondition(line.readableBytes == 200, "\(name) is \(line.readableBytes) bytes")
            for _ in benchmark.scaledIterations {
                let message = parser.parse(line, receivedAt: receivedAt)
                blackHole(message.timestamp)
                blackHole(message.message.count &+ (message.hostname?.count ?? 0) &+ (message.appName?.count ?? 0))
            }
        }
    }

    Benchmark("StructuredDataIterator: 1 element, 3 params (RFC 5424 example)", configuration: ferryConfiguration(.kilo)) { benchmark in
        let message = parser.parse(structured, receivedAt: receivedAt)
        var unescaped = ByteBuffer()
        unescaped.reserveCapacity(256)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            structured.withUnsafeReadableBytes { bytes in
                var elements = StructuredDataIterator(bytes, field: message.structuredData!)
                while let element = elements.next() {
                    var params = StructuredDataParamIterator(bytes, element: element)
                    while let param = params.next() {
                        unescaped.clear()
                        StructuredData.unescape(message.bytes(param.value, in: bytes), into: &unescaped)
                    }
                }
            }
            blackHole(unescaped.readableBytes)
        }
    }

    Benchmark("UTF8Repair.write: 200 B message, 1 invalid byte", configuration: ferryConfiguration(.kilo)) { benchmark in
        var output = ByteBuffer()
        output.reserveCapacity(1_024)
        precondition(invalid.readableBytes == 200)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            output.clear()
            let replaced = invalid.withUnsafeReadableBytes { UTF8Repair.write($0, into: &output) }
            blackHole(replaced)
        }
    }
}
