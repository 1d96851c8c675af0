import Testing
import TopGunCore

@Suite struct FieldProjectionTests {
    private let user: DataValue = ["name": "Ann", "age": 3, "address": ["city": "Oslo", "zip": "0150", "geo": ["lat": 59.9]], "a.b": 1]

    @Test func keepsOnlyNamedFieldsInRequestedOrder() {
        let projected = FieldProjection.project(user, fields: ["age", "name"])
        #expect(projected == ["age": 3, "name": "Ann"])
        #expect(projected.objectValue?.keys == ["age", "name"])
    }

    @Test func dottedFieldsKeepNestedValuesInsideTheirParents() {
        #expect(FieldProjection.project(user, fields: ["address.city", "address.geo.lat"]) == ["address": ["city": "Oslo", "geo": ["lat": 59.9]]])
    }

    @Test func literalDottedNamesAndMissingFields() {
        #expect(FieldProjection.project(user, fields: ["a.b", "nope", "address.nope"]) == ["a.b": 1])
    }

    @Test func wholeParentAndNestedChildMerge() {
        #expect(FieldProjection.project(user, fields: ["address", "address.city"]) == ["address": ["city": "Oslo", "zip": "0150", "geo": ["lat": 59.9]]])
    }

    @Test func nonObjectValuesPassThrough() {
        #expect(FieldProjection.project("text", fields: ["a"]) == "text")
        #expect(FieldProjection.project(user, fields: []) == [:])
    }
}
