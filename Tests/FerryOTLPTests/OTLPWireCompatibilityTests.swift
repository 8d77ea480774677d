import FerryOTLP
import FerryTestSupport
import Foundation
import SwiftProtobuf
import Testing

/// The generated OpenTelemetry types against the official decoder: a request built here is
/// serialized to protobuf and to JSON and decoded by the `opentelemetry-proto` package from
/// PyPI (`decode-otlp-request.py`), and a response with a partial success written by that
/// package is decoded here. `.ci/run` installs the package; elsewhere the test is skipped
/// when python3 or the package is missing.
///
/// SwiftProtobuf's JSON is the proto3 JSON mapping, which OTLP/JSON (the OTLP
/// specification, "JSON Protobuf Encoding") follows with deviations:
/// - `traceId`/`spanId` are hex in OTLP/JSON; SwiftProtobuf writes every `bytes` field as
///   base64, ids included (an OTLP receiver would read those ids as hex and fail or
///   garble them). Other `bytes` fields, such as a bytes-valued attribute, stay base64.
/// - enums must be integers in OTLP/JSON; SwiftProtobuf writes names
///   (`"SEVERITY_NUMBER_INFO"`) unless `alwaysPrintEnumsAsInts` is set.
/// - keys are lowerCamelCase in both (unless `preserveProtoFieldNames` is set), and
///   64-bit integers are decimal strings in both (OTLP receivers accept numbers too).
/// - receivers must ignore unknown fields; SwiftProtobuf's JSON decoder rejects them
///   unless `ignoreUnknownFields` is set (matters for reading responses).
/// So the OTLP/JSON sink needs its own id encoding, not `jsonString()` as is.
struct OTLPWireCompatibilityTests {
    typealias Request = Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceRequest
    typealias Response = Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceResponse

    static let decoder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("decode-otlp-request.py").path

    /// python3 with the `opentelemetry-proto` package, or CI (where a missing one fails).
    static let canDecode: Bool = {
        if ProcessInfo.processInfo.environment["CI"] != nil { return true }
        guard ExternalTool.path("python3") != nil else { return false }
        return (try? ExternalTool.run("python3", ["-c", "import opentelemetry.proto.collector.logs.v1.logs_service_pb2"]).status) == 0
    }()

    @Test(.enabled(if: canDecode, "python3 with opentelemetry-proto (pip install opentelemetry-proto) is not here"))
    func theOfficialDecoderReadsWhatWasSetFromProtobufAndJSON() throws {
        let request = OTLPSampleRequest.make()
        var options = JSONEncodingOptions()
        options.alwaysPrintEnumsAsInts = true  // OTLP/JSON: enums as integers
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("otlp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let paths = ["request.pb", "request.json", "response.pb", "response.json"].map { directory.appendingPathComponent($0).path }
        try Data(request.serializedBytes() as [UInt8]).write(to: URL(fileURLWithPath: paths[0]))
        try request.jsonString(options: options).write(toFile: paths[1], atomically: true, encoding: .utf8)

        let (status, output) = try ExternalTool.run("python3", [Self.decoder] + paths)
        try #require(status == 0, "\(output)")
        let decoded = try JSONDecoder().decode(DecodedRequest.self, from: Data(output.utf8))
        #expect(decoded.protobuf.sorted() == OTLPSampleRequest.expectedFields.sorted(), "\(difference(decoded.protobuf))")
        #expect(decoded.json.sorted() == OTLPSampleRequest.expectedFields.sorted(), "\(difference(decoded.json))")
        #expect(decoded.sameMessage)

        // What SwiftProtobuf's JSON looks like next to the OTLP/JSON rules (see the type's comment).
        #expect(decoded.jsonFacts.topLevelKeys == ["resourceLogs"])
        #expect(
            decoded.jsonFacts.recordKeys == [
                "attributes", "body", "flags", "observedTimeUnixNano", "severityNumber", "severityText", "spanId", "timeUnixNano", "traceId",
            ])
        #expect(decoded.jsonFacts.severityNumberIsInteger)
        #expect(decoded.jsonFacts.timeUnixNanoIsString)
        #expect(decoded.jsonFacts.traceIdIsBase64 && !decoded.jsonFacts.traceIdIsHex, "OTLP/JSON wants hex ids; the sink must write its own")

        // A partial success written by the official package reads back here, from both encodings.
        var unknownFieldsIgnored = JSONDecodingOptions()
        unknownFieldsIgnored.ignoreUnknownFields = true
        let responses = [
            try Response(serializedBytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: paths[2])))),
            try Response(jsonString: try String(contentsOfFile: paths[3], encoding: .utf8), options: unknownFieldsIgnored),
        ]
        for response in responses {
            #expect(response.hasPartialSuccess)
            #expect(response.partialSuccess.rejectedLogRecords == 2)
            #expect(response.partialSuccess.errorMessage == "2 records over the size limit")
        }
    }

    @Test func protobufAndJSONRoundTripInSwift() throws {
        let request = OTLPSampleRequest.make()
        let bytes: [UInt8] = try request.serializedBytes()
        #expect(try Request(serializedBytes: bytes) == request)
        #expect(try Request(jsonString: request.jsonString()) == request)
        // Without the option SwiftProtobuf names enums, which OTLP/JSON does not allow.
        #expect(try request.jsonString().contains("\"SEVERITY_NUMBER_INFO\""))
    }
}

/// What an independent decoder found that was not set, and what was set that it did not find.
private func difference(_ decoded: [String]) -> String {
    let expected = Set(OTLPSampleRequest.expectedFields)
    let found = Set(decoded)
    return "not set: \(found.subtracting(expected).sorted()); not found: \(expected.subtracting(found).sorted())"
}

/// The Python decoder's answer (`decode-otlp-request.py`).
private struct DecodedRequest: Decodable {
    struct JSONFacts: Decodable {
        var topLevelKeys: [String]
        var recordKeys: [String]
        var traceIdIsHex: Bool
        var traceIdIsBase64: Bool
        var severityNumberIsInteger: Bool
        var timeUnixNanoIsString: Bool
    }
    var protobuf: [String]
    var json: [String]
    var sameMessage: Bool
    var jsonFacts: JSONFacts
}
