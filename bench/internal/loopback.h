// Loopback networking helpers for benchmarks: free ports for servers we
// start, and the loopback TCP round trip that is part of the latency floor.
//
// Thread safety: free functions, callable from any thread.

#ifndef CAIRN_BENCH_INTERNAL_LOOPBACK_H_
#define CAIRN_BENCH_INTERNAL_LOOPBACK_H_

#include <cstdint>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "bench/internal/latency.h"

namespace cairn::bench {

// Returns a TCP port on 127.0.0.1 that was free a moment ago: binds port 0,
// reads the port the kernel chose and closes the socket. Another process may
// take it before our server binds it; ports are ephemeral-range and the
// window is short. Returns kUnavailable if no socket can be bound.
absl::StatusOr<uint16_t> PickFreePort();

// A TCP connection over 127.0.0.1 to an echo server thread of this process,
// with TCP_NODELAY on both ends: the network half of the latency floor.
// RoundTrip() may be called between other measurements, so the floor is
// sampled under the same conditions as what it is compared with.
//
// Thread safety: RoundTrip() from one thread at a time.
class TcpEcho {
 public:
  // Starts the echo thread on an ephemeral port and connects to it.
  // kUnavailable on a socket error.
  static absl::StatusOr<std::unique_ptr<TcpEcho>> Start();

  TcpEcho(const TcpEcho&) = delete;
  TcpEcho& operator=(const TcpEcho&) = delete;
  // Closes the connection and joins the echo thread.
  ~TcpEcho();

  // Sends 8 bytes and waits for them to come back. Returns the round trip in
  // microseconds, or kUnavailable if the connection broke.
  absl::StatusOr<double> RoundTrip();

 private:
  TcpEcho() = default;

  int listener_ = -1;
  int client_ = -1;
  std::thread echo_;
};

// Times `samples` round trips on a new TcpEcho (after `samples / 10` untimed
// ones). Returns the per-round-trip times in microseconds, or kUnavailable.
absl::StatusOr<LatencySamples> MeasureTcpRoundTrips(int samples);

}  // namespace cairn::bench

#endif  // CAIRN_BENCH_INTERNAL_LOOPBACK_H_
