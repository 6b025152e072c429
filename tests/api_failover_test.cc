// Acceptance test of the public APIs through a leader failover (issue 4,
// acceptance 3): three real `cairn-master` processes on 127.0.0.1, two
// simulated agents (FakeAgent), one framework (SchedulerClient) and an
// operator who watches the cluster with a Mesos operator SUBSCRIBE stream
// (POST /api/v1, raw HTTP) and Cairn's history stream (GET /api/v1/events).
//
//  1. The framework launches two tasks on each agent; the operator's
//     SUBSCRIBE stream shows them added and running, and its history
//     stream (live, from position 1, opened on the leader) carries every
//     committed event with its log position.
//  2. The leader is SIGKILLed. Both operator streams end. The new leader
//     commits events nobody is watching: the agents reregister, the
//     framework resubscribes and one task finishes.
//  3. Framework: a scheduler that knows only a standby's address POSTs
//     SUBSCRIBE there, follows the 307 to the new leader and resubscribes
//     with its framework_id: it keeps its tasks (an implicit RECONCILE
//     reports every live one TASK_RUNNING on its agent) and gets the
//     updates generated after the failover (TASK_FINISHED from an agent).
//  4. Operator: SUBSCRIBE to the standby is 307 to the new leader, whose
//     SUBSCRIBED state holds every task in the state the history says; the
//     history stream is reopened on a standby with `from=` the position
//     after the last one it holds completely. What it read before the kill
//     and after reconnecting is, event for event, the whole history read
//     at the end with `from=1` — nothing missed, nothing twice, in order —
//     and it includes everything committed while nobody watched.
//
// Every wait is bounded by a deadline on a condition; nothing asserts an
// outcome after a fixed sleep.

#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
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
#include "cairn/v1/master.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/operator.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/master_channel.h"
#include "common/record_stream_reader.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_client.h"
#include "tests/internal/master_cluster.h"
#include "tests/internal/scheduler_client.h"

namespace cairn::tests {
namespace {

using OperatorEvent = v1::master_api::Event;
using SchedulerEvent = v1::scheduler::Event;
using SchedulerCall = v1::scheduler::Call;

constexpr absl::Duration kTimeout = absl::Seconds(15);
constexpr absl::Duration kPollPause = absl::Milliseconds(10);
constexpr int kAgents = 2;
constexpr int kTasksPerAgent = 2;
constexpr char kGetWeights[] = R"({"type":"GET_WEIGHTS"})";

std::string TaskName(int agent, int n) {
  return absl::StrCat("task-", agent, "-", n);
}

std::string Id(const v1::Event& e) {
  return absl::StrCat(e.position(), ":", e.index());
}

std::string Ids(const std::vector<v1::Event>& events) {
  std::string text;
  for (const v1::Event& e : events) absl::StrAppend(&text, Id(e), " ");
  return text;
}

// The history stream's events in `records` (an empty record is a
// heartbeat; a JSON object without a position is the stream's final word,
// e.g. {"reason":"complete"}).
std::vector<v1::Event> HistoryEvents(const std::vector<std::string>& records) {
  std::vector<v1::Event> events;
  for (const std::string& record : records) {
    v1::Event event;
    if (record.empty() || !FromJson(record, &event, true).ok() ||
        event.position() == 0) {
      continue;
    }
    events.push_back(std::move(event));
  }
  return events;
}

// The operator events in `records`, heartbeats left out.
std::vector<OperatorEvent> OperatorEvents(
    const std::vector<std::string>& records) {
  std::vector<OperatorEvent> events;
  for (const std::string& record : records) {
    OperatorEvent event;
    if (!FromJson(record, &event, true).ok() ||
        event.type() == OperatorEvent::HEARTBEAT) {
      continue;
    }
    events.push_back(std::move(event));
  }
  return events;
}

// A RecordIO stream (the 200 answer of a SUBSCRIBE or of GET
// /api/v1/events) read on a thread; every record is kept in order.
//
// Thread safety: the public methods may be called from any thread.
class RecordLog {
 public:
  explicit RecordLog(std::unique_ptr<http::ClientStream> stream) {
    reader_ = std::make_unique<RecordStreamReader>(
        std::move(stream),
        [this](std::string record) {
          std::lock_guard<std::mutex> lock(mu_);
          records_.push_back(std::move(record));
          cv_.notify_all();
        },
        [this](absl::Status end) {
          std::lock_guard<std::mutex> lock(mu_);
          end_ = std::move(end);
          cv_.notify_all();
        });
  }
  // Closes the connection.
  ~RecordLog() { reader_->Stop(); }

  // Waits until `done(records)` holds. False when the stream ended without
  // it or `deadline` passed first.
  bool WaitUntil(
      const std::function<bool(const std::vector<std::string>&)>& done,
      absl::Time deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, absl::ToChronoTime(deadline), [&] {
      return done(records_) || end_.has_value();
    }) && done(records_);
  }

  // Waits until the stream ended; its end (see record_stream_reader.h), or
  // nullopt if `deadline` passed first.
  std::optional<absl::Status> WaitForEnd(absl::Time deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, absl::ToChronoTime(deadline),
                   [&] { return end_.has_value(); });
    return end_;
  }

  std::vector<std::string> records() const {
    std::lock_guard<std::mutex> lock(mu_);
    return records_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> records_;  // guarded by mu_
  std::optional<absl::Status> end_;   // guarded by mu_
  std::unique_ptr<RecordStreamReader> reader_;
};

class ApiFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<MasterClusterOptions> options =
        OptionsForThisTest("api_failover");
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
    operator_stream_.reset();
    history_.reset();
    scheduler_.reset();
    agents_.clear();
  }

  // Polls master `i` until it leads and serves a read. False after
  // `deadline`.
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

  void StartAgents() {
    for (int i = 0; i < kAgents; ++i) {
      FakeAgentOptions options;
      options.masters = masters_;
      options.hostname = absl::StrCat("agent-", i);
      options.resources = {ScalarResource("cpus", 4),
                           ScalarResource("mem", 4096)};
      options.auto_resubscribe = true;
      options.resubscribe_backoff = absl::Milliseconds(50);
      options.max_resubscribe_backoff = absl::Milliseconds(500);
      options.request_timeout = absl::Seconds(2);
      options.subscribe_timeout = kTimeout;
      agents_.push_back(std::make_unique<FakeAgent>(options));
      absl::StatusOr<v1::AgentID> id = agents_.back()->Subscribe();
      ASSERT_TRUE(id.ok()) << id.status();
      agent_ids_.push_back(id->value());
    }
  }

  // A framework client that knows `masters`, acknowledging every update.
  std::unique_ptr<SchedulerClient> NewScheduler(
      std::vector<std::string> masters) {
    SchedulerClientOptions options;
    options.masters = std::move(masters);
    options.auto_acknowledge = true;
    options.request_timeout = absl::Seconds(2);
    options.subscribe_timeout = kTimeout;
    options.call_timeout = kTimeout;
    return std::make_unique<SchedulerClient>(options);
  }

  v1::FrameworkInfo Framework() const {
    v1::FrameworkInfo framework;
    framework.set_user("nobody");
    framework.set_name("api-failover");
    framework.set_failover_timeout(60);
    if (!framework_id_.empty()) {
      framework.mutable_id()->set_value(framework_id_);
    }
    return framework;
  }

  // Takes one offer per agent and launches kTasksPerAgent tasks on each
  // (the rest refused for an hour, so the state stops changing); waits for
  // every TASK_RUNNING.
  void LaunchTasks() {
    const absl::Time deadline = absl::Now() + kTimeout;
    std::map<std::string, v1::Offer> offer_of_agent;
    while (offer_of_agent.size() < agent_ids_.size()) {
      absl::StatusOr<SchedulerEvent> offers =
          scheduler_->NextEvent(SchedulerEvent::OFFERS, deadline);
      ASSERT_TRUE(offers.ok()) << offers.status();
      for (const v1::Offer& offer : offers->offers().offers()) {
        offer_of_agent.emplace(offer.agent_id().value(), offer);
      }
    }
    v1::Filters refuse;
    refuse.set_refuse_seconds(3600);
    for (int a = 0; a < kAgents; ++a) {
      std::vector<v1::TaskInfo> tasks;
      for (int n = 0; n < kTasksPerAgent; ++n) {
        v1::TaskInfo task;
        task.set_name(TaskName(a, n));
        task.mutable_task_id()->set_value(TaskName(a, n));
        *task.add_resources() = ScalarResource("cpus", 1);
        *task.add_resources() = ScalarResource("mem", 128);
        task.mutable_command()->set_value("sleep 1000");
        tasks.push_back(task);
        agent_of_task_[TaskName(a, n)] = agent_ids_[a];
      }
      absl::Status launched =
          scheduler_->Launch(offer_of_agent.at(agent_ids_[a]), tasks, refuse);
      ASSERT_TRUE(launched.ok()) << launched;
    }
    for (size_t seen = 0; seen < agent_of_task_.size(); ++seen) {
      absl::StatusOr<SchedulerEvent> running = scheduler_->WaitForEvent(
          [](const SchedulerEvent& e) {
            return e.type() == SchedulerEvent::UPDATE &&
                   e.update().status().state() == v1::TASK_RUNNING;
          },
          deadline);
      ASSERT_TRUE(running.ok()) << running.status();
    }
  }

  // Waits until every agent has a stream open to a leader for at least the
  // `subscriptions`th time, with nothing left unacknowledged.
  void WaitForAgentsQuiet(int subscriptions) {
    for (size_t i = 0; i < agents_.size(); ++i) {
      FakeAgent* agent = agents_[i].get();
      EXPECT_TRUE(agent->WaitUntil(
          [agent, subscriptions] {
            return agent->subscribed() &&
                   agent->subscriptions() >= subscriptions &&
                   agent->unacknowledged_updates() == 0;
          },
          absl::Now() + kTimeout))
          << "agent " << i << ": subscribed " << agent->subscribed() << ", "
          << agent->unacknowledged_updates() << " updates unacknowledged";
    }
  }

  // Opens a stream on master `i` (no redirect followed) and returns it
  // whatever its status.
  absl::StatusOr<std::unique_ptr<http::ClientStream>> Open(
      uint16_t port, const std::string& method, const std::string& target,
      const http::Headers& headers, const std::string& body = "") {
    http::Client client;
    return client.OpenStream(method, "127.0.0.1", port, target, headers, body,
                             absl::Seconds(5));
  }

  // The body of a finite answer (e.g. an error), read to its end.
  static std::string ReadBody(http::ClientStream* stream) {
    std::string body;
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      absl::StatusOr<std::optional<std::string>> chunk =
          stream->NextChunk(absl::Milliseconds(100));
      if (absl::IsDeadlineExceeded(chunk.status())) continue;
      if (!chunk.ok() || !chunk->has_value()) break;
      body += **chunk;
    }
    return body;
  }

  // POSTs `body` to `path` on master `first`, which must answer 307 naming
  // master `leader` (503 while it does not know the leader yet is retried),
  // then POSTs it where the Location says; returns that 200 stream.
  std::unique_ptr<http::ClientStream> OpenThroughRedirect(
      int first, int leader, const std::string& path, const std::string& body) {
    const http::Headers headers = {{"Content-Type", "application/json"},
                                   {"Accept", "application/json"}};
    const absl::Time deadline = absl::Now() + kTimeout;
    for (;;) {
      absl::StatusOr<std::unique_ptr<http::ClientStream>> answer =
          Open(cluster_->http_port(first), "POST", path, headers, body);
      EXPECT_TRUE(answer.ok()) << answer.status();
      if (!answer.ok()) return nullptr;
      if ((*answer)->status() == 503 && absl::Now() < deadline) {
        absl::SleepFor(kPollPause);
        continue;
      }
      EXPECT_EQ((*answer)->status(), 307) << ReadBody(answer->get());
      if ((*answer)->status() != 307) return nullptr;
      const std::string location = (*answer)->headers().Get("Location");
      EXPECT_EQ(location, absl::StrCat("//", cluster_->Address(leader), path));
      absl::StatusOr<HostPort> to = ParseLocation(location);
      EXPECT_TRUE(to.ok()) << location;
      if (!to.ok()) return nullptr;
      absl::StatusOr<std::unique_ptr<http::ClientStream>> followed =
          Open(to->port, "POST", path, headers, body);
      EXPECT_TRUE(followed.ok()) << followed.status();
      if (!followed.ok()) return nullptr;
      EXPECT_EQ((*followed)->status(), 200) << ReadBody(followed->get());
      if ((*followed)->status() != 200) return nullptr;
      return *std::move(followed);
    }
  }

  // GET /api/v1/events?<query> on master `i` as RecordIO of JSON; the
  // stream, read on a thread. REQUIRES: the answer is 200.
  std::unique_ptr<RecordLog> OpenHistory(int i, const std::string& query) {
    absl::StatusOr<std::unique_ptr<http::ClientStream>> stream =
        Open(cluster_->http_port(i), "GET", "/api/v1/events?" + query,
             {{"Accept", "application/json"}});
    EXPECT_TRUE(stream.ok()) << stream.status();
    if (!stream.ok()) return nullptr;
    EXPECT_EQ((*stream)->status(), 200) << ReadBody(stream->get());
    if ((*stream)->status() != 200) return nullptr;
    return std::make_unique<RecordLog>(*std::move(stream));
  }

  // Implicit reconciliation: every live task's state by task id. An
  // explicit reconciliation of an unknown task follows it; its answer
  // (TASK_LOST) marks the end of the first's on the stream.
  absl::StatusOr<std::map<std::string, v1::TaskStatus>> Reconcile() {
    absl::Status implicit = scheduler_->Reconcile();
    if (!implicit.ok()) return implicit;
    SchedulerCall::Reconcile::Task marker;
    marker.mutable_task_id()->set_value("reconcile-marker");
    absl::Status explicit_one = scheduler_->Reconcile({marker});
    if (!explicit_one.ok()) return explicit_one;
    std::map<std::string, v1::TaskStatus> tasks;
    const absl::Time deadline = absl::Now() + kTimeout;
    for (;;) {
      absl::StatusOr<SchedulerEvent> event = scheduler_->WaitForEvent(
          [](const SchedulerEvent& e) {
            return e.type() == SchedulerEvent::UPDATE &&
                   e.update().status().uuid().empty() &&
                   e.update().status().reason() ==
                       v1::TaskStatus::REASON_RECONCILIATION;
          },
          deadline);
      if (!event.ok()) return event.status();
      const v1::TaskStatus& status = event->update().status();
      if (status.task_id().value() == "reconcile-marker") return tasks;
      tasks[status.task_id().value()] = status;
    }
  }

  // The framework's UPDATE of `task` to `state` (waiting for it).
  absl::StatusOr<SchedulerEvent> NextUpdate(const std::string& task,
                                            v1::TaskState state) {
    return scheduler_->WaitForEvent(
        [&](const SchedulerEvent& e) {
          return e.type() == SchedulerEvent::UPDATE &&
                 e.update().status().task_id().value() == task &&
                 e.update().status().state() == state;
        },
        absl::Now() + kTimeout);
  }

  // Queues TASK_FINISHED of `task` on agent `a` and waits until the master
  // acknowledged it to the agent (it is committed). Returns its uuid.
  std::string FinishTask(int a, const std::string& task) {
    v1::FrameworkID framework_id;
    framework_id.set_value(framework_id_);
    v1::TaskID task_id;
    task_id.set_value(task);
    FakeAgent* agent = agents_[a].get();
    const std::string uuid =
        agent->SendUpdate(framework_id, task_id, v1::TASK_FINISHED);
    EXPECT_TRUE(agent->WaitUntil(
        [agent, &uuid] {
          for (const v1::AgentEvent::Acknowledge& ack :
               agent->acknowledgements()) {
            if (ack.uuid() == uuid) return true;
          }
          return false;
        },
        absl::Now() + kTimeout))
        << "TASK_FINISHED of " << task << " was not acknowledged";
    return uuid;
  }

  std::unique_ptr<MasterCluster> cluster_;
  std::vector<std::string> masters_;
  std::vector<std::unique_ptr<FakeAgent>> agents_;
  std::vector<std::string> agent_ids_;
  std::unique_ptr<SchedulerClient> scheduler_;
  std::string framework_id_;
  std::map<std::string, std::string> agent_of_task_;  // task -> agent id
  std::unique_ptr<RecordLog> operator_stream_;        // POST /api/v1 SUBSCRIBE
  std::unique_ptr<RecordLog> history_;                // GET /api/v1/events
};

TEST_F(ApiFailoverTest, FrameworkKeepsTasksAndOperatorMissesNoEvent) {
  absl::StatusOr<int> first = cluster_->WaitForLeader({0, 1, 2});
  ASSERT_TRUE(first.ok()) << first.status();
  const int leader = *first;

  // ---- 1. Tasks, watched by the operator ---------------------------------
  ASSERT_NO_FATAL_FAILURE(StartAgents());
  {
    absl::StatusOr<std::unique_ptr<http::ClientStream>> subscribe =
        Open(cluster_->http_port(leader), "POST", "/api/v1",
             {{"Content-Type", "application/json"}}, R"({"type":"SUBSCRIBE"})");
    ASSERT_TRUE(subscribe.ok()) << subscribe.status();
    ASSERT_EQ((*subscribe)->status(), 200) << ReadBody(subscribe->get());
    operator_stream_ = std::make_unique<RecordLog>(*std::move(subscribe));
  }
  history_ = OpenHistory(leader, "from=1");
  ASSERT_NE(history_, nullptr);

  scheduler_ = NewScheduler(masters_);
  absl::StatusOr<v1::FrameworkID> subscribed =
      scheduler_->Subscribe(Framework());
  ASSERT_TRUE(subscribed.ok()) << subscribed.status();
  framework_id_ = subscribed->value();
  ASSERT_NO_FATAL_FAILURE(LaunchTasks());
  WaitForAgentsQuiet(1);

  const size_t tasks = agent_of_task_.size();
  EXPECT_TRUE(operator_stream_->WaitUntil(
      [tasks](const std::vector<std::string>& records) {
        size_t added = 0, running = 0;
        for (const OperatorEvent& e : OperatorEvents(records)) {
          if (e.type() == OperatorEvent::TASK_ADDED) ++added;
          if (e.type() == OperatorEvent::TASK_UPDATED &&
              e.task_updated().state() == v1::TASK_RUNNING) {
            ++running;
          }
        }
        return added == tasks && running == tasks;
      },
      absl::Now() + kTimeout));
  absl::StatusOr<MasterReplica> before_kill =
      cluster_->WaitForEqualStates({0, 1, 2}, 1);
  ASSERT_TRUE(before_kill.ok()) << before_kill.status();
  // The live history stream has caught up: it holds the last event of
  // the history as of now.
  {
    std::unique_ptr<RecordLog> so_far =
        OpenHistory(leader, absl::StrCat("from=1&to=", before_kill->applied));
    ASSERT_NE(so_far, nullptr);
    ASSERT_TRUE(so_far->WaitForEnd(absl::Now() + kTimeout).has_value());
    const std::vector<v1::Event> events = HistoryEvents(so_far->records());
    ASSERT_FALSE(events.empty());
    ASSERT_TRUE(history_->WaitUntil(
        [last = Id(events.back())](const std::vector<std::string>& records) {
          const std::vector<v1::Event> seen = HistoryEvents(records);
          return !seen.empty() && Id(seen.back()) == last;
        },
        absl::Now() + kTimeout));
  }

  // ---- 2. SIGKILL the leader ---------------------------------------------
  const absl::Time killed = absl::Now();
  cluster_->Kill(leader);
  std::vector<int> survivors;
  for (int i = 0; i < 3; ++i) {
    if (i != leader) survivors.push_back(i);
  }
  absl::StatusOr<int> elected = cluster_->WaitForLeader(survivors);
  ASSERT_TRUE(elected.ok()) << elected.status();
  const int next = *elected;
  const int standby = survivors[0] == next ? survivors[1] : survivors[0];
  ASSERT_TRUE(WaitUntilServing(next, absl::Now() + kTimeout));
  std::printf("failover: %s leads and serves %s after the SIGKILL of %s\n",
              cluster_->Address(next).c_str(),
              absl::FormatDuration(absl::Now() - killed).c_str(),
              cluster_->Address(leader).c_str());
  std::fflush(stdout);

  // Both operator streams ended with the leader.
  ASSERT_TRUE(operator_stream_->WaitForEnd(absl::Now() + kTimeout).has_value());
  ASSERT_TRUE(history_->WaitForEnd(absl::Now() + kTimeout).has_value());
  const std::vector<OperatorEvent> watched_before =
      OperatorEvents(operator_stream_->records());
  std::vector<v1::Event> history = HistoryEvents(history_->records());
  ASSERT_FALSE(history.empty());
  // The last position read may have been cut short (a stream can end
  // between two events of one entry): keep only whole positions, and
  // resume right after the last of them.
  const uint64_t resume_from = history.back().position();
  while (!history.empty() && history.back().position() >= resume_from) {
    history.pop_back();
  }
  std::printf("history: %zu events through position %llu before the kill\n",
              history.size(), static_cast<unsigned long long>(resume_from - 1));

  // ---- 3. The framework follows the 307 and keeps its tasks --------------
  // The old stream ended with the leader.
  ASSERT_TRUE(scheduler_->WaitForStreamEnd(absl::Now() + kTimeout).ok());
  WaitForAgentsQuiet(2);  // the agents reregister by themselves
  // A scheduler that knows only the standby: its SUBSCRIBE is redirected.
  {
    absl::StatusOr<http::Response> redirect = cluster_->Request(
        standby, "POST", "/api/v1/scheduler",
        absl::StrCat(R"({"type":"SUBSCRIBE","framework_id":{"value":")",
                     framework_id_, R"("},"subscribe":{"framework_info":)",
                     R"({"user":"nobody","name":"api-failover"}}})"));
    ASSERT_TRUE(redirect.ok()) << redirect.status();
    EXPECT_EQ(redirect->status, 307) << redirect->body;
    EXPECT_EQ(redirect->headers.Get("Location"),
              absl::StrCat("//", cluster_->Address(next), "/api/v1/scheduler"));
  }
  scheduler_ = NewScheduler({cluster_->Address(standby)});
  absl::StatusOr<v1::FrameworkID> resubscribed =
      scheduler_->Subscribe(Framework());
  ASSERT_TRUE(resubscribed.ok()) << resubscribed.status();
  EXPECT_EQ(resubscribed->value(), framework_id_);
  EXPECT_EQ(scheduler_->master_info().port(), cluster_->http_port(next));

  // An update generated after the failover reaches the framework.
  const std::string finished_while_away = FinishTask(0, TaskName(0, 0));
  absl::StatusOr<SchedulerEvent> finished =
      NextUpdate(TaskName(0, 0), v1::TASK_FINISHED);
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_EQ(finished->update().status().uuid(), finished_while_away);
  EXPECT_EQ(finished->update().status().agent_id().value(), agent_ids_[0]);

  absl::StatusOr<std::map<std::string, v1::TaskStatus>> live = Reconcile();
  ASSERT_TRUE(live.ok()) << live.status();
  std::set<std::string> live_ids;
  for (const auto& [id, status] : *live) {
    live_ids.insert(id);
    EXPECT_EQ(status.state(), v1::TASK_RUNNING) << id;
    EXPECT_EQ(status.agent_id().value(), agent_of_task_[id]) << id;
  }
  std::set<std::string> expected_live;
  for (const auto& [id, agent] : agent_of_task_) {
    if (id != TaskName(0, 0)) expected_live.insert(id);
  }
  EXPECT_EQ(live_ids, expected_live);

  // ---- 4. The operator reconnects ----------------------------------------
  std::unique_ptr<http::ClientStream> resubscribe =
      OpenThroughRedirect(standby, next, "/api/v1", R"({"type":"SUBSCRIBE"})");
  ASSERT_NE(resubscribe, nullptr);
  operator_stream_ = std::make_unique<RecordLog>(std::move(resubscribe));
  history_ = OpenHistory(standby, absl::StrCat("from=", resume_from));
  ASSERT_NE(history_, nullptr);

  // One more update, after the operator is back: both streams carry it.
  const std::string finished_after = FinishTask(1, TaskName(1, 0));
  ASSERT_TRUE(NextUpdate(TaskName(1, 0), v1::TASK_FINISHED).ok());
  EXPECT_TRUE(operator_stream_->WaitUntil(
      [](const std::vector<std::string>& records) {
        for (const OperatorEvent& e : OperatorEvents(records)) {
          if (e.type() == OperatorEvent::TASK_UPDATED &&
              e.task_updated().status().task_id().value() == TaskName(1, 0) &&
              e.task_updated().state() == v1::TASK_FINISHED) {
            return true;
          }
        }
        return false;
      },
      absl::Now() + kTimeout));

  // The whole history, read at the end from position 1.
  absl::StatusOr<MasterReplica> final_state =
      cluster_->WaitForEqualStates(survivors, 1);
  ASSERT_TRUE(final_state.ok()) << final_state.status();
  std::unique_ptr<RecordLog> whole =
      OpenHistory(next, absl::StrCat("from=1&to=", final_state->applied));
  ASSERT_NE(whole, nullptr);
  ASSERT_TRUE(whole->WaitForEnd(absl::Now() + kTimeout).has_value());
  const std::vector<v1::Event> all = HistoryEvents(whole->records());
  ASSERT_FALSE(all.empty());
  const std::string last_id = Id(all.back());
  ASSERT_TRUE(history_->WaitUntil(
      [&last_id](const std::vector<std::string>& records) {
        for (const v1::Event& e : HistoryEvents(records)) {
          if (Id(e) == last_id) return true;
        }
        return false;
      },
      absl::Now() + kTimeout))
      << "the reconnected history stream never reached " << last_id;
  const size_t before_count = history.size();
  for (v1::Event& e : HistoryEvents(history_->records())) {
    if (e.position() <= final_state->applied) history.push_back(std::move(e));
  }

  // Nothing missed, nothing twice, in order: the same events as the whole.
  ASSERT_EQ(history.size(), all.size())
      << "seen: " << Ids(history) << "\nwhole: " << Ids(all);
  for (size_t k = 0; k < all.size(); ++k) {
    ASSERT_TRUE(
        google::protobuf::util::MessageDifferencer::Equals(history[k], all[k]))
        << "event " << k << ": seen " << Id(history[k]) << ", whole "
        << Id(all[k]);
  }
  // What the reconnection brought back includes what was committed while
  // nobody watched: the agents reregistering, the framework failing over,
  // the task finishing.
  std::set<std::string> reregistered;
  int failed_over = 0;
  std::map<std::string, v1::TaskState> last_state;  // by task id
  for (size_t k = 0; k < all.size(); ++k) {
    const v1::Event& e = all[k];
    if (e.has_task_status_updated()) {
      const v1::TaskStatus& status = e.task_status_updated().status();
      if (status.uuid() != finished_after) {
        last_state[status.task_id().value()] = status.state();
      }
    }
    if (k < before_count) continue;
    if (e.has_agent_reregistered()) {
      reregistered.insert(e.agent_reregistered().info().id().value());
    }
    if (e.has_framework_failed_over() &&
        e.framework_failed_over().info().id().value() == framework_id_) {
      ++failed_over;
    }
  }
  EXPECT_EQ(reregistered,
            std::set<std::string>(agent_ids_.begin(), agent_ids_.end()));
  EXPECT_GE(failed_over, 1);
  EXPECT_EQ(last_state[TaskName(0, 0)], v1::TASK_FINISHED);
  EXPECT_EQ(last_state[TaskName(1, 0)], v1::TASK_RUNNING);

  // Before the kill, the operator's stream showed each task added and
  // running; the history it read then holds each launch and TASK_RUNNING.
  std::set<std::string> added, running;
  for (const OperatorEvent& e : watched_before) {
    if (e.type() == OperatorEvent::TASK_ADDED) {
      added.insert(e.task_added().task().task_id().value());
    }
    if (e.type() == OperatorEvent::TASK_UPDATED &&
        e.task_updated().state() == v1::TASK_RUNNING) {
      running.insert(e.task_updated().status().task_id().value());
    }
  }
  std::set<std::string> launched_in_history, running_in_history;
  for (size_t k = 0; k < before_count; ++k) {
    const v1::Event& e = history[k];
    for (const v1::TaskInfo& task : e.tasks_launched().tasks()) {
      launched_in_history.insert(task.task_id().value());
    }
    if (e.task_status_updated().status().state() == v1::TASK_RUNNING) {
      running_in_history.insert(
          e.task_status_updated().status().task_id().value());
    }
  }
  std::set<std::string> all_tasks;
  for (const auto& [id, agent] : agent_of_task_) all_tasks.insert(id);
  EXPECT_EQ(added, all_tasks);
  EXPECT_EQ(running, all_tasks);
  EXPECT_EQ(launched_in_history, all_tasks);
  EXPECT_EQ(running_in_history, all_tasks);

  // The new leader's SUBSCRIBED state agrees with the history as of then
  // (before the last TASK_FINISHED).
  const std::vector<OperatorEvent> watched_after =
      OperatorEvents(operator_stream_->records());
  ASSERT_FALSE(watched_after.empty());
  ASSERT_EQ(watched_after.front().type(), OperatorEvent::SUBSCRIBED);
  const v1::master_api::Response::GetTasks& state =
      watched_after.front().subscribed().get_state().get_tasks();
  std::map<std::string, v1::TaskState> subscribed_state;
  for (const auto* list :
       {&state.tasks(), &state.unreachable_tasks(), &state.completed_tasks()}) {
    for (const v1::Task& task : *list) {
      subscribed_state[task.task_id().value()] = task.state();
      EXPECT_EQ(task.agent_id().value(),
                agent_of_task_[task.task_id().value()]);
    }
  }
  EXPECT_EQ(subscribed_state, last_state);
}

}  // namespace
}  // namespace cairn::tests
