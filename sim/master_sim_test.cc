// The master's deterministic simulation over many seeds. A failure prints
// the seed and the command that replays it; MASTER_SIM_SEED=N runs only
// seed N (bazel test //sim:master_sim_test --test_env=MASTER_SIM_SEED=N).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "gtest/gtest.h"
#include "sim/master_sim.h"

namespace cairn::sim {
namespace {

// Open findings in master/ (sim/MASTER_FINDINGS.md) this test tolerates,
// each only by its symptom (MasterSimOptions::tolerate). A finding stays
// here until its fix lands. None is open: M1 (a leader change cutting a
// multi-event request) is fixed, and every seed runs strictly.
std::string OpenFindings() { return ""; }

// 160 seeds of 30 simulated seconds with faults (plus the drain): about
// 30 s of one core in fastbuild, in 4 shards.
constexpr uint64_t kSeedsPerChunk = 20;
constexpr uint64_t kChunks = 8;

std::vector<uint64_t> ChunkStarts() {
  std::vector<uint64_t> starts;
  for (uint64_t i = 0; i < kChunks; ++i) starts.push_back(1 + i * kSeedsPerChunk);
  return starts;
}

// MASTER_SIM_SEED, if set: the one seed to run.
std::optional<uint64_t> SeedFromEnvironment() {
  const char* value = std::getenv("MASTER_SIM_SEED");
  uint64_t seed = 0;
  if (value == nullptr || !absl::SimpleAtoi(value, &seed) || seed == 0) {
    return std::nullopt;
  }
  return seed;
}

class MasterSimSeedsTest : public ::testing::TestWithParam<uint64_t> {
 protected:
  static void SetUpTestSuite() {
    logging::SetMinLevel(logging::Severity::kFatal);
    InstallMasterSimFailureReporter();
  }
};

TEST_P(MasterSimSeedsTest, NoTaskLostOrDuplicatedNoDoubleOffersTimeoutsHonoured) {
  uint64_t first = GetParam();
  uint64_t last = first + kSeedsPerChunk - 1;
  if (std::optional<uint64_t> seed = SeedFromEnvironment()) {
    if (GetParam() != 1) GTEST_SKIP() << "MASTER_SIM_SEED runs one seed";
    first = last = *seed;
  }
  std::printf("running seeds %llu..%llu\n",
              static_cast<unsigned long long>(first),
              static_cast<unsigned long long>(last));
  int failures = 0;
  uint64_t stranded = 0;
  for (uint64_t seed = first; seed <= last; ++seed) {
    MasterSimOptions options;
    options.seed = seed;
    options.tolerate = OpenFindings();
    const MasterSimResult result = RunMasterSimulation(options);
    stranded += result.stats.stranded_tasks;
    if (!result.ok) {
      ++failures;
      ADD_FAILURE() << MasterSimFailureLine(result) << "\n"
                    << MasterSimSummaryLine(result);
    }
  }
  std::printf("tasks stranded by the open finding M1 (tolerated): %llu\n",
              static_cast<unsigned long long>(stranded));
  EXPECT_EQ(failures, 0);
}

INSTANTIATE_TEST_SUITE_P(Seeds, MasterSimSeedsTest,
                         ::testing::ValuesIn(ChunkStarts()),
                         [](const ::testing::TestParamInfo<uint64_t>& info) {
                           return absl::StrCat("Seeds", info.param, "To",
                                               info.param + kSeedsPerChunk - 1);
                         });

TEST(MasterSimTest, SameSeedGivesByteIdenticalTrace) {
  logging::SetMinLevel(logging::Severity::kFatal);
  MasterSimOptions options;
  options.seed = 4242;
  options.fault_phase = absl::Seconds(15);
  options.tolerate = OpenFindings();
  std::ostringstream first_trace;
  std::ostringstream second_trace;
  options.trace = &first_trace;
  const MasterSimResult a = RunMasterSimulation(options);
  options.trace = &second_trace;
  const MasterSimResult b = RunMasterSimulation(options);
  std::printf("seed 4242: %s\n", MasterSimSummaryLine(a).c_str());
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.ok, b.ok);
  EXPECT_EQ(a.failure, b.failure);
  EXPECT_EQ(a.stats.steps, b.stats.steps);
  EXPECT_TRUE(first_trace.str() == second_trace.str())
      << "traces differ (" << first_trace.str().size() << " vs "
      << second_trace.str().size() << " bytes)";
  // The run did something worth comparing.
  EXPECT_GT(a.stats.tasks_launched, 0u) << MasterSimSummaryLine(a);
  EXPECT_GT(a.stats.elections, 0u);
}

// The positive control: a log that loses committed entries when a leader
// crashes must be caught (lost or phantom tasks, updates after a terminal
// one, double offers, states that differ from the fold).
TEST(MasterSimTest, CheckersCatchALogThatLosesCommittedEntries) {
  logging::SetMinLevel(logging::Severity::kFatal);
  int caught = 0;
  constexpr int kRuns = 10;
  for (uint64_t seed = 9001; seed < 9001 + kRuns; ++seed) {
    MasterSimOptions options;
    options.seed = seed;
    options.tolerate = OpenFindings();
    options.sabotage_lose_committed = true;
    const MasterSimResult result = RunMasterSimulation(options);
    std::printf("sabotaged seed %llu: %s\n",
                static_cast<unsigned long long>(seed),
                result.ok ? "not caught" : result.failure.c_str());
    if (!result.ok) ++caught;
  }
  EXPECT_GE(caught, kRuns / 2);
}

TEST(MasterSimTest, DifferentSeedsGiveDifferentRuns) {
  logging::SetMinLevel(logging::Severity::kFatal);
  MasterSimOptions options;
  options.fault_phase = absl::Seconds(5);
  options.seed = 7;
  const uint64_t a = RunMasterSimulation(options).trace_hash;
  options.seed = 8;
  const uint64_t b = RunMasterSimulation(options).trace_hash;
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace cairn::sim
