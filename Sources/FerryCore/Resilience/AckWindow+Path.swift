import NIOCore

extension AckWindow {
    /// What is known of one path.
    struct Path {
        /// Which address it goes to (``switchPath(movingOutstanding:newAddress:now:)``).
        var destination = 0
        var outstanding = 0
        var lastAnswer: NIODeadline?
        var probes = 0
        /// Its last probe, and the last probe counted against it.
        var lastProbe: NIODeadline?
        var countedProbe: NIODeadline?
        /// Probes left unanswered while another path to the same address answered (rule 5).
        var contradicted = 0
        var nextProbe: NIODeadline?
    }
}
