// HttpLoad: a closed-loop HTTP/1.1 load generator for throughput runs.
//
// `connections` keep-alive connections each send one POST, wait for its
// response, and send the next (so `connections` is the number of concurrent
// appenders). All connections are driven asynchronously (Boost.Beast) by the
// calling thread, which keeps the generator's own CPU use small: on a 2-core
// machine the servers under test get most of the CPU.
//
// Timing: after `warmup` the measured window opens; it closes `duration`
// later. A request counts as acknowledged in the window when its response
// arrives inside it (status 200 by default). In-flight requests are allowed
// to finish after the window closes (not counted) for up to `drain_timeout`,
// then their connections are closed.
//
// Failures never abort the run; they are counted so the caller can report
// them: 307/308 redirects are followed (the connection moves to the
// Location's host and port; counted in `redirects`), 503 is retried on the
// same connection after 20 ms (counted in `unavailable`), transport errors
// reconnect after 20 ms (counted in `transport_errors`), anything else is
// counted in `other_failures` (first one kept in `first_failure`).
//
// Thread safety: RunHttpLoad blocks the calling thread; `body` is called on
// that thread only.

#ifndef CAIRN_BENCH_INTERNAL_HTTP_LOAD_H_
#define CAIRN_BENCH_INTERNAL_HTTP_LOAD_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/internal/latency.h"

namespace cairn::bench {

struct HttpLoadSpec {
  std::string host;  // an IPv4/IPv6 literal
  uint16_t port = 0;
  std::string target;  // e.g. "/log/append"
  std::string content_type = "application/octet-stream";
  int connections = 1;
  absl::Duration warmup = absl::Milliseconds(500);
  absl::Duration duration = absl::Seconds(5);
  absl::Duration drain_timeout = absl::Seconds(5);
  // Returns the body of request `seq` (0, 1, ...) on connection `conn`.
  std::function<std::string(int conn, uint64_t seq)> body;
};

struct HttpLoadResult {
  double seconds = 0;  // length of the measured window
  uint64_t acks = 0;   // 200 responses inside the window
  double acks_per_second = 0;
  LatencySamples latency_us;  // of the acknowledged requests
  uint64_t redirects = 0;
  uint64_t unavailable = 0;
  uint64_t transport_errors = 0;
  uint64_t other_failures = 0;
  std::map<int, uint64_t> failure_statuses;  // HTTP status -> count
  std::string first_failure;

  uint64_t failures() const {
    return unavailable + transport_errors + other_failures;
  }
};

// Runs the load described by `spec`. Returns kInvalidArgument for a bad host
// or connection count; otherwise the counts (which may all be failures).
absl::StatusOr<HttpLoadResult> RunHttpLoad(const HttpLoadSpec& spec);

}  // namespace cairn::bench

#endif  // CAIRN_BENCH_INTERNAL_HTTP_LOAD_H_
