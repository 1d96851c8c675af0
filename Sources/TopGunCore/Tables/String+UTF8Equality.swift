extension String {
    /// Whether the two strings hold the same UTF-8 bytes: the equality of the client's
    /// JavaScript strings and of the database's text. Swift's `==` is canonical equivalence
    /// ("é" equals "e\u{301}"), which would merge keys, map names and tags that the client
    /// and storage keep apart.
    @inlinable
    public func hasSameUTF8(as other: String) -> Bool {
        utf8.count == other.utf8.count && utf8.elementsEqual(other.utf8)
    }
}
