/// A string kept in the struct itself when its UTF-8 fits in 32 bytes, as a `String` object
/// otherwise. For text held long and dropped long after it was made (journal keys): an
/// inline copy costs nothing to drop, where a `String` longer than 15 bytes is an object
/// whose release, by then, is a cache miss and a free.
struct InlineText: Sendable {
    private var bytes: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    /// The length when inline; -1 when the text is in `long`.
    private var count: Int8 = -1
    private var long: String?

    init(_ text: borrowing String) {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        let length: Int? = text.utf8.withContiguousStorageIfAvailable { utf8 in
            guard utf8.count <= 32 else { return nil }
            withUnsafeMutableBytes(of: &words) { raw in raw.copyMemory(from: UnsafeRawBufferPointer(utf8)) }
            return utf8.count
        } ?? nil
        if let length {
            bytes = words
            count = Int8(length)
        } else {
            long = copy text
        }
    }

    var string: String {
        if let long { return long }
        var words = bytes
        let length = Int(count)
        return withUnsafeBytes(of: &words) { raw in
            String(decoding: UnsafeRawBufferPointer(rebasing: raw[0..<length]), as: UTF8.self)
        }
    }
}
