// The agent's fetcher: before a task's executor starts, it puts the task's
// `CommandInfo.uris` into the task's sandbox directory, as Mesos's fetcher
// does (Mesos docs/fetcher.md).
//
//   agent::FetcherOptions options;
//   options.cache_dir = "/var/lib/cairn/fetcher";
//   agent::Fetcher fetcher(options, &registry);
//   absl::Status s = fetcher.Fetch(task.command(), sandbox_dir);
//   // !s.ok(): the task fails (TASK_FAILED) with s.message(), e.g.
//   // "failed to fetch 'http://10.0.0.2/app.tgz': HTTP 404 Not Found"
//
// Per URI, in order (the first failure ends the fetch):
//   - Source. `http://` and `https://` (libcurl; redirects followed, at most
//     10, to http/https only; any final status outside 2xx is an error),
//     `file://` (empty or "localhost" host) and absolute local paths. Other
//     schemes and relative paths are refused.
//   - Destination. `output_file`, relative to the sandbox (it may name
//     subdirectories, which are created; absolute paths, `..` leaving the
//     sandbox and paths through symbolic links leading out of it are
//     refused), else the URI's basename with query and fragment stripped.
//     The download goes to a temporary file beside the destination and is
//     renamed into place only when complete: a failed fetch leaves no
//     partial file under its final name. Files are mode 0644.
//   - `executable`: the file is made 0755 and never extracted.
//   - `extract` (default true), by the destination's name: .tar .tar.gz
//     .tgz .tar.bz2 .tbz2 .tar.xz .txz with /bin/tar and .zip with unzip,
//     both into the sandbox directory; .gz (a single file) with gzip into
//     the sandbox, named without ".gz". Extractors run by fork/exec (no
//     shell); a non-zero exit is an error (what they already wrote stays).
//     The archive itself stays in the sandbox, except for a cached URI,
//     which is extracted straight from the cache (as Mesos does).
//   - `cache`: with a `cache_dir`, the URI (keyed by CommandInfo.user and
//     the URI) is downloaded once into the cache and copied into each
//     sandbox. Concurrent fetches of the same URI wait for one download
//     (and share its failure, which is not cached). Entries are evicted
//     least recently used first while the cache holds more than
//     `cache_size_bytes`, never while a fetch is copying or extracting
//     from them; an entry larger than the whole cache is used once and
//     evicted. Without a `cache_dir`, `cache` is ignored.
//
// Error codes (every message starts "failed to fetch '<uri>': "):
//   kInvalidArgument     a bad URI, scheme or output_file
//   kNotFound            HTTP 404/410, or a local file that does not exist
//   kFailedPrecondition  another non-2xx HTTP status, too many redirects,
//                        an archive that fails to extract, a missing
//                        extractor, the sandbox missing
//   kUnavailable         HTTP 5xx, connection or transfer errors (worth a
//                        retry)
//   kDeadlineExceeded    the URI took longer than `timeout`
//   kResourceExhausted   the download exceeds `max_bytes`
//   kInternal            local I/O errors (disk full, permissions)
//
// The cache directory belongs to one Fetcher: its index lives in memory,
// and the constructor removes entries a previous Fetcher left there (Mesos
// also starts every agent with an empty cache).
//
// Thread safety: Fetch() may be called from many threads at once.
//
// Not done (Mesos has them): chown of the results to CommandInfo.user,
// ftp/hdfs, a stall timeout (only a total one), cache entries surviving a
// restart.

#ifndef CAIRN_AGENT_FETCHER_H_
#define CAIRN_AGENT_FETCHER_H_

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "monitoring/metrics.h"

namespace cairn::agent {

struct FetcherOptions {
  std::string cache_dir;                      // "" = no cache
  uint64_t cache_size_bytes = 2ull << 30;     // LRU eviction beyond this
  absl::Duration timeout = absl::Minutes(5);  // per URI
  uint64_t max_bytes = 8ull << 30;            // per download
};

class Fetcher {
 public:
  // `metrics`, if given, must outlive the Fetcher; it gets the counters
  // slave/fetcher/{task_fetches_succeeded,task_fetches_failed,cache_hits,
  // bytes_fetched} (bytes read from sources, not copies out of the cache).
  explicit Fetcher(FetcherOptions options,
                   monitoring::Registry* metrics = nullptr);
  Fetcher(const Fetcher&) = delete;
  Fetcher& operator=(const Fetcher&) = delete;
  ~Fetcher();

  // Fetches every URI of `command` into `sandbox_dir`, in order. Returns
  // OK, or the first URI's error (codes in the file comment).
  // REQUIRES: `sandbox_dir` is an existing directory (else
  // kFailedPrecondition).
  absl::Status Fetch(const v1::CommandInfo& command,
                     const std::string& sandbox_dir);

 private:
  struct CacheEntry;

  absl::Status FetchUri(const v1::CommandInfo::URI& uri,
                        const std::string& user,
                        const std::string& sandbox_real);
  // Finds or downloads the cache entry of (`user`, uri) and pins it; the
  // caller unpins with ReleaseCacheEntry().
  absl::Status AcquireCacheEntry(const std::string& key, const std::string& uri,
                                 std::shared_ptr<CacheEntry>* entry);
  void ReleaseCacheEntry(const std::shared_ptr<CacheEntry>& entry);
  // Removes unpinned entries, least recently used first, until the cache
  // holds at most cache_size_bytes (or only pinned entries are left).
  // REQUIRES: mu_ held.
  void EvictLocked();

  const FetcherOptions options_;
  monitoring::Counter* succeeded_ = nullptr;
  monitoring::Counter* failed_ = nullptr;
  monitoring::Counter* cache_hits_ = nullptr;
  monitoring::Counter* bytes_fetched_ = nullptr;

  std::mutex mu_;
  std::condition_variable cv_;  // an entry finished downloading
  // Guarded by mu_. Key: user + '\0' + uri. Holds downloading and ready
  // entries; a failed download is removed.
  std::map<std::string, std::shared_ptr<CacheEntry>> cache_;
  uint64_t cache_bytes_ = 0;      // sum of ready entries' sizes; guarded by mu_
  uint64_t use_tick_ = 0;         // LRU clock; guarded by mu_
  bool cache_dir_ready_ = false;  // created; guarded by mu_
};

}  // namespace cairn::agent

#endif  // CAIRN_AGENT_FETCHER_H_
