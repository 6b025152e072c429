// The agent's restart and delivery guarantees, end to end with real
// processes (tests/internal/agent_e2e_fixture.h):
//
//  - AgentRestartDoesNotInterruptTasks (acceptance 2): the agent is
//    SIGKILLed while two tasks run; one of them exits (status 7) while the
//    agent is down. Restarted, the agent reattaches to the live executor (the
//    task's process is the same one throughout and is never relaunched) and
//    the task that ended is reported with its true exit status. The live
//    task still answers: a kill reaches it and TASK_KILLED comes back.
//  - UpdatesWhileTheMasterIsAwayArriveInOrder (acceptance 7): with the only
//    master down, a task's health flips twice and it finishes; the agent is
//    SIGKILLed and restarted in between. Once the master is back, the
//    framework gets every one of those updates, in the order they happened,
//    each once.
//
// Tasks wait for files the test creates in their sandboxes, so what happens
// while something is down is decided by the test, not by timing.

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_e2e_fixture.h"

namespace cairn::tests {
namespace {

void Touch(const std::string& path) { std::ofstream(path) << "x\n"; }

// Waits until `pid` is gone (the process exited and was reaped by its
// parent, the executor).
bool WaitForExit(pid_t pid, absl::Time deadline) {
  while (absl::Now() < deadline) {
    if (!PidAlive(pid)) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

// Polls the agent's /state until `task_id` has `predicate` true of its
// latest status (a JSON object of /state's "statuses").
bool WaitForAgentStatus(AgentProcess& agent, const std::string& task_id,
                        const std::function<bool(const JsonValue&)>& predicate,
                        absl::Time deadline) {
  while (absl::Now() < deadline) {
    absl::StatusOr<JsonValue> state = agent.State();
    if (state.ok()) {
      for (const char* list : {"frameworks", "completed_frameworks"}) {
        const JsonValue* frameworks = state->Find(list);
        if (frameworks == nullptr) continue;
        for (const JsonValue& f : frameworks->items) {
          for (const char* el : {"executors", "completed_executors"}) {
            const JsonValue* executors = f.Find(el);
            if (executors == nullptr) continue;
            for (const JsonValue& e : executors->items) {
              for (const char* tl : {"tasks", "completed_tasks"}) {
                const JsonValue* tasks = e.Find(tl);
                if (tasks == nullptr) continue;
                for (const JsonValue& t : tasks->items) {
                  if (t.Text("id") != task_id) continue;
                  const JsonValue* statuses = t.Find("statuses");
                  if (statuses != nullptr && !statuses->items.empty() &&
                      predicate(statuses->items.back())) {
                    return true;
                  }
                }
              }
            }
          }
        }
      }
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

TEST_F(AgentE2eTest, AgentRestartDoesNotInterruptTasks) {
  agent_options_.flags.push_back("--registration_backoff_factor=100ms");
  StartAll();
  // `long` runs until killed; `short` exits 7 once the test says so.
  Launch({CommandTask("long", "echo $$ > pid; exec sleep 1000"),
          CommandTask("short",
                      "echo $$ > pid; while [ ! -f go ]; do sleep 0.05; done; "
                      "exit 7")});
  ASSERT_TRUE(WaitForState("long", v1::TASK_RUNNING).ok());
  ASSERT_TRUE(WaitForState("short", v1::TASK_RUNNING).ok());
  absl::StatusOr<pid_t> long_pid = TaskPid("long");
  absl::StatusOr<pid_t> short_pid = TaskPid("short");
  ASSERT_TRUE(long_pid.ok()) << long_pid.status();
  ASSERT_TRUE(short_pid.ok()) << short_pid.status();
  absl::StatusOr<std::string> short_sandbox = agent_->SandboxOf("short");
  ASSERT_TRUE(short_sandbox.ok());

  const size_t long_updates_before = seen_["long"].size();
  agent_->Kill();
  // While the agent is down: `short` exits, `long` keeps running.
  Touch(*short_sandbox + "/go");
  ASSERT_TRUE(WaitForExit(*short_pid, absl::Now() + kTimeout))
      << "the short task did not exit";
  EXPECT_TRUE(PidAlive(*long_pid)) << "the agent's death killed a task";

  ASSERT_TRUE(agent_->Restart("agent-restarted.log").ok());
  absl::StatusOr<std::string> id =
      agent_->WaitForRegistered(absl::Now() + kTimeout);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, agent_id_) << "the restarted agent must keep its id";

  absl::StatusOr<v1::TaskStatus> ended = WaitForTerminal("short");
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->state(), v1::TASK_FAILED);
  EXPECT_EQ(ended->message(), "Command exited with status 7");
  EXPECT_EQ(ended->source(), v1::TaskStatus::SOURCE_EXECUTOR);

  // `long` was never interrupted: the same process, and the agent has it
  // running again without a relaunch.
  EXPECT_TRUE(PidAlive(*long_pid));
  absl::StatusOr<pid_t> long_pid_now = TaskPid("long");
  ASSERT_TRUE(long_pid_now.ok());
  EXPECT_EQ(*long_pid_now, *long_pid);
  EXPECT_TRUE(WaitForAgentStatus(
      *agent_, "long",
      [](const JsonValue& s) { return s.Text("state") == "TASK_RUNNING"; },
      absl::Now() + kTimeout));
  for (size_t i = long_updates_before; i < seen_["long"].size(); ++i) {
    EXPECT_NE(seen_["long"][i].state(), v1::TASK_STARTING)
        << "relaunched after the restart?";
  }
  // It still reports: a kill goes through the restarted agent.
  ASSERT_TRUE(scheduler_->Kill(MakeTaskId("long")).ok());
  absl::StatusOr<v1::TaskStatus> killed = WaitForTerminal("long");
  ASSERT_TRUE(killed.ok()) << killed.status();
  EXPECT_EQ(killed->state(), v1::TASK_KILLED);
  EXPECT_TRUE(WaitForExit(*long_pid, absl::Now() + kTimeout));
}

TEST_F(AgentE2eTest, UpdatesWhileTheMasterIsAwayArriveInOrder) {
  agent_options_.flags.push_back("--registration_backoff_factor=100ms");
  StartAll();
  v1::TaskInfo task = CommandTask(
      "flappy", "echo $$ > pid; while [ ! -f done ]; do sleep 0.05; done");
  v1::HealthCheck* check = task.mutable_health_check();
  check->set_type(v1::HealthCheck::COMMAND);
  check->mutable_command()->set_value("test -f healthy");
  check->set_delay_seconds(0);
  check->set_interval_seconds(0.3);
  check->set_timeout_seconds(5);
  // Failures before the first success are ignored within the grace
  // period: the first health update is the test's "healthy".
  check->set_grace_period_seconds(3600);
  check->set_consecutive_failures(1000000);  // never killed for it
  Launch({task});
  ASSERT_TRUE(WaitForState("flappy", v1::TASK_RUNNING).ok());
  absl::StatusOr<std::string> sandbox = agent_->SandboxOf("flappy");
  ASSERT_TRUE(sandbox.ok());
  absl::StatusOr<pid_t> pid = TaskPid("flappy");
  ASSERT_TRUE(pid.ok());

  cluster_->Kill(0);  // the only master
  const absl::Time deadline = absl::Now() + kTimeout;
  auto healthy_is = [](bool value) {
    return [value](const JsonValue& s) { return s.Bool("healthy") == value; };
  };
  Touch(*sandbox + "/healthy");
  ASSERT_TRUE(
      WaitForAgentStatus(*agent_, "flappy", healthy_is(true), deadline));

  // The agent dies and comes back while the master is still away.
  agent_->Kill();
  ASSERT_TRUE(agent_->Restart("agent-restarted.log").ok());
  std::filesystem::remove(*sandbox + "/healthy");
  ASSERT_TRUE(
      WaitForAgentStatus(*agent_, "flappy", healthy_is(false), deadline));
  Touch(*sandbox + "/done");
  ASSERT_TRUE(WaitForAgentStatus(
      *agent_, "flappy",
      [](const JsonValue& s) { return s.Text("state") == "TASK_FINISHED"; },
      deadline));

  // The master returns; the framework resubscribes.
  ASSERT_TRUE(cluster_->Restart(0, "master-0-restarted.log").ok());
  ASSERT_TRUE(cluster_->WaitForHealth(0, absl::Now() + kTimeout));
  ASSERT_TRUE(cluster_->WaitForLeader({0}).ok());
  absl::Status resubscribed = absl::UnknownError("not tried");
  for (const absl::Time until = absl::Now() + kTimeout;
       !resubscribed.ok() && absl::Now() < until;) {
    resubscribed = scheduler_->Resubscribe().status();
  }
  ASSERT_TRUE(resubscribed.ok()) << resubscribed;

  absl::StatusOr<v1::TaskStatus> finished = WaitForTerminal("flappy");
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_EQ(finished->state(), v1::TASK_FINISHED);

  // What the framework got after the first TASK_RUNNING: healthy, then
  // unhealthy (one or more), then finished; each once, in time order.
  std::vector<v1::TaskStatus> after;
  bool past_first_running = false;
  for (const v1::TaskStatus& s : seen_["flappy"]) {
    if (!past_first_running) {
      past_first_running = s.state() == v1::TASK_RUNNING && !s.has_healthy();
      continue;
    }
    after.push_back(s);
  }
  ASSERT_GE(after.size(), 3u);
  std::set<std::string> uuids;
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(uuids.insert(after[i].uuid()).second)
        << "update " << i << " delivered twice";
    if (i > 0) {
      EXPECT_LE(after[i - 1].timestamp(), after[i].timestamp())
          << "updates out of order at " << i;
    }
  }
  EXPECT_EQ(after.front().state(), v1::TASK_RUNNING);
  EXPECT_TRUE(after.front().healthy());
  EXPECT_EQ(after.back().state(), v1::TASK_FINISHED);
  bool saw_unhealthy = false;
  for (size_t i = 1; i + 1 < after.size(); ++i) {
    EXPECT_EQ(after[i].state(), v1::TASK_RUNNING);
    saw_unhealthy |= after[i].has_healthy() && !after[i].healthy();
  }
  EXPECT_TRUE(saw_unhealthy);
}

}  // namespace
}  // namespace cairn::tests

namespace cairn::tests {
namespace {

// --recover=cleanup kills what the checkpoint names and forgets it; the
// agent started afterwards is a new agent, and the master reports the old
// agent's tasks lost (the agent restarted without its checkpoint).
TEST_F(AgentE2eTest, RecoverCleanupKillsExecutorsAndStartsOver) {
  agent_options_.flags.push_back("--registration_backoff_factor=100ms");
  StartAll();
  Launch({CommandTask("doomed", "echo $$ > pid; exec sleep 1000")});
  ASSERT_TRUE(WaitForState("doomed", v1::TASK_RUNNING).ok());
  absl::StatusOr<pid_t> pid = TaskPid("doomed");
  ASSERT_TRUE(pid.ok());
  agent_->Kill();
  ASSERT_TRUE(PidAlive(*pid));

  // A one-off cleanup run exits 0 once it has killed everything.
  std::vector<std::string> argv = {
      agent_options_.binary,
      "--recover=cleanup",
      "--port=0",
      absl::StrCat("--master=", agent_options_.masters[0]),
      absl::StrCat("--work_dir=", agent_options_.work_dir),
      absl::StrCat("--isolation=", agent_options_.isolation)};
  absl::StatusOr<std::unique_ptr<Process>> cleanup = Process::Start(
      argv, absl::StrCat(master_options_.log_dir, "/agent-cleanup.log"));
  ASSERT_TRUE(cleanup.ok()) << cleanup.status();
  const absl::Time deadline = absl::Now() + kTimeout;
  while ((*cleanup)->Running() && absl::Now() < deadline) absl::SleepFor(kPoll);
  ASSERT_FALSE((*cleanup)->Running());
  EXPECT_EQ((*cleanup)->ExitDescription(), "exited 0") << (*cleanup)->LogTail();
  EXPECT_TRUE(WaitForExit(*pid, absl::Now() + kTimeout));
  EXPECT_TRUE(ProcessesBelow(agent_options_.work_dir).empty());
  EXPECT_FALSE(
      std::filesystem::exists(agent_options_.work_dir + "/meta/agent.ckpt"));

  ASSERT_TRUE(agent_->Restart("agent-after-cleanup.log").ok());
  absl::StatusOr<std::string> id =
      agent_->WaitForRegistered(absl::Now() + kTimeout);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_NE(*id, agent_id_);
  absl::StatusOr<v1::TaskStatus> lost = WaitForTerminal("doomed");
  ASSERT_TRUE(lost.ok()) << lost.status();
  EXPECT_EQ(lost->state(), v1::TASK_LOST);
  EXPECT_EQ(lost->reason(), v1::TaskStatus::REASON_AGENT_RESTARTED);
}

// A damaged checkpoint: --strict (the default) refuses to start and says
// which file; --strict=false starts, skipping it with a warning, and counts
// it in slave/recovery_errors.
TEST_F(AgentE2eTest, DamagedCheckpointIsAnErrorUnlessNotStrict) {
  StartAll();
  Launch({CommandTask("t", "exec sleep 1000")});
  ASSERT_TRUE(WaitForState("t", v1::TASK_RUNNING).ok());
  agent_->Kill();
  // Flip a byte in the middle of the task's checkpoint.
  std::string task_file;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(
           agent_options_.work_dir + "/meta")) {
    if (entry.path().filename() == "task.ckpt")
      task_file = entry.path().string();
  }
  ASSERT_FALSE(task_file.empty());
  {
    std::fstream f(task_file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const std::streamoff size = f.tellg();
    f.seekp(size / 2);
    f.put('\xff');
  }
  absl::Status strict = agent_->Restart("agent-strict.log");
  ASSERT_FALSE(strict.ok()) << "a strict agent started on a damaged checkpoint";
  EXPECT_TRUE(absl::StrContains(agent_->process()->LogTail(), "task.ckpt"))
      << agent_->process()->LogTail();

  agent_options_.flags.push_back("--strict=false");
  auto lenient_options = agent_options_;
  absl::StatusOr<std::unique_ptr<AgentProcess>> lenient =
      AgentProcess::Start(lenient_options, "agent-lenient.log");
  ASSERT_TRUE(lenient.ok()) << lenient.status();
  absl::StatusOr<http::Response> metrics = (*lenient)->Get("/metrics/snapshot");
  ASSERT_TRUE(metrics.ok());
  absl::StatusOr<JsonValue> snapshot = ParseJson(metrics->body);
  ASSERT_TRUE(snapshot.ok());
  uint64_t errors = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      snapshot->Text("slave/recovery_errors").value_or("0"), &errors));
  EXPECT_GE(errors, 1u);
}

}  // namespace
}  // namespace cairn::tests
