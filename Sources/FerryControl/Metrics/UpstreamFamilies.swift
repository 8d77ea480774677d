import FerryCore
import Prometheus

/// One upstream's families, labelled by its URL: made at start, or at the
/// first scrape after a reload added the upstream.
struct UpstreamFamilies {
    /// The `upstream` label.
    var url: String
    var forwarded: TotalCounter
    var forwardedBytes: TotalCounter
    var attemptsSucceeded: TotalCounter
    var attemptsFailed: TotalCounter
    var retries: TotalCounter
    var budgetExhausted: TotalCounter
    var failovers: TotalCounter
    var transitions: [CircuitBreaker.State: TotalCounter]
    var sendErrors: [SendErrorReason: TotalCounter]
    var breakerState: [CircuitBreaker.State: Gauge]
    var inFlight: Gauge
    var failureRate: Gauge
    var budgetTokens: Gauge
    var resent: TotalCounter
    var unacknowledged: Gauge
    var tlsFailures: [String: TotalCounter]
    var tlsInsecure: Gauge
    var unauthenticatedAcks: [FrameAuthFailure: TotalCounter]
    /// `ferry://` only: how frames fare on the path.
    var frames: FrameFamilies?
}

/// A `ferry://` upstream's path: frames sent, repaired after a loss, renewed,
/// moves to a new source port, and the round-trip time.
struct FrameFamilies {
    var sent: TotalCounter
    var lossRepairs: TotalCounter
    var renewals: TotalCounter
    var pathChanges: TotalCounter
    var roundTrip: Gauge

    init?(upstream: Upstream, registry: PrometheusCollectorRegistry) {
        guard case .ferry = upstream.url else { return nil }
        let label = [("upstream", upstream.url.description)]
        sent = TotalCounter(registry.ferryCounter("upstream_frames_sent", "ferry://: frames sent (first sends).", label))
        lossRepairs = TotalCounter(
            registry.ferryCounter(
                "upstream_loss_repairs", "ferry://: frames sent again because the receiver answered later frames but not them (a loss).", label))
        renewals = TotalCounter(
            registry.ferryCounter(
                "upstream_frame_renewals", "ferry://: frames renewed at the end of their TTL under the same identity (their acks were lost).",
                label))
        pathChanges = TotalCounter(
            registry.ferryCounter("upstream_path_changes", "ferry://: moves to a new source port after the receiver stopped answering.", label))
        roundTrip = registry.ferryGauge(
            "upstream_rtt", unit: "seconds", "ferry://: smoothed round-trip time of a frame and its ack (-1 before the first).", label)
    }

    mutating func update(from snapshot: UpstreamSnapshot.Frames) {
        sent.update(to: snapshot.sent)
        lossRepairs.update(to: snapshot.lossRepairs)
        renewals.update(to: snapshot.renewals)
        pathChanges.update(to: snapshot.pathChanges)
        roundTrip.set(snapshot.roundTripMilliseconds.map { $0 / 1000 } ?? -1)
    }

    var counters: [TotalCounter] { [sent, lossRepairs, renewals, pathChanges] }
}

extension UpstreamFamilies {
    /// Removes every family of this upstream (a reload removed it).
    func unregister(from registry: PrometheusCollectorRegistry) {
        let counters =
            [forwarded, forwardedBytes, attemptsSucceeded, attemptsFailed, retries, budgetExhausted, failovers, resent]
            + Array(transitions.values) + Array(sendErrors.values) + Array(tlsFailures.values) + Array(unauthenticatedAcks.values)
            + (frames?.counters ?? [])
        let gauges = [inFlight, failureRate, budgetTokens, unacknowledged, tlsInsecure] + Array(breakerState.values)
        registry.unregister(counters: counters, gauges: gauges + (frames.map { [$0.roundTrip] } ?? []))
    }

    /// Registers one upstream's families, labelled by its URL.
    init(upstream: Upstream, registry: PrometheusCollectorRegistry) {
        let label = ("upstream", upstream.url.description)
        var transitions: [CircuitBreaker.State: TotalCounter] = [:]
        var states: [CircuitBreaker.State: Gauge] = [:]
        for state in CircuitBreaker.State.allCases {
            transitions[state] = TotalCounter(
                registry.ferryCounter(
                    "breaker_transitions", "Circuit breaker transitions, by upstream and the state entered.", [label, ("to", state.rawValue)]))
            states[state] = registry.ferryGauge(
                "breaker_state", "Circuit breaker state per upstream: 1 for the current state, 0 for the others.",
                [label, ("state", state.rawValue)])
        }
        var sendErrors: [SendErrorReason: TotalCounter] = [:]
        for reason in SendErrorReason.allCases {
            sendErrors[reason] = TotalCounter(
                registry.ferryCounter("upstream_send_errors", "Send or write errors, by upstream and reason.", [label, ("reason", "\(reason)")]))
        }
        self.init(
            url: upstream.url.description,
            forwarded: TotalCounter(
                registry.ferryCounter("logs_forwarded", "Logs an upstream accepted (written, sent, or acknowledged).", [label])),
            forwardedBytes: TotalCounter(
                registry.makeCounter(
                    descriptor: .ferry("forwarded_bytes", unit: "total", help: "Payload bytes of logs forwarded, by upstream."), labels: [label])),
            attemptsSucceeded: TotalCounter(
                registry.ferryCounter(
                    "forward_attempts", "Forward attempts (batches or frames), by upstream and result.", [label, ("result", "success")])),
            attemptsFailed: TotalCounter(
                registry.ferryCounter(
                    "forward_attempts", "Forward attempts (batches or frames), by upstream and result.", [label, ("result", "failure")])),
            retries: TotalCounter(registry.ferryCounter("retries", "Frames retransmitted, by upstream.", [label])),
            budgetExhausted: TotalCounter(
                registry.ferryCounter("retry_budget_exhausted", "Retries refused because the upstream's retry budget was spent.", [label])),
            failovers: TotalCounter(
                registry.ferryCounter("failovers", "Moves of traffic or given-up frames away from an upstream.", [label])),
            transitions: transitions,
            sendErrors: sendErrors,
            breakerState: states,
            inFlight: registry.ferryGauge("inflight_frames", "ferry:// frames sent and not yet acknowledged, by upstream.", [label]),
            failureRate: registry.ferryGauge("breaker_failure_ratio", "Failure ratio over the breaker's sliding window, by upstream.", [label]),
            budgetTokens: registry.ferryGauge("retry_budget_tokens", "Retries the budget would allow right now, by upstream.", [label]),
            resent: TotalCounter(
                registry.ferryCounter(
                    "upstream_resent_logs", "tcp/tls: logs written again because a connection dropped before the peer acknowledged them.", [label]
                )),
            unacknowledged: registry.ferryGauge(
                "upstream_unacknowledged_logs", "tcp/tls: logs written and not yet acknowledged by the peer's TCP.", [label]),
            tlsFailures: Self.tlsFailureCounters(registry: registry, upstream: upstream),
            tlsInsecure: registry.ferryGauge(
                "upstream_tls_insecure", "1 for a tls:// upstream whose certificate and name are not verified (upstream-tls.insecure).", [label]),
            unauthenticatedAcks: Self.unauthenticatedCounters(registry: registry, upstream: upstream),
            frames: FrameFamilies(upstream: upstream, registry: registry))
    }

    static func tlsFailureCounters(registry: PrometheusCollectorRegistry, upstream: Upstream) -> [String: TotalCounter] {
        guard case .tls = upstream.url else { return [:] }
        var counters: [String: TotalCounter] = [:]
        for reason in TLSFailureReason.allCases.map(\.description) {
            counters[reason] = TotalCounter(
                registry.ferryCounter(
                    "upstream_tls_handshake_failures", "TLS handshakes with a tls:// upstream that failed, by reason.",
                    [("upstream", upstream.url.description), ("reason", reason)]))
        }
        return counters
    }

    /// `ferry_frames_unauthenticated_total{reason}`: frames this Ferry received that no
    /// key of `auth.key-file` signed; `ferry_upstream_acks_unauthenticated_total{upstream,
    /// reason}`: the same of acks a `ferry://` upstream's address sent back.
    static func unauthenticatedCounters(
        registry: PrometheusCollectorRegistry, upstream: Upstream?
    ) -> [FrameAuthFailure: TotalCounter] {
        var counters: [FrameAuthFailure: TotalCounter] = [:]
        for reason in FrameAuthFailure.allCases {
            if let upstream {
                guard case .ferry = upstream.url else { return [:] }
                counters[reason] = TotalCounter(
                    registry.ferryCounter(
                        "upstream_acks_unauthenticated",
                        "Acks from a ferry:// upstream's address ignored unread: no key of auth.key-file signed them.",
                        [("upstream", upstream.url.description), ("reason", reason.description)]))
            } else {
                counters[reason] = TotalCounter(
                    registry.ferryCounter(
                        "frames_unauthenticated", "ferry:// frames dropped unread: no key of auth.key-file signed them, by reason.",
                        [("reason", reason.description)]))
            }
        }
        return counters
    }
}
