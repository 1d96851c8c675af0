import NIOCore
import PostgresNIO

/// A one-dimensional PostgreSQL array (`text[]`, `int4[]`, `int8[]`, `bytea[]`) written element by
/// element straight into its binary wire form: one column of a batch upsert through
/// `unnest(...)`, without an intermediate Swift array or a buffer per element.
struct PostgresArrayColumn: PostgresDynamicTypeEncodable, Sendable {
    /// The element type and the matching array type.
    enum Element: Sendable {
        case text, int4, int8, bytea

        var type: PostgresDataType {
            switch self {
            case .text: return .text
            case .int4: return .int4
            case .int8: return .int8
            case .bytea: return .bytea
            }
        }

        var arrayType: PostgresDataType {
            switch self {
            case .text: return .textArray
            case .int4: return .int4Array
            case .int8: return .int8Array
            case .bytea: return .byteaArray
            }
        }
    }

    let element: Element
    private(set) var count = 0
    /// The elements, each as its length (Int32) and bytes.
    private var elements: ByteBuffer

    init(_ element: Element, reservingBytes capacity: Int) {
        self.element = element
        self.elements = ByteBufferAllocator().buffer(capacity: capacity)
    }

    mutating func append(_ text: String) {
        precondition(element == .text)
        let lengthIndex = elements.writerIndex
        elements.writeInteger(Int32(0))
        let written = elements.writeString(text)
        elements.setInteger(Int32(written), at: lengthIndex)
        count += 1
    }

    mutating func append(_ value: Int32) {
        precondition(element == .int4)
        elements.writeInteger(Int32(4))
        elements.writeInteger(value)
        count += 1
    }

    mutating func append(_ value: Int64) {
        precondition(element == .int8)
        elements.writeInteger(Int32(8))
        elements.writeInteger(value)
        count += 1
    }

    mutating func append(bytes: [UInt8]) {
        precondition(element == .bytea)
        elements.writeInteger(Int32(bytes.count))
        elements.writeBytes(bytes)
        count += 1
    }

    /// Appends every element of `other` (of the same element type).
    mutating func append(contentsOf other: PostgresArrayColumn) {
        precondition(element == other.element)
        elements.writeImmutableBuffer(other.elements)
        count += other.count
    }

    var psqlType: PostgresDataType { element.arrayType }
    var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        // Array header: dimensions, has-nulls flag, element type; then per dimension its
        // length and lower bound (1).
        buffer.writeInteger(Int32(count == 0 ? 0 : 1))
        buffer.writeInteger(Int32(0))
        buffer.writeInteger(element.type.rawValue)
        guard count > 0 else { return }
        buffer.writeInteger(Int32(count))
        buffer.writeInteger(Int32(1))
        buffer.writeImmutableBuffer(elements)
    }
}
