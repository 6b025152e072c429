// Multi-process test of snapshot transfer between masters: three real
// `cairn-master` processes on 127.0.0.1 (ephemeral HTTP and log ports,
// stores under TEST_TMPDIR) with a small --snapshot_interval, so the leader
// truncates the log while weights are updated. A standby is SIGKILLed, its
// --work_dir deleted, and it is restarted with the same flags after the log
// was truncated further: its recovered log begins past position 1, so it
// can fold only from a snapshot, which it fetches from a peer master
// (GET /master/snapshot, recovery/snapshot_fetch.h). Its applied position
// and state checksum end equal to the others'; then the leader is SIGKILLed
// and the two survivors (the wiped one among them) still agree and commit.
//
// The second case is a standby that keeps its store but is down long: the
// log is truncated past everything it applied, so on restart it installs a
// peer's snapshot too. Its archive records the positions it never saw as a
// gap (recovery/archive.h) and archives again after it; without that it
// could never archive, and never truncate the log when leading.
//
// Every wait polls an endpoint against a bounded deadline; nothing asserts
// an outcome after a fixed sleep.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "common/json_value.h"
#include "gtest/gtest.h"
#include "tests/internal/master_cluster.h"

namespace cairn::tests {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(15);
constexpr absl::Duration kPollPause = absl::Milliseconds(10);
// Events between snapshots: the leader truncates below its previous
// snapshot, so the log loses its first positions after ~2 intervals.
constexpr int kSnapshotInterval = 4;
constexpr char kGetWeights[] = R"({"type":"GET_WEIGHTS"})";

std::string UpdateWeights(const std::string& role, int weight) {
  return absl::StrCat(
      R"({"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[)",
      R"({"role":")", role, R"(","weight":)", weight, "}]}}");
}

// The first position master's log replica holds, from /master/replica.
std::optional<uint64_t> LogBegin(const MasterReplica& replica) {
  absl::StatusOr<JsonValue> json = ParseJson(replica.json);
  if (!json.ok()) return std::nullopt;
  const JsonValue* log = json->Find("log");
  if (log == nullptr) return std::nullopt;
  return log->Uint("begin");
}

// The "archive" of /master/replica: what the master's own archive covers
// and its gaps.
struct ArchiveView {
  uint64_t first = 0;
  uint64_t last = 0;  // 0: empty
  std::vector<std::pair<uint64_t, uint64_t>> gaps;
};

std::optional<ArchiveView> ArchiveOf(const MasterReplica& replica) {
  absl::StatusOr<JsonValue> json = ParseJson(replica.json);
  if (!json.ok()) return std::nullopt;
  const JsonValue* archive = json->Find("archive");
  if (archive == nullptr) return std::nullopt;
  ArchiveView view;
  std::optional<uint64_t> first = archive->Uint("first");
  std::optional<uint64_t> last = archive->Uint("last");
  const JsonValue* gaps = archive->Find("gaps");
  if (!first || !last || gaps == nullptr) return std::nullopt;
  view.first = *first;
  view.last = *last;
  for (const JsonValue& gap : gaps->items) {
    std::optional<uint64_t> from = gap.Uint("first");
    std::optional<uint64_t> to = gap.Uint("last");
    if (!from || !to) return std::nullopt;
    view.gaps.emplace_back(*from, *to);
  }
  return view;
}

// The position in the master's "installed the snapshot at position N" line.
std::optional<uint64_t> InstalledPosition(const std::string& log_text) {
  const std::string line = "installed the snapshot at position ";
  const size_t at = log_text.find(line);
  if (at == std::string::npos) return std::nullopt;
  const size_t from = at + line.size();
  const size_t end = log_text.find_first_not_of("0123456789", from);
  uint64_t position = 0;
  if (!absl::SimpleAtoi(log_text.substr(from, end - from), &position)) {
    return std::nullopt;
  }
  return position;
}

class MasterSnapshotTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<MasterClusterOptions> options =
        OptionsForThisTest("master_snapshot_transfer");
    ASSERT_TRUE(options.ok()) << options.status();
    options->flags.insert(
        options->flags.begin(),
        absl::StrCat("--snapshot_interval=", kSnapshotInterval));
    options->timeout = kTimeout;
    absl::StatusOr<std::unique_ptr<MasterCluster>> cluster =
        MasterCluster::Start(*options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
  }

  // UPDATE_WEIGHTS through whichever of `masters` leads, until one answers
  // 200 (committed and applied) or the deadline passes; re-sending after a
  // 503 is safe because setting a weight is idempotent. Records the weight
  // in `expected_`.
  void Update(const std::vector<int>& masters, const std::string& role,
              int weight) {
    const absl::Time deadline = absl::Now() + kTimeout;
    std::string last;
    for (;;) {
      for (int i : masters) {
        absl::StatusOr<http::Response> r = cluster_->Request(
            i, "POST", "/api/v1", UpdateWeights(role, weight));
        if (r.ok() && r->status == 200) {
          expected_[role] = weight;
          return;
        }
        if (r.ok() && r->status == 400) FAIL() << r->body;
        if (r.ok() && r->status != 307) {
          last = absl::StrCat("master ", i, ": ", r->status, " ", r->body);
        }
      }
      ASSERT_LT(absl::Now(), deadline) << "no leader took the update: " << last;
      absl::SleepFor(kPollPause);
    }
  }

  // `count` updates over five roles, with weights from `*next_weight` on.
  void Updates(const std::vector<int>& masters, int count, int* next_weight) {
    for (int i = 0; i < count; ++i, ++*next_weight) {
      Update(masters, absl::StrCat("r", *next_weight % 5), *next_weight);
      if (HasFatalFailure()) return;
    }
  }

  // Polls until master `i`'s log replica begins after position `after`;
  // returns where it begins.
  uint64_t WaitForLogBegin(int i, uint64_t after) {
    const absl::Time deadline = absl::Now() + kTimeout;
    std::optional<MasterReplica> replica;
    for (;;) {
      replica = cluster_->GetReplica(i);
      std::optional<uint64_t> begin =
          replica.has_value() ? LogBegin(*replica) : std::nullopt;
      if (begin.has_value() && *begin > after) return *begin;
      if (absl::Now() >= deadline) {
        ADD_FAILURE() << "master " << i << "'s log never began after " << after
                      << ": " << (replica ? replica->json : "-");
        return 0;
      }
      absl::SleepFor(kPollPause);
    }
  }

  // Polls until master `i`'s archive satisfies `done`; returns it.
  template <typename Done>
  std::optional<ArchiveView> WaitForArchive(int i, const std::string& what,
                                            Done done) {
    const absl::Time deadline = absl::Now() + kTimeout;
    std::optional<MasterReplica> replica;
    for (;;) {
      replica = cluster_->GetReplica(i);
      std::optional<ArchiveView> archive =
          replica.has_value() ? ArchiveOf(*replica) : std::nullopt;
      if (archive.has_value() && done(*archive)) return archive;
      if (absl::Now() >= deadline) {
        ADD_FAILURE() << "master " << i << "'s archive never " << what << ": "
                      << (replica ? replica->json : "-");
        return std::nullopt;
      }
      absl::SleepFor(kPollPause);
    }
  }

  // The GET_WEIGHTS answer the updates so far should give.
  std::string ExpectedWeights() const {
    std::string infos;
    for (const auto& [role, weight] : expected_) {
      absl::StrAppend(&infos, infos.empty() ? "" : ",", R"({"role":")", role,
                      R"(","weight":)", weight, "}");
    }
    return absl::StrCat(
        R"({"type":"GET_WEIGHTS","get_weights":{"weight_infos":[)", infos,
        "]}}");
  }

  std::unique_ptr<MasterCluster> cluster_;
  std::map<std::string, int> expected_;  // role -> weight
};

TEST_F(MasterSnapshotTransferTest, WipedStandbyRejoinsFromPeerSnapshot) {
  absl::StatusOr<int> first = cluster_->WaitForLeader({0, 1, 2});
  ASSERT_TRUE(first.ok()) << first.status();
  const int leader = *first;
  const int wiped = (leader + 1) % 3;
  const int other = (leader + 2) % 3;
  const std::vector<int> all = {0, 1, 2};

  // Enough events for a few snapshots: the leader truncates the log.
  int weight = 1;
  Updates(all, 4 * kSnapshotInterval, &weight);
  ASSERT_FALSE(HasFatalFailure());
  const uint64_t begin_before = WaitForLogBegin(leader, 1);
  ASSERT_GT(begin_before, 1u);
  absl::StatusOr<MasterReplica> equal =
      cluster_->WaitForEqualStates(all, begin_before);
  ASSERT_TRUE(equal.ok()) << equal.status();

  // Every master serves its newest snapshot to peers.
  for (int i : all) {
    absl::StatusOr<http::Response> r =
        cluster_->Request(i, "GET", "/master/snapshot");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200) << "master " << i << ": " << r->body;
    EXPECT_EQ(r->headers.Get("Content-Type"), "application/x-protobuf");
    uint64_t position = 0;
    EXPECT_TRUE(absl::SimpleAtoi(r->headers.Get("X-Cairn-Snapshot-Position"),
                                 &position));
    EXPECT_GT(position, 0u);
    EXPECT_LE(position, equal->applied);
  }
  absl::StatusOr<http::Response> too_new = cluster_->Request(
      leader, "GET",
      absl::StrCat("/master/snapshot?min_position=", equal->applied + 1));
  ASSERT_TRUE(too_new.ok()) << too_new.status();
  EXPECT_EQ(too_new->status, 404) << too_new->body;

  // SIGKILL a standby and delete its whole store (log, snapshots, archive).
  cluster_->Kill(wiped);
  std::error_code error;
  std::filesystem::remove_all(cluster_->work_dir(wiped), error);
  ASSERT_FALSE(error) << error.message();

  // The other two go on and truncate further while it is away.
  Updates({leader, other}, 3 * kSnapshotInterval, &weight);
  ASSERT_FALSE(HasFatalFailure());
  const uint64_t begin_after = WaitForLogBegin(leader, begin_before);
  ASSERT_GT(begin_after, begin_before);

  // Restart it with the same flags; updates go on while it recovers.
  const absl::Time restarted = absl::Now();
  absl::Status restart = cluster_->Restart(
      wiped, absl::StrCat("master-", wiped, "-after-wipe.log"));
  ASSERT_TRUE(restart.ok()) << restart;
  Updates(all, 2, &weight);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(cluster_->WaitForHealth(wiped, absl::Now() + kTimeout))
      << cluster_->process(wiped)->LogTail();

  // Its replica's log begins past position 1: only a peer's snapshot lets it
  // fold. It must reach the others' applied position and state checksum.
  std::optional<MasterReplica> leader_state = cluster_->GetReplica(leader);
  ASSERT_TRUE(leader_state.has_value());
  equal = cluster_->WaitForEqualStates(all, leader_state->applied);
  ASSERT_TRUE(equal.ok()) << equal.status() << "\n"
                          << cluster_->process(wiped)->LogTail();
  std::printf(
      "snapshot transfer: wiped master %s rejoined at applied position %llu "
      "%s after its restart (log begins at %llu)\n",
      cluster_->Address(wiped).c_str(),
      static_cast<unsigned long long>(equal->applied),
      absl::FormatDuration(absl::Now() - restarted).c_str(),
      static_cast<unsigned long long>(begin_after));
  const std::string log_text = cluster_->process(wiped)->LogTail(1 << 20);
  EXPECT_TRUE(absl::StrContains(log_text, "installed the snapshot at position"))
      << log_text;
  std::optional<MasterReplica> wiped_state = cluster_->GetReplica(wiped);
  ASSERT_TRUE(wiped_state.has_value());
  std::optional<uint64_t> wiped_begin = LogBegin(*wiped_state);
  ASSERT_TRUE(wiped_begin.has_value()) << wiped_state->json;
  EXPECT_GT(*wiped_begin, 1u) << wiped_state->json;

  // Its log replica came back EMPTY and votes again only once it recovered
  // from the voting replicas (docs/log.md, "Disk loss and recovery"); until
  // then the survivors of a leader's death would have no quorum.
  const absl::Time voting_deadline = absl::Now() + kTimeout;
  for (;;) {
    const std::string text = cluster_->process(wiped)->LogTail(1 << 20);
    if (absl::StrContains(text, "now VOTING")) break;
    ASSERT_LT(absl::Now(), voting_deadline)
        << "the wiped replica never voted again:\n"
        << text;
    absl::SleepFor(kPollPause);
  }

  // The leader dies: the survivors, the wiped master among them, elect one,
  // commit, and still agree with each other and with every update.
  cluster_->Kill(leader);
  const std::vector<int> survivors = {wiped, other};
  absl::StatusOr<int> second = cluster_->WaitForLeader(survivors);
  ASSERT_TRUE(second.ok()) << second.status();
  Updates(survivors, 2, &weight);
  ASSERT_FALSE(HasFatalFailure());
  absl::StatusOr<MasterReplica> after =
      cluster_->WaitForEqualStates(survivors, equal->applied + 2);
  ASSERT_TRUE(after.ok()) << after.status();
  absl::StatusOr<int> final_leader = cluster_->WaitForLeader(survivors);
  ASSERT_TRUE(final_leader.ok()) << final_leader.status();
  absl::StatusOr<http::Response> weights =
      cluster_->Request(*final_leader, "POST", "/api/v1", kGetWeights);
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_EQ(weights->body, ExpectedWeights());
  std::printf("snapshot transfer: leader %s before, %s after the kill\n",
              cluster_->Address(leader).c_str(),
              cluster_->Address(*final_leader).c_str());
}

TEST_F(MasterSnapshotTransferTest,
       StandbyDownLongRecordsAnArchiveGapAndArchivesAgain) {
  absl::StatusOr<int> first = cluster_->WaitForLeader({0, 1, 2});
  ASSERT_TRUE(first.ok()) << first.status();
  const int leader = *first;
  const int away = (leader + 1) % 3;
  const int other = (leader + 2) % 3;
  const std::vector<int> all = {0, 1, 2};

  // Snapshots, archiving and truncation on every master.
  int weight = 1;
  Updates(all, 3 * kSnapshotInterval, &weight);
  ASSERT_FALSE(HasFatalFailure());
  const uint64_t begin_before = WaitForLogBegin(leader, 1);
  ASSERT_GT(begin_before, 1u);
  ASSERT_TRUE(cluster_->WaitForEqualStates(all, begin_before).ok());
  const std::optional<ArchiveView> archived = WaitForArchive(
      away, "archived", [](const ArchiveView& a) { return a.last > 0; });
  ASSERT_TRUE(archived.has_value());
  ASSERT_TRUE(archived->gaps.empty());

  // SIGKILL the standby; its store stays. The others go on until the log
  // begins after everything it applied.
  std::optional<MasterReplica> last_seen = cluster_->GetReplica(away);
  ASSERT_TRUE(last_seen.has_value());
  const std::optional<ArchiveView> archived_at_kill = ArchiveOf(*last_seen);
  ASSERT_TRUE(archived_at_kill.has_value()) << last_seen->json;
  cluster_->Kill(away);
  Updates({leader, other}, 4 * kSnapshotInterval, &weight);
  ASSERT_FALSE(HasFatalFailure());
  const uint64_t begin_after = WaitForLogBegin(leader, last_seen->applied + 1);
  ASSERT_GT(begin_after, last_seen->applied + 1);

  // Restarted, it learns the truncation, installs a peer's snapshot and
  // reaches the others' state.
  absl::Status restart =
      cluster_->Restart(away, absl::StrCat("master-", away, "-after-down.log"));
  ASSERT_TRUE(restart.ok()) << restart;
  Updates(all, 2, &weight);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(cluster_->WaitForHealth(away, absl::Now() + kTimeout))
      << cluster_->process(away)->LogTail();
  std::optional<MasterReplica> leader_state = cluster_->GetReplica(leader);
  ASSERT_TRUE(leader_state.has_value());
  absl::StatusOr<MasterReplica> equal =
      cluster_->WaitForEqualStates(all, leader_state->applied);
  ASSERT_TRUE(equal.ok()) << equal.status() << "\n"
                          << cluster_->process(away)->LogTail();
  const std::string log_text = cluster_->process(away)->LogTail(1 << 20);
  const std::optional<uint64_t> installed = InstalledPosition(log_text);
  ASSERT_TRUE(installed.has_value()) << log_text;
  EXPECT_GE(*installed, begin_after - 1);

  // Its archive names the positions it never saw as a gap, right after what
  // it had archived before it went down (as one gap segment, or two when it
  // folded a little of its old log before learning of the truncation: then
  // those positions were truncated before it archived them). The second
  // segment may be recorded a little after the first: check the gaps once it
  // archives again (its archive's end passes the installed snapshot), when
  // nothing more can be added below that.
  std::optional<MasterReplica> away_state = cluster_->GetReplica(away);
  ASSERT_TRUE(away_state.has_value());
  const std::optional<ArchiveView> early = ArchiveOf(*away_state);
  ASSERT_TRUE(early.has_value()) << away_state->json;
  ASSERT_FALSE(early->gaps.empty()) << away_state->json;

  Updates(all, 2 * kSnapshotInterval, &weight);
  ASSERT_FALSE(HasFatalFailure());
  const std::optional<ArchiveView> with_gap =
      WaitForArchive(away, "passed the installed snapshot",
                     [&](const ArchiveView& a) { return a.last > *installed; });
  ASSERT_TRUE(with_gap.has_value());
  ASSERT_FALSE(with_gap->gaps.empty());
  EXPECT_LE(with_gap->gaps.size(), 2u);
  // What was seen early is where the final gaps start.
  EXPECT_EQ(with_gap->gaps.front(), early->gaps.front());
  const uint64_t gap_first = with_gap->gaps.front().first;
  const uint64_t gap_last = with_gap->gaps.back().second;
  for (size_t k = 1; k < with_gap->gaps.size(); ++k) {
    EXPECT_EQ(with_gap->gaps[k].first, with_gap->gaps[k - 1].second + 1);
  }
  EXPECT_EQ(gap_first, archived_at_kill->last + 1);
  EXPECT_GE(gap_last, last_seen->applied);
  EXPECT_LE(gap_last, *installed);

  // The leader dies. Whichever survivor leads (the restarted one can only
  // because it archives again) truncates the log further, and they agree.
  uint64_t begin_at_kill = 0;
  for (int i : {away, other}) {
    std::optional<MasterReplica> replica = cluster_->GetReplica(i);
    ASSERT_TRUE(replica.has_value());
    begin_at_kill = std::max(begin_at_kill, LogBegin(*replica).value_or(0));
  }
  cluster_->Kill(leader);
  const std::vector<int> survivors = {away, other};
  absl::StatusOr<int> second = cluster_->WaitForLeader(survivors);
  ASSERT_TRUE(second.ok()) << second.status();
  Updates(survivors, 3 * kSnapshotInterval, &weight);
  ASSERT_FALSE(HasFatalFailure());
  absl::StatusOr<int> final_leader = cluster_->WaitForLeader(survivors);
  ASSERT_TRUE(final_leader.ok()) << final_leader.status();
  const uint64_t begin_final = WaitForLogBegin(*final_leader, begin_at_kill);
  EXPECT_GT(begin_final, begin_at_kill);
  std::optional<MasterReplica> final_state =
      cluster_->GetReplica(*final_leader);
  ASSERT_TRUE(final_state.has_value());
  ASSERT_TRUE(
      cluster_->WaitForEqualStates(survivors, final_state->applied).ok());
  absl::StatusOr<http::Response> weights =
      cluster_->Request(*final_leader, "POST", "/api/v1", kGetWeights);
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_EQ(weights->body, ExpectedWeights());
  std::printf(
      "down standby %s: archive gap %llu..%llu, snapshot installed at %llu, "
      "archive now through %llu; after the leader's kill %s leads (%s) and "
      "the log begins at %llu (was %llu)\n",
      cluster_->Address(away).c_str(),
      static_cast<unsigned long long>(gap_first),
      static_cast<unsigned long long>(gap_last),
      static_cast<unsigned long long>(*installed),
      static_cast<unsigned long long>(with_gap->last),
      cluster_->Address(*final_leader).c_str(),
      *final_leader == away ? "the restarted one" : "the other one",
      static_cast<unsigned long long>(begin_final),
      static_cast<unsigned long long>(begin_at_kill));
}

}  // namespace
}  // namespace cairn::tests
