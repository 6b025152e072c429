// Multi-process test of cairnctl (//cli:cairnctl): three real cairn-master
// processes, FakeAgents (tests/internal/agent_client.h), and the cairnctl
// binary run as a child process with its stdout and stderr in files.
//  - status, agents, frameworks, tasks (filters), metrics, events (--from,
//    filters) as tables and as --json (parsed);
//  - run --detach, then kill: the FakeAgent receives the KILL and the task
//    ends TASK_KILLED;
//  - drain / reactivate change the agent's state in GET_AGENTS;
//  - run exits with the task's status (the FakeAgent reports TASK_FAILED
//    "Command exited with status 3" -> 3, TASK_FINISHED -> 0) and warns
//    that it cannot read the output of a fake agent;
//  - the leader is SIGKILLed: `tasks` and `status` find the new leader, and
//    `events --follow` goes on through another master without a gap or a
//    duplicate.
//
// Every wait polls a condition against a deadline.

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "common/json_value.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_client.h"
#include "tests/internal/cairnctl_fixture.h"
#include "tests/internal/cairnctl_process.h"
#include "tests/internal/master_cluster.h"

namespace cairn::tests {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(30);
constexpr absl::Duration kPollPause = absl::Milliseconds(50);

using Cli = CairnctlProcess;

using Result = CairnctlResult;

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

class CairnctlTest : public CairnctlClusterTest {
 protected:
  void SetUp() override {
    timeout_ = kTimeout;
    run_timeout_ = kTimeout + kTimeout;
    ASSERT_NO_FATAL_FAILURE(StartMasters("cairnctl", FastLivenessFlags()));
  }

  void TearDown() override {
    background_.clear();
    agents_.clear();
  }

  FakeAgent* AddAgent(const std::string& hostname,
                      std::optional<v1::TaskState> launch_state =
                          v1::TASK_RUNNING) {
    FakeAgentOptions options;
    options.masters = masters_;
    options.hostname = hostname;
    options.port = 1;  // nothing listens: run's output reading fails fast
    options.resources = {ScalarResource("cpus", 4), ScalarResource("mem", 4096)};
    options.launch_state = launch_state;
    options.auto_resubscribe = true;
    options.resubscribe_backoff = absl::Milliseconds(50);
    options.max_resubscribe_backoff = absl::Milliseconds(500);
    options.request_timeout = absl::Seconds(2);
    options.subscribe_timeout = kTimeout;
    agents_.push_back(std::make_unique<FakeAgent>(options));
    absl::StatusOr<v1::AgentID> id = agents_.back()->Subscribe();
    EXPECT_TRUE(id.ok()) << id.status();
    return agents_.back().get();
  }

  // `run --detach` of a task; returns its task id.
  std::string RunDetached(const std::string& name) {
    Result run = Run({"run", "--detach", "--json", "--cpus=0.5", "--mem=64",
                      absl::StrCat("--name=", name), "--", "sleep 1000"});
    EXPECT_EQ(run.code, 0) << run.err;
    absl::StatusOr<JsonValue> json = ParseJson(run.out);
    EXPECT_TRUE(json.ok()) << run.out;
    if (!json.ok()) return "";
    EXPECT_EQ(json->Text("state"), "TASK_RUNNING");
    return json->Text("task_id").value_or("");
  }

  std::vector<std::unique_ptr<FakeAgent>> agents_;
  std::vector<std::unique_ptr<Cli>> background_;
};

TEST_F(CairnctlTest, ReadCommandsRunDetachedAndKill) {
  FakeAgent* agent = AddAgent("agent-a");
  const std::string agent_id = agent->agent_id()->value();

  // status: the leader, three masters.
  Result status = Run({"status"});
  EXPECT_EQ(status.code, 0) << status.err;
  EXPECT_TRUE(absl::StrContains(
      status.out, absl::StrCat("leader: ", cluster_->Address(leader_))))
      << status.out;
  EXPECT_EQ(Lines(status.out).size(), 5u) << status.out;  // leader, header, 3
  Result status_json = Run({"status", "--json"});
  ASSERT_EQ(status_json.code, 0) << status_json.err;
  absl::StatusOr<JsonValue> sj = ParseJson(status_json.out);
  ASSERT_TRUE(sj.ok()) << status_json.out;
  EXPECT_EQ(sj->Text("leader"), cluster_->Address(leader_));
  ASSERT_EQ(sj->Find("masters")->items.size(), 3u);
  for (const JsonValue& m : sj->Find("masters")->items) {
    EXPECT_EQ(m.Bool("healthy"), true);
    EXPECT_TRUE(m.Uint("applied").has_value());
  }

  // agents.
  Result agents = Run({"agents"});
  EXPECT_EQ(agents.code, 0) << agents.err;
  ASSERT_EQ(Lines(agents.out).size(), 2u) << agents.out;
  EXPECT_TRUE(absl::StartsWith(Lines(agents.out)[0], "ID  ")) << agents.out;
  EXPECT_TRUE(absl::StrContains(Lines(agents.out)[1], agent_id));
  EXPECT_TRUE(absl::StrContains(Lines(agents.out)[1], "agent-a"));
  EXPECT_TRUE(absl::StrContains(Lines(agents.out)[1], "active"));
  Result agents_json = Run({"agents", "--json"});
  absl::StatusOr<JsonValue> aj = ParseJson(agents_json.out);
  ASSERT_TRUE(aj.ok()) << agents_json.out;
  ASSERT_EQ(aj->Find("agents")->items.size(), 1u);

  // run --detach: a task that keeps running on the FakeAgent.
  const std::string task_id = RunDetached("sleeper");
  ASSERT_FALSE(task_id.empty());
  ASSERT_TRUE(agent->WaitUntil(
      [&] { return agent->launched_tasks().size() == 1; },
      absl::Now() + kTimeout));
  EXPECT_EQ(agent->launched_tasks()[0].task_id().value(), task_id);
  EXPECT_EQ(agent->launched_tasks()[0].command().value(), "sleep 1000");

  // frameworks: the run's framework, disconnected (detached).
  Result frameworks = Run({"frameworks"});
  EXPECT_EQ(frameworks.code, 0) << frameworks.err;
  EXPECT_TRUE(absl::StrContains(frameworks.out, "cairnctl-run sleeper"))
      << frameworks.out;
  EXPECT_TRUE(absl::StrContains(frameworks.out, "disconnected"))
      << frameworks.out;
  Result frameworks_json = Run({"frameworks", "--json"});
  absl::StatusOr<JsonValue> fj = ParseJson(frameworks_json.out);
  ASSERT_TRUE(fj.ok()) << frameworks_json.out;
  ASSERT_EQ(fj->Find("frameworks")->items.size(), 1u);
  const std::string framework_id = *fj->Find("frameworks")
                                        ->items[0]
                                        .Find("framework_info")
                                        ->Find("id")
                                        ->Text("value");

  // tasks, with filters.
  Result tasks = Run({"tasks", "--state=running", "--name=sleep",
                      absl::StrCat("--agent=", agent_id)});
  EXPECT_EQ(tasks.code, 0) << tasks.err;
  ASSERT_EQ(Lines(tasks.out).size(), 2u) << tasks.out;
  EXPECT_TRUE(absl::StrContains(Lines(tasks.out)[1], task_id));
  EXPECT_TRUE(absl::StrContains(Lines(tasks.out)[1], "TASK_RUNNING"));
  EXPECT_EQ(Lines(Run({"tasks", "--name=nomatch"}).out).size(), 1u);
  Result tasks_json =
      Run({"tasks", "--json", absl::StrCat("--framework=", framework_id)});
  absl::StatusOr<JsonValue> tj = ParseJson(tasks_json.out);
  ASSERT_TRUE(tj.ok()) << tasks_json.out;
  ASSERT_EQ(tj->Find("tasks")->items.size(), 1u);
  EXPECT_EQ(tj->Find("tasks")->items[0].Text("state"), "TASK_RUNNING");
  EXPECT_EQ(Run({"tasks", "--state=bogus"}).code, 64);

  // metrics of the leader.
  Result metrics = Run({"metrics", "--filter=master/elected"});
  EXPECT_EQ(metrics.code, 0) << metrics.err;
  EXPECT_TRUE(absl::StrContains(metrics.out, "master/elected")) << metrics.out;
  Result metrics_json = Run({"metrics", "--json"});
  absl::StatusOr<JsonValue> mj = ParseJson(metrics_json.out);
  ASSERT_TRUE(mj.ok()) << metrics_json.out;
  EXPECT_EQ(mj->Text("master/elected").value_or(""), "1") << metrics_json.out;
  Result metrics_all = Run({"metrics", "--all", "--json", "--filter=master/elected"});
  absl::StatusOr<JsonValue> maj = ParseJson(metrics_all.out);
  ASSERT_TRUE(maj.ok()) << metrics_all.out;
  EXPECT_EQ(maj->fields.size(), 3u);

  // events: the launch, by type and by task, as JSON lines and a table.
  Result launched = Run({"events", "--from=1", "--type=tasks_launched", "--json"});
  EXPECT_EQ(launched.code, 0) << launched.err;
  ASSERT_EQ(Lines(launched.out).size(), 1u) << launched.out;
  absl::StatusOr<JsonValue> ej = ParseJson(Lines(launched.out)[0]);
  ASSERT_TRUE(ej.ok());
  EXPECT_NE(ej->Find("tasks_launched"), nullptr);
  const uint64_t launch_position = *ej->Uint("position");
  Result by_task = Run({"events", absl::StrCat("--task=", task_id)});
  EXPECT_EQ(by_task.code, 0) << by_task.err;
  ASSERT_GE(Lines(by_task.out).size(), 2u) << by_task.out;  // launch, RUNNING
  EXPECT_TRUE(absl::StrContains(Lines(by_task.out)[0], "tasks_launched"));
  for (const std::string& line : Lines(by_task.out)) {
    EXPECT_TRUE(absl::StrContains(line, task_id)) << line;
  }
  Result after = Run({"events", absl::StrCat("--from=", launch_position + 1),
                      "--type=tasks_launched"});
  EXPECT_EQ(after.code, 0) << after.err;
  EXPECT_EQ(after.out, "");
  EXPECT_EQ(Run({"events", "--type=no_such_type"}).code, 64);

  // kill: the FakeAgent gets the KILL, the task ends TASK_KILLED.
  Result killed = Run({"kill", task_id});
  EXPECT_EQ(killed.code, 0) << killed.err;
  EXPECT_TRUE(absl::StrContains(killed.out, "TASK_KILLED")) << killed.out;
  EXPECT_EQ(agent->kills().size(), 1u);
  Result done = Run({"tasks", "--state=killed", "--json"});
  absl::StatusOr<JsonValue> dj = ParseJson(done.out);
  ASSERT_TRUE(dj.ok()) << done.out;
  size_t killed_tasks = 0;
  for (const char* list : {"tasks", "completed_tasks"}) {
    if (const JsonValue* l = dj->Find(list)) killed_tasks += l->items.size();
  }
  EXPECT_EQ(killed_tasks, 1u) << done.out;
  Result again = Run({"kill", "no-such-task"});
  EXPECT_EQ(again.code, 1);
  EXPECT_TRUE(absl::StrContains(again.err, "no live task no-such-task"))
      << again.err;
}

TEST_F(CairnctlTest, DrainAndReactivateChangeTheAgentsState) {
  FakeAgent* agent = AddAgent("agent-d");
  const std::string agent_id = agent->agent_id()->value();

  Result drain = Run({"drain", agent_id, "--max-grace-period=5s"});
  EXPECT_EQ(drain.code, 0) << drain.err;
  Result agents = Run({"agents", "--json"});
  absl::StatusOr<JsonValue> aj = ParseJson(agents.out);
  ASSERT_TRUE(aj.ok()) << agents.out;
  const JsonValue& a = aj->Find("agents")->items.at(0);
  ASSERT_NE(a.Find("drain_info"), nullptr) << agents.out;
  EXPECT_TRUE(absl::StrContains(Run({"agents"}).out, "drain")) ;

  Result reactivate = Run({"reactivate", agent_id});
  EXPECT_EQ(reactivate.code, 0) << reactivate.err;
  agents = Run({"agents", "--json"});
  aj = ParseJson(agents.out);
  ASSERT_TRUE(aj.ok()) << agents.out;
  EXPECT_EQ(aj->Find("agents")->items.at(0).Find("drain_info"), nullptr)
      << agents.out;
  EXPECT_TRUE(absl::StrContains(Run({"agents"}).out, "active"));

  Result unknown = Run({"drain", "no-such-agent"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_TRUE(absl::StartsWith(unknown.err, "cairnctl: HTTP 4")) << unknown.err;

  Result events = Run({"events", absl::StrCat("--agent=", agent_id),
                       "--type=agent_drain_started,agent_reactivated"});
  EXPECT_EQ(events.code, 0) << events.err;
  ASSERT_EQ(Lines(events.out).size(), 2u) << events.out;
  EXPECT_TRUE(absl::StrContains(Lines(events.out)[0], "agent_drain_started"));
  EXPECT_TRUE(absl::StrContains(Lines(events.out)[1], "agent_reactivated"));
}

TEST_F(CairnctlTest, RunExitsWithTheTasksStatus) {
  FakeAgent* agent = AddAgent("agent-r");
  struct Case {
    v1::TaskState state;
    std::string message;
    int code;
  };
  for (const Case& c :
       {Case{v1::TASK_FAILED, "Command exited with status 3", 3},
        Case{v1::TASK_FINISHED, "Command exited with status 0", 0}}) {
    const size_t before = agent->launched_tasks().size();
    std::unique_ptr<Cli> run = Start(
        {"run", "--cpus=0.1", "--mem=32", "--timeout=60s", "--", "exit 3"});
    ASSERT_TRUE(agent->WaitUntil(
        [&] { return agent->launched_tasks().size() == before + 1; },
        absl::Now() + kTimeout))
        << run->err();
    const v1::TaskInfo task = agent->launched_tasks().back();
    std::optional<FakeTask> fake =
        agent->task(agent->tasks().back().framework_id, task.task_id());
    ASSERT_TRUE(fake.has_value());
    // Once it is running, it ends as the case says.
    ASSERT_TRUE(agent->WaitUntil(
        [&] {
          std::optional<FakeTask> t = agent->task(fake->framework_id, task.task_id());
          return t.has_value() && t->unacknowledged.empty();
        },
        absl::Now() + kTimeout));
    agent->SendUpdate(fake->framework_id, task.task_id(), c.state,
                      std::nullopt, c.message);
    std::optional<int> code = run->Wait(absl::Now() + kTimeout);
    ASSERT_TRUE(code.has_value()) << run->err();
    EXPECT_EQ(*code, c.code) << run->err();
    EXPECT_TRUE(absl::StrContains(run->err(), v1::TaskState_Name(c.state)))
        << run->err();
    // The fake agent serves no sandbox: a warning, not a failure.
    EXPECT_TRUE(absl::StrContains(run->err(), "warning: cannot show the task's output"))
        << run->err();
  }
  // Each run tore its framework down.
  Result frameworks = Run({"frameworks", "--json"});
  absl::StatusOr<JsonValue> fj = ParseJson(frameworks.out);
  ASSERT_TRUE(fj.ok()) << frameworks.out;
  const JsonValue* live = fj->Find("frameworks");
  EXPECT_TRUE(live == nullptr || live->items.empty()) << frameworks.out;
}

TEST_F(CairnctlTest, FindsTheNewLeaderWhenTheLeaderIsKilled) {
  AddAgent("agent-f");
  const std::string task_id = RunDetached("survivor");
  ASSERT_FALSE(task_id.empty());

  // Follow every event from the start, as JSON lines.
  background_.push_back(Start({"events", "--follow", "--from=1", "--json"}));
  Cli* follow = background_.back().get();
  auto followed = [&] {
    std::vector<std::pair<uint64_t, uint64_t>> ids;
    for (const std::string& line : Lines(follow->out())) {
      absl::StatusOr<JsonValue> json = ParseJson(line);
      if (!json.ok()) continue;  // a line being written
      ids.emplace_back(json->Uint("position").value_or(0),
                       json->Uint("index").value_or(0));
    }
    return ids;
  };
  std::optional<MasterReplica> replica = cluster_->GetReplica(leader_);
  ASSERT_TRUE(replica.has_value());
  const uint64_t applied_before = replica->applied;
  const absl::Time caught_up_by = absl::Now() + kTimeout;
  while (absl::Now() < caught_up_by &&
         (followed().empty() || followed().back().first < applied_before)) {
    absl::SleepFor(kPollPause);
  }
  ASSERT_FALSE(followed().empty()) << follow->err();

  cluster_->Kill(leader_);
  std::vector<int> survivors;
  for (int i = 0; i < 3; ++i) {
    if (i != leader_) survivors.push_back(i);
  }

  // tasks right away: cairnctl waits for and finds the new leader.
  Result tasks = Run({"tasks"});
  EXPECT_EQ(tasks.code, 0) << tasks.err;
  EXPECT_TRUE(absl::StrContains(tasks.out, task_id)) << tasks.out;

  absl::StatusOr<int> new_leader = cluster_->WaitForLeader(survivors);
  ASSERT_TRUE(new_leader.ok()) << new_leader.status();
  Result status = Run({"status", "--json"});
  EXPECT_EQ(status.code, 0) << status.err;
  absl::StatusOr<JsonValue> sj = ParseJson(status.out);
  ASSERT_TRUE(sj.ok()) << status.out;
  EXPECT_EQ(sj->Text("leader"), cluster_->Address(*new_leader));
  EXPECT_EQ(sj->Find("masters")->items.at(leader_).Text("role"), "down");

  // Something new in the log after the failover: the follower shows it,
  // and every event it printed is there once, in order.
  Result drain = Run({"drain", agents_[0]->agent_id()->value()});
  EXPECT_EQ(drain.code, 0) << drain.err;
  std::optional<MasterReplica> now = cluster_->GetReplica(*new_leader);
  ASSERT_TRUE(now.has_value());
  const absl::Time deadline = absl::Now() + kTimeout;
  while (absl::Now() < deadline &&
         (followed().empty() || followed().back().first < now->applied)) {
    absl::SleepFor(kPollPause);
  }
  std::vector<std::pair<uint64_t, uint64_t>> ids = followed();
  ASSERT_FALSE(ids.empty());
  EXPECT_GE(ids.back().first, now->applied) << follow->err();
  for (size_t i = 1; i < ids.size(); ++i) {
    EXPECT_LT(ids[i - 1], ids[i]) << "event " << i << " out of order or twice";
  }
  // Compared with a fresh read of the same range on the new leader.
  Result fresh = Run({"events", "--from=1", "--json",
                      absl::StrCat("--master=", cluster_->Address(*new_leader))});
  std::vector<std::pair<uint64_t, uint64_t>> expected;
  for (const std::string& line : Lines(fresh.out)) {
    absl::StatusOr<JsonValue> json = ParseJson(line);
    ASSERT_TRUE(json.ok()) << line;
    if (*json->Uint("position") > ids.back().first) break;
    expected.emplace_back(*json->Uint("position"), *json->Uint("index"));
  }
  EXPECT_EQ(ids, expected);
}

}  // namespace
}  // namespace cairn::tests
