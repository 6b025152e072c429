#include "master/resources.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace cairn::master {
namespace {

using v1::MesosValue;
using v1::Resource;

// Keeps fixed-point arithmetic far from int64 overflow.
constexpr double kMaxScalar = 1e15;

// Scalars are compared and stored in thousandths.
int64_t Millis(double value) { return std::llround(value * 1000.0); }

std::string FormatScalar(double value) {
  int64_t millis = Millis(value);
  if (millis % 1000 == 0) return absl::StrCat(millis / 1000);
  std::string s = absl::StrFormat("%.3f", value);
  while (!s.empty() && s.back() == '0') s.pop_back();
  return s;
}

using RangeList = std::vector<std::pair<uint64_t, uint64_t>>;

RangeList ToList(const MesosValue::Ranges& ranges) {
  RangeList list;
  for (const auto& r : ranges.range()) list.emplace_back(r.begin(), r.end());
  return list;
}

// Sorts and merges overlapping or adjacent ranges.
RangeList Canonical(RangeList list) {
  std::sort(list.begin(), list.end());
  RangeList out;
  for (const auto& r : list) {
    if (!out.empty() &&
        (out.back().second == UINT64_MAX || r.first <= out.back().second + 1)) {
      out.back().second = std::max(out.back().second, r.second);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

void FromList(const RangeList& list, MesosValue::Ranges* ranges) {
  ranges->Clear();
  for (const auto& [begin, end] : list) {
    auto* r = ranges->add_range();
    r->set_begin(begin);
    r->set_end(end);
  }
}

// REQUIRES: both canonical.
RangeList Subtract(const RangeList& a, const RangeList& b) {
  RangeList out;
  for (auto [begin, end] : a) {
    bool gone = false;
    for (const auto& [b_begin, b_end] : b) {
      if (b_end < begin || b_begin > end) continue;
      if (b_begin > begin) out.emplace_back(begin, b_begin - 1);
      if (b_end >= end) {
        gone = true;
        break;
      }
      begin = b_end + 1;
    }
    if (!gone) out.emplace_back(begin, end);
  }
  return out;
}

// REQUIRES: both canonical.
bool ContainsRanges(const RangeList& a, const RangeList& b) {
  for (const auto& [b_begin, b_end] : b) {
    bool covered = false;
    for (const auto& [a_begin, a_end] : a) {
      if (a_begin <= b_begin && b_end <= a_end) {
        covered = true;
        break;
      }
    }
    if (!covered) return false;
  }
  return true;
}

bool IsEmptyValue(const Resource& r) {
  switch (r.type()) {
    case MesosValue::SCALAR:
      return Millis(r.scalar().value()) == 0;
    case MesosValue::RANGES:
      return r.ranges().range_size() == 0;
    case MesosValue::SET:
      return r.set().item_size() == 0;
    default:
      return true;
  }
}

std::string Describe(const Resource& r) {
  auto parsed = Resources::FromProto(r);
  return parsed.ok() ? parsed->ToString() : r.name();
}

// The role part of a resource's text form ("" when unreserved).
std::string RolePart(const Resource& r) {
  std::string out;
  if (r.has_allocation_info()) {
    absl::StrAppend(&out, "(allocated: ", r.allocation_info().role(), ")");
  }
  if (r.reservations_size() == 1 &&
      r.reservations(0).type() == Resource::ReservationInfo::STATIC &&
      !r.reservations(0).has_principal() && !r.reservations(0).has_labels()) {
    absl::StrAppend(&out, "(", r.reservations(0).role(), ")");
  } else if (r.reservations_size() > 0) {
    std::vector<std::string> parts;
    for (const auto& res : r.reservations()) {
      parts.push_back(absl::StrCat(
          "(", Resource::ReservationInfo::Type_Name(res.type()), ",",
          res.role(), res.has_principal() ? "," : "", res.principal(), ")"));
    }
    absl::StrAppend(&out, "(reservations: [", absl::StrJoin(parts, ","), "])");
  }
  if (r.has_disk()) absl::StrAppend(&out, "[disk]");
  if (r.has_revocable()) absl::StrAppend(&out, "{REV}");
  if (r.has_shared()) absl::StrAppend(&out, "<SHARED>");
  return out;
}

std::string ValueText(const Resource& r) {
  switch (r.type()) {
    case MesosValue::SCALAR:
      return FormatScalar(r.scalar().value());
    case MesosValue::RANGES:
      return RangesToString(r.ranges());
    case MesosValue::SET:
      return SetToString(r.set());
    default:
      return "";
  }
}

absl::Status ParseError(absl::string_view part, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad resource '", part, "': ", why));
}

absl::StatusOr<uint64_t> ParseUint(absl::string_view part,
                                   absl::string_view text) {
  uint64_t value;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &value)) {
    return ParseError(part, absl::StrCat("'", text, "' is not a number"));
  }
  return value;
}

}  // namespace

double RoundScalar(double value) {
  return static_cast<double>(Millis(value)) / 1000.0;
}

std::string RangesToString(const MesosValue::Ranges& ranges) {
  std::vector<std::string> parts;
  for (const auto& r : ranges.range()) {
    parts.push_back(absl::StrCat(r.begin(), "-", r.end()));
  }
  return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
}

std::string SetToString(const MesosValue::Set& set) {
  return absl::StrCat("{", absl::StrJoin(set.item(), ","), "}");
}

absl::StatusOr<Resource> NormalizeResource(const Resource& in) {
  Resource r = in;
  if (r.name().empty()) {
    return absl::InvalidArgumentError("resource without a name");
  }
  if (!r.has_type()) {
    return absl::InvalidArgumentError(
        absl::StrCat("resource '", r.name(), "' without a type"));
  }
  switch (r.type()) {
    case MesosValue::SCALAR:
      if (!r.has_scalar() || !std::isfinite(r.scalar().value()) ||
          r.scalar().value() < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "resource '", r.name(), "' needs a finite scalar >= 0"));
      }
      if (r.scalar().value() > kMaxScalar) {
        return absl::InvalidArgumentError(
            absl::StrCat("resource '", r.name(), "' is too large"));
      }
      r.mutable_scalar()->set_value(RoundScalar(r.scalar().value()));
      r.clear_ranges();
      r.clear_set();
      break;
    case MesosValue::RANGES: {
      if (!r.has_ranges()) {
        return absl::InvalidArgumentError(
            absl::StrCat("resource '", r.name(), "' needs ranges"));
      }
      for (const auto& range : r.ranges().range()) {
        if (range.begin() > range.end()) {
          return absl::InvalidArgumentError(
              absl::StrCat("resource '", r.name(), "' has range ",
                           range.begin(), "-", range.end()));
        }
      }
      FromList(Canonical(ToList(r.ranges())), r.mutable_ranges());
      r.clear_scalar();
      r.clear_set();
      break;
    }
    case MesosValue::SET: {
      if (!r.has_set()) {
        return absl::InvalidArgumentError(
            absl::StrCat("resource '", r.name(), "' needs a set"));
      }
      std::set<std::string> items(r.set().item().begin(), r.set().item().end());
      r.mutable_set()->clear_item();
      for (const auto& item : items) r.mutable_set()->add_item(item);
      r.clear_scalar();
      r.clear_ranges();
      break;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("resource '", r.name(), "' has unsupported type ",
                       MesosValue::Type_Name(r.type())));
  }
    // Pre-refinement `role` / `reservation` -> `reservations`.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  if (r.has_role() && r.role() != "*" && r.reservations_size() == 0) {
    auto* res = r.add_reservations();
    res->set_role(r.role());
    if (r.has_reservation()) {
      res->set_type(Resource::ReservationInfo::DYNAMIC);
      if (r.reservation().has_principal()) {
        res->set_principal(r.reservation().principal());
      }
      if (r.reservation().has_labels()) {
        *res->mutable_labels() = r.reservation().labels();
      }
    } else {
      res->set_type(Resource::ReservationInfo::STATIC);
    }
  }
  r.clear_role();
  r.clear_reservation();
#pragma GCC diagnostic pop
  for (const auto& res : r.reservations()) {
    if (res.role().empty() || res.role() == "*") {
      return absl::InvalidArgumentError(
          absl::StrCat("resource '", r.name(), "' reserved for no role"));
    }
  }
  return r;
}

std::string Resources::GroupKey(const Resource& resource) {
  // Everything but the value, in a fixed order. Sub-messages that are rare
  // (labels, disk, provider) go in serialized deterministically.
  auto serialize = [](const google::protobuf::MessageLite& m) {
    std::string bytes;
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m.SerializePartialToCodedStream(&coded);
    coded.Trim();
    return bytes;
  };
  std::string key = absl::StrCat(resource.name(), std::string(1, '\0'),
                                 static_cast<int>(resource.type()));
  if (resource.has_allocation_info()) {
    const std::string& role = resource.allocation_info().role();
    absl::StrAppend(&key, "|a:", role.size(), ":", role);
  }
  for (const auto& res : resource.reservations()) {
    absl::StrAppend(&key, "|r:", static_cast<int>(res.type()), ",",
                    res.role().size(), ":", res.role(), ",",
                    res.has_principal() ? 1 : 0, res.principal().size(), ":",
                    res.principal());
    if (res.has_labels()) absl::StrAppend(&key, ",l:", serialize(res.labels()));
  }
  if (resource.has_disk())
    absl::StrAppend(&key, "|d:", serialize(resource.disk()));
  if (resource.has_revocable()) absl::StrAppend(&key, "|rev");
  if (resource.has_shared()) absl::StrAppend(&key, "|sh");
  return key;
}

absl::StatusOr<Resources> Resources::FromProto(
    const google::protobuf::RepeatedPtrField<Resource>& resources) {
  Resources out;
  std::map<std::string, MesosValue::Type> types;
  for (const auto& in : resources) {
    absl::StatusOr<Resource> r = NormalizeResource(in);
    if (!r.ok()) return r.status();
    auto [it, inserted] = types.emplace(r->name(), r->type());
    if (!inserted && it->second != r->type()) {
      return absl::InvalidArgumentError(
          absl::StrCat("resource '", r->name(), "' has two types"));
    }
    out.Add(*r);
  }
  return out;
}

absl::StatusOr<Resources> Resources::FromProto(const Resource& resource) {
  google::protobuf::RepeatedPtrField<Resource> one;
  *one.Add() = resource;
  return FromProto(one);
}

absl::StatusOr<Resources> Resources::Parse(absl::string_view text) {
  google::protobuf::RepeatedPtrField<Resource> list;
  for (absl::string_view raw : absl::StrSplit(text, ';', absl::SkipEmpty())) {
    absl::string_view part = absl::StripAsciiWhitespace(raw);
    if (part.empty()) continue;
    size_t colon = part.find(':');
    if (colon == absl::string_view::npos) {
      return ParseError(part, "expected name:value");
    }
    absl::string_view head = absl::StripAsciiWhitespace(part.substr(0, colon));
    absl::string_view value =
        absl::StripAsciiWhitespace(part.substr(colon + 1));
    absl::string_view name = head;
    std::string role = "*";
    size_t paren = head.find('(');
    if (paren != absl::string_view::npos) {
      if (head.back() != ')') return ParseError(part, "unclosed '('");
      name = absl::StripAsciiWhitespace(head.substr(0, paren));
      role = std::string(absl::StripAsciiWhitespace(
          head.substr(paren + 1, head.size() - paren - 2)));
      if (role.empty() || role.find_first_of("() ,") != std::string::npos) {
        return ParseError(part, "bad role");
      }
    }
    if (name.empty()) return ParseError(part, "no name");
    if (value.empty()) return ParseError(part, "no value");

    Resource* r = list.Add();
    r->set_name(std::string(name));
    if (role != "*") {
      auto* res = r->add_reservations();
      res->set_type(Resource::ReservationInfo::STATIC);
      res->set_role(role);
    }
    if (value.front() == '[') {
      if (value.back() != ']') return ParseError(part, "unclosed '['");
      r->set_type(MesosValue::RANGES);
      auto* ranges = r->mutable_ranges();
      absl::string_view inner = value.substr(1, value.size() - 2);
      for (absl::string_view piece : absl::StrSplit(inner, ',')) {
        piece = absl::StripAsciiWhitespace(piece);
        if (piece.empty()) {
          if (absl::StripAsciiWhitespace(inner).empty()) break;
          return ParseError(part, "empty range");
        }
        size_t dash = piece.find('-');
        if (dash == absl::string_view::npos) {
          return ParseError(part, "range needs begin-end");
        }
        auto begin = ParseUint(part, piece.substr(0, dash));
        if (!begin.ok()) return begin.status();
        auto end = ParseUint(part, piece.substr(dash + 1));
        if (!end.ok()) return end.status();
        if (*begin > *end) return ParseError(part, "range begin > end");
        auto* range = ranges->add_range();
        range->set_begin(*begin);
        range->set_end(*end);
      }
    } else if (value.front() == '{') {
      if (value.back() != '}') return ParseError(part, "unclosed '{'");
      r->set_type(MesosValue::SET);
      auto* set = r->mutable_set();
      absl::string_view inner = value.substr(1, value.size() - 2);
      if (!absl::StripAsciiWhitespace(inner).empty()) {
        for (absl::string_view item : absl::StrSplit(inner, ',')) {
          item = absl::StripAsciiWhitespace(item);
          if (item.empty()) return ParseError(part, "empty set item");
          set->add_item(std::string(item));
        }
      }
    } else {
      double scalar;
      if (!absl::SimpleAtod(value, &scalar) || !std::isfinite(scalar)) {
        return ParseError(part, "not a number");
      }
      if (scalar < 0) return ParseError(part, "negative");
      r->set_type(MesosValue::SCALAR);
      r->mutable_scalar()->set_value(scalar);
    }
  }
  return FromProto(list);
}

void Resources::Add(const Resource& resource) {
  if (IsEmptyValue(resource)) return;
  Add(GroupKey(resource), resource);
}

void Resources::Add(const std::string& key, const Resource& resource) {
  auto it = groups_.find(key);
  if (it == groups_.end()) {
    groups_.emplace(key, resource);
    return;
  }
  Resource& r = it->second;
  switch (r.type()) {
    case MesosValue::SCALAR:
      r.mutable_scalar()->set_value(
          RoundScalar(r.scalar().value() + resource.scalar().value()));
      break;
    case MesosValue::RANGES: {
      RangeList list = ToList(r.ranges());
      RangeList more = ToList(resource.ranges());
      list.insert(list.end(), more.begin(), more.end());
      FromList(Canonical(std::move(list)), r.mutable_ranges());
      break;
    }
    case MesosValue::SET: {
      std::set<std::string> items(r.set().item().begin(), r.set().item().end());
      items.insert(resource.set().item().begin(), resource.set().item().end());
      r.mutable_set()->clear_item();
      for (const auto& item : items) r.mutable_set()->add_item(item);
      break;
    }
    default:
      break;
  }
}

std::vector<Resource> Resources::ToProto() const {
  std::vector<Resource> out;
  out.reserve(groups_.size());
  for (const auto& [key, r] : groups_) out.push_back(r);
  return out;
}

void Resources::ToProto(
    google::protobuf::RepeatedPtrField<Resource>* out) const {
  out->Clear();
  for (const auto& [key, r] : groups_) *out->Add() = r;
}

bool Resources::Contains(const Resources& other) const {
  for (const auto& [key, theirs] : other.groups_) {
    auto it = groups_.find(key);
    if (it == groups_.end()) return false;
    const Resource& ours = it->second;
    switch (ours.type()) {
      case MesosValue::SCALAR:
        if (Millis(ours.scalar().value()) < Millis(theirs.scalar().value())) {
          return false;
        }
        break;
      case MesosValue::RANGES:
        if (!ContainsRanges(ToList(ours.ranges()), ToList(theirs.ranges()))) {
          return false;
        }
        break;
      case MesosValue::SET: {
        std::set<std::string> items(ours.set().item().begin(),
                                    ours.set().item().end());
        for (const auto& item : theirs.set().item()) {
          if (items.count(item) == 0) return false;
        }
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

Resources& Resources::operator+=(const Resources& other) {
  for (const auto& [key, r] : other.groups_) Add(key, r);
  return *this;
}

Resources& Resources::operator-=(const Resources& other) {
  for (const auto& [key, theirs] : other.groups_) {
    auto it = groups_.find(key);
    if (it == groups_.end()) continue;
    Resource& ours = it->second;
    switch (ours.type()) {
      case MesosValue::SCALAR:
        ours.mutable_scalar()->set_value(RoundScalar(
            std::max<int64_t>(0, Millis(ours.scalar().value()) -
                                     Millis(theirs.scalar().value())) /
            1000.0));
        break;
      case MesosValue::RANGES:
        FromList(Subtract(ToList(ours.ranges()), ToList(theirs.ranges())),
                 ours.mutable_ranges());
        break;
      case MesosValue::SET: {
        std::set<std::string> items(ours.set().item().begin(),
                                    ours.set().item().end());
        for (const auto& item : theirs.set().item()) items.erase(item);
        ours.mutable_set()->clear_item();
        for (const auto& item : items) ours.mutable_set()->add_item(item);
        break;
      }
      default:
        break;
    }
    if (IsEmptyValue(ours)) groups_.erase(it);
  }
  return *this;
}

bool operator==(const Resources& a, const Resources& b) {
  if (a.groups_.size() != b.groups_.size()) return false;
  return a.Contains(b) && b.Contains(a);
}

Resources Resources::WithoutAllocationInfo() const {
  Resources out;
  for (const auto& [key, r] : groups_) {
    if (!r.has_allocation_info()) {
      out.Add(key, r);
      continue;
    }
    Resource copy = r;
    copy.clear_allocation_info();
    out.Add(copy);
  }
  return out;
}

Resources Resources::AllocatedTo(absl::string_view role) const {
  Resources out;
  for (const auto& [key, r] : groups_) {
    Resource copy = r;
    copy.mutable_allocation_info()->set_role(std::string(role));
    out.Add(copy);
  }
  return out;
}

Resources Resources::Unreserved() const {
  Resources out;
  for (const auto& [key, r] : groups_) {
    if (r.reservations_size() == 0) out.groups_.emplace(key, r);
  }
  return out;
}

Resources Resources::ReservedTo(absl::string_view role) const {
  Resources out;
  for (const auto& [key, r] : groups_) {
    if (r.reservations_size() > 0 &&
        r.reservations(r.reservations_size() - 1).role() == role) {
      out.groups_.emplace(key, r);
    }
  }
  return out;
}

absl::StatusOr<Resources> Resources::PopReservation() const {
  Resources out;
  for (const auto& [key, r] : groups_) {
    if (r.reservations_size() == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("resource '", Describe(r), "' is not reserved"));
    }
    Resource copy = r;
    copy.mutable_reservations()->RemoveLast();
    out.Add(copy);
  }
  return out;
}

double Resources::ScalarSum(absl::string_view name) const {
  int64_t millis = 0;
  for (const auto& [key, r] : groups_) {
    if (r.name() == name && r.type() == MesosValue::SCALAR) {
      millis += Millis(r.scalar().value());
    }
  }
  return static_cast<double>(millis) / 1000.0;
}

std::string Resources::ToString() const {
  std::vector<std::string> parts;
  for (const auto& [key, r] : groups_) {
    parts.push_back(absl::StrCat(r.name(), RolePart(r), ":", ValueText(r)));
  }
  return absl::StrJoin(parts, ";");
}

std::string Resources::ToFlattenedJson() const {
  // Sum every group of a name, whatever its reservation or allocation.
  std::map<std::string, Resource> by_name;
  for (const auto& [key, r] : groups_) {
    Resource bare;
    bare.set_name(r.name());
    bare.set_type(r.type());
    *bare.mutable_scalar() = r.scalar();
    *bare.mutable_ranges() = r.ranges();
    *bare.mutable_set() = r.set();
    auto it = by_name.find(r.name());
    if (it == by_name.end()) {
      by_name.emplace(r.name(), bare);
      continue;
    }
    Resources sum;
    sum.Add(it->second);
    sum.Add(bare);
    it->second = sum.groups_.begin()->second;
  }
  std::vector<std::string> parts;
  for (const auto& [name, r] : by_name) {
    std::string value = ValueText(r);
    if (r.type() != MesosValue::SCALAR) value = absl::StrCat("\"", value, "\"");
    parts.push_back(absl::StrCat("\"", name, "\":", value));
  }
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

}  // namespace cairn::master
