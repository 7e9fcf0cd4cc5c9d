import Foundation
import StratumJSON
import StratumStore

/// Event Match Quality: how useful an event is for matching and activation,
/// 0...1, with the seed's weights. Each sub-score is documented in the README.
public enum EMQ {
    public struct Score: Sendable, Hashable {
        public var identifierQuality: Double
        public var dataCompleteness: Double
        public var timeliness: Double
        public var contextRichness: Double

        /// 35% identifiers, 25% completeness, 20% timeliness, 20% context.
        public var total: Double {
            let raw = identifierQuality * 0.35 + dataCompleteness * 0.25 + timeliness * 0.20 + contextRichness * 0.20
            return (raw * 10_000).rounded() / 10_000
        }
    }

    /// The context keys that make an event richer (each counts equally).
    static let contextSignals: [[String]] = [
        ["ip"], ["userAgent"], ["locale"], ["page", "url"], ["campaign"], ["device"], ["os"], ["library"],
    ]

    public static func score(_ message: IncomingMessage, identifiers: [ResolvedIdentifier], requiredProperties: [String]?) -> Score {
        Score(
            identifierQuality: identifierQuality(identifiers),
            dataCompleteness: completeness(message, requiredProperties: requiredProperties),
            timeliness: timeliness(delay: message.receivedAt - message.eventTime),
            contextRichness: contextRichness(message.context))
    }

    /// The best identifier's priority / 100, plus 0.1 for each further distinct
    /// type, capped at 1 (external_id alone: 1.0; email: 0.8; anonymous_id: 0.1).
    static func identifierQuality(_ identifiers: [ResolvedIdentifier]) -> Double {
        guard let best = identifiers.map(\.priority).max() else { return 0 }
        let types = Set(identifiers.map(\.type)).count
        return min(1, Double(best) / 100 + 0.1 * Double(types - 1))
    }

    /// With a tracking plan: the share of its required properties present.
    /// Without: thirds for a client timestamp, a client messageId-bearing
    /// payload (non-empty properties or traits) and a non-empty context.
    static func completeness(_ message: IncomingMessage, requiredProperties: [String]?) -> Double {
        if let required = requiredProperties, !required.isEmpty {
            let present = required.filter { message.properties[$0] != nil && message.properties[$0] != .null }.count
            return Double(present) / Double(required.count)
        }
        let checks = [message.clientTimestamped, !message.properties.isEmpty || !message.traits.isEmpty, !message.context.isEmpty]
        return Double(checks.filter { $0 }.count) / Double(checks.count)
    }

    /// 1 when received within a minute of happening, 0 after a day or more,
    /// falling logarithmically between.
    static func timeliness(delay: Milliseconds) -> Double {
        let seconds = Double(max(delay, 0)) / 1000
        if seconds <= 60 { return 1 }
        if seconds >= 86_400 { return 0 }
        return 1 - log(seconds / 60) / log(86_400.0 / 60)
    }

    /// The share of `contextSignals` present in the context.
    static func contextRichness(_ context: JSONObject) -> Double {
        let present = contextSignals.filter { path in
            var value: JSONValue? = .object(context)
            for key in path { value = value?[key] }
            return value != nil && value != .null
        }.count
        return Double(present) / Double(contextSignals.count)
    }
}
