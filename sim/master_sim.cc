// The world of the master simulation: event queue, clock, network, the
// abstract log, three masters with their leadership terms, faults, and the
// drain phase. See master_sim.h for what is simulated and checked.

#include "sim/master_sim.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "sim/master_sim_internal.h"

namespace cairn::sim {
namespace msim {

namespace {

// The seed of the run in progress, for the CHECK reporter.
thread_local const MasterSimOptions* current_options = nullptr;
thread_local uint64_t current_step = 0;

constexpr absl::Duration kTickInterval = absl::Milliseconds(100);
constexpr absl::Duration kFaultInterval = absl::Milliseconds(100);
constexpr absl::Duration kDrainInterval = absl::Milliseconds(250);
// A run never takes more steps than this (a livelock is a failure).
constexpr uint64_t kMaxSteps = 5'000'000;

}  // namespace

// ---- Trace names ------------------------------------------------------------

std::string UuidHex(const std::string& uuid) {
  std::string hex;
  for (size_t i = 0; i < std::min<size_t>(uuid.size(), 4); ++i) {
    absl::StrAppend(&hex, absl::Hex(static_cast<unsigned char>(uuid[i]),
                                    absl::kZeroPad2));
  }
  return hex;
}

std::string Short(const v1::AgentEvent& e) {
  std::string s = v1::AgentEvent::Type_Name(e.type());
  switch (e.type()) {
    case v1::AgentEvent::SUBSCRIBED:
      absl::StrAppend(&s, " ", e.subscribed().agent_id().value());
      break;
    case v1::AgentEvent::LAUNCH:
      for (const auto& t : e.launch().tasks()) {
        absl::StrAppend(&s, " ", t.task_id().value());
      }
      break;
    case v1::AgentEvent::KILL:
      absl::StrAppend(&s, " ", e.kill().task_id().value());
      break;
    case v1::AgentEvent::ACKNOWLEDGE:
      absl::StrAppend(&s, " ", e.acknowledge().task_id().value(), " ",
                      UuidHex(e.acknowledge().uuid()));
      break;
    case v1::AgentEvent::SHUTDOWN_FRAMEWORK:
      absl::StrAppend(&s, " ", e.shutdown_framework().framework_id().value());
      break;
    case v1::AgentEvent::RECONCILE:
      absl::StrAppend(&s, " ", e.reconcile().tasks_size(), " tasks @",
                      e.reconcile().log_position());
      break;
    case v1::AgentEvent::ERROR:
      absl::StrAppend(&s, " ", e.error().code(), " ", e.error().message());
      break;
    default:
      break;
  }
  return s;
}

std::string Short(const v1::scheduler::Event& e) {
  std::string s = v1::scheduler::Event::Type_Name(e.type());
  switch (e.type()) {
    case v1::scheduler::Event::SUBSCRIBED:
      absl::StrAppend(&s, " ", e.subscribed().framework_id().value());
      break;
    case v1::scheduler::Event::OFFERS:
      for (const auto& o : e.offers().offers()) {
        absl::StrAppend(&s, " ", o.id().value(), "@", o.agent_id().value());
      }
      break;
    case v1::scheduler::Event::RESCIND:
      absl::StrAppend(&s, " ", e.rescind().offer_id().value());
      break;
    case v1::scheduler::Event::UPDATE:
      absl::StrAppend(&s, " ", e.update().status().task_id().value(), " ",
                      v1::TaskState_Name(e.update().status().state()), " ",
                      e.update().status().uuid().empty()
                          ? std::string("(no uuid)")
                          : UuidHex(e.update().status().uuid()));
      break;
    case v1::scheduler::Event::ERROR:
      absl::StrAppend(&s, " ", e.error().message());
      break;
    default:
      break;
  }
  return s;
}

std::string Short(const v1::AgentCall& c) {
  std::string s = v1::AgentCall::Type_Name(c.type());
  if (c.type() == v1::AgentCall::SUBSCRIBE) {
    absl::StrAppend(&s, " ", c.subscribe().agent_info().hostname(), " id=",
                    c.subscribe().agent_info().id().value(), " tasks=",
                    c.subscribe().tasks_size());
  } else if (c.type() == v1::AgentCall::UPDATE) {
    absl::StrAppend(&s, " ", c.update().status().task_id().value(), " ",
                    v1::TaskState_Name(c.update().status().state()), " ",
                    UuidHex(c.update().status().uuid()));
  }
  return s;
}

std::string Short(const v1::scheduler::Call& c) {
  std::string s = v1::scheduler::Call::Type_Name(c.type());
  switch (c.type()) {
    case v1::scheduler::Call::SUBSCRIBE:
      absl::StrAppend(&s, " id=", c.framework_id().value());
      break;
    case v1::scheduler::Call::ACCEPT:
      for (const auto& id : c.accept().offer_ids()) {
        absl::StrAppend(&s, " ", id.value());
      }
      for (const auto& op : c.accept().operations()) {
        for (const auto& t : op.launch().task_infos()) {
          absl::StrAppend(&s, " +", t.task_id().value());
        }
      }
      break;
    case v1::scheduler::Call::DECLINE:
      for (const auto& id : c.decline().offer_ids()) {
        absl::StrAppend(&s, " ", id.value());
      }
      break;
    case v1::scheduler::Call::KILL:
      absl::StrAppend(&s, " ", c.kill().task_id().value());
      break;
    case v1::scheduler::Call::ACKNOWLEDGE:
      absl::StrAppend(&s, " ", c.acknowledge().task_id().value(), " ",
                      UuidHex(c.acknowledge().uuid()));
      break;
    case v1::scheduler::Call::RECONCILE:
      absl::StrAppend(&s, " ", c.reconcile().tasks_size(), " tasks");
      break;
    default:
      break;
  }
  return s;
}

std::string Short(const Answer& a) {
  std::string s = absl::StrCat(a.code);
  if (!a.message.empty()) absl::StrAppend(&s, " ", a.message);
  if (!a.field.empty()) absl::StrAppend(&s, " [", a.field, "]");
  return s;
}

// ---- Masters ----------------------------------------------------------------

struct Simulation::Master {
  int index = 0;
  bool up = false;
  uint64_t incarnation = 0;
  // The committed state: the fold of chosen entries [0, applied).
  MasterState state;
  size_t applied = 0;
  absl::Time last_event_time = absl::InfinitePast();
  std::unique_ptr<Log> log;
  std::unique_ptr<master::CommandPath> commands;
  std::unique_ptr<master::Leader> leader;
  uint64_t term = 0;
  bool step_down = false;  // the CommandPath reported a log failure
  bool catch_up_scheduled = false;
  absl::Time last_compare = absl::InfinitePast();
  // The newest snapshot on this master's disk (survives crashes).
  struct Snapshot {
    size_t applied = 0;
    v1::MasterSnapshot snapshot;
    absl::Time last_event_time;
  };
  std::optional<Snapshot> snapshot;
  size_t snapshot_every = 100;
  // Streams this master answered (crashed with it).
  std::vector<std::weak_ptr<Channel>> channels;
};

// The leading master's view of the log: appends go to the world's queue.
class Simulation::Log : public master::EventLog {
 public:
  Log(Simulation* sim, int master) : sim_(sim), master_(master) {}
  void Append(std::string entry, AppendDone done) override {
    sim_->AppendFrom(master_, std::move(entry), std::move(done));
  }

 private:
  Simulation* const sim_;
  const int master_;
};

// The Leader's view of an agent's stream.
class Simulation::AgentStreamAdapter : public master::AgentStream {
 public:
  AgentStreamAdapter(Simulation* sim, std::shared_ptr<Channel> channel,
                     int master, int agent)
      : sim_(sim), channel_(std::move(channel)), master_(master), agent_(agent) {}

  void Send(const v1::AgentEvent& event) override {
    if (channel_->ended()) return;
    Master& m = *sim_->masters_[master_];
    if (!m.up || m.incarnation != channel_->master_incarnation()) return;
    if (event.type() == v1::AgentEvent::SUBSCRIBED) {
      agent_id_ = event.subscribed().agent_id().value();
    }
    sim_->checker_.OnAgentEventSent(m.state, agent_, agent_id_, event);
    sim_->Trace(absl::StrCat("m", master_, " -> a", agent_, "#",
                             channel_->to().serial, " ", Short(event)));
    SimAgent* agent = sim_->agents_[agent_].get();
    const uint64_t serial = channel_->to().serial;
    channel_->Deliver([agent, serial, event] { agent->OnEvent(serial, event); });
  }
  void Close() override { channel_->End(); }

 private:
  Simulation* const sim_;
  const std::shared_ptr<Channel> channel_;
  const int master_;
  const int agent_;
  std::string agent_id_;
};

// The Leader's view of a scheduler's stream.
class Simulation::FrameworkStreamAdapter : public master::FrameworkStream {
 public:
  FrameworkStreamAdapter(Simulation* sim, std::shared_ptr<Channel> channel,
                         int master, int framework)
      : sim_(sim),
        channel_(std::move(channel)),
        master_(master),
        framework_(framework) {}

  void Send(const v1::scheduler::Event& event) override {
    if (channel_->ended()) return;
    Master& m = *sim_->masters_[master_];
    if (!m.up || m.incarnation != channel_->master_incarnation()) return;
    sim_->checker_.OnFrameworkEventSent(m.state, channel_.get(), framework_,
                                        event);
    if (event.type() != v1::scheduler::Event::HEARTBEAT) {
      sim_->Trace(absl::StrCat("m", master_, " -> f", framework_, "#",
                               channel_->to().serial, " ", Short(event)));
    }
    SimFramework* framework = sim_->frameworks_[framework_].get();
    const uint64_t serial = channel_->to().serial;
    channel_->Deliver(
        [framework, serial, event] { framework->OnEvent(serial, event); });
  }
  void Close() override { channel_->End(); }

 private:
  Simulation* const sim_;
  const std::shared_ptr<Channel> channel_;
  const int master_;
  const int framework_;
};

// ---- Channel ----------------------------------------------------------------

Channel::Channel(Simulation* sim, Endpoint to)
    : sim_(sim), to_(to), id_(sim->NextChannelId()) {}

void Channel::Bind(int master, uint64_t master_incarnation) {
  master_ = master;
  master_incarnation_ = master_incarnation;
}

void Channel::Deliver(std::function<void()> deliver) {
  if (ended()) return;
  Schedule(std::move(deliver), /*is_end=*/false);
}

void Channel::End() {
  if (ended()) return;
  ended_ = true;
  sim_->checker().OnChannelClosed(this);
  Schedule(nullptr, /*is_end=*/true);
}

void Channel::Crash() {
  if (ended()) return;
  cut_ = static_cast<uint64_t>(
      sim_->Uniform(static_cast<int64_t>(delivered_),
                    static_cast<int64_t>(next_seq_)));
  ended_ = true;
  sim_->checker().OnChannelClosed(this);
  Schedule(nullptr, /*is_end=*/true);
}

void Channel::Abandon() {
  if (abandoned_) return;
  if (!ended_) sim_->checker().OnChannelClosed(this);
  abandoned_ = true;
}

void Channel::Schedule(std::function<void()> deliver, bool is_end) {
  const uint64_t seq = next_seq_++;
  const absl::Time at = std::max(last_, sim_->Now() + sim_->NetworkDelay());
  last_ = at;
  std::shared_ptr<Channel> self = shared_from_this();
  sim_->At(at, [self, seq, is_end, deliver = std::move(deliver)] {
    self->delivered_ = seq + 1;
    if (self->abandoned_ || self->broken_) return;
    if (!is_end && seq >= self->cut_) return;
    if (!self->sim_->EndpointAlive(self->to_)) return;
    if (!self->sim_->Reachable(self->to_)) {
      self->broken_ = true;
      return;
    }
    if (is_end) {
      self->sim_->DeliverEnd(self->to_);
    } else {
      deliver();
    }
  });
}

// ---- Simulation: setup ------------------------------------------------------

Simulation::Simulation(const MasterSimOptions& options)
    : options_(options), rng_(options.seed), checker_(this) {
  for (absl::string_view id :
       absl::StrSplit(options.tolerate, ',', absl::SkipEmpty())) {
    if (id == "M1") tolerate_m1_ = true;
  }
  start_ = absl::FromUnixSeconds(1'700'000'000);
  now_ = start_;
  ChooseConfiguration();
}

Simulation::~Simulation() {
  // Leaders first: their destructors end streams and answer callbacks.
  for (auto& m : masters_) {
    m->up = false;
    m->leader.reset();
    m->commands.reset();
  }
  while (!queue_.empty()) queue_.pop();
}

void Simulation::ChooseConfiguration() {
  // Configuration from its own stream, so that it does not shift with
  // changes to the run's later draws.
  std::mt19937_64 c(options_.seed ^ 0x6d617374657273ull);
  auto pick = [&c](std::initializer_list<int64_t> v) {
    std::vector<int64_t> all(v);
    return all[std::uniform_int_distribution<size_t>(0, all.size() - 1)(c)];
  };
  auto uniform = [&c](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(c);
  };
  auto chance = [&c](double p) {
    return std::uniform_real_distribution<double>(0, 1)(c) < p;
  };

  max_delay_ms_ = pick({2, 10, 30});
  max_commit_ms_ = pick({2, 10, 40});
  holes_ = chance(1.0 / 3);
  redirects_ = chance(0.5);
  const int storm = static_cast<int>(pick({1, 1, 2}));
  leader_crash_rate_ = 0.05 * storm;
  leader_demote_rate_ = 0.03 * storm;
  standby_crash_rate_ = 0.02 * storm;
  agent_crash_rate_ = 0.01 * storm;
  agent_partition_rate_ = 0.01 * storm;
  append_fault_rate_ = 0.01 * storm;

  master::LeaderOptions& o = leader_options_;
  o.agent_ping_timeout = absl::Seconds(1);
  o.max_agent_ping_timeouts = 3;
  o.agent_reregister_timeout = absl::Seconds(3);
  o.agent_reconcile_interval = absl::Seconds(5);
  o.framework_heartbeat_interval = absl::Seconds(1);
  o.status_update_retry = absl::Seconds(1);
  o.allocation_interval = absl::Milliseconds(200);
  const bool expire = chance(0.5);
  o.allocator.offer_timeout =
      expire ? absl::Seconds(pick({2, 4})) : absl::InfiniteDuration();

  const int agents = static_cast<int>(uniform(3, 5));
  const int frameworks = static_cast<int>(uniform(2, 3));
  for (int m = 0; m < 3; ++m) {
    auto master = std::make_unique<Master>();
    master->index = m;
    master->snapshot_every = static_cast<size_t>(pick({50, 150, 400}));
    masters_.push_back(std::move(master));
  }
  std::vector<std::string> agent_desc;
  for (int i = 0; i < agents; ++i) {
    const std::string resources =
        absl::StrCat("cpus:", uniform(2, 6), ";mem:", 512 * uniform(2, 8));
    agents_.push_back(std::make_unique<SimAgent>(
        this, i, absl::StrCat("agent", i, ".sim"), resources));
    agent_desc.push_back(resources);
  }
  std::vector<std::string> framework_desc;
  for (int i = 0; i < frameworks; ++i) {
    SimFramework::Kind kind = SimFramework::Kind::kSteady;
    if (i > 0) {
      switch (pick({0, 1, 1, 2, 3})) {
        case 1:
          kind = SimFramework::Kind::kFlaky;
          break;
        case 2:
          kind = SimFramework::Kind::kVanishing;
          break;
        case 3:
          kind = SimFramework::Kind::kTeardown;
          break;
        default:
          break;
      }
    }
    // 0 (removed as soon as it is disconnected) only for one that leaves
    // for good: any other would be removed at every master failover.
    const double failover_timeout = static_cast<double>(
        kind == SimFramework::Kind::kVanishing ? pick({0, 2, 4, 8})
                                               : pick({2, 4, 8}));
    const bool aware = chance(0.5);
    frameworks_.push_back(std::make_unique<SimFramework>(
        this, i, absl::StrCat("fw", i), kind, failover_timeout, aware));
    const char* kinds[] = {"steady", "flaky", "vanishing", "teardown"};
    framework_desc.push_back(absl::StrFormat(
        "%s(fo=%gs%s)", kinds[static_cast<int>(kind)], failover_timeout,
        aware ? ",aware" : ""));
  }
  description_ = absl::StrFormat(
      "agents=[%s] frameworks=[%s] storm=%d net<=%dms commit<=%dms holes=%d "
      "redirects=%d offer_timeout=%s",
      absl::StrJoin(agent_desc, " "), absl::StrJoin(framework_desc, " "),
      storm, max_delay_ms_, max_commit_ms_, holes_, redirects_,
      expire ? absl::FormatDuration(o.allocator.offer_timeout) : "none");
}

// ---- Services ---------------------------------------------------------------

void Simulation::At(absl::Time when, std::function<void()> fn) {
  queue_.push(Item{std::max(when, now_), next_seq_++, std::move(fn)});
}

absl::Duration Simulation::NetworkDelay() {
  if (Chance(0.01)) return UniformMs(50, 200);  // a spike
  return UniformMs(1, max_delay_ms_);
}

bool Simulation::Chance(double p) {
  return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < p;
}

int64_t Simulation::Uniform(int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, std::max(lo, hi))(rng_);
}

std::string Simulation::RandomUuid() {
  std::string uuid(16, '\0');
  const uint64_t a = rng_();
  const uint64_t b = rng_();
  for (int i = 0; i < 8; ++i) {
    uuid[i] = static_cast<char>((a >> (8 * i)) & 0xff);
    uuid[8 + i] = static_cast<char>((b >> (8 * i)) & 0xff);
  }
  return uuid;
}

void Simulation::Trace(absl::string_view line) {
  const std::string text = absl::StrFormat(
      "%8d %9.3f %s", step_, absl::ToDoubleSeconds(now_ - start_), line);
  for (unsigned char c : text) {
    trace_hash_ ^= c;
    trace_hash_ *= 1099511628211ull;
  }
  trace_hash_ ^= '\n';
  trace_hash_ *= 1099511628211ull;
  if (options_.trace != nullptr) *options_.trace << text << "\n";
}

void Simulation::Fail(absl::string_view what) {
  if (!failure_.empty()) return;
  failure_ = absl::StrFormat("step %d t=%.3fs: %s", step_,
                             absl::ToDoubleSeconds(now_ - start_), what);
  Trace(absl::StrCat("FAILED: ", what));
}

bool Simulation::EndpointAlive(const Endpoint& to) const {
  if (to.kind == Endpoint::Kind::kAgent) {
    const SimAgent& a = *agents_[to.index];
    return a.up() && a.incarnation() == to.incarnation;
  }
  const SimFramework& f = *frameworks_[to.index];
  return !f.gone() && f.incarnation() == to.incarnation;
}

bool Simulation::Reachable(const Endpoint& to) const {
  if (!EndpointAlive(to)) return false;
  if (to.kind == Endpoint::Kind::kAgent) {
    return !agents_[to.index]->partitioned(now_);
  }
  return true;
}

void Simulation::DeliverEnd(const Endpoint& to) {
  if (to.kind == Endpoint::Kind::kAgent) {
    agents_[to.index]->OnStreamEnded(to.serial);
  } else {
    frameworks_[to.index]->OnStreamEnded(to.serial);
  }
}

bool Simulation::MasterUp(int m, uint64_t incarnation) const {
  return masters_[m]->up && masters_[m]->incarnation == incarnation;
}

uint64_t Simulation::LeaderIncarnation() const {
  return leader_ < 0 ? 0 : masters_[leader_]->incarnation;
}

Answer Simulation::NotLeader() const {
  // A standby redirects to the leader it knows (307, in `redirects_`
  // seeds), else answers 503 and the client tries the next master.
  if (leader_ < 0 || !redirects_) return Answer::Error(503, "not the leader");
  return Answer::Error(307, "not the leader", absl::StrCat(leader_));
}

master::CommandContext Simulation::Context(const std::string& principal) {
  master::CommandContext context;
  context.principal = principal;
  context.request_id = absl::StrCat("r", ++next_request_);
  return context;
}

void Simulation::AnswerLater(const Endpoint& to, uint64_t call_id,
                             Answer answer) {
  After(NetworkDelay(), [this, to, call_id, answer] {
    if (!Reachable(to)) return;
    if (to.kind == Endpoint::Kind::kAgent) {
      agents_[to.index]->OnCallAnswer(call_id, answer);
    } else {
      frameworks_[to.index]->OnCallAnswer(call_id, answer);
    }
  });
}

// ---- Requests ---------------------------------------------------------------

void Simulation::SendAgentSubscribe(int agent, int m, const v1::AgentCall& call,
                                    std::shared_ptr<Channel> channel) {
  const Endpoint to = channel->to();
  if (!Reachable(to)) return;  // partitioned: the agent times out
  Trace(absl::StrCat("a", agent, "#", to.serial, " -> m", m, " ", Short(call)));
  After(NetworkDelay(), [this, agent, m, call, channel, to] {
    if (!Reachable(to)) return;
    Master& n = *masters_[m];
    channel->Bind(m, n.incarnation);
    SimAgent* a = agents_[agent].get();
    const uint64_t serial = to.serial;
    auto answer = [channel, a, serial](Answer answer) {
      channel->Deliver(
          [a, serial, answer] { a->OnSubscribeAnswer(serial, answer); });
      if (!answer.ok()) channel->End();
    };
    if (!n.up) {
      answer(Answer::Error(503, "connection refused"));
      return;
    }
    if (!n.leader) {
      answer(NotLeader());
      return;
    }
    n.channels.push_back(channel);
    auto stream = std::make_shared<AgentStreamAdapter>(this, channel, m, agent);
    const uint64_t incarnation = n.incarnation;
    const std::string principal = call.subscribe().agent_info().id().value();
    n.leader->AgentSubscribe(
        call, Context(principal.empty() ? a->hostname() : principal), stream,
        [this, m, incarnation, channel, answer](Answer reply) {
          if (!MasterUp(m, incarnation)) return;  // died: no answer
          Trace(absl::StrCat("m", m, " answers a", channel->to().index, "#",
                             channel->to().serial, " SUBSCRIBE: ",
                             Short(reply)));
          if (reply.ok() && channel->ended()) {
            // The agent left before the answer: the HTTP layer sees the
            // stream's connection closed.
            const std::string stream_id = reply.stream_id;
            After(NetworkDelay(), [this, m, incarnation, stream_id] {
              Master& n = *masters_[m];
              if (MasterUp(m, incarnation) && n.leader) {
                n.leader->AgentStreamClosed(stream_id);
              }
            });
            return;
          }
          answer(reply);
        });
  });
}

void Simulation::SendAgentCall(int agent, int m, const v1::AgentCall& call,
                               const std::string& stream_id, uint64_t call_id) {
  const SimAgent& a = *agents_[agent];
  const Endpoint to{Endpoint::Kind::kAgent, agent, a.incarnation(), 0};
  if (!Reachable(to)) return;
  if (call.type() != v1::AgentCall::HEARTBEAT) {
    Trace(absl::StrCat("a", agent, " -> m", m, " ", Short(call)));
  }
  After(NetworkDelay(), [this, m, call, stream_id, call_id, to] {
    if (!Reachable(to)) return;
    Master& n = *masters_[m];
    if (!n.up) {
      AnswerLater(to, call_id, Answer::Error(503, "connection refused"));
      return;
    }
    if (!n.leader) {
      AnswerLater(to, call_id, NotLeader());
      return;
    }
    const uint64_t incarnation = n.incarnation;
    n.leader->AgentCall(call, stream_id, Context(call.agent_id().value()),
                        [this, m, incarnation, to, call_id](Answer reply) {
                          if (!MasterUp(m, incarnation)) return;
                          AnswerLater(to, call_id, reply);
                        });
  });
}

void Simulation::SendFrameworkSubscribe(int framework, int m,
                                        const v1::scheduler::Call& call,
                                        std::shared_ptr<Channel> channel) {
  const Endpoint to = channel->to();
  Trace(absl::StrCat("f", framework, "#", to.serial, " -> m", m, " ",
                     Short(call)));
  After(NetworkDelay(), [this, framework, m, call, channel, to] {
    if (!Reachable(to)) return;
    Master& n = *masters_[m];
    channel->Bind(m, n.incarnation);
    SimFramework* f = frameworks_[framework].get();
    const uint64_t serial = to.serial;
    auto answer = [channel, f, serial](Answer answer) {
      channel->Deliver(
          [f, serial, answer] { f->OnSubscribeAnswer(serial, answer); });
      if (!answer.ok()) channel->End();
    };
    if (!n.up) {
      answer(Answer::Error(503, "connection refused"));
      return;
    }
    if (!n.leader) {
      answer(NotLeader());
      return;
    }
    n.channels.push_back(channel);
    auto stream =
        std::make_shared<FrameworkStreamAdapter>(this, channel, m, framework);
    const uint64_t incarnation = n.incarnation;
    n.leader->FrameworkSubscribe(
        call,
        Context(call.subscribe().framework_info().principal()), stream,
        [this, m, incarnation, channel, framework, answer](Answer reply) {
          if (!MasterUp(m, incarnation)) return;
          Trace(absl::StrCat("m", m, " answers f", framework, "#",
                             channel->to().serial, " SUBSCRIBE: ",
                             Short(reply)));
          if (reply.ok()) {
            if (channel->ended()) {
              const std::string stream_id = reply.stream_id;
              After(NetworkDelay(), [this, m, incarnation, stream_id] {
                Master& n = *masters_[m];
                if (MasterUp(m, incarnation) && n.leader) {
                  n.leader->FrameworkStreamClosed(stream_id);
                }
              });
              return;
            }
          }
          answer(reply);
        });
  });
}

void Simulation::SendFrameworkCall(int framework, int m,
                                   const v1::scheduler::Call& call,
                                   const std::string& stream_id,
                                   uint64_t call_id) {
  const SimFramework& f = *frameworks_[framework];
  const Endpoint to{Endpoint::Kind::kFramework, framework, f.incarnation(), 0};
  Trace(absl::StrCat("f", framework, " -> m", m, " ", Short(call)));
  After(NetworkDelay(), [this, m, call, stream_id, call_id, to, framework] {
    Master& n = *masters_[m];
    if (!n.up) {
      AnswerLater(to, call_id, Answer::Error(503, "connection refused"));
      return;
    }
    if (!n.leader) {
      AnswerLater(to, call_id, NotLeader());
      return;
    }
    const uint64_t incarnation = n.incarnation;
    n.leader->FrameworkCall(
        call, stream_id,
        Context(absl::StrCat("principal-fw", framework)),
        [this, m, incarnation, to, call_id](Answer reply) {
          if (!MasterUp(m, incarnation)) return;
          AnswerLater(to, call_id, reply);
        });
  });
}

void Simulation::NotifyStreamClosed(const std::shared_ptr<Channel>& channel,
                                    const std::string& stream_id) {
  const bool reachable = Reachable(channel->to());
  channel->Abandon();
  const int m = channel->master();
  if (m < 0 || stream_id.empty() || !reachable) return;
  const uint64_t incarnation = channel->master_incarnation();
  const bool agent = channel->to().kind == Endpoint::Kind::kAgent;
  After(NetworkDelay(), [this, m, incarnation, stream_id, agent] {
    Master& n = *masters_[m];
    if (!MasterUp(m, incarnation) || !n.leader) return;
    if (agent) {
      n.leader->AgentStreamClosed(stream_id);
    } else {
      n.leader->FrameworkStreamClosed(stream_id);
    }
  });
}

// ---- The log ----------------------------------------------------------------

void Simulation::AppendFrom(int m, std::string entry,
                            master::EventLog::AppendDone done) {
  Master& n = *masters_[m];
  if (leader_ != m) {
    // Leadership already over: the append fails (outcome: not appended).
    const uint64_t incarnation = n.incarnation;
    After(absl::Milliseconds(1), [this, m, incarnation,
                                  done = std::move(done)] {
      if (MasterUp(m, incarnation) && masters_[m]->commands) {
        done(absl::UnavailableError("not the leader"));
      }
    });
    return;
  }
  absl::Time ready = now_ + UniformMs(1, max_commit_ms_);
  if (Chance(0.005)) ready += UniformMs(100, 400);  // a slow round
  ready = std::max(ready, last_ready_);
  last_ready_ = ready;
  in_flight_.push_back(InFlight{std::move(entry), std::move(done), m, n.term,
                                ready});
  At(ready, [this] { ChooseDue(); });
  // Leadership also ends at random points while appends are in flight.
  if (!draining_ && Chance(append_fault_rate_)) {
    const uint64_t term = n.term;
    const bool crash = Chance(0.6);
    At(now_ + (ready - now_) * (Uniform(0, 1000) / 1000.0),
       [this, m, term, crash] {
         if (draining_ || leader_ != m || masters_[m]->term != term) return;
         if (crash) {
           CrashMaster(m);
         } else {
           DemoteLeader();
         }
       });
  }
}

void Simulation::ChooseDue() {
  while (!in_flight_.empty() && in_flight_.front().ready <= now_) {
    InFlight append = std::move(in_flight_.front());
    in_flight_.pop_front();
    Choose(std::move(append));
  }
}

void Simulation::Choose(InFlight append) {
  Chosen chosen;
  if (!chosen.event.ParseFromString(append.entry)) {
    Fail("an appended entry does not parse as an Event");
    return;
  }
  const uint64_t position = chosen_.size() + 1;
  chosen.event.set_position(position);
  chosen.event.set_index(0);
  chosen.at = now_;
  checker_.BeforeApply(chosen.event, reference_);
  const absl::Status applied = reference_.Apply(chosen.event);
  chosen.applied = applied.ok();
  const auto* field =
      v1::Event::descriptor()->FindFieldByNumber(chosen.event.type_case());
  Trace(absl::StrCat("chosen ", position, " ",
                     field != nullptr ? field->name() : "(no type)",
                     applied.ok() ? "" : " REJECTED by the fold: ",
                     applied.ok() ? "" : applied.message()));
  checker_.AfterApply(chosen.event, chosen.applied);
  if (chosen.applied) {
    absl::Status invariants = reference_.CheckInvariants();
    if (!invariants.ok()) {
      Fail(absl::StrCat("the fold of the log breaks an invariant at ",
                        position, ": ", invariants.message()));
    }
  } else {
    ++stats_.events_rejected;
  }
  chosen_.push_back(std::move(chosen));
  ++stats_.entries_chosen;

  const bool to_leader = leader_ == append.master &&
                         masters_[append.master]->term == append.term;
  if (to_leader) {
    // The owner folds before or after the append's callback.
    if (Chance(0.3)) CatchUp(append.master);
    append.done(master::AppendedAt{position, 0});
  }
  for (int m = 0; m < master_count(); ++m) {
    if (!masters_[m]->up) continue;
    ScheduleCatchUp(m, m == leader_ ? UniformMs(0, 2)
                                    : UniformMs(1, 3 * max_delay_ms_));
  }
}

std::vector<master::EventLog::AppendDone> Simulation::ResolveInFlight() {
  std::vector<master::EventLog::AppendDone> dones;
  const size_t n = in_flight_.size();
  const size_t prefix = static_cast<size_t>(Uniform(0, static_cast<int64_t>(n)));
  size_t i = 0;
  while (!in_flight_.empty()) {
    InFlight append = std::move(in_flight_.front());
    in_flight_.pop_front();
    const bool chosen = holes_ ? Chance(0.5) : i < prefix;
    ++i;
    dones.push_back(std::move(append.done));
    if (chosen) {
      append.done = nullptr;
      Choose(std::move(append));
    } else {
      ++stats_.entries_dropped;
      Trace("an in-flight append is dropped");
    }
  }
  last_ready_ = now_;
  return dones;
}

// ---- Masters: folding -------------------------------------------------------

void Simulation::ScheduleCatchUp(int m, absl::Duration delay) {
  Master& n = *masters_[m];
  if (n.catch_up_scheduled) return;
  n.catch_up_scheduled = true;
  const uint64_t incarnation = n.incarnation;
  After(delay, [this, m, incarnation] {
    if (!MasterUp(m, incarnation)) return;
    masters_[m]->catch_up_scheduled = false;
    CatchUp(m);
  });
}

void Simulation::CatchUp(int m) {
  Master& n = *masters_[m];
  if (!n.up || n.applied >= chosen_.size()) return;
  for (; n.applied < chosen_.size(); ++n.applied) {
    const Chosen& c = chosen_[n.applied];
    const absl::Status applied = n.state.Apply(c.event);
    if (applied.ok() != c.applied) {
      Fail(absl::StrCat("master ", m, " and the reference fold disagree on ",
                        c.event.position(), ": ", applied.ToString()));
      return;
    }
    if (applied.ok() && c.event.has_time()) {
      n.last_event_time =
          std::max(n.last_event_time, master::ToTime(c.event.time()));
    }
  }
  if (n.commands) n.commands->OnApplied(n.applied, n.state);
  if (failed()) return;
  MaybeSnapshot(m);
  CompareWithReference(m, /*force=*/false);
}

void Simulation::CompareWithReference(int m, bool force) {
  Master& n = *masters_[m];
  if (!n.up || n.applied != chosen_.size()) return;
  if (!force && now_ - n.last_compare < compare_interval_) return;
  n.last_compare = now_;
  if (reference_bytes_at_ != chosen_.size()) {
    reference_bytes_ = reference_.SerializeCanonical();
    reference_bytes_at_ = chosen_.size();
  }
  if (n.state.SerializeCanonical() != reference_bytes_) {
    Fail(absl::StrCat("master ", m, "'s state differs from the fold of the ",
                      chosen_.size(), " chosen entries"));
    return;
  }
  absl::Status invariants = n.state.CheckInvariants();
  if (!invariants.ok()) {
    Fail(absl::StrCat("master ", m, ": ", invariants.message()));
  }
}

void Simulation::MaybeSnapshot(int m) {
  Master& n = *masters_[m];
  const size_t last = n.snapshot.has_value() ? n.snapshot->applied : 0;
  if (n.applied < last + n.snapshot_every) return;
  n.snapshot = Master::Snapshot{n.applied, n.state.ToSnapshot(),
                                n.last_event_time};
}

void Simulation::Rebuild(int m, bool allow_snapshot) {
  Master& n = *masters_[m];
  n.state = MasterState();
  n.applied = 0;
  n.last_event_time = absl::InfinitePast();
  if (allow_snapshot && n.snapshot.has_value() && Chance(0.6)) {
    absl::StatusOr<MasterState> restored =
        MasterState::FromSnapshot(n.snapshot->snapshot);
    if (!restored.ok()) {
      Fail(absl::StrCat("master ", m, ": its snapshot at ",
                        n.snapshot->applied,
                        " does not restore: ", restored.status().ToString()));
      return;
    }
    n.state = *std::move(restored);
    n.applied = n.snapshot->applied;
    n.last_event_time = n.snapshot->last_event_time;
    Trace(absl::StrCat("m", m, " rebuilds from its snapshot at ", n.applied));
  } else {
    Trace(absl::StrCat("m", m, " rebuilds from the start of the log"));
  }
  CatchUp(m);
  CompareWithReference(m, /*force=*/true);
}

// ---- Leadership -------------------------------------------------------------

void Simulation::ScheduleElection() {
  if (leader_ >= 0 || election_scheduled_ || done_) return;
  election_scheduled_ = true;
  After(UniformMs(200, 1500), [this] {
    election_scheduled_ = false;
    Elect();
  });
}

void Simulation::Elect() {
  if (leader_ >= 0) return;
  std::vector<int> up;
  for (int m = 0; m < master_count(); ++m) {
    if (masters_[m]->up) up.push_back(m);
  }
  if (up.empty()) {
    ScheduleElection();
    return;
  }
  const int m = up[Uniform(0, static_cast<int64_t>(up.size()) - 1)];
  Master& n = *masters_[m];
  // Recovery: the new leader folds the whole log first.
  CatchUp(m);
  CompareWithReference(m, /*force=*/true);
  if (failed()) return;
  ++n.term;
  ++stats_.elections;
  leader_ = m;
  leader_since_ = now_;
  Trace(absl::StrCat("m", m, " leads (term ", n.term, ") at position ",
                     n.applied));
  n.commands->BecomeLeader(n.state, n.last_event_time);
  master::LeaderOptions options = leader_options_;
  options.seed = rng_();
  options.master_info.set_id(absl::StrCat("master", m));
  options.master_info.set_hostname(absl::StrCat("master", m, ".sim"));
  options.master_info.set_port(5050);
  n.leader = std::make_unique<master::Leader>(options, n.commands.get(),
                                              &n.state, [this] { return now_; });
  ScheduleTick(m, n.term);
}

void Simulation::ScheduleTick(int m, uint64_t term) {
  const uint64_t incarnation = masters_[m]->incarnation;
  After(kTickInterval + UniformMs(-10, 10), [this, m, term, incarnation] {
    Master& n = *masters_[m];
    if (!MasterUp(m, incarnation) || leader_ != m || n.term != term ||
        !n.leader) {
      return;
    }
    n.leader->Tick(now_);
    ScheduleTick(m, term);
  });
}

void Simulation::EndTerm(int m, bool crash) {
  Master& n = *masters_[m];
  leader_ = -1;
  leader_since_ = absl::InfiniteFuture();
  // Paxos recovery settles every append in flight before the next leader.
  std::vector<master::EventLog::AppendDone> dones = ResolveInFlight();
  if (crash) {
    ++stats_.leader_crashes;
    Trace(absl::StrCat("m", m, " CRASHES while leading"));
    CrashMaster(m);
    if (options_.sabotage_lose_committed) LoseChosenTail();
  } else {
    ++stats_.leader_demotions;
    Trace(absl::StrCat("m", m, " loses leadership"));
    for (auto& done : dones) {
      if (done) done(absl::UnavailableError("leadership lost"));
    }
    // The owner steps down: ends the term, rebuilds from the log.
    n.leader.reset();
    if (n.commands) {
      n.commands->StepDown(absl::UnavailableError("leadership lost"));
    }
    n.step_down = false;
    Rebuild(m, /*allow_snapshot=*/true);
  }
  ScheduleElection();
}

void Simulation::CrashMaster(int m) {
  Master& n = *masters_[m];
  if (!n.up) return;
  if (leader_ == m) {
    EndTerm(m, /*crash=*/true);
    return;
  }
  n.up = false;
  for (auto& weak : n.channels) {
    if (std::shared_ptr<Channel> channel = weak.lock()) channel->Crash();
  }
  n.channels.clear();
  n.leader.reset();
  n.commands.reset();
  n.log.reset();
  n.state = MasterState();
  n.applied = 0;
  n.catch_up_scheduled = false;
  const absl::Duration down = UniformMs(300, 3000);
  After(down, [this, m] { RestartMaster(m); });
}

void Simulation::LoseChosenTail() {
  // Roll the log back to before its latest launch or terminal status
  // update (decisions clients see and cannot see undone), as a broken log
  // might.
  size_t keep = chosen_.size();
  while (keep > 0 && chosen_.size() - keep < 50) {
    const v1::Event& e = chosen_[keep - 1].event;
    --keep;
    if (e.has_tasks_launched() ||
        (e.has_task_status_updated() &&
         master::IsTerminalState(e.task_status_updated().status().state()))) {
      break;
    }
  }
  const size_t lose = chosen_.size() - keep;
  if (lose == 0) return;
  chosen_.resize(keep);
  Trace(absl::StrCat("SABOTAGE: the last ", lose, " chosen entries are lost"));
  reference_ = MasterState();
  reference_bytes_at_ = SIZE_MAX;
  std::vector<const v1::Event*> applied;
  for (const Chosen& c : chosen_) {
    if (reference_.Apply(c.event).ok()) applied.push_back(&c.event);
  }
  checker_.ReplayLog(applied);
  for (int m = 0; m < master_count(); ++m) {
    Master& n = *masters_[m];
    if (n.snapshot.has_value() && n.snapshot->applied > chosen_.size()) {
      n.snapshot.reset();
    }
    if (n.up) Rebuild(m, /*allow_snapshot=*/false);
  }
}

void Simulation::RestartMaster(int m) {
  Master& n = *masters_[m];
  if (n.up) return;
  n.up = true;
  ++n.incarnation;
  n.step_down = false;
  n.log = std::make_unique<Log>(this, m);
  n.commands = std::make_unique<master::CommandPath>(
      n.log.get(), [this] { return now_; },
      [this, m](absl::Status why) {
        Trace(absl::StrCat("m", m, " command path failed: ", why.message()));
        masters_[m]->step_down = true;
      });
  Trace(absl::StrCat("m", m, " starts"));
  Rebuild(m, /*allow_snapshot=*/true);
  ScheduleElection();
}

void Simulation::DemoteLeader() {
  if (leader_ < 0) return;
  EndTerm(leader_, /*crash=*/false);
}

void Simulation::ProcessStepDowns() {
  for (int m = 0; m < master_count(); ++m) {
    Master& n = *masters_[m];
    if (!n.step_down) continue;
    n.step_down = false;
    if (leader_ == m) EndTerm(m, /*crash=*/false);
  }
}

// ---- Faults and phases ------------------------------------------------------

void Simulation::FaultTick() {
  if (draining_ || done_) return;
  const double dt = absl::ToDoubleSeconds(kFaultInterval);
  if (leader_ >= 0) {
    if (Chance(leader_crash_rate_ * dt)) {
      CrashMaster(leader_);
    } else if (Chance(leader_demote_rate_ * dt)) {
      DemoteLeader();
    }
  }
  for (int m = 0; m < master_count(); ++m) {
    if (m != leader_ && masters_[m]->up && Chance(standby_crash_rate_ * dt)) {
      ++stats_.standby_crashes;
      Trace(absl::StrCat("m", m, " CRASHES (standby)"));
      CrashMaster(m);
    }
  }
  for (auto& agent : agents_) {
    if (agent->up() && Chance(agent_crash_rate_ * dt)) {
      ++stats_.agent_crashes;
      Trace(absl::StrCat("a", agent->index(), " CRASHES"));
      agent->Crash(/*lose_checkpoint=*/Chance(0.15));
      SimAgent* a = agent.get();
      After(UniformMs(500, 4000), [a] {
        if (!a->up()) a->Start();
      });
    } else if (agent->up() && !agent->partitioned(now_) &&
               Chance(agent_partition_rate_ * dt)) {
      ++stats_.agent_partitions;
      const absl::Time until = now_ + UniformMs(1000, 6000);
      Trace(absl::StrFormat("a%d is partitioned away for %.1fs",
                            agent->index(),
                            absl::ToDoubleSeconds(until - now_)));
      agent->Partition(until);
    }
  }
  After(kFaultInterval, [this] { FaultTick(); });
}

void Simulation::StartDrain() {
  draining_ = true;
  Trace("drain: faults stop");
  for (auto& agent : agents_) {
    agent->Calm();
    agent->Partition(now_);
    if (!agent->up()) agent->Start();
  }
  for (auto& framework : frameworks_) framework->Calm();
  for (int m = 0; m < master_count(); ++m) {
    if (!masters_[m]->up) RestartMaster(m);
  }
  drain_end_ = now_ + options_.drain_limit;
  After(kDrainInterval, [this] { DrainTick(); });
}

bool Simulation::Quiet(std::string* why) {
  if (leader_ < 0) {
    *why = "no leader";
    return false;
  }
  if (now_ - leader_since_ < absl::Seconds(2)) {
    *why = "the leader is new";
    return false;
  }
  const Master& l = *masters_[leader_];
  for (const auto& a : agents_) {
    if (!a->SubscribedTo(leader_, l.incarnation)) {
      *why = absl::StrCat("agent ", a->index(), " is not subscribed: ",
                          a->Describe());
      return false;
    }
    if (a->HasQueuedUpdates()) {
      *why = absl::StrCat("agent ", a->index(), " has queued updates");
      return false;
    }
  }
  for (const auto& f : frameworks_) {
    if (f->gone()) continue;
    if (f->away()) {
      *why = absl::StrCat("framework ", f->index(), " is away");
      return false;
    }
    if (!f->SubscribedTo(leader_, l.incarnation)) {
      *why = absl::StrCat("framework ", f->index(), " is not subscribed: ",
                          f->Describe());
      return false;
    }
    if (f->HasPendingAcks()) {
      *why = absl::StrCat("framework ", f->index(), " has acks to send");
      return false;
    }
  }
  for (const std::string& id : reference_.FrameworkIds()) {
    const v1::FrameworkRecord* f = reference_.FindFramework(id);
    if (f->state() == v1::FrameworkRecord::DISCONNECTED) {
      *why = absl::StrCat("framework ", id, " is disconnected in the log");
      return false;
    }
    if (f->state() == v1::FrameworkRecord::COMPLETED) continue;
    for (const TaskKey& key : reference_.TasksOfFramework(id)) {
      const v1::TaskRecord* t = reference_.FindTask(key.first, key.second);
      if (checker_.ToleratedStranded(key)) continue;
      if (t != nullptr && t->unacknowledged_size() > 0) {
        *why = absl::StrCat("task ", key.second, " has unacknowledged updates");
        return false;
      }
      if (t != nullptr && t->has_kill_request()) {
        *why = absl::StrCat("task ", key.second, " has a pending kill");
        return false;
      }
    }
  }
  // Last: what is only ever briefly untrue.
  if (!in_flight_.empty()) {
    *why = "appends in flight";
    return false;
  }
  for (const auto& m : masters_) {
    if (!m->up || m->applied != chosen_.size()) {
      *why = absl::StrCat("master ", m->index, " is down or behind (up=",
                          m->up, " applied=", m->applied, " of ",
                          chosen_.size(), " catch_up_scheduled=",
                          m->catch_up_scheduled, ")");
      return false;
    }
  }
  return true;
}

void Simulation::DrainTick() {
  if (done_ || failed()) return;
  std::string why;
  if (Quiet(&why)) {
    std::string end = checker_.EndState();
    if (end.empty()) {
      for (int m = 0; m < master_count() && !failed(); ++m) {
        CompareWithReference(m, /*force=*/true);
      }
      if (failed()) return;
      Finish("quiet");
      return;
    }
    why = std::move(end);
  }
  if (why != end_failure_) Trace(absl::StrCat("not quiet: ", why));
  end_failure_ = why;
  if (now_ >= drain_end_) {
    Fail(absl::StrCat("not quiet and right after draining for ",
                      absl::FormatDuration(options_.drain_limit), ": ", why));
    return;
  }
  After(kDrainInterval, [this] { DrainTick(); });
}

void Simulation::Finish(const std::string& why) {
  Trace(absl::StrCat("done: ", why));
  done_ = true;
}

// ---- Run --------------------------------------------------------------------

MasterSimResult Simulation::Run() {
  current_options = &options_;
  Trace(absl::StrCat("seed ", options_.seed, ": ", description_));
  fault_end_ = start_ + options_.fault_phase;
  for (int m = 0; m < master_count(); ++m) RestartMaster(m);
  for (auto& agent : agents_) {
    SimAgent* a = agent.get();
    After(UniformMs(0, 1000), [a] { a->Start(); });
  }
  for (auto& framework : frameworks_) {
    SimFramework* f = framework.get();
    After(UniformMs(0, 1000), [f] { f->Start(); });
  }
  After(kFaultInterval, [this] { FaultTick(); });
  At(fault_end_, [this] { StartDrain(); });

  while (!done_ && !failed()) {
    if (queue_.empty()) {
      Fail("the event queue ran dry");
      break;
    }
    if (step_ >= kMaxSteps) {
      Fail(absl::StrCat("more than ", kMaxSteps, " steps"));
      break;
    }
    Item item = queue_.top();
    queue_.pop();
    now_ = item.at;
    ++step_;
    current_step = step_;
    item.fn();
    ProcessStepDowns();
    if (!failed()) checker_.Step();
  }

  MasterSimResult result;
  result.seed = options_.seed;
  result.ok = !failed();
  result.failure = failure_;
  result.description = description_;
  stats_.steps = step_;
  result.stats = stats_;
  result.trace_hash = trace_hash_;
  current_options = nullptr;
  return result;
}

}  // namespace msim

MasterSimResult RunMasterSimulation(const MasterSimOptions& options) {
  msim::Simulation simulation(options);
  return simulation.Run();
}

std::string MasterSimReplayCommand(uint64_t seed) {
  return absl::StrCat("bazel run //sim:master_sim -- --seed=", seed,
                      " --trace  (or: bazel test //sim:master_sim_test "
                      "--test_env=MASTER_SIM_SEED=",
                      seed, ")");
}

std::string MasterSimFailureLine(const MasterSimResult& result) {
  return absl::StrCat("FAILED seed=", result.seed, " (replay: ",
                      MasterSimReplayCommand(result.seed),
                      "): ", result.failure);
}

std::string MasterSimSummaryLine(const MasterSimResult& result) {
  const MasterSimStats& s = result.stats;
  return absl::StrFormat(
      "seed=%d %s [%s] steps=%d chosen=%d dropped=%d rejected=%d "
      "elections=%d crashes=%d demotions=%d standby_crashes=%d "
      "agent_crashes=%d partitions=%d unreachable=%d tasks=%d ended=%d "
      "offers=%d updates=%d removed=%d stranded=%d hash=%016x",
      result.seed, result.ok ? "ok" : "FAILED", result.description, s.steps,
      s.entries_chosen, s.entries_dropped, s.events_rejected, s.elections,
      s.leader_crashes, s.leader_demotions, s.standby_crashes, s.agent_crashes,
      s.agent_partitions, s.agents_unreachable, s.tasks_launched,
      s.tasks_terminal, s.offers_sent, s.updates_delivered,
      s.frameworks_removed, s.stranded_tasks, result.trace_hash);
}

void InstallMasterSimFailureReporter() {
  static bool installed = false;
  if (installed) return;
  installed = true;
  logging::SetSinkForTesting([](const logging::LogLine& line) {
    if (line.severity != logging::Severity::kFatal ||
        msim::current_options == nullptr) {
      return;
    }
    std::fprintf(stderr,
                 "FAILED seed=%llu (replay: %s): CHECK failed in master code "
                 "at step %llu: %s\n",
                 static_cast<unsigned long long>(msim::current_options->seed),
                 MasterSimReplayCommand(msim::current_options->seed).c_str(),
                 static_cast<unsigned long long>(msim::current_step),
                 line.message.c_str());
    std::fflush(stderr);
  });
}

}  // namespace cairn::sim
