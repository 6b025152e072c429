#include "common/json.h"

#include <cstdint>
#include <string>

#include "cairn/v1/log.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

cairn::v1::Action SampleAction() {
  cairn::v1::Action action;
  action.set_position(18446744073709551615u);  // uint64 max
  action.mutable_ballot()->set_round(7);
  action.mutable_ballot()->set_node_id(3);
  action.mutable_value()->set_kind(cairn::v1::Value::APPEND);
  action.mutable_value()->add_entries("first");
  action.mutable_value()->add_entries(std::string("\0\xff", 2));
  action.set_learned(true);
  return action;
}

TEST(JsonTest, RoundTripsAction) {
  const cairn::v1::Action action = SampleAction();
  absl::StatusOr<std::string> json = ToJson(action);
  ASSERT_TRUE(json.ok()) << json.status();
  cairn::v1::Action parsed;
  ASSERT_TRUE(FromJson(*json, &parsed).ok());
  EXPECT_EQ(parsed.SerializeAsString(), action.SerializeAsString());
}

TEST(JsonTest, UsesProtoFieldNames) {
  cairn::v1::Metadata metadata;
  metadata.set_status(cairn::v1::Metadata::RECOVERING);
  metadata.set_recover_end(10);
  metadata.set_recover_begin(2);
  absl::StatusOr<std::string> json = ToJson(metadata);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"recover_end\":\"10\""));
  EXPECT_THAT(*json, HasSubstr("\"recover_begin\":\"2\""));
  EXPECT_THAT(*json, HasSubstr("\"status\":\"RECOVERING\""));
  EXPECT_THAT(*json, Not(HasSubstr("recoverEnd")));
}

TEST(JsonTest, Uint64IsAJsonString) {
  absl::StatusOr<std::string> json = ToJson(SampleAction());
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"position\":\"18446744073709551615\""));
  EXPECT_THAT(*json, HasSubstr("\"round\":\"7\""));
  EXPECT_THAT(*json, HasSubstr("\"node_id\":3"));  // uint32 stays a number
  EXPECT_THAT(*json, HasSubstr("\"AP8=\""));       // bytes are base64
}

TEST(JsonTest, Uint64ParsesFromStringOrNumber) {
  cairn::v1::Action from_string;
  ASSERT_TRUE(FromJson(R"({"position": "42"})", &from_string).ok());
  EXPECT_EQ(from_string.position(), 42u);
  cairn::v1::Action from_number;
  ASSERT_TRUE(FromJson(R"({"position": 42})", &from_number).ok());
  EXPECT_EQ(from_number.position(), 42u);
}

TEST(JsonTest, ParsesCamelCaseNamesToo) {
  cairn::v1::Metadata metadata;
  ASSERT_TRUE(FromJson(R"({"recoverEnd": "5"})", &metadata).ok());
  EXPECT_EQ(metadata.recover_end(), 5u);
}

TEST(JsonTest, FromJsonReplacesPreviousContents) {
  cairn::v1::Action action = SampleAction();
  ASSERT_TRUE(FromJson(R"({"position": "1"})", &action).ok());
  EXPECT_EQ(action.position(), 1u);
  EXPECT_FALSE(action.has_ballot());
  EXPECT_FALSE(action.learned());
}

TEST(JsonTest, OmitsDefaultsUnlessAskedToPrintThem) {
  cairn::v1::Metadata metadata;
  absl::StatusOr<std::string> compact = ToJson(metadata);
  ASSERT_TRUE(compact.ok());
  EXPECT_EQ(*compact, "{}");

  JsonOptions options;
  options.always_print_primitive_fields = true;
  absl::StatusOr<std::string> full = ToJson(metadata, options);
  ASSERT_TRUE(full.ok());
  EXPECT_THAT(*full, HasSubstr("\"begin\":\"0\""));
  EXPECT_THAT(*full, HasSubstr("\"status\":\"STATUS_UNSPECIFIED\""));
}

TEST(JsonTest, PrettyPrintsAndPrintsEnumsAsInts) {
  cairn::v1::Metadata metadata;
  metadata.set_status(cairn::v1::Metadata::VOTING);
  JsonOptions options;
  options.pretty = true;
  options.enums_as_ints = true;
  absl::StatusOr<std::string> json = ToJson(metadata, options);
  ASSERT_TRUE(json.ok());
  EXPECT_THAT(*json, HasSubstr("\n"));
  EXPECT_THAT(*json, HasSubstr("\"status\": 1"));
}

TEST(JsonTest, MalformedJsonIsInvalidArgument) {
  cairn::v1::Action action;
  absl::Status status = FromJson(R"({"position": )", &action);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("cairn.v1.Action"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("Unexpected end of string"));
  EXPECT_EQ(FromJson("not json", &action).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(JsonTest, WrongValueTypeNamesTheField) {
  cairn::v1::Action action;
  absl::Status status = FromJson(R"({"learned": "maybe"})", &action);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("learned"));

  status = FromJson(R"({"position": -1})", &action);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("position"));
}

TEST(JsonTest, UnknownFieldRejectedUnlessIgnored) {
  const std::string json = R"({"position": "3", "no_such_field": 1})";
  cairn::v1::Action action;
  absl::Status status = FromJson(json, &action);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("no_such_field"));

  cairn::v1::Action lenient;
  ASSERT_TRUE(FromJson(json, &lenient, /*ignore_unknown_fields=*/true).ok());
  EXPECT_EQ(lenient.position(), 3u);
}

}  // namespace
}  // namespace cairn
