/// Items ordered by the time they are due (a binary min-heap); items due at
/// the same time leave in the order they came, so a fixed delay keeps order.
struct DueQueue<Item> {
    private var heap: [(due: UInt64, order: UInt64, item: Item)] = []
    private var added: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }
    /// When the first item is due.
    var nextDue: UInt64? { heap.first?.due }

    mutating func insert(_ item: Item, due: UInt64) {
        added += 1
        heap.append((due, added, item))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(child, parent) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the first item if it is due at `now`.
    mutating func popDue(now: UInt64) -> Item? {
        guard let first = heap.first, first.due <= now else { return nil }
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, precedes(left, smallest) { smallest = left }
            if right < heap.count, precedes(right, smallest) { smallest = right }
            if smallest == parent { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return first.item
    }

    mutating func removeAll() { heap.removeAll() }

    private func precedes(_ a: Int, _ b: Int) -> Bool {
        heap[a].due < heap[b].due || (heap[a].due == heap[b].due && heap[a].order < heap[b].order)
    }
}
