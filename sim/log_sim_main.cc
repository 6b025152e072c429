// log_sim: runs the replicated log's deterministic simulation.
//
//   log_sim --seed=N [--replicas=3|5] [--steps=S] [--trace]   replay one seed
//   log_sim --seeds=K [--first_seed=S] [--replicas=3|5]       run many
//
// Exit status: 0 when every seed passed, 1 otherwise. Every run prints its
// seed; every failure prints `FAILED seed=N (replay: ...)`.

#include <cstdio>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "sim/log_sim.h"

ABSL_FLAG(uint64_t, seed, 0, "Run this one seed (0: use --seeds).");
ABSL_FLAG(uint64_t, seeds, 1, "Number of seeds to run, from --first_seed.");
ABSL_FLAG(uint64_t, first_seed, 1, "First seed of a --seeds run.");
ABSL_FLAG(int, replicas, 3, "Replicas per cluster (3 or 5).");
ABSL_FLAG(int, steps, 3000, "Steps with faults and load per seed.");
ABSL_FLAG(int, heal_steps, 10000, "Bound on steps to heal and converge.");
ABSL_FLAG(bool, trace, false,
          "Print every event (and the log core's INFO lines on stderr).");
ABSL_FLAG(bool, verbose, false, "Print a summary line for every seed.");
ABSL_FLAG(bool, hostile_network, false,
          "Lossy links and delay spikes on top of the seed's network.");
ABSL_FLAG(std::string, tolerate, "",
          "Comma-separated open findings (sim/FINDINGS.md) to tolerate, "
          "e.g. F1,F2; default: none (strict).");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const bool trace = absl::GetFlag(FLAGS_trace);
  cairn::logging::SetMinLevel(trace ? cairn::logging::Severity::kInfo
                                    : cairn::logging::Severity::kFatal);
  if (trace) cairn::logging::SetVerbosity(1);
  cairn::sim::InstallFailureReporter();

  const int replicas = absl::GetFlag(FLAGS_replicas);
  if (replicas < 1 || replicas > 9) {
    std::fprintf(stderr, "--replicas must be between 1 and 9\n");
    return 2;
  }
  uint64_t first = absl::GetFlag(FLAGS_first_seed);
  uint64_t count = absl::GetFlag(FLAGS_seeds);
  if (absl::GetFlag(FLAGS_seed) != 0) {
    first = absl::GetFlag(FLAGS_seed);
    count = 1;
  }
  std::printf("log_sim: seeds %llu..%llu, %d replicas, %d steps\n",
              static_cast<unsigned long long>(first),
              static_cast<unsigned long long>(first + count - 1), replicas,
              absl::GetFlag(FLAGS_steps));
  std::fflush(stdout);

  cairn::sim::KnownIssues tolerate;
  for (absl::string_view id :
       absl::StrSplit(absl::GetFlag(FLAGS_tolerate), ',', absl::SkipEmpty())) {
    if (id == "F1") {
      tolerate.fetch_stall = true;
    } else if (id == "F2") {
      tolerate.records_below_begin = true;
    } else if (id == "F3") {
      tolerate.phase1_paging = true;
    } else if (id == "F4") {
      tolerate.idle_recovery = true;
    } else {
      std::fprintf(stderr, "unknown finding '%s' in --tolerate\n",
                   std::string(id).c_str());
      return 2;
    }
  }

  const absl::Time started = absl::Now();
  uint64_t failures = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    cairn::sim::SimOptions options;
    options.seed = seed;
    options.replicas = replicas;
    options.steps = absl::GetFlag(FLAGS_steps);
    options.heal_steps = absl::GetFlag(FLAGS_heal_steps);
    options.trace = trace ? &std::cout : nullptr;
    options.tolerate = tolerate;
    options.hostile_network = absl::GetFlag(FLAGS_hostile_network);
    const cairn::sim::SimResult result = cairn::sim::RunLogSimulation(options);
    if (count == 1 || absl::GetFlag(FLAGS_verbose) || !result.ok) {
      std::cout << cairn::sim::SummaryLine(result) << std::endl;
    }
    if (!result.ok) {
      ++failures;
      std::cout << cairn::sim::FailureLine(result) << std::endl;
    }
  }
  std::printf("%llu passed, %llu failed (seeds %llu..%llu, %.1fs)\n",
              static_cast<unsigned long long>(count - failures),
              static_cast<unsigned long long>(failures),
              static_cast<unsigned long long>(first),
              static_cast<unsigned long long>(first + count - 1),
              absl::ToDoubleSeconds(absl::Now() - started));
  return failures == 0 ? 0 : 1;
}
