// LogCluster: a cluster of real `cairn-log replica` processes on 127.0.0.1
// for multi-process tests: each replica has its own LevelDB directory, peer
// port and HTTP port, and can be SIGKILLed, wiped and restarted on the same
// directory and ports. Tests observe replicas only through their HTTP API
// (log/http_service.h).
//
//   LogClusterOptions options;
//   options.binary = ...;  options.root = TEST_TMPDIR/...;
//   auto cluster = LogCluster::Start(options);
//   auto leader = (*cluster)->WaitForServingLeader(absl::Now() + timeout);
//   AppendResult r = (*cluster)->AppendOnce("entry", deadline, &hint);
//   (*cluster)->KillReplica(*leader);
//   (*cluster)->StartReplica(*leader);
//
// Ports are ephemeral ports the kernel handed out (bound to port 0, then
// released); if another process takes one before a replica binds it, Start()
// retries the whole cluster with new ports.
//
// Thread safety: Start, StartReplica, KillReplica and WipeReplica (the
// process lifecycle) are called from the test's main thread only (see
// process.h: children die with the thread that forked them). Status,
// AppendOnce, Truncate and ReadAll only read the immutable addresses and may
// be called from any thread at the same time.

#ifndef CAIRN_TESTS_INTERNAL_LOG_CLUSTER_H_
#define CAIRN_TESTS_INTERNAL_LOG_CLUSTER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "log/replicated_log.h"
#include "tests/internal/process.h"

namespace cairn::tests {

struct LogClusterOptions {
  // The cairn-log binary.
  std::string binary;
  // Holds each replica's store (<root>/replica-<id>).
  std::string root;
  // Where replica <id>'s stdout/stderr go (<log_dir>/<log_prefix>replica-<id>
  // .log, appended across restarts). Defaults to `root`.
  std::string log_dir;
  std::string log_prefix;
  int replicas = 3;
  // Flags for every replica besides --id, --replicas and --dir: timeouts
  // short enough for a test (the lease stays below the election timeout).
  std::vector<std::string> flags = {
      "--election_timeout=300ms", "--lease=200ms", "--heartbeat_interval=50ms",
      "--retransmit_interval=100ms", "--recover_interval=50ms"};
  // How long a replica may take to answer GET /health after it starts.
  absl::Duration start_timeout = absl::Seconds(10);
};

// One GET /log/status answer, the fields tests use (see StatusJson in
// log/http_service.h).
struct ReplicaStatus {
  uint32_t id = 0;
  std::string status;         // "EMPTY", "STARTING", "RECOVERING", "VOTING"
  std::string status_detail;  // why not voting
  std::string role;           // "follower", "candidate", "filling", "leader"
  bool serving = false;
  std::optional<uint32_t> leader;
  uint64_t begin = 0;
  uint64_t end = 0;
  uint64_t learned_through = 0;
  uint64_t committed = 0;
  uint64_t votes_sent = 0;
  uint64_t bytes_on_disk = 0;
  uint64_t elections_won = 0;
  std::string json;  // the whole document
};

// What became of one AppendOnce.
struct AppendResult {
  enum class Outcome {
    // 200 with a position: the entry is in the log there.
    kAcknowledged,
    // The request may have reached a replica that then did not answer (a
    // transport error after connecting, a timeout) or answered 503
    // {"outcome": "unknown"}: the entry may or may not be in the log.
    kUnknown,
    // Every attempt was certainly refused (307, 503 not-leader, connection
    // refused) until the deadline: the entry is not in the log.
    kNotAppended,
    // An answer the API does not allow (other HTTP status, malformed 200).
    kError,
  };
  Outcome outcome = Outcome::kError;
  log::Position position;  // when kAcknowledged
  std::string detail;      // the last failure, for messages
};

class LogCluster {
 public:
  // Picks ports, starts every replica and waits until each answers GET
  // /health. Up to 3 attempts with fresh ports and fresh stores when a
  // replica exits during startup (e.g. its port was taken). Errors: the
  // last attempt's (kUnavailable / kDeadlineExceeded naming the replica,
  // with the tail of its log).
  static absl::StatusOr<std::unique_ptr<LogCluster>> Start(
      LogClusterOptions options);

  LogCluster(const LogCluster&) = delete;
  LogCluster& operator=(const LogCluster&) = delete;
  // SIGKILLs and reaps every replica.
  ~LogCluster();

  // Replica ids, 1..n.
  std::vector<uint32_t> ids() const;

  // Starts replica `id` on its directory and ports and waits until it
  // answers GET /health. Retries (3 times) when it exits during startup.
  // kFailedPrecondition if it is running; kUnavailable or
  // kDeadlineExceeded (with its log's tail) if it does not come up.
  absl::Status StartReplica(uint32_t id);
  // SIGKILLs replica `id` and reaps it. No-op when it is not running.
  void KillReplica(uint32_t id);
  // Deletes replica `id`'s directory. kFailedPrecondition if it runs.
  absl::Status WipeReplica(uint32_t id);
  bool IsRunning(uint32_t id);

  // GET /log/status of replica `id`. kUnavailable when it does not answer
  // (within 2 s), kInternal for a malformed answer.
  absl::StatusOr<ReplicaStatus> Status(uint32_t id) const;

  // Polls every running replica until one reports serving == true; returns
  // its id. kDeadlineExceeded (with the last statuses) at `deadline`.
  absl::StatusOr<uint32_t> WaitForServingLeader(absl::Time deadline);

  // Polls every replica in `ids` until all report the same learned_through,
  // at least `at_least`, in one sweep; returns it. kDeadlineExceeded (with
  // the last statuses) at `deadline`.
  absl::StatusOr<uint64_t> WaitForEqualLearned(const std::vector<uint32_t>& ids,
                                               uint64_t at_least,
                                               absl::Time deadline);

  // Appends `data` at most once: starts with replica *hint (if valid),
  // follows 307s to the leader and moves on after 503 not-leader answers and
  // refused connections (nothing was appended by those), until `deadline`.
  // Never re-sends `data` after a request may have reached a replica: see
  // AppendResult. Every request carries "Connection: close", so the HTTP
  // client never silently retries a request on a stale connection either.
  // Sets *hint to the replica that acknowledged.
  AppendResult AppendOnce(absl::string_view data, absl::Time deadline,
                          uint32_t* hint) const;

  // POST /log/truncate?to=`to` through the leader (follows redirects, tries
  // every replica). Returns the truncate entry's position; errors as
  // LogClient::Truncate.
  absl::StatusOr<uint64_t> Truncate(uint64_t to) const;

  // Every entry replica `id` has learned in positions [from, through], read
  // page by page over GET /log/read. kFailedPrecondition if the replica has
  // not learned through `through`; other errors as LogClient::Read.
  absl::StatusOr<std::vector<log::Entry>> ReadAll(uint32_t id, uint64_t from,
                                                  uint64_t through) const;

  uint16_t http_port(uint32_t id) const { return replicas_.at(id).http_port; }
  const std::string& dir(uint32_t id) const { return replicas_.at(id).dir; }
  // The tail of replica `id`'s log (stdout and stderr of every run).
  std::string LogTail(uint32_t id, size_t max_bytes = 3000) const;

 private:
  struct Replica {
    uint16_t peer_port = 0;
    uint16_t http_port = 0;
    std::string dir;
    std::string log_path;
    std::unique_ptr<Process> process;  // null while stopped
  };

  explicit LogCluster(LogClusterOptions options);
  // Assigns fresh ports to every replica.
  absl::Status PickPorts();
  // Starts replica `id` once; kUnavailable if it exited during startup.
  absl::Status StartOnce(uint32_t id);
  std::string ReplicasFlag() const;
  // One line per replica: its last status or why there is none.
  std::string Describe() const;

  const LogClusterOptions options_;
  std::map<uint32_t, Replica> replicas_;
};

// "kAcknowledged", ...
const char* OutcomeName(AppendResult::Outcome outcome);

}  // namespace cairn::tests

#endif  // CAIRN_TESTS_INTERNAL_LOG_CLUSTER_H_
