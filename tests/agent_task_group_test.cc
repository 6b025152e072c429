// Task groups end to end: a framework ACCEPTs an offer with LAUNCH_GROUP (a
// DEFAULT executor, two command tasks); a real cairn-master, a real
// cairn-agent and cairn-executor as the default executor run both tasks in
// one executor process. A task finishing leaves the other running; a task
// failing kills the rest of its group (as Mesos's default executor).
//
// Every wait is a poll or a blocking wait against a generous deadline.

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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

constexpr char kExecutorId[] = "group-executor";

class AgentTaskGroupTest : public AgentE2eTest {
 protected:
  // ACCEPTs the next offer with one LAUNCH_GROUP of `tasks` in a DEFAULT
  // executor (cpus 0.1, mem 32).
  void LaunchGroup(const std::vector<v1::TaskInfo>& tasks) {
    absl::StatusOr<Event> offers =
        scheduler_->NextEvent(Event::OFFERS, absl::Now() + kTimeout);
    ASSERT_TRUE(offers.ok()) << offers.status();
    ASSERT_GT(offers->offers().offers_size(), 0);
    const v1::Offer& offer = offers->offers().offers(0);
    v1::Offer::Operation operation;
    operation.set_type(v1::Offer::Operation::LAUNCH_GROUP);
    v1::ExecutorInfo* executor =
        operation.mutable_launch_group()->mutable_executor();
    executor->set_type(v1::ExecutorInfo::DEFAULT);
    executor->mutable_executor_id()->set_value(kExecutorId);
    *executor->mutable_framework_id() = offer.framework_id();
    *executor->add_resources() = Scalar("cpus", 0.1);
    *executor->add_resources() = Scalar("mem", 32);
    for (v1::TaskInfo task : tasks) {
      *task.mutable_agent_id() = offer.agent_id();
      *operation.mutable_launch_group()->mutable_task_group()->add_tasks() =
          std::move(task);
    }
    std::vector<v1::OfferID> ids;
    for (const v1::Offer& o : offers->offers().offers()) ids.push_back(o.id());
    absl::Status accepted = scheduler_->Accept(ids, {operation});
    ASSERT_TRUE(accepted.ok()) << accepted;
  }

  // Waits for the FIFO `name` in the group's sandbox and writes a line to
  // it, which ends a task blocked in `read x < name`.
  absl::Status WriteFifo(const std::string& name) {
    const absl::Time deadline = absl::Now() + kTimeout;
    while (absl::Now() < deadline) {
      absl::StatusOr<std::string> sandbox = agent_->SandboxOf(kExecutorId);
      if (sandbox.ok()) {
        // Non-blocking: fails with ENXIO until the reader has it open.
        const int fd =
            open((*sandbox + "/" + name).c_str(), O_WRONLY | O_NONBLOCK);
        if (fd >= 0) {
          const bool written = write(fd, "go\n", 3) == 3;
          close(fd);
          if (written) return absl::OkStatus();
        }
      }
      absl::SleepFor(kPoll);
    }
    return absl::DeadlineExceededError("no reader on the FIFO " + name);
  }
};

TEST_F(AgentTaskGroupTest, GroupRunsInOneDefaultExecutor) {
  StartAll();
  // "first" waits on a FIFO the test writes to; "second" sleeps. `exec` and
  // a builtin `read` keep each to one process once started.
  LaunchGroup({CommandTask("first", "mkfifo go-first && read x < go-first"),
               CommandTask("second", "exec sleep 1000")});
  for (const char* id : {"first", "second"}) {
    absl::StatusOr<v1::TaskStatus> running = WaitForState(id, v1::TASK_RUNNING);
    ASSERT_TRUE(running.ok()) << running.status();
    EXPECT_EQ(running->executor_id().value(), kExecutorId);
    EXPECT_EQ(running->source(), v1::TaskStatus::SOURCE_EXECUTOR);
  }

  // One executor with both tasks: one executor process and two tasks'.
  absl::StatusOr<std::vector<JsonValue>> executors = Executors();
  ASSERT_TRUE(executors.ok()) << executors.status();
  ASSERT_EQ(executors->size(), 1u);
  EXPECT_EQ((*executors)[0].Text("id"), kExecutorId);
  const JsonValue* tasks = (*executors)[0].Find("tasks");
  ASSERT_NE(tasks, nullptr);
  ASSERT_EQ(tasks->items.size(), 2u);
  for (const JsonValue& task : tasks->items) {
    EXPECT_EQ(task.Text("state"), "TASK_RUNNING")
        << task.Text("id").value_or("?");
  }
  EXPECT_EQ(WaitForProcesses(3).size(), 3u) << "1 executor + 2 tasks";

  // "first" finishes; "second" runs on in the same executor.
  ASSERT_TRUE(WriteFifo("go-first").ok());
  absl::StatusOr<v1::TaskStatus> finished = WaitForTerminal("first");
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_EQ(finished->state(), v1::TASK_FINISHED) << finished->message();
  EXPECT_EQ(WaitForProcesses(2).size(), 2u) << "1 executor + 1 task";
  executors = Executors();
  ASSERT_TRUE(executors.ok()) << executors.status();
  ASSERT_EQ(executors->size(), 1u);
  int running = 0;
  for (const JsonValue& task : (*executors)[0].Find("tasks")->items) {
    if (task.Text("state") == "TASK_RUNNING") {
      ++running;
      EXPECT_EQ(task.Text("id"), "second");
    }
  }
  EXPECT_EQ(running, 1);

  // Killing the last task ends the executor: nothing is left running.
  ASSERT_TRUE(scheduler_->Kill(MakeTaskId("second")).ok());
  absl::StatusOr<v1::TaskStatus> killed = WaitForTerminal("second");
  ASSERT_TRUE(killed.ok()) << killed.status();
  EXPECT_EQ(killed->state(), v1::TASK_KILLED) << killed->message();
  EXPECT_TRUE(WaitForProcesses(0).empty())
      << "agent log: " << agent_->process()->LogTail(2000);
}

TEST_F(AgentTaskGroupTest, FailingTaskKillsTheRestOfItsGroup) {
  StartAll();
  // The executor starts every task of the group before it handles any exit,
  // so "healthy" runs when "broken" fails.
  LaunchGroup({CommandTask("broken", "exit 1"),
               CommandTask("healthy", "exec sleep 1000")});
  absl::StatusOr<v1::TaskStatus> failed = WaitForTerminal("broken");
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->state(), v1::TASK_FAILED) << failed->message();
  EXPECT_EQ(failed->message(), "Command exited with status 1");
  absl::StatusOr<v1::TaskStatus> killed = WaitForTerminal("healthy");
  ASSERT_TRUE(killed.ok()) << killed.status();
  EXPECT_EQ(killed->state(), v1::TASK_KILLED) << killed->message();
  EXPECT_EQ(killed->executor_id().value(), kExecutorId);
  bool was_running = false;
  for (const v1::TaskStatus& s : seen_["healthy"]) {
    was_running |= s.state() == v1::TASK_RUNNING;
  }
  EXPECT_TRUE(was_running);
  EXPECT_TRUE(WaitForProcesses(0).empty())
      << "agent log: " << agent_->process()->LogTail(2000);
}

}  // namespace
}  // namespace cairn::tests
