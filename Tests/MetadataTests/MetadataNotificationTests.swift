@testable import Metadata
import Tenancy
import Testing

@Suite("Metadata notification payload")
struct MetadataNotificationTests {
    @Test func changesRoundTripThroughTheDocumentedJSON() throws {
        let tenant = MetadataNotification(MetadataChange.tenant("tn_a"))
        #expect(tenant?.json == #"{"kind":"tenant","tenant":"tn_a"}"#)
        let key = MetadataNotification(MetadataChange.signingKey(kid: "key_b", tenant: "tn_a"))
        #expect(key?.json == #"{"kid":"key_b","kind":"signing_key","tenant":"tn_a"}"#)
        #expect(MetadataNotification.parse(try #require(tenant?.json))?.change == .tenant("tn_a"))
        #expect(MetadataNotification.parse(try #require(key?.json))?.change == .signingKey(kid: "key_b", tenant: "tn_a"))
        #expect(MetadataNotification(MetadataChange.resynchronize) == nil)
        let quota = MetadataNotification(MetadataChange.quota("tn_a"))
        #expect(quota?.json == #"{"kind":"quota","tenant":"tn_a"}"#)
        #expect(MetadataNotification.parse(try #require(quota?.json))?.change == .quota("tn_a"))
        let schema = MetadataNotification(MetadataChange.schema(tenant: "tn_a", map: "orders"))
        #expect(schema?.json == #"{"kind":"schema","map":"orders","tenant":"tn_a"}"#)
        #expect(MetadataNotification.parse(try #require(schema?.json))?.change == .schema(tenant: "tn_a", map: "orders"))
    }

    @Test func unknownKindsMeanResynchronize() {
        #expect(MetadataNotification.parse(#"{"kind":"billing","tenant":"tn_a"}"#)?.change == .resynchronize)
        #expect(MetadataNotification.parse(#"{"kind":"signing_key","tenant":"tn_a"}"#)?.change == .resynchronize)
        #expect(MetadataNotification.parse(#"{"kind":"schema","tenant":"tn_a"}"#)?.change == .resynchronize)
        #expect(MetadataNotification.parse("garbage") == nil)
    }
}
