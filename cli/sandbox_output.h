// SandboxOutput: prints a task's stdout and stderr as they grow, read from
// its agent's Mesos endpoints: GET /state (frameworks[].executors[] with
// their `directory` and tasks; completed_frameworks / completed_executors
// too) for the sandbox, then GET /files/read?path=<sandbox>/stdout&offset=N
// ({"data": ..., "offset": N}) for the bytes after what was printed.
//
// Best effort: the first failure (agent unreachable, sandbox not found at
// the end, an answer of another shape) prints one warning to `err` and
// stops reading; the run goes on regardless.
//
// Thread safety: one thread at a time.

#ifndef CAIRN_CLI_SANDBOX_OUTPUT_H_
#define CAIRN_CLI_SANDBOX_OUTPUT_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/json_value.h"
#include "common/master_channel.h"

namespace cairn::cli {

class SandboxOutput {
 public:
  SandboxOutput(http::HostPort agent, std::string framework_id,
                std::string task_id, std::ostream* out, std::ostream* err);

  // Prints what was added since the last call. `final`: the task ended, so
  // a sandbox that cannot be found now never will be (warn).
  void Poll(bool final);

 private:
  absl::Status FindSandbox(bool* found);
  absl::Status ReadFile(const std::string& name, uint64_t* offset,
                        std::ostream* to);
  void Warn(const absl::Status& status);

  const http::HostPort agent_;
  const std::string framework_id_;
  const std::string task_id_;
  std::ostream* out_;
  std::ostream* err_;
  bool disabled_ = false;
  std::optional<std::string> directory_;
  uint64_t stdout_offset_ = 0;
  uint64_t stderr_offset_ = 0;
};

// The sandbox directory of `task_id` of `framework_id` in an agent's
// /state document (Mesos's shape), or nullopt.
std::optional<std::string> SandboxDirectory(const JsonValue& state,
                                            absl::string_view framework_id,
                                            absl::string_view task_id);

// Percent-encodes everything but unreserved characters and '/'.
std::string UrlEncode(absl::string_view text);

}  // namespace cairn::cli

#endif  // CAIRN_CLI_SANDBOX_OUTPUT_H_
