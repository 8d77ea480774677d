#!/usr/bin/env python3
"""Decodes an ExportLogsServiceRequest with the official `opentelemetry-proto` package.

Usage: decode-otlp-request.py REQUEST.pb REQUEST.json RESPONSE.pb RESPONSE.json

Reads the protobuf bytes with the generated Python class and the JSON with
protobuf's own `json_format` (the proto3 JSON mapping), checks that both give
the same message, and prints one JSON object:

  protobuf / json  every field the test set, one "path = value" line each, sorted
  jsonFacts        what the JSON text itself looks like (how ids, enums and 64-bit
                   integers were written), to compare with the OTLP JSON rules
  versions         the decoder's versions

It also writes an ExportLogsServiceResponse with a partial success (2 records
rejected) as protobuf and as JSON, for the Swift side to decode.

Exit 0 unless a file fails to decode (then the error is on stderr, exit 1).
"""

import base64
import json
import sys

from google.protobuf import __version__ as protobuf_version
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)


def any_value(value):
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return "string " + json.dumps(value.string_value, ensure_ascii=False)
    if kind == "bytes_value":
        return "bytes " + value.bytes_value.hex()
    if kind == "int_value":
        return "int " + str(value.int_value)
    if kind == "bool_value":
        return "bool " + str(value.bool_value).lower()
    if kind == "double_value":
        return "double " + repr(value.double_value)
    if kind == "kvlist_value":
        return "kvlist " + ", ".join(kv.key for kv in value.kvlist_value.values)
    if kind == "array_value":
        return "array " + str(len(value.array_value.values))
    return "empty"


def attributes(prefix, key_values, lines):
    for kv in key_values:
        path = f'{prefix}["{kv.key}"]'
        lines.append(f"{path} = {any_value(kv.value)}")
        if kv.value.WhichOneof("value") == "kvlist_value":
            attributes(path, kv.value.kvlist_value.values, lines)


def flatten(request):
    lines = []
    for r, resource_logs in enumerate(request.resource_logs):
        attributes(f"resource[{r}]", resource_logs.resource.attributes, lines)
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            scope = f"resource[{r}].scope[{s}]"
            lines.append(f"{scope}.name = {scope_logs.scope.name}")
            lines.append(f"{scope}.version = {scope_logs.scope.version}")
            for i, record in enumerate(scope_logs.log_records):
                path = f"{scope}.record[{i}]"
                lines.append(f"{path}.time_unix_nano = {record.time_unix_nano}")
                lines.append(f"{path}.observed_time_unix_nano = {record.observed_time_unix_nano}")
                lines.append(f"{path}.severity_number = {record.severity_number}")
                lines.append(f"{path}.severity_text = {record.severity_text}")
                lines.append(f"{path}.body = {any_value(record.body)}")
                lines.append(f"{path}.trace_id = {record.trace_id.hex()}")
                lines.append(f"{path}.span_id = {record.span_id.hex()}")
                lines.append(f"{path}.flags = {record.flags}")
                attributes(path, record.attributes, lines)
    return sorted(lines)


def json_facts(text):
    document = json.loads(text)
    record = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    trace_id = record.get("traceId", "")
    try:
        trace_id_is_base64 = len(base64.b64decode(trace_id, validate=True)) == 16
    except ValueError:
        trace_id_is_base64 = False
    return {
        "topLevelKeys": sorted(document.keys()),
        "recordKeys": sorted(record.keys()),
        "traceIdIsHex": len(trace_id) == 32 and all(c in "0123456789abcdefABCDEF" for c in trace_id),
        "traceIdIsBase64": trace_id_is_base64,
        "severityNumberIsInteger": isinstance(record.get("severityNumber"), int),
        "timeUnixNanoIsString": isinstance(record.get("timeUnixNano"), str),
    }


def write_response(protobuf_path, json_path):
    response = ExportLogsServiceResponse(
        partial_success=ExportLogsPartialSuccess(rejected_log_records=2, error_message="2 records over the size limit")
    )
    with open(protobuf_path, "wb") as handle:
        handle.write(response.SerializeToString())
    with open(json_path, "w", encoding="utf-8") as handle:
        handle.write(json_format.MessageToJson(response))


def main():
    protobuf_path, json_path = sys.argv[1], sys.argv[2]
    write_response(sys.argv[3], sys.argv[4])
    with open(protobuf_path, "rb") as handle:
        from_protobuf = ExportLogsServiceRequest.FromString(handle.read())
    with open(json_path, encoding="utf-8") as handle:
        text = handle.read()
    from_json = json_format.Parse(text, ExportLogsServiceRequest())
    try:
        from importlib.metadata import version

        proto_version = version("opentelemetry-proto")
    except Exception:  # noqa: BLE001 - only informative
        proto_version = "unknown"
    print(
        json.dumps(
            {
                "protobuf": flatten(from_protobuf),
                "json": flatten(from_json),
                "sameMessage": from_protobuf == from_json,
                "jsonFacts": json_facts(text),
                "versions": {"opentelemetry-proto": proto_version, "protobuf": protobuf_version},
            }
        )
    )


if __name__ == "__main__":
    main()
