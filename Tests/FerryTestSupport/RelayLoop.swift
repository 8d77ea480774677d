#if canImport(Glibc)
    import Glibc
#endif

/// The thread of an ``ImpairmentRelay``: reads both directions, decides each
/// datagram's fate, and sends what is due.
///
/// `@unchecked Sendable`: handed to its thread once and used by it alone;
/// what others see goes through ``RelayShared``'s locks.
final class RelayLoop: @unchecked Sendable {
    /// One client (address and port) and its server-facing socket.
    struct Flow {
        let client: sockaddr_in
        let socket: CInt
    }

    /// A datagram held for later.
    struct Held {
        let direction: RelayDirection
        let flow: Int
        let payload: [UInt8]
    }

    private let shared: RelayShared
    private let clientSocket: CInt
    private let wake: CInt
    private let source: IPv4Endpoint
    private let target: IPv4Endpoint
    private var random: [SeededRandom]
    private var counters = [ImpairmentCounters(), ImpairmentCounters()]
    private var flows: [Flow] = []
    private var flowByClient: [UInt64: Int] = [:]
    private var held = DueQueue<Held>()
    private var settings: RelayShared.Control
    private var buffer = [UInt8](repeating: 0, count: 65_536)

    init(shared: RelayShared, clientSocket: CInt, wake: CInt, source: IPv4Endpoint, target: IPv4Endpoint, seed: UInt64) {
        self.shared = shared
        self.clientSocket = clientSocket
        self.wake = wake
        self.source = source
        self.target = target
        random = RelayDirection.allCases.map { SeededRandom(seed: seed, stream: UInt64($0.rawValue) + 1) }
        settings = shared.control.withLock { $0 }
    }

    func run() {
        var descriptors: [pollfd] = []
        while !settings.stopping {
            if descriptors.count != flows.count + 2 {
                descriptors = [pollfd(fd: wake, events: Int16(POLLIN), revents: 0), pollfd(fd: clientSocket, events: Int16(POLLIN), revents: 0)]
                descriptors += flows.map { pollfd(fd: $0.socket, events: Int16(POLLIN), revents: 0) }
            }
            var timeout: Int32 = 100
            if let due = held.nextDue {
                let now = PlainSocket.now()
                timeout = due <= now ? 0 : Int32(min(100, (due - now + 999_999) / 1_000_000))
            }
            let ready = poll(&descriptors, nfds_t(descriptors.count), timeout)
            // Read after the wait, so a change made while it slept applies to what woke it.
            settings = shared.control.withLock { $0 }
            if ready > 0 {
                if descriptors[0].revents != 0 { drainWake() }
                if descriptors[1].revents != 0 { readClients() }
                for index in 2..<descriptors.count where descriptors[index].revents != 0 { readServer(flow: index - 2) }
            }
            sendDue()
            let (flowCount, holding) = (flows.count, held.count)
            shared.published.withLock { $0 = (counters, flowCount, holding) }
        }
        for flow in flows { close(flow.socket) }
        close(clientSocket)
    }

    // MARK: Reading

    private func drainWake() {
        while buffer.withUnsafeMutableBytes({ read(wake, $0.baseAddress, $0.count) }) > 0 {}
    }

    /// Reads what clients sent (up to a batch, so the other direction is not starved).
    private func readClients() {
        for _ in 0..<256 {
            var address = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let count = buffer.withUnsafeMutableBytes { bytes in
                withUnsafeMutablePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(clientSocket, bytes.baseAddress, bytes.count, 0, $0, &length) }
                }
            }
            guard count >= 0 else { return }
            guard let flow = flow(for: address) else { continue }
            handle(.data, flow: flow, count: count)
        }
    }

    private func readServer(flow: Int) {
        for _ in 0..<256 {
            let count = buffer.withUnsafeMutableBytes { recv(flows[flow].socket, $0.baseAddress, $0.count, 0) }
            // An error (ECONNREFUSED: the server's port is closed) is read and cleared; the client hears nothing of it, as behind a NAT.
            guard count >= 0 else { return }
            handle(.acks, flow: flow, count: count)
        }
    }

    /// The flow of `client`, made on its first datagram.
    private func flow(for client: sockaddr_in) -> Int? {
        let key = UInt64(client.sin_addr.s_addr) << 16 | UInt64(client.sin_port)
        if let index = flowByClient[key] { return index }
        guard let (fd, _) = try? PlainSocket.bound(Int32(SOCK_DGRAM.rawValue), to: source) else { return nil }
        _ = PlainSocket.connect(fd, to: target)
        flows.append(Flow(client: client, socket: fd))
        flowByClient[key] = flows.count - 1
        return flows.count - 1
    }

    // MARK: Impairing

    /// Decides the fate of the datagram of `count` bytes in `buffer`.
    private func handle(_ direction: RelayDirection, flow: Int, count: Int) {
        let d = direction.rawValue
        counters[d].received += 1
        let now = PlainSocket.now()
        if settings.partitions.contains(where: { $0.scope.covers(direction) && $0.start <= now && now < $0.end }) {
            counters[d].partitioned += 1
            return
        }
        let impairment = settings.impairments[d]
        if random[d].chance(impairment.loss) {
            counters[d].lost += 1
            return
        }
        var payload = Array(buffer[0..<count])
        let flipped = count > 0 && random[d].chance(impairment.bitFlip)
        if flipped {
            for _ in 0..<Int.random(in: 1...3, using: &random[d]) {
                let bit = Int.random(in: 0..<(count * 8), using: &random[d])
                payload[bit / 8] ^= UInt8(1) << UInt8(bit % 8)
            }
        }
        let copies = random[d].chance(impairment.duplication) ? 2 : 1
        counters[d].duplicated += copies - 1
        for _ in 0..<copies {
            if flipped { counters[d].flipped += 1 }
            var wait = impairment.delay.nanoseconds
            let jitter = impairment.jitter.nanoseconds
            if jitter > 0 { wait += UInt64.random(in: 0...jitter, using: &random[d]) }
            if wait > 0 { counters[d].delayed += 1 }
            let window = impairment.reorderWindow.nanoseconds
            if window > 0, random[d].chance(impairment.reorder) {
                wait += UInt64.random(in: 1...window, using: &random[d])
                counters[d].reordered += 1
            }
            if wait == 0 {
                send(direction, flow: flow, payload)
            } else {
                held.insert(Held(direction: direction, flow: flow, payload: payload), due: now + wait)
            }
        }
    }

    // MARK: Sending

    private func sendDue() {
        let now = PlainSocket.now()
        while let item = held.popDue(now: now) { send(item.direction, flow: item.flow, item.payload) }
    }

    private func send(_ direction: RelayDirection, flow: Int, _ payload: [UInt8]) {
        let sent: Int
        switch direction {
        case .data:
            sent = payload.withUnsafeBytes { Glibc.send(flows[flow].socket, $0.baseAddress, $0.count, 0) }
        case .acks:
            var client = flows[flow].client
            sent = payload.withUnsafeBytes { bytes in
                withUnsafePointer(to: &client) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(clientSocket, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
        }
        if sent < 0 {
            counters[direction.rawValue].sendFailed += 1
        } else {
            counters[direction.rawValue].forwarded += 1
        }
    }
}
