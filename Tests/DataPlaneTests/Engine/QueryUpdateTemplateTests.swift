import NIOCore
import Testing
import TopGunCore
import TopGunWire
@testable import DataPlane

@Suite struct QueryUpdateTemplateTests {
    @Test(arguments: [0, 1, 31, 32, 255, 256, 65_535, 65_536])
    func queryUpdateTemplateEncodesLikeTheCodec(idLength: Int) {
        let id = String(repeating: "q", count: idLength)
        let value: DataValue = .object(DataObject(["title": "milk", "done": false, "n": 3]))
        for (changeType, changed) in [(ChangeType.enter, value), (.update, value), (.leave, DataValue.null)] {
            let template = QueryUpdateTemplate(key: "k1", value: changed, changeType: changeType)
            let expected = WireCodec().encode(.queryUpdate(QueryUpdate(queryId: id, key: "k1", value: changed, changeType: changeType)))
            #expect(Array(template.frame(queryId: id).readableBytesView) == expected)
        }
    }
}
