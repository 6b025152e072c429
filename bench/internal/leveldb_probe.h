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
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/internal/latency.h"
#include "leveldb/db.h"

namespace cairn::bench {

// One fresh LevelDB database for timing single Put(sync=true) calls on
// demand, so the storage half of the floor can be sampled in between other
// measurements (the disk's fsync latency drifts by 10x within seconds on
// shared virtual machines).
//
// Thread safety: TimedPut() from one thread at a time.
class SyncWriteProbe {
 public:
  // Opens a new database in `dir` (which must not hold one). kUnavailable if
  // it cannot be opened.
  static absl::StatusOr<std::unique_ptr<SyncWriteProbe>> Open(
      const std::string& dir, size_t value_bytes);

  SyncWriteProbe(const SyncWriteProbe&) = delete;
  SyncWriteProbe& operator=(const SyncWriteProbe&) = delete;
  ~SyncWriteProbe();

  // Puts the next key with a `value_bytes` value and sync=true. Returns how
  // long the Put took in microseconds; kUnavailable if it failed.
  absl::StatusOr<double> TimedPut();

 private:
  SyncWriteProbe(std::unique_ptr<leveldb::DB> db, size_t value_bytes);

  std::unique_ptr<leveldb::DB> db_;
  const std::string value_;
  uint64_t next_key_ = 0;
};

// Times `samples` single-threaded Put(sync=true) calls of `value_bytes`
// bytes each (after `samples / 10` untimed ones) into a new database in
// `dir`. Returns per-put times in microseconds; kUnavailable if the database
// cannot be opened or a write fails.
absl::StatusOr<LatencySamples> MeasureLevelDbSyncWrites(const std::string& dir,
                                                        int samples,
                                                        size_t value_bytes);

struct GroupCommitResult {
  uint64_t writes = 0;  // completed inside the measured window
  double seconds = 0;   // length of the measured window
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
