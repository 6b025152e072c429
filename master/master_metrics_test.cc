#include "master/master_metrics.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "cairn/v1/agent.pb.h"
#include "cairn/v1/master.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "common/json_value.h"
#include "gtest/gtest.h"
#include "master/resources.h"
#include "master/state.h"
#include "monitoring/metrics.h"

namespace cairn::master {
namespace {

using v1::Event;

Event AgentRegistered(const std::string& id) {
  Event e;
  auto* info = e.mutable_agent_registered()->mutable_info();
  info->mutable_id()->set_value(id);
  info->set_hostname(id + ".example");
  absl::StatusOr<Resources> r = Resources::Parse("cpus:4;mem:4096");
  EXPECT_TRUE(r.ok());
  for (const v1::Resource& res : r->ToProto()) *info->add_resources() = res;
  return e;
}

Event FrameworkSubscribed(const std::string& id) {
  Event e;
  v1::FrameworkInfo* info = e.mutable_framework_subscribed()->mutable_info();
  info->mutable_id()->set_value(id);
  info->set_user("nobody");
  info->set_name(id);
  info->add_roles("web");
  return e;
}

Event Launch(const std::string& framework, const std::string& agent,
             const std::string& task) {
  Event e;
  auto* launch = e.mutable_tasks_launched();
  launch->mutable_framework_id()->set_value(framework);
  v1::TaskInfo* t = launch->add_tasks();
  t->set_name(task);
  t->mutable_task_id()->set_value(task);
  t->mutable_agent_id()->set_value(agent);
  t->mutable_command()->set_value("sleep 1000");
  absl::StatusOr<Resources> r = Resources::Parse("cpus:1");
  EXPECT_TRUE(r.ok());
  r->AllocatedTo("web").ToProto(t->mutable_resources());
  return e;
}

Event Status(const std::string& framework, const std::string& task,
             v1::TaskState state) {
  Event e;
  auto* u = e.mutable_task_status_updated();
  u->mutable_framework_id()->set_value(framework);
  u->mutable_status()->mutable_task_id()->set_value(task);
  u->mutable_status()->set_state(state);
  u->mutable_status()->set_source(v1::TaskStatus::SOURCE_EXECUTOR);
  return e;
}

class MasterMetricsTest : public ::testing::Test {
 protected:
  MasterMetricsTest() : metrics_(&registry_, Sources()) {}

  MasterMetrics::Sources Sources() {
    MasterMetrics::Sources sources;
    sources.elected = [this] { return elected_; };
    sources.event_queue_length = [] { return size_t{3}; };
    sources.log_status = [this] { return log_status_; };
    sources.applied = [this] { return applied_; };
    sources.replica_id = 2;
    sources.ensemble_size = 3;
    sources.start_time = absl::Now() - absl::Seconds(30);
    return sources;
  }

  // Folds `event` at the next position and tells the metrics, as the
  // master's applied observer does.
  void Fold(Event event) {
    event.set_position(++applied_);
    event.set_index(0);
    ASSERT_TRUE(state_.Apply(event).ok()) << event.ShortDebugString();
    folded_.push_back(event);
    metrics_.OnEventApplied(event);
  }

  double Value(const std::string& key) {
    absl::StatusOr<JsonValue> json = ParseJson(registry_.Snapshot());
    EXPECT_TRUE(json.ok()) << json.status();
    const JsonValue* v = json.ok() ? json->Find(key) : nullptr;
    EXPECT_NE(v, nullptr) << key;
    return v == nullptr ? -1 : std::strtod(v->text.c_str(), nullptr);
  }

  bool elected_ = false;
  log::LogServerStatus log_status_;
  uint64_t applied_ = 0;
  MasterState state_;
  std::vector<Event> folded_;
  monitoring::Registry registry_;
  MasterMetrics metrics_;
};

TEST_F(MasterMetricsTest, StateGaugesFollowThePublishedFold) {
  Fold(AgentRegistered("a1"));
  Fold(AgentRegistered("a2"));
  Fold(FrameworkSubscribed("f1"));
  Fold(Launch("f1", "a1", "t1"));
  Fold(Launch("f1", "a1", "t2"));
  Fold(Status("f1", "t1", v1::TASK_RUNNING));
  // Nothing is published before Publish().
  EXPECT_EQ(Value("master/slaves_active"), 0);
  metrics_.Publish(state_, applied_, /*leader=*/nullptr);
  EXPECT_EQ(Value("master/slaves_active"), 2);
  EXPECT_EQ(Value("master/slaves_inactive"), 0);
  EXPECT_EQ(Value("master/slaves_unreachable"), 0);
  EXPECT_EQ(Value("master/frameworks_active"), 1);
  EXPECT_EQ(Value("master/frameworks_connected"), 1);
  EXPECT_EQ(Value("master/frameworks_inactive"), 0);
  EXPECT_EQ(Value("master/tasks_staging"), 1);
  EXPECT_EQ(Value("master/tasks_running"), 1);
  EXPECT_EQ(Value("master/outstanding_offers"), 0);
  // A standby holds no agent streams.
  EXPECT_EQ(Value("master/slaves_connected"), 0);
  EXPECT_EQ(Value("master/slaves_disconnected"), 0);
  EXPECT_EQ(Value("master/slave_registrations"), 2);
}

TEST_F(MasterMetricsTest, TerminalTasksAreCountedOncePerLogPosition) {
  Fold(AgentRegistered("a1"));
  Fold(FrameworkSubscribed("f1"));
  Fold(Launch("f1", "a1", "t1"));
  Fold(Launch("f1", "a1", "t2"));
  Fold(Status("f1", "t1", v1::TASK_RUNNING));
  Fold(Status("f1", "t1", v1::TASK_FINISHED));
  Fold(Status("f1", "t2", v1::TASK_FAILED));
  EXPECT_EQ(Value("master/tasks_finished"), 1);
  EXPECT_EQ(Value("master/tasks_failed"), 1);
  EXPECT_EQ(Value("master/tasks_killed"), 0);
  // A rebuild folds the same positions again: nothing is counted twice.
  for (const Event& e : folded_) metrics_.OnEventApplied(e);
  EXPECT_EQ(Value("master/tasks_finished"), 1);
  EXPECT_EQ(Value("master/tasks_failed"), 1);
  EXPECT_EQ(Value("master/slave_registrations"), 1);
  Fold(Launch("f1", "a1", "t3"));
  Fold(Status("f1", "t3", v1::TASK_FINISHED));
  EXPECT_EQ(Value("master/tasks_finished"), 2);
}

TEST_F(MasterMetricsTest, ApiCallsCountAsTheirMesosMessages) {
  v1::AgentCall subscribe;
  subscribe.set_type(v1::AgentCall::SUBSCRIBE);
  metrics_.OnAgentCall(subscribe);
  subscribe.mutable_subscribe()->mutable_agent_info()->mutable_id()->set_value(
      "a1");
  metrics_.OnAgentCall(subscribe);
  v1::AgentCall heartbeat;
  heartbeat.set_type(v1::AgentCall::HEARTBEAT);
  metrics_.OnAgentCall(heartbeat);
  v1::scheduler::Call accept;
  accept.set_type(v1::scheduler::Call::ACCEPT);
  metrics_.OnSchedulerCall(accept);
  metrics_.OnSchedulerCall(accept);
  EXPECT_EQ(Value("master/messages_register_slave"), 1);
  EXPECT_EQ(Value("master/messages_reregister_slave"), 1);
  EXPECT_EQ(Value("master/messages_launch_tasks"), 2);
  EXPECT_EQ(Value("master/messages_decline_offers"), 0);
}

TEST_F(MasterMetricsTest, ScrapeReadsElectionQueueAndLogSources) {
  log_status_.status = v1::Metadata::VOTING;
  log_status_.leader = 2;
  log_status_.begin = 5;
  log_status_.learned_through = 40;
  log_status_.serving = true;
  log_status_.counters.appends_ok = 7;
  applied_ = 39;
  EXPECT_EQ(Value("master/elected"), 0);
  elected_ = true;
  EXPECT_EQ(Value("master/elected"), 1);
  EXPECT_GE(Value("master/uptime_secs"), 30);
  EXPECT_EQ(Value("master/event_queue_messages"), 3);
  EXPECT_EQ(Value("registrar/log/recovered"), 1);
  EXPECT_EQ(Value("registrar/log/ensemble_size"), 3);
  EXPECT_EQ(Value("log/leader"), 1);
  EXPECT_EQ(Value("log/serving"), 1);
  EXPECT_EQ(Value("log/begin"), 5);
  EXPECT_EQ(Value("log/learned_through"), 40);
  EXPECT_EQ(Value("log/position_applied"), 39);
  EXPECT_EQ(Value("log/appends_ok"), 7);
  log_status_.status = v1::Metadata::RECOVERING;
  log_status_.leader = 1;
  EXPECT_EQ(Value("registrar/log/recovered"), 0);
  EXPECT_EQ(Value("log/leader"), 0);
}

TEST_F(MasterMetricsTest, TimersRecordAppendAndAllocationLatencies) {
  metrics_.RecordAppend(absl::Milliseconds(4));
  metrics_.RecordAppend(absl::Milliseconds(8));
  metrics_.RecordAllocationRun(absl::Microseconds(250));
  EXPECT_EQ(Value("registrar/state_store_ms/count"), 2);
  EXPECT_EQ(Value("registrar/state_store_ms/p50"), 6);
  EXPECT_EQ(Value("registrar/state_store_ms/max"), 8);
  EXPECT_EQ(Value("allocator/mesos/allocation_run_ms/count"), 1);
  EXPECT_EQ(Value("allocator/mesos/allocation_run_ms"), 0.25);
}

}  // namespace
}  // namespace cairn::master
