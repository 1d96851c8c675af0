import Logging
import NIOCore
import NIOPosix
import Synchronization

/// This node's outbound connection to one peer: dialed when the first message for the peer
/// comes, then reused for every request and one-way message to it, until it drops.
///
/// Requests made while the link dials wait in its outbox and go once the handshake is done.
/// Each request waits for its response under its own timer (on the link's event loop, so a
/// timeout costs no task); a response is matched to its request by id. When the link ends,
/// every waiting request fails at once with the reason: `.unreachable` or `.handshakeRefused`
/// when it never came up (the transport then refuses new requests for `redialBackoff`),
/// `.closed` when an established connection dropped (the next request dials again).
final class ClusterPeerLink: Sendable {
    enum Phase: Sendable {
        case dialing
        case connected
        /// Ended; new requests fail with `error` until `retryAfter` (nil: not at all, the
        /// transport replaces the link right away).
        case closed(ClusterTransportError, retryAfter: NIODeadline?)
    }

    /// How the transport may use this link now.
    enum Availability: Sendable {
        case open
        case backingOff(ClusterTransportError)
        case ended
    }

    private struct State: Sendable {
        var phase: Phase = .dialing
        /// The TCP connection, from the moment it is up (handshake included), so `close` can cut it.
        var channel: (any Channel)?
        var requests = ClusterWaiterTable<[UInt8]>()
        var timers: [UInt64: Scheduled<Void>] = [:]
        var connectWaiters = ClusterWaiterTable<Void>()
    }

    let node: NodeID
    let endpoint: String
    let eventLoop: any EventLoop
    let outbox: ClusterOutbox
    private let state = Mutex(State())

    init(node: NodeID, endpoint: String, eventLoop: any EventLoop, maxQueuedBytes: Int) {
        self.node = node
        self.endpoint = endpoint
        self.eventLoop = eventLoop
        self.outbox = ClusterOutbox(limit: maxQueuedBytes, eventLoop: eventLoop)
    }

    func availability(now: NIODeadline) -> Availability {
        state.withLock { state in
            switch state.phase {
            case .dialing, .connected: return .open
            case .closed(let error, let retryAfter):
                if let retryAfter, now < retryAfter { return .backingOff(error) }
                return .ended
            }
        }
    }

    var isConnected: Bool {
        state.withLock { state in
            if case .connected = state.phase { return true }
            return false
        }
    }

    // MARK: Requests

    func request(_ type: String, _ body: [UInt8], timeout: Duration, overloadWait: Duration, maxFrameBytes: Int) async throws -> [UInt8] {
        let id = try state.withLock { state throws(ClusterTransportError) -> UInt64 in
            if case .closed(let error, _) = state.phase { throw error }
            return state.requests.register()
        }
        let node = node
        let timer = eventLoop.scheduleTask(in: TimeAmount(timeout)) { [weak self] () -> Void in
            self?.resolveRequest(id, with: .failure(ClusterTransportError.timedOut(node, type: type)))
        }
        let kept = state.withLock { state in
            guard state.requests.contains(id) else { return false }
            state.timers[id] = timer
            return true
        }
        if !kept { timer.cancel() }

        do {
            let frame = try ClusterEnvelope.request(id: id, type: type, body: body).frame(maxFrameBytes: maxFrameBytes)
            try await outbox.enqueue(frame, maxWait: TimeAmount(min(overloadWait, timeout)))
        } catch {
            discardRequest(id)
            throw translate(error)
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8], any Error>) in
                if let result = state.withLock({ $0.requests.attach(id, continuation) }) {
                    continuation.resume(with: result)
                }
            }
        } onCancel: {
            self.resolveRequest(id, with: .failure(CancellationError()))
        }
    }

    /// Queues a one-way message once the link is up. Returns when the frame is queued, not
    /// when the peer has it: a connection that drops right after may lose it.
    func send(_ type: String, _ body: [UInt8], overloadWait: Duration, maxFrameBytes: Int) async throws {
        let frame = try ClusterEnvelope.oneway(type: type, body: body).frame(maxFrameBytes: maxFrameBytes)
        try await waitUntilConnected()
        do {
            try await outbox.enqueue(frame, maxWait: TimeAmount(overloadWait))
        } catch {
            throw translate(error)
        }
    }

    private func waitUntilConnected() async throws {
        let id = try state.withLock { state throws(ClusterTransportError) -> UInt64? in
            switch state.phase {
            case .connected: return nil
            case .closed(let error, _): throw error
            case .dialing: return state.connectWaiters.register()
            }
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                if let result = state.withLock({ $0.connectWaiters.attach(id, continuation) }) {
                    continuation.resume(with: result)
                }
            }
        } onCancel: {
            let resumption = self.state.withLock { $0.connectWaiters.resolve(id, with: .failure(CancellationError())) }
            resumption?.resume()
        }
    }

    /// A response (or failure, or timeout, or cancellation) for request `id`.
    private func resolveRequest(_ id: UInt64, with result: Result<[UInt8], any Error>) {
        let (resumption, timer) = state.withLock { state in
            (state.requests.resolve(id, with: result), state.timers.removeValue(forKey: id))
        }
        timer?.cancel()
        resumption?.resume()
    }

    private func discardRequest(_ id: UInt64) {
        let timer = state.withLock { state in
            state.requests.remove(id)
            return state.timers.removeValue(forKey: id)
        }
        timer?.cancel()
    }

    /// Outbox refusals in the caller's terms.
    private func translate(_ error: any Error) -> any Error {
        switch error as? ClusterOutbox.Refusal {
        case .full: return ClusterTransportError.peerOverloaded(node)
        case .closed: return closedError
        case nil: return error
        }
    }

    private var closedError: ClusterTransportError {
        state.withLock { state in
            if case .closed(let error, _) = state.phase { return error }
            return .closed(node)
        }
    }

    // MARK: Lifecycle

    /// The TCP connection is up; false when the link was closed meanwhile (close it).
    private func attach(_ channel: any Channel) -> Bool {
        state.withLock { state in
            guard case .dialing = state.phase else { return false }
            state.channel = channel
            return true
        }
    }

    /// The handshake succeeded; false when the link was closed meanwhile.
    private func established() -> Bool {
        let resumptions = state.withLock { state -> [ClusterWaiterTable<Void>.Resumption]? in
            guard case .dialing = state.phase else { return nil }
            state.phase = .connected
            return state.connectWaiters.resolveAll(with: .success(()))
        }
        guard let resumptions else { return false }
        for resumption in resumptions { resumption.resume() }
        return true
    }

    /// Ends the link: fails every waiting request and message with `error`, closes the
    /// connection. Idempotent: the first reason wins.
    func close(_ error: ClusterTransportError, retryAfter: NIODeadline? = nil) {
        let ended = state.withLock { state -> (requests: [ClusterWaiterTable<[UInt8]>.Resumption], connects: [ClusterWaiterTable<Void>.Resumption], timers: [Scheduled<Void>], channel: (any Channel)?)? in
            if case .closed = state.phase { return nil }
            state.phase = .closed(error, retryAfter: retryAfter)
            let channel = state.channel
            state.channel = nil
            let timers = Array(state.timers.values)
            state.timers = [:]
            return (state.requests.resolveAll(with: .failure(error)), state.connectWaiters.resolveAll(with: .failure(error)), timers, channel)
        }
        guard let ended else { return }
        outbox.close()
        ended.channel?.close(promise: nil)
        for timer in ended.timers { timer.cancel() }
        for resumption in ended.requests { resumption.resume() }
        for resumption in ended.connects { resumption.resume() }
    }

    /// Dials, authenticates, then reads responses until the connection ends. Runs as a child
    /// task of the transport's `run()`, so shutdown cancels it.
    func run(_ context: ClusterTransport.Context) async {
        var logger = context.logger
        logger[metadataKey: "peer"] = "\(node)"
        logger[metadataKey: "remote"] = "\(endpoint)"
        let configuration = context.configuration
        guard let address = ClusterEndpoint(endpoint) else {
            logger.warning("cluster peer has an invalid endpoint")
            close(
                .unreachable(node, reason: "invalid cluster endpoint '\(endpoint)'"),
                retryAfter: NIODeadline.now() + TimeAmount(configuration.redialBackoff))
            return
        }
        // Closed before its turn came (disconnect, shutdown): nothing to dial.
        guard case .open = availability(now: .now()) else { return }

        let channel: ClusterTransport.AsyncChannel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(TimeAmount(configuration.connectTimeout))
                .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .connect(host: address.host, port: address.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try ClusterTransport.wrap(channel, maxFrameBytes: configuration.maxFrameBytes)
                    }
                }
        } catch {
            if Task.isCancelled {
                close(.closed(node))
                return
            }
            logger.warning("cluster peer unreachable", metadata: ["error": "\(error)"])
            close(.unreachable(node, reason: "\(error)"), retryAfter: NIODeadline.now() + TimeAmount(configuration.redialBackoff))
            return
        }

        do {
            try await channel.executeThenClose { inbound, outbound in
                guard attach(channel.channel) else { return }
                var iterator = inbound.makeAsyncIterator()
                var handshake = ClusterHandshake(
                    role: .dialer(expecting: node), identity: context.identity,
                    protocolVersion: configuration.protocolVersion, nonce: ClusterHandshake.randomNonce())
                let outcome = await ClusterHandshakeExchange.run(
                    &handshake, channel: channel.channel, inbound: &iterator, outbound: outbound,
                    timeout: configuration.handshakeTimeout, maxFrameBytes: configuration.maxFrameBytes)
                let retryAfter = NIODeadline.now() + TimeAmount(configuration.redialBackoff)
                switch outcome {
                case .authenticated:
                    break
                case .refused(let refusal):
                    logger.warning("cluster handshake refused", metadata: ["reason": "\(refusal)"])
                    close(.handshakeRefused(node, reason: refusal), retryAfter: retryAfter)
                    return
                case .closed(let reason):
                    // Cancelled mid-handshake: this node is shutting down, the peer is fine.
                    if Task.isCancelled {
                        close(.closed(node))
                        return
                    }
                    logger.warning("cluster peer unreachable", metadata: ["error": "\(reason)"])
                    close(.unreachable(node, reason: reason), retryAfter: retryAfter)
                    return
                }
                guard established() else { return }
                logger.debug("cluster connection established")

                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        do {
                            try await self.outbox.drain(into: outbound)
                        } catch {
                            // The reader sees the close and ends the link.
                            channel.channel.close(promise: nil)
                        }
                    }
                    do {
                        while let frame = try await iterator.next() {
                            try receive(frame, logger: logger, maxFrameBytes: configuration.maxFrameBytes)
                        }
                        logger.debug("cluster peer closed the connection")
                    } catch let error as ClusterEnvelopeError {
                        logger.warning("closing cluster connection: \(error)")
                    } catch let error as ClusterFrameDecoder.Failure {
                        logger.warning("closing cluster connection: \(error)")
                    } catch {
                        logger.debug("cluster connection ended", metadata: ["error": "\(error)"])
                    }
                    close(.closed(node))
                    group.cancelAll()
                }
            }
        } catch {
            logger.debug("cluster connection ended", metadata: ["error": "\(error)"])
        }
        close(.closed(node))
    }

    /// A frame on an established link: only responses come this way.
    private func receive(_ frame: ByteBuffer, logger: Logger, maxFrameBytes: Int) throws(ClusterEnvelopeError) {
        switch try ClusterEnvelope.decode(frame, maxFrameBytes: maxFrameBytes) {
        case .response(let id, let body):
            resolveRequest(id, with: .success(body))
        case .failure(let id, let message):
            resolveRequest(id, with: .failure(ClusterTransportError.remoteFailure(node, message: message)))
        case let other:
            throw ClusterEnvelopeError("unexpected \(other.kindName) on a dialed connection")
        }
    }
}
