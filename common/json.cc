#include "common/json.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace cairn {
namespace {

// protobuf's util::StatusCode uses the same canonical code numbers as absl.
absl::StatusCode ToAbslCode(google::protobuf::util::StatusCode code) {
  return static_cast<absl::StatusCode>(static_cast<int>(code));
}

}  // namespace

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message,
                                   const JsonOptions& options) {
  google::protobuf::util::JsonPrintOptions print_options;
  print_options.add_whitespace = options.pretty;
  print_options.always_print_primitive_fields =
      options.always_print_primitive_fields;
  print_options.always_print_enums_as_ints = options.enums_as_ints;
  print_options.preserve_proto_field_names = true;

  std::string json;
  const google::protobuf::util::Status status =
      google::protobuf::util::MessageToJsonString(message, &json,
                                                  print_options);
  if (!status.ok()) {
    absl::StatusCode code = ToAbslCode(status.code());
    if (code == absl::StatusCode::kOk) code = absl::StatusCode::kInternal;
    return absl::Status(
        code, absl::StrCat("cannot convert ", message.GetTypeName(),
                           " to JSON: ", std::string(status.message())));
  }
  return json;
}

absl::Status FromJson(absl::string_view json,
                      google::protobuf::Message* message,
                      bool ignore_unknown_fields) {
  google::protobuf::util::JsonParseOptions parse_options;
  parse_options.ignore_unknown_fields = ignore_unknown_fields;
  const google::protobuf::util::Status status =
      google::protobuf::util::JsonStringToMessage(
          google::protobuf::StringPiece(json.data(), json.size()), message,
          parse_options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON for ", message->GetTypeName(), ": ",
                     std::string(status.message())));
  }
  return absl::OkStatus();
}

}  // namespace cairn
