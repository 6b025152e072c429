// cairnctl's read and maintenance subcommands: status, agents, frameworks,
// tasks, drain, reactivate, metrics. Each prints a table (table.h) or, with
// `json`, one JSON document on `out`, errors on `err` as one line
// "cairnctl: ...", and returns the exit code (exit_codes.h).
//
// Thread safety: one thread.

#ifndef CAIRN_CLI_COMMANDS_H_
#define CAIRN_CLI_COMMANDS_H_

#include <optional>
#include <ostream>
#include <string>

#include "absl/time/time.h"
#include "cli/cluster.h"

namespace cairn::cli {

// Leader, and each master's role, leader, applied position, log range and
// health. 0 when a master says it is leading; 1 when masters answer but
// none leads; 2 when none answers.
int StatusCommand(Cluster& cluster, bool json, std::ostream& out,
                  std::ostream& err);

// `all`: removed (completed) frameworks too.
int AgentsCommand(Cluster& cluster, bool json, std::ostream& out,
                  std::ostream& err);
int FrameworksCommand(Cluster& cluster, bool all, bool json, std::ostream& out,
                      std::ostream& err);

struct TaskFilter {
  std::string framework_id, agent_id, state, name_substring;
  bool all = false;  // completed tasks too
};
int TasksCommand(Cluster& cluster, const TaskFilter& filter, bool json,
                 std::ostream& out, std::ostream& err);

int DrainCommand(Cluster& cluster, const std::string& agent_id,
                 std::optional<absl::Duration> max_grace_period,
                 bool mark_gone, std::ostream& out, std::ostream& err);
int ReactivateCommand(Cluster& cluster, const std::string& agent_id,
                      std::ostream& out, std::ostream& err);

// /metrics/snapshot of the leader (or, with `all`, of every master),
// keys starting with `prefix`.
int MetricsCommand(Cluster& cluster, const std::string& prefix, bool all,
                   bool json, std::ostream& out, std::ostream& err);

// "2.5" / "0.1" / "4096": a scalar the way a table shows it.
std::string FormatScalar(double value);

}  // namespace cairn::cli

#endif  // CAIRN_CLI_COMMANDS_H_
