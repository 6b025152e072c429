#include "bench/internal/leveldb_probe.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "leveldb/db.h"
#include "leveldb/options.h"
#include "leveldb/write_batch.h"

namespace cairn::bench {
namespace {

absl::StatusOr<std::unique_ptr<leveldb::DB>> OpenFresh(const std::string& dir) {
  leveldb::Options options;
  options.create_if_missing = true;
  options.error_if_exists = true;
  leveldb::DB* db = nullptr;
  leveldb::Status s = leveldb::DB::Open(options, dir, &db);
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("open leveldb ", dir, ": ", s.ToString()));
  }
  return std::unique_ptr<leveldb::DB>(db);
}

// 8-byte big-endian key: writer in the high 16 bits, sequence below.
std::string Key(uint64_t writer, uint64_t seq) {
  uint64_t v = (writer << 48) | seq;
  std::string key(8, '\0');
  for (int i = 7; i >= 0; --i) {
    key[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return key;
}

double MicrosSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SyncWriteProbe>> SyncWriteProbe::Open(
    const std::string& dir, size_t value_bytes) {
  absl::StatusOr<std::unique_ptr<leveldb::DB>> db = OpenFresh(dir);
  if (!db.ok()) return db.status();
  return std::unique_ptr<SyncWriteProbe>(
      new SyncWriteProbe(*std::move(db), value_bytes));
}

SyncWriteProbe::SyncWriteProbe(std::unique_ptr<leveldb::DB> db,
                               size_t value_bytes)
    : db_(std::move(db)), value_(value_bytes, 'v') {}

SyncWriteProbe::~SyncWriteProbe() = default;

absl::StatusOr<double> SyncWriteProbe::TimedPut() {
  leveldb::WriteOptions sync;
  sync.sync = true;
  auto start = std::chrono::steady_clock::now();
  leveldb::Status s = db_->Put(sync, Key(0, next_key_++), value_);
  const double us = MicrosSince(start);
  if (!s.ok()) {
    return absl::UnavailableError(absl::StrCat("put: ", s.ToString()));
  }
  return us;
}

absl::StatusOr<LatencySamples> MeasureLevelDbSyncWrites(const std::string& dir,
                                                        int samples,
                                                        size_t value_bytes) {
  absl::StatusOr<std::unique_ptr<SyncWriteProbe>> probe =
      SyncWriteProbe::Open(dir, value_bytes);
  if (!probe.ok()) return probe.status();
  LatencySamples result;
  result.Reserve(samples);
  const int warmup = samples / 10;
  for (int i = 0; i < warmup + samples; ++i) {
    absl::StatusOr<double> us = (*probe)->TimedPut();
    if (!us.ok()) return us.status();
    if (i >= warmup) result.Add(*us);
  }
  return result;
}

absl::StatusOr<GroupCommitResult> MeasureLevelDbGroupCommit(
    const std::string& dir, int threads, absl::Duration warmup,
    absl::Duration duration, size_t value_bytes) {
  absl::StatusOr<std::unique_ptr<leveldb::DB>> db = OpenFresh(dir);
  if (!db.ok()) return db.status();
  const std::string value(value_bytes, 'v');

  // 0: warm-up, 1: measuring, 2: stop.
  std::atomic<int> phase{0};
  std::atomic<uint64_t> measured{0};
  absl::Mutex mu;
  LatencySamples latencies;
  std::string first_error;

  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      leveldb::WriteOptions sync;
      sync.sync = true;
      LatencySamples local;
      uint64_t count = 0;
      for (uint64_t seq = 0;; ++seq) {
        int before = phase.load(std::memory_order_acquire);
        if (before == 2) break;
        auto start = std::chrono::steady_clock::now();
        leveldb::Status s = (*db)->Put(sync, Key(t, seq), value);
        if (!s.ok()) {
          absl::MutexLock lock(&mu);
          if (first_error.empty()) first_error = s.ToString();
          break;
        }
        // Count a put only if it both started and finished in the window.
        if (before == 1 && phase.load(std::memory_order_acquire) == 1) {
          ++count;
          local.Add(MicrosSince(start));
        }
      }
      measured.fetch_add(count);
      absl::MutexLock lock(&mu);
      latencies.Merge(local);
    });
  }
  std::this_thread::sleep_for(absl::ToChronoNanoseconds(warmup));
  auto start = std::chrono::steady_clock::now();
  phase.store(1, std::memory_order_release);
  std::this_thread::sleep_for(absl::ToChronoNanoseconds(duration));
  phase.store(2, std::memory_order_release);
  const double seconds = MicrosSince(start) / 1e6;
  for (std::thread& w : workers) w.join();
  if (!first_error.empty()) {
    return absl::UnavailableError(absl::StrCat("put: ", first_error));
  }
  GroupCommitResult result;
  result.writes = measured.load();
  result.seconds = seconds;
  result.writes_per_second = result.writes / seconds;
  result.latency_us = std::move(latencies);
  return result;
}

}  // namespace cairn::bench
