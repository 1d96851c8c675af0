import Logging
import NIOCore

/// The accepting side: a peer's connection, from handshake to close.
extension ClusterTransport {
    /// Authenticates an accepted connection, then serves its requests until it closes. A
    /// refused peer gets one warning line (remote address and reason) and nothing else.
    func serveInbound(_ channel: AsyncChannel) async {
        var logger = logger
        logger[metadataKey: "remote"] = "\(channel.channel.remoteAddress.map { "\($0)" } ?? "unknown")"
        let configuration = configuration
        do {
            try await channel.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                var handshake = ClusterHandshake(
                    role: .acceptor, identity: identity,
                    protocolVersion: configuration.protocolVersion, nonce: ClusterHandshake.randomNonce())
                let outcome = await ClusterHandshakeExchange.run(
                    &handshake, channel: channel.channel, inbound: &iterator, outbound: outbound,
                    timeout: configuration.handshakeTimeout, maxFrameBytes: configuration.maxFrameBytes)
                let peer: NodeID
                switch outcome {
                case .authenticated(let authenticated):
                    peer = authenticated
                case .refused(let refusal):
                    logger.warning("cluster peer refused", metadata: ["reason": "\(refusal)"])
                    return
                case .closed(let reason):
                    if Task.isCancelled {
                        logger.debug("cluster handshake cut short by shutdown")
                    } else {
                        logger.warning("cluster peer refused", metadata: ["reason": "\(reason)"])
                    }
                    return
                }
                logger[metadataKey: "peer"] = "\(peer)"
                guard let registration = registerInbound(peer: peer, channel: channel.channel) else { return }
                defer { unregisterInbound(registration) }
                logger.debug("cluster peer connected")

                let outbox = ClusterOutbox(limit: configuration.maxQueuedBytesPerPeer, eventLoop: channel.channel.eventLoop)
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        do {
                            try await outbox.drain(into: outbound)
                        } catch {
                            channel.channel.close(promise: nil)
                        }
                    }
                    let slots = ClusterRequestSlots(configuration.maxConcurrentRequestsPerConnection)
                    // The reader may be waiting for a slot, not reading: the close must wake it.
                    channel.channel.closeFuture.whenComplete { _ in slots.close() }
                    await serveRequests(from: peer, inbound: &iterator, slots: slots, outbox: outbox, logger: logger)
                    outbox.close()
                    group.cancelAll()
                }
            }
        } catch {
            logger.debug("cluster connection ended", metadata: ["error": "\(error)"])
        }
    }

    /// Reads requests, each handled in its own child task, and one-way messages, each handled
    /// before the next frame is read, so they are handled in the order they were sent (pushes
    /// between nodes rely on it; their handlers only hand the message over). With every slot
    /// taken it stops reading until a handler finishes: NIO then stops reading the socket, and
    /// the sender's outbox fills.
    private func serveRequests(
        from peer: NodeID,
        inbound iterator: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        slots: ClusterRequestSlots,
        outbox: ClusterOutbox,
        logger: Logger
    ) async {
        let maxFrameBytes = configuration.maxFrameBytes
        await withDiscardingTaskGroup { handlers in
            do {
                while let frame = try await iterator.next() {
                    let message: (id: UInt64, type: String, body: [UInt8])
                    switch try ClusterEnvelope.decode(frame, maxFrameBytes: maxFrameBytes) {
                    case .request(let id, let type, let body): message = (id, type, body)
                    case .oneway(let type, let body):
                        await handle(nil, type, body, from: peer, outbox: outbox, logger: logger)
                        continue
                    case let other: throw ClusterEnvelopeError("unexpected \(other.kindName) on an accepted connection")
                    }
                    try await slots.acquire()
                    handlers.addTask {
                        defer { slots.release() }
                        await self.handle(message.id, message.type, message.body, from: peer, outbox: outbox, logger: logger)
                    }
                }
                logger.debug("cluster peer closed the connection")
            } catch let error as ClusterEnvelopeError {
                logger.warning("closing cluster connection: \(error)")
            } catch let error as ClusterFrameDecoder.Failure {
                logger.warning("closing cluster connection: \(error)")
            } catch {
                logger.debug("cluster connection ended", metadata: ["error": "\(error)"])
            }
            // The peer is gone or misbehaved: answers could not reach it.
            handlers.cancelAll()
        }
    }

    private func handle(_ id: UInt64?, _ type: String, _ body: [UInt8], from peer: NodeID, outbox: ClusterOutbox, logger: Logger) async {
        let reply: ClusterEnvelope
        do {
            let response = try await handler(peer, type, body)
            guard let id else { return }
            reply = .response(id: id, body: response)
        } catch {
            guard let id else {
                logger.warning("cluster one-way message failed", metadata: ["type": "\(type)", "error": "\(error)"])
                return
            }
            reply = .failure(id: id, message: String(String(describing: error).prefix(4096)))
        }
        let frame: ByteBuffer
        do {
            frame = try reply.frame(maxFrameBytes: configuration.maxFrameBytes)
        } catch {
            logger.warning("cluster response too large", metadata: ["type": "\(type)", "error": "\(error)"])
            guard let id, let failure = try? ClusterEnvelope.failure(id: id, message: error.description).frame(maxFrameBytes: configuration.maxFrameBytes) else { return }
            frame = failure
        }
        // Waits for room as long as it takes: the bound on handlers bounds the waiters, and
        // closing the connection ends the wait.
        try? await outbox.enqueue(frame, maxWait: nil)
    }
}
