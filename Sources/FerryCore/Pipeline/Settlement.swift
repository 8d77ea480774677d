/// Where a lane gives back what it held once records leave Ferry (delivered,
/// or dropped with a counted reason): their room in the memory buffer, and
/// their place in the spool, which then counts them as done.
///
/// Records handed back to the pipeline (to fail over or wait) are not
/// settled: they keep both until they finally leave.
package struct Settlement: Sendable {
    let capacity: BufferCapacity
    /// The one spool, without `routes`.
    let spool: Spool?
    /// Each route's spool, with `routes` and `spool.dir`: a run names its spool.
    let registry: SpoolRegistry?

    package init(capacity: BufferCapacity, spool: Spool?, registry: SpoolRegistry? = nil) {
        self.capacity = capacity
        self.spool = spool
        self.registry = registry
    }

    @inline(__always)
    func settle(count: Int, bytes: Int, spans: SpoolSpans) {
        capacity.release(count: count, bytes: bytes)
        guard !spans.isEmpty else { return }
        if let registry {
            registry.settle(spans)
        } else if let spool {
            spool.settle(spans)
        }
    }

    /// The spool a run with id `id` belongs to.
    func spool(id: Int) -> Spool? {
        registry?.spool(id: id) ?? spool
    }
}
