import TopGunCore

/// How far a write must get before it is acknowledged (protocol.md §6.5.2).
public enum WriteConcern: String, Sendable, CaseIterable, Comparable, WireField {
    case fireAndForget = "FIRE_AND_FORGET"
    case memory = "MEMORY"
    case applied = "APPLIED"
    case replicated = "REPLICATED"
    case persisted = "PERSISTED"

    public init(wire value: DataValue) throws(WireDecodingError) {
        let text = try String(wire: value)
        guard let concern = WriteConcern(rawValue: text) else {
            throw WireDecodingError(.invalidValue("unknown write concern '\(text)'"))
        }
        self = concern
    }

    public var wireValue: DataValue { .string(rawValue) }

    private var rank: Int { Self.allCases.firstIndex(of: self)! }

    public static func < (lhs: WriteConcern, rhs: WriteConcern) -> Bool { lhs.rank < rhs.rank }
}
