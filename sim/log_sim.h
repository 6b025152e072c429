// The log's deterministic simulation: one seed picks a cluster configuration
// and a random schedule of faults and client requests, runs it on a
// LogCluster (log_cluster.h) with the LogChecker's invariants checked after
// every event, then heals everything and checks that the cluster converges:
// a leader is elected, appends succeed, and every replica holds the same
// learned log containing every acknowledged append exactly once.
//
// One seed, one thread, no real time: RunLogSimulation(options) with the same
// options returns the same result with the same trace_hash. Replay a failure
// with `bazel run //sim:log_sim -- --seed=N --replicas=R --trace`.
//
// What a seed chooses (see log_sim.cc): sticky_leader on or off, timeouts,
// paging and batching limits, network drop/duplicate rates and delays, and
// how often it crashes nodes (at a persistence point), wipes disks (never
// more than a minority damaged at once), corrupts records, partitions the
// network (symmetric or one-way), forces dueling campaigns, and truncates.

#ifndef CAIRN_SIM_LOG_SIM_H_
#define CAIRN_SIM_LOG_SIM_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "sim/log_cluster.h"

namespace cairn::sim {

// Open findings in log/ (sim/FINDINGS.md) the run may tolerate, so the
// regression test can pass while they are open. Each toleration is narrow:
// it relaxes only the symptom of that finding.
struct KnownIssues {
  // F1: two lagging replicas can fetch from each other forever. Tolerated
  // by restarting (once) a replica whose catch-up stalls after healing.
  bool fetch_stall = false;
  // F2: records below `begin` left on disk by recovery. Tolerated by not
  // checking for them.
  bool records_below_begin = false;
  // F3: phase 1 times out after election_timeout however many pages have
  // arrived, so a range needing many pages never completes. Tolerated by
  // pages of at least 16 actions.
  bool phase1_paging = false;
  // F4: a RECOVERING replica waits for never-chosen positions, which an
  // idle log never chooses. Tolerated by a trickle of appends after healing.
  bool idle_recovery = false;
};

struct SimOptions {
  uint64_t seed = 1;
  int replicas = 3;  // 3 or 5
  // Steps with faults and client load (each 1-5 ms of simulated time).
  int steps = 3000;
  // Upper bound on the steps allowed for healing and convergence.
  int heal_steps = 10000;
  KnownIssues tolerate;
  // A harsher network for some seeds (lossy links, delay spikes): more
  // adversarial interleavings, different trajectories for the same seed.
  bool hostile_network = false;
  // When set, every event of the run is printed here.
  std::ostream* trace = nullptr;
};

struct SimResult {
  SimOptions options;  // what ran (trace cleared)
  uint64_t seed = 0;
  int replicas = 0;
  bool ok = false;
  std::string failure;      // empty when ok
  std::string description;  // the configuration the seed chose
  uint64_t trace_hash = 0;
  ClusterStats stats;
  uint64_t max_position = 0;  // highest position learned
};

// Runs one seed. Never aborts on an invariant violation of the simulation's
// own checks (it returns it in `failure`); a CHECK inside the log core still
// aborts the process (see InstallFailureReporter).
SimResult RunLogSimulation(const SimOptions& options);

// The command that replays the run of `options` (with --trace).
std::string ReplayCommand(const SimOptions& options);

// The --tolerate flag value for `tolerate` ("F1,F3"; "" when none).
std::string TolerateFlag(const KnownIssues& tolerate);

// "FAILED seed=N (replay: ...): <failure>"
std::string FailureLine(const SimResult& result);

// One line: seed, configuration, counters, hash.
std::string SummaryLine(const SimResult& result);

// Makes a CHECK failure inside the log core (which aborts) print the
// FAILED line of the seed being run first. Idempotent.
void InstallFailureReporter();

}  // namespace cairn::sim

#endif  // CAIRN_SIM_LOG_SIM_H_
