// Internals of the master simulation (master_sim.h): the world (clock,
// event queue, network, masters, the abstract log), the simulated agents
// and frameworks, and the checker. Package-private: only sim/master_sim*.cc
// include it.
//
// Everything runs on one thread, driven by one event queue ordered by
// (simulated time, sequence number); every random choice comes from the
// world's seeded generator. Actors (agents, frameworks) and masters hold an
// incarnation number: a delivery scheduled for an earlier incarnation (the
// process crashed since) is dropped.
//
// Masters never call actors directly and actors never call masters
// directly: every message goes through the world with a network delay, so
// no callback re-enters the Leader.

#ifndef CAIRN_SIM_MASTER_SIM_INTERNAL_H_
#define CAIRN_SIM_MASTER_SIM_INTERNAL_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cairn/v1/agent.pb.h"
#include "cairn/v1/master.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "master/command_path.h"
#include "master/leader.h"
#include "master/resources.h"
#include "master/state.h"
#include "sim/master_sim.h"

namespace cairn::sim::msim {

using master::Answer;
using master::MasterState;
using master::TaskKey;

class Simulation;
class SimAgent;
class SimFramework;

// Who a channel delivers to: one stream of one incarnation of an actor.
struct Endpoint {
  enum class Kind { kAgent, kFramework };
  Kind kind = Kind::kAgent;
  int index = 0;
  uint64_t incarnation = 0;
  uint64_t serial = 0;  // the actor's stream number
};

// An HTTP response stream from a master to an actor: the SUBSCRIBE answer,
// then events, in order, each after a network delay. A stream loses
// nothing while it lasts; when its master crashes, a random suffix of what
// is still in flight is lost, then the actor sees the stream end. A
// delivery that finds its actor partitioned away breaks the stream: nothing
// more arrives (the actor notices by its heartbeat timeout).
class Channel : public std::enable_shared_from_this<Channel> {
 public:
  Channel(Simulation* sim, Endpoint to);

  // The request reached master `master` (the stream is that master's).
  void Bind(int master, uint64_t master_incarnation);
  // Queues `deliver` behind everything queued before it.
  void Deliver(std::function<void()> deliver);
  // The master ended the stream: the end arrives after what is queued.
  void End();
  // The master died: a random suffix of the undelivered part is lost.
  void Crash();
  // The actor closed the stream: nothing more is delivered.
  void Abandon();

  bool ended() const { return ended_ || abandoned_; }
  int master() const { return master_; }
  uint64_t master_incarnation() const { return master_incarnation_; }
  const Endpoint& to() const { return to_; }
  uint64_t id() const { return id_; }

 private:
  void Schedule(std::function<void()> deliver, bool is_end);

  Simulation* const sim_;
  const Endpoint to_;
  const uint64_t id_;
  int master_ = -1;
  uint64_t master_incarnation_ = 0;
  absl::Time last_ = absl::InfinitePast();
  uint64_t next_seq_ = 0;
  uint64_t delivered_ = 0;  // deliveries run or dropped, in order
  uint64_t cut_ = UINT64_MAX;
  bool ended_ = false;
  bool abandoned_ = false;
  bool broken_ = false;
};

// ---- Agents -----------------------------------------------------------------

// A simulated cairn-agent (docs/agent-protocol.md). Its checkpoint (agent
// id, tasks with their update queues) survives its crashes; its streams,
// calls in flight and timers do not. Tasks "run" as records: they finish
// on their own after a random time, or are killed.
class SimAgent {
 public:
  struct Task {
    v1::TaskInfo info;
    v1::FrameworkInfo framework;
    v1::TaskState state = v1::TASK_STAGING;  // latest, as executed
    v1::TaskStatus latest;
    std::deque<v1::TaskStatus> queue;  // unacknowledged updates, in order
    bool head_sent = false;
    absl::Time head_sent_at = absl::InfinitePast();
    absl::Time finish_at = absl::InfiniteFuture();
  };

  SimAgent(Simulation* sim, int index, std::string hostname,
           std::string resources);

  void Start();
  // `lose_checkpoint`: the agent comes back without its work_dir.
  void Crash(bool lose_checkpoint);
  void Partition(absl::Time until);

  // Deliveries (the world checks incarnation and stream first).
  void OnSubscribeAnswer(uint64_t serial, const Answer& answer);
  void OnEvent(uint64_t serial, const v1::AgentEvent& event);
  void OnStreamEnded(uint64_t serial);
  void OnCallAnswer(uint64_t call, const Answer& answer);

  // The drain phase: tasks no longer finish on their own.
  void Calm() { calm_ = true; }

  bool up() const { return up_; }
  uint64_t incarnation() const { return incarnation_; }
  bool partitioned(absl::Time now) const { return now < partitioned_until_; }
  // Subscribed on a stream of master `master` (SUBSCRIBED received).
  bool SubscribedTo(int master, uint64_t master_incarnation) const;
  bool HasQueuedUpdates() const;
  const std::string& agent_id() const { return agent_id_; }
  const std::string& hostname() const { return hostname_; }
  const master::Resources& total() const { return total_; }
  const std::map<TaskKey, Task>& tasks() const { return tasks_; }
  int index() const { return index_; }
  std::string Describe() const;

 private:
  void Tick(uint64_t incarnation);
  void Subscribe();
  void AbandonStream(absl::string_view why);
  void ScheduleResubscribe();
  void SendCall(v1::AgentCall call, std::function<void(const Answer&)> then);
  void SendHead(const TaskKey& key);
  void SendAllHeads();
  // Appends an update for `key` to its queue (and sends it if it is the
  // head). `task` must exist.
  void QueueUpdate(const TaskKey& key, v1::TaskState state,
                   v1::TaskStatus::Reason reason, v1::TaskStatus::Source source,
                   absl::string_view message);
  void Launch(const v1::AgentEvent::Launch& launch);
  void Kill(const std::string& framework_id, const std::string& task_id,
            v1::TaskStatus::Reason reason);
  void ReportUnknown(const std::string& framework_id,
                     const std::string& task_id);
  void Acknowledge(const v1::AgentEvent::Acknowledge& ack);
  void Reconcile(const v1::AgentEvent::Reconcile& reconcile);
  void ForgetIfDone(const TaskKey& key);
  master::Resources Used() const;

  struct PendingCall {
    absl::Time deadline;
    std::function<void(const Answer&)> then;
  };

  Simulation* const sim_;
  const int index_;
  const std::string hostname_;
  const master::Resources total_;
  const std::vector<v1::Resource> total_proto_;

  // Checkpointed.
  std::string agent_id_;
  std::map<TaskKey, Task> tasks_;
  // Not the agent's: the simulation's record of every task this agent ever
  // knew (a second LAUNCH of one is a duplicate execution).
  std::set<TaskKey> ever_known_;

  // Volatile.
  bool up_ = false;
  bool calm_ = false;
  uint64_t incarnation_ = 0;
  absl::Time partitioned_until_ = absl::InfinitePast();
  uint64_t serial_ = 0;                  // of the stream being used/opened
  std::shared_ptr<Channel> channel_;     // current stream (or subscribing)
  bool subscribing_ = false;
  bool subscribed_ = false;  // SUBSCRIBED received on channel_
  absl::Time subscribe_sent_ = absl::InfinitePast();
  std::string stream_id_;
  int next_master_ = 0;
  absl::Time resubscribe_at_ = absl::InfiniteFuture();
  absl::Duration backoff_ = absl::Milliseconds(200);
  absl::Time last_record_ = absl::InfinitePast();
  absl::Time last_call_ = absl::InfinitePast();
  absl::Duration heartbeat_interval_ = absl::Seconds(1);
  uint32_t max_ping_timeouts_ = 3;
  uint64_t next_call_ = 1;
  std::map<uint64_t, PendingCall> calls_;
};

// ---- Frameworks -------------------------------------------------------------

// A simulated scheduler on the Mesos v1 scheduler API. Its framework id
// survives its disconnections (a scheduler keeps it, as Mesos schedulers
// do); its offers do not survive a stream.
class SimFramework {
 public:
  enum class Kind {
    kSteady,     // stays (resubscribes after every failover)
    kFlaky,      // disconnects for a while, sometimes past failover_timeout
    kVanishing,  // disconnects once, for good
    kTeardown,   // tears itself down once
  };

  // What the scheduler knows about one of its tasks.
  struct TaskView {
    std::string agent_id;
    bool accepted = false;  // the ACCEPT launching it was answered 202
    bool terminal = false;  // a reliable terminal update arrived
    v1::TaskState last_state = v1::TASK_STAGING;  // last reliable update
    v1::TaskState terminal_state = v1::TASK_STAGING;
    bool transient_terminal = false;  // a terminal answer without uuid
  };

  SimFramework(Simulation* sim, int index, std::string name, Kind kind,
               double failover_timeout, bool partition_aware);

  void Start();

  void OnSubscribeAnswer(uint64_t serial, const Answer& answer);
  void OnEvent(uint64_t serial, const v1::scheduler::Event& event);
  void OnStreamEnded(uint64_t serial);
  void OnCallAnswer(uint64_t call, const Answer& answer);

  // The drain phase: no new launches, kills, disconnections or teardowns.
  void Calm() { calm_ = true; }

  uint64_t incarnation() const { return incarnation_; }
  int index() const { return index_; }
  double failover_timeout() const { return failover_timeout_; }
  const std::string& framework_id() const { return framework_id_; }
  bool gone() const { return gone_; }
  bool refused() const { return refused_; }
  bool away() const { return away_; }
  bool SubscribedTo(int master, uint64_t master_incarnation) const;
  bool HasPendingAcks() const { return !acks_.empty(); }
  const std::map<std::string, TaskView>& tasks() const { return tasks_; }
  std::string Describe() const;

 private:
  struct HeldOffer {
    v1::Offer offer;
    absl::Time decide_at;
  };
  struct PendingAck {
    absl::Time due;
    v1::TaskStatus status;
  };
  struct PendingCall {
    absl::Time deadline;
    std::function<void(const Answer&)> then;
  };

  void Tick();
  void Subscribe();
  // Leaves the current stream; `notify`: the master's HTTP layer sees it.
  void Disconnect(absl::string_view why, bool notify);
  void ScheduleResubscribe();
  void SendCall(v1::scheduler::Call call,
                std::function<void(const Answer&)> then);
  void DecideOffer(const std::string& offer_id);
  void OnUpdate(const v1::TaskStatus& status);
  void MaybeKill();
  void MaybeReconcile();
  void DropOffers();

  Simulation* const sim_;
  const int index_;
  const std::string name_;
  const Kind kind_;
  const double failover_timeout_;
  const bool partition_aware_;

  // Kept across disconnections.
  std::string framework_id_;
  std::map<std::string, TaskView> tasks_;  // by task id
  uint64_t next_task_ = 1;
  bool gone_ = false;       // will never subscribe again
  bool torn_down_ = false;  // TEARDOWN answered 202
  bool refused_ = false;    // a SUBSCRIBE with its id was refused (4xx)
  bool calm_ = false;
  bool want_teardown_ = false;
  bool teardown_in_flight_ = false;
  absl::Time teardown_at_ = absl::InfiniteFuture();
  absl::Time disconnect_at_ = absl::InfiniteFuture();
  bool away_ = false;  // disconnected on purpose
  absl::Time return_at_ = absl::InfiniteFuture();

  // Per stream.
  uint64_t incarnation_ = 0;  // bumped by every disconnection
  uint64_t serial_ = 0;
  std::shared_ptr<Channel> channel_;
  bool subscribing_ = false;
  bool subscribed_ = false;
  absl::Time subscribe_sent_ = absl::InfinitePast();
  std::string stream_id_;
  int next_master_ = 0;
  absl::Time resubscribe_at_ = absl::InfiniteFuture();
  absl::Duration backoff_ = absl::Milliseconds(200);
  std::map<std::string, HeldOffer> offers_;
  std::vector<PendingAck> acks_;
  absl::Time next_kill_ = absl::InfinitePast();
  absl::Time next_reconcile_ = absl::InfinitePast();
  uint64_t next_call_ = 1;
  std::map<uint64_t, PendingCall> calls_;
};

// ---- Checker ----------------------------------------------------------------

// The simulation's invariants (master_sim.h lists them). Every On* hook
// runs at the moment the simulated thing happens; Step() after every step;
// EndState() once the drain phase is quiet. A violation is reported to the
// world (Simulation::Fail), which stops the run.
class Checker {
 public:
  explicit Checker(Simulation* sim) : sim_(sim) {}

  // The log: an entry was chosen. BeforeApply sees the reference state
  // before the event, AfterApply whether the reference fold accepted it.
  void BeforeApply(const v1::Event& event, const MasterState& before);
  void AfterApply(const v1::Event& event, bool applied);

  // Master -> actor messages, when the Leader sends them, against the
  // sending master's committed state.
  void OnAgentEventSent(const MasterState& committed, int agent,
                        const std::string& agent_id,
                        const v1::AgentEvent& event);
  void OnFrameworkEventSent(const MasterState& committed, const Channel* channel,
                            int framework, const v1::scheduler::Event& event);
  // A stream ended (either side, first notice).
  void OnChannelClosed(const Channel* channel);

  // Actor-side.
  void OnOfferReceived(int framework, const v1::Offer& offer);
  void OnOfferUsed(const std::string& offer_id);
  void OnUpdateReceived(int framework, const std::string& framework_id,
                        const v1::TaskStatus& status);
  void OnLaunchReceived(int agent, const std::string& agent_id,
                        const TaskKey& key, bool ever_known);
  void OnAcceptAnswered(int framework, const std::string& framework_id,
                        const std::vector<std::string>& task_ids);
  void OnTeardownSent(const std::string& framework_id);

  // After every step.
  void Step();
  // Returns "" when the quiet end state is right, else what is wrong.
  std::string EndState();
  // The log was rewritten (sabotage): rebuild what the checker derives
  // from it, without checking.
  void ReplayLog(const std::vector<const v1::Event*>& applied);

  // M1 tolerated, and `key` is live in the log on an agent the log has
  // REMOVED, or UNREACHABLE while the task is not TASK_UNREACHABLE.
  bool ToleratedStranded(const TaskKey& key) const;

 private:
  struct HeldOffer {
    std::string agent_id;
    master::Resources resources;
    const Channel* channel = nullptr;
  };
  // One framework id's connections, as the simulation saw them: from the
  // SUBSCRIBED a leader sent on a stream to the first close of it by either
  // side. (A scheduler that lost its SUBSCRIBED in a crash registers anew:
  // one scheduler may have had several framework ids.)
  struct FrameworkLife {
    int index = -1;  // the scheduler
    std::set<const Channel*> open;
    absl::Time disconnected_at = absl::InfinitePast();  // when open emptied
    std::vector<std::pair<absl::Time, absl::Time>> intervals;
    absl::Time teardown_sent = absl::InfiniteFuture();
  };

  struct UpdateSequence {
    std::map<std::string, v1::TaskState> uuids;  // reliable updates seen
    std::string terminal_uuid;                   // first terminal one
    v1::TaskState terminal_state = v1::TASK_STAGING;
  };

  void CheckOffers();
  void CheckFailoverDeadlines();
  // Agents subscribed to the leader converge on the log's tasks within a
  // reconciliation round: no task the log ended keeps running there, none
  // the log places there is missing.
  void CheckAgentsConverge();
  // The log at rest (no append in flight) strands no task: a REMOVED agent
  // has no live task, an UNREACHABLE agent's live tasks are all
  // TASK_UNREACHABLE. A stranded task is never reconciled again.
  void CheckLogAtRest();
  void ReleaseOffer(const std::string& offer_id);
  std::string FrameworkIdOf(const Channel* channel) const;

  Simulation* const sim_;
  // Checker 1.
  std::map<std::string, HeldOffer> held_;  // by offer id
  std::set<std::string> offers_sent_;
  std::map<int, std::set<std::string>> offers_received_;
  bool offers_dirty_ = false;
  // Checker 2.
  std::map<TaskKey, std::string> launched_;  // -> agent id, from the log
  std::map<TaskKey, v1::TaskState> log_state_;
  std::map<TaskKey, std::string> running_on_;  // agent id, from agents
  std::set<TaskKey> accepted_unlaunched_;  // ACCEPT 202, not in the log
  // Checker 3.
  std::map<std::pair<int, std::string>, UpdateSequence> sequences_;
  // Checker 4.
  std::map<std::string, FrameworkLife> lives_;  // by framework id
  std::map<const Channel*, std::pair<std::string, size_t>> intervals_of_;
  std::optional<v1::FrameworkRecord> removing_;  // BeforeApply's record
  absl::Time last_deadline_check_ = absl::InfinitePast();
  bool replaying_ = false;
  // (agent index, task) -> since when it runs though ended in the log, or
  // is missing though live in the log, while the agent is subscribed.
  std::map<std::pair<int, TaskKey>, absl::Time> diverged_since_;
  absl::Time last_converge_check_ = absl::InfinitePast();
  bool log_changed_ = false;
  std::set<TaskKey> stranded_;  // reported (M1 tolerated)
  // Tasks seen live on an UNREACHABLE/REMOVED agent at rest, with the
  // election count when first seen (see CheckLogAtRest).
  std::map<TaskKey, uint64_t> stranded_since_;
  // framework id -> scheduler index, for ids some scheduler adopted.
  std::map<std::string, int> framework_index_;
  std::map<const Channel*, std::string> channel_framework_id_;
};

// ---- The world --------------------------------------------------------------

class Simulation {
 public:
  explicit Simulation(const MasterSimOptions& options);
  ~Simulation();

  MasterSimResult Run();

  // ---- Services for actors and the checker ----
  absl::Time Now() const { return now_; }
  std::mt19937_64& rng() { return rng_; }
  void At(absl::Time when, std::function<void()> fn);
  void After(absl::Duration delay, std::function<void()> fn) {
    At(now_ + delay, std::move(fn));
  }
  absl::Duration NetworkDelay();
  bool Chance(double p);
  int64_t Uniform(int64_t lo, int64_t hi);
  absl::Duration UniformMs(int64_t lo, int64_t hi) {
    return absl::Milliseconds(Uniform(lo, hi));
  }
  std::string RandomUuid();
  void Trace(absl::string_view line);
  // Records a violation (the first one ends the run).
  void Fail(absl::string_view what);
  bool failed() const { return !failure_.empty(); }
  Checker& checker() { return checker_; }
  bool tolerates_m1() const { return tolerate_m1_; }
  int master_count() const { return static_cast<int>(masters_.size()); }
  uint64_t NextChannelId() { return ++channels_made_; }

  // Whether a delivery to `to` may happen now (actor alive, same
  // incarnation, not partitioned).
  bool Reachable(const Endpoint& to) const;
  bool EndpointAlive(const Endpoint& to) const;
  void DeliverEnd(const Endpoint& to);

  // Actor -> master requests. Each arrives after a network delay; a down
  // master or a standby answers 503. Answers come back the same way; the
  // SUBSCRIBE answer and the stream go through `channel`.
  void SendAgentSubscribe(int agent, int master, const v1::AgentCall& call,
                          std::shared_ptr<Channel> channel);
  void SendAgentCall(int agent, int master, const v1::AgentCall& call,
                     const std::string& stream_id, uint64_t call_id);
  void SendFrameworkSubscribe(int framework, int master,
                              const v1::scheduler::Call& call,
                              std::shared_ptr<Channel> channel);
  void SendFrameworkCall(int framework, int master,
                         const v1::scheduler::Call& call,
                         const std::string& stream_id, uint64_t call_id);
  // The actor closed its stream; the master's HTTP layer notices.
  void NotifyStreamClosed(const std::shared_ptr<Channel>& channel,
                          const std::string& stream_id);

  // ---- For the checker ----
  const MasterState& reference() const { return reference_; }
  bool appends_in_flight() const { return !in_flight_.empty(); }
  int leader() const { return leader_; }
  // The leading master's incarnation (0 when none leads).
  uint64_t LeaderIncarnation() const;
  absl::Time leader_since() const { return leader_since_; }
  const std::vector<std::unique_ptr<SimAgent>>& agents() const {
    return agents_;
  }
  const std::vector<std::unique_ptr<SimFramework>>& frameworks() const {
    return frameworks_;
  }
  SimFramework* framework(int index) { return frameworks_[index].get(); }
  SimAgent* agent(int index) { return agents_[index].get(); }
  MasterSimStats& stats() { return stats_; }
  const master::LeaderOptions& leader_options() const {
    return leader_options_;
  }
  absl::Duration slack() const { return slack_; }

 private:
  // One master process. The CommandPath lives as long as the process; the
  // Leader as long as a leadership term.
  struct Master;
  class Log;
  class AgentStreamAdapter;
  class FrameworkStreamAdapter;
  // One append of the leader's, waiting to be chosen.
  struct InFlight {
    std::string entry;
    master::EventLog::AppendDone done;
    int master = -1;
    uint64_t term = 0;
    absl::Time ready;
  };
  struct Chosen {
    v1::Event event;  // position set, index 0
    absl::Time at;
    bool applied = false;  // by the reference fold
  };

  void ChooseConfiguration();
  void AppendFrom(int m, std::string entry, master::EventLog::AppendDone done);
  void ChooseDue();
  void Choose(InFlight append);
  void ScheduleCatchUp(int m, absl::Duration delay);
  void CatchUp(int m);
  void CompareWithReference(int m, bool force);
  void Rebuild(int m, bool allow_snapshot);
  void MaybeSnapshot(int m);
  void ScheduleElection();
  void Elect();
  void ScheduleTick(int m, uint64_t term);
  void EndTerm(int m, bool crash);  // resolves in-flight appends first
  std::vector<master::EventLog::AppendDone> ResolveInFlight();
  void CrashMaster(int m);
  // Sabotage for the positive control: committed entries vanish.
  void LoseChosenTail();
  void RestartMaster(int m);
  void DemoteLeader();
  void ProcessStepDowns();
  void FaultTick();
  void StartDrain();
  bool Quiet(std::string* why);
  void DrainTick();
  void Finish(const std::string& why);
  bool MasterUp(int m, uint64_t incarnation) const;
  void AnswerLater(const Endpoint& to, uint64_t call_id, Answer answer);
  // What a standby answers: 307 with the leader's index in `field`, or 503.
  Answer NotLeader() const;
  master::CommandContext Context(const std::string& principal);

  const MasterSimOptions options_;
  std::mt19937_64 rng_;
  absl::Time now_;
  absl::Time start_;
  absl::Time fault_end_;
  absl::Time drain_end_;
  uint64_t step_ = 0;
  uint64_t trace_hash_ = 1469598103934665603ull;
  std::string description_;
  std::string failure_;
  MasterSimStats stats_;
  bool done_ = false;
  bool draining_ = false;
  std::string end_failure_;  // the last end-state failure while draining

  struct Item {
    absl::Time at;
    uint64_t seq;
    std::function<void()> fn;
  };
  struct Later {
    bool operator()(const Item& a, const Item& b) const {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };
  std::priority_queue<Item, std::vector<Item>, Later> queue_;
  uint64_t next_seq_ = 0;
  uint64_t channels_made_ = 0;
  uint64_t next_request_ = 0;

  // Configuration chosen by the seed.
  master::LeaderOptions leader_options_;
  int64_t max_delay_ms_ = 20;
  int64_t max_commit_ms_ = 20;
  bool holes_ = false;
  bool tolerate_m1_ = false;
  bool redirects_ = false;  // standbys answer 307 (else 503)
  // A master's state is compared with the reference fold (and its
  // invariants checked) after a fold at most this often, and always after
  // a rebuild, before it leads, and at the end: serialization is most of a
  // run's cost.
  absl::Duration compare_interval_ = absl::Milliseconds(250);
  double leader_crash_rate_ = 0;   // per second
  double leader_demote_rate_ = 0;  // per second
  double standby_crash_rate_ = 0;
  double agent_crash_rate_ = 0;  // per agent per second
  double agent_partition_rate_ = 0;
  double append_fault_rate_ = 0;  // per append: leadership ends meanwhile
  absl::Duration slack_ = absl::Milliseconds(1500);

  // The log: chosen entries (position = index + 1) and the leader's
  // appends in flight, in order.
  std::vector<Chosen> chosen_;
  std::deque<InFlight> in_flight_;
  absl::Time last_ready_ = absl::InfinitePast();
  MasterState reference_;
  std::string reference_bytes_;  // SerializeCanonical at reference_size_
  size_t reference_bytes_at_ = SIZE_MAX;

  std::vector<std::unique_ptr<Master>> masters_;
  int leader_ = -1;
  absl::Time leader_since_ = absl::InfiniteFuture();
  bool election_scheduled_ = false;

  std::vector<std::unique_ptr<SimAgent>> agents_;
  std::vector<std::unique_ptr<SimFramework>> frameworks_;
  Checker checker_;

  friend class Channel;
};

// Names for traces.
std::string Short(const v1::AgentEvent& event);
std::string Short(const v1::scheduler::Event& event);
std::string Short(const v1::AgentCall& call);
std::string Short(const v1::scheduler::Call& call);
std::string Short(const Answer& answer);
std::string UuidHex(const std::string& uuid);

}  // namespace cairn::sim::msim

#endif  // CAIRN_SIM_MASTER_SIM_INTERNAL_H_
