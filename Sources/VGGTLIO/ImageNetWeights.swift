import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import VGGTLTensors

/// The ImageNet weights Keras Applications uses (`keras.applications.X(weights='imagenet')`):
/// found in Keras' cache ($KERAS_HOME/models or ~/.keras/models, /tmp/.keras/models when that is
/// not writable), else downloaded from where Keras downloads them, checked against the MD5 Keras
/// publishes and saved atomically into the cache, so Keras and vggtl share one copy.
public enum ImageNetWeights {
    /// Streams the body of `url` to `receive`, reporting (bytes so far, total if known) to `progress`.
    public typealias Downloader = (_ url: URL, _ receive: @escaping (UnsafeRawBufferPointer) throws -> Void,
                                   _ progress: @escaping (Int64, Int64?) -> Void) throws -> Void

    /// One file Keras downloads: its name, folder URL and MD5 (each backbone gives its own).
    public struct File: Sendable {
        public let name: String
        public let baseURL: URL
        public let md5: String

        public init(name: String, baseURL: URL, md5: String) { self.name = name; self.baseURL = baseURL; self.md5 = md5 }
    }

    /// Where Keras keeps downloads: KERAS_HOME/models (`kerasHome`, which the CLI reads from
    /// $KERAS_HOME), else ~/.keras/models.
    public static func cacheDirectory(kerasHome: URL? = nil) -> URL {
        (kerasHome ?? URL(fileURLWithPath: NSHomeDirectory()).appendingPathComponent(".keras")).appendingPathComponent("models")
    }

    /// The local path of `known`, downloading it when no cache has it.
    /// - cacheDirectory: where to look and save (default: Keras' cache under `kerasHome`, then /tmp/.keras/models).
    /// - verifyCached: also check the MD5 of a file already in the cache (downloads are always checked).
    /// - baseURL, expectedMD5: instead of the file's own.
    public static func resolve(_ known: File, cacheDirectory: URL? = nil, kerasHome: URL? = nil, baseURL: URL? = nil,
                               expectedMD5: String? = nil, verifyCached: Bool = false, progress: Bool = true,
                               downloader: Downloader? = nil) throws -> URL {
        let name = known.name
        let md5 = expectedMD5 ?? known.md5
        let baseURL = baseURL ?? known.baseURL
        let primary = cacheDirectory ?? self.cacheDirectory(kerasHome: kerasHome)
        let directories = cacheDirectory != nil ? [primary] : [primary, URL(fileURLWithPath: "/tmp/.keras/models")]
        for dir in directories {
            let candidate = dir.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: candidate.path) else { continue }
            if verifyCached {
                let got = try MD5.hex(ofFile: candidate)
                guard got == md5 else {
                    throw VGGTLError.cachedWeightsDamaged(path: candidate.path, url: baseURL.appendingPathComponent(name).absoluteString, expected: md5, got: got)
                }
            }
            return candidate
        }

        let url = baseURL.appendingPathComponent(name)
        // Keras falls back to /tmp/.keras when its cache directory cannot be written.
        var target = primary
        if cacheDirectory == nil, !canWrite(primary) { target = URL(fileURLWithPath: "/tmp/.keras/models") }
        let destination = target.appendingPathComponent(name)
        func unavailable(_ reason: String) -> VGGTLError {
            .weightsNotCached(file: name, path: primary.appendingPathComponent(name).path, url: url.absoluteString, md5: md5, reason: reason)
        }
        do { try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true) } catch {
            throw unavailable("cannot create \(target.path): \(error.localizedDescription)")
        }
        let writer = try AtomicFileWriter(destination)
        var hash = MD5()
        let bar = DownloadProgressBar(label: "Downloading \(name)", enabled: progress)
        do {
            try (downloader ?? urlSessionDownload)(url, { chunk in
                hash.update(chunk)
                try writer.write(chunk)
            }, { done, total in bar.update(done, total) })
        } catch let e as VGGTLError {
            writer.abandon(); bar.finish()
            if case .fileWrite = e { throw e }
            throw unavailable(e.description)
        } catch {
            writer.abandon(); bar.finish()
            throw unavailable(error.localizedDescription)
        }
        bar.finish()
        let got = hash.finalize()
        guard got == md5 else {
            writer.abandon()
            throw VGGTLError.checksumMismatch(file: name, url: url.absoluteString, expected: md5, got: got)
        }
        try writer.commit()
        return destination
    }

    static func canWrite(_ dir: URL) -> Bool {
        var d = dir
        while !FileManager.default.fileExists(atPath: d.path), d.pathComponents.count > 1 { d.deleteLastPathComponent() }
        return FileManager.default.isWritableFile(atPath: d.path)
    }

    /// URLSession streaming: each chunk goes to `receive` as it arrives; HTTP errors are errors.
    static func urlSessionDownload(_ url: URL, _ receive: @escaping (UnsafeRawBufferPointer) throws -> Void,
                                   _ progress: @escaping (Int64, Int64?) -> Void) throws {
        let delegate = StreamingDelegate(receive: receive, progress: progress)
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = 60
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        let session = URLSession(configuration: config, delegate: delegate, delegateQueue: queue)
        session.dataTask(with: url).resume()
        delegate.done.wait()
        session.finishTasksAndInvalidate()
        if let e = delegate.failure { throw e }
    }
}

final class StreamingDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let receive: (UnsafeRawBufferPointer) throws -> Void
    let progress: (Int64, Int64?) -> Void
    let done = DispatchSemaphore(value: 0)
    var failure: Error?
    var received: Int64 = 0
    var total: Int64?

    init(receive: @escaping (UnsafeRawBufferPointer) throws -> Void, progress: @escaping (Int64, Int64?) -> Void) {
        self.receive = receive; self.progress = progress
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        if let http = response as? HTTPURLResponse, !(200..<300).contains(http.statusCode) {
            failure = VGGTLError.invalidArgument("the server answered HTTP \(http.statusCode)")
            completionHandler(.cancel)
            return
        }
        total = response.expectedContentLength > 0 ? response.expectedContentLength : nil
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard failure == nil else { return }
        do {
            try data.withUnsafeBytes { try receive($0) }
            received += Int64(data.count)
            progress(received, total)
        } catch {
            failure = error
            dataTask.cancel()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if failure == nil, let error { failure = error }
        done.signal()
    }
}

/// "Downloading x.h5 [=========>          ]  23.4/56.2 MiB" on stderr, redrawn at most 10 times a second.
final class DownloadProgressBar {
    let label: String
    let enabled: Bool
    private var last = Date.distantPast
    private var drawn = false

    init(label: String, enabled: Bool) { self.label = label; self.enabled = enabled }

    func update(_ done: Int64, _ total: Int64?) {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(last) >= 0.1 || (total != nil && done >= total!) else { return }
        last = now
        let mb = Double(done) / 1_048_576
        var line = "\r\(label) "
        if let total, total > 0 {
            let frac = min(1, Double(done) / Double(total)), width = 30, filled = Int(frac * Double(width))
            line += "[" + String(repeating: "=", count: filled) + (filled < width ? ">" : "")
                + String(repeating: " ", count: max(0, width - filled - 1)) + "] "
                + String(format: "%5.1f/%.1f MiB %3.0f%%", mb, Double(total) / 1_048_576, frac * 100)
        } else {
            line += String(format: "%.1f MiB", mb)
        }
        writeStandardError(line)
        drawn = true
    }

    func finish() {
        if drawn { writeStandardError("\n"); drawn = false }
    }
}
