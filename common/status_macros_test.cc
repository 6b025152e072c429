#include "common/status_macros.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace cairn {
namespace {

absl::Status Succeed(int* calls) {
  ++*calls;
  return absl::OkStatus();
}

absl::Status FailWith(absl::Status status, int* calls) {
  ++*calls;
  return status;
}

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::Status TwoSteps(absl::Status second, int* calls, bool* reached_end) {
  RETURN_IF_ERROR(Succeed(calls));
  RETURN_IF_ERROR(FailWith(second, calls));
  *reached_end = true;
  return absl::OkStatus();
}

TEST(ReturnIfErrorTest, ContinuesOnOkAndEvaluatesOnce) {
  int calls = 0;
  bool reached_end = false;
  EXPECT_TRUE(TwoSteps(absl::OkStatus(), &calls, &reached_end).ok());
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(reached_end);
}

TEST(ReturnIfErrorTest, ReturnsTheErrorUnchanged) {
  int calls = 0;
  bool reached_end = false;
  absl::Status status =
      TwoSteps(absl::DataLossError("bad crc"), &calls, &reached_end);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(status.message(), "bad crc");
  EXPECT_EQ(calls, 2);
  EXPECT_FALSE(reached_end);
}

absl::StatusOr<int> StatusOrPassThrough(absl::Status status) {
  RETURN_IF_ERROR(status);
  return 1;
}

TEST(ReturnIfErrorTest, WorksInFunctionsReturningStatusOr) {
  EXPECT_EQ(*StatusOrPassThrough(absl::OkStatus()), 1);
  EXPECT_EQ(StatusOrPassThrough(absl::UnavailableError("x")).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST(ReturnIfErrorTest, AcceptsStatusOr) {
  auto f = [](int x) -> absl::Status {
    RETURN_IF_ERROR(Half(x));
    return absl::OkStatus();
  };
  EXPECT_TRUE(f(4).ok());
  EXPECT_EQ(f(3).code(), absl::StatusCode::kInvalidArgument);
}

// Two ASSIGN_OR_RETURNs in one scope need distinct temporaries.
absl::StatusOr<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int half, Half(x));
  ASSIGN_OR_RETURN(const int quarter, Half(half));
  return quarter;
}

TEST(AssignOrReturnTest, DeclaresAndAssignsOnSuccess) {
  absl::StatusOr<int> result = Quarter(12);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, 3);
}

TEST(AssignOrReturnTest, ReturnsTheFirstError) {
  EXPECT_EQ(Quarter(7).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Quarter(6).status().message(), "odd");
}

TEST(AssignOrReturnTest, AssignsToExistingVariableAndMovesOnlyTypes) {
  auto make = [](bool ok) -> absl::StatusOr<std::unique_ptr<std::string>> {
    if (!ok) return absl::NotFoundError("none");
    return std::make_unique<std::string>("value");
  };
  auto f = [&](bool ok, std::unique_ptr<std::string>* out) -> absl::Status {
    ASSIGN_OR_RETURN(*out, make(ok));
    return absl::OkStatus();
  };
  std::unique_ptr<std::string> out;
  EXPECT_TRUE(f(true, &out).ok());
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(*out, "value");
  EXPECT_EQ(f(false, &out).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*out, "value");  // untouched on error
}

}  // namespace
}  // namespace cairn
