import Foundation
import PostgresNIO

/// A `TIMESTAMPTZ` bound or read as whole microseconds, rounded, with the same arithmetic as
/// the SQLite store (`Date(timeIntervalSince1970: micros / 1e6)`).
///
/// postgres-nio's own `Date` coding truncates a floating-point product, so a time read from the
/// database and bound again can come out one microsecond early: a list position would then
/// repeat its last item. Rounding makes every stored time round-trip exactly.
struct PostgresTimestamp: Sendable, Hashable {
    /// Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
    static let postgresEpochMicroseconds: Int64 = 946_684_800_000_000

    var date: Date

    init(_ date: Date) {
        self.date = date
    }

    /// Microseconds since 1970, rounded to the nearest.
    static func microseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    static func date(microseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(microseconds) / 1_000_000)
    }

    /// `date` as it reads back after a round trip through the database.
    static func stored(_ date: Date) -> Date {
        Self.date(microseconds: microseconds(date))
    }
}

extension PostgresTimestamp: PostgresNonThrowingEncodable, PostgresArrayEncodable {
    static var psqlType: PostgresDataType { .timestamptz }
    static var psqlFormat: PostgresFormat { .binary }
    static var psqlArrayType: PostgresDataType { .timestamptzArray }

    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        byteBuffer.writeInteger(Self.microseconds(date) - Self.postgresEpochMicroseconds)
    }
}

extension PostgresTimestamp: PostgresDecodable {
    init<JSONDecoder: PostgresJSONDecoder>(
        from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat, context: PostgresDecodingContext<JSONDecoder>
    ) throws {
        guard type == .timestamptz || type == .timestamp, format == .binary else {
            throw PostgresDecodingError.Code.typeMismatch
        }
        guard buffer.readableBytes == 8, let microseconds = buffer.readInteger(as: Int64.self) else {
            throw PostgresDecodingError.Code.failure
        }
        self.date = Self.date(microseconds: microseconds + Self.postgresEpochMicroseconds)
    }
}

extension Optional where Wrapped == Date {
    /// For binding an optional time.
    var postgres: PostgresTimestamp? { map(PostgresTimestamp.init) }
}

extension Date {
    /// For binding a time.
    var postgres: PostgresTimestamp { PostgresTimestamp(self) }
}
