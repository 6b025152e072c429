// Temporary verbosity: Mesos's /logging/toggle on every Cairn process that
// serves HTTP (masters, agents), plus our /logging/level to observe it.
//
//   GET|POST /logging/toggle?level=N&duration=D
//       Sets the VLOG verbosity to N for D (Mesos duration syntax: "10secs",
//       "1mins", "500ms", "1.5hrs"; see ParseMesosDuration), then reverts to
//       the original level. A second toggle replaces the first one's timer.
//       N below the original level is refused (as Mesos); N equal to it
//       reverts now. 200 with the /logging/level body; 400
//       {"error": "...", "field": "level"|"duration"} for a missing, malformed
//       or out-of-range value. Without both parameters: 200 with the current
//       level as text ("3\n"), as Mesos answers.
//   GET /logging/level
//       {"level": N, "original_level": M, "reverts_at": <float seconds since
//       the epoch> | null}.
//
// The revert is done by the toggle's own thread at the deadline; it does not
// wait for a request. Toggle and revert each log one INFO line.
//
// Thread safety: every method of VerbosityToggle is safe from any thread.
// The verbosity itself is the process-wide logging::Verbosity(): a process
// should have one VerbosityToggle (ProcessVerbosityToggle()), which every
// HTTP server of the process may share.

#ifndef CAIRN_MONITORING_LOGGING_HTTP_H_
#define CAIRN_MONITORING_LOGGING_HTTP_H_

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/http_message.h"
#include "common/http_server.h"

namespace cairn::monitoring {

inline constexpr char kLoggingTogglePath[] = "/logging/toggle";
inline constexpr char kLoggingLevelPath[] = "/logging/level";

// Parses a Mesos duration: a non-negative decimal number followed by one of
// the units ns, us, ms, secs, mins, hrs, days, weeks ("10secs", "0.5mins").
// kInvalidArgument (quoting the text) otherwise.
absl::StatusOr<absl::Duration> ParseMesosDuration(absl::string_view text);

class VerbosityToggle {
 public:
  // What the toggle looks like now.
  struct State {
    int level = 0;                         // logging::Verbosity()
    int original_level = 0;                // reverted to at reverts_at
    std::optional<absl::Time> reverts_at;  // none when nothing is pending
  };

  // Reverts to `original_level`. Starts the revert thread.
  explicit VerbosityToggle(int original_level);
  VerbosityToggle(const VerbosityToggle&) = delete;
  VerbosityToggle& operator=(const VerbosityToggle&) = delete;
  // Reverts a pending toggle now and joins the thread.
  ~VerbosityToggle();

  // Sets the verbosity to `level` until now + `duration` (replacing any
  // pending revert); `level` == original reverts now. kInvalidArgument when
  // level < 0 or < the original level, or duration <= 0.
  absl::Status Toggle(int level, absl::Duration duration);

  State Get() const;

  // Test hook: reverts as the thread would if `now` is at or past the
  // deadline.
  void TEST_RevertIfDue(absl::Time now);

 private:
  void Run();
  // REQUIRES: mu_ held.
  void RevertLocked();

  const int original_level_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_.
  std::optional<absl::Time> reverts_at_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts after the fields above exist
};

// The process's toggle, made on the first call with the verbosity of that
// moment as the original level (call it after the flags set --v). Never
// destroyed.
VerbosityToggle* ProcessVerbosityToggle();

// The answers of the two endpoints (see the file comment).
http::Response ToggleResponse(VerbosityToggle* toggle,
                              const http::Request& request);
http::Response LevelResponse(const VerbosityToggle& toggle);

// Routes GET|POST /logging/toggle and GET /logging/level of `server` to
// `toggle`. REQUIRES: `toggle` outlives the server's handlers.
void ServeLoggingToggle(http::Server* server,
                        VerbosityToggle* toggle = ProcessVerbosityToggle());

}  // namespace cairn::monitoring

#endif  // CAIRN_MONITORING_LOGGING_HTTP_H_
