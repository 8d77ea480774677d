import ArgumentParser
import FerryCore
import Foundation

/// `ferry trace TRACE_ID FILE…`: follow one trace through every hop's log files.
struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Print the timeline of one trace id across Ferry log files (rotated ones included).",
        discussion: "Give each hop's log file; its rotated siblings (FILE.1, FILE.2, …) are read too. Exits 1 when no line carries the trace id.")

    @Argument(help: "The 32-hex-digit trace id (from a log line's trace_id or a traceparent).")
    var traceID: String

    @Argument(help: "Ferry log files (JSON Lines).")
    var files: [String]

    @Option(name: .long, help: "text (a table) or json (JSON Lines).")
    var format: OutputFormat = .text

    enum OutputFormat: String, ExpressibleByArgument {
        case text, json
    }

    func validate() throws {
        guard traceID.count == 32, traceID.allSatisfy(\.isHexDigit) else {
            throw ValidationError("trace id '\(traceID)' is not 32 hex digits")
        }
        guard !files.isEmpty else { throw ValidationError("give at least one log file") }
    }

    func run() throws {
        var timeline = TraceTimeline()
        for path in files {
            let paths = TraceTimeline.filesWithRotations(of: path)
            guard !paths.isEmpty else { throw RuntimeFailure(description: "cannot read log file '\(path)': no such file") }
            for file in paths {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw RuntimeFailure(description: "cannot read log file '\(file)'")
                }
                let (contents, invalid) = TraceTimeline.validLines(of: Array(data))
                if invalid > 0 {
                    let note = "ferry trace: skipped \(invalid) line(s) of '\(file)' that are not valid UTF-8\n"
                    FileHandle.standardError.write(Data(note.utf8))
                }
                timeline.add(contents: contents, file: file, traceID: traceID)
            }
        }
        guard !timeline.events.isEmpty else {
            throw RuntimeFailure(description: "no log line carries trace id \(traceID) in \(files.joined(separator: ", "))")
        }
        print(format == .json ? timeline.renderJSON() : timeline.renderText(), terminator: "")
    }
}
