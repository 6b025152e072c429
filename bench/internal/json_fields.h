// Reading fields out of the small JSON status documents that Cairn replicas
// and etcd members answer with, without a schema: the document is parsed
// into a google.protobuf.Struct and fields are looked up by dotted path.
//
// Thread safety: pure functions.

#ifndef CAIRN_BENCH_INTERNAL_JSON_FIELDS_H_
#define CAIRN_BENCH_INTERNAL_JSON_FIELDS_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"

namespace cairn::bench {

// Parses a JSON object. kInvalidArgument if `json` is not one.
absl::StatusOr<google::protobuf::Struct> ParseJsonObject(
    absl::string_view json);

// Returns the field at `path` ("header.member_id") as text: strings as they
// are, numbers without a fraction as integers ("3", not "3.0"), booleans as
// "true"/"false". nullopt when absent, null, or an object/list.
std::optional<std::string> JsonField(const google::protobuf::Struct& object,
                                     absl::string_view path);

}  // namespace cairn::bench

#endif  // CAIRN_BENCH_INTERNAL_JSON_FIELDS_H_
