// Acceptance test (issue 4, item 4): every bad input to the Mesos v1
// scheduler API (POST /api/v1/scheduler) of a real `cairn-master`, sent over
// raw HTTP, gets Mesos's status code and a JSON body {"error", "field"}
// naming the problem and the field, and changes nothing: the master's
// state checksum (GET /master/replica's state_crc32c) is the same before
// and after every rejected call, and the master stays up.
//
//   status  what                                      field
//   400     malformed JSON / protobuf body             (the JSON path if known)
//   400     no (known) call type                       type
//   400     no Content-Type (Mesos: "Expecting         Content-Type
//           'Content-Type' to be present")
//   415     another Content-Type                       Content-Type
//   406     SUBSCRIBE with an Accept we cannot produce Accept
//   405     GET, PUT, DELETE (Allow: POST)             method
//   413     a body over the server's limit (16 MiB), announced or chunked
//   400     SUBSCRIBE carrying Mesos-Stream-Id         Mesos-Stream-Id
//   400     no framework_id                            framework_id
//   400     missing or stale Mesos-Stream-Id           Mesos-Stream-Id
//   403     unknown or unsubscribed framework          framework_id
//   503     more scheduler (or agent) streams than
//           --max_framework_streams (--max_agent_streams)
//
// ACCEPT problems are answered as Mesos answers them: 202, then an UPDATE
// on the stream — TASK_LOST (TASK_DROPPED for PARTITION_AWARE frameworks)
// with REASON_INVALID_OFFERS for an offer id used twice, offers of two
// agents or an unknown offer (nothing changes); TASK_ERROR with
// REASON_TASK_INVALID for resources beyond the offer or a task id already
// in use (that task is not launched; the rest of the call applies).
//
// Every wait is bounded by a deadline on a condition.

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/agent.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/json_value.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_client.h"
#include "tests/internal/master_cluster.h"
#include "tests/internal/raw_scheduler_api.h"

namespace cairn::tests {
namespace {

using v1::scheduler::Call;
using v1::scheduler::Event;

constexpr absl::Duration kTimeout = absl::Seconds(15);
constexpr char kPath[] = "/api/v1/scheduler";
constexpr char kJson[] = "application/json";
constexpr char kProtobuf[] = "application/x-protobuf";
// common/http_server.h's default ServerOptions::max_body_bytes, which the
// master keeps.
constexpr size_t kMaxBodyBytes = 16 << 20;

// A framework subscribed over raw HTTP (JSON).
struct Framework {
  std::string id;
  std::string stream_id;
  std::unique_ptr<SchedulerEventReader> events;
};

class SchedulerApiBadInputTest : public ::testing::Test {
 protected:
  // Flags for the master besides the harness's.
  virtual std::vector<std::string> ExtraFlags() const { return {}; }

  void SetUp() override {
    absl::StatusOr<MasterClusterOptions> options =
        OptionsForThisTest("scheduler_api_bad_input");
    ASSERT_TRUE(options.ok()) << options.status();
    options->masters = 1;
    options->timeout = kTimeout;
    options->flags.push_back("--allocation_interval=100ms");
    for (const std::string& flag : ExtraFlags()) options->flags.push_back(flag);
    absl::StatusOr<std::unique_ptr<MasterCluster>> cluster =
        MasterCluster::Start(*options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    absl::StatusOr<int> leader = cluster_->WaitForLeader({0});
    ASSERT_TRUE(leader.ok()) << leader.status();
  }

  void TearDown() override {
    // The master survived everything.
    if (cluster_ != nullptr) {
      absl::StatusOr<http::Response> health =
          cluster_->Request(0, "GET", "/health");
      ASSERT_TRUE(health.ok()) << health.status();
      EXPECT_EQ(health->status, 200);
    }
    agents_.clear();
  }

  uint16_t port() const { return cluster_->http_port(0); }

  // A FakeAgent "agent-<i>" (port 5051 + i) with 2 cpus and 1024 mem,
  // subscribed; returns its id.
  std::string StartAgent(int i) {
    FakeAgentOptions options;
    options.masters = {cluster_->Address(0)};
    options.hostname = absl::StrCat("agent-", i);
    options.port = 5051 + i;
    options.resources = {ScalarResource("cpus", 2),
                         ScalarResource("mem", 1024)};
    options.subscribe_timeout = kTimeout;
    agents_.push_back(std::make_unique<FakeAgent>(options));
    absl::StatusOr<v1::AgentID> id = agents_.back()->Subscribe();
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? id->value() : "";
  }

  // One request; the raw answer (a default Response after a transport
  // error, which fails the test).
  http::Response Request(const std::string& method,
                         const http::Headers& headers,
                         const std::string& body) {
    http::Client client;
    absl::StatusOr<http::Response> r =
        client.Request(method, "127.0.0.1", port(), kPath, headers, body);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : http::Response{};
  }
  http::Response PostJson(const std::string& body,
                          const std::string& stream_id = "") {
    http::Headers headers = {{"Content-Type", kJson}};
    if (!stream_id.empty()) headers.Set("Mesos-Stream-Id", stream_id);
    return Request("POST", headers, body);
  }

  // SUBSCRIBE body of a framework (JSON).
  static std::string SubscribeBody(const std::string& name,
                                   const std::string& framework_id = "") {
    return absl::StrCat(
        R"({"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"foo",)",
        R"("name":")", name, R"(","failover_timeout":3600)",
        framework_id.empty()
            ? std::string()
            : absl::StrCat(R"(,"id":{"value":")", framework_id, R"("})"),
        "}}}");
  }

  // Subscribes a framework over raw HTTP and waits for SUBSCRIBED. Returns
  // nullptr (the test fails) unless answered 200.
  std::unique_ptr<Framework> Subscribe(const std::string& name,
                                       const std::string& framework_id = "") {
    http::Client client;
    absl::StatusOr<std::unique_ptr<http::ClientStream>> stream =
        client.OpenStream("POST", "127.0.0.1", port(), kPath,
                          {{"Content-Type", kJson}, {"Accept", kJson}},
                          SubscribeBody(name, framework_id));
    EXPECT_TRUE(stream.ok()) << stream.status();
    if (!stream.ok()) return nullptr;
    EXPECT_EQ((*stream)->status(), 200);
    if ((*stream)->status() != 200) return nullptr;
    auto framework = std::make_unique<Framework>();
    framework->stream_id = (*stream)->headers().Get("Mesos-Stream-Id");
    framework->events = std::make_unique<SchedulerEventReader>(
        *std::move(stream), WireEncoding::kJson);
    absl::StatusOr<ReceivedEvent> subscribed =
        framework->events->Next(Event::SUBSCRIBED, absl::Now() + kTimeout);
    EXPECT_TRUE(subscribed.ok()) << subscribed.status();
    if (!subscribed.ok()) return nullptr;
    framework->id = subscribed->event.subscribed().framework_id().value();
    return framework;
  }

  // GET /master/replica's state checksum and applied position.
  std::string State() {
    std::optional<MasterReplica> replica = cluster_->GetReplica(0);
    EXPECT_TRUE(replica.has_value());
    return replica.has_value()
               ? absl::StrCat(replica->crc, "@", replica->applied)
               : std::string("<no answer>");
  }

  // Waits until two reads of the state a little apart agree (no allocation
  // or subscription still settling) and returns it.
  std::string QuietState() {
    const absl::Time deadline = absl::Now() + kTimeout;
    std::string last = State();
    while (absl::Now() < deadline) {
      // Several allocation intervals (100 ms) between the two reads.
      absl::SleepFor(absl::Milliseconds(300));
      const std::string now = State();
      if (now == last) return now;
      last = now;
    }
    ADD_FAILURE() << "the state did not settle";
    return last;
  }

  // The number of tasks /master/replica reports.
  uint64_t Tasks() {
    std::optional<MasterReplica> replica = cluster_->GetReplica(0);
    EXPECT_TRUE(replica.has_value());
    if (!replica.has_value()) return 0;
    absl::StatusOr<JsonValue> json = ParseJson(replica->json);
    EXPECT_TRUE(json.ok()) << json.status();
    return json.ok() ? json->Uint("tasks").value_or(0) : 0;
  }

  std::unique_ptr<MasterCluster> cluster_;
  std::vector<std::unique_ptr<FakeAgent>> agents_;
};

// Checks an error answer: `status`, a JSON body whose "error" contains
// `message` and whose "field" is `field` (absent when `field` is empty).
void ExpectError(const http::Response& r, int status, absl::string_view message,
                 absl::string_view field, absl::string_view what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.headers.Get("Content-Type"), kJson) << r.body;
  absl::StatusOr<JsonValue> body = ParseJson(r.body);
  ASSERT_TRUE(body.ok()) << body.status() << ": " << r.body;
  const std::optional<std::string> error = body->Text("error");
  ASSERT_TRUE(error.has_value()) << r.body;
  EXPECT_TRUE(absl::StrContains(*error, message))
      << "'" << *error << "' does not say '" << message << "'";
  if (field.empty()) {
    EXPECT_EQ(body->Find("field"), nullptr) << r.body;
  } else {
    EXPECT_EQ(body->Text("field").value_or("<none>"), field) << r.body;
  }
}

TEST_F(SchedulerApiBadInputTest,
       UnreadableRequestsGetMesosCodesAndNamedFields) {
  const std::string before = QuietState();
  const std::string subscribe = SubscribeBody("f");

  ExpectError(PostJson(R"({"type":"SUBSCRIBE",)"), 400, "malformed JSON", "",
              "truncated JSON");
  ExpectError(PostJson("[1,2,3]"), 400, "malformed JSON", "", "JSON array");
  ExpectError(PostJson(R"({"type":"SUBSCRIBE","subscribe":{"framework_info":)"
                       R"({"user":5,"name":"f"}}})"),
              400, "malformed JSON", "subscribe.framework_info.user",
              "a string field given a number");
  ExpectError(PostJson(R"({"type":"NO_SUCH_CALL"})"), 400, "type", "type",
              "unknown call type");
  ExpectError(PostJson(R"({"subscribe":{}})"), 400, "type", "type",
              "no call type");
  ExpectError(Request("POST", {{"Content-Type", kProtobuf}}, "\x0a\xff\xff"),
              400, "malformed protobuf", "", "truncated protobuf");
  ExpectError(Request("POST", {{"Content-Type", kProtobuf}}, ""), 400, "type",
              "type", "empty protobuf call");
  ExpectError(Request("POST", {{"Content-Type", "text/plain"}}, subscribe), 415,
              "Content-Type", "Content-Type", "text/plain");
  ExpectError(
      Request("POST", {{"Content-Type", "application/x-www-form-urlencoded"}},
              subscribe),
      415, "Content-Type", "Content-Type", "a form");
  ExpectError(Request("POST", {}, subscribe), 400, "Content-Type",
              "Content-Type", "no Content-Type");
  ExpectError(
      Request("POST", {{"Content-Type", kJson}, {"Accept", "text/html"}},
              subscribe),
      406, "Accept", "Accept", "Accept: text/html");
  ExpectError(
      Request(
          "POST",
          {{"Content-Type", kProtobuf},
           {"Accept", "application/xml, text/plain;q=0.5"}},
          [] {
            Call call;
            call.set_type(Call::SUBSCRIBE);
            call.mutable_subscribe()->mutable_framework_info()->set_user("foo");
            call.mutable_subscribe()->mutable_framework_info()->set_name("f");
            return call.SerializeAsString();
          }()),
      406, "Accept", "Accept", "Accept: xml or text");
  ExpectError(PostJson(R"({"type":"SUBSCRIBE","subscribe":{"framework_info":)"
                       R"({"name":"f"}}})"),
              400, "user", "subscribe.framework_info.user", "no user");
  for (const char* method : {"GET", "PUT", "DELETE"}) {
    const http::Response r = Request(method, {{"Content-Type", kJson}},
                                     method[0] == 'G' ? "" : subscribe);
    ExpectError(r, 405, method, "method", method);
    EXPECT_EQ(r.headers.Get("Allow"), "POST");
  }

  // A body over the limit, announced by Content-Length: 413 as soon as the
  // head arrives.
  {
    absl::StatusOr<std::unique_ptr<RawHttpConnection>> raw =
        RawHttpConnection::Connect(port());
    ASSERT_TRUE(raw.ok()) << raw.status();
    ASSERT_TRUE((*raw)
                    ->Send(absl::StrCat("POST /api/v1/scheduler HTTP/1.1\r\n"
                                        "Host: 127.0.0.1\r\n"
                                        "Content-Type: application/json\r\n"
                                        "Content-Length: ",
                                        kMaxBodyBytes + 1, "\r\n\r\n",
                                        R"({"type":"SUBSCRIBE")"))
                    .ok());
    absl::StatusOr<RawResponse> r =
        (*raw)->ReadResponse(absl::Now() + kTimeout);
    ASSERT_TRUE(r.ok()) << r.status();
    http::Response response;
    response.status = r->status;
    response.headers.Set("Content-Type",
                         r->HeaderExact("Content-Type").value_or(""));
    response.body = r->body;
    ExpectError(response, 413,
                absl::StrCat("limit of ", kMaxBodyBytes, " bytes"), "",
                "Content-Length over the limit");
  }
  // The same, chunked: the server counts as the chunks arrive.
  {
    absl::StatusOr<std::unique_ptr<RawHttpConnection>> raw =
        RawHttpConnection::Connect(port());
    ASSERT_TRUE(raw.ok()) << raw.status();
    ASSERT_TRUE((*raw)
                    ->Send("POST /api/v1/scheduler HTTP/1.1\r\n"
                           "Host: 127.0.0.1\r\n"
                           "Content-Type: application/json\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n")
                    .ok());
    const std::string piece(1 << 20, ' ');
    for (size_t sent = 0; sent <= kMaxBodyBytes; sent += piece.size()) {
      // The server may answer and stop reading before the end.
      if (!(*raw)
               ->Send(
                   absl::StrCat(absl::Hex(piece.size()), "\r\n", piece, "\r\n"))
               .ok()) {
        break;
      }
    }
    absl::StatusOr<RawResponse> r =
        (*raw)->ReadResponse(absl::Now() + kTimeout);
    ASSERT_TRUE(r.ok()) << r.status();
    http::Response response;
    response.status = r->status;
    response.headers.Set("Content-Type",
                         r->HeaderExact("Content-Type").value_or(""));
    response.body = r->body;
    ExpectError(response, 413,
                absl::StrCat("limit of ", kMaxBodyBytes, " bytes"), "",
                "chunked body over the limit");
  }

  // Nothing was applied (no framework, no event).
  EXPECT_EQ(State(), before);
}

TEST_F(SchedulerApiBadInputTest, CallsNeedASubscribedFrameworkAndItsStreamId) {
  std::unique_ptr<Framework> f = Subscribe("f");
  ASSERT_NE(f, nullptr);
  const std::string revive = absl::StrCat(R"({"framework_id":{"value":")",
                                          f->id, R"("},"type":"REVIVE"})");
  std::string before = QuietState();

  ExpectError(Request("POST",
                      {{"Content-Type", kJson},
                       {"Accept", kJson},
                       {"Mesos-Stream-Id", f->stream_id}},
                      SubscribeBody("f", f->id)),
              400, "Mesos-Stream-Id", "Mesos-Stream-Id",
              "SUBSCRIBE with a stream id");
  ExpectError(PostJson(R"({"type":"REVIVE"})", f->stream_id), 400,
              "framework_id", "framework_id", "no framework_id");
  ExpectError(PostJson(revive), 400, "Mesos-Stream-Id", "Mesos-Stream-Id",
              "no Mesos-Stream-Id");
  ExpectError(PostJson(revive, "130ae4e3-6b13-4ef4-baa9-9f2e85c3e9af"), 400,
              "Mesos-Stream-Id", "Mesos-Stream-Id", "someone else's stream id");
  ExpectError(PostJson(R"({"framework_id":{"value":"no-such-framework"},)"
                       R"("type":"REVIVE"})",
                       f->stream_id),
              403, "not subscribed", "framework_id", "unknown framework");
  EXPECT_EQ(State(), before);
  EXPECT_EQ(PostJson(revive, f->stream_id).status, 202);

  // The scheduler fails over: the old stream gets ERROR and ends, and its
  // stream id is stale.
  std::unique_ptr<Framework> g = Subscribe("f", f->id);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->id, f->id);
  EXPECT_NE(g->stream_id, f->stream_id);
  absl::StatusOr<ReceivedEvent> error =
      f->events->Next(Event::ERROR, absl::Now() + kTimeout);
  ASSERT_TRUE(error.ok()) << error.status();
  EXPECT_EQ(
      f->events->Next(Event::HEARTBEAT, absl::Now() + kTimeout).status().code(),
      absl::StatusCode::kUnavailable)
      << "the failed-over stream must end";
  before = QuietState();
  ExpectError(PostJson(revive, f->stream_id), 400, "Mesos-Stream-Id",
              "Mesos-Stream-Id", "stale stream id");
  EXPECT_EQ(State(), before);
  EXPECT_EQ(PostJson(revive, g->stream_id).status, 202);

  // The scheduler goes away: the framework is known but not subscribed.
  const std::string last_stream = g->stream_id;
  g.reset();
  http::Response r;
  const absl::Time deadline = absl::Now() + kTimeout;
  do {
    r = PostJson(revive, last_stream);
  } while (r.status == 202 && absl::Now() < deadline);
  ExpectError(r, 403, "not subscribed", "framework_id",
              "disconnected framework");
  before = QuietState();
  ExpectError(PostJson(revive, last_stream), 403, "not subscribed",
              "framework_id", "disconnected framework, again");
  EXPECT_EQ(State(), before);
}

TEST_F(SchedulerApiBadInputTest, InvalidAcceptsAreAnsweredOnTheStream) {
  const std::string agent0 = StartAgent(0);
  const std::string agent1 = StartAgent(1);
  std::unique_ptr<Framework> f = Subscribe("f");
  ASSERT_NE(f, nullptr);
  // One offer from each agent.
  std::map<std::string, v1::Offer> offers;  // by agent id
  const absl::Time deadline = absl::Now() + kTimeout;
  while (offers.size() < 2) {
    absl::StatusOr<ReceivedEvent> e = f->events->Next(Event::OFFERS, deadline);
    ASSERT_TRUE(e.ok()) << e.status();
    for (const v1::Offer& o : e->event.offers().offers()) {
      offers[o.agent_id().value()] = o;
    }
  }
  const v1::Offer a = offers.at(agent0);
  const v1::Offer b = offers.at(agent1);

  // An ACCEPT launching one task named `task_id` with `cpus` on `agent`,
  // from `offer_ids`; refused resources come back at once.
  auto accept = [&](const std::vector<std::string>& offer_ids,
                    const std::vector<std::pair<std::string, double>>& tasks,
                    const std::string& agent) {
    Call call;
    call.set_type(Call::ACCEPT);
    call.mutable_framework_id()->set_value(f->id);
    for (const std::string& id : offer_ids) {
      call.mutable_accept()->add_offer_ids()->set_value(id);
    }
    v1::Offer::Operation* op = call.mutable_accept()->add_operations();
    op->set_type(v1::Offer::Operation::LAUNCH);
    for (const auto& [task_id, cpus] : tasks) {
      v1::TaskInfo* task = op->mutable_launch()->add_task_infos();
      task->set_name(task_id);
      task->mutable_task_id()->set_value(task_id);
      task->mutable_agent_id()->set_value(agent);
      task->mutable_command()->set_value("sleep 1000");
      *task->add_resources() = ScalarResource("cpus", cpus);
      *task->add_resources() = ScalarResource("mem", 64);
    }
    call.mutable_accept()->mutable_filters()->set_refuse_seconds(0);
    absl::StatusOr<std::string> json = ToJson(call);
    EXPECT_TRUE(json.ok()) << json.status();
    return PostJson(json.value_or(""), f->stream_id);
  };
  // The next UPDATE of `task_id`: its state, reason and message.
  auto update = [&](const std::string& task_id) {
    absl::StatusOr<ReceivedEvent> e = f->events->Next(
        [&](const Event& event) {
          return event.type() == Event::UPDATE &&
                 event.update().status().task_id().value() == task_id;
        },
        absl::Now() + kTimeout);
    EXPECT_TRUE(e.ok()) << task_id << ": " << e.status();
    return e.ok() ? e->event.update().status() : v1::TaskStatus();
  };
  auto launched = [&] {
    size_t n = 0;
    for (const auto& agent : agents_) n += agent->launched_tasks().size();
    return n;
  };

  // Invalid offers: 202, TASK_LOST with REASON_INVALID_OFFERS, and nothing
  // changes.
  std::string before = QuietState();
  EXPECT_EQ(
      accept({a.id().value(), a.id().value()}, {{"twice", 1}}, agent0).status,
      202);
  v1::TaskStatus s = update("twice");
  EXPECT_EQ(s.state(), v1::TASK_LOST);
  EXPECT_EQ(s.reason(), v1::TaskStatus::REASON_INVALID_OFFERS);
  EXPECT_EQ(s.source(), v1::TaskStatus::SOURCE_MASTER);
  EXPECT_TRUE(absl::StrContains(s.message(), a.id().value()) &&
              absl::StrContains(s.message(), "twice"))
      << s.message();
  EXPECT_FALSE(s.has_uuid());  // not retried, so nothing to acknowledge
  EXPECT_EQ(State(), before);

  EXPECT_EQ(
      accept({a.id().value(), b.id().value()}, {{"split", 1}}, agent0).status,
      202);
  s = update("split");
  EXPECT_EQ(s.state(), v1::TASK_LOST);
  EXPECT_EQ(s.reason(), v1::TaskStatus::REASON_INVALID_OFFERS);
  EXPECT_TRUE(absl::StrContains(s.message(), "different agents"))
      << s.message();
  EXPECT_EQ(State(), before);

  EXPECT_EQ(accept({"no-such-offer"}, {{"ghost", 1}}, agent0).status, 202);
  s = update("ghost");
  EXPECT_EQ(s.state(), v1::TASK_LOST);
  EXPECT_EQ(s.reason(), v1::TaskStatus::REASON_INVALID_OFFERS);
  EXPECT_TRUE(absl::StrContains(s.message(), "no-such-offer")) << s.message();
  EXPECT_EQ(State(), before);
  EXPECT_EQ(launched(), 0u);

  // Resources beyond the offer: TASK_ERROR, REASON_TASK_INVALID; no task
  // (the offer is used up, as in Mesos: its resources are declined).
  EXPECT_EQ(accept({a.id().value()}, {{"greedy", 3}}, agent0).status, 202);
  s = update("greedy");
  EXPECT_EQ(s.state(), v1::TASK_ERROR);
  EXPECT_EQ(s.reason(), v1::TaskStatus::REASON_TASK_INVALID);
  EXPECT_TRUE(absl::StrContains(s.message(), "is offered")) << s.message();
  EXPECT_EQ(Tasks(), 0u);
  EXPECT_EQ(launched(), 0u);

  // A task id twice in one ACCEPT: the first is launched, the second is
  // TASK_ERROR.
  EXPECT_EQ(
      accept({b.id().value()}, {{"twin", 0.5}, {"twin", 0.5}}, agent1).status,
      202);
  s = update("twin");
  EXPECT_EQ(s.state(), v1::TASK_ERROR);
  EXPECT_EQ(s.reason(), v1::TaskStatus::REASON_TASK_INVALID);
  EXPECT_TRUE(absl::StrContains(s.message(), "twin is already in use"))
      << s.message();
  s = update("twin");
  EXPECT_EQ(s.state(), v1::TASK_RUNNING);
  EXPECT_EQ(Tasks(), 1u);

  // A task id already in use, in a later ACCEPT.
  absl::StatusOr<ReceivedEvent> again = f->events->Next(
      [&](const Event& e) {
        if (e.type() != Event::OFFERS) return false;
        for (const v1::Offer& o : e.offers().offers()) {
          if (o.agent_id().value() == agent1) return true;
        }
        return false;
      },
      absl::Now() + kTimeout);
  ASSERT_TRUE(again.ok()) << again.status();
  std::string offer_id;
  for (const v1::Offer& o : again->event.offers().offers()) {
    if (o.agent_id().value() == agent1) offer_id = o.id().value();
  }
  EXPECT_EQ(accept({offer_id}, {{"twin", 0.5}}, agent1).status, 202);
  s = update("twin");
  EXPECT_EQ(s.state(), v1::TASK_ERROR);
  EXPECT_EQ(s.reason(), v1::TaskStatus::REASON_TASK_INVALID);
  EXPECT_TRUE(absl::StrContains(s.message(), "already in use")) << s.message();
  EXPECT_EQ(Tasks(), 1u);
  EXPECT_EQ(launched(), 1u);
  EXPECT_EQ(agents_[1]->repeated_launches(), 0u);
}

// A master that serves at most 2 scheduler streams and 1 agent stream.
class SchedulerApiStreamLimitTest : public SchedulerApiBadInputTest {
 protected:
  std::vector<std::string> ExtraFlags() const override {
    return {"--max_framework_streams=2", "--max_agent_streams=1"};
  }
};

TEST_F(SchedulerApiStreamLimitTest, StreamsBeyondTheLimitGet503) {
  StartAgent(0);
  std::unique_ptr<Framework> f1 = Subscribe("f1");
  std::unique_ptr<Framework> f2 = Subscribe("f2");
  ASSERT_NE(f1, nullptr);
  ASSERT_NE(f2, nullptr);
  const std::string before = QuietState();

  ExpectError(Request("POST", {{"Content-Type", kJson}, {"Accept", kJson}},
                      SubscribeBody("f3")),
              503, "too many scheduler streams", "", "a third framework");
  // A second agent.
  v1::AgentCall agent;
  agent.set_type(v1::AgentCall::SUBSCRIBE);
  v1::AgentInfo* info = agent.mutable_subscribe()->mutable_agent_info();
  info->set_hostname("agent-9");
  info->set_port(5060);
  *info->add_resources() = ScalarResource("cpus", 1);
  http::Client client;
  absl::StatusOr<http::Response> refused =
      client.Request("POST", "127.0.0.1", port(), "/api/v1/agent",
                     {{"Content-Type", kProtobuf}, {"Accept", kJson}},
                     agent.SerializeAsString());
  ASSERT_TRUE(refused.ok()) << refused.status();
  ExpectError(*refused, 503, "too many agent streams", "", "a second agent");
  EXPECT_EQ(State(), before);

  // Replacing one's own stream is not a new one.
  absl::StatusOr<v1::AgentID> again = agents_[0]->Resubscribe();
  EXPECT_TRUE(again.ok()) << again.status();
  std::unique_ptr<Framework> f1_again = Subscribe("f1", f1->id);
  ASSERT_NE(f1_again, nullptr);

  // A stream that ends frees its place.
  f2.reset();
  std::unique_ptr<Framework> f3;
  const absl::Time deadline = absl::Now() + kTimeout;
  while (f3 == nullptr && absl::Now() < deadline) {
    http::Client c;
    absl::StatusOr<std::unique_ptr<http::ClientStream>> stream = c.OpenStream(
        "POST", "127.0.0.1", port(), kPath,
        {{"Content-Type", kJson}, {"Accept", kJson}}, SubscribeBody("f3"));
    ASSERT_TRUE(stream.ok()) << stream.status();
    if ((*stream)->status() == 503) continue;  // the close is not seen yet
    ASSERT_EQ((*stream)->status(), 200);
    f3 = std::make_unique<Framework>();
    f3->events = std::make_unique<SchedulerEventReader>(*std::move(stream),
                                                        WireEncoding::kJson);
    EXPECT_TRUE(
        f3->events->Next(Event::SUBSCRIBED, absl::Now() + kTimeout).ok());
  }
  EXPECT_NE(f3, nullptr) << "the ended stream's place was never freed";
}

}  // namespace
}  // namespace cairn::tests
