import Testing
@testable import Tenancy

@Suite("SchemaNumber")
struct SchemaNumberTests {
    @Test func numberComparisonIsExact() {
        #expect(SchemaNumber.compare(.int(9_007_199_254_740_993), .double(9_007_199_254_740_992)) == 1)
        #expect(SchemaNumber.compare(.int(3), .double(3.5)) == -1)
        #expect(SchemaNumber.compare(.int(-3), .double(-2.5)) == -1)
        #expect(SchemaNumber.compare(.int(-2), .double(-2.5)) == 1)
        #expect(SchemaNumber.compare(.uint(UInt64.max), .double(1.8446744073709552e19)) == -1)
        #expect(SchemaNumber.compare(.int(Int64.max), .double(1e300)) == -1)
        #expect(SchemaNumber.compare(.int(Int64.min), .double(-1e300)) == 1)
        #expect(SchemaNumber.compare(.int(Int64.max), .uint(UInt64(Int64.max) + 1)) == -1)
    }
}
