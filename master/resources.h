// Resources: a bag of Mesos resources with arithmetic (add, subtract,
// contains), as the master's fold and the allocator count them.
//
// A Resources value is canonical: resources are grouped by everything but
// their value (name, type, reservations, allocation role, disk, revocable,
// shared), one entry per group, sorted by name and then by that group key.
// Within a group, scalars are summed (fixed point, 3 decimal places, like
// Mesos), ranges are sorted and merged ([1-2] + [3-4] = [1-4]), sets are
// unions. Empty groups (0, no ranges, no items) are dropped. So two
// Resources holding the same amounts compare equal and print the same.
//
// Resources in Mesos's pre-refinement format (`role`, `reservation`) are
// converted to the post-refinement format (`reservations`) on the way in.
//
// Thread safety: a value type. Copies share only immutable, reference-
// counted group descriptions (see Kind below), so distinct Resources values
// may be used from different threads; FromProto's cache is per thread.

#ifndef CAIRN_MASTER_RESOURCES_H_
#define CAIRN_MASTER_RESOURCES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cairn/v1/mesos.pb.h"
#include "google/protobuf/repeated_field.h"

namespace cairn::master {

class Resources {
 public:
  Resources() = default;

  // Validates and canonicalizes. Returns kInvalidArgument for a resource
  // with no name, a type other than SCALAR/RANGES/SET, a missing, negative
  // or non-finite value, a range whose begin > end, or two resources of the
  // same name with different types.
  static absl::StatusOr<Resources> FromProto(
      const google::protobuf::RepeatedPtrField<v1::Resource>& resources);
  static absl::StatusOr<Resources> FromProto(const v1::Resource& resource);

  // Parses Mesos's text form: `name[(role)]:value` separated by ';', where a
  // value is a scalar (`4`, `0.5`), ranges (`[31000-32000, 33000-33001]`) or
  // a set (`{a,b}`). A role other than `*` is a static reservation.
  // Example: "cpus:4;mem:4096;ports:[31000-32000];cpus(ads):2".
  // Returns kInvalidArgument with the offending part on a syntax error.
  static absl::StatusOr<Resources> Parse(absl::string_view text);

  // The canonical resources, in canonical order.
  std::vector<v1::Resource> ToProto() const;
  void ToProto(google::protobuf::RepeatedPtrField<v1::Resource>* out) const;

  bool empty() const { return groups_.empty(); }
  size_t size() const { return groups_.size(); }

  // True iff every group of `other` is covered by the same group here.
  bool Contains(const Resources& other) const;

  Resources& operator+=(const Resources& other);
  // Subtracts what is there: a group never goes below empty (saturating).
  // Use Contains() first when a shortfall is an error.
  Resources& operator-=(const Resources& other);
  friend Resources operator+(Resources a, const Resources& b) { return a += b; }
  friend Resources operator-(Resources a, const Resources& b) { return a -= b; }
  friend bool operator==(const Resources& a, const Resources& b);
  friend bool operator!=(const Resources& a, const Resources& b) {
    return !(a == b);
  }

  // The same resources with `allocation_info` cleared (how an agent's totals
  // count offered and used resources).
  Resources WithoutAllocationInfo() const;
  // The same resources allocated to `role`.
  Resources AllocatedTo(absl::string_view role) const;
  // Only the resources with no reservation.
  Resources Unreserved() const;
  // Only the resources whose current (last) reservation is for `role`.
  Resources ReservedTo(absl::string_view role) const;
  // Every resource with its last reservation removed. Returns
  // kInvalidArgument if one of them is not reserved.
  absl::StatusOr<Resources> PopReservation() const;

  // Sum of the scalar resources called `name` across all groups (0 if none).
  double ScalarSum(absl::string_view name) const;

  // Mesos-like text: "cpus:4;mem:4096;ports:[31000-32000];cpus(ads):2".
  // Parse(ToString()) round-trips unreserved and single static reservations;
  // other groups print their reservations and allocation for reading only.
  std::string ToString() const;

  // Mesos's "flattened" form used by /master/state: one entry per name,
  // summed over roles; scalars as JSON numbers, ranges and sets as strings:
  // {"cpus":4,"mem":4096,"ports":"[31000-31005, 31010-31010]"}.
  std::string ToFlattenedJson() const;

 private:
  // What identifies a group: the canonical resource of the first member
  // with its value cleared, and the key derived from it. Immutable and
  // shared by every copy of the group (copying a Resources copies no protos;
  // FromProto shares the Kinds of resources it has seen before, see
  // resources.cc).
  struct Kind {
    Kind(std::string key, v1::Resource proto)
        : key(std::move(key)), proto(std::move(proto)) {}
    // The same kind without allocation info (computed once, thread-safe).
    const std::shared_ptr<const Kind>& WithoutAllocationInfo() const;

    const std::string key;
    // Normalized; its value fields are not used (ranges and set items are
    // cleared, a scalar keeps whatever value the first member had).
    const v1::Resource proto;

   private:
    mutable absl::once_flag stripped_once_;
    mutable std::shared_ptr<const Kind> stripped_;
  };
  // One group: its kind and its value. Only the field matching the kind's
  // type is used; a scalar keeps the exact double the proto would hold.
  struct Group {
    std::shared_ptr<const Kind> kind;
    double scalar = 0;
    std::vector<std::pair<uint64_t, uint64_t>> ranges;  // sorted, merged
    std::vector<std::string> items;                     // sorted, unique

    const std::string& key() const { return kind->key; }
    v1::MesosValue::Type type() const { return kind->proto.type(); }
    bool IsEmpty() const;
    v1::Resource ToProto() const;
  };

  // FromProto's per-thread cache of the groups of resources it normalized
  // (resources.cc).
  class GroupCache;

  static std::string GroupKey(const v1::Resource& resource);
  // A group holding `resource` (REQUIRES: normalized, value not empty).
  static Group MakeGroup(v1::Resource resource);
  // Adds `group`'s value to the group of the same key (or inserts it).
  void Add(const Group& group);
  void Add(Group&& group);
  // REQUIRES: `to` has `group`'s key.
  static void AddValue(const Group& group, Group* to);

  // Sorted by key, keys unique, no empty values. Most values have one or
  // two groups (cpus and mem of a task or offer): those need no allocation.
  absl::InlinedVector<Group, 2> groups_;
};

// Validates one resource and converts it to the post-refinement format.
// Returns kInvalidArgument as FromProto does.
absl::StatusOr<v1::Resource> NormalizeResource(const v1::Resource& resource);

// Fixed-point rounding of scalars (3 decimal places), as Mesos does.
double RoundScalar(double value);

// "[1-2, 5-9]" (Mesos's ranges form) and "{a,b}" (sets).
std::string RangesToString(const v1::MesosValue::Ranges& ranges);
std::string SetToString(const v1::MesosValue::Set& set);

}  // namespace cairn::master

#endif  // CAIRN_MASTER_RESOURCES_H_
