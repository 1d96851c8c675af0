import Tenancy
import TopGunCore
import TopGunWire

/// One push from a node to another, carried in order on the sender's `PeerStream`: what an
/// owner sends the sessions it serves for another node, a topic message for the subscribers
/// there, the sessions that ended on the sender.
///
/// On the wire each entry is a MessagePack array whose first element is its kind; a kind the
/// receiver does not know is skipped (a later version may add some).
enum StreamEntry: Sendable, Equatable {
    /// A client message for sessions of the receiving node, encoded once for all of them.
    case frame(sessions: [UInt64], bytes: [UInt8])
    /// A topic message for every subscriber of `topic` on the receiving node.
    case topic(tenant: TenantID, topic: String, bytes: [UInt8])
    /// Sessions of the sender's run `incarnation` that ended: what they hold on the receiver
    /// (locks, counter watches) is released.
    case sessionsEnded(incarnation: String, sessions: [UInt64])
    /// A live query's feed (`ClusterLiveQueries`) sent its whole first answer.
    case feedReady(feed: UInt64)
    /// Journal events of a batch on `mapName`, for the tenant's sequencer to number (`ClusterJournal`).
    case journalAppend(tenant: TenantID, mapName: String, events: [JournalEvent])

    enum Kind: Int64 {
        // 4 carried lock copies, which are now requests (`LockCopy`) so that a grant can wait for them.
        case frame = 1, topic = 2, sessionsEnded = 3, feedReady = 5, journalAppend = 6
    }

    /// About what the entry costs in a stream message (its payload and a small overhead).
    var byteCount: Int {
        switch self {
        case .frame(let sessions, let bytes): bytes.count + 9 * sessions.count + 8
        case .topic(_, let topic, let bytes): bytes.count + topic.utf8.count + 72
        case .sessionsEnded(let incarnation, let sessions): incarnation.utf8.count + 9 * sessions.count + 8
        case .feedReady: 16
        case .journalAppend(_, let mapName, let events):
            mapName.utf8.count + 48 + events.reduce(0) { $0 + 96 + $1.key.utf8.count + ($1.value.map(MessagePackWriter.encodedSize(of:)) ?? 1) }
        }
    }

    var wireValue: DataValue {
        switch self {
        case .frame(let sessions, let bytes):
            .array([.int(Kind.frame.rawValue), .array(sessions.map { .int(Int64(bitPattern: $0)) }), .binary(bytes)])
        case .topic(let tenant, let topic, let bytes):
            .array([.int(Kind.topic.rawValue), .string(tenant.rawValue), .string(topic), .binary(bytes)])
        case .sessionsEnded(let incarnation, let sessions):
            .array([.int(Kind.sessionsEnded.rawValue), .string(incarnation), .array(sessions.map { .int(Int64(bitPattern: $0)) })])
        case .feedReady(let feed):
            .array([.int(Kind.feedReady.rawValue), .int(Int64(bitPattern: feed))])
        case .journalAppend(let tenant, let mapName, let events):
            .array([.int(Kind.journalAppend.rawValue), .string(tenant.rawValue), .string(mapName), .array(events.map(\.wireValue))])
        }
    }

    /// The entry, or nil for a kind this node does not know.
    init?(wire value: DataValue) throws {
        guard case .array(let fields) = value, case .int(let rawKind)? = fields.first else {
            throw ClusterMessageError("a stream entry is not an array starting with its kind")
        }
        guard let kind = Kind(rawValue: rawKind) else { return nil }
        func field(_ index: Int) throws -> DataValue {
            guard index < fields.count else { throw ClusterMessageError("a stream entry of kind \(rawKind) is too short") }
            return fields[index]
        }
        func string(_ index: Int) throws -> String {
            guard case .string(let text) = try field(index) else { throw ClusterMessageError("stream entry field \(index): expected a string") }
            return text
        }
        func binary(_ index: Int) throws -> [UInt8] {
            guard case .binary(let bytes) = try field(index) else { throw ClusterMessageError("stream entry field \(index): expected binary") }
            return bytes
        }
        func sessions(_ index: Int) throws -> [UInt64] {
            guard case .array(let values) = try field(index) else { throw ClusterMessageError("stream entry field \(index): expected an array") }
            return try values.map { value in
                switch value {
                case .int(let id): return UInt64(bitPattern: id)
                case .uint(let id): return id
                default: throw ClusterMessageError("stream entry field \(index): expected session ids")
                }
            }
        }
        switch kind {
        case .frame: self = .frame(sessions: try sessions(1), bytes: try binary(2))
        case .topic: self = .topic(tenant: TenantID(try string(1)), topic: try string(2), bytes: try binary(3))
        case .sessionsEnded: self = .sessionsEnded(incarnation: try string(1), sessions: try sessions(2))
        case .feedReady:
            guard case .int(let feed) = try field(1) else { throw ClusterMessageError("a feed-ready entry is malformed") }
            self = .feedReady(feed: UInt64(bitPattern: feed))
        case .journalAppend:
            guard case .array(let events) = try field(3) else { throw ClusterMessageError("a journal entry is malformed") }
            self = .journalAppend(tenant: TenantID(try string(1)), mapName: try string(2), events: try events.map { try JournalEvent(wire: $0) })
        }
    }
}

/// The body of one `stream` message: its place in the sender's stream, then its entries.
struct StreamMessage: Sendable, Equatable {
    var position: StreamSequence.Position
    var entries: [StreamEntry]

    func encoded() -> [UInt8] {
        ClusterCodec.encode([
            "s": .int(Int64(bitPattern: position.stream)), "g": .int(Int64(bitPattern: position.generation)),
            "q": .int(Int64(bitPattern: position.sequence)), "e": .array(entries.map(\.wireValue)),
        ])
    }

    init(position: StreamSequence.Position, entries: [StreamEntry]) {
        self.position = position
        self.entries = entries
    }

    init(decoding bytes: [UInt8]) throws {
        let object = try ClusterCodec.decode(bytes)
        let stream: Int64 = try object.required("s")
        let generation: Int64 = try object.required("g")
        let sequence: Int64 = try object.required("q")
        position = .init(stream: UInt64(bitPattern: stream), generation: UInt64(bitPattern: generation), sequence: UInt64(bitPattern: sequence))
        let values: [DataValue] = try object.required("e")
        entries = try values.compactMap { try StreamEntry(wire: $0) }
    }
}
