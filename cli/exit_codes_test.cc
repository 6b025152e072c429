#include "cli/exit_codes.h"

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace cairn::cli {
namespace {

TEST(ExitCodesTest, FinishedIsZero) {
  EXPECT_EQ(TaskExitCode(v1::TASK_FINISHED, ""), 0);
  EXPECT_EQ(TaskExitCode(v1::TASK_FINISHED, "Command exited with status 0"), 0);
}

TEST(ExitCodesTest, FailedCarriesTheCommandsExitStatus) {
  EXPECT_EQ(TaskExitCode(v1::TASK_FAILED, "Command exited with status 3"), 3);
  EXPECT_EQ(TaskExitCode(v1::TASK_FAILED, "Command exited with status 255"),
            255);
  // Nothing to read, or a status that is no exit status: a plain failure.
  EXPECT_EQ(TaskExitCode(v1::TASK_FAILED, "Command exited with status 0"), 1);
  EXPECT_EQ(TaskExitCode(v1::TASK_FAILED, "Command exited with status 300"), 1);
  EXPECT_EQ(TaskExitCode(v1::TASK_FAILED, "OOM"), 1);
  EXPECT_EQ(TaskExitCode(v1::TASK_FAILED, ""), 1);
}

TEST(ExitCodesTest, SignalsAreOneHundredTwentyEightPlus) {
  EXPECT_EQ(TaskExitCode(v1::TASK_FAILED, "Command terminated with signal 9"),
            137);
  EXPECT_EQ(
      TaskExitCode(v1::TASK_FAILED, "Command terminated with signal Killed"),
      137);
  EXPECT_EQ(TaskExitCode(v1::TASK_FAILED,
                         "Command terminated with signal Terminated"),
            143);
  EXPECT_EQ(SignalOf("Command terminated with signal Bogus"), std::nullopt);
}

TEST(ExitCodesTest, OtherTerminalStatesHaveDocumentedCodes) {
  EXPECT_EQ(TaskExitCode(v1::TASK_KILLED, ""), kExitKilled);
  EXPECT_EQ(TaskExitCode(v1::TASK_ERROR, "bad resources"), kExitNotLaunched);
  EXPECT_EQ(TaskExitCode(v1::TASK_DROPPED, ""), kExitNotLaunched);
  EXPECT_EQ(TaskExitCode(v1::TASK_LOST, ""), kExitOutcomeUnknown);
  EXPECT_EQ(TaskExitCode(v1::TASK_GONE, ""), kExitOutcomeUnknown);
  EXPECT_EQ(TaskExitCode(v1::TASK_GONE_BY_OPERATOR, ""), kExitOutcomeUnknown);
  EXPECT_EQ(TaskExitCode(v1::TASK_UNKNOWN, ""), kExitOutcomeUnknown);
}

TEST(ExitCodesTest, TerminalStates) {
  EXPECT_TRUE(IsTerminal(v1::TASK_FINISHED));
  EXPECT_TRUE(IsTerminal(v1::TASK_LOST));
  EXPECT_FALSE(IsTerminal(v1::TASK_RUNNING));
  EXPECT_FALSE(IsTerminal(v1::TASK_UNREACHABLE));
  EXPECT_FALSE(IsTerminal(v1::TASK_KILLING));
}

TEST(ExitCodesTest, UnavailableIsTwoOtherErrorsOne) {
  EXPECT_EQ(ExitCodeOf(absl::OkStatus()), 0);
  EXPECT_EQ(ExitCodeOf(absl::UnavailableError("x")), kExitUnavailable);
  EXPECT_EQ(ExitCodeOf(absl::DeadlineExceededError("x")), kExitUnavailable);
  EXPECT_EQ(ExitCodeOf(absl::NotFoundError("x")), kExitError);
  EXPECT_EQ(ExitCodeOf(absl::InvalidArgumentError("x")), kExitError);
}

}  // namespace
}  // namespace cairn::cli
