import ArgumentParser
import FerryCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `ferry bench`: Ferry's own load tool. Sends sequence-numbered, timestamped
/// logs to an address and, with `--sink`, receives them where the relay
/// forwards them, to report loss, duplicates, rate and latency.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Send numbered, timestamped logs to a relay and measure what arrives at a sink.",
        discussion: """
            Example: ferry bench --target 127.0.0.1:5514 --sink 127.0.0.1:6514 --rate 50000 --count 500000
            (with ferry serve --upstream udp://127.0.0.1:6514 running). Without --sink only the sending side is measured.
            """)

    @Option(help: "Where to send (HOST:PORT), usually Ferry's listen address.")
    var target: String

    @Option(help: "Where to receive what the relay forwards (HOST:PORT); omit to only send.")
    var sink: String?

    @Option(help: "Logs per second; 0 = as fast as possible.")
    var rate: Int = 0

    @Option(help: "Logs to send (default 100000 unless --duration is given).")
    var count: Int?

    @Option(help: "Seconds to send for, instead of a count.")
    var duration: Double?

    @Option(
        help: "Bytes per log (at least 38), or MIN-MAX: each log's length drawn from MIN...MAX, as real lines differ (60-400).",
        transform: { text in
            guard let sizes = BenchSizes(parsing: text) else {
                throw ValidationError("--size '\(text)' is not BYTES or MIN-MAX (each 38...65507, MIN at most MAX)")
            }
            return sizes
        })
    var size: BenchSizes = BenchSizes(minimum: 200, maximum: 200)

    @Option(help: "Seconds without arrivals after which the sink stops waiting.")
    var idle: Double = 1.5

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    func validate() throws {
        guard HostAndPort(parsing: target) != nil else { throw ValidationError("--target '\(target)' is not HOST:PORT") }
        if let sink, HostAndPort(parsing: sink) == nil { throw ValidationError("--sink '\(sink)' is not HOST:PORT") }
        guard rate >= 0 else { throw ValidationError("--rate must be 0 (flat out) or more") }
        if let count, count <= 0 { throw ValidationError("--count must be positive") }
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
    }

    func run() throws {
        let receiver = try sink.map { LoadReceiver(socket: try BenchSocket.bound(to: HostAndPort(parsing: $0)!)) }
        let sender = LoadSender(socket: try BenchSocket.connected(to: HostAndPort(parsing: target)!), sizes: size, rate: rate)
        receiver?.start()

        let progress = !json && isatty(STDOUT_FILENO) == 1
        let done = AtomicFlag(false)
        let progressThread = Thread {
            while !done.load {
                usleep(500_000)
                guard progress, !done.load else { continue }
                let received = receiver.map { " received \($0.tally.unique)" } ?? ""
                let line = "\rsent \(sender.sent.load(ordering: .relaxed))\(received)   "
                _ = line.withCString { write(STDOUT_FILENO, $0, strlen($0)) }
            }
        }
        progressThread.start()
        let seconds = sender.run(count: duration == nil ? (count ?? 100_000) : count, duration: duration)
        receiver?.stop(afterIdle: idle)
        done.store(true)
        if progress { _ = write(STDOUT_FILENO, "\r", 1) }

        let report = BenchReport(
            sent: sender.sent.load(ordering: .relaxed), sendErrors: sender.errors.load(ordering: .relaxed), seconds: seconds,
            tally: receiver?.tally)
        print(json ? report.json : report.table)
    }
}

/// What `ferry bench` prints.
struct BenchReport {
    let sent: Int
    let sendErrors: Int
    let seconds: Double
    let tally: LoadReceiver.Tally?

    private var fields: [(String, String)] {
        var fields: [(String, String)] = [
            ("sent", "\(sent)"), ("send_errors", "\(sendErrors)"), ("seconds", String(format: "%.3f", seconds)),
            ("sent_per_second", String(format: "%.0f", Double(sent) / max(seconds, 1e-9))),
        ]
        if let tally {
            let lost = max(sent - tally.unique, 0)
            fields += [
                ("received", "\(tally.received)"), ("unique", "\(tally.unique)"), ("lost", "\(lost)"),
                ("loss_percent", String(format: "%.3f", sent > 0 ? Double(lost) * 100 / Double(sent) : 0)),
                ("duplicated", "\(tally.duplicated)"), ("foreign", "\(tally.foreign)"),
                ("latency_p50_us", micros(tally.latency.valueAtPercentile(50))),
                ("latency_p99_us", micros(tally.latency.valueAtPercentile(99))),
                ("latency_p999_us", micros(tally.latency.valueAtPercentile(99.9))),
                ("latency_max_us", micros(tally.latency.maxRecorded)),
            ]
        }
        return fields
    }

    private func micros(_ nanoseconds: UInt64) -> String {
        String(format: "%.1f", Double(nanoseconds) / 1_000)
    }

    var table: String {
        let width = fields.map(\.0.count).max() ?? 0
        return fields.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }

    var json: String {
        "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }
}
