import StratumDefinitions
import Testing

/// Patterns that backtrack exponentially are told from those that do not.
struct PatternSafetyTests {
    @Test(arguments: [
        ("^(a+)+$", "(a+)+"),
        ("^(a|aa)+$", "(a|aa)+"),
        ("(x+x+)+y", "(x+x+)+"),
        (#"^(\w+\s?)*$"#, #"(\w+\s?)*"#),
        ("((ab)*c)+", "((ab)*c)+"),
        ("(a{2,})+", "(a{2,})+"),
        ("(?:[a-z]+\\.)*x", "(?:[a-z]+\\.)*"),
        ("^((a+))+$", "((a+))+"),
    ])
    func nestedRepetitionIsFound(_ pattern: String, _ group: String) {
        #expect(PatternSafety.nestedRepetition(in: pattern) == group)
    }

    @Test(arguments: [
        "^[0-]*$", "^(test|demo)@", "(ab)+", #"^\d{3}-\d{4}$"#, "^(a){3}$", "[(a+)]+", #"\(a+\)+"#, "^(-1|null|undefined)$",
        "(a{1})+", "(a{0,1})+", "^(.)$",
    ])
    func linearPatternsPass(_ pattern: String) {
        #expect(PatternSafety.nestedRepetition(in: pattern) == nil)
    }
}
