#!/usr/bin/env bash
# Regenerates the OpenTelemetry protobuf types (OTLP logs) in this folder; the output is
# committed, so neither a build nor CI runs this (docs/design.md, "Generated code").
#
# Generated from, and to be regenerated with exactly these (change them together, and say
# why in the commit):
#   .proto files      open-telemetry/opentelemetry-proto v1.11.0 (2026-07-21, commit 790608c4d51e6ffc12210b541e8514cbed9e91a4):
#                     opentelemetry/proto/{common,resource,logs}/v1 and collector/logs/v1
#   protoc            libprotoc 3.21.12, Debian 12's protobuf-compiler 3.21.12-3+deb12u1 (apt-get install protobuf-compiler)
#   protoc-gen-swift  apple/swift-protobuf 1.39.0, the version Package.swift's SwiftProtobuf dependency starts at
#                     (swift build -c release --product protoc-gen-swift in a clone of that tag; 50 s here, 2026-12-07)
#   options           Visibility=Package (the types are for Ferry's own targets, not its public API),
#                     FileNaming=DropPath (common.pb.swift, resource.pb.swift, logs.pb.swift, logs_service.pb.swift)
#
# Usage: generate.sh PROTO_ROOT PROTOC_GEN_SWIFT
#   PROTO_ROOT        a checkout of opentelemetry-proto at the tag above (the folder holding opentelemetry/)
#   PROTOC_GEN_SWIFT  the plugin binary (.build/release/protoc-gen-swift of swift-protobuf at the tag above)
# Nothing of opentelemetry-proto is committed but the generated Swift.
set -euo pipefail

proto_tag=v1.11.0
protoc_version="libprotoc 3.21.12"
plugin_version="protoc-gen-swift 1.39.0"
protos=(
    opentelemetry/proto/common/v1/common.proto
    opentelemetry/proto/resource/v1/resource.proto
    opentelemetry/proto/logs/v1/logs.proto
    opentelemetry/proto/collector/logs/v1/logs_service.proto
)

if [ $# -ne 2 ]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2
    exit 2
fi
proto_root=$(cd "$1" && pwd)
plugin=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
here=$(cd "$(dirname "$0")" && pwd)

fail() { echo "generate.sh: $*" >&2; exit 1; }
[ "$(protoc --version)" = "$protoc_version" ] || fail "protoc is '$(protoc --version)', want '$protoc_version'"
[ "$("$plugin" --version)" = "$plugin_version" ] || fail "$plugin is '$("$plugin" --version)', want '$plugin_version'"
if git -C "$proto_root" rev-parse --git-dir >/dev/null 2>&1; then
    [ "$(git -C "$proto_root" describe --tags --exact-match 2>/dev/null)" = "$proto_tag" ] ||
        fail "$proto_root is not at $proto_tag"
fi
for proto in "${protos[@]}"; do [ -f "$proto_root/$proto" ] || fail "no $proto under $proto_root"; done

rm -f "$here"/*.pb.swift
protoc \
    --plugin=protoc-gen-swift="$plugin" \
    --proto_path="$proto_root" \
    --swift_out="$here" \
    --swift_opt=Visibility=Package \
    --swift_opt=FileNaming=DropPath \
    "${protos[@]}"

# swift format lint and the 400-line rule skip these files (SourceFileRulesTests checks this line).
for file in "$here"/*.pb.swift; do
    head -5 "$file" | grep -qx '// swift-format-ignore-file' || fail "$file has no '// swift-format-ignore-file' line"
done
ls -l "$here"/*.pb.swift
