import Crypto
import Foundation
import Metadata

/// Opaque page cursors: base64url of the list position and a fingerprint of the filters it
/// was made for, so a cursor used with other filters is refused instead of skipping rows.
enum PageCursor {
    private struct Payload: Codable {
        /// Version of this format.
        var v: Int
        /// The position's time, microseconds since 1970.
        var t: Int64
        var i: String
        /// First 8 bytes of SHA-256 of the filters, base64url.
        var f: String
    }

    static func encode(_ position: ListPosition, filters: String) -> String {
        let payload = Payload(
            v: 1, t: Int64((position.time.timeIntervalSince1970 * 1_000_000).rounded()), i: position.id,
            f: fingerprint(filters))
        let data = (try? JSONEncoder().encode(payload)) ?? Data()
        return Base64URLText.encode(Array(data))
    }

    /// The position in `cursor`, nil when there is none; a 400 when it is malformed or was
    /// made for other filters.
    static func decode(_ cursor: String?, filters: String) throws(APIError) -> ListPosition? {
        guard let cursor else { return nil }
        guard (1...512).contains(cursor.utf8.count), let bytes = Base64URLText.decode(cursor),
              let payload = try? JSONDecoder().decode(Payload.self, from: Data(bytes)), payload.v == 1
        else { throw .validation(parameter: "cursor", "is not a cursor this API issued") }
        guard payload.f == fingerprint(filters) else {
            throw .validation(parameter: "cursor", "was issued for other filters; start again without a cursor")
        }
        return ListPosition(time: Date(timeIntervalSince1970: Double(payload.t) / 1_000_000), id: payload.i)
    }

    private static func fingerprint(_ filters: String) -> String {
        Base64URLText.encode(Array(SHA256.hash(data: Array(filters.utf8))).prefix(8))
    }
}

/// Unpadded base64url without Foundation's tolerance for padding and white space.
enum Base64URLText {
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    static func decode(_ text: String) -> [UInt8]? {
        guard text.utf8.allSatisfy(AdminTokenValue.isBase64URLByte), text.utf8.count % 4 != 1 else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map { Array($0) }
    }
}

/// The `{"items": [...], "next_cursor": ...}` body of every list.
struct ListBody<Item: Encodable>: Encodable {
    var items: [Item]
    var next_cursor: String?

    enum CodingKeys: String, CodingKey {
        case items
        case next_cursor
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(items, forKey: .items)
        // The one member that is null rather than absent when it has no value.
        if let next_cursor { try container.encode(next_cursor, forKey: .next_cursor) } else { try container.encodeNil(forKey: .next_cursor) }
    }
}
