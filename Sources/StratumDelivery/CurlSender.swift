import CCurl
import Foundation
import Synchronization

/// The answer to one HTTP attempt, or why there was none.
public struct SendResult: Sendable, Equatable {
    /// The HTTP status, or nil when no response arrived (connect error, timeout).
    public var status: Int?
    /// `Retry-After` in seconds from the answer, when the receiver sent one
    /// (a date is turned into seconds from then; see `retryAfter(parsing:now:)`).
    public var retryAfter: Int?
    /// The first bytes of the response body (at most `CurlSender.maximumBodyBytes`).
    public var body: String
    /// libcurl's error for attempts without a response.
    public var error: String?
    /// The request was given up because the daemon is stopping (`AbortFlag`):
    /// no answer, and no attempt to record.
    public var aborted = false

    public init(status: Int?, retryAfter: Int?, body: String, error: String?, aborted: Bool = false) {
        self.status = status
        self.retryAfter = retryAfter
        self.body = body
        self.error = error
        self.aborted = aborted
    }

    /// The seconds a `Retry-After` value asks to wait from `now`: delay-seconds,
    /// or an HTTP-date (RFC 9110 §10.2.3: IMF-fixdate, or the obsolete RFC 850
    /// and asctime forms a recipient must accept); nil when it is neither.
    /// A date already past gives a negative number.
    public static func retryAfter(parsing value: String, now: Date) -> Int? {
        // asctime pads the day with a space ("Nov  6").
        let text = value.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        if let seconds = Int(text) { return seconds }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        for format in ["EEE, dd MMM yyyy HH:mm:ss 'GMT'", "EEEE, dd-MMM-yy HH:mm:ss 'GMT'", "EEE MMM d HH:mm:ss yyyy"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) {
                // Rounded up: a receiver asking for a date is not tried before it. A
                // four-digit year keeps it far inside Int.
                return Int(date.timeIntervalSince(now).rounded(.up))
            }
        }
        return nil
    }
}

/// Set to give up a request in flight: libcurl checks it about once a second
/// (its progress callback), so a shutdown does not wait for a hanging
/// receiver's whole timeout.
public final class AbortFlag: Sendable {
    private let flag = Mutex(false)
    public init() {}
    public func set() { flag.withLock { $0 = true } }
    public var isSet: Bool { flag.withLock { $0 } }
}

/// Sends webhook POSTs through one reused libcurl easy handle (so connections
/// to a receiver are kept alive). Use one sender per thread.
///
/// TLS verification stays on, redirects are not followed, and response
/// bodies are read up to a small bound. Not thread-safe: a sender is used by
/// one thread at a time (the worker's pool hands each out exclusively).
public final class CurlSender: @unchecked Sendable {
    public static let maximumBodyBytes = 4_096
    private let handle: UnsafeMutableRawPointer

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    public init() {
        _ = Self.globalInit
        handle = curl_easy_init()
    }

    deinit { curl_easy_cleanup(handle) }

    /// Collects a response: body (bounded) and the Retry-After header's value.
    final class Response {
        var body: [UInt8] = []
        var retryAfter: String?
        let abort: AbortFlag?
        init(abort: AbortFlag?) { self.abort = abort }
    }

    public func post(url: String, headers: [(String, String)], body: [UInt8], connectTimeoutMilliseconds: Int, totalTimeoutMilliseconds: Int, abort: AbortFlag? = nil) -> SendResult {
        curl_easy_reset(handle)
        let response = Response(abort: abort)
        var list: UnsafeMutablePointer<curl_slist>?
        for (name, value) in headers + [("Content-Type", "application/json"), ("Expect", "")] {
            list = curl_slist_append(list, "\(name): \(value)")
        }
        defer { curl_slist_free_all(list) }
        _ = stratum_curl_setopt_string(handle, CURLOPT_URL, url)
        _ = stratum_curl_setopt_long(handle, CURLOPT_POST, 1)
        _ = stratum_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, list)
        _ = stratum_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0)
        _ = stratum_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1)
        _ = stratum_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2)
        _ = stratum_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        _ = stratum_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, connectTimeoutMilliseconds)
        _ = stratum_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, totalTimeoutMilliseconds)
        _ = stratum_curl_setopt_string(handle, CURLOPT_USERAGENT, "stratum-webhooks/1")
        let unmanaged = Unmanaged.passRetained(response)
        defer { unmanaged.release() }
        _ = stratum_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, unmanaged.toOpaque())
        _ = stratum_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, unmanaged.toOpaque())
        if abort != nil {
            _ = stratum_curl_setopt_long(handle, CURLOPT_NOPROGRESS, 0)
            _ = stratum_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, unmanaged.toOpaque())
            _ = stratum_curl_setopt_xferinfo_callback(handle) { context, _, _, _, _ in
                Unmanaged<CurlSender.Response>.fromOpaque(context!).takeUnretainedValue().abort?.isSet == true ? 1 : 0
            }
        }
        _ = stratum_curl_setopt_write_callback(handle) { data, size, count, context in
            let response = Unmanaged<CurlSender.Response>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            let room = max(0, CurlSender.maximumBodyBytes - response.body.count)
            if room > 0, let data {
                data.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
                    response.body.append(contentsOf: UnsafeBufferPointer(start: bytes, count: min(room, length)))
                }
            }
            return length
        }
        _ = stratum_curl_setopt_header_callback(handle) { data, size, count, context in
            let response = Unmanaged<CurlSender.Response>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            if let data {
                let line = data.withMemoryRebound(to: UInt8.self, capacity: length) { String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self) }
                if line.lowercased().hasPrefix("retry-after:") {
                    response.retryAfter = String(line.dropFirst(12))
                }
            }
            return length
        }
        let code = body.withUnsafeBufferPointer { buffer -> CURLcode in
            _ = stratum_curl_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: buffer.baseAddress))
            _ = stratum_curl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, buffer.count)
            return curl_easy_perform(handle)
        }
        guard code == CURLE_OK else {
            return SendResult(status: nil, retryAfter: nil, body: "", error: String(cString: curl_easy_strerror(code)), aborted: code == CURLE_ABORTED_BY_CALLBACK)
        }
        var status = 0
        _ = stratum_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        let retryAfter = response.retryAfter.flatMap { SendResult.retryAfter(parsing: $0, now: Date()) }
        return SendResult(status: status, retryAfter: retryAfter, body: String(decoding: response.body, as: UTF8.self), error: nil)
    }
}
