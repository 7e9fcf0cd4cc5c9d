import Foundation
import StratumJSON
import StratumStore

/// Records `context.consent` (`{"ads": true, "email": false}`) as the seed's
/// consent history: a new record only when a type's state changes.
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
        var latest: [String: Bool] = [:]
        for record in try transaction.consents(tenant: tenant.tenant, profileID: profileID) { latest[record.consentType] = record.granted }
        var recorded: [(String, Bool)] = []
        for (type, granted) in changes where latest[type] != granted {
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
