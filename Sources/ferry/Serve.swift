import ArgumentParser
import FerryControl
import FerryCore
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// `ferry serve`: receive logs (UDP, TCP, TLS, HTTP, ferry:// frames) and forward them to the upstreams.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Receive logs over UDP, TCP, TLS, HTTP and ferry:// and forward them to the upstreams (the main job).",
        discussion: """
            With no upstream and no routes configured, logs are appended to ./ferry-data/forwarded.log. \
            Precedence: flags > FERRY_* environment > --config file > defaults; 'ferry check-config' prints every effective value. \
            SIGTERM/SIGINT drain and exit 0; SIGHUP reopens log files and reloads the configuration. \
            Under systemd (Type=notify) Ferry sends READY=1 to $NOTIFY_SOCKET once its listeners are bound.
            """)

    @OptionGroup var options: ConfigOptions

    @Flag(name: .customLong("print-config"), help: "Print the effective configuration and exit.")
    var printConfig = false

    func run() async throws {
        // Before anything is bound: no signal may take its default action from here on.
        let signals = await SignalRouter.trap()
        let configuration = try await options.load()
        if printConfig {
            print(configuration.renderedLines.joined(separator: "\n"))
            return
        }
        StartupPages.releaseAfterConfiguration()
        let writer: LogWriter
        if let path = configuration.logFile {
            do {
                writer = try LogWriter(path: path, maxBytes: configuration.logMaxBytes, keep: configuration.logKeep)
            } catch {
                throw ConfigurationError.invalidValue(key: ConfigurationKey.logFile.name, value: path, allowed: "a writable file path (\(error))")
            }
        } else {
            writer = LogWriter()
        }
        defer { writer.close() }
        let logger = Self.bootstrapLogging(configuration: configuration, writer: writer)
        for name in options.loader.unknownEnvironmentVariables {
            logger.warning("environment variable names no configuration key and is ignored", metadata: ["variable": "\(name)"])
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        // The relay starts inside the group (RelayService); the others find it in `handle`.
        let handle = RelayHandle()
        let metrics = MetricsEndpoint(registry: registry, handle: handle, logLinesDropped: writer.droppedLines)
        // Read again (the configuration holds the path): what SIGHUP does, behind the token.
        let options = self.options
        let notifier = SystemdNotifier(environment: ProcessInfo.processInfo.environment)
        let reloader = ConfigurationReloader(
            load: { try await options.load() }, handle: handle, stats: handle.reloads, logger: logger, notifier: notifier)
        let admin = AdminAccess(
            token: try configuration.trust.loadAdminToken(), logger: logger, reload: { await reloader.reload(trigger: "POST /v1/reload") },
            reopen: {
                writer.reopen()
                return [writer.path].compactMap { $0 } + (handle.relay?.reopenFiles() ?? [])
            })
        let http = ControlPlane.makeApplication(configuration: configuration, handle: handle, metrics: metrics, admin: admin, logger: logger) {
            channel in
            logger.info("http listening", metadata: ["http.address": "\(channel.localAddress?.hostAndPort ?? "?")"])
        }
        let relay = RelayService(
            configuration: configuration, logger: logger, latency: RelayMetrics.latencyRecorders(registry: registry), handle: handle,
            notifier: notifier)
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: http),
                    // A failed start shuts the others down gracefully (as SIGTERM does), not by
                    // cancellation, which made the HTTP server log a CancellationError beside the real error.
                    .init(service: relay, failureTerminationBehavior: .gracefullyShutdownGroup),
                    .init(service: NameResolutionMonitor(handle: handle)),
                    .init(service: KernelSocketMonitor(handle: handle)),
                ],
                gracefulShutdownSignals: [],  // SignalRouter triggers it
                cancellationSignals: [],
                logger: logger))
        let routing = Task { await signals.route(group: group, handle: handle, writer: writer, reloader: reloader, logger: logger) }
        defer { routing.cancel() }
        do {
            try await group.run()
        } catch {
            if handle.relay != nil { logger.critical("stopped on error", metadata: ["error": "\(error)"]) }
            await handle.relay?.shutdown()  // idempotent: a no-op if it already stopped
            throw RuntimeFailure(description: String(describing: error))
        }
    }
}

extension Serve {
    /// Installs Ferry's log handler process-wide and returns the root logger.
    static func bootstrapLogging(configuration: FerryConfiguration, writer: LogWriter) -> Logger {
        LoggingSystem.bootstrap(
            { label, provider in
                var handler = JSONLogHandler(
                    label: label, level: configuration.logLevel, format: configuration.logFormat, writer: writer, metadataProvider: provider)
                handler.metadata["instance"] = .string(configuration.instance)
                return handler
            },
            metadataProvider: .ferryTrace)
        return Logger(label: "ferry")
    }
}
