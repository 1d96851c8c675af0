/// A map key with its hash computed once.
///
/// Large maps look keys up in hash tables of hundreds of thousands of entries. With plain
/// `String` keys every probe past another key compares strings, and a key longer than 15
/// bytes lives on the heap: each such comparison is a cache miss. Stored with its hash, a
/// probe compares two integers first and reads string bytes only for the one key that
/// matches. The hash is `String`'s own (seeded per process), so crafted keys cannot make
/// the tables degenerate; it is the same for canonically equivalent strings, which
/// therefore collide but stay distinct keys (see `==`).
public struct HashedKey: Hashable, Sendable, CustomStringConvertible {
    public let string: String
    public let hash: Int

    @inlinable
    public init(_ string: String) {
        self.string = string
        self.hash = string.hashValue
    }

    /// A key whose hash is known already (`HashedKey(string).hash`); tests also use it to make
    /// distinct keys collide.
    public init(_ string: String, hash: Int) {
        self.string = string
        self.hash = hash
    }

    /// Equal when the UTF-8 bytes are: keys are the client's JavaScript strings, which are
    /// equal only unit for unit (Swift's `==` would also equate "é" with "e\u{301}").
    @inlinable
    public static func == (lhs: HashedKey, rhs: HashedKey) -> Bool {
        lhs.hash == rhs.hash && lhs.string.hasSameUTF8(as: rhs.string)
    }

    @inlinable
    public func hash(into hasher: inout Hasher) {
        hasher.combine(hash)
    }

    public var description: String { string }
}
