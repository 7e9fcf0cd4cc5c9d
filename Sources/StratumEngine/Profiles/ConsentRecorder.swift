import Foundation
import StratumJSON
import StratumStore

/// Records `context.consent` (`{"ads": true, "email": false}`) as the seed's
/// consent history: a new record only when it changes what a type's consent
/// is at the message's time — the latest record of the type or of `all` (the
/// global toggle) at or before that time, as every reader decides it. SDKs send
/// the same consent with every call; those repeats add nothing.
struct ConsentRecorder {
    let tenant: TenantRuntime
    let source: String
    let transaction: any StoreTransaction
    let newID: () -> String

    /// Records changed consents; returns them (type, granted) for webhooks.
    @discardableResult
    func record(_ message: IncomingMessage, profileID: String) throws -> [(String, Bool)] {
        guard let consent = message.context["consent"]?.objectValue else { return [] }
        let preferences = consent["categoryPreferences"]?.objectValue ?? consent
        let changes = preferences.compactMap { key, value -> (String, Bool)? in
            guard let granted = value.boolValue, tenant.consentTypes.contains(key) else { return nil }
            return (key, granted)
        }
        guard !changes.isEmpty else { return [] }
        // Oldest first, as readers order them (recorded_at, then seq).
        var history = try transaction.consents(tenant: tenant.tenant, profileID: profileID).map { ($0.consentType, $0.granted, $0.recordedAt) }
        func effective(_ type: String) -> Bool? {
            history.last { ($0.0 == type || $0.0 == "all") && $0.2 <= message.eventTime }?.1
        }
        var recorded: [(String, Bool)] = []
        for (type, granted) in changes.sorted(by: { $0.0 < $1.0 }) {
            // `all` changes every type: it is new when some type's consent differs.
            let affected = type == "all" ? Array(tenant.consentTypes) : [type]
            guard affected.contains(where: { effective($0) != granted }) else { continue }
            history.append((type, granted, message.eventTime))
            recorded.append((type, granted))
            try transaction.insertConsent(ConsentRecord(
                tenantID: tenant.tenant, id: newID(), profileID: profileID, consentType: type, granted: granted,
                grantedAt: granted ? message.eventTime : nil, revokedAt: granted ? nil : message.eventTime,
                source: source, ipAddress: message.context["ip"]?.stringValue,
                consentText: message.context["consentText"]?.stringValue,
                consentVersion: message.context["consentVersion"]?.stringValue, recordedAt: message.eventTime))
        }
        return recorded
    }
}
