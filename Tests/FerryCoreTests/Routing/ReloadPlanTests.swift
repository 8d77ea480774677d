import Testing

@testable import FerryCore

struct ReloadPlanTests {
    private func configuration(_ routes: [RouteSettings], port: Int = 5514) -> FerryConfiguration {
        var configuration = FerryConfiguration()
        configuration.routes = routes
        configuration.listeners = [.udp(.init(host: "127.0.0.1", port: port))]
        return configuration
    }

    private let archive = RouteSettings(name: "archive", upstreams: [.file(path: "/tmp/all.log")])
    private let siem = RouteSettings(
        name: "siem", upstreams: [.udp(.init(host: "127.0.0.1", port: 9000))], match: RouteMatch(severity: .warning))

    @Test func sameConfigurationChangesNothing() {
        let plan = ReloadPlan(from: configuration([archive, siem]), to: configuration([archive, siem]))
        #expect(plan.changesNothingLive)
        #expect(plan.routesKept == ["archive", "siem"])
        #expect(plan.restartRequired.isEmpty)
    }

    @Test func addedRemovedAndChangedRoutesAndTheirUpstreamsAreNamed() {
        var changed = siem
        changed.match = RouteMatch(severity: .error)
        let pool = RouteSettings(
            name: "pool", mode: .balance, upstreams: [.ferry(.init(host: "127.0.0.1", port: 7001)), .ferry(.init(host: "127.0.0.1", port: 7002))])
        let plan = ReloadPlan(from: configuration([archive, siem]), to: configuration([changed, pool]))
        #expect(plan.routesKept.isEmpty)
        #expect(plan.routesAdded == ["pool"])
        #expect(plan.routesRemoved == ["archive"])
        #expect(plan.routesChanged == ["siem"])
        #expect(plan.upstreamsAdded == ["ferry://127.0.0.1:7001", "ferry://127.0.0.1:7002"])
        #expect(plan.upstreamsRemoved == ["file:/tmp/all.log"])
        #expect(!plan.changesNothingLive)
    }

    @Test func settingsReadAtStartOnlyAreReportedAsNeedingARestart() {
        var after = configuration([archive])
        after.queueCapacityLogs = 5
        after.logLevel = .debug
        let plan = ReloadPlan(from: configuration([archive]), to: after)
        #expect(plan.restartRequired == ["log.level", "queue.capacity-logs"])
        #expect(plan.changesNothingLive)
    }

    @Test func aChangedListenPortIsANewListenerAndAnOldOneLive() {
        let plan = ReloadPlan(from: configuration([archive]), to: configuration([archive], port: 6000))
        #expect(plan.listenersAdded == ["udp://127.0.0.1:6000"])
        #expect(plan.listenersRemoved == ["udp://127.0.0.1:5514"])
        #expect(plan.restartRequired.isEmpty)
        #expect(!plan.changesNothingLive)
    }

    @Test func aKeptListenersAllowlistNeedsARestart() throws {
        var after = configuration([archive])
        after.listenerAllow[after.listeners[0]] = SourceAllowlist([try #require(CIDRBlock(parsing: "10.0.0.0/8"))])
        let plan = ReloadPlan(from: configuration([archive]), to: after)
        #expect(plan.listenersAdded.isEmpty && plan.listenersRemoved.isEmpty)
        #expect(plan.restartRequired == ["listen"])
    }

    @Test func upstreamsWithoutRoutesAreTheDefaultRoute() {
        var before = FerryConfiguration()
        before.upstreams = [.udp(.init(host: "127.0.0.1", port: 9000))]
        var after = before
        after.upstreams.append(.file(path: "/tmp/also.log"))
        let plan = ReloadPlan(from: before, to: after)
        #expect(plan.routesChanged == ["default"])
        #expect(plan.upstreamsAdded == ["file:/tmp/also.log"])
    }
}
