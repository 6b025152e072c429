#include "common/json.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/util/json_util.h"
#include "common/json_quote.h"

namespace cairn {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// protobuf's util::StatusCode uses the same canonical code numbers as absl.
absl::StatusCode ToAbslCode(google::protobuf::util::StatusCode code) {
  return static_cast<absl::StatusCode>(static_cast<int>(code));
}

// ---- Scalars as JSON text ---------------------------------------------------

void AppendQuoted(absl::string_view s, std::string* out) {
  AppendJsonQuoted(s, out);
}

// The strings proto3's mapping uses for the values JSON numbers cannot spell;
// nullptr for a finite value.
const char* NonFiniteText(double value) {
  if (std::isnan(value)) return "\"NaN\"";
  if (std::isinf(value)) return value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  return nullptr;
}

// The shortest "%g" text that reads back as `value` (parsed by `read`), with
// ".0" added to an integral spelling so it still reads as a floating-point
// number.
template <typename T>
std::string ShortestText(T value, int max_precision, T (*read)(const char*)) {
  char buffer[48];
  for (int precision = 1; precision <= max_precision; ++precision) {
    std::snprintf(buffer, sizeof(buffer), "%.*g", precision,
                  static_cast<double>(value));
    if (read(buffer) == value) break;
  }
  std::string text = buffer;
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

double ReadDouble(const char* text) { return std::strtod(text, nullptr); }
float ReadFloat(const char* text) { return std::strtof(text, nullptr); }

std::string DoubleText(double value) {
  if (const char* text = NonFiniteText(value)) return text;
  return ShortestText<double>(value, 17, &ReadDouble);
}

std::string FloatText(float value) {
  if (const char* text = NonFiniteText(value)) return text;
  return ShortestText<float>(value, 9, &ReadFloat);
}

// ---- The Mesos dialect: a printer over protobuf reflection ------------------

class MesosPrinter {
 public:
  explicit MesosPrinter(const JsonOptions& options) : options_(options) {}

  std::string Print(const Message& message) {
    PrintMessage(message, 0);
    return std::move(out_);
  }

 private:
  // Whether `field` of `message` appears in the output (see json.h).
  bool ShouldPrint(const Message& message, const Reflection* r,
                   const FieldDescriptor* field) const {
    if (field->is_repeated()) {
      return r->FieldSize(message, field) > 0 ||
             options_.always_print_primitive_fields;
    }
    if (r->HasField(message, field)) return true;
    if (options_.print_declared_defaults && field->has_default_value() &&
        !field->options().deprecated()) {
      return true;
    }
    return options_.always_print_primitive_fields &&
           field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE &&
           field->containing_oneof() == nullptr;
  }

  // A line break and the indentation of `depth`, when pretty.
  void Break(int depth) {
    if (!options_.pretty) return;
    out_.push_back('\n');
    out_.append(2 * static_cast<size_t>(depth), ' ');
  }

  // The separator before an object's or array's next member, at `depth`.
  void Next(bool* first, int depth) {
    if (!*first) out_.push_back(',');
    *first = false;
    Break(depth);
  }

  void Key(absl::string_view name) {
    AppendQuoted(name, &out_);
    out_.append(options_.pretty ? ": " : ":");
  }

  void PrintMessage(const Message& message, int depth) {
    const Descriptor* descriptor = message.GetDescriptor();
    const Reflection* r = message.GetReflection();
    out_.push_back('{');
    bool first = true;
    for (int i = 0; i < descriptor->field_count(); ++i) {
      const FieldDescriptor* field = descriptor->field(i);
      if (!ShouldPrint(message, r, field)) continue;
      Next(&first, depth + 1);
      Key(field->name());
      if (field->is_map()) {
        PrintMap(message, r, field, depth + 1);
      } else if (field->is_repeated()) {
        out_.push_back('[');
        bool first_item = true;
        const int size = r->FieldSize(message, field);
        for (int j = 0; j < size; ++j) {
          Next(&first_item, depth + 2);
          PrintValue(message, r, field, j, depth + 2);
        }
        if (!first_item) Break(depth + 1);
        out_.push_back(']');
      } else {
        PrintValue(message, r, field, -1, depth + 1);
      }
    }
    if (!first) Break(depth);
    out_.push_back('}');
  }

  // A map as an object keyed by the entries' keys, in key order.
  void PrintMap(const Message& message, const Reflection* r,
                const FieldDescriptor* field, int depth) {
    const Descriptor* entry_type = field->message_type();
    const FieldDescriptor* key = entry_type->map_key();
    const FieldDescriptor* value = entry_type->map_value();
    std::vector<const Message*> entries;
    const int size = r->FieldSize(message, field);
    entries.reserve(static_cast<size_t>(size));
    for (int j = 0; j < size; ++j) {
      entries.push_back(&r->GetRepeatedMessage(message, field, j));
    }
    std::sort(entries.begin(), entries.end(),
              [key](const Message* a, const Message* b) {
                return KeyLess(*a, *b, key);
              });
    out_.push_back('{');
    bool first = true;
    for (const Message* entry : entries) {
      Next(&first, depth + 1);
      Key(KeyText(*entry, key));
      PrintValue(*entry, entry->GetReflection(), value, -1, depth + 1);
    }
    if (!first) Break(depth);
    out_.push_back('}');
  }

  static bool KeyLess(const Message& a, const Message& b,
                      const FieldDescriptor* key) {
    const Reflection* ra = a.GetReflection();
    const Reflection* rb = b.GetReflection();
    switch (key->cpp_type()) {
      case FieldDescriptor::CPPTYPE_BOOL:
        return ra->GetBool(a, key) < rb->GetBool(b, key);
      case FieldDescriptor::CPPTYPE_INT32:
        return ra->GetInt32(a, key) < rb->GetInt32(b, key);
      case FieldDescriptor::CPPTYPE_INT64:
        return ra->GetInt64(a, key) < rb->GetInt64(b, key);
      case FieldDescriptor::CPPTYPE_UINT32:
        return ra->GetUInt32(a, key) < rb->GetUInt32(b, key);
      case FieldDescriptor::CPPTYPE_UINT64:
        return ra->GetUInt64(a, key) < rb->GetUInt64(b, key);
      case FieldDescriptor::CPPTYPE_STRING:
        return ra->GetString(a, key) < rb->GetString(b, key);
      default:  // protobuf allows no other key types
        return false;
    }
  }

  // A map key as text: a string as is, a number in decimal, a bool as
  // "true"/"false".
  static std::string KeyText(const Message& entry, const FieldDescriptor* key) {
    const Reflection* r = entry.GetReflection();
    switch (key->cpp_type()) {
      case FieldDescriptor::CPPTYPE_BOOL:
        return r->GetBool(entry, key) ? "true" : "false";
      case FieldDescriptor::CPPTYPE_INT32:
        return absl::StrCat(r->GetInt32(entry, key));
      case FieldDescriptor::CPPTYPE_INT64:
        return absl::StrCat(r->GetInt64(entry, key));
      case FieldDescriptor::CPPTYPE_UINT32:
        return absl::StrCat(r->GetUInt32(entry, key));
      case FieldDescriptor::CPPTYPE_UINT64:
        return absl::StrCat(r->GetUInt64(entry, key));
      case FieldDescriptor::CPPTYPE_STRING:
        return r->GetString(entry, key);
      default:  // protobuf allows no other key types
        return "";
    }
  }

  // A 64-bit integer: a number, or proto3's string without int64_as_number.
  template <typename Int>
  void PrintInt64(Int value) {
    if (options_.int64_as_number) {
      absl::StrAppend(&out_, value);
    } else {
      absl::StrAppend(&out_, "\"", value, "\"");
    }
  }

  // The value of `field` in `message`: element `index` when repeated, the
  // singular value when `index` is -1.
  void PrintValue(const Message& message, const Reflection* r,
                  const FieldDescriptor* field, int index, int depth) {
    const bool repeated = index >= 0;
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_BOOL: {
        const bool value = repeated ? r->GetRepeatedBool(message, field, index)
                                    : r->GetBool(message, field);
        out_.append(value ? "true" : "false");
        return;
      }
      case FieldDescriptor::CPPTYPE_INT32:
        absl::StrAppend(&out_, repeated
                                   ? r->GetRepeatedInt32(message, field, index)
                                   : r->GetInt32(message, field));
        return;
      case FieldDescriptor::CPPTYPE_UINT32:
        absl::StrAppend(&out_, repeated
                                   ? r->GetRepeatedUInt32(message, field, index)
                                   : r->GetUInt32(message, field));
        return;
      case FieldDescriptor::CPPTYPE_INT64:
        PrintInt64(repeated ? r->GetRepeatedInt64(message, field, index)
                            : r->GetInt64(message, field));
        return;
      case FieldDescriptor::CPPTYPE_UINT64:
        PrintInt64(repeated ? r->GetRepeatedUInt64(message, field, index)
                            : r->GetUInt64(message, field));
        return;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        out_.append(DoubleText(repeated
                                   ? r->GetRepeatedDouble(message, field, index)
                                   : r->GetDouble(message, field)));
        return;
      case FieldDescriptor::CPPTYPE_FLOAT:
        out_.append(FloatText(repeated
                                  ? r->GetRepeatedFloat(message, field, index)
                                  : r->GetFloat(message, field)));
        return;
      case FieldDescriptor::CPPTYPE_ENUM: {
        const int number = repeated
                               ? r->GetRepeatedEnumValue(message, field, index)
                               : r->GetEnumValue(message, field);
        const EnumValueDescriptor* value =
            field->enum_type()->FindValueByNumber(number);
        if (value == nullptr || options_.enums_as_ints) {
          absl::StrAppend(&out_, number);
        } else {
          AppendQuoted(value->name(), &out_);
        }
        return;
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string scratch;
        const std::string& value =
            repeated
                ? r->GetRepeatedStringReference(message, field, index, &scratch)
                : r->GetStringReference(message, field, &scratch);
        if (field->type() == FieldDescriptor::TYPE_BYTES) {
          AppendQuoted(absl::Base64Escape(value), &out_);
        } else {
          AppendQuoted(value, &out_);
        }
        return;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        PrintMessage(repeated ? r->GetRepeatedMessage(message, field, index)
                              : r->GetMessage(message, field),
                     depth);
        return;
    }
  }

  const JsonOptions options_;
  std::string out_;
};

}  // namespace

JsonOptions MesosJsonOptions() {
  JsonOptions options;
  options.int64_as_number = true;
  options.print_declared_defaults = true;
  return options;
}

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message,
                                   const JsonOptions& options) {
  if (options.int64_as_number || options.print_declared_defaults) {
    return MesosPrinter(options).Print(message);
  }
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

std::string MesosJson(const google::protobuf::Message& message) {
  return MesosPrinter(MesosJsonOptions()).Print(message);
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
