// Multi-process test of the master's metrics endpoints (issues 4 and 6):
// real `cairn-master` processes on 127.0.0.1 and a simulated agent
// (FakeAgent).
//
//  - One master: GET /metrics/snapshot is flat JSON with Mesos's key names;
//    master/elected is 1; after an agent subscribes, master/slaves_active
//    and master/slaves_connected become 1, the registration is counted, and
//    the append latency timer (registrar/state_store_ms) has percentiles;
//    ?jsonp=cb wraps the same JSON. GET /metrics is Prometheus text that
//    `promtool check metrics` accepts (skipped, saying so, without
//    promtool).
//  - Three masters: master/elected is 1 on the leader only, and every
//    master reports an ensemble of 3.
//
// Every wait polls an endpoint against a bounded deadline.

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "common/json_value.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_client.h"
#include "tests/internal/master_cluster.h"

namespace cairn::tests {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(15);
constexpr absl::Duration kPollPause = absl::Milliseconds(20);
constexpr char kPromtool[] = "/usr/bin/promtool";

class MetricsEndpointTest : public ::testing::Test {
 protected:
  // Starts `masters` cairn-master processes and waits for a leader.
  void StartCluster(int masters) {
    absl::StatusOr<MasterClusterOptions> options =
        OptionsForThisTest("metrics_endpoint");
    ASSERT_TRUE(options.ok()) << options.status();
    options->masters = masters;
    options->timeout = kTimeout;
    options->flags.insert(options->flags.end(),
                          {"--allocation_interval=100ms"});
    absl::StatusOr<std::unique_ptr<MasterCluster>> cluster =
        MasterCluster::Start(*options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    std::vector<int> all;
    for (int i = 0; i < masters; ++i) all.push_back(i);
    absl::StatusOr<int> leader = cluster_->WaitForLeader(all);
    ASSERT_TRUE(leader.ok()) << leader.status();
    leader_ = *leader;
  }

  static std::string TmpDir() {
    const char* tmp = std::getenv("TEST_TMPDIR");
    return tmp != nullptr ? tmp : "/tmp";
  }

  // GET /metrics/snapshot of master `i`, parsed; an error unless 200 JSON.
  absl::StatusOr<JsonValue> Snapshot(int i) const {
    absl::StatusOr<http::Response> response =
        cluster_->Request(i, "GET", "/metrics/snapshot");
    if (!response.ok()) return response.status();
    if (response->status != 200) {
      return absl::InternalError(absl::StrCat(
          "GET /metrics/snapshot: ", response->status, " ", response->body));
    }
    return ParseJson(response->body);
  }

  // The number under `key` of a snapshot; nullopt when absent or not a
  // number.
  static std::optional<double> Number(const JsonValue& snapshot,
                                      const std::string& key) {
    const JsonValue* v = snapshot.Find(key);
    double value = 0;
    if (v == nullptr || v->kind != JsonValue::Kind::kNumber ||
        !absl::SimpleAtod(v->text, &value)) {
      return std::nullopt;
    }
    return value;
  }

  // Polls master `i`'s snapshot until `key` equals `want`; returns the last
  // snapshot either way (the caller asserts).
  JsonValue WaitForValue(int i, const std::string& key, double want) const {
    const absl::Time deadline = absl::Now() + kTimeout;
    JsonValue last;
    while (absl::Now() < deadline) {
      absl::StatusOr<JsonValue> snapshot = Snapshot(i);
      if (snapshot.ok()) {
        last = *std::move(snapshot);
        if (Number(last, key) == want) break;
      }
      absl::SleepFor(kPollPause);
    }
    return last;
  }

  std::unique_ptr<FakeAgent> NewAgent() const {
    FakeAgentOptions options;
    options.masters = {cluster_->Address(0)};
    options.hostname = "agent-metrics";
    options.resources = {ScalarResource("cpus", 2),
                         ScalarResource("mem", 1024)};
    options.request_timeout = absl::Seconds(2);
    options.subscribe_timeout = kTimeout;
    return std::make_unique<FakeAgent>(options);
  }

  std::unique_ptr<MasterCluster> cluster_;
  int leader_ = -1;
};

TEST_F(MetricsEndpointTest, LeaderSnapshotHasMesosKeysAndCountsAnAgent) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  absl::StatusOr<JsonValue> before = Snapshot(0);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_EQ(before->kind, JsonValue::Kind::kObject);
  // Flat: every value is a number.
  for (const auto& [key, value] : before->fields) {
    EXPECT_EQ(value.kind, JsonValue::Kind::kNumber) << key;
  }
  EXPECT_EQ(Number(*before, "master/elected"), 1);
  EXPECT_EQ(Number(*before, "registrar/log/ensemble_size"), 1);
  EXPECT_EQ(Number(*before, "registrar/log/recovered"), 1);
  EXPECT_EQ(Number(*before, "log/leader"), 1);
  EXPECT_EQ(Number(*before, "master/slaves_active"), 0);
  for (const char* key : {"master/uptime_secs",
                          "master/slaves_inactive",
                          "master/slaves_disconnected",
                          "master/slaves_unreachable",
                          "master/frameworks_active",
                          "master/frameworks_inactive",
                          "master/frameworks_connected",
                          "master/frameworks_disconnected",
                          "master/tasks_staging",
                          "master/tasks_starting",
                          "master/tasks_running",
                          "master/tasks_killing",
                          "master/tasks_unreachable",
                          "master/tasks_finished",
                          "master/tasks_failed",
                          "master/tasks_killed",
                          "master/tasks_lost",
                          "master/tasks_error",
                          "master/tasks_dropped",
                          "master/tasks_gone",
                          "master/outstanding_offers",
                          "master/event_queue_messages",
                          "master/valid_status_updates",
                          "master/invalid_status_updates",
                          "allocator/mesos/allocation_runs",
                          "allocator/mesos/allocation_run_ms/count",
                          "log/position_applied",
                          "log/begin",
                          "log/learned_through"}) {
    EXPECT_TRUE(Number(*before, key).has_value()) << key;
  }

  std::unique_ptr<FakeAgent> agent = NewAgent();
  absl::StatusOr<v1::AgentID> id = agent->Subscribe();
  ASSERT_TRUE(id.ok()) << id.status();

  // The state gauges trail the fold by at most one tick.
  JsonValue after = WaitForValue(0, "master/slaves_active", 1);
  EXPECT_EQ(Number(after, "master/slaves_active"), 1);
  after = WaitForValue(0, "master/slaves_connected", 1);
  EXPECT_EQ(Number(after, "master/slaves_connected"), 1);
  EXPECT_EQ(Number(after, "master/slaves_disconnected"), 0);
  EXPECT_EQ(Number(after, "master/slave_registrations"), 1);
  EXPECT_EQ(Number(after, "master/messages_register_slave"), 1);
  EXPECT_GE(Number(after, "log/position_applied").value_or(0), 1);
  // The leader allocates from its first tick on.
  EXPECT_GE(Number(after, "allocator/mesos/allocation_runs").value_or(0), 1);
  EXPECT_GE(
      Number(after, "allocator/mesos/allocation_run_ms/count").value_or(0), 1);
  // The registration was appended and committed: the store timer has
  // samples and Mesos's percentile keys.
  EXPECT_GE(Number(after, "registrar/state_store_ms/count").value_or(0), 1);
  for (const char* suffix : {"", "/min", "/max", "/p50", "/p90", "/p95", "/p99",
                             "/p999", "/p9999"}) {
    const std::string key = absl::StrCat("registrar/state_store_ms", suffix);
    EXPECT_GE(Number(after, key).value_or(-1), 0) << key;
  }

  // JSONP.
  absl::StatusOr<http::Response> jsonp =
      cluster_->Request(0, "GET", "/metrics/snapshot?jsonp=cb");
  ASSERT_TRUE(jsonp.ok()) << jsonp.status();
  EXPECT_EQ(jsonp->status, 200);
  EXPECT_EQ(jsonp->headers.Get("Content-Type"), "text/javascript");
  ASSERT_TRUE(absl::StartsWith(jsonp->body, "cb({")) << jsonp->body;
  ASSERT_TRUE(absl::EndsWith(jsonp->body, "});")) << jsonp->body;
  const std::string inner = jsonp->body.substr(3, jsonp->body.size() - 5);
  absl::StatusOr<JsonValue> wrapped = ParseJson(inner);
  ASSERT_TRUE(wrapped.ok()) << wrapped.status();
  EXPECT_EQ(Number(*wrapped, "master/elected"), 1);
  absl::StatusOr<http::Response> bad =
      cluster_->Request(0, "GET", "/metrics/snapshot?jsonp=alert(1)");
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->status, 400);

  // Prometheus.
  absl::StatusOr<http::Response> text = cluster_->Request(0, "GET", "/metrics");
  ASSERT_TRUE(text.ok()) << text.status();
  ASSERT_EQ(text->status, 200);
  EXPECT_TRUE(absl::StartsWith(text->headers.Get("Content-Type"),
                               "text/plain; version=0.0.4"));
  const std::vector<std::string> lines = absl::StrSplit(text->body, '\n');
  auto has = [&](const std::string& line) {
    return std::find(lines.begin(), lines.end(), line) != lines.end();
  };
  EXPECT_TRUE(has("# TYPE cairn_master_elected gauge"));
  EXPECT_TRUE(has("cairn_master_elected 1"));
  EXPECT_TRUE(has("cairn_master_slaves_active 1"));
  EXPECT_TRUE(has("# TYPE cairn_master_slave_registrations_total counter"));
  EXPECT_TRUE(has("# TYPE cairn_registrar_state_store_seconds histogram"));
  EXPECT_TRUE(absl::StrContains(
      text->body, "cairn_registrar_state_store_seconds_bucket{le=\"+Inf\"} "));

  if (access(kPromtool, X_OK) != 0) {
    GTEST_SKIP() << kPromtool
                 << " is absent: `promtool check metrics` not run (install "
                    "Debian's prometheus package; tools/setup.sh does)";
  }
  const std::string path =
      absl::StrCat(TmpDir(), "/metrics_endpoint_", getpid(), ".prom");
  {
    std::ofstream out(path);
    out << text->body;
  }
  const std::string command = absl::StrCat(kPromtool, " check metrics < ", path,
                                           " > ", path, ".out 2>&1");
  const int rc = std::system(command.c_str());
  std::ifstream result(path + ".out");
  const std::string output((std::istreambuf_iterator<char>(result)),
                           std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << "promtool check metrics:\n" << output;
}

TEST_F(MetricsEndpointTest, OnlyTheLeaderOfThreeReportsElected) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  for (int i = 0; i < 3; ++i) {
    const double want = i == leader_ ? 1 : 0;
    JsonValue snapshot = WaitForValue(i, "master/elected", want);
    EXPECT_EQ(Number(snapshot, "master/elected"), want) << "master " << i;
    EXPECT_EQ(Number(snapshot, "registrar/log/ensemble_size"), 3)
        << "master " << i;
    EXPECT_EQ(Number(snapshot, "master/slaves_connected"), 0) << "master " << i;
  }
}

}  // namespace
}  // namespace cairn::tests
