// Child processes of cairn-executor: the task and health-check commands.
//
// The executor is a child subreaper (orphans of the task become its
// children), so it reaps children it did not start. That must never steal the
// exit status of a child someone is waiting for. Hence every child is started
// with Launch(), which forks under a process-wide lock and records the pid as
// *owned* before the lock is released; ReapStrays() takes the same lock and
// reaps only zombies that are not owned. An owner waits with TryWait() /
// Wait(), which also release the ownership once the child is reaped.
//
// Launch() builds everything before fork(); the child only makes
// async-signal-safe calls (setpgid, sigprocmask, sigaction, chdir,
// setgroups/setgid/setuid, execve) and reports a failure before exec through
// a close-on-exec pipe, so Launch() returns it as an error (the child reaped).
//
// Thread safety: all functions are thread-safe.

#ifndef CAIRN_AGENT_CHILD_PROCESS_H_
#define CAIRN_AGENT_CHILD_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"

namespace cairn::agent {

// Who a child runs as (resolved before fork: getpwnam is not
// async-signal-safe).
struct UserIds {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

// Returns the ids of `user`: kNotFound naming the user when unknown.
absl::StatusOr<UserIds> ResolveUser(const std::string& user);

struct LaunchSpec {
  // Looked up in the PATH of `environment` when it has no '/'.
  std::string executable;
  std::vector<std::string> argv;  // what the program sees as its argv
  std::vector<std::string> environment;  // "NAME=value"
  std::string working_directory;         // "" = inherit
  std::optional<UserIds> user;           // switch to this user (needs root)
  // setpgid(0, 0): the child leads a new process group (pgid == pid), so
  // kill(-pid, ...) reaches it and everything it forks.
  bool new_process_group = true;
};

// Forks and execs `spec`. Returns the child's pid, owned by the caller until
// TryWait()/Wait() reap it. Errors: kInvalidArgument for an empty executable,
// kInternal when fork fails, kFailedPrecondition when the child could not
// become `user` or could not exec (the message says which and why; the child
// has been reaped).
absl::StatusOr<pid_t> Launch(const LaunchSpec& spec);

// Reaps `pid` if it has exited and returns its wait status; nullopt while it
// runs. REQUIRES: `pid` came from Launch() and was not reaped yet.
std::optional<int> TryWait(pid_t pid);

// Blocks until `pid` exits; returns its wait status.
int Wait(pid_t pid);

// Reaps every exited child that no owner waits for; returns how many.
int ReapStrays();

// SIGKILLs every live child of this process that nobody owns (orphans of a
// task, re-parented to us as subreaper). Returns how many were signalled.
int KillStrayChildren();

// Pids of live (not zombie) processes whose process group is `pgid`.
std::vector<pid_t> LiveProcessesInGroup(pid_t pgid);

// "exited with status 3", "terminated by signal SIGKILL".
std::string DescribeWaitStatus(int wait_status);

// `base` ("NAME=value" strings) with `overrides` applied, names kept unique
// (an override replaces a base entry in place; new ones are appended in
// order). Only VALUE variables are applied; a SECRET variable is an error
// (kInvalidArgument naming `field`).
absl::StatusOr<std::vector<std::string>> MergeEnvironment(
    const std::vector<std::string>& base, const v1::Environment& overrides,
    const std::string& field);

// What a CommandInfo runs: "/bin/sh" with {"sh", "-c", value} when `shell`
// (the default), else the executable `value` with argv `arguments` (argv[0]
// included, as Mesos) or {value} when there are none. kInvalidArgument naming
// `field` when `value` is missing.
struct CommandLine {
  std::string executable;
  std::vector<std::string> argv;
};
absl::StatusOr<CommandLine> ResolveCommand(const v1::CommandInfo& command,
                                           const std::string& field);

// This process's environment as "NAME=value" strings.
std::vector<std::string> CurrentEnvironment();

}  // namespace cairn::agent

#endif  // CAIRN_AGENT_CHILD_PROCESS_H_
