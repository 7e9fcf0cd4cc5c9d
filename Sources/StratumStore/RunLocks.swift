import Synchronization

/// One full run at a time per definition: a run waits while another run of
/// the same definition in this process — the scheduler's, or a refresh asked
/// for over the API — is under way, instead of both computing and recording
/// overlapping runs. Keys are taken all at once, so runs of several
/// definitions cannot deadlock one another.
public final class RunLocks: Sendable {
    private struct State {
        var held: Set<String> = []
        var waiting: [(keys: Set<String>, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Returns once no other run holds any of `keys`, holding them.
    public func acquire(_ keys: Set<String>) async {
        await withCheckedContinuation { continuation in
            state.withLock { state in
                if state.held.isDisjoint(with: keys) {
                    state.held.formUnion(keys)
                    continuation.resume()
                } else {
                    state.waiting.append((keys, continuation))
                }
            }
        }
    }

    /// Gives `keys` back; waiting runs whose keys are all free go on, oldest first.
    public func release(_ keys: Set<String>) {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.held.subtract(keys)
            var ready: [CheckedContinuation<Void, Never>] = []
            state.waiting.removeAll { waiter in
                guard state.held.isDisjoint(with: waiter.keys) else { return false }
                state.held.formUnion(waiter.keys)
                ready.append(waiter.continuation)
                return true
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }
}
