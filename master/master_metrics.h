// MasterMetrics: the master's metrics in a monitoring::Registry, under the
// key names of Mesos's docs/monitoring.md where Mesos has one, served by
// the master as GET /metrics/snapshot and GET /metrics (docs/metrics.md).
//
// Families (see master_metrics.cc for the full list and each one's help):
//   master/elected, master/uptime_secs, master/event_queue_messages
//       read at scrape time from thread-safe sources (atomics, the queue's
//       mutex).
//   master/slaves_*, master/frameworks_*, master/tasks_{staging,starting,
//   running,killing,unreachable}, master/outstanding_offers
//       gauges of the folded MasterState, recomputed on the master thread
//       by Publish() when the state changed (the master calls it on every
//       tick, so they trail the fold by at most one tick). Every master
//       reports its own copy of the state — standbys too, unlike Mesos, whose
//       standbys report zeros: aggregate over masters with master/elected=1.
//       slaves_connected/disconnected are about agent streams, which only the
//       leader holds: both are 0 on a standby.
//   master/tasks_{finished,failed,killed,lost,error,dropped,gone,
//   gone_by_operator}, master/slave_registrations, _reregistrations,
//   _removals
//       counters of events folded by this master process, as Mesos counts
//       terminal transitions (since the process started, not persisted).
//       Each log position is counted once even when the master rebuilds
//       its state and folds it again.
//   master/messages_*
//       calls received on the agent and scheduler APIs, by the name of the
//       Mesos message they correspond to.
//   master/valid_status_updates, master/invalid_status_updates,
//   allocator/mesos/allocation_runs, master/slave_unreachable_completed,
//   master/offers_sent, ...
//       the Leader's counters (LeaderMetrics), accumulated across leadership
//       terms (a new Leader starts from zero; the counters here never go
//       back).
//   registrar/state_store_ms (timer)
//       the latency from LogAdapter::Append to the log's answer for master
//       events: Cairn's equivalent of Mesos's registry store.
//   allocator/mesos/allocation_run_ms (timer)
//       one allocation run of the leader's allocator.
//   allocator/mesos/offer_filters/active, allocator/mesos/offer_filters/*
//       the leader's decline filters (Cairn's names: Mesos counts active
//       filters per role instead), 0 on a standby.
//   registrar/log/recovered, registrar/log/ensemble_size, log/*
//       the embedded log replica, read once per scrape (a scrape hook).
//
// Thread safety: Publish, OnEventApplied and OnLeaderEnding are for the
// master thread only (they read MasterState and the Leader). OnAgentCall,
// OnSchedulerCall, RecordAppend and RecordAllocationRun may be called from
// any thread. Scrapes (the registry's) run on HTTP threads and read only
// atomics and the `Sources` callbacks, which must be thread-safe.

#ifndef CAIRN_MASTER_MASTER_METRICS_H_
#define CAIRN_MASTER_MASTER_METRICS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "absl/time/time.h"
#include "cairn/v1/agent.pb.h"
#include "cairn/v1/master.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "log/server.h"
#include "master/allocator.h"
#include "master/leader.h"
#include "master/state.h"
#include "monitoring/metrics.h"

namespace cairn::master {

class MasterMetrics {
 public:
  // Thread-safe readers used at scrape time (see the file comment).
  struct Sources {
    std::function<bool()> elected;
    std::function<size_t()> event_queue_length;
    std::function<log::LogServerStatus()> log_status;
    // The position through which the master folded the log.
    std::function<uint64_t()> applied;
    uint32_t replica_id = 0;   // this master's log replica
    size_t ensemble_size = 0;  // masters in --masters
    absl::Time start_time = absl::InfinitePast();
  };

  // Registers every metric in `registry`. REQUIRES: `registry` outlives
  // this object, and every `sources` reader stays callable while the
  // registry can be scraped.
  MasterMetrics(monitoring::Registry* registry, Sources sources);
  MasterMetrics(const MasterMetrics&) = delete;
  MasterMetrics& operator=(const MasterMetrics&) = delete;

  // ---- master thread --------------------------------------------------

  // A folded event (the master's applied observer): counts terminal task
  // transitions and agent (re)registrations and removals once per event id
  // (events at or below the highest id counted so far are skipped).
  void OnEventApplied(const v1::Event& event);
  // Recomputes the state gauges from `state` if it changed since the last
  // call (`applied` moved) or if `leader` is given (its streams and
  // counters change without events); copies the leader's counters.
  // `leader` is null on a standby.
  void Publish(const MasterState& state, uint64_t applied,
               const Leader* leader);
  // The leader is about to be destroyed: takes its final counters, and
  // starts the next term's from zero.
  void OnLeaderEnding(const Leader& leader);

  // ---- any thread -----------------------------------------------------

  void OnAgentCall(const v1::AgentCall& call);
  void OnSchedulerCall(const v1::scheduler::Call& call);
  // One append of master events answered by the log (its latency).
  void RecordAppend(absl::Duration latency);
  // One run of the allocator.
  void RecordAllocationRun(absl::Duration duration);

 private:
  void CopyLeaderCounters(const LeaderMetrics& current,
                          const AllocatorMetrics& allocator);
  void RefreshLog();

  monitoring::Registry* const registry_;
  const Sources sources_;

  // Master thread only.
  uint64_t published_applied_ = 0;
  bool published_once_ = false;
  uint64_t counted_position_ = 0;  // highest event id counted
  uint32_t counted_index_ = 0;
  bool counted_any_ = false;
  // The current term's counters already copied.
  LeaderMetrics baseline_;
  AllocatorMetrics allocator_baseline_;

  // State gauges.
  monitoring::Gauge* slaves_active_;
  monitoring::Gauge* slaves_inactive_;
  monitoring::Gauge* slaves_connected_;
  monitoring::Gauge* slaves_disconnected_;
  monitoring::Gauge* slaves_unreachable_;
  monitoring::Gauge* frameworks_active_;
  monitoring::Gauge* frameworks_inactive_;
  monitoring::Gauge* frameworks_connected_;
  monitoring::Gauge* frameworks_disconnected_;
  monitoring::Gauge* outstanding_offers_;
  std::map<v1::TaskState, monitoring::Gauge*> task_gauges_;
  // Folded-event counters.
  std::map<v1::TaskState, monitoring::Counter*> terminal_counters_;
  monitoring::Counter* slave_registrations_;
  monitoring::Counter* slave_reregistrations_;
  monitoring::Counter* slave_removals_;
  // Calls, by Mesos message name ("register_slave" -> its counter).
  std::map<std::string, monitoring::Counter*> messages_;
  // Leader counters.
  monitoring::Counter* valid_status_updates_;
  monitoring::Counter* invalid_status_updates_;
  monitoring::Counter* duplicate_status_updates_;
  monitoring::Counter* allocation_runs_;
  monitoring::Counter* slave_unreachable_completed_;
  monitoring::Counter* offers_sent_;
  monitoring::Counter* offers_rescinded_;
  monitoring::Counter* frameworks_removed_;
  monitoring::Counter* status_updates_sent_;
  // The leader's allocator.
  monitoring::Gauge* offer_filters_active_;
  monitoring::Counter* offers_filtered_;
  monitoring::Counter* offer_filters_added_;
  monitoring::Counter* offer_filters_expired_;
  monitoring::Counter* candidates_suppressed_;
  // Timers.
  monitoring::Timer* state_store_;
  monitoring::Timer* allocation_run_;
  // Log (refreshed by the scrape hook).
  monitoring::Gauge* log_recovered_;
  monitoring::Gauge* log_ensemble_size_;
  monitoring::Gauge* log_position_applied_;
  monitoring::Gauge* log_begin_;
  monitoring::Gauge* log_learned_through_;
  monitoring::Gauge* log_leader_;
  monitoring::Gauge* log_serving_;
  monitoring::Counter* log_appends_ok_;
  monitoring::Counter* log_appends_failed_;
  monitoring::Counter* log_elections_won_;
  monitoring::Counter* log_messages_dropped_;
  monitoring::Gauge* log_in_flight_;
  monitoring::Gauge* log_queued_;
  monitoring::Gauge* log_bytes_on_disk_;
  monitoring::Gauge* log_status_;
  monitoring::Gauge* log_batch_size_;
  monitoring::Counter* log_catchup_fetches_;
  monitoring::Counter* log_fetches_served_;
  monitoring::Counter* log_synced_writes_;
  // For log/batch_size: the counters at the previous scrape.
  std::mutex batch_mu_;
  uint64_t batch_prev_appends_ = 0;
  uint64_t batch_prev_committed_ = 0;
};

}  // namespace cairn::master

#endif  // CAIRN_MASTER_MASTER_METRICS_H_
