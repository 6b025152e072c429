// Process: one child process started by a multi-process test (a cairn-log
// replica), with stdout and stderr appended to a log file, SIGKILLed and
// reaped when the Process is destroyed.
//
// No child outlives its test: the destructor kills and reaps it (also when
// an assertion failed and the fixture unwinds), and each child is started
// with PR_SET_PDEATHSIG=SIGKILL in its own process group, so it dies with
// the test process even if the test crashes or Bazel kills it on timeout.
//
// Thread safety: a Process is used by one thread at a time. Start children
// from the test's main thread: the death signal fires when the *thread*
// that forked the child exits, not the process.

#ifndef CAIRN_TESTS_INTERNAL_PROCESS_H_
#define CAIRN_TESTS_INTERNAL_PROCESS_H_

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace cairn::tests {

class Process {
 public:
  // Starts the executable `argv[0]` (a path, not searched in PATH) with
  // arguments `argv`, stdin from /dev/null, stdout and stderr appended to
  // `log_path`. Returns kInvalidArgument for an empty argv, kNotFound when
  // argv[0] is not executable, kInternal when the log cannot be opened or
  // fork() fails.
  static absl::StatusOr<std::unique_ptr<Process>> Start(
      const std::vector<std::string>& argv, const std::string& log_path);

  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  // Kill().
  ~Process();

  // SIGKILLs the child's process group and reaps the child. Idempotent.
  void Kill();

  // True until the child has exited (reaps it if it just did).
  bool Running();

  // How the child ended ("exited 1", "killed by signal 9"); nullopt while it
  // runs.
  std::optional<std::string> ExitDescription() const { return exit_; }

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // The last `max_bytes` bytes of the log file, for failure messages.
  std::string LogTail(size_t max_bytes = 3000) const;

 private:
  Process(pid_t pid, std::string log_path)
      : pid_(pid), log_path_(std::move(log_path)) {}
  void Reaped(int wait_status);

  pid_t pid_;
  const std::string log_path_;
  std::optional<std::string> exit_;  // set once reaped
};

// The last `max_bytes` bytes of the file at `path` ("" if unreadable).
std::string FileTail(const std::string& path, size_t max_bytes);

}  // namespace cairn::tests

#endif  // CAIRN_TESTS_INTERNAL_PROCESS_H_
