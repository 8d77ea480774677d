/// Lines parsed, by outcome (`rfc5424`, `rfc3164`, `unparsed`), for whichever
/// part parses them: one instance per thread or loop, summed by readers.
public final class SyslogParseCounters: Sendable {
    private let counts: [AtomicCounter] = SyslogParseOutcome.allCases.map { _ in AtomicCounter() }

    public init() {}

    @inline(__always)
    public func count(_ outcome: SyslogParseOutcome, _ amount: Int = 1) {
        counts[outcome.rawValue].add(amount)
    }

    public subscript(outcome: SyslogParseOutcome) -> Int { counts[outcome.rawValue].load }
}
