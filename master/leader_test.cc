// Tests of the sans-IO leading master (master/leader.h) against a fake log,
// a fake clock and in-memory streams.
//
// The harness plays the master's part: appends queue in FakeLog until the
// test chooses them; the test folds chosen entries into `committed_` with
// MasterState::Apply (checking the state's invariants after every event)
// and then calls CommandPath::OnApplied, exactly as the master's thread
// does. Nothing here sleeps: time is `now_`, advanced by hand.

#include "master/leader.h"

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "cairn/v1/agent.pb.h"
#include "cairn/v1/master.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "master/command_path.h"
#include "master/resources.h"
#include "master/state.h"

namespace cairn::master {
namespace {

namespace scheduler = v1::scheduler;
using ::testing::ElementsAre;
using v1::AgentEvent;
using v1::Event;
using v1::TaskStatus;

// ---- fakes ------------------------------------------------------------------

// An in-process log: appends wait until Choose*(); chosen entries accumulate
// for the test's fold.
class FakeLog : public EventLog {
 public:
  void Append(std::string entry, AppendDone done) override {
    queued_.push_back({std::move(entry), std::move(done)});
  }

  // Chooses every queued append at one new position (group commit).
  void ChooseAll() {
    if (queued_.empty()) return;
    ++position_;
    std::deque<Queued> batch;
    batch.swap(queued_);
    uint32_t index = 0;
    for (Queued& q : batch) {
      chosen_.push_back({position_, index, q.entry});
      q.done(AppendedAt{position_, index});
      ++index;
    }
  }

  struct Chosen {
    uint64_t position;
    uint32_t index;
    std::string entry;
  };
  const std::vector<Chosen>& chosen() const { return chosen_; }
  size_t queued() const { return queued_.size(); }
  // The queued (not yet chosen) events, decoded.
  std::vector<Event> QueuedEvents() const {
    std::vector<Event> out;
    for (const Queued& q : queued_) {
      Event e;
      EXPECT_TRUE(e.ParseFromString(q.entry));
      out.push_back(std::move(e));
    }
    return out;
  }
  uint64_t position() const { return position_; }

 private:
  struct Queued {
    std::string entry;
    AppendDone done;
  };
  std::deque<Queued> queued_;
  std::vector<Chosen> chosen_;
  uint64_t position_ = 0;
};

// An agent's event stream in memory.
class FakeAgentStream : public AgentStream {
 public:
  void Send(const AgentEvent& event) override {
    if (closed) return;  // AgentStream's contract: ignored after Close()
    events.push_back(event);
  }
  void Close() override { closed = true; }

  std::vector<AgentEvent::Type> Types() const {
    std::vector<AgentEvent::Type> out;
    for (const AgentEvent& e : events) {
      if (e.type() != AgentEvent::HEARTBEAT) out.push_back(e.type());
    }
    return out;
  }
  std::vector<AgentEvent> OfType(AgentEvent::Type type) const {
    std::vector<AgentEvent> out;
    for (const AgentEvent& e : events) {
      if (e.type() == type) out.push_back(e);
    }
    return out;
  }

  std::vector<AgentEvent> events;
  bool closed = false;
};

// A scheduler's event stream in memory.
class FakeFrameworkStream : public FrameworkStream {
 public:
  void Send(const scheduler::Event& event) override {
    if (closed) return;
    events.push_back(event);
  }
  void Close() override { closed = true; }

  std::vector<scheduler::Event> OfType(scheduler::Event::Type type) const {
    std::vector<scheduler::Event> out;
    for (const scheduler::Event& e : events) {
      if (e.type() == type) out.push_back(e);
    }
    return out;
  }
  // The statuses of the UPDATE events, in order.
  std::vector<TaskStatus> Updates() const {
    std::vector<TaskStatus> out;
    for (const scheduler::Event& e : OfType(scheduler::Event::UPDATE)) {
      out.push_back(e.update().status());
    }
    return out;
  }

  std::vector<scheduler::Event> events;
  bool closed = false;
};

// Collects a Done's answer; a second answer is a test failure.
using AnswerSlot = std::shared_ptr<std::optional<Answer>>;

AnswerSlot NewSlot() { return std::make_shared<std::optional<Answer>>(); }

Leader::Done Into(AnswerSlot slot) {
  return [slot](Answer answer) {
    EXPECT_FALSE(slot->has_value()) << "answered twice";
    *slot = std::move(answer);
  };
}

std::string Uuid(char c) { return std::string(16, c); }

void SetResources(const std::string& text,
                  google::protobuf::RepeatedPtrField<v1::Resource>* out) {
  absl::StatusOr<Resources> r = Resources::Parse(text);
  ASSERT_TRUE(r.ok()) << r.status();
  r->ToProto(out);
}

v1::TaskInfo CommandTask(const std::string& id,
                         const std::string& resources = "cpus:1;mem:128") {
  v1::TaskInfo task;
  task.set_name(id);
  task.mutable_task_id()->set_value(id);
  SetResources(resources, task.mutable_resources());
  task.mutable_command()->set_value("sleep 1000");
  return task;
}

// ---- the harness ------------------------------------------------------------

struct AgentHandle {
  std::string id;
  std::string stream_id;
  std::shared_ptr<FakeAgentStream> stream;
};

struct FrameworkHandle {
  std::string id;
  std::string stream_id;
  std::shared_ptr<FakeFrameworkStream> stream;
};

class LeaderTest : public ::testing::Test {
 protected:
  LeaderTest()
      : path_(
            &log_, [this] { return now_; },
            [this](absl::Status why) { log_failures_.push_back(why); }) {
    options_.seed = 42;
    options_.master_info.set_id("master-1");
  }

  void StartLeader() {
    path_.BecomeLeader(committed_, last_event_time_);
    leader_ = std::make_unique<Leader>(options_, &path_, &committed_,
                                       [this] { return now_; });
  }

  // A new leadership term on the same log (the previous leader is gone).
  // REQUIRES: nothing queued (it might or might not reach the log).
  // The new leader first folds what the log chose (as the master does).
  void FailOver() {
    ASSERT_EQ(log_.queued(), 0u);
    leader_.reset();
    Fold();
    path_.StepDown(absl::UnavailableError("test: failover"));
    now_ += absl::Seconds(1);
    StartLeader();
  }

  // The master's fold: applies newly chosen entries in log order (checking
  // the invariants after each) and reports the position reached.
  void Fold() {
    for (; folded_ < log_.chosen().size(); ++folded_) {
      const FakeLog::Chosen& c = log_.chosen()[folded_];
      Event event;
      ASSERT_TRUE(event.ParseFromString(c.entry));
      event.set_position(c.position);
      event.set_index(c.index);
      absl::Status applied = committed_.Apply(event);
      ASSERT_TRUE(applied.ok()) << applied << "\n" << event.DebugString();
      absl::Status invariants = committed_.CheckInvariants();
      ASSERT_TRUE(invariants.ok()) << invariants;
      last_event_time_ = ToTime(event.time());
      events_.push_back(std::move(event));
    }
    path_.OnApplied(log_.position(), committed_);
  }

  // One commit round: everything queued now is chosen and folded (appends
  // made by the callbacks stay queued).
  void CommitRound() {
    log_.ChooseAll();
    Fold();
  }

  // Commits until nothing is queued.
  void CommitAll() {
    for (int round = 0; round < 20 && log_.queued() > 0; ++round) {
      CommitRound();
    }
    ASSERT_EQ(log_.queued(), 0u) << "appends keep coming";
  }

  std::vector<Event> EventsSince(size_t mark) const {
    return std::vector<Event>(events_.begin() + mark, events_.end());
  }
  std::vector<Event::TypeCase> TypesSince(size_t mark) const {
    std::vector<Event::TypeCase> out;
    for (size_t i = mark; i < events_.size(); ++i) {
      out.push_back(events_[i].type_case());
    }
    return out;
  }
  static std::vector<Event::TypeCase> TypesOf(const std::vector<Event>& e) {
    std::vector<Event::TypeCase> out;
    for (const Event& event : e) out.push_back(event.type_case());
    return out;
  }

  CommandContext Context() const { return CommandContext{"test", "", {}}; }

  // ---- agents ----

  v1::AgentCall SubscribeCall(
      const std::string& hostname, const std::string& agent_id = "",
      const std::string& resources = "cpus:4;mem:4096") {
    v1::AgentCall call;
    call.set_type(v1::AgentCall::SUBSCRIBE);
    v1::AgentInfo* info = call.mutable_subscribe()->mutable_agent_info();
    info->set_hostname(hostname);
    info->set_port(5051);
    SetResources(resources, info->mutable_resources());
    if (!agent_id.empty()) {
      info->mutable_id()->set_value(agent_id);
      call.mutable_agent_id()->set_value(agent_id);
    }
    call.mutable_subscribe()->set_version("test");
    return call;
  }

  // Adds a reported task to a reregistration's SUBSCRIBE.
  static void Report(v1::AgentCall* call, const std::string& framework_id,
                     const std::string& task_id, v1::TaskState state) {
    v1::Task* t = call->mutable_subscribe()->add_tasks();
    t->mutable_framework_id()->set_value(framework_id);
    t->mutable_task_id()->set_value(task_id);
    *t->mutable_agent_id() = call->subscribe().agent_info().id();
    t->set_state(state);
    SetResources("cpus:1;mem:128", t->mutable_resources());
  }

  // SUBSCRIBE, committed; expects 200.
  AgentHandle Subscribe(const v1::AgentCall& call) {
    AgentHandle agent;
    agent.stream = std::make_shared<FakeAgentStream>();
    AnswerSlot answer = NewSlot();
    leader_->AgentSubscribe(call, Context(), agent.stream, Into(answer));
    CommitAll();
    EXPECT_TRUE(answer->has_value());
    if (!answer->has_value()) return agent;
    EXPECT_EQ((*answer)->code, 200) << (*answer)->message;
    agent.stream_id = (*answer)->stream_id;
    std::vector<AgentEvent> subscribed =
        agent.stream->OfType(AgentEvent::SUBSCRIBED);
    EXPECT_EQ(subscribed.size(), 1u);
    if (!subscribed.empty()) {
      agent.id = subscribed[0].subscribed().agent_id().value();
    }
    return agent;
  }
  AgentHandle SubscribeNewAgent(const std::string& hostname) {
    return Subscribe(SubscribeCall(hostname));
  }

  v1::AgentCall UpdateCall(const AgentHandle& agent,
                           const std::string& framework_id,
                           const std::string& task_id, v1::TaskState state,
                           const std::string& uuid) {
    v1::AgentCall call;
    call.set_type(v1::AgentCall::UPDATE);
    call.mutable_agent_id()->set_value(agent.id);
    call.mutable_update()->mutable_framework_id()->set_value(framework_id);
    TaskStatus* s = call.mutable_update()->mutable_status();
    s->mutable_task_id()->set_value(task_id);
    s->set_state(state);
    s->set_source(TaskStatus::SOURCE_EXECUTOR);
    s->set_uuid(uuid);
    return call;
  }

  // Sends an agent call and returns its (immediate) answer.
  Answer AgentCall(const AgentHandle& agent, const v1::AgentCall& call) {
    AnswerSlot answer = NewSlot();
    leader_->AgentCall(call, agent.stream_id, Context(), Into(answer));
    EXPECT_TRUE(answer->has_value()) << "an agent call is answered at once";
    return answer->value_or(Answer::Error(0, "no answer"));
  }

  // UPDATE, committed; expects 202.
  void AgentUpdate(const AgentHandle& agent, const std::string& framework_id,
                   const std::string& task_id, v1::TaskState state,
                   const std::string& uuid) {
    Answer a =
        AgentCall(agent, UpdateCall(agent, framework_id, task_id, state, uuid));
    EXPECT_EQ(a.code, 202) << a.message << " " << a.field;
    CommitAll();
  }

  void Heartbeat(const AgentHandle& agent) {
    v1::AgentCall call;
    call.set_type(v1::AgentCall::HEARTBEAT);
    call.mutable_agent_id()->set_value(agent.id);
    EXPECT_EQ(AgentCall(agent, call).code, 202);
  }

  // ---- frameworks ----

  scheduler::Call FrameworkSubscribeCall(const std::string& name,
                                         bool partition_aware = false,
                                         double failover_timeout = 0,
                                         const std::string& id = "") {
    scheduler::Call call;
    call.set_type(scheduler::Call::SUBSCRIBE);
    v1::FrameworkInfo* info =
        call.mutable_subscribe()->mutable_framework_info();
    info->set_user("nobody");
    info->set_name(name);
    info->set_failover_timeout(failover_timeout);
    if (partition_aware) {
      info->add_capabilities()->set_type(
          v1::FrameworkInfo::Capability::PARTITION_AWARE);
    }
    if (!id.empty()) {
      info->mutable_id()->set_value(id);
      call.mutable_framework_id()->set_value(id);
    }
    return call;
  }

  FrameworkHandle SubscribeFramework(const scheduler::Call& call) {
    FrameworkHandle f;
    f.stream = std::make_shared<FakeFrameworkStream>();
    AnswerSlot answer = NewSlot();
    leader_->FrameworkSubscribe(call, Context(), f.stream, Into(answer));
    CommitAll();
    EXPECT_TRUE(answer->has_value());
    if (!answer->has_value()) return f;
    EXPECT_EQ((*answer)->code, 200) << (*answer)->message;
    f.stream_id = (*answer)->stream_id;
    std::vector<scheduler::Event> subscribed =
        f.stream->OfType(scheduler::Event::SUBSCRIBED);
    EXPECT_EQ(subscribed.size(), 1u);
    if (!subscribed.empty()) {
      f.id = subscribed[0].subscribed().framework_id().value();
    }
    return f;
  }
  FrameworkHandle SubscribeFramework(const std::string& name,
                                     bool partition_aware = false,
                                     double failover_timeout = 0) {
    return SubscribeFramework(
        FrameworkSubscribeCall(name, partition_aware, failover_timeout));
  }

  // Sends a scheduler call; returns the answer slot (filled at once for
  // errors, after the commit otherwise).
  AnswerSlot FrameworkCall(const FrameworkHandle& f, scheduler::Call call) {
    call.mutable_framework_id()->set_value(f.id);
    AnswerSlot answer = NewSlot();
    leader_->FrameworkCall(call, f.stream_id, Context(), Into(answer));
    return answer;
  }

  // Ticks at now_ and commits; returns the offers `f` received meanwhile.
  std::vector<v1::Offer> TickForOffers(const FrameworkHandle& f) {
    const size_t before = f.stream->OfType(scheduler::Event::OFFERS).size();
    leader_->Tick(now_);
    CommitAll();
    std::vector<v1::Offer> offers;
    std::vector<scheduler::Event> batches =
        f.stream->OfType(scheduler::Event::OFFERS);
    for (size_t i = before; i < batches.size(); ++i) {
      for (const v1::Offer& o : batches[i].offers().offers()) {
        offers.push_back(o);
      }
    }
    return offers;
  }

  scheduler::Call AcceptCall(const v1::Offer& offer,
                             const std::vector<v1::TaskInfo>& tasks) {
    scheduler::Call call;
    call.set_type(scheduler::Call::ACCEPT);
    *call.mutable_accept()->add_offer_ids() = offer.id();
    v1::Offer::Operation* op = call.mutable_accept()->add_operations();
    op->set_type(v1::Offer::Operation::LAUNCH);
    for (const v1::TaskInfo& t : tasks) {
      *op->mutable_launch()->add_task_infos() = t;
    }
    return call;
  }

  // Offers the agent's resources to `f` and launches `tasks` there
  // (committed); expects 202.
  void Launch(const FrameworkHandle& f,
              const std::vector<v1::TaskInfo>& tasks) {
    std::vector<v1::Offer> offers = TickForOffers(f);
    ASSERT_EQ(offers.size(), 1u);
    AnswerSlot answer = FrameworkCall(f, AcceptCall(offers[0], tasks));
    CommitAll();
    ASSERT_TRUE(answer->has_value());
    ASSERT_EQ((*answer)->code, 202) << (*answer)->message;
  }

  scheduler::Call AcknowledgeCall(const std::string& agent_id,
                                  const std::string& task_id,
                                  const std::string& uuid) {
    scheduler::Call call;
    call.set_type(scheduler::Call::ACKNOWLEDGE);
    call.mutable_acknowledge()->mutable_agent_id()->set_value(agent_id);
    call.mutable_acknowledge()->mutable_task_id()->set_value(task_id);
    call.mutable_acknowledge()->set_uuid(uuid);
    return call;
  }

  scheduler::Call KillCall(const std::string& task_id) {
    scheduler::Call call;
    call.set_type(scheduler::Call::KILL);
    call.mutable_kill()->mutable_task_id()->set_value(task_id);
    return call;
  }

  // The committed record of a live task (empty, and a failure, if none).
  v1::TaskRecord Task(const std::string& framework_id,
                      const std::string& task_id) {
    const v1::TaskRecord* task = committed_.FindTask(framework_id, task_id);
    EXPECT_NE(task, nullptr) << task_id;
    return task != nullptr ? *task : v1::TaskRecord();
  }

  FakeLog log_;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
  absl::Time last_event_time_ = absl::InfinitePast();
  std::vector<absl::Status> log_failures_;
  CommandPath path_;
  MasterState committed_;
  size_t folded_ = 0;
  std::vector<Event> events_;  // every folded event, in log order
  LeaderOptions options_;
  std::unique_ptr<Leader> leader_;
};

// A fixture with one agent, one framework and one task launched on the
// agent (dispatched, TASK_STAGING).
class LeaderWithTaskTest : public LeaderTest {
 protected:
  void SetUpCluster(bool partition_aware, double failover_timeout = 0) {
    StartLeader();
    agent_ = SubscribeNewAgent("host-a");
    framework_ = SubscribeFramework("fw", partition_aware, failover_timeout);
    Launch(framework_, {CommandTask("t1")});
  }

  AgentHandle agent_;
  FrameworkHandle framework_;
};

// ---- 1. agent registration ------------------------------------------------

TEST_F(LeaderTest, NewAgentIsAnsweredOnlyAfterItsRegistrationIsCommitted) {
  StartLeader();
  auto stream = std::make_shared<FakeAgentStream>();
  AnswerSlot answer = NewSlot();
  leader_->AgentSubscribe(SubscribeCall("host-a"), Context(), stream,
                          Into(answer));

  EXPECT_FALSE(answer->has_value());
  EXPECT_TRUE(stream->events.empty());
  ASSERT_THAT(TypesOf(log_.QueuedEvents()),
              ElementsAre(Event::kAgentRegistered));

  const size_t mark = events_.size();
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 200);
  EXPECT_FALSE((*answer)->stream_id.empty());
  ASSERT_THAT(stream->Types(),
              ElementsAre(AgentEvent::SUBSCRIBED, AgentEvent::RECONCILE));

  const std::vector<Event> events = EventsSince(mark);
  ASSERT_THAT(TypesOf(events), ElementsAre(Event::kAgentRegistered));
  const std::string agent_id = events[0].agent_registered().info().id().value();
  EXPECT_FALSE(agent_id.empty());
  EXPECT_EQ(events[0].agent_registered().info().hostname(), "host-a");
  EXPECT_EQ(events[0].principal(), agent_id);

  const AgentEvent::Subscribed& s = stream->events[0].subscribed();
  EXPECT_EQ(s.agent_id().value(), agent_id);
  EXPECT_DOUBLE_EQ(s.heartbeat_interval_seconds(), 15);
  EXPECT_DOUBLE_EQ(s.agent_ping_timeout_seconds(), 15);
  EXPECT_EQ(s.max_agent_ping_timeouts(), 5u);
  EXPECT_EQ(s.master_info().id(), "master-1");
  EXPECT_EQ(stream->events[1].reconcile().tasks_size(), 0);
  EXPECT_EQ(stream->events[1].reconcile().log_position(), log_.position());

  ASSERT_NE(committed_.FindAgent(agent_id), nullptr);
  EXPECT_EQ(committed_.FindAgent(agent_id)->state(), v1::AgentRecord::ACTIVE);
  EXPECT_EQ(leader_->agent_streams(), 1u);
}

// ---- 2. same hostname:port as a new agent -----------------------------------

TEST_F(LeaderWithTaskTest, NewAgentAtAnOldAgentsAddressReplacesIt) {
  SetUpCluster(/*partition_aware=*/false);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  FrameworkCall(framework_, AcknowledgeCall(agent_.id, "t1", Uuid('1')));
  CommitAll();
  const size_t mark = events_.size();

  AgentHandle again = SubscribeNewAgent("host-a");

  EXPECT_NE(again.id, agent_.id);
  const std::vector<Event> events = EventsSince(mark);
  ASSERT_THAT(TypesOf(events),
              ElementsAre(Event::kTaskStatusUpdated, Event::kAgentRemoved,
                          Event::kAgentRegistered));
  const TaskStatus& lost = events[0].task_status_updated().status();
  EXPECT_EQ(lost.task_id().value(), "t1");
  EXPECT_EQ(lost.state(), v1::TASK_LOST);
  EXPECT_EQ(lost.source(), TaskStatus::SOURCE_MASTER);
  EXPECT_EQ(lost.reason(), TaskStatus::REASON_AGENT_RESTARTED);
  EXPECT_EQ(lost.uuid().size(), 16u);
  EXPECT_EQ(events[1].agent_removed().agent_id().value(), agent_.id);
  EXPECT_EQ(events[1].agent_removed().reason(), "reregistered as a new agent");
  EXPECT_EQ(committed_.FindAgent(agent_.id)->state(), v1::AgentRecord::REMOVED);
  EXPECT_EQ(Task(framework_.id, "t1").task().state(), v1::TASK_LOST);

  // The old stream ended with 409.
  ASSERT_FALSE(agent_.stream->events.empty());
  const AgentEvent& last = agent_.stream->events.back();
  EXPECT_EQ(last.type(), AgentEvent::ERROR);
  EXPECT_EQ(last.error().code(), 409);
  EXPECT_TRUE(agent_.stream->closed);
  EXPECT_EQ(AgentCall(agent_, UpdateCall(agent_, framework_.id, "t1",
                                         v1::TASK_RUNNING, Uuid('1')))
                .code,
            409);

  // The scheduler hears of the loss.
  std::vector<TaskStatus> updates = framework_.stream->Updates();
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(updates[1].state(), v1::TASK_LOST);
  EXPECT_EQ(updates[1].uuid(), lost.uuid());
  EXPECT_EQ(leader_->agent_streams(), 1u);
}

TEST_F(LeaderWithTaskTest, NewAgentAtAnOldAgentsAddressGoneForPartitionAware) {
  SetUpCluster(/*partition_aware=*/true);
  const size_t mark = events_.size();
  SubscribeNewAgent("host-a");
  ASSERT_THAT(TypesSince(mark),
              ElementsAre(Event::kTaskStatusUpdated, Event::kAgentRemoved,
                          Event::kAgentRegistered));
  EXPECT_EQ(events_[mark].task_status_updated().status().state(),
            v1::TASK_GONE);
}

// ---- 3. frameworks, offers, launches ----------------------------------------

TEST_F(LeaderTest, FrameworkSubscribeIsAnsweredAfterCommitWithItsId) {
  StartLeader();
  auto stream = std::make_shared<FakeFrameworkStream>();
  AnswerSlot answer = NewSlot();
  leader_->FrameworkSubscribe(FrameworkSubscribeCall("fw"), Context(), stream,
                              Into(answer));
  EXPECT_FALSE(answer->has_value());
  EXPECT_TRUE(stream->events.empty());

  const size_t mark = events_.size();
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 200);
  EXPECT_FALSE((*answer)->stream_id.empty());
  ASSERT_EQ(stream->events.size(), 1u);
  ASSERT_EQ(stream->events[0].type(), scheduler::Event::SUBSCRIBED);
  const std::string id = stream->events[0].subscribed().framework_id().value();
  EXPECT_FALSE(id.empty());
  EXPECT_DOUBLE_EQ(stream->events[0].subscribed().heartbeat_interval_seconds(),
                   15);
  const std::vector<Event> events = EventsSince(mark);
  ASSERT_THAT(TypesOf(events), ElementsAre(Event::kFrameworkSubscribed));
  EXPECT_EQ(events[0].framework_subscribed().info().id().value(), id);
  EXPECT_EQ(committed_.FindFramework(id)->state(),
            v1::FrameworkRecord::CONNECTED);
}

TEST_F(LeaderTest, OffersAreSentOnlyAfterTheyAreCommitted) {
  StartLeader();
  AgentHandle agent = SubscribeNewAgent("host-a");
  FrameworkHandle f = SubscribeFramework("fw");

  leader_->Tick(now_);
  ASSERT_THAT(TypesOf(log_.QueuedEvents()), ElementsAre(Event::kOffersCreated));
  EXPECT_TRUE(f.stream->OfType(scheduler::Event::OFFERS).empty());

  CommitAll();
  std::vector<scheduler::Event> batches =
      f.stream->OfType(scheduler::Event::OFFERS);
  ASSERT_EQ(batches.size(), 1u);
  ASSERT_EQ(batches[0].offers().offers_size(), 1);
  const v1::Offer& offer = batches[0].offers().offers(0);
  EXPECT_EQ(offer.agent_id().value(), agent.id);
  EXPECT_EQ(offer.framework_id().value(), f.id);
  EXPECT_NE(committed_.FindOffer(offer.id().value()), nullptr);
  EXPECT_EQ(leader_->metrics().offers_sent, 1u);
}

TEST_F(LeaderTest, AcceptedLaunchIsSentToTheAgentAfterCommit) {
  StartLeader();
  AgentHandle agent = SubscribeNewAgent("host-a");
  FrameworkHandle f = SubscribeFramework("fw");
  std::vector<v1::Offer> offers = TickForOffers(f);
  ASSERT_EQ(offers.size(), 1u);

  AnswerSlot answer =
      FrameworkCall(f, AcceptCall(offers[0], {CommandTask("t1")}));
  EXPECT_FALSE(answer->has_value());
  EXPECT_TRUE(agent.stream->OfType(AgentEvent::LAUNCH).empty());
  ASSERT_THAT(TypesOf(log_.QueuedEvents()), ElementsAre(Event::kTasksLaunched));

  const size_t mark = events_.size();
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 202);
  ASSERT_THAT(TypesSince(mark), ElementsAre(Event::kTasksLaunched));
  const v1::TasksLaunched& launched = events_[mark].tasks_launched();
  ASSERT_EQ(launched.tasks_size(), 1);
  EXPECT_EQ(launched.tasks(0).agent_id().value(), agent.id);
  EXPECT_EQ(launched.offer_ids(0).value(), offers[0].id().value());

  std::vector<AgentEvent> launches = agent.stream->OfType(AgentEvent::LAUNCH);
  ASSERT_EQ(launches.size(), 1u);
  ASSERT_EQ(launches[0].launch().tasks_size(), 1);
  EXPECT_EQ(launches[0].launch().tasks(0).task_id().value(), "t1");
  EXPECT_EQ(launches[0].launch().framework_info().id().value(), f.id);
  EXPECT_TRUE(leader_->IsDispatched({f.id, "t1"}));
  EXPECT_EQ(Task(f.id, "t1").task().state(), v1::TASK_STAGING);
}

TEST_F(LeaderTest, InvalidTasksGetTaskErrorAndNoEvent) {
  StartLeader();
  AgentHandle agent = SubscribeNewAgent("host-a");
  FrameworkHandle f = SubscribeFramework("fw");
  std::vector<v1::Offer> offers = TickForOffers(f);
  ASSERT_EQ(offers.size(), 1u);

  v1::TaskInfo no_command = CommandTask("no-command");
  no_command.clear_command();
  v1::TaskInfo too_big = CommandTask("too-big", "cpus:100;mem:128");
  const size_t mark = events_.size();
  AnswerSlot answer = FrameworkCall(
      f, AcceptCall(offers[0], {no_command, CommandTask("good"), too_big}));
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 202);

  // Only the valid task is launched; nothing is recorded for the others.
  ASSERT_THAT(TypesSince(mark), ElementsAre(Event::kTasksLaunched));
  ASSERT_EQ(events_[mark].tasks_launched().tasks_size(), 1);
  EXPECT_EQ(events_[mark].tasks_launched().tasks(0).task_id().value(), "good");
  EXPECT_EQ(committed_.FindTask(f.id, "no-command"), nullptr);
  EXPECT_EQ(committed_.FindTask(f.id, "too-big"), nullptr);

  std::vector<TaskStatus> updates = f.stream->Updates();
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(updates[0].task_id().value(), "no-command");
  EXPECT_EQ(updates[1].task_id().value(), "too-big");
  for (const TaskStatus& s : updates) {
    EXPECT_EQ(s.state(), v1::TASK_ERROR);
    EXPECT_EQ(s.reason(), TaskStatus::REASON_TASK_INVALID);
    EXPECT_EQ(s.source(), TaskStatus::SOURCE_MASTER);
    EXPECT_TRUE(s.uuid().empty());  // nothing to acknowledge
  }
  std::vector<AgentEvent> launches = agent.stream->OfType(AgentEvent::LAUNCH);
  ASSERT_EQ(launches.size(), 1u);
  ASSERT_EQ(launches[0].launch().tasks_size(), 1);
  EXPECT_EQ(launches[0].launch().tasks(0).task_id().value(), "good");
}

TEST_F(LeaderTest, AcceptWithOnlyInvalidTasksDeclinesTheOffer) {
  StartLeader();
  AgentHandle agent = SubscribeNewAgent("host-a");
  FrameworkHandle f = SubscribeFramework("fw");
  std::vector<v1::Offer> offers = TickForOffers(f);
  ASSERT_EQ(offers.size(), 1u);

  v1::TaskInfo no_command = CommandTask("no-command");
  no_command.clear_command();
  const size_t mark = events_.size();
  AnswerSlot answer = FrameworkCall(f, AcceptCall(offers[0], {no_command}));
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 202);
  ASSERT_THAT(TypesSince(mark), ElementsAre(Event::kOffersDeclined));
  EXPECT_EQ(committed_.task_count(), 0u);
  ASSERT_EQ(f.stream->Updates().size(), 1u);
  EXPECT_EQ(f.stream->Updates()[0].state(), v1::TASK_ERROR);
  EXPECT_TRUE(agent.stream->OfType(AgentEvent::LAUNCH).empty());
}

// Ids become file names on the agent: "..", "/" and control characters are
// refused with TASK_ERROR naming the field, and nothing is launched.
TEST_F(LeaderTest, TaskAndExecutorIdsThatCannotBeFileNamesAreRefused) {
  StartLeader();
  AgentHandle agent = SubscribeNewAgent("host-a");
  FrameworkHandle f = SubscribeFramework("fw");
  std::vector<v1::Offer> offers = TickForOffers(f);
  ASSERT_EQ(offers.size(), 1u);
  std::vector<v1::TaskInfo> tasks;
  for (const std::string& bad :
       std::vector<std::string>{"..", "a/b", "../../x", "a\nb"}) {
    tasks.push_back(CommandTask(bad, "cpus:0.1"));
  }
  v1::TaskInfo custom = CommandTask("custom", "cpus:0.1");
  custom.clear_command();
  custom.mutable_executor()->mutable_executor_id()->set_value("../e");
  custom.mutable_executor()->mutable_command()->set_value("x");
  tasks.push_back(custom);
  AnswerSlot answer = FrameworkCall(f, AcceptCall(offers[0], tasks));
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  const std::vector<v1::TaskStatus> updates = f.stream->Updates();
  ASSERT_EQ(updates.size(), tasks.size());
  for (size_t i = 0; i < updates.size(); ++i) {
    EXPECT_EQ(updates[i].state(), v1::TASK_ERROR) << i;
    EXPECT_EQ(updates[i].reason(), v1::TaskStatus::REASON_TASK_INVALID);
    EXPECT_NE(updates[i].message().find(
                  i + 1 < updates.size() ? "task_id" : "executor.executor_id"),
              std::string::npos)
        << updates[i].message();
  }
  EXPECT_EQ(committed_.task_count(), 0u);
  EXPECT_TRUE(agent.stream->OfType(AgentEvent::LAUNCH).empty());
}

// Two tasks of one new executor in one ACCEPT: the executor's resources
// count once (4 cpus hold 1 + 1 + the executor's 1.5, not 1 + 1 + 2 x 1.5).
TEST_F(LeaderTest, TasksSharingAnExecutorCountItsResourcesOnce) {
  StartLeader();
  AgentHandle agent = SubscribeNewAgent("host-a");
  FrameworkHandle f = SubscribeFramework("fw");
  std::vector<v1::Offer> offers = TickForOffers(f);
  ASSERT_EQ(offers.size(), 1u);
  std::vector<v1::TaskInfo> tasks;
  for (const char* id : {"t1", "t2"}) {
    v1::TaskInfo task = CommandTask(id, "cpus:1;mem:128");
    task.clear_command();
    task.mutable_executor()->mutable_executor_id()->set_value("shared");
    task.mutable_executor()->mutable_command()->set_value("run-executor");
    SetResources("cpus:1.5;mem:64",
                 task.mutable_executor()->mutable_resources());
    tasks.push_back(task);
  }
  AnswerSlot answer = FrameworkCall(f, AcceptCall(offers[0], tasks));
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  EXPECT_TRUE(f.stream->Updates().empty())
      << f.stream->Updates().front().message();
  EXPECT_EQ(committed_.task_count(), 2u);
  int launched = 0;
  for (const AgentEvent& e : agent.stream->OfType(AgentEvent::LAUNCH)) {
    launched += e.launch().tasks_size();
  }
  EXPECT_EQ(launched, 2);
}

// ---- 4. status updates ------------------------------------------------------

TEST_F(LeaderWithTaskTest, UpdateIsAcknowledgedOnlyAfterItsCommit) {
  SetUpCluster(false);
  AnswerSlot answer = NewSlot();
  leader_->AgentCall(
      UpdateCall(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1')),
      agent_.stream_id, Context(), Into(answer));
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 202);
  EXPECT_TRUE(agent_.stream->OfType(AgentEvent::ACKNOWLEDGE).empty());
  EXPECT_TRUE(framework_.stream->Updates().empty());
  ASSERT_THAT(TypesOf(log_.QueuedEvents()),
              ElementsAre(Event::kTaskStatusUpdated));

  const size_t mark = events_.size();
  CommitAll();
  ASSERT_THAT(TypesSince(mark), ElementsAre(Event::kTaskStatusUpdated));
  const TaskStatus& logged = events_[mark].task_status_updated().status();
  EXPECT_EQ(logged.uuid(), Uuid('1'));
  EXPECT_EQ(logged.agent_id().value(), agent_.id);  // filled in by the master
  EXPECT_EQ(events_[mark].principal(), agent_.id);

  std::vector<AgentEvent> acks = agent_.stream->OfType(AgentEvent::ACKNOWLEDGE);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].acknowledge().uuid(), Uuid('1'));
  EXPECT_EQ(acks[0].acknowledge().task_id().value(), "t1");
  EXPECT_EQ(acks[0].acknowledge().framework_id().value(), framework_.id);

  std::vector<TaskStatus> updates = framework_.stream->Updates();
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].uuid(), Uuid('1'));
  EXPECT_EQ(updates[0].state(), v1::TASK_RUNNING);
  EXPECT_EQ(Task(framework_.id, "t1").task().state(), v1::TASK_RUNNING);
}

TEST_F(LeaderWithTaskTest, FrameworkAcknowledgeIsRecordedAndNextUpdateSent) {
  SetUpCluster(false);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_FINISHED, Uuid('2'));
  // Only the head of the task's unacknowledged updates is delivered.
  ASSERT_EQ(framework_.stream->Updates().size(), 1u);
  EXPECT_EQ(Task(framework_.id, "t1").unacknowledged_size(), 2);

  const size_t mark = events_.size();
  AnswerSlot answer =
      FrameworkCall(framework_, AcknowledgeCall(agent_.id, "t1", Uuid('1')));
  EXPECT_FALSE(answer->has_value());
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 202);
  ASSERT_THAT(TypesSince(mark), ElementsAre(Event::kTaskStatusAcknowledged));
  EXPECT_EQ(events_[mark].task_status_acknowledged().uuid(), Uuid('1'));

  std::vector<TaskStatus> updates = framework_.stream->Updates();
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(updates[1].uuid(), Uuid('2'));
  EXPECT_EQ(updates[1].state(), v1::TASK_FINISHED);
  // Framework acknowledgements are not forwarded to the agent.
  EXPECT_EQ(agent_.stream->OfType(AgentEvent::ACKNOWLEDGE).size(), 2u);

  // The last acknowledgement completes the task.
  AnswerSlot last =
      FrameworkCall(framework_, AcknowledgeCall(agent_.id, "t1", Uuid('2')));
  CommitAll();
  ASSERT_TRUE(last->has_value());
  EXPECT_EQ((*last)->code, 202);
  EXPECT_EQ(committed_.FindTask(framework_.id, "t1"), nullptr);
}

TEST_F(LeaderWithTaskTest, DuplicateUpdateIsAcknowledgedWithoutAnEvent) {
  SetUpCluster(false);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  const size_t mark = events_.size();

  Answer a = AgentCall(agent_, UpdateCall(agent_, framework_.id, "t1",
                                          v1::TASK_RUNNING, Uuid('1')));
  EXPECT_EQ(a.code, 202);
  EXPECT_EQ(log_.queued(), 0u);
  CommitAll();
  EXPECT_TRUE(TypesSince(mark).empty());
  std::vector<AgentEvent> acks = agent_.stream->OfType(AgentEvent::ACKNOWLEDGE);
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[1].acknowledge().uuid(), Uuid('1'));
  EXPECT_EQ(leader_->metrics().duplicate_updates, 1u);
  EXPECT_TRUE(agent_.stream->OfType(AgentEvent::KILL).empty());
}

TEST_F(LeaderWithTaskTest, UpdateWaitsForTheSameTasksPreviousUpdate) {
  SetUpCluster(false);
  const size_t mark = events_.size();
  EXPECT_EQ(AgentCall(agent_, UpdateCall(agent_, framework_.id, "t1",
                                         v1::TASK_RUNNING, Uuid('1')))
                .code,
            202);
  EXPECT_EQ(AgentCall(agent_, UpdateCall(agent_, framework_.id, "t1",
                                         v1::TASK_FINISHED, Uuid('2')))
                .code,
            202);
  // The second is not decided while the first is in flight.
  ASSERT_THAT(TypesOf(log_.QueuedEvents()),
              ElementsAre(Event::kTaskStatusUpdated));

  CommitRound();
  std::vector<AgentEvent> acks = agent_.stream->OfType(AgentEvent::ACKNOWLEDGE);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].acknowledge().uuid(), Uuid('1'));
  ASSERT_THAT(TypesOf(log_.QueuedEvents()),
              ElementsAre(Event::kTaskStatusUpdated));

  CommitAll();
  acks = agent_.stream->OfType(AgentEvent::ACKNOWLEDGE);
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[1].acknowledge().uuid(), Uuid('2'));
  const std::vector<Event> events = EventsSince(mark);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].task_status_updated().status().uuid(), Uuid('1'));
  EXPECT_EQ(events[1].task_status_updated().status().uuid(), Uuid('2'));
  EXPECT_EQ(Task(framework_.id, "t1").task().state(), v1::TASK_FINISHED);
}

TEST_F(LeaderWithTaskTest, LateNonTerminalUpdateOfAnEndedTaskIsKilled) {
  SetUpCluster(false);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_FAILED, Uuid('1'));
  const size_t mark = events_.size();

  Answer a = AgentCall(agent_, UpdateCall(agent_, framework_.id, "t1",
                                          v1::TASK_RUNNING, Uuid('2')));
  EXPECT_EQ(a.code, 202);
  CommitAll();
  EXPECT_TRUE(TypesSince(mark).empty());
  ASSERT_GE(agent_.stream->events.size(), 2u);
  const AgentEvent& ack =
      agent_.stream->events[agent_.stream->events.size() - 2];
  const AgentEvent& kill = agent_.stream->events.back();
  EXPECT_EQ(ack.type(), AgentEvent::ACKNOWLEDGE);
  EXPECT_EQ(ack.acknowledge().uuid(), Uuid('2'));
  EXPECT_EQ(kill.type(), AgentEvent::KILL);
  EXPECT_EQ(kill.kill().task_id().value(), "t1");
  EXPECT_EQ(kill.kill().framework_id().value(), framework_.id);
  EXPECT_EQ(leader_->metrics().late_updates, 1u);
}

TEST_F(LeaderWithTaskTest, UpdateOfAnUnknownFrameworkShutsItDown) {
  SetUpCluster(false);
  const size_t mark = events_.size();
  Answer a = AgentCall(agent_, UpdateCall(agent_, "no-such-framework", "x",
                                          v1::TASK_RUNNING, Uuid('9')));
  EXPECT_EQ(a.code, 202);
  CommitAll();
  EXPECT_TRUE(TypesSince(mark).empty());
  ASSERT_GE(agent_.stream->events.size(), 2u);
  const AgentEvent& ack =
      agent_.stream->events[agent_.stream->events.size() - 2];
  const AgentEvent& shutdown = agent_.stream->events.back();
  EXPECT_EQ(ack.type(), AgentEvent::ACKNOWLEDGE);
  EXPECT_EQ(ack.acknowledge().uuid(), Uuid('9'));
  EXPECT_EQ(shutdown.type(), AgentEvent::SHUTDOWN_FRAMEWORK);
  EXPECT_EQ(shutdown.shutdown_framework().framework_id().value(),
            "no-such-framework");
}

// ---- 5. bad input -----------------------------------------------------------

TEST_F(LeaderWithTaskTest, InvalidUpdatesAreRejectedNamingTheField) {
  SetUpCluster(false);
  const size_t queued = log_.queued();
  auto update = [&] {
    return UpdateCall(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  };

  v1::AgentCall short_uuid = update();
  short_uuid.mutable_update()->mutable_status()->set_uuid(std::string(15, 'x'));
  Answer a = AgentCall(agent_, short_uuid);
  EXPECT_EQ(a.code, 400);
  EXPECT_EQ(a.field, "update.status.uuid");

  v1::AgentCall staging = update();
  staging.mutable_update()->mutable_status()->set_state(v1::TASK_STAGING);
  a = AgentCall(agent_, staging);
  EXPECT_EQ(a.code, 400);
  EXPECT_EQ(a.field, "update.status.state");

  v1::AgentCall from_master = update();
  from_master.mutable_update()->mutable_status()->set_source(
      TaskStatus::SOURCE_MASTER);
  a = AgentCall(agent_, from_master);
  EXPECT_EQ(a.code, 400);
  EXPECT_EQ(a.field, "update.status.source");

  v1::AgentCall other_agent = update();
  other_agent.mutable_agent_id()->set_value("someone-else");
  a = AgentCall(agent_, other_agent);
  EXPECT_EQ(a.code, 400);
  EXPECT_EQ(a.field, "agent_id");

  AnswerSlot no_stream = NewSlot();
  leader_->AgentCall(update(), "", Context(), Into(no_stream));
  ASSERT_TRUE(no_stream->has_value());
  EXPECT_EQ((*no_stream)->code, 400);
  EXPECT_EQ((*no_stream)->field, "X-Cairn-Stream-Id");

  AnswerSlot stale = NewSlot();
  leader_->AgentCall(update(), "not-a-stream", Context(), Into(stale));
  ASSERT_TRUE(stale->has_value());
  EXPECT_EQ((*stale)->code, 409);
  EXPECT_EQ((*stale)->field, "X-Cairn-Stream-Id");

  EXPECT_EQ(log_.queued(), queued);
  EXPECT_TRUE(agent_.stream->OfType(AgentEvent::ACKNOWLEDGE).empty());
  EXPECT_EQ(leader_->metrics().agent_updates, 0u);
}

TEST_F(LeaderWithTaskTest, ReplacedStreamIdIsStale) {
  SetUpCluster(false);
  AgentHandle again = Subscribe(SubscribeCall("host-a", agent_.id));
  ASSERT_EQ(again.id, agent_.id);
  EXPECT_NE(again.stream_id, agent_.stream_id);
  Answer a = AgentCall(agent_, UpdateCall(agent_, framework_.id, "t1",
                                          v1::TASK_RUNNING, Uuid('1')));
  EXPECT_EQ(a.code, 409);
  EXPECT_EQ(a.field, "X-Cairn-Stream-Id");
  EXPECT_EQ(AgentCall(again, UpdateCall(again, framework_.id, "t1",
                                        v1::TASK_RUNNING, Uuid('1')))
                .code,
            202);
}

TEST_F(LeaderTest, KnownAgentIdUnknownToTheLogIsForbidden) {
  StartLeader();
  auto stream = std::make_shared<FakeAgentStream>();
  AnswerSlot answer = NewSlot();
  leader_->AgentSubscribe(SubscribeCall("host-a", "made-up-id"), Context(),
                          stream, Into(answer));
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 403);
  EXPECT_EQ((*answer)->field, "subscribe.agent_info.id");
  EXPECT_EQ(log_.queued(), 0u);
  EXPECT_TRUE(stream->events.empty());
}

TEST_F(LeaderTest, FrameworkCallsNeedTheSubscriptionsStream) {
  StartLeader();
  AgentHandle agent = SubscribeNewAgent("host-a");
  FrameworkHandle f = SubscribeFramework("fw");
  ASSERT_EQ(TickForOffers(f).size(), 1u);

  FrameworkHandle wrong_stream = f;
  wrong_stream.stream_id = "not-the-stream";
  AnswerSlot a = FrameworkCall(wrong_stream, KillCall("t1"));
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->code, 400);
  EXPECT_EQ((*a)->field, "Mesos-Stream-Id");

  FrameworkHandle stranger = f;
  stranger.id = "never-subscribed";
  a = FrameworkCall(stranger, KillCall("t1"));
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->code, 403);

  scheduler::Call accept;
  accept.set_type(scheduler::Call::ACCEPT);
  accept.mutable_accept()->add_operations()->set_type(
      v1::Offer::Operation::LAUNCH);
  a = FrameworkCall(f, accept);
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->code, 400);
  EXPECT_EQ((*a)->field, "accept.offer_ids");
  EXPECT_EQ(log_.queued(), 0u);

  // A closed stream is not a subscription either.
  leader_->FrameworkStreamClosed(f.stream_id);
  CommitAll();
  a = FrameworkCall(f, KillCall("t1"));
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->code, 403);
}

TEST_F(LeaderTest, FrameworkStreamsBeyondTheLimitAre503) {
  options_.max_framework_streams = 2;
  StartLeader();
  FrameworkHandle a = SubscribeFramework("a", false, 3600);
  FrameworkHandle b = SubscribeFramework("b", false, 3600);
  const size_t queued = log_.queued();

  auto stream = std::make_shared<FakeFrameworkStream>();
  AnswerSlot third = NewSlot();
  leader_->FrameworkSubscribe(FrameworkSubscribeCall("c"), Context(), stream,
                              Into(third));
  ASSERT_TRUE(third->has_value()) << "refused at once";
  EXPECT_EQ((*third)->code, 503);
  EXPECT_TRUE(absl::StrContains((*third)->message, "max_framework_streams"))
      << (*third)->message;
  EXPECT_EQ(log_.queued(), queued);  // nothing proposed
  EXPECT_TRUE(stream->events.empty());

  // A framework replacing its own stream is not a new one.
  FrameworkHandle again =
      SubscribeFramework(FrameworkSubscribeCall("a", false, 3600, a.id));
  EXPECT_EQ(again.id, a.id);
  EXPECT_EQ(leader_->framework_streams(), 2u);

  // An ended stream frees its place.
  leader_->FrameworkStreamClosed(b.stream_id);
  CommitAll();
  FrameworkHandle c = SubscribeFramework("c");
  EXPECT_FALSE(c.id.empty());
}

TEST_F(LeaderTest, AgentStreamsBeyondTheLimitAre503) {
  options_.max_agent_streams = 1;
  StartLeader();
  AgentHandle a = SubscribeNewAgent("host-a");
  const size_t queued = log_.queued();

  auto stream = std::make_shared<FakeAgentStream>();
  AnswerSlot second = NewSlot();
  leader_->AgentSubscribe(SubscribeCall("host-b"), Context(), stream,
                          Into(second));
  ASSERT_TRUE(second->has_value()) << "refused at once";
  EXPECT_EQ((*second)->code, 503);
  EXPECT_TRUE(absl::StrContains((*second)->message, "max_agent_streams"))
      << (*second)->message;
  EXPECT_EQ(log_.queued(), queued);
  EXPECT_TRUE(stream->events.empty());

  // The agent resubscribing with its id replaces its own stream.
  auto replacement = std::make_shared<FakeAgentStream>();
  AnswerSlot again = NewSlot();
  leader_->AgentSubscribe(SubscribeCall("host-a", a.id), Context(), replacement,
                          Into(again));
  CommitAll();
  ASSERT_TRUE(again->has_value());
  EXPECT_EQ((*again)->code, 200) << (*again)->message;
  EXPECT_EQ(leader_->agent_streams(), 1u);
}

// ---- 6. liveness ------------------------------------------------------------

TEST_F(LeaderWithTaskTest, SilentAgentIsMarkedUnreachableAndItsTasksLost) {
  SetUpCluster(/*partition_aware=*/false);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  ASSERT_EQ(framework_.stream->Updates().size(), 1u);
  AnswerSlot ack =
      FrameworkCall(framework_, AcknowledgeCall(agent_.id, "t1", Uuid('1')));
  CommitAll();
  const absl::Time last_call = now_;

  now_ = last_call + absl::Seconds(15 * 5) - absl::Milliseconds(1);
  const size_t before = events_.size();
  leader_->Tick(now_);
  CommitAll();
  for (const Event& e : EventsSince(before)) {
    EXPECT_NE(e.type_case(), Event::kAgentUnreachable);
  }

  now_ = last_call + absl::Seconds(15 * 5);
  const size_t mark = events_.size();
  leader_->Tick(now_);
  CommitAll();
  std::vector<Event> events;
  for (const Event& e : EventsSince(mark)) {
    if (e.type_case() != Event::kOffersCreated) events.push_back(e);
  }
  ASSERT_THAT(TypesOf(events),
              ElementsAre(Event::kAgentUnreachable, Event::kTaskStatusUpdated));
  const TaskStatus& lost = events[1].task_status_updated().status();
  EXPECT_EQ(lost.state(), v1::TASK_LOST);
  EXPECT_EQ(lost.source(), TaskStatus::SOURCE_MASTER);
  EXPECT_EQ(lost.reason(), TaskStatus::REASON_AGENT_DISCONNECTED);
  EXPECT_EQ(committed_.FindAgent(agent_.id)->state(),
            v1::AgentRecord::UNREACHABLE);
  EXPECT_EQ(leader_->metrics().agents_marked_unreachable, 1u);

  // The scheduler is told; the agent's stream ends with 409.
  std::vector<TaskStatus> updates = framework_.stream->Updates();
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(updates[1].state(), v1::TASK_LOST);
  EXPECT_EQ(updates[1].uuid(), lost.uuid());
  EXPECT_EQ(agent_.stream->events.back().type(), AgentEvent::ERROR);
  EXPECT_EQ(agent_.stream->events.back().error().code(), 409);
  EXPECT_TRUE(agent_.stream->closed);
  EXPECT_EQ(leader_->agent_streams(), 0u);

  // It comes back reporting the task running: the log says it is lost, so
  // the agent must kill it; nothing is rewritten.
  v1::AgentCall rereg = SubscribeCall("host-a", agent_.id);
  Report(&rereg, framework_.id, "t1", v1::TASK_RUNNING);
  const size_t rereg_mark = events_.size();
  AgentHandle back = Subscribe(rereg);
  ASSERT_THAT(TypesSince(rereg_mark), ElementsAre(Event::kAgentReregistered));
  ASSERT_THAT(back.stream->Types(),
              ElementsAre(AgentEvent::SUBSCRIBED, AgentEvent::KILL,
                          AgentEvent::RECONCILE));
  EXPECT_EQ(back.stream->events[1].kill().task_id().value(), "t1");
  EXPECT_EQ(back.stream->events[2].reconcile().tasks_size(), 0);
  EXPECT_EQ(committed_.FindAgent(agent_.id)->state(), v1::AgentRecord::ACTIVE);

  // Its late TASK_KILLED is acknowledged and not recorded.
  const size_t late_mark = events_.size();
  Answer a = AgentCall(
      back, UpdateCall(back, framework_.id, "t1", v1::TASK_KILLED, Uuid('3')));
  EXPECT_EQ(a.code, 202);
  CommitAll();
  EXPECT_TRUE(TypesSince(late_mark).empty());
  EXPECT_THAT(back.stream->Types(),
              ElementsAre(AgentEvent::SUBSCRIBED, AgentEvent::KILL,
                          AgentEvent::RECONCILE, AgentEvent::ACKNOWLEDGE));
}

TEST_F(LeaderWithTaskTest, PartitionAwareTaskBecomesUnreachableThenRunning) {
  SetUpCluster(/*partition_aware=*/true);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  FrameworkCall(framework_, AcknowledgeCall(agent_.id, "t1", Uuid('1')));
  CommitAll();

  now_ += absl::Seconds(75);
  const size_t mark = events_.size();
  leader_->Tick(now_);
  CommitAll();
  std::vector<Event> events;
  for (const Event& e : EventsSince(mark)) {
    if (e.type_case() != Event::kOffersCreated) events.push_back(e);
  }
  ASSERT_THAT(TypesOf(events),
              ElementsAre(Event::kAgentUnreachable, Event::kTaskStatusUpdated));
  const TaskStatus& unreachable = events[1].task_status_updated().status();
  EXPECT_EQ(unreachable.state(), v1::TASK_UNREACHABLE);
  EXPECT_EQ(unreachable.reason(), TaskStatus::REASON_AGENT_DISCONNECTED);
  EXPECT_EQ(ToTime(unreachable.unreachable_time()), ToTime(events[1].time()));
  ASSERT_EQ(framework_.stream->Updates().size(), 2u);
  EXPECT_EQ(framework_.stream->Updates()[1].state(), v1::TASK_UNREACHABLE);
  EXPECT_EQ(agent_.stream->events.back().error().code(), 409);

  v1::AgentCall rereg = SubscribeCall("host-a", agent_.id);
  Report(&rereg, framework_.id, "t1", v1::TASK_RUNNING);
  const size_t rereg_mark = events_.size();
  AgentHandle back = Subscribe(rereg);
  const std::vector<Event> after = EventsSince(rereg_mark);
  ASSERT_THAT(TypesOf(after), ElementsAre(Event::kAgentReregistered,
                                          Event::kTaskStatusUpdated));
  const TaskStatus& running = after[1].task_status_updated().status();
  EXPECT_EQ(running.state(), v1::TASK_RUNNING);
  EXPECT_EQ(running.reason(), TaskStatus::REASON_AGENT_REREGISTERED);
  EXPECT_EQ(running.source(), TaskStatus::SOURCE_MASTER);
  EXPECT_EQ(Task(framework_.id, "t1").task().state(), v1::TASK_RUNNING);
  EXPECT_THAT(back.stream->Types(),
              ElementsAre(AgentEvent::SUBSCRIBED, AgentEvent::RECONCILE));
  ASSERT_EQ(back.stream->events[1].reconcile().tasks_size(), 1);
  EXPECT_EQ(back.stream->events[1].reconcile().tasks(0).state(),
            v1::TASK_RUNNING);
}

TEST_F(LeaderWithTaskTest, HeartbeatsKeepAnAgentReachable) {
  SetUpCluster(false);
  for (int i = 0; i < 10; ++i) {
    now_ += absl::Seconds(30);
    Heartbeat(agent_);
    leader_->Tick(now_);
    CommitAll();
  }
  EXPECT_EQ(committed_.FindAgent(agent_.id)->state(), v1::AgentRecord::ACTIVE);
  EXPECT_FALSE(agent_.stream->closed);
  EXPECT_FALSE(agent_.stream->OfType(AgentEvent::HEARTBEAT).empty());
}

// ---- 7. reregistration reconciliation ---------------------------------------

TEST_F(LeaderWithTaskTest, ReregistrationLosesMissingTasksAndKillsUnknownOnes) {
  SetUpCluster(false);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  v1::AgentCall rereg = SubscribeCall("host-a", agent_.id);
  Report(&rereg, framework_.id, "ghost", v1::TASK_RUNNING);

  auto stream = std::make_shared<FakeAgentStream>();
  AnswerSlot answer = NewSlot();
  const size_t mark = events_.size();
  leader_->AgentSubscribe(rereg, Context(), stream, Into(answer));
  // One stream per agent: the old one ends before the new one is handled.
  EXPECT_EQ(agent_.stream->events.back().type(), AgentEvent::ERROR);
  EXPECT_EQ(agent_.stream->events.back().error().code(), 409);
  EXPECT_TRUE(agent_.stream->closed);
  EXPECT_FALSE(answer->has_value());
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 200);

  const std::vector<Event> events = EventsSince(mark);
  ASSERT_THAT(TypesOf(events), ElementsAre(Event::kTaskStatusUpdated,
                                           Event::kAgentReregistered));
  const TaskStatus& lost = events[0].task_status_updated().status();
  EXPECT_EQ(lost.task_id().value(), "t1");
  EXPECT_EQ(lost.state(), v1::TASK_LOST);
  EXPECT_EQ(lost.reason(), TaskStatus::REASON_RECONCILIATION);
  EXPECT_EQ(lost.source(), TaskStatus::SOURCE_MASTER);

  ASSERT_THAT(stream->Types(),
              ElementsAre(AgentEvent::SUBSCRIBED, AgentEvent::KILL,
                          AgentEvent::RECONCILE));
  EXPECT_EQ(stream->events[1].kill().task_id().value(), "ghost");
  EXPECT_EQ(stream->events[1].kill().framework_id().value(), framework_.id);
  EXPECT_EQ(stream->events[2].reconcile().tasks_size(), 0);
}

TEST_F(LeaderWithTaskTest, ReregistrationReportingATaskOfARemovedFramework) {
  SetUpCluster(false);
  v1::AgentCall rereg = SubscribeCall("host-a", agent_.id);
  Report(&rereg, framework_.id, "t1", v1::TASK_RUNNING);
  Report(&rereg, "gone-framework", "x", v1::TASK_RUNNING);
  AgentHandle back = Subscribe(rereg);
  ASSERT_THAT(back.stream->Types(), ElementsAre(AgentEvent::SUBSCRIBED,
                                                AgentEvent::SHUTDOWN_FRAMEWORK,
                                                AgentEvent::RECONCILE));
  EXPECT_EQ(back.stream->events[1].shutdown_framework().framework_id().value(),
            "gone-framework");
}

// ---- 8. failover timeouts ---------------------------------------------------

TEST_F(LeaderWithTaskTest, DisconnectedFrameworkIsRemovedAtItsDeadline) {
  SetUpCluster(false, /*failover_timeout=*/30);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));

  const size_t mark = events_.size();
  leader_->FrameworkStreamClosed(framework_.stream_id);
  CommitAll();
  ASSERT_THAT(TypesSince(mark), ElementsAre(Event::kFrameworkDisconnected));
  const absl::Time disconnected = ToTime(events_[mark].time());
  EXPECT_EQ(
      ToTime(committed_.FindFramework(framework_.id)->failover_deadline()),
      disconnected + absl::Seconds(30));

  now_ = disconnected + absl::Seconds(30) - absl::Milliseconds(1);
  Heartbeat(agent_);
  const size_t before = events_.size();
  leader_->Tick(now_);
  CommitAll();
  EXPECT_TRUE(TypesSince(before).empty());
  EXPECT_EQ(committed_.FindFramework(framework_.id)->state(),
            v1::FrameworkRecord::DISCONNECTED);

  now_ = disconnected + absl::Seconds(30);
  const size_t at = events_.size();
  leader_->Tick(now_);
  CommitAll();
  const std::vector<Event> events = EventsSince(at);
  ASSERT_THAT(TypesOf(events),
              ElementsAre(Event::kTaskStatusUpdated, Event::kFrameworkRemoved));
  const TaskStatus& killed = events[0].task_status_updated().status();
  EXPECT_EQ(killed.task_id().value(), "t1");
  EXPECT_EQ(killed.state(), v1::TASK_KILLED);
  EXPECT_EQ(killed.reason(), TaskStatus::REASON_FRAMEWORK_REMOVED);
  EXPECT_EQ(killed.source(), TaskStatus::SOURCE_MASTER);
  EXPECT_EQ(committed_.FindFramework(framework_.id)->state(),
            v1::FrameworkRecord::COMPLETED);
  EXPECT_EQ(leader_->metrics().frameworks_removed, 1u);

  std::vector<AgentEvent> shutdowns =
      agent_.stream->OfType(AgentEvent::SHUTDOWN_FRAMEWORK);
  ASSERT_EQ(shutdowns.size(), 1u);
  EXPECT_EQ(shutdowns[0].shutdown_framework().framework_id().value(),
            framework_.id);

  // Later ticks do not remove it again.
  now_ += absl::Seconds(1);
  const size_t later = events_.size();
  leader_->Tick(now_);
  CommitAll();
  EXPECT_TRUE(TypesSince(later).empty());
}

TEST_F(LeaderWithTaskTest, FrameworkResubscribingBeforeItsDeadlineFailsOver) {
  SetUpCluster(false, /*failover_timeout=*/30);
  leader_->FrameworkStreamClosed(framework_.stream_id);
  CommitAll();
  EXPECT_EQ(leader_->framework_streams(), 0u);

  now_ += absl::Seconds(10);
  const size_t mark = events_.size();
  FrameworkHandle again = SubscribeFramework(
      FrameworkSubscribeCall("fw", false, 30, framework_.id));
  EXPECT_EQ(again.id, framework_.id);
  ASSERT_THAT(TypesSince(mark), ElementsAre(Event::kFrameworkFailedOver));
  EXPECT_EQ(committed_.FindFramework(framework_.id)->state(),
            v1::FrameworkRecord::CONNECTED);

  now_ += absl::Seconds(60);
  Heartbeat(agent_);
  leader_->Tick(now_);
  CommitAll();
  for (const Event& e : EventsSince(mark)) {
    EXPECT_NE(e.type_case(), Event::kFrameworkRemoved);
  }
  EXPECT_EQ(committed_.FindFramework(framework_.id)->state(),
            v1::FrameworkRecord::CONNECTED);
  EXPECT_EQ(Task(framework_.id, "t1").task().state(), v1::TASK_STAGING);
}

TEST_F(LeaderWithTaskTest, NewLeaderStartsConnectedFrameworksFailoverTimeout) {
  SetUpCluster(false, /*failover_timeout=*/30);
  ASSERT_EQ(committed_.FindFramework(framework_.id)->state(),
            v1::FrameworkRecord::CONNECTED);
  now_ += absl::Seconds(100);
  const size_t mark = events_.size();
  FailOver();
  const absl::Time elected = now_;
  EXPECT_TRUE(agent_.stream->closed);
  EXPECT_TRUE(framework_.stream->closed);

  ASSERT_THAT(TypesOf(log_.QueuedEvents()),
              ElementsAre(Event::kFrameworkDisconnected));
  CommitAll();
  ASSERT_THAT(TypesSince(mark), ElementsAre(Event::kFrameworkDisconnected));
  EXPECT_EQ(events_[mark].principal(), "master");
  const v1::FrameworkRecord* f = committed_.FindFramework(framework_.id);
  EXPECT_EQ(f->state(), v1::FrameworkRecord::DISCONNECTED);
  EXPECT_EQ(ToTime(f->failover_deadline()), elected + absl::Seconds(30));
}

// ---- 9. kills ---------------------------------------------------------------

TEST_F(LeaderTest, KillOfAnUndispatchedTaskIsDoneByTheMaster) {
  StartLeader();
  AgentHandle agent = SubscribeNewAgent("host-a");
  FrameworkHandle f = SubscribeFramework("fw");
  std::vector<v1::Offer> offers = TickForOffers(f);
  ASSERT_EQ(offers.size(), 1u);
  // The agent's stream ends (no event) after the offer was made: the
  // launch now waits for the agent to subscribe again.
  leader_->AgentStreamClosed(agent.stream_id);
  EXPECT_EQ(leader_->agent_streams(), 0u);
  AnswerSlot launched = FrameworkCall(
      f, AcceptCall(offers[0], {CommandTask("t1"), CommandTask("t2")}));
  CommitAll();
  ASSERT_TRUE(launched->has_value());
  ASSERT_EQ((*launched)->code, 202) << (*launched)->message;
  EXPECT_FALSE(leader_->IsDispatched({f.id, "t1"}));
  EXPECT_TRUE(agent.stream->OfType(AgentEvent::LAUNCH).empty());

  const size_t mark = events_.size();
  AnswerSlot answer = FrameworkCall(f, KillCall("t1"));
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 202);
  ASSERT_THAT(TypesSince(mark), ElementsAre(Event::kTaskStatusUpdated));
  const TaskStatus& killed = events_[mark].task_status_updated().status();
  EXPECT_EQ(killed.state(), v1::TASK_KILLED);
  EXPECT_EQ(killed.source(), TaskStatus::SOURCE_MASTER);
  EXPECT_EQ(killed.reason(), TaskStatus::REASON_TASK_KILLED_DURING_LAUNCH);
  ASSERT_EQ(f.stream->Updates().size(), 1u);
  EXPECT_EQ(f.stream->Updates()[0].state(), v1::TASK_KILLED);

  // When the agent comes back it gets only the live task's LAUNCH.
  AgentHandle back = Subscribe(SubscribeCall("host-a", agent.id));
  ASSERT_THAT(back.stream->Types(),
              ElementsAre(AgentEvent::SUBSCRIBED, AgentEvent::LAUNCH,
                          AgentEvent::RECONCILE));
  ASSERT_EQ(back.stream->events[1].launch().tasks_size(), 1);
  EXPECT_EQ(back.stream->events[1].launch().tasks(0).task_id().value(), "t2");
  EXPECT_FALSE(leader_->IsDispatched({f.id, "t1"}));
  EXPECT_TRUE(leader_->IsDispatched({f.id, "t2"}));
}

TEST_F(LeaderWithTaskTest, KillOfADispatchedTaskIsRecordedAndSentToTheAgent) {
  SetUpCluster(false);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  scheduler::Call kill = KillCall("t1");
  kill.mutable_kill()
      ->mutable_kill_policy()
      ->mutable_grace_period()
      ->set_nanoseconds(absl::ToInt64Nanoseconds(absl::Seconds(3)));

  const size_t mark = events_.size();
  AnswerSlot answer = FrameworkCall(framework_, kill);
  EXPECT_TRUE(agent_.stream->OfType(AgentEvent::KILL).empty());
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 202);
  ASSERT_THAT(TypesSince(mark), ElementsAre(Event::kTaskKillRequested));
  EXPECT_TRUE(Task(framework_.id, "t1").has_kill_request());
  EXPECT_EQ(Task(framework_.id, "t1").task().state(), v1::TASK_RUNNING);

  std::vector<AgentEvent> kills = agent_.stream->OfType(AgentEvent::KILL);
  ASSERT_EQ(kills.size(), 1u);
  EXPECT_EQ(kills[0].kill().task_id().value(), "t1");
  EXPECT_EQ(kills[0].kill().kill_policy().grace_period().nanoseconds(),
            3000000000);

  // A new leader resends it when the agent subscribes.
  FailOver();
  CommitAll();
  v1::AgentCall rereg = SubscribeCall("host-a", agent_.id);
  Report(&rereg, framework_.id, "t1", v1::TASK_RUNNING);
  AgentHandle back = Subscribe(rereg);
  ASSERT_THAT(back.stream->Types(),
              ElementsAre(AgentEvent::SUBSCRIBED, AgentEvent::KILL,
                          AgentEvent::RECONCILE));
  EXPECT_EQ(back.stream->events[1].kill().task_id().value(), "t1");
  EXPECT_EQ(
      back.stream->events[1].kill().kill_policy().grace_period().nanoseconds(),
      3000000000);
}

// A KILL decided while the task's TasksLaunched is still in flight kills it
// from the master (it was never dispatched): its LAUNCH must then never go
// out, even though the launch commits first.
TEST_F(LeaderTest, TaskKilledBeforeItsLaunchCommittedIsNeverDispatched) {
  StartLeader();
  AgentHandle agent = SubscribeNewAgent("host-a");
  FrameworkHandle f = SubscribeFramework("fw");
  std::vector<v1::Offer> offers = TickForOffers(f);
  ASSERT_EQ(offers.size(), 1u);

  AnswerSlot accepted =
      FrameworkCall(f, AcceptCall(offers[0], {CommandTask("t1")}));
  AnswerSlot killed = FrameworkCall(f, KillCall("t1"));
  ASSERT_THAT(TypesOf(log_.QueuedEvents()),
              ElementsAre(Event::kTasksLaunched, Event::kTaskStatusUpdated));
  CommitAll();
  ASSERT_TRUE(accepted->has_value());
  ASSERT_TRUE(killed->has_value());
  EXPECT_EQ(Task(f.id, "t1").task().state(), v1::TASK_KILLED);
  EXPECT_TRUE(agent.stream->OfType(AgentEvent::LAUNCH).empty());
  EXPECT_FALSE(leader_->IsDispatched({f.id, "t1"}));
}

// The same with the launch and the kill in separate log entries.
TEST_F(LeaderTest, TaskKilledBeforeItsLaunchCommittedIsNeverDispatchedLater) {
  StartLeader();
  AgentHandle agent = SubscribeNewAgent("host-a");
  FrameworkHandle f = SubscribeFramework("fw");
  std::vector<v1::Offer> offers = TickForOffers(f);
  ASSERT_EQ(offers.size(), 1u);

  FrameworkCall(f, AcceptCall(offers[0], {CommandTask("t1")}));
  log_.ChooseAll();  // chosen, not yet applied
  FrameworkCall(f, KillCall("t1"));
  Fold();  // the launch is applied; the kill is in flight
  CommitAll();
  EXPECT_EQ(Task(f.id, "t1").task().state(), v1::TASK_KILLED);
  EXPECT_TRUE(agent.stream->OfType(AgentEvent::LAUNCH).empty());
}

// ---- 10. offers: expiry and declines ----------------------------------------

TEST_F(LeaderTest, ExpiredOffersAreRescinded) {
  options_.allocator.offer_timeout = absl::Seconds(10);
  StartLeader();
  AgentHandle agent = SubscribeNewAgent("host-a");
  FrameworkHandle f = SubscribeFramework("fw");
  std::vector<v1::Offer> offers = TickForOffers(f);
  ASSERT_EQ(offers.size(), 1u);
  const std::string offer_id = offers[0].id().value();

  now_ += absl::Seconds(9);
  leader_->Tick(now_);
  CommitAll();
  EXPECT_TRUE(f.stream->OfType(scheduler::Event::RESCIND).empty());

  now_ += absl::Seconds(1);
  const size_t mark = events_.size();
  leader_->Tick(now_);
  CommitAll();
  const std::vector<Event> events = EventsSince(mark);
  ASSERT_FALSE(events.empty());
  ASSERT_EQ(events[0].type_case(), Event::kOffersExpired);
  ASSERT_EQ(events[0].offers_expired().offer_ids_size(), 1);
  EXPECT_EQ(events[0].offers_expired().offer_ids(0).value(), offer_id);
  EXPECT_EQ(committed_.FindOffer(offer_id), nullptr);

  std::vector<scheduler::Event> rescinds =
      f.stream->OfType(scheduler::Event::RESCIND);
  ASSERT_EQ(rescinds.size(), 1u);
  EXPECT_EQ(rescinds[0].rescind().offer_id().value(), offer_id);
  EXPECT_EQ(leader_->metrics().offers_rescinded, 1u);
}

TEST_F(LeaderTest, DeclinedResourcesAreNotReofferedBeforeRefuseSeconds) {
  StartLeader();
  AgentHandle agent = SubscribeNewAgent("host-a");
  FrameworkHandle f = SubscribeFramework("fw");
  std::vector<v1::Offer> offers = TickForOffers(f);
  ASSERT_EQ(offers.size(), 1u);

  scheduler::Call decline;
  decline.set_type(scheduler::Call::DECLINE);
  *decline.mutable_decline()->add_offer_ids() = offers[0].id();
  decline.mutable_decline()->mutable_filters()->set_refuse_seconds(20);
  const size_t mark = events_.size();
  AnswerSlot answer = FrameworkCall(f, decline);
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 202);
  ASSERT_THAT(TypesSince(mark), ElementsAre(Event::kOffersDeclined));
  EXPECT_EQ(events_[mark].offers_declined().offer_ids(0).value(),
            offers[0].id().value());
  EXPECT_EQ(committed_.offer_count(), 0u);

  for (int s : {1, 10, 19}) {
    now_ = ToTime(events_[mark].time()) + absl::Seconds(s);
    Heartbeat(agent);
    EXPECT_TRUE(TickForOffers(f).empty()) << "at +" << s << "s";
  }
  now_ = ToTime(events_[mark].time()) + absl::Seconds(20);
  std::vector<v1::Offer> again = TickForOffers(f);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_NE(again[0].id().value(), offers[0].id().value());
  EXPECT_EQ(again[0].agent_id().value(), agent.id);
}

// ---- more: new leaders, redelivery, teardown, reconciliation ---------------

TEST_F(LeaderWithTaskTest, NewLeaderMarksAgentsThatDoNotComeBackUnreachable) {
  SetUpCluster(false, /*failover_timeout=*/86400);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  FailOver();
  CommitAll();
  const absl::Time elected = now_;

  now_ = elected + options_.agent_reregister_timeout - absl::Milliseconds(1);
  const size_t before = events_.size();
  leader_->Tick(now_);
  CommitAll();
  EXPECT_TRUE(TypesSince(before).empty());

  now_ = elected + options_.agent_reregister_timeout;
  const size_t mark = events_.size();
  leader_->Tick(now_);
  CommitAll();
  ASSERT_THAT(TypesSince(mark),
              ElementsAre(Event::kAgentUnreachable, Event::kTaskStatusUpdated));
  EXPECT_EQ(events_[mark + 1].task_status_updated().status().state(),
            v1::TASK_LOST);
}

TEST_F(LeaderWithTaskTest, NewLeaderRedeliversPendingUpdatesOnResubscribe) {
  SetUpCluster(false, /*failover_timeout=*/86400);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  ASSERT_EQ(framework_.stream->Updates().size(), 1u);
  FailOver();
  CommitAll();

  FrameworkHandle again = SubscribeFramework(
      FrameworkSubscribeCall("fw", false, 86400, framework_.id));
  ASSERT_EQ(again.stream->events.size(), 2u);
  EXPECT_EQ(again.stream->events[0].type(), scheduler::Event::SUBSCRIBED);
  ASSERT_EQ(again.stream->Updates().size(), 1u);
  EXPECT_EQ(again.stream->Updates()[0].uuid(), Uuid('1'));
}

// The old leader committed the agent's update but died before its
// ACKNOWLEDGE: the agent's retry to the new leader is a duplicate.
TEST_F(LeaderWithTaskTest, UpdateCommittedByTheOldLeaderIsADuplicateForTheNew) {
  SetUpCluster(false, /*failover_timeout=*/86400);
  EXPECT_EQ(AgentCall(agent_, UpdateCall(agent_, framework_.id, "t1",
                                         v1::TASK_RUNNING, Uuid('1')))
                .code,
            202);
  log_.ChooseAll();
  FailOver();  // folds the chosen update; the old leader never acked it
  CommitAll();
  EXPECT_TRUE(agent_.stream->OfType(AgentEvent::ACKNOWLEDGE).empty());
  EXPECT_EQ(Task(framework_.id, "t1").task().state(), v1::TASK_RUNNING);

  v1::AgentCall rereg = SubscribeCall("host-a", agent_.id);
  Report(&rereg, framework_.id, "t1", v1::TASK_RUNNING);
  AgentHandle back = Subscribe(rereg);
  const size_t mark = events_.size();
  AgentUpdate(back, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  EXPECT_TRUE(TypesSince(mark).empty());
  std::vector<AgentEvent> acks = back.stream->OfType(AgentEvent::ACKNOWLEDGE);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].acknowledge().uuid(), Uuid('1'));
  EXPECT_TRUE(back.stream->OfType(AgentEvent::KILL).empty());
}

TEST_F(LeaderWithTaskTest, UnacknowledgedUpdateIsResentAfterTheRetryInterval) {
  SetUpCluster(false);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  ASSERT_EQ(framework_.stream->Updates().size(), 1u);
  const absl::Time sent = now_;

  now_ = sent + options_.status_update_retry - absl::Milliseconds(1);
  leader_->Tick(now_);
  CommitAll();
  EXPECT_EQ(framework_.stream->Updates().size(), 1u);

  now_ = sent + options_.status_update_retry;
  leader_->Tick(now_);
  CommitAll();
  ASSERT_EQ(framework_.stream->Updates().size(), 2u);
  EXPECT_EQ(framework_.stream->Updates()[1].uuid(), Uuid('1'));
}

TEST_F(LeaderWithTaskTest, FrameworkFailoverEndsTheOldStream) {
  SetUpCluster(false, /*failover_timeout=*/60);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  const size_t mark = events_.size();
  FrameworkHandle again = SubscribeFramework(
      FrameworkSubscribeCall("fw", false, 60, framework_.id));
  ASSERT_THAT(TypesSince(mark), ElementsAre(Event::kFrameworkFailedOver));
  EXPECT_EQ(framework_.stream->events.back().type(), scheduler::Event::ERROR);
  EXPECT_TRUE(framework_.stream->closed);
  EXPECT_NE(again.stream_id, framework_.stream_id);
  EXPECT_EQ(leader_->framework_streams(), 1u);
  ASSERT_EQ(again.stream->Updates().size(), 1u);  // pending update again
  AnswerSlot old = FrameworkCall(framework_, KillCall("t1"));
  ASSERT_TRUE(old->has_value());
  EXPECT_EQ((*old)->code, 400);
  EXPECT_EQ((*old)->field, "Mesos-Stream-Id");
}

TEST_F(LeaderWithTaskTest, TeardownKillsTasksAndShutsTheFrameworkDown) {
  SetUpCluster(false);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  scheduler::Call teardown;
  teardown.set_type(scheduler::Call::TEARDOWN);
  const size_t mark = events_.size();
  AnswerSlot answer = FrameworkCall(framework_, teardown);
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 202);
  ASSERT_THAT(TypesSince(mark),
              ElementsAre(Event::kTaskStatusUpdated, Event::kFrameworkRemoved));
  EXPECT_EQ(events_[mark].task_status_updated().status().reason(),
            TaskStatus::REASON_FRAMEWORK_REMOVED);
  EXPECT_TRUE(framework_.stream->closed);
  ASSERT_EQ(agent_.stream->OfType(AgentEvent::SHUTDOWN_FRAMEWORK).size(), 1u);

  // The agent's late TASK_KILLED: the framework is gone.
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_KILLED, Uuid('2'));
  EXPECT_EQ(events_.size(), mark + 2);
  EXPECT_EQ(agent_.stream->OfType(AgentEvent::SHUTDOWN_FRAMEWORK).size(), 2u);
}

TEST_F(LeaderWithTaskTest, UnsubscribeRemovesTheAgent) {
  SetUpCluster(false);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  v1::AgentCall call;
  call.set_type(v1::AgentCall::UNSUBSCRIBE);
  call.mutable_agent_id()->set_value(agent_.id);
  const size_t mark = events_.size();
  AnswerSlot answer = NewSlot();
  leader_->AgentCall(call, agent_.stream_id, Context(), Into(answer));
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 202);
  ASSERT_THAT(TypesSince(mark),
              ElementsAre(Event::kTaskStatusUpdated, Event::kAgentRemoved));
  EXPECT_EQ(events_[mark].task_status_updated().status().state(),
            v1::TASK_LOST);
  EXPECT_EQ(events_[mark].task_status_updated().status().reason(),
            TaskStatus::REASON_AGENT_REMOVED);
  EXPECT_FALSE(events_[mark + 1].agent_removed().by_operator());
  EXPECT_TRUE(agent_.stream->closed);
  EXPECT_EQ(leader_->agent_streams(), 0u);
  EXPECT_EQ(committed_.FindAgent(agent_.id)->state(), v1::AgentRecord::REMOVED);

  // The removed agent cannot come back under its id.
  auto stream = std::make_shared<FakeAgentStream>();
  AnswerSlot again = NewSlot();
  leader_->AgentSubscribe(SubscribeCall("host-a", agent_.id), Context(), stream,
                          Into(again));
  ASSERT_TRUE(again->has_value());
  EXPECT_EQ((*again)->code, 403);
  EXPECT_EQ((*again)->field, "subscribe.agent_info.id");
}

TEST_F(LeaderWithTaskTest, ReconcileAnswersFromTheCommittedState) {
  SetUpCluster(/*partition_aware=*/false);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  const size_t before = framework_.stream->Updates().size();

  scheduler::Call implicit;
  implicit.set_type(scheduler::Call::RECONCILE);
  AnswerSlot answer = FrameworkCall(framework_, implicit);
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 202);
  std::vector<TaskStatus> updates = framework_.stream->Updates();
  ASSERT_EQ(updates.size(), before + 1);
  EXPECT_EQ(updates.back().task_id().value(), "t1");
  EXPECT_EQ(updates.back().state(), v1::TASK_RUNNING);
  EXPECT_EQ(updates.back().reason(), TaskStatus::REASON_RECONCILIATION);
  EXPECT_TRUE(updates.back().uuid().empty());

  scheduler::Call explicit_call;
  explicit_call.set_type(scheduler::Call::RECONCILE);
  explicit_call.mutable_reconcile()->add_tasks()->mutable_task_id()->set_value(
      "unknown");
  answer = FrameworkCall(framework_, explicit_call);
  ASSERT_TRUE(answer->has_value());
  updates = framework_.stream->Updates();
  ASSERT_EQ(updates.size(), before + 2);
  EXPECT_EQ(updates.back().task_id().value(), "unknown");
  EXPECT_EQ(updates.back().state(), v1::TASK_LOST);
  EXPECT_EQ(log_.queued(), 0u);
}

TEST_F(LeaderWithTaskTest, OffersOfAnUnreachableAgentAreRescinded) {
  SetUpCluster(false);
  // What t1 left of its offer was declined for the default 5 s.
  now_ += absl::Seconds(5);
  std::vector<v1::Offer> offers = TickForOffers(framework_);
  ASSERT_EQ(offers.size(), 1u);
  now_ += absl::Seconds(70);
  leader_->Tick(now_);
  CommitAll();
  std::vector<scheduler::Event> rescinds =
      framework_.stream->OfType(scheduler::Event::RESCIND);
  ASSERT_EQ(rescinds.size(), 1u);
  EXPECT_EQ(rescinds[0].rescind().offer_id().value(), offers[0].id().value());

  // Accepting it now is answered with TASK_LOST (invalid offer).
  const size_t mark = events_.size();
  AnswerSlot answer =
      FrameworkCall(framework_, AcceptCall(offers[0], {CommandTask("t2")}));
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  EXPECT_TRUE(TypesSince(mark).empty());
  std::vector<TaskStatus> updates = framework_.stream->Updates();
  ASSERT_FALSE(updates.empty());
  EXPECT_EQ(updates.back().task_id().value(), "t2");
  EXPECT_EQ(updates.back().state(), v1::TASK_LOST);
  EXPECT_EQ(updates.back().reason(), TaskStatus::REASON_INVALID_OFFERS);
}

TEST_F(LeaderTest, SecondSubscribeFromTheSameNewAgentWhileOneIsInFlightIs503) {
  StartLeader();
  AnswerSlot first = NewSlot();
  AnswerSlot second = NewSlot();
  leader_->AgentSubscribe(SubscribeCall("host-a"), Context(),
                          std::make_shared<FakeAgentStream>(), Into(first));
  leader_->AgentSubscribe(SubscribeCall("host-a"), Context(),
                          std::make_shared<FakeAgentStream>(), Into(second));
  ASSERT_TRUE(second->has_value());
  EXPECT_EQ((*second)->code, 503);
  CommitAll();
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->code, 200);
  EXPECT_EQ(committed_.AgentIds().size(), 1u);
}

// ---- errors the fold would catch are answered as the caller's errors --------

// Regression: the fold's refusal surfaced as kInternal (HTTP 500).
TEST_F(LeaderWithTaskTest, ReregistrationWithATotalBelowTheTasksUseIs400) {
  SetUpCluster(false);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  v1::AgentCall rereg = SubscribeCall("host-a", agent_.id, "cpus:0.5;mem:64");
  Report(&rereg, framework_.id, "t1", v1::TASK_RUNNING);
  auto stream = std::make_shared<FakeAgentStream>();
  AnswerSlot answer = NewSlot();
  leader_->AgentSubscribe(rereg, Context(), stream, Into(answer));
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 400) << (*answer)->message;
  EXPECT_EQ((*answer)->field, "subscribe.agent_info.resources");
  EXPECT_EQ(log_.queued(), 0u);
  EXPECT_TRUE(stream->events.empty());

  // Missing tasks do not count: their loss is written first.
  v1::AgentCall without_task =
      SubscribeCall("host-a", agent_.id, "cpus:0.5;mem:64");
  const size_t mark = events_.size();
  AgentHandle back = Subscribe(without_task);
  ASSERT_THAT(TypesSince(mark), ElementsAre(Event::kTaskStatusUpdated,
                                            Event::kAgentReregistered));
}

// Regression: the fold's refusal surfaced as kInternal (HTTP 500).
TEST_F(LeaderWithTaskTest, UpdateResourcesBelowTheTasksUseIs400) {
  SetUpCluster(false);
  v1::AgentCall call;
  call.set_type(v1::AgentCall::UPDATE_RESOURCES);
  call.mutable_agent_id()->set_value(agent_.id);
  SetResources("cpus:0.5;mem:64",
               call.mutable_update_resources()->mutable_resources());
  AnswerSlot answer = NewSlot();
  leader_->AgentCall(call, agent_.stream_id, Context(), Into(answer));
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 400) << (*answer)->message;
  EXPECT_EQ((*answer)->field, "update_resources.resources");
  EXPECT_EQ(log_.queued(), 0u);

  call.mutable_update_resources()->mutable_resources()->Clear();
  SetResources("cpus:8;mem:8192",
               call.mutable_update_resources()->mutable_resources());
  const size_t mark = events_.size();
  AnswerSlot ok = NewSlot();
  leader_->AgentCall(call, agent_.stream_id, Context(), Into(ok));
  CommitAll();
  ASSERT_TRUE(ok->has_value());
  EXPECT_EQ((*ok)->code, 202);
  ASSERT_THAT(TypesSince(mark), ElementsAre(Event::kAgentResourcesUpdated));
}

// Regression: the fold's refusal surfaced as kInternal (HTTP 500).
TEST_F(LeaderWithTaskTest, UpdateFrameworkCannotChangeThePrincipal) {
  SetUpCluster(false);
  scheduler::Call update;
  update.set_type(scheduler::Call::UPDATE_FRAMEWORK);
  v1::FrameworkInfo* info =
      update.mutable_update_framework()->mutable_framework_info();
  *info = committed_.FindFramework(framework_.id)->info();
  info->set_principal("someone-else");
  AnswerSlot answer = FrameworkCall(framework_, update);
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 400) << (*answer)->message;
  EXPECT_EQ((*answer)->field, "update_framework.framework_info.principal");
  EXPECT_EQ(log_.queued(), 0u);
}

// Regression: a task group's tasks (each with its own command, run by the
// group's executor) were all refused with "exactly one of command and
// executor".
TEST_F(LeaderTest, LaunchGroupRunsTheTasksCommandsInTheGroupsExecutor) {
  StartLeader();
  AgentHandle agent = SubscribeNewAgent("host-a");
  FrameworkHandle f = SubscribeFramework("fw");
  std::vector<v1::Offer> offers = TickForOffers(f);
  ASSERT_EQ(offers.size(), 1u);

  scheduler::Call accept;
  accept.set_type(scheduler::Call::ACCEPT);
  *accept.mutable_accept()->add_offer_ids() = offers[0].id();
  v1::Offer::Operation* op = accept.mutable_accept()->add_operations();
  op->set_type(v1::Offer::Operation::LAUNCH_GROUP);
  v1::ExecutorInfo* executor = op->mutable_launch_group()->mutable_executor();
  executor->set_type(v1::ExecutorInfo::DEFAULT);
  executor->mutable_executor_id()->set_value("group-executor");
  executor->mutable_framework_id()->set_value(f.id);
  SetResources("cpus:0.1;mem:32", executor->mutable_resources());
  v1::TaskGroupInfo* group = op->mutable_launch_group()->mutable_task_group();
  *group->add_tasks() = CommandTask("g1");
  *group->add_tasks() = CommandTask("g2");

  const size_t mark = events_.size();
  AnswerSlot answer = FrameworkCall(f, accept);
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 202);
  EXPECT_TRUE(f.stream->Updates().empty());
  ASSERT_THAT(TypesSince(mark), ElementsAre(Event::kTasksLaunched));
  ASSERT_EQ(events_[mark].tasks_launched().tasks_size(), 2);
  EXPECT_EQ(
      events_[mark].tasks_launched().tasks(0).executor().executor_id().value(),
      "group-executor");
  std::vector<AgentEvent> launches = agent.stream->OfType(AgentEvent::LAUNCH);
  ASSERT_EQ(launches.size(), 2u);
  EXPECT_EQ(launches[0].launch().executor_info().executor_id().value(),
            "group-executor");

  // A task of a group may not name an executor of its own.
  now_ += absl::Seconds(5);  // past the default decline of the leftover
  std::vector<v1::Offer> more = TickForOffers(f);
  ASSERT_EQ(more.size(), 1u);
  *accept.mutable_accept()->mutable_offer_ids(0) = more[0].id();
  v1::TaskGroupInfo* bad_group = accept.mutable_accept()
                                     ->mutable_operations(0)
                                     ->mutable_launch_group()
                                     ->mutable_task_group();
  bad_group->Clear();
  v1::TaskInfo own_executor = CommandTask("g3");
  own_executor.mutable_executor()->mutable_executor_id()->set_value("own");
  *bad_group->add_tasks() = CommandTask("g4");
  *bad_group->add_tasks() = own_executor;
  const size_t before_bad = events_.size();
  answer = FrameworkCall(f, accept);
  CommitAll();
  // All or nothing: the valid g4 is refused with the invalid g3.
  ASSERT_EQ(f.stream->Updates().size(), 2u);
  EXPECT_EQ(f.stream->Updates()[0].task_id().value(), "g4");
  EXPECT_EQ(f.stream->Updates()[1].task_id().value(), "g3");
  for (const v1::TaskStatus& status : f.stream->Updates()) {
    EXPECT_EQ(status.state(), v1::TASK_ERROR);
    EXPECT_EQ(status.reason(), v1::TaskStatus::REASON_TASK_GROUP_INVALID);
  }
  EXPECT_THAT(TypesSince(before_bad), ElementsAre(Event::kOffersDeclined));
  EXPECT_EQ(committed_.FindTask(f.id, "g4"), nullptr);
}

// ---- 11. stepping down ------------------------------------------------------

TEST_F(LeaderWithTaskTest, DestroyingTheLeaderEndsEveryStream) {
  SetUpCluster(false);
  ASSERT_FALSE(agent_.stream->closed);
  ASSERT_FALSE(framework_.stream->closed);
  leader_.reset();
  EXPECT_TRUE(agent_.stream->closed);
  EXPECT_TRUE(framework_.stream->closed);
}

TEST_F(LeaderTest, StepDownAnswersPendingSubscribesWith503) {
  StartLeader();
  auto agent_stream = std::make_shared<FakeAgentStream>();
  auto framework_stream = std::make_shared<FakeFrameworkStream>();
  AnswerSlot agent_answer = NewSlot();
  AnswerSlot framework_answer = NewSlot();
  leader_->AgentSubscribe(SubscribeCall("host-a"), Context(), agent_stream,
                          Into(agent_answer));
  leader_->FrameworkSubscribe(FrameworkSubscribeCall("fw"), Context(),
                              framework_stream, Into(framework_answer));
  EXPECT_FALSE(agent_answer->has_value());
  EXPECT_FALSE(framework_answer->has_value());

  path_.StepDown(absl::UnavailableError("lost leadership"));
  ASSERT_TRUE(agent_answer->has_value());
  ASSERT_TRUE(framework_answer->has_value());
  EXPECT_EQ((*agent_answer)->code, 503);
  EXPECT_EQ((*framework_answer)->code, 503);
  EXPECT_TRUE(agent_stream->events.empty());
  EXPECT_TRUE(framework_stream->events.empty());

  // Not leading: new calls get 503 too.
  AnswerSlot later = NewSlot();
  leader_->AgentSubscribe(SubscribeCall("host-b"), Context(),
                          std::make_shared<FakeAgentStream>(), Into(later));
  ASSERT_TRUE(later->has_value());
  EXPECT_EQ((*later)->code, 503);
}

TEST_F(LeaderTest, CallsPendingWhenTheLeaderIsDestroyedGet503) {
  StartLeader();
  auto stream = std::make_shared<FakeAgentStream>();
  AnswerSlot answer = NewSlot();
  leader_->AgentSubscribe(SubscribeCall("host-a"), Context(), stream,
                          Into(answer));
  leader_.reset();
  EXPECT_FALSE(answer->has_value());
  CommitAll();  // the entry was chosen, but nobody serves the stream
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 503);
  EXPECT_TRUE(stream->events.empty());
}

// Offers carry the agent's URL; a framework without MULTI_ROLE gets them
// (and their resources) without allocation_info, as Mesos sends them, while
// the log keeps the allocation.
TEST_F(LeaderTest, OffersCarryTheAgentUrlAndOnlyMultiRoleSeesAllocationInfo) {
  StartLeader();
  SubscribeNewAgent("10.0.0.7");
  FrameworkHandle legacy = SubscribeFramework("legacy");
  std::vector<v1::Offer> offers = TickForOffers(legacy);
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].url().scheme(), "http");
  EXPECT_EQ(offers[0].url().address().hostname(), "10.0.0.7");
  EXPECT_EQ(offers[0].url().address().ip(), "10.0.0.7");
  EXPECT_EQ(offers[0].url().address().port(), 5051);
  EXPECT_FALSE(offers[0].has_allocation_info());
  for (const v1::Resource& r : offers[0].resources()) {
    EXPECT_FALSE(r.has_allocation_info()) << r.name();
  }
  const v1::OfferRecord* logged = committed_.FindOffer(offers[0].id().value());
  ASSERT_NE(logged, nullptr);
  EXPECT_EQ(logged->offer().allocation_info().role(), "*");

  scheduler::Call call = FrameworkSubscribeCall("multi", false, 0);
  v1::FrameworkInfo* info = call.mutable_subscribe()->mutable_framework_info();
  info->add_capabilities()->set_type(v1::FrameworkInfo::Capability::MULTI_ROLE);
  info->add_roles("*");
  FrameworkHandle multi = SubscribeFramework(call);
  SubscribeNewAgent("10.0.0.8");
  now_ += absl::Seconds(1);
  std::vector<v1::Offer> multi_offers = TickForOffers(multi);
  ASSERT_FALSE(multi_offers.empty());
  EXPECT_EQ(multi_offers[0].allocation_info().role(), "*");
  for (const v1::Resource& r : multi_offers[0].resources()) {
    EXPECT_EQ(r.allocation_info().role(), "*") << r.name();
  }
}

// Regression (found by the npm client mesos-framework, which exports an
// offer's url.address.ip to its tasks as HOST): an agent named by a hostname
// gets offers with the IP its SUBSCRIBE came from, as Mesos offers always
// carry the agent's IP.
TEST_F(LeaderTest, OffersCarryTheSubscribersIpWhenTheHostnameIsNotAnIp) {
  StartLeader();
  auto stream = std::make_shared<FakeAgentStream>();
  stream->set_peer_ip("10.1.2.3");
  AnswerSlot answer = NewSlot();
  leader_->AgentSubscribe(SubscribeCall("agent-7.example"), Context(), stream,
                          Into(answer));
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  ASSERT_EQ((*answer)->code, 200) << (*answer)->message;
  FrameworkHandle framework = SubscribeFramework("fw");
  std::vector<v1::Offer> offers = TickForOffers(framework);
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].url().address().hostname(), "agent-7.example");
  EXPECT_EQ(offers[0].url().address().ip(), "10.1.2.3");
  EXPECT_EQ(offers[0].url().address().port(), 5051);
}

// Agents not subscribed to this leader (e.g. not yet reregistered after a
// failover) are not offered: their reregistration would rescind the offers.
TEST_F(LeaderTest, NoOffersForAnAgentWithoutAStreamToThisLeader) {
  StartLeader();
  AgentHandle agent = SubscribeNewAgent("host-a");
  FrameworkHandle f = SubscribeFramework("fw");
  leader_->AgentStreamClosed(agent.stream_id);
  EXPECT_TRUE(TickForOffers(f).empty());
  EXPECT_EQ(committed_.offer_count(), 0u);
  // Back on a stream: offered again.
  Subscribe(SubscribeCall("host-a", agent.id));
  now_ += absl::Seconds(1);
  EXPECT_EQ(TickForOffers(f).size(), 1u);
}

// ---- Operator API (POST /api/v1) --------------------------------------------

// Operator calls: each is answered only after its events are committed.
class LeaderOperatorTest : public LeaderWithTaskTest {
 protected:
  // Runs `call` with a fresh Done, commits everything, returns the answer.
  Answer Operator(const std::function<void(Leader::Done)>& call) {
    AnswerSlot answer = NewSlot();
    call(Into(answer));
    CommitAll();
    EXPECT_TRUE(answer->has_value()) << "no answer after the commit";
    return answer->value_or(Answer::Error(0, "no answer"));
  }

  static v1::Resource Reserved(const std::string& name, double value,
                               const std::string& role) {
    v1::Resource r;
    r.set_name(name);
    r.set_type(v1::MesosValue::SCALAR);
    r.mutable_scalar()->set_value(value);
    v1::Resource::ReservationInfo* info = r.add_reservations();
    info->set_type(v1::Resource::ReservationInfo::DYNAMIC);
    info->set_role(role);
    info->set_principal("ops");
    return r;
  }

  std::vector<TaskStatus::Reason> ReasonsSince(size_t mark) const {
    std::vector<TaskStatus::Reason> out;
    for (const Event& e : EventsSince(mark)) {
      if (e.has_task_status_updated()) {
        out.push_back(e.task_status_updated().status().reason());
      }
    }
    return out;
  }
};

TEST_F(LeaderOperatorTest, TeardownKillsTheTasksAndRemovesTheFramework) {
  SetUpCluster(false);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  const size_t mark = events_.size();
  Answer a = Operator([&](Leader::Done done) {
    leader_->TeardownFramework(framework_.id, Context(), std::move(done));
  });
  EXPECT_EQ(a.code, 200) << a.message;
  EXPECT_THAT(TypesSince(mark),
              ElementsAre(Event::kTaskStatusUpdated, Event::kFrameworkRemoved));
  EXPECT_THAT(ReasonsSince(mark),
              ElementsAre(TaskStatus::REASON_FRAMEWORK_REMOVED));
  EXPECT_EQ(committed_.FindFramework(framework_.id)->state(),
            v1::FrameworkRecord::COMPLETED);
  EXPECT_TRUE(framework_.stream->closed);
  ASSERT_FALSE(agent_.stream->OfType(AgentEvent::SHUTDOWN_FRAMEWORK).empty());

  Answer again = Operator([&](Leader::Done done) {
    leader_->TeardownFramework(framework_.id, Context(), std::move(done));
  });
  EXPECT_EQ(again.code, 400);
  EXPECT_EQ(again.field, "teardown.framework_id");
  EXPECT_EQ(Operator([&](Leader::Done done) {
              leader_->TeardownFramework("nope", Context(), std::move(done));
            }).code,
            400);
}

TEST_F(LeaderOperatorTest, MarkAgentGoneLosesTasksAndEndsTheAgentsStream) {
  SetUpCluster(/*partition_aware=*/false);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  const size_t mark = events_.size();
  Answer a = Operator([&](Leader::Done done) {
    leader_->MarkAgentGone(agent_.id, Context(), std::move(done));
  });
  EXPECT_EQ(a.code, 200) << a.message;
  ASSERT_THAT(TypesSince(mark),
              ElementsAre(Event::kTaskStatusUpdated, Event::kAgentRemoved));
  const std::vector<Event> events = EventsSince(mark);
  // Not PARTITION_AWARE: TASK_LOST, as Mesos.
  EXPECT_EQ(events[0].task_status_updated().status().state(), v1::TASK_LOST);
  EXPECT_EQ(events[0].task_status_updated().status().reason(),
            TaskStatus::REASON_AGENT_REMOVED);
  EXPECT_TRUE(events[1].agent_removed().by_operator());
  EXPECT_EQ(committed_.FindAgent(agent_.id)->state(), v1::AgentRecord::REMOVED);
  ASSERT_FALSE(agent_.stream->events.empty());
  EXPECT_EQ(agent_.stream->events.back().type(), AgentEvent::ERROR);
  EXPECT_EQ(agent_.stream->events.back().error().code(), 403);
  EXPECT_TRUE(agent_.stream->closed);
  EXPECT_EQ(leader_->agent_streams(), 0u);
  // The scheduler hears of it once it acknowledged TASK_RUNNING.
  EXPECT_EQ(Task(framework_.id, "t1").task().state(), v1::TASK_LOST);
  AnswerSlot ack =
      FrameworkCall(framework_, AcknowledgeCall(agent_.id, "t1", Uuid('1')));
  CommitAll();
  ASSERT_TRUE(ack->has_value());
  EXPECT_EQ((*ack)->code, 202);
  EXPECT_EQ(framework_.stream->Updates().back().state(), v1::TASK_LOST);

  // Already gone: 200 again, nothing new. Unknown: 404.
  const size_t after = events_.size();
  EXPECT_EQ(Operator([&](Leader::Done done) {
              leader_->MarkAgentGone(agent_.id, Context(), std::move(done));
            }).code,
            200);
  EXPECT_EQ(events_.size(), after);
  Answer unknown = Operator([&](Leader::Done done) {
    leader_->MarkAgentGone("no-such-agent", Context(), std::move(done));
  });
  EXPECT_EQ(unknown.code, 404);
  EXPECT_EQ(unknown.field, "mark_agent_gone.agent_id");
}

TEST_F(LeaderOperatorTest, MarkAgentGoneIsGoneByOperatorForPartitionAware) {
  SetUpCluster(/*partition_aware=*/true);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  const size_t mark = events_.size();
  EXPECT_EQ(Operator([&](Leader::Done done) {
              leader_->MarkAgentGone(agent_.id, Context(), std::move(done));
            }).code,
            200);
  const std::vector<Event> events = EventsSince(mark);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].task_status_updated().status().state(),
            v1::TASK_GONE_BY_OPERATOR);
  EXPECT_EQ(events[0].task_status_updated().status().reason(),
            TaskStatus::REASON_AGENT_REMOVED_BY_OPERATOR);
}

TEST_F(LeaderOperatorTest, DrainKillsWithACappedGracePeriodThenDrains) {
  SetUpCluster(false);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  v1::DrainConfig config;
  config.mutable_max_grace_period()->set_nanoseconds(5000000000);
  const size_t mark = events_.size();
  Answer a = Operator([&](Leader::Done done) {
    leader_->DrainAgent(agent_.id, config, Context(), std::move(done));
  });
  EXPECT_EQ(a.code, 200) << a.message;
  ASSERT_THAT(TypesSince(mark), ElementsAre(Event::kAgentDrainStarted,
                                            Event::kTaskKillRequested));
  EXPECT_EQ(EventsSince(mark)[1]
                .task_kill_requested()
                .kill_policy()
                .grace_period()
                .nanoseconds(),
            5000000000);
  std::vector<AgentEvent> kills = agent_.stream->OfType(AgentEvent::KILL);
  ASSERT_FALSE(kills.empty());
  EXPECT_EQ(kills.back().kill().task_id().value(), "t1");
  EXPECT_EQ(kills.back().kill().kill_policy().grace_period().nanoseconds(),
            5000000000);
  EXPECT_EQ(committed_.FindAgent(agent_.id)->drain_info().state(),
            v1::DRAINING);

  // Still DRAINING: not reactivated.
  Answer early = Operator([&](Leader::Done done) {
    leader_->ReactivateAgent(agent_.id, Context(), std::move(done));
  });
  EXPECT_EQ(early.code, 400);
  EXPECT_EQ(early.field, "reactivate_agent.agent_id");

  // The task ends; the next tick finds the agent drained.
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_KILLED, Uuid('2'));
  const size_t killed = events_.size();
  leader_->Tick(now_);
  CommitAll();
  EXPECT_THAT(TypesSince(killed), ::testing::Contains(Event::kAgentDrained));
  EXPECT_EQ(committed_.FindAgent(agent_.id)->drain_info().state(), v1::DRAINED);
  EXPECT_EQ(committed_.FindAgent(agent_.id)->state(), v1::AgentRecord::ACTIVE);

  // A drained agent comes back with REACTIVATE_AGENT.
  EXPECT_EQ(Operator([&](Leader::Done done) {
              leader_->ReactivateAgent(agent_.id, Context(), std::move(done));
            }).code,
            200);
  EXPECT_FALSE(committed_.FindAgent(agent_.id)->deactivated());
  EXPECT_FALSE(committed_.FindAgent(agent_.id)->has_drain_info());
}

TEST_F(LeaderOperatorTest, DrainWithMarkGoneRemovesTheDrainedAgent) {
  SetUpCluster(false);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_RUNNING, Uuid('1'));
  v1::DrainConfig config;
  config.set_mark_gone(true);
  EXPECT_EQ(Operator([&](Leader::Done done) {
              leader_->DrainAgent(agent_.id, config, Context(),
                                  std::move(done));
            }).code,
            200);
  AgentUpdate(agent_, framework_.id, "t1", v1::TASK_KILLED, Uuid('2'));
  const size_t mark = events_.size();
  leader_->Tick(now_);
  CommitAll();
  EXPECT_THAT(TypesSince(mark),
              ElementsAre(Event::kAgentDrained, Event::kAgentRemoved));
  EXPECT_EQ(committed_.FindAgent(agent_.id)->state(), v1::AgentRecord::REMOVED);
  EXPECT_EQ(agent_.stream->events.back().error().code(), 403);

  Answer unknown = Operator([&](Leader::Done done) {
    leader_->DrainAgent(agent_.id, config, Context(), std::move(done));
  });
  EXPECT_EQ(unknown.code, 400);
  EXPECT_EQ(unknown.field, "drain_agent.agent_id");
}

TEST_F(LeaderOperatorTest, DeactivateRescindsOffersUntilReactivated) {
  StartLeader();
  agent_ = SubscribeNewAgent("host-a");
  framework_ = SubscribeFramework("fw");
  std::vector<v1::Offer> offers = TickForOffers(framework_);
  ASSERT_EQ(offers.size(), 1u);

  const size_t mark = events_.size();
  EXPECT_EQ(Operator([&](Leader::Done done) {
              leader_->DeactivateAgent(agent_.id, Context(), std::move(done));
            }).code,
            200);
  EXPECT_THAT(TypesSince(mark), ElementsAre(Event::kAgentDeactivated));
  std::vector<scheduler::Event> rescinds =
      framework_.stream->OfType(scheduler::Event::RESCIND);
  ASSERT_EQ(rescinds.size(), 1u);
  EXPECT_EQ(rescinds[0].rescind().offer_id().value(), offers[0].id().value());
  now_ += absl::Seconds(10);
  EXPECT_TRUE(TickForOffers(framework_).empty());

  // Again: 200 and no event. Unknown agent: 400.
  const size_t again = events_.size();
  EXPECT_EQ(Operator([&](Leader::Done done) {
              leader_->DeactivateAgent(agent_.id, Context(), std::move(done));
            }).code,
            200);
  EXPECT_EQ(events_.size(), again);
  Answer unknown = Operator([&](Leader::Done done) {
    leader_->DeactivateAgent("nope", Context(), std::move(done));
  });
  EXPECT_EQ(unknown.code, 400);
  EXPECT_EQ(unknown.field, "deactivate_agent.agent_id");

  EXPECT_EQ(Operator([&](Leader::Done done) {
              leader_->ReactivateAgent(agent_.id, Context(), std::move(done));
            }).code,
            200);
  now_ += absl::Seconds(10);
  EXPECT_EQ(TickForOffers(framework_).size(), 1u);
  Answer active = Operator([&](Leader::Done done) {
    leader_->ReactivateAgent(agent_.id, Context(), std::move(done));
  });
  EXPECT_EQ(active.code, 400);
  EXPECT_EQ(active.message, "Agent is not deactivated");
}

TEST_F(LeaderOperatorTest, UpdateWeightsNamesTheBadFieldOrCommits) {
  StartLeader();
  google::protobuf::RepeatedPtrField<v1::WeightInfo> weights;
  v1::WeightInfo* a = weights.Add();
  a->set_role(" a ");  // trimmed, as Mesos
  a->set_weight(2);
  v1::WeightInfo* b = weights.Add();
  b->set_role("b");
  b->set_weight(0);
  Answer bad = Operator([&](Leader::Done done) {
    leader_->UpdateWeights(weights, Context(), std::move(done));
  });
  EXPECT_EQ(bad.code, 400);
  EXPECT_EQ(bad.field, "update_weights.weight_infos[1].weight");
  b->set_role("*");
  b->set_weight(1);
  bad = Operator([&](Leader::Done done) {
    leader_->UpdateWeights(weights, Context(), std::move(done));
  });
  EXPECT_EQ(bad.code, 400);
  EXPECT_EQ(bad.field, "update_weights.weight_infos[1].role");

  b->set_role("b/c");
  EXPECT_EQ(Operator([&](Leader::Done done) {
              leader_->UpdateWeights(weights, Context(), std::move(done));
            }).code,
            200);
  EXPECT_EQ(committed_.weights(),
            (std::map<std::string, double>{{"a", 2}, {"b/c", 1}}));
}

TEST_F(LeaderOperatorTest, UpdateQuotaValidatesAsMesos) {
  StartLeader();
  SubscribeNewAgent("host-a");  // cpus:4;mem:4096
  auto quota = [&](const std::string& role, double guarantee, double limit,
                   bool force) {
    google::protobuf::RepeatedPtrField<v1::QuotaConfig> configs;
    v1::QuotaConfig* c = configs.Add();
    c->set_role(role);
    if (guarantee >= 0) (*c->mutable_guarantees())["cpus"].set_value(guarantee);
    if (limit >= 0) (*c->mutable_limits())["cpus"].set_value(limit);
    return Operator([&](Leader::Done done) {
      leader_->UpdateQuota(configs, force, Context(), std::move(done));
    });
  };
  Answer nested = quota("a/b", 1, -1, false);
  EXPECT_EQ(nested.code, 400);
  EXPECT_EQ(nested.field, "update_quota.quota_configs[0].role");
  Answer above = quota("a", 2, 1, false);
  EXPECT_EQ(above.code, 400);
  EXPECT_EQ(above.field, "update_quota.quota_configs[0].guarantees");
  Answer huge = quota("a", -1, 2e12, false);  // Mesos's maximum is 1e12
  EXPECT_EQ(huge.code, 400);
  EXPECT_EQ(huge.field, "update_quota.quota_configs[0].limits");
  Answer overcommit = quota("a", 8, -1, false);
  EXPECT_EQ(overcommit.code, 400);
  EXPECT_EQ(overcommit.field, "update_quota.quota_configs");
  EXPECT_TRUE(committed_.quotas().empty());

  EXPECT_EQ(quota("a", 8, -1, /*force=*/true).code, 200);
  ASSERT_EQ(committed_.quotas().count("a"), 1u);
  EXPECT_EQ(committed_.quotas().at("a").guarantees().at("cpus").value(), 8);
  // Neither guarantees nor limits: the role's quota is reset.
  EXPECT_EQ(quota("a", -1, -1, false).code, 200);
  EXPECT_TRUE(committed_.quotas().empty());
}

TEST_F(LeaderOperatorTest, UpdateQuotaRefusesALimitBelowConsumption) {
  StartLeader();
  agent_ = SubscribeNewAgent("host-a");
  scheduler::Call call = FrameworkSubscribeCall("web-fw");
  v1::FrameworkInfo* info = call.mutable_subscribe()->mutable_framework_info();
  info->add_capabilities()->set_type(v1::FrameworkInfo::Capability::MULTI_ROLE);
  info->add_roles("web");
  framework_ = SubscribeFramework(call);
  Launch(framework_, {CommandTask("t1", "cpus:2;mem:128")});

  google::protobuf::RepeatedPtrField<v1::QuotaConfig> configs;
  v1::QuotaConfig* c = configs.Add();
  c->set_role("web");
  (*c->mutable_limits())["cpus"].set_value(1);
  Answer below = Operator([&](Leader::Done done) {
    leader_->UpdateQuota(configs, false, Context(), std::move(done));
  });
  EXPECT_EQ(below.code, 400);
  EXPECT_EQ(below.field, "update_quota.quota_configs[0].limits");
  EXPECT_EQ(Operator([&](Leader::Done done) {
              leader_->UpdateQuota(configs, true, Context(), std::move(done));
            }).code,
            200);
}

TEST_F(LeaderOperatorTest, ReserveRescindsOffersAsNeededAndUnreserveUndoes) {
  StartLeader();
  agent_ = SubscribeNewAgent("host-a");
  framework_ = SubscribeFramework("fw");
  std::vector<v1::Offer> offers = TickForOffers(framework_);
  ASSERT_EQ(offers.size(), 1u);  // everything is offered

  google::protobuf::RepeatedPtrField<v1::Resource> resources;
  *resources.Add() = Reserved("cpus", 1, "ads");
  const google::protobuf::RepeatedPtrField<v1::Resource> no_source;
  const size_t mark = events_.size();
  Answer reserved = Operator([&](Leader::Done done) {
    leader_->ReserveResources(agent_.id, no_source, resources, Context(),
                              std::move(done));
  });
  EXPECT_EQ(reserved.code, 202) << reserved.message;
  EXPECT_THAT(TypesSince(mark),
              ElementsAre(Event::kOffersRescinded, Event::kResourcesReserved));
  EXPECT_EQ(framework_.stream->OfType(scheduler::Event::RESCIND).size(), 1u);
  absl::StatusOr<Resources> reservations =
      committed_.ReservedResources(agent_.id);
  ASSERT_TRUE(reservations.ok());
  EXPECT_EQ(reservations->ScalarSum("cpus"), 1);

  Answer unreserved = Operator([&](Leader::Done done) {
    leader_->UnreserveResources(agent_.id, resources, Context(),
                                std::move(done));
  });
  EXPECT_EQ(unreserved.code, 202) << unreserved.message;
  EXPECT_TRUE(committed_.ReservedResources(agent_.id)->empty());

  // More than the agent has: 409. Not a dynamic reservation, or an
  // unknown agent: 400.
  resources.Mutable(0)->mutable_scalar()->set_value(64);
  EXPECT_EQ(Operator([&](Leader::Done done) {
              leader_->ReserveResources(agent_.id, no_source, resources,
                                        Context(), std::move(done));
            }).code,
            409);
  resources.Mutable(0)->clear_reservations();
  Answer plain = Operator([&](Leader::Done done) {
    leader_->ReserveResources(agent_.id, no_source, resources, Context(),
                              std::move(done));
  });
  EXPECT_EQ(plain.code, 400);
  EXPECT_EQ(plain.field, "reserve_resources.resources");
  *resources.Mutable(0) = Reserved("cpus", 1, "ads");
  Answer unknown = Operator([&](Leader::Done done) {
    leader_->UnreserveResources("nope", resources, Context(), std::move(done));
  });
  EXPECT_EQ(unknown.code, 400);
  EXPECT_EQ(unknown.field, "unreserve_resources.agent_id");
}

// ---- SHUTDOWN and MESSAGE calls, MESSAGE and FAILURE events ----------------

scheduler::Call ShutdownCall(const std::string& agent_id,
                             const std::string& executor_id) {
  scheduler::Call call;
  call.set_type(scheduler::Call::SHUTDOWN);
  if (!agent_id.empty()) {
    call.mutable_shutdown()->mutable_agent_id()->set_value(agent_id);
  }
  if (!executor_id.empty()) {
    call.mutable_shutdown()->mutable_executor_id()->set_value(executor_id);
  }
  return call;
}

scheduler::Call MessageCall(const std::string& agent_id,
                            const std::string& executor_id,
                            const std::string& data) {
  scheduler::Call call;
  call.set_type(scheduler::Call::MESSAGE);
  call.mutable_message()->mutable_agent_id()->set_value(agent_id);
  call.mutable_message()->mutable_executor_id()->set_value(executor_id);
  call.mutable_message()->set_data(data);
  return call;
}

v1::AgentCall ExecutorMessageCall(const std::string& agent_id,
                                  const std::string& framework_id,
                                  const std::string& executor_id,
                                  const std::string& data) {
  v1::AgentCall call;
  call.set_type(v1::AgentCall::EXECUTOR_MESSAGE);
  call.mutable_agent_id()->set_value(agent_id);
  v1::AgentCall::ExecutorMessage* m = call.mutable_executor_message();
  m->mutable_framework_id()->set_value(framework_id);
  m->mutable_executor_id()->set_value(executor_id);
  m->set_data(data);
  return call;
}

TEST_F(LeaderWithTaskTest, ShutdownIsSentToTheAgentAtOnceWithoutAnEvent) {
  SetUpCluster(/*partition_aware=*/false);
  const size_t mark = events_.size();
  AnswerSlot a = FrameworkCall(framework_, ShutdownCall(agent_.id, "e1"));
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->code, 202) << (*a)->message;
  EXPECT_EQ(log_.queued(), 0u);
  CommitAll();
  EXPECT_EQ(events_.size(), mark);

  std::vector<AgentEvent> sent =
      agent_.stream->OfType(AgentEvent::SHUTDOWN_EXECUTOR);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].shutdown_executor().framework_id().value(), framework_.id);
  EXPECT_EQ(sent[0].shutdown_executor().executor_id().value(), "e1");
}

TEST_F(LeaderWithTaskTest, ShutdownWithoutItsIdsIs400NamingTheField) {
  SetUpCluster(/*partition_aware=*/false);
  scheduler::Call empty;
  empty.set_type(scheduler::Call::SHUTDOWN);
  AnswerSlot a = FrameworkCall(framework_, empty);
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->code, 400);
  EXPECT_EQ((*a)->field, "shutdown");

  a = FrameworkCall(framework_, ShutdownCall(agent_.id, ""));
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->code, 400);
  EXPECT_EQ((*a)->field, "shutdown.executor_id");

  a = FrameworkCall(framework_, ShutdownCall("", "e1"));
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->code, 400);
  EXPECT_EQ((*a)->field, "shutdown.agent_id");
  EXPECT_TRUE(agent_.stream->OfType(AgentEvent::SHUTDOWN_EXECUTOR).empty());
}

// As Mesos: the call is accepted and dropped when the agent is unknown or
// has no stream to this leader.
TEST_F(LeaderWithTaskTest, ShutdownOnAnUnreachableAgentIsAcceptedAndDropped) {
  SetUpCluster(/*partition_aware=*/false);
  AnswerSlot a = FrameworkCall(framework_, ShutdownCall("no-such-agent", "e1"));
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->code, 202);

  leader_->AgentStreamClosed(agent_.stream_id);
  a = FrameworkCall(framework_, ShutdownCall(agent_.id, "e1"));
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->code, 202);
  EXPECT_TRUE(agent_.stream->OfType(AgentEvent::SHUTDOWN_EXECUTOR).empty());
  EXPECT_EQ(log_.queued(), 0u);
}

TEST_F(LeaderWithTaskTest, MessageIsSentToTheAgentAtOnceWithoutAnEvent) {
  SetUpCluster(/*partition_aware=*/false);
  const size_t mark = events_.size();
  const std::string data("hello\0executor", 14);
  AnswerSlot a = FrameworkCall(framework_, MessageCall(agent_.id, "e1", data));
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->code, 202) << (*a)->message;
  CommitAll();
  EXPECT_EQ(events_.size(), mark);

  std::vector<AgentEvent> sent =
      agent_.stream->OfType(AgentEvent::FRAMEWORK_MESSAGE);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].framework_message().framework_id().value(), framework_.id);
  EXPECT_EQ(sent[0].framework_message().executor_id().value(), "e1");
  EXPECT_EQ(sent[0].framework_message().data(), data);
  EXPECT_EQ(leader_->metrics().valid_framework_to_executor_messages, 1u);
  EXPECT_EQ(leader_->metrics().invalid_framework_to_executor_messages, 0u);
}

TEST_F(LeaderWithTaskTest, InvalidMessagesAre400NamingTheField) {
  options_.max_message_data_bytes = 8;
  SetUpCluster(/*partition_aware=*/false);
  auto field_of = [&](const scheduler::Call& call) -> std::string {
    AnswerSlot a = FrameworkCall(framework_, call);
    EXPECT_TRUE(a->has_value());
    if (!a->has_value()) return "no answer";
    EXPECT_EQ((*a)->code, 400) << (*a)->field;
    return (*a)->field;
  };
  scheduler::Call no_member;
  no_member.set_type(scheduler::Call::MESSAGE);
  EXPECT_EQ(field_of(no_member), "message");
  EXPECT_EQ(field_of(MessageCall("", "e1", "x")), "message.agent_id");
  EXPECT_EQ(field_of(MessageCall(agent_.id, "", "x")), "message.executor_id");
  scheduler::Call no_data = MessageCall(agent_.id, "e1", "");
  no_data.mutable_message()->clear_data();
  EXPECT_EQ(field_of(no_data), "message.data");
  EXPECT_EQ(field_of(MessageCall(agent_.id, "e1", std::string(9, 'x'))),
            "message.data");
  EXPECT_TRUE(agent_.stream->OfType(AgentEvent::FRAMEWORK_MESSAGE).empty());

  // Exactly the limit, and empty data that is present, are fine.
  for (const std::string& data : {std::string(8, 'x'), std::string()}) {
    AnswerSlot a =
        FrameworkCall(framework_, MessageCall(agent_.id, "e1", data));
    ASSERT_TRUE(a->has_value());
    EXPECT_EQ((*a)->code, 202) << (*a)->message;
  }
  EXPECT_EQ(agent_.stream->OfType(AgentEvent::FRAMEWORK_MESSAGE).size(), 2u);
}

// Mesos's framework messages are unreliable: 202, dropped, counted invalid.
TEST_F(LeaderWithTaskTest, MessageToAnUnreachableAgentIsAcceptedAndDropped) {
  SetUpCluster(/*partition_aware=*/false);
  AnswerSlot a =
      FrameworkCall(framework_, MessageCall("no-such-agent", "e1", "x"));
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->code, 202);

  leader_->AgentStreamClosed(agent_.stream_id);
  a = FrameworkCall(framework_, MessageCall(agent_.id, "e1", "x"));
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->code, 202);
  EXPECT_TRUE(agent_.stream->OfType(AgentEvent::FRAMEWORK_MESSAGE).empty());
  EXPECT_EQ(leader_->metrics().invalid_framework_to_executor_messages, 2u);
  EXPECT_EQ(leader_->metrics().valid_framework_to_executor_messages, 0u);
  EXPECT_EQ(log_.queued(), 0u);
}

TEST_F(LeaderWithTaskTest, ExecutorMessageReachesTheSchedulerAsMessage) {
  SetUpCluster(/*partition_aware=*/false);
  const size_t mark = events_.size();
  Answer a = AgentCall(
      agent_, ExecutorMessageCall(agent_.id, framework_.id, "e1", "progress"));
  EXPECT_EQ(a.code, 202) << a.message;
  EXPECT_EQ(log_.queued(), 0u);
  EXPECT_EQ(events_.size(), mark);

  std::vector<scheduler::Event> got =
      framework_.stream->OfType(scheduler::Event::MESSAGE);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].message().agent_id().value(), agent_.id);
  EXPECT_EQ(got[0].message().executor_id().value(), "e1");
  EXPECT_EQ(got[0].message().data(), "progress");
  EXPECT_EQ(leader_->metrics().valid_executor_to_framework_messages, 1u);
}

TEST_F(LeaderWithTaskTest, InvalidExecutorMessagesAre400NamingTheField) {
  options_.max_message_data_bytes = 8;
  SetUpCluster(/*partition_aware=*/false);
  auto field_of = [&](const v1::AgentCall& call) -> std::string {
    Answer a = AgentCall(agent_, call);
    EXPECT_EQ(a.code, 400) << a.field;
    return a.field;
  };
  v1::AgentCall no_member;
  no_member.set_type(v1::AgentCall::EXECUTOR_MESSAGE);
  no_member.mutable_agent_id()->set_value(agent_.id);
  EXPECT_EQ(field_of(no_member), "executor_message");
  EXPECT_EQ(field_of(ExecutorMessageCall(agent_.id, "", "e1", "x")),
            "executor_message.framework_id");
  EXPECT_EQ(field_of(ExecutorMessageCall(agent_.id, framework_.id, "", "x")),
            "executor_message.executor_id");
  v1::AgentCall no_data =
      ExecutorMessageCall(agent_.id, framework_.id, "e1", "");
  no_data.mutable_executor_message()->clear_data();
  EXPECT_EQ(field_of(no_data), "executor_message.data");
  EXPECT_EQ(field_of(ExecutorMessageCall(agent_.id, framework_.id, "e1",
                                         std::string(9, 'x'))),
            "executor_message.data");
  // Another agent's id on this stream is the usual 400.
  EXPECT_EQ(field_of(ExecutorMessageCall("S-other", framework_.id, "e1", "x")),
            "agent_id");
  EXPECT_TRUE(framework_.stream->OfType(scheduler::Event::MESSAGE).empty());
}

TEST_F(LeaderWithTaskTest,
       ExecutorMessageForAFrameworkWithoutAStreamIsDropped) {
  SetUpCluster(/*partition_aware=*/false);
  EXPECT_EQ(
      AgentCall(agent_, ExecutorMessageCall(agent_.id, "no-such-fw", "e1", "x"))
          .code,
      202);
  leader_->FrameworkStreamClosed(framework_.stream_id);
  CommitAll();
  EXPECT_EQ(AgentCall(agent_,
                      ExecutorMessageCall(agent_.id, framework_.id, "e1", "x"))
                .code,
            202);
  EXPECT_TRUE(framework_.stream->OfType(scheduler::Event::MESSAGE).empty());
  EXPECT_EQ(leader_->metrics().invalid_executor_to_framework_messages, 2u);
  EXPECT_EQ(leader_->metrics().valid_executor_to_framework_messages, 0u);
}

v1::AgentCall ExitedExecutorCall(const std::string& agent_id,
                                 const std::string& framework_id,
                                 const std::string& executor_id, int status) {
  v1::AgentCall call;
  call.set_type(v1::AgentCall::EXITED_EXECUTOR);
  call.mutable_agent_id()->set_value(agent_id);
  v1::AgentCall::ExitedExecutor* e = call.mutable_exited_executor();
  e->mutable_framework_id()->set_value(framework_id);
  e->mutable_executor_id()->set_value(executor_id);
  e->set_status(status);
  return call;
}

TEST_F(LeaderWithTaskTest, ExitedExecutorIsReportedToTheSchedulerAsFailure) {
  SetUpCluster(/*partition_aware=*/false);
  const size_t mark = events_.size();
  Answer a = AgentCall(agent_,
                       ExitedExecutorCall(agent_.id, framework_.id, "e1", 256));
  EXPECT_EQ(a.code, 202) << a.message;
  CommitAll();
  // Recorded for history: who exited, where, with which status.
  ASSERT_THAT(TypesSince(mark), ElementsAre(Event::kExecutorExited));
  const v1::ExecutorExited& exited = events_.back().executor_exited();
  EXPECT_EQ(exited.agent_id().value(), agent_.id);
  EXPECT_EQ(exited.framework_id().value(), framework_.id);
  EXPECT_EQ(exited.executor_id().value(), "e1");
  EXPECT_EQ(exited.status(), 256);

  std::vector<scheduler::Event> got =
      framework_.stream->OfType(scheduler::Event::FAILURE);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].failure().agent_id().value(), agent_.id);
  EXPECT_EQ(got[0].failure().executor_id().value(), "e1");
  EXPECT_EQ(got[0].failure().status(), 256);

  v1::AgentCall invalid = ExitedExecutorCall(agent_.id, framework_.id, "", 0);
  EXPECT_EQ(AgentCall(agent_, invalid).code, 400);
}

// The executor's tasks' terminal updates, sent before EXITED_EXECUTOR,
// reach the scheduler first: the FAILURE waits for their commit.
TEST_F(LeaderWithTaskTest, ExitedExecutorFailureFollowsEarlierUpdates) {
  SetUpCluster(/*partition_aware=*/false);
  EXPECT_EQ(AgentCall(agent_, UpdateCall(agent_, framework_.id, "t1",
                                         v1::TASK_FAILED, Uuid('1')))
                .code,
            202);
  EXPECT_EQ(
      AgentCall(agent_, ExitedExecutorCall(agent_.id, framework_.id, "e1", 9))
          .code,
      202);
  EXPECT_TRUE(framework_.stream->OfType(scheduler::Event::FAILURE).empty());
  CommitAll();

  std::vector<scheduler::Event::Type> order;
  for (const scheduler::Event& e : framework_.stream->events) {
    if (e.type() == scheduler::Event::UPDATE ||
        e.type() == scheduler::Event::FAILURE) {
      order.push_back(e.type());
    }
  }
  EXPECT_THAT(order,
              ElementsAre(scheduler::Event::UPDATE, scheduler::Event::FAILURE));
}

// As Mesos tells every framework of a lost agent: FAILURE with only the
// agent's id, when it is marked unreachable or removed.
TEST_F(LeaderWithTaskTest, UnreachableAgentIsReportedAsFailureWithItsIdOnly) {
  SetUpCluster(/*partition_aware=*/false);
  FrameworkHandle other = SubscribeFramework("other");
  now_ += absl::Seconds(15 * 5);
  leader_->Tick(now_);
  CommitAll();
  ASSERT_EQ(committed_.FindAgent(agent_.id)->state(),
            v1::AgentRecord::UNREACHABLE);
  for (const FrameworkHandle* f : {&framework_, &other}) {
    std::vector<scheduler::Event> got =
        f->stream->OfType(scheduler::Event::FAILURE);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].failure().agent_id().value(), agent_.id);
    EXPECT_FALSE(got[0].failure().has_executor_id());
    EXPECT_FALSE(got[0].failure().has_status());
  }
}

TEST_F(LeaderWithTaskTest, UnsubscribedAgentIsReportedAsFailure) {
  SetUpCluster(/*partition_aware=*/false);
  v1::AgentCall call;
  call.set_type(v1::AgentCall::UNSUBSCRIBE);
  call.mutable_agent_id()->set_value(agent_.id);
  AnswerSlot answer = NewSlot();  // answered once committed
  leader_->AgentCall(call, agent_.stream_id, Context(), Into(answer));
  CommitAll();
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->code, 202);
  std::vector<scheduler::Event> got =
      framework_.stream->OfType(scheduler::Event::FAILURE);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].failure().agent_id().value(), agent_.id);
  EXPECT_FALSE(got[0].failure().has_executor_id());
}

TEST_F(LeaderOperatorTest, AgentMarkedGoneIsReportedAsFailureWithItsIdOnly) {
  SetUpCluster(/*partition_aware=*/false);
  Answer a = Operator([&](Leader::Done done) {
    leader_->MarkAgentGone(agent_.id, Context(), std::move(done));
  });
  EXPECT_EQ(a.code, 200) << a.message;
  std::vector<scheduler::Event> got =
      framework_.stream->OfType(scheduler::Event::FAILURE);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].failure().agent_id().value(), agent_.id);
  EXPECT_FALSE(got[0].failure().has_executor_id());
}

}  // namespace
}  // namespace cairn::master
