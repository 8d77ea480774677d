import DequeModule
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Maintenance (the spool's worker thread)

extension SpoolShard {
    /// What one round of the worker does for this shard.
    struct Maintenance {
        var watermark: UInt64
        /// The watermark as of the last sync (what a power loss keeps).
        var durableWatermark: UInt64
        /// Sync the active segment now.
        var sync: Bool
        var active: CInt
        /// One past the last sequence appended before this round.
        var appendedThrough: UInt64
        /// Rolled segments' descriptors to sync and close.
        var sealed: [CInt]
    }

    func takeMaintenance(syncing: Bool) -> Maintenance {
        state.withLock { state in
            let sync = syncing && (state.unsynced || !state.sealed.isEmpty)
            if sync { state.unsynced = false }
            defer { state.sealed.removeAll() }
            return Maintenance(
                watermark: state.ledger.watermark, durableWatermark: state.durableWatermark, sync: sync, active: state.activeDescriptor,
                appendedThrough: state.nextSequence, sealed: state.sealed)
        }
    }

    /// Deletes segments (oldest first, never the active one) whose every record is before `watermark`.
    func deleteDelivered(through watermark: UInt64, markDurable: Bool) {
        let doomed = state.withLock { state -> [Segment] in
            if markDurable { state.durableWatermark = max(state.durableWatermark, state.ledger.watermark) }
            var doomed: [Segment] = []
            while state.segments.count > 1, let oldest = state.segments.first, oldest.end <= watermark,
                state.spill.map({ $0.segmentFirst != oldest.first }) ?? true
            {
                doomed.append(state.segments.removeFirst())
            }
            while state.marks.count > 1, state.marks[1].sequence <= state.ledger.watermark { state.marks.removeFirst() }
            return doomed
        }
        for segment in doomed {
            unlink(segment.path)
            budget.release(segment.bytes)
        }
    }

    func closeFiles() {
        state.withLock { state in
            if state.activeDescriptor >= 0 { close(state.activeDescriptor) }
            state.activeDescriptor = -1
            for descriptor in state.sealed { close(descriptor) }
            state.sealed.removeAll()
        }
    }

    /// A shard's figures for status and metrics.
    package struct Figures: Sendable {
        /// Logs appended and not yet settled (on disk or in memory).
        package var undeliveredLogs: Int
        package var segments: Int
        package var bytes: Int
        /// Age in seconds of the oldest undelivered log (0 if none).
        package var oldestAgeSeconds: Double
        package var appended: Int
        package var recovered: Int
        package var settled: Int
        package var lostWhileReading: Int
        package var spilling: Bool
        package var lastWriteError: CInt?
    }

    package var figures: Figures {
        state.withLock { state in
            let undelivered = Int(state.nextSequence - state.ledger.watermark) - state.ledger.settledAhead
            var age = 0.0
            if undelivered > 0 {
                let mark = state.marks.last(where: { $0.sequence <= state.ledger.watermark })
                let segment = state.segments.first(where: { $0.end > state.ledger.watermark })
                if let at = mark?.at ?? segment?.createdAt { age = max(0, clock() - at) }
            }
            return Figures(
                undeliveredLogs: max(0, undelivered), segments: state.segments.count, bytes: state.segments.reduce(0) { $0 + $1.bytes },
                oldestAgeSeconds: age, appended: state.appended, recovered: state.recovered, settled: state.ledger.settled,
                lostWhileReading: state.lostWhileReading, spilling: state.spill != nil || !state.released.isEmpty,
                lastWriteError: state.lastWriteError)
        }
    }
}
