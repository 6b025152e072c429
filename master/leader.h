// Leader: what the leading master does besides folding the log — the agent
// protocol (docs/agent-protocol.md), the scheduler API's calls and event
// streams, liveness, failover timeouts, and allocation cycles.
//
// Sans-IO: a Leader reads no clock (Tick() and its `clock` give the time),
// opens no socket and draws randomness only from its seed. Streams are
// interfaces (AgentStream, FrameworkStream) that the master backs with HTTP
// chunked responses and the simulation (sim/master_sim) with in-memory
// queues. Every state change goes through the CommandPath (validate against
// the speculative view -> events -> append -> apply -> answer), and every
// message that reveals a decision (OFFERS, LAUNCH, KILL, ACKNOWLEDGE,
// SUBSCRIBED, UPDATE...) is sent only after the events behind it are
// committed and applied. What a Leader keeps in memory — streams, liveness
// deadlines, which tasks were dispatched, which offers and updates were sent,
// decline filters — is lost with leadership on purpose: a new leader rebuilds
// what it needs from the log (see BecomeLeader below).
//
// Lifetime: the owner creates a Leader when its CommandPath becomes leader
// (after CommandPath::BecomeLeader) and destroys it when it steps down; the
// destructor ends every open stream. REQUIRES: `commands` and `committed`
// outlive the Leader; `committed` is the owner's folded state, updated
// before CommandPath::OnApplied runs.
//
// On creation (a new leadership term) the Leader appends:
//  - FrameworkDisconnected for every CONNECTED or INACTIVE framework: its
//    scheduler's stream was with the previous leader, so its
//    failover_timeout starts now (a framework already DISCONNECTED keeps the
//    deadline the log holds: failover_timeout survives failovers);
// and it treats every committed task as dispatched, gives every ACTIVE
// agent agent_reregister_timeout to subscribe, and resends KILL for tasks
// whose kill was requested when their agent subscribes.
//
// Thread safety: none; the master's thread owns it (the CommandPath's
// callbacks run there too).

#ifndef CAIRN_MASTER_LEADER_H_
#define CAIRN_MASTER_LEADER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "cairn/v1/agent.pb.h"
#include "cairn/v1/master.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "master/allocator.h"
#include "master/command_path.h"
#include "master/state.h"

namespace cairn::master {

struct LeaderOptions {
  // Agents: heartbeats both ways every agent_ping_timeout; an ACTIVE agent
  // silent for agent_ping_timeout * max_agent_ping_timeouts is marked
  // unreachable. After an election, agents get agent_reregister_timeout.
  absl::Duration agent_ping_timeout = absl::Seconds(15);
  uint32_t max_agent_ping_timeouts = 5;
  absl::Duration agent_reregister_timeout = absl::Minutes(10);
  // RECONCILE to every agent this often (anti-entropy).
  absl::Duration agent_reconcile_interval = absl::Minutes(15);
  // Frameworks: HEARTBEAT events on every scheduler stream this often.
  absl::Duration framework_heartbeat_interval = absl::Seconds(15);
  // An UPDATE not acknowledged by the framework is sent again after this.
  absl::Duration status_update_retry = absl::Seconds(10);
  // A periodic allocation cycle at least this often (and one soon after
  // resources are freed, a framework subscribes or revives).
  absl::Duration allocation_interval = absl::Seconds(1);
  AllocatorOptions allocator;
  // Called after each allocation run with how long the allocator took by
  // the Leader's clock (zero under a simulated one); for metrics. Optional.
  std::function<void(absl::Duration)> on_allocation_run;
  // Describes this master in SUBSCRIBED events.
  v1::MasterInfo master_info;
  // Seeds ids (agents, frameworks, offers, streams) and master-made uuids.
  // The master passes a random value; the simulation a seeded one.
  uint64_t seed = 0;
  // Limits on what an agent's UPDATE may carry (docs/agent-protocol.md §9).
  size_t max_status_data_bytes = 64 * 1024;
  size_t max_status_message_bytes = 4 * 1024;
  // The most `data` a scheduler MESSAGE or an agent EXECUTOR_MESSAGE may
  // carry (400 naming `message.data` / `executor_message.data`): messages
  // go through the master's memory and streams, never the log.
  size_t max_message_data_bytes = 64 * 1024;
  // Open event streams (each holds an HTTP connection): a SUBSCRIBE that
  // would open one more than this is answered 503 (streams being opened
  // count too); resubscribing, which replaces one's own stream, is not
  // refused. Keep the sum below the HTTP server's connection limit (1024)
  // so that calls still get through.
  size_t max_framework_streams = 256;
  size_t max_agent_streams = 640;
};

// The answer to a call: an HTTP status code (200, 202, 4xx, 503) and, for
// errors, a message and the offending field's path ("" if none).
struct Answer {
  int code = 202;
  std::string message;
  std::string field;
  // For SUBSCRIBE answered 200: the new stream's id.
  std::string stream_id;

  static Answer Error(int code, std::string message, std::string field = "") {
    Answer a;
    a.code = code;
    a.message = std::move(message);
    a.field = std::move(field);
    return a;
  }
  bool ok() const { return code == 200 || code == 202; }
};

// One agent's event stream. Send() and Close() after Close() are ignored.
class AgentStream {
 public:
  virtual ~AgentStream() = default;
  virtual void Send(const v1::AgentEvent& event) = 0;
  // Ends the stream (final chunk). Idempotent.
  virtual void Close() = 0;

  // The IP address the agent's SUBSCRIBE came from ("" when unknown). Offers
  // carry it as url.address.ip when the agent's hostname is not an IP: Mesos
  // offers always carry the agent's IP, and clients rely on it (the npm
  // mesos-framework exports it to tasks as HOST).
  const std::string& peer_ip() const { return peer_ip_; }
  void set_peer_ip(std::string ip) { peer_ip_ = std::move(ip); }

 private:
  std::string peer_ip_;
};

// One scheduler's event stream.
class FrameworkStream {
 public:
  virtual ~FrameworkStream() = default;
  virtual void Send(const v1::scheduler::Event& event) = 0;
  virtual void Close() = 0;
};

// Counters for metrics and tests.
struct LeaderMetrics {
  uint64_t agent_subscribes = 0;
  uint64_t agent_updates = 0;
  uint64_t duplicate_updates = 0;  // acknowledged without an event
  uint64_t late_updates = 0;       // for tasks the log had already ended
  uint64_t agents_marked_unreachable = 0;
  uint64_t framework_subscribes = 0;
  uint64_t frameworks_removed = 0;
  uint64_t allocation_cycles = 0;
  uint64_t offers_sent = 0;
  uint64_t offers_rescinded = 0;
  uint64_t updates_sent = 0;  // UPDATE events to schedulers
  // Scheduler MESSAGE calls sent to an agent's stream (valid) or dropped
  // because the agent is unknown, not ACTIVE or has no stream (invalid),
  // and executor messages forwarded to a scheduler or dropped, as Mesos's
  // master/{valid,invalid}_{framework_to_executor,executor_to_framework}
  // _messages.
  uint64_t valid_framework_to_executor_messages = 0;
  uint64_t invalid_framework_to_executor_messages = 0;
  uint64_t valid_executor_to_framework_messages = 0;
  uint64_t invalid_executor_to_framework_messages = 0;
};

class Leader {
 public:
  using Done = std::function<void(Answer)>;

  // Starts a leadership term on top of `committed` (see the file comment).
  Leader(LeaderOptions options, CommandPath* commands,
         const MasterState* committed, std::function<absl::Time()> clock);
  Leader(const Leader&) = delete;
  Leader& operator=(const Leader&) = delete;
  // Ends every stream (agents and schedulers resubscribe to the next
  // leader) and fails calls still waiting with 503.
  ~Leader();

  // ---- Agent protocol (POST /api/v1/agent) ----------------------------

  // SUBSCRIBE: `done` gets 200 with the stream id once the subscription's
  // events are committed — the caller then starts the HTTP stream — and
  // right after `done` returns the Leader sends SUBSCRIBED and what follows
  // on `stream`. On an error `done` gets 4xx/503 and `stream` is unused:
  // 503 also when max_agent_streams are open and this is not an agent
  // whose stream is open (a resubscription).
  void AgentSubscribe(const v1::AgentCall& call, const CommandContext& context,
                      std::shared_ptr<AgentStream> stream, Done done);
  // Any other call, with the X-Cairn-Stream-Id header's value. `done` gets
  // 202 (accepted; effects arrive on the stream) or an error (400 with the
  // field, 409 for a stream id that is not the agent's current one, ...).
  void AgentCall(const v1::AgentCall& call, const std::string& stream_id,
                 const CommandContext& context, Done done);
  // The HTTP layer saw the stream end (client gone, write error).
  void AgentStreamClosed(const std::string& stream_id);

  // ---- Scheduler API (POST /api/v1/scheduler) -------------------------

  // SUBSCRIBE: `done` gets 200 with the Mesos-Stream-Id once committed;
  // then SUBSCRIBED and the framework's pending UPDATEs follow on `stream`.
  // 503 when max_framework_streams are open and the framework has none.
  void FrameworkSubscribe(const v1::scheduler::Call& call,
                          const CommandContext& context,
                          std::shared_ptr<FrameworkStream> stream, Done done);
  // Any other call with its Mesos-Stream-Id. 202 once the call's events are
  // committed; 400 (invalid, naming the field), 403 (stream id is not the
  // framework's current one, or the framework is not subscribed), 503.
  void FrameworkCall(const v1::scheduler::Call& call,
                     const std::string& stream_id,
                     const CommandContext& context, Done done);
  void FrameworkStreamClosed(const std::string& stream_id);

  // ---- Time -------------------------------------------------------------

  // Heartbeats, liveness, failover timeouts, offer timeouts, update
  // redelivery, reconciliation and allocation cycles that are due at `now`.
  // The owner calls it often (every 100 ms or so) and the simulation at
  // each simulated step.
  void Tick(absl::Time now);

  // ---- Inspection -------------------------------------------------------

  const LeaderMetrics& metrics() const { return metrics_; }
  const Allocator& allocator() const { return allocator_; }
  size_t agent_streams() const;
  size_t framework_streams() const;
  bool IsDispatched(const TaskKey& key) const {
    return dispatched_.count(key) > 0;
  }

  // ---- Operator API (POST /api/v1, master/operator_api.h) ----------------
  //
  // Mutations an operator asks for, with Mesos's answers. Each validates
  // against the speculative view (400 naming the field: the `field`
  // argument's prefix, e.g. "drain_agent.agent_id"), goes through the
  // command path, and answers once its events are committed and applied:
  // 200 (RESERVE/UNRESERVE: 202), or 503 when leadership is lost first.

  // TEARDOWN: kills the framework's live tasks (TASK_KILLED,
  // REASON_FRAMEWORK_REMOVED) and removes it. 400 for an unknown or
  // already removed framework.
  void TeardownFramework(const std::string& framework_id,
                         const CommandContext& context, Done done);
  // MARK_AGENT_GONE: every live task of the agent becomes
  // TASK_GONE_BY_OPERATOR (REASON_AGENT_REMOVED_BY_OPERATOR) for
  // PARTITION_AWARE frameworks, TASK_LOST (REASON_AGENT_REMOVED) for the
  // others, then AgentRemoved{by_operator}; the agent's stream ends with
  // ERROR 403 and it may never come back. 200 also when it is already gone;
  // 404 for an unknown agent; 503 while another MARK_AGENT_GONE of it is in
  // flight.
  void MarkAgentGone(const std::string& agent_id, const CommandContext& context,
                     Done done);
  // DRAIN_AGENT: AgentDrainStarted (no more offers), then a kill of every
  // live task (TaskKillRequested + KILL to the agent, the kill policy's
  // grace period capped at config.max_grace_period; a task never sent to
  // the agent is ended by the master). Once no live task is left (checked
  // at every Tick) the agent is DRAINED, and with config.mark_gone marked
  // gone. 400 for an unknown or removed agent; 409 while it is being marked
  // gone; 200 without a change for an agent already DRAINED.
  void DrainAgent(const std::string& agent_id, const v1::DrainConfig& config,
                  const CommandContext& context, Done done);
  // DEACTIVATE_AGENT: no more offers for the agent (outstanding ones are
  // rescinded). 400 for an unknown or removed agent; 200 without a change
  // when it is already deactivated.
  void DeactivateAgent(const std::string& agent_id,
                       const CommandContext& context, Done done);
  // REACTIVATE_AGENT: undoes deactivation and draining. 400 when the agent
  // is unknown, not deactivated, or still DRAINING.
  void ReactivateAgent(const std::string& agent_id,
                       const CommandContext& context, Done done);
  // UPDATE_WEIGHTS: 400 for an invalid role (or "*") or a weight that is
  // not finite and > 0, naming update_weights.weight_infos[i].*.
  void UpdateWeights(
      const google::protobuf::RepeatedPtrField<v1::WeightInfo>& weights,
      const CommandContext& context, Done done);
  // UPDATE_QUOTA, all or nothing. 400 (naming
  // update_quota.quota_configs[i].*) for a missing, invalid, nested or
  // repeated role, a quantity that is negative, not finite or too large
  // (Mesos's limits), a guarantee above its limit; and, unless `force`, a
  // limit below what the role consumes now or guarantees beyond the
  // cluster's capacity.
  void UpdateQuota(
      const google::protobuf::RepeatedPtrField<v1::QuotaConfig>& configs,
      bool force, const CommandContext& context, Done done);
  // RESERVE_RESOURCES / UNRESERVE_RESOURCES on an active agent: every
  // resource must end in a DYNAMIC reservation (the one added or removed).
  // Outstanding offers on the agent are rescinded as far as needed. 202
  // once committed; 400 for an unknown agent or invalid resources (naming
  // reserve_resources.* / unreserve_resources.*); 409 when the agent does
  // not have them available (e.g. used by tasks).
  void ReserveResources(
      const std::string& agent_id,
      const google::protobuf::RepeatedPtrField<v1::Resource>& source,
      const google::protobuf::RepeatedPtrField<v1::Resource>& resources,
      const CommandContext& context, Done done);
  void UnreserveResources(
      const std::string& agent_id,
      const google::protobuf::RepeatedPtrField<v1::Resource>& resources,
      const CommandContext& context, Done done);

  // What GET_MASTER reports: this master's info and when it began leading.
  const v1::MasterInfo& master_info() const { return options_.master_info; }
  absl::Time elected_time() const { return elected_time_; }

 private:
  struct AgentConn {
    std::string stream_id;  // "" when no stream is open
    std::shared_ptr<AgentStream> stream;
    absl::Time deadline = absl::InfiniteFuture();  // marked unreachable after
    absl::Time last_heartbeat = absl::InfinitePast();
    absl::Time last_reconcile = absl::InfinitePast();
  };
  struct FrameworkConn {
    std::string stream_id;
    std::shared_ptr<FrameworkStream> stream;
    absl::Time last_heartbeat = absl::InfinitePast();
  };
  // An agent's UPDATE waiting for its task's previous one.
  struct QueuedUpdate {
    std::string agent_id;
    v1::AgentCall::Update update;
    CommandContext context;
  };
  // The framework's copy of a task's head unacknowledged update.
  struct Delivery {
    std::string uuid;
    absl::Time sent = absl::InfinitePast();
  };

  // One request through the command path.
  struct Request {
    CommandContext context;
    CommandPath::Decide decide;
    // After the events are committed and applied (leader alive). Answers
    // `done` itself (it may be null). Unset: `done` gets 202.
    std::function<void(Done)> on_commit;
    // The answer; gets 503 if the leader is gone, or the mapped error.
    Done done;
    // On an error (leader alive), before `done` gets it.
    std::function<void(const absl::Status&)> on_failure;
    // The field named in error answers.
    std::string error_field;
  };

  absl::Time Now() const { return clock_(); }
  std::string NewId(absl::string_view kind);
  std::string NewUuid();
  std::string NewStreamId();
  const MasterState& view() const { return commands_->view(); }
  bool leading() const { return commands_->leading(); }
  // Submits; after the commit, pumps the touched tasks' updates to their
  // schedulers, rescinds offers that vanished, then runs on_commit.
  void Submit(Request request);

  // Submits one operator event; `done` gets 200 once it is committed.
  void SubmitOperatorEvent(v1::Event e, const CommandContext& context,
                           Done done, const std::string& error_field);
  // Writes the task ends a request cut by the previous leader's end left
  // out (see leader.cc).
  void RepairCutRequests();

  // Agents.
  void SubscribeNewAgent(const v1::AgentCall& call,
                         const CommandContext& context,
                         std::shared_ptr<AgentStream> stream, Done done);
  void SubscribeKnownAgent(const v1::AgentCall& call,
                           const CommandContext& context,
                           std::shared_ptr<AgentStream> stream, Done done);
  // Opens the agent's stream (ending any older one) and sends SUBSCRIBED,
  // then `kills`, `shutdowns`, LAUNCH for undispatched tasks, RECONCILE.
  void OpenAgentStream(const std::string& agent_id,
                       std::shared_ptr<AgentStream> stream,
                       const std::vector<TaskKey>& kills,
                       const std::set<std::string>& shutdowns, Done done);
  void EndAgentStream(const std::string& agent_id, int code,
                      const std::string& message);
  void SendToAgent(const std::string& agent_id, const v1::AgentEvent& event);
  void SendLaunch(const TaskKey& key);
  void SendKill(const std::string& agent_id, const TaskKey& key);
  void SendReconcile(const std::string& agent_id);
  void HandleUpdate(QueuedUpdate queued);
  void ProcessUpdate(const TaskKey& key);
  void FinishUpdate(const TaskKey& key);
  void MarkUnreachable(const std::string& agent_id);
  v1::Event MasterStatus(const v1::TaskRecord& task, v1::TaskState state,
                         v1::TaskStatus::Reason reason,
                         const std::string& message);
  // TASK_LOST / TASK_GONE / TASK_DROPPED for a task missing on its agent.
  v1::TaskState MissingState(const MasterState& state,
                             const v1::TaskRecord& task) const;
  bool PartitionAware(const MasterState& state,
                      const std::string& framework_id) const;

  // Stream limits (LeaderOptions::max_*_streams): the 503 for a SUBSCRIBE
  // of `id` (a framework or agent id, "" for a new one), or nullopt when
  // it may open a stream.
  std::optional<Answer> FrameworkStreamLimit(const std::string& id) const;
  std::optional<Answer> AgentStreamLimit(const std::string& id) const;

  // Frameworks.
  void HandleAccept(const std::string& framework_id,
                    const v1::scheduler::Call& call,
                    const CommandContext& context, Done done);
  void HandleDecline(const std::string& framework_id,
                     const v1::scheduler::Call& call,
                     const CommandContext& context, Done done);
  void HandleKill(const std::string& framework_id,
                  const v1::scheduler::Call& call,
                  const CommandContext& context, Done done);
  void HandleAcknowledge(const std::string& framework_id,
                         const v1::scheduler::Call& call,
                         const CommandContext& context, Done done);
  void HandleReconcile(const std::string& framework_id,
                       const v1::scheduler::Call& call, Done done);
  // SHUTDOWN and MESSAGE: best effort, as in Mesos. 400 naming the missing
  // field (or `message.data` when too large); otherwise 202, and the event
  // (SHUTDOWN_EXECUTOR / FRAMEWORK_MESSAGE) goes to the agent's stream if
  // the agent is ACTIVE with a stream to this leader, else it is dropped.
  void HandleShutdown(const std::string& framework_id,
                      const v1::scheduler::Call& call, Done done);
  void HandleMessage(const std::string& framework_id,
                     const v1::scheduler::Call& call, Done done);
  // FAILURE {agent_id} to every framework with a stream: the agent was
  // marked unreachable or removed (Mesos's "lost slave").
  void SendAgentLost(const std::string& agent_id);
  // Kills the framework's live tasks (TASK_KILLED from the master), removes
  // it, and sends SHUTDOWN_FRAMEWORK to its agents once committed.
  void RemoveFramework(const std::string& framework_id,
                       const std::string& reason,
                       const CommandContext& context, Done done);
  void SendToFramework(const std::string& framework_id,
                       const v1::scheduler::Event& event);
  // Sends a status to the scheduler without recording it (TASK_ERROR for
  // an invalid launch, reconciliation answers).
  void SendTransientUpdate(const std::string& framework_id,
                           const v1::TaskStatus& status);
  // Delivers the head unacknowledged update of each of the framework's
  // tasks not yet delivered (or delivered before `resend_before`).
  void PumpUpdates(const std::string& framework_id, absl::Time resend_before);
  void PumpTask(const TaskKey& key, absl::Time resend_before);
  // RESCIND for offers sent to schedulers that the committed state no
  // longer holds (expired, agent gone, ...).
  void RescindVanishedOffers();

  // Allocation.
  void MaybeAllocate(absl::Time now);
  void ExpireOffers(absl::Time now);

  const LeaderOptions options_;
  CommandPath* const commands_;
  const MasterState* const committed_;
  const std::function<absl::Time()> clock_;
  std::mt19937_64 random_;
  std::string id_prefix_;
  uint64_t next_id_ = 0;
  // Bumped by the destructor path so callbacks of a destroyed Leader never
  // run: every callback holds a weak reference to this token.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  Allocator allocator_;
  LeaderMetrics metrics_;

  std::map<std::string, AgentConn> agents_;  // by agent id (ACTIVE in log)
  std::map<std::string, std::string> agent_by_stream_;
  // Agents (by id, or "host:port" for new ones) with a SUBSCRIBE in flight.
  std::set<std::string> agent_subscribing_;
  std::set<TaskKey> dispatched_;
  // Per task: the agent UPDATE in flight, and those waiting behind it.
  std::map<TaskKey, std::deque<QueuedUpdate>> updates_;

  std::map<std::string, FrameworkConn> frameworks_;  // by framework id
  std::map<std::string, std::string> framework_by_stream_;
  std::set<std::string> framework_subscribing_;
  std::map<TaskKey, Delivery> delivered_;
  std::map<std::string, std::string> sent_offers_;  // offer id -> framework
  std::set<std::string> removing_frameworks_;

  bool allocation_pending_ = true;
  bool allocating_ = false;
  uint64_t allocation_cycle_ = 0;
  absl::Time last_allocation_ = absl::InfinitePast();
  bool expiring_ = false;
  bool checking_liveness_ = false;

  // ---- Operator API -------------------------------------------------------

  // Reserve (true) or unreserve with the shared validation.
  void ChangeReservation(
      bool reserve, const std::string& agent_id,
      const google::protobuf::RepeatedPtrField<v1::Resource>& resources,
      const CommandContext& context, Done done);
  // AgentDrained for every DRAINING agent without live tasks (then
  // MarkAgentGone when its drain config says so). Called by Tick().
  void CheckDrainingAgents();

  const absl::Time elected_time_ = clock_();
  // Agents with a MARK_AGENT_GONE (or a drain's mark_gone) in flight.
  std::set<std::string> marking_gone_;
  // Agents with an AgentDrained in flight.
  std::set<std::string> finishing_drain_;
};

}  // namespace cairn::master

#endif  // CAIRN_MASTER_LEADER_H_
