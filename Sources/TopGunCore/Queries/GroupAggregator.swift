/// Groups query matches and computes their aggregations: one row per group.
///
/// A group row's key is the group's key string (below) and its value is, in this order:
/// `__key` (that string), `__count` (rows in the group), one `__<func>_<field>` per
/// aggregation (a `count` with a field counts the rows where the field is present and not
/// null), then each `groupBy` field with the group's value (null when missing). This is the
/// shape of the Rust server (fixture `QUERY_RESP_AGG.json`).
///
/// * `sum`, `min`, `max`, `avg` use only numeric values of the field. `sum` is an integer
///   when every value is (and it does not overflow), else a double; with no numbers it is 0.
///   `min`/`max` keep the original value, null without numbers; `avg` is a double, null
///   without numbers.
/// * The key string of a value: strings as they are, numbers in decimal (whole doubles
///   without a fraction), `true`/`false`, `null` for null or missing, composites as compact
///   JSON-like text. Several group fields join with `|`, escaping `\` and `|` in each part.
///   The key string is the group's identity, so values that print alike (`1` and `"1"`)
///   share a group, as they would as JavaScript object keys.
/// * Without `groupBy` (only `aggregations`), all matches form one group with key `""`.
public enum GroupAggregator {
    public static func aggregate(
        _ records: some Sequence<QueryRecord>, groupBy: [String], aggregations: [Aggregation]
    ) -> [QueryRecord] {
        // Group keys compare byte for byte, as the client's JavaScript strings do.
        var indexByKey: [HashedKey: Int] = [:]
        var groups: [Group] = []
        var aggregatedFields: [String] = []
        for aggregation in aggregations {
            if let field = aggregation.field, !aggregatedFields.contains(field) { aggregatedFields.append(field) }
        }

        for record in records {
            let values = groupBy.map { RecordAttribute.resolve($0, key: nil, value: record.value) }
            let key = groupKey(for: values)
            let index: Int
            if let existing = indexByKey[HashedKey(key)] {
                index = existing
            } else {
                index = groups.count
                indexByKey[HashedKey(key)] = index
                groups.append(Group(key: key, values: values.map { $0 ?? .null }, fieldCount: aggregatedFields.count))
            }
            groups[index].count += 1
            for (fieldIndex, field) in aggregatedFields.enumerated() {
                if let value = RecordAttribute.resolve(field, key: nil, value: record.value) {
                    groups[index].fields[fieldIndex].add(value)
                }
            }
        }

        groups.sort { ValueOrdering.compareStrings($0.key, $1.key) == .less }
        return groups.map { group in
            var row = DataObject()
            row.append("__key", .string(group.key))
            row.append("__count", .int(Int64(group.count)))
            for aggregation in aggregations {
                let state = aggregation.field.flatMap { aggregatedFields.firstIndex(of: $0) }.map { group.fields[$0] }
                row[aggregation.resultKey] = result(of: aggregation, group: group, state: state)
            }
            for (field, value) in zip(groupBy, group.values) where row[field] == nil {
                row.append(field, value)
            }
            return QueryRecord(key: group.key, value: .object(row))
        }
    }

    /// The key string of a group with these field values (nil = missing); see the type's doc.
    public static func groupKey(for values: [DataValue?]) -> String {
        if values.count == 1 { return keyText(values[0]) }
        return values.map { escape(keyText($0)) }.joined(separator: "|")
    }

    private static func result(of aggregation: Aggregation, group: Group, state: FieldState?) -> DataValue {
        switch aggregation.function {
        case .count:
            guard aggregation.field != nil else { return .int(Int64(group.count)) }
            return .int(Int64(state?.presentCount ?? 0))
        case .sum:
            guard let state, state.numericCount > 0 else { return .int(0) }
            if let exact = state.integerSum { return .int(exact) }
            return .double(state.doubleSum)
        case .min: return state?.minimum ?? .null
        case .max: return state?.maximum ?? .null
        case .avg:
            guard let state, state.numericCount > 0 else { return .null }
            return .double(state.doubleSum / Double(state.numericCount))
        }
    }

    private static func escape(_ part: String) -> String {
        guard part.contains(where: { $0 == "|" || $0 == "\\" }) else { return part }
        var escaped = ""
        for character in part {
            if character == "|" || character == "\\" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }

    static func keyText(_ value: DataValue?) -> String {
        guard let value else { return "null" }
        switch value {
        case .null: return "null"
        case .string(let s): return s
        default: return DataValueText.render(value)
        }
    }

    private struct Group {
        let key: String
        let values: [DataValue]
        var count = 0
        var fields: [FieldState]

        init(key: String, values: [DataValue], fieldCount: Int) {
            self.key = key
            self.values = values
            self.fields = Array(repeating: FieldState(), count: fieldCount)
        }
    }

    private struct FieldState {
        var presentCount = 0
        var numericCount = 0
        var doubleSum = 0.0
        /// Exact integer sum while every value is an integer and nothing overflowed.
        var integerSum: Int64? = 0
        var minimum: DataValue?
        var maximum: DataValue?

        mutating func add(_ value: DataValue) {
            guard !value.isNull else { return }
            presentCount += 1
            guard value.isNumber, let double = value.doubleValue, !double.isNaN else { return }
            numericCount += 1
            doubleSum += double
            if let sum = integerSum {
                if case .int(let i) = value {
                    let (total, overflow) = sum.addingReportingOverflow(i)
                    integerSum = overflow ? nil : total
                } else {
                    integerSum = nil
                }
            }
            if minimum == nil || ValueOrdering.compareNumbers(value, minimum!) == .less { minimum = value }
            if maximum == nil || ValueOrdering.compareNumbers(value, maximum!) == .greater { maximum = value }
        }
    }
}
