import Logging
import Synchronization

/// The key ring of `auth.key-file(s)`, re-read when a file changes, so keys
/// rotate without a restart (see the three steps in docs/trust.md).
///
/// Loops read it through a ``FrameKeyCache``: one relaxed atomic load per use,
/// the lock only when the ring changed. A file that fails to load keeps the
/// previous ring in use, and says so.
package final class FrameKeySource: Sendable {
    private struct Loaded: Sendable {
        var ring: FrameKeyRing
        var stamps: [FileStamp]
    }

    let paths: [String]
    private let loaded: Mutex<Loaded>
    /// Grows with every ring that replaces the one before.
    let generation = Atomic<Int>(0)

    package init(paths: [String]) throws(FrameKeyError) {
        self.paths = paths
        let stamps = paths.map { FileStamp(path: $0) }
        self.loaded = Mutex(Loaded(ring: try FrameKeyFile.load(paths), stamps: stamps))
    }

    var ring: FrameKeyRing { loaded.withLock { $0.ring } }

    /// Reads the files again if one changed; logs what happened (key ids only). Returns whether the ring changed.
    @discardableResult
    func reloadIfChanged(logger: Logger) -> Bool {
        let stamps = paths.map { FileStamp(path: $0) }
        guard stamps != loaded.withLock({ $0.stamps }) else { return false }
        do throws(FrameKeyError) {
            let ring = try FrameKeyFile.load(paths)
            loaded.withLock { $0 = Loaded(ring: ring, stamps: stamps) }
            generation.add(1, ordering: .releasing)
            logger.notice(
                "auth keys reloaded",
                metadata: ["auth.key_ids": "\(ring)", "auth.signing_key_id": "\(String(ring.signing.id, radix: 16))"])
            return true
        } catch {
            loaded.withLock { $0.stamps = stamps }  // not retried until a file changes again
            logger.error("auth key reload failed, the previous keys stay in use", metadata: ["error": "\(error)"])
            return false
        }
    }
}

/// One loop's view of a ``FrameKeySource``: the ring as of the last check.
/// Confined to its owner (a lane, a frame receiver).
struct FrameKeyCache {
    let source: FrameKeySource?
    private var generation = -1
    private var cached: FrameKeyRing?

    init(_ source: FrameKeySource?) {
        self.source = source
    }

    /// The current ring, or nil when frames are not keyed.
    @inline(__always)
    mutating func ring() -> FrameKeyRing? {
        guard let source else { return nil }
        let now = source.generation.load(ordering: .acquiring)
        if now != generation {
            generation = now
            cached = source.ring
        }
        return cached
    }
}
