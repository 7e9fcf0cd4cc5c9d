import Foundation

/// A parsed duration such as `15m`, `6h`, `500ms`.
public struct TimeSpan: Sendable, Hashable {
    public var milliseconds: Int

    /// Parses `<positive integer><ms|s|m|h|d>`; nil when malformed or overflowing.
    public init?(parsing text: String) {
        let units: [(String, Int)] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, factor) in units.sorted(by: { $0.0.count > $1.0.count }) where text.hasSuffix(suffix) {
            guard let count = Int(text.dropLast(suffix.count)), count > 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: factor)
            guard !overflow else { return nil }
            milliseconds = product
            return
        }
        return nil
    }

    public var seconds: Double { Double(milliseconds) / 1000 }
}

/// A 5-field cron expression (minute hour day-of-month month day-of-week, UTC),
/// with lists, ranges, steps, month/day names and the @hourly-style macros.
public struct CronExpression: Sendable, Hashable {
    public var minutes: Set<Int>
    public var hours: Set<Int>
    public var daysOfMonth: Set<Int>
    public var months: Set<Int>
    /// 0 = Sunday ... 6 = Saturday (7 is accepted and means Sunday).
    public var daysOfWeek: Set<Int>
    /// Whether the day-of-month and day-of-week fields do not start with "*"
    /// (cron ORs the two only when both do not; otherwise it ANDs them).
    public var daysOfMonthRestricted: Bool
    public var daysOfWeekRestricted: Bool

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }

        public init(message: String) { self.message = message }
    }

    static let macros = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]
    static let fieldNames = ["minute", "hour", "day of month", "month", "day of week"]
    static let bounds = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    public init(parsing text: String) throws(ParseError) {
        let expanded = Self.macros[text.trimmingCharacters(in: .whitespaces).lowercased()] ?? text
        let fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw ParseError(message: "a cron expression has 5 fields (minute hour day-of-month month day-of-week), found \(fields.count)")
        }
        var sets: [Set<Int>] = []
        for (index, field) in fields.enumerated() {
            sets.append(try Self.parseField(field, index: index))
        }
        minutes = sets[0]
        hours = sets[1]
        daysOfMonth = sets[2]
        months = sets[3]
        daysOfWeek = Set(sets[4].map { $0 == 7 ? 0 : $0 })
        // As cron (Vixie, cronie) decides it: the two day fields are ORed only when
        // neither starts with "*", so "0 0 */2 * 1" is the odd days that are Mondays.
        daysOfMonthRestricted = !fields[2].hasPrefix("*")
        daysOfWeekRestricted = !fields[4].hasPrefix("*")
    }

    static func parseField(_ field: String, index: Int) throws(ParseError) -> Set<Int> {
        let (low, high) = bounds[index]
        let name = fieldNames[index]
        var values: Set<Int> = []
        for part in field.split(separator: ",", omittingEmptySubsequences: false) {
            guard !part.isEmpty else { throw ParseError(message: "empty list item in the \(name) field \"\(field)\"") }
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw ParseError(message: "more than one / in the \(name) field \"\(part)\"") }
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), parsed > 0 else {
                    throw ParseError(message: "the step in the \(name) field \"\(part)\" must be a positive number")
                }
                step = parsed
            }
            let range = pieces[0]
            var start: Int
            var end: Int
            if range == "*" {
                start = low
                end = high
            } else {
                let ends = range.split(separator: "-", omittingEmptySubsequences: false)
                guard ends.count <= 2 else { throw ParseError(message: "invalid range \"\(range)\" in the \(name) field") }
                start = try value(String(ends[0]), index: index)
                end = ends.count == 2 ? try value(String(ends[1]), index: index) : (pieces.count == 2 ? high : start)
                guard start <= end else {
                    // 22-2 meant 22:00 to 02:00 (sat-sun: the weekend): cron ranges do not wrap, so it
                    // is two ranges; swapping the ends would mean the opposite.
                    let wrapped: String
                    if ends.count != 2 {
                        wrapped = String(range)
                    } else if high == 7 {
                        // Day of week: 7 is Sunday as 0 is.
                        wrapped = end == 0 ? "\(ends[0])-7" : "\(ends[0])-7,1-\(ends[1])"
                    } else {
                        wrapped = "\(ends[0])-\(high),\(low)-\(ends[1])"
                    }
                    throw ParseError(message: "the range \(range) in the \(name) field runs backwards; cron ranges do not wrap around, so write it as two: \(wrapped)")
                }
            }
            values.formUnion(stride(from: start, through: end, by: step))
        }
        return values
    }

    /// The first instant strictly after `after` (milliseconds since the epoch,
    /// UTC) that the expression selects, or nil when none falls within the
    /// next five years (e.g. `0 0 30 2 *`). Day of month and day of week are
    /// ORed when neither field starts with "*", else ANDed, as cron does.
    public func next(after: Int64) -> Int64? {
        var minute = (after / 60_000) + 1
        let limit = minute + 5 * 366 * 1_440
        while minute < limit {
            let days = minute / 1_440
            let (year, month, day) = Instant.civil(fromDays: days)
            let weekday = Int(((days % 7) + 11) % 7)
            if !months.contains(month) {
                let (nextYear, nextMonth) = month == 12 ? (year + 1, 1) : (year, month + 1)
                minute = Int64(Instant.daysFromCivil(year: nextYear, month: nextMonth, day: 1)) * 1_440
                continue
            }
            let dayMatches = daysOfMonthRestricted && daysOfWeekRestricted
                ? daysOfMonth.contains(day) || daysOfWeek.contains(weekday)
                : daysOfMonth.contains(day) && daysOfWeek.contains(weekday)
            if !dayMatches {
                minute = (days + 1) * 1_440
                continue
            }
            let minuteOfDay = Int(minute % 1_440)
            if !hours.contains(minuteOfDay / 60) {
                minute = days * 1_440 + Int64(minuteOfDay / 60 + 1) * 60
                continue
            }
            if !minutes.contains(minuteOfDay % 60) {
                minute += 1
                continue
            }
            return minute * 60_000
        }
        return nil
    }

    static func value(_ text: String, index: Int) throws(ParseError) -> Int {
        let (low, high) = bounds[index]
        let name = fieldNames[index]
        let lowered = text.lowercased()
        if index == 3, let month = monthNames.firstIndex(of: lowered) { return month + 1 }
        if index == 4, let day = dayNames.firstIndex(of: lowered) { return day }
        guard let number = Int(text) else { throw ParseError(message: "\"\(text)\" is not a valid \(name)") }
        guard number >= low && number <= high else {
            throw ParseError(message: "\(number) is out of range for the \(name) field (\(low)-\(high))")
        }
        return number
    }
}
