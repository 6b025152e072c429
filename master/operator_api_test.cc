// Unit tests of the operator API's pure parts (master/operator_api.h):
// request parsing and validation, the answers built from a MasterState,
// their encodings, and the SUBSCRIBE event mapping with in-memory streams
// and an injected time. The HTTP endpoint and the Leader's mutations are
// tested by tests/operator_api_test.cc and master/leader_test.cc.

#include "master/operator_api.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "cairn/v1/master.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/operator.pb.h"
#include "common/json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "master/resources.h"
#include "master/state.h"

namespace cairn::master {
namespace {

using ::testing::ElementsAre;
using v1::master_api::Call;
using v1::master_api::Event;
using v1::master_api::Response;

// ---- requests ---------------------------------------------------------------

http::Request Post(const std::string& body,
                   const std::string& content_type = "application/json",
                   const std::string& accept = "") {
  http::Request request;
  request.method = "POST";
  request.target = request.path = "/api/v1";
  if (!content_type.empty()) request.headers.Set("Content-Type", content_type);
  if (!accept.empty()) request.headers.Set("Accept", accept);
  request.body = body;
  return request;
}

// The parse's error answer (status, field), or {0, ""} when it parsed.
struct Outcome {
  int status = 0;
  std::string field;
  std::string body;
};
Outcome Parse(const http::Request& request, OperatorRequest* out = nullptr) {
  OperatorRequest ignored;
  std::optional<http::Response> bad =
      ParseOperatorRequest(request, out != nullptr ? out : &ignored);
  if (!bad.has_value()) return {};
  Outcome outcome;
  outcome.status = bad->status;
  outcome.body = bad->body;
  const std::string key = "\"field\":\"";
  const size_t at = bad->body.find(key);
  if (at != std::string::npos) {
    const size_t begin = at + key.size();
    outcome.field = bad->body.substr(begin, bad->body.find('"', begin) - begin);
  }
  return outcome;
}

TEST(OperatorRequestTest, ParsesJsonAndAnswersInJsonWithoutAccept) {
  OperatorRequest request;
  ASSERT_EQ(Parse(Post(R"({"type":"GET_STATE"})"), &request).status, 0);
  EXPECT_EQ(request.call.type(), Call::GET_STATE);
  EXPECT_EQ(request.accept, Encoding::kJson);
}

TEST(OperatorRequestTest, ParsesProtobufAndHonoursAccept) {
  Call call;
  call.set_type(Call::DEACTIVATE_AGENT);
  call.mutable_deactivate_agent()->mutable_agent_id()->set_value("a1");
  OperatorRequest request;
  ASSERT_EQ(Parse(Post(call.SerializeAsString(), "application/x-protobuf",
                       "application/x-protobuf"),
                  &request)
                .status,
            0);
  EXPECT_EQ(request.call.deactivate_agent().agent_id().value(), "a1");
  EXPECT_EQ(request.accept, Encoding::kProtobuf);
}

TEST(OperatorRequestTest, CarriesThePrincipalAndRequestId) {
  http::Request post = Post(R"({"type":"GET_HEALTH"})");
  post.headers.Set("X-Cairn-Principal", "ops");
  post.headers.Set("X-Request-Id", "r-1");
  OperatorRequest request;
  ASSERT_EQ(Parse(post, &request).status, 0);
  EXPECT_EQ(request.context.principal, "ops");
  EXPECT_EQ(request.context.request_id, "r-1");
}

TEST(OperatorRequestTest, MissingContentTypeIs400) {
  Outcome o = Parse(Post(R"({"type":"GET_STATE"})", ""));
  EXPECT_EQ(o.status, 400);
  EXPECT_EQ(o.field, "Content-Type");
}

TEST(OperatorRequestTest, OtherContentTypeIs415) {
  EXPECT_EQ(Parse(Post(R"({"type":"GET_STATE"})", "text/plain")).status, 415);
}

TEST(OperatorRequestTest, MalformedBodiesAre400) {
  EXPECT_EQ(Parse(Post("{not json")).status, 400);
  EXPECT_EQ(Parse(Post("\xff\xff\xff", "application/x-protobuf")).status, 400);
  Outcome untyped = Parse(Post(R"({"get_metrics":{}})"));
  EXPECT_EQ(untyped.status, 400);
  EXPECT_EQ(untyped.field, "type");
}

TEST(OperatorRequestTest, UnacceptableAcceptIs406) {
  Outcome o =
      Parse(Post(R"({"type":"GET_STATE"})", "application/json", "text/html"));
  EXPECT_EQ(o.status, 406);
  EXPECT_EQ(o.field, "Accept");
}

TEST(OperatorRequestTest, CallsWithoutTheirMemberAre400NamingIt) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"type":"GET_METRICS"})", "get_metrics"},
      {R"({"type":"UPDATE_WEIGHTS"})", "update_weights"},
      {R"({"type":"UPDATE_QUOTA"})", "update_quota"},
      {R"({"type":"TEARDOWN"})", "teardown"},
      {R"({"type":"TEARDOWN","teardown":{}})", "teardown.framework_id"},
      {R"({"type":"MARK_AGENT_GONE","mark_agent_gone":{}})",
       "mark_agent_gone.agent_id"},
      {R"({"type":"DRAIN_AGENT","drain_agent":{}})", "drain_agent.agent_id"},
      {R"({"type":"DEACTIVATE_AGENT","deactivate_agent":{}})",
       "deactivate_agent.agent_id"},
      {R"({"type":"REACTIVATE_AGENT"})", "reactivate_agent"},
      {R"({"type":"RESERVE_RESOURCES","reserve_resources":{}})",
       "reserve_resources.agent_id"},
      {R"({"type":"UNRESERVE_RESOURCES","unreserve_resources":{}})",
       "unreserve_resources.agent_id"},
  };
  for (const auto& [body, field] : cases) {
    Outcome o = Parse(Post(body));
    EXPECT_EQ(o.status, 400) << body;
    EXPECT_EQ(o.field, field) << body;
  }
}

TEST(OperatorRequestTest, CallsThisMasterDoesNotServeAre501) {
  for (const char* type : {"GET_LOGGING_LEVEL", "READ_FILE", "CREATE_VOLUMES",
                           "GET_MAINTENANCE_SCHEDULE", "SET_QUOTA"}) {
    EXPECT_EQ(Parse(Post(absl::StrCat(R"({"type":")", type, "\"}"))).status,
              501)
        << type;
  }
}

TEST(OperatorRequestTest, DrainAgentTakesMesossDurationObject) {
  OperatorRequest request;
  ASSERT_EQ(Parse(Post(R"({"type":"DRAIN_AGENT","drain_agent":{)"
                       R"("agent_id":{"value":"a1"},)"
                       R"("max_grace_period":{"seconds":600,"nanos":5},)"
                       R"("mark_gone":true}})"),
                  &request)
                .status,
            0);
  const v1::DrainConfig config = DrainConfigOf(request.call.drain_agent());
  EXPECT_EQ(config.max_grace_period().nanoseconds(), 600000000005);
  EXPECT_TRUE(config.mark_gone());

  Outcome negative = Parse(Post(R"({"type":"DRAIN_AGENT","drain_agent":{)"
                                R"("agent_id":{"value":"a1"},)"
                                R"("max_grace_period":{"seconds":-1}}})"));
  EXPECT_EQ(negative.status, 400);
  EXPECT_EQ(negative.field, "drain_agent.max_grace_period");
}

// ---- a small cluster in a MasterState ---------------------------------------

class OperatorStateTest : public ::testing::Test {
 protected:
  void Apply(v1::Event e) {
    e.set_position(++position_);
    e.mutable_time()->set_nanoseconds(position_ * 1000000000);
    absl::Status applied = state_.Apply(e);
    ASSERT_TRUE(applied.ok()) << applied << "\n" << e.DebugString();
  }

  static void SetResources(
      const std::string& text,
      google::protobuf::RepeatedPtrField<v1::Resource>* out) {
    absl::StatusOr<Resources> r = Resources::Parse(text);
    ASSERT_TRUE(r.ok()) << r.status();
    r->ToProto(out);
  }

  void RegisterAgent(const std::string& id,
                     const std::string& resources = "cpus:4;mem:1024") {
    v1::Event e;
    v1::AgentInfo* info = e.mutable_agent_registered()->mutable_info();
    info->mutable_id()->set_value(id);
    info->set_hostname(id + ".example");
    SetResources(resources, info->mutable_resources());
    e.mutable_agent_registered()->set_version("1.0");
    Apply(e);
  }

  void SubscribeFramework(const std::string& id,
                          const std::string& role = "web") {
    v1::Event e;
    v1::FrameworkInfo* info = e.mutable_framework_subscribed()->mutable_info();
    info->mutable_id()->set_value(id);
    info->set_user("nobody");
    info->set_name(id);
    info->add_roles(role);
    info->add_capabilities()->set_type(
        v1::FrameworkInfo::Capability::MULTI_ROLE);
    Apply(e);
  }

  void Launch(const std::string& framework, const std::string& agent,
              const std::string& task, bool with_executor = false) {
    v1::Event e;
    v1::TasksLaunched* launch = e.mutable_tasks_launched();
    launch->mutable_framework_id()->set_value(framework);
    v1::TaskInfo* t = launch->add_tasks();
    t->set_name(task);
    t->mutable_task_id()->set_value(task);
    t->mutable_agent_id()->set_value(agent);
    SetResources("cpus:1;mem:128", t->mutable_resources());
    if (with_executor) {
      t->mutable_executor()->mutable_executor_id()->set_value("exec-" + task);
      t->mutable_executor()->mutable_command()->set_value("run");
    } else {
      t->mutable_command()->set_value("sleep 1");
    }
    Apply(e);
  }

  void Update(const std::string& framework, const std::string& task,
              v1::TaskState state, const std::string& uuid = "",
              const std::string& data = "") {
    v1::Event e;
    e.mutable_task_status_updated()->mutable_framework_id()->set_value(
        framework);
    v1::TaskStatus* s = e.mutable_task_status_updated()->mutable_status();
    s->mutable_task_id()->set_value(task);
    s->set_state(state);
    s->set_source(v1::TaskStatus::SOURCE_EXECUTOR);
    s->set_uuid(uuid);
    s->set_data(data);
    Apply(e);
  }

  MasterState state_;
  uint64_t position_ = 0;
};

TEST_F(OperatorStateTest, GetAgentsListsActiveAgentsWithTheirResources) {
  RegisterAgent("a1");
  RegisterAgent("a2");
  SubscribeFramework("f1");
  Launch("f1", "a1", "t1");
  v1::Event deactivate;
  deactivate.mutable_agent_deactivated()->mutable_agent_id()->set_value("a2");
  Apply(deactivate);
  v1::Event unreachable;
  RegisterAgent("a3");
  unreachable.mutable_agent_unreachable()->mutable_agent_id()->set_value("a3");
  Apply(unreachable);

  Response::GetAgents agents = MakeGetAgents(state_);
  ASSERT_EQ(agents.agents_size(), 2);
  const auto& a1 = agents.agents(0);
  EXPECT_EQ(a1.agent_info().id().value(), "a1");
  EXPECT_TRUE(a1.active());
  EXPECT_FALSE(a1.deactivated());
  EXPECT_EQ(a1.version(), "1.0");
  EXPECT_EQ(a1.registered_time().nanoseconds(), 1000000000);
  EXPECT_EQ(Resources::FromProto(a1.total_resources())->ToString(),
            "cpus:4;mem:1024");
  EXPECT_EQ(Resources::FromProto(a1.allocated_resources())->ToString(),
            "cpus:1;mem:128");
  const auto& a2 = agents.agents(1);
  EXPECT_FALSE(a2.active());
  EXPECT_TRUE(a2.deactivated());
}

TEST_F(OperatorStateTest, GetFrameworksSeparatesCompletedOnes) {
  RegisterAgent("a1");
  SubscribeFramework("f1");
  SubscribeFramework("f2");
  Launch("f1", "a1", "t1");
  v1::Event removed;
  removed.mutable_framework_removed()->mutable_framework_id()->set_value("f2");
  Apply(removed);

  Response::GetFrameworks frameworks = MakeGetFrameworks(state_);
  ASSERT_EQ(frameworks.frameworks_size(), 1);
  const auto& f1 = frameworks.frameworks(0);
  EXPECT_EQ(f1.framework_info().id().value(), "f1");
  EXPECT_TRUE(f1.active());
  EXPECT_TRUE(f1.connected());
  EXPECT_FALSE(f1.recovered());
  EXPECT_EQ(Resources::FromProto(f1.allocated_resources())->ToString(),
            "cpus:1;mem:128");
  ASSERT_EQ(frameworks.completed_frameworks_size(), 1);
  EXPECT_EQ(frameworks.completed_frameworks(0).framework_info().id().value(),
            "f2");
  EXPECT_FALSE(frameworks.completed_frameworks(0).connected());
}

TEST_F(OperatorStateTest, GetTasksSortsLiveUnreachableAndCompletedTasks) {
  RegisterAgent("a1");
  SubscribeFramework("f1");
  Launch("f1", "a1", "running");
  Launch("f1", "a1", "lost-contact");
  Launch("f1", "a1", "done");
  Update("f1", "running", v1::TASK_RUNNING, "", "big payload");
  Update("f1", "lost-contact", v1::TASK_UNREACHABLE);
  Update("f1", "done", v1::TASK_FINISHED);  // no uuid: nothing to ack

  Response::GetTasks tasks = MakeGetTasks(state_);
  ASSERT_EQ(tasks.tasks_size(), 1);
  EXPECT_EQ(tasks.tasks(0).task_id().value(), "running");
  EXPECT_EQ(tasks.tasks(0).state(), v1::TASK_RUNNING);
  ASSERT_EQ(tasks.tasks(0).statuses_size(), 1);
  EXPECT_FALSE(tasks.tasks(0).statuses(0).has_data()) << "Mesos drops data";
  ASSERT_EQ(tasks.unreachable_tasks_size(), 1);
  EXPECT_EQ(tasks.unreachable_tasks(0).task_id().value(), "lost-contact");
  ASSERT_EQ(tasks.completed_tasks_size(), 1);
  EXPECT_EQ(tasks.completed_tasks(0).task_id().value(), "done");
}

TEST_F(OperatorStateTest, GetExecutorsListsCustomExecutorsOnce) {
  RegisterAgent("a1");
  SubscribeFramework("f1");
  Launch("f1", "a1", "t1", /*with_executor=*/true);
  Launch("f1", "a1", "t2");  // a command task: no executor the master knows

  Response::GetExecutors executors = MakeGetExecutors(state_);
  ASSERT_EQ(executors.executors_size(), 1);
  EXPECT_EQ(executors.executors(0).executor_info().executor_id().value(),
            "exec-t1");
  EXPECT_EQ(executors.executors(0).executor_info().framework_id().value(),
            "f1");
  EXPECT_EQ(executors.executors(0).agent_id().value(), "a1");
}

TEST_F(OperatorStateTest, GetRolesHasFrameworkWeightAndQuotaRoles) {
  RegisterAgent("a1");
  SubscribeFramework("f1", "web");
  Launch("f1", "a1", "t1");
  v1::Event weights;
  v1::WeightInfo* w = weights.mutable_weights_updated()->add_weights();
  w->set_role("batch");
  w->set_weight(2.5);
  Apply(weights);
  v1::Event quota;
  v1::QuotaConfig* q = quota.mutable_quota_updated()->add_configs();
  q->set_role("ads");
  (*q->mutable_guarantees())["cpus"].set_value(1);
  Apply(quota);

  Response::GetRoles roles = MakeGetRoles(state_);
  ASSERT_EQ(roles.roles_size(), 3);
  EXPECT_EQ(roles.roles(0).name(), "ads");
  EXPECT_EQ(roles.roles(0).weight(), 1.0);
  EXPECT_EQ(roles.roles(1).name(), "batch");
  EXPECT_EQ(roles.roles(1).weight(), 2.5);
  const v1::Role& web = roles.roles(2);
  EXPECT_EQ(web.name(), "web");
  ASSERT_EQ(web.frameworks_size(), 1);
  EXPECT_EQ(web.frameworks(0).value(), "f1");
  EXPECT_EQ(Resources::FromProto(web.resources())->ToString(),
            "cpus:1;mem:128");
}

TEST_F(OperatorStateTest, GetQuotaFillsConfigsAndTheLegacyInfos) {
  v1::Event quota;
  v1::QuotaConfig* q = quota.mutable_quota_updated()->add_configs();
  q->set_role("ads");
  (*q->mutable_guarantees())["mem"].set_value(512);
  (*q->mutable_guarantees())["cpus"].set_value(2);
  (*q->mutable_limits())["cpus"].set_value(4);
  Apply(quota);

  Response::GetQuota answer = MakeGetQuota(state_);
  ASSERT_EQ(answer.status().configs_size(), 1);
  EXPECT_EQ(answer.status().configs(0).role(), "ads");
  EXPECT_EQ(answer.status().configs(0).limits().at("cpus").value(), 4);
  ASSERT_EQ(answer.status().infos_size(), 1);
  const v1::QuotaInfo& info = answer.status().infos(0);
  EXPECT_EQ(info.role(), "ads");
  ASSERT_EQ(info.guarantee_size(), 2);
  EXPECT_EQ(info.guarantee(0).name(), "cpus");
  EXPECT_EQ(info.guarantee(0).scalar().value(), 2);
  EXPECT_EQ(info.guarantee(1).name(), "mem");
}

TEST_F(OperatorStateTest, GetWeightsJsonKeepsItsEarlierText) {
  Call call;
  call.set_type(Call::GET_WEIGHTS);
  EXPECT_EQ(
      EncodeResponse(AnswerReadOnlyCall(call, state_, {}), Encoding::kJson)
          .body,
      R"({"type":"GET_WEIGHTS","get_weights":{"weight_infos":[]}})");
  v1::Event weights;
  v1::WeightInfo* w = weights.mutable_weights_updated()->add_weights();
  w->set_role("a");
  w->set_weight(2);
  Apply(weights);
  EXPECT_EQ(
      EncodeResponse(AnswerReadOnlyCall(call, state_, {}), Encoding::kJson)
          .body,
      R"({"type":"GET_WEIGHTS","get_weights":{"weight_infos":[)"
      R"({"role":"a","weight":2}]}})");
}

TEST_F(OperatorStateTest, ResponsesEncodeAsProtobufAndMesosJson) {
  RegisterAgent("a1");
  Call call;
  call.set_type(Call::GET_STATE);
  const Response response = AnswerReadOnlyCall(call, state_, {});
  EXPECT_EQ(response.type(), Response::GET_STATE);

  http::Response proto = EncodeResponse(response, Encoding::kProtobuf);
  EXPECT_EQ(proto.status, 200);
  EXPECT_EQ(proto.headers.Get("Content-Type"), "application/x-protobuf");
  Response decoded;
  ASSERT_TRUE(decoded.ParseFromString(proto.body));
  EXPECT_EQ(
      decoded.get_state().get_agents().agents(0).agent_info().id().value(),
      "a1");

  http::Response json = EncodeResponse(response, Encoding::kJson);
  EXPECT_EQ(json.headers.Get("Content-Type"), "application/json");
  EXPECT_TRUE(
      absl::StartsWith(json.body, R"({"type":"GET_STATE","get_state":)"))
      << json.body;
  EXPECT_TRUE(absl::StrContains(json.body, R"("agent_info":{"hostname":)"))
      << json.body;
  // Mesos's JSON: 64-bit integers as numbers, declared defaults written
  // (AgentInfo.port is `[default = 5051]`).
  EXPECT_TRUE(absl::StrContains(
      json.body, R"("registered_time":{"nanoseconds":1000000000})"))
      << json.body;
  EXPECT_TRUE(absl::StrContains(json.body, R"("port":5051)")) << json.body;
}

TEST_F(OperatorStateTest, SimpleGetsAnswerFromTheirFacts) {
  const std::map<std::string, std::string> flags = {{"port", "5050"}};
  MasterFacts facts;
  facts.version = "9.9.9";
  facts.flags = &flags;
  facts.master_info.set_id("m-1");
  facts.start_time = absl::FromUnixSeconds(100);
  facts.elected_time = absl::FromUnixSeconds(150);
  facts.metrics_json =
      R"({"master/uptime_secs":12.5,"master/elected":1,"odd":"text"})";
  Call call;

  call.set_type(Call::GET_HEALTH);
  EXPECT_TRUE(AnswerReadOnlyCall(call, state_, facts).get_health().healthy());
  call.set_type(Call::GET_VERSION);
  EXPECT_EQ(AnswerReadOnlyCall(call, state_, facts)
                .get_version()
                .version_info()
                .version(),
            "9.9.9");
  call.set_type(Call::GET_FLAGS);
  Response flags_answer = AnswerReadOnlyCall(call, state_, facts);
  ASSERT_EQ(flags_answer.get_flags().flags_size(), 1);
  EXPECT_EQ(flags_answer.get_flags().flags(0).name(), "port");
  EXPECT_EQ(flags_answer.get_flags().flags(0).value(), "5050");
  call.set_type(Call::GET_MASTER);
  Response master = AnswerReadOnlyCall(call, state_, facts);
  EXPECT_EQ(master.get_master().master_info().id(), "m-1");
  EXPECT_EQ(master.get_master().start_time(), 100);
  EXPECT_EQ(master.get_master().elected_time(), 150);
  call.set_type(Call::GET_METRICS);
  Response metrics = AnswerReadOnlyCall(call, state_, facts);
  ASSERT_EQ(metrics.get_metrics().metrics_size(), 2);
  EXPECT_EQ(metrics.get_metrics().metrics(0).name(), "master/elected");
  EXPECT_EQ(metrics.get_metrics().metrics(1).name(), "master/uptime_secs");
  EXPECT_EQ(metrics.get_metrics().metrics(1).value(), 12.5);
}

// ---- SUBSCRIBE streams ------------------------------------------------------

class FakeEventStream : public OperatorEventStream {
 public:
  void Send(const Event& event) override {
    if (!closed) events.push_back(event);
  }
  void Close() override { closed = true; }
  std::vector<Event::Type> Types() const {
    std::vector<Event::Type> out;
    for (const Event& e : events) out.push_back(e.type());
    return out;
  }
  std::vector<Event> events;
  bool closed = false;
};

class OperatorEventsTest : public OperatorStateTest {
 protected:
  OperatorEventsTest() { options_.heartbeat_interval = absl::Seconds(15); }

  // Applies `e` to the state and hands it to the streams, as the master's
  // fold does.
  void Fold(const v1::Event& e) {
    Apply(e);
    if (events_ != nullptr) events_->OnApplied(e);
  }

  std::shared_ptr<FakeEventStream> NewSubscriber() {
    if (events_ == nullptr) {
      events_ = std::make_unique<OperatorEvents>(options_, &state_);
    }
    auto stream = std::make_shared<FakeEventStream>();
    events_->Subscribe(stream, now_);
    return stream;
  }

  OperatorApiOptions options_;
  std::unique_ptr<OperatorEvents> events_;
  absl::Time now_ = absl::FromUnixSeconds(1000);
};

TEST_F(OperatorEventsTest, SubscribedCarriesTheStateAndHeartbeatInterval) {
  RegisterAgent("a1");
  SubscribeFramework("f1");
  Launch("f1", "a1", "t1");
  auto stream = NewSubscriber();
  ASSERT_THAT(stream->Types(), ElementsAre(Event::SUBSCRIBED));
  const Event::Subscribed& s = stream->events[0].subscribed();
  EXPECT_EQ(s.heartbeat_interval_seconds(), 15);
  EXPECT_EQ(s.get_state().get_agents().agents_size(), 1);
  EXPECT_EQ(s.get_state().get_frameworks().frameworks_size(), 1);
  EXPECT_EQ(s.get_state().get_tasks().tasks_size(), 1);
}

TEST_F(OperatorEventsTest, FoldedEventsBecomeMesosEvents) {
  auto stream = NewSubscriber();
  v1::Event e;

  v1::AgentInfo* info = e.mutable_agent_registered()->mutable_info();
  info->mutable_id()->set_value("a2");
  info->set_hostname("a2.example");
  SetResources("cpus:2;mem:512", info->mutable_resources());
  Fold(e);

  e.Clear();
  v1::FrameworkInfo fi;
  fi.mutable_id()->set_value("f1");
  fi.set_user("nobody");
  fi.set_name("f1");
  *e.mutable_framework_subscribed()->mutable_info() = fi;
  Fold(e);
  e.Clear();
  *e.mutable_framework_failed_over()->mutable_info() = fi;
  Fold(e);
  e.Clear();
  e.mutable_framework_disconnected()->mutable_framework_id()->set_value("f1");
  Fold(e);  // as Mesos: no event
  e.Clear();
  *e.mutable_framework_failed_over()->mutable_info() = fi;
  Fold(e);

  e.Clear();
  v1::TasksLaunched* launch = e.mutable_tasks_launched();
  launch->mutable_framework_id()->set_value("f1");
  v1::TaskInfo* t = launch->add_tasks();
  t->mutable_task_id()->set_value("t1");
  t->mutable_agent_id()->set_value("a2");
  SetResources("cpus:1", t->mutable_resources());
  t->mutable_command()->set_value("true");
  Fold(e);

  auto update = [&](v1::TaskState state) {
    v1::Event u;
    u.mutable_task_status_updated()->mutable_framework_id()->set_value("f1");
    v1::TaskStatus* s = u.mutable_task_status_updated()->mutable_status();
    s->mutable_task_id()->set_value("t1");
    s->set_state(state);
    s->set_source(v1::TaskStatus::SOURCE_EXECUTOR);
    Fold(u);
  };
  update(v1::TASK_RUNNING);
  update(v1::TASK_RUNNING);  // the same state again: no event
  update(v1::TASK_FINISHED);

  e.Clear();
  e.mutable_framework_removed()->mutable_framework_id()->set_value("f1");
  Fold(e);
  e.Clear();
  e.mutable_agent_unreachable()->mutable_agent_id()->set_value("a2");
  Fold(e);  // as Mesos: no event
  e.Clear();
  e.mutable_agent_removed()->mutable_agent_id()->set_value("a2");
  e.mutable_agent_removed()->set_by_operator(true);
  Fold(e);

  ASSERT_THAT(
      stream->Types(),
      ElementsAre(Event::SUBSCRIBED, Event::AGENT_ADDED, Event::FRAMEWORK_ADDED,
                  Event::FRAMEWORK_UPDATED, Event::FRAMEWORK_UPDATED,
                  Event::TASK_ADDED, Event::TASK_UPDATED, Event::TASK_UPDATED,
                  Event::FRAMEWORK_REMOVED, Event::AGENT_REMOVED));
  const auto& ev = stream->events;
  EXPECT_EQ(ev[1].agent_added().agent().agent_info().id().value(), "a2");
  EXPECT_TRUE(ev[1].agent_added().agent().active());
  EXPECT_EQ(ev[2].framework_added().framework().framework_info().id().value(),
            "f1");
  EXPECT_TRUE(ev[4].framework_updated().framework().connected());
  EXPECT_EQ(ev[5].task_added().task().task_id().value(), "t1");
  EXPECT_EQ(ev[5].task_added().task().state(), v1::TASK_STAGING);
  EXPECT_EQ(ev[6].task_updated().framework_id().value(), "f1");
  EXPECT_EQ(ev[6].task_updated().status().state(), v1::TASK_RUNNING);
  EXPECT_EQ(ev[6].task_updated().state(), v1::TASK_RUNNING);
  EXPECT_EQ(ev[7].task_updated().state(), v1::TASK_FINISHED);
  EXPECT_EQ(ev[8].framework_removed().framework_info().name(), "f1");
  EXPECT_EQ(ev[9].agent_removed().agent_id().value(), "a2");
}

TEST_F(OperatorEventsTest, HeartbeatsFollowTheInterval) {
  auto stream = NewSubscriber();
  events_->Tick(now_ + absl::Seconds(14));
  EXPECT_THAT(stream->Types(), ElementsAre(Event::SUBSCRIBED));
  events_->Tick(now_ + absl::Seconds(15));
  events_->Tick(now_ + absl::Seconds(20));
  events_->Tick(now_ + absl::Seconds(30));
  EXPECT_THAT(stream->Types(), ElementsAre(Event::SUBSCRIBED, Event::HEARTBEAT,
                                           Event::HEARTBEAT));
}

TEST_F(OperatorEventsTest, BeyondTheBoundTheOldestStreamIsClosed) {
  options_.max_event_stream_subscribers = 2;
  auto first = NewSubscriber();
  auto second = NewSubscriber();
  EXPECT_FALSE(first->closed);
  auto third = NewSubscriber();
  EXPECT_TRUE(first->closed);
  EXPECT_FALSE(second->closed);
  EXPECT_FALSE(third->closed);
  EXPECT_EQ(events_->size(), 2u);
}

TEST_F(OperatorEventsTest, UnsubscribedAndClosedStreamsHearNothingMore) {
  auto stream = NewSubscriber();
  auto other = std::make_shared<FakeEventStream>();
  const uint64_t id = events_->Subscribe(other, now_);
  events_->Unsubscribe(id);
  RegisterAgent("a0");
  v1::Event e;
  e.mutable_agent_removed()->mutable_agent_id()->set_value("a0");
  Fold(e);
  EXPECT_THAT(other->Types(), ElementsAre(Event::SUBSCRIBED));
  EXPECT_THAT(stream->Types(),
              ElementsAre(Event::SUBSCRIBED, Event::AGENT_REMOVED));

  events_->CloseAll();  // the master stepped down
  EXPECT_TRUE(stream->closed);
  EXPECT_EQ(events_->size(), 0u);
}

}  // namespace
}  // namespace cairn::master
