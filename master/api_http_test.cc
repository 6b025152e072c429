// Tests for master/api_http: the v1 APIs' shared encoding (Mesos's JSON, or
// protobuf) as the scheduler, operator and agent streams send it.

#include "master/api_http.h"

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "cairn/v1/agent.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/scheduler.pb.h"
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

}  // namespace
}  // namespace cairn::master
