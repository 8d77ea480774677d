import ArgumentParser
import FerryCore

#if canImport(Glibc)
    import Glibc
#endif

/// `ferry`: an observability-first log relay (syslog over UDP, TCP and TLS, HTTP, ferry:// between Ferrys).
///
/// Exit codes: 0 success, 2 usage or configuration error, 1 runtime failure.
@main
struct Ferry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry",
        abstract: "An observability-first log relay: UDP, TCP, TLS, HTTP and ferry:// in; udp://, tcp://, tls://, ferry:// and file: out.",
        discussion: """
            Exit codes: 0 success, 2 usage or configuration error, 1 runtime failure. \
            Shell completion: ferry --generate-completion-script bash|zsh|fish.
            """,
        version: FerryVersion.current,
        subcommands: [Serve.self, CheckConfig.self, TraceCommand.self, BenchCommand.self, ConfigReferenceCommand.self])

    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as ConfigurationError {
            Self.fail(error.description, code: 2)
        } catch let error as RuntimeFailure {
            Self.fail(error.description, code: 1)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                Self.exit(withError: error)  // --help, --version
            }
            // Usage errors (ArgumentParser's EX_USAGE) become 2; anything else is a runtime failure.
            let message = fullMessage(for: error)
            if error is ValidationError || code == .validationFailure {
                Self.fail(message, code: 2)
            }
            Self.fail(message.isEmpty ? String(describing: error) : message, code: 1)
        }
    }

    static func fail(_ message: String, code: Int32) -> Never {
        let line = "ferry: " + message + "\n"
        _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
        Glibc.exit(code)
    }
}

/// A failure while running (not a configuration problem): exit code 1.
struct RuntimeFailure: Error, CustomStringConvertible {
    let description: String
}
