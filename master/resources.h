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
// Thread safety: a value type; no shared state.

#ifndef CAIRN_MASTER_RESOURCES_H_
#define CAIRN_MASTER_RESOURCES_H_

#include <map>
#include <string>
#include <vector>

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
  static std::string GroupKey(const v1::Resource& resource);
  // REQUIRES: `resource` is normalized; `key` is its GroupKey().
  void Add(const std::string& key, const v1::Resource& resource);
  void Add(const v1::Resource& resource);

  // Group key -> canonical resource of that group (non-empty).
  std::map<std::string, v1::Resource> groups_;
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
