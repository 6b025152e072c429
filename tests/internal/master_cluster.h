// MasterCluster: a cluster of real `cairn-master` processes on 127.0.0.1 for
// multi-process tests. Each master has its own HTTP port, log port and
// --work_dir, and can be SIGKILLed and restarted with the same flags. Tests
// observe masters only through their HTTP endpoints (/health,
// /master/replica, /api/v1, ...).
//
//   absl::StatusOr<MasterClusterOptions> options = OptionsForThisTest("foo");
//   options->masters = 1;  // flags, timeout, ... as the test needs
//   auto cluster = MasterCluster::Start(*options);
//   absl::StatusOr<int> leader = (*cluster)->WaitForLeader({0, 1, 2});
//   (*cluster)->Request(*leader, "POST", "/api/v1", body);
//   (*cluster)->Kill(*leader);
//
// Masters are numbered 0..n-1. Ports are ephemeral ports the kernel handed
// out (bound to port 0, then released); if another process takes one before
// a master binds it, Start() retries the whole cluster with new ports.
//
// Thread safety: Start, Restart and Kill (the process lifecycle) are called
// from the test's main thread only (see process.h: children die with the
// thread that forked them). Request, GetReplica and the Wait* methods only
// read the immutable ports and may be called from any thread.

#ifndef CAIRN_TESTS_INTERNAL_MASTER_CLUSTER_H_
#define CAIRN_TESTS_INTERNAL_MASTER_CLUSTER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "tests/internal/process.h"

namespace cairn::tests {

// Binds `count` distinct ephemeral ports on 127.0.0.1 (all held open at
// once, so they differ), then releases them. Fewer when binding fails.
std::vector<uint16_t> FreePorts(int count);

// Master flags for tests with agents and frameworks: liveness in seconds
// (1 s pings, 5 misses), a 10 s reregistration window, 100 ms allocation
// cycles and 1 s scheduler heartbeats.
inline const std::vector<std::string>& FastLivenessFlags() {
  static const std::vector<std::string> flags = {
      "--agent_ping_timeout=1s", "--max_agent_ping_timeouts=5",
      "--agent_reregister_timeout=10s", "--allocation_interval=100ms",
      "--scheduler_heartbeat_interval=1s"};
  return flags;
}

struct MasterClusterOptions {
  // The cairn-master binary.
  std::string binary;
  // Holds each master's store (<root>/a<attempt>/m<i>).
  std::string root;
  // Where master i's stdout/stderr go (<log_dir>/master-<i>.log). Defaults
  // to `root`.
  std::string log_dir;
  int masters = 3;
  // Flags for every master besides --port, --ip, --masters and --work_dir:
  // timeouts short enough for a test (the lease stays below the election
  // timeout).
  std::vector<std::string> flags = {"--election_timeout=300ms", "--lease=200ms",
                                    "--heartbeat_interval=50ms"};
  // How long each wait (startup, leader, equal states) may take.
  absl::Duration timeout = absl::Seconds(15);
};

// What GET /master/replica says about one master.
struct MasterReplica {
  std::string role;    // "leading", ...
  std::string leader;  // the leader's "host:port" (HTTP), or ""
  uint64_t applied = 0;
  std::string crc;      // state_crc32c
  std::string weights;  // the JSON text `"weights":[...]`
  std::string json;     // the whole document
};

// Points `options` at one test's own scratch space: the store under
// $TEST_TMPDIR/<prefix>_<pid>_<test_name> (one store per test, also when
// several tests share a process) and the masters' logs under
// $TEST_UNDECLARED_OUTPUTS_DIR/<test_name> (else below the store).
// MasterCluster::Start creates the directories.
void UseTestScratchDirs(absl::string_view prefix, absl::string_view test_name,
                        MasterClusterOptions* options);

// Options for the current test's cluster: `binary` is cairn-master from the
// test's runfiles, and UseTestScratchDirs(prefix, <current gtest test name>).
// kInternal (with the runfiles error) when the runfiles cannot be read;
// kFailedPrecondition when no gtest test is running.
absl::StatusOr<MasterClusterOptions> OptionsForThisTest(
    absl::string_view prefix);

class MasterCluster {
 public:
  // Picks ports, starts every master and waits until each answers GET
  // /health. Up to 3 attempts with fresh ports and fresh stores when a
  // master exits or stays silent during startup (e.g. its port was taken).
  // Errors: kInternal when no ports or process can be had; kUnavailable
  // (with the tail of the last master's log) when the last attempt failed.
  static absl::StatusOr<std::unique_ptr<MasterCluster>> Start(
      MasterClusterOptions options);

  MasterCluster(const MasterCluster&) = delete;
  MasterCluster& operator=(const MasterCluster&) = delete;
  // SIGKILLs and reaps every master.
  ~MasterCluster() = default;

  // SIGKILLs master `i` and reaps it. Idempotent.
  void Kill(int i);
  // Starts master `i` again with the flags it had (it must have been
  // killed), its stdout/stderr going to <log_dir>/<log_name>. Does not wait
  // for it: see WaitForHealth. Errors as Process::Start.
  absl::Status Restart(int i, const std::string& log_name);

  // Polls GET /health on master `i`; false when it exits or `deadline`
  // passes first.
  bool WaitForHealth(int i, absl::Time deadline);

  // One request to master `i`, without following redirects, with
  // "Connection: close" (and "Content-Type: application/json" for POST),
  // timing out after 3 s. Errors as http::Client::Request.
  absl::StatusOr<http::Response> Request(int i, const std::string& method,
                                         const std::string& target,
                                         const std::string& body = "") const;

  // GET /master/replica of master `i`; nullopt when it does not answer 200
  // with JSON.
  std::optional<MasterReplica> GetReplica(int i) const;

  // Polls until exactly one of the masters in `candidates` leads and every
  // one of them names it as the leader; returns its index.
  // kDeadlineExceeded (with the last answers) after options.timeout.
  absl::StatusOr<int> WaitForLeader(const std::vector<int>& candidates) const;

  // Polls until every master in `indices` reports the same applied
  // position, state checksum and weights, at least `min_applied`; returns
  // the common state. kDeadlineExceeded (with the last answers) after
  // options.timeout.
  absl::StatusOr<MasterReplica> WaitForEqualStates(
      const std::vector<int>& indices, uint64_t min_applied) const;

  // "127.0.0.1:<http port>" of master `i`, as /master/replica names leaders.
  std::string Address(int i) const;
  uint16_t http_port(int i) const { return masters_.at(i).http_port; }
  const std::string& work_dir(int i) const { return masters_.at(i).work_dir; }
  const std::string& log_dir() const { return options_.log_dir; }
  // Master `i`'s current process (null after Kill).
  Process* process(int i) const { return masters_.at(i).process.get(); }

 private:
  struct Master {
    uint16_t http_port = 0;
    std::string work_dir;
    std::vector<std::string> argv;
    std::unique_ptr<Process> process;  // null while stopped
  };

  explicit MasterCluster(MasterClusterOptions options);
  // One attempt at starting every master on fresh ports. kUnavailable if
  // one did not come up.
  absl::Status StartOnce(int attempt);

  MasterClusterOptions options_;
  std::vector<Master> masters_;
};

}  // namespace cairn::tests

#endif  // CAIRN_TESTS_INTERNAL_MASTER_CLUSTER_H_
