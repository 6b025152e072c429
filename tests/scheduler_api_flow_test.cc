// Acceptance test (issue 4, item 1): the curl flow of Mesos's
// docs/scheduler-http-api.md replayed over raw HTTP against a real
// `cairn-master` (one master, a FakeAgent for resources and status
// updates), in JSON and then in protobuf:
//
//   SUBSCRIBE  -> 200, chunked, Mesos-Stream-Id, Content-Type, one RecordIO
//                 record per chunk, SUBSCRIBED {framework_id,
//                 heartbeat_interval_seconds (from
//                 --scheduler_heartbeat_interval)}
//   OFFERS     -> offers with id, framework_id, agent_id, hostname, url,
//                 resources (allocation_info only for MULTI_ROLE frameworks)
//   ACCEPT     -> 202 (LAUNCH)
//   UPDATE     -> TASK_RUNNING with a 16-byte uuid
//   ACKNOWLEDGE-> 202, and the agent gets the acknowledgement
//   RECONCILE  -> 202, UPDATEs with REASON_RECONCILIATION (explicit,
//                 implicit, and TASK_LOST for an unknown task)
//   HEARTBEAT  -> arrives every heartbeat interval
//
// plus what clients nobody here wrote do: request bodies with
// `Transfer-Encoding: chunked`, lowercase header names, no Accept header
// (JSON), explicit JSON nulls for absent fields, and a framework without
// MULTI_ROLE (role "*"), whose offers carry no allocation_info.
//
// Calls go through http::Client or a bare socket (tests/internal/
// raw_scheduler_api.h), never SchedulerClient. Every wait is bounded by a
// deadline on a condition.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "common/http_client.h"
#include "common/json_value.h"
#include "common/recordio.h"
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

// The JSON text of `value`'s member `path` ("a.b.c"); nullptr when absent.
const JsonValue* At(const JsonValue& value, absl::string_view path) {
  const JsonValue* at = &value;
  for (absl::string_view name : absl::StrSplit(path, '.')) {
    at = at->Find(name);
    if (at == nullptr) return nullptr;
  }
  return at;
}

std::string TextAt(const JsonValue& value, absl::string_view path) {
  const JsonValue* at = At(value, path);
  return at == nullptr ? "<absent>" : at->text;
}

JsonValue Parse(const std::string& json) {
  absl::StatusOr<JsonValue> value = ParseJson(json);
  EXPECT_TRUE(value.ok()) << value.status() << ": " << json;
  return value.ok() ? *std::move(value) : JsonValue{};
}

class SchedulerApiFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<MasterClusterOptions> options =
        OptionsForThisTest("scheduler_api_flow");
    ASSERT_TRUE(options.ok()) << options.status();
    options->masters = 1;
    options->timeout = kTimeout;
    // The heartbeat interval is a flag (Mesos's default is 15 s).
    options->flags.insert(
        options->flags.end(),
        {"--allocation_interval=100ms", "--scheduler_heartbeat_interval=1s"});
    absl::StatusOr<std::unique_ptr<MasterCluster>> cluster =
        MasterCluster::Start(*options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    absl::StatusOr<int> leader = cluster_->WaitForLeader({0});
    ASSERT_TRUE(leader.ok()) << leader.status();

    FakeAgentOptions agent;
    agent.masters = {cluster_->Address(0)};
    agent.hostname = "127.0.0.1";
    agent.port = 5051;
    agent.resources = {ScalarResource("cpus", 4), ScalarResource("mem", 4096)};
    agent.subscribe_timeout = kTimeout;
    agent_ = std::make_unique<FakeAgent>(agent);
    absl::StatusOr<v1::AgentID> id = agent_->Subscribe();
    ASSERT_TRUE(id.ok()) << id.status();
    agent_id_ = id->value();
  }

  void TearDown() override {
    events_.reset();
    agent_.reset();
  }

  uint16_t port() const { return cluster_->http_port(0); }

  // POSTs a call with `headers`; the raw answer.
  http::Response Post(const http::Headers& headers, const std::string& body) {
    absl::StatusOr<http::Response> r =
        client_.Request("POST", "127.0.0.1", port(), kPath, headers, body);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : http::Response{};
  }

  // A non-SUBSCRIBE call as in the docs' examples: Content-Type and the
  // subscription's Mesos-Stream-Id.
  http::Response Send(const std::string& body,
                      const char* content_type = kJson) {
    return Post(
        {{"Content-Type", content_type}, {"Mesos-Stream-Id", stream_id_}},
        body);
  }

  // Opens the SUBSCRIBE stream; checks the 200 and its headers and keeps
  // the reader in events_ and the stream id in stream_id_.
  void Subscribe(const http::Headers& headers, const std::string& body,
                 WireEncoding encoding, const char* content_type) {
    absl::StatusOr<std::unique_ptr<http::ClientStream>> stream =
        client_.OpenStream("POST", "127.0.0.1", port(), kPath, headers, body);
    ASSERT_TRUE(stream.ok()) << stream.status();
    const http::ClientStream& s = **stream;
    ASSERT_EQ(s.status(), 200);
    EXPECT_EQ(s.headers().Get("Content-Type"), content_type);
    EXPECT_TRUE(s.headers().HasToken("Transfer-Encoding", "chunked"));
    EXPECT_FALSE(s.headers().Has("Content-Length"));
    stream_id_ = s.headers().Get("Mesos-Stream-Id");
    EXPECT_FALSE(stream_id_.empty());
    // "guaranteed to be at most 128 bytes in length"
    EXPECT_LE(stream_id_.size(), 128u);
    events_ =
        std::make_unique<SchedulerEventReader>(*std::move(stream), encoding);
  }

  // The next event of `type` (others are skipped), or a failure.
  ReceivedEvent Next(Event::Type type) {
    absl::StatusOr<ReceivedEvent> e =
        events_->Next(type, absl::Now() + kTimeout);
    EXPECT_TRUE(e.ok()) << Event::Type_Name(type) << ": " << e.status();
    return e.ok() ? *std::move(e) : ReceivedEvent{};
  }

  // The next UPDATE of `task_id` in `state`.
  ReceivedEvent NextUpdate(const std::string& task_id, v1::TaskState state,
                           std::optional<v1::TaskStatus::Reason> reason) {
    absl::StatusOr<ReceivedEvent> e = events_->Next(
        [&](const Event& event) {
          return event.type() == Event::UPDATE &&
                 event.update().status().task_id().value() == task_id &&
                 event.update().status().state() == state &&
                 (!reason.has_value() ||
                  event.update().status().reason() == *reason);
        },
        absl::Now() + kTimeout);
    EXPECT_TRUE(e.ok()) << task_id << " " << v1::TaskState_Name(state) << ": "
                        << e.status();
    return e.ok() ? *std::move(e) : ReceivedEvent{};
  }

  std::unique_ptr<MasterCluster> cluster_;
  std::unique_ptr<FakeAgent> agent_;
  std::string agent_id_;
  http::Client client_;
  std::unique_ptr<SchedulerEventReader> events_;
  std::string stream_id_;
};

TEST_F(SchedulerApiFlowTest, DocumentedCurlFlowInJson) {
  // ---- SUBSCRIBE, as in the docs (Connection: close included) ----
  Subscribe({{"Host", "masterhost:5050"},
             {"Content-Type", kJson},
             {"Accept", kJson},
             {"Connection", "close"}},
            R"({
   "type"		: "SUBSCRIBE",
   "subscribe"	: {
      "framework_info"	: {
        "user" :  "foo",
        "name" :  "Example HTTP Framework",
        "roles": ["test1", "test2"],
        "capabilities" : [{"type": "MULTI_ROLE"}]
      },
      "suppressed_roles" : ["test2"],
      "offer_constraints" : {
        "role_constraints": {
          "test1": {
            "groups": [{
              "attribute_constraints": [{
                "selector": {"attribute_name": "foo"},
                "predicate": {"exists": {}}
              }]
            }]
          }
        }
      }
   }
})",
            WireEncoding::kJson, kJson);
  ASSERT_NE(events_, nullptr);

  const ReceivedEvent subscribed = Next(Event::SUBSCRIBED);
  // The first event on the stream is SUBSCRIBED.
  EXPECT_TRUE(events_->skipped().empty());
  const JsonValue s = Parse(subscribed.record);
  EXPECT_EQ(TextAt(s, "type"), "SUBSCRIBED");
  const std::string framework_id = TextAt(s, "subscribed.framework_id.value");
  EXPECT_FALSE(framework_id.empty());
  ASSERT_NE(At(s, "subscribed.heartbeat_interval_seconds"), nullptr);
  EXPECT_EQ(At(s, "subscribed.heartbeat_interval_seconds")->kind,
            JsonValue::Kind::kNumber);
  EXPECT_DOUBLE_EQ(subscribed.event.subscribed().heartbeat_interval_seconds(),
                   1.0);

  // ---- OFFERS ----
  const ReceivedEvent offers = Next(Event::OFFERS);
  const JsonValue o = Parse(offers.record);
  EXPECT_EQ(TextAt(o, "type"), "OFFERS");
  const JsonValue* list = At(o, "offers.offers");
  ASSERT_NE(list, nullptr) << offers.record;
  ASSERT_EQ(list->kind, JsonValue::Kind::kArray);
  ASSERT_EQ(list->items.size(), 1u) << offers.record;
  const JsonValue& offer = list->items[0];
  const std::string offer_id = TextAt(offer, "id.value");
  EXPECT_FALSE(offer_id.empty());
  EXPECT_EQ(TextAt(offer, "framework_id.value"), framework_id);
  EXPECT_EQ(TextAt(offer, "agent_id.value"), agent_id_);
  EXPECT_EQ(TextAt(offer, "hostname"), "127.0.0.1");
  // The role test2 is suppressed: the offer is for test1.
  EXPECT_EQ(TextAt(offer, "allocation_info.role"), "test1");
  EXPECT_EQ(TextAt(offer, "url.scheme"), "http");
  EXPECT_EQ(TextAt(offer, "url.address.ip"), "127.0.0.1");
  EXPECT_EQ(TextAt(offer, "url.address.port"), "5051");
  const JsonValue* resources = offer.Find("resources");
  ASSERT_NE(resources, nullptr);
  ASSERT_FALSE(resources->items.empty());
  bool saw_cpus = false;
  for (const JsonValue& r : resources->items) {
    EXPECT_EQ(TextAt(r, "type"), "SCALAR") << offers.record;
    EXPECT_NE(At(r, "scalar.value"), nullptr) << offers.record;
    EXPECT_EQ(TextAt(r, "allocation_info.role"), "test1") << offers.record;
    if (TextAt(r, "name") == "cpus") {
      saw_cpus = true;
      double cpus = 0;
      EXPECT_TRUE(absl::SimpleAtod(TextAt(r, "scalar.value"), &cpus));
      EXPECT_EQ(cpus, 4);
    }
  }
  EXPECT_TRUE(saw_cpus) << offers.record;

  // ---- ACCEPT with LAUNCH (the docs' body, with our ids) ----
  // One correction: the docs write `limits` values as bare numbers, but
  // scheduler.proto's TaskInfo.limits is map<string, Value.Scalar>, so each
  // value is a Scalar object (the .proto wins; Mesos's own JSON parser
  // refuses a bare number there too). The bare form is answered 400 naming
  // the field, checked below.
  std::string accept = R"({
  "framework_id": {"value": "FRAMEWORK"},
  "type": "ACCEPT",
  "accept": {
    "offer_ids": [
      {"value": "OFFER"}
    ],
    "operations": [
      {
        "type": "LAUNCH",
        "launch": {
          "task_infos": [
            {
              "name": "My Task",
              "task_id": {"value": "12220-3440-12532-my-task"},
              "agent_id": {"value": "AGENT"},
              "executor": {
                "command": {
                  "shell": true,
                  "value": "sleep 1000"
                },
                "executor_id": {"value": "12214-23523-my-executor"}
              },
              "resources": [
                {
                  "allocation_info": {"role": "test1"},
                  "name": "cpus",
                  "role": "*",
                  "type": "SCALAR",
                  "scalar": {"value": 1.0}
                }, {
                  "allocation_info": {"role": "test1"},
                  "name": "mem",
                  "role": "*",
                  "type": "SCALAR",
                  "scalar": {"value": 128.0}
                }
              ],
              "limits": {
                "cpus": {"value": "Infinity"},
                "mem": {"value": 512.0}
              }
            }
          ]
        }
      }
    ],
    "filters": {"refuse_seconds": 5.0}
  }
})";
  accept = absl::StrReplaceAll(
      accept,
      {{"FRAMEWORK", framework_id}, {"OFFER", offer_id}, {"AGENT", agent_id_}});
  const http::Response bare_limits = Send(absl::StrReplaceAll(
      accept, {{R"({"value": "Infinity"})", R"("Infinity")"},
               {R"({"value": 512.0})", "512.0"}}));
  EXPECT_EQ(bare_limits.status, 400) << bare_limits.body;
  EXPECT_TRUE(absl::StrContains(
      bare_limits.body, "accept.operations[0].launch.task_infos[0].limits"))
      << bare_limits.body;
  const http::Response accepted = Send(accept);
  EXPECT_EQ(accepted.status, 202) << accepted.body;
  EXPECT_TRUE(accepted.body.empty()) << accepted.body;

  // ---- UPDATE: the executor's TASK_RUNNING, with a uuid ----
  const ReceivedEvent running =
      NextUpdate("12220-3440-12532-my-task", v1::TASK_RUNNING, std::nullopt);
  const JsonValue u = Parse(running.record);
  EXPECT_EQ(TextAt(u, "type"), "UPDATE");
  EXPECT_EQ(TextAt(u, "update.status.task_id.value"),
            "12220-3440-12532-my-task");
  EXPECT_EQ(TextAt(u, "update.status.state"), "TASK_RUNNING");
  EXPECT_EQ(TextAt(u, "update.status.source"), "SOURCE_EXECUTOR");
  EXPECT_EQ(TextAt(u, "update.status.agent_id.value"), agent_id_);
  const std::string uuid = TextAt(u, "update.status.uuid");  // base64
  std::string uuid_bytes;
  ASSERT_TRUE(absl::Base64Unescape(uuid, &uuid_bytes)) << uuid;
  EXPECT_EQ(uuid_bytes.size(), 16u);

  // ---- ACKNOWLEDGE with the uuid as received ----
  const http::Response acked = Send(absl::StrCat(
      R"({"framework_id":{"value":")", framework_id,
      R"("},"type":"ACKNOWLEDGE","acknowledge":{"agent_id":{"value":")",
      agent_id_, R"("},"task_id":{"value":"12220-3440-12532-my-task"},)",
      R"("uuid":")", uuid, R"("}})"));
  EXPECT_EQ(acked.status, 202) << acked.body;
  EXPECT_TRUE(agent_->WaitUntil(
      [&] {
        for (const auto& ack : agent_->acknowledgements()) {
          if (ack.uuid() == uuid_bytes) return true;
        }
        return false;
      },
      absl::Now() + kTimeout))
      << "the agent never got the acknowledgement";

  // ---- RECONCILE: explicit (a known and an unknown task), then implicit ----
  const http::Response reconciled = Send(absl::StrCat(
      R"({"framework_id":{"value":")", framework_id,
      R"("},"type":"RECONCILE","reconcile":{"tasks":[)",
      R"({"task_id":{"value":"12220-3440-12532-my-task"},"agent_id":{"value":")",
      agent_id_, R"("}},{"task_id":{"value":"312325"},)",
      R"("agent_id":{"value":"123535"}}]}})"));
  EXPECT_EQ(reconciled.status, 202) << reconciled.body;
  const ReceivedEvent known =
      NextUpdate("12220-3440-12532-my-task", v1::TASK_RUNNING,
                 v1::TaskStatus::REASON_RECONCILIATION);
  const JsonValue k = Parse(known.record);
  EXPECT_EQ(TextAt(k, "update.status.reason"), "REASON_RECONCILIATION");
  EXPECT_EQ(TextAt(k, "update.status.source"), "SOURCE_MASTER");
  // Reconciliation answers are not retried, so they carry no uuid.
  EXPECT_EQ(At(k, "update.status.uuid"), nullptr) << known.record;
  // "Tasks that are no longer known to Mesos will result in TASK_LOST".
  const ReceivedEvent unknown = NextUpdate(
      "312325", v1::TASK_LOST, v1::TaskStatus::REASON_RECONCILIATION);
  EXPECT_EQ(TextAt(Parse(unknown.record), "update.status.state"), "TASK_LOST");

  const http::Response implicit =
      Send(absl::StrCat(R"({"framework_id":{"value":")", framework_id,
                        R"("},"type":"RECONCILE","reconcile":{"tasks":[]}})"));
  EXPECT_EQ(implicit.status, 202) << implicit.body;
  NextUpdate("12220-3440-12532-my-task", v1::TASK_RUNNING,
             v1::TaskStatus::REASON_RECONCILIATION);

  // ---- HEARTBEAT every --scheduler_heartbeat_interval (1 s) ----
  const ReceivedEvent heartbeat = Next(Event::HEARTBEAT);
  EXPECT_EQ(TextAt(Parse(heartbeat.record), "type"), "HEARTBEAT");

  EXPECT_EQ(events_->framing_errors(), 0)
      << "every chunk must hold exactly one RecordIO record";
}

TEST_F(SchedulerApiFlowTest, DocumentedCurlFlowInProtobuf) {
  // A framework without MULTI_ROLE (its role defaults to "*").
  Call subscribe;
  subscribe.set_type(Call::SUBSCRIBE);
  v1::FrameworkInfo* info =
      subscribe.mutable_subscribe()->mutable_framework_info();
  info->set_user("foo");
  info->set_name("Example protobuf framework");
  Subscribe({{"Content-Type", kProtobuf}, {"Accept", kProtobuf}},
            subscribe.SerializeAsString(), WireEncoding::kProtobuf, kProtobuf);
  ASSERT_NE(events_, nullptr);

  const ReceivedEvent subscribed = Next(Event::SUBSCRIBED);
  EXPECT_TRUE(events_->skipped().empty());
  const v1::FrameworkID framework_id =
      subscribed.event.subscribed().framework_id();
  EXPECT_FALSE(framework_id.value().empty());
  EXPECT_DOUBLE_EQ(subscribed.event.subscribed().heartbeat_interval_seconds(),
                   1.0);

  const ReceivedEvent offers = Next(Event::OFFERS);
  ASSERT_EQ(offers.event.offers().offers_size(), 1);
  const v1::Offer& offer = offers.event.offers().offers(0);
  EXPECT_EQ(offer.framework_id().value(), framework_id.value());
  EXPECT_EQ(offer.agent_id().value(), agent_id_);
  EXPECT_EQ(offer.url().address().ip(), "127.0.0.1");
  EXPECT_EQ(offer.url().address().port(), 5051);
  // Not MULTI_ROLE: no allocation_info, on the offer or its resources.
  EXPECT_FALSE(offer.has_allocation_info());
  for (const v1::Resource& r : offer.resources()) {
    EXPECT_FALSE(r.has_allocation_info()) << r.ShortDebugString();
  }

  Call accept;
  accept.set_type(Call::ACCEPT);
  *accept.mutable_framework_id() = framework_id;
  *accept.mutable_accept()->add_offer_ids() = offer.id();
  v1::Offer::Operation* launch = accept.mutable_accept()->add_operations();
  launch->set_type(v1::Offer::Operation::LAUNCH);
  v1::TaskInfo* task = launch->mutable_launch()->add_task_infos();
  task->set_name("proto-task");
  task->mutable_task_id()->set_value("proto-task-1");
  *task->mutable_agent_id() = offer.agent_id();
  task->mutable_command()->set_value("sleep 1000");
  *task->add_resources() = ScalarResource("cpus", 1);
  *task->add_resources() = ScalarResource("mem", 128);
  accept.mutable_accept()->mutable_filters()->set_refuse_seconds(5);
  const http::Response accepted = Send(accept.SerializeAsString(), kProtobuf);
  EXPECT_EQ(accepted.status, 202) << accepted.body;

  const ReceivedEvent running =
      NextUpdate("proto-task-1", v1::TASK_RUNNING, std::nullopt);
  const v1::TaskStatus& status = running.event.update().status();
  EXPECT_EQ(status.agent_id().value(), agent_id_);
  EXPECT_EQ(status.source(), v1::TaskStatus::SOURCE_EXECUTOR);
  ASSERT_EQ(status.uuid().size(), 16u);

  Call ack;
  ack.set_type(Call::ACKNOWLEDGE);
  *ack.mutable_framework_id() = framework_id;
  *ack.mutable_acknowledge()->mutable_agent_id() = status.agent_id();
  *ack.mutable_acknowledge()->mutable_task_id() = status.task_id();
  ack.mutable_acknowledge()->set_uuid(status.uuid());
  const http::Response acked = Send(ack.SerializeAsString(), kProtobuf);
  EXPECT_EQ(acked.status, 202) << acked.body;
  EXPECT_TRUE(agent_->WaitUntil(
      [&] {
        for (const auto& a : agent_->acknowledgements()) {
          if (a.uuid() == status.uuid()) return true;
        }
        return false;
      },
      absl::Now() + kTimeout));

  Call reconcile;
  reconcile.set_type(Call::RECONCILE);
  *reconcile.mutable_framework_id() = framework_id;
  Call::Reconcile::Task* t = reconcile.mutable_reconcile()->add_tasks();
  t->mutable_task_id()->set_value("proto-task-1");
  *t->mutable_agent_id() = status.agent_id();
  const http::Response reconciled =
      Send(reconcile.SerializeAsString(), kProtobuf);
  EXPECT_EQ(reconciled.status, 202) << reconciled.body;
  const ReceivedEvent answer = NextUpdate(
      "proto-task-1", v1::TASK_RUNNING, v1::TaskStatus::REASON_RECONCILIATION);
  EXPECT_FALSE(answer.event.update().status().has_uuid());

  Next(Event::HEARTBEAT);
  EXPECT_EQ(events_->framing_errors(), 0);
}

TEST_F(SchedulerApiFlowTest, ChunkedBodiesLowercaseHeadersNullsAndNoAccept) {
  // SUBSCRIBE on a bare socket: lowercase header names, no Accept, the body
  // sent chunked in 7-byte pieces, explicit nulls for absent fields, and no
  // MULTI_ROLE (role "*").
  const std::string subscribe = R"({"type":"SUBSCRIBE","framework_id":null,
    "subscribe":{"framework_info":{"user":"foo","name":"quirky","id":null,
    "role":null,"roles":null,"capabilities":null,"labels":null,
    "failover_timeout":null,"checkpoint":null,"hostname":null},
    "suppressed_roles":null,"offer_constraints":null}})";
  absl::StatusOr<std::unique_ptr<RawHttpConnection>> raw =
      RawHttpConnection::Connect(port());
  ASSERT_TRUE(raw.ok()) << raw.status();
  RawHttpConnection& stream = **raw;
  ASSERT_TRUE(stream
                  .Send(absl::StrCat("POST /api/v1/scheduler HTTP/1.1\r\n"
                                     "host: 127.0.0.1\r\n"
                                     "content-type: application/json\r\n"
                                     "transfer-encoding: chunked\r\n\r\n",
                                     ChunkedBody(subscribe, 7)))
                  .ok());
  auto has_offers = [](const RawResponse& r) {
    for (const std::string& chunk : r.chunks) {
      if (absl::StrContains(chunk, R"("type":"OFFERS")")) return true;
    }
    return false;
  };
  absl::StatusOr<RawResponse> head =
      stream.ReadResponse(absl::Now() + kTimeout, has_offers);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->status, 200);
  // Header names as Mesos spells them.
  const std::optional<std::string> stream_id =
      head->HeaderExact("Mesos-Stream-Id");
  ASSERT_TRUE(stream_id.has_value()) << stream.received();
  EXPECT_EQ(head->HeaderExact("Content-Type"), kJson);  // no Accept: JSON
  EXPECT_TRUE(head->chunked);
  ASSERT_GE(head->chunks.size(), 2u);
  // The first chunk is exactly one RecordIO record: SUBSCRIBED.
  std::vector<std::string> records;
  recordio::Decoder decoder;
  ASSERT_TRUE(decoder.Feed(head->chunks[0], &records).ok());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_FALSE(decoder.HasPartialRecord());
  const JsonValue s = Parse(records[0]);
  EXPECT_EQ(TextAt(s, "type"), "SUBSCRIBED");
  const std::string framework_id = TextAt(s, "subscribed.framework_id.value");
  // The OFFERS of a framework without MULTI_ROLE: no allocation_info.
  std::string offers_record;
  for (const std::string& chunk : head->chunks) {
    if (absl::StrContains(chunk, R"("type":"OFFERS")")) {
      records.clear();
      recordio::Decoder d;
      ASSERT_TRUE(d.Feed(chunk, &records).ok());
      ASSERT_EQ(records.size(), 1u);
      offers_record = records[0];
    }
  }
  EXPECT_FALSE(absl::StrContains(offers_record, "allocation_info"))
      << offers_record;
  const JsonValue o = Parse(offers_record);
  const JsonValue* list = At(o, "offers.offers");
  ASSERT_NE(list, nullptr);
  ASSERT_EQ(list->items.size(), 1u);
  const std::string offer_id = TextAt(list->items[0], "id.value");
  for (const JsonValue& r : list->items[0].Find("resources")->items) {
    // A single-role framework's resources say role "*" if anything.
    const std::optional<std::string> role = r.Text("role");
    if (role.has_value()) {
      EXPECT_EQ(*role, "*") << offers_record;
    }
  }

  // A call on another socket: lowercase mesos-stream-id, a chunked body
  // (3-byte pieces) with explicit nulls. DECLINE the offer.
  const std::string decline =
      absl::StrCat(R"({"framework_id":{"value":")", framework_id,
                   R"("},"type":"DECLINE","decline":{"offer_ids":[{"value":")",
                   offer_id, R"("}],"filters":null}})");
  absl::StatusOr<std::unique_ptr<RawHttpConnection>> call =
      RawHttpConnection::Connect(port());
  ASSERT_TRUE(call.ok()) << call.status();
  ASSERT_TRUE((*call)
                  ->Send(absl::StrCat("POST /api/v1/scheduler HTTP/1.1\r\n"
                                      "host: 127.0.0.1\r\n"
                                      "content-type: application/json\r\n"
                                      "mesos-stream-id: ",
                                      *stream_id,
                                      "\r\n"
                                      "transfer-encoding: chunked\r\n"
                                      "connection: close\r\n\r\n",
                                      ChunkedBody(decline, 3)))
                  .ok());
  absl::StatusOr<RawResponse> declined =
      (*call)->ReadResponse(absl::Now() + kTimeout);
  ASSERT_TRUE(declined.ok()) << declined.status();
  EXPECT_EQ(declined->status, 202) << declined->body;

  // A RECONCILE with nulls inside the task list, sent by http::Client with
  // lowercase names: answered on the stream.
  const http::Response reconciled =
      Post({{"content-type", kJson}, {"mesos-stream-id", *stream_id}},
           absl::StrCat(R"({"framework_id":{"value":")", framework_id,
                        R"("},"type":"RECONCILE","reconcile":{"tasks":[)",
                        R"({"task_id":{"value":"ghost"},"agent_id":null}]}})"));
  EXPECT_EQ(reconciled.status, 202) << reconciled.body;
  absl::StatusOr<RawResponse> lost =
      stream.ReadResponse(absl::Now() + kTimeout, [](const RawResponse& r) {
        for (const std::string& chunk : r.chunks) {
          if (absl::StrContains(chunk, R"("value":"ghost")") &&
              absl::StrContains(chunk, "TASK_LOST")) {
            return true;
          }
        }
        return false;
      });
  ASSERT_TRUE(lost.ok()) << lost.status();
  for (const std::string& chunk : lost->chunks) {
    records.clear();
    recordio::Decoder d;
    EXPECT_TRUE(d.Feed(chunk, &records).ok());
    EXPECT_EQ(records.size(), 1u) << chunk;
    EXPECT_FALSE(d.HasPartialRecord()) << chunk;
  }
}

}  // namespace
}  // namespace cairn::tests
