#include "common/json.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "cairn/v1/log.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
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

TEST(JsonTest, Proto3DialectIsUnchangedByDefault) {
  // ToJson without the Mesos options stays protobuf's proto3 mapping.
  absl::StatusOr<std::string> json = ToJson(SampleAction());
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"position\":\"18446744073709551615\""));
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

// ---- Mesos's JSON -----------------------------------------------------------

// A schema with every scalar type, nesting, repeated fields, maps and
// declared defaults, built at run time so the test needs no .proto target.
constexpr char kTestSchema[] = R"pb(
  name: "cairn/test/json_test.proto"
  package: "cairn.test"
  syntax: "proto2"
  enum_type {
    name: "Color"
    value { name: "RED" number: 0 }
    value { name: "GREEN" number: 1 }
  }
  message_type {
    name: "Sample"
    field { name: "i32" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
    field { name: "i64" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 }
    field { name: "u64" number: 3 label: LABEL_OPTIONAL type: TYPE_UINT64 }
    field { name: "s64" number: 4 label: LABEL_OPTIONAL type: TYPE_SINT64 }
    field { name: "f64" number: 5 label: LABEL_OPTIONAL type: TYPE_FIXED64 }
    field { name: "sf64" number: 6 label: LABEL_OPTIONAL type: TYPE_SFIXED64 }
    field { name: "u32" number: 7 label: LABEL_OPTIONAL type: TYPE_UINT32 }
    field { name: "d" number: 8 label: LABEL_OPTIONAL type: TYPE_DOUBLE }
    field { name: "f" number: 9 label: LABEL_OPTIONAL type: TYPE_FLOAT }
    field { name: "b" number: 10 label: LABEL_OPTIONAL type: TYPE_BOOL }
    field { name: "s" number: 11 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "raw" number: 12 label: LABEL_OPTIONAL type: TYPE_BYTES }
    field {
      name: "color"
      number: 13
      label: LABEL_OPTIONAL
      type: TYPE_ENUM
      type_name: ".cairn.test.Color"
    }
    field {
      name: "child"
      number: 14
      label: LABEL_OPTIONAL
      type: TYPE_MESSAGE
      type_name: ".cairn.test.Sample"
    }
    field { name: "r64" number: 15 label: LABEL_REPEATED type: TYPE_INT64 }
    field {
      name: "children"
      number: 16
      label: LABEL_REPEATED
      type: TYPE_MESSAGE
      type_name: ".cairn.test.Sample"
    }
    field {
      name: "by_name"
      number: 17
      label: LABEL_REPEATED
      type: TYPE_MESSAGE
      type_name: ".cairn.test.Sample.ByNameEntry"
    }
    field {
      name: "by_id"
      number: 18
      label: LABEL_REPEATED
      type: TYPE_MESSAGE
      type_name: ".cairn.test.Sample.ByIdEntry"
    }
    field {
      name: "rcolor"
      number: 19
      label: LABEL_REPEATED
      type: TYPE_ENUM
      type_name: ".cairn.test.Color"
    }
    field { name: "rd" number: 20 label: LABEL_REPEATED type: TYPE_DOUBLE }
    nested_type {
      name: "ByNameEntry"
      field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
      field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_UINT64 }
      options { map_entry: true }
    }
    nested_type {
      name: "ByIdEntry"
      field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_INT64 }
      field {
        name: "value"
        number: 2
        label: LABEL_OPTIONAL
        type: TYPE_MESSAGE
        type_name: ".cairn.test.Sample"
      }
      options { map_entry: true }
    }
  }
  message_type {
    name: "Defaults"
    field {
      name: "delay_seconds"
      number: 1
      label: LABEL_OPTIONAL
      type: TYPE_DOUBLE
      default_value: "15"
    }
    field {
      name: "tries"
      number: 2
      label: LABEL_OPTIONAL
      type: TYPE_UINT64
      default_value: "3"
    }
    field {
      name: "shell"
      number: 3
      label: LABEL_OPTIONAL
      type: TYPE_BOOL
      default_value: "true"
    }
    field {
      name: "role"
      number: 4
      label: LABEL_OPTIONAL
      type: TYPE_STRING
      default_value: "*"
      options { deprecated: true }
    }
    field {
      name: "color"
      number: 5
      label: LABEL_OPTIONAL
      type: TYPE_ENUM
      type_name: ".cairn.test.Color"
      default_value: "GREEN"
    }
    field { name: "plain" number: 6 label: LABEL_OPTIONAL type: TYPE_INT64 }
  }
)pb";

// Owns the run-time schema and makes its messages.
class TestSchema {
 public:
  TestSchema() {
    google::protobuf::FileDescriptorProto file;
    EXPECT_TRUE(
        google::protobuf::TextFormat::ParseFromString(kTestSchema, &file));
    EXPECT_NE(pool_.BuildFile(file), nullptr) << "bad test schema";
  }

  // A new, empty message of `name` ("Sample" or "Defaults").
  std::unique_ptr<google::protobuf::Message> New(const std::string& name) {
    const google::protobuf::Descriptor* descriptor =
        pool_.FindMessageTypeByName("cairn.test." + name);
    if (descriptor == nullptr) return nullptr;
    return std::unique_ptr<google::protobuf::Message>(
        factory_.GetPrototype(descriptor)->New());
  }

 private:
  google::protobuf::DescriptorPool pool_;
  google::protobuf::DynamicMessageFactory factory_;
};

// `text` (protobuf text format) as a message of the test schema.
std::unique_ptr<google::protobuf::Message> Parse(TestSchema* schema,
                                                 const std::string& name,
                                                 const std::string& text) {
  std::unique_ptr<google::protobuf::Message> message = schema->New(name);
  if (message == nullptr ||
      !google::protobuf::TextFormat::ParseFromString(text, message.get())) {
    ADD_FAILURE() << "bad test message: " << text;
    return nullptr;
  }
  return message;
}

// Parses `json` back into a new message like `original` and checks that it
// equals `original` field for field.
void ExpectRoundTrip(const google::protobuf::Message& original,
                     const std::string& json) {
  std::unique_ptr<google::protobuf::Message> parsed(original.New());
  absl::Status status = FromJson(json, parsed.get());
  ASSERT_TRUE(status.ok()) << status << "\n" << json;
  EXPECT_TRUE(
      google::protobuf::util::MessageDifferencer::Equals(original, *parsed))
      << "wrote " << json << "\nread back " << parsed->DebugString();
}

TEST(MesosJsonTest, WritesTimeInfoNanosecondsAsANumber) {
  cairn::v1::TimeInfo time;
  time.set_nanoseconds(1700000000000000000);
  EXPECT_EQ(MesosJson(time), R"({"nanoseconds":1700000000000000000})");
}

TEST(MesosJsonTest, WritesSixtyFourBitExtremesExactlyAsNumbers) {
  TestSchema schema;
  auto message = Parse(&schema, "Sample",
                       "i64: -9223372036854775808 "
                       "u64: 18446744073709551615 "
                       "s64: 9223372036854775807 "
                       "f64: 9007199254740993 "  // 2^53 + 1: not a double
                       "sf64: -1 "
                       "i32: -2147483648 u32: 4294967295");
  ASSERT_NE(message, nullptr);
  const std::string json = MesosJson(*message);
  EXPECT_EQ(json, R"({"i32":-2147483648,"i64":-9223372036854775808,)"
                  R"("u64":18446744073709551615,"s64":9223372036854775807,)"
                  R"("f64":9007199254740993,"sf64":-1,"u32":4294967295})");
  ExpectRoundTrip(*message, json);
}

TEST(MesosJsonTest, Uint64MaxRoundTripsThroughAGeneratedMessage) {
  const cairn::v1::Action action = SampleAction();
  const std::string json = MesosJson(action);
  EXPECT_THAT(json, HasSubstr(R"("position":18446744073709551615)"));
  EXPECT_THAT(json, HasSubstr(R"("ballot":{"round":7,"node_id":3})"));
  EXPECT_THAT(json, HasSubstr(R"("entries":["Zmlyc3Q=","AP8="])"));
  ExpectRoundTrip(action, json);
}

TEST(MesosJsonTest, WritesNestedRepeatedAndMapFields) {
  TestSchema schema;
  auto message = Parse(&schema, "Sample", R"pb(
    child {
      i64: 5
      child { s: "deep" }
    }
    r64: [ 1, -2, 9223372036854775807 ]
    children { u64: 1 }
    children { color: GREEN }
    by_name { key: "b" value: 2 }
    by_name { key: "a" value: 18446744073709551615 }
    by_id {
      key: 10
      value { i64: 1 }
    }
    by_id {
      key: -3
      value {}
    }
    rcolor: [ GREEN, RED ]
    rd: [ 0.5, 3 ]
  )pb");
  ASSERT_NE(message, nullptr);
  const std::string json = MesosJson(*message);
  EXPECT_EQ(json, R"({"child":{"i64":5,"child":{"s":"deep"}},)"
                  R"("r64":[1,-2,9223372036854775807],)"
                  R"("children":[{"u64":1},{"color":"GREEN"}],)"
                  R"("by_name":{"a":18446744073709551615,"b":2},)"
                  R"("by_id":{"-3":{},"10":{"i64":1}},)"
                  R"("rcolor":["GREEN","RED"],"rd":[0.5,3.0]})");
  ExpectRoundTrip(*message, json);
}

TEST(MesosJsonTest, OmitsUnsetFieldsAndEmptyRepeatedFields) {
  TestSchema schema;
  auto message = Parse(&schema, "Sample", "");
  ASSERT_NE(message, nullptr);
  EXPECT_EQ(MesosJson(*message), "{}");
  // Set to zero is still set (proto2 presence), as Mesos writes it.
  message = Parse(&schema, "Sample", "i64: 0 s: \"\" b: false");
  ASSERT_NE(message, nullptr);
  EXPECT_EQ(MesosJson(*message), R"({"i64":0,"b":false,"s":""})");
}

TEST(MesosJsonTest, WritesDeclaredDefaultsExceptDeprecatedOnes) {
  TestSchema schema;
  auto message = Parse(&schema, "Defaults", "");
  ASSERT_NE(message, nullptr);
  // Mesos's rule: unset optional fields with a declared default are written
  // with it, unless deprecated; fields without a declared default are not.
  EXPECT_EQ(MesosJson(*message),
            R"({"delay_seconds":15.0,"tries":3,"shell":true,)"
            R"("color":"GREEN"})");
  message = Parse(&schema, "Defaults", "tries: 4 role: \"web\" plain: 8");
  ASSERT_NE(message, nullptr);
  EXPECT_EQ(MesosJson(*message),
            R"({"delay_seconds":15.0,"tries":4,"shell":true,)"
            R"("role":"web","color":"GREEN","plain":8})");

  // Only with print_declared_defaults.
  JsonOptions numbers_only;
  numbers_only.int64_as_number = true;
  absl::StatusOr<std::string> json = ToJson(*message, numbers_only);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json, R"({"tries":4,"role":"web","plain":8})");
}

TEST(MesosJsonTest, WritesDeclaredDefaultsOfMesosSchema) {
  cairn::v1::HealthCheck check;
  const std::string json = MesosJson(check);
  EXPECT_THAT(json, HasSubstr(R"("delay_seconds":15.0)"));
  EXPECT_THAT(json, HasSubstr(R"("consecutive_failures":3)"));
  cairn::v1::FrameworkInfo framework;
  framework.set_user("root");
  const std::string framework_json = MesosJson(framework);
  EXPECT_THAT(framework_json, HasSubstr(R"("failover_timeout":0.0)"));
  EXPECT_THAT(framework_json, HasSubstr(R"("checkpoint":false)"));
  EXPECT_THAT(framework_json, Not(HasSubstr(R"("role")")));  // deprecated
}

TEST(MesosJsonTest, WritesDoublesAsShortestRoundTripText) {
  TestSchema schema;
  auto message = Parse(&schema, "Sample",
                       "rd: [ 0.1, 2, -0.5, 1e21, 1.5e-7, "
                       "0.30000000000000004, 1.7976931348623157e308 ] "
                       "f: 0.1");
  ASSERT_NE(message, nullptr);
  const std::string json = MesosJson(*message);
  EXPECT_EQ(json, R"({"f":0.1,"rd":[0.1,2.0,-0.5,1e+21,1.5e-07,)"
                  R"(0.30000000000000004,1.7976931348623157e+308]})");
  ExpectRoundTrip(*message, json);
}

TEST(MesosJsonTest, WritesNonFiniteDoublesAsProto3Strings) {
  TestSchema schema;
  auto message = schema.New("Sample");
  ASSERT_NE(message, nullptr);
  const google::protobuf::Descriptor* d = message->GetDescriptor();
  const google::protobuf::Reflection* r = message->GetReflection();
  r->SetDouble(message.get(), d->FindFieldByName("d"),
               std::numeric_limits<double>::infinity());
  r->AddDouble(message.get(), d->FindFieldByName("rd"),
               -std::numeric_limits<double>::infinity());
  r->AddDouble(message.get(), d->FindFieldByName("rd"),
               std::numeric_limits<double>::quiet_NaN());
  const std::string json = MesosJson(*message);
  EXPECT_EQ(json, R"({"d":"Infinity","rd":["-Infinity","NaN"]})");

  std::unique_ptr<google::protobuf::Message> parsed(message->New());
  ASSERT_TRUE(FromJson(json, parsed.get()).ok());
  EXPECT_EQ(r->GetDouble(*parsed, d->FindFieldByName("d")),
            std::numeric_limits<double>::infinity());
  EXPECT_TRUE(
      std::isnan(r->GetRepeatedDouble(*parsed, d->FindFieldByName("rd"), 1)));
}

TEST(MesosJsonTest, WritesBytesAsBase64AndEscapesStrings) {
  TestSchema schema;
  auto message = schema.New("Sample");
  ASSERT_NE(message, nullptr);
  const google::protobuf::Descriptor* d = message->GetDescriptor();
  const google::protobuf::Reflection* r = message->GetReflection();
  r->SetString(message.get(), d->FindFieldByName("raw"),
               std::string("\0\xff\x10", 3));
  r->SetString(message.get(), d->FindFieldByName("s"),
               std::string("q\"b\\n\n\t\x01\0 é", 12));
  const std::string json = MesosJson(*message);
  EXPECT_EQ(json,
            "{\"s\":\"q\\\"b\\\\n\\n\\t\\u0001\\u0000 é\","
            "\"raw\":\"AP8Q\"}");
  ExpectRoundTrip(*message, json);
}

TEST(MesosJsonTest, WritesAnUnnamedEnumValueAsItsNumber) {
  cairn::v1::Metadata metadata;  // proto3: open enums keep unknown values
  metadata.set_status(static_cast<cairn::v1::Metadata::Status>(42));
  metadata.set_begin(7);
  const std::string json = MesosJson(metadata);
  EXPECT_THAT(json, HasSubstr(R"("status":42)"));
  EXPECT_THAT(json, HasSubstr(R"("begin":7)"));
  ExpectRoundTrip(metadata, json);
}

TEST(MesosJsonTest, Proto3ScalarsAtZeroAreOmitted) {
  cairn::v1::Metadata metadata;
  EXPECT_EQ(MesosJson(metadata), "{}");
}

TEST(MesosJsonTest, HonoursPrettyEnumsAsIntsAndAlwaysPrint) {
  TestSchema schema;
  auto message = Parse(&schema, "Sample",
                       "i64: 1 color: GREEN child { u64: 2 } r64: [ 3, 4 ]");
  ASSERT_NE(message, nullptr);
  JsonOptions options = MesosJsonOptions();
  options.pretty = true;
  options.enums_as_ints = true;
  absl::StatusOr<std::string> json = ToJson(*message, options);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json,
            "{\n"
            "  \"i64\": 1,\n"
            "  \"color\": 1,\n"
            "  \"child\": {\n"
            "    \"u64\": 2\n"
            "  },\n"
            "  \"r64\": [\n"
            "    3,\n"
            "    4\n"
            "  ]\n"
            "}");
  ExpectRoundTrip(*message, *json);

  JsonOptions all = MesosJsonOptions();
  all.always_print_primitive_fields = true;
  auto empty = Parse(&schema, "Sample", "");
  ASSERT_NE(empty, nullptr);
  json = ToJson(*empty, all);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr(R"("i64":0,)"));
  EXPECT_THAT(*json, HasSubstr(R"("d":0.0,)"));
  EXPECT_THAT(*json, HasSubstr(R"("color":"RED",)"));
  EXPECT_THAT(*json, HasSubstr(R"("r64":[],)"));
  EXPECT_THAT(*json, HasSubstr(R"("by_name":{},)"));
  EXPECT_THAT(*json, Not(HasSubstr(R"("child")")));  // messages: only if set
}

TEST(MesosJsonTest, ParsesInt64AsStringOrNumber) {
  cairn::v1::TimeInfo from_number;
  ASSERT_TRUE(
      FromJson(R"({"nanoseconds":-9223372036854775808})", &from_number).ok());
  EXPECT_EQ(from_number.nanoseconds(), std::numeric_limits<int64_t>::min());
  cairn::v1::TimeInfo from_string;
  ASSERT_TRUE(
      FromJson(R"({"nanoseconds":"9223372036854775807"})", &from_string).ok());
  EXPECT_EQ(from_string.nanoseconds(), std::numeric_limits<int64_t>::max());
}

}  // namespace
}  // namespace cairn
