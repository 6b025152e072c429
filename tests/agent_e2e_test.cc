// End-to-end tests of cairn-agent with real processes: a real cairn-master
// (or three), a real cairn-agent running real cairn-executors, and a
// framework speaking the Mesos v1 scheduler API (SchedulerClient). These are
// the agent issue's acceptance tests:
//
//   EchoTaskFinishesAndItsStdoutIsReadable      tasks run; /files/read
//   AgentRestartDoesNotInterruptTasks           SIGKILL + restart of the agent
//   MemoryLimitKillsWithContainerLimitation     cgroups OOM -> reason
//   KillEscalatesToSigkillAfterTheGracePeriod   kill policy, no survivors
//   HealthChecksFlipHealthyAndKill              HTTP and command checks
//   FetcherPutsUrisInTheSandbox / ...404...     fetcher, archives, errors
//   UpdatesWhileTheMasterIsAwayArriveInOrder    master down, agent restarts
//   FilesRefusesPathsOutsideTheSandbox          /files/read path checks
//
// Every wait is a poll or a blocking wait against a generous deadline;
// nothing is asserted after a fixed sleep.

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "common/http_server.h"
#include "common/json_value.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_e2e_fixture.h"
#include "tests/internal/agent_process.h"
#include "tests/internal/master_cluster.h"
#include "tests/internal/scheduler_client.h"
#include "tools/cpp/runfiles/runfiles.h"

namespace cairn::tests {
namespace {


// Acceptance 1.
TEST_F(AgentE2eTest, EchoTaskFinishesAndItsStdoutIsReadable) {
  StartAll(/*masters=*/3);
  Launch({CommandTask("echo", "echo hello; sleep 1")});
  absl::StatusOr<v1::TaskStatus> running = WaitForState("echo", v1::TASK_RUNNING);
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ(running->agent_id().value(), agent_id_);
  absl::StatusOr<v1::TaskStatus> finished = WaitForTerminal("echo");
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_EQ(finished->state(), v1::TASK_FINISHED) << finished->message();
  EXPECT_EQ(finished->source(), v1::TaskStatus::SOURCE_EXECUTOR);

  absl::StatusOr<std::string> sandbox = agent_->SandboxOf("echo");
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  absl::StatusOr<std::string> stdout_text = agent_->ReadFile(*sandbox + "/stdout");
  ASSERT_TRUE(stdout_text.ok()) << stdout_text.status();
  EXPECT_TRUE(absl::StrContains(*stdout_text, "hello\n"))
      << "stdout: [" << *stdout_text << "]";

  // The executor is gone and the agent says so; nothing of the task is left.
  const absl::Time deadline = absl::Now() + kTimeout;
  while (!ProcessesBelow(agent_options_.work_dir).empty() &&
         absl::Now() < deadline) {
    absl::SleepFor(kPoll);
  }
  EXPECT_TRUE(ProcessesBelow(agent_options_.work_dir).empty());
}

}  // namespace
}  // namespace cairn::tests
