/// The dedupe windows of the `ferry://` senders one loop has heard from:
/// bounded, with the least recently used sender evicted when full.
///
/// Eviction must not turn a retransmission into a second delivery. An
/// evicted sender's frames can only have been first sent at or before the
/// newest first-send time its window saw, so the table keeps the largest such
/// time of every evicted window (``evictedHorizon``, clamped to the time of
/// receipt so a sender's clock cannot push it into the future). A frame from
/// an unknown sender first sent at or before it may be a retransmission the
/// table forgot: it is ``DedupeWindow/Verdict/tooOld`` (not delivered, not
/// acknowledged; its sender sends it elsewhere after its TTL), never `new`.
///
/// All operations are O(1): a dictionary from sender to slot, and the slots
/// linked in order of use.
struct SenderWindows: Sendable {
    private struct Slot {
        var sender: UInt64
        var window: DedupeWindow
        /// Newest first-send time (ms, clamped to receipt) of a frame marked in `window`.
        var newestSentAt: UInt64
    }

    let capacity: Int
    private var slotOf: [UInt64: Int] = [:]
    private var slots: [Slot] = []
    private var order: RecencyOrder
    /// Senders evicted to make room since the table was made.
    private(set) var evictions = 0
    /// Frames first sent at or before this (ms since the epoch) may belong to an evicted window.
    private(set) var evictedHorizon: UInt64 = 0

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.order = RecencyOrder(capacity: capacity)
        slotOf.reserveCapacity(capacity)
        slots.reserveCapacity(capacity)
    }

    var count: Int { slots.count }

    /// What a frame of `sender` with `sequence`, first sent at `sentAt`, is; a
    /// known sender becomes the most recently used.
    mutating func check(sender: UInt64, sequence: UInt32, sentAt: UInt64) -> DedupeWindow.Verdict {
        guard let slot = slotOf[sender] else { return sentAt <= evictedHorizon ? .tooOld : .new }
        order.touch(slot)
        return slots[slot].window.check(sequence)
    }

    /// Records a delivered frame; evicts the least recently used sender if the table is full.
    mutating func mark(sender: UInt64, sequence: UInt32, sentAt: UInt64, now: UInt64) {
        let stamp = min(sentAt, now)
        if let slot = slotOf[sender] {
            slots[slot].window.mark(sequence)
            slots[slot].newestSentAt = max(slots[slot].newestSentAt, stamp)
            order.touch(slot)
            return
        }
        var window = DedupeWindow()
        window.mark(sequence)
        insert(Slot(sender: sender, window: window, newestSentAt: stamp))
    }

    /// Adds a sender not in the table as the most recently used, evicting the least recently used if full.
    private mutating func insert(_ fresh: Slot) {
        let slot: Int
        if slots.count < capacity {
            slot = order.append()
            slots.append(fresh)
        } else {
            slot = order.oldest
            order.touch(slot)
            let evicted = slots[slot]
            evictedHorizon = max(evictedHorizon, evicted.newestSentAt)
            evictions += 1
            slotOf[evicted.sender] = nil
            slots[slot] = fresh
        }
        slotOf[fresh.sender] = slot
    }

    /// Senders from least to most recently used (for tests).
    var sendersByUse: [UInt64] { order.fromOldest.map { slots[$0].sender } }

    // MARK: - Saved across restarts (``DedupeJournal``)

    /// Every sender's window, least recently used first.
    var saved: [(sender: UInt64, window: DedupeWindow, newestSentAt: UInt64)] {
        order.fromOldest.map { (slots[$0].sender, slots[$0].window, slots[$0].newestSentAt) }
    }

    /// Takes a saved window back as the most recently used (merged with the
    /// sender's own, if it has one), evicting as ``mark(sender:sequence:sentAt:now:)`` does.
    mutating func restore(sender: UInt64, window: DedupeWindow, newestSentAt: UInt64) {
        if let slot = slotOf[sender] {
            slots[slot].window.merge(window)
            slots[slot].newestSentAt = max(slots[slot].newestSentAt, newestSentAt)
            order.touch(slot)
            return
        }
        insert(Slot(sender: sender, window: window, newestSentAt: newestSentAt))
    }

    /// Takes a saved horizon back (the largest wins).
    mutating func restore(evictedHorizon horizon: UInt64) {
        evictedHorizon = max(evictedHorizon, horizon)
    }
}
