@testable import ControlPlane
import Testing

@Suite("Routes against the contract")
struct ContractTests {
    @Test func everyV1OperationOfTheContractIsRoutedAndNothingElse() throws {
        let contract = try APIDocumentation.contractOperations().filter { $0.path.hasPrefix("/v1") }
        let routed = ControlPlaneServer.operationTable
        #expect(!contract.isEmpty)
        let contractSet = Set(contract.map { "\($0.method) \($0.path) \($0.operationID)" })
        let routedSet = Set(routed.map { "\($0.method) \($0.path) \($0.operationID)" })
        #expect(contractSet == routedSet, "in the contract only: \(contractSet.subtracting(routedSet).sorted()); routed only: \(routedSet.subtracting(contractSet).sorted())")
        #expect(routed.count == routedSet.count, "a route is registered twice")
    }

    @Test func theServiceOperationsOfTheContractAreTheThreePublicOnes() throws {
        let others = try APIDocumentation.contractOperations().filter { !$0.path.hasPrefix("/v1") }.map { "\($0.method) \($0.path)" }
        #expect(Set(others) == ["GET /health", "GET /openapi.yaml", "GET /docs"])
    }

    @Test func theDocsPageIsSelfContained() throws {
        let html = String(decoding: try APIDocumentation().html, as: UTF8.self)
        #expect(html.contains("createTenant"))
        #expect(!html.contains("http://") || !html.contains("src=\"http"))
        #expect(!html.contains("<script src"))
        #expect(!html.contains("<link"))
    }
}
