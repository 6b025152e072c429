// The containerizer: launches a process (the agent's per-task executor) in a
// container, reports the container's resource usage and limitations, and
// destroys it with everything it started.
//
// A container is
//   - its own session (setsid): not in the agent's process group or session,
//     no controlling terminal, so it survives the agent's death (SIGKILL,
//     SIGHUP to the agent's group) and never gets SIGPIPE from the agent;
//   - its sandbox as working directory, stdin from /dev/null, stdout and
//     stderr appended to `<sandbox>/stdout` and `<sandbox>/stderr`;
//   - exactly the environment it is given (nothing is inherited);
//   - with isolation "cgroups/v1" or "cgroups/v2": the cgroup
//     `<root>/<container id>` in every hierarchy used (see cgroups.h), with a
//     CPU share and CFS quota and a hard memory limit, entered before exec,
//     so every descendant is in it too and cannot leave it;
//   - with isolation "posix": no limits; the container's processes are those
//     of its session (a descendant that calls setsid() escapes: use cgroups
//     where that matters).
//
// Containers outlive this object: destroying a Containerizer leaves them
// running, and a new one (after an agent restart) takes them back with
// Recover(). `root` names the cgroups of one agent, so agents sharing a
// machine never touch each other's containers. For posix, and to check pids
// against reuse, each container is also recorded in `state_dir` (one small
// file per container: pid, start time, limits).
//
// Pid reuse: a container's leading process is identified by (pid, start time
// from /proc/<pid>/stat field 22); posix kills go through a pidfd opened and
// then checked against that start time.
//
// The launched pid is a child of the calling process; the caller reaps it
// (waitpid) and learns its exit status. A zombie counts as dead here.
//
// Thread safety: every method may be called from any thread. Launch and
// Destroy of different containers run concurrently; a Launch or Destroy in
// progress makes other calls for that container fail with kUnavailable.

#ifndef CAIRN_AGENT_CONTAINERIZER_H_
#define CAIRN_AGENT_CONTAINERIZER_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/cgroups.h"
#include "cairn/v1/mesos.pb.h"

namespace cairn {
namespace agent {

struct ContainerLimits {
  double cpus = 0;         // 0 = no CPU limit
  uint64_t mem_bytes = 0;  // 0 = no memory limit
};

struct ContainerLaunchSpec {
  // Unique among this agent's live containers: [A-Za-z0-9._-]+ (a UUID).
  std::string container_id;
  // An existing directory: the working directory, holding stdout/stderr.
  std::string sandbox;
  // argv[0] is an absolute path; it is executed as is (no PATH search).
  std::vector<std::string> argv;
  // The whole environment, "KEY=VALUE" each.
  std::vector<std::string> env;
  ContainerLimits limits;
};

// A limit the container ran into (e.g. the kernel OOM-killed a process).
struct Limitation {
  v1::TaskStatus::Reason reason = v1::TaskStatus::REASON_CONTAINER_LIMITATION;
  std::string message;
};

class Containerizer {
 public:
  // How long Destroy() keeps killing before it gives up (kDeadlineExceeded).
  static constexpr absl::Duration kDestroyTimeout = absl::Seconds(60);

  // `kind`: "cgroups" (v1 if its cpu, cpuacct and memory hierarchies are
  // writable, else a writable cgroup2 with cpu and memory; otherwise
  // kFailedPrecondition saying what is missing) or "posix".
  // `root`: relative cgroup path of this agent's containers, e.g.
  // "cairn/<slug of the work_dir>" ([A-Za-z0-9._-] components, no "..").
  // `state_dir`: where containers are recorded (created if missing); empty
  // keeps records in memory only, and then Recover() cannot find posix
  // orphans nor check adopted pids against reuse.
  // Returns kInvalidArgument naming the bad argument.
  static absl::StatusOr<std::unique_ptr<Containerizer>> Create(
      const std::string& kind, const std::string& root,
      const std::string& state_dir = "");

  Containerizer(const Containerizer&) = delete;
  Containerizer& operator=(const Containerizer&) = delete;
  // Leaves every container running.
  ~Containerizer();

  // "cgroups/v1", "cgroups/v2" or "posix".
  std::string isolation() const;

  // Starts `spec.argv` in a new container and returns its pid once it has
  // exec'd. Errors: kInvalidArgument naming the bad field of `spec`;
  // kAlreadyExists if the container id is in use; the errno-derived code of
  // a failed chdir/exec, naming the path (e.g. kNotFound for a missing
  // argv[0]); cgroup errors. On error nothing is left behind (no process, no
  // cgroup, no record).
  absl::StatusOr<pid_t> Launch(const ContainerLaunchSpec& spec);

  // The container's resource usage now: cgroups: cpuacct/cpu.stat,
  // memory usage/rss/cache/limit, processes, threads; posix: the sum over
  // the session's processes (/proc/<pid>/stat, statm) and the launch limits.
  // kNotFound for an unknown container (or one whose cgroup is gone).
  absl::StatusOr<v1::ResourceStatistics> Usage(const std::string& container_id);

  // The limitation the container has hit, if any: a memory OOM kill
  // (REASON_CONTAINER_LIMITATION_MEMORY, "Memory limit exceeded: Requested:
  // 64MB Maximum Used: 64MB"). Always nullopt for posix and unknown ids.
  std::optional<Limitation> CheckLimitation(const std::string& container_id);

  // Kills every process of the container and waits until none is left, then
  // removes its cgroups and record. OK if the container is unknown or already
  // gone (idempotent). kDeadlineExceeded if processes survive
  // kDestroyTimeout (retry); kUnavailable while a Launch of it is running.
  absl::Status Destroy(const std::string& container_id);

  // After a restart: adopts each container of `wanted` (id -> pid of its
  // leading process, from the agent's checkpoint), checking the pid against
  // the recorded start time when there is a record, and destroys every other
  // container found under `root` (cgroups) or in `state_dir` (orphans).
  // Returns the first error of an orphan's destruction (the others are still
  // attempted).
  absl::Status Recover(const std::map<std::string, pid_t>& wanted);

  // True while a process of the container is alive (its cgroup is not empty
  // / its session has a live process). False for unknown ids.
  bool Alive(const std::string& container_id);

  // Removes this agent's (empty) root cgroups when it has no container left,
  // so a stopped agent leaves nothing behind; a later Launch creates them
  // again. Nothing for posix, or while a container exists.
  void ReleaseRoot();

  // The ids of the containers this object knows (launched or adopted).
  std::vector<std::string> Containers();

  // The container's cgroup directories (one per hierarchy; empty for posix),
  // whether or not they exist. For diagnostics and tests.
  std::vector<std::string> CgroupDirs(const std::string& container_id) const;

 private:
  struct Container {
    pid_t pid = 0;
    uint64_t start_ticks = 0;  // /proc/<pid>/stat field 22; 0 = unknown
    ContainerLimits limits;
    bool busy = false;  // a Launch or Destroy is in progress
  };

  Containerizer(std::optional<cgroups::Cgroups> cgroups, std::string root,
                std::string state_dir);

  std::string CgroupOf(const std::string& container_id) const;
  absl::StatusOr<pid_t> LaunchProcess(const ContainerLaunchSpec& spec);
  // Kills and cleans up without touching containers_.
  absl::Status DestroyContainer(const std::string& container_id,
                                const Container& container);
  // Live (non-zombie) processes of a posix container's session.
  std::vector<pid_t> SessionProcesses(const Container& container) const;
  absl::Status WriteRecord(const std::string& container_id,
                           const Container& container) const;
  std::optional<Container> ReadRecord(const std::string& container_id) const;
  void RemoveRecord(const std::string& container_id) const;

  const std::optional<cgroups::Cgroups> cgroups_;  // nullopt: posix
  const std::string root_;
  const std::string state_dir_;

  std::mutex mu_;
  std::map<std::string, Container> containers_;  // guarded by mu_
};

}  // namespace agent
}  // namespace cairn

#endif  // CAIRN_AGENT_CONTAINERIZER_H_
