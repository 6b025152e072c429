// Raw-HTTP helpers for tests that drive the Mesos v1 scheduler API
// (POST /api/v1/scheduler) the way a client nobody here wrote does: with
// http::Client (common/http_client.h) or a bare TCP socket, never through
// SchedulerClient, so that headers, status codes, chunk framing and field
// names are checked as they are on the wire.
//
//   auto stream = client.OpenStream("POST", "127.0.0.1", port,
//                                   "/api/v1/scheduler", headers, body);
//   SchedulerEventReader events(*std::move(stream), WireEncoding::kJson);
//   absl::StatusOr<ReceivedEvent> subscribed =
//       events.Next(v1::scheduler::Event::SUBSCRIBED, deadline);
//
//   auto raw = RawHttpConnection::Connect(port);   // for what Client cannot
//   (*raw)->Send(head + ChunkedBody(body, 7));     // send, e.g. a chunked
//   absl::StatusOr<RawResponse> r = (*raw)->ReadResponse(deadline);  // body
//
// Thread safety: none; each object is used by one thread (the test's).

#ifndef CAIRN_TESTS_INTERNAL_RAW_SCHEDULER_API_H_
#define CAIRN_TESTS_INTERNAL_RAW_SCHEDULER_API_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cairn/v1/scheduler.pb.h"
#include "common/http_client.h"

namespace cairn::tests {

// How a stream's records (and a call's body) are encoded.
enum class WireEncoding { kJson, kProtobuf };

// One scheduler event as it arrived: parsed, and the RecordIO record's bytes
// (JSON text or a serialized Event).
struct ReceivedEvent {
  v1::scheduler::Event event;
  std::string record;
};

// Reads a SUBSCRIBE response's body on the caller's thread, one HTTP chunk
// at a time, and checks the framing Mesos clients rely on: every chunk holds
// exactly one complete RecordIO record (framing_errors() counts chunks that
// do not), and every record parses as a v1::scheduler::Event in `encoding`.
class SchedulerEventReader {
 public:
  SchedulerEventReader(std::unique_ptr<http::ClientStream> stream,
                       WireEncoding encoding);

  // Reads until an event for which `predicate` holds and returns it; the
  // events read before it are appended to skipped(). Errors:
  // kDeadlineExceeded when `deadline` passes first (the reader stays
  // usable), kUnavailable once the stream ended, kInternal for a record
  // that does not parse (also final).
  absl::StatusOr<ReceivedEvent> Next(
      const std::function<bool(const v1::scheduler::Event&)>& predicate,
      absl::Time deadline);
  absl::StatusOr<ReceivedEvent> Next(v1::scheduler::Event::Type type,
                                     absl::Time deadline);

  // Chunks that held anything but exactly one whole record.
  int framing_errors() const { return framing_errors_; }
  // HEARTBEAT events read so far (returned or skipped).
  int heartbeats() const { return heartbeats_; }
  const std::vector<ReceivedEvent>& skipped() const { return skipped_; }
  const http::ClientStream& stream() const { return *stream_; }

 private:
  const std::unique_ptr<http::ClientStream> stream_;
  const WireEncoding encoding_;
  int framing_errors_ = 0;
  int heartbeats_ = 0;
  std::vector<ReceivedEvent> skipped_;
  std::optional<absl::Status> end_;  // set once the stream failed or ended
};

// A response read from a RawHttpConnection, with header names exactly as
// they were sent.
struct RawResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  // The body: Content-Length bytes, or the de-chunked chunks so far.
  std::string body;
  // For a chunked body: each chunk as framed (complete ones only), and
  // whether the final zero-length chunk arrived.
  std::vector<std::string> chunks;
  bool chunked = false;
  bool complete = false;

  // The value of the first header whose name equals `name` exactly (case
  // sensitive, to check spelling); nullopt when there is none.
  std::optional<std::string> HeaderExact(absl::string_view name) const;
};

// Parses `bytes` (what a connection received so far) as one HTTP/1.1
// response. nullopt until the whole head has arrived; `complete` tells
// whether the body is whole (Content-Length, or the last chunk; a response
// with neither is complete at once, e.g. 202 with Content-Length: 0).
std::optional<RawResponse> ParseRawResponse(absl::string_view bytes);

// `body` as a chunked request body in pieces of at most `piece` bytes,
// ending with the zero-length chunk. REQUIRES: piece > 0.
std::string ChunkedBody(absl::string_view body, size_t piece);

// A bare TCP connection to 127.0.0.1, for requests http::Client does not
// send (chunked request bodies, headers spelled or ordered in a particular
// way, a head announcing a body that never comes).
class RawHttpConnection {
 public:
  // kUnavailable when the connection is refused.
  static absl::StatusOr<std::unique_ptr<RawHttpConnection>> Connect(
      uint16_t port);
  RawHttpConnection(const RawHttpConnection&) = delete;
  RawHttpConnection& operator=(const RawHttpConnection&) = delete;
  ~RawHttpConnection();

  // Writes all of `bytes`. kUnavailable when the peer closed or reset.
  absl::Status Send(absl::string_view bytes);

  // Reads until the bytes received so far parse as a response for which
  // `done` holds (default: complete), the peer closes, or `deadline`.
  // Returns the response parsed from what arrived; kDeadlineExceeded (or
  // kUnavailable after a close) when no acceptable response arrived.
  absl::StatusOr<RawResponse> ReadResponse(
      absl::Time deadline,
      const std::function<bool(const RawResponse&)>& done = nullptr);

  // Everything received so far.
  const std::string& received() const { return received_; }

 private:
  explicit RawHttpConnection(int fd) : fd_(fd) {}
  const int fd_;
  std::string received_;
  bool closed_ = false;  // the peer closed (EOF or reset)
};

}  // namespace cairn::tests

#endif  // CAIRN_TESTS_INTERNAL_RAW_SCHEDULER_API_H_
