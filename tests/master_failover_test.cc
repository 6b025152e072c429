// Multi-process test of master failover: three real `cairn-master`
// processes on 127.0.0.1 (ephemeral HTTP and log ports, stores under
// TEST_TMPDIR). A leader is elected; standbys redirect (307) to it;
// UPDATE_WEIGHTS commits through it; it is SIGKILLed; a new leader serves
// the weight (it was in the log), and the surviving standby's state equals
// the new leader's.
//
// Every wait polls an endpoint against a bounded deadline; nothing asserts
// an outcome after a fixed sleep.

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "gtest/gtest.h"
#include "tests/internal/master_cluster.h"

namespace cairn::tests {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(15);
constexpr absl::Duration kPollPause = absl::Milliseconds(10);
constexpr char kUpdateA[] =
    R"({"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[)"
    R"({"role":"a","weight":2}]}})";
constexpr char kGetWeights[] = R"({"type":"GET_WEIGHTS"})";
constexpr char kWeightsA[] =
    R"({"type":"GET_WEIGHTS","get_weights":{"weight_infos":[)"
    R"({"role":"a","weight":2}]}})";

class MasterFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<MasterClusterOptions> options =
        OptionsForThisTest("master_failover");
    ASSERT_TRUE(options.ok()) << options.status();
    options->timeout = kTimeout;
    absl::StatusOr<std::unique_ptr<MasterCluster>> cluster =
        MasterCluster::Start(*options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
  }

  std::unique_ptr<MasterCluster> cluster_;
};

TEST_F(MasterFailoverTest, NewLeaderServesCommittedWeightsAfterLeaderKill) {
  absl::StatusOr<int> first = cluster_->WaitForLeader({0, 1, 2});
  ASSERT_TRUE(first.ok()) << first.status();
  const int leader = *first;

  // Standbys redirect to the leader, Mesos style.
  for (int i = 0; i < 3; ++i) {
    if (i == leader) continue;
    absl::StatusOr<http::Response> redirect =
        cluster_->Request(i, "GET", "/master/redirect");
    ASSERT_TRUE(redirect.ok()) << redirect.status();
    EXPECT_EQ(redirect->status, 307);
    EXPECT_EQ(redirect->headers.Get("Location"),
              absl::StrCat("//", cluster_->Address(leader)));
    absl::StatusOr<http::Response> state =
        cluster_->Request(i, "GET", "/master/state");
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_EQ(state->status, 307);
    EXPECT_EQ(state->headers.Get("Location"),
              absl::StrCat("//", cluster_->Address(leader), "/master/state"));
    absl::StatusOr<http::Response> call =
        cluster_->Request(i, "POST", "/api/v1", kUpdateA);
    ASSERT_TRUE(call.ok()) << call.status();
    EXPECT_EQ(call->status, 307);
    EXPECT_EQ(call->headers.Get("Location"),
              absl::StrCat("//", cluster_->Address(leader), "/api/v1"));
  }

  absl::StatusOr<http::Response> update =
      cluster_->Request(leader, "POST", "/api/v1", kUpdateA);
  ASSERT_TRUE(update.ok()) << update.status();
  ASSERT_EQ(update->status, 200) << update->body;
  absl::StatusOr<http::Response> weights =
      cluster_->Request(leader, "POST", "/api/v1", kGetWeights);
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_EQ(weights->body, kWeightsA);
  // The standbys tail the log: their warm states equal the leader's.
  absl::StatusOr<MasterReplica> equal =
      cluster_->WaitForEqualStates({0, 1, 2}, 1);
  EXPECT_TRUE(equal.ok()) << equal.status();

  // SIGKILL the leader; a survivor takes over and serves what was committed.
  const absl::Time killed = absl::Now();
  cluster_->Kill(leader);
  std::vector<int> survivors;
  for (int i = 0; i < 3; ++i) {
    if (i != leader) survivors.push_back(i);
  }
  absl::StatusOr<int> second = cluster_->WaitForLeader(survivors);
  ASSERT_TRUE(second.ok()) << second.status();
  const int next = *second;
  const absl::Time deadline = absl::Now() + kTimeout;
  absl::StatusOr<http::Response> after;
  for (;;) {
    after = cluster_->Request(next, "POST", "/api/v1", kGetWeights);
    if (after.ok() && after->status == 200) break;
    ASSERT_LT(absl::Now(), deadline)
        << (after.ok() ? after->body : after.status().ToString());
    absl::SleepFor(kPollPause);
  }
  std::printf("failover: new leader %s serving %s after the kill\n",
              cluster_->Address(next).c_str(),
              absl::FormatDuration(absl::Now() - killed).c_str());
  EXPECT_EQ(after->body, kWeightsA);

  // The new leader commits with two of three masters, and the remaining
  // standby's state follows it exactly.
  absl::StatusOr<http::Response> update_b = cluster_->Request(
      next, "POST", "/api/v1",
      R"({"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[)"
      R"({"role":"b","weight":3}]}})");
  ASSERT_TRUE(update_b.ok()) << update_b.status();
  EXPECT_EQ(update_b->status, 200) << update_b->body;
  equal = cluster_->WaitForEqualStates(survivors, 2);
  EXPECT_TRUE(equal.ok()) << equal.status();
  for (int i : survivors) {
    if (i == next) continue;
    absl::StatusOr<http::Response> redirect =
        cluster_->Request(i, "GET", "/master/redirect");
    ASSERT_TRUE(redirect.ok());
    EXPECT_EQ(redirect->headers.Get("Location"),
              absl::StrCat("//", cluster_->Address(next)));
  }
}

}  // namespace
}  // namespace cairn::tests
