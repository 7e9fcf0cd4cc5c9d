import Foundation
import Logging
import ServiceLifecycle
import StratumStore
import Synchronization

/// Commits accepted messages with group commit: requests that arrive while a
/// transaction runs wait and share the next one. `submit` returns only after
/// the transaction holding its messages has committed, so an acknowledged
/// message survives a crash.
public final class IngestionWriter: Service, Sendable {
    /// Messages of one request, and who waits for them.
    struct Job {
        var messages: [PreparedMessage]
        var source: SourceRuntime
        var continuation: CheckedContinuation<[MessageOutcome], any Error>
    }

    struct State {
        var queue: [Job] = []
        var accepting = true
        var wake: AsyncStream<Void>.Continuation?
    }

    /// Why a submission was not committed.
    public enum WriterError: Error, CustomStringConvertible {
        case shuttingDown
        case failed(any Error)

        public var description: String {
            switch self {
            case .shuttingDown: "the daemon is shutting down"
            case .failed(let error): "the store could not commit: \(error)"
            }
        }
    }

    let store: any Store
    let pipeline: Mutex<IngestionPipeline>
    /// Where committed changes are announced, for incremental segment runs.
    let touched: TouchedProfiles?
    let logger: Logger
    /// At most this many messages per transaction.
    let maximumGroupSize: Int
    private let state = Mutex(State())
    private let wakeups: AsyncStream<Void>

    public init(store: any Store, pipeline: IngestionPipeline, logger: Logger, maximumGroupSize: Int = 5_000, touched: TouchedProfiles? = nil) {
        self.store = store
        self.touched = touched
        self.pipeline = Mutex(pipeline)
        self.logger = logger
        self.maximumGroupSize = maximumGroupSize
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        wakeups = stream
        state.withLock { $0.wake = continuation }
    }

    /// Announces profiles changed outside ingestion to the incremental segment runs.
    public func touch(tenant: String, profiles: [String]) {
        touched?.add(tenant: tenant, profiles: profiles)
    }

    /// Replaces the runtime (definitions reloaded); jobs already queued use the new one.
    public func update(runtime: Runtime) {
        pipeline.withLock { $0.runtime = runtime }
    }

    /// Commits `messages` from `source`; returns once they are durable.
    ///
    /// The store-free work happens here, on the caller's task, in parallel
    /// with the transaction in progress.
    public func submit(_ messages: [IncomingMessage], source: SourceRuntime) async throws -> [MessageOutcome] {
        let prepared = try pipeline.withLock { $0 }.prepare(messages, source: source)
        return try await withCheckedThrowingContinuation { continuation in
            let accepted = state.withLock { state -> Bool in
                guard state.accepting else { return false }
                state.queue.append(Job(messages: prepared, source: source, continuation: continuation))
                state.wake?.yield()
                return true
            }
            if !accepted { continuation.resume(throwing: WriterError.shuttingDown) }
        }
    }

    /// Drains the queue until graceful shutdown, then commits what is left.
    public func run() async throws {
        await withGracefulShutdownHandler {
            for await _ in wakeups {
                await drain()
            }
        } onGracefulShutdown: {
            self.state.withLock { state in
                state.accepting = false
                state.wake?.finish()
            }
        }
        await drain()
    }

    private func drain() async {
        while true {
            let jobs = state.withLock { state -> [Job] in
                var taken: [Job] = []
                var count = 0
                while let job = state.queue.first, taken.isEmpty || count + job.messages.count <= maximumGroupSize {
                    taken.append(state.queue.removeFirst())
                    count += job.messages.count
                }
                return taken
            }
            guard !jobs.isEmpty else { return }
            await commit(jobs)
        }
    }

    /// Commits the group's requests in one transaction. A request whose
    /// messages fail must not take the others with it, so when the group's
    /// transaction fails every request is committed again in a transaction
    /// of its own. Failures are rare; a savepoint per request (what isolated
    /// them before) cost every event about 7 µs copying pages into the
    /// statement journal.
    private func commit(_ jobs: [Job]) async {
        let pipeline = self.pipeline.withLock { $0 }
        let started = ContinuousClock.now
        do {
            let work = jobs.map { ($0.messages, $0.source) }
            let outcomes = try await store.write { transaction in
                try work.map { messages, source in try pipeline.process(messages, source: source, in: transaction) }
            }
            logger.debug("Committed a group.", metadata: [
                "requests": "\(jobs.count)", "messages": "\(work.reduce(0) { $0 + $1.0.count })",
                "duration": "\(ContinuousClock.now - started)",
            ])
            for (job, outcomes) in zip(jobs, outcomes) { answer(job, with: .success(outcomes)) }
        } catch {
            guard jobs.count > 1 else { return answer(jobs[0], with: .failure(error)) }
            logger.warning("A group commit failed; its requests are committed one at a time.", metadata: ["error": "\(error)", "requests": "\(jobs.count)"])
            for job in jobs {
                let (messages, source) = (job.messages, job.source)
                do {
                    answer(job, with: .success(try await store.write { try pipeline.process(messages, source: source, in: $0) }))
                } catch {
                    answer(job, with: .failure(error))
                }
            }
        }
    }

    private func answer(_ job: Job, with result: Result<[MessageOutcome], any Error>) {
        switch result {
        case .success(let outcomes):
            touched?.add(tenant: job.source.tenant, outcomes: outcomes)
            job.continuation.resume(returning: outcomes)
        case .failure(let error):
            logger.error("A request's messages could not be stored.", metadata: ["error": "\(error)", "source": "\(job.source.name)"])
            job.continuation.resume(throwing: WriterError.failed(error))
        }
    }
}
