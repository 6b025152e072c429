// LevelDB probes: the storage half of the latency floor, and the group-commit
// peer that Cairn's throughput is compared with.
//
// Both open a fresh LevelDB database in a directory of the benchmark's
// scratch filesystem (so they hit the same disk and file system as the
// replicas), write 256-byte values (by default) with WriteOptions.sync = true,
// and close it again.
//
// Thread safety: free functions, callable from any thread.

#ifndef CAIRN_BENCH_INTERNAL_LEVELDB_PROBE_H_
#define CAIRN_BENCH_INTERNAL_LEVELDB_PROBE_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/internal/latency.h"

namespace cairn::bench {

// Times `samples` single-threaded Put(sync=true) calls of `value_bytes`
// bytes each (after `samples / 10` untimed ones) into a new database in
// `dir`. Returns per-put times in microseconds; kUnavailable if the database
// cannot be opened or a write fails.
absl::StatusOr<LatencySamples> MeasureLevelDbSyncWrites(const std::string& dir,
                                                        int samples,
                                                        size_t value_bytes);

struct GroupCommitResult {
  double writes_per_second = 0;
  LatencySamples latency_us;  // per Put, during the measured window
};

// Runs `threads` threads, each doing Put(sync=true) of `value_bytes` bytes
// with unique keys on ONE new database in `dir`, for `warmup` (not counted)
// then `duration`. LevelDB makes concurrent writers share one log write and
// one fsync (its group commit). Returns the rate of completed puts in the
// measured window; kUnavailable on an open or write error.
absl::StatusOr<GroupCommitResult> MeasureLevelDbGroupCommit(
    const std::string& dir, int threads, absl::Duration warmup,
    absl::Duration duration, size_t value_bytes);

}  // namespace cairn::bench

#endif  // CAIRN_BENCH_INTERNAL_LEVELDB_PROBE_H_
