import Dispatch
import Synchronization

/// The hand-off between one receive thread and its event loop, and the rule
/// that keeps the logs of one receive socket in the order they arrived:
///
/// > A burst may leave on the receive thread (the direct route) only when
/// > every burst handed to the loop before it has been forwarded by the loop.
///
/// Bursts that need the loop (frames, logs while the route is closed, the rest
/// of a refused direct send) are queued here; the loop takes all that queued
/// up in one task (``takeAll()``) and reports them forwarded (``finished(_:)``).
/// Until it has, ``loopCaughtUp`` is false and the receive thread hands every
/// burst over too, so a direct send can never overtake a burst still on the loop.
///
/// Bounded: at most `capacity` bursts wait; the receive thread then waits
/// (``waitWhileFull(timeout:)``) and the kernel's receive buffer holds the rest.
package final class BurstHandoff: Sendable {
    private struct Queue: Sendable {
        var bursts: [ReceivedBurst] = []
        /// The array the loop gave back with ``BurstHandoff/finished(_:receiverWaiting:)``,
        /// emptied: the next ``BurstHandoff/takeAll()`` queues into it, so handing over allocates nothing.
        var spare: [ReceivedBurst] = []
        /// A task to take them is on its way to the loop.
        var scheduled = false
        /// The receive thread found the queue full and waits for the loop.
        var receiverWaiting = false
    }

    let capacity: Int
    private let queue = Mutex(Queue())
    /// Bursts handed over and not yet forwarded.
    private let unfinished = Atomic<Int>(0)
    /// Signalled by the loop when it has forwarded bursts while the receive thread waits.
    private let caughtUp = DispatchSemaphore(value: 0)

    package init(capacity: Int) {
        self.capacity = capacity
    }

    // MARK: - The receive thread's side

    /// True when no burst handed over is still unforwarded: a direct send now keeps the order.
    package var loopCaughtUp: Bool { unfinished.load(ordering: .acquiring) == 0 }

    /// Queues `burst` for the loop. Returns true when the caller must schedule
    /// a ``takeAll()`` on the loop (none is on its way yet).
    package func handOver(_ burst: ReceivedBurst) -> Bool {
        unfinished.add(1, ordering: .relaxed)
        return queue.withLock { queue in
            queue.bursts.append(burst)
            defer { queue.scheduled = true }
            return !queue.scheduled
        }
    }

    /// If `capacity` bursts wait, sleeps until the loop has taken them (or
    /// `timeout`, which only bounds a missed wake-up). Returns whether it was full.
    package func waitWhileFull(timeout: DispatchTimeInterval = .milliseconds(10)) -> Bool {
        let full = queue.withLock { queue in
            queue.receiverWaiting = queue.bursts.count >= capacity
            return queue.receiverWaiting
        }
        if full { _ = caughtUp.wait(timeout: .now() + timeout) }
        return full
    }

    /// Wakes a receive thread waiting in ``waitWhileFull(timeout:)`` (to stop it).
    package func wakeReceiver() {
        caughtUp.signal()
    }

    // MARK: - The loop's side

    /// Every burst queued since the last call, oldest first. Give the array
    /// back with ``finished(_:receiverWaiting:)`` once they are forwarded.
    package func takeAll() -> (bursts: [ReceivedBurst], receiverWaiting: Bool) {
        queue.withLock { queue in
            queue.scheduled = false
            defer { queue.receiverWaiting = false }
            // Swapped, not copied: the queue goes on in the spare array (emptied,
            // its capacity kept), and the caller holds the only reference to these.
            var taken = queue.spare
            swap(&taken, &queue.bursts)
            queue.spare = []
            return (taken, queue.receiverWaiting)
        }
    }

    /// The loop has forwarded `bursts` (what ``takeAll()`` gave it); wakes the
    /// receive thread if it was waiting (after forwarding: on a shared core the
    /// loop then finishes before the thread reads on). The array is kept for the next hand-over.
    package func finished(_ bursts: consuming [ReceivedBurst], receiverWaiting: Bool) {
        let count = bursts.count
        var emptied = bursts
        emptied.removeAll(keepingCapacity: true)
        unfinished.subtract(count, ordering: .releasing)
        queue.withLock { $0.spare = emptied }
        if receiverWaiting { caughtUp.signal() }
    }
}
