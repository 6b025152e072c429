// LogCluster: a deterministic, single-threaded harness that runs N log Nodes
// (log/node.h) over simulated disks (MemoryStorage) and a simulated network
// (SimNetwork), on a simulated clock (each node may read it at its own rate:
// ClusterOptions::clock_drift), with every random choice drawn from one
// seeded generator. The same seed and the same calls give the same run, event
// for event (trace_hash()).
//
// It carries out the Effects contract of log/types.h for every Node call:
// apply `write` to the node's storage (synced when `sync`), and only then
// deliver `messages` (self-addressed ones reliably, in order, right after;
// others through the network), `append_results` and `leadership`. Every
// Effects and every delivered input is shown to a LogChecker.
//
// Faults it can inject (the caller decides when: see log_sim.h for the random
// schedule, and the scenario tests for hand-made ones):
//  - Crash at a persistence point: now, or at the node's next Effects that
//    writes, either before the write (the whole Effects is lost) or after it
//    (its messages and results are lost). The disk then loses its unsynced
//    writes (MemoryStorage::SimulateCrash) and the Node object is destroyed;
//    Restart() builds a new Node over the same storage.
//  - Wipe: crash and replace the disk with an empty one.
//  - Corrupt one stored record.
//  - Network: drops, duplicates, delays, cut links (see sim_network.h), plus
//    a drop filter for targeted tests.
//
// Thread safety: none; one thread owns a LogCluster.

#ifndef CAIRN_SIM_LOG_CLUSTER_H_
#define CAIRN_SIM_LOG_CLUSTER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "log/memory_storage.h"
#include "log/node.h"
#include "log/types.h"
#include "sim/log_checker.h"
#include "sim/sim_network.h"

namespace cairn::sim {

enum class CrashPoint {
  kNow,          // between two Node calls
  kBeforeWrite,  // at the node's next writing Effects, before the write
  kAfterWrite,   // at the node's next writing Effects, after the write
};
const char* CrashPointName(CrashPoint point);

struct ClusterOptions {
  int replicas = 3;
  // Template for every node: node_id, replicas and seed are filled in.
  log::Config config;
  NetworkFaults network;
  // Each Step() advances the clock by a random duration in this range.
  absl::Duration min_step = absl::Milliseconds(1);
  absl::Duration max_step = absl::Milliseconds(5);
  // Each node's clock runs at its own rate in [1, 1 + clock_drift) of the
  // simulation's, so any two differ by less than a factor 1 + clock_drift
  // (compare Config::max_clock_drift). 0: one clock for all.
  double clock_drift = 0.0;
  // Explicit clock rates, node 1 first (overrides clock_drift when set).
  std::vector<double> clock_rates;
  // When set, every event is printed here, one line each.
  std::ostream* trace = nullptr;
};

// An acknowledged append.
struct Ack {
  std::string value;
  uint64_t position = 0;
  uint32_t index = 0;
};

struct ClusterStats {
  uint64_t steps = 0;
  uint64_t appends_submitted = 0;
  uint64_t appends_acked = 0;
  uint64_t appends_failed = 0;
  uint64_t truncates_acked = 0;
  uint64_t crashes = 0;
  uint64_t wipes = 0;
  uint64_t corruptions = 0;
  uint64_t campaigns = 0;
  uint64_t elections = 0;  // leadership gained (announced)
  uint64_t writes = 0;
};

class LogCluster {
 public:
  LogCluster(uint64_t seed, const ClusterOptions& options);
  ~LogCluster();

  LogCluster(const LogCluster&) = delete;
  LogCluster& operator=(const LogCluster&) = delete;

  // Creates and starts every node over an empty disk.
  void Start();

  // One step: advance the clock, deliver every message now due, tick every
  // live node, run the per-step checks. Does nothing once failed().
  void Step();

  // Steps until `done()` holds (checked before each step) or `max_steps`
  // steps ran or a check failed. Returns whether `done()` held.
  bool RunUntil(const std::function<bool()>& done, int max_steps);

  // ---- Faults ----
  // Crashes node `id` at `point` (see CrashPoint). `keep_unsynced` of the
  // disk's unsynced batches survive (oldest first). A crashed node stays
  // down until Restart(). No-op for a node that is down.
  void Crash(uint32_t id, CrashPoint point, size_t keep_unsynced = 0);
  // Cancels a crash armed at a persistence point (no-op if none).
  void Disarm(uint32_t id) { member(id).armed_crash.reset(); }
  // Starts a new Node over node `id`'s storage. REQUIRES: the node is down.
  void Restart(uint32_t id);
  // Crashes node `id` (if up) and replaces its disk by an empty one; it
  // stays down until Restart().
  void Wipe(uint32_t id);
  // Damages the stored record of `position` on node `id`'s disk. kNotFound
  // when there is no such record.
  absl::Status Corrupt(uint32_t id, uint64_t position);
  // Node `id` campaigns now (Node::TEST_Campaign). No-op if down.
  void Campaign(uint32_t id);

  // ---- Clients ----
  // Submits an append of a fresh unique value to node `id`; returns the
  // value. No-op (returns "") if the node is down.
  std::string Append(uint32_t id);
  // Submits a truncate to `to` to node `id`.
  void Truncate(uint32_t id, uint64_t to);

  // Messages for which `filter` returns true are dropped (before network
  // faults; never self-addressed ones). Empty function: none.
  void set_drop_filter(std::function<bool(const cairn::v1::LogMessage&)> f) {
    drop_filter_ = std::move(f);
  }

  // ---- Observers ----
  // Simulated (real) time, and node `id`'s reading of its own clock.
  absl::Time now() const { return now_; }
  absl::Time NodeNow(uint32_t id) const { return NodeNow(member(id)); }
  uint64_t step() const { return stats_.steps; }
  const std::vector<uint32_t>& ids() const { return ids_; }
  bool up(uint32_t id) const { return member(id).node != nullptr; }
  // The live node `id`, or nullptr while it is down.
  log::Node* node(uint32_t id) { return member(id).node.get(); }
  log::MemoryStorage& storage(uint32_t id) { return *member(id).storage; }
  // The replica status of node `id` (as last seen, when down).
  cairn::v1::Metadata::Status status(uint32_t id) const;
  // Nodes serving appends now (at most one if leases work).
  std::vector<uint32_t> ServingLeaders() const;
  std::optional<uint32_t> ServingLeader() const;

  SimNetwork& network() { return network_; }
  LogChecker& checker() { return checker_; }
  const LogChecker& checker() const { return checker_; }
  bool failed() const { return checker_.failed(); }
  // The first failure, prefixed with the step and simulated time.
  std::string failure() const;
  const std::vector<Ack>& acks() const { return acks_; }
  // Requests submitted and not yet answered (nor lost in a crash).
  size_t pending_requests() const { return pending_.size(); }
  const ClusterStats& stats() const { return stats_; }
  // FNV-1a hash of every event so far (deliveries, faults, results).
  uint64_t trace_hash() const { return trace_hash_; }
  std::mt19937_64& rng() { return rng_; }
  uint64_t seed() const { return seed_; }

  // Records a failure found by the caller (stamped with step and time).
  void Fail(const std::string& message);

 private:
  struct Member {
    uint32_t id = 0;
    std::unique_ptr<log::MemoryStorage> storage;
    std::unique_ptr<log::Node> node;
    uint64_t incarnation = 0;
    uint64_t submitted = 0;  // requests submitted to this incarnation
    std::optional<CrashPoint> armed_crash;
    size_t armed_keep_unsynced = 0;
    cairn::v1::Metadata::Status last_status = cairn::v1::Metadata::EMPTY;
    double clock_rate = 1.0;  // of this node's clock, vs. simulated time
  };
  struct PendingAppend {
    std::string value;
    uint32_t node = 0;
    uint64_t incarnation = 0;
    uint64_t submit_seq = 0;
    bool truncate = false;
  };
  struct LocalMessage {
    uint32_t node = 0;
    uint64_t incarnation = 0;
    cairn::v1::LogMessage message;
  };

  absl::Time NodeNow(const Member& m) const {
    return start_ + (now_ - start_) * m.clock_rate;
  }
  Member& member(uint32_t id) { return members_.at(id - 1); }
  const Member& member(uint32_t id) const { return members_.at(id - 1); }
  log::Config NodeConfig(uint32_t id);
  void CreateNode(Member& m);

  // Carries out `effects` of node `m` (see the file comment) and, for an
  // outermost call, delivers the self-addressed messages it produced.
  // `status_before` is the replica's status before the call; `input` names
  // the call for reports.
  void Apply(Member& m, log::Effects effects,
             cairn::v1::Metadata::Status status_before, const char* input);
  void DrainLocal();
  void Deliver(Member& m, const cairn::v1::LogMessage& message);
  void DoCrash(Member& m, size_t keep_unsynced, const char* how);
  void HandleResult(Member& m, const log::AppendResult& result);

  void Event(const char* kind, uint64_t a = 0, uint64_t b = 0,
             uint64_t c = 0);
  void Mix(uint64_t x);
  bool tracing() const { return options_.trace != nullptr; }
  std::ostream& TraceLine();

  const uint64_t seed_;
  const ClusterOptions options_;
  std::mt19937_64 rng_;
  const absl::Time start_;
  absl::Time now_;
  std::vector<uint32_t> ids_;
  std::vector<Member> members_;
  SimNetwork network_;
  LogChecker checker_;
  std::function<bool(const cairn::v1::LogMessage&)> drop_filter_;
  std::vector<LocalMessage> local_;  // FIFO of self-addressed messages
  size_t local_next_ = 0;
  bool draining_ = false;
  std::map<uint64_t, PendingAppend> pending_;
  uint64_t next_request_id_ = 1;
  std::vector<Ack> acks_;
  ClusterStats stats_;
  uint64_t trace_hash_ = 1469598103934665603ull;
  std::string failure_;
};

}  // namespace cairn::sim

#endif  // CAIRN_SIM_LOG_CLUSTER_H_
