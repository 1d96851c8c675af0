import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import ServiceLifecycle
import Synchronization
import Tenancy
import TopGunCore
import TopGunWire

/// Runs one client WebSocket from upgrade to close: the handshake, the inbound loop that
/// decodes and dispatches frames in order, the writer that drains the outbound queue, and
/// the ack pipeline that releases acknowledgements when their write concern is met.
///
/// A bad frame never ends the connection by itself: it gets a typed `ERROR` and the loop
/// goes on. Nothing here can crash the process or touch another connection.
public struct ClientConnection: Sendable {
    let services: DataPlaneServices
    let dispatcher: MessageDispatcher
    let codec: WireCodec

    public init(services: DataPlaneServices) {
        self.services = services
        self.dispatcher = MessageDispatcher(services: services)
        self.codec = WireCodec(limits: MessagePackLimits(maxInputBytes: services.configuration.maxFrameBytes))
    }

    /// - Parameter pathTenant: the tenant named in the URL (`/t/{tenantID}/ws`), which the
    ///   token's tenant must equal.
    public func run(inbound: WebSocketInboundStream, writer: WebSocketOutboundWriter, pathTenant: TenantID?, requestId: String) async {
        let configuration = services.configuration
        let metrics = services.metrics
        var logger = services.logger
        logger[metadataKey: "request_id"] = .string(requestId)
        let (outbound, outboundStream) = SessionOutbound.make(capacity: configuration.outboundQueueCapacity)
        let (ackStream, acks) = AsyncStream.makeStream(of: PendingAck.self)
        let authenticated = AtomicFlag()
        services.sessions.register(outbound)
        metrics.connections.increment()
        metrics.connectionsTotal.increment()
        logger.debug("connection opened", metadata: ["session": "\(outbound.id)"])

        var state = SessionState(
            outbound: outbound, acks: acks,
            rateLimiter: TokenBucket(capacity: configuration.connectionOpsBurst, ratePerSecond: configuration.connectionOpsPerSecond, nowNanos: monotonicNanos()))

        await withTaskGroup(of: Void.self) { group in
            // Writer: the only task that writes to the socket.
            group.addTask {
                for await item in outboundStream {
                    switch item {
                    case .frame(let bytes):
                        metrics.messagesOut.increment()
                        do { try await writer.write(.binary(ByteBuffer(bytes: bytes))) } catch { return }
                    case .close(let code, let reason):
                        try? await writer.close(WebSocketErrorCode(codeNumber: Int(code.rawValue)), reason: reason)
                        return
                    }
                }
                if outbound.didOverflow {
                    try? await writer.close(WebSocketErrorCode(codeNumber: Int(CloseCode.tryAgainLater.rawValue)), reason: "slow consumer: outbound queue full")
                }
            }
            // Authentication deadline: a task of its own, cancelled as soon as the session is
            // authenticated, so an idle authenticated connection costs two tasks, not three.
            let deadline = Task {
                try? await Task.sleep(for: configuration.authDeadline)
                if !Task.isCancelled, !authenticated.isSet {
                    outbound.close(.unauthorized, reason: "authentication deadline passed")
                }
            }
            defer { deadline.cancel() }

            var handshake = SessionHandshake()
            perform(handshake.connected(), outbound: outbound)
            // On graceful shutdown the server closes each socket with 1001; the client
            // reconnects elsewhere (or later) and catches up through Merkle sync.
            await withGracefulShutdownHandler {
            var messages = inbound.messages(maxSize: configuration.maxFrameBytes).makeAsyncIterator()
            while true {
                let frame: WebSocketMessage?
                do {
                    frame = try await messages.next()
                } catch {
                    logger.debug("inbound ended with error", metadata: ["error": "\(error)"])
                    if Self.isTooLarge(error) {
                        metrics.error(code: WireErrorCode.tooLarge.rawValue)
                        outbound.close(.messageTooBig, reason: "frame larger than the \(configuration.maxFrameBytes)-byte limit")
                    }
                    break
                }
                guard let frame else { break }
                let message: TopGunMessage
                do throws(WireDecodingError) {
                    switch frame {
                    case .binary(let buffer): message = try codec.decode(Array(buffer.readableBytesView))
                    case .text(let text): message = try codec.decode(json: text)
                    }
                } catch {
                    metrics.decodeErrors.increment()
                    metrics.error(code: WireErrorCode.badRequest.rawValue)
                    outbound.send(.errorMessage(Self.decodeError(error)))
                    continue
                }
                metrics.messageIn(type: message.type)
                let action = handshake.received(message, nowMillis: services.clock.nowMillis())
                switch action {
                case .verify(let token):
                    var result = await services.authenticator.authenticate(token: token, requestId: requestId)
                    if case .success(let context) = result, let pathTenant, pathTenant != context.tenant {
                        result = .failure(RefusedToken(reason: "the token's tenant does not match the tenant in the URL"))
                    }
                    if case .success(let context) = result {
                        authenticated.set()
                        deadline.cancel()
                        services.sessions.authenticated(outbound.id, context: context)
                        logger[metadataKey: "tenant"] = .string(context.tenant.rawValue)
                        logger.debug("authenticated", metadata: ["principal": .string(context.principal)])
                    } else if case .failure(let refusal) = result {
                        logger.info("authentication refused", metadata: ["reason": .string(refusal.reason)])
                    }
                    for next in handshake.verified(result) { perform(next, outbound: outbound) }
                case .dispatch(let message, let context):
                    let cost: Double
                    if case .opBatch(let batch) = message { cost = Double(max(1, batch.ops.count)) } else { cost = 1 }
                    guard state.rateLimiter.take(cost, nowNanos: monotonicNanos()) else {
                        metrics.error(code: WireErrorCode.rateLimited.rawValue)
                        let retry = state.rateLimiter.millisUntilAvailable(cost)
                        outbound.send(.errorMessage(.make(.rateLimited, "connection rate limit exceeded; \(message.type) was not processed", details: ["quota": "connectionOpsPerSecond", "retryAfterMs": .int(retry)])))
                        continue
                    }
                    await dispatcher.handle(message, context: context, session: &state)
                    if state.wantsAckPipeline && !state.ackPipelineRunning {
                        state.ackPipelineRunning = true
                        // Acks, in order, each after its write concern is met.
                        group.addTask {
                            for await pending in ackStream {
                                if let ticket = pending.ticket {
                                    guard await services.durability.waitUntilDurable(ticket, timeout: pending.timeout) else {
                                        metrics.error(code: WireErrorCode.unavailable.rawValue)
                                        outbound.send(.errorMessage(.make(.unavailable, "storage has not confirmed the write in time; it will be retried", details: ["retryAfterMs": 1000])))
                                        continue
                                    }
                                }
                                outbound.send(pending.ack)
                            }
                        }
                    }
                default:
                    perform(action, outbound: outbound)
                }
            }
            } onGracefulShutdown: {
                outbound.close(.goingAway, reason: "server shutting down")
            }
            handshake.close()
            acks.finish()
            outbound.finish()
            group.cancelAll()
        }
        services.sessions.remove(outbound.id)
        await services.sessionClosed(outbound.id, maps: Array(state.touchedMaps.values))
        metrics.connections.decrement()
        logger.debug("connection closed", metadata: ["session": "\(outbound.id)"])
    }

    private func perform(_ action: SessionHandshake.Action, outbound: SessionOutbound) {
        switch action {
        case .send(let message): outbound.send(message)
        case .close(let code, let reason): outbound.close(code, reason: reason)
        case .dispatch, .verify, .none: break
        }
    }

    /// A frame (or a fragmented message) over the size limit, as the WebSocket layer reports it.
    static func isTooLarge(_ error: any Error) -> Bool {
        if let error = error as? NIOWebSocketError, error == .invalidFrameLength { return true }
        return String(describing: error).contains("messageTooLarge")
    }

    /// The `ERROR` for an undecodable frame: 413 for size, 400 otherwise, naming the field.
    static func decodeError(_ error: WireDecodingError) -> ErrorMessage {
        var details = DataObject()
        if let field = error.field { details["field"] = .string(field) }
        if case .sizeLimitExceeded(let limit) = error.kind {
            details["limit"] = .int(Int64(limit))
            return .make(.tooLarge, "message too large: \(error)", details: details)
        }
        return .make(.badRequest, "invalid message: \(error)", details: details.isEmpty ? nil : details)
    }
}

/// A flag set once, read from other tasks.
final class AtomicFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
