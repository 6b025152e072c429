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

  // A snapshot at the current position only (as one installed from a peer).
  void WriteSnapshot() {
    ASSERT_TRUE(
        snapshots_
            ->Write(generator_.position(), generator_.state().ToSnapshot())
            .ok());
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
  // Positions from the end reached (events share positions, so 40 events
  // reach well past 4 positions whatever the seed).
  const uint64_t end = cluster.AppendEvents(40);
  ASSERT_GE(end, 4u);
  ASSERT_TRUE(cluster.history().ArchiveThrough(end / 4).ok());
  // end / 4 + 1 .. end / 2 truncated without archiving: lost, no gap named.
  cluster.log().Truncate(end / 2 + 1);
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

// ---- Gaps: a master that was away while the log was truncated --------------

constexpr char kGapReason[] =
    "installed the snapshot at the gap's end from a peer master";

// A master's history with a gap: archived cycles, then a stretch this master
// never archived (the log is truncated past it while it is "away"), a
// snapshot at the stretch's end (as if installed from a peer), the gap
// recorded, and more archived cycles after it.
struct GapScenario {
  uint64_t archived_through = 0;  // the archive's end before the gap
  uint64_t log_begin = 0;         // where the log began after the absence
  uint64_t installed = 0;         // the snapshot the master continued from
  absl::Time recorded;            // when the gap was recorded
};

GapScenario MakeGap(Cluster* cluster) {
  GapScenario g;
  for (int cycle = 0; cycle < 3; ++cycle) {
    cluster->AppendEvents(25);
    cluster->Checkpoint(/*tail=*/5);
  }
  g.archived_through = cluster->archive().last_position();
  // Away: events are decided and the log truncated without this master.
  cluster->AppendEvents(25);
  g.installed = cluster->AppendEvents(25);
  g.log_begin = g.installed - 10;
  cluster->log().Truncate(g.log_begin);
  cluster->WriteSnapshot();
  g.recorded =
      master::ToTime(cluster->events().back().time()) + absl::Minutes(5);
  return g;
}

TEST(HistoryTest, GapIsRecordedAndArchivingContinuesAfterIt) {
  Cluster cluster(FreshDir(), BaseSeed());
  const GapScenario g = MakeGap(&cluster);
  // Without a gap, archiving refuses the hole.
  const absl::Status refused =
      cluster.history().ArchiveThrough(cluster.position());
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;

  ASSERT_TRUE(
      cluster.history().RecordGap(g.installed, kGapReason, g.recorded).ok());
  const SegmentInfo* gap = cluster.archive().GapAt(g.archived_through + 1);
  ASSERT_NE(gap, nullptr);
  // The gap is what neither the archive nor the log holds; the log's
  // positions up to the snapshot are archived normally.
  EXPECT_EQ(gap->first_position, g.archived_through + 1);
  EXPECT_EQ(gap->last_position, g.log_begin - 1);
  EXPECT_EQ(gap->gap->reason, kGapReason);
  EXPECT_EQ(gap->gap->recorded, g.recorded);
  // Recording again adds nothing.
  const size_t segments = cluster.archive().segments().size();
  ASSERT_TRUE(
      cluster.history().RecordGap(g.installed, kGapReason, g.recorded).ok());
  EXPECT_EQ(cluster.archive().segments().size(), segments);

  for (int cycle = 0; cycle < 2; ++cycle) {
    cluster.AppendEvents(20);
    cluster.Checkpoint(/*tail=*/3);  // archives (asserts OK) and truncates
  }
  EXPECT_GT(cluster.archive().last_position(), g.installed);
  EXPECT_EQ(cluster.archive().GapAt(g.log_begin), nullptr);
}

TEST(HistoryTest, RecordGapNeedsASnapshotAfterItAndANonEmptyArchive) {
  Cluster cluster(FreshDir(), BaseSeed());
  const uint64_t first = cluster.AppendEvents(40);
  ASSERT_GE(first, 4u);
  const uint64_t log_begin = first / 2 + 1;
  cluster.log().Truncate(log_begin);
  // An empty archive begins where the log does: no gap, archiving works.
  ASSERT_TRUE(cluster.history().RecordGap(first, kGapReason, kStart).ok());
  EXPECT_TRUE(cluster.archive().empty());
  const absl::Status archived = cluster.history().ArchiveThrough(first - 1);
  ASSERT_TRUE(archived.ok()) << archived;
  EXPECT_EQ(cluster.archive().first_position(), log_begin);

  const uint64_t second = cluster.AppendEvents(40);
  cluster.log().Truncate(second);  // first..second - 1 never archived
  const absl::Status no_snapshot =
      cluster.history().RecordGap(second, kGapReason, kStart);
  EXPECT_EQ(no_snapshot.code(), absl::StatusCode::kFailedPrecondition)
      << no_snapshot;
  EXPECT_EQ(cluster.archive().segments().size(), 1u);
}

TEST(HistoryTest, QueriesInTheGapAreOutOfRangeNamingItAndOthersWork) {
  const uint64_t seed = BaseSeed();
  Cluster cluster(FreshDir(), seed);
  const GapScenario g = MakeGap(&cluster);
  ASSERT_TRUE(
      cluster.history().RecordGap(g.installed, kGapReason, g.recorded).ok());
  for (int cycle = 0; cycle < 2; ++cycle) {
    cluster.AppendEvents(20);
    cluster.Checkpoint(/*tail=*/3);
  }
  cluster.AppendEvents(5);

  // The history before the gap is still this master's: it reaches back to
  // position 0, across the gap.
  absl::StatusOr<uint64_t> oldest = cluster.history().OldestRetainedPosition();
  ASSERT_TRUE(oldest.ok()) << oldest.status();
  EXPECT_EQ(*oldest, 0u);
  EXPECT_EQ(*cluster.history().LatestPosition(), cluster.position());

  // Every position: before the gap and from the installed snapshot on, the
  // fold; a position with a snapshot of its own too; anything else between
  // is out of range, naming the gap.
  const std::vector<uint64_t> snapshots = *cluster.snapshots().Positions();
  const std::vector<v1::Event>& events = cluster.events();
  MasterState reference;
  size_t next = 0;
  for (uint64_t p = 0; p <= cluster.position(); ++p) {
    while (next < events.size() && events[next].position() <= p) {
      ASSERT_TRUE(reference.Apply(events[next++]).ok());
    }
    absl::StatusOr<RebuildResult> rebuilt = cluster.history().RebuildAt(p);
    const bool has_snapshot =
        std::find(snapshots.begin(), snapshots.end(), p) != snapshots.end();
    if (p <= g.archived_through || p >= g.installed || has_snapshot) {
      ASSERT_TRUE(rebuilt.ok())
          << "seed " << seed << " position " << p << ": " << rebuilt.status();
      ASSERT_EQ(rebuilt->state.SerializeCanonical(),
                reference.SerializeCanonical())
          << "seed " << seed << " position " << p;
      continue;
    }
    ASSERT_EQ(rebuilt.status().code(), absl::StatusCode::kOutOfRange)
        << "seed " << seed << " position " << p << ": " << rebuilt.status();
    const std::string message(rebuilt.status().message());
    EXPECT_NE(message.find(absl::StrCat("positions ", g.archived_through + 1,
                                        "..", g.log_begin - 1,
                                        " are a gap in this master's archive")),
              std::string::npos)
        << message;
    EXPECT_NE(message.find(kGapReason), std::string::npos) << message;
    EXPECT_NE(message.find("still exists in the other masters' archives"),
              std::string::npos)
        << message;
  }
  // Diffs across the gap work from both sides.
  EXPECT_TRUE(
      cluster.history().DiffBetween(g.archived_through, g.installed).ok());
  EXPECT_EQ(cluster.history()
                .DiffBetween(g.archived_through, g.archived_through + 1)
                .status()
                .code(),
            absl::StatusCode::kOutOfRange);
}

TEST(HistoryTest, TimeQueriesThatMayFallInTheGapAreOutOfRange) {
  const uint64_t seed = BaseSeed();
  Cluster cluster(FreshDir(), seed);
  const GapScenario g = MakeGap(&cluster);
  ASSERT_TRUE(
      cluster.history().RecordGap(g.installed, kGapReason, g.recorded).ok());
  for (int cycle = 0; cycle < 2; ++cycle) {
    cluster.AppendEvents(20);
    cluster.Checkpoint(/*tail=*/3);
  }
  const std::vector<v1::Event>& events = cluster.events();
  auto time_at = [&](uint64_t position) {  // of the first event there
    for (const v1::Event& e : events) {
      if (e.position() >= position) return master::ToTime(e.time());
    }
    return absl::InfinitePast();
  };
  // Before the gap: answered from the archive.
  for (absl::Time t : {time_at(1), time_at(g.archived_through / 2)}) {
    absl::StatusOr<RebuildResult> rebuilt = cluster.history().RebuildAtTime(t);
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
    EXPECT_EQ(rebuilt->state.SerializeCanonical(), FoldUntil(events, t));
  }
  // Among the gap's events: this master cannot place the cut.
  const absl::Time inside = time_at((g.archived_through + g.log_begin) / 2);
  absl::StatusOr<RebuildResult> in_gap =
      cluster.history().RebuildAtTime(inside);
  EXPECT_EQ(in_gap.status().code(), absl::StatusCode::kOutOfRange)
      << in_gap.status();
  EXPECT_NE(in_gap.status().message().find("are a gap"), std::string::npos)
      << in_gap.status();
  // After the installed snapshot, and after everything: the fold.
  const absl::Time end = master::ToTime(events.back().time());
  for (absl::Time t : {time_at(g.installed + 5), end, end + absl::Hours(1)}) {
    absl::StatusOr<RebuildResult> rebuilt = cluster.history().RebuildAtTime(t);
    ASSERT_TRUE(rebuilt.ok())
        << "seed " << seed << " at " << t << ": " << rebuilt.status();
    EXPECT_EQ(rebuilt->state.SerializeCanonical(), FoldUntil(events, t));
  }
}

TEST(HistoryTest, RetentionTreatsTheGapLikeAnySegment) {
  Cluster cluster(FreshDir(), BaseSeed());
  const GapScenario g = MakeGap(&cluster);
  ASSERT_TRUE(
      cluster.history().RecordGap(g.installed, kGapReason, g.recorded).ok());
  for (int cycle = 0; cycle < 3; ++cycle) {
    cluster.AppendEvents(20);
    cluster.Checkpoint(/*tail=*/3);
  }
  // By age: the segments before the gap expire (their events are at least
  // five minutes older than the gap's record); the gap stays, and still
  // answers for its positions.
  HistoryRetention policy;
  policy.archive.max_age = absl::Hours(1);
  absl::StatusOr<int> deleted = cluster.history().ApplyRetention(
      policy, g.recorded + absl::Hours(1) - absl::Minutes(1));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_GT(*deleted, 0);
  ASSERT_TRUE(cluster.archive().segments().front().gap.has_value());
  EXPECT_EQ(cluster.history().RebuildAt(g.archived_through + 1).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(cluster.history().RebuildAt(g.installed).ok());

  // Later it goes too (never past the newest snapshot); what was in it is
  // then simply no longer retained.
  deleted =
      cluster.history().ApplyRetention(policy, g.recorded + absl::Hours(2));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(cluster.archive().GapAt(g.archived_through + 1), nullptr);
  for (const SegmentInfo& s : cluster.archive().segments()) {
    EXPECT_FALSE(s.gap.has_value());
  }
  const uint64_t oldest = *cluster.history().OldestRetainedPosition();
  EXPECT_GE(oldest, g.installed);
  absl::StatusOr<RebuildResult> gone =
      cluster.history().RebuildAt(g.archived_through + 1);
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(gone.status().message().find("no longer retained"),
            std::string::npos)
      << gone.status();
  ExpectEveryPositionMatches(&cluster, oldest, cluster.position(), BaseSeed());
}

}  // namespace
}  // namespace cairn::recovery
