// cairn-agent: runs tasks for the leading master, each in a per-task
// executor inside a container, checkpoints everything it is told and
// everything it reports, and recovers after a restart without touching the
// running tasks. docs/agent.md is the operator's and maintainer's guide;
// docs/agent-protocol.md the contract with the master.
//
// Parts (one file each):
//   agent.{h,cc}                 this class: the master connection, the
//                                executor API, launch/kill/recovery
//   checkpoint.{h,cc}            atomic files, MetaStore (what runs here)
//   status_update_manager.{h,cc} per-task update queues, fsynced, retried
//   containerizer.{h,cc}         fork/exec into cgroups (or posix), usage,
//                                OOM, destroy
//   fetcher.{h,cc}               CommandInfo.uris into the sandbox
//   executor.{h,cc}              cairn-executor (a separate binary)
//
// Threads: one mutex (`mu_`) guards all agent state. Around it:
//  - the HTTP server's threads (executor API, /state, /files, metrics);
//  - the subscriber thread: SUBSCRIBEs to the leading master (through
//    MasterChannel: 307s, 503s, backoff) and hands every record of the
//    stream to OnMasterEvent under the lock;
//  - the worker thread: heartbeats, status updates due (the manager says
//    which), EXECUTOR_MESSAGE/EXITED_EXECUTOR calls, and the periodic
//    container checks (exits, OOM, usage, registration timeouts, GC);
//  - launcher threads: fetch + fork/exec of an executor, off the lock.
// Blocking I/O to the master never happens under the lock; checkpoint
// writes (local fsync) do, by design: nothing is acted on before it is
// durable.

#ifndef CAIRN_AGENT_AGENT_H_
#define CAIRN_AGENT_AGENT_H_

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/checkpoint.h"
#include "agent/containerizer.h"
#include "agent/fetcher.h"
#include "agent/status_update_manager.h"
#include "cairn/v1/agent.pb.h"
#include "cairn/v1/executor.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "common/files_http.h"
#include "common/http_server.h"
#include "common/master_channel.h"
#include "common/record_stream_reader.h"
#include "master/api_http.h"
#include "monitoring/metrics.h"

namespace cairn::agent {

struct AgentOptions {
  std::string ip = "127.0.0.1";
  uint16_t port = 5051;
  std::string hostname;                 // AgentInfo.hostname; default: ip
  std::string work_dir;                 // required
  std::vector<std::string> masters;     // "host:port" of every master
  std::vector<v1::Resource> resources;  // the total, reservations included
  std::vector<v1::Attribute> attributes;
  // "reconnect": reattach to live executors after a restart; "cleanup":
  // kill them, forget the checkpoint and exit.
  std::string recover = "reconnect";
  bool strict = true;  // a damaged checkpoint is an error, not skipped
  std::string isolation = "cgroups";  // or "posix"
  std::string executor_path;          // the cairn-executor binary
  absl::Duration executor_registration_timeout = absl::Minutes(1);
  absl::Duration executor_reregistration_timeout = absl::Seconds(10);
  absl::Duration executor_shutdown_grace_period = absl::Seconds(5);
  // What executors wait for an agent that went away before they give up.
  absl::Duration recovery_timeout = absl::Minutes(15);
  absl::Duration gc_delay = absl::Hours(24 * 7);    // completed sandboxes
  absl::Duration update_retry = absl::Seconds(10);  // first resend
  absl::Duration container_check_interval = absl::Milliseconds(250);
  // Backoff between attempts to (re)subscribe: random in [b/2, b), b
  // starting at this and doubling up to max_resubscribe_backoff.
  absl::Duration registration_backoff_factor = absl::Seconds(1);
  absl::Duration max_resubscribe_backoff = absl::Minutes(1);
  // Bound on one HTTP exchange with one master.
  absl::Duration request_timeout = absl::Seconds(10);
  std::string fetcher_cache_dir;  // default <work_dir>/fetch_cache
  uint64_t fetcher_cache_size_bytes = 2ull << 30;
  std::string log_dir;  // attached to /files as /agent/log when set
  std::map<std::string, std::string> flags;  // for /flags and /state
};

class Agent {
 public:
  explicit Agent(AgentOptions options);
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;
  // Stop()s. Executors keep running (that is the point).
  ~Agent();

  // Recovers from the checkpoint, starts the HTTP server and the threads.
  // With --recover=cleanup: kills what the checkpoint names, removes the
  // checkpoint, and returns kCancelled (the caller exits 0).
  absl::Status Start();

  // Blocks until the agent must exit: Stop() was called, or the master
  // refused it for good (403: removed or unknown), then the error.
  absl::Status Wait();

  void Stop();

  uint16_t port() const;
  std::optional<v1::AgentID> agent_id() const;

 private:
  struct Task {
    v1::FrameworkID framework_id;
    v1::ExecutorID executor_id;
    v1::TaskInfo info;
    v1::TaskState state = v1::TASK_STAGING;
    std::optional<v1::TaskStatus> latest;
    bool launched = false;  // sent to the executor in a LAUNCH
    std::optional<v1::KillPolicy> pending_kill;  // to send once subscribed
    bool kill_sent = false;
  };
  enum class ExecutorState {
    kLaunching,    // fetching and starting the container
    kRunning,      // started (or recovered), not yet subscribed
    kSubscribed,   // has a stream
    kTerminating,  // shutdown asked; destroyed at shutdown_deadline
    kTerminated,   // the process is gone; tasks being completed
  };
  struct Executor {
    v1::FrameworkID framework_id;
    v1::ExecutorInfo info;
    bool command_executor = true;
    std::string container_id;
    std::string sandbox;
    ExecutorState state = ExecutorState::kLaunching;
    pid_t pid = -1;
    bool our_child = false;  // started by this agent process (waitpid)
    bool ever_subscribed = false;
    absl::Time started;
    absl::Time registration_deadline = absl::InfiniteFuture();
    absl::Time shutdown_deadline = absl::InfiniteFuture();
    bool shutdown_requested = false;
    std::shared_ptr<http::Responder> stream;
    master::Encoding encoding = master::Encoding::kProtobuf;
    std::map<std::string, Task> tasks;  // by task id
    std::optional<Limitation> limitation;
    std::optional<int> wait_status;
    std::optional<v1::ResourceStatistics> usage;
    ContainerLimits limits;
  };
  struct Framework {
    v1::FrameworkInfo info;
    std::map<std::string, Executor> executors;  // by executor id
  };
  // What /state shows of what is over.
  struct CompletedExecutor {
    v1::FrameworkID framework_id;
    v1::ExecutorInfo info;
    std::string container_id;
    std::string sandbox;
    std::vector<Task> tasks;
  };
  // Calls to the master the worker sends besides updates and heartbeats.
  struct PendingCall {
    v1::AgentCall call;
  };

  void StopOnce();

  // ---- Start and recovery (under mu_ unless said) -----------------------
  absl::Status Recover();
  absl::Status CleanupAndForget();
  void InitMetrics();
  void RegisterRoutes();

  // ---- Master (agent protocol) ------------------------------------------
  void SubscriberLoop();
  absl::Status SubscribeOnce();  // without mu_
  v1::AgentCall SubscribeCall() const;
  void OnMasterRecord(uint64_t generation, const std::string& record);
  void OnMasterEnd(uint64_t generation, absl::Status end);
  void HandleSubscribed(const v1::AgentEvent::Subscribed& subscribed);
  void HandleLaunch(const v1::AgentEvent::Launch& launch);
  void HandleKill(const v1::AgentEvent::Kill& kill);
  void HandleAcknowledge(const v1::AgentEvent::Acknowledge& ack);
  void HandleShutdownFramework(const v1::FrameworkID& framework_id);
  void HandleShutdownExecutor(const v1::FrameworkID& framework_id,
                              const v1::ExecutorID& executor_id);
  void HandleFrameworkMessage(const v1::AgentEvent::FrameworkMessage& message);
  void HandleReconcile(const v1::AgentEvent::Reconcile& reconcile);

  // ---- Executors ---------------------------------------------------------
  void StartLaunch(const std::string& framework_id,
                   const std::string& executor_id);
  void LaunchContainer(v1::FrameworkID framework_id, v1::ExecutorInfo info,
                       bool command_executor, std::string container_id,
                       std::string sandbox, v1::CommandInfo fetch,
                       ContainerLimits limits);  // launcher thread, no mu_
  std::vector<std::string> ExecutorEnvironment(const Executor& executor) const;
  void HandleExecutorApi(http::Request request,
                         std::shared_ptr<http::Responder> responder);
  std::optional<http::Response> ExecutorSubscribe(
      const v1::executor::Call& call, master::Encoding encoding,
      std::shared_ptr<http::Responder> responder);
  std::optional<http::Response> ExecutorUpdate(const v1::executor::Call& call);
  void SendToExecutor(Executor& executor, const v1::executor::Event& event);
  void KillTask(Executor& executor, Task& task,
                const std::optional<v1::KillPolicy>& policy);
  void ShutdownExecutor(Executor& executor);
  void CheckContainers();  // worker, takes mu_ itself
  void ExecutorTerminated(Executor& executor);
  // Takes ids by value: callers pass ids owned by the executor it may erase.
  void MaybeCompleteExecutor(std::string framework_id, std::string executor_id);

  // ---- Status updates ----------------------------------------------------
  // Checkpoints (through the manager) and records a status of a task; the
  // worker sends it when it is the head of the task's queue.
  // Errors: the manager's (nothing recorded, not durable).
  absl::Status RecordStatus(const v1::FrameworkID& framework_id,
                            const v1::TaskStatus& status);
  std::string GenerateStatus(const v1::FrameworkID& framework_id,
                             const v1::TaskID& task_id,
                             const v1::ExecutorID& executor_id,
                             v1::TaskState state,
                             std::optional<v1::TaskStatus::Reason> reason,
                             const std::string& message,
                             v1::TaskStatus::Source source);
  std::string NewUuid();
  std::string SandboxPath(const v1::FrameworkID& framework_id,
                          const v1::ExecutorID& executor_id,
                          const v1::ContainerID& container_id) const;
  Executor* FindExecutor(const std::string& framework_id,
                         const std::string& executor_id);
  void AttachSandbox(const v1::FrameworkID& framework_id,
                     const v1::ExecutorID& executor_id,
                     const std::string& sandbox);
  // The executor running `task_id` of `framework_id`, and the task.
  std::pair<Executor*, Task*> FindTask(const std::string& framework_id,
                                       const std::string& task_id);
  master::Resources UsedResources() const;

  // ---- Worker ------------------------------------------------------------
  void WorkerLoop();
  bool PostToMaster(const v1::AgentCall& call, const std::string& stream_id,
                    http::Client* client);
  void Changed();

  // ---- Endpoints ---------------------------------------------------------
  http::Response StateResponse(const http::Request& request);
  http::Response MonitorStatistics(const http::Request& request);
  std::string StateJson() const;  // REQUIRES: mu_

  const AgentOptions options_;
  const master::Resources total_;
  std::unique_ptr<http::Server> http_;
  http::MasterChannel channel_;
  std::unique_ptr<Containerizer> containerizer_;
  std::unique_ptr<Fetcher> fetcher_;
  std::unique_ptr<MetaStore> meta_;
  std::unique_ptr<StatusUpdateManager> updates_;
  files::FilesService files_;
  monitoring::Registry metrics_;
  const absl::Time start_time_;
  std::string boot_id_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::optional<absl::Status> exit_status_;  // set: Wait() returns it
  std::optional<v1::AgentID> agent_id_;
  std::optional<v1::MasterInfo> master_info_;
  // The current subscription to the master.
  uint64_t generation_ = 0;
  bool subscribed_ = false;
  bool stream_open_ = false;
  std::string stream_id_;
  absl::Duration heartbeat_interval_ = absl::Seconds(15);
  absl::Duration stream_timeout_ = absl::Minutes(1);  // no record: dead
  absl::Time last_record_;
  absl::Time next_heartbeat_ = absl::InfiniteFuture();
  absl::Duration resubscribe_backoff_ = absl::Seconds(1);
  uint64_t subscriptions_ = 0;

  std::map<std::string, Framework> frameworks_;  // by framework id
  std::deque<CompletedExecutor> completed_;      // newest last, bounded
  std::deque<PendingCall> calls_;                // to send, in order
  struct GcEntry {
    absl::Time at;  // remove then
    v1::FrameworkID framework_id;
    v1::ExecutorID executor_id;
  };
  std::map<std::string, GcEntry> gc_;  // by sandbox
  std::map<std::string, std::string>
      latest_links_;  // ".../runs/latest" -> sandbox
  std::mt19937_64 random_;

  // Metrics.
  uint64_t tasks_launched_ = 0;
  std::map<v1::TaskState, uint64_t> terminal_counts_;
  uint64_t executors_registering_ = 0;
  uint64_t recovery_errors_ = 0;
  uint64_t checkpoint_errors_ = 0;
  double recovery_secs_ = 0;
  uint64_t invalid_status_updates_ = 0;
  uint64_t valid_status_updates_ = 0;
  uint64_t container_launch_errors_ = 0;
  uint64_t executors_terminated_ = 0;

  std::unique_ptr<http::RecordStreamReader> reader_;  // subscriber thread
  std::thread subscriber_;
  std::thread worker_;
  std::vector<std::thread> launchers_;  // joined at Stop()
  bool started_ = false;
  std::once_flag stop_once_;
};

// Parses `--attributes` in Mesos's syntax: `rack:r1;zone:a;cores:8;
// ports:[1-2]` (text, scalar, ranges). kInvalidArgument names the part.
absl::StatusOr<std::vector<v1::Attribute>> ParseAttributes(
    absl::string_view text);

// The machine's resources, as Mesos derives them when `--resources` does
// not say: cpus = online CPUs; mem = total memory less min(1 GiB, half of
// it), kept for the system; disk = the size of `work_dir`'s file system less
// min(5 GiB, half of it); ports [31000-32000]. Entries named in `given` are
// kept as given.
std::vector<v1::Resource> DefaultResources(
    const std::vector<v1::Resource>& given, const std::string& work_dir);

}  // namespace cairn::agent

#endif  // CAIRN_AGENT_AGENT_H_
