import Logging
import Tracing

/// The trace a piece of work belongs to, carried in the task's `ServiceContext`
/// so that every log line written while serving it carries `trace_id` and `span_id`.
public struct TraceMetadata: Sendable, Equatable {
    public var traceID: String
    public var spanID: String

    public init(traceID: String, spanID: String) {
        self.traceID = traceID
        self.spanID = spanID
    }

    private enum Key: ServiceContextKey {
        typealias Value = TraceMetadata
        static let nameOverride: String? = "ferry.trace"
    }

    /// The trace of the current task, if any.
    public static var current: TraceMetadata? {
        ServiceContext.current?[Key.self]
    }

    /// Runs `body` with this trace as the current one.
    public func withCurrent<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        var context = ServiceContext.current ?? .topLevel
        context[Key.self] = self
        return try await ServiceContext.withValue(context) { try await body() }
    }
}

extension Logger.MetadataProvider {
    /// Adds `trace_id` and `span_id` of the current task's trace to every log line.
    public static let ferryTrace = Logger.MetadataProvider {
        guard let trace = TraceMetadata.current else { return [:] }
        return ["trace_id": .string(trace.traceID), "span_id": .string(trace.spanID)]
    }
}
