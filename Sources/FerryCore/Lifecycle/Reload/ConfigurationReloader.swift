import Foundation
import Logging
import Synchronization

/// What the last reloads did, for `/v1/status` and `/metrics`.
public final class ReloadStats: Sendable {
    /// One reload's result.
    public struct Outcome: Sendable, Codable, Equatable {
        /// `success` or `failure`.
        public var result: String
        /// What asked for it: `SIGHUP` or `POST /v1/reload`.
        public var trigger: String
        /// Why it was refused (nil on success); the configuration in force kept running.
        public var error: String?
        /// What changed (nil when refused).
        public var changes: ReloadPlan?
        /// When it finished, seconds since 1970.
        public var finishedAt: Double
        /// Requests that arrived while an earlier reload ran and were answered by this one.
        public var coalesced: Int
    }

    private struct State {
        var succeeded = 0
        var failed = 0
        var lastSuccessAt: Double?
        var last: Outcome?
    }

    private let state = Mutex(State())

    public init() {}

    func record(_ outcome: Outcome) {
        state.withLock { state in
            if outcome.result == "success" {
                state.succeeded += 1
                state.lastSuccessAt = outcome.finishedAt
            } else {
                state.failed += 1
            }
            state.last = outcome
        }
    }

    public var succeeded: Int { state.withLock { $0.succeeded } }
    public var failed: Int { state.withLock { $0.failed } }
    public var lastSuccessAt: Double? { state.withLock { $0.lastSuccessAt } }
    public var last: Outcome? { state.withLock { $0.last } }
}

/// Live reload: reads the configuration again (file, environment, flags),
/// validates all of it, and has the relay apply the difference. An invalid
/// configuration is refused as a whole and logged; the one in force keeps
/// running. Requests that arrive while a reload runs are coalesced into one
/// more run after it (which reads the newest files), never lost and never run
/// in parallel. Under systemd each reload (with the ones coalesced into it) is
/// framed by `RELOADING=1` and `READY=1`, so `systemctl reload` waits for it.
public actor ConfigurationReloader {
    public typealias Load = @Sendable () async throws -> FerryConfiguration

    private let load: Load
    private let handle: RelayHandle
    private let stats: ReloadStats
    private let logger: Logger
    private let notifier: SystemdNotifier?
    private var running = false
    private var waiting: [CheckedContinuation<ReloadStats.Outcome, Never>] = []

    public init(load: @escaping Load, handle: RelayHandle, stats: ReloadStats, logger: Logger, notifier: SystemdNotifier? = nil) {
        self.load = load
        self.handle = handle
        self.stats = stats
        self.logger = logger
        self.notifier = notifier
    }

    /// Reloads now, or (while one runs) in the run right after it; returns what that run did.
    public func reload(trigger: String) async -> ReloadStats.Outcome {
        if running {
            return await withCheckedContinuation { waiting.append($0) }
        }
        running = true
        // Not before the start's READY=1: a reload asked for while Ferry starts is refused anyway.
        let notifier = handle.relay == nil ? nil : self.notifier
        notifier?.send(.reloadingNow(), logger: logger)
        defer {
            running = false
            notifier?.send(.ready, logger: logger)
        }
        let outcome = await runOnce(trigger: trigger, coalesced: 0)
        while !waiting.isEmpty {
            let batch = waiting
            waiting.removeAll()
            let next = await runOnce(trigger: trigger, coalesced: batch.count)
            for continuation in batch { continuation.resume(returning: next) }
        }
        return outcome
    }

    private func runOnce(trigger: String, coalesced: Int) async -> ReloadStats.Outcome {
        var outcome = ReloadStats.Outcome(result: "success", trigger: trigger, finishedAt: 0, coalesced: coalesced)
        do {
            let configuration = try await load()
            guard let relay = handle.relay else { throw ReloadError.notRunning(phase: "starting") }
            outcome.changes = try await relay.apply(configuration)
            if let changes = outcome.changes, !changes.restartRequired.isEmpty {
                logger.warning(
                    "reload: some changes need a restart",
                    metadata: ["keys": "\(changes.restartRequired.joined(separator: ","))", "effect": "not applied until Ferry restarts"])
            }
        } catch {
            outcome.result = "failure"
            outcome.error = String(describing: error)
            logger.error(
                "configuration reload refused",
                metadata: ["trigger": "\(trigger)", "error": "\(error)", "effect": "the configuration in force keeps running"])
        }
        outcome.finishedAt = Date().timeIntervalSince1970
        stats.record(outcome)
        return outcome
    }
}
