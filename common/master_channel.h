// MasterChannel: how a client (an agent, cairnctl, a test) reaches the leading master of a cluster
// through one HTTP endpoint (`/api/v1/scheduler`, `/api/v1/agent`) given
// only the list of master addresses.
//
// Each call goes to the master that answered last (the leader hint), else to
// the masters in the given order, and:
//  - follows `307 Temporary Redirect` (`Location: //host:port/...`, the form
//    cairn-master sends; `http://host:port/...` and `host:port` work too) to
//    the named master, at most `max_redirects` times in a row;
//  - on `503` (no leader known, recovering, leader stepping down) or a
//    transport error (refused, reset, per-exchange timeout) moves on to the
//    next master and backs off (initial_backoff doubling to max_backoff)
//    until the call's deadline;
//  - returns any other answer as it is (Post) or as a status (OpenStream).
// A call that passed its deadline returns kUnavailable naming the last
// answer or error; it carries the HTTP status as payload when the last
// answer was one (see HttpStatusOf).
//
// Retrying is at-least-once: a request whose connection failed after it was
// sent may have been handled. The Cairn APIs make every call safe to repeat
// (docs/agent-protocol.md §8); tests that need to see a 503 use
// `retry_unavailable = false`.
//
// Cancel() makes calls in progress return kCancelled at their next retry
// (an exchange already under way finishes first, bounded by
// request_timeout), and every later call return it at once.
//
// Thread safety: a MasterChannel is thread-safe. Each call uses its own
// connection (an http::Client of the calling thread, or a fresh one), and the
// leader hint is guarded by a mutex.

#ifndef CAIRN_COMMON_MASTER_CHANNEL_H_
#define CAIRN_COMMON_MASTER_CHANNEL_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "common/http_message.h"

namespace cairn::http {

struct HostPort {
  std::string host;
  uint16_t port = 0;

  std::string ToString() const;
  bool operator==(const HostPort& other) const {
    return host == other.host && port == other.port;
  }
};

// Parses "host:port" ("[::1]:port" for IPv6). kInvalidArgument otherwise.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view address);

// Parses a redirect's Location: "//host:port/path", "http://host:port/path"
// or "host:port". kInvalidArgument otherwise.
absl::StatusOr<HostPort> ParseLocation(absl::string_view location);

// Maps an HTTP answer to a status, by what the caller should do:
// 200/202 (any 2xx) -> OK; 400, 405, 406, 413, 415 -> kInvalidArgument (a bug
// in the call); 401 -> kUnauthenticated; 403 -> kPermissionDenied; 404 ->
// kNotFound; 409 -> kFailedPrecondition (the stream was replaced or ended:
// resubscribe first); 429 -> kResourceExhausted; 501 -> kUnimplemented; 307
// and 503 -> kUnavailable; anything else -> kInternal. The message is
// "HTTP <code>: <body>"; the code is attached as payload (HttpStatusOf).
absl::Status StatusFromHttp(int code, absl::string_view body);

// The HTTP status a status made by StatusFromHttp (or a MasterChannel call)
// carries, if any.
std::optional<int> HttpStatusOf(const absl::Status& status);

struct MasterChannelOptions {
  // "host:port" of every master, e.g. MasterCluster::Address(i).
  std::vector<std::string> masters;
  // The endpoint, e.g. "/api/v1/scheduler".
  std::string path;
  // Bound on one HTTP exchange (one master); a call may take several.
  absl::Duration request_timeout = absl::Seconds(5);
  absl::Duration initial_backoff = absl::Milliseconds(20);
  absl::Duration max_backoff = absl::Milliseconds(500);
  // Consecutive 307s followed before backing off (masters that disagree on
  // the leader during an election).
  int max_redirects = 5;
};

class MasterChannel {
 public:
  explicit MasterChannel(MasterChannelOptions options);
  MasterChannel(const MasterChannel&) = delete;
  MasterChannel& operator=(const MasterChannel&) = delete;

  // POSTs `body` with `headers` to the leader (see the top of this file) and
  // returns its answer: any status but 307, and but 503 when
  // `retry_unavailable`. Errors: kInvalidArgument when `masters` does not
  // parse or is empty; kUnavailable when `deadline` passed first; kCancelled
  // after Cancel(). Uses `client` if given (its kept-alive connection is
  // reused; REQUIRES: owned by the calling thread), else a fresh one.
  absl::StatusOr<http::Response> Post(const http::Headers& headers,
                                      absl::string_view body,
                                      absl::Time deadline,
                                      bool retry_unavailable = true,
                                      http::Client* client = nullptr);

  // POSTs like Post() and returns the leader's streaming 200 answer, whose
  // headers and body the caller reads. Any other final answer is returned as
  // StatusFromHttp(code, body). Errors otherwise as Post().
  absl::StatusOr<std::unique_ptr<http::ClientStream>> OpenStream(
      const http::Headers& headers, absl::string_view body,
      absl::Time deadline);

  // See the top of this file. Idempotent.
  void Cancel();

  // The master that answered last (not 307/503), if any.
  std::optional<HostPort> leader_hint() const;

  const MasterChannelOptions& options() const { return options_; }

 private:
  // What one exchange with one master came to.
  struct Attempt {
    // Set when the master answered with something final (not 307/503).
    std::optional<http::Response> response;
    std::unique_ptr<http::ClientStream> stream;  // OpenStream's 200
    // Set for a 307 that names a parsable Location.
    std::optional<HostPort> redirect;
    // Why there is neither: transport error, 503, bad Location.
    absl::Status failure;
  };
  using Exchange = std::function<Attempt(const HostPort& to, absl::Time)>;

  // The retry loop shared by Post and OpenStream.
  absl::StatusOr<Attempt> Run(const Exchange& exchange, absl::Time deadline);

  const MasterChannelOptions options_;
  absl::Status parse_status_;      // of options_.masters
  std::vector<HostPort> masters_;  // parsed options_.masters

  mutable std::mutex mu_;
  std::condition_variable cancel_cv_;    // signalled by Cancel()
  bool cancelled_ = false;               // guarded by mu_
  std::optional<HostPort> leader_hint_;  // guarded by mu_
};

}  // namespace cairn::http

#endif  // CAIRN_COMMON_MASTER_CHANNEL_H_
