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
  absl::StatusOr<v1::TaskStatus> running =
      WaitForState("echo", v1::TASK_RUNNING);
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ(running->agent_id().value(), agent_id_);
  absl::StatusOr<v1::TaskStatus> finished = WaitForTerminal("echo");
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_EQ(finished->state(), v1::TASK_FINISHED) << finished->message();
  EXPECT_EQ(finished->source(), v1::TaskStatus::SOURCE_EXECUTOR);

  absl::StatusOr<std::string> sandbox = agent_->SandboxOf("echo");
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  absl::StatusOr<std::string> stdout_text =
      agent_->ReadFile(*sandbox + "/stdout");
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

namespace cairn::tests {
namespace {

// What the agent shows operators about a running task: /state places it,
// /monitor/statistics samples its container, /metrics/snapshot counts it.
TEST_F(AgentE2eTest, StateStatisticsAndMetricsDescribeARunningTask) {
  StartAll();
  Launch({CommandTask("busy", "exec sleep 1000", 0.5, 64)});
  ASSERT_TRUE(WaitForState("busy", v1::TASK_RUNNING).ok());

  absl::StatusOr<JsonValue> state = agent_->State();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->Text("id"), agent_id_);
  const JsonValue* frameworks = state->Find("frameworks");
  ASSERT_NE(frameworks, nullptr);
  ASSERT_EQ(frameworks->items.size(), 1u);
  const JsonValue* executors = frameworks->items[0].Find("executors");
  ASSERT_NE(executors, nullptr);
  ASSERT_EQ(executors->items.size(), 1u);
  const JsonValue& executor = executors->items[0];
  EXPECT_EQ(executor.Text("id"), "busy");
  const JsonValue* tasks = executor.Find("tasks");
  ASSERT_NE(tasks, nullptr);
  ASSERT_EQ(tasks->items.size(), 1u);
  EXPECT_EQ(tasks->items[0].Text("state"), "TASK_RUNNING");
  EXPECT_EQ(tasks->items[0].Find("resources")->Text("mem"), "64");
  const JsonValue* used = state->Find("used_resources");
  ASSERT_NE(used, nullptr);
  EXPECT_EQ(used->Text("cpus"), "0.5");

  // Usage is sampled by the agent: wait for the first sample.
  bool sampled = false;
  for (const absl::Time deadline = absl::Now() + kTimeout;
       !sampled && absl::Now() < deadline; absl::SleepFor(kPoll)) {
    absl::StatusOr<http::Response> stats = agent_->Get("/monitor/statistics");
    ASSERT_TRUE(stats.ok());
    absl::StatusOr<JsonValue> json = ParseJson(stats->body);
    ASSERT_TRUE(json.ok()) << stats->body;
    for (const JsonValue& entry : json->items) {
      const JsonValue* s = entry.Find("statistics");
      if (entry.Text("executor_id") == "busy" && s != nullptr &&
          s->Find("mem_rss_bytes") != nullptr &&
          s->Find("timestamp") != nullptr) {
        sampled = true;
      }
    }
  }
  EXPECT_TRUE(sampled) << "no usage sample for the task's container";

  absl::StatusOr<http::Response> metrics = agent_->Get("/metrics/snapshot");
  ASSERT_TRUE(metrics.ok());
  absl::StatusOr<JsonValue> snapshot = ParseJson(metrics->body);
  ASSERT_TRUE(snapshot.ok());
  EXPECT_EQ(snapshot->Text("slave/registered"), "1");
  EXPECT_EQ(snapshot->Text("slave/tasks_running"), "1");
  EXPECT_EQ(snapshot->Text("slave/executors_running"), "1");
}

// A framework's teardown reaches the agent as SHUTDOWN_FRAMEWORK: its tasks
// are killed and nothing of them keeps running.
TEST_F(AgentE2eTest, TeardownKillsTheFrameworksTasks) {
  StartAll();
  Launch({CommandTask("a", "exec sleep 1000"),
          CommandTask("b", "exec sleep 1000")});
  ASSERT_TRUE(WaitForState("a", v1::TASK_RUNNING).ok());
  ASSERT_TRUE(WaitForState("b", v1::TASK_RUNNING).ok());
  EXPECT_EQ(ProcessesBelow(agent_options_.work_dir).size(), 4u)
      << "two executors and two tasks";
  ASSERT_TRUE(scheduler_->Teardown().ok());
  const absl::Time deadline = absl::Now() + kTimeout;
  while (!ProcessesBelow(agent_options_.work_dir).empty() &&
         absl::Now() < deadline) {
    absl::SleepFor(kPoll);
  }
  EXPECT_TRUE(ProcessesBelow(agent_options_.work_dir).empty());
}

// Sandboxes of completed executors are removed after --gc_delay.
TEST_F(AgentE2eTest, CompletedSandboxesAreGarbageCollected) {
  agent_options_.flags.push_back("--gc_delay=1s");
  StartAll();
  Launch({CommandTask("brief", "true")});
  ASSERT_TRUE(WaitForState("brief", v1::TASK_FINISHED).ok());
  absl::StatusOr<std::string> sandbox = agent_->SandboxOf("brief");
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  const absl::Time deadline = absl::Now() + kTimeout;
  while (std::filesystem::exists(*sandbox) && absl::Now() < deadline) {
    absl::SleepFor(kPoll);
  }
  EXPECT_FALSE(std::filesystem::exists(*sandbox));
  // Its checkpoint goes with it (meta/ does not grow without bound).
  auto checkpointed = [&] {
    std::error_code error;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(
             agent_options_.work_dir + "/meta", error)) {
      if (absl::StrContains(entry.path().string(), "/executors/brief")) {
        return true;
      }
    }
    return false;
  };
  EXPECT_FALSE(checkpointed());
}

}  // namespace
}  // namespace cairn::tests
