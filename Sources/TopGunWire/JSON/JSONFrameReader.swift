import TopGunCore

/// Reads JSON text (a text frame, an HTTP sync body, `topgun wire encode`) into a `DataValue`,
/// through the product's one strict reader (`TopGunCore.JSONReader`).
///
/// Integers that fit Int64 stay integers (so `1700000000000` is not turned into a float);
/// `{"type":"Buffer","data":[bytes]}` becomes binary, the inverse of `JSONWriter`. Depth and
/// size are bounded like MessagePack input. A repeated member name is refused (JSON.parse
/// would keep the last; which one a sender meant is a guess).
public struct JSONFrameReader: Sendable {
    public let limits: MessagePackLimits

    public init(limits: MessagePackLimits = .default) {
        self.limits = limits
    }

    public func decode(_ text: String) throws(WireDecodingError) -> DataValue {
        try decode(Array(text.utf8))
    }

    public func decode(_ bytes: [UInt8]) throws(WireDecodingError) -> DataValue {
        let reader = JSONReader(limits: JSONReader.Limits(maxBytes: limits.maxInputBytes, maxDepth: limits.maxDepth))
        do {
            return Self.dataValue(try reader.read(bytes))
        } catch {
            switch error.kind {
            case .tooLarge(let limit): throw WireDecodingError(.sizeLimitExceeded(limit: limit))
            case .tooDeep(let limit): throw WireDecodingError(.depthLimitExceeded(limit: limit), offset: error.offset)
            case .invalidUTF8: throw WireDecodingError(.invalidUTF8, offset: error.offset)
            case .syntax(let message): throw WireDecodingError(.invalidJSON(message), offset: error.offset)
            case .repeatedMember(let name):
                throw WireDecodingError(.invalidJSON("member name \(JSONReader.Failure.shown(name)) repeated"), offset: error.offset)
            }
        }
    }

    /// The data value a JSON value stands for.
    public static func dataValue(_ json: JSONValue) -> DataValue {
        switch json {
        case .null: return .null
        case .bool(let value): return .bool(value)
        case .number(.int(let value)): return .int(value)
        case .number(.uint(let value)): return .uint(value)
        case .number(.double(let value)): return .double(value)
        case .string(let value): return .string(value)
        case .array(let values): return .array(values.map(dataValue))
        case .object(let object):
            // Node's Buffer.toJSON form stands for binary.
            if object.count == 2, object["type"] == .string("Buffer"), case .array(let items)? = object["data"],
                let binary = Self.bytes(items)
            {
                return .binary(binary)
            }
            // Member names are unique (the reader refuses repeats): no lookup per member.
            return .object(DataObject(fields: object.members.map { DataObject.Field(key: $0.name, value: dataValue($0.value)) }))
        }
    }

    private static func bytes(_ items: [JSONValue]) -> [UInt8]? {
        var binary: [UInt8] = []
        binary.reserveCapacity(items.count)
        for item in items {
            // Whole numbers only, written as integers or not (`1.0` is a byte too, as before).
            guard let byte = item.int64Value, (0...255).contains(byte) else { return nil }
            binary.append(UInt8(byte))
        }
        return binary
    }
}
