// Tests for master/api_http: the v1 APIs' shared encoding (Mesos's JSON, or
// protobuf) as the scheduler, operator and agent streams send it.

#include "master/api_http.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cairn/v1/agent.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "common/http_message.h"
#include "common/json.h"
#include "gtest/gtest.h"

namespace cairn::master {
namespace {

v1::scheduler::Event OffersEvent() {
  v1::scheduler::Event event;
  event.set_type(v1::scheduler::Event::OFFERS);
  v1::Offer* offer = event.mutable_offers()->add_offers();
  offer->mutable_id()->set_value("o1");
  offer->mutable_unavailability()->mutable_start()->set_nanoseconds(
      1700000000000000000);
  return event;
}

TEST(EncodeMessageTest, SchedulerEventJsonWritesInt64AsNumbers) {
  absl::StatusOr<std::string> json =
      EncodeMessage(OffersEvent(), Encoding::kJson);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_TRUE(absl::StrContains(
      *json,
      R"("unavailability":{"start":{"nanoseconds":1700000000000000000}})"))
      << *json;
  EXPECT_TRUE(absl::StartsWith(*json, R"({"type":"OFFERS",)")) << *json;

  // Clients may parse it back with either dialect's reader.
  v1::scheduler::Event parsed;
  ASSERT_TRUE(FromJson(*json, &parsed).ok());
  EXPECT_EQ(parsed.offers().offers(0).unavailability().start().nanoseconds(),
            1700000000000000000);
}

TEST(EncodeMessageTest, AgentEventJsonWritesLogPositionAsANumber) {
  v1::AgentEvent event;
  event.set_type(v1::AgentEvent::RECONCILE);
  event.mutable_reconcile()->set_log_position(12);
  absl::StatusOr<std::string> json = EncodeMessage(event, Encoding::kJson);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_TRUE(absl::StrContains(*json, R"("log_position":12)")) << *json;
}

TEST(EncodeMessageTest, JsonWritesMesossDeclaredDefaults) {
  v1::scheduler::Event event;
  event.set_type(v1::scheduler::Event::SUBSCRIBED);
  event.mutable_subscribed()->mutable_master_info()->set_id("m1");
  absl::StatusOr<std::string> json = EncodeMessage(event, Encoding::kJson);
  ASSERT_TRUE(json.ok()) << json.status();
  // MasterInfo.port is `[default = 5050]`: Mesos writes it when unset.
  EXPECT_TRUE(absl::StrContains(*json, R"("port":5050)")) << *json;
}

TEST(EncodeMessageTest, ProtobufIsTheWireFormat) {
  const v1::scheduler::Event event = OffersEvent();
  absl::StatusOr<std::string> bytes = EncodeMessage(event, Encoding::kProtobuf);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, event.SerializeAsString());
}

// ---- ParseCall: bad bodies are answered with the field at fault ----------

http::Request CallRequest(const char* content_type, std::string body) {
  http::Request request;
  request.method = "POST";
  request.path = "/api/v1/scheduler";
  if (content_type != nullptr)
    request.headers.Set("Content-Type", content_type);
  request.body = std::move(body);
  return request;
}

// {"error": ..., "field": ...} of an answer, as text for matching.
std::string Answered(const std::optional<http::Response>& r) {
  return r.has_value() ? absl::StrCat(r->status, " ", r->body) : "accepted";
}

TEST(ParseCallTest, MissingContentTypeIs400AsInMesos) {
  v1::scheduler::Call call;
  Encoding encoding;
  const std::optional<http::Response> r = ParseCall(
      CallRequest(nullptr, R"({"type":"SUBSCRIBE"})"), &call, &encoding);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(absl::StrContains(r->body, R"("field":"Content-Type")"))
      << r->body;
}

TEST(ParseCallTest, OtherContentTypeIs415) {
  v1::scheduler::Call call;
  Encoding encoding;
  const std::optional<http::Response> r = ParseCall(
      CallRequest("text/plain", R"({"type":"SUBSCRIBE"})"), &call, &encoding);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 415);
  EXPECT_TRUE(absl::StrContains(r->body, R"("field":"Content-Type")"))
      << r->body;
}

TEST(ParseCallTest, JsonOfTheWrongTypeNamesTheField) {
  v1::scheduler::Call call;
  Encoding encoding;
  const std::optional<http::Response> r = ParseCall(
      CallRequest("application/json",
                  R"({"type":"SUBSCRIBE","subscribe":{"framework_info":)"
                  R"({"user":5}}})"),
      &call, &encoding);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(
      absl::StrContains(r->body, R"("field":"subscribe.framework_info.user")"))
      << r->body;
}

TEST(ParseCallTest, SyntaxErrorNamesNoField) {
  v1::scheduler::Call call;
  Encoding encoding;
  const std::optional<http::Response> r = ParseCall(
      CallRequest("application/json", R"({"type":)"), &call, &encoding);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
  EXPECT_FALSE(absl::StrContains(r->body, "field")) << r->body;
}

TEST(ParseCallTest, ExplicitNullsAreAbsentFields) {
  v1::scheduler::Call call;
  Encoding encoding;
  const std::optional<http::Response> r = ParseCall(
      CallRequest("application/json",
                  R"({"type":"SUBSCRIBE","framework_id":null,"subscribe":)"
                  R"({"framework_info":{"user":"u","name":"n","id":null,)"
                  R"("roles":null,"capabilities":null},)"
                  R"("suppressed_roles":null}})"),
      &call, &encoding);
  EXPECT_FALSE(r.has_value()) << Answered(r);
  EXPECT_FALSE(call.has_framework_id());
  EXPECT_FALSE(call.subscribe().framework_info().has_id());
  EXPECT_EQ(call.subscribe().framework_info().roles_size(), 0);
}

TEST(JsonErrorFieldTest, TakesThePathTheParserNames) {
  EXPECT_EQ(JsonErrorField("invalid JSON for cairn.v1.scheduler.Call: "
                           "(accept.operations[0].launch.task_infos[0]."
                           "limits[1].value): invalid value 512"),
            "accept.operations[0].launch.task_infos[0].limits[1].value");
  EXPECT_EQ(JsonErrorField("Unexpected end of string. Expected a value."), "");
  EXPECT_EQ(JsonErrorField("(two words): x"), "");
}

}  // namespace
}  // namespace cairn::master
