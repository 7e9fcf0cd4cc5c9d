import Foundation
import StratumDefinitions
import StratumJSON

/// A Source's tracking plan, enforced on ingestion: each planned event's
/// properties must satisfy its JSON Schema; unplanned events are allowed,
/// logged, or rejected as the plan's `unplanned_events` says.
public struct TrackingPlan: Sendable {
    public let source: String
    public let events: Set<String>
    public let unplanned: SourceDefinition.UnplannedEvents
    /// Each planned event's `required` properties (EMQ completeness).
    public let requiredProperties: [String: [String]]
    let validator: JSONSchemaValidator

    static let baseURI = "stratum:/tracking-plans/"

    public init?(source: SourceDefinition) {
        guard let plan = source.trackingPlan else { return nil }
        var validator = JSONSchemaValidator()
        for (event, schema) in plan.events ?? [:] {
            validator.register(schema, uri: Self.uri(source: source.name, event: event))
        }
        self.source = source.name
        events = Set((plan.events ?? [:]).keys)
        requiredProperties = (plan.events ?? [:]).mapValues { $0["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        unplanned = plan.unplannedEvents ?? .allow
        self.validator = validator
    }

    static func uri(source: String, event: String) -> String {
        baseURI + (source + "/" + event).addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "#?")))!
    }

    /// What the plan says about one message.
    public enum Verdict: Sendable, Equatable {
        case conforms
        /// Accepted but worth a warning (an unplanned event under `warn`).
        case warning(String)
        /// Refused: the message's field path and why.
        case violation(path: String, message: String)
    }

    /// Checks a track message's event name and properties.
    public func check(_ message: IncomingMessage) -> Verdict {
        guard message.type == .track else { return .conforms }
        guard events.contains(message.eventName) else {
            let text = "event \"\(message.eventName)\" is not in the tracking plan of source \(source)"
            switch unplanned {
            case .allow: return .conforms
            case .warn: return .warning(text)
            case .reject:
                let hint = Suggestion.closest(to: message.eventName, in: events).map { " (did you mean \"\($0)\"?)" } ?? ""
                return .violation(path: "event", message: text + hint)
            }
        }
        let violations = validator.validate(.object(message.properties), against: Self.uri(source: source, event: message.eventName))
        guard let first = violations.first else { return .conforms }
        let path = (["properties"] + first.instancePath.tokens).joined(separator: ".")
        let more = violations.count > 1 ? " (and \(violations.count - 1) more)" : ""
        return .violation(path: path, message: first.message + (first.hint.map { "; \($0)" } ?? "") + more)
    }
}
