// An HTTP/1.1 server on Boost.Beast + Asio, shared by every Cairn component
// that serves HTTP (master and agent endpoints, the Mesos v1 scheduler API,
// the replicated log's client API).
//
//   http::ServerOptions options;
//   options.port = 5050;
//   http::Server server(options);
//   server.HandleSync("GET", "/health", [](const http::Request&) {
//     return http::Response::Text(200, "ok");
//   });
//   server.Handle("POST", "/api/v1/scheduler",
//                 [](http::Request req, std::shared_ptr<http::Responder> r) {
//     r->StartStream(200, {{"Content-Type", "application/recordio"}});
//     r->WriteChunk(record);  // later, from any thread, many times
//   });
//   absl::Status s = server.Start();  // server.port() is the bound port
//
// Threads: the server runs an asio::io_context on `num_threads` threads.
// Handlers run on those threads, one request per connection at a time; a
// handler must not block for long (answer later through its Responder
// instead). All public methods of Server and Responder are thread-safe.
//
// Connections: HTTP/1.1 keep-alive (HTTP/1.0 keep-alive when asked),
// pipelined requests answered in order, `Connection: close` honoured,
// chunked request bodies accepted, `Expect: 100-continue` answered. A
// connection is closed when:
//   - a request is not fully received within `read_timeout` of its first byte
//     (slow clients), or no request starts within `idle_timeout`;
//   - a write makes no completion within `write_timeout`;
//   - the request is malformed (400), its header exceeds `max_header_bytes`
//     (431) or its body `max_body_bytes` (413); each answered with a JSON body
//     {"error": "..."} before closing;
//   - more than `max_connections` are open (a new one is closed at accept).
//
// Routing: exact paths ("/state") and prefixes ("/files/*" matches every path
// starting with "/files/"). An exact match beats a prefix, a longer prefix
// beats a shorter one; among routes for the same pattern a specific method
// beats "*" (any), and HEAD uses a GET route (the body is not sent). A path
// with no route gets 404, a path whose routes all name other methods 405.
//
// Shutdown: Stop() stops accepting, closes idle connections, ends streaming
// responses (final chunk, then close; their OnClose callbacks run), lets
// in-flight non-streaming requests finish for up to `shutdown_grace`, then
// closes whatever is left and joins the threads.

#ifndef CAIRN_COMMON_HTTP_SERVER_H_
#define CAIRN_COMMON_HTTP_SERVER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/http_message.h"

namespace cairn {
namespace http {

namespace internal {
class Connection;
}  // namespace internal

struct ServerOptions {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal; "0.0.0.0" = all
  uint16_t port = 0;                  // 0: an ephemeral port, see port()
  int num_threads = 2;
  size_t max_body_bytes = 16 << 20;    // larger request bodies get 413
  size_t max_header_bytes = 64 << 10;  // larger request headers get 431
  absl::Duration read_timeout = absl::Seconds(30);   // first byte -> complete
  absl::Duration idle_timeout = absl::Seconds(60);   // between requests
  absl::Duration write_timeout = absl::Seconds(30);  // per socket write
  absl::Duration shutdown_grace = absl::Seconds(5);  // Stop() waits this long
  int max_connections = 1024;
  // When non-empty, every answer to a GET or HEAD request carries
  // "Access-Control-Allow-Origin: <value>" (unless its handler set one), so
  // that browser pages from other origins may read it (e.g. "*").
  std::string get_allow_origin;
};

// The way a handler answers one request: either one complete Respond(), or
// StartStream() followed by any number of WriteChunk() and a final Close().
//
// Thread-safe: any method may be called from any thread, at any time, also
// after the connection or the server has gone away (they then do nothing and
// return false). Chunks are sent in the order their WriteChunk() calls
// acquired the responder, each as exactly one HTTP chunk.
//
// If the last reference is dropped without an answer, the client gets 500;
// dropped during a stream, the stream is ended as by Close().
class Responder {
 public:
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  // Sends `response` (Content-Length, Connection added by the server).
  // Returns false, sending nothing, if an answer was already started or the
  // connection is gone.
  bool Respond(Response response);

  // Sends the status line and `headers` of a streaming response, with
  // `Transfer-Encoding: chunked` (HTTP/1.0 clients get the raw bytes and the
  // connection is closed at the end). Returns false if an answer was already
  // started or the connection is gone.
  bool StartStream(int status, Headers headers);

  // Queues `data` as one chunk of the stream. An empty `data` is ignored (a
  // zero-length chunk would end the stream). Returns false if the stream is
  // not open (not started, closed, or the client went away).
  bool WriteChunk(std::string data);

  // Ends the stream (the final zero-length chunk is sent after all queued
  // chunks). If no answer was started yet, closes the connection without
  // answering. Does not run the OnClose callback. Idempotent.
  void Close();

  // True once no more can be sent: answered and done, Close() called, the
  // client disconnected, or the server stopped.
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  // Sets the callback run once if the exchange is ended by anything other
  // than this responder's own Respond()/Close(): client disconnect, write
  // error or timeout, server Stop(). Runs on a server thread (or right away
  // on the caller's thread if that already happened); must not block.
  // Replaces a previously set callback.
  void OnClose(std::function<void()> callback);

  // Bytes passed to WriteChunk() not yet written to the socket; a producer
  // can use it to slow down for a slow client.
  size_t queued_bytes() const;

 private:
  friend class internal::Connection;
  enum class State { kPending, kStreaming, kDone };

  Responder(std::shared_ptr<internal::Connection> connection, uint64_t seq);

  // Called by the connection (on its strand) when the exchange ends without
  // the handler's doing: marks closed and runs the OnClose callback.
  void Abort();

  const uint64_t seq_;  // which request of the connection this answers
  // std::mutex rather than absl::Mutex: Debian's prebuilt abseil is not
  // instrumented for ThreadSanitizer, which then cannot see absl::Mutex.
  mutable std::mutex mu_;
  // Guarded by mu_:
  State state_ = State::kPending;
  bool aborted_ = false;
  // Non-null while state_ != kDone.
  std::shared_ptr<internal::Connection> connection_;
  std::function<void()> on_close_;
  std::atomic<bool> closed_{false};
};

// Handles one request; answers through `responder`, now or later.
using Handler =
    std::function<void(Request request, std::shared_ptr<Responder> responder)>;
// Handles one request by returning its complete response.
using SyncHandler = std::function<Response(const Request& request)>;

class Server {
 public:
  explicit Server(ServerOptions options = {});
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Stops the server (see Stop()).
  ~Server();

  // Routes requests with `method` ("GET", ..., or "*" for any) and `pattern`
  // (exact path, or a prefix ending in '*') to `handler`. A later
  // registration for the same method and pattern replaces the earlier one.
  // May be called before or after Start().
  void Handle(absl::string_view method, absl::string_view pattern,
              Handler handler);
  void HandleSync(absl::string_view method, absl::string_view pattern,
                  SyncHandler handler);

  // Binds, listens and starts the threads. Returns kInvalidArgument for an
  // unparsable or non-local address, kUnavailable if the address is in use
  // (or another socket error), kPermissionDenied for a privileged port, and
  // kFailedPrecondition if already started or stopped; messages name the
  // address.
  absl::Status Start();

  // Graceful shutdown (see the top of this file). Idempotent; the server
  // cannot be started again. REQUIRES: not called from a handler.
  void Stop();

  // The bound port once Start() has succeeded, else options().port.
  uint16_t port() const { return port_.load(std::memory_order_acquire); }

  const ServerOptions& options() const { return options_; }

  // True once Stop() has begun.
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  // Connections accepted so far (not counting those refused at the limit).
  uint64_t connections_accepted() const;
  // Connections open right now.
  int active_connections() const;

 private:
  friend class internal::Connection;
  class Impl;

  const ServerOptions options_;
  std::atomic<uint16_t> port_;
  std::atomic<bool> stopping_{false};
  std::unique_ptr<Impl> impl_;
};

}  // namespace http
}  // namespace cairn

#endif  // CAIRN_COMMON_HTTP_SERVER_H_
