// A generator of hostile HTTP requests for the master's endpoints, and a
// raw-socket client that tells whether each got a complete answer; the
// parts of tests/api_fuzz_test.cc that are not the test.
//
//   Random random(seed);
//   Pools pools;  // ids the master knows, live stream ids (may be empty)
//   FuzzRequest request = NextRequest(random, pools);
//   RawAnswer answer = Exchange(port, request.wire, request.head,
//                               absl::Seconds(5));
//
// NextRequest() draws, from the seed alone (given the same pools), one
// request for an endpoint of cairn-master: POST /api/v1/scheduler,
// /api/v1 and /api/v1/agent with calls built at random from the schema
// (protobuf reflection; resources, ids, tasks and offer operations made
// plausible) in JSON or protobuf, half of them damaged (wrong types, huge
// or malformed numbers, deep nesting, unknown fields, nulls, duplicate
// keys, bad escapes, long strings; bit flips, truncation, inserted bytes);
// GET /api/v1/events and Mesos's read-only endpoints with random queries
// and headers; random methods, paths and bytes. Framing varies (chunked
// with random chunk sizes, a short Content-Length, framing the server must
// refuse at once, Expect: 100-continue, HTTP/1.0, odd headers); it never
// leaves the server legitimately waiting for bytes that will not come (a
// Content-Length beyond the body, a chunked body without its last chunk).
//
// Thread safety: a Random is used by one thread at a time; the functions
// are thread-safe.

#ifndef CAIRN_TESTS_INTERNAL_HTTP_FUZZ_H_
#define CAIRN_TESTS_INTERNAL_HTTP_FUZZ_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace cairn::tests {

// Deterministic choices from one seed.
class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}

  uint64_t Next() { return engine_(); }
  // Uniform in [0, n); 0 when n == 0.
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : engine_() % n; }
  bool OneIn(uint64_t n) { return Below(n) == 0; }
  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[Below(items.size())];
  }
  // A length skewed towards small: mostly < 16, sometimes up to `max`.
  size_t Length(size_t max) {
    static const size_t kBounds[] = {4, 16, 64, 256, 4096, 65536, 1 << 20};
    const size_t bound = kBounds[Below(7 - (OneIn(4) ? 0 : 2))];
    return Below(std::min(bound, max) + 1);
  }
  std::string Bytes(size_t n) {
    std::string out(n, '\0');
    for (char& c : out) c = static_cast<char>(engine_());
    return out;
  }
  // Printable ASCII.
  std::string Text(size_t n) {
    std::string out(n, ' ');
    for (char& c : out) c = static_cast<char>(' ' + Below(95));
    return out;
  }

 private:
  std::mt19937_64 engine_;
};

// Values the generator prefers: ids the master knows, stream ids.
struct Pools {
  std::vector<std::string> ids;
  // Offers the framework holds (refreshed during a run).
  std::vector<std::string> offer_ids;
  // Live stream ids to send (empty: only made-up ones).
  std::string framework_stream_id;
  std::string agent_stream_id;
  std::string framework_id;
  std::string agent_id;
};

// The endpoint a request is for.
enum class Endpoint {
  kScheduler,  // POST /api/v1/scheduler
  kOperator,   // POST /api/v1
  kAgent,      // POST /api/v1/agent
  kEvents,     // GET /api/v1/events
  kReadOnly,   // GET /master/*, /metrics/*, /health, /version
  kOther,      // random methods, paths, bytes
};

// "scheduler", "operator", "agent", "events", "read-only", "other".
const char* EndpointName(Endpoint endpoint);

// One generated request.
struct FuzzRequest {
  Endpoint endpoint = Endpoint::kOther;
  std::string method;
  std::string target;
  std::string wire;  // the exact bytes sent
  std::string body;  // as generated
  // The body of the first request the server parses from `wire` (a short
  // Content-Length cuts it; framing it refuses leaves none).
  std::string seen_body;
  bool head = false;    // no body in the answer
  std::string summary;  // for failure messages
};

// The next request drawn from `random` (see the top of this file).
FuzzRequest NextRequest(Random& random, const Pools& pools);

// True if `body`, sent to `endpoint`, could be taken by the master as a
// call that changes its state without a live stream id: a framework's or
// an agent's SUBSCRIBE, or an operator call other than GET_* and
// SUBSCRIBE. The body is tried as JSON (parsed as master/api_http.h
// ParseCall does) and as protobuf, whatever the headers say.
bool MayChangeState(Endpoint endpoint, const std::string& body);

// What came back for one request.
struct RawAnswer {
  // The final status (after any 1xx), or 0 without a complete answer.
  int status = 0;
  bool complete = false;
  // A 200 answer without Content-Length (an event stream): complete once
  // its headers are in.
  bool stream = false;
  // The server closed the connection while the request was being sent,
  // before answering (e.g. it refused the request early).
  bool closed_while_sending = false;
  std::string head;
  // The body as received (chunk framing included), at most 16 MiB; only
  // the start of a stream's.
  std::string body;
  bool chunked = false;      // Transfer-Encoding: chunked
  std::string content_type;  // of the final answer
  std::string error;
};

// Sends `wire` to 127.0.0.1:`port` on a new connection and reads one
// complete answer within `timeout`: the final answer after any 1xx, its
// body by Content-Length or chunked framing (none for a HEAD request, 204
// or 304); a 200 without Content-Length (an event stream) is complete once
// its headers are in. Never throws; failures are in RawAnswer::error.
RawAnswer Exchange(uint16_t port, const std::string& wire, bool head_request,
                   absl::Duration timeout);

}  // namespace cairn::tests

#endif  // CAIRN_TESTS_INTERNAL_HTTP_FUZZ_H_
