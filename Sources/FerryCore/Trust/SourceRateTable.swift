/// Token buckets per source address in a table of bounded size: a pure state
/// machine over an injected clock (nanoseconds), so its arithmetic and its
/// evictions are tested without sleeping.
///
/// Each source gets `burst` tokens and `rate` more per second, up to `burst`;
/// a log takes one. When the table is full, the least recently seen source is
/// evicted (counted) to make room: a flood of spoofed addresses costs at most
/// `capacity` entries and never an allocation (the storage is reserved up front).
package struct SourceRateTable {
    private struct Entry {
        var key: SourceKey
        var tokens: Double
        var updated: UInt64
        var admitted: Int
        var dropped: Int
    }

    let rate: Double
    let burst: Double
    let capacity: Int
    private var slots: [SourceKey: Int]
    private var entries: [Entry] = []
    private var order: RecencyOrder
    /// Sources evicted to make room for another.
    private(set) var evictions = 0

    package init(rate: Double, burst: Int, capacity: Int) {
        self.rate = rate
        self.burst = Double(burst)
        self.capacity = capacity
        self.slots = Dictionary(minimumCapacity: capacity)
        self.entries.reserveCapacity(capacity)
        self.order = RecencyOrder(capacity: capacity)
    }

    var count: Int { entries.count }

    /// Takes up to `count` tokens of `key`'s bucket at `now`; returns how many it got.
    package mutating func take(_ key: SourceKey, count: Int = 1, now: UInt64, allOrNothing: Bool = false) -> Int {
        let index = slot(for: key, now: now)
        var entry = entries[index]
        if now > entry.updated {
            entry.tokens = min(burst, entry.tokens + Double(now - entry.updated) * rate / 1e9)
            entry.updated = now
        }
        let available = Int(entry.tokens)
        let granted = allOrNothing && available < count ? 0 : min(count, available)
        entry.tokens -= Double(granted)
        entry.admitted += granted
        entry.dropped += count - granted
        entries[index] = entry
        return granted
    }

    /// The sources with the most refused logs, most first (for status).
    func topDropped(_ limit: Int) -> [(source: SourceKey, dropped: Int, admitted: Int)] {
        entries.filter { $0.dropped > 0 }.sorted { $0.dropped > $1.dropped }.prefix(limit).map { ($0.key, $0.dropped, $0.admitted) }
    }

    /// The entry of `key`, made (or taken from the least recently seen) if it has none; moved to the front.
    private mutating func slot(for key: SourceKey, now: UInt64) -> Int {
        if let index = slots[key] {
            order.touch(index)
            return index
        }
        let fresh = Entry(key: key, tokens: burst, updated: now, admitted: 0, dropped: 0)
        let index: Int
        if entries.count < capacity {
            index = order.append()
            entries.append(fresh)
        } else {
            index = order.oldest
            order.touch(index)
            slots.removeValue(forKey: entries[index].key)
            entries[index] = fresh
            evictions += 1
        }
        slots[key] = index
        return index
    }
}
