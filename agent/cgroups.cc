#include "agent/cgroups.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace cairn {
namespace agent {
namespace cgroups {
namespace {

absl::Status ErrnoError(int error, absl::string_view what) {
  return absl::Status(absl::ErrnoToStatusCode(error),
                      absl::StrCat(what, ": ", std::strerror(error)));
}

// "key value" lines (memory.stat, cpu.stat, memory.events, oom_control).
std::map<std::string, uint64_t> ParseKeyValues(absl::string_view text) {
  std::map<std::string, uint64_t> values;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t value = 0;
    if (fields.size() == 2 && absl::SimpleAtoi(fields[1], &value)) {
      values[std::string(fields[0])] = value;
    }
  }
  return values;
}

std::optional<std::map<std::string, uint64_t>> ReadKeyValues(
    const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return std::nullopt;
  return ParseKeyValues(*text);
}

std::optional<uint64_t> ReadUint(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  uint64_t value = 0;
  if (!text.ok() ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &value)) {
    return std::nullopt;
  }
  return value;
}

std::optional<int64_t> ReadInt(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  int64_t value = 0;
  if (!text.ok() ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &value)) {
    return std::nullopt;
  }
  return value;
}

uint64_t Get(const std::map<std::string, uint64_t>& values,
             const std::string& key) {
  auto it = values.find(key);
  return it == values.end() ? 0 : it->second;
}

std::vector<pid_t> ReadPids(const std::string& path) {
  std::vector<pid_t> pids;
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return pids;
  for (absl::string_view line :
       absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    int pid = 0;
    if (absl::SimpleAtoi(line, &pid) && pid > 0) pids.push_back(pid);
  }
  return pids;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Undoes mountinfo's octal escapes ("\040" for a space).
std::string UnescapeMountPath(absl::string_view path) {
  std::string out;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '\\' && i + 3 < path.size() &&
        std::isdigit(static_cast<unsigned char>(path[i + 1])) &&
        std::isdigit(static_cast<unsigned char>(path[i + 2])) &&
        std::isdigit(static_cast<unsigned char>(path[i + 3]))) {
      int value = (path[i + 1] - '0') * 64 + (path[i + 2] - '0') * 8 +
                  (path[i + 3] - '0');
      out.push_back(static_cast<char>(value));
      i += 3;
    } else {
      out.push_back(path[i]);
    }
  }
  return out;
}

struct Mount {
  std::string path;
  std::string fstype;
  std::set<std::string> options;  // mount and super options
};

std::vector<Mount> ReadMounts() {
  std::vector<Mount> mounts;
  absl::StatusOr<std::string> text = ReadFile("/proc/self/mountinfo");
  if (!text.ok()) return mounts;
  for (absl::string_view line :
       absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 7 || dash == fields.end() || fields.end() - dash < 4) {
      continue;
    }
    Mount mount;
    mount.path = UnescapeMountPath(fields[4]);
    mount.fstype = std::string(*(dash + 1));
    for (absl::string_view option : absl::StrSplit(fields[5], ',')) {
      mount.options.insert(std::string(option));
    }
    for (absl::string_view option : absl::StrSplit(*(dash + 3), ',')) {
      mount.options.insert(std::string(option));
    }
    mounts.push_back(std::move(mount));
  }
  return mounts;
}

bool Writable(const Mount& mount) {
  return mount.options.count("rw") > 0 &&
         ::access(mount.path.c_str(), W_OK) == 0;
}

std::string Join(const std::string& dir, const std::string& name) {
  return absl::StrCat(dir, "/", name);
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("open '", path, "'"));
  std::string content;
  char buffer[8192];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return ErrnoError(error, absl::StrCat("read '", path, "'"));
    }
    if (n == 0) break;
    content.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return content;
}

absl::Status WriteFile(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("open '", path, "'"));
  ssize_t n;
  do {
    n = ::write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  int error = errno;
  ::close(fd);
  if (n < 0) {
    return ErrnoError(error,
                      absl::StrCat("write '", value, "' to '", path, "'"));
  }
  return absl::OkStatus();
}

std::string FormatBytes(uint64_t bytes) {
  constexpr uint64_t kKB = 1024, kMB = kKB * 1024, kGB = kMB * 1024,
                     kTB = kGB * 1024;
  if (bytes == 0) return "0B";
  if (bytes % kKB != 0) return absl::StrCat(bytes, "B");
  if (bytes % kMB != 0) return absl::StrCat(bytes / kKB, "KB");
  if (bytes % kGB != 0) return absl::StrCat(bytes / kMB, "MB");
  if (bytes % kTB != 0) return absl::StrCat(bytes / kGB, "GB");
  return absl::StrCat(bytes / kTB, "TB");
}

absl::StatusOr<Cgroups> Cgroups::Probe() {
  std::vector<Mount> mounts = ReadMounts();
  auto find_v1 = [&](const std::string& controller) -> std::string {
    for (const Mount& mount : mounts) {
      if (mount.fstype == "cgroup" && mount.options.count(controller) > 0 &&
          Writable(mount)) {
        return mount.path;
      }
    }
    return "";
  };
  Cgroups cgroups;
  cgroups.cpu_ = find_v1("cpu");
  cgroups.cpuacct_ = find_v1("cpuacct");
  cgroups.memory_ = find_v1("memory");
  if (!cgroups.cpu_.empty() && !cgroups.cpuacct_.empty() &&
      !cgroups.memory_.empty()) {
    cgroups.version_ = Version::kV1;
    cgroups.freezer_ = find_v1("freezer");
    return cgroups;
  }
  std::vector<std::string> missing_v1;
  if (cgroups.cpu_.empty()) missing_v1.push_back("cpu");
  if (cgroups.cpuacct_.empty()) missing_v1.push_back("cpuacct");
  if (cgroups.memory_.empty()) missing_v1.push_back("memory");

  std::string v2_problem = "no cgroup2 mount";
  for (const Mount& mount : mounts) {
    if (mount.fstype != "cgroup2") continue;
    if (!Writable(mount)) {
      v2_problem = absl::StrCat("cgroup2 at ", mount.path, " is not writable");
      continue;
    }
    absl::StatusOr<std::string> controllers =
        ReadFile(Join(mount.path, "cgroup.controllers"));
    std::set<std::string> available;
    if (controllers.ok()) {
      for (absl::string_view c :
           absl::StrSplit(absl::StripAsciiWhitespace(*controllers), ' ',
                          absl::SkipEmpty())) {
        available.insert(std::string(c));
      }
    }
    if (available.count("cpu") == 0 || available.count("memory") == 0) {
      v2_problem = absl::StrCat("cgroup2 at ", mount.path,
                                " lacks the cpu or memory controller");
      continue;
    }
    cgroups.version_ = Version::kV2;
    cgroups.cpu_ = cgroups.cpuacct_ = cgroups.memory_ = cgroups.freezer_ =
        mount.path;
    return cgroups;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "cgroups isolation unavailable: no writable cgroup v1 hierarchy for ",
      absl::StrJoin(missing_v1, ", "), "; ", v2_problem,
      " (is this process root?)"));
}

std::string Cgroups::Name() const {
  return version_ == Version::kV1 ? "cgroups/v1" : "cgroups/v2";
}

std::string Cgroups::MemoryDir(const std::string& cgroup) const {
  return Join(memory_, cgroup);
}
std::string Cgroups::CpuDir(const std::string& cgroup) const {
  return Join(cpu_, cgroup);
}
std::string Cgroups::CpuacctDir(const std::string& cgroup) const {
  return Join(cpuacct_, cgroup);
}

std::vector<std::string> Cgroups::Dirs(const std::string& cgroup) const {
  std::vector<std::string> dirs;
  for (const std::string* mount : {&memory_, &cpu_, &cpuacct_, &freezer_}) {
    if (mount->empty()) continue;
    std::string dir = Join(*mount, cgroup);
    if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) {
      dirs.push_back(dir);
    }
  }
  return dirs;
}

bool Cgroups::Exists(const std::string& cgroup) const {
  for (const std::string& dir : Dirs(cgroup)) {
    if (IsDirectory(dir)) return true;
  }
  return false;
}

absl::Status Cgroups::Create(const std::string& cgroup) const {
  std::vector<std::string> components =
      absl::StrSplit(cgroup, '/', absl::SkipEmpty());
  if (version_ == Version::kV2) {
    // Each level's subtree_control must offer cpu and memory to the next.
    std::string dir = memory_;
    for (const std::string& component : components) {
      absl::StatusOr<std::string> enabled =
          ReadFile(Join(dir, "cgroup.subtree_control"));
      std::set<std::string> controllers;
      if (enabled.ok()) {
        controllers = absl::StrSplit(absl::StripAsciiWhitespace(*enabled), ' ',
                                     absl::SkipEmpty());
      }
      if (controllers.count("memory") == 0 || controllers.count("cpu") == 0) {
        RETURN_IF_ERROR(
            WriteFile(Join(dir, "cgroup.subtree_control"), "+cpu +memory"));
      }
      dir = Join(dir, component);
      if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoError(errno, absl::StrCat("mkdir '", dir, "'"));
      }
    }
    return absl::OkStatus();
  }
  for (const std::string& mount : {memory_, cpu_, cpuacct_, freezer_}) {
    if (mount.empty()) continue;
    std::string dir = mount;
    for (const std::string& component : components) {
      dir = Join(dir, component);
      if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoError(errno, absl::StrCat("mkdir '", dir, "'"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Cgroups::SetLimits(const std::string& cgroup, double cpus,
                                uint64_t mem_bytes) const {
  if (cpus > 0) {
    uint64_t shares = std::max<uint64_t>(
        static_cast<uint64_t>(std::llround(1024 * cpus)), kMinCpuShares);
    int64_t quota_us = std::max<int64_t>(
        static_cast<int64_t>(std::llround(cpus * kCfsPeriodUs)),
        kMinCfsQuotaUs);
    if (version_ == Version::kV1) {
      RETURN_IF_ERROR(
          WriteFile(Join(CpuDir(cgroup), "cpu.shares"), absl::StrCat(shares)));
      RETURN_IF_ERROR(WriteFile(Join(CpuDir(cgroup), "cpu.cfs_period_us"),
                                absl::StrCat(kCfsPeriodUs)));
      RETURN_IF_ERROR(WriteFile(Join(CpuDir(cgroup), "cpu.cfs_quota_us"),
                                absl::StrCat(quota_us)));
    } else {
      // The kernel's (and systemd's) mapping of v1 shares [2, 262144] onto v2
      // weights [1, 10000].
      uint64_t weight =
          1 + ((std::min<uint64_t>(shares, 262144) - 2) * 9999) / 262142;
      RETURN_IF_ERROR(
          WriteFile(Join(CpuDir(cgroup), "cpu.weight"), absl::StrCat(weight)));
      RETURN_IF_ERROR(WriteFile(Join(CpuDir(cgroup), "cpu.max"),
                                absl::StrCat(quota_us, " ", kCfsPeriodUs)));
    }
  }
  if (mem_bytes > 0) {
    std::string dir = MemoryDir(cgroup);
    if (version_ == Version::kV1) {
      RETURN_IF_ERROR(WriteFile(Join(dir, "memory.limit_in_bytes"),
                                absl::StrCat(mem_bytes)));
      // memsw must stay >= the memory limit; it starts unlimited.
      std::string memsw = Join(dir, "memory.memsw.limit_in_bytes");
      if (::access(memsw.c_str(), F_OK) == 0) {
        RETURN_IF_ERROR(WriteFile(memsw, absl::StrCat(mem_bytes)));
      }
    } else {
      RETURN_IF_ERROR(
          WriteFile(Join(dir, "memory.max"), absl::StrCat(mem_bytes)));
      std::string swap = Join(dir, "memory.swap.max");
      if (::access(swap.c_str(), F_OK) == 0) {
        RETURN_IF_ERROR(WriteFile(swap, "0"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Cgroups::Assign(const std::string& cgroup, pid_t pid) const {
  for (const std::string& dir : Dirs(cgroup)) {
    RETURN_IF_ERROR(WriteFile(Join(dir, "cgroup.procs"), absl::StrCat(pid)));
  }
  return absl::OkStatus();
}

std::vector<pid_t> Cgroups::Processes(const std::string& cgroup) const {
  std::set<pid_t> pids;
  for (const std::string& dir : Dirs(cgroup)) {
    for (pid_t pid : ReadPids(Join(dir, "cgroup.procs"))) pids.insert(pid);
  }
  return std::vector<pid_t>(pids.begin(), pids.end());
}

absl::Status Cgroups::Statistics(const std::string& cgroup,
                                 v1::ResourceStatistics* stats) const {
  std::string memory = MemoryDir(cgroup);
  if (!IsDirectory(memory)) {
    return absl::NotFoundError(absl::StrCat("no cgroup '", memory, "'"));
  }
  stats->set_processes(
      static_cast<uint32_t>(ReadPids(Join(memory, "cgroup.procs")).size()));
  std::string cpu = CpuDir(cgroup);
  if (version_ == Version::kV1) {
    stats->set_threads(
        static_cast<uint32_t>(ReadPids(Join(memory, "tasks")).size()));
    if (auto acct = ReadKeyValues(Join(CpuacctDir(cgroup), "cpuacct.stat"))) {
      double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
      stats->set_cpus_user_time_secs(Get(*acct, "user") / ticks);
      stats->set_cpus_system_time_secs(Get(*acct, "system") / ticks);
    }
    if (auto cpu_stat = ReadKeyValues(Join(cpu, "cpu.stat"))) {
      stats->set_cpus_nr_periods(
          static_cast<uint32_t>(Get(*cpu_stat, "nr_periods")));
      stats->set_cpus_nr_throttled(
          static_cast<uint32_t>(Get(*cpu_stat, "nr_throttled")));
      stats->set_cpus_throttled_time_secs(Get(*cpu_stat, "throttled_time") /
                                          1e9);
    }
    std::optional<int64_t> quota = ReadInt(Join(cpu, "cpu.cfs_quota_us"));
    std::optional<int64_t> period = ReadInt(Join(cpu, "cpu.cfs_period_us"));
    std::optional<uint64_t> shares = ReadUint(Join(cpu, "cpu.shares"));
    if (quota && period && *quota > 0 && *period > 0) {
      stats->set_cpus_limit(static_cast<double>(*quota) / *period);
    } else if (shares) {
      stats->set_cpus_limit(static_cast<double>(*shares) / 1024);
    }
    if (auto usage = ReadUint(Join(memory, "memory.usage_in_bytes"))) {
      stats->set_mem_total_bytes(*usage);
    }
    // v1 shows "no limit" as a huge page-aligned number.
    auto limit = ReadUint(Join(memory, "memory.limit_in_bytes"));
    if (limit && *limit < (uint64_t{1} << 62)) {
      stats->set_mem_limit_bytes(*limit);
    }
    if (auto memory_stat = ReadKeyValues(Join(memory, "memory.stat"))) {
      uint64_t cache = Get(*memory_stat, "total_cache");
      uint64_t rss = Get(*memory_stat, "total_rss");
      stats->set_mem_cache_bytes(cache);
      stats->set_mem_file_bytes(cache);
      stats->set_mem_rss_bytes(rss);
      stats->set_mem_anon_bytes(rss);
    }
  } else {
    stats->set_threads(
        static_cast<uint32_t>(ReadPids(Join(memory, "cgroup.threads")).size()));
    if (auto cpu_stat = ReadKeyValues(Join(cpu, "cpu.stat"))) {
      stats->set_cpus_user_time_secs(Get(*cpu_stat, "user_usec") / 1e6);
      stats->set_cpus_system_time_secs(Get(*cpu_stat, "system_usec") / 1e6);
      stats->set_cpus_nr_periods(
          static_cast<uint32_t>(Get(*cpu_stat, "nr_periods")));
      stats->set_cpus_nr_throttled(
          static_cast<uint32_t>(Get(*cpu_stat, "nr_throttled")));
      stats->set_cpus_throttled_time_secs(Get(*cpu_stat, "throttled_usec") /
                                          1e6);
    }
    if (absl::StatusOr<std::string> max = ReadFile(Join(cpu, "cpu.max"));
        max.ok()) {
      std::vector<absl::string_view> fields =
          absl::StrSplit(absl::StripAsciiWhitespace(*max), ' ');
      int64_t quota = 0, period = 0;
      if (fields.size() == 2 && absl::SimpleAtoi(fields[0], &quota) &&
          absl::SimpleAtoi(fields[1], &period) && quota > 0 && period > 0) {
        stats->set_cpus_limit(static_cast<double>(quota) / period);
      }
    }
    if (auto usage = ReadUint(Join(memory, "memory.current"))) {
      stats->set_mem_total_bytes(*usage);
    }
    if (auto limit = ReadUint(Join(memory, "memory.max"))) {  // "max": none
      stats->set_mem_limit_bytes(*limit);
    }
    if (auto memory_stat = ReadKeyValues(Join(memory, "memory.stat"))) {
      uint64_t file = Get(*memory_stat, "file");
      uint64_t anon = Get(*memory_stat, "anon");
      stats->set_mem_cache_bytes(file);
      stats->set_mem_file_bytes(file);
      stats->set_mem_rss_bytes(anon);
      stats->set_mem_anon_bytes(anon);
    }
  }
  return absl::OkStatus();
}

std::optional<OomInfo> Cgroups::Oom(const std::string& cgroup) const {
  std::string memory = MemoryDir(cgroup);
  OomInfo info;
  if (version_ == Version::kV1) {
    auto control = ReadKeyValues(Join(memory, "memory.oom_control"));
    if (!control) return std::nullopt;
    info.oom_kills = Get(*control, "oom_kill");
    info.under_oom = Get(*control, "under_oom") > 0;
    info.limit_bytes =
        ReadUint(Join(memory, "memory.limit_in_bytes")).value_or(0);
    info.max_used_bytes =
        ReadUint(Join(memory, "memory.max_usage_in_bytes")).value_or(0);
  } else {
    auto events = ReadKeyValues(Join(memory, "memory.events"));
    if (!events) return std::nullopt;
    info.oom_kills = Get(*events, "oom_kill");
    info.limit_bytes = ReadUint(Join(memory, "memory.max")).value_or(0);
    std::optional<uint64_t> peak = ReadUint(Join(memory, "memory.peak"));
    if (!peak) peak = ReadUint(Join(memory, "memory.current"));
    info.max_used_bytes = peak.value_or(0);
  }
  return info;
}

bool Cgroups::Freeze(const std::string& cgroup, absl::Time deadline) const {
  if (version_ == Version::kV1) {
    if (freezer_.empty()) return false;
    std::string state = Join(Join(freezer_, cgroup), "freezer.state");
    if (!WriteFile(state, "FROZEN").ok()) return false;
    while (absl::Now() < deadline) {
      absl::StatusOr<std::string> now = ReadFile(state);
      if (!now.ok()) return false;
      if (absl::StartsWith(*now, "FROZEN")) return true;
      // A task stuck in FREEZING: thaw and try again (as Mesos does).
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      (void)WriteFile(state, "THAWED");
      (void)WriteFile(state, "FROZEN");
    }
    return false;
  }
  std::string dir = MemoryDir(cgroup);
  if (!WriteFile(Join(dir, "cgroup.freeze"), "1").ok()) return false;
  while (absl::Now() < deadline) {
    auto events = ReadKeyValues(Join(dir, "cgroup.events"));
    if (!events) return false;
    if (Get(*events, "frozen") == 1) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

void Cgroups::Thaw(const std::string& cgroup) const {
  if (version_ == Version::kV1) {
    if (!freezer_.empty()) {
      (void)WriteFile(Join(Join(freezer_, cgroup), "freezer.state"), "THAWED");
    }
    return;
  }
  (void)WriteFile(Join(MemoryDir(cgroup), "cgroup.freeze"), "0");
}

absl::Status Cgroups::KillAll(const std::string& cgroup,
                              absl::Time deadline) const {
  bool v2_kill =
      version_ == Version::kV2 &&
      ::access(Join(MemoryDir(cgroup), "cgroup.kill").c_str(), F_OK) == 0;
  while (true) {
    std::vector<pid_t> pids = Processes(cgroup);
    if (pids.empty()) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(pids.size(), " process(es) of cgroup '", cgroup,
                       "' survive SIGKILL, e.g. pid ", pids.front()));
    }
    if (v2_kill) {
      (void)WriteFile(Join(MemoryDir(cgroup), "cgroup.kill"), "1");
    } else {
      // Frozen processes cannot fork between the listing and the kill.
      bool frozen =
          Freeze(cgroup, std::min(deadline, absl::Now() + absl::Seconds(1)));
      for (pid_t pid : Processes(cgroup)) ::kill(pid, SIGKILL);
      if (frozen) Thaw(cgroup);
    }
    // The kernel removes a killed process from the cgroup once it has exited.
    absl::Time settle =
        std::min(deadline, absl::Now() + absl::Milliseconds(200));
    while (absl::Now() < settle && !Processes(cgroup).empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
}

absl::Status Cgroups::Destroy(const std::string& cgroup,
                              absl::Duration timeout) const {
  absl::Time deadline = absl::Now() + timeout;
  // Children first (Cairn creates none, but an orphan may have some).
  for (const std::string& child : Children(cgroup)) {
    RETURN_IF_ERROR(Destroy(Join(cgroup, child), deadline - absl::Now()));
  }
  RETURN_IF_ERROR(KillAll(cgroup, deadline));
  for (const std::string& dir : Dirs(cgroup)) {
    while (::rmdir(dir.c_str()) != 0) {
      if (errno == ENOENT) break;
      // EBUSY for a moment after the last process left.
      if (errno != EBUSY || absl::Now() >= deadline) {
        return ErrnoError(errno, absl::StrCat("rmdir '", dir, "'"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> Cgroups::Children(const std::string& cgroup) const {
  std::set<std::string> names;
  for (const std::string& dir : Dirs(cgroup)) {
    DIR* handle = ::opendir(dir.c_str());
    if (handle == nullptr) continue;
    while (struct dirent* entry = ::readdir(handle)) {
      std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      if (IsDirectory(Join(dir, name))) names.insert(name);
    }
    ::closedir(handle);
  }
  return std::vector<std::string>(names.begin(), names.end());
}

}  // namespace cgroups
}  // namespace agent
}  // namespace cairn
