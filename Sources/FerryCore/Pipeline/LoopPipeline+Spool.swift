/// The pipeline's side of the spool: waking the route queues whose logs wait on disk.
extension LoopPipeline {
    /// Has every queue with logs waiting on disk drain soon. Spilled logs move
    /// only when a queue drains, and while it spills nothing else asks it to
    /// (new logs go to disk behind the old): so after every burst, whatever it
    /// held, and at start, when a spool recovered from an earlier run may hold
    /// logs and no traffic comes at all.
    func scheduleReadBack() {
        for queue in routes where queue.readBack.hasSpilled { queue.scheduleRetry() }
    }
}
