import FerryCore
import Logging
import ServiceLifecycle
import UnixSignals

/// Ferry's signals, trapped before anything is bound so that none of them
/// ever takes its default action (SIGHUP's is to end the process at once):
///
/// - SIGTERM, SIGINT: graceful shutdown (stop intake, drain, exit 0). One that
///   arrives while Ferry is still starting is kept and acted on once it runs.
/// - SIGHUP: reopen Ferry's own log file and every `file:` upstream (what
///   logrotate's `postrotate` expects), and reload the configuration (routes
///   and upstreams change live; signals that arrive during a reload are
///   coalesced into one more, never lost).
struct SignalRouter {
    private let signals: UnixSignalsSequence

    /// Starts trapping; call first thing, before any socket is bound.
    static func trap() async -> SignalRouter {
        SignalRouter(signals: await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup))
    }

    /// Handles signals until cancelled.
    func route(group: ServiceGroup, handle: RelayHandle, writer: LogWriter, reloader: ConfigurationReloader, logger: Logger) async {
        for await signal in signals {
            switch signal {
            case .sighup:
                writer.reopen()
                let files = handle.relay?.reopenFiles() ?? []
                logger.notice(
                    "SIGHUP: files reopened",
                    metadata: [
                        "log.file": "\(writer.path ?? "stderr")",
                        "upstream.files": "\(files.joined(separator: ","))",
                    ])
                // On its own task: the next signal is read while this reload runs (and coalesced with it).
                Task { _ = await reloader.reload(trigger: "SIGHUP") }
            default:
                logger.info("shutdown requested", metadata: ["signal": "\(signal)"])
                await group.triggerGracefulShutdown()
            }
        }
    }
}
