import Crypto
import Foundation
@testable import Metadata
import Tenancy
import Testing

/// What every `ControlPlaneStore` promises (the cases are listed in `StoreBehaviour`). Written
/// against the protocol only, with fixed times in whole seconds, so both stores read back
/// exactly what was written.
extension StoreBehaviour {
    // MARK: Transactions

    static func writeCommitsEverything(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        let recorder = ChangeRecorder(store.changes())
        let tenant = Fixtures.tenant("acme")
        let event = Fixtures.audit("a", time: Fixtures.at(1), tenant: tenant.id)
        let returned = try await store.write { transaction in
            try await transaction.insertTenant(tenant)
            try await transaction.appendAudit(event)
            try await transaction.publish(.tenant(tenant.id))
            return tenant.id
        }
        #expect(returned == tenant.id)
        #expect(try await store.tenant(id: tenant.id) == tenant)
        #expect(try await store.auditEvents(AuditFilter(), after: nil, limit: 10).items == [event])
        #expect(try await store.quotas(tenant: tenant.id)?.version == 1)
        #expect(await recorder.waitForAll([.tenant(tenant.id)]))
    }

    static func throwingWriteRollsBackEverything(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        let recorder = ChangeRecorder(store.changes())
        let tenant = Fixtures.tenant("acme")
        let key = Fixtures.hmacKey(tenant: tenant.id, createdAt: Fixtures.at(1))
        let event = Fixtures.audit("a", time: Fixtures.at(1), tenant: tenant.id)
        do {
            try await store.write { transaction in
                try await transaction.insertTenant(tenant)
                try await transaction.insertSigningKey(key)
                try await transaction.appendAudit(event)
                try await transaction.publish(.tenant(tenant.id))
                throw DeliberateFailure()
            }
            Issue.record("a throwing write returned")
        } catch is DeliberateFailure {
            // Rethrown as is, not wrapped in a MetadataError.
        }
        #expect(try await store.tenant(id: tenant.id) == nil)
        #expect(try await store.tenant(slug: tenant.slug) == nil)
        #expect(try await store.signingKey(kid: key.kid) == nil)
        #expect(try await store.quotas(tenant: tenant.id) == nil)
        #expect(try await store.auditEvents(AuditFilter(), after: nil, limit: 10).items.isEmpty)
        // A change made afterwards is the first to arrive: the rolled-back one was never sent.
        let later = try await store.createTenant(slug: "later", displayName: "Later", plan: "free")
        let arrived = await recorder.wait { !$0.isEmpty }
        #expect(arrived.first == .tenant(later.id))
    }

    static func transactionIsUnusableAfterItsWrite(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        let escaped = try await store.write { transaction in transaction }
        let tenant = Fixtures.tenant("late")
        await #expect(throws: (any Error).self) { try await escaped.insertTenant(tenant) }
        await #expect(throws: (any Error).self) { try await escaped.publish(.tenant(tenant.id)) }
        await #expect(throws: (any Error).self) { _ = try await escaped.lockTenant(tenant.id) }
        #expect(try await store.tenant(id: tenant.id) == nil)
        // The store itself is unharmed.
        let other = Fixtures.tenant("other")
        try await store.write { transaction in try await transaction.insertTenant(other) }
        #expect(try await store.tenant(id: other.id) == other)
    }

    static func notificationsAreSentOnlyOnCommit(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        let recorder = ChangeRecorder(store.changes())
        let tenant = Fixtures.tenant("acme")
        let seenBeforeCommit = try await store.write { transaction in
            try await transaction.insertTenant(tenant)
            try await transaction.publish(.tenant(tenant.id))
            try await transaction.publish(.quota(tenant.id))
            try await Task.sleep(for: .milliseconds(200))
            return recorder.changes
        }
        #expect(seenBeforeCommit.isEmpty)
        #expect(await recorder.waitForAll([.tenant(tenant.id), .quota(tenant.id)]))
    }

    // MARK: Tenants

    static func tenantRoundTripsEveryField(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        let tenant = Tenant(
            id: IDGenerator.tenantID(), slug: "acme-prod", displayName: "Acme, Inc. ✓", plan: "pro", status: .suspended,
            createdAt: Fixtures.at(0), updatedAt: Fixtures.at(5), suspendedAt: Fixtures.at(5), suspensionReason: "unpaid invoice 'INV-7'")
        try await store.write { transaction in try await transaction.insertTenant(tenant) }
        #expect(try await store.tenant(id: tenant.id) == tenant)
        #expect(try await store.tenant(slug: tenant.slug) == tenant)
        let locked = try await store.write { transaction in try await transaction.lockTenant(tenant.id) }
        #expect(locked == tenant)
        let unknown = try await store.write { transaction in try await transaction.lockTenant("tn_nosuchtenant0000000") }
        #expect(unknown == nil)

        var changed = tenant
        changed.displayName = "Acme Corporation"
        changed.plan = "enterprise"
        changed.status = .deleted
        changed.updatedAt = Fixtures.at(60)
        changed.suspendedAt = nil
        changed.suspensionReason = nil
        changed.deletedAt = Fixtures.at(60)
        let updated = changed
        try await store.write { transaction in try await transaction.updateTenant(updated) }
        #expect(try await store.tenant(id: tenant.id) == updated)

        var ghost = Fixtures.tenant("ghost")
        ghost.displayName = "Ghost"
        let missing = ghost
        do {
            try await store.write { transaction in try await transaction.updateTenant(missing) }
            Issue.record("updating an unknown tenant succeeded")
        } catch let error as MetadataError {
            guard case .notFound = error else { Issue.record("expected notFound, got \(error)"); return }
        }
    }

    static func slugConflictInsideWriteRollsBack(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        _ = try await store.createTenant(slug: "acme", displayName: "Acme", plan: "free")
        let duplicate = Fixtures.tenant("acme")
        let event = Fixtures.audit("a", time: Fixtures.at(1), tenant: duplicate.id)
        do {
            try await store.write { transaction in
                try await transaction.appendAudit(event)
                try await transaction.insertTenant(duplicate)
            }
            Issue.record("a duplicate slug was accepted")
        } catch let error as MetadataError {
            guard case .conflict = error else { Issue.record("expected conflict, got \(error)"); return }
        }
        #expect(try await store.tenant(id: duplicate.id) == nil)
        #expect(try await store.auditEvents(AuditFilter(), after: nil, limit: 10).items.isEmpty)
    }

    // MARK: Keys

    static func keysKeepLabelAndJWKAndTheFirstRevocation(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        let tenant = Fixtures.tenant("acme")
        let jwk = #"{"crv":"P-256","kty":"EC","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#
        let ec = SigningKey(
            kid: IDGenerator.keyID(), tenant: tenant.id, algorithm: .es256, material: .publicKeyPEM(TestPublicKeys.es256PEM()),
            status: .active, createdAt: Fixtures.at(1), label: "web app 2025-05", publicKeyJWK: jwk)
        let secret = SecretGenerator.hs256Secret()
        let hmac = SigningKey(
            kid: IDGenerator.keyID(), tenant: tenant.id, algorithm: .hs256, material: .hmacSecret(secret),
            status: .active, createdAt: Fixtures.at(2), label: "backend")
        let plain = Fixtures.hmacKey(tenant: tenant.id, createdAt: Fixtures.at(3))
        let active = try await store.write { transaction in
            try await transaction.insertTenant(tenant)
            for key in [ec, hmac, plain] { try await transaction.insertSigningKey(key) }
            return try await transaction.countActiveSigningKeys(tenant: tenant.id)
        }
        #expect(active == 3)
        #expect(try await store.signingKey(kid: ec.kid) == ec)
        #expect(try await store.signingKey(kid: hmac.kid) == hmac)
        #expect(try await store.signingKey(kid: plain.kid) == plain)
        #expect(try await store.signingKeys(tenant: tenant.id) == [ec, hmac, plain])
        let inside = try await store.write { transaction in try await transaction.signingKey(kid: hmac.kid) }
        #expect(inside == hmac)
        let raw = try #require(try await harness.rawSecretCiphertext(kid: hmac.kid))
        #expect(!contains(raw, secret))

        let first = try await store.write { transaction in try await transaction.revokeSigningKey(kid: hmac.kid, at: Fixtures.at(10)) }
        var expected = hmac
        expected.status = .revoked
        expected.revokedAt = Fixtures.at(10)
        #expect(first == expected)
        let second = try await store.write { transaction in try await transaction.revokeSigningKey(kid: hmac.kid, at: Fixtures.at(20)) }
        #expect(second == expected)
        #expect(try await store.signingKey(kid: hmac.kid) == expected)
        let (remaining, unknown) = try await store.write { transaction in
            (try await transaction.countActiveSigningKeys(tenant: tenant.id),
             try await transaction.revokeSigningKey(kid: "key_unknown", at: Fixtures.at(30)))
        }
        #expect(remaining == 2)
        #expect(unknown == nil)
    }

    // MARK: Quotas

    static func quotasFollowThePlanUntilReplaced(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        let tenant = Fixtures.tenant("acme", plan: "free")
        try await store.write { transaction in try await transaction.insertTenant(tenant) }

        let initial = try #require(try await store.quotas(tenant: tenant.id))
        #expect(initial.tenant == tenant.id && initial.plan == "free" && initial.source == .plan)
        #expect(initial.version == 1 && initial.updatedAt == tenant.createdAt)
        #expect(initial.limits == Plan.free.defaultQuotas)
        let stored = try await store.write { transaction in try await transaction.quotas(tenant: tenant.id) }
        #expect(stored == StoredQuotas(tenant: tenant.id, custom: nil, version: 1, updatedAt: tenant.createdAt))

        let custom = QuotaLimits(
            maxConnections: 7, maxOperationsPerSecond: 11, maxStorageBytes: 13_000_000_000, maxMaps: 17,
            maxMessageBytes: 19_000, maxLiveSubscriptions: 23)
        let replaced = StoredQuotas(tenant: tenant.id, custom: custom, version: 2, updatedAt: Fixtures.at(10))
        try await store.write { transaction in
            try await transaction.saveQuotas(replaced)
            try await transaction.publish(.quota(tenant.id))
        }
        let customised = try #require(try await store.quotas(tenant: tenant.id))
        #expect(customised.source == .custom && customised.limits == custom)
        #expect(customised.version == 2 && customised.updatedAt == Fixtures.at(10))
        let storedCustom = try await store.write { transaction in try await transaction.quotas(tenant: tenant.id) }
        #expect(storedCustom == replaced)

        // Back to the plan, then a plan change moves the limits.
        var moved = tenant
        moved.plan = "enterprise"
        moved.updatedAt = Fixtures.at(20)
        let onEnterprise = moved
        try await store.write { transaction in
            try await transaction.updateTenant(onEnterprise)
            try await transaction.saveQuotas(StoredQuotas(tenant: tenant.id, custom: nil, version: 3, updatedAt: Fixtures.at(20)))
        }
        let followed = try #require(try await store.quotas(tenant: tenant.id))
        #expect(followed.source == .plan && followed.plan == "enterprise" && followed.version == 3)
        #expect(followed.limits == Plan.enterprise.defaultQuotas)

        // Tenants made by the dev seeding path get their row too.
        let seeded = try await store.createTenant(slug: "seeded", displayName: "Seeded", plan: "pro")
        let seededQuotas = try #require(try await store.quotas(tenant: seeded.id))
        #expect(seededQuotas.version == 1 && seededQuotas.source == .plan && seededQuotas.limits == Plan.pro.defaultQuotas)
        #expect(try await store.quotas(tenant: "tn_nosuchtenant0000000") == nil)
    }

    // MARK: Schemas

    static func schemaVersionsAreNumberedClearedAndListed(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        let tenant = Fixtures.tenant("acme")
        let other = Fixtures.tenant("other")
        let v1 = Fixtures.schema(tenant.id, "orders", 1, .warn, at: 1)
        let v2 = Fixtures.schema(tenant.id, "orders", 2, .strict, at: 2)
        let emptyHead = try await store.write { transaction in
            try await transaction.insertTenant(tenant)
            try await transaction.insertTenant(other)
            let head = try await transaction.schemaHead(tenant: tenant.id, map: "orders")
            try await transaction.insertSchemaVersion(v1)
            return head
        }
        #expect(emptyHead == nil)
        let (head, insideV1) = try await store.write { transaction in
            try await transaction.insertSchemaVersion(v2)
            return (try await transaction.schemaHead(tenant: tenant.id, map: "orders"),
                    try await transaction.schemaVersion(tenant: tenant.id, map: "orders", version: 1))
        }
        #expect(head == MapSchemaHead(current: 2, latest: 2))
        #expect(insideV1 == v1)
        #expect(try await store.currentSchema(tenant: tenant.id, map: "orders") == v2)
        #expect(try await store.schemaVersion(tenant: tenant.id, map: "orders", version: 1) == v1)
        #expect(try await store.schemaVersion(tenant: tenant.id, map: "orders", version: 3) == nil)
        #expect(try await store.currentSchema(tenant: other.id, map: "orders") == nil)

        let cleared = try await store.write { transaction in
            try await transaction.clearCurrentSchema(tenant: tenant.id, map: "orders")
            return try await transaction.schemaHead(tenant: tenant.id, map: "orders")
        }
        #expect(cleared == MapSchemaHead(current: nil, latest: 2))
        #expect(try await store.currentSchema(tenant: tenant.id, map: "orders") == nil)
        #expect(try await store.schemaVersion(tenant: tenant.id, map: "orders", version: 2) == v2)

        let v3 = Fixtures.schema(tenant.id, "orders", 3, .off, at: 3)
        let afterPut = try await store.write { transaction in
            try await transaction.insertSchemaVersion(v3)
            return try await transaction.schemaHead(tenant: tenant.id, map: "orders")
        }
        #expect(afterPut == MapSchemaHead(current: 3, latest: 3))
        #expect(try await store.currentSchema(tenant: tenant.id, map: "orders") == v3)

        // A map's versions, newest first, across pages.
        let first = try await store.schemaVersions(tenant: tenant.id, map: "orders", after: nil, limit: 2)
        #expect(first.items == [v3, v2])
        #expect(first.next?.id == "2")
        let second = try await store.schemaVersions(tenant: tenant.id, map: "orders", after: first.next, limit: 2)
        #expect(second.items == [v1])
        #expect(second.next == nil)

        // The schemas in force, by map name; a cleared map and another tenant's are left out.
        let alpha = Fixtures.schema(tenant.id, "alpha", 1, .strict, at: 4)
        let beta = Fixtures.schema(tenant.id, "beta", 1, .strict, at: 5)
        let gamma = Fixtures.schema(tenant.id, "gamma", 1, .warn, at: 6)
        let foreign = Fixtures.schema(other.id, "aardvark", 1, .warn, at: 7)
        try await store.write { transaction in
            for version in [gamma, beta, alpha, foreign] { try await transaction.insertSchemaVersion(version) }
            try await transaction.clearCurrentSchema(tenant: tenant.id, map: "beta")
        }
        let inForce = try await store.currentSchemas(tenant: tenant.id, after: nil, limit: 2)
        #expect(inForce.items == [alpha, gamma])
        #expect(inForce.next?.id == "gamma")
        let rest = try await store.currentSchemas(tenant: tenant.id, after: inForce.next, limit: 2)
        #expect(rest.items == [v3])
        #expect(rest.next == nil)
        let exact = try await store.currentSchemas(tenant: tenant.id, after: nil, limit: 3)
        #expect(exact.items == [alpha, gamma, v3])
        #expect(exact.next == nil)
    }

    // MARK: Audit

    static func auditEventsAreFilteredAndPagedNewestFirst(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        let a = Fixtures.tenant("tenant-a")
        let b = Fixtures.tenant("tenant-b")
        let e1 = Fixtures.audit("a", time: Fixtures.at(10), actor: "adm_one", action: "tenant.create", tenant: a.id)
        let e2 = Fixtures.audit("b", time: Fixtures.at(20), actor: "adm_two", action: "signing_key.create", tenant: a.id)
        // Same time as e2: the higher id comes first.
        let e3 = Fixtures.audit("c", time: Fixtures.at(20), actor: "adm_one", action: "tenant.create", tenant: b.id)
        var e4 = Fixtures.audit("d", time: Fixtures.at(30), actor: "bootstrap", action: "admin_token.create", tenant: nil)
        e4.targetType = "admin_token"
        e4.idempotencyKey = "k-1"
        var e5 = Fixtures.audit("e", time: Fixtures.at(40), actor: "adm_one", action: "schema.put", tenant: a.id)
        e5.targetType = "schema"
        e5.targetID = "orders"
        e5.targetVersion = 3
        e5.detailsJSON = #"{"enforcement":"strict"}"#
        let events = [e4, e5]
        try await store.write { transaction in
            for event in [e3, e1, e2] { try await transaction.appendAudit(event) }
        }
        try await store.write { transaction in
            for event in events { try await transaction.appendAudit(event) }
        }

        let list = { (filter: AuditFilter) async throws -> [AuditEvent] in
            try await store.auditEvents(filter, after: nil, limit: 100).items
        }
        #expect(try await list(AuditFilter()) == [e5, e4, e3, e2, e1])
        #expect(try await list(AuditFilter(tenant: a.id)) == [e5, e2, e1])
        #expect(try await list(AuditFilter(actor: "adm_one")) == [e5, e3, e1])
        #expect(try await list(AuditFilter(action: "tenant.create")) == [e3, e1])
        #expect(try await list(AuditFilter(from: Fixtures.at(20))) == [e5, e4, e3, e2])
        #expect(try await list(AuditFilter(to: Fixtures.at(30))) == [e3, e2, e1])
        #expect(try await list(AuditFilter(from: Fixtures.at(20), to: Fixtures.at(40))) == [e4, e3, e2])
        #expect(try await list(AuditFilter(tenant: a.id, actor: "adm_one")) == [e5, e1])
        #expect(try await list(AuditFilter(tenant: b.id, action: "schema.put")) == [])

        let page1 = try await store.auditEvents(AuditFilter(), after: nil, limit: 2)
        #expect(page1.items == [e5, e4])
        #expect(page1.next == ListPosition(time: e4.time, id: e4.id))
        let page2 = try await store.auditEvents(AuditFilter(), after: page1.next, limit: 2)
        #expect(page2.items == [e3, e2])
        let page3 = try await store.auditEvents(AuditFilter(), after: page2.next, limit: 2)
        #expect(page3.items == [e1])
        #expect(page3.next == nil)
        let filtered = try await store.auditEvents(AuditFilter(tenant: a.id), after: ListPosition(time: e5.time, id: e5.id), limit: 1)
        #expect(filtered.items == [e2])
        #expect(filtered.next == ListPosition(time: e2.time, id: e2.id))
    }

    // MARK: Admin tokens

    static func adminTokensAreFoundRevokedTouchedAndListed(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        let t1 = Fixtures.adminToken("a", createdAt: Fixtures.at(1), scopes: ["tenants:read", "tenants:write", "audit:read"])
        var t2 = Fixtures.adminToken("b", createdAt: Fixtures.at(2), scopes: ["tenants:read"])
        t2.expiresAt = Fixtures.at(100)
        t2.createdBy = t1.id
        let t3 = Fixtures.adminToken("c", createdAt: Fixtures.at(3), scopes: ["usage:read"])
        var t4 = Fixtures.adminToken("d", createdAt: Fixtures.at(4), scopes: [])
        t4.expiresAt = Fixtures.at(50)
        let tokens = [t1, t2, t3, t4]
        try await store.write { transaction in
            for token in tokens { try await transaction.insertAdminToken(token) }
        }
        for token in tokens {
            #expect(try await store.adminToken(id: token.id) == token)
            #expect(try await store.adminToken(valueHash: token.valueHash) == token)
        }
        #expect(try await store.adminToken(id: "adm_unknown") == nil)
        #expect(try await store.adminToken(valueHash: Fixtures.sha256("unknown")) == nil)

        var clash = Fixtures.adminToken("e", createdAt: Fixtures.at(5), scopes: [])
        clash.valueHash = t1.valueHash
        let sameHash = clash
        do {
            try await store.write { transaction in try await transaction.insertAdminToken(sameHash) }
            Issue.record("two tokens with one value hash were stored")
        } catch let error as MetadataError {
            guard case .conflict = error else { Issue.record("expected conflict, got \(error)"); return }
        }

        try await store.touchAdminToken(id: t1.id, at: Fixtures.at(30))
        #expect(try await store.adminToken(id: t1.id)?.lastUsedAt == Fixtures.at(30))
        let revoked = try await store.write { transaction in try await transaction.revokeAdminToken(id: t3.id, at: Fixtures.at(40)) }
        #expect(revoked?.revokedAt == Fixtures.at(40))
        let again = try await store.write { transaction in try await transaction.revokeAdminToken(id: t3.id, at: Fixtures.at(45)) }
        #expect(again?.revokedAt == Fixtures.at(40))
        let unknown = try await store.write { transaction in try await transaction.revokeAdminToken(id: "adm_unknown", at: Fixtures.at(45)) }
        #expect(unknown == nil)

        let page1 = try await store.adminTokens(status: nil, now: Fixtures.at(60), after: nil, limit: 3)
        #expect(page1.items.map(\.id) == [t1.id, t2.id, t3.id])
        #expect(page1.next == ListPosition(time: t3.createdAt, id: t3.id))
        let page2 = try await store.adminTokens(status: nil, now: Fixtures.at(60), after: page1.next, limit: 3)
        #expect(page2.items == [t4])
        #expect(page2.next == nil)

        func ids(_ status: AdminTokenRecord.Status, at seconds: Int) async throws -> [String] {
            try await store.adminTokens(status: status, now: Fixtures.at(seconds), after: nil, limit: 10).items.map(\.id)
        }
        #expect(try await ids(.active, at: 60) == [t1.id, t2.id])
        #expect(try await ids(.revoked, at: 60) == [t3.id])
        #expect(try await ids(.expired, at: 60) == [t4.id])
        // Expiry is `expires_at <= now`; revoked wins over expired.
        #expect(try await ids(.expired, at: 100) == [t2.id, t4.id])
        #expect(try await ids(.active, at: 100) == [t1.id])
    }

    // MARK: Idempotency

    static func idempotencyClaimsAnswerByState(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        let key = IdempotencyKey(scope: "adm_aaaaaaaaaaaaaaaaaaaa", key: "create-acme-1")
        let request = Fixtures.request("POST", "/v1/tenants", body: #"{"slug":"acme"}"#)
        let t0 = Fixtures.at(0)
        #expect(try await store.claimIdempotencyKey(key, for: request, now: t0, staleAfter: 60) == .claimed)
        #expect(try await store.claimIdempotencyKey(key, for: request, now: Fixtures.at(1), staleAfter: 60) == .inProgress)
        // While it runs, any request with the key waits, whatever it is.
        let otherBody = Fixtures.request("POST", "/v1/tenants", body: #"{"slug":"other"}"#)
        #expect(try await store.claimIdempotencyKey(key, for: otherBody, now: Fixtures.at(1), staleAfter: 60) == .inProgress)
        // Keys are scoped to their admin token.
        let otherScope = IdempotencyKey(scope: "bootstrap", key: key.key)
        #expect(try await store.claimIdempotencyKey(otherScope, for: request, now: t0, staleAfter: 60) == .claimed)

        let response = Fixtures.response
        try await store.completeIdempotencyKey(key, with: response, expiresAt: t0.addingTimeInterval(86_400))
        #expect(try await store.claimIdempotencyKey(key, for: request, now: Fixtures.at(2), staleAfter: 60) == .completed(response))
        // A completed record never goes stale: only its expiry ends it.
        #expect(try await store.claimIdempotencyKey(key, for: request, now: Fixtures.at(3_600), staleAfter: 60) == .completed(response))
        for mismatched in [
            Fixtures.request("PUT", "/v1/tenants", body: #"{"slug":"acme"}"#),
            Fixtures.request("POST", "/v1/tenants/acme", body: #"{"slug":"acme"}"#),
            otherBody,
        ] {
            #expect(try await store.claimIdempotencyKey(key, for: mismatched, now: Fixtures.at(4), staleAfter: 60) == .mismatch)
        }

        // An empty body round-trips too.
        let notFound = IdempotencyKey(scope: key.scope, key: "delete-ghost")
        let empty = StoredResponse(status: 404, headers: [StoredHeader(name: "Content-Type", value: "application/problem+json")], body: [])
        #expect(try await store.claimIdempotencyKey(notFound, for: request, now: t0, staleAfter: 60) == .claimed)
        try await store.completeIdempotencyKey(notFound, with: empty, expiresAt: t0.addingTimeInterval(86_400))
        #expect(try await store.claimIdempotencyKey(notFound, for: request, now: Fixtures.at(5), staleAfter: 60) == .completed(empty))

        // Completing a key nobody claimed stores nothing.
        let unclaimed = IdempotencyKey(scope: key.scope, key: "never-claimed")
        await #expect(throws: MetadataError.self) {
            try await store.completeIdempotencyKey(unclaimed, with: response, expiresAt: t0.addingTimeInterval(86_400))
        }
        #expect(try await harness.rawIdempotencyResponseBody(scope: unclaimed.scope, key: unclaimed.key) == nil)
    }

    static func idempotencyBodyIsSealedAtRest(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        let key = IdempotencyKey(scope: "adm_aaaaaaaaaaaaaaaaaaaa", key: "create-key-1")
        let request = Fixtures.request("POST", "/v1/tenants/tn_x/signing-keys", body: "{}")
        let response = Fixtures.response
        #expect(try await store.claimIdempotencyKey(key, for: request, now: Fixtures.at(0), staleAfter: 60) == .claimed)
        try await store.completeIdempotencyKey(key, with: response, expiresAt: Fixtures.at(86_400))
        let raw = try #require(try await harness.rawIdempotencyResponseBody(scope: key.scope, key: key.key))
        #expect(raw.count > response.body.count)
        #expect(!contains(raw, response.body))
        #expect(!contains(raw, Array(Fixtures.oneTimeSecret.utf8)))
        #expect(!contains(raw, Array(#""status":"active""#.utf8)))
        // Another instance (a restart) replays it.
        let reopened = try #require(try await harness.openStore() as? any ControlPlaneStore)
        #expect(try await reopened.claimIdempotencyKey(key, for: request, now: Fixtures.at(1), staleAfter: 60) == .completed(response))
    }

    static func staleOrExpiredIdempotencyClaimsAreTakenOver(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        let request = Fixtures.request("POST", "/v1/tenants", body: #"{"slug":"acme"}"#)
        let stale = IdempotencyKey(scope: "bootstrap", key: "stale")
        #expect(try await store.claimIdempotencyKey(stale, for: request, now: Fixtures.at(0), staleAfter: 60) == .claimed)
        #expect(try await store.claimIdempotencyKey(stale, for: request, now: Fixtures.at(30), staleAfter: 60) == .inProgress)
        // Its process died: a claim older than `staleAfter` is taken over, and the takeover
        // is a fresh claim with a clock of its own.
        #expect(try await store.claimIdempotencyKey(stale, for: request, now: Fixtures.at(120), staleAfter: 60) == .claimed)
        #expect(try await store.claimIdempotencyKey(stale, for: request, now: Fixtures.at(150), staleAfter: 60) == .inProgress)
        try await store.completeIdempotencyKey(stale, with: Fixtures.response, expiresAt: Fixtures.at(120 + 86_400))
        #expect(try await store.claimIdempotencyKey(stale, for: request, now: Fixtures.at(200), staleAfter: 60) == .completed(Fixtures.response))

        // An expired record is free again, even for another request.
        let expired = IdempotencyKey(scope: "bootstrap", key: "expired")
        let other = Fixtures.request("POST", "/v1/tenants", body: #"{"slug":"other"}"#)
        #expect(try await store.claimIdempotencyKey(expired, for: request, now: Fixtures.at(0), staleAfter: 60) == .claimed)
        try await store.completeIdempotencyKey(expired, with: Fixtures.response, expiresAt: Fixtures.at(86_400))
        #expect(try await store.claimIdempotencyKey(expired, for: other, now: Fixtures.at(86_399), staleAfter: 60) == .mismatch)
        #expect(try await store.claimIdempotencyKey(expired, for: other, now: Fixtures.at(86_401), staleAfter: 60) == .claimed)
        #expect(try await store.claimIdempotencyKey(expired, for: request, now: Fixtures.at(86_402), staleAfter: 60) == .inProgress)
        // A claim that is never completed also expires 24 hours after it was made.
        let abandoned = IdempotencyKey(scope: "bootstrap", key: "abandoned")
        #expect(try await store.claimIdempotencyKey(abandoned, for: request, now: Fixtures.at(0), staleAfter: 1_000_000) == .claimed)
        #expect(try await store.claimIdempotencyKey(abandoned, for: other, now: Fixtures.at(86_399), staleAfter: 1_000_000) == .inProgress)
        #expect(try await store.claimIdempotencyKey(abandoned, for: other, now: Fixtures.at(86_401), staleAfter: 1_000_000) == .claimed)
    }

    static func idempotencyClaimsAreReleasedAndPurged(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        let request = Fixtures.request("POST", "/v1/tenants", body: "{}")
        let released = IdempotencyKey(scope: "bootstrap", key: "released")
        #expect(try await store.claimIdempotencyKey(released, for: request, now: Fixtures.at(0), staleAfter: 60) == .claimed)
        try await store.releaseIdempotencyKey(released)
        #expect(try await store.claimIdempotencyKey(released, for: request, now: Fixtures.at(1), staleAfter: 60) == .claimed)
        try await store.releaseIdempotencyKey(IdempotencyKey(scope: "bootstrap", key: "never-claimed"))

        let hour: TimeInterval = 3_600
        let p1 = IdempotencyKey(scope: "bootstrap", key: "p1")  // claimed at 0: expires at 24 h
        let p2 = IdempotencyKey(scope: "bootstrap", key: "p2")  // completed, expires at 1 h
        let p3 = IdempotencyKey(scope: "bootstrap", key: "p3")  // claimed at 2 h: expires at 26 h
        #expect(try await store.claimIdempotencyKey(p1, for: request, now: Fixtures.at(0), staleAfter: 60) == .claimed)
        #expect(try await store.claimIdempotencyKey(p2, for: request, now: Fixtures.at(0), staleAfter: 60) == .claimed)
        try await store.completeIdempotencyKey(p2, with: Fixtures.response, expiresAt: Fixtures.at(0).addingTimeInterval(hour))
        #expect(try await store.claimIdempotencyKey(p3, for: request, now: Fixtures.at(0).addingTimeInterval(2 * hour), staleAfter: 60) == .claimed)

        // `released` was claimed at 1 s: it expires with p1.
        #expect(try await store.purgeIdempotencyKeys(expiredBefore: Fixtures.at(0).addingTimeInterval(30 * 60)) == 0)
        #expect(try await store.purgeIdempotencyKeys(expiredBefore: Fixtures.at(0).addingTimeInterval(25 * hour)) == 3)
        #expect(try await harness.rawIdempotencyResponseBody(scope: p2.scope, key: p2.key) == nil)
        let now = Fixtures.at(0).addingTimeInterval(2 * hour + 10)
        #expect(try await store.claimIdempotencyKey(p3, for: request, now: now, staleAfter: 3_600) == .inProgress)
        #expect(try await store.claimIdempotencyKey(p2, for: request, now: now, staleAfter: 3_600) == .claimed)
        #expect(try await store.purgeIdempotencyKeys(expiredBefore: Fixtures.at(0).addingTimeInterval(25 * hour)) == 0)
    }

    static func idempotentCompletionCommitsWithItsWrite(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        let key = IdempotencyKey(scope: "bootstrap", key: "create-acme")
        let request = Fixtures.request("POST", "/v1/tenants", body: #"{"slug":"acme"}"#)
        let tenant = Fixtures.tenant("acme")
        let response = Fixtures.response
        #expect(try await store.claimIdempotencyKey(key, for: request, now: Fixtures.at(0), staleAfter: 60) == .claimed)
        do {
            try await store.write { transaction in
                try await transaction.insertTenant(tenant)
                try await transaction.completeIdempotencyKey(key, with: response, expiresAt: Fixtures.at(86_400))
                throw DeliberateFailure()
            }
        } catch is DeliberateFailure {}
        #expect(try await store.claimIdempotencyKey(key, for: request, now: Fixtures.at(1), staleAfter: 60) == .inProgress)
        try await store.write { transaction in
            try await transaction.insertTenant(tenant)
            try await transaction.completeIdempotencyKey(key, with: response, expiresAt: Fixtures.at(86_400))
        }
        #expect(try await store.claimIdempotencyKey(key, for: request, now: Fixtures.at(2), staleAfter: 60) == .completed(response))
        #expect(try await store.tenant(id: tenant.id) == tenant)
    }

    // MARK: Usage

    static func usageFlushesCountOnce(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        let a = Fixtures.usageTenantA
        let b = Fixtures.usageTenantB
        let h0 = Fixtures.hour(0)
        let h1 = Fixtures.hour(1)
        let first = UsageFlush(id: "node-1:1", deltas: [
            UsageHour(tenant: a, periodStart: h0, operations: 10, bytesIn: 100, bytesOut: 200, connectionSeconds: 30, peakConnections: 5, storageBytes: 1_000),
            UsageHour(tenant: a, periodStart: h1, operations: 1, peakConnections: 2, storageBytes: 1_100),
            UsageHour(tenant: b, periodStart: h0, operations: 7, peakConnections: 1, storageBytes: 50),
        ])
        try await store.recordUsage(first)
        try await store.recordUsage(first)  // a retry after a lost answer
        #expect(try await store.usageHours(tenant: a, from: h0, to: Fixtures.hour(2)) == [first.deltas[0], first.deltas[1]])
        #expect(try await store.usageHours(tenant: b, from: h0, to: Fixtures.hour(2)) == [first.deltas[2]])

        // Sums add, a lower peak keeps the higher one, storage is the latest measurement.
        try await store.recordUsage(UsageFlush(id: "node-2:1", deltas: [
            UsageHour(tenant: a, periodStart: h0, operations: 5, bytesIn: 1, bytesOut: 2, connectionSeconds: 3, peakConnections: 3, storageBytes: 900),
        ]))
        #expect(try await store.usageHours(tenant: a, from: h0, to: h1) == [
            UsageHour(tenant: a, periodStart: h0, operations: 15, bytesIn: 101, bytesOut: 202, connectionSeconds: 33, peakConnections: 5, storageBytes: 900),
        ])
        try await store.recordUsage(UsageFlush(id: "node-1:2", deltas: [
            UsageHour(tenant: a, periodStart: h0, operations: 1, peakConnections: 9, storageBytes: 950),
        ]))
        try await store.recordUsage(UsageFlush(id: "node-2:1", deltas: [
            UsageHour(tenant: a, periodStart: h0, operations: 1_000, peakConnections: 1_000, storageBytes: 1),
        ]))
        #expect(try await store.usageHours(tenant: a, from: h0, to: h1) == [
            UsageHour(tenant: a, periodStart: h0, operations: 16, bytesIn: 101, bytesOut: 202, connectionSeconds: 33, peakConnections: 9, storageBytes: 950),
        ])
        try await store.recordUsage(UsageFlush(id: "node-3:1", deltas: []))
    }

    static func usageHoursAreReadByRangeAndExportedInOrder(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        let a = Fixtures.usageTenantA
        let b = Fixtures.usageTenantB
        let ah0 = UsageHour(tenant: a, periodStart: Fixtures.hour(0), operations: 1)
        let bh0 = UsageHour(tenant: b, periodStart: Fixtures.hour(0), operations: 2)
        let ah1 = UsageHour(tenant: a, periodStart: Fixtures.hour(1), operations: 3)
        let bh2 = UsageHour(tenant: b, periodStart: Fixtures.hour(2), operations: 4)
        let early = UsageHour(tenant: a, periodStart: Fixtures.hour(-1), operations: 5)
        try await store.recordUsage(UsageFlush(id: "f", deltas: [bh2, ah1, bh0, ah0, early]))

        #expect(try await store.usageHours(tenant: a, from: Fixtures.hour(0), to: Fixtures.hour(3)) == [ah0, ah1])
        #expect(try await store.usageHours(tenant: a, from: Fixtures.hour(-1), to: Fixtures.hour(1)) == [early, ah0])
        #expect(try await store.usageHours(tenant: b, from: Fixtures.hour(1), to: Fixtures.hour(2)) == [])

        let from = Fixtures.hour(0)
        let to = Fixtures.hour(3)
        #expect(try await store.usageHours(from: from, to: to, after: nil, limit: 10) == [ah0, bh0, ah1, bh2])
        #expect(try await store.usageHours(from: from, to: to, after: nil, limit: 2) == [ah0, bh0])
        #expect(try await store.usageHours(from: from, to: to, after: (periodStart: Fixtures.hour(0), tenant: b), limit: 2) == [ah1, bh2])
        #expect(try await store.usageHours(from: from, to: to, after: (periodStart: Fixtures.hour(0), tenant: a), limit: 10) == [bh0, ah1, bh2])
        #expect(try await store.usageHours(from: from, to: to, after: (periodStart: Fixtures.hour(2), tenant: b), limit: 10) == [])
        #expect(try await store.usageHours(from: Fixtures.hour(1), to: Fixtures.hour(2), after: nil, limit: 10) == [ah1])
    }

    // MARK: Lists

    static func tenantsAndKeysArePagedWithFilters(_ harness: any StoreHarness) async throws {
        let store = try await harness.controlPlaneStore()
        var tenants = [
            Fixtures.tenant("t1", plan: "free", createdAt: Fixtures.at(1)),
            Fixtures.tenant("t2", plan: "pro", createdAt: Fixtures.at(2)),
            Fixtures.tenant("t3", plan: "free", createdAt: Fixtures.at(3)),
            Fixtures.tenant("t4", plan: "free", createdAt: Fixtures.at(4)),
            Fixtures.tenant("t5", plan: "pro", createdAt: Fixtures.at(5)),
            // Created in the same microsecond as t5: the id decides.
            Fixtures.tenant("t6", plan: "free", createdAt: Fixtures.at(5)),
        ]
        tenants[2].status = .suspended
        tenants[2].suspendedAt = Fixtures.at(3)
        tenants[3].status = .deleted
        tenants[3].deletedAt = Fixtures.at(4)
        let all = tenants
        try await store.write { transaction in
            for tenant in all.reversed() { try await transaction.insertTenant(tenant) }
        }
        let ordered = all.sorted { ($0.createdAt, $0.id.rawValue) < ($1.createdAt, $1.id.rawValue) }

        func pages(_ statuses: Set<Tenant.Status>, plan: String?, limit: Int) async throws -> [[Tenant]] {
            var result: [[Tenant]] = []
            var after: ListPosition?
            repeat {
                let page = try await store.tenants(statuses: statuses, plan: plan, after: after, limit: limit)
                result.append(page.items)
                if let next = page.next { #expect(next == ListPosition(time: page.items.last?.createdAt ?? .distantPast, id: page.items.last?.id.rawValue ?? "")) }
                after = page.next
            } while after != nil && result.count < 10
            return result
        }
        let everything = Set(Tenant.Status.allCases)
        let byTwo = try await pages(everything, plan: nil, limit: 2)
        #expect(byTwo.map(\.count) == [2, 2, 2])  // the last page is full, and says it is the last
        #expect(byTwo.flatMap { $0 } == ordered)
        #expect(try await pages(everything, plan: nil, limit: 4).map(\.count) == [4, 2])
        #expect(try await pages(everything, plan: nil, limit: 100).flatMap { $0 } == ordered)
        #expect(try await pages([.active], plan: nil, limit: 1).flatMap { $0 } == ordered.filter { $0.status == .active })
        #expect(try await pages([.active, .suspended], plan: "free", limit: 1).flatMap { $0 }.map(\.slug) == ["t1", "t3", "t6"])
        #expect(try await pages(everything, plan: "pro", limit: 5).flatMap { $0 }.map(\.slug) == ["t2", "t5"])
        #expect(try await pages([.deleted], plan: nil, limit: 5).flatMap { $0 }.map(\.slug) == ["t4"])
        #expect(try await pages([], plan: nil, limit: 5).flatMap { $0 } == [])

        // Keys, paged per tenant, with a status filter.
        let owner = all[0]
        let stranger = all[1]
        var keys = (1...5).map { Fixtures.hmacKey(tenant: owner.id, createdAt: Fixtures.at(10 + $0)) }
        keys[1].status = .revoked
        keys[1].revokedAt = Fixtures.at(20)
        keys[3].status = .revoked
        keys[3].revokedAt = Fixtures.at(21)
        let ownerKeys = keys
        let strangerKey = Fixtures.hmacKey(tenant: stranger.id, createdAt: Fixtures.at(12))
        try await store.write { transaction in
            for key in ownerKeys + [strangerKey] { try await transaction.insertSigningKey(key) }
        }
        let k1 = try await store.signingKeys(tenant: owner.id, status: nil, after: nil, limit: 2)
        #expect(k1.items == [ownerKeys[0], ownerKeys[1]])
        #expect(k1.next == ListPosition(time: ownerKeys[1].createdAt, id: ownerKeys[1].kid))
        let k2 = try await store.signingKeys(tenant: owner.id, status: nil, after: k1.next, limit: 2)
        #expect(k2.items == [ownerKeys[2], ownerKeys[3]])
        let k3 = try await store.signingKeys(tenant: owner.id, status: nil, after: k2.next, limit: 2)
        #expect(k3.items == [ownerKeys[4]])
        #expect(k3.next == nil)
        let activeKeys = try await store.signingKeys(tenant: owner.id, status: .active, after: nil, limit: 10)
        #expect(activeKeys.items == [ownerKeys[0], ownerKeys[2], ownerKeys[4]])
        #expect(activeKeys.next == nil)
        let revokedKeys = try await store.signingKeys(tenant: owner.id, status: .revoked, after: nil, limit: 1)
        #expect(revokedKeys.items == [ownerKeys[1]])
        #expect(revokedKeys.next != nil)
        #expect(try await store.signingKeys(tenant: stranger.id, status: nil, after: nil, limit: 10).items == [strangerKey])
    }
}

/// An error of the test's own, to see that `write` rethrows it as is.
struct DeliberateFailure: Error {}

/// Records with fixed times (whole seconds, exact in both stores) and fresh ids.
enum Fixtures {
    static let origin = Date(timeIntervalSince1970: 1_750_000_000)

    static func at(_ seconds: Int) -> Date { origin.addingTimeInterval(TimeInterval(seconds)) }

    /// A whole UTC hour, `offset` hours from a fixed one.
    static func hour(_ offset: Int) -> Date { Date(timeIntervalSince1970: 1_749_999_600 + TimeInterval(offset) * 3_600) }

    /// Usage has no foreign key to tenants; fixed ids make the (period, tenant) order known.
    static let usageTenantA = TenantID("tn_aaaaaaaaaaaaaaaaaaaa")
    static let usageTenantB = TenantID("tn_bbbbbbbbbbbbbbbbbbbb")

    static func tenant(_ slug: String, plan: String = "free", createdAt: Date = at(0)) -> Tenant {
        Tenant(id: IDGenerator.tenantID(), slug: slug, displayName: "Tenant \(slug)", plan: plan, status: .active, createdAt: createdAt)
    }

    static func hmacKey(tenant: TenantID, createdAt: Date) -> SigningKey {
        SigningKey(
            kid: IDGenerator.keyID(), tenant: tenant, algorithm: .hs256, material: .hmacSecret(SecretGenerator.hs256Secret()),
            status: .active, createdAt: createdAt)
    }

    /// An audit event whose id is `aud_` and 26 times `letter` (so ids order as the letters).
    static func audit(
        _ letter: Character, time: Date, actor: String = "adm_one", action: String = "tenant.create", tenant: TenantID?
    ) -> AuditEvent {
        AuditEvent(
            id: "aud_" + String(repeating: letter, count: 26), time: time, actor: actor, action: action, tenant: tenant,
            targetType: "tenant", targetID: tenant?.rawValue ?? "none", requestID: "req_\(letter)")
    }

    static func adminToken(_ letter: Character, createdAt: Date, scopes: [String]) -> AdminTokenRecord {
        AdminTokenRecord(
            id: "adm_" + String(repeating: letter, count: 20), name: "token \(letter)", scopes: scopes,
            valueHash: sha256("value of \(letter)"), prefix: "tgadm_\(letter)\(letter)\(letter)\(letter)", createdAt: createdAt,
            createdBy: "bootstrap")
    }

    static func schema(_ tenant: TenantID, _ map: String, _ version: Int, _ enforcement: SchemaEnforcement, at seconds: Int) -> MapSchemaVersion {
        MapSchemaVersion(
            tenant: tenant, map: map, version: version, enforcement: enforcement,
            schemaJSON: #"{"fields":{"total":{"type":"number"}},"version":"# + String(version) + "}", createdAt: at(seconds))
    }

    static func request(_ method: String, _ path: String, body: String) -> IdempotentRequest {
        IdempotentRequest(method: method, path: path, bodyHash: sha256(body))
    }

    static let oneTimeSecret = "c2VjcmV0LXNob3duLW9uY2UtYW5kLW5ldmVyLWFnYWlu"

    /// A created signing key's answer, holding a secret shown once.
    static let response = StoredResponse(
        status: 201,
        headers: [
            StoredHeader(name: "Content-Type", value: "application/json"),
            StoredHeader(name: "Location", value: "/v1/tenants/tn_x/signing-keys/key_y"),
            StoredHeader(name: "ETag", value: "\"1\""),
            StoredHeader(name: "Cache-Control", value: "no-store"),
        ],
        body: Array(#"{"kid":"key_y","secret":"\#(oneTimeSecret)","status":"active"}"#.utf8))

    static func sha256(_ text: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(text.utf8)))
    }
}
