// CairnctlClusterTest: the fixture the cairnctl tests (cairnctl_test,
// cairnctl_agent_test) share: three real cairn-master processes in scratch
// directories named for the running test, their leader, and the cairnctl
// binary (//cli:cairnctl) run against them as a child process.
//
//   class MyTest : public CairnctlClusterTest {
//     void SetUp() override {
//       ASSERT_NO_FATAL_FAILURE(StartMasters("my", {"--allocation_interval=100ms"}));
//     }
//   };
//   CairnctlResult status = Run({"status", "--json"});
//
// Every wait is bounded by a deadline.

#ifndef CAIRN_TESTS_INTERNAL_CAIRNCTL_FIXTURE_H_
#define CAIRN_TESTS_INTERNAL_CAIRNCTL_FIXTURE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/internal/cairnctl_process.h"
#include "tests/internal/master_cluster.h"
#include "tools/cpp/runfiles/runfiles.h"

namespace cairn::tests {

// What a cairnctl run to its end printed; code -1 when it did not end in time.
struct CairnctlResult {
  int code = -1;
  std::string out, err;
};

class CairnctlClusterTest : public ::testing::Test {
 protected:
  // Starts three masters with `flags` (after MasterCluster's own), scratch
  // dirs "<prefix>..." for the running test, and waits for a leader. Call
  // from SetUp() inside ASSERT_NO_FATAL_FAILURE.
  void StartMasters(const std::string& prefix,
                    const std::vector<std::string>& flags) {
    std::string error;
    runfiles_.reset(bazel::tools::cpp::runfiles::Runfiles::CreateForTest(&error));
    ASSERT_NE(runfiles_, nullptr) << error;
    cairnctl_ = runfiles_->Rlocation("cairn/cli/cairnctl");
    absl::StatusOr<MasterClusterOptions> options = OptionsForThisTest(prefix);
    ASSERT_TRUE(options.ok()) << options.status();
    options->timeout = timeout_;
    options->flags.insert(options->flags.end(), flags.begin(), flags.end());
    absl::StatusOr<std::unique_ptr<MasterCluster>> cluster =
        MasterCluster::Start(*options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    scratch_ = options->root;
    log_dir_ = cluster_->log_dir();
    for (int i = 0; i < 3; ++i) masters_.push_back(cluster_->Address(i));
    absl::StatusOr<int> leader = cluster_->WaitForLeader({0, 1, 2});
    ASSERT_TRUE(leader.ok()) << leader.status();
    leader_ = *leader;
  }

  // "--master=<every master>".
  std::string MasterFlag() const {
    return absl::StrCat("--master=", absl::StrJoin(masters_, ","));
  }

  // Starts cairnctl with MasterFlag() first (everything after run's `--` is
  // the command).
  std::unique_ptr<CairnctlProcess> Start(std::vector<std::string> args) {
    args.insert(args.begin(), MasterFlag());
    return CairnctlProcess::Start(cairnctl_, args, scratch_);
  }

  // Runs cairnctl to its end, bounded by run_timeout_.
  CairnctlResult Run(std::vector<std::string> args) {
    std::unique_ptr<CairnctlProcess> cli = Start(std::move(args));
    CairnctlResult result;
    result.code = cli->Wait(absl::Now() + run_timeout_).value_or(-1);
    result.out = cli->out();
    result.err = cli->err();
    return result;
  }

  // Set before StartMasters(): the masters' startup bound; Run()'s bound.
  absl::Duration timeout_ = absl::Seconds(30);
  absl::Duration run_timeout_ = absl::Seconds(60);

  std::unique_ptr<bazel::tools::cpp::runfiles::Runfiles> runfiles_;
  std::string cairnctl_;
  std::string scratch_;  // the cluster's root
  std::string log_dir_;  // the masters' logs (test.outputs when Bazel has one)
  std::vector<std::string> masters_;
  std::unique_ptr<MasterCluster> cluster_;
  int leader_ = -1;
};

}  // namespace cairn::tests

#endif  // CAIRN_TESTS_INTERNAL_CAIRNCTL_FIXTURE_H_
