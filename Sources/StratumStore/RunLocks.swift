import Synchronization

/// One full run at a time per definition: a run waits while another run of
/// the same definition in this process — the scheduler's, or a refresh asked
/// for over the API — is under way, instead of both computing and recording
/// overlapping runs. Keys are taken all at once, so runs of several
/// definitions cannot deadlock one another.
public final class RunLocks: Sendable {
    private struct Waiter {
        var ticket: Int
        var keys: Set<String>
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var held: Set<String> = []
        var waiting: [Waiter] = []
        var tickets = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Returns once no other run holds any of `keys`, holding them; throws
    /// `CancellationError` if the task is cancelled while it waits (a
    /// shutting-down scheduler does not start a run after the one ahead).
    public func acquire(_ keys: Set<String>) async throws {
        let ticket = state.withLock { state in
            state.tickets += 1
            return state.tickets
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                state.withLock { state in
                    if Task.isCancelled {
                        continuation.resume(throwing: CancellationError())
                    } else if state.held.isDisjoint(with: keys) {
                        state.held.formUnion(keys)
                        continuation.resume()
                    } else {
                        state.waiting.append(Waiter(ticket: ticket, keys: keys, continuation: continuation))
                    }
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiting.firstIndex(where: { $0.ticket == ticket }) else { return nil }
                return state.waiting.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Gives `keys` back; waiting runs whose keys are all free go on, oldest first.
    public func release(_ keys: Set<String>) {
        let ready = state.withLock { state -> [Waiter] in
            state.held.subtract(keys)
            var ready: [Waiter] = []
            state.waiting.removeAll { waiter in
                guard state.held.isDisjoint(with: waiter.keys) else { return false }
                state.held.formUnion(waiter.keys)
                ready.append(waiter)
                return true
            }
            return ready
        }
        for waiter in ready { waiter.continuation.resume() }
    }
}
