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

    /// Numeric order, exact between an integer and a double too (as SQLite
    /// compares them): 2^53 + 1 is more than the double 2^53.
    static func < (a: JSONNumber, b: JSONNumber) -> Bool {
        switch (a, b) {
        case (.integer(let x), .integer(let y)): x < y
        case (.real(let x), .real(let y)): x < y
        case (.integer(let x), .real(let y)): compare(x, y) < 0
        case (.real(let x), .integer(let y)): compare(y, x) > 0
        }
    }

    /// Negative, zero or positive as `integer` is below, equal to or above `real`.
    static func compare(_ integer: Int64, _ real: Double) -> Int {
        if real.isNaN { return 1 }
        if real >= 9_223_372_036_854_775_808.0 { return -1 }
        if real < -9_223_372_036_854_775_808.0 { return 1 }
        let truncated = Int64(real.rounded(.towardZero))
        if integer != truncated { return integer < truncated ? -1 : 1 }
        let fraction = real - Double(truncated)
        return fraction > 0 ? -1 : fraction < 0 ? 1 : 0
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

/// Every accumulator's state for every profile of a pass, profile-major:
/// one row of `stride` bytes per profile with events in the pass, each
/// accumulator at its own offset. A pass reads events in time order, so consecutive events belong
/// to unrelated profiles: with each profile's state together, an event costs
/// a cache miss or two rather than two for every trait of the pass. State is
/// plain bytes (no references), and all zeros is the empty state.
final class AccumulatorTable {
    let stride: Int
    private(set) var rows = 0
    private var capacity = 0
    private var base: UnsafeMutableRawPointer

    /// Lays `accumulators` out in rows; `rows` of them to start with.
    init(_ accumulators: [TraitAccumulator], rows: Int) {
        var offset = 0
        for accumulator in accumulators {
            accumulator.offset = offset
            offset += accumulator.size
        }
        stride = max(offset, 16)
        base = UnsafeMutableRawPointer.allocate(byteCount: stride, alignment: 16)
        grow(to: rows)
    }

    deinit { base.deallocate() }

    /// At least `count` rows, the new ones empty.
    func grow(to count: Int) {
        guard count > rows else { return }
        if count > capacity {
            let larger = max(count, capacity * 2, 1024)
            let moved = UnsafeMutableRawPointer.allocate(byteCount: larger * stride, alignment: 16)
            moved.copyMemory(from: base, byteCount: rows * stride)
            base.deallocate()
            (base, capacity) = (moved, larger)
        }
        (base + rows * stride).initializeMemory(as: UInt8.self, repeating: 0, count: (count - rows) * stride)
        rows = count
    }

    func row(_ slot: Int) -> UnsafeMutableRawPointer {
        base + slot * stride
    }
}

/// One trait's running aggregate per profile, over the events of its scan,
/// kept in an `AccumulatorTable` row. Its state starts with the number of
/// the profile's events in the trait's window (an Int32).
///
/// The semantics are DESIGN.md's (Rule semantics) and SQLite's for the same
/// aggregate: numbers only in sum, average, minimum and maximum; a profile
/// whose events all fall outside a narrower window gets the fallback.
class TraitAccumulator {
    let start: Milliseconds?
    let property: Int32?
    /// Where this accumulator's state is in a row; set by the table.
    fileprivate(set) var offset = 0
    /// Bytes of state per profile, a multiple of 16.
    var size: Int { 16 }

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

    final func add(_ row: UnsafeMutableRawPointer, time: Int64, sequence: Int64, event: TraitEventRow) {
        if let start, time < start { return }
        let state = row + offset
        let events = state.load(as: Int32.self) + 1
        state.storeBytes(of: events, as: Int32.self)
        accumulate(state, first: events == 1, time: time, sequence: sequence, event: event)
    }

    func accumulate(_ state: UnsafeMutableRawPointer, first: Bool, time: Int64, sequence: Int64, event: TraitEventRow) {}

    /// The profile's value; NULL: none (the column's fallback).
    final func value(_ row: UnsafeMutableRawPointer) -> DatabaseValue {
        let state = row + offset
        return state.load(as: Int32.self) > 0 ? result(state) : .null
    }

    func result(_ state: UnsafeMutableRawPointer) -> DatabaseValue {
        Int64(state.load(as: Int32.self)).databaseValue
    }

    final class Count: TraitAccumulator {}

    final class Exists: TraitAccumulator {
        override func result(_ state: UnsafeMutableRawPointer) -> DatabaseValue { true.databaseValue }
    }

    /// Exact decimal sum; "0" when no event had a number.
    final class Sum: TraitAccumulator {
        private var overflows: [Decimal] = []
        override var size: Int { 16 + MemoryLayout<DecimalSum>.stride }
        override func accumulate(_ state: UnsafeMutableRawPointer, first: Bool, time: Int64, sequence: Int64, event: TraitEventRow) {
            guard let property, let text = event.json(property) else { return }
            var sum = (state + 16).load(as: DecimalSum.self)
            sum.add(number: text, overflows: &overflows)
            (state + 16).storeBytes(of: sum, as: DecimalSum.self)
        }
        override func result(_ state: UnsafeMutableRawPointer) -> DatabaseValue {
            ((state + 16).load(as: DecimalSum.self).text(overflows: overflows) ?? "0").databaseValue
        }
    }

    /// SQLite's AVG: the numbers' sum as a double over their count.
    final class Average: TraitAccumulator {
        override func accumulate(_ state: UnsafeMutableRawPointer, first: Bool, time: Int64, sequence: Int64, event: TraitEventRow) {
            guard let property, let text = event.json(property), let number = JSONNumber(text) else { return }
            (state + 4).storeBytes(of: (state + 4).load(as: Int32.self) + 1, as: Int32.self)
            (state + 8).storeBytes(of: (state + 8).load(as: Double.self) + number.double, as: Double.self)
        }
        override func result(_ state: UnsafeMutableRawPointer) -> DatabaseValue {
            let count = (state + 4).load(as: Int32.self)
            return count > 0 ? ((state + 8).load(as: Double.self) / Double(count)).databaseValue : .null
        }
    }

    /// The smallest or largest number; the first seen of equal ones.
    final class Extreme: TraitAccumulator {
        let largest: Bool
        init(start: Milliseconds?, property: Int32?, largest: Bool) {
            self.largest = largest
            super.init(start: start, property: property)
        }
        /// Byte 4: 0 none, 1 an integer, 2 a double; bytes 8-15 its bits.
        static func load(_ state: UnsafeMutableRawPointer) -> JSONNumber? {
            switch (state + 4).load(as: UInt8.self) {
            case 1: .integer((state + 8).load(as: Int64.self))
            case 2: .real((state + 8).load(as: Double.self))
            default: nil
            }
        }
        override func accumulate(_ state: UnsafeMutableRawPointer, first: Bool, time: Int64, sequence: Int64, event: TraitEventRow) {
            guard let property, let text = event.json(property), let number = JSONNumber(text) else { return }
            if let current = Self.load(state), !(largest ? current < number : number < current) { return }
            switch number {
            case .integer(let integer):
                (state + 4).storeBytes(of: 1, as: UInt8.self)
                (state + 8).storeBytes(of: integer, as: Int64.self)
            case .real(let double):
                (state + 4).storeBytes(of: 2, as: UInt8.self)
                (state + 8).storeBytes(of: double, as: Double.self)
            }
        }
        override func result(_ state: UnsafeMutableRawPointer) -> DatabaseValue { Self.load(state)?.databaseValue ?? .null }
    }

    /// first/last without a property: the earliest/latest event's instant.
    final class Time: TraitAccumulator {
        let latest: Bool
        init(start: Milliseconds?, property: Int32?, latest: Bool) {
            self.latest = latest
            super.init(start: start, property: property)
        }
        override func accumulate(_ state: UnsafeMutableRawPointer, first: Bool, time: Int64, sequence: Int64, event: TraitEventRow) {
            let current = (state + 8).load(as: Int64.self)
            if first || (latest ? time > current : time < current) { (state + 8).storeBytes(of: time, as: Int64.self) }
        }
        override func result(_ state: UnsafeMutableRawPointer) -> DatabaseValue {
            Instant.format(milliseconds: (state + 8).load(as: Int64.self)).databaseValue
        }
    }

    /// first/last of a property: its JSON text in the earliest/latest event
    /// that carries it; events at the same instant in the order stored.
    /// Texts go to `texts` back to back; the state holds where.
    final class Carrier: TraitAccumulator {
        let latest: Bool
        private var texts: [UInt8] = []
        init(start: Milliseconds?, property: Int32?, latest: Bool) {
            self.latest = latest
            super.init(start: start, property: property)
        }
        /// Bytes 4-7 the text's length (0: none yet), 8 the time, 16 the seq,
        /// 24 the text's offset, 32-35 the room it has there: a later text
        /// that fits is written over it, so the arena grows with the values
        /// kept, not with every event read.
        override var size: Int { 48 }
        override func accumulate(_ state: UnsafeMutableRawPointer, first: Bool, time: Int64, sequence: Int64, event: TraitEventRow) {
            guard let property else { return }
            if (state + 4).load(as: UInt32.self) > 0 {
                let position = ((state + 8).load(as: Int64.self), (state + 16).load(as: Int64.self))
                if ((time, sequence) > position) != latest { return }
            }
            guard let json = event.json(property) else { return }
            (state + 4).storeBytes(of: UInt32(json.count), as: UInt32.self)
            (state + 8).storeBytes(of: time, as: Int64.self)
            (state + 16).storeBytes(of: sequence, as: Int64.self)
            if json.count <= Int((state + 32).load(as: UInt32.self)) {
                let offset = Int((state + 24).load(as: Int64.self))
                texts.withUnsafeMutableBufferPointer { texts in _ = UnsafeMutableBufferPointer(rebasing: texts[offset..<offset + json.count]).initialize(from: json) }
            } else {
                (state + 24).storeBytes(of: Int64(texts.count), as: Int64.self)
                (state + 32).storeBytes(of: UInt32(json.count), as: UInt32.self)
                texts.append(contentsOf: json)
            }
        }
        override func result(_ state: UnsafeMutableRawPointer) -> DatabaseValue {
            let length = Int((state + 4).load(as: UInt32.self))
            guard length > 0 else { return .null }
            let offset = Int((state + 24).load(as: Int64.self))
            return String(decoding: texts[offset..<offset + length], as: UTF8.self).databaseValue
        }
    }

    /// Distinct values: numbers by value (1 and 1.0 are one), anything else
    /// by its JSON text ("1" and true are not 1); JSON null is none.
    final class Distinct: TraitAccumulator {
        enum Key: Hashable {
            case integer(Int64)
            case real(Double)
            case text(String)
        }
        /// The state's bytes 4-7: 1 + the profile's set here (0: none yet).
        private var sets: [Set<Key>] = []
        override func accumulate(_ state: UnsafeMutableRawPointer, first: Bool, time: Int64, sequence: Int64, event: TraitEventRow) {
            guard let property, let json = event.json(property) else { return }
            var index = Int((state + 4).load(as: Int32.self)) - 1
            if index < 0 {
                sets.append([])
                index = sets.count - 1
                (state + 4).storeBytes(of: Int32(sets.count), as: Int32.self)
            }
            switch JSONNumber(json) {
            case .integer(let integer): sets[index].insert(.integer(integer))
            case .real(let double): sets[index].insert(Int64(exactly: double).map(Key.integer) ?? .real(double))
            case nil: sets[index].insert(.text(String(decoding: json, as: UTF8.self)))
            }
        }
        override func result(_ state: UnsafeMutableRawPointer) -> DatabaseValue {
            let index = Int((state + 4).load(as: Int32.self)) - 1
            return Int64(index < 0 ? 0 : sets[index].count).databaseValue
        }
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
