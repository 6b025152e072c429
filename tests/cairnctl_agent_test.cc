// cairnctl (//cli:cairnctl) against three real cairn-master processes and a
// real cairn-agent (posix isolation) running real cairn-executors — the
// operations issue's acceptance 4 end to end:
//  - RunPrintsTheOutputAndExitsWithTheTasksStatus: `run -- 'echo hi; exit 3'`
//    prints "hi" (read from the agent's sandbox) and exits 3; `run -- true`
//    exits 0; `agents` lists the real agent, `tasks --all` both tasks on it
//    (TASK_FAILED, TASK_FINISHED).
//  - RunOutlivesASigkilledLeader: `run -- 'sleep 2; echo done'` while the
//    leading master is SIGKILLed once the task runs: the run follows the
//    new leader and still prints "done" and exits 0.
//
// Every wait polls a condition against a deadline.

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/json_value.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_process.h"
#include "tests/internal/cairnctl_fixture.h"
#include "tests/internal/cairnctl_process.h"
#include "tests/internal/master_cluster.h"

namespace cairn::tests {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(30);
constexpr absl::Duration kPollPause = absl::Milliseconds(50);

using Result = CairnctlResult;

class CairnctlAgentTest : public CairnctlClusterTest {
 protected:
  void SetUp() override {
    timeout_ = kTimeout;
    run_timeout_ = 3 * kTimeout;
    ASSERT_NO_FATAL_FAILURE(StartMasters(
        "cairnctl_agent", {"--agent_reregister_timeout=20s",
                           "--allocation_interval=100ms",
                           "--scheduler_heartbeat_interval=1s"}));

    AgentProcessOptions agent;
    agent.binary = runfiles_->Rlocation("cairn/agent/cairn-agent");
    agent.masters = masters_;
    agent.work_dir = scratch_ + "/agent";
    agent.log_dir = log_dir_;
    agent.resources = "cpus:2;mem:512;disk:256;ports:[31000-31010]";
    absl::StatusOr<std::unique_ptr<AgentProcess>> started =
        AgentProcess::Start(agent);
    ASSERT_TRUE(started.ok()) << started.status();
    agent_ = *std::move(started);
    absl::StatusOr<std::string> id =
        agent_->WaitForRegistered(absl::Now() + kTimeout);
    ASSERT_TRUE(id.ok()) << id.status() << "\n"
                         << agent_->process()->LogTail(2000);
    agent_id_ = *id;
  }

  void TearDown() override {
    agent_.reset();  // stops the agent and what it left behind
    cluster_.reset();
  }

  // The agent's last log lines, and how it ended if it is not running.
  std::string AgentLog() const {
    if (agent_ == nullptr || agent_->process() == nullptr) return "";
    Process* process = agent_->process();
    std::string text = process->LogTail(3000);
    if (!process->Running()) {
      absl::StrAppend(&text, "\nthe agent ",
                      process->ExitDescription().value_or("ended"));
    }
    return text;
  }

  std::unique_ptr<AgentProcess> agent_;
  std::string agent_id_;
};

TEST_F(CairnctlAgentTest, RunPrintsTheOutputAndExitsWithTheTasksStatus) {
  Result failed = Run({"run", "--name=three", "--cpus=0.1", "--mem=32",
                       "--timeout=90s", "--", "echo hi; exit 3"});
  EXPECT_EQ(failed.code, 3) << failed.err << "\n" << AgentLog();
  EXPECT_EQ(failed.out, "hi\n") << failed.err;
  EXPECT_TRUE(absl::StrContains(failed.err, "TASK_FAILED")) << failed.err;
  EXPECT_TRUE(absl::StrContains(failed.err, agent_id_)) << failed.err;

  Result finished = Run({"run", "--name=zero", "--cpus=0.1", "--mem=32",
                         "--timeout=90s", "--", "true"});
  EXPECT_EQ(finished.code, 0) << finished.err << "\n" << AgentLog();
  EXPECT_EQ(finished.out, "") << finished.err;
  EXPECT_TRUE(absl::StrContains(finished.err, "TASK_FINISHED")) << finished.err;

  // agents: the real agent, its id and address.
  Result agents = Run({"agents"});
  EXPECT_EQ(agents.code, 0) << agents.err;
  EXPECT_TRUE(absl::StrContains(agents.out, agent_id_)) << agents.out;
  EXPECT_TRUE(absl::StrContains(agents.out, agent_->address())) << agents.out;
  Result agents_json = Run({"agents", "--json"});
  ASSERT_EQ(agents_json.code, 0) << agents_json.err;
  absl::StatusOr<JsonValue> parsed = ParseJson(agents_json.out);
  ASSERT_TRUE(parsed.ok()) << agents_json.out;
  const JsonValue* list = parsed->Find("agents");
  ASSERT_NE(list, nullptr) << agents_json.out;
  ASSERT_EQ(list->items.size(), 1u) << agents_json.out;

  // tasks --all: both runs' tasks, completed on the real agent.
  Result tasks = Run({"tasks", "--all", "--json"});
  ASSERT_EQ(tasks.code, 0) << tasks.err;
  absl::StatusOr<JsonValue> json = ParseJson(tasks.out);
  ASSERT_TRUE(json.ok()) << tasks.out;
  const JsonValue* completed = json->Find("completed_tasks");
  ASSERT_NE(completed, nullptr) << tasks.out;
  std::vector<std::string> states;
  for (const JsonValue& task : completed->items) {
    const JsonValue* agent_id = task.Find("agent_id");
    ASSERT_NE(agent_id, nullptr) << tasks.out;
    EXPECT_EQ(agent_id->Text("value"), agent_id_) << tasks.out;
    states.push_back(task.Text("state").value_or(""));
  }
  std::sort(states.begin(), states.end());
  EXPECT_EQ(states, (std::vector<std::string>{"TASK_FAILED", "TASK_FINISHED"}))
      << tasks.out;
  Result table = Run({"tasks", "--all"});
  EXPECT_EQ(table.code, 0) << table.err;
  EXPECT_TRUE(absl::StrContains(table.out, "TASK_FAILED")) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, "TASK_FINISHED")) << table.out;
}

TEST_F(CairnctlAgentTest, RunOutlivesASigkilledLeader) {
  std::unique_ptr<CairnctlProcess> run =
      Start({"run", "--name=survivor", "--cpus=0.1", "--mem=32",
             "--timeout=120s", "--", "sleep 2; echo done"});
  // Once the task runs, SIGKILL the leading master.
  const absl::Time deadline = absl::Now() + 2 * kTimeout;
  while (absl::Now() < deadline &&
         !absl::StrContains(run->err(), "TASK_RUNNING")) {
    ASSERT_FALSE(run->Wait(absl::Now()).has_value())
        << "cairnctl ended before its task ran:\n"
        << run->err() << "\n"
        << AgentLog();
    absl::SleepFor(kPollPause);
  }
  ASSERT_TRUE(absl::StrContains(run->err(), "TASK_RUNNING"))
      << run->err() << "\n"
      << AgentLog();
  cluster_->Kill(leader_);

  std::optional<int> code = run->Wait(absl::Now() + 3 * kTimeout);
  ASSERT_TRUE(code.has_value()) << "cairnctl still runs:\n" << run->err();
  EXPECT_EQ(*code, 0) << run->err() << "\n" << AgentLog();
  EXPECT_EQ(run->out(), "done\n") << run->err();
  EXPECT_TRUE(absl::StrContains(run->err(), "TASK_FINISHED")) << run->err();

  // A new leader among the survivors, and the agent still registered there.
  std::vector<int> survivors;
  for (int i = 0; i < 3; ++i) {
    if (i != leader_) survivors.push_back(i);
  }
  absl::StatusOr<int> leader = cluster_->WaitForLeader(survivors);
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_NE(*leader, leader_);
}

}  // namespace
}  // namespace cairn::tests
