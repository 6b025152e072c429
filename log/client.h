// LogClient: a client of the replicated log's HTTP API (see http_service.h),
// for tools (the `cairn-log append|read|status|truncate` verbs) and tests.
//
// It is given every replica's HTTP address. Writes (Append, Truncate) go to
// the first replica that answers, follow its 307 to the leader, and move on
// to the next replica when one is unreachable or answers 503 "not leader /
// no leader" (nothing was appended there); they keep cycling through the
// replicas until the call's timeout. A 503 whose outcome is unknown (the
// leader lost its leadership while the entry was in flight) is returned, not
// retried: the entry may or may not be in the log. Delivery is therefore
// at-most-once, except that a replica dying after it received a request and
// before it answered looks like an unreachable replica, so that request is
// retried elsewhere and may be appended twice.
//
// Reads and status go to the first replica that answers (a follower answers
// from what it has learned).
//
// Thread safety: one thread at a time (it owns an http::Client).

#ifndef CAIRN_LOG_CLIENT_H_
#define CAIRN_LOG_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "log/replicated_log.h"
#include "log/transport.h"

namespace cairn::log {

struct LogClientOptions {
  std::vector<PeerAddress> addresses;  // replicas' HTTP addresses
  // Budget of one call, retries and redirects included.
  absl::Duration timeout = absl::Seconds(10);
  // Pause after every replica was tried without success.
  absl::Duration retry_interval = absl::Milliseconds(100);
};

// Parses "host:port[,host:port...]". kInvalidArgument naming a bad address
// or an empty list.
absl::StatusOr<std::vector<PeerAddress>> ParseAddressList(
    absl::string_view list);

class LogClient {
 public:
  explicit LogClient(LogClientOptions options);
  LogClient(const LogClient&) = delete;
  LogClient& operator=(const LogClient&) = delete;
  ~LogClient();

  // Appends `data`; returns where it was chosen. Errors: kUnavailable when
  // no replica accepted it within the timeout (message: the last reason) or
  // when its outcome is unknown (message says so); others as the server
  // answered (see ErrorFromResponse).
  absl::StatusOr<Position> Append(absl::string_view data);

  // Truncates the log before `to`; returns the truncate entry's position.
  // kFailedPrecondition when `to` is beyond the chosen prefix + 1; else as
  // Append.
  absl::StatusOr<uint64_t> Truncate(uint64_t to);

  // GET /log/read: the JSON array as the server sent it, and where to
  // continue (X-Cairn-Next-Position). Absent parameters take the server's
  // defaults.
  struct ReadJsonResult {
    std::string json;
    uint64_t next = 0;
  };
  absl::StatusOr<ReadJsonResult> ReadJson(std::optional<uint64_t> from,
                                          std::optional<uint64_t> to,
                                          std::optional<uint64_t> limit);
  // The same, decoded.
  absl::StatusOr<ReadPage> Read(std::optional<uint64_t> from,
                                std::optional<uint64_t> to,
                                std::optional<uint64_t> limit);

  // GET /log/status: the JSON document (see StatusJson in http_service.h).
  absl::StatusOr<std::string> StatusJson();

 private:
  // Sends a write to the replicas in turn (see the top of this file) and
  // returns the first 200 response's body.
  absl::StatusOr<std::string> Write(absl::string_view target,
                                    absl::string_view body);
  // Sends a read to the replicas in turn; returns the first answer (any
  // HTTP status) from a reachable replica.
  absl::StatusOr<http::Response> Get(absl::string_view target);

  const LogClientOptions options_;
  std::unique_ptr<http::Client> http_;
  size_t preferred_ = 0;  // the replica that answered last
};

// The error a non-2xx response stands for: its JSON "error" (or the body),
// with the code chosen by the HTTP status (400 kInvalidArgument, 404
// kNotFound, 409 kFailedPrecondition, 503 kUnavailable, 504
// kDeadlineExceeded, else kInternal).
absl::Status ErrorFromResponse(const http::Response& response);

}  // namespace cairn::log

#endif  // CAIRN_LOG_CLIENT_H_
