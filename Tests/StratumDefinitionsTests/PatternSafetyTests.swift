import StratumDefinitions
import Testing

/// Patterns that backtrack exponentially are told from those that do not.
struct PatternSafetyTests {
    @Test(arguments: [
        ("^(a+)+$", "(a+)+"),
        ("^(a|aa)+$", "(a|aa)+"),
        ("(x+x+)+y", "(x+x+)+"),
        (#"^(\w+\s?)*$"#, #"(\w+\s?)*"#),
        ("(a{2,})+", "(a{2,})+"),
        ("^(a?a)+$", "(a?a)+"),
        (#"^(\d?\d)+$"#, #"(\d?\d)+"#),
        ("(?:[a-z]+.)*x", "(?:[a-z]+.)*"),
        ("^((a+))+$", "((a+))+"),
        ("^([a-z]+[a-z])+$", "([a-z]+[a-z])+"),
        ("^(a+){2,}$", "(a+){2,}"),
    ])
    func nestedRepetitionIsFound(_ pattern: String, _ group: String) {
        #expect(PatternSafety.nestedRepetition(in: pattern) == group)
    }

    @Test(arguments: [
        "^[0-]*$", "^(test|demo)@", "(ab)+", #"^\d{3}-\d{4}$"#, "^(a){3}$", "[(a+)]+", #"\(a+\)+"#, "^(-1|null|undefined)$",
        "(a{1})+", "^(.)$",
        // Realistic patterns: a bounded count, or a delimiter that ends each repetition.
        #"^(\d{1,3}\.){3}\d{1,3}$"#, "^([0-9a-f]{2}:){5}[0-9a-f]{2}$", #"^[^@]+@([a-z0-9-]+\.)+test$"#, "^(test|demo)+@",
        #"^(\w+-)+x$"#, "^(a+b)+$", "((ab)*c)+",
    ])
    func linearPatternsPass(_ pattern: String) {
        #expect(PatternSafety.nestedRepetition(in: pattern) == nil)
    }
}
