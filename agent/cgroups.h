// Linux control groups as the containerizer uses them: one cgroup per
// container, `<hierarchy>/<root>/<container id>`, in every hierarchy that
// isolates it.
//
//   v1: one hierarchy per controller: `cpu` (shares, CFS quota), `cpuacct`
//       (user/system time), `memory` (hard limit, OOM kills) are required;
//       `freezer` is used when mounted, to stop a container's processes from
//       forking while they are killed. Co-mounted controllers (e.g.
//       `cpu,cpuacct`) share a directory.
//   v2: the one cgroup2 hierarchy, with the `cpu` and `memory` controllers
//       enabled for the subtree (`cgroup.subtree_control`) on the way down to
//       each container; `cgroup.kill` (else `cgroup.freeze`) to kill.
//
// A `cgroup` argument is a relative path such as "cairn/agent-1/<id>"; its
// components are validated by the caller (no "..", no empty component).
//
// Thread safety: a Cgroups object is immutable after Probe(); its methods only
// read and write cgroup files and may be called from any thread. Two calls
// that change the same cgroup concurrently (e.g. two Destroy()) are safe but
// pointless; the containerizer serializes them.

#ifndef CAIRN_AGENT_CGROUPS_H_
#define CAIRN_AGENT_CGROUPS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"

namespace cairn {
namespace agent {
namespace cgroups {

enum class Version { kV1, kV2 };

// The CFS period the CPU quota is expressed in.
inline constexpr int64_t kCfsPeriodUs = 100 * 1000;
// Mesos's floors: a container gets at least 2 shares and 1 ms of quota.
inline constexpr uint64_t kMinCpuShares = 2;
inline constexpr int64_t kMinCfsQuotaUs = 1000;

// What the memory controller knows of OOM kills in one cgroup.
struct OomInfo {
  uint64_t oom_kills = 0;    // v1 memory.oom_control oom_kill, v2 memory.events
  bool under_oom = false;    // v1 only: the cgroup is at its limit right now
  uint64_t limit_bytes = 0;  // 0 = no limit
  uint64_t max_used_bytes = 0;  // high-water mark (current usage if unknown)
};

class Cgroups {
 public:
  // Finds the hierarchies from /proc/self/mountinfo: v1 when the cpu,
  // cpuacct and memory v1 hierarchies are mounted read-write and writable,
  // else v2 when a cgroup2 mount is writable and offers the cpu and memory
  // controllers. Returns kFailedPrecondition saying what is missing.
  static absl::StatusOr<Cgroups> Probe();

  Version version() const { return version_; }
  // "cgroups/v1" or "cgroups/v2".
  std::string Name() const;

  // The directories of `cgroup`, one per hierarchy used (deduplicated).
  std::vector<std::string> Dirs(const std::string& cgroup) const;

  // True if `cgroup` exists in at least one hierarchy.
  bool Exists(const std::string& cgroup) const;

  // Creates `cgroup` (and its missing ancestors) in every hierarchy; v2 also
  // enables cpu and memory for the subtrees on the way. Existing is fine.
  absl::Status Create(const std::string& cgroup) const;

  // Applies limits; 0 leaves a resource unlimited. cpus > 0: shares =
  // max(1024 * cpus, 2) (v2: the equivalent cpu.weight) and a CFS quota of
  // cpus * 100 ms per 100 ms. mem_bytes > 0: the hard limit, and the
  // memory+swap limit (v1 memsw, v2 swap.max = 0) where the kernel has one.
  absl::Status SetLimits(const std::string& cgroup, double cpus,
                         uint64_t mem_bytes) const;

  // Moves process `pid` into `cgroup` in every hierarchy.
  absl::Status Assign(const std::string& cgroup, pid_t pid) const;

  // Processes in `cgroup` (union over the hierarchies; zombies are not
  // listed by the kernel). Empty if the cgroup does not exist.
  std::vector<pid_t> Processes(const std::string& cgroup) const;

  // Fills CPU and memory statistics, process and thread counts and limits.
  // Returns kNotFound if the cgroup does not exist.
  absl::Status Statistics(const std::string& cgroup,
                          v1::ResourceStatistics* stats) const;

  // The memory controller's OOM record for `cgroup`; nullopt if unreadable.
  std::optional<OomInfo> Oom(const std::string& cgroup) const;

  // Kills every process in `cgroup` (freeze, SIGKILL all, thaw, until none is
  // left) and removes its directories. Returns OK if it does not exist;
  // kDeadlineExceeded if processes remain or a directory stays busy after
  // `timeout` (the call may be retried).
  absl::Status Destroy(const std::string& cgroup, absl::Duration timeout) const;

  // Names of the child cgroups of `cgroup` (union over the hierarchies).
  std::vector<std::string> Children(const std::string& cgroup) const;

 private:
  Cgroups() = default;

  absl::Status KillAll(const std::string& cgroup, absl::Time deadline) const;
  // v1 freezer or v2 cgroup.freeze; best effort (returns whether frozen).
  bool Freeze(const std::string& cgroup, absl::Time deadline) const;
  void Thaw(const std::string& cgroup) const;

  std::string MemoryDir(const std::string& cgroup) const;
  std::string CpuDir(const std::string& cgroup) const;
  std::string CpuacctDir(const std::string& cgroup) const;

  Version version_ = Version::kV1;
  // v1: mount points; freezer_ may be empty. v2: all equal the cgroup2 mount.
  std::string cpu_;
  std::string cpuacct_;
  std::string memory_;
  std::string freezer_;
};

// Helpers shared with the containerizer (exposed for tests).

// The whole content of a (small) file; kNotFound if it does not exist, other
// errno-derived codes otherwise, the message naming the path.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes `value` to an existing file (a cgroup control file) in one write.
absl::Status WriteFile(const std::string& path, const std::string& value);

// Mesos's way of printing a byte count: the largest unit that loses nothing,
// e.g. "64MB", "1536KB", "100B".
std::string FormatBytes(uint64_t bytes);

}  // namespace cgroups
}  // namespace agent
}  // namespace cairn

#endif  // CAIRN_AGENT_CGROUPS_H_
