// master_sim: runs the master's deterministic simulation (master_sim.h).
//
//   master_sim --seed=N [--trace]              replay one seed
//   master_sim --seeds=K [--first_seed=S]      run many
//
// Exit status: 0 when every seed passed, 1 otherwise. Every failure prints
// `FAILED seed=N (replay: ...)`.

#include <cstdio>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "sim/master_sim.h"

ABSL_FLAG(uint64_t, seed, 0, "Run this one seed (0: use --seeds).");
ABSL_FLAG(uint64_t, seeds, 1, "Number of seeds to run, from --first_seed.");
ABSL_FLAG(uint64_t, first_seed, 1, "First seed of a --seeds run.");
ABSL_FLAG(double, fault_seconds, 30, "Simulated seconds with faults.");
ABSL_FLAG(bool, trace, false,
          "Print every step (and master code's INFO lines on stderr).");
ABSL_FLAG(bool, verbose, false, "Print a summary line for every seed.");
ABSL_FLAG(std::string, tolerate, "",
          "Comma-separated open findings (sim/MASTER_FINDINGS.md) to "
          "tolerate, e.g. M1; default: none (strict).");
ABSL_FLAG(bool, sabotage, false,
          "Positive control: lose committed entries at leader crashes (runs "
          "must fail).");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const bool trace = absl::GetFlag(FLAGS_trace);
  cairn::logging::SetMinLevel(trace ? cairn::logging::Severity::kInfo
                                    : cairn::logging::Severity::kFatal);
  cairn::sim::InstallMasterSimFailureReporter();

  uint64_t first = absl::GetFlag(FLAGS_first_seed);
  uint64_t count = absl::GetFlag(FLAGS_seeds);
  if (absl::GetFlag(FLAGS_seed) != 0) {
    first = absl::GetFlag(FLAGS_seed);
    count = 1;
  }
  std::printf("master_sim: seeds %llu..%llu\n",
              static_cast<unsigned long long>(first),
              static_cast<unsigned long long>(first + count - 1));
  std::fflush(stdout);

  const absl::Time started = absl::Now();
  uint64_t failures = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    cairn::sim::MasterSimOptions options;
    options.seed = seed;
    options.fault_phase = absl::Seconds(absl::GetFlag(FLAGS_fault_seconds));
    options.trace = trace ? &std::cout : nullptr;
    options.sabotage_lose_committed = absl::GetFlag(FLAGS_sabotage);
    options.tolerate = absl::GetFlag(FLAGS_tolerate);
    const cairn::sim::MasterSimResult result =
        cairn::sim::RunMasterSimulation(options);
    if (count == 1 || absl::GetFlag(FLAGS_verbose) || !result.ok) {
      std::cout << cairn::sim::MasterSimSummaryLine(result) << std::endl;
    }
    if (!result.ok) {
      ++failures;
      std::cout << cairn::sim::MasterSimFailureLine(result) << std::endl;
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
