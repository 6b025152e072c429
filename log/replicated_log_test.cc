// ReplicatedLog on a one-replica log (it initialises and elects itself), with
// real LevelDB in TEST_TMPDIR and short timeouts.

#include "log/replicated_log.h"

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace cairn::log {
namespace {

constexpr absl::Duration kWait = absl::Seconds(10);

class ReplicatedLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = absl::StrCat(
        tmp != nullptr ? tmp : "/tmp", "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }

  LogServerOptions Options() {
    LogServerOptions options;
    options.config.node_id = 1;
    options.config.replicas = {1};
    options.config.election_timeout = absl::Milliseconds(100);
    options.config.lease_duration = absl::Milliseconds(100);
    options.config.heartbeat_interval = absl::Milliseconds(20);
    options.dir = dir_;
    return options;
  }

  // Opens the log and waits until it serves appends.
  std::unique_ptr<ReplicatedLog> OpenServing() {
    auto log = ReplicatedLog::Open(Options());
    EXPECT_TRUE(log.ok()) << log.status();
    if (!log.ok()) return nullptr;
    const absl::Time deadline = absl::Now() + kWait;
    while (!(*log)->Status().serving && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    EXPECT_TRUE((*log)->Status().serving) << "never became the leader";
    return *std::move(log);
  }

  std::string dir_;
};

absl::StatusOr<Position> AppendAndWait(ReplicatedLog* log, std::string entry) {
  std::promise<absl::StatusOr<Position>> done;
  auto result = done.get_future();
  log->Append(std::move(entry), [&done](absl::StatusOr<Position> p) {
    done.set_value(std::move(p));
  });
  if (result.wait_for(absl::ToChronoSeconds(kWait)) !=
      std::future_status::ready) {
    return absl::DeadlineExceededError("append never completed");
  }
  return result.get();
}

absl::StatusOr<uint64_t> TruncateAndWait(ReplicatedLog* log, uint64_t to) {
  std::promise<absl::StatusOr<uint64_t>> done;
  auto result = done.get_future();
  log->Truncate(to, [&done](absl::StatusOr<uint64_t> p) {
    done.set_value(std::move(p));
  });
  if (result.wait_for(absl::ToChronoSeconds(kWait)) !=
      std::future_status::ready) {
    return absl::DeadlineExceededError("truncate never completed");
  }
  return result.get();
}

TEST_F(ReplicatedLogTest, AppendsReadsBackAndAnnouncesLeadership) {
  std::mutex mu;
  std::vector<std::pair<bool, Ballot>> changes;
  auto log =
      ReplicatedLog::Open(Options(), [&](bool leader, const Ballot& ballot) {
        std::lock_guard<std::mutex> lock(mu);
        changes.push_back({leader, ballot});
      });
  ASSERT_TRUE(log.ok()) << log.status();
  const absl::Time deadline = absl::Now() + kWait;
  while (!(*log)->Status().serving && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  std::vector<Position> positions;
  for (const char* entry : {"a", "b", "c"}) {
    auto p = AppendAndWait(log->get(), entry);
    ASSERT_TRUE(p.ok()) << p.status();
    positions.push_back(*p);
  }
  EXPECT_LT(positions[0].position, positions[1].position);
  EXPECT_LT(positions[1].position, positions[2].position);

  auto entries = (*log)->Read(1, positions[2].position);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].data, "a");
  EXPECT_EQ((*entries)[2].data, "c");
  EXPECT_EQ((*entries)[2].position, positions[2].position);
  EXPECT_EQ((*entries)[2].index, positions[2].index);

  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_TRUE(changes[0].first);
    EXPECT_EQ(changes[0].second.node_id(), 1u);
  }
  const LogServerStatus status = (*log)->Status();
  EXPECT_EQ(status.role, Proposer::Role::kLeader);
  EXPECT_EQ(status.leader, std::optional<uint32_t>(1));
  EXPECT_GE(status.counters.appends_ok, 3u);
  EXPECT_GT(status.lease_remaining, absl::ZeroDuration());

  (*log)->Stop();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(changes.size(), 1u) << "a stop is not a step-down";
}

TEST_F(ReplicatedLogTest, ReadPageSaysWhereToContinue) {
  auto log = OpenServing();
  ASSERT_NE(log, nullptr);
  uint64_t last = 0;
  for (int i = 0; i < 10; ++i) {
    auto p = AppendAndWait(log.get(), absl::StrCat("e", i));
    ASSERT_TRUE(p.ok()) << p.status();
    last = p->position;
  }
  std::vector<std::string> all;
  uint64_t next = 1;
  int pages = 0;
  while (next <= last) {
    auto page = log->Read(next, last, 3);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_GT(page->next, next);
    EXPECT_LE(page->next - next, 3u);
    for (const Entry& e : page->entries) all.push_back(e.data);
    next = page->next;
    ++pages;
  }
  EXPECT_GE(pages, 4);
  ASSERT_EQ(all.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(all[i], absl::StrCat("e", i));
  // Past the learned prefix: nothing, and no progress.
  auto beyond = log->Read(last + 1, last + 100, 3);
  ASSERT_TRUE(beyond.ok());
  EXPECT_TRUE(beyond->entries.empty());
  EXPECT_EQ(beyond->next, last + 1);
  EXPECT_EQ(log->Read(1, 2, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ReplicatedLogTest, TruncateDeletesEarlierPositions) {
  auto log = OpenServing();
  ASSERT_NE(log, nullptr);
  std::vector<Position> positions;
  for (int i = 0; i < 5; ++i) {
    auto p = AppendAndWait(log.get(), absl::StrCat("e", i));
    ASSERT_TRUE(p.ok()) << p.status();
    positions.push_back(*p);
  }
  const uint64_t keep = positions[3].position;
  auto truncated_at = TruncateAndWait(log.get(), keep);
  ASSERT_TRUE(truncated_at.ok()) << truncated_at.status();
  EXPECT_GT(*truncated_at, positions[4].position);
  // The status is published after the round that completed the truncate.
  const absl::Time deadline = absl::Now() + kWait;
  while (log->Status().begin != keep && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(log->Status().begin, keep);

  auto old = log->Read(1, *truncated_at);
  EXPECT_EQ(old.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(
      old.status().message().find(absl::StrCat("begins at position ", keep)),
      std::string::npos)
      << old.status();
  auto kept = log->Read(keep, *truncated_at);
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_EQ(kept->size(), 2u);
  EXPECT_EQ((*kept)[0].data, "e3");
  EXPECT_EQ((*kept)[1].data, "e4");
}

TEST_F(ReplicatedLogTest, TruncateBeyondTheChosenPrefixFails) {
  auto log = OpenServing();
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(TruncateAndWait(log.get(), 1000).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ReplicatedLogTest, CallbacksMayReadTheLog) {
  auto log = OpenServing();
  ASSERT_NE(log, nullptr);
  std::promise<absl::StatusOr<std::vector<Entry>>> read;
  auto result = read.get_future();
  ReplicatedLog* raw = log.get();
  log->Append("x", [raw, &read](absl::StatusOr<Position> p) {
    if (!p.ok()) {
      read.set_value(p.status());
      return;
    }
    read.set_value(raw->Read(p->position, p->position));
  });
  ASSERT_EQ(result.wait_for(absl::ToChronoSeconds(kWait)),
            std::future_status::ready);
  auto entries = result.get();
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].data, "x");
}

TEST_F(ReplicatedLogTest, WaitForLearnedTimesOutThenFailsAfterStop) {
  auto log = OpenServing();
  ASSERT_NE(log, nullptr);
  auto p = AppendAndWait(log.get(), "x");
  ASSERT_TRUE(p.ok());
  auto reached = log->WaitForLearned(p->position, absl::Now() + kWait);
  ASSERT_TRUE(reached.ok()) << reached.status();
  EXPECT_GE(*reached, p->position);
  EXPECT_EQ(log->WaitForLearned(p->position + 1000,
                                absl::Now() + absl::Milliseconds(30))
                .status()
                .code(),
            absl::StatusCode::kDeadlineExceeded);
  log->Stop();
  EXPECT_EQ(log->WaitForLearned(p->position + 1000, absl::Now() + kWait)
                .status()
                .code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(AppendAndWait(log.get(), "y").status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_FALSE(log->Status().running);
}

TEST_F(ReplicatedLogTest, ReopenedLogKeepsItsEntries) {
  uint64_t last = 0;
  {
    auto log = OpenServing();
    ASSERT_NE(log, nullptr);
    for (int i = 0; i < 3; ++i) {
      auto p = AppendAndWait(log.get(), absl::StrCat("e", i));
      ASSERT_TRUE(p.ok());
      last = p->position;
    }
  }
  auto log = ReplicatedLog::Open(Options());
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ((*log)->Status().status, cairn::v1::Metadata::VOTING);
  EXPECT_GE((*log)->Status().learned_through, last);
  auto entries = (*log)->Read(1, last);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[2].data, "e2");
}

}  // namespace
}  // namespace cairn::log
