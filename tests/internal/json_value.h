// JsonValue: just enough JSON to read the replicated log's HTTP answers
// (/log/status, /log/append, error bodies) in tests, without a schema.
//
// Not protobuf's Struct: under GCC's TSan, protobuf's inlined Map code
// crashes against Debian's uninstrumented libprotobuf (see log/client.cc).
//
// Thread safety: a plain value; ParseJson is a pure function.

#ifndef CAIRN_TESTS_INTERNAL_JSON_VALUE_H_
#define CAIRN_TESTS_INTERNAL_JSON_VALUE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cairn::tests {

struct JsonValue {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  // A string's decoded value; a number's or bool's spelling.
  std::string text;
  std::vector<JsonValue> items;                           // kArray
  std::vector<std::pair<std::string, JsonValue>> fields;  // kObject

  // The field called `name` of an object; nullptr when absent (or not an
  // object).
  const JsonValue* Find(absl::string_view name) const;

  // A field's text (string or number or bool); nullopt when absent, null,
  // an array or an object.
  std::optional<std::string> Text(absl::string_view name) const;
  // A field holding an unsigned integer, as a JSON number or a string (the
  // API writes 64-bit numbers as strings); nullopt otherwise.
  std::optional<uint64_t> Uint(absl::string_view name) const;
  // A boolean field; nullopt when absent or not a boolean.
  std::optional<bool> Bool(absl::string_view name) const;
};

// Parses one JSON document. kInvalidArgument (quoting the text) when it is
// not valid JSON.
absl::StatusOr<JsonValue> ParseJson(absl::string_view text);

}  // namespace cairn::tests

#endif  // CAIRN_TESTS_INTERNAL_JSON_VALUE_H_
