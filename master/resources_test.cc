#include "master/resources.h"

#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace cairn::master {
namespace {

Resources R(const std::string& text) {
  absl::StatusOr<Resources> r = Resources::Parse(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status();
  return r.ok() ? *r : Resources();
}

TEST(ResourcesTest, ParsesScalarsRangesSetsAndRoles) {
  Resources r =
      R("cpus:4;mem:4096;ports:[31000-32000];cpus(ads):2;disks:{a,b}");
  EXPECT_EQ(r.size(), 5u);
  EXPECT_DOUBLE_EQ(r.ScalarSum("cpus"), 6);
  EXPECT_DOUBLE_EQ(r.ScalarSum("mem"), 4096);
  EXPECT_EQ(r.ReservedTo("ads").ToString(), "cpus(ads):2");
  EXPECT_EQ(r.Unreserved().ToString(),
            "cpus:4;disks:{a,b};mem:4096;ports:[31000-32000]");
}

TEST(ResourcesTest, ParseOfToStringRoundTrips) {
  Resources r = R(" cpus : 0.5 ; mem:128; ports:[1-5,10-20]; gpus(ml):1 ");
  EXPECT_EQ(R(r.ToString()), r);
  EXPECT_EQ(r.ToString(), "cpus:0.5;gpus(ml):1;mem:128;ports:[1-5, 10-20]");
}

TEST(ResourcesTest, StarRoleIsUnreserved) {
  EXPECT_EQ(R("cpus(*):1"), R("cpus:1"));
}

TEST(ResourcesTest, RejectsMalformedText) {
  for (const char* bad :
       {"cpus", "cpus:", ":4", "cpus:abc", "cpus:-1", "cpus:nan", "ports:[5-1]",
        "ports:[1-2", "ports:[1]", "ports:[a-b]", "ports:[1-2,,3-4]",
        "s:{a,,b}", "s:{a", "cpus(:1", "cpus():1", "cpus(a b):1",
        "cpus:1;cpus:[1-2]"}) {
    absl::StatusOr<Resources> r = Resources::Parse(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ResourcesTest, EmptyTextIsEmptyResources) {
  EXPECT_TRUE(R("").empty());
  EXPECT_TRUE(R(";;").empty());
  EXPECT_TRUE(R("ports:[]").empty());
  EXPECT_TRUE(R("cpus:0").empty());
}

TEST(ResourcesTest, AddsScalarsWithFixedPoint) {
  Resources r;
  for (int i = 0; i < 10; ++i) r += R("cpus:0.1");
  EXPECT_EQ(r, R("cpus:1"));
  EXPECT_EQ(r.ToString(), "cpus:1");
  EXPECT_EQ((r - R("cpus:0.3")).ToString(), "cpus:0.7");
}

TEST(ResourcesTest, MergesAdjacentAndOverlappingRanges) {
  EXPECT_EQ((R("ports:[1-2]") + R("ports:[3-4]")).ToString(), "ports:[1-4]");
  EXPECT_EQ((R("ports:[1-10]") + R("ports:[5-20,30-30]")).ToString(),
            "ports:[1-20, 30-30]");
  EXPECT_EQ(R("ports:[7-9,1-3,4-5]").ToString(), "ports:[1-5, 7-9]");
}

TEST(ResourcesTest, SubtractingRangesSplitsThem) {
  Resources r = R("ports:[31000-32000]") - R("ports:[31100-31199,31500-31500]");
  EXPECT_EQ(r.ToString(), "ports:[31000-31099, 31200-31499, 31501-32000]");
  EXPECT_EQ(r + R("ports:[31100-31199,31500-31500]"), R("ports:[31000-32000]"));
  EXPECT_TRUE((R("ports:[1-5]") - R("ports:[1-5]")).empty());
  EXPECT_EQ((R("ports:[1-5]") - R("ports:[0-1,5-9]")).ToString(),
            "ports:[2-4]");
}

TEST(ResourcesTest, ContainsPerGroup) {
  Resources total = R("cpus:4;mem:1024;ports:[1-100];cpus(ads):1;s:{a,b}");
  EXPECT_TRUE(total.Contains(R("cpus:4;ports:[10-20,30-40];s:{b}")));
  EXPECT_TRUE(total.Contains(R("")));
  EXPECT_FALSE(total.Contains(R("cpus:4.001")));
  EXPECT_FALSE(total.Contains(R("cpus(ads):2")));
  EXPECT_FALSE(total.Contains(R("cpus(other):1")));
  EXPECT_FALSE(total.Contains(R("ports:[100-101]")));
  EXPECT_FALSE(total.Contains(R("s:{c}")));
  EXPECT_FALSE(total.Contains(R("gpus:1")));
}

TEST(ResourcesTest, SubtractionSaturatesAtEmpty) {
  EXPECT_TRUE((R("cpus:1") - R("cpus:2")).empty());
  EXPECT_EQ((R("cpus:1;mem:5") - R("gpus:1;mem:1")).ToString(), "cpus:1;mem:4");
  EXPECT_EQ((R("s:{a,b,c}") - R("s:{b,z}")).ToString(), "s:{a,c}");
}

TEST(ResourcesTest, AllocationInfoSeparatesGroupsUntilStripped) {
  Resources a = R("cpus:1").AllocatedTo("web");
  Resources b = R("cpus:1");
  EXPECT_FALSE(b.Contains(a));
  EXPECT_EQ((a + b).size(), 2u);
  EXPECT_EQ((a + b).WithoutAllocationInfo(), R("cpus:2"));
}

TEST(ResourcesTest, ConvertsPreRefinementRoleToReservations) {
  v1::Resource old;
  old.set_name("cpus");
  old.set_type(v1::MesosValue::SCALAR);
  old.mutable_scalar()->set_value(2);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  old.set_role("ads");
  old.mutable_reservation()->set_principal("ops");
#pragma GCC diagnostic pop
  absl::StatusOr<Resources> r = Resources::FromProto(old);
  ASSERT_TRUE(r.ok()) << r.status();
  v1::Resource out = r->ToProto().at(0);
  ASSERT_EQ(out.reservations_size(), 1);
  EXPECT_EQ(out.reservations(0).type(), v1::Resource::ReservationInfo::DYNAMIC);
  EXPECT_EQ(out.reservations(0).role(), "ads");
  EXPECT_EQ(out.reservations(0).principal(), "ops");
  EXPECT_EQ(r->ReservedTo("ads").ScalarSum("cpus"), 2);
}

TEST(ResourcesTest, FromProtoRejectsInvalidResources) {
  v1::Resource r;
  EXPECT_EQ(Resources::FromProto(r).status().code(),
            absl::StatusCode::kInvalidArgument);  // no name
  r.set_name("cpus");
  EXPECT_EQ(Resources::FromProto(r).status().code(),
            absl::StatusCode::kInvalidArgument);  // no type
  r.set_type(v1::MesosValue::SCALAR);
  EXPECT_EQ(Resources::FromProto(r).status().code(),
            absl::StatusCode::kInvalidArgument);  // no value
  r.mutable_scalar()->set_value(-1);
  EXPECT_EQ(Resources::FromProto(r).status().code(),
            absl::StatusCode::kInvalidArgument);
  r.mutable_scalar()->set_value(1);
  EXPECT_TRUE(Resources::FromProto(r).ok());
  r.set_type(v1::MesosValue::TEXT);
  EXPECT_EQ(Resources::FromProto(r).status().code(),
            absl::StatusCode::kInvalidArgument);
  r.set_type(v1::MesosValue::RANGES);
  auto* range = r.mutable_ranges()->add_range();
  range->set_begin(9);
  range->set_end(3);
  EXPECT_EQ(Resources::FromProto(r).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ResourcesTest, PopReservationUndoesTheLastReservation) {
  v1::Resource r = R("cpus:2").ToProto().at(0);
  auto* res = r.add_reservations();
  res->set_type(v1::Resource::ReservationInfo::DYNAMIC);
  res->set_role("ads");
  res->set_principal("ops");
  absl::StatusOr<Resources> reserved = Resources::FromProto(r);
  ASSERT_TRUE(reserved.ok());
  absl::StatusOr<Resources> popped = reserved->PopReservation();
  ASSERT_TRUE(popped.ok());
  EXPECT_EQ(*popped, R("cpus:2"));
  EXPECT_EQ(R("cpus:1").PopReservation().status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ResourcesTest, FlattenedJsonSumsRolesPerName) {
  Resources r = R("cpus:4;cpus(ads):2;mem:4096;ports:[31000-31005];s:{x}");
  EXPECT_EQ(r.ToFlattenedJson(),
            "{\"cpus\":6,\"mem\":4096,\"ports\":\"[31000-31005]\","
            "\"s\":\"{x}\"}");
  EXPECT_EQ(R("").ToFlattenedJson(), "{}");
}

TEST(ResourcesTest, FromProtoGivesTheSameValueForARepeatedResource) {
  // The second conversion of the same resource is served from FromProto's
  // per-thread cache: it must not be told apart from the first.
  v1::Resource r;
  r.set_name("cpus");
  r.set_type(v1::MesosValue::SCALAR);
  r.mutable_scalar()->set_value(1.23456);
  r.mutable_allocation_info()->set_role("web");
  google::protobuf::RepeatedPtrField<v1::Resource> list;
  *list.Add() = r;
  absl::StatusOr<Resources> first = Resources::FromProto(list);
  absl::StatusOr<Resources> second = Resources::FromProto(list);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, *second);
  ASSERT_EQ(second->ToProto().size(), 1u);
  EXPECT_EQ(second->ToProto()[0].SerializeAsString(),
            first->ToProto()[0].SerializeAsString());
  EXPECT_EQ(second->ToProto()[0].scalar().value(), 1.235);
  EXPECT_EQ(second->WithoutAllocationInfo(), R("cpus:1.235"));
  EXPECT_EQ(*second + *first, R("cpus:2.47").AllocatedTo("web"));
}

TEST(ResourcesTest, FromProtoRejectsTwoTypesOfOneNameEvenWhenCached) {
  google::protobuf::RepeatedPtrField<v1::Resource> list;
  R("cpus:1").ToProto(&list);
  ASSERT_TRUE(Resources::FromProto(list).ok());  // now cached
  v1::Resource* ranges = list.Add();
  ranges->set_name("cpus");
  ranges->set_type(v1::MesosValue::RANGES);
  ranges->mutable_ranges()->add_range()->set_end(1);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(Resources::FromProto(list).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST(ResourcesTest, CopiesAreIndependentValues) {
  Resources a = R("cpus:2;ports:[1-4];s:{x,y}");
  Resources b = a;
  b += R("cpus:1;ports:[5-6]");
  b -= R("s:{x}");
  EXPECT_EQ(a, R("cpus:2;ports:[1-4];s:{x,y}"));
  EXPECT_EQ(b, R("cpus:3;ports:[1-6];s:{y}"));
}

TEST(ResourcesTest, SubtractingItselfLeavesNothing) {
  Resources r = R("cpus:1;ports:[1-3];s:{x}");
  r -= r;
  EXPECT_TRUE(r.empty());
}

}  // namespace
}  // namespace cairn::master
