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
// Every wait polls an endpoint against a bounded deadline; nothing asserts
// an outcome after a fixed sleep.

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
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
#include "tools/cpp/runfiles/runfiles.h"

namespace cairn::tests {
namespace {

using bazel::tools::cpp::runfiles::Runfiles;

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

class MasterSnapshotTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    std::unique_ptr<Runfiles> runfiles(Runfiles::CreateForTest(&error));
    ASSERT_NE(runfiles, nullptr) << error;
    MasterClusterOptions options;
    options.binary = runfiles->Rlocation("cairn/master/cairn-master");
    ASSERT_FALSE(options.binary.empty());
    const char* tmp = std::getenv("TEST_TMPDIR");
    options.root = absl::StrCat(tmp != nullptr ? tmp : "/tmp",
                                "/master_snapshot_transfer_", getpid());
    const char* outputs = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
    if (outputs != nullptr) options.log_dir = outputs;
    options.flags.insert(
        options.flags.begin(),
        absl::StrCat("--snapshot_interval=", kSnapshotInterval));
    options.timeout = kTimeout;
    absl::StatusOr<std::unique_ptr<MasterCluster>> cluster =
        MasterCluster::Start(options);
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

}  // namespace
}  // namespace cairn::tests
