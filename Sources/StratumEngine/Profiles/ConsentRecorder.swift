import Foundation
import StratumJSON
import StratumStore

/// Records `context.consent` (`{"ads": true, "email": false}`) as the seed's
/// consent history: a new record only when it changes what a type's consent
/// is at the message's time — the latest record of the type or of `all` (the
/// global toggle) at or before that time, as every reader decides it. SDKs send
/// the same consent with every call: a repeat only moves the `confirmed_at` of
/// the records in force, so that a record arriving late (sent before the
/// repeat) is followed by the repeated value again from the repeat's time.
struct ConsentRecorder {
    let tenant: TenantRuntime
    let source: String
    let transaction: any StoreTransaction
    let newID: () -> String
    /// The current instant: what is "in force now" for the notices.
    let now: Milliseconds

    /// What a message changed in the consent in force now.
    struct Changes {
        /// The records (type, granted) that changed it: the consent.updated notices.
        var recorded: [(String, Bool)] = []
        /// Each consent type whose state in force now changed, and its new state
        /// (`all` expanded to the types it changed).
        var inForce: [(String, Bool)] = []
    }

    /// Records changed consents; returns what changed in force now, for webhooks.
    @discardableResult
    func record(_ message: IncomingMessage, profileID: String) throws -> Changes {
        guard let consent = message.context["consent"]?.objectValue else { return Changes() }
        let preferences = consent["categoryPreferences"]?.objectValue ?? consent
        let changes = preferences.compactMap { key, value -> (String, Bool)? in
            guard let granted = value.boolValue, tenant.consentTypes.contains(key) else { return nil }
            return (key, granted)
        }
        guard !changes.isEmpty else { return Changes() }
        // Oldest first, as readers order them (recorded_at, then seq).
        var history = try transaction.consents(tenant: tenant.tenant, profileID: profileID)
        let time = message.eventTime
        func inForce(_ type: String) -> ConsentRecord? {
            history.last { ($0.consentType == type || $0.consentType == "all") && $0.recordedAt <= time }
        }
        func insert(_ type: String, _ granted: Bool, at instant: Milliseconds) throws {
            let record = ConsentRecord(
                tenantID: tenant.tenant, id: newID(), profileID: profileID, consentType: type, granted: granted,
                grantedAt: granted ? instant : nil, revokedAt: granted ? nil : instant,
                source: source, ipAddress: message.context["ip"]?.stringValue,
                consentText: message.context["consentText"]?.stringValue,
                consentVersion: message.context["consentVersion"]?.stringValue, recordedAt: instant)
            try transaction.insertConsent(record)
            history.insert(record, at: history.lastIndex { $0.recordedAt <= instant }.map { $0 + 1 } ?? 0)
        }
        // What is in force now, per type, before and after: only a change of that is
        // announced (a late record placed before a later one changes history, not now;
        // a record stamped ahead of now, by a clock running ahead, is not in force yet).
        func inForceNow() -> [String: Bool?] {
            Dictionary(uniqueKeysWithValues: tenant.consentTypes.map { type in
                (type, history.last { ($0.consentType == type || $0.consentType == "all") && $0.recordedAt <= now }?.granted)
            })
        }
        let before = inForceNow()
        var recorded: [(String, Bool)] = []
        for (type, granted) in changes.sorted(by: { $0.0 < $1.0 }) {
            // `all` changes every type: it is new when some type's consent differs.
            let current = (type == "all" ? Array(tenant.consentTypes).sorted() : [type]).map(inForce)
            let holding = current.compactMap { $0 }.reduce(into: [ConsentRecord]()) { unique, record in
                if !unique.contains(where: { $0.id == record.id }) { unique.append(record) }
            }
            if current.allSatisfy({ $0?.granted == granted }) {
                // A repeat is no new record, but the records in force were sent again now:
                // a record arriving late, before this, must not outlast it.
                for record in holding where time > (record.confirmedAt ?? record.recordedAt) {
                    try transaction.confirmConsent(tenant: tenant.tenant, id: record.id, at: time)
                    if let index = history.firstIndex(where: { $0.id == record.id }) { history[index].confirmedAt = time }
                }
                continue
            }
            try insert(type, granted, at: time)
            recorded.append((type, granted))
            // A record in force here that was sent again later holds again from then.
            for record in holding where record.granted != granted {
                if let confirmed = record.confirmedAt, confirmed > time { try insert(record.consentType, record.granted, at: confirmed) }
            }
        }
        let after = inForceNow()
        return Changes(
            recorded: recorded.filter { type, _ in
                (type == "all" ? Array(tenant.consentTypes) : [type]).contains { before[$0] != after[$0] }
            },
            // No record is not granted: a first denial changes nothing a receiver was told.
            inForce: tenant.consentTypes.sorted().compactMap { type in
                let (was, now) = ((before[type] ?? nil) ?? false, (after[type] ?? nil) ?? false)
                return was != now ? (type, now) : nil
            })
    }
}
