// `cairnctl run` and `cairnctl kill`: a one-off command task through the v1
// scheduler API, as its own framework.
//
// run: subscribes a framework "cairnctl-run <name>" (label cairnctl=run,
// role --role, failover_timeout long enough to survive a leader change),
// waits for an offer with --cpus and --mem, launches one command task
// (one argument after `--`: a shell command; several: argv, no shell),
// acknowledges its updates, prints its stdout/stderr from the agent's
// sandbox (sandbox_output.h) and, once it is terminal, tears the framework
// down and exits with the task's status (exit_codes.h). After a leader
// change it fails over to the new leader and reconciles the task. When
// --timeout passes first, the task is killed and the exit is 124.
// --detach returns once the task is TASK_RUNNING, leaving the framework
// disconnected (failover_timeout one week) for `cairnctl kill`.
//
// kill: the master has no operator call that kills one task (nor has
// Mesos), and taking over another scheduler's framework would disconnect
// it. So kill acts only on tasks of frameworks cairnctl run started: it
// fails that framework over to itself (SUBSCRIBE with its id), sends KILL,
// waits for the terminal update, acknowledges it and tears the framework
// down. Other tasks: an error naming the framework (kill them through
// their scheduler, or TEARDOWN the framework).
//
// Thread safety: one thread.

#ifndef CAIRN_CLI_RUN_H_
#define CAIRN_CLI_RUN_H_

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cli/cluster.h"

namespace cairn::cli {

struct RunOptions {
  double cpus = 0.1;
  double mem = 32;
  std::string name = "cairnctl-run";
  std::string role = "*";
  std::string user;  // FrameworkInfo.user
  absl::Duration timeout = absl::Seconds(60);
  bool detach = false;
  bool json = false;  // print a JSON result object instead of the output
  std::vector<std::string> command;  // REQUIRES: not empty
};

// Returns the exit code (see exit_codes.h).
int RunTask(Cluster& cluster, const RunOptions& options, std::ostream& out,
            std::ostream& err);

// Returns the exit code: 0 when the task is terminal (killed, or it had
// ended), 1 when it is not a cairnctl run task or the kill failed, 2 when
// no leader answered.
int KillTask(Cluster& cluster, const std::string& task_id,
             const std::optional<std::string>& framework_id, bool json,
             std::ostream& out, std::ostream& err);

// The label cairnctl puts on its frameworks.
inline constexpr char kRunLabelKey[] = "cairnctl";
inline constexpr char kRunLabelValue[] = "run";

}  // namespace cairn::cli

#endif  // CAIRN_CLI_RUN_H_
