#include "tests/internal/http_fuzz.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "cairn/v1/agent.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/operator.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "common/json.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace cairn::tests {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Largest body generated (the master's limit is 16 MiB).
constexpr size_t kMaxBody = size_t{4} << 20;

std::string InterestingString(Random& r, const Pools& pools) {
  switch (r.Below(12)) {
    case 0:
      return "";
    case 1:
    case 2:
      return r.Pick(pools.ids);
    case 3:
      return r.Text(r.Length(64));
    case 4:
      return r.Bytes(r.Length(64));  // not UTF-8
    case 5:
      return std::string(r.OneIn(2) ? 100000 : 1 << 20, 'x');
    case 6:
      return r.Pick(std::vector<std::string>{"*", "/", "..", "a/b", "-", "\\",
                                             "%00", "\n", "\xff\xfe"});
    case 7:
      return std::string("\0x\0", 3);
    case 8:
      return r.Pick(
          std::vector<std::string>{"cpus", "mem", "disk", "ports", "gpus"});
    default:
      return absl::StrCat("fuzz-", r.Below(8));
  }
}

int64_t InterestingInt(Random& r) {
  static const std::vector<int64_t> kValues = {
      0,
      1,
      -1,
      2,
      100,
      65535,
      65536,
      std::numeric_limits<int32_t>::max(),
      std::numeric_limits<int32_t>::min(),
      std::numeric_limits<uint32_t>::max(),
      std::numeric_limits<int64_t>::max(),
      std::numeric_limits<int64_t>::min(),
      1700000000000000000};
  return r.OneIn(4) ? static_cast<int64_t>(r.Next()) : r.Pick(kValues);
}

double InterestingDouble(Random& r) {
  static const std::vector<double> kValues = {
      0.0,
      -0.0,
      0.5,
      1.0,
      -1.0,
      1e-300,
      4.9e-324,
      1e300,
      -1e308,
      std::numeric_limits<double>::max(),
      std::numeric_limits<double>::infinity(),
      -std::numeric_limits<double>::infinity(),
      std::numeric_limits<double>::quiet_NaN(),
      9007199254740993.0,
      0.001,
      31000,
      4096};
  return r.OneIn(4) ? static_cast<double>(r.Next()) / 1e10 : r.Pick(kValues);
}

// ---- Random messages from the schema ----------------------------------------

void FillMessage(Random& r, const Pools& pools, Message* message, int depth);

void SetRandomValue(Random& r, const Pools& pools, Message* message,
                    const FieldDescriptor* field, int depth) {
  const Reflection* reflection = message->GetReflection();
  const bool repeated = field->is_repeated();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      const auto v = static_cast<int32_t>(InterestingInt(r));
      repeated ? reflection->AddInt32(message, field, v)
               : reflection->SetInt32(message, field, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      const int64_t v = InterestingInt(r);
      repeated ? reflection->AddInt64(message, field, v)
               : reflection->SetInt64(message, field, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      const auto v = static_cast<uint32_t>(InterestingInt(r));
      repeated ? reflection->AddUInt32(message, field, v)
               : reflection->SetUInt32(message, field, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      const auto v = static_cast<uint64_t>(InterestingInt(r));
      repeated ? reflection->AddUInt64(message, field, v)
               : reflection->SetUInt64(message, field, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      const double v = InterestingDouble(r);
      repeated ? reflection->AddDouble(message, field, v)
               : reflection->SetDouble(message, field, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_FLOAT: {
      const auto v = static_cast<float>(InterestingDouble(r));
      repeated ? reflection->AddFloat(message, field, v)
               : reflection->SetFloat(message, field, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      const bool v = r.OneIn(2);
      repeated ? reflection->AddBool(message, field, v)
               : reflection->SetBool(message, field, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const EnumDescriptor* type = field->enum_type();
      // Mostly a declared value; sometimes one the schema does not have
      // (kept as an unknown field in proto2, dropped from JSON).
      const int v = r.OneIn(8)
                        ? static_cast<int>(InterestingInt(r))
                        : type->value(r.Below(type->value_count()))->number();
      repeated ? reflection->AddEnumValue(message, field, v)
               : reflection->SetEnumValue(message, field, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string v = InterestingString(r, pools);
      repeated ? reflection->AddString(message, field, std::move(v))
               : reflection->SetString(message, field, std::move(v));
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      if (depth >= 5) break;
      Message* child = repeated ? reflection->AddMessage(message, field)
                                : reflection->MutableMessage(message, field);
      FillMessage(r, pools, child, depth + 1);
      break;
    }
  }
}

uint64_t InterestingPort(Random& r) {
  return r.Pick(std::vector<uint64_t>{
      0, 1, 1024, 31000, 31005, 32000, 65535, 65536,
      std::numeric_limits<uint64_t>::max(),
      std::numeric_limits<uint64_t>::max() - 1, uint64_t{1} << 63, r.Next()});
}

// Sets the enum field `name` of `message` to a declared value, or (one in
// eight) to a number the schema does not declare (kept as an unknown field).
void RandomEnum(Random& r, Message* message, const char* name) {
  const FieldDescriptor* field =
      message->GetDescriptor()->FindFieldByName(name);
  const EnumDescriptor* type = field->enum_type();
  message->GetReflection()->SetEnumValue(
      message, field,
      r.OneIn(8) ? static_cast<int>(r.Below(1000))
                 : type->value(r.Below(type->value_count()))->number());
}

// A resource that mostly looks like one (a known name, the matching type)
// with values from the edges: NaN, infinities, negative, huge; ranges
// reversed, overlapping, spanning 2^64; reservations and allocation roles.
void FillResource(Random& r, const Pools& pools, v1::Resource* resource) {
  resource->set_name(r.OneIn(8) ? InterestingString(r, pools)
                                : r.Pick(std::vector<std::string>{
                                      "cpus", "mem", "disk", "ports", "gpus"}));
  const bool ranges = resource->name() == "ports";
  resource->set_type(ranges ? v1::MesosValue::RANGES : v1::MesosValue::SCALAR);
  if (r.OneIn(8)) RandomEnum(r, resource, "type");
  if (!ranges || r.OneIn(8)) {
    resource->mutable_scalar()->set_value(
        r.OneIn(2) ? 0.5 * static_cast<double>(1 + r.Below(16))
                   : InterestingDouble(r));
  }
  if (ranges || r.OneIn(8)) {
    const int n = r.OneIn(16) ? 2000 : 1 + static_cast<int>(r.Below(3));
    for (int i = 0; i < n; ++i) {
      v1::MesosValue::Range* range = resource->mutable_ranges()->add_range();
      range->set_begin(InterestingPort(r));
      range->set_end(r.OneIn(2) ? range->begin() + r.Below(8)
                                : InterestingPort(r));
    }
  }
  if (r.OneIn(8)) {
    const int n = static_cast<int>(r.Below(4));
    for (int i = 0; i < n; ++i) {
      resource->mutable_set()->add_item(InterestingString(r, pools));
    }
  }
  if (r.OneIn(4)) {
    // `role` is deprecated (pre-MULTI_ROLE frameworks still send it).
    resource->GetReflection()->SetString(
        resource, resource->GetDescriptor()->FindFieldByName("role"),
        r.OneIn(2) ? "*" : InterestingString(r, pools));
  }
  if (r.OneIn(4)) {
    resource->mutable_allocation_info()->set_role(
        r.OneIn(2) ? "*" : InterestingString(r, pools));
  }
  if (r.OneIn(5)) {
    const int n = 1 + static_cast<int>(r.Below(3));
    for (int i = 0; i < n; ++i) {
      v1::Resource::ReservationInfo* reservation = resource->add_reservations();
      RandomEnum(r, reservation, "type");
      reservation->set_role(r.OneIn(2) ? "fuzz-role"
                                       : InterestingString(r, pools));
      if (r.OneIn(2)) reservation->set_principal(InterestingString(r, pools));
    }
  }
}

// Fills the messages the leader validates most (resources, ids, tasks,
// offer operations) with plausible values; false for other types.
bool FillKnownMessage(Random& r, const Pools& pools, Message* message,
                      int depth) {
  const Descriptor* descriptor = message->GetDescriptor();
  const std::string& name = descriptor->full_name();
  if (name == "cairn.v1.Resource") {
    FillResource(r, pools, static_cast<v1::Resource*>(message));
    return true;
  }
  if (name == "cairn.v1.OfferID" && !pools.offer_ids.empty() && r.OneIn(2)) {
    static_cast<v1::OfferID*>(message)->set_value(r.Pick(pools.offer_ids));
    return true;
  }
  if (name == "cairn.v1.OfferID" || name == "cairn.v1.AgentID" ||
      name == "cairn.v1.FrameworkID" || name == "cairn.v1.TaskID" ||
      name == "cairn.v1.ExecutorID") {
    const FieldDescriptor* value = descriptor->FindFieldByName("value");
    message->GetReflection()->SetString(
        message, value,
        r.OneIn(4) ? InterestingString(r, pools) : r.Pick(pools.ids));
    return true;
  }
  if (name == "cairn.v1.TaskInfo") {
    auto* task = static_cast<v1::TaskInfo*>(message);
    task->set_name(absl::StrCat("fuzz-", r.Below(4)));
    task->mutable_task_id()->set_value(r.OneIn(4)
                                           ? InterestingString(r, pools)
                                           : absl::StrCat("fuzz-", r.Below(8)));
    if (r.OneIn(2)) task->mutable_agent_id()->set_value(pools.agent_id);
    const int n = static_cast<int>(r.Below(4));
    for (int i = 0; i < n; ++i) FillResource(r, pools, task->add_resources());
    if (r.OneIn(2)) task->mutable_command()->set_value("true");
    if (r.OneIn(4) && depth < 5) FillMessage(r, pools, task, depth + 1);
    return true;
  }
  if (name == "cairn.v1.Offer.Operation") {
    const FieldDescriptor* type = descriptor->FindFieldByName("type");
    const auto* value =
        type->enum_type()->value(r.Below(type->enum_type()->value_count()));
    message->GetReflection()->SetEnumValue(message, type, value->number());
    if (const FieldDescriptor* member =
            descriptor->FindFieldByName(absl::AsciiStrToLower(value->name()));
        member != nullptr && depth < 5) {
      FillMessage(r, pools,
                  message->GetReflection()->MutableMessage(message, member),
                  depth + 1);
    }
    return true;
  }
  return false;
}

// Sets a random subset of `message`'s fields (fewer the deeper).
void FillMessage(Random& r, const Pools& pools, Message* message, int depth) {
  if (!r.OneIn(4) && FillKnownMessage(r, pools, message, depth)) return;
  const Descriptor* descriptor = message->GetDescriptor();
  const uint64_t one_in = depth <= 1 ? 2 : depth <= 3 ? 4 : 8;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    if (!r.OneIn(one_in)) continue;
    const int n = field->is_repeated() ? static_cast<int>(r.Below(4)) : 1;
    for (int k = 0; k < n; ++k) SetRandomValue(r, pools, message, field, depth);
  }
}

// A call of `prototype`'s type (a v1 Call: a `type` enum and one member per
// type named after it, e.g. ACCEPT -> `accept`), mostly well-formed.
std::unique_ptr<Message> RandomCall(Random& r, const Pools& pools,
                                    const Message& prototype) {
  std::unique_ptr<Message> call(prototype.New());
  const Descriptor* descriptor = call->GetDescriptor();
  const Reflection* reflection = call->GetReflection();
  const FieldDescriptor* type = descriptor->FindFieldByName("type");
  const EnumDescriptor* types = type->enum_type();
  const auto* value = types->value(r.Below(types->value_count()));
  reflection->SetEnumValue(call.get(), type, value->number());
  if (const FieldDescriptor* member =
          descriptor->FindFieldByName(absl::AsciiStrToLower(value->name()))) {
    FillMessage(r, pools, reflection->MutableMessage(call.get(), member), 1);
  }
  // The ids that route a call, mostly the real ones.
  for (const char* name : {"framework_id", "agent_id"}) {
    const FieldDescriptor* id = descriptor->FindFieldByName(name);
    if (id == nullptr || r.OneIn(8)) continue;
    Message* id_message = reflection->MutableMessage(call.get(), id);
    const FieldDescriptor* id_value =
        id_message->GetDescriptor()->FindFieldByName("value");
    std::string real = absl::string_view(name) == "framework_id"
                           ? pools.framework_id
                           : pools.agent_id;
    id_message->GetReflection()->SetString(
        id_message, id_value,
        r.OneIn(4) ? InterestingString(r, pools) : std::move(real));
  }
  if (r.OneIn(6)) FillMessage(r, pools, call.get(), 2);  // stray members
  return call;
}

// ---- JSON, written by hand so that it can be made wrong ---------------------

// A JSON value whose scalars are kept as the exact text to write.
struct JsonNode {
  enum class Kind { kRaw, kString, kArray, kObject };
  Kind kind = Kind::kRaw;
  std::string text;  // kRaw: literal as written; kString: escaped content
  std::vector<std::pair<std::string, JsonNode>> members;  // escaped keys
  std::vector<JsonNode> items;

  static JsonNode Raw(std::string text) {
    JsonNode node;
    node.text = std::move(text);
    return node;
  }
  static JsonNode String(std::string escaped) {
    JsonNode node;
    node.kind = Kind::kString;
    node.text = std::move(escaped);
    return node;
  }
};

// JSON string escaping of arbitrary bytes (bytes >= 0x80 are kept raw, so
// invalid UTF-8 stays invalid).
std::string Escape(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (unsigned char c : bytes) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      absl::StrAppend(&out, "\\u00", absl::Hex(c, absl::kZeroPad2));
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string NumberText(double v) {
  if (std::isnan(v)) return "\"NaN\"";
  if (std::isinf(v)) return v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  return absl::StrCat(v);
}

JsonNode ToNode(Random& r, const Message& message);

JsonNode ValueNode(Random& r, const Message& message,
                   const FieldDescriptor* field, int index) {
  const Reflection* reflection = message.GetReflection();
  const bool repeated = field->is_repeated();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return JsonNode::Raw(absl::StrCat(
          repeated ? reflection->GetRepeatedInt32(message, field, index)
                   : reflection->GetInt32(message, field)));
    case FieldDescriptor::CPPTYPE_UINT32:
      return JsonNode::Raw(absl::StrCat(
          repeated ? reflection->GetRepeatedUInt32(message, field, index)
                   : reflection->GetUInt32(message, field)));
    case FieldDescriptor::CPPTYPE_INT64: {
      const std::string v = absl::StrCat(
          repeated ? reflection->GetRepeatedInt64(message, field, index)
                   : reflection->GetInt64(message, field));
      // proto3 JSON writes 64-bit integers as strings; Mesos as numbers.
      return r.OneIn(2) ? JsonNode::String(v) : JsonNode::Raw(v);
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      const std::string v = absl::StrCat(
          repeated ? reflection->GetRepeatedUInt64(message, field, index)
                   : reflection->GetUInt64(message, field));
      return r.OneIn(2) ? JsonNode::String(v) : JsonNode::Raw(v);
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return JsonNode::Raw(NumberText(
          repeated ? reflection->GetRepeatedDouble(message, field, index)
                   : reflection->GetDouble(message, field)));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return JsonNode::Raw(NumberText(
          repeated ? reflection->GetRepeatedFloat(message, field, index)
                   : reflection->GetFloat(message, field)));
    case FieldDescriptor::CPPTYPE_BOOL:
      return JsonNode::Raw(
          (repeated ? reflection->GetRepeatedBool(message, field, index)
                    : reflection->GetBool(message, field))
              ? "true"
              : "false");
    case FieldDescriptor::CPPTYPE_ENUM: {
      const int v =
          repeated ? reflection->GetRepeatedEnumValue(message, field, index)
                   : reflection->GetEnumValue(message, field);
      const auto* value = field->enum_type()->FindValueByNumber(v);
      if (value == nullptr || r.OneIn(8)) return JsonNode::Raw(absl::StrCat(v));
      return JsonNode::String(value->name());
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      const std::string v =
          repeated ? reflection->GetRepeatedString(message, field, index)
                   : reflection->GetString(message, field);
      return JsonNode::String(field->type() == FieldDescriptor::TYPE_BYTES
                                  ? absl::Base64Escape(v)
                                  : Escape(v));
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return ToNode(
          r, repeated ? reflection->GetRepeatedMessage(message, field, index)
                      : reflection->GetMessage(message, field));
  }
  return JsonNode::Raw("null");
}

// `message` as a JSON object (proto field names, sometimes the camelCase
// JSON names the parser also accepts).
JsonNode ToNode(Random& r, const Message& message) {
  JsonNode node;
  node.kind = JsonNode::Kind::kObject;
  std::vector<const FieldDescriptor*> fields;
  message.GetReflection()->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const std::string name = r.OneIn(8) ? field->json_name() : field->name();
    if (!field->is_repeated()) {
      node.members.emplace_back(name, ValueNode(r, message, field, 0));
      continue;
    }
    JsonNode array;
    array.kind = JsonNode::Kind::kArray;
    const int n = message.GetReflection()->FieldSize(message, field);
    for (int i = 0; i < n; ++i) {
      array.items.push_back(ValueNode(r, message, field, i));
    }
    node.members.emplace_back(name, std::move(array));
  }
  return node;
}

void Write(const JsonNode& node, std::string* out) {
  switch (node.kind) {
    case JsonNode::Kind::kRaw:
      out->append(node.text);
      return;
    case JsonNode::Kind::kString:
      absl::StrAppend(out, "\"", node.text, "\"");
      return;
    case JsonNode::Kind::kArray:
      out->push_back('[');
      for (size_t i = 0; i < node.items.size(); ++i) {
        if (i > 0) out->push_back(',');
        Write(node.items[i], out);
      }
      out->push_back(']');
      return;
    case JsonNode::Kind::kObject:
      out->push_back('{');
      for (size_t i = 0; i < node.members.size(); ++i) {
        if (i > 0) out->push_back(',');
        absl::StrAppend(out, "\"", node.members[i].first, "\":");
        Write(node.members[i].second, out);
      }
      out->push_back('}');
      return;
  }
}

// Every node of the tree (the root first).
std::vector<JsonNode*> Nodes(JsonNode* root) {
  std::vector<JsonNode*> nodes = {root};
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (auto& [key, value] : nodes[i]->members) nodes.push_back(&value);
    for (JsonNode& item : nodes[i]->items) nodes.push_back(&item);
  }
  return nodes;
}

// A value nested `levels` deep in arrays or objects, as one raw literal
// (so that writing it needs no recursion).
JsonNode Nested(Random& r, size_t levels) {
  std::string text;
  const bool arrays = r.OneIn(2);
  for (size_t i = 0; i < levels; ++i) text += arrays ? "[" : "{\"a\":";
  text += r.OneIn(2) ? "1" : "{}";
  text.append(levels, arrays ? ']' : '}');
  return JsonNode::Raw(std::move(text));
}

std::string RandomEnumName(Random& r) {
  static const std::vector<const EnumDescriptor*>* const kEnums = [] {
    auto* enums = new std::vector<const EnumDescriptor*>{
        v1::scheduler::Call::Type_descriptor(),
        v1::master_api::Call::Type_descriptor(),
        v1::AgentCall::Type_descriptor(),
        v1::TaskState_descriptor(),
        v1::TaskStatus::Reason_descriptor(),
        v1::Offer::Operation::Type_descriptor(),
        v1::OperationState_descriptor()};
    return enums;
  }();
  const EnumDescriptor* type = r.Pick(*kEnums);
  return type->value(r.Below(type->value_count()))->name();
}

// One structural change to the JSON tree.
void MutateTree(Random& r, const Pools& pools, JsonNode* root) {
  std::vector<JsonNode*> nodes = Nodes(root);
  JsonNode* node = nodes[r.Below(nodes.size())];
  switch (r.Below(11)) {
    case 0:  // a value of another type
      *node = r.Pick(std::vector<JsonNode>{
          JsonNode::Raw("null"), JsonNode::Raw("true"), JsonNode::Raw("0"),
          JsonNode::Raw("[]"), JsonNode::Raw("{}"), JsonNode::String("x"),
          JsonNode::Raw("[1,\"a\",null,{}]"), JsonNode::Raw("-1.5")});
      return;
    case 1:  // a huge, tiny or malformed number
      *node = JsonNode::Raw(
          r.Pick(std::vector<std::string>{"1e999",
                                          "-1e999",
                                          "18446744073709551616",
                                          "18446744073709551615",
                                          "-9223372036854775809",
                                          "9223372036854775807",
                                          "4294967296",
                                          "-2147483649",
                                          "1e-400",
                                          "-0",
                                          "1E+2",
                                          "00",
                                          "01",
                                          ".5",
                                          "5.",
                                          "NaN",
                                          "Infinity",
                                          "-Infinity",
                                          "1e",
                                          "--1",
                                          "0x1F",
                                          "1.7976931348623157e309",
                                          std::string(400, '9'),
                                          "\"1e999\"",
                                          "\"-1\"",
                                          "\"NaN\"",
                                          "\"18446744073709551616\"",
                                          "\" 12\"",
                                          "\"\""}));
      return;
    case 2:  // a very long string
      *node = JsonNode::String(
          std::string(r.OneIn(4) ? (1 << 20) : 65536 + r.Below(65536), 'a'));
      return;
    case 3:  // an enum name, maybe of the wrong enum
      *node = r.OneIn(4) ? JsonNode::Raw(absl::StrCat(InterestingInt(r)))
                         : JsonNode::String(RandomEnumName(r));
      return;
    case 4:  // an unknown field
      if (node->kind == JsonNode::Kind::kObject) {
        node->members.emplace_back(absl::StrCat("unknown_", r.Below(100)),
                                   Nested(r, r.Below(4)));
      } else {
        *node = JsonNode::String(Escape(InterestingString(r, pools)));
      }
      return;
    case 5:  // deep nesting
      *node = Nested(r, r.Pick(std::vector<size_t>{10, 64, 99, 100, 101, 1000,
                                                   10000, 100000}));
      return;
    case 6:
      *node = JsonNode::Raw("null");
      return;
    case 7:  // a duplicate key
      if (!node->members.empty()) {
        auto member = node->members[r.Below(node->members.size())];
        if (r.OneIn(2)) member.second = JsonNode::Raw("null");
        node->members.push_back(std::move(member));
      }
      return;
    case 8:  // a missing member
      if (!node->members.empty()) {
        node->members.erase(node->members.begin() +
                            static_cast<long>(r.Below(node->members.size())));
      }
      return;
    case 9:  // bad escapes, raw control bytes, invalid UTF-8
      *node = JsonNode::String(r.Pick(std::vector<std::string>{
          "\\ud800", "\\udc00\\ud800", "\\u12", "\\q", "\\", "\x01", "\xc3\x28",
          "\xed\xa0\x80", "\\u0000", "a\nb", "\xf4\x90\x80\x80"}));
      return;
    default:  // an id the master knows, as a string
      *node = JsonNode::String(Escape(r.Pick(pools.ids)));
      return;
  }
}

// Byte-level damage: bit flips, truncation, insertion, deletion,
// duplication.
void MutateBytes(Random& r, std::string* bytes) {
  const int rounds = 1 + static_cast<int>(r.Below(3));
  for (int i = 0; i < rounds; ++i) {
    const size_t at = r.Below(bytes->size() + 1);
    switch (r.Below(5)) {
      case 0:
        if (!bytes->empty()) {
          (*bytes)[r.Below(bytes->size())] ^=
              static_cast<char>(1u << r.Below(8));
        }
        break;
      case 1:
        bytes->resize(at);
        break;
      case 2:
        bytes->insert(at, r.Bytes(1 + r.Length(32)));
        break;
      case 3:
        bytes->erase(at, r.Length(32));
        break;
      default:
        if (at < bytes->size()) {
          const std::string piece = bytes->substr(at, r.Length(64));
          bytes->insert(r.Below(bytes->size() + 1), piece);
        }
        break;
    }
  }
}

// Protobuf-specific damage: unknown fields, a huge declared length, deep
// group nesting, repeated `type`s, bytes appended.
void MutateProtobuf(Random& r, std::string* bytes) {
  switch (r.Below(6)) {
    case 0:  // an unknown varint field with a large number
      bytes->append("\xf8\xff\xff\xff\x0f\x01");
      break;
    case 1:  // a length-delimited field 1 claiming ~4 GiB
      bytes->append("\x0a\xff\xff\xff\xff\x0f");
      break;
    case 2:  // groups nested far beyond any recursion limit
      bytes->append(std::string(r.OneIn(2) ? 200 : 100000, '\x0b'));
      break;
    case 3:  // `type` again, with an unknown value
      bytes->append("\x08\xff\xff\xff\xff\x07");
      break;
    case 4: {  // length-delimited field 2 nested 2000 levels deep
      std::string nested;
      for (int i = 0; i < 2000; ++i) {
        std::string varint;
        for (uint64_t n = nested.size();; n >>= 7) {
          varint.push_back(
              static_cast<char>((n & 0x7f) | (n > 0x7f ? 0x80 : 0)));
          if (n <= 0x7f) break;
        }
        nested = absl::StrCat("\x12", varint, nested);
      }
      bytes->append(nested);
      break;
    }
    default:
      MutateBytes(r, bytes);
      break;
  }
}

std::string QueryEscape(Random& r, absl::string_view value) {
  std::string out;
  for (unsigned char c : value) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' ||
        (c == ':' && !r.OneIn(4))) {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

std::string QueryValue(Random& r, const Pools& pools) {
  switch (r.Below(8)) {
    case 0:
      return r.Pick(std::vector<std::string>{
          "", "0", "1", "-1", "2", "18446744073709551615",
          "18446744073709551616", "99999999999999999999999",
          "9223372036854775808", "1e5", " 1", "0x10", "+1", "1.5", "abc",
          "true"});
    case 1:
      return r.Pick(pools.ids);
    case 2:  // JSONP callbacks, good and bad
      return r.Pick(std::vector<std::string>{
          "cb", "a.b", "$x_1", "alert(1)", "<script>", "a b", "cb;evil()",
          "\xff", std::string(10000, 'c'), "a.b.c.d", "1abc", "_"});
    case 3:
      return r.Pick(std::vector<std::string>{
          "task_status_updated", "agent_registered,agent_removed", "nonsense",
          ",", "task_status_updated,", "weights_updated"});
    case 4:
      return r.Pick(std::vector<std::string>{"asc", "desc", "sideways"});
    case 5:
      return r.Text(r.Length(64));
    default:
      return absl::StrCat(r.Below(40));
  }
}

// A random query string over `keys` (and stray ones); raw %-damage
// sometimes.
std::string RandomQuery(Random& r, const Pools& pools,
                        const std::vector<std::string>& keys) {
  std::vector<std::string> parts;
  const int n = static_cast<int>(r.Below(5));
  for (int i = 0; i < n; ++i) {
    const std::string key =
        r.OneIn(6) ? absl::StrCat("k", r.Below(5)) : r.Pick(keys);
    if (r.OneIn(10)) {
      parts.push_back(QueryEscape(r, key));  // no '='
      continue;
    }
    parts.push_back(absl::StrCat(QueryEscape(r, key), "=",
                                 QueryEscape(r, QueryValue(r, pools))));
  }
  std::string query = absl::StrJoin(parts, "&");
  if (r.OneIn(10)) {
    query += r.Pick(std::vector<std::string>{"%", "%Z", "%0", "&&", "=",
                                             "==", "&=x", "%00", "#frag"});
  }
  return query.empty() && r.OneIn(2) ? "" : "?" + query;
}

// Frames `body` (Content-Length, chunked, or damaged framing the server
// must refuse at once) and appends it with the final headers to `head`.
// Sets `*seen_body` to the body the server will take.
std::string Frame(Random& r, std::string head, const std::string& body,
                  bool has_body, std::string* seen_body) {
  *seen_body = body;
  if (!has_body && r.OneIn(2)) return head + "\r\n";
  switch (r.Below(10)) {
    case 0:
    case 1: {  // chunked, random chunk sizes, sometimes extensions/trailers
      std::string out = head + "Transfer-Encoding: chunked\r\n\r\n";
      size_t at = 0;
      while (at < body.size()) {
        const size_t n = std::min(body.size() - at, 1 + r.Length(8192));
        absl::StrAppend(&out, absl::Hex(n), r.OneIn(8) ? ";ext=\"v\"" : "",
                        "\r\n", body.substr(at, n), "\r\n");
        at += n;
      }
      out += r.OneIn(8) ? "0\r\nX-Trailer: t\r\n\r\n" : "0\r\n\r\n";
      return out;
    }
    case 2: {  // Content-Length short of the body: the rest is a new request
      const size_t n = r.Below(body.size() + 1);
      *seen_body = body.substr(0, n);
      return absl::StrCat(head, "Content-Length: ", n, "\r\n\r\n", body);
    }
    case 3: {  // framing the server must refuse without waiting
      const std::string small = body.substr(0, 4096);
      seen_body->clear();
      return r.Pick(std::vector<std::string>{
          absl::StrCat(head, "Content-Length: abc\r\n\r\n", small),
          absl::StrCat(head, "Content-Length: -1\r\n\r\n", small),
          absl::StrCat(head, "Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
                       small),
          absl::StrCat(
              head, "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
              "3\r\nabc\r\n0\r\n\r\n"),
          absl::StrCat(head, "Transfer-Encoding: chunked\r\n\r\nzz\r\n", small,
                       "\r\n0\r\n\r\n"),
          absl::StrCat(head, "Content-Length: 99999999999999\r\n\r\n"),
          absl::StrCat(head, "Content-Length: 17000000\r\n\r\n"),
          absl::StrCat(head, "Content-Length: 18446744073709551616\r\n\r\n"),
      });
    }
    default:
      return absl::StrCat(head, "Content-Length: ", body.size(), "\r\n\r\n",
                          body);
  }
}

std::string HeaderName(Random& r, absl::string_view name) {
  if (r.OneIn(4)) return absl::AsciiStrToLower(name);
  if (r.OneIn(16)) return absl::AsciiStrToUpper(name);
  return std::string(name);
}

// The bytes to send: request line, headers, framed body.
std::string Assemble(Random& r, const std::string& method,
                     const std::string& target,
                     std::vector<std::pair<std::string, std::string>> headers,
                     const std::string& body, bool has_body,
                     std::string* seen_body) {
  const std::string version =
      r.OneIn(12)
          ? r.Pick(std::vector<std::string>{"HTTP/1.0", "HTTP/1.0", "HTTP/2.0",
                                            "HTTP/1.1 x", "http/1.1", "HTTP/1"})
          : "HTTP/1.1";
  std::string head = absl::StrCat(method, " ", target, " ", version, "\r\n");
  if (!r.OneIn(10)) head += "Host: 127.0.0.1\r\n";
  if (!r.OneIn(10)) headers.emplace_back("Connection", "close");
  if (r.OneIn(12)) headers.emplace_back("Expect", "100-continue");
  if (r.OneIn(12)) headers.emplace_back("X-Request-Id", r.Text(r.Length(300)));
  if (r.OneIn(12)) {
    headers.emplace_back("X-Cairn-Principal", r.Text(r.Length(64)));
  }
  if (r.OneIn(16) && !headers.empty()) headers.push_back(r.Pick(headers));
  if (r.OneIn(24)) headers.emplace_back("X-Long", std::string(50000, 'h'));
  if (r.OneIn(24)) headers.emplace_back("X-Huge", std::string(70000, 'h'));
  if (r.OneIn(24)) headers.emplace_back("", "no name");
  for (const auto& [name, value] : headers) {
    absl::StrAppend(&head, HeaderName(r, name), ":", r.OneIn(8) ? "" : " ",
                    value, "\r\n");
  }
  return Frame(r, std::move(head), body, has_body, seen_body);
}

std::string ContentType(Random& r, bool json) {
  switch (r.Below(10)) {
    case 0:
      return json ? "application/x-protobuf" : "application/json";
    case 1:
      return json ? "Application/JSON; charset=utf-8"
                  : "application/x-protobuf; proto=cairn";
    case 2:
      return r.Pick(std::vector<std::string>{
          "", "text/plain", "application/", ";", "application/json,",
          "application/jsonx", "*/*", "multipart/form-data; boundary=x",
          std::string(3000, 'j')});
    default:
      return json ? "application/json" : "application/x-protobuf";
  }
}

std::string Accept(Random& r) {
  return r.Pick(std::vector<std::string>{
      "application/json", "application/x-protobuf", "*/*", "application/*",
      "text/html", "text/event-stream", "", "application/json;q=0.1, */*",
      "application/x-protobuf, application/json", ",,,", "application/recordio",
      "text/*;q=0"});
}

// An API POST: a random call, as JSON or protobuf, mutated, with headers.
FuzzRequest ApiRequest(Random& r, const Pools& pools, Endpoint endpoint) {
  FuzzRequest request;
  request.endpoint = endpoint;
  request.method =
      r.OneIn(30)
          ? r.Pick(std::vector<std::string>{"GET", "PUT", "DELETE", "PATCH"})
          : "POST";
  const Message* prototype = nullptr;
  switch (endpoint) {
    case Endpoint::kScheduler:
      request.target = "/api/v1/scheduler";
      prototype = &v1::scheduler::Call::default_instance();
      break;
    case Endpoint::kOperator:
      request.target = "/api/v1";
      prototype = &v1::master_api::Call::default_instance();
      break;
    default:
      request.target = "/api/v1/agent";
      prototype = &v1::AgentCall::default_instance();
      break;
  }
  if (r.OneIn(20)) request.target += RandomQuery(r, pools, {"x", "jsonp"});
  const bool json = !r.OneIn(4);
  if (r.OneIn(12)) {
    request.body = r.Bytes(r.Length(8192));  // not a call at all
  } else {
    std::unique_ptr<Message> call = RandomCall(r, pools, *prototype);
    // Half the calls stay well-formed, to reach the leader's validation.
    const bool damage = r.OneIn(2);
    if (json) {
      JsonNode root = ToNode(r, *call);
      const int changes = damage ? 1 + static_cast<int>(r.Below(3)) : 0;
      for (int i = 0; i < changes; ++i) MutateTree(r, pools, &root);
      Write(root, &request.body);
      if (damage && r.OneIn(3)) MutateBytes(r, &request.body);
    } else {
      call->SerializePartialToString(&request.body);
      if (damage) MutateProtobuf(r, &request.body);
    }
  }
  if (request.body.size() > kMaxBody) request.body.resize(kMaxBody);

  std::vector<std::pair<std::string, std::string>> headers;
  if (!r.OneIn(10)) headers.emplace_back("Content-Type", ContentType(r, json));
  if (!r.OneIn(2)) headers.emplace_back("Accept", Accept(r));
  const bool scheduler = endpoint == Endpoint::kScheduler;
  const std::string stream_header =
      scheduler ? "Mesos-Stream-Id" : "X-Cairn-Stream-Id";
  const std::string& live =
      scheduler ? pools.framework_stream_id : pools.agent_stream_id;
  if (endpoint != Endpoint::kOperator && !r.OneIn(4)) {
    headers.emplace_back(
        stream_header,
        !live.empty() && !r.OneIn(4)
            ? live
            : r.Pick(std::vector<std::string>{
                  "", "00000000-0000-0000-0000-000000000000", r.Text(40),
                  std::string(5000, 's'), "\xff\xfe"}));
  }
  request.wire = Assemble(r, request.method, request.target, std::move(headers),
                          request.body, true, &request.seen_body);
  request.summary = absl::StrCat(
      request.method, " ", request.target, " (", json ? "json" : "protobuf",
      ", ", request.body.size(),
      " bytes: ", absl::CHexEscape(request.body.substr(0, 160)), ")");
  return request;
}

FuzzRequest EventsRequest(Random& r, const Pools& pools) {
  FuzzRequest request;
  request.endpoint = Endpoint::kEvents;
  request.method = r.OneIn(20) ? "HEAD" : "GET";
  request.head = request.method == "HEAD";
  request.target = "/api/v1/events" +
                   RandomQuery(r, pools,
                               {"from", "to", "type", "framework_id",
                                "agent_id", "task_id", "limit", "from", "to"});
  std::vector<std::pair<std::string, std::string>> headers;
  if (r.OneIn(2)) {
    headers.emplace_back(
        "Accept",
        r.Pick(std::vector<std::string>{
            "text/event-stream", "application/json", "application/x-protobuf",
            "*/*", "text/html", "application/recordio", ""}));
  }
  if (r.OneIn(3)) {
    headers.emplace_back(
        "Last-Event-ID",
        r.Pick(std::vector<std::string>{
            "1:0", "0:0", "1", "abc", "1:", ":1", "-1:0", "1:-1",
            "18446744073709551615:4294967295", "18446744073709551616:0",
            "99999999999999999999:0", "1:99999999999", "", "3:0:1", " 2:0",
            std::string(1000, '9')}));
  }
  request.wire = Assemble(r, request.method, request.target, std::move(headers),
                          "", false, &request.seen_body);
  request.summary = absl::StrCat(request.method, " ", request.target);
  return request;
}

FuzzRequest ReadOnlyRequest(Random& r, const Pools& pools) {
  static const std::vector<std::pair<std::string, std::vector<std::string>>>
      kPaths = {
          {"/master/state", {"jsonp"}},
          {"/master/state.json", {"jsonp"}},
          {"/master/state-summary", {"jsonp"}},
          {"/master/frameworks", {"jsonp", "framework_id"}},
          {"/master/slaves", {"jsonp", "slave_id"}},
          {"/master/tasks",
           {"jsonp", "limit", "offset", "order", "framework_id", "task_id"}},
          {"/master/tasks.json", {"limit", "offset", "order"}},
          {"/master/flags", {"jsonp"}},
          {"/master/redirect", {"x"}},
          {"/master/replica", {"x"}},
          {"/master/snapshot", {"min_position", "position"}},
          {"/metrics/snapshot", {"jsonp", "timeout"}},
          {"/metrics", {"x"}},
          {"/health", {"x"}},
          {"/version", {"jsonp"}},
      };
  FuzzRequest request;
  request.endpoint = Endpoint::kReadOnly;
  const auto& [path, keys] = r.Pick(kPaths);
  request.method = r.OneIn(10) ? "HEAD" : r.OneIn(20) ? "POST" : "GET";
  request.head = request.method == "HEAD";
  request.target = path + RandomQuery(r, pools, keys);
  std::vector<std::pair<std::string, std::string>> headers;
  if (r.OneIn(3)) headers.emplace_back("Accept", Accept(r));
  const std::string body = r.OneIn(6) ? r.Bytes(r.Length(2048)) : "";
  request.wire = Assemble(r, request.method, request.target, std::move(headers),
                          body, !body.empty(), &request.seen_body);
  request.summary = absl::StrCat(request.method, " ", request.target);
  return request;
}

FuzzRequest OtherRequest(Random& r, const Pools& pools) {
  FuzzRequest request;
  request.endpoint = Endpoint::kOther;
  switch (r.Below(4)) {
    case 0:  // not HTTP at all (ends with a blank line: nothing to wait for)
      request.wire = r.Bytes(1 + r.Length(4096)) + "\r\n\r\n";
      request.summary = "random bytes";
      return request;
    case 1: {  // a request line with damage
      std::string line = absl::StrCat(
          r.Pick(std::vector<std::string>{"GET", "POST"}), " ",
          r.Pick(std::vector<std::string>{"/api/v1", "/master/state",
                                          "/api/v1/events?from=1"}),
          " HTTP/1.1");
      MutateBytes(r, &line);
      request.wire = line + "\r\nConnection: close\r\n\r\n";
      request.summary = absl::StrCat("damaged request line ",
                                     absl::CHexEscape(line.substr(0, 100)));
      return request;
    }
    default: {  // random methods and paths
      request.method = r.Pick(std::vector<std::string>{
          "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
          "CONNECT", "PROPFIND", "BREW", "get"});
      request.target = r.Pick(std::vector<std::string>{
          "/", "/api", "/api/v1/", "/api/v1/scheduler/x", "/api/v2", "/master",
          "/master/", "/master/state/", "/metrics/", "/files/x",
          "/logging/toggle", "/master/maintenance/schedule", "*",
          "http://127.0.0.1/health", "/..%2f..%2fetc/passwd", "/api/v1/events/",
          "/%", "/" + std::string(20000, 'p')});
      request.target += RandomQuery(r, pools, {"jsonp", "from", "x"});
      const std::string body = r.OneIn(2) ? r.Bytes(r.Length(1024)) : "";
      std::vector<std::pair<std::string, std::string>> headers;
      if (r.OneIn(2)) {
        headers.emplace_back("Content-Type", ContentType(r, r.OneIn(2)));
      }
      request.head = false;
      request.wire =
          Assemble(r, request.method, request.target, std::move(headers), body,
                   !body.empty(), &request.seen_body);
      request.summary =
          absl::StrCat(request.method, " ", request.target.substr(0, 100));
      return request;
    }
  }
}

// The call type names `body` parses to, as JSON (the way
// master/api_http.h ParseCall does) and as protobuf; a type the master
// refuses (absent, 0) is left out.
std::vector<std::string> CallTypes(const Message& prototype,
                                   const std::string& body) {
  std::vector<std::string> names;
  for (int encoding = 0; encoding < 2; ++encoding) {
    std::unique_ptr<Message> call(prototype.New());
    const bool parsed = encoding == 0 ? FromJson(body, call.get(), true).ok()
                                      : call->ParseFromString(body);
    const FieldDescriptor* type =
        call->GetDescriptor()->FindFieldByName("type");
    const Reflection* reflection = call->GetReflection();
    if (!parsed || !reflection->HasField(*call, type)) continue;
    const int number = reflection->GetEnumValue(*call, type);
    const auto* value = type->enum_type()->FindValueByNumber(number);
    if (number == 0 || value == nullptr) continue;
    names.push_back(value->name());
  }
  return names;
}

// Reads until `*buffer` holds `n` bytes, the peer closes or `deadline`.
bool ReadAtLeast(int fd, std::string* buffer, size_t n, absl::Time deadline,
                 std::string* error) {
  char chunk[65536];
  while (buffer->size() < n) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      *error = "timed out";
      return false;
    }
    pollfd p = {fd, POLLIN, 0};
    const int ready =
        poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready < 0 && errno != EINTR) {
      *error = absl::StrCat("poll: ", std::strerror(errno));
      return false;
    }
    if (ready <= 0) continue;
    const ssize_t got = recv(fd, chunk, sizeof(chunk), 0);
    if (got == 0) {
      *error = "closed";
      return false;
    }
    if (got < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      *error = absl::StrCat("recv: ", std::strerror(errno));
      return false;
    }
    buffer->append(chunk, static_cast<size_t>(got));
  }
  return true;
}

// Reads until `marker` appears in `*buffer` (its end offset), or nullopt.
std::optional<size_t> ReadUntil(int fd, std::string* buffer,
                                absl::string_view marker, size_t from,
                                absl::Time deadline, std::string* error) {
  for (;;) {
    const size_t at = absl::string_view(*buffer).find(marker, from);
    if (at != std::string::npos) return at + marker.size();
    if (!ReadAtLeast(fd, buffer, buffer->size() + 1, deadline, error)) {
      return std::nullopt;
    }
  }
}

std::string HeaderValue(absl::string_view head, absl::string_view name) {
  for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    if (absl::EqualsIgnoreCase(
            absl::StripAsciiWhitespace(line.substr(0, colon)), name)) {
      return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    }
  }
  return "";
}

}  // namespace

const char* EndpointName(Endpoint endpoint) {
  switch (endpoint) {
    case Endpoint::kScheduler:
      return "scheduler";
    case Endpoint::kOperator:
      return "operator";
    case Endpoint::kAgent:
      return "agent";
    case Endpoint::kEvents:
      return "events";
    case Endpoint::kReadOnly:
      return "read-only";
    case Endpoint::kOther:
      return "other";
  }
  return "?";
}

FuzzRequest NextRequest(Random& r, const Pools& pools) {
  const uint64_t roll = r.Below(100);
  if (roll < 20) return ApiRequest(r, pools, Endpoint::kScheduler);
  if (roll < 40) return ApiRequest(r, pools, Endpoint::kOperator);
  if (roll < 55) return ApiRequest(r, pools, Endpoint::kAgent);
  if (roll < 67) return EventsRequest(r, pools);
  if (roll < 87) return ReadOnlyRequest(r, pools);
  return OtherRequest(r, pools);
}

// True if `body` could be taken by the master as a call that changes its
// state without a live stream id: a framework's or agent's SUBSCRIBE, or an
// operator call other than GET_* and SUBSCRIBE (whatever the headers say).
bool MayChangeState(Endpoint endpoint, const std::string& body) {
  const Message* prototype = nullptr;
  switch (endpoint) {
    case Endpoint::kScheduler:
      prototype = &v1::scheduler::Call::default_instance();
      break;
    case Endpoint::kAgent:
      prototype = &v1::AgentCall::default_instance();
      break;
    case Endpoint::kOperator:
      prototype = &v1::master_api::Call::default_instance();
      break;
    default:
      return false;
  }
  for (const std::string& type : CallTypes(*prototype, body)) {
    if (endpoint == Endpoint::kOperator) {
      if (!absl::StartsWith(type, "GET_") && type != "SUBSCRIBE") return true;
    } else if (type == "SUBSCRIBE") {
      return true;
    }
  }
  return false;
}

RawAnswer Exchange(uint16_t port, const std::string& wire, bool head_request,
                   absl::Duration timeout) {
  RawAnswer answer;
  const absl::Time deadline = absl::Now() + timeout;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    answer.error = absl::StrCat("socket: ", std::strerror(errno));
    return answer;
  }
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
      0) {
    answer.error = absl::StrCat("connect: ", std::strerror(errno));
    close(fd);
    return answer;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::string buffer;
  // Send, reading whatever arrives meanwhile (an early answer).
  size_t sent = 0;
  while (sent < wire.size()) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      answer.error = "timed out sending";
      close(fd);
      return answer;
    }
    pollfd p = {fd, POLLOUT | POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <=
        0) {
      continue;
    }
    if (p.revents & POLLIN) {
      char chunk[65536];
      const ssize_t got = recv(fd, chunk, sizeof(chunk), 0);
      if (got > 0) buffer.append(chunk, static_cast<size_t>(got));
      if (got == 0) {
        answer.closed_while_sending = true;
        break;
      }
    }
    if (p.revents & (POLLOUT | POLLERR | POLLHUP)) {
      const ssize_t n =
          send(fd, wire.data() + sent, wire.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        answer.closed_while_sending = true;
        break;
      }
      if (n > 0) sent += static_cast<size_t>(n);
    }
  }
  // The answer: skip 1xx heads, then one final head and its body.
  size_t start = 0;
  for (;;) {
    std::optional<size_t> end =
        ReadUntil(fd, &buffer, "\r\n\r\n", start, deadline, &answer.error);
    if (!end.has_value()) {
      close(fd);
      return answer;
    }
    answer.head = buffer.substr(start, *end - start);
    int status = 0;
    if (!absl::StartsWith(answer.head, "HTTP/1.") || answer.head.size() < 12 ||
        !absl::SimpleAtoi(answer.head.substr(9, 3), &status)) {
      answer.error = "not an HTTP answer";
      close(fd);
      return answer;
    }
    start = *end;
    if (status >= 100 && status < 200) continue;
    answer.status = status;
    break;
  }
  const std::string length = HeaderValue(answer.head, "Content-Length");
  const bool chunked = absl::StrContains(
      absl::AsciiStrToLower(HeaderValue(answer.head, "Transfer-Encoding")),
      "chunked");
  if (head_request || answer.status == 204 || answer.status == 304) {
    answer.complete = true;
  } else if (answer.status == 200 && (chunked || length.empty())) {
    // An event stream (chunked; to an HTTP/1.0 client, raw bytes until the
    // server closes): the headers are the answer.
    answer.stream = true;
    answer.complete = true;
  } else if (chunked) {
    answer.complete =
        ReadUntil(fd, &buffer, "0\r\n\r\n", start, deadline, &answer.error)
            .has_value();
  } else if (!length.empty()) {
    size_t n = 0;
    if (!absl::SimpleAtoi(length, &n)) {
      answer.error = "bad Content-Length in the answer";
    } else {
      answer.complete =
          ReadAtLeast(fd, &buffer, start + n, deadline, &answer.error);
      buffer.resize(std::min(buffer.size(), start + n));  // not what follows
    }
  } else {
    // Until the server closes.
    std::string ignored;
    ReadAtLeast(fd, &buffer, std::numeric_limits<size_t>::max(), deadline,
                &ignored);
    answer.complete = ignored == "closed";
    if (!answer.complete) answer.error = ignored;
  }
  answer.body = buffer.substr(start, size_t{16} << 20);
  answer.chunked = chunked;
  answer.content_type = HeaderValue(answer.head, "Content-Type");
  close(fd);
  return answer;
}

}  // namespace cairn::tests
