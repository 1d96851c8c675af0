import TopGunCore
import Foundation

/// The members of a resource's representation that its `PUT` accepts back but cannot change
/// (`readOnly: true` in the contract), so a client may send what `GET` returned with one field
/// changed. A read-only member sent is ignored when it equals the resource's current value and
/// refused, with its JSON Pointer, when it differs: a body meant for another resource, or a
/// stale copy sent without `If-Match`, is then not applied silently.
///
///     var reader = try BodyReader(body)
///     let readOnly = ReadOnlyMembers(["tenant_id", "version"], from: &reader)
///     ...
///     try reader.finish()                              // does not refuse them as unknown
///     try readOnly.check(against: current)             // inside the write, against the current state
struct ReadOnlyMembers {
    /// The read-only members the body carried, by name.
    private(set) var sent: [String: JSONValue] = [:]
    /// Members holding instants, equal when they name the same instant (`Z` or `+00:00`).
    private let instants: Set<String>

    /// Takes the members `names` out of `reader` (marking them read).
    init(_ names: [String], instants: Set<String> = [], from reader: inout BodyReader) {
        for name in names {
            if let value = reader.value(name) { sent[name] = value }
        }
        self.instants = instants
    }

    /// The members of a representation, as `GET` renders it, to check against.
    static func representation(_ body: some Encodable) -> [String: JSONValue] {
        guard case .object(let members)? = try? JSONValue.parse(JSONBody.encode(body)) else { return [:] }
        // Our own rendering: member names are plain ASCII, each once.
        return Dictionary(members.members.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    /// Refuses every member sent that differs from `current` (the resource's representation
    /// now; a member missing there has no value yet, so any value sent for it differs).
    func check(against current: [String: JSONValue]) throws(APIError) {
        var problems: [FieldProblem] = []
        for name in sent.keys.sorted() {
            guard let value = sent[name] else { continue }
            let pointer = "/" + name
            guard let now = current[name] else {
                problems.append(FieldProblem(pointer: pointer, "is read-only, and this resource has no \(name) yet; leave it out"))
                continue
            }
            if !Self.same(value, now, asInstants: instants.contains(name)) {
                let shown = String(now.canonicalText.prefix(200))
                problems.append(FieldProblem(pointer: pointer, "is read-only: the current value is \(shown); leave it out or send it unchanged"))
            }
        }
        if !problems.isEmpty {
            throw APIError.validation(problems, detail: problems.count == 1 ? nil : "\(problems.count) read-only members differ from the current values")
        }
    }

    private static func same(_ sent: JSONValue, _ current: JSONValue, asInstants: Bool) -> Bool {
        switch (sent, current) {
        case (.string(let left), .string(let right)) where asInstants:
            guard let leftDate = RFC3339.parse(left), let rightDate = RFC3339.parse(right) else { return left == right }
            // Both stores keep whole microseconds.
            return (leftDate.timeIntervalSince1970 * 1_000_000).rounded() == (rightDate.timeIntervalSince1970 * 1_000_000).rounded()
        case (.number(let left), .number(let right)):
            // `5` and `5.0` are one number; whole numbers compare exactly.
            if let left = left.int64Value, let right = right.int64Value { return left == right }
            return left.doubleValue == right.doubleValue
        default:
            return sent == current
        }
    }
}
