import Foundation
import StratumDefinitions
import StratumJSON
import StratumStore

/// One Segment-spec message, validated and normalised, ready for the pipeline.
public struct IncomingMessage: Sendable {
    public var type: MessageType
    public var messageID: String
    public var userID: String?
    public var anonymousID: String?
    public var previousID: String?
    public var groupID: String?
    /// The event name: `event` for track, else the type (`page`, `identify`, ...).
    public var eventName: String
    public var properties: JSONObject
    public var traits: JSONObject
    public var context: JSONObject
    /// When it happened, corrected for client clock skew.
    public var eventTime: Milliseconds
    public var receivedAt: Milliseconds
    /// Whether the client sent any timestamp at all (for EMQ).
    public var clientTimestamped: Bool
}

/// A message that cannot be accepted, with the field path that is wrong.
public struct MessageError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `userId`, `batch[3].event`, ...
    public var path: String
    public var message: String
    public var description: String { path.isEmpty ? message : "\(path): \(message)" }

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
}

/// Parses Segment HTTP Tracking API messages.
public enum MessageParser {
    /// A single message may be at most 32 KB (Segment's limit).
    public static let maximumMessageBytes = 32 * 1024
    /// A batch request may be at most 500 KB.
    public static let maximumBatchBytes = 500 * 1024
    /// At most this many messages in one batch.
    public static let maximumBatchMessages = 2_500

    /// Parses one message of `type` (nil: taken from the message's `type`).
    ///
    /// - Parameters:
    ///   - batchContext: the batch's `context`, merged under the message's own.
    ///   - batchSentAt: the batch's `sentAt`, used when the message has none.
    ///   - newMessageID: supplies a `messageId` when the message has none.
    public static func parse(
        _ value: JSONValue, type fixedType: MessageType?, path: String, receivedAt: Milliseconds,
        batchContext: JSONObject? = nil, batchSentAt: Milliseconds? = nil, newMessageID: () -> String
    ) throws(MessageError) -> IncomingMessage {
        func field(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }
        guard case .object(let object) = value else {
            throw MessageError(path: path, message: "expected a JSON object, found \(value.briefDescription)")
        }
        let type: MessageType
        if let fixedType {
            type = fixedType
        } else {
            guard let text = object["type"]?.stringValue else {
                throw MessageError(path: field("type"), message: "missing; expected one of track, identify, page, screen, group, alias")
            }
            guard let parsed = MessageType(rawValue: text) else {
                let hint = Suggestion.closest(to: text, in: MessageType.allCases.map(\.rawValue)).map { " (did you mean \"\($0)\"?)" } ?? ""
                throw MessageError(path: field("type"), message: "\"\(text)\" is not a message type; expected track, identify, page, screen, group or alias\(hint)")
            }
            type = parsed
        }
        let userID = try identifierField(object, "userId", field("userId"))
        let anonymousID = try identifierField(object, "anonymousId", field("anonymousId"))
        if userID == nil && anonymousID == nil {
            throw MessageError(path: field("userId"), message: "userId or anonymousId is required")
        }
        var properties = try objectField(object, "properties", field("properties"))
        let traits = try objectField(object, "traits", field("traits"))
        let context = Self.merged(batchContext ?? JSONObject(), with: try objectField(object, "context", field("context")))

        var eventName = type.rawValue
        var previousID: String?
        var groupID: String?
        switch type {
        case .track:
            guard let event = object["event"] else { throw MessageError(path: field("event"), message: "required for track") }
            guard let name = event.stringValue, !name.trimmingWhitespace().isEmpty else {
                throw MessageError(path: field("event"), message: "expected a non-empty string, found \(event.briefDescription)")
            }
            guard name.count <= 200 else { throw MessageError(path: field("event"), message: "longer than 200 characters") }
            eventName = name
        case .page, .screen:
            // Stored under the event name "page"/"screen" (so traits can count them);
            // the page's own name goes into properties.name, as in Segment's warehouses.
            if let name = object["name"]?.stringValue, !name.isEmpty, properties["name"] == nil { properties["name"] = .string(name) }
        case .alias:
            guard let previous = try identifierField(object, "previousId", field("previousId")) else {
                throw MessageError(path: field("previousId"), message: "required for alias")
            }
            guard userID != nil else { throw MessageError(path: field("userId"), message: "required for alias") }
            previousID = previous
        case .group:
            guard let group = try identifierField(object, "groupId", field("groupId")) else {
                throw MessageError(path: field("groupId"), message: "required for group")
            }
            groupID = group
        case .identify:
            break
        }

        let messageID: String
        if let given = object["messageId"] {
            // Trimmed before it is checked: " " and "  " would otherwise both become
            // the empty key, and every later blank id a duplicate of the first.
            if let number = given.numberValue { try exactInteger(number, field("messageId")) }
            guard let text = (given.stringValue ?? given.numberValue.map({ JSONValue.number($0).jsonText() }))?.trimmingWhitespace(),
                  !text.isEmpty else {
                throw MessageError(path: field("messageId"), message: "expected a non-empty string, found \(given.briefDescription); omit it to have one assigned")
            }
            guard text.utf8.count <= 200 else { throw MessageError(path: field("messageId"), message: "longer than 200 bytes") }
            messageID = text
        } else {
            messageID = newMessageID()
        }

        let timestamp = try instantField(object, "timestamp", field("timestamp"))
        let originalTimestamp = try instantField(object, "originalTimestamp", field("originalTimestamp"))
        let sentAt = try instantField(object, "sentAt", field("sentAt")) ?? batchSentAt
        let clientTime = originalTimestamp ?? timestamp
        let eventTime: Milliseconds
        if let sentAt, let clientTime {
            // Segment's clock-skew correction: the client's clock is off by (sentAt - receivedAt).
            eventTime = receivedAt - (sentAt - clientTime)
            // Dates far apart (year 1 sent in year 9999) correct to no calendar date.
            guard (Self.earliestInstant...Self.latestInstant).contains(eventTime) else {
                throw MessageError(path: field(object["sentAt"] != nil ? "sentAt" : "timestamp"),
                                   message: "the clock-skew correction receivedAt − (sentAt − timestamp) falls outside years 0001–9999; check sentAt and the timestamp")
            }
        } else {
            eventTime = clientTime ?? receivedAt
            // A date that rounds past 9999-12-31T23:59:59.999Z, or year 0000, names no stored date.
            guard (Self.earliestInstant...Self.latestInstant).contains(eventTime) else {
                throw MessageError(path: field(originalTimestamp != nil ? "originalTimestamp" : "timestamp"), message: "falls outside years 0001–9999")
            }
        }

        return IncomingMessage(
            type: type, messageID: messageID, userID: userID, anonymousID: anonymousID, previousID: previousID,
            groupID: groupID, eventName: eventName, properties: properties, traits: traits, context: context,
            eventTime: eventTime, receivedAt: receivedAt, clientTimestamped: clientTime != nil)
    }

    /// A string identifier; numbers are accepted and written as text.
    static func identifierField(_ object: JSONObject, _ key: String, _ path: String) throws(MessageError) -> String? {
        guard let value = object[key], value != .null else { return nil }
        let text: String
        switch value {
        case .string(let string): text = string
        case .number(let number):
            try exactInteger(number, path)
            text = JSONValue.number(number).jsonText()
        default: throw MessageError(path: path, message: "expected a string, found \(value.briefDescription)")
        }
        let trimmed = text.trimmingWhitespaceAndNewlines()
        if trimmed.isEmpty { return nil }
        guard trimmed.utf8.count <= 500 else { throw MessageError(path: path, message: "longer than 500 bytes") }
        return trimmed
    }

    /// Refuses a numeric id at or beyond 2^53: JSON numbers are read as
    /// doubles, which past that no longer hold every integer, so two ids
    /// (9007199254740993 and 9007199254740992) would become one.
    static func exactInteger(_ number: Double, _ path: String) throws(MessageError) {
        guard number.magnitude < 9_007_199_254_740_992 else {
            throw MessageError(path: path, message: "is a number too large to keep exactly (2^53 or more); send it as a string")
        }
    }

    /// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the instants a stored date can name.
    static let earliestInstant: Milliseconds = -62_135_596_800_000
    static let latestInstant: Milliseconds = 253_402_300_799_999

    /// The batch's context with an item's merged in, object members merged
    /// recursively and the item's values winning: a batch-wide
    /// `context.device.id` survives an item's `context.device.type`.
    static func merged(_ base: JSONObject, with item: JSONObject) -> JSONObject {
        var result = base
        for (key, value) in item {
            if case .object(let inner) = value, case .object(let outer)? = result[key] {
                result[key] = .object(merged(outer, with: inner))
            } else {
                result[key] = value
            }
        }
        return result
    }

    static func objectField(_ object: JSONObject, _ key: String, _ path: String) throws(MessageError) -> JSONObject {
        guard let value = object[key], value != .null else { return JSONObject() }
        guard case .object(let member) = value else {
            throw MessageError(path: path, message: "expected an object, found \(value.briefDescription)")
        }
        return member
    }

    static func instantField(_ object: JSONObject, _ key: String, _ path: String) throws(MessageError) -> Milliseconds? {
        guard let value = object[key], value != .null else { return nil }
        guard let text = value.stringValue, let seconds = Instant.parse(text) else {
            throw MessageError(path: path, message: "expected an ISO-8601 date-time like 2024-01-15T14:32:18.000Z, found \(value.briefDescription)")
        }
        return Milliseconds((seconds * 1000).rounded())
    }

    /// Parses a `/v1/batch` body: `{batch: [...], context?, sentAt?}`, into
    /// each item's message or the reason that item is refused. What is wrong
    /// with the batch as a whole (no `batch` array, a bad batch `context` or
    /// `sentAt`) throws.
    ///
    /// `bodySize` is the request's size in bytes: when it is within the
    /// per-message limit no item can exceed it, and items are not re-measured.
    public static func parseBatch(_ value: JSONValue, receivedAt: Milliseconds, bodySize: Int = .max, newMessageID: () -> String) throws(MessageError) -> [Result<IncomingMessage, MessageError>] {
        guard case .object(let object) = value else { throw MessageError(path: "", message: "expected a JSON object with a batch array") }
        guard let batch = object["batch"] else { throw MessageError(path: "batch", message: "required") }
        guard case .array(let items) = batch else { throw MessageError(path: "batch", message: "expected an array, found \(batch.briefDescription)") }
        guard !items.isEmpty else { throw MessageError(path: "batch", message: "is empty") }
        guard items.count <= maximumBatchMessages else {
            throw MessageError(path: "batch", message: "has \(items.count) messages; at most \(maximumBatchMessages) per batch")
        }
        let context = try objectField(object, "context", "context")
        let sentAt = try instantField(object, "sentAt", "sentAt")
        return items.enumerated().map { index, item in
            if bodySize > maximumMessageBytes {
                let size = item.compactByteCount
                if size > maximumMessageBytes {
                    return .failure(MessageError(path: "batch[\(index)]", message: "is \(size) bytes; a message may be at most \(maximumMessageBytes) bytes (32 KB)"))
                }
            }
            return Result { () throws(MessageError) in
                try parse(item, type: nil, path: "batch[\(index)]", receivedAt: receivedAt, batchContext: context.isEmpty ? nil : context, batchSentAt: sentAt, newMessageID: newMessageID)
            }
        }
    }
}
