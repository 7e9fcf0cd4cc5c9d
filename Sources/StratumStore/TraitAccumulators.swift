import CSQLite
import Foundation
import GRDB
import StratumDefinitions

/// Where `SegmentQuery.traitEvents` put each trait's columns.
struct TraitEventLayout {
    /// Each trait, the start of its window when narrower than the scan's, and
    /// the column of its property's JSON text (nil: it reads no property).
    var traits: [(trait: TraitDefinition, start: Milliseconds?, property: Int32?)] = []
}

/// A number in a property's JSON text, as SQLite's `json_extract` reads it:
/// an integer when written without fraction or exponent and within 64 bits,
/// else a double.
enum JSONNumber {
    case integer(Int64)
    case real(Double)

    /// Whether valid JSON text is a number (not a string, object, true...).
    static func starts(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = text.first else { return false }
        return first == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first)
    }

    init?(_ text: UnsafeBufferPointer<UInt8>) {
        guard Self.starts(text), let first = text.first else { return nil }
        // Accumulated with the number's sign, so -2^63 fits.
        let negative = first == UInt8(ascii: "-")
        var integer: Int64 = 0
        var isInteger = text.count > (negative ? 1 : 0)
        for byte in text.dropFirst(negative ? 1 : 0) {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { isInteger = false; break }
            let digit = Int64(byte - UInt8(ascii: "0"))
            let (shifted, overflow) = integer.multipliedReportingOverflow(by: 10)
            let (sum, carry) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            guard !overflow, !carry else { isInteger = false; break }
            integer = sum
        }
        if isInteger {
            self = .integer(integer)
        } else if let double = Double(String(decoding: text, as: UTF8.self)) {
            self = .real(double)
        } else {
            return nil
        }
    }

    var databaseValue: DatabaseValue {
        switch self {
        case .integer(let integer): integer.databaseValue
        case .real(let double): double.databaseValue
        }
    }

    var double: Double {
        switch self {
        case .integer(let integer): Double(integer)
        case .real(let double): double
        }
    }

    /// Numeric order (integers compared exactly).
    static func < (a: JSONNumber, b: JSONNumber) -> Bool {
        if case .integer(let x) = a, case .integer(let y) = b { return x < y }
        return a.double < b.double
    }
}

/// The current row of a trait-events statement.
struct TraitEventRow {
    let handle: OpaquePointer

    /// The JSON text in `column`; nil when the property is missing or JSON null.
    func json(_ column: Int32) -> UnsafeBufferPointer<UInt8>? {
        guard let text = sqlite3_column_text(handle, column) else { return nil }
        let bytes = UnsafeBufferPointer(start: text, count: Int(sqlite3_column_bytes(handle, column)))
        return bytes.elementsEqual("null".utf8) ? nil : bytes
    }
}

/// One trait's running aggregate per profile, over the events of its scan.
/// Profiles are numbered slots (`ProfileSlots`).
///
/// The semantics are DESIGN.md's (Rule semantics) and SQLite's for the same
/// aggregate: numbers only in sum, average, minimum and maximum; a profile
/// whose events all fall outside a narrower window gets the fallback.
class TraitAccumulator {
    let start: Milliseconds?
    let property: Int32?
    /// The profile's events inside the trait's window.
    private(set) var events: [Int32] = []

    init(start: Milliseconds?, property: Int32?) {
        self.start = start
        self.property = property
    }

    static func make(_ trait: TraitDefinition, start: Milliseconds?, property: Int32?) -> TraitAccumulator {
        switch trait.type {
        case .count: Count(start: start, property: property)
        case .exists: Exists(start: start, property: property)
        case .sum: Sum(start: start, property: property)
        case .average: Average(start: start, property: property)
        case .min: Extreme(start: start, property: property, largest: false)
        case .max: Extreme(start: start, property: property, largest: true)
        case .uniqueCount: Distinct(start: start, property: property)
        case .first, .last:
            trait.property == nil
                ? Time(start: start, property: property, latest: trait.type == .last)
                : Carrier(start: start, property: property, latest: trait.type == .last)
        }
    }

    /// `count` new profile slots.
    func addSlots(_ count: Int) {
        events.append(contentsOf: repeatElement(0, count: count))
    }

    final func add(_ slot: Int, time: Int64, sequence: Int64, row: TraitEventRow) {
        if let start, time < start { return }
        events[slot] += 1
        accumulate(slot, time: time, sequence: sequence, row: row)
    }

    func accumulate(_ slot: Int, time: Int64, sequence: Int64, row: TraitEventRow) {}

    /// The profile's value; NULL: none (the column's fallback).
    final func value(_ slot: Int) -> DatabaseValue {
        events[slot] > 0 ? result(slot) : .null
    }

    func result(_ slot: Int) -> DatabaseValue {
        Int64(events[slot]).databaseValue
    }

    final class Count: TraitAccumulator {}

    final class Exists: TraitAccumulator {
        override func result(_ slot: Int) -> DatabaseValue { true.databaseValue }
    }

    /// Exact decimal sum; "0" when no event had a number.
    final class Sum: TraitAccumulator {
        private var sums: [DecimalSum] = []
        override func addSlots(_ count: Int) { super.addSlots(count); sums.append(contentsOf: repeatElement(DecimalSum(), count: count)) }
        override func accumulate(_ slot: Int, time: Int64, sequence: Int64, row: TraitEventRow) {
            if let property, let text = row.json(property) { sums[slot].add(number: text) }
        }
        override func result(_ slot: Int) -> DatabaseValue { (sums[slot].text ?? "0").databaseValue }
    }

    /// SQLite's AVG: the numbers' sum as a double over their count.
    final class Average: TraitAccumulator {
        private var sums: [Double] = []
        private var counts: [Int32] = []
        override func addSlots(_ count: Int) {
            super.addSlots(count)
            sums.append(contentsOf: repeatElement(0, count: count))
            counts.append(contentsOf: repeatElement(0, count: count))
        }
        override func accumulate(_ slot: Int, time: Int64, sequence: Int64, row: TraitEventRow) {
            guard let property, let text = row.json(property), let number = JSONNumber(text) else { return }
            sums[slot] += number.double
            counts[slot] += 1
        }
        override func result(_ slot: Int) -> DatabaseValue {
            counts[slot] > 0 ? (sums[slot] / Double(counts[slot])).databaseValue : .null
        }
    }

    /// The smallest or largest number; the first seen of equal ones.
    final class Extreme: TraitAccumulator {
        let largest: Bool
        private var best: [JSONNumber?] = []
        init(start: Milliseconds?, property: Int32?, largest: Bool) {
            self.largest = largest
            super.init(start: start, property: property)
        }
        override func addSlots(_ count: Int) { super.addSlots(count); best.append(contentsOf: repeatElement(nil, count: count)) }
        override func accumulate(_ slot: Int, time: Int64, sequence: Int64, row: TraitEventRow) {
            guard let property, let text = row.json(property), let number = JSONNumber(text) else { return }
            guard let current = best[slot] else { best[slot] = number; return }
            if largest ? current < number : number < current { best[slot] = number }
        }
        override func result(_ slot: Int) -> DatabaseValue { best[slot]?.databaseValue ?? .null }
    }

    /// first/last without a property: the earliest/latest event's instant.
    final class Time: TraitAccumulator {
        let latest: Bool
        private var times: [Int64] = []
        init(start: Milliseconds?, property: Int32?, latest: Bool) {
            self.latest = latest
            super.init(start: start, property: property)
        }
        override func addSlots(_ count: Int) { super.addSlots(count); times.append(contentsOf: repeatElement(latest ? .min : .max, count: count)) }
        override func accumulate(_ slot: Int, time: Int64, sequence: Int64, row: TraitEventRow) {
            times[slot] = latest ? max(times[slot], time) : min(times[slot], time)
        }
        override func result(_ slot: Int) -> DatabaseValue { Instant.format(milliseconds: times[slot]).databaseValue }
    }

    /// first/last of a property: its JSON text in the earliest/latest event
    /// that carries it; events at the same instant in the order stored.
    final class Carrier: TraitAccumulator {
        let latest: Bool
        private var positions: [(time: Int64, sequence: Int64)] = []
        private var values: [String?] = []
        init(start: Milliseconds?, property: Int32?, latest: Bool) {
            self.latest = latest
            super.init(start: start, property: property)
        }
        override func addSlots(_ count: Int) {
            super.addSlots(count)
            positions.append(contentsOf: repeatElement((time: Int64(0), sequence: Int64(0)), count: count))
            values.append(contentsOf: repeatElement(nil, count: count))
        }
        override func accumulate(_ slot: Int, time: Int64, sequence: Int64, row: TraitEventRow) {
            guard let property else { return }
            if values[slot] != nil, ((time, sequence) > positions[slot]) != latest { return }
            guard let json = row.json(property) else { return }
            positions[slot] = (time, sequence)
            values[slot] = String(decoding: json, as: UTF8.self)
        }
        override func result(_ slot: Int) -> DatabaseValue { values[slot]?.databaseValue ?? .null }
    }

    /// Distinct values: numbers by value (1 and 1.0 are one), anything else
    /// by its JSON text ("1" and true are not 1); JSON null is none.
    final class Distinct: TraitAccumulator {
        enum Key: Hashable {
            case integer(Int64)
            case real(Double)
            case text(String)
        }
        private var sets: [Set<Key>] = []
        override func addSlots(_ count: Int) { super.addSlots(count); sets.append(contentsOf: repeatElement([], count: count)) }
        override func accumulate(_ slot: Int, time: Int64, sequence: Int64, row: TraitEventRow) {
            guard let property, let json = row.json(property) else { return }
            switch JSONNumber(json) {
            case .integer(let integer): sets[slot].insert(.integer(integer))
            case .real(let double): sets[slot].insert(Int64(exactly: double).map(Key.integer) ?? .real(double))
            case nil: sets[slot].insert(.text(String(decoding: json, as: UTF8.self)))
            }
        }
        override func result(_ slot: Int) -> DatabaseValue { Int64(sets[slot].count).databaseValue }
    }
}

/// Profile ids in SQLite's order (BINARY: their UTF-8 bytes), compared with
/// `memcmp`: the generic `utf8.lexicographicallyPrecedes` cost seconds when
/// sorting a million ids.
enum ProfileOrder {
    static func precedes(_ a: String, _ b: String) -> Bool {
        compare(a, b) < 0
    }

    static func equal(_ a: String, _ b: String) -> Bool {
        compare(a, b) == 0
    }

    /// Negative, zero or positive as `a` sorts before, with or after `b`.
    static func compare(_ a: String, _ b: String) -> Int {
        var (a, b) = (a, b)
        return a.withUTF8 { x in
            b.withUTF8 { y in
                let common = min(x.count, y.count)
                if common > 0 {
                    let order = memcmp(x.baseAddress!, y.baseAddress!, common)
                    if order != 0 { return Int(order) }
                }
                return x.count - y.count
            }
        }
    }
}

/// A tenant's profile ids numbered in SQLite's order, read once for all the
/// passes of a refresh: each pass keeps its aggregates in arrays indexed by
/// these numbers and hands its values over in id order by walking them, with
/// no sort and no scattered reads.
public final class ProfileSlots: Sendable {
    let ids: [String]
    let numbers: [String: Int32]

    init(ids: [String]) {
        self.ids = ids
        var numbers: [String: Int32] = [:]
        numbers.reserveCapacity(ids.count)
        for (number, id) in ids.enumerated() { numbers[id] = Int32(number) }
        self.numbers = numbers
    }
}

/// One pass's slots: the shared ones, then profiles created since they were
/// read, numbered after them.
struct SlotAssignment {
    let shared: ProfileSlots
    private var extra: [String: Int] = [:]
    private var extraIDs: [String] = []

    init(_ shared: ProfileSlots) {
        self.shared = shared
    }

    var count: Int { shared.ids.count + extraIDs.count }

    /// The profile's slot, and whether it is new (one more slot).
    mutating func slot(_ id: String) -> (slot: Int, isNew: Bool) {
        if let number = shared.numbers[id] { return (Int(number), false) }
        if let number = extra[id] { return (number, false) }
        let number = count
        extra[id] = number
        extraIDs.append(id)
        return (number, true)
    }

    func id(_ slot: Int) -> String {
        slot < shared.ids.count ? shared.ids[slot] : extraIDs[slot - shared.ids.count]
    }

    /// Every slot, in profile id order.
    func inOrder() -> [Int] {
        let late = extraIDs.indices.sorted { ProfileOrder.precedes(extraIDs[$0], extraIDs[$1]) }.map { $0 + shared.ids.count }
        guard !late.isEmpty else { return Array(shared.ids.indices) }
        var order: [Int] = []
        order.reserveCapacity(count)
        var next = late.startIndex
        for slot in shared.ids.indices {
            while next < late.endIndex, ProfileOrder.precedes(id(late[next]), shared.ids[slot]) {
                order.append(late[next])
                next += 1
            }
            order.append(slot)
        }
        order.append(contentsOf: late[next...])
        return order
    }
}
