// FakeAgent against an in-process fake master (FakeApiServer): registration
// through a redirect, LAUNCH/KILL/ACKNOWLEDGE/RECONCILE handling, the
// per-task update queue and its resends, heartbeats, reregistration reports
// and automatic resubscription.

#include "tests/internal/agent_client.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/agent.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "common/json.h"
#include "gtest/gtest.h"
#include "tests/internal/fake_api_server.h"
#include "common/master_channel.h"

namespace cairn::tests {
namespace {

using v1::AgentCall;
using v1::AgentEvent;

constexpr absl::Duration kWait = absl::Seconds(5);  // bound on every wait
constexpr char kPath[] = "/api/v1/agent";

absl::Time Deadline() { return absl::Now() + kWait; }

AgentCall ParseCall(const http::Request& request) {
  AgentCall call;
  EXPECT_TRUE(FromJson(request.body, &call).ok()) << request.body;
  return call;
}

FakeApiServer::Predicate IsCall(AgentCall::Type type) {
  return [type](const http::Request& request) {
    AgentCall call;
    return FromJson(request.body, &call).ok() && call.type() == type;
  };
}

// UPDATE calls for `task`, optionally of one state.
FakeApiServer::Predicate IsUpdate(
    const std::string& task,
    std::optional<v1::TaskState> state = std::nullopt) {
  return [task, state](const http::Request& request) {
    AgentCall call;
    return FromJson(request.body, &call).ok() &&
           call.type() == AgentCall::UPDATE &&
           call.update().status().task_id().value() == task &&
           (!state.has_value() || call.update().status().state() == *state);
  };
}

v1::FrameworkID Framework() {
  v1::FrameworkID id;
  id.set_value("fw-1");
  return id;
}

v1::TaskID Task(const std::string& id) {
  v1::TaskID task_id;
  task_id.set_value(id);
  return task_id;
}

AgentEvent Launch(const std::vector<std::string>& tasks) {
  AgentEvent event;
  event.set_type(AgentEvent::LAUNCH);
  v1::FrameworkInfo* framework = event.mutable_launch()->mutable_framework_info();
  *framework->mutable_id() = Framework();
  framework->set_name("framework-one");
  for (const std::string& id : tasks) {
    v1::TaskInfo* task = event.mutable_launch()->add_tasks();
    task->set_name(id);
    *task->mutable_task_id() = Task(id);
    *task->add_resources() = ScalarResource("cpus", 0.5);
  }
  return event;
}

AgentEvent Kill(const std::string& task) {
  AgentEvent event;
  event.set_type(AgentEvent::KILL);
  *event.mutable_kill()->mutable_framework_id() = Framework();
  *event.mutable_kill()->mutable_task_id() = Task(task);
  return event;
}

AgentEvent Acknowledge(const v1::TaskStatus& status) {
  AgentEvent event;
  event.set_type(AgentEvent::ACKNOWLEDGE);
  *event.mutable_acknowledge()->mutable_framework_id() = Framework();
  *event.mutable_acknowledge()->mutable_task_id() = status.task_id();
  event.mutable_acknowledge()->set_uuid(status.uuid());
  return event;
}

// A fake leading master for agents: SUBSCRIBE gets a stream "as<n>" that
// starts with SUBSCRIBED (the agent's id, or "agent-1" for a new agent);
// other calls get 202.
class FakeLeader {
 public:
  FakeLeader() : server_(kPath) {}

  absl::Status Start() {
    Lead();
    return server_.Start();
  }

  void Lead() {
    server_.SetHandler([this](const http::Request& request,
                              std::shared_ptr<http::Responder> r) {
      const AgentCall call = ParseCall(request);
      if (call.type() != AgentCall::SUBSCRIBE) {
        r->Respond(http::Response{202, {}, ""});
        return;
      }
      if (const int code = subscribe_code_.load(); code != 200) {
        r->Respond(http::Response::Error(code, "subscribe refused"));
        return;
      }
      ASSERT_TRUE(server_.StartStream(r, "X-Cairn-Stream-Id",
                                      absl::StrCat("as", ++streams_)));
      AgentEvent subscribed;
      subscribed.set_type(AgentEvent::SUBSCRIBED);
      subscribed.mutable_subscribed()->mutable_agent_id()->set_value(
          call.has_agent_id() ? call.agent_id().value() : "agent-1");
      subscribed.mutable_subscribed()->set_heartbeat_interval_seconds(
          heartbeat_seconds_.load());
      subscribed.mutable_subscribed()->set_max_agent_ping_timeouts(5);
      ASSERT_TRUE(server_.SendEvent(subscribed));
    });
  }

  FakeApiServer& server() { return server_; }
  void set_subscribe_code(int code) { subscribe_code_ = code; }
  void set_heartbeat_seconds(double seconds) { heartbeat_seconds_ = seconds; }

  // The UPDATE calls received so far, in order.
  std::vector<AgentCall> Updates() {
    std::vector<AgentCall> updates;
    for (const http::Request& request : server_.requests()) {
      if (IsCall(AgentCall::UPDATE)(request)) {
        updates.push_back(ParseCall(request));
      }
    }
    return updates;
  }

 private:
  FakeApiServer server_;
  std::atomic<int> streams_{0};
  std::atomic<int> subscribe_code_{200};
  std::atomic<double> heartbeat_seconds_{15};
};

class FakeAgentTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(leader_.Start().ok()); }

  FakeAgentOptions Options() {
    FakeAgentOptions options;
    options.masters = {leader_.server().address()};
    options.hostname = "host-a";
    options.port = 5151;
    options.resources = {ScalarResource("cpus", 4), ScalarResource("mem", 1024)};
    options.subscribe_timeout = kWait;
    options.call_timeout = kWait;
    return options;
  }

  std::unique_ptr<FakeAgent> Subscribed(FakeAgentOptions options) {
    auto agent = std::make_unique<FakeAgent>(std::move(options));
    absl::StatusOr<v1::AgentID> id = agent->Subscribe();
    EXPECT_TRUE(id.ok()) << id.status();
    return agent;
  }

  FakeLeader leader_;
};

TEST_F(FakeAgentTest, RegistersAsANewAgentThroughARedirect) {
  FakeApiServer standby(kPath);
  standby.SetHandler(
      [this](const http::Request&, std::shared_ptr<http::Responder> r) {
        http::Response response = http::Response::Error(307, "not the leader");
        response.headers.Set(
            "Location", absl::StrCat("//", leader_.server().address(), kPath));
        r->Respond(std::move(response));
      });
  ASSERT_TRUE(standby.Start().ok());
  FakeAgentOptions options = Options();
  options.masters = {standby.address(), leader_.server().address()};
  FakeAgent agent(options);

  absl::StatusOr<v1::AgentID> id = agent.Subscribe();
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->value(), "agent-1");
  EXPECT_EQ(agent.agent_id()->value(), "agent-1");
  EXPECT_EQ(agent.stream_id(), "as1");
  EXPECT_TRUE(agent.subscribed());
  EXPECT_EQ(agent.subscriptions(), 1);
  EXPECT_EQ(agent.last_subscribed().max_agent_ping_timeouts(), 5u);

  const std::vector<http::Request> requests = leader_.server().requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_FALSE(requests[0].headers.Has("X-Cairn-Stream-Id"));
  EXPECT_EQ(requests[0].headers.Get("Accept"), "application/json");
  const AgentCall call = ParseCall(requests[0]);
  EXPECT_EQ(call.type(), AgentCall::SUBSCRIBE);
  EXPECT_FALSE(call.has_agent_id());
  EXPECT_FALSE(call.subscribe().agent_info().has_id());
  EXPECT_EQ(call.subscribe().agent_info().hostname(), "host-a");
  EXPECT_EQ(call.subscribe().agent_info().port(), 5151);
  EXPECT_EQ(call.subscribe().agent_info().resources_size(), 2);
  EXPECT_EQ(call.subscribe().tasks_size(), 0);
}

TEST_F(FakeAgentTest, SubscribeRejectedWith403IsPermissionDenied) {
  leader_.set_subscribe_code(403);
  FakeAgentOptions options = Options();
  options.agent_id = v1::AgentID();
  options.agent_id->set_value("agent-removed");
  FakeAgent agent(options);
  absl::StatusOr<v1::AgentID> id = agent.Subscribe();
  EXPECT_EQ(id.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(HttpStatusOf(id.status()), 403);
}

TEST_F(FakeAgentTest, LaunchedTaskRunsAndItsUpdateIsDroppedOnAcknowledge) {
  std::unique_ptr<FakeAgent> agent = Subscribed(Options());
  ASSERT_TRUE(leader_.server().SendEvent(Launch({"t-1"})));
  ASSERT_TRUE(leader_.server().WaitForRequests(
      IsUpdate("t-1", v1::TASK_RUNNING), 1, Deadline()));

  const std::vector<AgentCall> updates = leader_.Updates();
  ASSERT_EQ(updates.size(), 1u);
  const v1::TaskStatus& status = updates[0].update().status();
  EXPECT_EQ(updates[0].agent_id().value(), "agent-1");
  EXPECT_EQ(updates[0].update().framework_id().value(), "fw-1");
  EXPECT_EQ(status.uuid().size(), 16u);
  EXPECT_EQ(status.source(), v1::TaskStatus::SOURCE_EXECUTOR);
  EXPECT_FALSE(status.has_agent_id());  // the master fills it in
  EXPECT_EQ(leader_.server().requests().back().headers.Get("X-Cairn-Stream-Id"),
            "as1");
  ASSERT_EQ(agent->launched_tasks().size(), 1u);
  EXPECT_EQ(agent->task(Framework(), Task("t-1"))->state, v1::TASK_RUNNING);
  EXPECT_EQ(agent->unacknowledged_updates(), 1u);

  ASSERT_TRUE(leader_.server().SendEvent(Acknowledge(status)));
  ASSERT_TRUE(agent->WaitUntil(
      [&] { return agent->unacknowledged_updates() == 0; }, Deadline()));
  EXPECT_EQ(agent->acknowledgements().size(), 1u);
  EXPECT_EQ(agent->stray_acknowledgements(), 0u);

  // A second LAUNCH of the same task is not a new task.
  ASSERT_TRUE(leader_.server().SendEvent(Launch({"t-1"})));
  ASSERT_TRUE(agent->NextEvent(AgentEvent::LAUNCH, Deadline()).ok());
  ASSERT_TRUE(agent->NextEvent(AgentEvent::LAUNCH, Deadline()).ok());
  EXPECT_EQ(agent->launched_tasks().size(), 1u);
  EXPECT_EQ(agent->repeated_launches(), 1u);
  EXPECT_EQ(agent->unacknowledged_updates(), 0u);
}

TEST_F(FakeAgentTest, UpdatesOfATaskAreSentOneAtATimeInOrder) {
  std::unique_ptr<FakeAgent> agent = Subscribed(Options());
  ASSERT_TRUE(leader_.server().SendEvent(Launch({"t-1"})));
  ASSERT_TRUE(agent->WaitUntil(
      [&] { return agent->launched_tasks().size() == 1; }, Deadline()));
  const std::string finished =
      agent->SendUpdate(Framework(), Task("t-1"), v1::TASK_FINISHED);
  EXPECT_EQ(finished.size(), 16u);
  ASSERT_TRUE(
      leader_.server().WaitForRequests(IsUpdate("t-1"), 1, Deadline()));
  // The RUNNING update is in flight; FINISHED waits for its ack.
  std::vector<AgentCall> updates = leader_.Updates();
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].update().status().state(), v1::TASK_RUNNING);
  EXPECT_EQ(agent->unacknowledged_updates(), 2u);

  ASSERT_TRUE(
      leader_.server().SendEvent(Acknowledge(updates[0].update().status())));
  ASSERT_TRUE(
      leader_.server().WaitForRequests(IsUpdate("t-1"), 2, Deadline()));
  updates = leader_.Updates();
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(updates[1].update().status().state(), v1::TASK_FINISHED);
  EXPECT_EQ(updates[1].update().status().uuid(), finished);

  ASSERT_TRUE(
      leader_.server().SendEvent(Acknowledge(updates[1].update().status())));
  ASSERT_TRUE(agent->WaitUntil(
      [&] { return agent->task(Framework(), Task("t-1"))->completed; },
      Deadline()));
}

TEST_F(FakeAgentTest, KillIsAnsweredWithTaskKilled) {
  FakeAgentOptions options = Options();
  options.launch_state = std::nullopt;  // tasks stay TASK_STAGING
  std::unique_ptr<FakeAgent> agent = Subscribed(options);
  ASSERT_TRUE(leader_.server().SendEvent(Launch({"t-1"})));
  ASSERT_TRUE(leader_.server().SendEvent(Kill("t-1")));
  ASSERT_TRUE(leader_.server().WaitForRequests(
      IsUpdate("t-1", v1::TASK_KILLED), 1, Deadline()));
  const v1::TaskStatus killed = leader_.Updates()[0].update().status();
  EXPECT_EQ(killed.reason(), v1::TaskStatus::REASON_TASK_KILLED_DURING_LAUNCH);
  EXPECT_EQ(leader_.Updates().size(), 1u);  // no RUNNING before it
  ASSERT_EQ(agent->kills().size(), 1u);
  EXPECT_EQ(agent->kills()[0].task_id().value(), "t-1");

  // A task the agent never heard of is reported lost.
  ASSERT_TRUE(leader_.server().SendEvent(Kill("t-unknown")));
  ASSERT_TRUE(leader_.server().WaitForRequests(
      IsUpdate("t-unknown", v1::TASK_LOST), 1, Deadline()));
  const v1::TaskStatus lost = leader_.Updates()[1].update().status();
  EXPECT_EQ(lost.source(), v1::TaskStatus::SOURCE_AGENT);
  EXPECT_EQ(lost.reason(), v1::TaskStatus::REASON_RECONCILIATION);
}

TEST_F(FakeAgentTest, UnacknowledgedUpdateIsResentWithTheSameUuid) {
  FakeAgentOptions options = Options();
  options.update_retry = absl::Milliseconds(20);
  std::unique_ptr<FakeAgent> agent = Subscribed(options);
  ASSERT_TRUE(leader_.server().SendEvent(Launch({"t-1"})));
  ASSERT_TRUE(
      leader_.server().WaitForRequests(IsUpdate("t-1"), 3, Deadline()));
  const std::vector<AgentCall> updates = leader_.Updates();
  EXPECT_EQ(updates[0].update().status().uuid(),
            updates[1].update().status().uuid());
  EXPECT_EQ(updates[1].update().status().uuid(),
            updates[2].update().status().uuid());
  EXPECT_EQ(agent->unacknowledged_updates(), 1u);
}

TEST_F(FakeAgentTest, ResubscribeReportsTasksAndResendsTheQueueHead) {
  std::unique_ptr<FakeAgent> agent = Subscribed(Options());
  ASSERT_TRUE(leader_.server().SendEvent(Launch({"t-1"})));
  ASSERT_TRUE(
      leader_.server().WaitForRequests(IsUpdate("t-1"), 1, Deadline()));
  const std::string uuid = leader_.Updates()[0].update().status().uuid();

  leader_.server().CloseStream();  // the leader went away
  ASSERT_TRUE(agent->WaitUntil([&] { return agent->stream_end().has_value(); },
                               Deadline()));
  EXPECT_FALSE(agent->subscribed());
  EXPECT_EQ(agent->NextEvent(AgentEvent::LAUNCH, Deadline()).status().code(),
            absl::StatusCode::kOk);  // queued before the end
  EXPECT_EQ(agent->NextEvent(AgentEvent::KILL, Deadline()).status().code(),
            absl::StatusCode::kUnavailable);

  absl::StatusOr<v1::AgentID> id = agent->Resubscribe();
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->value(), "agent-1");
  EXPECT_EQ(agent->stream_id(), "as2");
  const std::vector<http::Request> subscribes = [&] {
    std::vector<http::Request> out;
    for (const http::Request& r : leader_.server().requests()) {
      if (IsCall(AgentCall::SUBSCRIBE)(r)) out.push_back(r);
    }
    return out;
  }();
  ASSERT_EQ(subscribes.size(), 2u);
  const AgentCall again = ParseCall(subscribes[1]);
  EXPECT_EQ(again.agent_id().value(), "agent-1");
  EXPECT_EQ(again.subscribe().agent_info().id().value(), "agent-1");
  ASSERT_EQ(again.subscribe().tasks_size(), 1);
  const v1::Task& task = again.subscribe().tasks(0);
  EXPECT_EQ(task.task_id().value(), "t-1");
  EXPECT_EQ(task.framework_id().value(), "fw-1");
  EXPECT_EQ(task.state(), v1::TASK_RUNNING);
  EXPECT_EQ(task.status_update_state(), v1::TASK_RUNNING);
  EXPECT_EQ(task.status_update_uuid(), uuid);
  EXPECT_EQ(task.resources_size(), 1);
  ASSERT_EQ(again.subscribe().frameworks_size(), 1);
  EXPECT_EQ(again.subscribe().frameworks(0).name(), "framework-one");

  // The unacknowledged update goes again at once (update_retry is 10 s),
  // with its uuid, on the new stream.
  ASSERT_TRUE(
      leader_.server().WaitForRequests(IsUpdate("t-1"), 2, Deadline()));
  EXPECT_EQ(leader_.Updates()[1].update().status().uuid(), uuid);
  for (const http::Request& r : leader_.server().requests()) {
    if (IsUpdate("t-1")(r) && r.headers.Get("X-Cairn-Stream-Id") == "as2") {
      return;
    }
  }
  ADD_FAILURE() << "no UPDATE on the new stream";
}

TEST_F(FakeAgentTest, KnownAgentReregistersWithTheTasksItRuns) {
  FakeAgentOptions options = Options();
  options.agent_id = v1::AgentID();
  options.agent_id->set_value("agent-7");
  FakeAgent agent(options);
  v1::TaskInfo info;
  info.set_name("survivor");
  *info.mutable_task_id() = Task("t-9");
  agent.AddTask(Framework(), info, v1::TASK_RUNNING);

  absl::StatusOr<v1::AgentID> id = agent.Subscribe();
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->value(), "agent-7");
  const AgentCall call = ParseCall(leader_.server().requests()[0]);
  EXPECT_EQ(call.agent_id().value(), "agent-7");
  ASSERT_EQ(call.subscribe().tasks_size(), 1);
  EXPECT_EQ(call.subscribe().tasks(0).state(), v1::TASK_RUNNING);
  EXPECT_FALSE(call.subscribe().tasks(0).has_status_update_uuid());
  ASSERT_EQ(call.subscribe().frameworks_size(), 1);
  EXPECT_EQ(call.subscribe().frameworks(0).id().value(), "fw-1");
}

TEST_F(FakeAgentTest, HeartbeatsAreSentEveryInterval) {
  leader_.set_heartbeat_seconds(0.02);
  std::unique_ptr<FakeAgent> agent = Subscribed(Options());
  ASSERT_TRUE(leader_.server().WaitForRequests(IsCall(AgentCall::HEARTBEAT),
                                               3, Deadline()));
  ASSERT_TRUE(agent->WaitUntil([&] { return agent->heartbeats_sent() >= 3; },
                               Deadline()));
  for (const http::Request& r : leader_.server().requests()) {
    if (!IsCall(AgentCall::HEARTBEAT)(r)) continue;
    EXPECT_EQ(r.headers.Get("X-Cairn-Stream-Id"), "as1");
    EXPECT_EQ(ParseCall(r).agent_id().value(), "agent-1");
  }
}

TEST_F(FakeAgentTest, ReconcileReportsUnknownTasksAndKillsUnlistedOnes) {
  std::unique_ptr<FakeAgent> agent = Subscribed(Options());
  ASSERT_TRUE(leader_.server().SendEvent(Launch({"t-a", "t-b"})));
  ASSERT_TRUE(
      leader_.server().WaitForRequests(IsUpdate("t-a"), 1, Deadline()));
  ASSERT_TRUE(
      leader_.server().WaitForRequests(IsUpdate("t-b"), 1, Deadline()));
  for (const AgentCall& update : leader_.Updates()) {
    ASSERT_TRUE(
        leader_.server().SendEvent(Acknowledge(update.update().status())));
  }
  ASSERT_TRUE(agent->WaitUntil(
      [&] { return agent->unacknowledged_updates() == 0; }, Deadline()));

  AgentEvent reconcile;
  reconcile.set_type(AgentEvent::RECONCILE);
  for (const char* id : {"t-a", "t-c"}) {
    AgentEvent::Reconcile::Task* t = reconcile.mutable_reconcile()->add_tasks();
    *t->mutable_framework_id() = Framework();
    *t->mutable_task_id() = Task(id);
    t->set_state(v1::TASK_RUNNING);
  }
  ASSERT_TRUE(leader_.server().SendEvent(reconcile));
  ASSERT_TRUE(leader_.server().WaitForRequests(
      IsUpdate("t-c", v1::TASK_LOST), 1, Deadline()));
  ASSERT_TRUE(leader_.server().WaitForRequests(
      IsUpdate("t-b", v1::TASK_KILLED), 1, Deadline()));
  EXPECT_EQ(leader_.server().CountRequests(IsUpdate("t-a")), 1u);
  ASSERT_EQ(agent->reconciles().size(), 1u);
}

TEST_F(FakeAgentTest, AutoResubscribeAfterTheStreamEnds) {
  FakeAgentOptions options = Options();
  options.auto_resubscribe = true;
  options.resubscribe_backoff = absl::Milliseconds(10);
  std::unique_ptr<FakeAgent> agent = Subscribed(options);
  leader_.server().CloseStream();
  ASSERT_TRUE(agent->WaitUntil([&] { return agent->subscriptions() == 2; },
                               Deadline()));
  EXPECT_TRUE(agent->subscribed());
  EXPECT_EQ(agent->stream_id(), "as2");
  const AgentCall again = ParseCall(leader_.server().requests().back());
  EXPECT_EQ(again.type(), AgentCall::SUBSCRIBE);
  EXPECT_EQ(again.agent_id().value(), "agent-1");
}

TEST_F(FakeAgentTest, ErrorEventIsRecordedAndEndsTheStream) {
  std::unique_ptr<FakeAgent> agent = Subscribed(Options());
  AgentEvent error;
  error.set_type(AgentEvent::ERROR);
  error.mutable_error()->set_message("agent removed");
  error.mutable_error()->set_code(403);
  ASSERT_TRUE(leader_.server().SendEvent(error));
  leader_.server().CloseStream();
  ASSERT_TRUE(agent->WaitUntil([&] { return agent->stream_end().has_value(); },
                               Deadline()));
  ASSERT_EQ(agent->errors().size(), 1u);
  EXPECT_EQ(agent->errors()[0].code(), 403);
}

TEST_F(FakeAgentTest, SendFillsInTheAgentIdAndStreamId) {
  std::unique_ptr<FakeAgent> agent = Subscribed(Options());
  AgentCall unsubscribe;
  unsubscribe.set_type(AgentCall::UNSUBSCRIBE);
  unsubscribe.mutable_unsubscribe()->set_message("bye");
  ASSERT_TRUE(agent->Send(unsubscribe).ok());
  const http::Request request = leader_.server().requests().back();
  EXPECT_EQ(request.headers.Get("X-Cairn-Stream-Id"), "as1");
  EXPECT_EQ(ParseCall(request).agent_id().value(), "agent-1");
}

}  // namespace
}  // namespace cairn::tests
