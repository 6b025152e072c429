#include "master/master_metrics.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace cairn::master {

namespace {

using monitoring::Counter;
using monitoring::Gauge;

// Live (non-terminal) task states with a Mesos gauge.
constexpr v1::TaskState kLiveStates[] = {
    v1::TASK_STAGING, v1::TASK_STARTING,    v1::TASK_RUNNING,
    v1::TASK_KILLING, v1::TASK_UNREACHABLE,
};

// Terminal task states with a Mesos counter.
constexpr v1::TaskState kTerminalStates[] = {
    v1::TASK_FINISHED, v1::TASK_FAILED,
    v1::TASK_KILLED,   v1::TASK_LOST,
    v1::TASK_ERROR,    v1::TASK_DROPPED,
    v1::TASK_GONE,     v1::TASK_GONE_BY_OPERATOR,
};

// TASK_RUNNING -> "master/tasks_running".
std::string TaskStateKey(v1::TaskState state) {
  std::string name = v1::TaskState_Name(state);
  if (name.rfind("TASK_", 0) == 0) name = name.substr(5);
  return absl::StrCat("master/tasks_", absl::AsciiStrToLower(name));
}

// Mesos message names counted as master/messages_<name>.
constexpr const char* kMessageNames[] = {
    "register_slave",
    "reregister_slave",
    "unregister_slave",
    "status_update",
    "update_slave",
    "exited_executor",
    "register_framework",
    "reregister_framework",
    "unregister_framework",
    "launch_tasks",
    "decline_offers",
    "revive_offers",
    "suppress_offers",
    "kill_task",
    "status_update_acknowledgement",
    "operation_status_update_acknowledgement",
    "reconcile_tasks",
    "reconcile_operations",
    "framework_to_executor",
    "resource_request",
};

// The Mesos message an agent call corresponds to; nullptr if none.
const char* AgentMessageName(const v1::AgentCall& call) {
  switch (call.type()) {
    case v1::AgentCall::SUBSCRIBE:
      return call.subscribe().agent_info().has_id() ? "reregister_slave"
                                                    : "register_slave";
    case v1::AgentCall::UPDATE:
      return "status_update";
    case v1::AgentCall::UPDATE_RESOURCES:
      return "update_slave";
    case v1::AgentCall::EXITED_EXECUTOR:
      return "exited_executor";
    case v1::AgentCall::UNSUBSCRIBE:
      return "unregister_slave";
    default:
      return nullptr;  // HEARTBEAT: Mesos's PONGs are not counted
  }
}

const char* SchedulerMessageName(const v1::scheduler::Call& call) {
  using Call = v1::scheduler::Call;
  switch (call.type()) {
    case Call::SUBSCRIBE:
      return call.subscribe().framework_info().has_id() ? "reregister_framework"
                                                        : "register_framework";
    case Call::TEARDOWN:
      return "unregister_framework";
    case Call::ACCEPT:
      return "launch_tasks";
    case Call::DECLINE:
      return "decline_offers";
    case Call::REVIVE:
      return "revive_offers";
    case Call::SUPPRESS:
      return "suppress_offers";
    case Call::KILL:
      return "kill_task";
    case Call::ACKNOWLEDGE:
      return "status_update_acknowledgement";
    case Call::ACKNOWLEDGE_OPERATION_STATUS:
      return "operation_status_update_acknowledgement";
    case Call::RECONCILE:
      return "reconcile_tasks";
    case Call::RECONCILE_OPERATIONS:
      return "reconcile_operations";
    case Call::MESSAGE:
      return "framework_to_executor";
    case Call::REQUEST:
      return "resource_request";
    default:
      return nullptr;
  }
}

// Adds `current - baseline` (each a running count of one term) to `c`.
void AddDelta(Counter* c, uint64_t current, uint64_t baseline) {
  if (current > baseline) c->Increment(current - baseline);
}

}  // namespace

MasterMetrics::MasterMetrics(monitoring::Registry* registry, Sources sources)
    : registry_(registry), sources_(std::move(sources)) {
  monitoring::Registry& r = *registry_;

  // ---- read at scrape time ----
  r.AddGaugeCallback("master/elected",
                     "Whether this is the elected (leading) master: 1 or 0.",
                     [elected = sources_.elected] {
                       return elected && elected() ? 1.0 : 0.0;
                     });
  r.AddGaugeCallback("master/uptime_secs", "Uptime of this master in seconds.",
                     [start = sources_.start_time] {
                       return absl::ToDoubleSeconds(absl::Now() - start);
                     });
  r.AddGaugeCallback(
      "master/event_queue_messages",
      "Work items waiting in the master thread's queue (API calls, log "
      "completions, folds, ticks).",
      [queue = sources_.event_queue_length] {
        return queue ? static_cast<double>(queue()) : 0.0;
      });

  // ---- folded state ----
  slaves_active_ = r.AddGauge("master/slaves_active",
                              "Registered agents that may get offers.");
  slaves_inactive_ =
      r.AddGauge("master/slaves_inactive",
                 "Registered agents deactivated (maintenance or draining).");
  slaves_connected_ = r.AddGauge(
      "master/slaves_connected",
      "Registered agents with an open stream to this (leading) master.");
  slaves_disconnected_ = r.AddGauge(
      "master/slaves_disconnected",
      "Registered agents without a stream to this (leading) master.");
  slaves_unreachable_ =
      r.AddGauge("master/slaves_unreachable", "Agents marked unreachable.");
  frameworks_active_ = r.AddGauge("master/frameworks_active",
                                  "Connected frameworks that get offers.");
  frameworks_inactive_ =
      r.AddGauge("master/frameworks_inactive",
                 "Frameworks deactivated or disconnected (not yet removed).");
  frameworks_connected_ = r.AddGauge("master/frameworks_connected",
                                     "Frameworks with a scheduler connected.");
  frameworks_disconnected_ =
      r.AddGauge("master/frameworks_disconnected",
                 "Frameworks whose scheduler is gone, within their "
                 "failover_timeout.");
  outstanding_offers_ = r.AddGauge("master/outstanding_offers",
                                   "Resource offers not yet answered.");
  for (v1::TaskState state : kLiveStates) {
    task_gauges_[state] = r.AddGauge(
        TaskStateKey(state),
        absl::StrCat("Tasks currently in ", v1::TaskState_Name(state), "."));
  }

  // ---- folded events ----
  for (v1::TaskState state : kTerminalStates) {
    terminal_counters_[state] = r.AddCounter(
        TaskStateKey(state),
        absl::StrCat("Tasks that ended in ", v1::TaskState_Name(state),
                     " (folded by this master process)."));
  }
  slave_registrations_ =
      r.AddCounter("master/slave_registrations", "Agents registered.");
  slave_reregistrations_ =
      r.AddCounter("master/slave_reregistrations", "Agents reregistered.");
  slave_removals_ = r.AddCounter("master/slave_removals", "Agents removed.");

  // ---- API calls ----
  for (const char* name : kMessageNames) {
    messages_[name] = r.AddCounter(
        absl::StrCat("master/messages_", name),
        absl::StrCat("API calls received that correspond to Mesos's ", name,
                     " message."));
  }

  // ---- the leader's counters ----
  valid_status_updates_ = r.AddCounter(
      "master/valid_status_updates",
      "Status updates from agents for tasks the log still holds as live.");
  invalid_status_updates_ = r.AddCounter(
      "master/invalid_status_updates",
      "Status updates from agents for unknown, ended or moved tasks, or of "
      "removed frameworks.");
  duplicate_status_updates_ = r.AddCounter(
      "master/duplicate_status_updates",
      "Status updates already recorded, acknowledged again without an event.");
  allocation_runs_ = r.AddCounter("allocator/mesos/allocation_runs",
                                  "Runs of the allocation algorithm.");
  slave_unreachable_completed_ =
      r.AddCounter("master/slave_unreachable_completed",
                   "Agents marked unreachable after failing health checks.");
  offers_sent_ =
      r.AddCounter("master/offers_sent", "Offers sent to schedulers.");
  offers_rescinded_ =
      r.AddCounter("master/offers_rescinded", "Offers rescinded.");
  frameworks_removed_ =
      r.AddCounter("master/frameworks_removed",
                   "Frameworks removed (teardown or failover timeout).");
  status_updates_sent_ =
      r.AddCounter("master/status_updates_sent",
                   "UPDATE events sent to schedulers (resends included).");
  offer_filters_active_ = r.AddGauge(
      "allocator/mesos/offer_filters/active",
      "Active decline filters of the leader's allocator (0 on a standby).");
  offers_filtered_ =
      r.AddCounter("allocator/mesos/offer_filters/offers_filtered",
                   "Offer candidates skipped because of a decline filter.");
  offer_filters_added_ = r.AddCounter("allocator/mesos/offer_filters/added",
                                      "Decline filters added.");
  offer_filters_expired_ = r.AddCounter("allocator/mesos/offer_filters/expired",
                                        "Decline filters expired.");
  candidates_suppressed_ = r.AddCounter(
      "allocator/mesos/candidates_suppressed",
      "Offer candidates skipped because the framework suppressed the role.");

  // ---- timers ----
  state_store_ = r.AddTimer(
      "registrar/state_store_ms",
      "Latency of appending master events to the replicated log, from the "
      "append to its commit (Mesos: registry store).");
  allocation_run_ = r.AddTimer("allocator/mesos/allocation_run_ms",
                               "Running time of one allocation run.");

  // ---- the log replica ----
  log_recovered_ = r.AddGauge(
      "registrar/log/recovered",
      "Whether this master's log replica is a full (voting) member: 1 or 0.");
  log_ensemble_size_ = r.AddGauge("registrar/log/ensemble_size",
                                  "Masters (log replicas) in the ensemble.");
  log_position_applied_ =
      r.AddGauge("log/position_applied",
                 "The log position through which this master folded events.");
  log_begin_ = r.AddGauge("log/begin",
                          "The first position the log replica still holds.");
  log_learned_through_ = r.AddGauge(
      "log/learned_through", "Every position up to this one is learned here.");
  log_leader_ = r.AddGauge(
      "log/leader", "Whether this master's replica leads the log: 1 or 0.");
  log_serving_ = r.AddGauge(
      "log/serving",
      "Whether this replica leads with a valid lease (accepts appends).");
  log_appends_ok_ = r.AddCounter("log/appends_ok", "Appends committed.");
  log_appends_failed_ = r.AddCounter("log/appends_failed", "Appends failed.");
  log_elections_won_ =
      r.AddCounter("log/elections_won", "Elections this replica won.");
  log_messages_dropped_ = r.AddCounter("log/messages_dropped",
                                       "Peer messages dropped (mailbox full).");
  log_in_flight_ = r.AddGauge(
      "log/entries_in_flight",
      "Log positions being proposed (phase 2) by this replica, when leading.");
  log_queued_ = r.AddGauge("log/appends_queued",
                           "Appends waiting for a log position, when leading.");
  log_bytes_on_disk_ = r.AddGauge("log/bytes_on_disk",
                                  "Size of this replica's LevelDB store.");
  log_status_ = r.AddGauge(
      "log/recovery_state",
      "This replica's state: 1 voting, 2 empty, 3 recovering, 4 starting.");
  log_batch_size_ = r.AddGauge(
      "log/batch_size",
      "Appends per log position committed since the previous scrape (how "
      "many master events share an entry).");
  log_catchup_fetches_ = r.AddCounter(
      "log/catchup_fetches", "Fetches sent to peers to catch up or recover.");
  log_fetches_served_ =
      r.AddCounter("log/fetches_served", "Peers' fetches answered.");
  log_synced_writes_ =
      r.AddCounter("log/synced_writes", "fsynced writes to the store.");
  r.AddScrapeHook([this] { RefreshLog(); });
}

void MasterMetrics::RefreshLog() {
  log_ensemble_size_->Set(static_cast<double>(sources_.ensemble_size));
  if (sources_.applied) {
    log_position_applied_->Set(static_cast<double>(sources_.applied()));
  }
  if (!sources_.log_status) return;
  const log::LogServerStatus status = sources_.log_status();
  log_recovered_->Set(status.status == v1::Metadata::VOTING ? 1 : 0);
  log_begin_->Set(static_cast<double>(status.begin));
  log_learned_through_->Set(static_cast<double>(status.learned_through));
  log_leader_->Set(
      status.leader.has_value() && *status.leader == sources_.replica_id ? 1
                                                                         : 0);
  log_serving_->Set(status.serving ? 1 : 0);
  log_appends_ok_->AdvanceTo(status.counters.appends_ok);
  log_appends_failed_->AdvanceTo(status.counters.appends_failed);
  log_elections_won_->AdvanceTo(status.elections_won);
  log_messages_dropped_->AdvanceTo(status.counters.messages_dropped);
  log_in_flight_->Set(static_cast<double>(status.in_flight));
  log_queued_->Set(static_cast<double>(status.queued));
  log_bytes_on_disk_->Set(static_cast<double>(status.bytes_on_disk));
  log_status_->Set(static_cast<double>(status.status));
  log_catchup_fetches_->AdvanceTo(status.counters.fetches_sent);
  log_fetches_served_->AdvanceTo(status.counters.fetches_served);
  log_synced_writes_->AdvanceTo(status.counters.synced_writes);
  const uint64_t appends = status.counters.appends_ok;
  const uint64_t committed = status.committed;
  std::lock_guard<std::mutex> lock(batch_mu_);  // scrapes may overlap
  if (committed > batch_prev_committed_ && appends >= batch_prev_appends_) {
    log_batch_size_->Set(static_cast<double>(appends - batch_prev_appends_) /
                         static_cast<double>(committed - batch_prev_committed_));
  }
  batch_prev_appends_ = appends;
  batch_prev_committed_ = committed;
}

void MasterMetrics::OnEventApplied(const v1::Event& event) {
  if (counted_any_ && (event.position() < counted_position_ ||
                       (event.position() == counted_position_ &&
                        event.index() <= counted_index_))) {
    return;  // folded again after a rebuild
  }
  counted_any_ = true;
  counted_position_ = event.position();
  counted_index_ = event.index();
  switch (event.type_case()) {
    case v1::Event::kTaskStatusUpdated: {
      auto it =
          terminal_counters_.find(event.task_status_updated().status().state());
      // The fold rejects updates of ended tasks, so every terminal update
      // it applied is a transition.
      if (it != terminal_counters_.end()) it->second->Increment();
      break;
    }
    case v1::Event::kAgentRegistered:
      slave_registrations_->Increment();
      break;
    case v1::Event::kAgentReregistered:
      slave_reregistrations_->Increment();
      break;
    case v1::Event::kAgentRemoved:
      slave_removals_->Increment();
      break;
    default:
      break;
  }
}

void MasterMetrics::Publish(const MasterState& state, uint64_t applied,
                            const Leader* leader) {
  if (!published_once_ || applied != published_applied_) {
    published_once_ = true;
    published_applied_ = applied;
    int active = 0, inactive = 0, unreachable = 0;
    for (const std::string& id : state.AgentIds()) {
      const v1::AgentRecord* a = state.FindAgent(id);
      if (a == nullptr) continue;
      if (a->state() == v1::AgentRecord::ACTIVE) {
        ++(a->deactivated() ? inactive : active);
      } else if (a->state() == v1::AgentRecord::UNREACHABLE) {
        ++unreachable;
      }
    }
    slaves_active_->Set(active);
    slaves_inactive_->Set(inactive);
    slaves_unreachable_->Set(unreachable);
    int connected = 0, disconnected = 0, deactivated = 0;
    std::map<v1::TaskState, int> tasks;
    for (const std::string& id : state.FrameworkIds()) {
      const v1::FrameworkRecord* f = state.FindFramework(id);
      if (f == nullptr) continue;
      switch (f->state()) {
        case v1::FrameworkRecord::CONNECTED:
          ++connected;
          break;
        case v1::FrameworkRecord::DISCONNECTED:
          ++disconnected;
          break;
        case v1::FrameworkRecord::INACTIVE:
          ++deactivated;
          break;
        default:
          break;
      }
      for (const TaskKey& key : state.TasksOfFramework(id)) {
        const v1::TaskRecord* t = state.FindTask(key.first, key.second);
        if (t != nullptr) ++tasks[t->task().state()];
      }
    }
    // Mesos: a disconnected framework is also inactive; a deactivated one
    // is still connected.
    frameworks_active_->Set(connected);
    frameworks_inactive_->Set(deactivated + disconnected);
    frameworks_connected_->Set(connected + deactivated);
    frameworks_disconnected_->Set(disconnected);
    for (auto& [s, gauge] : task_gauges_) gauge->Set(tasks[s]);
    outstanding_offers_->Set(static_cast<double>(state.offer_count()));
  }
  const double registered = slaves_active_->value() + slaves_inactive_->value();
  if (leader != nullptr) {
    const double streams = static_cast<double>(leader->agent_streams());
    slaves_connected_->Set(std::min(streams, registered));
    slaves_disconnected_->Set(std::max(0.0, registered - streams));
    CopyLeaderCounters(leader->metrics(), leader->allocator().metrics());
    offer_filters_active_->Set(
        static_cast<double>(leader->allocator().filter_count()));
  } else {
    slaves_connected_->Set(0);
    slaves_disconnected_->Set(0);
    offer_filters_active_->Set(0);
  }
}

void MasterMetrics::OnLeaderEnding(const Leader& leader) {
  CopyLeaderCounters(leader.metrics(), leader.allocator().metrics());
  baseline_ = LeaderMetrics();
  allocator_baseline_ = AllocatorMetrics();
}

void MasterMetrics::CopyLeaderCounters(const LeaderMetrics& m,
                                       const AllocatorMetrics& a) {
  const AllocatorMetrics& ab = allocator_baseline_;
  AddDelta(offers_filtered_, a.offers_filtered, ab.offers_filtered);
  AddDelta(offer_filters_added_, a.filters_added, ab.filters_added);
  AddDelta(offer_filters_expired_, a.filters_expired, ab.filters_expired);
  AddDelta(candidates_suppressed_, a.candidates_suppressed,
           ab.candidates_suppressed);
  allocator_baseline_ = a;
  const LeaderMetrics& b = baseline_;
  const uint64_t valid =
      m.agent_updates - std::min(m.agent_updates, m.late_updates);
  const uint64_t valid_before =
      b.agent_updates - std::min(b.agent_updates, b.late_updates);
  AddDelta(valid_status_updates_, valid, valid_before);
  AddDelta(invalid_status_updates_, m.late_updates, b.late_updates);
  AddDelta(duplicate_status_updates_, m.duplicate_updates, b.duplicate_updates);
  AddDelta(allocation_runs_, m.allocation_cycles, b.allocation_cycles);
  AddDelta(slave_unreachable_completed_, m.agents_marked_unreachable,
           b.agents_marked_unreachable);
  AddDelta(offers_sent_, m.offers_sent, b.offers_sent);
  AddDelta(offers_rescinded_, m.offers_rescinded, b.offers_rescinded);
  AddDelta(frameworks_removed_, m.frameworks_removed, b.frameworks_removed);
  AddDelta(status_updates_sent_, m.updates_sent, b.updates_sent);
  baseline_ = m;
}

void MasterMetrics::OnAgentCall(const v1::AgentCall& call) {
  if (const char* name = AgentMessageName(call))
    messages_.at(name)->Increment();
}

void MasterMetrics::OnSchedulerCall(const v1::scheduler::Call& call) {
  if (const char* name = SchedulerMessageName(call)) {
    messages_.at(name)->Increment();
  }
}

void MasterMetrics::RecordAppend(absl::Duration latency) {
  state_store_->Record(latency);
}

void MasterMetrics::RecordAllocationRun(absl::Duration duration) {
  allocation_run_->Record(duration);
}

}  // namespace cairn::master
