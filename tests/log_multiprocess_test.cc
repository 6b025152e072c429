// Multi-process tests of the replicated log: real `cairn-log replica`
// processes on 127.0.0.1, real LevelDB stores under TEST_TMPDIR, SIGKILL and
// wiped disks. What each test proves: tests/README.md.
//
// Every wait polls GET /log/status (or the appenders' ledger) against a
// bounded deadline; nothing asserts an outcome after a fixed sleep. The
// replicas run with short timeouts (LogClusterOptions::flags) so the whole
// target takes well under a minute.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "gtest/gtest.h"
#include "log/replicated_log.h"
#include "tests/internal/log_cluster.h"
#include "tools/cpp/runfiles/runfiles.h"

namespace cairn::tests {
namespace {

using bazel::tools::cpp::runfiles::Runfiles;
using Outcome = AppendResult::Outcome;

constexpr absl::Duration kLeaderTimeout = absl::Seconds(10);
constexpr absl::Duration kConvergeTimeout = absl::Seconds(15);

// What happened to every entry the appenders sent. Thread-safe.
class Ledger {
 public:
  void Record(const std::string& data, const AppendResult& result) {
    std::lock_guard<std::mutex> lock(mu_);
    switch (result.outcome) {
      case Outcome::kAcknowledged:
        acked_[data] = result.position;
        break;
      case Outcome::kUnknown:
        unknown_.insert(data);
        break;
      case Outcome::kNotAppended:
        not_appended_.insert(data);
        break;
      case Outcome::kError:
        errors_.push_back(absl::StrCat(data, ": ", result.detail));
        break;
    }
    changed_.notify_all();
  }

  // Waits until at least `count` entries were acknowledged; false at
  // `deadline`.
  bool WaitForAcked(size_t count, absl::Time deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_until(lock, absl::ToChronoTime(deadline),
                               [&] { return acked_.size() >= count; });
  }

  size_t acked_count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_.size();
  }
  // Copies, for checking once the appenders stopped.
  std::map<std::string, log::Position> acked() const {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  std::set<std::string> unknown() const {
    std::lock_guard<std::mutex> lock(mu_);
    return unknown_;
  }
  std::set<std::string> not_appended() const {
    std::lock_guard<std::mutex> lock(mu_);
    return not_appended_;
  }
  std::vector<std::string> errors() const {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, log::Position> acked_;
  std::set<std::string> unknown_;
  std::set<std::string> not_appended_;
  std::vector<std::string> errors_;
};

// Client threads appending unique entries "<prefix>-<thread>-<seq>" (padded
// to `entry_bytes` with pseudo-random letters, which LevelDB's Snappy cannot
// compress away) through LogCluster::AppendOnce, each at most
// once, into a Ledger. Stopped and joined by the destructor, so a failed
// assertion in the test body cannot leave them running.
class Appenders {
 public:
  struct Options {
    std::string prefix = "e";
    int threads = 4;
    size_t entry_bytes = 0;
    // Entries per thread; unlimited when absent (run until Stop()).
    std::optional<int> per_thread;
    absl::Duration append_timeout = absl::Seconds(5);
  };

  Appenders(const LogCluster* cluster, Ledger* ledger, Options options)
      : cluster_(cluster), ledger_(ledger), options_(std::move(options)) {
    for (int t = 0; t < options_.threads; ++t) {
      threads_.emplace_back([this, t] { Run(t); });
    }
  }
  Appenders(const Appenders&) = delete;
  Appenders& operator=(const Appenders&) = delete;
  ~Appenders() { Stop(); }

  // Asks every thread to finish its current append and joins them.
  void Stop() {
    stop_ = true;
    Join();
  }
  // Joins the threads (they end on their own with per_thread set).
  void Join() {
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

 private:
  void Run(int t) {
    uint32_t hint = static_cast<uint32_t>(t % 3 + 1);
    absl::InsecureBitGen random;
    for (int seq = 0; !stop_; ++seq) {
      if (options_.per_thread.has_value() && seq >= *options_.per_thread) {
        return;
      }
      std::string data = absl::StrCat(options_.prefix, "-", t, "-", seq);
      while (data.size() < options_.entry_bytes) {
        data += static_cast<char>('a' + absl::Uniform(random, 0, 26));
      }
      const AppendResult result = cluster_->AppendOnce(
          data, absl::Now() + options_.append_timeout, &hint);
      ledger_->Record(data, result);
    }
  }

  const LogCluster* const cluster_;
  Ledger* const ledger_;
  const Options options_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

std::string Describe(const log::Entry& entry) {
  return absl::StrCat(entry.position, ".", entry.index, " '",
                      entry.data.substr(0, 40), "'");
}

// Asserts `logs` (one per replica, same range) hold the same sequence.
void ExpectSameLogs(const std::map<uint32_t, std::vector<log::Entry>>& logs) {
  const auto& [first_id, first] = *logs.begin();
  for (const auto& [id, entries] : logs) {
    EXPECT_EQ(entries.size(), first.size())
        << "replica " << id << " vs replica " << first_id;
    const size_t n = std::min(entries.size(), first.size());
    for (size_t i = 0; i < n; ++i) {
      const log::Entry& a = first[i];
      const log::Entry& b = entries[i];
      if (a.position != b.position || a.index != b.index || a.data != b.data) {
        ADD_FAILURE() << "entry " << i << " differs: replica " << first_id
                      << " has " << Describe(a) << ", replica " << id << " has "
                      << Describe(b);
        break;
      }
    }
  }
}

// Asserts every acknowledged entry is in `entries` exactly once, at its
// acknowledged position; that no entry appears twice; that no entry the
// ledger saw certainly refused appears at all; and that everything in the
// log was sent. Returns how many entries of unknown outcome are present.
size_t ExpectLedgerHonoured(const Ledger& ledger,
                            const std::vector<log::Entry>& entries) {
  std::map<std::string, std::vector<log::Position>> where;
  for (const log::Entry& entry : entries) {
    where[entry.data].push_back({entry.position, entry.index});
  }
  for (const auto& [data, positions] : where) {
    if (positions.size() > 1) {
      std::vector<std::string> places;
      for (const log::Position& p : positions) {
        places.push_back(absl::StrCat(p.position, ".", p.index));
      }
      ADD_FAILURE() << "entry '" << data << "' appears " << positions.size()
                    << " times, at " << absl::StrJoin(places, ", ");
    }
  }
  const auto acked = ledger.acked();
  const auto unknown = ledger.unknown();
  const auto not_appended = ledger.not_appended();
  for (const auto& [data, position] : acked) {
    auto it = where.find(data);
    if (it == where.end()) {
      ADD_FAILURE() << "acknowledged entry '" << data << "' (at "
                    << position.position << "." << position.index
                    << ") is missing from the log";
      continue;
    }
    EXPECT_EQ(it->second.front().position, position.position)
        << "acknowledged entry '" << data << "'";
    EXPECT_EQ(it->second.front().index, position.index)
        << "acknowledged entry '" << data << "'";
  }
  size_t unknown_present = 0;
  for (const auto& [data, positions] : where) {
    if (acked.count(data)) continue;
    if (unknown.count(data)) {
      ++unknown_present;
      continue;
    }
    if (not_appended.count(data)) {
      ADD_FAILURE() << "entry '" << data << "' was refused (307/503 "
                    << "not-appended, or no connection) every time it was "
                    << "sent, yet it is in the log at "
                    << positions.front().position << "."
                    << positions.front().index;
      continue;
    }
    ADD_FAILURE() << "entry '" << data << "' in the log was never sent";
  }
  return unknown_present;
}

uint64_t DirectoryBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code error;
  for (std::filesystem::directory_iterator it(dir, error), end;
       !error && it != end; it.increment(error)) {
    std::error_code size_error;
    if (!it->is_regular_file(size_error)) continue;
    const uintmax_t size = it->file_size(size_error);
    if (!size_error) total += size;
  }
  return total;
}

class LogMultiprocessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    std::unique_ptr<Runfiles> runfiles(Runfiles::CreateForTest(&error));
    ASSERT_NE(runfiles, nullptr) << error;
    binary_ = runfiles->Rlocation("cairn/log/cairn-log");
    ASSERT_FALSE(binary_.empty());
  }

  // Starts a cluster of three replicas with LogClusterOptions' test flags
  // plus `extra_flags`. Stores under TEST_TMPDIR/<test>; replica logs in
  // the undeclared outputs (bazel-testlogs/.../test.outputs) when Bazel
  // provides them.
  void StartCluster(const std::vector<std::string>& extra_flags = {}) {
    const std::string name =
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    const char* tmp = std::getenv("TEST_TMPDIR");
    const char* outputs = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
    LogClusterOptions options;
    options.binary = binary_;
    options.root = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name);
    if (outputs != nullptr) options.log_dir = outputs;
    options.log_prefix = name + "-";
    options.flags.insert(options.flags.end(), extra_flags.begin(),
                         extra_flags.end());
    auto cluster = LogCluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
  }

  // The serving leader, or a failure naming every replica's status.
  uint32_t Leader() {
    auto leader = cluster_->WaitForServingLeader(absl::Now() + kLeaderTimeout);
    EXPECT_TRUE(leader.ok()) << leader.status();
    return leader.ok() ? *leader : 0;
  }

  // Reads [1, through] from every replica of `ids`.
  std::map<uint32_t, std::vector<log::Entry>> ReadLogs(
      const std::vector<uint32_t>& ids, uint64_t through) {
    std::map<uint32_t, std::vector<log::Entry>> logs;
    for (uint32_t id : ids) {
      auto entries = cluster_->ReadAll(id, 1, through);
      EXPECT_TRUE(entries.ok()) << "replica " << id << ": " << entries.status();
      if (entries.ok()) logs[id] = *std::move(entries);
    }
    return logs;
  }

  std::string binary_;
  std::unique_ptr<LogCluster> cluster_;
};

TEST_F(LogMultiprocessTest, LeaderKilledRepeatedlyLosesNoAcknowledgedEntry) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  ASSERT_NE(Leader(), 0u);

  Ledger ledger;
  Appenders::Options appender_options;
  appender_options.prefix = "kill";
  appender_options.threads = 8;  // as many appends in flight as max_in_flight
  Appenders appenders(cluster_.get(), &ledger, appender_options);

  constexpr int kKills = 5;
  constexpr size_t kAcksBetweenKills = 30;
  for (int kill = 1; kill <= kKills; ++kill) {
    const uint32_t leader = Leader();
    ASSERT_NE(leader, 0u);
    // Kill under load: only once the new leader has acknowledged entries.
    const size_t acked = ledger.acked_count();
    ASSERT_TRUE(ledger.WaitForAcked(acked + kAcksBetweenKills,
                                    absl::Now() + kLeaderTimeout))
        << "no progress after leader " << leader << " took over";
    cluster_->KillReplica(leader);
    std::printf("kill %d: SIGKILLed leader %u with %zu entries acknowledged\n",
                kill, leader, ledger.acked_count());
    const absl::Status restarted = cluster_->StartReplica(leader);
    ASSERT_TRUE(restarted.ok()) << restarted;
  }
  ASSERT_NE(Leader(), 0u);
  ASSERT_TRUE(ledger.WaitForAcked(ledger.acked_count() + kAcksBetweenKills,
                                  absl::Now() + kLeaderTimeout));
  appenders.Stop();

  auto through = cluster_->WaitForEqualLearned(cluster_->ids(), 0,
                                               absl::Now() + kConvergeTimeout);
  ASSERT_TRUE(through.ok()) << through.status();
  const auto logs = ReadLogs(cluster_->ids(), *through);
  ASSERT_EQ(logs.size(), cluster_->ids().size());
  ExpectSameLogs(logs);
  const size_t unknown_present =
      ExpectLedgerHonoured(ledger, logs.begin()->second);
  EXPECT_TRUE(ledger.errors().empty()) << absl::StrJoin(ledger.errors(), "\n");

  std::printf(
      "acknowledged %zu, unknown outcome %zu (%zu of them in the log), "
      "refused until timeout %zu, errors %zu; log: %zu entries in %llu "
      "positions\n",
      ledger.acked().size(), ledger.unknown().size(), unknown_present,
      ledger.not_appended().size(), ledger.errors().size(),
      logs.begin()->second.size(), static_cast<unsigned long long>(*through));
}

TEST_F(LogMultiprocessTest, WipedReplicaRecoversBeforeVoting) {
  // Small fetches, so recovery takes several rounds.
  ASSERT_NO_FATAL_FAILURE(StartCluster({"--fetch_max_actions=8"}));
  const uint32_t leader = Leader();
  ASSERT_NE(leader, 0u);

  Ledger ledger;
  Appenders::Options initial;
  initial.prefix = "before";
  initial.threads = 4;
  initial.per_thread = 75;
  Appenders(cluster_.get(), &ledger, initial).Join();
  ASSERT_EQ(ledger.acked_count(), 300u) << absl::StrJoin(ledger.errors(), "\n");

  const uint32_t wiped = leader % 3 + 1;  // a follower
  cluster_->KillReplica(wiped);
  ASSERT_TRUE(cluster_->WipeReplica(wiped).ok());

  // Appends continue while it recovers: there is something to vote on.
  Appenders::Options during;
  during.prefix = "during";
  during.threads = 2;
  Appenders appenders(cluster_.get(), &ledger, during);
  ASSERT_TRUE(cluster_->StartReplica(wiped).ok());

  struct Sample {
    absl::Duration at;
    ReplicaStatus status;
  };
  std::vector<Sample> samples;
  const absl::Time started = absl::Now();
  const absl::Time deadline = started + absl::Seconds(15);
  while (samples.empty() || samples.back().status.status != "VOTING") {
    ASSERT_LT(absl::Now(), deadline)
        << "replica " << wiped << " never became VOTING; last status "
        << (samples.empty() ? "none" : samples.back().status.json);
    auto status = cluster_->Status(wiped);
    ASSERT_TRUE(status.ok()) << status.status();
    samples.push_back({absl::Now() - started, *std::move(status)});
    absl::SleepFor(absl::Milliseconds(1));
  }

  // It passed through EMPTY/RECOVERING, in that order, and sent no vote
  // before it was VOTING.
  const std::map<std::string, int> rank = {
      {"EMPTY", 0}, {"RECOVERING", 1}, {"VOTING", 2}};
  int last_rank = 0;
  std::string previous;
  for (const Sample& sample : samples) {
    const std::string& s = sample.status.status;
    ASSERT_TRUE(rank.count(s)) << "unexpected status " << sample.status.json;
    EXPECT_GE(rank.at(s), last_rank) << "went back to " << s;
    last_rank = rank.at(s);
    if (s != "VOTING") {
      EXPECT_EQ(sample.status.votes_sent, 0u)
          << "voted while " << s << ": " << sample.status.json;
    }
    if (s != previous) {
      std::printf(
          "%7.1f ms  %-10s votes_sent=%llu learned_through=%llu %s\n",
          absl::ToDoubleMilliseconds(sample.at), s.c_str(),
          static_cast<unsigned long long>(sample.status.votes_sent),
          static_cast<unsigned long long>(sample.status.learned_through),
          sample.status.status_detail.c_str());
      previous = s;
    }
  }
  ASSERT_GE(samples.size(), 2u);
  EXPECT_NE(samples.front().status.status, "VOTING")
      << "replica " << wiped << " was VOTING at its first status";
  std::printf("%zu status samples of replica %u\n", samples.size(), wiped);

  // Once VOTING it takes part: it votes for the entries still appended.
  const absl::Time vote_deadline = absl::Now() + absl::Seconds(10);
  while (true) {
    auto status = cluster_->Status(wiped);
    ASSERT_TRUE(status.ok()) << status.status();
    if (status->votes_sent > 0) break;
    ASSERT_LT(absl::Now(), vote_deadline) << "never voted: " << status->json;
    absl::SleepFor(absl::Milliseconds(5));
  }
  appenders.Stop();

  auto through = cluster_->WaitForEqualLearned(cluster_->ids(), 0,
                                               absl::Now() + kConvergeTimeout);
  ASSERT_TRUE(through.ok()) << through.status();
  const auto logs = ReadLogs(cluster_->ids(), *through);
  ASSERT_EQ(logs.size(), 3u);
  ExpectSameLogs(logs);
  ExpectLedgerHonoured(ledger, logs.at(wiped));
  EXPECT_TRUE(ledger.errors().empty()) << absl::StrJoin(ledger.errors(), "\n");
}

TEST_F(LogMultiprocessTest, MajorityOfWipedDisksIsRefused) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  ASSERT_NE(Leader(), 0u);
  Ledger ledger;
  Appenders::Options initial;
  initial.prefix = "before";
  initial.threads = 2;
  initial.per_thread = 25;
  Appenders(cluster_.get(), &ledger, initial).Join();
  ASSERT_EQ(ledger.acked_count(), 50u) << absl::StrJoin(ledger.errors(), "\n");
  auto through = cluster_->WaitForEqualLearned(cluster_->ids(), 0,
                                               absl::Now() + kConvergeTimeout);
  ASSERT_TRUE(through.ok()) << through.status();

  constexpr uint32_t kSurvivor = 1;
  const std::vector<uint32_t> wiped = {2, 3};
  for (uint32_t id : cluster_->ids()) cluster_->KillReplica(id);
  for (uint32_t id : wiped) ASSERT_TRUE(cluster_->WipeReplica(id).ok());
  for (uint32_t id : cluster_->ids()) {
    const absl::Status started = cluster_->StartReplica(id);
    ASSERT_TRUE(started.ok()) << started;
  }

  // The wiped replicas see one replica with data and refuse to start over.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  for (uint32_t id : wiped) {
    while (true) {
      auto status = cluster_->Status(id);
      ASSERT_TRUE(status.ok()) << status.status();
      if (absl::StrContains(status->status_detail, "refusing")) {
        EXPECT_EQ(status->status, "EMPTY") << status->json;
        std::printf("replica %u: %s\n", id, status->status_detail.c_str());
        break;
      }
      ASSERT_LT(absl::Now(), deadline)
          << "replica " << id << " did not refuse: " << status->json;
      absl::SleepFor(absl::Milliseconds(5));
    }
  }

  // For several election timeouts: nobody serves, nobody re-initialises,
  // and every replica turns appends away with 503.
  const absl::Time watch_until = absl::Now() + absl::Seconds(2);
  http::Client http;
  int sweeps = 0;
  while (absl::Now() < watch_until) {
    ++sweeps;
    for (uint32_t id : cluster_->ids()) {
      auto status = cluster_->Status(id);
      ASSERT_TRUE(status.ok()) << status.status();
      EXPECT_FALSE(status->serving) << status->json;
      EXPECT_EQ(status->status, id == kSurvivor ? "VOTING" : "EMPTY")
          << status->json;
    }
    for (uint32_t id : cluster_->ids()) {
      auto response = http.Request("POST", "127.0.0.1", cluster_->http_port(id),
                                   "/log/append", {{"Connection", "close"}},
                                   absl::StrCat("refused-", sweeps, "-", id),
                                   absl::Seconds(2));
      ASSERT_TRUE(response.ok()) << response.status();
      EXPECT_EQ(response->status, 503)
          << "replica " << id << ": " << response->body;
      EXPECT_FALSE(absl::StrContains(response->body, "\"outcome\""))
          << "replica " << id << ": " << response->body;
    }
    if (HasFailure()) return;
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::printf("%d sweeps: no leader, appends refused with 503\n", sweeps);

  // The survivor still serves what it learned, from its own store.
  auto entries = cluster_->ReadAll(kSurvivor, 1, *through);
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_EQ(entries->size(), 50u);
  ExpectLedgerHonoured(ledger, *entries);
}

TEST_F(LogMultiprocessTest, DiskUseLevelsOff) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  ASSERT_NE(Leader(), 0u);

  constexpr int kCycles = 60;
  Ledger ledger;
  std::vector<uint64_t> series;  // per cycle: max bytes_on_disk of replicas
  std::vector<std::string> lines;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    Appenders::Options options;
    options.prefix = absl::StrCat("cycle", cycle);
    options.threads = 8;
    options.per_thread = 25;
    options.entry_bytes = 1024;
    options.append_timeout = absl::Seconds(10);
    Appenders(cluster_.get(), &ledger, options).Join();
    // Every append was answered. On a loaded machine a lease can lapse and
    // the leader change mid-cycle: an append then ends "not appended" or
    // "unknown" instead of acknowledged, which is the log's contract, not
    // a failure of this test's subject (disk use).
    ASSERT_TRUE(ledger.errors().empty()) << absl::StrJoin(ledger.errors(), "\n");
    ASSERT_EQ(ledger.acked_count() + ledger.unknown().size() +
                  ledger.not_appended().size(),
              static_cast<size_t>(200 * (cycle + 1)));

    const uint32_t leader = Leader();
    ASSERT_NE(leader, 0u);
    auto status = cluster_->Status(leader);
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_GT(status->learned_through, 10u);
    auto truncated = cluster_->Truncate(status->learned_through - 10);
    ASSERT_TRUE(truncated.ok()) << truncated.status();

    uint64_t max_bytes = 0;
    std::string line = absl::StrCat("cycle ", cycle, ":");
    for (uint32_t id : cluster_->ids()) {
      auto s = cluster_->Status(id);
      ASSERT_TRUE(s.ok()) << s.status();
      max_bytes = std::max(max_bytes, s->bytes_on_disk);
      absl::StrAppend(&line, " r", id, " bytes_on_disk=", s->bytes_on_disk,
                      " (dir ", DirectoryBytes(cluster_->dir(id)), ", begin ",
                      s->begin, ")");
    }
    series.push_back(max_bytes);
    lines.push_back(line);
  }
  for (const std::string& line : lines) std::printf("%s\n", line.c_str());

  const uint64_t early =
      *std::max_element(series.begin() + 10, series.begin() + 20);
  const uint64_t late = *std::max_element(series.end() - 10, series.end());
  std::printf("max bytes_on_disk: cycles 10-19 %llu, last 10 cycles %llu\n",
              static_cast<unsigned long long>(early),
              static_cast<unsigned long long>(late));
  EXPECT_LE(late, 2 * early) << "disk use keeps growing";
}

}  // namespace
}  // namespace cairn::tests
