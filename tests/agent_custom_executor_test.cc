// Custom executors end to end: a real cairn-master, a real cairn-agent and
// tests/internal/test_executor.cc (a minimal executor speaking the v1
// executor API in JSON) run tasks for a framework on the v1 scheduler API.
// Two tasks share one executor (one ExecutorInfo, one process); scheduler
// MESSAGEs reach it and its answers come back as scheduler MESSAGE events;
// kills reach one task only; a TEARDOWN shuts the executor down.
//
// Every wait is a poll or a blocking wait against a generous deadline.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "common/json_value.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_e2e_fixture.h"
#include "tests/internal/agent_process.h"
#include "tests/internal/scheduler_client.h"

namespace cairn::tests {
namespace {

class AgentCustomExecutorTest : public AgentE2eTest {
 protected:
  // The executor every task of these tests shares.
  v1::ExecutorInfo CustomExecutor() const {
    v1::ExecutorInfo executor;
    executor.mutable_executor_id()->set_value("custom");
    executor.set_name("test_executor");
    // The agent runs `/bin/sh -c <value>`; dash forks for a lone command, so
    // `exec` keeps it to one process.
    executor.mutable_command()->set_value(absl::StrCat(
        "exec ", runfiles_->Rlocation("cairn/tests/test_executor")));
    executor.mutable_command()->set_shell(true);
    *executor.add_resources() = Scalar("cpus", 0.1);
    *executor.add_resources() = Scalar("mem", 32);
    return executor;
  }

  // A task of the custom executor, with `data` for it.
  v1::TaskInfo CustomTask(const std::string& id,
                          const std::string& data = "") const {
    v1::TaskInfo task;
    task.set_name(id);
    task.mutable_task_id()->set_value(id);
    *task.add_resources() = Scalar("cpus", 0.1);
    *task.add_resources() = Scalar("mem", 16);
    *task.mutable_executor() = CustomExecutor();
    if (!data.empty()) task.set_data(data);
    return task;
  }

};

TEST_F(AgentCustomExecutorTest, TwoTasksShareOneExecutorWhichEchoesMessages) {
  StartAll();
  Launch({CustomTask("one"), CustomTask("two")});
  absl::StatusOr<v1::TaskStatus> one = WaitForState("one", v1::TASK_RUNNING);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->executor_id().value(), "custom");
  EXPECT_EQ(one->source(), v1::TaskStatus::SOURCE_EXECUTOR);
  absl::StatusOr<v1::TaskStatus> two = WaitForState("two", v1::TASK_RUNNING);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(two->executor_id().value(), "custom");

  // One executor with both tasks, in one process.
  absl::StatusOr<std::vector<JsonValue>> executors = Executors();
  ASSERT_TRUE(executors.ok()) << executors.status();
  ASSERT_EQ(executors->size(), 1u);
  const JsonValue& executor = (*executors)[0];
  EXPECT_EQ(executor.Text("id"), "custom");
  const JsonValue* tasks = executor.Find("tasks");
  ASSERT_NE(tasks, nullptr);
  ASSERT_EQ(tasks->items.size(), 2u);
  for (const JsonValue& task : tasks->items) {
    EXPECT_EQ(task.Text("state"), "TASK_RUNNING") << task.Text("id").value_or("?");
  }
  EXPECT_EQ(WaitForProcesses(1).size(), 1u) << "one executor process";

  // Scheduler -> executor -> scheduler.
  SchedulerClient::Call message;
  message.set_type(SchedulerClient::Call::MESSAGE);
  message.mutable_message()->mutable_agent_id()->set_value(agent_id_);
  message.mutable_message()->mutable_executor_id()->set_value("custom");
  message.mutable_message()->set_data("hello");
  absl::Status sent = scheduler_->Send(message);
  ASSERT_TRUE(sent.ok()) << sent;
  absl::StatusOr<Event> echo =
      scheduler_->NextEvent(Event::MESSAGE, absl::Now() + kTimeout);
  ASSERT_TRUE(echo.ok()) << echo.status() << "; agent log: "
                         << agent_->process()->LogTail(2000);
  EXPECT_EQ(echo->message().data(), "echo:hello");
  EXPECT_EQ(echo->message().agent_id().value(), agent_id_);
  EXPECT_EQ(echo->message().executor_id().value(), "custom");

  // A third task the executor finishes at once; the other two run on.
  // (REVIVE: the first ACCEPT declined the rest of its offer for 5 s.)
  ASSERT_TRUE(scheduler_->Revive().ok());
  Launch({CustomTask("brief", "finish")});
  absl::StatusOr<v1::TaskStatus> brief =
      WaitForState("brief", v1::TASK_FINISHED);
  ASSERT_TRUE(brief.ok()) << brief.status();
  EXPECT_EQ(brief->executor_id().value(), "custom");

  // Killing one task leaves the other running.
  ASSERT_TRUE(scheduler_->Kill(v1::TaskID(MakeTaskId("one"))).ok());
  absl::StatusOr<v1::TaskStatus> killed = WaitForTerminal("one");
  ASSERT_TRUE(killed.ok()) << killed.status();
  EXPECT_EQ(killed->state(), v1::TASK_KILLED) << killed->message();
  executors = Executors();
  ASSERT_TRUE(executors.ok()) << executors.status();
  ASSERT_EQ(executors->size(), 1u);
  int running = 0;
  for (const JsonValue& task : (*executors)[0].Find("tasks")->items) {
    if (task.Text("state") == "TASK_RUNNING") {
      ++running;
      EXPECT_EQ(task.Text("id"), "two");
    }
  }
  EXPECT_EQ(running, 1);
  EXPECT_EQ(ProcessesBelow(agent_options_.work_dir).size(), 1u);

  // TEARDOWN: the executor is shut down and nothing is left running.
  ASSERT_TRUE(scheduler_->Teardown().ok());
  EXPECT_TRUE(WaitForProcesses(0).empty())
      << "agent log: " << agent_->process()->LogTail(2000);
  // It went by its SHUTDOWN (not the agent's kill), every update answered.
  absl::StatusOr<std::string> sandbox = agent_->SandboxOf("custom");
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  const std::string stderr_text = ReadWholeFile(*sandbox + "/stderr");
  EXPECT_TRUE(absl::StrContains(stderr_text,
                                "shut down, 0 update(s) unacknowledged"))
      << "executor stderr: " << stderr_text;
}

}  // namespace
}  // namespace cairn::tests
