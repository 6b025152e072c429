// Protocol Buffers <-> JSON, in the shape Mesos's v1 HTTP API uses: proto3's
// canonical JSON mapping, but with the .proto field names (`framework_id`,
// not `frameworkId`), as Mesos emits.
//
// Mapping facts callers rely on (proto3 JSON): 64-bit integers are JSON
// strings ("position": "42") and are accepted back as strings or numbers;
// bytes are base64; enums are their value names; fields at their default value
// are omitted unless JsonOptions::always_print_primitive_fields is set.
// Parsing accepts both proto names and lowerCamelCase names.
//
// Thread safety: pure functions; safe from any thread (the message must not
// be mutated concurrently, as usual).

#ifndef CAIRN_COMMON_JSON_H_
#define CAIRN_COMMON_JSON_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace cairn {

struct JsonOptions {
  // Indent and break lines (for humans: cairnctl, web UI debugging).
  bool pretty = false;
  // Also print scalar fields that hold their default value (0, "", false,
  // the zero enum), so a reader sees every field of the schema.
  bool always_print_primitive_fields = false;
  // Print enums as numbers instead of value names.
  bool enums_as_ints = false;
};

// Returns `message` as JSON. Errors (unusual: e.g. an Any whose type cannot be
// resolved) carry protobuf's code and message, typically kInvalidArgument or
// kInternal.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message,
                                   const JsonOptions& options = {});

// Replaces the contents of `*message` with the message described by `json`.
// Returns OK, or kInvalidArgument with protobuf's parser message (which names
// the offending field or position) when `json` is malformed, has a value of
// the wrong type, or — unless `ignore_unknown_fields` — names a field the
// schema does not have. On error `*message` is left in an unspecified state.
// REQUIRES: message != nullptr.
absl::Status FromJson(absl::string_view json,
                      google::protobuf::Message* message,
                      bool ignore_unknown_fields = false);

}  // namespace cairn

#endif  // CAIRN_COMMON_JSON_H_
