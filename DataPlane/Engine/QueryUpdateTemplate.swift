import NIOCore
import TopGunCore
import TopGunWire

/// One `QUERY_UPDATE` encoded once for many subscribers: the bytes before and after the
/// query id, which is the only part that differs between them. Splicing an id in is a
/// couple of copies; encoding the whole message again for each of 1,000 subscribers was
/// a large part of a write's fan-out.
struct QueryUpdateTemplate: Sendable {
    /// Everything up to the `queryId` value.
    let prefix: [UInt8]
    /// Everything after it.
    let suffix: [UInt8]

    /// `queryId` is the payload's first field: the frame starts with the envelope, the
    /// payload's map header and the key, and then holds the id (here the empty string).
    private static let emptyIdMarker: [UInt8] = [0xa7] + Array("queryId".utf8) + [0xa0]

    init(key: String, value: DataValue, changeType: ChangeType) {
        let bytes = WireCodec().encode(.queryUpdate(QueryUpdate(queryId: "", key: key, value: value, changeType: changeType)))
        let marker = Self.emptyIdMarker
        // The first occurrence is the field itself: nothing before it holds that byte run.
        guard let start = bytes.indices.first(where: { bytes[$0...].starts(with: marker) }) else {
            preconditionFailure("QUERY_UPDATE encodes queryId as its payload's first field")
        }
        let idOffset = start + marker.count - 1
        prefix = Array(bytes[..<idOffset])
        suffix = Array(bytes[(idOffset + 1)...])
    }

    /// The frame for one subscriber, with room for the WebSocket header in front.
    func frame(queryId: String) -> ByteBuffer {
        let id = queryId.utf8
        var buffer = ByteBufferAllocator().buffer(capacity: SessionOutbound.frameHeadroom + prefix.count + 5 + id.count + suffix.count)
        buffer.moveWriterIndex(forwardBy: SessionOutbound.frameHeadroom)
        buffer.moveReaderIndex(forwardBy: SessionOutbound.frameHeadroom)
        buffer.writeBytes(prefix)
        Self.writeStringHeader(id.count, into: &buffer)
        buffer.writeBytes(id)
        buffer.writeBytes(suffix)
        return buffer
    }

    /// A MessagePack string header in its smallest form (as `MessagePackWriter` writes it).
    static func writeStringHeader(_ count: Int, into buffer: inout ByteBuffer) {
        switch count {
        case ..<32: buffer.writeInteger(UInt8(0xa0 | count))
        case ..<256: buffer.writeInteger(UInt8(0xd9)); buffer.writeInteger(UInt8(count))
        case ..<65536: buffer.writeInteger(UInt8(0xda)); buffer.writeInteger(UInt16(count))
        default: buffer.writeInteger(UInt8(0xdb)); buffer.writeInteger(UInt32(count))
        }
    }
}

/// A write's `QUERY_UPDATE`s to many live queries: every unprojected query sees the same change
/// of the written key bar its query id, so that change is encoded once per change type
/// (`QueryUpdateTemplate`) and only the id is written per subscriber; any other change (a
/// displaced or promoted row, a projected query) is encoded for its subscriber.
struct QueryUpdateFanOut {
    let writtenKey: String
    private var templates: [ChangeType: QueryUpdateTemplate] = [:]
    /// The last frame made: the feeds of other nodes' live queries all share one query id,
    /// so an owner's frames for them are one buffer (and one stream entry per node).
    private var lastFrame: (changeType: ChangeType, queryId: String, frame: ByteBuffer)?

    init(writtenKey: String) {
        self.writtenKey = writtenKey
    }

    mutating func send(_ change: QueryChange, queryId: String, fields: [String]?, to subscriber: some Subscriber, in batch: inout FanOutBatch) {
        let changeType = ChangeType(change)
        guard fields == nil, change.key.hasSameUTF8(as: writtenKey) else {
            subscriber.send(.queryUpdate(QueryUpdate(queryId: queryId, change: change, fields: fields)), in: &batch)
            return
        }
        if let last = lastFrame, last.changeType == changeType, last.queryId == queryId {
            subscriber.send(frame: last.frame, in: &batch)
            return
        }
        // For the written key, a window reports the value it was given.
        let template = templates[changeType] ?? QueryUpdateTemplate(key: change.key, value: change.value ?? .null, changeType: changeType)
        templates[changeType] = template
        let frame = template.frame(queryId: queryId)
        lastFrame = (changeType, queryId, frame)
        subscriber.send(frame: frame, in: &batch)
    }
}
