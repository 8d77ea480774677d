/// Where a lane gives back what it held once records leave Ferry (delivered,
/// or dropped with a counted reason): their room in the memory buffer, and
/// their place in the spool, which then counts them as done.
///
/// Records handed back to the pipeline (to fail over or wait) are not
/// settled: they keep both until they finally leave.
package struct Settlement: Sendable {
    let capacity: BufferCapacity
    let spool: Spool?

    package init(capacity: BufferCapacity, spool: Spool?) {
        self.capacity = capacity
        self.spool = spool
    }

    @inline(__always)
    func settle(count: Int, bytes: Int, spans: SpoolSpans) {
        capacity.release(count: count, bytes: bytes)
        if let spool, !spans.isEmpty { spool.settle(spans) }
    }
}
