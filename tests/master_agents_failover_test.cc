// Multi-process acceptance test of the master with agents and a framework:
// three real `cairn-master` processes on 127.0.0.1, two simulated agents
// (FakeAgent, speaking docs/agent-protocol.md) and one framework
// (SchedulerClient, the Mesos v1 scheduler API).
//
//  1. The agents subscribe, the framework subscribes, takes offers and
//     launches tasks on both agents; the agents report TASK_RUNNING and the
//     framework acknowledges every update.
//  2. The leader is SIGKILLed. The test prints how long it took until a new
//     leader served; agents and framework resubscribe to it, and it reports
//     exactly the agents, frameworks and tasks of before: nothing launched
//     twice, nothing lost, no acknowledged update delivered again.
//  3. The new leader launches one more task, and that task's TASK_FINISHED
//     goes round (committed, ACKNOWLEDGE back to the agent, UPDATE to the
//     framework).
//  4. All three masters are SIGKILLed and restarted: the state they fold
//     from their logs is the same as before the stop, on every master.
//
// What "reported" means: the leader's GET /master/state (agent, framework
// and task ids, task states, which list a task is in, whether the framework
// is connected), every master's GET /master/replica (counts, applied
// position, state checksum; equal on all of them) and the leader's answers
// to an implicit RECONCILE (every live task's id, agent and state).
//
// A second test covers the other side of update delivery across a leader
// kill: updates the framework had not acknowledged are delivered again, and
// an update queued by an agent while no master led is committed once.
//
// Every wait polls an endpoint or waits on a client's condition against a
// bounded deadline; nothing asserts an outcome after a fixed sleep.

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/agent.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "common/http_client.h"
#include "common/json_value.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_client.h"
#include "tests/internal/master_cluster.h"
#include "tests/internal/scheduler_client.h"

namespace cairn::tests {
namespace {

using Event = v1::scheduler::Event;
using Call = v1::scheduler::Call;

constexpr absl::Duration kTimeout = absl::Seconds(15);
constexpr absl::Duration kPollPause = absl::Milliseconds(10);
constexpr int kAgents = 2;
constexpr int kTasksPerAgent = 3;
constexpr char kGetWeights[] = R"({"type":"GET_WEIGHTS"})";

// A task as the leader reports it in a reconciliation answer.
struct ReportedTask {
  std::string agent_id;
  v1::TaskState state = v1::TASK_STAGING;

  bool operator==(const ReportedTask& other) const {
    return agent_id == other.agent_id && state == other.state;
  }
};

// A task as the leader's GET /master/state lists it.
struct StateTask {
  std::string agent_id;
  std::string state;  // "TASK_RUNNING", ...
  std::string list;   // tasks, unreachable_tasks or completed_tasks

  bool operator==(const StateTask& other) const {
    return agent_id == other.agent_id && state == other.state &&
           list == other.list;
  }
};

// The agents, frameworks and tasks in the leader's GET /master/state
// (Mesos's shape, master/state_json.h).
struct StateView {
  std::set<std::string> agents;  // slaves[].id
  // frameworks[] (not completed): id -> "connected" / "active".
  std::map<std::string, bool> connected;
  std::map<std::string, bool> active;
  std::set<std::string> completed_frameworks;
  // Every task of every framework, by "<framework id>/<task id>".
  std::map<std::string, StateTask> tasks;

  std::set<std::string> FrameworkIds() const {
    std::set<std::string> ids;
    for (const auto& [id, connected_flag] : connected) ids.insert(id);
    return ids;
  }
};

std::string Describe(const std::map<std::string, StateTask>& tasks) {
  std::string text;
  for (const auto& [id, task] : tasks) {
    absl::StrAppend(&text, id, "@", task.agent_id, "=", task.state, "(",
                    task.list, ") ");
  }
  return text;
}

// Parses GET /master/state.
absl::StatusOr<StateView> ParseState(const std::string& body) {
  absl::StatusOr<JsonValue> json = ParseJson(body);
  if (!json.ok()) return json.status();
  const JsonValue* slaves = json->Find("slaves");
  const JsonValue* frameworks = json->Find("frameworks");
  const JsonValue* completed = json->Find("completed_frameworks");
  if (slaves == nullptr || frameworks == nullptr || completed == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("not Mesos's /master/state: ", body.substr(0, 200)));
  }
  StateView view;
  for (const JsonValue& slave : slaves->items) {
    view.agents.insert(slave.Text("id").value_or(""));
  }
  auto add_tasks = [&view](const JsonValue& framework) {
    for (const char* list : {"tasks", "unreachable_tasks", "completed_tasks"}) {
      const JsonValue* tasks = framework.Find(list);
      if (tasks == nullptr) continue;
      for (const JsonValue& task : tasks->items) {
        view.tasks[absl::StrCat(task.Text("framework_id").value_or(""), "/",
                                task.Text("id").value_or(""))] =
            StateTask{task.Text("slave_id").value_or(""),
                      task.Text("state").value_or(""), list};
      }
    }
  };
  for (const JsonValue& framework : frameworks->items) {
    const std::string id = framework.Text("id").value_or("");
    view.connected[id] = framework.Bool("connected").value_or(false);
    view.active[id] = framework.Bool("active").value_or(false);
    add_tasks(framework);
  }
  for (const JsonValue& framework : completed->items) {
    view.completed_frameworks.insert(framework.Text("id").value_or(""));
    add_tasks(framework);
  }
  return view;
}

// What the masters report about the cluster.
struct Reported {
  // From /master/replica (equal on every master; see WaitForEqualStates).
  uint64_t agents = 0;
  uint64_t frameworks = 0;
  uint64_t tasks = 0;
  // The leader's GET /master/state.
  StateView state;
  // The framework's live tasks by id, from the leader's RECONCILE answers.
  std::map<std::string, ReportedTask> live_tasks;

  // The agents the live tasks are on.
  std::set<std::string> AgentsOfTasks() const {
    std::set<std::string> agents;
    for (const auto& [id, task] : live_tasks) agents.insert(task.agent_id);
    return agents;
  }
};

// Agents, frameworks and tasks (live or not) a master's state holds.
std::string Counts(const MasterReplica& replica) {
  absl::StatusOr<JsonValue> json = ParseJson(replica.json);
  if (!json.ok()) return json.status().ToString();
  return absl::StrCat("agents ", json->Uint("agents").value_or(0),
                      ", frameworks ", json->Uint("frameworks").value_or(0),
                      ", tasks ", json->Uint("tasks").value_or(0));
}

std::string Describe(const std::map<std::string, ReportedTask>& tasks) {
  std::string text;
  for (const auto& [id, task] : tasks) {
    absl::StrAppend(&text, id, "@", task.agent_id, "=",
                    v1::TaskState_Name(task.state), " ");
  }
  return text;
}

v1::TaskInfo CommandTask(const std::string& id) {
  v1::TaskInfo task;
  task.set_name(id);
  task.mutable_task_id()->set_value(id);
  *task.add_resources() = ScalarResource("cpus", 1);
  *task.add_resources() = ScalarResource("mem", 128);
  task.mutable_command()->set_value("sleep 1000");
  return task;
}

bool IsUpdate(const Event& event) {
  return event.type() == Event::UPDATE &&
         !event.update().status().uuid().empty();
}

bool IsOfferEvent(const Event& event) {
  return event.type() == Event::OFFERS || event.type() == Event::RESCIND;
}

bool IsReconciliation(const Event& event) {
  return event.type() == Event::UPDATE &&
         event.update().status().uuid().empty() &&
         event.update().status().reason() ==
             v1::TaskStatus::REASON_RECONCILIATION;
}

class MasterAgentsFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<MasterClusterOptions> options =
        OptionsForThisTest("master_agents_failover");
    ASSERT_TRUE(options.ok()) << options.status();
    options->timeout = kTimeout;
    options->flags.insert(options->flags.end(), FastLivenessFlags().begin(),
                          FastLivenessFlags().end());
    absl::StatusOr<std::unique_ptr<MasterCluster>> cluster =
        MasterCluster::Start(*options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    for (int i = 0; i < 3; ++i) masters_.push_back(cluster_->Address(i));
  }

  void TearDown() override {
    // Clients first: their threads talk to the masters.
    scheduler_.reset();
    agents_.clear();
  }

  std::unique_ptr<FakeAgent> NewAgent(int i) {
    FakeAgentOptions options;
    options.masters = masters_;
    options.hostname = absl::StrCat("agent-", i);
    options.port = 5051;
    options.resources = {ScalarResource("cpus", 4),
                         ScalarResource("mem", 4096)};
    options.auto_resubscribe = true;
    options.resubscribe_backoff = absl::Milliseconds(50);
    options.max_resubscribe_backoff = absl::Milliseconds(500);
    options.request_timeout = absl::Seconds(2);
    options.subscribe_timeout = kTimeout;
    return std::make_unique<FakeAgent>(options);
  }

  // Polls master `i` until it says it leads and serves a read (GET_WEIGHTS
  // answered 200). False after `deadline`.
  bool WaitUntilServing(int i, absl::Time deadline) {
    while (absl::Now() < deadline) {
      std::optional<MasterReplica> replica = cluster_->GetReplica(i);
      if (replica.has_value() && replica->role == "leading") {
        absl::StatusOr<http::Response> read =
            cluster_->Request(i, "POST", "/api/v1", kGetWeights);
        if (read.ok() && read->status == 200) return true;
      }
      absl::SleepFor(kPollPause);
    }
    return false;
  }

  // Subscribes `n` new agents (4 cpus, 4096 mem each).
  void StartAgents(int n) {
    for (int i = 0; i < n; ++i) {
      agents_.push_back(NewAgent(i));
      absl::StatusOr<v1::AgentID> id = agents_.back()->Subscribe();
      ASSERT_TRUE(id.ok()) << id.status();
      for (const v1::AgentID& other : agent_ids_) {
        ASSERT_NE(other.value(), id->value());
      }
      agent_ids_.push_back(*id);
    }
  }

  // Subscribes the framework (failover_timeout 60 s).
  void SubscribeFramework() {
    SchedulerClientOptions options;
    options.masters = masters_;
    options.request_timeout = absl::Seconds(2);
    options.subscribe_timeout = kTimeout;
    options.call_timeout = kTimeout;
    scheduler_ = std::make_unique<SchedulerClient>(options);
    v1::FrameworkInfo framework;
    framework.set_user("nobody");
    framework.set_name("acceptance");
    framework.set_failover_timeout(60);
    absl::StatusOr<v1::FrameworkID> id = scheduler_->Subscribe(framework);
    ASSERT_TRUE(id.ok()) << id.status();
    framework_id_ = *id;
  }

  static v1::Filters RefuseForAnHour() {
    v1::Filters filters;
    filters.set_refuse_seconds(3600);
    return filters;
  }

  // Applies the framework's OFFERS and RESCIND events to `offers_`, in
  // arrival order: every queued one, then, while `offers_` has no offer on
  // an agent `wanted` accepts, whatever arrives before `deadline`.
  void TakeOffers(const std::function<bool(const std::string&)>& wanted,
                  absl::Time deadline) {
    auto has_wanted = [&] {
      for (const auto& [id, offer] : offers_) {
        if (wanted(offer.agent_id().value())) return true;
      }
      return false;
    };
    while (true) {
      // Queued events first (a deadline in the past never waits).
      const absl::Time until = has_wanted() ? absl::InfinitePast() : deadline;
      absl::StatusOr<Event> event =
          scheduler_->WaitForEvent(IsOfferEvent, until);
      if (!event.ok()) {
        ASSERT_TRUE(has_wanted()) << "no usable offer: " << event.status();
        return;
      }
      if (event->type() == Event::RESCIND) {
        offers_.erase(event->rescind().offer_id().value());
        continue;
      }
      for (const v1::Offer& offer : event->offers().offers()) {
        offers_[offer.id().value()] = offer;
      }
    }
  }

  // An outstanding offer on `agent_id` (which TakeOffers() found), removed
  // from `offers_`.
  v1::Offer UseOffer(const std::string& agent_id) {
    for (auto it = offers_.begin(); it != offers_.end(); ++it) {
      if (it->second.agent_id().value() == agent_id) {
        v1::Offer offer = std::move(it->second);
        offers_.erase(it);
        return offer;
      }
    }
    ADD_FAILURE() << "no offer on " << agent_id;
    return v1::Offer();
  }

  // Takes one offer from each agent and launches `per_agent` tasks
  // ("task-<agent>-<n>") on each; the unused rest is refused for an hour,
  // so the state stops changing. Fills `agent_of_task` (task id -> agent
  // id). REQUIRES: no failover since the agents subscribed (their offers
  // are not rescinded meanwhile).
  void LaunchOnEveryAgent(int per_agent,
                          std::map<std::string, std::string>* agent_of_task) {
    const absl::Time deadline = absl::Now() + kTimeout;
    for (size_t a = 0; a < agents_.size(); ++a) {
      const std::string agent_id = agent_ids_[a].value();
      ASSERT_NO_FATAL_FAILURE(TakeOffers(
          [&agent_id](const std::string& id) { return id == agent_id; },
          deadline));
      const v1::Offer offer = UseOffer(agent_id);
      std::vector<v1::TaskInfo> tasks;
      for (int t = 0; t < per_agent; ++t) {
        tasks.push_back(CommandTask(absl::StrCat("task-", a, "-", t)));
        (*agent_of_task)[tasks.back().task_id().value()] = agent_id;
      }
      absl::Status launched =
          scheduler_->Launch(offer, tasks, RefuseForAnHour());
      ASSERT_TRUE(launched.ok()) << launched;
    }
  }

  // Launches `task` on any agent offering room, retrying with the next
  // offer while the master answers that the offer was no longer valid (an
  // offer may be rescinded after it was taken, e.g. when its agent
  // reregisters with a new leader). Acknowledges the TASK_RUNNING update
  // and returns the index of the agent that runs it.
  void LaunchSomewhere(const v1::TaskInfo& task, int* agent_index) {
    const absl::Time deadline = absl::Now() + kTimeout;
    while (true) {
      ASSERT_NO_FATAL_FAILURE(
          TakeOffers([](const std::string&) { return true; }, deadline));
      const v1::Offer offer =
          UseOffer(offers_.begin()->second.agent_id().value());
      ASSERT_TRUE(scheduler_->Launch(offer, {task}, RefuseForAnHour()).ok());
      absl::StatusOr<Event> update = scheduler_->WaitForEvent(
          [&task](const Event& e) {
            return e.type() == Event::UPDATE &&
                   e.update().status().task_id().value() ==
                       task.task_id().value();
          },
          deadline);
      ASSERT_TRUE(update.ok()) << update.status();
      const v1::TaskStatus& status = update->update().status();
      if (status.reason() == v1::TaskStatus::REASON_INVALID_OFFERS) {
        EXPECT_TRUE(status.uuid().empty());
        continue;
      }
      ASSERT_EQ(status.state(), v1::TASK_RUNNING) << status.DebugString();
      ASSERT_FALSE(status.uuid().empty());
      ASSERT_TRUE(scheduler_->Acknowledge(status).ok());
      acknowledged_.insert(status.uuid());
      for (size_t a = 0; a < agent_ids_.size(); ++a) {
        if (agent_ids_[a].value() == offer.agent_id().value()) {
          *agent_index = static_cast<int>(a);
        }
      }
      return;
    }
  }

  // SIGKILLs master `leader`, waits until one of the others leads and
  // serves, and prints how long that took. Sets `survivors` and `next`.
  void KillLeader(int leader, std::vector<int>* survivors, int* next) {
    const absl::Time killed = absl::Now();
    cluster_->Kill(leader);
    for (int i = 0; i < 3; ++i) {
      if (i != leader) survivors->push_back(i);
    }
    absl::StatusOr<int> elected = cluster_->WaitForLeader(*survivors);
    ASSERT_TRUE(elected.ok()) << elected.status();
    ASSERT_TRUE(WaitUntilServing(*elected, absl::Now() + kTimeout));
    std::printf("failover: new leader %s serving %s after SIGKILL of %s\n",
                cluster_->Address(*elected).c_str(),
                absl::FormatDuration(absl::Now() - killed).c_str(),
                cluster_->Address(leader).c_str());
    std::fflush(stdout);
    *next = *elected;
  }

  // Waits until every agent is subscribed again, with its id, for the
  // `subscriptions`th time.
  void WaitForAgentsResubscribed(int subscriptions) {
    for (size_t i = 0; i < agents_.size(); ++i) {
      FakeAgent* agent = agents_[i].get();
      ASSERT_TRUE(agent->WaitUntil(
          [agent, subscriptions] {
            return agent->subscribed() &&
                   agent->subscriptions() >= subscriptions;
          },
          absl::Now() + kTimeout))
          << "agent " << i << " did not resubscribe";
      EXPECT_EQ(agent->agent_id()->value(), agent_ids_[i].value());
    }
  }

  // Waits until every agent has a stream open to the current leader, with
  // nothing left unacknowledged.
  void WaitForAgentsQuiet() {
    const absl::Time deadline = absl::Now() + kTimeout;
    for (size_t i = 0; i < agents_.size(); ++i) {
      FakeAgent* agent = agents_[i].get();
      EXPECT_TRUE(agent->WaitUntil(
          [agent] {
            return agent->subscribed() && agent->unacknowledged_updates() == 0;
          },
          deadline))
          << "agent " << i << ": subscribed " << agent->subscribed() << ", "
          << agent->unacknowledged_updates() << " updates unacknowledged";
    }
  }

  // Takes the framework's UPDATEs (with a uuid) until `count` of them are
  // in `state`, acknowledging each unless `acknowledge` is false; appends
  // them to `taken` if given. An update delivered again after its
  // acknowledgement was answered 202 is a failure (it is in the log).
  void TakeUpdates(size_t count, v1::TaskState state, bool acknowledge = true,
                   std::vector<v1::TaskStatus>* taken = nullptr) {
    const absl::Time deadline = absl::Now() + kTimeout;
    size_t matched = 0;
    while (matched < count) {
      absl::StatusOr<Event> event =
          scheduler_->WaitForEvent(IsUpdate, deadline);
      ASSERT_TRUE(event.ok()) << event.status() << " after " << matched << "/"
                              << count << " " << v1::TaskState_Name(state);
      const v1::TaskStatus& status = event->update().status();
      ASSERT_EQ(acknowledged_.count(status.uuid()), 0u)
          << "the acknowledged update of " << status.task_id().value() << " to "
          << v1::TaskState_Name(status.state()) << " was delivered again";
      if (status.state() == state) ++matched;
      if (taken != nullptr) taken->push_back(status);
      if (!acknowledge) continue;
      absl::Status ack = scheduler_->Acknowledge(status);
      ASSERT_TRUE(ack.ok()) << ack;
      acknowledged_.insert(status.uuid());
    }
  }

  // Expects no UPDATE (with a uuid) among the framework's queued events,
  // and drops those. Called after a reconciliation, whose answers follow any
  // pending update on the stream. Other events (OFFERS...) stay queued.
  void ExpectNoUpdateQueued(const std::string& when) {
    while (true) {
      // A deadline in the past: only what is queued already.
      absl::StatusOr<Event> event =
          scheduler_->WaitForEvent(IsUpdate, absl::InfinitePast());
      if (!event.ok()) return;
      ADD_FAILURE() << "update of "
                    << event->update().status().task_id().value() << " to "
                    << v1::TaskState_Name(event->update().status().state())
                    << " delivered " << when;
    }
  }

  // Implicit reconciliation through the current leader: one answer per
  // live task. An explicit reconciliation of an unknown task follows it;
  // the answers come in order on the stream, so that one's answer marks
  // the end of the first's.
  absl::StatusOr<std::map<std::string, ReportedTask>> ReconcileTasks() {
    absl::Status implicit = scheduler_->Reconcile();
    if (!implicit.ok()) return implicit;
    const std::string marker = absl::StrCat("marker-", ++reconciliations_);
    Call::Reconcile::Task task;
    task.mutable_task_id()->set_value(marker);
    absl::Status explicit_one = scheduler_->Reconcile({task});
    if (!explicit_one.ok()) return explicit_one;
    std::map<std::string, ReportedTask> tasks;
    const absl::Time deadline = absl::Now() + kTimeout;
    while (true) {
      absl::StatusOr<Event> event =
          scheduler_->WaitForEvent(IsReconciliation, deadline);
      if (!event.ok()) return event.status();
      const v1::TaskStatus& status = event->update().status();
      if (status.task_id().value() == marker) {
        if (status.state() != v1::TASK_LOST) {
          return absl::InternalError(
              absl::StrCat("the unknown task '", marker, "' is reported ",
                           v1::TaskState_Name(status.state())));
        }
        return tasks;
      }
      if (!tasks
               .emplace(status.task_id().value(),
                        ReportedTask{status.agent_id().value(), status.state()})
               .second) {
        return absl::InternalError(absl::StrCat(
            "task '", status.task_id().value(), "' reconciled twice"));
      }
    }
  }

  // What the masters in `indices` report, once their states are equal.
  // GET /master/state of master `i`. Errors: the transport's, or
  // kUnavailable naming the status when the answer is not 200.
  absl::StatusOr<StateView> GetState(int i) {
    absl::StatusOr<http::Response> response =
        cluster_->Request(i, "GET", "/master/state");
    if (!response.ok()) return response.status();
    if (response->status != 200) {
      return absl::UnavailableError(absl::StrCat(
          "GET /master/state: ", response->status, " ", response->body));
    }
    return ParseState(response->body);
  }

  // Polls the leader's /master/state until `condition` holds of it; the
  // last view. kDeadlineExceeded after kTimeout.
  absl::StatusOr<StateView> WaitForState(
      int leader, const std::function<bool(const StateView&)>& condition) {
    const absl::Time deadline = absl::Now() + kTimeout;
    absl::StatusOr<StateView> view;
    while (true) {
      view = GetState(leader);
      if (view.ok() && condition(*view)) return view;
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat(
            "/master/state: ",
            view.ok() ? Describe(view->tasks) : view.status().ToString()));
      }
      absl::SleepFor(kPollPause);
    }
  }

  // What the masters in `indices` report once their states are equal:
  // counts from /master/replica, the leader's /master/state, and the
  // leader's answers to a reconciliation.
  absl::StatusOr<Reported> Report(int leader, const std::vector<int>& indices,
                                  uint64_t min_applied,
                                  MasterReplica* replica_out = nullptr) {
    absl::StatusOr<MasterReplica> replica =
        cluster_->WaitForEqualStates(indices, min_applied);
    if (!replica.ok()) return replica.status();
    if (replica->leader != cluster_->Address(leader)) {
      return absl::FailedPreconditionError(
          absl::StrCat("the leader is ", replica->leader, ", not ",
                       cluster_->Address(leader)));
    }
    absl::StatusOr<JsonValue> json = ParseJson(replica->json);
    if (!json.ok()) return json.status();
    Reported reported;
    reported.agents = json->Uint("agents").value_or(0);
    reported.frameworks = json->Uint("frameworks").value_or(0);
    reported.tasks = json->Uint("tasks").value_or(0);
    absl::StatusOr<StateView> state = GetState(leader);
    if (!state.ok()) return state.status();
    reported.state = *std::move(state);
    absl::StatusOr<std::map<std::string, ReportedTask>> tasks =
        ReconcileTasks();
    if (!tasks.ok()) return tasks.status();
    reported.live_tasks = *std::move(tasks);
    if (replica_out != nullptr) *replica_out = *replica;
    return reported;
  }

  // Expects `after` to report exactly the agents, frameworks and tasks
  // (ids, states, agents) `before` did. Whether a framework is connected is
  // not compared: see ExpectFrameworkConnected.
  static void ExpectSameReport(const Reported& before, const Reported& after) {
    EXPECT_EQ(after.agents, before.agents);
    EXPECT_EQ(after.frameworks, before.frameworks);
    EXPECT_EQ(after.tasks, before.tasks);
    EXPECT_EQ(after.state.agents, before.state.agents);
    EXPECT_EQ(after.state.FrameworkIds(), before.state.FrameworkIds());
    EXPECT_EQ(after.state.completed_frameworks,
              before.state.completed_frameworks);
    EXPECT_EQ(after.state.tasks, before.state.tasks)
        << "before: " << Describe(before.state.tasks)
        << "\nafter: " << Describe(after.state.tasks);
    EXPECT_EQ(after.live_tasks, before.live_tasks)
        << "before: " << Describe(before.live_tasks)
        << "\nafter: " << Describe(after.live_tasks);
  }

  // Expects the framework listed as connected and active.
  void ExpectFrameworkConnected(const StateView& state) {
    EXPECT_TRUE(state.connected.count(framework_id_.value()) > 0 &&
                state.connected.at(framework_id_.value()))
        << framework_id_.value();
    EXPECT_TRUE(state.active.count(framework_id_.value()) > 0 &&
                state.active.at(framework_id_.value()))
        << framework_id_.value();
  }

  // After an election and before the framework resubscribes: the new
  // leader lists every agent, framework and task of `before`, and shows the
  // framework disconnected (its failover timeout runs).
  void ExpectKnownBeforeResubscription(int leader, const Reported& before) {
    const std::string id = framework_id_.value();
    absl::StatusOr<StateView> state =
        WaitForState(leader, [&id](const StateView& view) {
          auto it = view.connected.find(id);
          return it != view.connected.end() && !it->second;
        });
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_EQ(state->agents, before.state.agents);
    EXPECT_EQ(state->FrameworkIds(), before.state.FrameworkIds());
    EXPECT_EQ(state->completed_frameworks, before.state.completed_frameworks);
    EXPECT_EQ(state->tasks, before.state.tasks)
        << "before: " << Describe(before.state.tasks)
        << "\nat election: " << Describe(state->tasks);
    EXPECT_FALSE(state->active.at(id));
  }

  // Resubscribes the framework once its stream with the old leader ended
  // (the client does not reconnect by itself); expects the same id back.
  // Offers do not survive a framework's failover: the old stream's OFFERS
  // and RESCINDs (still queued) and `offers_` are dropped first.
  void ResubscribeFramework() {
    ASSERT_TRUE(scheduler_->WaitForStreamEnd(absl::Now() + kTimeout).ok());
    while (scheduler_->WaitForEvent(IsOfferEvent, absl::InfinitePast()).ok()) {
    }
    offers_.clear();
    absl::StatusOr<v1::FrameworkID> id = scheduler_->Resubscribe();
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_EQ(id->value(), framework_id_.value());
  }

  // Every agent launched exactly its tasks, each once, and was never asked
  // to kill one.
  void ExpectEachLaunchOnce(size_t expected_total) {
    size_t total = 0;
    for (size_t i = 0; i < agents_.size(); ++i) {
      total += agents_[i]->launched_tasks().size();
      EXPECT_EQ(agents_[i]->repeated_launches(), 0u) << "agent " << i;
      EXPECT_TRUE(agents_[i]->kills().empty()) << "agent " << i;
      EXPECT_TRUE(agents_[i]->shutdowns().empty()) << "agent " << i;
    }
    EXPECT_EQ(total, expected_total);
  }

  std::unique_ptr<MasterCluster> cluster_;
  std::vector<std::string> masters_;
  std::vector<std::unique_ptr<FakeAgent>> agents_;
  std::unique_ptr<SchedulerClient> scheduler_;
  v1::FrameworkID framework_id_;
  std::vector<v1::AgentID> agent_ids_;
  // Offers the framework holds (OFFERS less RESCINDs less used), by id.
  std::map<std::string, v1::Offer> offers_;
  // Uuids of the UPDATEs the framework acknowledged (answered 202).
  std::set<std::string> acknowledged_;
  int reconciliations_ = 0;
};

TEST_F(MasterAgentsFailoverTest,
       TasksFrameworksAndAgentsSurviveLeaderKillAndFullRestart) {
  absl::StatusOr<int> first = cluster_->WaitForLeader({0, 1, 2});
  ASSERT_TRUE(first.ok()) << first.status();
  const int leader = *first;

  // ---- 1. Agents, a framework, tasks on both agents ----------------------
  ASSERT_NO_FATAL_FAILURE(StartAgents(kAgents));
  ASSERT_NO_FATAL_FAILURE(SubscribeFramework());
  std::map<std::string, std::string> agent_of_task;
  ASSERT_NO_FATAL_FAILURE(LaunchOnEveryAgent(kTasksPerAgent, &agent_of_task));
  ASSERT_NO_FATAL_FAILURE(
      TakeUpdates(kAgents * kTasksPerAgent, v1::TASK_RUNNING));
  WaitForAgentsQuiet();
  ExpectEachLaunchOnce(kAgents * kTasksPerAgent);

  MasterReplica replica_before_kill;
  absl::StatusOr<Reported> before_kill =
      Report(leader, {0, 1, 2}, 1, &replica_before_kill);
  ASSERT_TRUE(before_kill.ok()) << before_kill.status();
  EXPECT_EQ(
      before_kill->state.agents,
      std::set<std::string>({agent_ids_[0].value(), agent_ids_[1].value()}));
  EXPECT_EQ(before_kill->state.FrameworkIds(),
            std::set<std::string>({framework_id_.value()}));
  ExpectFrameworkConnected(before_kill->state);
  ASSERT_EQ(before_kill->state.tasks.size(), agent_of_task.size())
      << Describe(before_kill->state.tasks);
  for (const auto& [id, agent] : agent_of_task) {
    EXPECT_EQ(
        before_kill->state.tasks[absl::StrCat(framework_id_.value(), "/", id)],
        (StateTask{agent, "TASK_RUNNING", "tasks"}))
        << id;
  }
  EXPECT_EQ(before_kill->agents, static_cast<uint64_t>(kAgents));
  EXPECT_EQ(before_kill->frameworks, 1u);
  EXPECT_EQ(before_kill->tasks,
            static_cast<uint64_t>(kAgents * kTasksPerAgent));
  EXPECT_EQ(
      before_kill->AgentsOfTasks(),
      std::set<std::string>({agent_ids_[0].value(), agent_ids_[1].value()}));
  ASSERT_EQ(before_kill->live_tasks.size(), agent_of_task.size());
  for (const auto& [id, task] : before_kill->live_tasks) {
    EXPECT_EQ(task.agent_id, agent_of_task[id]) << id;
    EXPECT_EQ(task.state, v1::TASK_RUNNING) << id;
  }

  // ---- 2. SIGKILL the leader ---------------------------------------------
  std::vector<int> survivors;
  int next = -1;
  ASSERT_NO_FATAL_FAILURE(KillLeader(leader, &survivors, &next));

  // Before the framework resubscribed, the new leader knows everything
  // (from the log) and shows the framework disconnected.
  std::optional<MasterReplica> at_election = cluster_->GetReplica(next);
  ASSERT_TRUE(at_election.has_value());
  EXPECT_EQ(Counts(*at_election), Counts(replica_before_kill))
      << at_election->json;
  ASSERT_NO_FATAL_FAILURE(ExpectKnownBeforeResubscription(next, *before_kill));

  // The agents resubscribe by themselves, the framework when told to.
  ASSERT_NO_FATAL_FAILURE(ResubscribeFramework());
  ASSERT_NO_FATAL_FAILURE(WaitForAgentsResubscribed(2));
  WaitForAgentsQuiet();

  absl::StatusOr<Reported> after_kill = Report(next, survivors, 1);
  ASSERT_TRUE(after_kill.ok()) << after_kill.status();
  ExpectSameReport(*before_kill, *after_kill);
  ExpectFrameworkConnected(after_kill->state);
  ExpectEachLaunchOnce(kAgents * kTasksPerAgent);
  // Every update was acknowledged before the kill: the new leader (which
  // sends pending updates right after SUBSCRIBED, before any
  // reconciliation answer) has nothing to deliver again.
  ExpectNoUpdateQueued("again after the failover");

  // ---- 3. One more task through the new leader, to TASK_FINISHED ---------
  ASSERT_TRUE(scheduler_->Revive().ok());
  const v1::TaskInfo extra = CommandTask("task-extra");
  int extra_agent = -1;
  ASSERT_NO_FATAL_FAILURE(LaunchSomewhere(extra, &extra_agent));
  ASSERT_NE(extra_agent, -1);
  FakeAgent* runner = agents_[extra_agent].get();
  ASSERT_TRUE(runner->WaitUntil(
      [runner] { return runner->unacknowledged_updates() == 0; },
      absl::Now() + kTimeout));
  const std::string finished_uuid =
      runner->SendUpdate(framework_id_, extra.task_id(), v1::TASK_FINISHED);
  // The ACKNOWLEDGE comes back only once the update is committed.
  EXPECT_TRUE(runner->WaitUntil(
      [runner, &finished_uuid] {
        for (const v1::AgentEvent::Acknowledge& ack :
             runner->acknowledgements()) {
          if (ack.uuid() == finished_uuid) return true;
        }
        return false;
      },
      absl::Now() + kTimeout));
  ASSERT_NO_FATAL_FAILURE(TakeUpdates(1, v1::TASK_FINISHED));
  WaitForAgentsQuiet();
  ExpectEachLaunchOnce(kAgents * kTasksPerAgent + 1);
  EXPECT_EQ(runner->stray_acknowledgements(), 0u);

  // The killed master comes back and catches up.
  ASSERT_TRUE(
      cluster_
          ->Restart(leader, absl::StrCat("master-", leader, "-rejoined.log"))
          .ok());
  ASSERT_TRUE(cluster_->WaitForHealth(leader, absl::Now() + kTimeout));

  MasterReplica replica_before_stop;
  absl::StatusOr<Reported> before_stop = Report(
      next, {0, 1, 2}, replica_before_kill.applied + 1, &replica_before_stop);
  ASSERT_TRUE(before_stop.ok()) << before_stop.status();
  // The finished task is completed; the others are as before the kill.
  EXPECT_EQ(before_stop->live_tasks, before_kill->live_tasks)
      << Describe(before_stop->live_tasks);
  EXPECT_EQ(before_stop->agents, before_kill->agents);
  EXPECT_EQ(before_stop->frameworks, before_kill->frameworks);
  EXPECT_EQ(before_stop->state.agents, before_kill->state.agents);
  EXPECT_EQ(before_stop->state.FrameworkIds(),
            before_kill->state.FrameworkIds());
  std::map<std::string, StateTask> expected_tasks = before_kill->state.tasks;
  expected_tasks[absl::StrCat(framework_id_.value(), "/task-extra")] =
      StateTask{agent_ids_[extra_agent].value(), "TASK_FINISHED",
                "completed_tasks"};
  EXPECT_EQ(before_stop->state.tasks, expected_tasks)
      << Describe(before_stop->state.tasks);

  // ---- 4. Stop all three masters, start them again -----------------------
  for (int i = 0; i < 3; ++i) cluster_->Kill(i);
  // Each master alone (no quorum: nobody can lead and write) folds its own
  // log back to exactly the state of before the stop.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        cluster_->Restart(i, absl::StrCat("master-", i, "-alone.log")).ok());
    ASSERT_TRUE(cluster_->WaitForHealth(i, absl::Now() + kTimeout)) << i;
    std::optional<MasterReplica> alone = cluster_->GetReplica(i);
    ASSERT_TRUE(alone.has_value()) << i;
    EXPECT_NE(alone->role, "leading") << alone->json;
    EXPECT_EQ(alone->applied, replica_before_stop.applied) << alone->json;
    EXPECT_EQ(alone->crc, replica_before_stop.crc) << alone->json;
    cluster_->Kill(i);
  }
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        cluster_->Restart(i, absl::StrCat("master-", i, "-restarted.log"))
            .ok());
  }
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(cluster_->WaitForHealth(i, absl::Now() + kTimeout)) << i;
  }
  absl::StatusOr<int> third = cluster_->WaitForLeader({0, 1, 2});
  ASSERT_TRUE(third.ok()) << third.status();
  ASSERT_TRUE(WaitUntilServing(*third, absl::Now() + kTimeout));
  ASSERT_NO_FATAL_FAILURE(
      ExpectKnownBeforeResubscription(*third, *before_stop));
  ASSERT_NO_FATAL_FAILURE(ResubscribeFramework());
  ASSERT_NO_FATAL_FAILURE(WaitForAgentsResubscribed(3));
  WaitForAgentsQuiet();
  MasterReplica replica_after_restart;
  absl::StatusOr<Reported> after_restart = Report(
      *third, {0, 1, 2}, replica_before_stop.applied, &replica_after_restart);
  ASSERT_TRUE(after_restart.ok()) << after_restart.status();
  ExpectSameReport(*before_stop, *after_restart);
  ExpectFrameworkConnected(after_restart->state);
  ExpectEachLaunchOnce(kAgents * kTasksPerAgent + 1);
  ExpectNoUpdateQueued("again after the restart");
}

// The complement of the acceptance run: updates the framework had not
// acknowledged when the leader died are delivered again by the next leader
// (the same uuids: they are in the log), and an update the agent queued
// while no master led is committed once, acknowledged to the agent and
// delivered to the framework after the task's earlier update.
TEST_F(MasterAgentsFailoverTest,
       UnacknowledgedUpdatesAreRedeliveredAndQueuedOnesCommittedAfterKill) {
  absl::StatusOr<int> first = cluster_->WaitForLeader({0, 1, 2});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_NO_FATAL_FAILURE(StartAgents(1));
  ASSERT_NO_FATAL_FAILURE(SubscribeFramework());
  std::map<std::string, std::string> agent_of_task;
  ASSERT_NO_FATAL_FAILURE(LaunchOnEveryAgent(2, &agent_of_task));
  // The framework hears of both tasks running and says nothing.
  std::vector<v1::TaskStatus> running;
  ASSERT_NO_FATAL_FAILURE(
      TakeUpdates(2, v1::TASK_RUNNING, /*acknowledge=*/false, &running));
  ASSERT_EQ(running.size(), 2u);
  WaitForAgentsQuiet();  // the master acknowledged both to the agent

  std::vector<int> survivors;
  int next = -1;
  ASSERT_NO_FATAL_FAILURE(KillLeader(*first, &survivors, &next));
  FakeAgent* agent = agents_[0].get();
  const v1::TaskID finished_task = running[0].task_id();
  const std::string finished_uuid =
      agent->SendUpdate(framework_id_, finished_task, v1::TASK_FINISHED);

  ASSERT_NO_FATAL_FAILURE(ResubscribeFramework());
  ASSERT_NO_FATAL_FAILURE(WaitForAgentsResubscribed(2));
  // The agent's TASK_FINISHED is committed and acknowledged to it.
  EXPECT_TRUE(agent->WaitUntil(
      [agent, &finished_uuid] {
        for (const v1::AgentEvent::Acknowledge& ack :
             agent->acknowledgements()) {
          if (ack.uuid() == finished_uuid) return true;
        }
        return false;
      },
      absl::Now() + kTimeout));

  // Both TASK_RUNNING updates again, with their uuids, then (after its
  // acknowledgement) the finished task's TASK_FINISHED.
  std::vector<v1::TaskStatus> again;
  ASSERT_NO_FATAL_FAILURE(TakeUpdates(2, v1::TASK_RUNNING, true, &again));
  std::set<std::string> before_uuids;
  std::set<std::string> again_uuids;
  for (const v1::TaskStatus& s : running) before_uuids.insert(s.uuid());
  for (const v1::TaskStatus& s : again) {
    if (s.state() == v1::TASK_RUNNING) again_uuids.insert(s.uuid());
  }
  EXPECT_EQ(again_uuids, before_uuids);
  std::vector<v1::TaskStatus> finished;
  ASSERT_NO_FATAL_FAILURE(TakeUpdates(1, v1::TASK_FINISHED, true, &finished));
  ASSERT_EQ(finished.back().task_id().value(), finished_task.value());
  EXPECT_EQ(finished.back().uuid(), finished_uuid);

  WaitForAgentsQuiet();
  absl::StatusOr<Reported> after = Report(next, survivors, 1);
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->live_tasks.size(), 1u) << Describe(after->live_tasks);
  EXPECT_EQ(after->live_tasks.begin()->first, running[1].task_id().value());
  EXPECT_EQ(after->live_tasks.begin()->second.state, v1::TASK_RUNNING);
  EXPECT_EQ(after->agents, 1u);
  EXPECT_EQ(after->frameworks, 1u);
  const std::string agent_id = agent_ids_[0].value();
  EXPECT_EQ(
      after->state.tasks,
      (std::map<std::string, StateTask>{
          {absl::StrCat(framework_id_.value(), "/", finished_task.value()),
           {agent_id, "TASK_FINISHED", "completed_tasks"}},
          {absl::StrCat(framework_id_.value(), "/",
                        running[1].task_id().value()),
           {agent_id, "TASK_RUNNING", "tasks"}}}))
      << Describe(after->state.tasks);
  ExpectFrameworkConnected(after->state);
  ExpectNoUpdateQueued("again after its acknowledgement");
  ExpectEachLaunchOnce(2);
  EXPECT_EQ(agent->stray_acknowledgements(), 0u);
}

}  // namespace
}  // namespace cairn::tests
