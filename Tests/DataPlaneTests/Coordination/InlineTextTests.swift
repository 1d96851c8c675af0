import Testing
@testable import DataPlane

@Suite struct InlineTextTests {
    static let texts: [String] = [
        "", "a", String(repeating: "x", count: 15), String(repeating: "y", count: 16), String(repeating: "z", count: 32),
        String(repeating: "w", count: 33), "c00001-0000000000001", "ключ-ключ-ключ-ключ", "e\u{301}", "\u{e9}", "emoji-😀-end",
        String(repeating: "長", count: 11), String(repeating: "長", count: 10) + "ab",
    ]

    @Test(arguments: 0..<texts.count)
    func keepsEveryByte(_ index: Int) {
        let text = Self.texts[index]
        #expect(Array(InlineText(text).string.utf8) == Array(text.utf8))
    }
}
