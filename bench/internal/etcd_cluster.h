// EtcdCluster: a throw-away etcd cluster of N members on 127.0.0.1, the peer
// Cairn's log is compared with. Each member has its own data directory under
// the benchmark's scratch directory, and its own peer and client ports
// (picked free just before starting). etcd runs with its defaults, so every
// write is fsynced to its WAL before it is acknowledged (no
// --unsafe-no-fsync), like every Cairn acceptor record.
//
// Requests go through etcd's HTTP/JSON gRPC gateway on the client port;
// put_target() is "/v3/kv/put" or, for older etcd, "/v3beta/kv/put".
//
// Lifetime: members are ChildProcesses (see child_process.h): killed when the
// EtcdCluster is destroyed or the benchmark exits.
//
// Thread safety: use from one thread (the benchmark's main thread).

#ifndef CAIRN_BENCH_INTERNAL_ETCD_CLUSTER_H_
#define CAIRN_BENCH_INTERNAL_ETCD_CLUSTER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/internal/child_process.h"

namespace cairn::bench {

struct EtcdClusterOptions {
  std::string etcd_binary = "/usr/bin/etcd";
  std::string dir;  // parent of the members' data directories and logs
  int members = 3;
  absl::Duration start_timeout = absl::Seconds(30);
};

class EtcdCluster {
 public:
  // Starts the members and waits (up to start_timeout) until every member
  // reports healthy and a put succeeds. Returns kNotFound when the binary is
  // missing, kDeadlineExceeded when the cluster does not become healthy in
  // time (the message carries the tail of a member's log), kUnavailable when
  // a member exits early.
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> Start(
      const EtcdClusterOptions& options);

  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;
  ~EtcdCluster();

  // Returns the index (0-based) of the member that currently leads, from its
  // maintenance status; kUnavailable when no member answers.
  absl::StatusOr<int> LeaderIndex();

  // The leader's Raft term, as reported by the status of `member` (for
  // noticing elections during a run). 0 when unavailable.
  uint64_t RaftTerm(int member);

  uint16_t client_port(int member) const {
    return members_[member].client_port;
  }
  const std::string& put_target() const { return put_target_; }
  int size() const { return static_cast<int>(members_.size()); }

  // Stops every member (SIGTERM, then SIGKILL). Idempotent.
  void Stop();

 private:
  struct Member {
    std::string name;
    uint16_t peer_port = 0;
    uint16_t client_port = 0;
    std::unique_ptr<ChildProcess> process;
  };
  EtcdCluster() = default;
  absl::Status WaitHealthy(absl::Time deadline);
  std::string LogTails() const;

  std::vector<Member> members_;
  std::string put_target_ = "/v3/kv/put";
};

}  // namespace cairn::bench

#endif  // CAIRN_BENCH_INTERNAL_ETCD_CLUSTER_H_
