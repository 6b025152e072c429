// Cluster: how cairnctl talks to a Cairn cluster given only the masters'
// addresses (--master=host:port[,...]).
//
//  - Operator(): a Mesos v1 operator call (POST /api/v1) to the leading
//    master, through http::MasterChannel (follows 307s to the leader,
//    retries 503 and transport errors across the masters with backoff until
//    `timeout`).
//  - Survey(): GET /master/replica and /health of every master once, no
//    retries (what `status` shows).
//  - FindLeader(): polls the masters' /master/replica until one says it is
//    leading (for the leader's own endpoints: /metrics/snapshot).
//  - Get(): one GET to one master.
//
// Errors are worded for an operator: Explain() turns "nothing answered"
// into "no master answered at A,B (connection refused)" (kUnavailable) and
// an error answer into its {"error","field"} text.
//
// Thread safety: a Cluster is used by one thread at a time.

#ifndef CAIRN_CLI_CLUSTER_H_
#define CAIRN_CLI_CLUSTER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cairn/v1/operator.pb.h"
#include "common/http_client.h"
#include "common/json_value.h"
#include "common/master_channel.h"

namespace cairn::cli {

struct ClusterOptions {
  std::vector<std::string> masters;  // "host:port"
  // Bound on each command's wait for an answer (finding the leader
  // included).
  absl::Duration timeout = absl::Seconds(15);
  // Sent as X-Cairn-Principal (recorded in the events a call causes).
  std::string principal;
};

// What one master says about itself (GET /master/replica, GET /health).
struct MasterStatus {
  std::string address;
  bool answered = false;  // /master/replica answered 200 with JSON
  std::string error;      // why not
  std::string role;       // "leading", "standby", "recovering", ...
  std::string leader;     // the leader it knows, or ""
  std::optional<uint64_t> applied;
  std::optional<uint64_t> log_begin;
  std::optional<uint64_t> log_learned_through;
  std::optional<bool> log_serving;
  std::optional<uint64_t> agents, frameworks, tasks;
  bool healthy = false;   // GET /health answered 200
};

class Cluster {
 public:
  // REQUIRES: options.masters is not empty and each parses as host:port
  // (see ParseMasters).
  explicit Cluster(ClusterOptions options);

  // Splits "a:1,b:2" and checks each address. kInvalidArgument naming the
  // bad one.
  static absl::StatusOr<std::vector<std::string>> ParseMasters(
      absl::string_view list);

  // Sends `call` to the leader and returns its answer: the Response of a
  // GET_* call, an empty one for a mutation answered 200/202. Errors are
  // Explain()ed: kUnavailable when no leader answered in time; the answer's
  // code otherwise (kInvalidArgument for 400, kNotFound for 404, ...).
  absl::StatusOr<v1::master_api::Response> Operator(
      const v1::master_api::Call& call);

  std::vector<MasterStatus> Survey(absl::Duration per_request);

  // The address of a master that says it is leading; polls until
  // `deadline`, then kUnavailable (Explain()ed).
  absl::StatusOr<http::HostPort> FindLeader(absl::Time deadline);

  absl::StatusOr<http::Response> Get(const http::HostPort& master,
                                     absl::string_view target,
                                     absl::Duration timeout);

  // See the top of this file.
  absl::Status Explain(const absl::Status& status) const;

  const ClusterOptions& options() const { return options_; }
  std::string MastersText() const;  // "a:1,b:2"
  const std::vector<http::HostPort>& hosts() const { return hosts_; }

 private:
  ClusterOptions options_;
  std::vector<http::HostPort> hosts_;
  http::MasterChannel operator_channel_;
};

// The status of an HTTP error answer, with the text of its
// {"error": ..., "field": ...} body when it has one.
absl::Status ErrorFromAnswer(int code, absl::string_view body);

}  // namespace cairn::cli

#endif  // CAIRN_CLI_CLUSTER_H_
