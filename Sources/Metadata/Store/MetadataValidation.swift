import Tenancy

/// Input checks both stores apply, so they accept and refuse the same values.
enum MetadataValidation {
    static let maximumDisplayNameCharacters = 200

    /// Slugs are 1 to 63 characters of `a-z`, `0-9` and `-`, not starting or ending with `-`
    /// (usable in URLs and host names as is).
    static func checkSlug(_ slug: String) throws(MetadataError) {
        let bytes = Array(slug.utf8)
        let allowed = bytes.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
        guard (1...63).contains(bytes.count), allowed, bytes.first != 0x2D, bytes.last != 0x2D else {
            throw .invalid("slug must be 1 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'")
        }
    }

    static func checkDisplayName(_ name: String) throws(MetadataError) {
        guard !name.allSatisfy(\.isWhitespace) else { throw .invalid("display name must not be empty") }
        guard name.count <= maximumDisplayNameCharacters else {
            throw .invalid("display name must be at most \(maximumDisplayNameCharacters) characters")
        }
        // PostgreSQL text cannot hold NUL; refuse it in both stores alike.
        guard !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .invalid("display name must not contain control characters")
        }
    }

    /// Plans are short lowercase words (`free`, `pro`, `enterprise`); which ones exist is the
    /// control plane's business.
    static func checkPlan(_ plan: String) throws(MetadataError) {
        let bytes = Array(plan.utf8)
        let allowed = bytes.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F }
        guard (1...32).contains(bytes.count), allowed else {
            throw .invalid("plan must be 1 to 32 characters of a-z, 0-9, '-' and '_'")
        }
    }

    static func checkKeyMaterial(_ material: SigningKey.Material, for algorithm: SigningAlgorithm) throws(MetadataError) {
        do {
            try SigningKey.validate(material, for: algorithm)
        } catch {
            throw .invalid(error.reason)
        }
    }

    /// Lookups by malformed ids cannot match; answering nil early keeps odd bytes (NUL) away
    /// from the database.
    static func isPlausibleIdentifier(_ text: String) -> Bool {
        (1...128).contains(text.utf8.count) && !text.utf8.contains(0)
    }
}
