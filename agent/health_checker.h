// HealthChecker: runs a task's `HealthCheck` (COMMAND, HTTP or TCP) on a
// thread of its own and reports the task's health, as Mesos does
// (docs/health-checks.md in Mesos):
//
//   - The first check runs `delay_seconds` after Start, then one every
//     `interval_seconds` after the previous one ended. Each check is bounded
//     by `timeout_seconds` (0: none); a timeout is a failure.
//   - COMMAND: the command (shell or argv) runs in the sandbox with the
//     task's environment plus the check's own variables; success = exit 0.
//     HTTP: GET scheme://127.0.0.1:port/path (libcurl, redirects followed,
//     certificates not verified); success = status in `statuses` if given,
//     else 200-399. TCP: success = a connect to 127.0.0.1:port.
//   - Failures within `grace_period_seconds` of Start are ignored until the
//     first success. Every other failure increments a counter that a
//     success resets.
//   - Reported through the callback: the first success and every change to
//     healthy (healthy=true), and every counted failure (healthy=false).
//     When the counter reaches `consecutive_failures`, that failure's update
//     has kill_task=true and checking stops.
//
// Thread safety: the callback runs on the checker's thread and must not
// block for long nor call Stop(). Stop() and the destructor may be called
// from any other thread; Stop() interrupts a check in progress (a command
// check's process group is SIGKILLed) and joins the thread.

#ifndef CAIRN_AGENT_HEALTH_CHECKER_H_
#define CAIRN_AGENT_HEALTH_CHECKER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"

namespace cairn::agent {

struct HealthUpdate {
  bool healthy = false;
  // Set on the failure that reached `consecutive_failures`: kill the task.
  bool kill_task = false;
  uint32_t consecutive_failures = 0;
  std::string message;  // why the check failed; "" on success
};

struct HealthCheckerOptions {
  std::string sandbox;                   // cwd of COMMAND checks
  std::vector<std::string> environment;  // the task's, "NAME=value"
  std::string host = "127.0.0.1";        // HTTP and TCP checks
};

class HealthChecker {
 public:
  using Callback = std::function<void(const HealthUpdate& update)>;

  // Returns OK, or kInvalidArgument with a message naming the bad field
  // (prefixed by `field`, e.g. "task.health_check.http.port").
  static absl::Status Validate(const v1::HealthCheck& check,
                               const std::string& field = "health_check");

  // Validates `check` and starts checking. Errors as Validate(). A null
  // `callback` checks without reporting.
  static absl::StatusOr<std::unique_ptr<HealthChecker>> Start(
      const v1::HealthCheck& check, HealthCheckerOptions options,
      Callback callback);

  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;
  // Stop().
  ~HealthChecker();

  // Stops checking and joins the thread; no callback runs after it returns.
  // Idempotent.
  void Stop();

  // Runs one check now, on the caller's thread (also after Stop()): OK on
  // success, else an error whose message says why (kDeadlineExceeded on a
  // timeout). Reports nothing through the callback.
  absl::Status CheckOnce();

 private:
  HealthChecker(v1::HealthCheck check, HealthCheckerOptions options,
                Callback callback);

  void Run();
  // Waits until `deadline` or Stop(); returns false when stopped.
  bool WaitUntil(absl::Time deadline);
  // One check; gives up early (kCancelled or a failure) once `stop` is set.
  absl::Status RunCheck(const std::atomic<bool>& stop);
  absl::Status CheckCommand(absl::Time deadline, const std::atomic<bool>& stop);
  absl::Status CheckHttp(absl::Time deadline, const std::atomic<bool>& stop);
  absl::Status CheckTcp(absl::Time deadline, const std::atomic<bool>& stop);

  const v1::HealthCheck check_;
  const HealthCheckerOptions options_;
  const Callback callback_;
  const absl::Time start_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace cairn::agent

#endif  // CAIRN_AGENT_HEALTH_CHECKER_H_
