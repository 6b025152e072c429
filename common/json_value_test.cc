#include "common/json_value.h"

#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace cairn {
namespace {

TEST(JsonValueTest, ParsesNestedDocumentIntoTree) {
  absl::StatusOr<JsonValue> json =
      ParseJson(R"( {"a": [1, "two", true, null, {"b": -3.5e2}], "c": {}} )");
  ASSERT_TRUE(json.ok()) << json.status();
  ASSERT_EQ(json->kind, JsonValue::Kind::kObject);
  ASSERT_EQ(json->fields.size(), 2u);
  EXPECT_EQ(json->fields[0].first, "a");
  EXPECT_EQ(json->fields[1].first, "c");

  const JsonValue* a = json->Find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->kind, JsonValue::Kind::kArray);
  ASSERT_EQ(a->items.size(), 5u);
  EXPECT_EQ(a->items[0].kind, JsonValue::Kind::kNumber);
  EXPECT_EQ(a->items[0].text, "1");
  EXPECT_EQ(a->items[1].kind, JsonValue::Kind::kString);
  EXPECT_EQ(a->items[1].text, "two");
  EXPECT_EQ(a->items[2].kind, JsonValue::Kind::kBool);
  EXPECT_EQ(a->items[2].text, "true");
  EXPECT_EQ(a->items[3].kind, JsonValue::Kind::kNull);
  EXPECT_EQ(a->items[4].Text("b"), "-3.5e2");

  const JsonValue* c = json->Find("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->kind, JsonValue::Kind::kObject);
  EXPECT_TRUE(c->fields.empty());
}

TEST(JsonValueTest, ParsesScalarDocuments) {
  absl::StatusOr<JsonValue> number = ParseJson("42");
  ASSERT_TRUE(number.ok()) << number.status();
  EXPECT_EQ(number->kind, JsonValue::Kind::kNumber);
  EXPECT_EQ(number->text, "42");
  absl::StatusOr<JsonValue> null = ParseJson(" null ");
  ASSERT_TRUE(null.ok()) << null.status();
  EXPECT_EQ(null->kind, JsonValue::Kind::kNull);
}

TEST(JsonValueTest, TypedGettersReadFieldsOfTheirKind) {
  absl::StatusOr<JsonValue> json = ParseJson(
      R"({"s":"x","n":7,"big":"18446744073709551615","t":true,"f":false,)"
      R"("z":null,"arr":[],"neg":-1})");
  ASSERT_TRUE(json.ok()) << json.status();

  EXPECT_EQ(json->Text("s"), "x");
  EXPECT_EQ(json->Text("n"), "7");
  EXPECT_EQ(json->Text("t"), "true");
  EXPECT_EQ(json->Text("z"), std::nullopt);
  EXPECT_EQ(json->Text("arr"), std::nullopt);
  EXPECT_EQ(json->Text("missing"), std::nullopt);

  EXPECT_EQ(json->Uint("n"), 7u);
  EXPECT_EQ(json->Uint("big"), UINT64_MAX);  // 64-bit numbers as strings
  EXPECT_EQ(json->Uint("s"), std::nullopt);
  EXPECT_EQ(json->Uint("neg"), std::nullopt);
  EXPECT_EQ(json->Uint("t"), std::nullopt);

  EXPECT_EQ(json->Bool("t"), true);
  EXPECT_EQ(json->Bool("f"), false);
  EXPECT_EQ(json->Bool("s"), std::nullopt);
  EXPECT_EQ(json->Bool("missing"), std::nullopt);
}

TEST(JsonValueTest, FindReturnsFirstOfDuplicateKeysAndNullForNonObjects) {
  absl::StatusOr<JsonValue> json = ParseJson(R"({"k":1,"k":2})");
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->Uint("k"), 1u);
  absl::StatusOr<JsonValue> array = ParseJson("[1]");
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_EQ(array->Find("k"), nullptr);
}

TEST(JsonValueTest, DecodesStringEscapesToUtf8) {
  absl::StatusOr<JsonValue> json =
      ParseJson(R"(["a\"b\\c\/d\b\f\n\r\t", "\u0041\u00e9\u20ac"])");
  ASSERT_TRUE(json.ok()) << json.status();
  ASSERT_EQ(json->items.size(), 2u);
  EXPECT_EQ(json->items[0].text, "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(json->items[1].text, "A\xC3\xA9\xE2\x82\xAC");
}

TEST(JsonValueTest, RejectsMalformedDocumentsWithInvalidArgument) {
  for (const char* text :
       {"", "   ", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "{a:1}", "tru",
        "\"open", "\"bad \\q escape\"", "\"\\u12\"", "\"\\u12G4\"", "1 2",
        "{} x", "[1] ]"}) {
    absl::StatusOr<JsonValue> json = ParseJson(text);
    EXPECT_EQ(json.status().code(), absl::StatusCode::kInvalidArgument)
        << "accepted: " << text;
  }
}

TEST(JsonValueTest, RejectsNestingDeeperThan64) {
  const std::string ok = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(ParseJson(ok).ok());
  const std::string deep = std::string(66, '[') + std::string(66, ']');
  EXPECT_EQ(ParseJson(deep).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn
