import TopGunCore

/// The state of a PN counter: per node id, the total added (`positive`) and removed
/// (`negative`); the value is Σpositive − Σnegative.
///
/// Two spellings exist on the wire (protocol.md §6.6.8): the schema, the fixtures and both
/// upstream servers use `{p, n}`, the real client sends and reads `{positive, negative}`.
/// Decoding accepts either (or both; a node present under both spellings keeps the larger
/// count, which is what a max-merge would give). `spellings` records which spellings arrived
/// so that a decoded state encodes exactly as it came; a state made on the server with
/// `init(positive:negative:)` has both spellings and encodes `p`, `n`, `positive` and
/// `negative` together, which every client and server reads (the project's decision).
/// `spellings` is wire bookkeeping, not part of the value: `==` compares the counts only.
public struct CounterState: WireField, Sendable {
    /// A way of naming the two halves of the state on the wire.
    public enum Spelling: Sendable, Hashable, CaseIterable {
        /// `p` and `n` (schema, servers, fixtures).
        case short
        /// `positive` and `negative` (the real client).
        case long

        var keys: (positive: String, negative: String) {
            switch self {
            case .short: return ("p", "n")
            case .long: return ("positive", "negative")
            }
        }
    }

    public var positive: [String: Double]
    public var negative: [String: Double]
    /// The spellings written by `wireValue`.
    public var spellings: Set<Spelling>

    /// A state made by the server: encodes both spellings.
    public init(positive: [String: Double] = [:], negative: [String: Double] = [:]) {
        self.init(positive: positive, negative: negative, spellings: Set(Spelling.allCases))
    }

    public init(positive: [String: Double], negative: [String: Double], spellings: Set<Spelling>) {
        self.positive = positive
        self.negative = negative
        self.spellings = spellings
    }

    /// The wire form of a counter made on the server: encodes both spellings.
    public init(_ counter: PNCounter) {
        self.init(positive: counter.positive, negative: counter.negative)
    }

    /// The counter this state describes.
    public var counter: PNCounter { PNCounter(positive: positive, negative: negative) }

    /// Σpositive − Σnegative.
    public var value: Double {
        positive.values.reduce(0, +) - negative.values.reduce(0, +)
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        var positive: [String: Double] = [:]
        var negative: [String: Double] = [:]
        var spellings: Set<Spelling> = []
        for spelling in Spelling.allCases {
            let keys = spelling.keys
            let p: WireDictionary<Double>? = try f.optional(keys.positive)
            let n: WireDictionary<Double>? = try f.optional(keys.negative)
            if p != nil || n != nil { spellings.insert(spelling) }
            for (node, count) in p?.entries ?? [] { positive[node] = max(positive[node] ?? count, count) }
            for (node, count) in n?.entries ?? [] { negative[node] = max(negative[node] ?? count, count) }
        }
        // A state naming neither half is an empty counter; answer it in both spellings.
        self.init(positive: positive, negative: negative, spellings: spellings.isEmpty ? Set(Spelling.allCases) : spellings)
    }

    public var wireValue: DataValue {
        let p = Self.counts(positive)
        let n = Self.counts(negative)
        var f = DataObject()
        for spelling in Spelling.allCases where spellings.contains(spelling) {
            f.append(spelling.keys.positive, p)
            f.append(spelling.keys.negative, n)
        }
        return .object(f)
    }

    /// Node ids in sorted order, so that encoding is deterministic.
    private static func counts(_ counts: [String: Double]) -> WireDictionary<Double> {
        WireDictionary(counts.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) })
    }
}

extension CounterState: Equatable {
    /// Equal counts; the spellings do not matter.
    public static func == (lhs: CounterState, rhs: CounterState) -> Bool {
        lhs.positive == rhs.positive && lhs.negative == rhs.negative
    }
}

/// `COUNTER_REQUEST` (client → server): subscribes to a counter and asks for its state.
public struct CounterRequest: MessageBody {
    public static let type = "COUNTER_REQUEST"
    public static let envelope = MessageEnvelope.payload
    public var name: String

    public init(name: String) { self.name = name }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        name = try f.required("name")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("name", name)
        return f
    }
}

/// `COUNTER_SYNC` (client → server): the client's counter state, to be max-merged.
public struct CounterSync: MessageBody {
    public static let type = "COUNTER_SYNC"
    public static let envelope = MessageEnvelope.payload
    public var name: String
    public var state: CounterState

    public init(name: String, state: CounterState) {
        self.name = name
        self.state = state
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        name = try f.required("name")
        state = try f.required("state")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("name", name)
        f.append("state", state)
        return f
    }
}

/// `COUNTER_RESPONSE` (server → client): the counter's state, in reply to `COUNTER_REQUEST`.
public struct CounterResponse: MessageBody {
    public static let type = "COUNTER_RESPONSE"
    public static let envelope = MessageEnvelope.payload
    public var name: String
    public var state: CounterState

    public init(name: String, state: CounterState) {
        self.name = name
        self.state = state
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        name = try f.required("name")
        state = try f.required("state")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("name", name)
        f.append("state", state)
        return f
    }
}

/// `COUNTER_UPDATE` (server → client): the merged state after a `COUNTER_SYNC`, to the sender
/// and every other subscriber.
public struct CounterUpdate: MessageBody {
    public static let type = "COUNTER_UPDATE"
    public static let envelope = MessageEnvelope.payload
    public var name: String
    public var state: CounterState

    public init(name: String, state: CounterState) {
        self.name = name
        self.state = state
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        name = try f.required("name")
        state = try f.required("state")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("name", name)
        f.append("state", state)
        return f
    }
}
