// Multi-process test of the master's Mesos-compatible read-only endpoints:
// one real `cairn-master` process on 127.0.0.1, one simulated agent
// (FakeAgent) and one framework (SchedulerClient) that launches a task the
// agent reports TASK_RUNNING. Then every endpoint — /master/state,
// /master/state-summary, /master/frameworks, /master/slaves, /master/tasks,
// /master/flags — answers 200 with Mesos's shape and the cluster's facts, and
// ?jsonp= wraps the body as Mesos does.
//
// Every wait polls an endpoint or a client's condition against a bounded
// deadline; nothing asserts an outcome after a fixed sleep.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "common/http_client.h"
#include "common/json_value.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_client.h"
#include "tests/internal/master_cluster.h"
#include "tests/internal/scheduler_client.h"

namespace cairn::tests {
namespace {

using Event = v1::scheduler::Event;

constexpr absl::Duration kTimeout = absl::Seconds(15);
constexpr absl::Duration kPollPause = absl::Milliseconds(10);

const JsonValue& Field(const JsonValue& object, const std::string& name) {
  static const JsonValue kNull;
  const JsonValue* v = object.Find(name);
  if (v == nullptr) ADD_FAILURE() << "no field '" << name << "'";
  return v != nullptr ? *v : kNull;
}

std::string Text(const JsonValue& object, const std::string& name) {
  return Field(object, name).text;
}

// The first element of the array `name` of `object` (a failure when empty).
const JsonValue& First(const JsonValue& object, const std::string& name) {
  static const JsonValue kNull;
  const JsonValue& array = Field(object, name);
  if (array.items.empty()) ADD_FAILURE() << "'" << name << "' is empty";
  return array.items.empty() ? kNull : array.items[0];
}

class MasterStateEndpointsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<MasterClusterOptions> options =
        OptionsForThisTest("master_state_endpoints");
    ASSERT_TRUE(options.ok()) << options.status();
    options->masters = 1;
    options->timeout = kTimeout;
    options->flags.insert(options->flags.end(),
                          {"--cluster=testing", "--allocation_interval=100ms",
                           "--scheduler_heartbeat_interval=1s"});
    absl::StatusOr<std::unique_ptr<MasterCluster>> cluster =
        MasterCluster::Start(*options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    absl::StatusOr<int> leader = cluster_->WaitForLeader({0});
    ASSERT_TRUE(leader.ok()) << leader.status();
  }

  void TearDown() override {
    // Clients first: their threads talk to the master.
    scheduler_.reset();
    agent_.reset();
  }

  // An agent with 4 cpus, 4096 mem, ports [31000-31009] and a rack
  // attribute; a framework; one task (1 cpu, 128 mem, ports 31000-31001)
  // the agent runs; the framework acknowledges its update.
  void StartTask() {
    FakeAgentOptions agent_options;
    agent_options.masters = {cluster_->Address(0)};
    agent_options.hostname = "agent-0";
    agent_options.resources = {ScalarResource("cpus", 4),
                               ScalarResource("mem", 4096)};
    v1::Resource ports;
    ports.set_name("ports");
    ports.set_type(v1::MesosValue::RANGES);
    auto* range = ports.mutable_ranges()->add_range();
    range->set_begin(31000);
    range->set_end(31009);
    agent_options.resources.push_back(ports);
    v1::Attribute rack;
    rack.set_name("rack");
    rack.set_type(v1::MesosValue::TEXT);
    rack.mutable_text()->set_value("r1");
    agent_options.attributes = {rack};
    agent_options.subscribe_timeout = kTimeout;
    agent_ = std::make_unique<FakeAgent>(agent_options);
    absl::StatusOr<v1::AgentID> agent_id = agent_->Subscribe();
    ASSERT_TRUE(agent_id.ok()) << agent_id.status();
    agent_id_ = agent_id->value();

    SchedulerClientOptions options;
    options.masters = {cluster_->Address(0)};
    options.auto_acknowledge = true;
    options.subscribe_timeout = kTimeout;
    options.call_timeout = kTimeout;
    scheduler_ = std::make_unique<SchedulerClient>(options);
    v1::FrameworkInfo framework;
    framework.set_user("nobody");
    framework.set_name("endpoints");
    framework.set_failover_timeout(60);
    absl::StatusOr<v1::FrameworkID> framework_id =
        scheduler_->Subscribe(framework);
    ASSERT_TRUE(framework_id.ok()) << framework_id.status();
    framework_id_ = framework_id->value();

    absl::StatusOr<Event> offers =
        scheduler_->NextEvent(Event::OFFERS, absl::Now() + kTimeout);
    ASSERT_TRUE(offers.ok()) << offers.status();
    ASSERT_GT(offers->offers().offers_size(), 0);
    v1::TaskInfo task;
    task.set_name("web-1");
    task.mutable_task_id()->set_value("task-1");
    *task.add_resources() = ScalarResource("cpus", 1);
    *task.add_resources() = ScalarResource("mem", 128);
    v1::Resource task_ports = ports;
    task_ports.mutable_ranges()->mutable_range(0)->set_end(31001);
    *task.add_resources() = task_ports;
    task.mutable_command()->set_value("sleep 1000");
    absl::Status running = scheduler_->LaunchAndWaitRunning(
        offers->offers().offers(0), task, absl::Now() + kTimeout);
    ASSERT_TRUE(running.ok()) << running;
  }

  // GET `target`; the parsed JSON body of a 200 application/json answer.
  JsonValue GetJson(const std::string& target) {
    absl::StatusOr<http::Response> response =
        cluster_->Request(0, "GET", target);
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) return JsonValue();
    EXPECT_EQ(response->status, 200) << target << ": " << response->body;
    EXPECT_EQ(response->headers.Get("Content-Type"), "application/json")
        << target;
    absl::StatusOr<JsonValue> json = ParseJson(response->body);
    EXPECT_TRUE(json.ok()) << target << ": " << json.status();
    return json.ok() ? *std::move(json) : JsonValue();
  }

  // Polls /master/tasks until task-1 is TASK_RUNNING with its
  // acknowledgement applied (an update acknowledged is committed).
  bool WaitForRunningTask() {
    const absl::Time deadline = absl::Now() + kTimeout;
    while (absl::Now() < deadline) {
      absl::StatusOr<http::Response> response =
          cluster_->Request(0, "GET", "/master/tasks");
      if (response.ok() && response->status == 200 &&
          absl::StrContains(response->body, "\"state\":\"TASK_RUNNING\"") &&
          scheduler_->auto_acknowledged() >= 1 &&
          agent_->unacknowledged_updates() == 0) {
        return true;
      }
      absl::SleepFor(kPollPause);
    }
    return false;
  }

  std::unique_ptr<MasterCluster> cluster_;
  std::unique_ptr<FakeAgent> agent_;
  std::unique_ptr<SchedulerClient> scheduler_;
  std::string agent_id_;
  std::string framework_id_;
};

TEST_F(MasterStateEndpointsTest, EveryEndpointAnswersWithMesosShape) {
  ASSERT_NO_FATAL_FAILURE(StartTask());
  ASSERT_TRUE(WaitForRunningTask());
  const std::string self = cluster_->Address(0);  // 127.0.0.1:<port>
  const std::string pid = absl::StrCat("master@", self);

  {
    JsonValue state = GetJson("/master/state");
    EXPECT_EQ(Text(state, "pid"), pid);
    EXPECT_EQ(Text(state, "leader"), pid);
    EXPECT_EQ(Text(Field(state, "leader_info"), "pid"), pid);
    EXPECT_EQ(Text(state, "id"), Text(Field(state, "leader_info"), "id"));
    EXPECT_FALSE(Text(state, "id").empty());
    EXPECT_EQ(Text(state, "cluster"), "testing");
    EXPECT_EQ(Field(state, "start_time").kind, JsonValue::Kind::kNumber);
    EXPECT_EQ(Field(state, "elected_time").kind, JsonValue::Kind::kNumber);
    EXPECT_EQ(Text(state, "activated_slaves"), "1.0");
    EXPECT_EQ(Text(Field(state, "flags"), "cluster"), "testing");
    const JsonValue& slave = First(state, "slaves");
    EXPECT_EQ(Text(slave, "id"), agent_id_);
    EXPECT_EQ(Text(slave, "hostname"), "agent-0");
    EXPECT_EQ(Text(Field(slave, "attributes"), "rack"), "r1");
    EXPECT_EQ(Text(Field(slave, "resources"), "ports"), "[31000-31009]");
    EXPECT_EQ(Text(Field(slave, "used_resources"), "cpus"), "1.0");
    EXPECT_EQ(Text(Field(slave, "used_resources"), "ports"), "[31000-31001]");
    const JsonValue& framework = First(state, "frameworks");
    EXPECT_EQ(Text(framework, "id"), framework_id_);
    EXPECT_EQ(Text(framework, "name"), "endpoints");
    EXPECT_EQ(Text(framework, "active"), "true");
    const JsonValue& task = First(framework, "tasks");
    EXPECT_EQ(Text(task, "id"), "task-1");
    EXPECT_EQ(Text(task, "slave_id"), agent_id_);
    EXPECT_EQ(Text(task, "state"), "TASK_RUNNING");
    EXPECT_EQ(Text(First(task, "statuses"), "state"), "TASK_RUNNING");
    // Cairn's own fields live under "cairn" only.
    const JsonValue& cairn = Field(state, "cairn");
    EXPECT_GT(cairn.Uint("log_position").value_or(0), 0u);
    EXPECT_EQ(First(cairn, "masters").text, self);
    EXPECT_EQ(state.Find("log_position"), nullptr);
  }
  {
    JsonValue summary = GetJson("/master/state-summary");
    EXPECT_EQ(Text(summary, "cluster"), "testing");
    const JsonValue& slave = First(summary, "slaves");
    EXPECT_EQ(Text(slave, "TASK_RUNNING"), "1");
    EXPECT_EQ(First(slave, "framework_ids").text, framework_id_);
    const JsonValue& framework = First(summary, "frameworks");
    EXPECT_EQ(Text(framework, "TASK_RUNNING"), "1");
    EXPECT_EQ(First(framework, "slave_ids").text, agent_id_);
  }
  {
    JsonValue frameworks = GetJson("/master/frameworks");
    EXPECT_EQ(Text(First(frameworks, "frameworks"), "id"), framework_id_);
    EXPECT_TRUE(Field(frameworks, "completed_frameworks").items.empty());
    EXPECT_TRUE(Field(frameworks, "unregistered_frameworks").items.empty());
  }
  {
    JsonValue slaves = GetJson("/master/slaves");
    const JsonValue& slave = First(slaves, "slaves");
    EXPECT_EQ(Text(slave, "id"), agent_id_);
    EXPECT_EQ(Field(slave, "unreserved_resources_full").kind,
              JsonValue::Kind::kArray);
    EXPECT_TRUE(Field(slaves, "recovered_slaves").items.empty());
  }
  {
    JsonValue tasks = GetJson("/master/tasks?limit=10&order=asc");
    const JsonValue& task = First(tasks, "tasks");
    EXPECT_EQ(Text(task, "id"), "task-1");
    EXPECT_EQ(Text(task, "framework_id"), framework_id_);
    EXPECT_TRUE(GetJson("/master/tasks?offset=1").Find("tasks")->items.empty());
  }
  {
    JsonValue flags = GetJson("/master/flags");
    EXPECT_EQ(Text(Field(flags, "flags"), "port"),
              absl::StrCat(cluster_->http_port(0)));
    EXPECT_EQ(Text(Field(flags, "flags"), "work_dir"), cluster_->work_dir(0));
  }
}

TEST_F(MasterStateEndpointsTest, JsonpWrapsTheBodyAsJavascript) {
  absl::StatusOr<http::Response> response =
      cluster_->Request(0, "GET", "/master/state?jsonp=cb");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200) << response->body;
  EXPECT_EQ(response->headers.Get("Content-Type"), "text/javascript");
  ASSERT_TRUE(absl::StartsWith(response->body, "cb(")) << response->body;
  ASSERT_TRUE(absl::EndsWith(response->body, ")"));
  const std::string inner = response->body.substr(3, response->body.size() - 4);
  absl::StatusOr<JsonValue> json = ParseJson(inner);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_TRUE(json->Find("slaves") != nullptr);

  absl::StatusOr<http::Response> flags =
      cluster_->Request(0, "GET", "/master/flags?jsonp=a.b_1");
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_EQ(flags->status, 200);
  EXPECT_TRUE(absl::StartsWith(flags->body, "a.b_1({\"flags\":"))
      << flags->body;

  absl::StatusOr<http::Response> bad =
      cluster_->Request(0, "GET", "/master/tasks?jsonp=alert(1)%3Bx");
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->status, 400) << bad->body;
}

}  // namespace
}  // namespace cairn::tests
