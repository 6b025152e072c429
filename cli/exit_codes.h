// cairnctl's exit codes, and how `cairnctl run` turns a task's terminal
// status into one. `cairnctl help` and `cairnctl help run` print them.
//
//   0    success (status: a leader is known)
//   1    the cluster answered with an error (unknown agent, bad call, ...);
//        status: masters answer but none leads
//   2    no master answered, or no leader was reachable before --timeout
//   64   usage error (unknown command or flag, bad flag value)
//
// `run` exits with the task's own status when it ran:
//   TASK_FINISHED                                   -> 0
//   TASK_FAILED "Command exited with status N"      -> N (1..255)
//   TASK_FAILED "Command terminated with signal S"  -> 128 + S
//   TASK_FAILED otherwise                           -> 1
//   TASK_KILLED                                     -> 137 (128 + SIGKILL)
//   --timeout passed (the task is killed)           -> 124
//   not launched: TASK_ERROR, TASK_DROPPED          -> 125
//   outcome unknown: TASK_LOST, TASK_GONE, TASK_GONE_BY_OPERATOR,
//   TASK_UNKNOWN                                    -> 126
// (A command may itself exit 124..126 or 137; the printed final state tells
// them apart.)
//
// Thread safety: pure functions.

#ifndef CAIRN_CLI_EXIT_CODES_H_
#define CAIRN_CLI_EXIT_CODES_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "cairn/v1/mesos.pb.h"

namespace cairn::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUnavailable = 2;
inline constexpr int kExitUsage = 64;
inline constexpr int kExitRunTimeout = 124;
inline constexpr int kExitNotLaunched = 125;
inline constexpr int kExitOutcomeUnknown = 126;
inline constexpr int kExitKilled = 137;

// True for the states after which a task never changes again.
bool IsTerminal(v1::TaskState state);

// The exit code of `run` for a task that ended in `state` with `message`
// (see the top). REQUIRES: IsTerminal(state).
int TaskExitCode(v1::TaskState state, absl::string_view message);

// The signal number a Mesos executor's message names ("Command terminated
// with signal Killed", "... signal 9"), if any.
std::optional<int> SignalOf(absl::string_view message);

// The exit code for an error of a call to the cluster: kUnavailable and
// kDeadlineExceeded (nothing answered in time) -> 2; any other error -> 1.
int ExitCodeOf(const absl::Status& status);

}  // namespace cairn::cli

#endif  // CAIRN_CLI_EXIT_CODES_H_
