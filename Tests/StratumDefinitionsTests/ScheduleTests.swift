import StratumDefinitions
import Testing

struct ScheduleTests {
    @Test func durationsParseEveryUnit() {
        #expect(TimeSpan(parsing: "500ms")?.milliseconds == 500)
        #expect(TimeSpan(parsing: "15m")?.milliseconds == 900_000)
        #expect(TimeSpan(parsing: "6h")?.milliseconds == 21_600_000)
        #expect(TimeSpan(parsing: "1d")?.milliseconds == 86_400_000)
        #expect(TimeSpan(parsing: "0m") == nil)
        #expect(TimeSpan(parsing: "15 m") == nil)
        #expect(TimeSpan(parsing: "99999999999999999999d") == nil)
    }

    @Test func cronFieldsExpandListsRangesStepsAndNames() throws {
        let cron = try CronExpression(parsing: "*/15 9-17 1,15 JAN-mar mon-fri")
        #expect(cron.minutes == [0, 15, 30, 45])
        #expect(cron.hours == Set(9...17))
        #expect(cron.daysOfMonth == [1, 15])
        #expect(cron.months == [1, 2, 3])
        #expect(cron.daysOfWeek == Set(1...5))
        #expect(try CronExpression(parsing: "0 0 * * 7").daysOfWeek == [0])
        #expect(try CronExpression(parsing: "@hourly").minutes == [0])
        #expect(try CronExpression(parsing: "5/20 * * * *").minutes == [5, 25, 45])
    }

    @Test(arguments: [
        ("* * * *", "a cron expression has 5 fields (minute hour day-of-month month day-of-week), found 4"),
        ("60 * * * *", "60 is out of range for the minute field (0-59)"),
        ("* * 0 * *", "0 is out of range for the day of month field (1-31)"),
        ("* * * 13 *", "13 is out of range for the month field (1-12)"),
        ("* 5-2 * * *", "the range 5-2 in the hour field runs backwards; cron ranges do not wrap around, so write it as two: 5-23,0-2"),
        ("0 9 * * sat-sun", "the range sat-sun in the day of week field runs backwards; cron ranges do not wrap around, so write it as two: sat-7"),
        ("0 9 * * fri-tue", "the range fri-tue in the day of week field runs backwards; cron ranges do not wrap around, so write it as two: fri-7,1-tue"),
        ("0 9 28-3 * *", "the range 28-3 in the day of month field runs backwards; cron ranges do not wrap around, so write it as two: 28-31,1-3"),
        ("*/0 * * * *", "the step in the minute field \"*/0\" must be a positive number"),
        ("* * * * funday", "\"funday\" is not a valid day of week"),
        ("1,,2 * * * *", "empty list item in the minute field \"1,,2\""),
    ])
    func badCronExpressionsSayWhatIsWrong(_ text: String, _ message: String) {
        #expect(throws: CronExpression.ParseError(message: message)) { try CronExpression(parsing: text) }
    }

    @Test func instantsParseDatesAndDateTimesAsUTC() {
        #expect(Instant.parse("1970-01-01") == 0)
        #expect(Instant.parse("2024-01-15T14:32:18Z") == 1_705_329_138)
        #expect(Instant.parse("2024-01-15T16:32:18+02:00") == 1_705_329_138)
        #expect(Instant.parse("2024-01-15T14:32:18.5Z") == 1_705_329_138.5)
        #expect(Instant.parse("2024-02-29") != nil)
        #expect(Instant.parse("2023-02-29") == nil)
        #expect(Instant.parse("2024-13-01") == nil)
        #expect(Instant.parse("2024-01-15T25:00Z") == nil)
        #expect(Instant.parse("yesterday") == nil)
    }
}

struct CronNextFireTests {
    static func instant(_ text: String) -> Int64 { Int64(Instant.parse(text)! * 1000) }

    @Test(arguments: [
        ("*/15 * * * *", "2026-01-01T10:07:30Z", "2026-01-01T10:15:00Z"),
        ("0 * * * *", "2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z"),
        ("30 2 * * *", "2026-01-01T03:00:00Z", "2026-01-02T02:30:00Z"),
        ("0 9 * * mon", "2026-01-01T00:00:00Z", "2026-01-05T09:00:00Z"),
        ("0 0 1 * *", "2026-01-15T00:00:00Z", "2026-02-01T00:00:00Z"),
        ("0 0 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
        ("0 12 13 * fri", "2026-02-01T00:00:00Z", "2026-02-06T12:00:00Z"),
        ("@yearly", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        ("59 23 31 12 *", "2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z"),
        // Day of month or day of week when both are restricted; a field starting with
        // "*" is no restriction (as Vixie cron and cronie read it): odd days that are Mondays.
        ("0 0 1,15 * mon", "2026-11-27T00:00:00Z", "2026-11-30T00:00:00Z"),
        ("0 0 */2 * 1", "2026-11-27T00:00:00Z", "2026-12-07T00:00:00Z"),
    ])
    func nextFireIsTheFirstMatchingMinuteAfter(_ expression: String, _ after: String, _ expected: String) throws {
        #expect(try CronExpression(parsing: expression).next(after: Self.instant(after)) == Self.instant(expected))
    }

    @Test func anImpossibleDateNeverFires() throws {
        #expect(try CronExpression(parsing: "0 0 30 2 *").next(after: Self.instant("2026-01-01T00:00:00Z")) == nil)
    }
}
