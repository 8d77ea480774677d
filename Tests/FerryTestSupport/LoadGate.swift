/// Keeps the few tests that load the machine flat out (10,000 connections,
/// 20 MB through two relays) from running beside the tests that measure a
/// deadline, on 2-core CI machines: a heavy test runs alone among those
/// marked; timed tests run together, but never during a heavy one.
public actor LoadGate {
    public static let shared = LoadGate()
    private var heavy = false
    private var timed = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    private func enter(heavy wantsHeavy: Bool) async {
        while wantsHeavy ? (heavy || timed > 0) : heavy {
            await withCheckedContinuation { waiting.append($0) }
        }
        if wantsHeavy { heavy = true } else { timed += 1 }
    }

    private func leave(heavy wasHeavy: Bool) {
        if wasHeavy { heavy = false } else { timed -= 1 }
        let woken = waiting
        waiting.removeAll()
        for continuation in woken { continuation.resume() }
    }

    /// Runs `body` as a heavy test.
    public nonisolated func heavy<T>(_ body: () async throws -> T) async rethrows -> T {
        try await run(heavy: true, body)
    }

    /// Runs `body`, which measures time, while no heavy test runs.
    public nonisolated func timed<T>(_ body: () async throws -> T) async rethrows -> T {
        try await run(heavy: false, body)
    }

    private nonisolated func run<T>(heavy: Bool, _ body: () async throws -> T) async rethrows -> T {
        await enter(heavy: heavy)
        do {
            let result = try await body()
            await leave(heavy: heavy)
            return result
        } catch {
            await leave(heavy: heavy)
            throw error
        }
    }
}
