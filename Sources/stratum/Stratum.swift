import ArgumentParser
@main struct Stratum: ParsableCommand {}
