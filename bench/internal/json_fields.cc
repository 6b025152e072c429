#include "bench/internal/json_fields.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json.h"

namespace cairn::bench {

absl::StatusOr<google::protobuf::Struct> ParseJsonObject(
    absl::string_view json) {
  google::protobuf::Struct object;
  absl::Status status = FromJson(json, &object, /*ignore_unknown_fields=*/true);
  if (!status.ok()) return status;
  return object;
}

std::optional<std::string> JsonField(const google::protobuf::Struct& object,
                                     absl::string_view path) {
  std::vector<absl::string_view> parts = absl::StrSplit(path, '.');
  const google::protobuf::Struct* current = &object;
  for (size_t i = 0; i < parts.size(); ++i) {
    auto it = current->fields().find(std::string(parts[i]));
    if (it == current->fields().end()) return std::nullopt;
    const google::protobuf::Value& value = it->second;
    if (i + 1 < parts.size()) {
      if (!value.has_struct_value()) return std::nullopt;
      current = &value.struct_value();
      continue;
    }
    switch (value.kind_case()) {
      case google::protobuf::Value::kStringValue:
        return value.string_value();
      case google::protobuf::Value::kBoolValue:
        return value.bool_value() ? "true" : "false";
      case google::protobuf::Value::kNumberValue: {
        double n = value.number_value();
        if (std::floor(n) == n && std::fabs(n) < 9e15) {
          return absl::StrCat(static_cast<int64_t>(n));
        }
        return absl::StrCat(n);
      }
      default:
        return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace cairn::bench
