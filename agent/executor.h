// Executor: cairn-executor's logic, Mesos's command executor and default
// executor over the v1 executor HTTP API (proto/cairn/v1/executor.proto;
// Mesos's docs/executor-http-api.md). One executor runs any number of tasks,
// each supervised on its own (own process group, health checker, kill and
// updates).
//
// Protocol with the agent (POST <agent>/api/v1/executor, protobuf):
//   - SUBSCRIBE opens a RecordIO stream of Events: SUBSCRIBED first, then
//     LAUNCH, LAUNCH_GROUP, KILL, ACKNOWLEDGED, MESSAGE, SHUTDOWN, HEARTBEAT,
//     ERROR.
//   - Every status update is a separate UPDATE POST (202) with a fresh
//     16-byte uuid, and is kept until ACKNOWLEDGED names that uuid.
//   - When the agent goes away (refused, reset, stream ended) the tasks keep
//     running and the executor resubscribes with jittered exponential
//     backoff (at most `subscription_backoff_max`), sending every
//     unacknowledged update (in order, all tasks) and every task none of
//     whose updates has been acknowledged yet (`unacknowledged_tasks`).
//     Updates made while the agent is away (tasks' ends included) wait for
//     that. After `recovery_timeout` without an agent (immediately after a
//     disconnection when not checkpointing), every task is killed and Run()
//     returns 1.
//
// A task (as Mesos's command executor): LAUNCH -> TASK_STARTING, fork into a
// new process group in the sandbox (`/bin/sh -c value`, or value + argv when
// shell=false; as `command.user` when root), TASK_RUNNING. Exit 0 ->
// TASK_FINISHED; otherwise TASK_FAILED "Command exited with status N" /
// "Command terminated by signal SIGX"; TASK_KILLED when a kill was asked;
// TASK_FAILED with REASON_MAX_COMPLETION_TIME_REACHED after
// max_completion_time. A kill sends TASK_KILLING (if the framework has
// TASK_KILLING_STATE), SIGTERM to the process group, SIGKILL after the grace
// period (KILL's kill_policy, else the task's, else 3 s), and SIGKILL to
// whatever is left of the group once the task exited (and to the executor's
// orphaned children once no task runs). Health checks: agent/health_checker.h.
//
// Task groups (as Mesos's default executor): LAUNCH_GROUP starts every task
// of its TaskGroupInfo. When a task of a group ends TASK_FAILED or
// TASK_KILLED (a KILL from the agent, a failing health check, its
// max_completion_time), every other live task of that group is killed
// (TASK_KILLED). So, as in Mesos, a KILL of one task of a group ends the
// whole group. Tasks that came by LAUNCH are independent of each other.
//
// Run() returns 0 once every launched task is terminal and its terminal
// update acknowledged (or after SHUTDOWN), 1 on recovery timeout.
//
// Thread safety: Run() is called once, from one thread, which then owns all
// state; helper threads (stream reader, HTTP sender, task waiters, health
// checkers) only post inputs to it.

#ifndef CAIRN_AGENT_EXECUTOR_H_
#define CAIRN_AGENT_EXECUTOR_H_

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/health_checker.h"
#include "common/http_client.h"
#include "common/record_stream_reader.h"
#include "cairn/v1/executor.pb.h"
#include "cairn/v1/mesos.pb.h"

namespace cairn::agent {

// Parses a Mesos duration: a decimal number (fraction allowed) and a unit,
// one of ns us ms secs mins hrs days weeks ("15mins", "1.5secs").
// kInvalidArgument otherwise.
absl::StatusOr<absl::Duration> ParseMesosDuration(absl::string_view text);

struct ExecutorOptions {
  std::string agent_host = "127.0.0.1";
  uint16_t agent_port = 0;
  v1::FrameworkID framework_id;
  v1::ExecutorID executor_id;
  std::string sandbox;  // the task's cwd
  bool checkpoint = false;
  absl::Duration recovery_timeout = absl::Minutes(15);
  absl::Duration subscription_backoff_max = absl::Seconds(2);
  absl::Duration shutdown_grace_period = absl::Seconds(5);
  // The task's base environment ("NAME=value"), before command.environment.
  std::vector<std::string> environment;
  // Become the child subreaper of the task's orphans (the binary does).
  bool subreaper = true;

  // Reads the variables the agent sets (MESOS_AGENT_ENDPOINT,
  // MESOS_FRAMEWORK_ID, MESOS_EXECUTOR_ID, MESOS_SANDBOX or MESOS_DIRECTORY,
  // MESOS_CHECKPOINT, MESOS_RECOVERY_TIMEOUT, MESOS_SUBSCRIPTION_BACKOFF_MAX,
  // MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD) from `env` ("NAME=value"), which
  // also becomes `environment`. kInvalidArgument naming the variable.
  static absl::StatusOr<ExecutorOptions> FromEnvironment(
      const std::vector<std::string>& env);
};

class Executor {
 public:
  explicit Executor(ExecutorOptions options);
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;
  ~Executor();

  // Runs until done; returns the exit code (see the top of this file).
  // REQUIRES: called once.
  int Run();

 private:
  // What helper threads tell the Run() thread.
  struct Input {
    enum class Kind {
      kEvent,             // record: a serialized Event of stream `generation`
      kStreamEnded,       // status: why stream `generation` ended
      kStreamOpened,      // stream: the 200 answer to SUBSCRIBE `generation`
      kSubscribeFailed,   // status: why SUBSCRIBE `generation` failed
      kPostFailed,        // status: an UPDATE of `generation` failed
      kTaskExited,        // task_id, wait_status
      kHealth,            // task_id, health
    };
    explicit Input(Kind k) : kind(k) {}
    Kind kind;
    uint64_t generation = 0;
    std::string record;
    absl::Status status;
    std::unique_ptr<http::ClientStream> stream;
    std::string task_id;
    int wait_status = 0;
    HealthUpdate health;
  };
  // One task. Invariants: `terminated` once its terminal update exists
  // (never cleared); `running` only between a successful fork and the reap.
  struct TaskRun {
    v1::TaskInfo info;
    int group = 0;  // the LAUNCH_GROUP it came in (1, 2, ...); 0: a LAUNCH
    pid_t pid = -1;
    bool running = false;
    bool terminated = false;
    bool terminal_acknowledged = false;
    bool any_acknowledged = false;  // else resent in unacknowledged_tasks
    bool killing = false;
    bool killed_by_max_completion = false;
    bool killed_by_health_check = false;
    HealthUpdate last_health_failure;
    absl::Time escalate_at = absl::InfiniteFuture();
    absl::Time max_completion_at = absl::InfiniteFuture();
    std::unique_ptr<HealthChecker> health_checker;
    std::thread waiter;  // waits for pid
  };
  struct PendingUpdate {
    v1::TaskStatus status;
    uint64_t sent_generation = 0;  // subscription that carried it; 0: none
  };
  enum class Connection { kDisconnected, kSubscribing, kSubscribed };

  // Thread-safe: queues an input for Run().
  void Post(Input input);
  // Thread-safe: queues `job` for the HTTP thread.
  void PostHttp(std::function<void()> job);
  void HttpLoop();

  void Handle(Input input);
  void HandleEvent(const v1::executor::Event& event);
  void HandleTimers(absl::Time now);

  void Subscribe();
  void Disconnected(absl::string_view why);
  void SendUpdate(v1::TaskStatus status);
  void PostUpdate(PendingUpdate* update);
  void Acknowledged(const std::string& uuid);

  // `group`: 0 for a LAUNCH, the group's number for LAUNCH_GROUP.
  void Launch(const v1::TaskInfo& task, int group);
  void FailLaunch(TaskRun& task, const std::string& message);
  void Kill(TaskRun& task, absl::Duration grace);
  // Kills every live task (SHUTDOWN, recovery timeout).
  void KillAll(absl::Duration grace);
  void TaskExited(const std::string& task_id, int wait_status);
  void HealthChanged(const std::string& task_id, const HealthUpdate& update);
  // After `task` ended: the group policy, then whether the executor is done.
  void AfterTerminal(const TaskRun& task, v1::TaskState state);
  void MaybeFinish();
  bool AnyRunning() const;
  TaskRun* FindTask(const std::string& task_id);
  void Finish(int exit_code);

  v1::TaskStatus NewStatus(const TaskRun& task, v1::TaskState state) const;
  absl::Duration KillGrace(const TaskRun& task,
                           const v1::KillPolicy* override_policy) const;
  v1::executor::Call NewCall(v1::executor::Call::Type type) const;

  const ExecutorOptions options_;
  const absl::Duration initial_backoff_;

  // Inputs from helper threads.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Input> inputs_;  // guarded by mu_

  // HTTP thread: SUBSCRIBE and UPDATE requests, in order.
  std::mutex http_mu_;
  std::condition_variable http_cv_;
  std::deque<std::function<void()>> http_jobs_;  // guarded by http_mu_
  bool http_stop_ = false;                        // guarded by http_mu_
  std::thread http_thread_;

  // ---- State owned by the Run() thread. ----
  Connection connection_ = Connection::kDisconnected;
  uint64_t generation_ = 0;  // of the latest subscription attempt
  std::unique_ptr<http::RecordStreamReader> reader_;
  absl::Time next_subscribe_ = absl::InfinitePast();
  absl::Duration backoff_;
  absl::Time disconnected_since_;
  bool ever_subscribed_ = false;
  v1::FrameworkInfo framework_info_;

  // Updates not yet acknowledged, oldest first (all tasks).
  std::deque<PendingUpdate> unacked_;

  // Every task ever launched, in launch order (never erased: a task id is
  // launched at most once).
  std::vector<std::unique_ptr<TaskRun>> tasks_;
  int groups_ = 0;                 // LAUNCH_GROUPs received
  std::vector<int> killed_groups_;  // groups whose remaining tasks were killed
  bool shutting_down_ = false;
  bool recovery_timed_out_ = false;
  absl::Time exit_at_ = absl::InfiniteFuture();  // forced exit (shutdown)

  bool done_ = false;
  int exit_code_ = 0;
};

}  // namespace cairn::agent

#endif  // CAIRN_AGENT_EXECUTOR_H_
