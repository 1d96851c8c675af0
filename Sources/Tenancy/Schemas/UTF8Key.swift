/// A string compared and hashed by its UTF-8 bytes. Swift's `String ==` treats canonically
/// equivalent strings (`"é"` and `"e\u{301}"`) as equal; JSON and JavaScript do not.
struct UTF8Key: Hashable, Sendable {
    let string: String

    init(_ string: String) { self.string = string }

    static func == (lhs: UTF8Key, rhs: UTF8Key) -> Bool { sameUTF8(lhs.string, rhs.string) }

    func hash(into hasher: inout Hasher) {
        let hashed: Void? = string.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if hashed == nil {
            for byte in string.utf8 { hasher.combine(byte) }
        }
    }
}

/// Byte equality of two strings' UTF-8 (native strings compare their buffers directly).
@inline(__always)
func sameUTF8(_ a: String, _ b: String) -> Bool {
    guard a.utf8.count == b.utf8.count else { return false }
    let fast: Bool? = a.utf8.withContiguousStorageIfAvailable { left in
        b.utf8.withContiguousStorageIfAvailable { right in
            left.elementsEqual(right)
        }
    } ?? nil
    return fast ?? a.utf8.elementsEqual(b.utf8)
}
