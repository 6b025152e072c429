// A single in-process master on 127.0.0.1 (one log replica, ephemeral
// ports): election, the operator calls end to end, recovery after restart
// from snapshot + log. Multi-master failover: tests/master_failover_test.cc.

#include "master/master.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "gtest/gtest.h"

namespace cairn::master {
namespace {

constexpr char kUpdateA[] =
    R"({"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[)"
    R"({"role":"a","weight":2}]}})";
constexpr char kGetWeights[] = R"({"type":"GET_WEIGHTS"})";

class MasterTest : public ::testing::Test {
 protected:
  MasterOptions Options() {
    MasterOptions options;
    options.port = 0;
    options.work_dir = dir_;
    options.election_timeout = absl::Milliseconds(100);
    options.lease = absl::Milliseconds(50);
    options.heartbeat_interval = absl::Milliseconds(20);
    return options;
  }

  void StartMaster(MasterOptions options) {
    absl::StatusOr<std::unique_ptr<Master>> master =
        Master::Start(std::move(options));
    ASSERT_TRUE(master.ok()) << master.status();
    master_ = *std::move(master);
  }

  // Polls until the master leads; false at the deadline.
  bool WaitLeading() {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (master_->role() == Master::Role::kLeading) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  http::Response Call(const std::string& body,
                      const std::string& type = "application/json") {
    absl::StatusOr<http::Response> r =
        client_.Request("POST", "127.0.0.1", master_->http_port(), "/api/v1",
                        {{"Content-Type", type}}, body);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : http::Response{};
  }

  http::Response Get(const std::string& path) {
    absl::StatusOr<http::Response> r =
        client_.Request("GET", "127.0.0.1", master_->http_port(), path);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : http::Response{};
  }

  const std::string dir_ = absl::StrCat(
      ::testing::TempDir(), "/master_test_",
      ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::unique_ptr<Master> master_;
  http::Client client_;
};

TEST_F(MasterTest, LeadsAloneAndServesWeights) {
  StartMaster(Options());
  ASSERT_TRUE(WaitLeading());
  EXPECT_EQ(Get("/health").status, 200);
  EXPECT_TRUE(absl::StrContains(Get("/version").body, "\"version\""));

  http::Response update = Call(kUpdateA);
  EXPECT_EQ(update.status, 200) << update.body;
  http::Response weights = Call(kGetWeights);
  EXPECT_EQ(weights.status, 200);
  EXPECT_EQ(weights.body,
            R"({"type":"GET_WEIGHTS","get_weights":{"weight_infos":[)"
            R"({"role":"a","weight":2}]}})");
  http::Response state = Get("/master/state");
  EXPECT_EQ(state.status, 200);
  EXPECT_TRUE(absl::StrContains(state.body, "\"log_position\":")) << state.body;
  // A JSON number, as Mesos writes 64-bit integers.
  EXPECT_FALSE(absl::StrContains(state.body, "\"log_position\":\""))
      << state.body;
}

TEST_F(MasterTest, RedirectPointsAtItselfWhenLeading) {
  StartMaster(Options());
  ASSERT_TRUE(WaitLeading());
  http::Response r = Get("/master/redirect");
  EXPECT_EQ(r.status, 307);
  EXPECT_TRUE(absl::StartsWith(r.headers.Get("Location"), "//127.0.0.1:"));
}

TEST_F(MasterTest, RejectsBadCalls) {
  StartMaster(Options());
  ASSERT_TRUE(WaitLeading());
  EXPECT_EQ(Call(kUpdateA, "text/plain").status, 415);
  // JSON bytes are not a protobuf Call.
  EXPECT_EQ(Call(kUpdateA, "application/x-protobuf").status, 400);
  EXPECT_EQ(Call("{not json").status, 400);
  EXPECT_EQ(Call(R"({"type":"TEARDOWN"})").status, 400);
  EXPECT_EQ(Call(R"({"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":)"
                 R"([{"role":"a","weight":0}]}})")
                .status,
            400);
  EXPECT_EQ(Call(R"({"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":)"
                 R"([{"role":"*","weight":1}]}})")
                .status,
            400);
  EXPECT_EQ(Call(kGetWeights).body,
            R"({"type":"GET_WEIGHTS","get_weights":{"weight_infos":[]}})");
}

TEST_F(MasterTest, RecoversFromSnapshotAndLogAfterRestart) {
  MasterOptions options = Options();
  options.snapshot_interval = 2;
  StartMaster(options);
  ASSERT_TRUE(WaitLeading());
  for (int i = 1; i <= 5; ++i) {
    http::Response r = Call(absl::StrCat(
        R"({"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[)",
        R"({"role":"r)", i, R"(","weight":)", i, "}]}}"));
    ASSERT_EQ(r.status, 200) << r.body;
  }
  const std::string before = Call(kGetWeights).body;
  const std::string replica = Get("/master/replica").body;
  EXPECT_FALSE(absl::StrContains(replica, "\"snapshot_position\":\"0\""))
      << replica;
  master_->Stop();
  master_.reset();
  client_.CloseConnection();

  StartMaster(options);
  ASSERT_TRUE(WaitLeading());
  EXPECT_EQ(Call(kGetWeights).body, before);
}

}  // namespace
}  // namespace cairn::master
