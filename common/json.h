// Protocol Buffers <-> JSON with the .proto field names (`framework_id`, not
// `frameworkId`), in two dialects:
//
//  - proto3's canonical JSON mapping (ToJson's default, written by
//    protobuf's own printer): 64-bit integers are JSON strings
//    ("position": "42"), fields holding their default are omitted.
//  - Mesos's JSON (MesosJson, or JsonOptions::int64_as_number /
//    print_declared_defaults), as Apache Mesos's v1 HTTP API and its
//    endpoints write a message (stout's JSON::Protobuf). Every Mesos-facing
//    output of Cairn uses it: the scheduler, operator and agent APIs, the
//    events API and /master/state's protobuf sub-objects. Its facts:
//      * integers of every width are JSON numbers, 64-bit ones included
//        ("nanoseconds": 1700000000000000000). Values beyond 2^53 are
//        written exactly, as Mesos does; a reader that keeps numbers as
//        IEEE doubles (JavaScript, jq, Python's float) rounds them;
//      * doubles are the shortest text that reads back as the same double,
//        with ".0" on integral values (2.0, 0.1, 1e+21); a float is the
//        shortest text that reads back as the same float. NaN and the
//        infinities, which JSON numbers cannot spell, are the strings "NaN",
//        "Infinity", "-Infinity" (proto3's spelling; Mesos has none);
//      * enums are their value names (the number for a value the schema
//        does not name); bytes are base64 with padding; strings are written
//        byte for byte, escaping only what JSON requires;
//      * a repeated field is an array and a map an object keyed by the
//        entry's key as text (sorted by key, so output is deterministic);
//        both are left out when empty;
//      * a singular field is written when set (proto3 scalars: when not
//        zero) and — print_declared_defaults, Mesos's rule — when unset but
//        declaring a default (`[default = 15.0]`) and not deprecated: then
//        with that default. Unknown fields and extensions are not written.
//    Well-known types (Any, Timestamp, ...) are written as plain messages.
//
// Parsing (FromJson, protobuf's parser) reads both dialects: 64-bit integers
// as strings or numbers, enums as names or numbers, proto or lowerCamelCase
// names, and "NaN"/"Infinity" for doubles.
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
  // the zero enum) and empty repeated fields and maps ([] and {}), so a
  // reader sees every field of the schema. Members of a oneof and message
  // fields are still printed only when set.
  bool always_print_primitive_fields = false;
  // Print enums as numbers instead of value names.
  bool enums_as_ints = false;
  // Print 64-bit integers as JSON numbers, as Mesos does, instead of
  // proto3's strings (see the file comment for values beyond 2^53).
  // Selects Cairn's reflection printer (the Mesos dialect).
  bool int64_as_number = false;
  // Also print unset optional fields that declare a default and are not
  // deprecated, with that default (Mesos's rule). Selects Cairn's
  // reflection printer (the Mesos dialect).
  bool print_declared_defaults = false;
};

// The options of Mesos's JSON: compact, int64_as_number and
// print_declared_defaults.
JsonOptions MesosJsonOptions();

// Returns `message` as JSON. Errors come only from protobuf's printer (the
// proto3 dialect; unusual: e.g. an Any whose type cannot be resolved) and
// carry its code, typically kInvalidArgument or kInternal; the Mesos dialect
// never fails.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message,
                                   const JsonOptions& options = {});

// Returns `message` in Mesos's JSON (ToJson with MesosJsonOptions()).
std::string MesosJson(const google::protobuf::Message& message);

// Replaces the contents of `*message` with the message described by `json`
// (either dialect). Returns OK, or kInvalidArgument with protobuf's parser
// message (which names the offending field or position) when `json` is
// malformed, has a value of the wrong type, or — unless
// `ignore_unknown_fields` — names a field the schema does not have. On error
// `*message` is left in an unspecified state.
// REQUIRES: message != nullptr.
absl::Status FromJson(absl::string_view json,
                      google::protobuf::Message* message,
                      bool ignore_unknown_fields = false);

}  // namespace cairn

#endif  // CAIRN_COMMON_JSON_H_
