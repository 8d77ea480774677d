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

/// The seeded generator the tests draw payloads and jitter from.
typealias SplitMix = FastRandom
