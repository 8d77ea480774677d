import FerryCore
import Prometheus
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The standard `process_*` metrics Prometheus users expect, read from /proc
/// at scrape time (swift-prometheus does not provide them).
final class ProcessMetrics: Sendable {
    private let residentMemory: Gauge
    private let virtualMemory: Gauge
    private let cpuSeconds: Counter
    private let lastCPUSeconds = Mutex<Double>(0)
    private let openFDs: Gauge
    private let maxFDs: Gauge
    private let startTime: Gauge
    private let threads: Gauge

    init(registry: PrometheusCollectorRegistry) {
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "process", metricName: name, unitName: "", helpText: help))
        }
        residentMemory = gauge("resident_memory_bytes", "Resident memory size in bytes.")
        virtualMemory = gauge("virtual_memory_bytes", "Virtual memory size in bytes.")
        cpuSeconds = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "process", metricName: "cpu_seconds", unitName: "total", helpText: "Total user and system CPU time spent in seconds."))
        openFDs = gauge("open_fds", "Number of open file descriptors.")
        maxFDs = gauge("max_fds", "Maximum number of open file descriptors.")
        startTime = gauge("start_time_seconds", "Start time of the process since unix epoch in seconds.")
        threads = gauge("threads", "Number of OS threads in the process.")
    }

    func collect() {
        guard let stat = Self.read("/proc/self/stat"), let close = stat.lastIndex(of: ")") else { return }
        // Fields after the command name: state is field 3; utime 14, stime 15, num_threads 20, starttime 22, vsize 23, rss 24.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        func field(_ number: Int) -> Double { Double(fields[number - 3]) ?? 0 }
        guard fields.count >= 22 else { return }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        let cpu = (field(14) + field(15)) / ticks
        lastCPUSeconds.withLock { last in
            if cpu > last {
                cpuSeconds.increment(by: cpu - last)
                last = cpu
            }
        }
        threads.set(field(20))
        virtualMemory.set(field(23))
        residentMemory.set(field(24) * pageSize)
        if let uptime = Self.read("/proc/stat")?.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
            let bootTime = Double(uptime.dropFirst(6))
        {
            startTime.set(bootTime + field(22) / ticks)
        }
        openFDs.set(Double(Self.openDescriptors()))
        var limit = rlimit()
        if getrlimit(Self.descriptorLimitResource, &limit) == 0 { maxFDs.set(Double(limit.rlim_cur)) }
    }

    private static let descriptorLimitResource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

    /// Descriptors this process has open now (/proc/self/fd).
    static func openDescriptors() -> Int {
        guard let directory = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            if entry.pointee.d_name.0 != 46 { count += 1 }  // skip "." and ".."
        }
        return count - 1  // the descriptor opendir itself holds
    }

    private static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += chunk.prefix(count)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
