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
/// decodes and dispatches frames in order, and the ack pipeline that releases
/// acknowledgements when their write concern is met. Outbound frames go straight into the
/// channel (`SessionOutbound`), so an idle connection runs no task besides its inbound loop.
///
/// A bad frame never ends the connection by itself: it gets a typed `ERROR` and the loop
/// goes on. Nothing here can crash the process or touch another connection.
///
/// A class, made once per node: every connection's task holds one reference to it, not a
/// copy of everything it holds.
public final class ClientConnection: Sendable {
    let configuration: DataPlaneConfiguration
    let authenticator: any Authenticator
    let sessions: SessionRegistry
    let policies: TenantPolicies
    let durability: any DurabilityPipeline
    let usage: UsageMeter
    /// The node's wall clock.
    let clock: NodeClock
    let metrics: DataPlaneMetrics
    let logger: Logger
    let router: MessageRouter
    let cleanup: SessionCleanup
    let codec: WireCodec

    public init(
        configuration: DataPlaneConfiguration, authenticator: any Authenticator, sessions: SessionRegistry, policies: TenantPolicies,
        durability: any DurabilityPipeline, usage: UsageMeter, clock: NodeClock, metrics: DataPlaneMetrics, logger: Logger, router: MessageRouter,
        cleanup: SessionCleanup
    ) {
        self.configuration = configuration
        self.authenticator = authenticator
        self.sessions = sessions
        self.policies = policies
        self.durability = durability
        self.usage = usage
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
        self.router = router
        self.cleanup = cleanup
        self.codec = WireCodec(limits: MessagePackLimits(maxInputBytes: configuration.maxFrameBytes))
    }

    /// - Parameters:
    ///   - channel: the upgraded WebSocket channel; frames are written into it directly.
    ///   - pathTenant: the tenant named in the URL (`/t/{tenantID}/ws`), which the token's
    ///     tenant must equal.
    ///
    /// Memory: a task's stack slabs never shrink, so whatever async frame this task ever
    /// holds stays allocated for the connection's life. Hence the loop's frame holds the
    /// iterator and `Loop` only; decoding and the handshake are synchronous (`prepare`);
    /// token verification runs on a short task of its own; and large messages only live in
    /// the frame of `dispatch`, which idle connections never reach.
    public func run(
        inbound: WebSocketInboundStream, writer: WebSocketOutboundWriter, channel: any Channel, pathTenant: TenantID?, requestId: String
    ) async {
        var loop = opened(writer: writer, channel: channel, pathTenant: pathTenant, requestId: requestId)
        // On graceful shutdown the server closes each socket with 1001; the client
        // reconnects elsewhere (or later) and catches up through Merkle sync.
        let outbound = loop.outbound
        await withGracefulShutdownHandler {
            await readLoop(inbound, loop: &loop)
        } onGracefulShutdown: {
            outbound.close(.goingAway, reason: "server shutting down")
        }
        await closed(&loop)
    }

    /// Sets a connection up (synchronous, so its temporaries stay off the long-lived frame).
    @inline(never)
    func opened(writer: WebSocketOutboundWriter, channel: any Channel, pathTenant: TenantID?, requestId: String) -> Loop {
        let id = SessionID.next()
        let outbound = SessionOutbound.channel(
            channel, closingThrough: writer, id: id,
            limits: SessionOutbound.Limits(
                maxQueuedBytes: configuration.outboundQueueBytes, closeTimeout: configuration.closeTimeout,
                stallTimeout: configuration.slowConsumerTimeout),
            onClosing: { [cleanup] in
                // Locks, topics and counters are released as soon as the close starts, not
                // when the socket ends (up to the close timeout later).
                Task { await cleanup.ending(id) }
            })
        sessions.register(outbound)
        metrics.connections.increment()
        metrics.connectionsTotal.increment()
        logger.debug("connection opened", metadata: ["session": "\(outbound.id)", "request_id": .string(requestId)])

        // The authentication deadline is a timer on the channel's event loop, not a task; the
        // handshake decides what it means.
        let handshake = SharedHandshake(SessionHandshake(pathTenant: pathTenant))
        let deadline = channel.eventLoop.scheduleTask(in: TimeAmount(configuration.authDeadline)) {
            if case .close(let code, let reason) = handshake.withLock({ $0.deadlineExpired() }) { outbound.close(code, reason: reason) }
        }
        let loop = Loop(
            outbound: outbound, requestId: requestId, handshake: handshake, deadline: deadline,
            state: SessionState(
                outbound: outbound,
                rateLimiter: TokenBucket(
                    capacity: configuration.connectionOpsBurst, ratePerSecond: configuration.connectionOpsPerSecond,
                    nowNanos: monotonicNanos())))
        perform(handshake.withLock { $0.connected() }, outbound: outbound)
        return loop
    }

    /// Tears a connection down once its inbound side has ended.
    @inline(never)
    func closed(_ loop: inout Loop) async {
        let outbound = loop.outbound
        loop.handshake.withLock { $0.close() }
        loop.deadline.cancel()
        loop.state.finishAcks()
        await outbound.finishClosing()
        outbound.finish()
        if let acks = loop.ackPipeline {
            // The socket is gone: acks still waiting have no one to go to.
            acks.cancel()
            await acks.value
        }
        // `finish` woke the pager if it waited for room; it stops there.
        await loop.pager?.value
        sessions.remove(outbound.id)
        await cleanup.closed(outbound.id, maps: Array(loop.state.touchedMaps.values))
        metrics.connections.decrement()
        logger.debug("connection closed", metadata: ["session": "\(outbound.id)", "request_id": .string(loop.requestId)])
    }

    /// What the inbound loop keeps between messages.
    struct Loop {
        let outbound: SessionOutbound
        let requestId: String
        let handshake: SharedHandshake
        let deadline: Scheduled<Void>
        var state: SessionState
        /// Strings this connection repeats from frame to frame (its node id), decoded once.
        var repeatedStrings = RepeatedStrings()
        /// Sends acks, in order, each once its write concern is met. Started with the first
        /// ack that has to wait, so most connections never run it; a task of its own rather
        /// than a task group's child, because a group costs every connection about 0.5 KiB.
        /// Always awaited before `run` returns.
        var ackPipeline: Task<Void, Never>?
        /// Sends the pages of large live-query results while any are pending (`ResultPager`);
        /// always awaited before `run` returns.
        var pager: Task<Void, Never>?
        /// The cluster refused this connection a slot of its tenant's connections.
        var clusterRefusal: QuotaRefusal?

        init(
            outbound: SessionOutbound, requestId: String, handshake: SharedHandshake, deadline: Scheduled<Void>,
            state: SessionState
        ) {
            self.outbound = outbound
            self.requestId = requestId
            self.handshake = handshake
            self.deadline = deadline
            self.state = state
        }
    }

    /// What to do with an inbound frame once it is decoded. Small on purpose (the message
    /// to dispatch is boxed): it sits in the loop's long-lived frame.
    enum Step {
        case none
        case verify(token: String)
        indirect case dispatch(TopGunMessage, RequestContext)
    }

    private func readLoop(_ inbound: WebSocketInboundStream, loop: inout Loop) async {
        var messages = inbound.messages(maxSize: configuration.maxFrameBytes).makeAsyncIterator()
        while true {
            // Back-pressure: while the client has not read what it was sent, its next request
            // is not read either (its socket fills up instead of the server's memory). A client
            // that stays stalled is closed by the outbound side (1013).
            if !loop.outbound.isClosing { _ = await loop.outbound.waitForRoom() }
            let frame: WebSocketMessage?
            do {
                frame = try await messages.next()
            } catch {
                inboundFailed(error, loop: &loop)
                break
            }
            guard let frame else { break }
            // After a close frame was asked for, what the peer still sends is read (so that its
            // close answer arrives) but not handled.
            if loop.outbound.isClosing { continue }
            let step = prepare(frame, loop: &loop)
            switch step {
            case .none: break
            case .verify(let token): await authenticate(token, loop: &loop)
            case .dispatch: await dispatch(step, loop: &loop)
            }
        }
    }

    @inline(never)
    func inboundFailed(_ error: any Error, loop: inout Loop) {
        logger.debug("inbound ended with error", metadata: ["error": "\(error)", "request_id": .string(loop.requestId)])
        if Self.isTooLarge(error) {
            metrics.error(code: WireErrorCode.tooLarge.rawValue)
            loop.outbound.close(.messageTooBig, reason: "frame larger than the \(configuration.maxFrameBytes)-byte limit")
        } else if Self.isNotUTF8Text(error) {
            metrics.error(code: WireErrorCode.badRequest.rawValue)
            loop.outbound.close(.invalidFramePayload, reason: "text frame is not valid UTF-8")
        }
    }

    /// Decodes a frame and puts it through the handshake and the rate limit; synchronous, so
    /// its locals live on the thread's stack, not in the connection's frame.
    @inline(never)
    func prepare(_ frame: WebSocketMessage, loop: inout Loop) -> Step {
        let outbound = loop.outbound
        let message: TopGunMessage
        do throws(WireDecodingError) {
            switch frame {
            case .binary(let buffer):
                message = try buffer.withUnsafeReadableBytes { raw throws(WireDecodingError) in
                    try codec.decode(contiguous: raw.assumingMemoryBound(to: UInt8.self), repeated: &loop.repeatedStrings)
                }
            case .text(let text): message = try codec.decode(json: text)
            }
        } catch {
            metrics.decodeErrors.increment()
            metrics.error(code: WireErrorCode.badRequest.rawValue)
            outbound.send(.errorMessage(Self.decodeError(error)))
            return .none
        }
        metrics.messageIn(type: message.type)
        let nowMillis = clock.nowMillis()
        let action = loop.handshake.withLock { $0.received(message, nowMillis: nowMillis) }
        switch action {
        case .verify(let token):
            return .verify(token: token)
        case .dispatch(let message, let context):
            let frameBytes: Int
            switch frame {
            case .binary(let buffer): frameBytes = buffer.readableBytes
            case .text(let text): frameBytes = text.utf8.count
            }
            usage.bytesIn(context.tenant, frameBytes)
            if let limit = policies.cachedQuotas(context.tenant)?.maxMessageBytes,
                let refusal = QuotaGate.message(bytes: frameBytes, limit: limit)
            {
                refuseOversized(message, refusal: refusal, loop: &loop)
                return .none
            }
            // A batch larger than the whole burst costs a full bucket: it waits for one, and is
            // never refused for good (the client would send it again for ever).
            let cost: Double
            if case .opBatch(let batch) = message {
                cost = min(Double(max(1, batch.ops.count)), configuration.connectionOpsBurst)
            } else {
                cost = 1
            }
            guard loop.state.rateLimiter.take(cost, nowNanos: monotonicNanos()) else {
                metrics.error(code: WireErrorCode.rateLimited.rawValue)
                let retry = loop.state.rateLimiter.millisUntilAvailable(cost)
                outbound.send(.errorMessage(.make(.rateLimited, "connection rate limit exceeded; \(message.type) was not processed", details: ["quota": "connectionOpsPerSecond", "retryAfterMs": .int(retry)])))
                return .none
            }
            return .dispatch(message, context)
        default:
            perform(action, outbound: outbound)
            return .none
        }
    }

    /// A message over the tenant's `max_message_bytes`: ops in it are rejected for good (an
    /// ack with `success: false` and `OP_REJECTED` 413, so the client stops re-sending them);
    /// any other message gets `ERROR 413`.
    func refuseOversized(_ message: TopGunMessage, refusal: QuotaRefusal, loop: inout Loop) {
        let outbound = loop.outbound
        metrics.error(code: refusal.code.rawValue)
        let reason = refusal.message
        let ops: [ClientOp]
        switch message {
        case .opBatch(let batch): ops = batch.ops
        case .clientOp(let single): ops = [single.op]
        default:
            outbound.send(.errorMessage(refusal.errorMessage))
            return
        }
        guard let last = ops.last else { return }
        var results: [OpResult] = []
        for (index, op) in ops.enumerated() {
            let opId = op.id ?? String(index)
            results.append(OpResult(opId: opId, success: false, achievedLevel: .fireAndForget, error: reason))
            outbound.send(.opRejected(OpRejected(opId: opId, reason: reason, code: WireErrorCode.tooLarge.rawValue)))
        }
        // Through the ack queue: an ack must not overtake earlier acks still waiting.
        loop.state.acknowledge(PendingAck(
            ticket: nil, ack: .opAck(OpAck(lastId: last.id ?? "unknown", achievedLevel: .fireAndForget, results: results)), timeout: .zero))
    }

    /// Hands an authenticated message to its handler.
    @inline(never)
    func dispatch(_ step: Step, loop: inout Loop) async {
        guard case .dispatch(let message, let context) = step else { return }
        await router.handle(message, context: context, session: &loop.state)
        if let acks = loop.state.takeAckPipeline() {
            let outbound = loop.outbound
            loop.ackPipeline = Task { await runAckPipeline(acks, outbound: outbound) }
        }
        if let pager = loop.state.takePagerToStart() {
            loop.pager = Task { await pager.run() }
        }
    }

    @inline(never)
    func authenticate(_ token: String, loop: inout Loop) async {
        let result = await verify(token: token, requestId: loop.requestId)
        if case .success(let context) = result {
            // In a cluster, a connection counts against the tenant's cluster-wide limit (its
            // slot is released when the session ends, admitted or not).
            loop.clusterRefusal = await policies.acquireConnectionSlot(context.tenant, session: loop.outbound.id)
        }
        authenticated(result, loop: &loop)
    }

    /// The handshake's side of a verification result: the handshake decides (the URL's
    /// tenant, the connection quota through `admit`), this performs.
    @inline(never)
    func authenticated(_ result: Result<RequestContext, RefusedToken>, loop: inout Loop) {
        if case .failure(let refusal) = result {
            logger.info(
                "authentication refused", metadata: ["reason": .string(String(refusal.detail.prefix(512))), "request_id": .string(loop.requestId)])
        }
        var actions = loop.handshake.withLock { $0.verified(result) }
        while !actions.isEmpty {
            var next: [SessionHandshake.Action] = []
            for action in actions {
                guard case .admit(let context) = action else {
                    perform(action, outbound: loop.outbound)
                    continue
                }
                let limit = policies.cachedQuotas(context.tenant)?.maxConnections ?? .max
                let refusal = loop.clusterRefusal ?? sessions.authenticated(loop.outbound.id, context: context, connectionLimit: limit)
                if let refusal {
                    metrics.error(code: refusal.code.rawValue)
                } else {
                    loop.deadline.cancel()
                    logger.debug(
                        "authenticated",
                        metadata: ["principal": .string(context.principal), "tenant": .string(context.tenant.rawValue), "request_id": .string(loop.requestId)])
                }
                next += loop.handshake.withLock { $0.admitted(refusal) }
            }
            actions = next
        }
    }

    /// Verifies a token on a short task of its own. Verification goes deep (JWT checks, key
    /// lookups in the metadata store), and a task's stack slabs never shrink: run on the
    /// connection's task, it would keep that depth allocated for the connection's whole life.
    @inline(never)
    func verify(token: String, requestId: String) async -> Result<RequestContext, RefusedToken> {
        let authenticator = self.authenticator
        let policies = self.policies
        let task = Task {
            let result = await authenticator.authenticate(token: token, requestId: requestId)
            // Reads the tenant's quotas now, so the connection quota can be checked at once.
            if case .success(let context) = result { _ = await policies.quotas(context.tenant) }
            return result
        }
        return await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
    }

    /// Sends each ack once its write concern is met, in order. When a wait fails (storage
    /// too slow, or the partition moved to another node meanwhile), the batch is not
    /// acknowledged, and neither is any later one until the client sends the failed batch
    /// again: the client reads an `OP_ACK` as covering every earlier op of its connection, so
    /// a later ack would drop the failed ops from its queue. (Later batches are applied all
    /// the same; the client sends them again too, and writes are idempotent.)
    func runAckPipeline(_ acks: AsyncStream<PendingAck>, outbound: SessionOutbound) async {
        for await pending in acks {
            if policies.awaitsResend(session: outbound.id) { continue }
            if let ticket = pending.ticket {
                guard await durability.waitUntilDurable(ticket, timeout: pending.timeout) else {
                    metrics.error(code: WireErrorCode.unavailable.rawValue)
                    if let first = pending.firstOpID { policies.refused(first, session: outbound.id) }
                    outbound.send(.errorMessage(.make(.unavailable, "the write was not confirmed in time; send it again", details: ["retryAfterMs": 1000])))
                    continue
                }
            }
            outbound.send(pending.ack)
        }
    }

    private func perform(_ action: SessionHandshake.Action, outbound: SessionOutbound) {
        switch action {
        case .send(let message): outbound.send(message)
        case .close(let code, let reason): outbound.close(code, reason: reason)
        case .dispatch, .verify, .admit, .none: break
        }
    }

    /// A frame (or a fragmented message) over the size limit, as the WebSocket layer reports it.
    static func isTooLarge(_ error: any Error) -> Bool {
        if let error = error as? NIOWebSocketError, error == .invalidFrameLength { return true }
        return String(describing: error).contains("messageTooLarge")
    }

    /// A text frame that is not UTF-8, as the WebSocket layer reports it (`validateUTF8`).
    static func isNotUTF8Text(_ error: any Error) -> Bool {
        String(describing: error).contains("dataInconsistentWithMessage")
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
