// Tests of History over real snapshot and archive files and a fake log.
//
// The randomized tests run seeds (base + k); the base is 1 unless the
// CAIRN_SEED environment variable sets it. A failure names its seed:
//   CAIRN_SEED=<seed> bazel test //recovery:history_test

#include "recovery/history.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "master/state.h"
#include "recovery/archive.h"
#include "recovery/internal/files.h"
#include "recovery/snapshot_store.h"
#include "recovery/testing/fake_log.h"
#include "recovery/testing/random_events.h"

namespace cairn::recovery {
namespace {

using master::MasterState;
using testing::FakeLog;
using testing::RandomEvents;
using testing::Rng;

const absl::Time kStart = absl::FromUnixSeconds(1700000000);

uint64_t BaseSeed() {
  uint64_t seed = 1;
  if (const char* env = std::getenv("CAIRN_SEED"); env != nullptr) {
    if (!absl::SimpleAtoi(env, &seed)) std::abort();
  }
  return seed;
}

std::string FreshDir(absl::string_view suffix = "") {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir =
      absl::StrCat(::testing::TempDir(), "/history-", info->test_suite_name(),
                   "-", info->name(), suffix);
  std::system(("rm -rf '" + dir + "'").c_str());
  return dir;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  const std::vector<std::string> names = *internal::ListDir(dir);
  for (const std::string& name : names) {
    total += internal::FileSize(dir + "/" + name).value_or(0);
  }
  return total;
}

// The reference: the live fold of every event at positions <= `position`.
std::string FoldThrough(const std::vector<v1::Event>& events,
                        uint64_t position) {
  MasterState state;
  for (const v1::Event& e : events) {
    if (e.position() > position) break;
    if (!state.Apply(e).ok()) std::abort();
  }
  return state.SerializeCanonical();
}

// The reference at a time: the events before the first one later than it.
std::string FoldUntil(const std::vector<v1::Event>& events, absl::Time time) {
  MasterState state;
  for (const v1::Event& e : events) {
    if (master::ToTime(e.time()) > time) break;
    if (!state.Apply(e).ok()) std::abort();
  }
  return state.SerializeCanonical();
}

// A master's history as the recovery code sees it: events appended to a
// (fake) log; every cycle a snapshot, archiving of all but a short tail, a
// log truncation, and optionally retention.
class Cluster {
 public:
  Cluster(const std::string& dir, uint64_t seed)
      : dir_(dir),
        rng_(seed * 7919),
        generator_(seed, kStart),
        snapshots_(*SnapshotStore::Open(dir + "/snapshots")),
        archive_(*Archive::Open(dir + "/archive")),
        history_(snapshots_.get(), archive_.get(), &log_) {}

  // Appends `count` events (some positions skipped as no-ops), then ends the
  // position and returns it.
  uint64_t AppendEvents(int count) {
    for (int i = 0; i < count; ++i) {
      if (rng_.Chance(5)) generator_.SkipPositions(1 + rng_.Uniform(3));
      v1::Event e = generator_.Next();
      log_.Append(e, /*strip_envelope=*/rng_.Chance(50));
      events_.push_back(e);
    }
    generator_.EndPosition();
    log_.LearnThrough(generator_.position());
    return generator_.position();
  }

  // Snapshot at the current position (unless skipped), archive all but the
  // last `tail` positions and truncate the log to match.
  void Checkpoint(uint64_t tail, bool snapshot = true) {
    const uint64_t position = generator_.position();
    if (snapshot) {
      ASSERT_TRUE(
          snapshots_->Write(position, generator_.state().ToSnapshot()).ok());
    }
    if (position <= tail) return;
    const uint64_t through = position - tail;
    absl::Status status = history_.ArchiveThrough(through);
    ASSERT_TRUE(status.ok()) << status;
    log_.Truncate(through + 1);
  }

  absl::Status Retain(const HistoryRetention& policy) {
    return history_.ApplyRetention(policy, absl::InfiniteFuture()).status();
  }

  uint64_t DiskBytes() const {
    return DirBytes(dir_ + "/snapshots") + DirBytes(dir_ + "/archive");
  }

  History& history() { return history_; }
  SnapshotStore& snapshots() { return *snapshots_; }
  Archive& archive() { return *archive_; }
  FakeLog& log() { return log_; }
  const std::vector<v1::Event>& events() const { return events_; }
  uint64_t position() const { return generator_.position(); }

 private:
  std::string dir_;
  Rng rng_;
  RandomEvents generator_;
  std::unique_ptr<SnapshotStore> snapshots_;
  std::unique_ptr<Archive> archive_;
  FakeLog log_;
  History history_;
  std::vector<v1::Event> events_;
};

// Rebuilds every position in [from, to] and compares with the reference
// (the live fold, taken once along the events).
void ExpectEveryPositionMatches(Cluster* cluster, uint64_t from, uint64_t to,
                                uint64_t seed) {
  const std::vector<v1::Event>& events = cluster->events();
  MasterState reference;
  size_t next = 0;
  for (uint64_t p = 0; p <= to; ++p) {
    while (next < events.size() && events[next].position() <= p) {
      ASSERT_TRUE(reference.Apply(events[next++]).ok());
    }
    if (p < from) continue;
    absl::StatusOr<RebuildResult> rebuilt = cluster->history().RebuildAt(p);
    ASSERT_TRUE(rebuilt.ok())
        << "seed " << seed << " position " << p << ": " << rebuilt.status();
    ASSERT_EQ(rebuilt->state.SerializeCanonical(),
              reference.SerializeCanonical())
        << "seed " << seed << " position " << p << " (from snapshot "
        << rebuilt->snapshot_position << ")";
    ASSERT_EQ(rebuilt->events_rejected, 0u);
  }
}

TEST(HistoryTest, RebuildAtEveryPositionEqualsFoldOfAllEventsUpToIt) {
  const uint64_t base = BaseSeed();
  std::printf("base seed %llu\n", static_cast<unsigned long long>(base));
  for (uint64_t seed = base; seed < base + 3; ++seed) {
    Cluster cluster(FreshDir(absl::StrCat("-", seed)), seed);
    for (int cycle = 0; cycle < 8; ++cycle) {
      cluster.AppendEvents(25);
      cluster.Checkpoint(/*tail=*/5, /*snapshot=*/cycle % 3 != 1);
    }
    cluster.AppendEvents(10);  // a tail only in the log
    ASSERT_EQ(*cluster.history().OldestRetainedPosition(), 0u);
    ASSERT_EQ(*cluster.history().LatestPosition(), cluster.position());
    ExpectEveryPositionMatches(&cluster, 0, cluster.position(), seed);

    // Drop most of the archive: the window shrinks to a snapshot.
    HistoryRetention policy;
    policy.archive.max_bytes = cluster.archive().total_bytes() / 3;
    ASSERT_TRUE(cluster.Retain(policy).ok());
    absl::StatusOr<uint64_t> oldest =
        cluster.history().OldestRetainedPosition();
    ASSERT_TRUE(oldest.ok()) << oldest.status();
    ASSERT_GT(*oldest, 0u) << "seed " << seed;
    ExpectEveryPositionMatches(&cluster, *oldest, cluster.position(), seed);
  }
}

TEST(HistoryTest, RebuildAtTimeEqualsFoldOfEventsUpToThatTime) {
  const uint64_t base = BaseSeed();
  for (uint64_t seed = base; seed < base + 3; ++seed) {
    Cluster cluster(FreshDir(absl::StrCat("-", seed)), seed);
    for (int cycle = 0; cycle < 6; ++cycle) {
      cluster.AppendEvents(25);
      cluster.Checkpoint(/*tail=*/5);
    }
    cluster.AppendEvents(10);
    const absl::Time end = master::ToTime(cluster.events().back().time());
    Rng rng(seed);
    std::vector<absl::Time> times = {kStart - absl::Seconds(1), kStart, end,
                                     end + absl::Hours(1)};
    for (int i = 0; i < 20; ++i) {
      const v1::Event& e =
          cluster.events()[rng.Uniform(cluster.events().size())];
      times.push_back(master::ToTime(e.time()));  // exactly at an event
      times.push_back(kStart +
                      (end - kStart) * double(rng.Uniform(1000)) / 1000.0);
    }
    for (absl::Time t : times) {
      absl::StatusOr<RebuildResult> rebuilt =
          cluster.history().RebuildAtTime(t);
      ASSERT_TRUE(rebuilt.ok())
          << "seed " << seed << " at " << t << ": " << rebuilt.status();
      ASSERT_EQ(rebuilt->state.SerializeCanonical(),
                FoldUntil(cluster.events(), t))
          << "seed " << seed << " at " << absl::FormatTime(t);
    }

    // After retention, times before the window are refused, times after it
    // still match.
    HistoryRetention policy;
    policy.archive.max_bytes = cluster.archive().total_bytes() / 2;
    ASSERT_TRUE(cluster.Retain(policy).ok());
    const uint64_t oldest = *cluster.history().OldestRetainedPosition();
    ASSERT_GT(oldest, 0u);
    for (absl::Time t : times) {
      // The position of the first event later than t (none: 0).
      uint64_t cut = 0;
      for (const v1::Event& e : cluster.events()) {
        if (master::ToTime(e.time()) > t) {
          cut = e.position();
          break;
        }
      }
      absl::StatusOr<RebuildResult> rebuilt =
          cluster.history().RebuildAtTime(t);
      if (cut != 0 && cut <= oldest) {
        EXPECT_EQ(rebuilt.status().code(), absl::StatusCode::kOutOfRange)
            << "seed " << seed << " at " << t;
        continue;
      }
      if (cut == oldest + 1 && !rebuilt.ok()) {
        // Not provable from what is retained (no entry at or before t).
        EXPECT_EQ(rebuilt.status().code(), absl::StatusCode::kOutOfRange);
        continue;
      }
      ASSERT_TRUE(rebuilt.ok())
          << "seed " << seed << " at " << t << ": " << rebuilt.status();
      EXPECT_EQ(rebuilt->state.SerializeCanonical(),
                FoldUntil(cluster.events(), t))
          << "seed " << seed << " at " << absl::FormatTime(t);
    }
  }
}

TEST(HistoryTest, ExpiredPositionReportsTheOldestRetainedPosition) {
  Cluster cluster(FreshDir(), BaseSeed());
  for (int cycle = 0; cycle < 6; ++cycle) {
    cluster.AppendEvents(20);
    cluster.Checkpoint(/*tail=*/3);
  }
  HistoryRetention policy;
  policy.archive.max_bytes = 1;  // as little as the latest snapshot allows
  ASSERT_TRUE(cluster.Retain(policy).ok());

  absl::StatusOr<uint64_t> oldest = cluster.history().OldestRetainedPosition();
  ASSERT_TRUE(oldest.ok()) << oldest.status();
  const uint64_t latest_snapshot = cluster.snapshots().Latest()->position;
  EXPECT_EQ(*oldest, latest_snapshot);
  EXPECT_EQ(*cluster.snapshots().Positions(),
            std::vector<uint64_t>{latest_snapshot});

  absl::StatusOr<RebuildResult> expired =
      cluster.history().RebuildAt(*oldest - 1);
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(expired.status().message().find(
                absl::StrCat("oldest retained position is ", *oldest)),
            std::string::npos)
      << expired.status();
  EXPECT_EQ(cluster.history().RebuildAtTime(kStart).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(cluster.history().RebuildAt(cluster.position() + 1).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(cluster.history().RebuildAt(*oldest).ok());
}

TEST(HistoryTest, CorruptNewestSnapshotFallsBackToAnOlderOne) {
  Cluster cluster(FreshDir(), BaseSeed());
  for (int cycle = 0; cycle < 4; ++cycle) {
    cluster.AppendEvents(20);
    cluster.Checkpoint(/*tail=*/3);
  }
  std::vector<uint64_t> positions = *cluster.snapshots().Positions();
  ASSERT_GE(positions.size(), 2u);
  const std::string path = cluster.snapshots().PathFor(positions.back());
  std::string data = *internal::ReadFile(path);
  data[data.size() / 2] ^= 0x10;
  ASSERT_TRUE(internal::WriteFileDurably(path, path + ".x", data).ok());

  absl::StatusOr<RebuildResult> rebuilt =
      cluster.history().RebuildAt(cluster.position());
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  EXPECT_EQ(rebuilt->snapshot_position, positions[positions.size() - 2]);
  EXPECT_EQ(rebuilt->state.SerializeCanonical(),
            FoldThrough(cluster.events(), cluster.position()));
}

TEST(HistoryTest, CorruptArchiveRecordFailsRebuildWithDataLoss) {
  Cluster cluster(FreshDir(), BaseSeed());
  for (int cycle = 0; cycle < 3; ++cycle) {
    cluster.AppendEvents(20);
    cluster.Checkpoint(/*tail=*/3, /*snapshot=*/false);
  }
  ASSERT_FALSE(cluster.archive().empty());
  const SegmentInfo segment = cluster.archive().segments()[0];
  std::string data = *internal::ReadFile(segment.path);
  data[Archive::kHeaderSize + 20] ^= 0x01;
  ASSERT_TRUE(
      internal::WriteFileDurably(segment.path, segment.path + ".x", data).ok());

  absl::StatusOr<RebuildResult> rebuilt =
      cluster.history().RebuildAt(cluster.position());
  EXPECT_EQ(rebuilt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(rebuilt.status().message().find(segment.path), std::string::npos)
      << rebuilt.status();
}

TEST(HistoryTest, ArchivingRefusesAHoleBetweenArchiveAndLog) {
  Cluster cluster(FreshDir(), BaseSeed());
  cluster.AppendEvents(20);
  ASSERT_TRUE(cluster.history().ArchiveThrough(5).ok());
  cluster.log().Truncate(10);  // 6..9 truncated without archiving: lost
  EXPECT_EQ(cluster.history().ArchiveThrough(cluster.position()).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(cluster.history().OldestRetainedPosition().status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(cluster.history().RebuildAt(cluster.position()).status().code(),
            absl::StatusCode::kDataLoss);
}

v1::Event Numbered(v1::Event e, uint64_t position) {
  e.set_position(position);
  *e.mutable_time() = master::FromTime(kStart + absl::Seconds(position));
  return e;
}

v1::Event RegisterAgent(const std::string& id) {
  v1::Event e;
  auto* info = e.mutable_agent_registered()->mutable_info();
  info->mutable_id()->set_value(id);
  info->set_hostname(id);
  master::Resources::Parse("cpus:4;mem:1024")
      ->ToProto(info->mutable_resources());
  return e;
}

TEST(HistoryTest, DiffReportsAgentsFrameworksAndTasksById) {
  const std::string dir = FreshDir();
  auto snapshots = *SnapshotStore::Open(dir + "/snapshots");
  auto archive = *Archive::Open(dir + "/archive");
  FakeLog log;
  History history(snapshots.get(), archive.get(), &log);

  v1::Event subscribe;
  auto* info = subscribe.mutable_framework_subscribed()->mutable_info();
  info->mutable_id()->set_value("fw");
  info->set_user("u");
  info->set_name("fw");
  info->add_roles("web");
  v1::Event unreachable;
  unreachable.mutable_agent_unreachable()->mutable_agent_id()->set_value("a2");
  v1::Event launch;
  launch.mutable_tasks_launched()->mutable_framework_id()->set_value("fw");
  v1::TaskInfo* task = launch.mutable_tasks_launched()->add_tasks();
  task->set_name("t");
  task->mutable_task_id()->set_value("t");
  task->mutable_agent_id()->set_value("a1");
  master::Resources::Parse("cpus:1")->AllocatedTo("web").ToProto(
      task->mutable_resources());
  v1::Event finished;
  finished.mutable_task_status_updated()->mutable_framework_id()->set_value(
      "fw");
  auto* status = finished.mutable_task_status_updated()->mutable_status();
  status->mutable_task_id()->set_value("t");
  status->set_state(v1::TASK_FINISHED);

  std::vector<v1::Event> events = {RegisterAgent("a1"),
                                   RegisterAgent("a2"),
                                   subscribe,  // 1..3
                                   unreachable,
                                   RegisterAgent("a3"),
                                   launch,     // 4..6
                                   finished};  // 7
  for (size_t i = 0; i < events.size(); ++i) {
    log.Append(Numbered(events[i], i + 1));
  }

  absl::StatusOr<StateDiff> diff = history.DiffBetween(3, 6);
  ASSERT_TRUE(diff.ok()) << diff.status();
  EXPECT_EQ(diff->agents.added, std::vector<std::string>{"a3"});
  EXPECT_EQ(diff->agents.changed, std::vector<std::string>{"a2"});
  EXPECT_TRUE(diff->agents.removed.empty());
  EXPECT_TRUE(diff->frameworks.empty());
  EXPECT_EQ(diff->tasks.added, std::vector<std::string>{"fw/t"});

  diff = history.DiffBetween(6, 7);
  ASSERT_TRUE(diff.ok()) << diff.status();
  EXPECT_TRUE(diff->agents.empty());
  // Without a uuid the update needs no acknowledgement: the task completes.
  EXPECT_EQ(diff->tasks.removed, std::vector<std::string>{"fw/t"});
  EXPECT_EQ(diff->frameworks.changed, std::vector<std::string>{"fw"});

  EXPECT_TRUE(history.DiffBetween(5, 5)->empty());
  EXPECT_EQ(history.DiffBetween(1, 8).status().code(),
            absl::StatusCode::kOutOfRange);
}

// What retention bounds is the history: archive bytes, segment and snapshot
// counts. The snapshot files themselves grow with the state (MasterState
// keeps removed agents and completed frameworks as tombstones), so their
// bytes are checked against the size of the largest state, not a constant.
TEST(HistoryTest, DiskUseLevelsOffUnderArchiveAndRetentionCycles) {
  Cluster cluster(FreshDir(), BaseSeed());
  HistoryRetention policy;
  policy.archive.max_bytes = 32 << 10;
  policy.max_snapshots = 4;
  const int kCycles = 60;
  std::vector<uint64_t> archive_bytes, segment_counts;
  uint64_t largest_segment = 0;
  uint64_t largest_snapshot = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    cluster.AppendEvents(20);
    cluster.Checkpoint(/*tail=*/4);
    ASSERT_TRUE(cluster.Retain(policy).ok());
    for (const SegmentInfo& s : cluster.archive().segments()) {
      largest_segment = std::max(largest_segment, s.bytes);
    }
    archive_bytes.push_back(DirBytes(cluster.archive().dir()));
    segment_counts.push_back(
        internal::ListDir(cluster.archive().dir())->size());
    // Snapshots: at most K files, so at most K copies of the largest state.
    const std::vector<uint64_t> positions = *cluster.snapshots().Positions();
    ASSERT_LE(positions.size(), policy.max_snapshots);
    largest_snapshot = std::max(
        largest_snapshot,
        *internal::FileSize(cluster.snapshots().PathFor(positions.back())));
    ASSERT_LE(*cluster.snapshots().DiskBytes(),
              policy.max_snapshots * largest_snapshot);
    ASSERT_LE(cluster.log().size(), 4u * 20u);  // the log keeps a short tail
  }
  const uint64_t archive_first_half = *std::max_element(
      archive_bytes.begin() + kCycles / 4, archive_bytes.begin() + kCycles / 2);
  const uint64_t archive_second_half = *std::max_element(
      archive_bytes.begin() + kCycles / 2, archive_bytes.end());
  const uint64_t segments_first_half =
      *std::max_element(segment_counts.begin() + kCycles / 4,
                        segment_counts.begin() + kCycles / 2);
  const uint64_t segments_second_half = *std::max_element(
      segment_counts.begin() + kCycles / 2, segment_counts.end());
  std::printf(
      "archive: max %llu bytes / %llu segments in cycles [%d, %d), "
      "%llu / %llu after; limit %llu + one segment (%llu)\n",
      static_cast<unsigned long long>(archive_first_half),
      static_cast<unsigned long long>(segments_first_half), kCycles / 4,
      kCycles / 2, static_cast<unsigned long long>(archive_second_half),
      static_cast<unsigned long long>(segments_second_half),
      static_cast<unsigned long long>(policy.archive.max_bytes),
      static_cast<unsigned long long>(largest_segment));
  EXPECT_LE(archive_second_half, policy.archive.max_bytes + largest_segment);
  EXPECT_LE(segments_second_half, segments_first_half + 2);
  // The history still rebuilds from its oldest retained point.
  const uint64_t oldest = *cluster.history().OldestRetainedPosition();
  ASSERT_GT(oldest, 0u);
  ExpectEveryPositionMatches(&cluster, oldest, cluster.position(), BaseSeed());
}

}  // namespace
}  // namespace cairn::recovery
