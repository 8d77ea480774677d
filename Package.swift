// swift-tools-version:6.2
import PackageDescription

// The micro-benchmarks (Benchmarks/, package-benchmark) are part of the package
// only when FERRY_BENCHMARKS is set, as Hummingbird gates its own: a plain
// build or test run never fetches or builds the benchmark package.
let withBenchmarks = Context.environment["FERRY_BENCHMARKS"] != nil
// With FERRY_FUZZ set (Fuzz/run.sh sets it) the package is FerryCore and the
// libFuzzer targets of Fuzz/ only, FerryCore built with coverage and
// AddressSanitizer; a plain build or test run is untouched.
let withFuzzing = Context.environment["FERRY_FUZZ"] != nil

let package = Package(
    name: "ferry",
    // Ferry runs on Linux only: its data plane calls recvmmsg/sendmmsg, UDP_SEGMENT,
    // SO_RCVBUFFORCE and TCP_INFO through Glibc and CFerrySystem, and reads /proc.
    // It is built and tested on Debian with Swift 6.2+, never on macOS; the macOS
    // entry only states what a dependency requires (swift-configuration's API is
    // macOS 15+), so that the package resolves and editors can index it there.
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ferry", targets: ["ferry"]),
        .library(name: "FerryCore", targets: ["FerryCore"]),
        .library(name: "FerryControl", targets: ["FerryControl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(
            url: "https://github.com/apple/swift-configuration", from: "1.4.0",
            traits: [.defaults, "YAML"]),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-w3c-trace-context", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/jpsim/Yams", "5.4.0"..<"7.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .target(name: "CFerrySystem"),
        .target(
            name: "FerryCore",
            dependencies: [
                "CFerrySystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The OpenTelemetry protobuf types (OTLP logs), generated once and committed:
        // Sources/FerryOTLP/Generated/generate.sh, docs/design.md "Generated code".
        .target(
            name: "FerryOTLP",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf")
            ],
            exclude: ["Generated/generate.sh"]
        ),
        .target(
            name: "FerryControl",
            dependencies: [
                "FerryCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "W3CTraceContext", package: "swift-w3c-trace-context"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .executableTarget(
            name: "ferry",
            dependencies: [
                "FerryCore",
                "FerryControl",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .target(
            name: "FerryTestSupport",
            dependencies: [
                "FerryCore",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/FerryTestSupport"
        ),
        .testTarget(
            name: "FerryCoreTests",
            dependencies: [
                "FerryCore",
                "FerryTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "FerryControlTests",
            dependencies: [
                "FerryCore",
                "FerryControl",
                "FerryTestSupport",
                "ferry",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "FerryOTLPTests",
            dependencies: [
                "FerryOTLP",
                "FerryTestSupport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            exclude: ["decode-otlp-request.py"]
        ),
        // Hosts in network namespaces (needs root; skipped elsewhere): Ferry across links with faults.
        .testTarget(
            name: "FerryNetworkTests",
            dependencies: [
                "FerryTestSupport",
                "ferry",
            ]
        ),
    ]
)

// Existential types spelled `any P`, as the Swift server anchors build.
// (`MemberImportVisibility` is not on: C types such as `in_addr` and `timeval`
// then count as members of NIO's internal `CNIOLinux` and Swift's
// `SwiftOverlayShims` even where the file imports Glibc, and neither may be
// imported here; docs/design.md.)
for target in package.targets where target.name != "CFerrySystem" {
    target.swiftSettings = (target.swiftSettings ?? []) + [.enableUpcomingFeature("ExistentialAny")]
}

if withBenchmarks {
    package.dependencies.append(
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]))
    package.targets.append(
        .executableTarget(
            name: "FerryBenchmarks",
            dependencies: [
                "FerryCore",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/FerryBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ))
}

if withFuzzing {
    let sanitize = ["-sanitize=fuzzer,address"]
    package.products = []
    package.targets.removeAll { !["CFerrySystem", "FerryCore"].contains($0.name) }
    for target in package.targets where target.name == "FerryCore" {
        target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(sanitize)]
    }
    package.targets.append(.target(name: "CFuzzDriver", path: "Fuzz/Driver"))
    package.targets.append(
        .target(
            name: "FuzzSupport",
            dependencies: ["CFuzzDriver", "FerryCore", .product(name: "NIOCore", package: "swift-nio")],
            path: "Fuzz/Support",
            swiftSettings: [.unsafeFlags(sanitize)]
        ))
    let fuzzTargets = [
        "Frame", "Ack", "SpoolScanner", "SegmentReader", "SpoolRecovery", "ProgressFile", "FrameJournal", "StreamFramer",
        "SyslogPriority", "LineSplitter", "Configuration", "KeyFile", "AdminToken", "EvictedRuns", "DedupeJournal", "SyslogParser",
        "Seeds",
    ]
    for name in fuzzTargets {
        package.targets.append(
            .executableTarget(
                name: "Fuzz\(name)",
                dependencies: [
                    "FuzzSupport", "FerryCore", .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
                ],
                path: "Fuzz/Targets/\(name)",
                swiftSettings: [.unsafeFlags(sanitize)],
                linkerSettings: [.unsafeFlags(sanitize)]
            ))
    }
}
