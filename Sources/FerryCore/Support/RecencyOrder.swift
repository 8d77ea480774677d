/// The order of use of a bounded table's slots (indices `0..<count`), least to
/// most recently used, as a doubly linked list in two arrays: every operation is
/// O(1) and, once `capacity` slots exist, allocates nothing.
///
/// The tables own their keys and values; this owns only which slot was used
/// last and which is the next to evict (``SenderWindows``, ``SourceRateTable``).
struct RecencyOrder: Sendable {
    private var older: [Int] = []
    private var newer: [Int] = []
    /// The most and the least recently used slot (-1 while empty).
    private(set) var newest = -1
    private(set) var oldest = -1

    init(capacity: Int) {
        older.reserveCapacity(capacity)
        newer.reserveCapacity(capacity)
    }

    var count: Int { older.count }

    /// A new slot (the next index), now the most recently used.
    mutating func append() -> Int {
        older.append(-1)
        newer.append(-1)
        let slot = older.count - 1
        linkAsNewest(slot)
        return slot
    }

    /// Makes `slot` the most recently used.
    mutating func touch(_ slot: Int) {
        guard slot != newest else { return }
        unlink(slot)
        linkAsNewest(slot)
    }

    /// The slots from least to most recently used.
    var fromOldest: [Int] {
        var result: [Int] = []
        var slot = oldest
        while slot >= 0 {
            result.append(slot)
            slot = newer[slot]
        }
        return result
    }

    private mutating func unlink(_ slot: Int) {
        let (before, after) = (older[slot], newer[slot])
        if before >= 0 { newer[before] = after } else if oldest == slot { oldest = after }
        if after >= 0 { older[after] = before } else if newest == slot { newest = before }
        older[slot] = -1
        newer[slot] = -1
    }

    private mutating func linkAsNewest(_ slot: Int) {
        older[slot] = newest
        newer[slot] = -1
        if newest >= 0 { newer[newest] = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
    }
}
