import FerryOTLP
import Foundation

/// One ExportLogsServiceRequest with every kind of field the logs sink will set, and the
/// fields an independent decoder must find in it, written out by hand (not derived from the
/// request), one `path = value` line each as `decode-otlp-request.py` prints them.
enum OTLPSampleRequest {
    typealias AnyValue = Opentelemetry_Proto_Common_V1_AnyValue
    typealias KeyValue = Opentelemetry_Proto_Common_V1_KeyValue

    static let traceID = Data((1...16).map { UInt8($0 * 16 - 1) })  // 0f1f2f…ff
    static let spanID = Data([0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x01, 0x02, 0x03])
    /// Bytes that are not UTF-8, as the original of a repaired line travels.
    static let original = Data([0x66, 0x65, 0x72, 0xFF, 0x72, 0x79, 0x0A])

    static func make() -> Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceRequest {
        var resource = Opentelemetry_Proto_Resource_V1_Resource()
        resource.attributes = [attribute("service.name", string: "ferry-test"), attribute("host.name", string: "edge-1")]

        var scope = Opentelemetry_Proto_Common_V1_InstrumentationScope()
        scope.name = "ferry"
        scope.version = "0.1.0"

        let structuredData = attribute(
            "syslog.structured_data",
            kvlist: [attribute("exampleSDID@32473", kvlist: [attribute("iut", string: "3"), attribute("eventSource", string: "Application")])])

        var first = Opentelemetry_Proto_Logs_V1_LogRecord()
        first.timeUnixNano = 1_765_000_000_123_456_789
        first.observedTimeUnixNano = 1_765_000_000_223_456_789
        first.severityNumber = .info
        first.severityText = "info"
        first.body.stringValue = "first line: café ✓"
        first.attributes = [
            structuredData, attribute("log.record.original", bytes: original), attribute("syslog.facility", int: 16),
        ]
        first.traceID = traceID
        first.spanID = spanID
        first.flags = 1

        var second = Opentelemetry_Proto_Logs_V1_LogRecord()
        second.timeUnixNano = 1_765_000_001_000_000_000
        second.observedTimeUnixNano = 1_765_000_001_000_000_500
        second.severityNumber = .error
        second.severityText = "err"
        second.body.stringValue = "second"
        second.attributes = [
            attribute("client.address", string: "192.0.2.7"), attribute("client.port", int: 514),
        ]

        var scopeLogs = Opentelemetry_Proto_Logs_V1_ScopeLogs()
        scopeLogs.scope = scope
        scopeLogs.logRecords = [first, second]
        var resourceLogs = Opentelemetry_Proto_Logs_V1_ResourceLogs()
        resourceLogs.resource = resource
        resourceLogs.scopeLogs = [scopeLogs]
        var request = Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceRequest()
        request.resourceLogs = [resourceLogs]
        return request
    }

    static let expectedFields = [
        #"resource[0]["service.name"] = string "ferry-test""#,
        #"resource[0]["host.name"] = string "edge-1""#,
        "resource[0].scope[0].name = ferry",
        "resource[0].scope[0].version = 0.1.0",
        "resource[0].scope[0].record[0].time_unix_nano = 1765000000123456789",
        "resource[0].scope[0].record[0].observed_time_unix_nano = 1765000000223456789",
        "resource[0].scope[0].record[0].severity_number = 9",
        "resource[0].scope[0].record[0].severity_text = info",
        #"resource[0].scope[0].record[0].body = string "first line: café ✓""#,
        "resource[0].scope[0].record[0].trace_id = 0f1f2f3f4f5f6f7f8f9fafbfcfdfefff",
        "resource[0].scope[0].record[0].span_id = deadbeef00010203",
        "resource[0].scope[0].record[0].flags = 1",
        #"resource[0].scope[0].record[0]["syslog.structured_data"] = kvlist exampleSDID@32473"#,
        #"resource[0].scope[0].record[0]["syslog.structured_data"]["exampleSDID@32473"] = kvlist iut, eventSource"#,
        #"resource[0].scope[0].record[0]["syslog.structured_data"]["exampleSDID@32473"]["iut"] = string "3""#,
        #"resource[0].scope[0].record[0]["syslog.structured_data"]["exampleSDID@32473"]["eventSource"] = string "Application""#,
        #"resource[0].scope[0].record[0]["log.record.original"] = bytes 666572ff72790a"#,
        #"resource[0].scope[0].record[0]["syslog.facility"] = int 16"#,
        "resource[0].scope[0].record[1].time_unix_nano = 1765000001000000000",
        "resource[0].scope[0].record[1].observed_time_unix_nano = 1765000001000000500",
        "resource[0].scope[0].record[1].severity_number = 17",
        "resource[0].scope[0].record[1].severity_text = err",
        #"resource[0].scope[0].record[1].body = string "second""#,
        "resource[0].scope[0].record[1].trace_id = ",
        "resource[0].scope[0].record[1].span_id = ",
        "resource[0].scope[0].record[1].flags = 0",
        #"resource[0].scope[0].record[1]["client.address"] = string "192.0.2.7""#,
        #"resource[0].scope[0].record[1]["client.port"] = int 514"#,
    ]

    private static func attribute(_ key: String, string: String) -> KeyValue {
        attribute(key, AnyValue.with { $0.stringValue = string })
    }

    private static func attribute(_ key: String, int: Int64) -> KeyValue {
        attribute(key, AnyValue.with { $0.intValue = int })
    }

    private static func attribute(_ key: String, bytes: Data) -> KeyValue {
        attribute(key, AnyValue.with { $0.bytesValue = bytes })
    }

    private static func attribute(_ key: String, kvlist: [KeyValue]) -> KeyValue {
        attribute(key, AnyValue.with { $0.kvlistValue.values = kvlist })
    }

    private static func attribute(_ key: String, _ value: AnyValue) -> KeyValue {
        KeyValue.with {
            $0.key = key
            $0.value = value
        }
    }
}
