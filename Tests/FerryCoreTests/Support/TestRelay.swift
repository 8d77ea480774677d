import Foundation
import Logging

@testable import FerryCore

/// Starts a real ``Relay`` on loopback with ephemeral ports for one test.
enum TestRelay {
    static let logger = Logger(label: "ferry-test") { _ in SwiftLogNoOpLogHandler() }

    static func configuration(upstreams: [UpstreamURL], sockets: Int = 2) -> FerryConfiguration {
        var configuration = FerryConfiguration()
        configuration.listen = HostAndPort(host: "127.0.0.1", port: 0)
        configuration.httpAddress = HostAndPort(host: "127.0.0.1", port: 0)
        configuration.upstreams = upstreams
        configuration.receiveSockets = sockets
        configuration.drainTimeout = .seconds(2)
        return configuration
    }

    static func start(_ configuration: FerryConfiguration) async throws -> (Relay, port: Int) {
        let relay = try await Relay.start(configuration: configuration, logger: logger)
        return (relay, relay.listeners[0].port)
    }

    static func temporaryFile(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("ferry-\(UUID().uuidString)").appendingPathComponent(name).path
    }

    /// Waits until `condition` holds or `seconds` pass; returns whether it held.
    static func eventually(seconds: Double = 5, _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    /// Random printable payload (no newline) of `size` bytes.
    static func payload(size: Int, seed: Int) -> [UInt8] {
        var generator = SplitMix(seed: UInt64(seed))
        return (0..<size).map { _ in UInt8(33 + generator.next() % 90) }
    }

    /// Random bytes of every value, newlines included.
    static func binaryPayload(size: Int, seed: Int) -> [UInt8] {
        var generator = SplitMix(seed: UInt64(seed))
        return (0..<size).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
    }
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
