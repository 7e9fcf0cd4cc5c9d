import Foundation
import StratumJSON
import StratumStore

/// Resolves a message's identifiers to one profile inside a store
/// transaction: creates, attaches, or merges into the oldest (DESIGN.md,
/// Identity resolution).
struct IdentityResolver {
    let rules: IdentityRules
    let transaction: any StoreTransaction
    let tenant: String
    let now: Milliseconds
    let newID: () -> String
    /// Where segment changes caused by a merge are delivered.
    var segmentSubscriptions: [SegmentSubscription] = []
    /// Settings `session_timeout_minutes`, for recounting sessions after a merge.
    var sessionTimeout: Milliseconds

    /// What resolution did, for the profile counters and webhooks.
    struct Outcome {
        var profile: ProfileRecord
        var created: Bool
        var merged: [String]
        /// Segments the survivor entered by each merge, and the merge's id: their
        /// deliveries are written once the survivor's row is (its canonical
        /// identity may change with the merge), by `IngestionPipeline`.
        var segmentEntries: [(segments: [String], mergeID: String)] = []
    }

    /// Finds or creates the message's profile; nil when it carries no usable identifier.
    ///
    /// The anchor is whoever holds the strongest identifier: an existing
    /// profile, or the message's new identifiers (a new person, say a second
    /// userId on a shared device). The other matched profiles join the anchor
    /// unless a per-type limit forbids it (recorded as a conflict), and the
    /// group merges into its oldest profile.
    func resolve(_ identifiers: [ResolvedIdentifier], eventID: String, eventTime: Milliseconds, extraLookups: [ResolvedIdentifier] = []) throws -> Outcome? {
        guard !identifiers.isEmpty || !extraLookups.isEmpty else { return nil }
        let lookups = identifiers + extraLookups
        let matches = try transaction.matches(tenant: tenant, identifiers: lookups.map { ($0.type, $0.hash) })
        func matched(_ identifier: ResolvedIdentifier) -> Bool { matches.contains { $0.type == identifier.type && $0.hash == identifier.hash } }
        // A value found as an extra lookup (an alias's previousId that is an earlier
        // userId) is that id, not also a new identifier of another type.
        let known = Set(extraLookups.filter(matched).map(\.normalized))
        let unmatched = identifiers.filter { !matched($0) && !known.contains($0.normalized) }
        let matchedIDs = Array(Set(matches.map(\.profileID)))

        // The common case: everything known, one profile.
        if matchedIDs.count == 1 && unmatched.isEmpty, let profile = try transaction.profile(tenant: tenant, id: matchedIDs[0]) {
            return Outcome(profile: profile, created: false, merged: [])
        }

        var candidates: [(profile: ProfileRecord, identifiers: [IdentifierRecord])] = []
        for id in matchedIDs {
            if let profile = try transaction.profile(tenant: tenant, id: id) {
                candidates.append((profile, try transaction.identifiers(tenant: tenant, profileID: id)))
            }
        }
        candidates.sort { ($0.profile.firstSeenAt, $0.profile.id) < ($1.profile.firstSeenAt, $1.profile.id) }
        let priority = Dictionary(lookups.map { ($0.type + ":" + $0.hash, $0.priority) }, uniquingKeysWith: max)
        func strength(_ records: [IdentifierRecord]) -> Int {
            records.compactMap { priority[$0.type + ":" + $0.hash] }.max() ?? 0
        }
        let newStrength = unmatched.map(\.priority).max() ?? -1
        let strongestExisting = candidates.indices.max { strength(candidates[$0].identifiers) < strength(candidates[$1].identifiers) || (strength(candidates[$0].identifiers) == strength(candidates[$1].identifiers) && $0 > $1) }
        let anchorIsNew = strongestExisting.map { newStrength > strength(candidates[$0].identifiers) } ?? true

        var groupIdentifiers: [IdentifierRecord]
        var group: [ProfileRecord] = []
        var anchorID: String
        if anchorIsNew {
            groupIdentifiers = unmatched.map { pending($0) }
            anchorID = "the new profile"
        } else {
            let anchor = candidates[strongestExisting!]
            group = [anchor.profile]
            groupIdentifiers = anchor.identifiers
            anchorID = anchor.profile.id
        }
        var refused: [(ProfileRecord, (type: String, hash: String, limit: Int))] = []
        for candidate in candidates where candidate.profile.id != anchorID {
            if let violated = limitViolation(groupIdentifiers + candidate.identifiers) {
                refused.append((candidate.profile, violated))
                continue
            }
            group.append(candidate.profile)
            groupIdentifiers += candidate.identifiers
        }

        var survivor: ProfileRecord
        var created = false
        var merged: [String] = []
        var segmentEntries: [(segments: [String], mergeID: String)] = []
        var existing: [IdentifierRecord] = []
        if group.isEmpty {
            survivor = ProfileRecord(tenantID: tenant, id: newID(), now: now, seenAt: eventTime)
            try transaction.insertProfile(survivor)
            created = true
        } else {
            group.sort { ($0.firstSeenAt, $0.id) < ($1.firstSeenAt, $1.id) }
            survivor = group[0]
            for absorbed in group.dropFirst() {
                segmentEntries.append(try merge(absorbed, into: &survivor))
                merged.append(absorbed.id)
            }
            let survivorID = survivor.id
            existing = groupIdentifiers.filter { record in !unmatched.contains { $0.type == record.type && $0.hash == record.hash } }
                .map { var moved = $0; moved.profileID = survivorID; return moved }
        }
        for (other, violated) in refused {
            try transaction.insertConflict(ConflictRecord(
                tenantID: tenant, id: newID(), profileID: survivor.id, otherProfileID: other.id,
                identifierType: violated.type, identifierHash: violated.hash,
                reason: "merge refused: it would give the profile more than \(violated.limit) \(violated.type) identifier\(violated.limit == 1 ? "" : "s")",
                eventID: eventID, occurredAt: now))
        }
        try attach(unmatched, to: &survivor, existing: existing, eventID: eventID, recomputeCanonical: !merged.isEmpty)
        return Outcome(profile: survivor, created: created, merged: merged, segmentEntries: segmentEntries)
    }

    /// A not-yet-stored identifier, for limit checks.
    func pending(_ identifier: ResolvedIdentifier) -> IdentifierRecord {
        IdentifierRecord(
            tenantID: tenant, id: "", profileID: "", type: identifier.type, value: nil, hash: identifier.hash,
            isPrimary: false, confidence: identifier.confidence, verifiedAt: nil, createdAt: now)
    }

    /// The first per-type limit that `identifiers` together break, if any.
    func limitViolation(_ identifiers: [IdentifierRecord]) -> (type: String, hash: String, limit: Int)? {
        let byType = Dictionary(grouping: identifiers, by: \.type)
        for (type, records) in byType.sorted(by: { $0.key < $1.key }) {
            if let limit = rules.rule(for: type).limit, Set(records.map(\.hash)).count > limit {
                return (type, records.map(\.hash).sorted().last!, limit)
            }
        }
        return nil
    }

    /// Attaches new identifiers, refusing (and recording) those over their type's limit.
    func attach(_ new: [ResolvedIdentifier], to profile: inout ProfileRecord, existing: [IdentifierRecord], eventID: String, recomputeCanonical: Bool = false) throws {
        var all = existing
        for identifier in new.sorted(by: { $0.priority > $1.priority }) {
            let count = all.count { $0.type == identifier.type }
            if let limit = identifier.limit, count >= limit {
                try transaction.insertConflict(ConflictRecord(
                    tenantID: tenant, id: newID(), profileID: profile.id, otherProfileID: nil,
                    identifierType: identifier.type, identifierHash: identifier.hash,
                    reason: "not attached: the profile already has \(count) \(identifier.type) identifier\(count == 1 ? "" : "s") (limit \(limit))",
                    eventID: eventID, occurredAt: now))
                continue
            }
            let record = IdentifierRecord(
                tenantID: tenant, id: newID(), profileID: profile.id, type: identifier.type,
                value: rules.storeRawValues ? identifier.normalized : nil, hash: identifier.hash, isPrimary: false,
                confidence: identifier.confidence, verifiedAt: nil, createdAt: now)
            try transaction.insertIdentifier(record)
            all.append(record)
            if identifier.type == "external_id", profile.externalID == nil { profile.externalID = identifier.normalized }
            if (identifier.type == "email" || identifier.type == "phone") && profile.storedStage == .anonymous {
                profile.storedStage = .known
            }
        }
        if all.count > existing.count || recomputeCanonical {
            try updateCanonical(&profile, identifiers: all)
        }
    }

    /// The canonical identity: the highest-priority identifier, oldest first on ties.
    func updateCanonical(_ profile: inout ProfileRecord, identifiers: [IdentifierRecord]) throws {
        let best = identifiers.min { a, b in
            let pa = rules.rule(for: a.type).priority
            let pb = rules.rule(for: b.type).priority
            return pa != pb ? pa > pb : (a.createdAt, a.id) < (b.createdAt, b.id)
        }
        guard let best, best.type != profile.canonicalType || best.hash != profile.canonicalHash else { return }
        if let type = profile.canonicalType, let hash = profile.canonicalHash {
            try transaction.setPrimary(tenant: tenant, type: type, hash: hash, isPrimary: false)
        }
        try transaction.setPrimary(tenant: tenant, type: best.type, hash: best.hash, isPrimary: true)
        profile.canonicalType = best.type
        profile.canonicalHash = best.hash
    }

    /// Moves everything of `absorbed` into `survivor`, records the merge, keeps
    /// the absorbed id resolvable, and deletes the absorbed profile. Segment
    /// memberships move first, so the absorbed profile's exits are delivered
    /// with its identifiers and consents; returns the segments the survivor
    /// entered and the merge's id, under which both are recorded (their
    /// deliveries wait for the survivor's row).
    func merge(_ absorbed: ProfileRecord, into survivor: inout ProfileRecord) throws -> (segments: [String], mergeID: String) {
        let mergeID = newID()
        let entered = try transaction.moveMemberships(tenant: tenant, from: absorbed.id, to: survivor.id, runID: mergeID, at: now, subscriptions: segmentSubscriptions)
        let identifiersMoved = try transaction.moveIdentifiers(tenant: tenant, from: absorbed.id, to: survivor.id)
        let eventsMoved = try transaction.moveEvents(tenant: tenant, from: absorbed.id, to: survivor.id)
        try transaction.moveConsents(tenant: tenant, from: absorbed.id, to: survivor.id)
        try transaction.carryComputedTraits(tenant: tenant, from: absorbed.id, to: survivor.id)
        survivor = Self.combined(survivor, absorbed)
        // Not the sum: a session both profiles had (browsing, then signing in
        // during it) is one session, and events of the two may now join. It reads
        // all the survivor's events (about 2 µs each), so only when some moved.
        if eventsMoved > 0 {
            survivor.totalSessions = try transaction.sessionCount(tenant: tenant, profileID: survivor.id, timeout: sessionTimeout)
        }
        survivor.updatedAt = now
        survivor.dataChanged = true
        try transaction.deleteProfile(tenant: tenant, id: absorbed.id)
        try transaction.insertMerge(MergeRecord(
            tenantID: tenant, id: mergeID, survivorID: survivor.id, absorbedID: absorbed.id, mergedAt: now,
            reason: "identifiers matched both profiles", identifiersMoved: identifiersMoved, eventsMoved: eventsMoved))
        try transaction.insertAlias(tenant: tenant, absorbedID: absorbed.id, survivorID: survivor.id, at: now)
        return (entered, mergeID)
    }

    /// Counters summed, first/last seen widened, profile data merged with the
    /// more recently seen profile's values winning.
    static func combined(_ survivor: ProfileRecord, _ absorbed: ProfileRecord) -> ProfileRecord {
        var result = survivor
        result.firstSeenAt = min(survivor.firstSeenAt, absorbed.firstSeenAt)
        result.lastSeenAt = max(survivor.lastSeenAt, absorbed.lastSeenAt)
        result.totalEvents += absorbed.totalEvents
        result.totalSessions += absorbed.totalSessions
        result.totalPurchases += absorbed.totalPurchases
        result.totalRevenue += absorbed.totalRevenue
        let (older, newer) = absorbed.lastSeenAt > survivor.lastSeenAt ? (survivor, absorbed) : (absorbed, survivor)
        var data = older.profileData
        for (key, value) in newer.profileData { data[key] = value }
        result.profileData = data
        var traits = absorbed.computedTraits
        for (key, value) in survivor.computedTraits { traits[key] = value }
        result.computedTraits = traits
        let rank: [LifecycleStage: Int] = [.anonymous: 0, .known: 1, .customer: 2, .churned: 0]
        result.storedStage = (rank[absorbed.storedStage] ?? 0) > (rank[survivor.storedStage] ?? 0) ? absorbed.storedStage : survivor.storedStage
        result.externalID = survivor.externalID ?? absorbed.externalID
        if (absorbed.lastEventAt ?? .min) > (survivor.lastEventAt ?? .min) {
            result.lastEventAt = absorbed.lastEventAt
            result.lastSessionID = absorbed.lastSessionID
        }
        return result
    }
}
