import Foundation
import StratumJSON
import StratumStore

/// Applies one message to its profile's counters, seen times, sessions,
/// purchases, profile data and lifecycle stage.
struct ProfileUpdater {
    let tenant: TenantRuntime
    let now: Milliseconds
    /// Where a late event's neighbours and earlier session ids are looked up.
    let transaction: any StoreTransaction

    func apply(_ message: IncomingMessage, to profile: inout ProfileRecord) throws {
        profile.totalEvents += 1
        profile.firstSeenAt = min(profile.firstSeenAt, message.eventTime)
        profile.lastSeenAt = max(profile.lastSeenAt, message.eventTime)
        try countSession(message, &profile)
        if message.type == .track, tenant.purchaseEvents.contains(message.eventName) {
            profile.totalPurchases += 1
            if let revenue = Self.decimal(message.properties[tenant.revenueProperty]) { profile.totalRevenue += revenue }
        }
        if message.type == .identify, !message.traits.isEmpty {
            for (key, value) in message.traits { profile.profileData[key] = value }
            profile.dataChanged = true
        }
        // Only a userId the identity rules accept: a blocked one ("anonymous") is no one's id.
        if profile.externalID == nil, let userID = message.userID, let accepted = tenant.identity.identifier(type: "external_id", raw: userID) {
            profile.externalID = accepted.normalized
        }
        if profile.totalPurchases > 0 {
            profile.storedStage = .customer
        }
        profile.updatedAt = now
    }

    /// A new session starts on a `context.sessionId` the profile has not had
    /// (A, B, A is two sessions), or, for an event without one, after
    /// `session_timeout_minutes` of inactivity since the event before it. A
    /// late event (before the profile's latest) is placed among its stored
    /// events: besides its own session it may change whether the event after
    /// it (one without a session id) starts one, so the count does not depend
    /// on arrival order.
    func countSession(_ message: IncomingMessage, _ profile: inout ProfileRecord) throws {
        let sessionID: String? = switch message.context["sessionId"] {
        case .string(let text): text
        case .number(let number): JSONValue.number(number).jsonText()
        default: nil
        }
        let time = message.eventTime
        let timeout = tenant.sessionTimeoutMilliseconds
        defer { profile.lastEventAt = max(profile.lastEventAt ?? time, time) }
        var change: Int64 = 0
        if let sessionID, sessionID != profile.lastSessionID {
            if try !transaction.hasSession(tenant: tenant.tenant, profileID: profile.id, sessionID: sessionID) { change += 1 }
            profile.lastSessionID = sessionID
        }
        guard let last = profile.lastEventAt, time < last else {
            if sessionID == nil, profile.lastEventAt.map({ time - $0 > timeout }) ?? true { change += 1 }
            profile.totalSessions += change
            return
        }
        let (before, after, afterWithoutSessionID) = try transaction.eventTimes(tenant: tenant.tenant, profileID: profile.id, around: time)
        if sessionID == nil, before.map({ time - $0 > timeout }) ?? true { change += 1 }
        if let after, afterWithoutSessionID {
            let startedOne = before.map { after - $0 > timeout } ?? true
            let startsOne = after - time > timeout
            change += (startsOne ? 1 : 0) - (startedOne ? 1 : 0)
        }
        profile.totalSessions = max(1, profile.totalSessions + change)
    }

    /// An exact decimal from a JSON number or a string holding exactly one
    /// ("19.99", not "150abc", "1,5" or "0x10", which Decimal(string:) would
    /// read in part). A number is read through its shortest round-trip text,
    /// so 19.99 stays 19.99.
    static let posix = Locale(identifier: "en_US_POSIX")

    static func decimal(_ value: JSONValue?) -> Decimal? {
        let locale = posix
        switch value {
        case .number(let number) where number.isFinite: return Decimal(string: "\(number)", locale: locale)
        case .string(let text):
            let trimmed = text.trimmingWhitespace()
            guard case .number? = try? JSONParser.parse(trimmed) else { return nil }
            return Decimal(string: trimmed, locale: locale)
        default: return nil
        }
    }
}
