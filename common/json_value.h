// JsonValue: a small schema-less JSON reader. ParseJson turns one JSON
// document into a tree of values; typed getters read an object's fields.
// Enough for Cairn's own HTTP answers (the log API's /log/status,
// /log/append, /log/read, error bodies; the master's /master/replica) in
// clients and tests.
//
// Not protobuf's Struct: under GCC's TSan, protobuf's inlined Map code
// crashes against Debian's uninstrumented libprotobuf. For messages with a
// schema use common/json.h (FromJson) instead.
//
// What it accepts: RFC 8259 JSON, nesting at most 64 deep. Numbers are kept
// as their spelling (so 64-bit integers lose nothing) and checked only
// loosely (digits, sign, '.', exponent); \uXXXX escapes are decoded to
// UTF-8, each code unit on its own (a surrogate pair becomes two 3-byte
// sequences, not one 4-byte one). Duplicate keys are kept, in order; Find
// returns the first.
//
// Thread safety: a JsonValue is a plain value (const methods are safe from
// many threads); ParseJson is a pure function.

#ifndef CAIRN_COMMON_JSON_VALUE_H_
#define CAIRN_COMMON_JSON_VALUE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cairn {

struct JsonValue {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  // A string's decoded value; a number's spelling; "true" or "false".
  std::string text;
  std::vector<JsonValue> items;                           // kArray
  std::vector<std::pair<std::string, JsonValue>> fields;  // kObject, in order

  // The (first) field called `name` of an object; nullptr when absent or
  // when this is not an object.
  const JsonValue* Find(absl::string_view name) const;

  // A field's text (string, number or bool); nullopt when absent, null, an
  // array or an object.
  std::optional<std::string> Text(absl::string_view name) const;
  // A field holding an unsigned integer, as a JSON number (Mesos-facing
  // APIs) or a string (proto3 JSON, Cairn's log API); nullopt otherwise.
  std::optional<uint64_t> Uint(absl::string_view name) const;
  // A boolean field; nullopt when absent or not a boolean.
  std::optional<bool> Bool(absl::string_view name) const;
};

// Parses one JSON document (surrounding whitespace allowed). Returns
// kInvalidArgument, quoting the start of the text, when it is not valid JSON
// or nests deeper than 64.
absl::StatusOr<JsonValue> ParseJson(absl::string_view text);

}  // namespace cairn

#endif  // CAIRN_COMMON_JSON_VALUE_H_
