import Foundation
import Testing

@testable import FerryCore

struct RouteConfigurationTests {
    private func load(_ yaml: String, flags: [String: String] = [:], upstreams: [String] = []) async throws -> FerryConfiguration {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-routes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("ferry.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try await ConfigurationLoader(flags: flags, upstreamFlags: upstreams, environment: [:], filePath: path).load()
    }

    private func refusal(_ yaml: String, flags: [String: String] = [:], upstreams: [String] = []) async -> String {
        do {
            _ = try await load(yaml, flags: flags, upstreams: upstreams)
            return "accepted"
        } catch {
            return String(describing: error)
        }
    }

    @Test func routesAreReadByNameWithTheirMatchModeAndCap() async throws {
        let configuration = try await load(
            """
            listen: ["udp://127.0.0.1:5514", "tcp://127.0.0.1:6514"]
            routes:
              siem:
                match: { severity: warn, facility: [auth, authpriv, local3], source: ["10.0.0.0/8"], listener: ["tcp://127.0.0.1:6514"] }
                upstreams: ["udp://127.0.0.1:9000", "file:/tmp/siem.log"]
                max-backlog-bytes: 4MiB
              archive: { upstreams: ["file:/tmp/all.log"] }
              pool: { mode: balance, upstreams: ["ferry://127.0.0.1:7001", "ferry://127.0.0.1:7002"] }
            """)
        #expect(configuration.routes.map(\.name) == ["archive", "pool", "siem"])
        let siem = configuration.routes[2]
        #expect(siem.match.severity == .warning)
        #expect(siem.match.facilities == [4, 10, 19])
        #expect(siem.match.source?.description == "10.0.0.0/8")
        #expect(siem.match.listeners == ["tcp://127.0.0.1:6514"])
        #expect(siem.maxBacklogBytes == 4 << 20)
        #expect(configuration.routes[1].mode == .balance)
        #expect(configuration.allUpstreams.count == 5)
        let table = RoutingTable(configuration: configuration)
        #expect(!table.isSingleFailover)
        #expect(table.readsSource)
        #expect(table.routes[2].upstreams == [3, 4])
        #expect(configuration.renderedLines.contains("routes.siem.match.facility = auth,authpriv,local3"))
    }

    @Test func withoutRoutesTheUpstreamsAreOneRouteThatTakesEverything() async throws {
        let configuration = try await load("log:\n  level: info\n", upstreams: ["udp://127.0.0.1:9000"])
        #expect(configuration.effectiveRoutes.map(\.name) == ["default"])
        #expect(RoutingTable(configuration: configuration).isSingleFailover)
    }

    @Test func badRoutesAreRefusedNamingTheKeyAndWhatIsAllowed() async {
        let cases: [(String, String)] = [
            ("routes:\n  a: { upstreams: [\"file:/tmp/x\"], match: { severity: loud } }\n", "'routes.a.match.severity' has value 'loud'"),
            ("routes:\n  a: { upstreams: [\"file:/tmp/x\"], match: { facility: [local9] } }\n", "'routes.a.match.facility' has value 'local9'"),
            ("routes:\n  a: { upstreams: [\"file:/tmp/x\"], match: { source: [\"10.1.2.3/8\"] } }\n", "'routes.a.match.source'"),
            ("routes:\n  a: { upstreams: [\"file:/tmp/x\"], match: { listener: [\"udp://9.9.9.9:1\"] } }\n", "a configured listener"),
            ("routes:\n  a: { upstreams: [\"file:/tmp/x\"], mode: random }\n", "allowed: failover, balance"),
            ("routes:\n  a: { upstreams: [] }\n", "'routes.a.upstreams'"),
            ("routes:\n  a: { upstreams: [\"smtp://x:1\"] }\n", "'routes.a.upstreams' has value 'smtp://x:1'"),
            ("routes:\n  a: { upstreams: [\"file:/tmp/x\"] }\n  b: { upstreams: [\"file:/tmp/x\"] }\n", "already an upstream of route 'a'"),
            ("routes:\n  Bad.Name: { upstreams: [\"file:/tmp/x\"] }\n", "route names of 1 to 64 characters"),
            ("routes:\n  a: { upstreams: [\"file:/tmp/x\"], matches: { severity: err } }\n", "unknown key 'routes.a.matches.severity'"),
            ("routes: [\"file:/tmp/x\"]\n", "'routes'"),
        ]
        for (yaml, expected) in cases {
            let message = await refusal(yaml)
            #expect(message.contains(expected), "\(yaml) → \(message)")
        }
        let both = await refusal("routes:\n  a: { upstreams: [\"file:/tmp/x\"] }\n", upstreams: ["udp://127.0.0.1:9"])
        #expect(both.contains("routes are configured"), "\(both)")
    }
}
