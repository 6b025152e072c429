// Multi-process test of the Mesos v1 operator API (POST /api/v1,
// master/operator_api.h): one real `cairn-master` process on 127.0.0.1,
// simulated agents (FakeAgent) and a framework (SchedulerClient).
//  - GET_STATE in JSON and in protobuf shows the agent, the framework and
//    its running task;
//  - DEACTIVATE_AGENT / REACTIVATE_AGENT show in GET_AGENTS, and a second
//    REACTIVATE is 400 naming the field; MARK_AGENT_GONE ends the agent's
//    stream with ERROR 403 and removes it (404 for an unknown agent);
//  - a SUBSCRIBE stream gets SUBSCRIBED, then AGENT_ADDED,
//    FRAMEWORK_ADDED, TASK_ADDED, TASK_UPDATED and AGENT_REMOVED as they
//    happen.
//
// Every wait is bounded by a deadline on a condition; nothing asserts an
// outcome after a fixed sleep.

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/operator.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/master_channel.h"
#include "common/record_stream_reader.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_client.h"
#include "tests/internal/master_cluster.h"
#include "tests/internal/scheduler_client.h"

namespace cairn::tests {
namespace {

using v1::master_api::Event;
using v1::master_api::Response;
using SchedulerEvent = v1::scheduler::Event;

constexpr absl::Duration kTimeout = absl::Seconds(15);

// A SUBSCRIBE stream read on a thread: every event queued in order.
class OperatorEventQueue {
 public:
  // Opens the stream on the leader among `masters` (JSON records).
  absl::Status Open(const std::vector<std::string>& masters) {
    MasterChannelOptions options;
    options.masters = masters;
    options.path = "/api/v1";
    channel_ = std::make_unique<MasterChannel>(options);
    absl::StatusOr<std::unique_ptr<http::ClientStream>> stream =
        channel_->OpenStream({{"Content-Type", "application/json"},
                              {"Accept", "application/json"}},
                             R"({"type":"SUBSCRIBE"})", absl::Now() + kTimeout);
    if (!stream.ok()) return stream.status();
    content_type_ = (*stream)->headers().Get("Content-Type");
    reader_ = std::make_unique<RecordStreamReader>(
        *std::move(stream),
        [this](std::string record) {
          Event event;
          absl::Status parsed = FromJson(record, &event, true);
          std::lock_guard<std::mutex> lock(mu_);
          if (!parsed.ok()) {
            ++malformed_;
          } else if (event.type() != Event::HEARTBEAT) {
            events_.push_back(std::move(event));
          }
          cv_.notify_all();
        },
        [this](absl::Status end) {
          std::lock_guard<std::mutex> lock(mu_);
          end_ = end;
          cv_.notify_all();
        });
    return absl::OkStatus();
  }

  ~OperatorEventQueue() {
    if (reader_ != nullptr) reader_->Stop();
  }

  // Removes and returns the first queued event of `type`, waiting until
  // `deadline`; the events queued before it are dropped (they were not
  // asked for). kDeadlineExceeded, or kUnavailable once the stream ended.
  absl::StatusOr<Event> Next(Event::Type type, absl::Time deadline) {
    return NextMatching([type](const Event& e) { return e.type() == type; },
                        deadline);
  }
  absl::StatusOr<Event> NextMatching(
      const std::function<bool(const Event&)>& predicate, absl::Time deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      while (!events_.empty()) {
        Event event = std::move(events_.front());
        events_.pop_front();
        if (predicate(event)) return event;
      }
      if (end_.has_value()) {
        return absl::UnavailableError(
            absl::StrCat("the stream ended: ", end_->ToString()));
      }
      if (cv_.wait_until(lock, absl::ToChronoTime(deadline)) ==
          std::cv_status::timeout) {
        return absl::DeadlineExceededError("no such event in time");
      }
    }
  }

  const std::string& content_type() const { return content_type_; }

 private:
  std::unique_ptr<MasterChannel> channel_;
  std::unique_ptr<RecordStreamReader> reader_;
  std::string content_type_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;         // guarded by mu_
  std::optional<absl::Status> end_;  // guarded by mu_
  int malformed_ = 0;                // guarded by mu_
};

class OperatorApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<MasterClusterOptions> options =
        OptionsForThisTest("operator_api");
    ASSERT_TRUE(options.ok()) << options.status();
    options->masters = 1;
    options->timeout = kTimeout;
    options->flags.insert(
        options->flags.end(),
        {"--allocation_interval=100ms", "--scheduler_heartbeat_interval=1s"});
    absl::StatusOr<std::unique_ptr<MasterCluster>> cluster =
        MasterCluster::Start(*options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    absl::StatusOr<int> leader = cluster_->WaitForLeader({0});
    ASSERT_TRUE(leader.ok()) << leader.status();
  }

  void TearDown() override {
    // Clients first: their threads talk to the master.
    events_.reset();
    scheduler_.reset();
    agents_.clear();
  }

  // A new FakeAgent with 4 cpus and 4096 mem, subscribed; returns its id.
  std::string StartAgent(const std::string& hostname) {
    FakeAgentOptions options;
    options.masters = {cluster_->Address(0)};
    options.hostname = hostname;
    options.resources = {ScalarResource("cpus", 4),
                         ScalarResource("mem", 4096)};
    options.subscribe_timeout = kTimeout;
    agents_.push_back(std::make_unique<FakeAgent>(options));
    absl::StatusOr<v1::AgentID> id = agents_.back()->Subscribe();
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? id->value() : "";
  }

  // A framework that launches one task (1 cpu, 128 mem) the agent runs;
  // returns once the scheduler has seen TASK_RUNNING.
  void StartTask() {
    SchedulerClientOptions options;
    options.masters = {cluster_->Address(0)};
    options.auto_acknowledge = true;
    options.subscribe_timeout = kTimeout;
    options.call_timeout = kTimeout;
    scheduler_ = std::make_unique<SchedulerClient>(options);
    v1::FrameworkInfo framework;
    framework.set_user("nobody");
    framework.set_name("operator-test");
    framework.set_failover_timeout(60);
    absl::StatusOr<v1::FrameworkID> framework_id =
        scheduler_->Subscribe(framework);
    ASSERT_TRUE(framework_id.ok()) << framework_id.status();
    framework_id_ = framework_id->value();
    absl::StatusOr<SchedulerEvent> offers =
        scheduler_->NextEvent(SchedulerEvent::OFFERS, absl::Now() + kTimeout);
    ASSERT_TRUE(offers.ok()) << offers.status();
    ASSERT_GT(offers->offers().offers_size(), 0);
    v1::TaskInfo task;
    task.set_name("web-1");
    task.mutable_task_id()->set_value("task-1");
    *task.add_resources() = ScalarResource("cpus", 1);
    *task.add_resources() = ScalarResource("mem", 128);
    task.mutable_command()->set_value("sleep 1000");
    absl::Status running = scheduler_->LaunchAndWaitRunning(
        offers->offers().offers(0), task, absl::Now() + kTimeout);
    ASSERT_TRUE(running.ok()) << running;
  }

  // One operator call in JSON; the raw answer.
  http::Response Call(const std::string& body) {
    absl::StatusOr<http::Response> r =
        cluster_->Request(0, "POST", "/api/v1", body);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : http::Response{};
  }

  // A GET_* call answered 200 in JSON, parsed.
  Response Get(const std::string& type) {
    http::Response r = Call(absl::StrCat(R"({"type":")", type, "\"}"));
    EXPECT_EQ(r.status, 200) << type << ": " << r.body;
    EXPECT_EQ(r.headers.Get("Content-Type"), "application/json");
    Response response;
    absl::Status parsed = FromJson(r.body, &response);
    EXPECT_TRUE(parsed.ok()) << parsed << ": " << r.body;
    return response;
  }

  std::string AgentCall(const std::string& type, const std::string& member,
                        const std::string& agent_id) {
    return absl::StrCat(R"({"type":")", type, R"(",")", member,
                        R"(":{"agent_id":{"value":")", agent_id, R"("}}})");
  }

  std::unique_ptr<MasterCluster> cluster_;
  std::vector<std::unique_ptr<FakeAgent>> agents_;
  std::unique_ptr<SchedulerClient> scheduler_;
  std::unique_ptr<OperatorEventQueue> events_;
  std::string framework_id_;
};

TEST_F(OperatorApiTest, GetStateShowsTheClusterInJsonAndProtobuf) {
  const std::string agent_id = StartAgent("agent-0");
  StartTask();

  const Response state = Get("GET_STATE");
  EXPECT_EQ(state.type(), Response::GET_STATE);
  const Response::GetState& s = state.get_state();
  ASSERT_EQ(s.get_agents().agents_size(), 1);
  EXPECT_EQ(s.get_agents().agents(0).agent_info().id().value(), agent_id);
  EXPECT_EQ(s.get_agents().agents(0).agent_info().hostname(), "agent-0");
  EXPECT_TRUE(s.get_agents().agents(0).active());
  ASSERT_EQ(s.get_frameworks().frameworks_size(), 1);
  EXPECT_EQ(s.get_frameworks().frameworks(0).framework_info().id().value(),
            framework_id_);
  EXPECT_TRUE(s.get_frameworks().frameworks(0).connected());
  ASSERT_EQ(s.get_tasks().tasks_size(), 1);
  EXPECT_EQ(s.get_tasks().tasks(0).task_id().value(), "task-1");
  EXPECT_EQ(s.get_tasks().tasks(0).state(), v1::TASK_RUNNING);

  // The same call in protobuf both ways.
  v1::master_api::Call call;
  call.set_type(v1::master_api::Call::GET_STATE);
  http::Client client;
  absl::StatusOr<http::Response> proto =
      client.Request("POST", "127.0.0.1", cluster_->http_port(0), "/api/v1",
                     {{"Content-Type", "application/x-protobuf"},
                      {"Accept", "application/x-protobuf"}},
                     call.SerializeAsString());
  ASSERT_TRUE(proto.ok()) << proto.status();
  ASSERT_EQ(proto->status, 200) << proto->body;
  EXPECT_EQ(proto->headers.Get("Content-Type"), "application/x-protobuf");
  Response decoded;
  ASSERT_TRUE(decoded.ParseFromString(proto->body));
  EXPECT_EQ(decoded.get_state().get_tasks().tasks(0).task_id().value(),
            "task-1");

  // An answer encoding the master cannot produce: 406.
  absl::StatusOr<http::Response> html = client.Request(
      "POST", "127.0.0.1", cluster_->http_port(0), "/api/v1",
      {{"Content-Type", "application/json"}, {"Accept", "text/html"}},
      R"({"type":"GET_STATE"})");
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_EQ(html->status, 406);
}

TEST_F(OperatorApiTest, DeactivateReactivateAndMarkAgentGone) {
  const std::string agent_id = StartAgent("agent-0");

  http::Response deactivated =
      Call(AgentCall("DEACTIVATE_AGENT", "deactivate_agent", agent_id));
  EXPECT_EQ(deactivated.status, 200) << deactivated.body;
  Response agents = Get("GET_AGENTS");
  ASSERT_EQ(agents.get_agents().agents_size(), 1);
  EXPECT_TRUE(agents.get_agents().agents(0).deactivated());
  EXPECT_FALSE(agents.get_agents().agents(0).active());

  EXPECT_EQ(
      Call(AgentCall("REACTIVATE_AGENT", "reactivate_agent", agent_id)).status,
      200);
  agents = Get("GET_AGENTS");
  ASSERT_EQ(agents.get_agents().agents_size(), 1);
  EXPECT_FALSE(agents.get_agents().agents(0).deactivated());
  http::Response again =
      Call(AgentCall("REACTIVATE_AGENT", "reactivate_agent", agent_id));
  EXPECT_EQ(again.status, 400);
  EXPECT_TRUE(
      absl::StrContains(again.body, R"("field":"reactivate_agent.agent_id")"))
      << again.body;

  http::Response gone =
      Call(AgentCall("MARK_AGENT_GONE", "mark_agent_gone", agent_id));
  EXPECT_EQ(gone.status, 200) << gone.body;
  FakeAgent& agent = *agents_[0];
  EXPECT_TRUE(agent.WaitUntil(
      [&] {
        for (const auto& e : agent.errors()) {
          if (e.code() == 403) return true;
        }
        return false;
      },
      absl::Now() + kTimeout));
  EXPECT_TRUE(agent.WaitUntil([&] { return agent.stream_end().has_value(); },
                              absl::Now() + kTimeout));
  EXPECT_EQ(Get("GET_AGENTS").get_agents().agents_size(), 0);
  EXPECT_EQ(
      Call(AgentCall("MARK_AGENT_GONE", "mark_agent_gone", "no-such")).status,
      404);
}

TEST_F(OperatorApiTest, SubscribeStreamsTheStateThenItsChanges) {
  StartAgent("agent-0");
  events_ = std::make_unique<OperatorEventQueue>();
  ASSERT_TRUE(events_->Open({cluster_->Address(0)}).ok());
  EXPECT_EQ(events_->content_type(), "application/json");
  const absl::Time deadline = absl::Now() + kTimeout;

  absl::StatusOr<Event> subscribed = events_->Next(Event::SUBSCRIBED, deadline);
  ASSERT_TRUE(subscribed.ok()) << subscribed.status();
  EXPECT_EQ(subscribed->subscribed().get_state().get_agents().agents_size(), 1);
  EXPECT_GT(subscribed->subscribed().heartbeat_interval_seconds(), 0);

  const std::string agent_id = StartAgent("agent-1");
  absl::StatusOr<Event> added = events_->Next(Event::AGENT_ADDED, deadline);
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->agent_added().agent().agent_info().id().value(), agent_id);

  StartTask();
  absl::StatusOr<Event> framework =
      events_->Next(Event::FRAMEWORK_ADDED, deadline);
  ASSERT_TRUE(framework.ok()) << framework.status();
  EXPECT_EQ(
      framework->framework_added().framework().framework_info().id().value(),
      framework_id_);
  absl::StatusOr<Event> task = events_->Next(Event::TASK_ADDED, deadline);
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->task_added().task().task_id().value(), "task-1");
  EXPECT_EQ(task->task_added().task().state(), v1::TASK_STAGING);
  const std::string task_agent = task->task_added().task().agent_id().value();
  absl::StatusOr<Event> running = events_->Next(Event::TASK_UPDATED, deadline);
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ(running->task_updated().state(), v1::TASK_RUNNING);
  EXPECT_EQ(running->task_updated().framework_id().value(), framework_id_);

  // The task's agent is marked gone: the task is lost, the agent removed.
  ASSERT_EQ(
      Call(AgentCall("MARK_AGENT_GONE", "mark_agent_gone", task_agent)).status,
      200);
  absl::StatusOr<Event> lost = events_->Next(Event::TASK_UPDATED, deadline);
  ASSERT_TRUE(lost.ok()) << lost.status();
  EXPECT_EQ(lost->task_updated().state(), v1::TASK_LOST);
  EXPECT_EQ(lost->task_updated().status().reason(),
            v1::TaskStatus::REASON_AGENT_REMOVED);
  absl::StatusOr<Event> removed = events_->Next(Event::AGENT_REMOVED, deadline);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->agent_removed().agent_id().value(), task_agent);
}

}  // namespace
}  // namespace cairn::tests
