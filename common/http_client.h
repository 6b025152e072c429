// A small synchronous HTTP/1.1 client on Boost.Beast + Asio, for tests,
// tools and replica-to-replica calls. (Fetching artifacts uses libcurl.)
//
//   http::Client client;
//   absl::StatusOr<http::Response> r =
//       client.Request("GET", "127.0.0.1", port, "/state");
//
//   // A chunked stream (e.g. the Mesos scheduler API's RecordIO events):
//   auto stream = client.OpenStream("POST", host, port, "/api/v1/scheduler",
//                                   {{"Content-Type", "application/json"}},
//                                   subscribe_body);
//   while (true) {
//     absl::StatusOr<std::optional<std::string>> chunk =
//         (*stream)->NextChunk(absl::Seconds(15));
//     if (!chunk.ok()) ...;        // kDeadlineExceeded: nothing yet, retry
//     if (!chunk->has_value()) break;  // end of stream
//     Handle(**chunk);             // exactly one HTTP chunk as sent
//   }
//
// Connections: a Client keeps its last connection open (keep-alive) and
// reuses it for the next request to the same host and port. A request sent
// on a reused connection that the server had already closed (nothing of a
// response received) is retried once on a new connection. A request or
// response with `Connection: close` closes the connection afterwards.
//
// Errors: connection refused, reset or closed -> kUnavailable; name
// resolution failure -> kUnavailable; timeout -> kDeadlineExceeded;
// unparsable response -> kInternal; response body over the limit ->
// kResourceExhausted; invalid method or target -> kInvalidArgument. An HTTP
// error status is not an error: it is returned in the Response.
//
// Thread safety: a Client, like a ClientStream, is used by one thread at a
// time (use one Client per thread). A ClientStream is independent of the
// Client that opened it and may outlive it.

#ifndef CAIRN_COMMON_HTTP_CLIENT_H_
#define CAIRN_COMMON_HTTP_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/http_message.h"

namespace cairn {
namespace http {

namespace internal {
class ClientConnection;
}  // namespace internal

struct ClientOptions {
  // Follow 301/302/303/307/308 (303 becomes a GET without body). When off,
  // or after `max_redirects`, the redirect response itself is returned and
  // its Location header says where to go.
  bool follow_redirects = false;
  int max_redirects = 5;
  size_t max_body_bytes = 64 << 20;    // response body (or one stream chunk)
  size_t max_header_bytes = 64 << 10;  // response header
};

constexpr absl::Duration kDefaultHttpTimeout = absl::Seconds(10);

// The response to OpenStream(): its status and headers, then its body one
// chunk at a time.
class ClientStream {
 public:
  ClientStream(const ClientStream&) = delete;
  ClientStream& operator=(const ClientStream&) = delete;
  // Closes the connection (the server sees the client go away).
  ~ClientStream();

  int status() const;
  const Headers& headers() const;

  // Returns the next chunk exactly as the server framed it, or nullopt at the
  // end of the stream. For a response that is not chunked, returns the body
  // bytes in arbitrary pieces. Waits at most `timeout` for a complete chunk:
  // kDeadlineExceeded then, and the stream stays usable (call again). Other
  // errors (kUnavailable if the connection dropped mid-stream, kInternal on
  // bad framing, kResourceExhausted for a chunk over max_body_bytes) are
  // final: later calls return the same error.
  absl::StatusOr<std::optional<std::string>> NextChunk(absl::Duration timeout);

 private:
  friend class Client;
  struct State;
  explicit ClientStream(std::unique_ptr<State> state);

  std::unique_ptr<State> state_;
};

class Client {
 public:
  explicit Client(ClientOptions options = {});
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  // Sends `method target` to host:port with `headers` (Host and
  // Content-Length are added) and `body`, and returns the whole response.
  // `timeout` bounds the whole exchange, redirects included. `host` is an IP
  // literal or a name. See the top of this file for the error codes.
  absl::StatusOr<Response> Request(
      absl::string_view method, absl::string_view host, uint16_t port,
      absl::string_view target, const Headers& headers = {},
      absl::string_view body = "",
      absl::Duration timeout = kDefaultHttpTimeout);

  // Sends a request like Request() and returns once the response's status
  // and headers have arrived (within `timeout`); the body is then read with
  // ClientStream::NextChunk(). Redirects are not followed. The stream takes
  // over the Client's kept-alive connection if it has one to host:port.
  absl::StatusOr<std::unique_ptr<ClientStream>> OpenStream(
      absl::string_view method, absl::string_view host, uint16_t port,
      absl::string_view target, const Headers& headers = {},
      absl::string_view body = "",
      absl::Duration timeout = kDefaultHttpTimeout);

  // Closes the kept-alive connection, if any.
  void CloseConnection();

  // TCP connections this client has opened so far.
  uint64_t connections_opened() const { return connections_opened_; }

 private:
  absl::StatusOr<Response> RequestOnce(absl::string_view method,
                                       absl::string_view host, uint16_t port,
                                       absl::string_view target,
                                       const Headers& headers,
                                       absl::string_view body,
                                       absl::Time deadline);
  // Returns a connection to host:port: the kept-alive one (`*reused` true) or
  // a new one.
  absl::StatusOr<std::unique_ptr<internal::ClientConnection>> Connect(
      absl::string_view host, uint16_t port, absl::Time deadline, bool* reused);

  const ClientOptions options_;
  std::unique_ptr<internal::ClientConnection> connection_;  // kept alive
  uint64_t connections_opened_ = 0;
};

}  // namespace http
}  // namespace cairn

#endif  // CAIRN_COMMON_HTTP_CLIENT_H_
