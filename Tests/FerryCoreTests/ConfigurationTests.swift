import Foundation
import Testing

@testable import FerryCore

struct ConfigurationTests {
    private func load(
        flags: [String: String] = [:], upstreams: [String] = [], environment: [String: String] = [:], file: (String, String)? = nil
    ) async throws -> FerryConfiguration {
        var path: String?
        if let (name, contents) = file {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-config-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            path = directory.appendingPathComponent(name).path
            try contents.write(toFile: path!, atomically: true, encoding: .utf8)
        }
        return try await ConfigurationLoader(flags: flags, upstreamFlags: upstreams, environment: environment, filePath: path).load()
    }

    @Test func defaultsAreTheDocumentedOnes() async throws {
        let configuration = try await load()
        #expect(configuration.listen == HostAndPort(host: "0.0.0.0", port: 5514))
        #expect(configuration.httpAddress == HostAndPort(host: "127.0.0.1", port: 9514))
        #expect(configuration.upstreams == [.file(path: "./ferry-data/forwarded.log")])
        #expect(configuration.receiveSockets == 0)
        #expect(configuration.effectiveReceiveSockets == ProcessInfo.processInfo.activeProcessorCount)
        #expect(configuration.drainTimeout == .seconds(5))
    }

    /// JSON keeps the last of two equal keys silently; Ferry refuses, as YAML does.
    @Test func duplicateKeysInAJSONFileAreRejected() async throws {
        for json in [#"{"listen": "127.0.0.1:1", "listen": "127.0.0.1:2"}"#, #"{"http": {"address": "127.0.0.1:1", "address": "127.0.0.1:2"}}"#] {
            await #expect(throws: ConfigurationError.self) { try await load(file: ("ferry.json", json)) }
        }
        do {
            _ = try await load(
                file: ("ferry.json", #"{"queue": {"capacity-logs": 5}, "http": {"address": "127.0.0.1:1", "address": "127.0.0.1:2"}}"#))
        } catch let error as ConfigurationError {
            #expect(error.description.contains("'http.address' appears twice"), "\(error)")
        }
        // Equal keys in different objects, and keys inside strings, are fine.
        let ok = try await load(
            file: ("ferry.json", #"{"http": {"address": "127.0.0.1:7"}, "listen": "127.0.0.1:8", "instance": "x{\"address\":1}"}"#))
        #expect(ok.listen.port == 8 && ok.httpAddress.port == 7)
    }

    /// `FERRY_UPSTREAMS=","` used to mean "the default"; an empty item is now an error naming it.
    @Test func anUpstreamListWithAnEmptyItemIsAnError() async throws {
        for value in [",", "udp://127.0.0.1:9,,file:x.log", " , "] {
            do {
                _ = try await load(environment: ["FERRY_UPSTREAMS": value])
                Issue.record("FERRY_UPSTREAMS='\(value)' was accepted")
            } catch let error as ConfigurationError {
                #expect(error.description.contains("key 'upstreams'") && error.description.contains("is empty"), "\(error)")
            }
        }
        let empty = try await load(environment: ["FERRY_UPSTREAMS": ""])  // not set at all
        #expect(empty.upstreams == [.file(path: "./ferry-data/forwarded.log")])
    }

    @Test func fileOverridesDefaultsEnvironmentOverridesFileFlagsOverrideEnvironment() async throws {
        let yaml = """
            listen: "127.0.0.1:7001"
            queue:
              capacity-logs: 111
              capacity-bytes: 1MiB
            receive:
              batch: 8
            upstreams:
              - udp://127.0.0.1:9001
              - file:/tmp/a.log
            """
        let fileOnly = try await load(file: ("ferry.yaml", yaml))
        #expect(fileOnly.listen.port == 7001)
        #expect(fileOnly.queueCapacityLogs == 111)
        #expect(fileOnly.queueCapacityBytes == 1 << 20)
        #expect(fileOnly.upstreams == [.udp(HostAndPort(host: "127.0.0.1", port: 9001)), .file(path: "/tmp/a.log")])

        let environment = ["FERRY_LISTEN": "127.0.0.1:7002", "FERRY_QUEUE_CAPACITY_LOGS": "222", "FERRY_UPSTREAMS": "udp://127.0.0.1:9002"]
        let withEnvironment = try await load(environment: environment, file: ("ferry.yaml", yaml))
        #expect(withEnvironment.listen.port == 7002)
        #expect(withEnvironment.queueCapacityLogs == 222)
        #expect(withEnvironment.receiveBatch == 8)  // still from the file
        #expect(withEnvironment.upstreams == [.udp(HostAndPort(host: "127.0.0.1", port: 9002))])

        let withFlags = try await load(
            flags: ["listen": "127.0.0.1:7003"], upstreams: ["file:/tmp/b.log"], environment: environment, file: ("ferry.yaml", yaml))
        #expect(withFlags.listen.port == 7003)
        #expect(withFlags.queueCapacityLogs == 222)  // still from the environment
        #expect(withFlags.upstreams == [.file(path: "/tmp/b.log")])
    }

    @Test func jsonFilesWorkWithNumbersAndStrings() async throws {
        let json = #"{"queue": {"capacity-logs": 333, "capacity-bytes": "2MiB"}, "drain": {"timeout": 1.5}, "log": {"level": "debug"}}"#
        let configuration = try await load(file: ("ferry.json", json))
        #expect(configuration.queueCapacityLogs == 333)
        #expect(configuration.queueCapacityBytes == 2 << 20)
        #expect(configuration.drainTimeout == .milliseconds(1500))
        #expect(configuration.logLevel == .debug)
    }

    /// Every key rejects a bad value with an error that names the key and the value.
    @Test(arguments: [
        ("listen", "nope"),
        ("listen", "127.0.0.1:70000"),
        ("http.address", "localhost"),
        ("http.max-body-bytes", "0"),
        ("upstreams", "http://127.0.0.1:9"),
        ("listen", "tcp://127.0.0.1:9?framing=xml"),
        ("tls.client-auth", "sometimes"),
        ("upstreams", "udp://127.0.0.1:0"),
        ("queue.capacity-logs", "-5"),
        ("queue.capacity-logs", "abc"),
        ("queue.capacity-bytes", "12XB"),
        ("datagram.max-bytes", "70000"),
        ("receive.sockets", "1000"),
        ("receive.buffer-bytes", "10"),
        ("receive.batch", "0"),
        ("log.level", "loud"),
        ("log.format", "xml"),
        ("drain.timeout", "soon"),
    ])
    func invalidValueNamesKeyAndValue(key: String, value: String) async throws {
        let variable = ConfigurationKey.environmentVariable(for: key)
        let error = await #expect(throws: ConfigurationError.self) {
            _ = try await load(environment: [variable: value])
        }
        let message = error?.description ?? ""
        #expect(message.contains("'\(key)'"), "message: \(message)")
        #expect(message.contains(value), "message: \(message)")
        #expect(message.contains("allowed"), "message: \(message)")
    }

    @Test func listenTakesAtMost63Listeners() async throws {
        let many = (0..<64).map { "udp://127.0.0.1:\(7_000 + $0)" }
        let variable = ConfigurationKey.listen.environmentVariable
        let error = await #expect(throws: ConfigurationError.self) {
            _ = try await load(environment: [variable: many.joined(separator: ",")])
        }
        #expect(error?.description.contains("'listen'") == true && error?.description.contains("at most 63") == true, "\(String(describing: error))")
        let fine = try await load(environment: [variable: many.dropLast().joined(separator: ",")])
        #expect(fine.listeners.count == 63)
    }

    @Test func invalidValueInFlagsAndFileNamesTheKeyToo() async throws {
        let fromFlag = await #expect(throws: ConfigurationError.self) {
            _ = try await load(flags: ["receive.batch": "many"])
        }
        #expect(fromFlag?.description.contains("'receive.batch'") == true)
        let fromFile = await #expect(throws: ConfigurationError.self) {
            _ = try await load(file: ("ferry.yaml", "queue:\n  capacity-logs: lots\n"))
        }
        #expect(fromFile?.description.contains("'queue.capacity-logs'") == true)
    }

    @Test func bufferSmallerThanOneDatagramIsRejected() async throws {
        let error = await #expect(throws: ConfigurationError.self) {
            _ = try await load(flags: ["queue.capacity-bytes": "1000", "datagram.max-bytes": "2000"])
        }
        #expect(error?.description.contains("queue.capacity-bytes") == true)
    }

    @Test func unreadableOrUnknownFilesAreReported() async throws {
        await #expect(throws: ConfigurationError.self) {
            _ = try await ConfigurationLoader(environment: [:], filePath: "/nonexistent/ferry.yaml").load()
        }
        let error = await #expect(throws: ConfigurationError.self) {
            _ = try await load(file: ("ferry.toml", "x = 1"))
        }
        #expect(error?.description.contains(".yaml") == true)
        await #expect(throws: ConfigurationError.self) {
            _ = try await load(file: ("broken.yaml", "listen: [unclosed"))
        }
    }

    @Test func anUnknownKeyInAFileIsRejectedWithASuggestion() async throws {
        let error = await #expect(throws: ConfigurationError.self) {
            _ = try await load(file: ("ferry.yaml", "http:\n  adress: \"0.0.0.0:9514\"\n"))
        }
        #expect(error?.description.contains("unknown key 'http.adress'") == true)
        #expect(error?.description.contains("did you mean 'http.address'") == true)
        await #expect(throws: ConfigurationError.self) {
            _ = try await load(file: ("ferry.json", #"{"queue": {"capacity": 5}}"#))
        }
    }

    @Test func unknownFerryEnvironmentVariablesAreReported() {
        let loader = ConfigurationLoader(environment: ["FERRY_QUEUE_CAPACITY_LOG": "5", "FERRY_LISTEN": "127.0.0.1:1", "HOME": "/root"])
        #expect(loader.unknownEnvironmentVariables == ["FERRY_QUEUE_CAPACITY_LOG"])
    }

    @Test func environmentVariableNamesFollowTheKeys() {
        let names = FerryConfiguration.keys.map(\.environmentVariable)
        #expect(names.contains("FERRY_QUEUE_CAPACITY_LOGS"))
        #expect(names.contains("FERRY_HTTP_ADDRESS"))
        #expect(names.contains("FERRY_DATAGRAM_MAX_BYTES"))
    }

    @Test func sizesAndDurationsParse() {
        #expect(ByteSizeParser.parse("64MiB") == 64 << 20)
        #expect(ByteSizeParser.parse("512k") == 512 << 10)
        #expect(ByteSizeParser.parse("12XB") == nil)
        #expect(DurationParser.parse("500ms") == .milliseconds(500))
        #expect(DurationParser.parse("100us") == .microseconds(100))
        #expect(DurationParser.parse("2s") == .seconds(2))
        #expect(DurationParser.parse("-1") == nil)
    }

    /// `listen` takes one address or a list (a YAML list, or comma-separated), of any kind.
    @Test func listenTakesOneOrAListOfURLs() async throws {
        let one = try await load(environment: ["FERRY_LISTEN": "127.0.0.1:7001"])
        #expect(one.listeners == [.udp(HostAndPort(host: "127.0.0.1", port: 7001))])
        let yaml = """
            listen: ["udp://[::]:514", "tcp://0.0.0.0:514?framing=octet", "tls://0.0.0.0:6514"]
            tls: { cert: /c.pem, key: /k.pem }
            """
        let many = try await load(file: ("ferry.yaml", yaml))
        #expect(
            many.listeners == [
                .udp(HostAndPort(host: "::", port: 514)), .tcp(HostAndPort(host: "0.0.0.0", port: 514), framing: .octet),
                .tls(HostAndPort(host: "0.0.0.0", port: 6514), framing: .detect),
            ])
        #expect(many.listeners.map(\.description) == ["udp://[::]:514", "tcp://0.0.0.0:514?framing=octet", "tls://0.0.0.0:6514"])
        let upstream = try await load(upstreams: ["tls://siem.example:6514?framing=lf", "tcp://10.0.0.9:514"])
        #expect(
            upstream.upstreams == [
                .tls(HostAndPort(host: "siem.example", port: 6514), framing: .lf), .tcp(HostAndPort(host: "10.0.0.9", port: 514), framing: .octet),
            ])
    }

    /// What TLS needs is checked when the configuration is read, naming the key.
    @Test func tlsSettingsThatCannotWorkAreRefused() async throws {
        let noCertificate = await #expect(throws: ConfigurationError.self) {
            _ = try await load(environment: ["FERRY_LISTEN": "tls://127.0.0.1:6514"])
        }
        #expect(noCertificate?.description.contains("tls.cert") == true)
        let noCA = await #expect(throws: ConfigurationError.self) {
            _ = try await load(environment: ["FERRY_TLS_CLIENT_AUTH": "required"])
        }
        #expect(noCA?.description.contains("tls.ca") == true)
        let twice = await #expect(throws: ConfigurationError.self) {
            _ = try await load(environment: ["FERRY_LISTEN": "tcp://127.0.0.1:514,tcp://127.0.0.1:514"])
        }
        #expect(twice?.description.contains("already listened on") == true)
    }
}
