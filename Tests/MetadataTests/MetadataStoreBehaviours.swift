import Crypto
import Foundation
@testable import Metadata
import Migrations
import Tenancy
import Testing

/// What every `MetadataStore` promises. Each case runs against SQLite and against PostgreSQL
/// (`MetadataStoreSuites.swift`), each time on a database of its own.
enum StoreBehaviour: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case createdTenantIsReadBackByIdAndSlug
    case unknownTenantIsNilOrNotFound
    case duplicateSlugIsAConflict
    case concurrentCreatesOfOneSlugHaveExactlyOneWinner
    case invalidTenantInputIsRefusedAndSQLTextIsStoredVerbatim
    case tenantStatusChangesAreStored
    case keysAreCreatedListedAndRevoked
    case revokingTwiceKeepsTheFirstRevocation
    case keyForUnknownTenantIsNotFound
    case shortOrMismatchedKeyMaterialIsInvalid
    case secretRoundTripsAndIsEncryptedAtRest
    case secretDoesNotOpenUnderAnotherMasterKey
    case changeStreamDeliversTenantAndKeyChanges
    case changeMadeThroughAnotherInstanceReachesTheStream
    case shutdownEndsChangeStreams
    case migratingTwiceIsANoOp
    case storeResolvesKeysForTheTokenVerifier
    case mapKindsAreRecordedOnceAndRacingNodesAgree
    // ControlPlaneStore (ControlPlaneStoreBehaviours.swift)
    case writeCommitsEverythingTogether
    case throwingWriteRollsBackEverythingIncludingAuditAndNotifications
    case transactionIsUnusableAfterItsWrite
    case notificationsAreSentOnlyOnCommit
    case tenantInsertAndUpdateRoundTripEveryField
    case slugConflictInsideWriteRollsBack
    case keysKeepLabelAndJWKAndTheFirstRevocation
    case quotasFollowThePlanUntilReplaced
    case schemaVersionsAreNumberedClearedAndListed
    case auditEventsAreFilteredAndPagedNewestFirst
    case adminTokensAreFoundRevokedTouchedAndListed
    case idempotencyClaimsAnswerByState
    case idempotentResponseBodyIsSealedAtRest
    case staleOrExpiredIdempotencyClaimsAreTakenOver
    case idempotencyClaimsAreReleasedAndPurged
    case idempotentCompletionCommitsWithItsWrite
    case usageFlushesCountOnceAddSumsKeepPeaksReplaceStorage
    case usageHoursAreReadByRangeAndExportedInOrder
    case tenantsAndKeysArePagedWithFilters

    var testDescription: String { rawValue }

    func run(_ harness: any StoreHarness) async throws {
        switch self {
        case .createdTenantIsReadBackByIdAndSlug: try await Self.createdTenantIsReadBack(harness)
        case .unknownTenantIsNilOrNotFound: try await Self.unknownTenant(harness)
        case .duplicateSlugIsAConflict: try await Self.duplicateSlug(harness)
        case .concurrentCreatesOfOneSlugHaveExactlyOneWinner: try await Self.concurrentCreates(harness)
        case .invalidTenantInputIsRefusedAndSQLTextIsStoredVerbatim: try await Self.invalidInput(harness)
        case .tenantStatusChangesAreStored: try await Self.statusChanges(harness)
        case .keysAreCreatedListedAndRevoked: try await Self.keysLifecycle(harness)
        case .revokingTwiceKeepsTheFirstRevocation: try await Self.revokeTwice(harness)
        case .keyForUnknownTenantIsNotFound: try await Self.keyForUnknownTenant(harness)
        case .shortOrMismatchedKeyMaterialIsInvalid: try await Self.invalidMaterial(harness)
        case .secretRoundTripsAndIsEncryptedAtRest: try await Self.secretAtRest(harness)
        case .secretDoesNotOpenUnderAnotherMasterKey: try await Self.otherMasterKey(harness)
        case .changeStreamDeliversTenantAndKeyChanges: try await Self.changeStream(harness)
        case .changeMadeThroughAnotherInstanceReachesTheStream: try await Self.changeFromOtherInstance(harness)
        case .shutdownEndsChangeStreams: try await Self.shutdownEndsStreams(harness)
        case .migratingTwiceIsANoOp: try await Self.migrateTwice(harness)
        case .storeResolvesKeysForTheTokenVerifier: try await Self.resolverForVerifier(harness)
        case .mapKindsAreRecordedOnceAndRacingNodesAgree: try await Self.mapKindsRace(harness)
        case .writeCommitsEverythingTogether: try await Self.writeCommitsEverything(harness)
        case .throwingWriteRollsBackEverythingIncludingAuditAndNotifications: try await Self.throwingWriteRollsBackEverything(harness)
        case .transactionIsUnusableAfterItsWrite: try await Self.transactionIsUnusableAfterItsWrite(harness)
        case .notificationsAreSentOnlyOnCommit: try await Self.notificationsAreSentOnlyOnCommit(harness)
        case .tenantInsertAndUpdateRoundTripEveryField: try await Self.tenantRoundTripsEveryField(harness)
        case .slugConflictInsideWriteRollsBack: try await Self.slugConflictInsideWriteRollsBack(harness)
        case .keysKeepLabelAndJWKAndTheFirstRevocation: try await Self.keysKeepLabelAndJWKAndTheFirstRevocation(harness)
        case .quotasFollowThePlanUntilReplaced: try await Self.quotasFollowThePlanUntilReplaced(harness)
        case .schemaVersionsAreNumberedClearedAndListed: try await Self.schemaVersionsAreNumberedClearedAndListed(harness)
        case .auditEventsAreFilteredAndPagedNewestFirst: try await Self.auditEventsAreFilteredAndPagedNewestFirst(harness)
        case .adminTokensAreFoundRevokedTouchedAndListed: try await Self.adminTokensAreFoundRevokedTouchedAndListed(harness)
        case .idempotencyClaimsAnswerByState: try await Self.idempotencyClaimsAnswerByState(harness)
        case .idempotentResponseBodyIsSealedAtRest: try await Self.idempotencyBodyIsSealedAtRest(harness)
        case .staleOrExpiredIdempotencyClaimsAreTakenOver: try await Self.staleOrExpiredIdempotencyClaimsAreTakenOver(harness)
        case .idempotencyClaimsAreReleasedAndPurged: try await Self.idempotencyClaimsAreReleasedAndPurged(harness)
        case .idempotentCompletionCommitsWithItsWrite: try await Self.idempotentCompletionCommitsWithItsWrite(harness)
        case .usageFlushesCountOnceAddSumsKeepPeaksReplaceStorage: try await Self.usageFlushesCountOnce(harness)
        case .usageHoursAreReadByRangeAndExportedInOrder: try await Self.usageHoursAreReadByRangeAndExportedInOrder(harness)
        case .tenantsAndKeysArePagedWithFilters: try await Self.tenantsAndKeysArePagedWithFilters(harness)
        }
    }

    // MARK: Tenants

    static func createdTenantIsReadBack(_ harness: any StoreHarness) async throws {
        let store = try await harness.migratedStore()
        let created = try await store.createTenant(slug: "acme-prod", displayName: "Acme, Inc. ✓", plan: "pro")
        #expect(created.id.rawValue.hasPrefix("tn_") && created.id.rawValue.count == 23)
        #expect(created.slug == "acme-prod")
        #expect(created.displayName == "Acme, Inc. ✓")
        #expect(created.plan == "pro")
        #expect(created.status == .active)
        #expect(abs(created.createdAt.timeIntervalSinceNow) < 60)
        #expect(try await store.tenant(id: created.id) == created)
        #expect(try await store.tenant(slug: "acme-prod") == created)
    }

    static func unknownTenant(_ harness: any StoreHarness) async throws {
        let store = try await harness.migratedStore()
        #expect(try await store.tenant(id: "tn_nosuchtenant0000000") == nil)
        #expect(try await store.tenant(slug: "nope") == nil)
        #expect(try await store.tenant(id: "tn_\u{0}") == nil)
        await #expect(throws: MetadataError.self) { _ = try await store.setTenantStatus("tn_nosuchtenant0000000", .suspended) }
        do {
            _ = try await store.signingKeys(tenant: "tn_nosuchtenant0000000")
            Issue.record("listing keys of an unknown tenant succeeded")
        } catch let error as MetadataError {
            guard case .notFound = error else { Issue.record("expected notFound, got \(error)"); return }
        }
    }

    static func duplicateSlug(_ harness: any StoreHarness) async throws {
        let store = try await harness.migratedStore()
        _ = try await store.createTenant(slug: "acme", displayName: "Acme", plan: "free")
        do {
            _ = try await store.createTenant(slug: "acme", displayName: "Other Acme", plan: "pro")
            Issue.record("a duplicate slug was accepted")
        } catch let error as MetadataError {
            #expect(error == .conflict("slug 'acme' is taken"))
        }
    }

    /// Two nodes (two instances) whose first writes to one map differ get one answer: the
    /// kind inserted first. Other maps and other tenants are separate rows.
    static func mapKindsRace(_ harness: any StoreHarness) async throws {
        let first = try await harness.migratedStore()
        let second = try await harness.openStore()
        let tenant = try await first.createTenant(slug: "kinds", displayName: "Kinds", plan: "free")
        let other = try await first.createTenant(slug: "kinds-other", displayName: "Other", plan: "free")
        // One after another, alternating instances: the primary key settles a true race the
        // same way (the later insert does nothing), and SQLite instances of one process that
        // wait on each other's write lock would only share NIO's thread pool.
        var answers: [MapKind] = []
        for attempt in 0..<6 {
            let store = attempt.isMultiple(of: 2) ? first : second
            answers.append(try await store.recordMapKind(tenant: tenant.id, map: "shared", kind: attempt.isMultiple(of: 2) ? .lww : .orMap))
        }
        #expect(answers.first == .lww, "the first proposal is recorded")
        #expect(Set(answers).count == 1, "every node adopts one kind")
        let recorded = try #require(answers.first)
        let opposite: MapKind = recorded == .lww ? .orMap : .lww
        #expect(try await second.recordMapKind(tenant: tenant.id, map: "shared", kind: opposite) == recorded)
        #expect(try await first.recordMapKind(tenant: other.id, map: "shared", kind: opposite) == opposite)
        #expect(try await first.recordMapKind(tenant: tenant.id, map: "caf\u{e9}", kind: .orMap) == .orMap)
        #expect(try await first.recordMapKind(tenant: tenant.id, map: "cafe\u{301}", kind: .lww) == .lww, "names compare byte for byte")
    }

    static func concurrentCreates(_ harness: any StoreHarness) async throws {
        // Two instances, as two control-plane processes would have.
        let first = try await harness.migratedStore()
        let second = try await harness.openStore()
        let attempts = 8
        let outcomes = await withTaskGroup(of: Result<Tenant, MetadataError>.self) { group in
            for attempt in 0..<attempts {
                let store = attempt.isMultiple(of: 2) ? first : second
                group.addTask {
                    do {
                        return .success(try await store.createTenant(slug: "race", displayName: "Racer \(attempt)", plan: "free"))
                    } catch let error as MetadataError {
                        return .failure(error)
                    } catch {
                        return .failure(.unavailable("\(error)"))
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let winners = outcomes.compactMap { try? $0.get() }
        let conflicts = outcomes.filter { if case .failure(.conflict) = $0 { true } else { false } }
        #expect(winners.count == 1)
        #expect(conflicts.count == attempts - 1)
        #expect(try await first.tenant(slug: "race") == winners.first)
    }

    static func invalidInput(_ harness: any StoreHarness) async throws {
        let store = try await harness.migratedStore()
        for (slug, name, plan) in [
            ("", "A", "free"), ("UPPER", "A", "free"), ("-lead", "A", "free"), ("x'; DROP TABLE tenants; --", "A", "free"),
            (String(repeating: "a", count: 64), "A", "free"), ("ok", "", "free"), ("ok", "  ", "free"),
            ("ok", "nul\u{0}byte", "free"), ("ok", String(repeating: "n", count: 201), "free"), ("ok", "A", ""), ("ok", "A", "Pro Plan"),
        ] {
            do {
                _ = try await store.createTenant(slug: slug, displayName: name, plan: plan)
                Issue.record("accepted slug \(slug.debugDescription), name \(name.debugDescription), plan \(plan.debugDescription)")
            } catch let error as MetadataError {
                guard case .invalid = error else { Issue.record("expected invalid, got \(error)"); continue }
            }
        }
        let hostile = "Robert'); DROP TABLE tenants; -- \"$$ \\ %"
        let tenant = try await store.createTenant(slug: "bobby-tables", displayName: hostile, plan: "free")
        #expect(try await store.tenant(id: tenant.id)?.displayName == hostile)
        #expect(try await store.tenant(slug: "x' OR '1'='1") == nil)
    }

    static func statusChanges(_ harness: any StoreHarness) async throws {
        let store = try await harness.migratedStore()
        let tenant = try await store.createTenant(slug: "acme", displayName: "Acme", plan: "free")
        for status in [Tenant.Status.suspended, .active, .deleted] {
            let updated = try await store.setTenantStatus(tenant.id, status)
            #expect(updated.status == status)
            #expect(updated.id == tenant.id && updated.slug == tenant.slug && updated.createdAt == tenant.createdAt)
            #expect(try await store.tenant(id: tenant.id)?.status == status)
        }
    }

    // MARK: Keys

    static func keysLifecycle(_ harness: any StoreHarness) async throws {
        let store = try await harness.migratedStore()
        let tenant = try await store.createTenant(slug: "acme", displayName: "Acme", plan: "pro")
        let other = try await store.createTenant(slug: "other", displayName: "Other", plan: "pro")
        #expect(try await store.signingKeys(tenant: tenant.id) == [])

        let secret = SecretGenerator.hs256Secret()
        let hmac = try await store.createSigningKey(tenant: tenant.id, algorithm: .hs256, material: .hmacSecret(secret))
        let ecPEM = TestPublicKeys.es256PEM()
        let ec = try await store.createSigningKey(tenant: tenant.id, algorithm: .es256, material: .publicKeyPEM(ecPEM))
        _ = try await store.createSigningKey(tenant: other.id, algorithm: .hs256, material: .hmacSecret(SecretGenerator.hs256Secret()))

        #expect(hmac.kid.hasPrefix("key_") && hmac.kid.count == 28 && hmac.kid != ec.kid)
        #expect(hmac.tenant == tenant.id && hmac.status == .active && hmac.revokedAt == nil)
        #expect(try await store.signingKey(kid: hmac.kid) == hmac)
        #expect(try await store.signingKey(kid: ec.kid) == ec)
        #expect(try await store.signingKey(kid: "key_unknown") == nil)
        // Several active keys per tenant (rotation), in creation order, only this tenant's.
        #expect(try await store.signingKeys(tenant: tenant.id).map(\.kid) == [hmac.kid, ec.kid])

        let revoked = try await store.revokeSigningKey(kid: hmac.kid)
        #expect(revoked.status == .revoked)
        #expect(revoked.revokedAt != nil)
        #expect(revoked.material == .hmacSecret(secret))
        #expect(try await store.signingKey(kid: hmac.kid) == revoked)
        #expect(try await store.signingKeys(tenant: tenant.id).map(\.status) == [.revoked, .active])

        do {
            _ = try await store.revokeSigningKey(kid: "key_unknown")
            Issue.record("revoking an unknown key succeeded")
        } catch let error as MetadataError {
            guard case .notFound = error else { Issue.record("expected notFound, got \(error)"); return }
        }
    }

    static func revokeTwice(_ harness: any StoreHarness) async throws {
        let store = try await harness.migratedStore()
        let tenant = try await store.createTenant(slug: "acme", displayName: "Acme", plan: "pro")
        let key = try await store.createSigningKey(tenant: tenant.id, algorithm: .hs256, material: .hmacSecret(SecretGenerator.hs256Secret()))
        let first = try await store.revokeSigningKey(kid: key.kid)
        try await Task.sleep(for: .milliseconds(20))
        let second = try await store.revokeSigningKey(kid: key.kid)
        #expect(second == first)
    }

    static func keyForUnknownTenant(_ harness: any StoreHarness) async throws {
        let store = try await harness.migratedStore()
        do {
            _ = try await store.createSigningKey(tenant: "tn_nosuchtenant0000000", algorithm: .hs256, material: .hmacSecret(SecretGenerator.hs256Secret()))
            Issue.record("a key for an unknown tenant was stored")
        } catch let error as MetadataError {
            #expect(error == .notFound("tenant tn_nosuchtenant0000000"))
        }
    }

    static func invalidMaterial(_ harness: any StoreHarness) async throws {
        let store = try await harness.migratedStore()
        let tenant = try await store.createTenant(slug: "acme", displayName: "Acme", plan: "pro")
        let cases: [(SigningAlgorithm, SigningKey.Material)] = [
            (.hs256, .hmacSecret(Array(repeating: 7, count: 31))),
            (.hs256, .hmacSecret([])),
            (.hs256, .publicKeyPEM(TestPublicKeys.es256PEM())),
            (.rs256, .publicKeyPEM("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----")),
            (.es256, .hmacSecret(SecretGenerator.hs256Secret())),
            (.edDSA, .publicKeyPEM(TestPublicKeys.es256PEM())),
        ]
        for (algorithm, material) in cases {
            do {
                _ = try await store.createSigningKey(tenant: tenant.id, algorithm: algorithm, material: material)
                Issue.record("stored invalid \(algorithm.rawValue) material")
            } catch let error as MetadataError {
                guard case .invalid = error else { Issue.record("expected invalid, got \(error)"); continue }
            }
        }
        #expect(try await store.signingKeys(tenant: tenant.id) == [])
    }

    static func secretAtRest(_ harness: any StoreHarness) async throws {
        let store = try await harness.migratedStore()
        let tenant = try await store.createTenant(slug: "acme", displayName: "Acme", plan: "pro")
        let secret = SecretGenerator.hs256Secret(byteCount: 48)
        let key = try await store.createSigningKey(tenant: tenant.id, algorithm: .hs256, material: .hmacSecret(secret))
        #expect(key.material == .hmacSecret(secret))

        // Another instance (a restart) reads the same secret back.
        let reopened = try await harness.openStore()
        #expect(try await reopened.signingKey(kid: key.kid)?.material == .hmacSecret(secret))

        let raw = try #require(try await harness.rawSecretCiphertext(kid: key.kid))
        #expect(raw.count == 1 + 12 + secret.count + 16)  // version, nonce, ciphertext, tag
        #expect(raw.first == 1)
        #expect(!contains(raw, secret))
        #expect(!contains(raw, Array(secret.prefix(8))))
        #expect(!contains(raw, Array(Base64URL.encode(secret).utf8)))
    }

    static func otherMasterKey(_ harness: any StoreHarness) async throws {
        let store = try await harness.migratedStore()
        let tenant = try await store.createTenant(slug: "acme", displayName: "Acme", plan: "pro")
        let key = try await store.createSigningKey(tenant: tenant.id, algorithm: .hs256, material: .hmacSecret(SecretGenerator.hs256Secret()))
        let wrong = try await harness.openStore(masterKey: TestMasterKey.other)
        do {
            _ = try await wrong.signingKey(kid: key.kid)
            Issue.record("a secret opened under another master key")
        } catch let error as MetadataError {
            guard case .unavailable(let message) = error else { Issue.record("expected unavailable, got \(error)"); return }
            #expect(message.contains("master key"))
        }
        await #expect(throws: MetadataError.self) { _ = try await harness.openStore(masterKey: Array(repeating: 1, count: 16)) }
    }

    // MARK: Change stream

    static func changeStream(_ harness: any StoreHarness) async throws {
        let store = try await harness.migratedStore()
        let recorder = ChangeRecorder(store.changes())
        let second = ChangeRecorder(store.changes())
        let tenant = try await store.createTenant(slug: "acme", displayName: "Acme", plan: "pro")
        _ = try await store.setTenantStatus(tenant.id, .suspended)
        let key = try await store.createSigningKey(tenant: tenant.id, algorithm: .hs256, material: .hmacSecret(SecretGenerator.hs256Secret()))
        _ = try await store.revokeSigningKey(kid: key.kid)

        let expected: [MetadataChange] = [.tenant(tenant.id), .tenant(tenant.id), .signingKey(kid: key.kid, tenant: tenant.id), .signingKey(kid: key.kid, tenant: tenant.id)]
        let arrived = await recorder.wait { $0.count >= expected.count }
        #expect(arrived == expected)
        #expect(await second.wait { $0.count >= expected.count } == expected)
    }

    static func changeFromOtherInstance(_ harness: any StoreHarness) async throws {
        let listening = try await harness.migratedStore()
        let writing = try await harness.openStore()
        let recorder = ChangeRecorder(listening.changes())
        let tenant = try await writing.createTenant(slug: "acme", displayName: "Acme", plan: "pro")
        let key = try await writing.createSigningKey(tenant: tenant.id, algorithm: .hs256, material: .hmacSecret(SecretGenerator.hs256Secret()))
        // How fast changes arrive is a benchmark figure; here: that they arrive at all.
        #expect(await recorder.waitForAll([.tenant(tenant.id), .signingKey(kid: key.kid, tenant: tenant.id)], timeout: .seconds(10)))
    }

    static func shutdownEndsStreams(_ harness: any StoreHarness) async throws {
        let store = try await harness.migratedStore()
        let recorder = ChangeRecorder(store.changes())
        await store.shutdown()
        #expect(await recorder.ended())
        await #expect(throws: (any Error).self) { _ = try await store.createTenant(slug: "late", displayName: "Late", plan: "free") }
    }

    // MARK: Migrations

    static func migrateTwice(_ harness: any StoreHarness) async throws {
        let store = try await harness.migratedStore()
        let tenant = try await store.createTenant(slug: "acme", displayName: "Acme", plan: "pro")
        let expected = MigrationCatalog.migrations(for: harness.kind == .sqlite ? .sqlite : .postgres).map(\.version)
        #expect(try await harness.appliedMigrationVersions() == expected)
        try await store.migrate()
        try await harness.openStore().migrate()
        #expect(try await harness.appliedMigrationVersions() == expected)
        #expect(try await store.tenant(id: tenant.id) == tenant)
    }

    // MARK: With the verifier

    static func resolverForVerifier(_ harness: any StoreHarness) async throws {
        let store = try await harness.migratedStore()
        let tenant = try await store.createTenant(slug: "acme", displayName: "Acme", plan: "pro")
        let key = try await store.createSigningKey(tenant: tenant.id, algorithm: .hs256, material: .hmacSecret(SecretGenerator.hs256Secret()))
        let token = try await TokenIssuer(key: key).mint(subject: "alice", roles: ["USER"])
        let verifier = TokenVerifier(resolver: store)
        let verified = try await verifier.verify(token)
        #expect(verified.tenant == tenant.id && verified.principal == "alice" && verified.keyId == key.kid)

        _ = try await store.setTenantStatus(tenant.id, .suspended)
        #expect(await verifyError(verifier, token) == .tenantSuspended(tenant.id))
        _ = try await store.setTenantStatus(tenant.id, .active)
        _ = try await store.revokeSigningKey(kid: key.kid)
        #expect(await verifyError(verifier, token) == .revokedKey(key.kid))
    }

    static func verifyError(_ verifier: TokenVerifier, _ token: String) async -> TokenError? {
        do {
            _ = try await verifier.verify(token)
            return nil
        } catch {
            return error
        }
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= haystack.count else { return false }
        return (0...(haystack.count - needle.count)).contains { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}

enum TestPublicKeys {
    /// A fresh P-256 public key, PEM.
    static func es256PEM() -> String {
        P256.Signing.PrivateKey().publicKey.pemRepresentation
    }
}
