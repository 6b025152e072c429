#include "monitoring/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace cairn::monitoring {
namespace {

absl::StatusOr<std::string> ReadProcFile(const char* path) {
  std::ifstream in(path);
  if (!in) return absl::InternalError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The fields of /proc/self/stat after the command name (which may hold
// spaces and parentheses): fields()[0] is field 3 ("state") of proc(5).
absl::StatusOr<std::vector<std::string>> StatFields() {
  absl::StatusOr<std::string> stat = ReadProcFile("/proc/self/stat");
  if (!stat.ok()) return stat.status();
  const size_t close = stat->rfind(')');
  if (close == std::string::npos) {
    return absl::InternalError("/proc/self/stat has no ')'");
  }
  return std::vector<std::string>(absl::StrSplit(
      absl::string_view(*stat).substr(close + 1), ' ', absl::SkipEmpty()));
}

// proc(5) field number -> index into StatFields().
constexpr size_t Field(int number) { return static_cast<size_t>(number - 3); }

absl::StatusOr<uint64_t> BootTimeSecs() {
  absl::StatusOr<std::string> stat = ReadProcFile("/proc/stat");
  if (!stat.ok()) return stat.status();
  for (absl::string_view line : absl::StrSplit(*stat, '\n')) {
    if (absl::ConsumePrefix(&line, "btime ")) {
      uint64_t btime = 0;
      if (absl::SimpleAtoi(line, &btime)) return btime;
    }
  }
  return absl::InternalError("/proc/stat has no btime");
}

absl::StatusOr<uint64_t> CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return absl::InternalError("cannot list /proc/self/fd");
  const int own_fd = dirfd(dir);
  uint64_t count = 0;
  while (struct dirent* entry = readdir(dir)) {
    int fd = 0;
    if (!absl::SimpleAtoi(entry->d_name, &fd)) continue;  // "." and ".."
    if (fd != own_fd) ++count;
  }
  closedir(dir);
  return count;
}

double Seconds(const struct timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

}  // namespace

absl::StatusOr<ProcessStats> ReadProcessStats() {
  ProcessStats stats;
  absl::StatusOr<std::vector<std::string>> fields = StatFields();
  if (!fields.ok()) return fields.status();
  uint64_t threads = 0;
  uint64_t start_ticks = 0;
  uint64_t vsize = 0;
  if (fields->size() <= Field(23) ||
      !absl::SimpleAtoi((*fields)[Field(20)], &threads) ||
      !absl::SimpleAtoi((*fields)[Field(22)], &start_ticks) ||
      !absl::SimpleAtoi((*fields)[Field(23)], &vsize)) {
    return absl::InternalError("/proc/self/stat: unexpected fields");
  }
  stats.threads = threads;
  stats.virtual_memory_bytes = vsize;
  absl::StatusOr<uint64_t> boot = BootTimeSecs();
  if (!boot.ok()) return boot.status();
  const long ticks_per_sec = sysconf(_SC_CLK_TCK);
  stats.start_time =
      absl::FromUnixSeconds(static_cast<int64_t>(*boot)) +
      absl::Seconds(
          static_cast<double>(start_ticks) /
          static_cast<double>(ticks_per_sec > 0 ? ticks_per_sec : 100));

  absl::StatusOr<std::string> statm = ReadProcFile("/proc/self/statm");
  if (!statm.ok()) return statm.status();
  std::vector<std::string> pages =
      absl::StrSplit(*statm, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  uint64_t resident_pages = 0;
  if (pages.size() < 2 || !absl::SimpleAtoi(pages[1], &resident_pages)) {
    return absl::InternalError("/proc/self/statm: unexpected fields");
  }
  stats.rss_bytes = resident_pages * static_cast<uint64_t>(getpagesize());

  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) == 0) {
    stats.cpu_user_secs = Seconds(usage.ru_utime);
    stats.cpu_system_secs = Seconds(usage.ru_stime);
  }
  absl::StatusOr<uint64_t> fds = CountOpenFds();
  if (!fds.ok()) return fds.status();
  stats.open_fds = *fds;
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    stats.max_fds = limit.rlim_cur == RLIM_INFINITY
                        ? UINT64_MAX
                        : static_cast<uint64_t>(limit.rlim_cur);
  }
  return stats;
}

void RegisterProcessMetrics(Registry* registry) {
  Registry& r = *registry;
  // The start time does not change: read once (else: registration time).
  absl::StatusOr<ProcessStats> first = ReadProcessStats();
  const absl::Time start = first.ok() ? first->start_time : absl::Now();
  r.AddGauge("process/start_time_secs",
             "Start time of the process since the Unix epoch in seconds.")
      ->Set(absl::ToDoubleSeconds(start - absl::UnixEpoch()));
  r.AddGaugeCallback(
      "process/uptime_secs", "Seconds since the process started.",
      [start] { return absl::ToDoubleSeconds(absl::Now() - start); });
  Gauge* user = r.AddGauge("process/cpu_user_secs",
                           "User CPU time spent by the process in seconds.");
  Gauge* system =
      r.AddGauge("process/cpu_system_secs",
                 "System (kernel) CPU time spent by the process in seconds.");
  Gauge* rss = r.AddGauge("process/rss_bytes", "Resident memory in bytes.");
  Gauge* vm = r.AddGauge("process/virtual_memory_bytes",
                         "Virtual memory size in bytes.");
  Gauge* fds = r.AddGauge("process/open_fds", "Open file descriptors.");
  Gauge* max_fds = r.AddGauge("process/max_fds",
                              "Maximum open file descriptors (soft limit).");
  Gauge* threads = r.AddGauge("process/threads", "Threads of the process.");
  r.AddScrapeHook([=] {
    absl::StatusOr<ProcessStats> stats = ReadProcessStats();
    if (!stats.ok()) return;  // keep the previous values
    user->Set(stats->cpu_user_secs);
    system->Set(stats->cpu_system_secs);
    rss->Set(static_cast<double>(stats->rss_bytes));
    vm->Set(static_cast<double>(stats->virtual_memory_bytes));
    fds->Set(static_cast<double>(stats->open_fds));
    max_fds->Set(static_cast<double>(stats->max_fds));
    threads->Set(static_cast<double>(stats->threads));
  });
}

}  // namespace cairn::monitoring
