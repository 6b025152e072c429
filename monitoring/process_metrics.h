// Process metrics, the same on every Cairn process with a metrics Registry
// (masters, agents): read from /proc and getrusage at each scrape.
//
//   key (/metrics/snapshot)     Prometheus name                   meaning
//   process/start_time_secs     cairn_process_start_time_seconds  start, Unix s
//   process/uptime_secs         cairn_process_uptime_seconds      since start
//   process/cpu_user_secs       cairn_process_cpu_user_seconds    user CPU
//   process/cpu_system_secs     cairn_process_cpu_system_seconds  system CPU
//   process/rss_bytes           cairn_process_rss_bytes           resident set
//   process/virtual_memory_bytes ..._virtual_memory_bytes         address space
//   process/open_fds            cairn_process_open_fds            open fds
//   process/max_fds             cairn_process_max_fds             RLIMIT_NOFILE
//   process/threads             cairn_process_threads             threads
//
// All are gauges (CPU seconds are fractional; the registry's counters are
// integers). A value that cannot be read at a scrape keeps its previous one.
//
// Thread safety: ReadProcessStats is safe from any thread; the metrics are
// refreshed by a scrape hook on the scraping thread.

#ifndef CAIRN_MONITORING_PROCESS_METRICS_H_
#define CAIRN_MONITORING_PROCESS_METRICS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "monitoring/metrics.h"

namespace cairn::monitoring {

// One reading of this process's resource use.
struct ProcessStats {
  absl::Time start_time;     // from /proc/self/stat and the boot time
  double cpu_user_secs = 0;  // getrusage(RUSAGE_SELF)
  double cpu_system_secs = 0;
  uint64_t rss_bytes = 0;  // /proc/self/statm
  uint64_t virtual_memory_bytes = 0;
  uint64_t open_fds = 0;  // entries of /proc/self/fd
  uint64_t max_fds = 0;   // the soft RLIMIT_NOFILE
  uint64_t threads = 0;   // /proc/self/stat
};

// Reads the stats now. kInternal (naming the file) when /proc cannot be
// read or parsed.
absl::StatusOr<ProcessStats> ReadProcessStats();

// Registers the gauges of the file comment on `registry`, refreshed by one
// scrape hook. REQUIRES: registry != nullptr; called once per registry.
void RegisterProcessMetrics(Registry* registry);

}  // namespace cairn::monitoring

#endif  // CAIRN_MONITORING_PROCESS_METRICS_H_
