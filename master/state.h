// MasterState: the master's state as a fold over its events.
//
// The replicated log holds the master's history as cairn.v1.Event records
// (proto/cairn/v1/master.proto). MasterState::Apply folds one event into the
// state. Apply is pure and deterministic: no clock (time comes in the event
// envelope), no I/O, no randomness, no iteration over unordered containers.
// The same code runs on the leader, on warm standbys, in recovery (snapshot +
// tail) and in point-in-time queries, so two masters that applied the same
// events hold equal states.
//
// Apply either applies the whole event or rejects it and changes nothing:
// every handler validates first and mutates only after validation passed.
//  - kInvalidArgument: the event is malformed (missing ids, bad resources).
//  - kFailedPrecondition: the event contradicts the state (unknown task,
//    resources not available, wrong lifecycle state, replayed position).
//
// Some events have implicit consequences, documented on the event message:
// an agent going away or changing (unreachable, removed, deactivated,
// draining, reregistered, resources updated) or a framework going away
// (disconnected, deactivated, removed, leaving a role) drops the affected
// outstanding offers. The leader rescinds those offers from the schedulers;
// OffersOnAgent() and OffersOfFramework() tell it which they are before it
// applies the event.
//
// Thread safety: none; one thread owns a MasterState. Copyable (a copy is an
// independent state, e.g. the leader's speculative view).
//
// Invariants (CheckInvariants()):
//  - per agent, used + offered <= total, for every resource group, where
//    used is the sum of its non-terminal tasks' resources and offered the
//    sum of its outstanding offers' resources (allocation info ignored);
//  - every task's agent and framework exist (possibly as a tombstone:
//    REMOVED agent, COMPLETED framework only when the task is terminal);
//  - every outstanding offer is for an offerable agent (ACTIVE, not
//    deactivated, not draining) and a CONNECTED framework;
//  - the cached indices (per-agent/per-framework tasks and offers, used and
//    offered resources) equal what the records imply;
//  - a DISCONNECTED framework has a failover deadline, others do not;
//  - only a non-terminal task has a kill request.

#ifndef CAIRN_MASTER_STATE_H_
#define CAIRN_MASTER_STATE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cairn/v1/master.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "common/task_state.h"
#include "master/resources.h"

namespace cairn::master {

// Tasks are identified by (framework id, task id): task ids are chosen by
// frameworks and unique only within one.
using TaskKey = std::pair<std::string, std::string>;

class MasterState {
 public:
  // How many recent status updates a task keeps in task().statuses().
  static constexpr int kMaxStatusHistory = 8;
  // How many ended, fully acknowledged tasks a framework keeps.
  static constexpr int kMaxCompletedTasksPerFramework = 100;

  MasterState() = default;

  // Folds one event into the state. Returns OK, or kInvalidArgument /
  // kFailedPrecondition (see the file comment) with the state unchanged.
  // An event with position > 0 must come after the last applied one
  // ((position, index) strictly increasing), else kFailedPrecondition.
  absl::Status Apply(const v1::Event& event);
  // The same fold, for an event the caller is done with (replay): what
  // Apply(const Event&) would copy into the state is moved out of `event`
  // instead. The state and the result are the same as Apply(event)'s. On OK,
  // `event` is left valid but unspecified; on error it is unchanged.
  absl::Status Apply(v1::Event&& event);

  // The whole state, canonical (sorted) so equal states give equal bytes.
  v1::MasterSnapshot ToSnapshot() const;
  // Rebuilds a state (and its indices) from a snapshot. Returns
  // kInvalidArgument or kDataLoss for a snapshot that is malformed or breaks
  // an invariant.
  static absl::StatusOr<MasterState> FromSnapshot(
      const v1::MasterSnapshot& snapshot);
  // Deterministic serialization of ToSnapshot().
  std::string SerializeCanonical() const;

  // Equal iff the canonical serializations are equal.
  friend bool operator==(const MasterState& a, const MasterState& b);
  friend bool operator!=(const MasterState& a, const MasterState& b) {
    return !(a == b);
  }

  // Returns OK, or kInternal describing the first broken invariant.
  absl::Status CheckInvariants() const;

  // ---- Queries ----------------------------------------------------------

  // The last applied event with position > 0 (0:0 if none).
  const v1::EventId& last_applied() const { return last_applied_; }
  uint64_t events_applied() const { return events_applied_; }

  // nullptr when unknown. Removed agents and completed frameworks are kept.
  const v1::AgentRecord* FindAgent(const std::string& agent_id) const;
  const v1::FrameworkRecord* FindFramework(
      const std::string& framework_id) const;
  // Live tasks only (including ended ones still awaiting acknowledgements).
  const v1::TaskRecord* FindTask(const std::string& framework_id,
                                 const std::string& task_id) const;
  const v1::OfferRecord* FindOffer(const std::string& offer_id) const;

  std::vector<std::string> AgentIds() const;
  std::vector<std::string> FrameworkIds() const;
  std::vector<TaskKey> TasksOnAgent(const std::string& agent_id) const;
  std::vector<TaskKey> TasksOfFramework(const std::string& framework_id) const;
  std::vector<std::string> OffersOnAgent(const std::string& agent_id) const;
  std::vector<std::string> OffersOfFramework(
      const std::string& framework_id) const;
  size_t task_count() const { return tasks_.size(); }
  size_t offer_count() const { return offers_.size(); }

  // Resources of an agent; kNotFound for an unknown agent.
  absl::StatusOr<Resources> TotalResources(const std::string& agent_id) const;
  absl::StatusOr<Resources> UsedResources(const std::string& agent_id) const;
  absl::StatusOr<Resources> OfferedResources(const std::string& agent_id) const;
  // Whether executor `executor_id` of `framework_id` runs live tasks on
  // `agent_id` (its own resources are then already in use there).
  bool ExecutorHasLiveTasks(const std::string& agent_id,
                            const std::string& framework_id,
                            const std::string& executor_id) const;
  // total - used - offered.
  absl::StatusOr<Resources> AvailableResources(
      const std::string& agent_id) const;
  // The part of total carrying a reservation.
  absl::StatusOr<Resources> ReservedResources(
      const std::string& agent_id) const;

  // True iff new offers may be made for the agent.
  bool IsAgentOfferable(const std::string& agent_id) const;
  // Disconnected frameworks whose failover deadline is <= now, sorted.
  std::vector<std::string> FrameworksPastFailoverDeadline(absl::Time now) const;

  const std::map<std::string, double>& weights() const { return weights_; }
  const std::map<std::string, v1::QuotaConfig>& quotas() const {
    return quotas_;
  }
  const v1::MaintenanceSchedule& maintenance_schedule() const {
    return maintenance_schedule_;
  }

 private:
  // The order of std::less<TaskKey>, with one comparison per component
  // (std::pair's operator< compares the first strings twice when equal).
  struct TaskKeyLess {
    bool operator()(const TaskKey& a, const TaskKey& b) const {
      const int c = a.first.compare(b.first);
      return c != 0 ? c < 0 : a.second < b.second;
    }
  };
  using TaskKeySet = std::set<TaskKey, TaskKeyLess>;

  // An executor with live tasks on an agent: its own resources are used
  // once, however many of its tasks run (as the agent counts them).
  struct ExecutorUse {
    Resources resources;  // allocation info stripped
    int live_tasks = 0;
  };
  struct AgentEntry {
    v1::AgentRecord record;
    Resources total;
    // Non-terminal tasks' own resources plus, once each, the resources of
    // the executors they run in; allocation info stripped.
    Resources used;
    // By (framework id, executor id): executors with live tasks here.
    std::map<std::pair<std::string, std::string>, ExecutorUse> executors;
    Resources offered;  // outstanding offers, allocation info stripped
    TaskKeySet tasks;
    std::set<std::string> offers;
  };
  struct FrameworkEntry {
    v1::FrameworkRecord record;
    std::set<std::string> tasks;  // task ids of live tasks
    std::set<std::string> offers;
  };
  struct TaskEntry {
    v1::TaskRecord record;
    // The task's own resources, allocation info stripped (its executor's
    // are in AgentEntry::executors).
    Resources resources;
  };

  // Counts live task `t` (its info recorded) as using its resources on `a`,
  // and its executor's when it is the executor's first live task there;
  // FreeTask undoes it.
  static void UseTask(const TaskEntry& t, AgentEntry* a);
  static void FreeTask(const TaskEntry& t, AgentEntry* a);
  struct OfferEntry {
    v1::OfferRecord record;
    Resources resources;  // allocation info stripped
  };

  // Apply(event); `owned` is nullptr, or `&event` when its parts may be
  // moved into the state.
  absl::Status ApplyEvent(const v1::Event& event, v1::Event* owned);

  // One handler per event type: validate, then mutate. Those taking `owned`
  // move from it (when not nullptr, it is `&e`) instead of copying from `e`.
  absl::Status ApplyAgentRegistered(const v1::Event& e);
  absl::Status ApplyAgentReregistered(const v1::Event& e);
  absl::Status ApplyAgentUnreachable(const v1::Event& e);
  absl::Status ApplyAgentRemoved(const v1::Event& e);
  absl::Status ApplyAgentDeactivated(const v1::Event& e);
  absl::Status ApplyAgentReactivated(const v1::Event& e);
  absl::Status ApplyAgentDrainStarted(const v1::Event& e);
  absl::Status ApplyAgentDrained(const v1::Event& e);
  absl::Status ApplyAgentResourcesUpdated(const v1::Event& e);
  absl::Status ApplyFrameworkSubscribed(const v1::Event& e);
  absl::Status ApplyFrameworkFailedOver(const v1::Event& e);
  absl::Status ApplyFrameworkDisconnected(const v1::Event& e);
  absl::Status ApplyFrameworkDeactivated(const v1::Event& e);
  absl::Status ApplyFrameworkUpdated(const v1::Event& e);
  absl::Status ApplyFrameworkRemoved(const v1::Event& e);
  absl::Status ApplyTasksLaunched(const v1::Event& e, v1::Event* owned);
  absl::Status ApplyTaskStatusUpdated(const v1::Event& e, v1::Event* owned);
  absl::Status ApplyTaskStatusAcknowledged(const v1::Event& e);
  absl::Status ApplyTaskKillRequested(const v1::Event& e);
  absl::Status ApplyExecutorExited(const v1::Event& e);
  absl::Status ApplyOffersCreated(const v1::Event& e, v1::Event* owned);
  absl::Status ApplyOffersRemoved(
      const google::protobuf::RepeatedPtrField<v1::OfferID>& ids,
      const v1::FrameworkID* framework_id);
  absl::Status ApplyWeightsUpdated(const v1::Event& e);
  absl::Status ApplyQuotaUpdated(const v1::Event& e);
  absl::Status ApplyReservation(const v1::Event& e, bool reserve);
  absl::Status ApplyMaintenanceScheduleUpdated(const v1::Event& e);

  // Lookups for handlers: kInvalidArgument for an empty id,
  // kFailedPrecondition for an unknown one.
  absl::StatusOr<AgentEntry*> GetAgent(const v1::AgentID& id);
  absl::StatusOr<FrameworkEntry*> GetFramework(const v1::FrameworkID& id);

  // Checks that `offer_ids` are distinct outstanding offers on `agent_id`
  // (and of `framework_id` when non-empty); returns their total resources.
  absl::StatusOr<Resources> CheckOffersToConsume(
      const google::protobuf::RepeatedPtrField<v1::OfferID>& offer_ids,
      const std::string& agent_id, const std::string& framework_id) const;

  using TaskMap = std::map<TaskKey, TaskEntry, TaskKeyLess>;
  using OfferMap = std::map<std::string, OfferEntry>;

  // Mutations that cannot fail (callers validated).
  void RemoveOffer(const std::string& offer_id);
  // `agent` and `framework` are the offer's entries, or nullptr to look
  // them up.
  void RemoveOffer(OfferMap::iterator it, AgentEntry* agent,
                   FrameworkEntry* framework);
  void RemoveOffersOnAgent(const std::string& agent_id);
  void RemoveOffersOfFramework(const std::string& framework_id);
  // Moves an ended, fully acknowledged task to its framework's completed
  // tasks.
  void MaybeCompleteTask(const TaskKey& key);
  void MaybeCompleteTask(TaskMap::iterator it);
  bool IsOfferable(const AgentEntry& agent) const;

  // Records of completed tasks and removed offers, cleared, for the next
  // launches and offers to reuse: a cleared message keeps its
  // sub-messages, strings and repeated elements allocated, so filling it
  // again allocates little, and a removed record is not destroyed. Holds
  // at most kMaxRecords (a small task's record takes ~2.7 KB: ~3 MB when
  // full), enough for a burst of completions before the launches that
  // follow them. Not part of the state: a copy of a MasterState starts
  // with empty pools.
  template <typename Record>
  class RecordPool {
   public:
    RecordPool() = default;
    RecordPool(const RecordPool&) {}
    RecordPool& operator=(const RecordPool&) { return *this; }
    RecordPool(RecordPool&&) = default;
    RecordPool& operator=(RecordPool&&) = default;

    // Takes `record`'s content (leaving it empty) if the pool has room.
    void Put(Record* record) {
      if (records_.size() >= kMaxRecords) return;
      records_.emplace_back(std::move(*record));  // a swap
      records_.back().Clear();                    // keeps what it allocated
    }
    // Swaps a pooled (cleared) record into `record`, if any.
    // REQUIRES: `record` is empty.
    void Take(Record* record) {
      if (records_.empty()) return;
      *record = std::move(records_.back());  // a swap
      records_.pop_back();
    }

   private:
    static constexpr size_t kMaxRecords = 1024;
    std::vector<Record> records_;
  };

  v1::EventId last_applied_;
  uint64_t events_applied_ = 0;
  std::map<std::string, AgentEntry> agents_;
  std::map<std::string, FrameworkEntry> frameworks_;
  TaskMap tasks_;
  OfferMap offers_;
  std::map<std::string, double> weights_;
  std::map<std::string, v1::QuotaConfig> quotas_;
  v1::MaintenanceSchedule maintenance_schedule_;
  RecordPool<v1::TaskRecord> task_record_pool_;
  RecordPool<v1::OfferRecord> offer_record_pool_;
};

// True for states a task never leaves (Mesos's terminal states).
using ::cairn::IsTerminalState;  // common/task_state.h

// "position:index".
std::string EventIdToString(const v1::EventId& id);

// Conversions between the envelope's TimeInfo and absl::Time.
absl::Time ToTime(const v1::TimeInfo& time);
v1::TimeInfo FromTime(absl::Time time);

}  // namespace cairn::master

#endif  // CAIRN_MASTER_STATE_H_
