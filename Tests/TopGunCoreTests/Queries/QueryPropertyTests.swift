import PropertyBased
import Testing
import TopGunCore

/// Records `r0, r1, …` whose `score` is the generated number, or absent for a negative one.
private func records(_ scores: [Int]) -> [String: DataValue] {
    var records: [String: DataValue] = [:]
    for (index, score) in scores.enumerated() {
        records["r\(index)"] = score < 0 ? ["tag": "none"] : ["score": .int(Int64(score)), "tag": score % 2 == 0 ? "even" : "odd"]
    }
    return records
}

@Suite struct QueryPropertyTests {
    @Test func pagingWithRandomPageSizesConcatenatesToTheUnpagedResult() async {
        await propertyCheck(
            count: 150, input: Gen.int(in: -1...6).array(of: 0...40), Gen.int(in: 1...7).array(of: 1...8), Gen.bool, Gen.bool
        ) { scores, pageSizes, descending, filtered in
            let data = records(scores)
            let executor = QueryExecutor()
            let sort = SortOrder([SortField("score", descending ? .desc : .asc), SortField("tag")])
            let filter: PredicateNode? = filtered ? .leaf(.neq, "tag", "odd") : nil
            let expected = executor.execute(Query(predicate: filter, sort: sort), records: data, nowMillis: 0).results

            var collected: [QueryRecord] = []
            var cursor: String?
            var pageIndex = 0
            repeat {
                let query = Query(predicate: filter, sort: sort, limit: pageSizes[pageIndex % pageSizes.count], cursor: cursor)
                let page = executor.execute(query, records: data, nowMillis: Int64(pageIndex))
                #expect(page.cursorStatus == (cursor == nil ? .none : .valid))
                #expect(page.results.count <= query.limit!)
                collected += page.results
                cursor = page.nextCursor
                pageIndex += 1
            } while cursor != nil && pageIndex <= 60
            #expect(collected == expected)
        }
    }

    @Test func notIsTheNegationOfALeafOnAPresentAttribute() async {
        let operators: [PredicateOperator] = [.eq, .neq, .gt, .gte, .lt, .lte, .in, .between, .like, .startsWith, .endsWith, .contains]
        await propertyCheck(
            count: 300, input: Gen.int(in: 0...(operators.count - 1)), Gen.int(in: -3...3), Gen.int(in: -3...3),
            Gen.letterOrNumber.string(of: 0...3), Gen.bool
        ) { opIndex, fieldNumber, operandNumber, text, useText in
            let op = operators[opIndex]
            let value: DataValue = ["n": .int(Int64(fieldNumber)), "s": .string(text + "x")]
            let attribute = useText ? "s" : "n"
            let operand: DataValue
            switch op {
            case .in: operand = [.int(Int64(operandNumber)), .string(text)]
            case .between: operand = useText ? [.string(text), "z"] : [.int(Int64(operandNumber)), .int(Int64(operandNumber + 2))]
            default: operand = useText ? .string(text) : .double(Double(operandNumber) / 2)
            }
            let leaf = PredicateNode.leaf(op, attribute, operand)
            #expect(PredicateNode.not(leaf).matches(key: "k", value: value) == !leaf.matches(key: "k", value: value))
            #expect(Query(predicate: .not(leaf)).matches(key: "k", value: value) != Query(predicate: leaf).matches(key: "k", value: value))
        }
    }

    @Test func liveWindowAfterAnyChangesEqualsRecomputingFromScratch() async {
        await propertyCheck(
            count: 200, input: Gen.int(in: -1...9).array(of: 0...10), Gen.int(in: 0...11).array(of: 0...30),
            Gen.int(in: -2...9).array(of: 0...30), Gen.int(in: 0...5), Gen.bool
        ) { initialScores, changedKeys, changedScores, limitChoice, descending in
            // limitChoice 0 means no limit.
            let query = Query(
                where: ["tag": ["$ne": "none"]], sort: SortOrder([SortField("score", descending ? .desc : .asc)]),
                limit: limitChoice == 0 ? nil : limitChoice - 1)
            var data = records(initialScores)
            var window = LiveQueryWindow(query: query, records: data)
            // What a client holds after the initial response and every event.
            var client: [String: DataValue] = [:]
            for record in window.visibleRecords { client[record.key] = record.value }

            for (keyIndex, score) in zip(changedKeys, changedScores) {
                let key = "r\(keyIndex)"
                // -2 deletes; -1 writes a value the query does not match.
                let value: DataValue? = score == -2 ? nil : (score == -1 ? ["tag": "none"] : ["score": .int(Int64(score)), "tag": "t"])
                data[key] = value
                for change in window.apply(key: key, value: value) {
                    switch change {
                    case .enter(let key, let value):
                        #expect(client[key] == nil, "ENTER for a key the client already holds")
                        client[key] = value
                    case .update(let key, let value):
                        #expect(client[key] != nil, "UPDATE for a key the client does not hold")
                        client[key] = value
                    case .leave(let key):
                        #expect(client[key] != nil, "LEAVE for a key the client does not hold")
                        client[key] = nil
                    }
                    #expect(client.count <= window.visibleLimit)
                }
            }

            let recomputed = QueryExecutor().execute(query, records: data, nowMillis: 0).results
            #expect(window.visibleRecords == recomputed)
            #expect(client == Dictionary(uniqueKeysWithValues: recomputed.map { ($0.key, $0.value) }))
            #expect(window.matchingCount == data.values.filter { query.matches($0) }.count)
        }
    }

    @Test func firstResultSentInPagesBetweenChangesEndsAtTheVisibleResult() async {
        await propertyCheck(
            count: 300, input: Gen.int(in: -1...9).array(of: 0...30), Gen.int(in: 0...31).array(of: 0...40),
            Gen.int(in: -2...9).array(of: 0...40), Gen.int(in: 0...5), Gen.int(in: 1...4), Gen.int(in: 1...3), Gen.bool, Gen.bool
        ) { initialScores, changedKeys, changedScores, limitChoice, pageRows, changesPerPage, descending, keepsValues in
            let query = Query(
                where: ["tag": ["$ne": "none"]], sort: SortOrder([SortField("score", descending ? .desc : .asc)]),
                limit: limitChoice == 0 ? nil : limitChoice * 3)
            var data = records(initialScores)
            // Without kept values, the window reads them from the data, as the server's maps.
            var window = LiveQueryWindow(query: query, records: data, keepsValues: keepsValues)
            let lookup: LiveQueryWindow.ValueLookup? = keepsValues ? nil : { data[$0] }
            // Every row costs 1: a page holds `pageRows` rows.
            let cost: (QueryRecord) -> Int = { _ in 1 }
            // What a client holds after the QUERY_RESP, the pages and the events.
            var client: [String: DataValue] = [:]
            for record in window.firstPage(maxBytes: pageRows, cost: cost, lookup: lookup) { client[record.key] = record.value }
            for (step, (keyIndex, score)) in zip(changedKeys, changedScores).enumerated() {
                let key = "r\(keyIndex)"
                let value: DataValue? = score == -2 ? nil : (score == -1 ? ["tag": "none"] : ["score": .int(Int64(score)), "tag": "t"])
                data[key] = value
                for change in window.apply(key: key, value: value, lookup: lookup) {
                    switch change {
                    case .enter(let key, let value):
                        client[key] = value
                    case .update(let key, let value):
                        #expect(client[key] != nil, "UPDATE for a row the client was never sent")
                        client[key] = value
                    case .leave(let key):
                        #expect(client[key] != nil, "LEAVE for a row the client was never sent")
                        client[key] = nil
                    }
                }
                if step % changesPerPage == 0 {
                    for record in window.nextPage(maxBytes: pageRows, cost: cost, lookup: lookup) { client[record.key] = record.value }
                }
            }
            var pages = 0
            while window.isDeliveringPages, pages < 100 {
                let page = window.nextPage(maxBytes: pageRows, cost: cost, lookup: lookup)
                // Empty only when the rows left to send are gone meanwhile: delivery then ends.
                #expect(page.count <= pageRows && (!page.isEmpty || !window.isDeliveringPages))
                for record in page { client[record.key] = record.value }
                pages += 1
            }
            let recomputed = QueryExecutor().execute(query, records: data, nowMillis: 0).results
            #expect(!window.isDeliveringPages)
            #expect(window.visibleKeys == recomputed.map(\.key))
            #expect(client == Dictionary(uniqueKeysWithValues: recomputed.map { ($0.key, $0.value) }))
        }
    }

    @Test func decodedQueriesReencodeToTheSameWireValue() async {
        await propertyCheck(
            count: 200, input: Gen.letterOrNumber.string(of: 1...6).array(of: 1...4), Gen.bool, Gen.int(in: 0...1000).optional,
            Gen.bool
        ) { fields, arrayForm, limit, withPredicate in
            var sort: [DataValue] = []
            var sortObject = DataObject()
            for (index, field) in fields.enumerated() where sortObject[field] == nil {
                let direction: DataValue = index % 2 == 0 ? "asc" : "desc"
                sort.append(["field": .string(field), "direction": direction])
                sortObject.append(field, direction)
            }
            var wire = DataObject()
            if withPredicate {
                wire.append("predicate", ["op": "or", "children": [["op": "like", "attribute": .string(fields[0]), "value": "a%"]]])
            }
            wire.append("sort", arrayForm ? .array(sort) : .object(sortObject))
            if let limit { wire.append("limit", .double(Double(limit))) }
            let decoded = try Query(from: .object(wire))
            #expect(decoded.dataValue == .object(wire))
            #expect(try Query(from: decoded.dataValue) == decoded)
        }
    }
}
