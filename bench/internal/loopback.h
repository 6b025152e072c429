// Loopback networking helpers for benchmarks: free ports for servers we
// start, and the loopback TCP round trip that is part of the latency floor.
//
// Thread safety: free functions, callable from any thread.

#ifndef CAIRN_BENCH_INTERNAL_LOOPBACK_H_
#define CAIRN_BENCH_INTERNAL_LOOPBACK_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "bench/internal/latency.h"

namespace cairn::bench {

// Returns a TCP port on 127.0.0.1 that was free a moment ago: binds port 0,
// reads the port the kernel chose and closes the socket. Another process may
// take it before our server binds it; ports are ephemeral-range and the
// window is short. Returns kUnavailable if no socket can be bound.
absl::StatusOr<uint16_t> PickFreePort();

// Starts an echo server thread on 127.0.0.1 (port 0), connects to it with
// TCP_NODELAY on both ends, and times `samples` round trips of an 8-byte
// message (after `samples / 10` untimed ones). Returns the per-round-trip
// times in microseconds, or kUnavailable / kInternal on a socket error.
absl::StatusOr<LatencySamples> MeasureTcpRoundTrips(int samples);

}  // namespace cairn::bench

#endif  // CAIRN_BENCH_INTERNAL_LOOPBACK_H_
