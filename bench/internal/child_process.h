// ChildProcess: one server process started by a benchmark (a Cairn replica,
// an etcd member), with its stdout and stderr appended to a log file, and
// killed when the ChildProcess is destroyed.
//
// The child cannot outlive the benchmark: it is registered with the cleanup
// registry (see cleanup.h) and started with PR_SET_PDEATHSIG=SIGKILL, so it
// is killed even if the benchmark itself crashes.
//
// Thread safety: a ChildProcess is used by one thread at a time. Start it
// from the main thread: the death signal fires when the *thread* that forked
// the child exits.

#ifndef CAIRN_BENCH_INTERNAL_CHILD_PROCESS_H_
#define CAIRN_BENCH_INTERNAL_CHILD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cairn::bench {

class ChildProcess {
 public:
  // Starts `argv[0]` (a path; not searched in PATH) with arguments `argv`,
  // stdin from /dev/null and stdout+stderr appended to `log_path`. Returns
  // kInvalidArgument for an empty argv, kNotFound when argv[0] is not an
  // executable file, kInternal when the log cannot be opened or fork fails.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      std::vector<std::string> argv, const std::string& log_path);

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Stop(absl::Seconds(2)).
  ~ChildProcess();

  // True until the process has exited (reaps it if it just did).
  bool Running();

  // Sends SIGTERM, waits up to `grace` for the process to exit, then sends
  // SIGKILL and reaps it. Idempotent. Returns the exit description, e.g.
  // "exited 0", "killed by signal 9".
  std::string Stop(absl::Duration grace = absl::Seconds(2));

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // Returns the last `max_bytes` bytes of the log file (for error reports).
  std::string LogTail(size_t max_bytes = 4000) const;

 private:
  ChildProcess(pid_t pid, std::string log_path)
      : pid_(pid), log_path_(std::move(log_path)) {}
  // Records how the process ended and unregisters it.
  void Reaped(int wait_status);

  pid_t pid_;
  const std::string log_path_;
  bool reaped_ = false;
  std::string exit_description_;
};

}  // namespace cairn::bench

#endif  // CAIRN_BENCH_INTERNAL_CHILD_PROCESS_H_
