// CairnCluster: a throw-away Cairn replicated log of N `cairn-log replica`
// processes on 127.0.0.1, each with its own LevelDB directory under the
// benchmark's scratch directory, its own peer port and HTTP port (picked free
// just before starting).
//
// Lifetime: replicas are ChildProcesses (see child_process.h): killed when the
// CairnCluster is destroyed or the benchmark exits.
//
// Thread safety: use from one thread (the benchmark's main thread).

#ifndef CAIRN_BENCH_INTERNAL_CAIRN_CLUSTER_H_
#define CAIRN_BENCH_INTERNAL_CAIRN_CLUSTER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/internal/child_process.h"
#include "google/protobuf/struct.pb.h"

namespace cairn::bench {

struct CairnClusterOptions {
  std::string cairn_log_binary;
  std::string dir;  // parent of the replicas' directories and logs
  int replicas = 3;
  absl::Duration start_timeout = absl::Seconds(30);
  // Extra flags passed to every replica (e.g. "--v=1").
  std::vector<std::string> extra_flags;
};

class CairnCluster {
 public:
  // Starts the replicas and waits (up to start_timeout) until one of them
  // reports itself the serving leader and accepts an append. Returns
  // kNotFound when the binary is missing, kDeadlineExceeded when no leader
  // serves in time (the message carries the tail of every replica's log),
  // kUnavailable when a replica exits early.
  static absl::StatusOr<std::unique_ptr<CairnCluster>> Start(
      const CairnClusterOptions& options);

  CairnCluster(const CairnCluster&) = delete;
  CairnCluster& operator=(const CairnCluster&) = delete;
  ~CairnCluster();

  // Returns the index (0-based) of the replica whose /log/status says it is
  // the serving leader; kUnavailable when none does.
  absl::StatusOr<int> LeaderIndex();

  // Returns replica `index`'s /log/status document, or nullopt when it does
  // not answer.
  std::optional<google::protobuf::Struct> Status(int index);

  uint16_t http_port(int index) const { return replicas_[index].http_port; }
  uint32_t id(int index) const { return index + 1; }
  int size() const { return static_cast<int>(replicas_.size()); }
  pid_t pid(int index) const { return replicas_[index].process->pid(); }
  // True while every replica process is alive.
  bool AllRunning();
  // The tail of every replica's log, for error reports.
  std::string LogTails(size_t bytes_each = 1500) const;
  const std::string& log_path(int index) const {
    return replicas_[index].process->log_path();
  }

  // Stops every replica (SIGTERM, then SIGKILL). Returns how each ended.
  std::vector<std::string> Stop();

 private:
  struct Replica {
    uint16_t peer_port = 0;
    uint16_t http_port = 0;
    std::unique_ptr<ChildProcess> process;
  };
  CairnCluster() = default;
  absl::Status WaitForLeader(absl::Time deadline);

  std::vector<Replica> replicas_;
};

}  // namespace cairn::bench

#endif  // CAIRN_BENCH_INTERNAL_CAIRN_CLUSTER_H_
