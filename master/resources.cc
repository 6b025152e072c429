#include "master/resources.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
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

namespace {

// NormalizeResource, in place (`r` is unspecified on error).
absl::Status NormalizeInPlace(Resource& r) {
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
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Resource> NormalizeResource(const Resource& in) {
  Resource r = in;
  if (absl::Status s = NormalizeInPlace(r); !s.ok()) return s;
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

// Normalizing a resource copies it and builds its group key: most of the
// cost of FromProto. A master sees the same few resources over and over
// ("cpus:1 allocated to web" in every offer and task), so each thread keeps
// the groups of the last resources it normalized, keyed by their serialized
// bytes: equal bytes are equal messages, hence equal groups, and a Kind is
// immutable, so sharing it changes no result.
class Resources::GroupCache {
 public:
  static GroupCache& ForThisThread() {
    thread_local GroupCache cache;
    return cache;
  }

  // The group of `resource` if cached, else nullptr (then Insert() may
  // follow, for the same resource).
  const Group* Find(const Resource& resource) {
    bytes_.clear();
    if (!resource.AppendPartialToString(&bytes_)) {
      bytes_.clear();  // never Insert()ed
      return nullptr;
    }
    auto it = groups_.find(bytes_);
    return it == groups_.end() ? nullptr : &it->second;
  }

  // REQUIRES: the last Find() returned nullptr, and `group` is what
  // FromProto makes of that resource (normalized, not empty).
  void Insert(const Group& group) {
    if (bytes_.empty()) return;
    if (groups_.size() >= kMaxEntries) groups_.clear();
    groups_.emplace(bytes_, group);
  }

 private:
  static constexpr size_t kMaxEntries = 1024;
  absl::flat_hash_map<std::string, Group> groups_;
  std::string bytes_;  // the last Find()'s resource, serialized
};

absl::StatusOr<Resources> Resources::FromProto(
    const google::protobuf::RepeatedPtrField<Resource>& resources) {
  Resources out;
  GroupCache& cache = GroupCache::ForThisThread();
  // Name -> type of the resources seen so far (lists are short).
  absl::InlinedVector<std::pair<absl::string_view, MesosValue::Type>, 4> types;
  auto check_type = [&types](const Resource& r) {
    auto it = std::find_if(types.begin(), types.end(),
                           [&](const auto& t) { return t.first == r.name(); });
    if (it == types.end()) {
      types.emplace_back(r.name(), r.type());
    } else if (it->second != r.type()) {
      return absl::InvalidArgumentError(
          absl::StrCat("resource '", r.name(), "' has two types"));
    }
    return absl::OkStatus();
  };
  for (const auto& in : resources) {
    if (const Group* cached = cache.Find(in); cached != nullptr) {
      if (absl::Status s = check_type(cached->kind->proto); !s.ok()) return s;
      out.Add(*cached);
      continue;
    }
    Resource r = in;
    if (absl::Status s = NormalizeInPlace(r); !s.ok()) return s;
    if (absl::Status s = check_type(in); !s.ok()) return s;
    if (IsEmptyValue(r)) continue;
    Group group = MakeGroup(std::move(r));
    cache.Insert(group);
    out.Add(std::move(group));
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

Resources::Group Resources::MakeGroup(Resource resource) {
  Group group;
  switch (resource.type()) {
    case MesosValue::SCALAR:
      group.scalar = resource.scalar().value();
      break;
    case MesosValue::RANGES:
      group.ranges = ToList(resource.ranges());
      resource.clear_ranges();
      break;
    case MesosValue::SET:
      group.items.assign(resource.set().item().begin(),
                         resource.set().item().end());
      resource.mutable_set()->clear_item();
      break;
    default:
      break;
  }
  std::string key = GroupKey(resource);
  group.kind =
      std::make_shared<const Kind>(std::move(key), std::move(resource));
  return group;
}

bool Resources::Group::IsEmpty() const {
  switch (type()) {
    case MesosValue::SCALAR:
      return Millis(scalar) == 0;
    case MesosValue::RANGES:
      return ranges.empty();
    case MesosValue::SET:
      return items.empty();
    default:
      return true;
  }
}

Resource Resources::Group::ToProto() const {
  Resource r = kind->proto;
  switch (type()) {
    case MesosValue::SCALAR:
      r.mutable_scalar()->set_value(scalar);
      break;
    case MesosValue::RANGES:
      FromList(ranges, r.mutable_ranges());
      break;
    case MesosValue::SET:
      for (const auto& item : items) r.mutable_set()->add_item(item);
      break;
    default:
      break;
  }
  return r;
}

namespace {

template <typename Groups>
auto LowerBound(Groups& groups, const std::string& key) {
  return std::lower_bound(
      groups.begin(), groups.end(), key,
      [](const auto& group, const std::string& k) { return group.key() < k; });
}

// Where the group of `group`'s key is, or would go, in `groups`. Groups
// that share `group`'s Kind (the common case: FromProto's cache and the
// stripped kinds share them) are found by pointer, without comparing keys.
template <typename Groups, typename Group>
auto Position(Groups& groups, const Group& group) {
  if (groups.size() <= 8) {
    for (auto it = groups.begin(); it != groups.end(); ++it) {
      if (it->kind == group.kind) return it;
    }
  }
  return LowerBound(groups, group.key());
}

// True iff `it` (from Position) is `group`'s group.
template <typename Groups, typename Iterator, typename Group>
bool IsAt(const Groups& groups, Iterator it, const Group& group) {
  return it != groups.end() &&
         (it->kind == group.kind || it->key() == group.key());
}

}  // namespace

void Resources::Add(const Group& group) {
  auto it = Position(groups_, group);
  if (!IsAt(groups_, it, group)) {
    groups_.insert(it, group);
    return;
  }
  AddValue(group, &*it);
}

void Resources::Add(Group&& group) {
  auto it = Position(groups_, group);
  if (!IsAt(groups_, it, group)) {
    groups_.insert(it, std::move(group));
    return;
  }
  AddValue(group, &*it);
}

void Resources::AddValue(const Group& group, Group* to) {
  Group& g = *to;
  switch (g.type()) {
    case MesosValue::SCALAR:
      g.scalar = RoundScalar(g.scalar + group.scalar);
      break;
    case MesosValue::RANGES: {
      RangeList list = g.ranges;
      list.insert(list.end(), group.ranges.begin(), group.ranges.end());
      g.ranges = Canonical(std::move(list));
      break;
    }
    case MesosValue::SET: {
      std::vector<std::string> items;
      items.reserve(g.items.size() + group.items.size());
      std::set_union(g.items.begin(), g.items.end(), group.items.begin(),
                     group.items.end(), std::back_inserter(items));
      g.items = std::move(items);
      break;
    }
    default:
      break;
  }
}

std::vector<Resource> Resources::ToProto() const {
  std::vector<Resource> out;
  out.reserve(groups_.size());
  for (const Group& g : groups_) out.push_back(g.ToProto());
  return out;
}

void Resources::ToProto(
    google::protobuf::RepeatedPtrField<Resource>* out) const {
  out->Clear();
  out->Reserve(int(groups_.size()));
  for (const Group& g : groups_) *out->Add() = g.ToProto();
}

bool Resources::Contains(const Resources& other) const {
  for (const Group& theirs : other.groups_) {
    auto it = Position(groups_, theirs);
    if (!IsAt(groups_, it, theirs)) return false;
    const Group* ours = &*it;
    switch (ours->type()) {
      case MesosValue::SCALAR:
        if (Millis(ours->scalar) < Millis(theirs.scalar)) return false;
        break;
      case MesosValue::RANGES:
        if (!ContainsRanges(ours->ranges, theirs.ranges)) return false;
        break;
      case MesosValue::SET:
        for (const auto& item : theirs.items) {
          if (!std::binary_search(ours->items.begin(), ours->items.end(),
                                  item)) {
            return false;
          }
        }
        break;
      default:
        return false;
    }
  }
  return true;
}

Resources& Resources::operator+=(const Resources& other) {
  for (const Group& g : other.groups_) Add(g);
  return *this;
}

Resources& Resources::operator-=(const Resources& other) {
  if (&other == this) {
    groups_.clear();
    return *this;
  }
  for (const Group& theirs : other.groups_) {
    auto it = Position(groups_, theirs);
    if (!IsAt(groups_, it, theirs)) continue;
    Group& ours = *it;
    switch (ours.type()) {
      case MesosValue::SCALAR:
        ours.scalar = RoundScalar(
            std::max<int64_t>(0, Millis(ours.scalar) - Millis(theirs.scalar)) /
            1000.0);
        break;
      case MesosValue::RANGES:
        ours.ranges = Subtract(ours.ranges, theirs.ranges);
        break;
      case MesosValue::SET: {
        std::vector<std::string> items;
        std::set_difference(ours.items.begin(), ours.items.end(),
                            theirs.items.begin(), theirs.items.end(),
                            std::back_inserter(items));
        ours.items = std::move(items);
        break;
      }
      default:
        break;
    }
    if (ours.IsEmpty()) groups_.erase(it);
  }
  return *this;
}

bool operator==(const Resources& a, const Resources& b) {
  if (a.groups_.size() != b.groups_.size()) return false;
  return a.Contains(b) && b.Contains(a);
}

const std::shared_ptr<const Resources::Kind>&
Resources::Kind::WithoutAllocationInfo() const {
  absl::call_once(stripped_once_, [this] {
    Resource copy = proto;
    copy.clear_allocation_info();
    std::string stripped_key = GroupKey(copy);
    stripped_ =
        std::make_shared<const Kind>(std::move(stripped_key), std::move(copy));
  });
  return stripped_;
}

Resources Resources::WithoutAllocationInfo() const {
  Resources out;
  for (const Group& g : groups_) {
    if (!g.kind->proto.has_allocation_info()) {
      out.Add(g);
      continue;
    }
    Group stripped = g;
    stripped.kind = g.kind->WithoutAllocationInfo();
    out.Add(std::move(stripped));
  }
  return out;
}

Resources Resources::AllocatedTo(absl::string_view role) const {
  Resources out;
  for (const Group& g : groups_) {
    Resource copy = g.kind->proto;
    copy.mutable_allocation_info()->set_role(std::string(role));
    Group allocated = g;
    std::string key = GroupKey(copy);
    allocated.kind =
        std::make_shared<const Kind>(std::move(key), std::move(copy));
    out.Add(std::move(allocated));
  }
  return out;
}

Resources Resources::Unreserved() const {
  Resources out;
  for (const Group& g : groups_) {
    if (g.kind->proto.reservations_size() == 0) out.groups_.push_back(g);
  }
  return out;
}

Resources Resources::ReservedTo(absl::string_view role) const {
  Resources out;
  for (const Group& g : groups_) {
    const Resource& r = g.kind->proto;
    if (r.reservations_size() > 0 &&
        r.reservations(r.reservations_size() - 1).role() == role) {
      out.groups_.push_back(g);
    }
  }
  return out;
}

absl::StatusOr<Resources> Resources::PopReservation() const {
  Resources out;
  for (const Group& g : groups_) {
    if (g.kind->proto.reservations_size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "resource '", Describe(g.ToProto()), "' is not reserved"));
    }
    Resource copy = g.kind->proto;
    copy.mutable_reservations()->RemoveLast();
    Group popped = g;
    std::string key = GroupKey(copy);
    popped.kind = std::make_shared<const Kind>(std::move(key), std::move(copy));
    out.Add(std::move(popped));
  }
  return out;
}

double Resources::ScalarSum(absl::string_view name) const {
  int64_t millis = 0;
  for (const Group& g : groups_) {
    if (g.type() == MesosValue::SCALAR && g.kind->proto.name() == name) {
      millis += Millis(g.scalar);
    }
  }
  return static_cast<double>(millis) / 1000.0;
}

std::string Resources::ToString() const {
  std::vector<std::string> parts;
  for (const Group& g : groups_) {
    Resource r = g.ToProto();
    parts.push_back(absl::StrCat(r.name(), RolePart(r), ":", ValueText(r)));
  }
  return absl::StrJoin(parts, ";");
}

std::string Resources::ToFlattenedJson() const {
  // Sum every group of a name, whatever its reservation or allocation.
  std::map<std::string, Resource> by_name;
  for (const Group& g : groups_) {
    Resource r = g.ToProto();
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
    for (const Resource* part : {&it->second, &bare}) {
      if (!IsEmptyValue(*part)) sum.Add(MakeGroup(*part));
    }
    it->second = sum.groups_.begin()->ToProto();
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
