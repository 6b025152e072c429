// FakeAgent: a simulated cairn-agent that speaks the agent protocol
// (docs/agent-protocol.md, proto/cairn/v1/agent.proto) to real cairn-master
// processes, in JSON, without running anything: its tasks are entries in a
// table. Multi-process tests use it to register agents, receive LAUNCHes,
// answer KILLs and reconciliation, send status updates and survive master
// failovers.
//
//   FakeAgentOptions options;
//   options.masters = {cluster->Address(0), cluster->Address(1), ...};
//   options.hostname = "agent-1";
//   options.resources = {ScalarResource("cpus", 4), ScalarResource("mem", 4096)};
//   FakeAgent agent(options);
//   absl::StatusOr<v1::AgentID> id = agent.Subscribe();
//   ... a scheduler launches a task ...
//   agent.WaitUntil([&] { return agent.launched_tasks().size() == 1; }, dl);
//
// What it does, per the protocol:
//  - Subscribe(): SUBSCRIBE with AgentInfo (hostname, port, resources,
//    attributes) — as a new agent, or with its id when it has one, then with
//    a report of every task it knows that is not terminal-and-acknowledged
//    (and their frameworks and executors) — finding the leader like
//    SchedulerClient (307s, 503 retries); keeps `X-Cairn-Stream-Id`; reads the
//    AgentEvent stream on a background thread.
//  - SUBSCRIBED: adopts the agent id and heartbeat interval, resends the head
//    of every task's update queue at once.
//  - LAUNCH: records each task not already known (idempotent by task id) and,
//    with `launch_state` set (TASK_RUNNING by default), moves it there with
//    an UPDATE.
//  - KILL: a live task becomes TASK_KILLED (REASON_TASK_KILLED_DURING_LAUNCH
//    while still TASK_STAGING) with an UPDATE; an unknown task is reported
//    TASK_LOST (SOURCE_AGENT, REASON_RECONCILIATION), as the protocol says.
//  - ACKNOWLEDGE: drops that update from its task's queue and sends the next;
//    a terminal task whose queue empties is complete and no longer reported.
//  - SHUTDOWN_FRAMEWORK: kills every live task of the framework.
//  - RECONCILE (§7.3): a listed task whose state differs and has nothing
//    queued gets its state resent (REASON_RECONCILIATION); a listed unknown
//    task is reported TASK_LOST; a live task that is not listed is killed.
//  - HEARTBEAT calls every heartbeat interval while subscribed.
//  - Status updates (SendUpdate and the ones above): 16 random bytes of uuid
//    each; per task in generation order with one in flight, resent with the
//    same uuid after `update_retry` (doubling, at most 10 min) and at once
//    after each SUBSCRIBED. Agent-sourced statuses leave `agent_id` unset
//    (the master fills it in).
//
// Failover: when the stream ends the agent stops heartbeats and updates. By
// default the caller decides when to Resubscribe(); with `auto_resubscribe`
// the agent does it itself with backoff (not after an ERROR 403: a removed
// agent never comes back).
//
// Thread safety: every public method is thread-safe. Three threads work
// inside: the stream reader (applies events), a worker (heartbeats, updates,
// automatic resubscription) and the callers'. Subscribe/Resubscribe calls
// are serialized. Conditions passed to WaitUntil run on the caller's thread
// without the agent's lock and may call the accessors.

#ifndef CAIRN_TESTS_INTERNAL_AGENT_CLIENT_H_
#define CAIRN_TESTS_INTERNAL_AGENT_CLIENT_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cairn/v1/agent.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "common/master_channel.h"
#include "common/record_stream_reader.h"

namespace cairn::tests {

// The channel to the leader lives in common/ (the agent and cairnctl use it).
using http::HostPort;
using http::HttpStatusOf;
using http::MasterChannel;
using http::MasterChannelOptions;
using http::ParseHostPort;
using http::ParseLocation;
using http::StatusFromHttp;
using http::RecordStreamReader;


// An unreserved scalar resource, e.g. ScalarResource("cpus", 4).
v1::Resource ScalarResource(const std::string& name, double value);

struct FakeAgentOptions {
  // "host:port" of every master (HTTP).
  std::vector<std::string> masters;
  // AgentInfo. hostname:port identifies the agent when it has no id.
  std::string hostname = "fake-agent";
  int32_t port = 5051;
  std::vector<v1::Resource> resources;
  std::vector<v1::Attribute> attributes;
  std::vector<v1::AgentInfo::Capability::Type> capabilities;
  std::string version = "fake-agent";
  // Start as a known agent (a restart with its checkpoint): SUBSCRIBE with
  // this id. Tasks it runs can be added with AddTask() before Subscribe().
  std::optional<v1::AgentID> agent_id;

  // The state a LAUNCHed task moves to, with an UPDATE; nullopt: it stays
  // TASK_STAGING and nothing is sent (the test drives it with SendUpdate).
  std::optional<v1::TaskState> launch_state = v1::TASK_RUNNING;
  // Answer KILL / SHUTDOWN_FRAMEWORK / RECONCILE as described at the top;
  // when off they are only recorded.
  bool answer_kills = true;
  bool answer_reconcile = true;
  // Send HEARTBEAT calls (see also SetHeartbeatsEnabled).
  bool send_heartbeats = true;
  // Overrides the heartbeat interval SUBSCRIBED gives.
  std::optional<absl::Duration> heartbeat_interval;
  // First resend of an unacknowledged update (the protocol says 10 s).
  absl::Duration update_retry = absl::Seconds(10);
  // Resubscribe by itself when the stream ends, after resubscribe_backoff
  // (doubling to max_resubscribe_backoff) between attempts.
  bool auto_resubscribe = false;
  absl::Duration resubscribe_backoff = absl::Milliseconds(100);
  absl::Duration max_resubscribe_backoff = absl::Seconds(1);

  // Bound on one HTTP exchange with one master.
  absl::Duration request_timeout = absl::Seconds(5);
  // Bound on Subscribe(): finding the leader, its 200 and SUBSCRIBED.
  absl::Duration subscribe_timeout = absl::Seconds(15);
  // Bound on a call from Send() (the worker's own calls use
  // request_timeout and do not retry 503: they are retried anyway).
  absl::Duration call_timeout = absl::Seconds(10);
  std::string path = "/api/v1/agent";
};

// One task in the agent's table, as the accessors show it.
struct FakeTask {
  v1::FrameworkID framework_id;
  v1::TaskInfo info;  // as launched (or added); task_id always set
  v1::TaskState state = v1::TASK_STAGING;
  // Updates generated and not yet acknowledged, oldest (in flight) first.
  std::vector<v1::TaskStatus> unacknowledged;
  // Terminal and every update acknowledged: no longer reported.
  bool completed = false;
};

class FakeAgent {
 public:
  explicit FakeAgent(FakeAgentOptions options);
  FakeAgent(const FakeAgent&) = delete;
  FakeAgent& operator=(const FakeAgent&) = delete;
  // Stops the threads and closes the stream (the master sees the agent go,
  // as after a crash). Sends nothing.
  ~FakeAgent();

  // ---- Subscription -----------------------------------------------------

  // Closes the current stream, if any, SUBSCRIBEs (see the top) and waits
  // for SUBSCRIBED; returns the agent id it names. Errors: the leader's
  // answer as StatusFromHttp (kInvalidArgument for 400, kPermissionDenied
  // for 403: the id is removed or unknown, ...); kUnavailable when no leader
  // answered or the stream ended before SUBSCRIBED; kDeadlineExceeded when
  // SUBSCRIBED did not arrive in time; kCancelled while stopping.
  absl::StatusOr<v1::AgentID> Subscribe();
  // Subscribe() with the agent id it has. kFailedPrecondition without one.
  absl::StatusOr<v1::AgentID> Resubscribe();
  // Closes the stream without a word to the master (a crash or partition,
  // as the master sees it); heartbeats and updates stop until the next
  // Subscribe(), and auto_resubscribe does not apply.
  void Disconnect();

  bool subscribed() const;
  // Why the current stream ended (OK: the master ended it), or nullopt.
  std::optional<absl::Status> stream_end() const;
  std::optional<v1::AgentID> agent_id() const;
  std::string stream_id() const;
  // The last SUBSCRIBED (default instance before one).
  v1::AgentEvent::Subscribed last_subscribed() const;
  // SUBSCRIBEs answered 200 so far.
  int subscriptions() const;

  // ---- Tasks and updates ------------------------------------------------

  // Adds a task the agent "runs" (e.g. before reregistering as a restarted
  // agent), in `state`, with nothing queued. Replaces a task of that id.
  void AddTask(const v1::FrameworkID& framework_id, const v1::TaskInfo& info,
               v1::TaskState state);

  // Queues a status update of `task_id` to `state` (SOURCE_EXECUTOR unless
  // `source` says otherwise) and returns its uuid. A task the agent does not
  // know is added to its table. The update is sent when it reaches the head
  // of the task's queue and the agent is subscribed.
  std::string SendUpdate(
      const v1::FrameworkID& framework_id, const v1::TaskID& task_id,
      v1::TaskState state,
      std::optional<v1::TaskStatus::Reason> reason = std::nullopt,
      const std::string& message = "",
      v1::TaskStatus::Source source = v1::TaskStatus::SOURCE_EXECUTOR);

  // Turns HEARTBEAT calls off (e.g. to make the master mark the agent
  // unreachable while the stream stays open) or back on.
  void SetHeartbeatsEnabled(bool enabled);

  // POSTs `call` with the stream id header, filling in `agent_id` when
  // unset (e.g. UNSUBSCRIBE, UPDATE_RESOURCES, EXITED_EXECUTOR, or a
  // deliberately bad call). Returns StatusFromHttp of the answer.
  absl::Status Send(v1::AgentCall call);

  // ---- What it has seen -------------------------------------------------

  std::vector<FakeTask> tasks() const;
  std::optional<FakeTask> task(const v1::FrameworkID& framework_id,
                               const v1::TaskID& task_id) const;
  // Every task of every LAUNCH that was new to the agent, in order.
  std::vector<v1::TaskInfo> launched_tasks() const;
  // Tasks LAUNCHed again while the agent already knew them (ignored, as the
  // protocol says; a master should never do it for a dispatched task).
  uint64_t repeated_launches() const;
  std::vector<v1::AgentEvent::Kill> kills() const;
  std::vector<v1::AgentEvent::Acknowledge> acknowledgements() const;
  std::vector<v1::AgentEvent::ShutdownFramework> shutdowns() const;
  std::vector<v1::AgentEvent::Reconcile> reconciles() const;
  std::vector<v1::AgentEvent::Error> errors() const;
  // Updates not yet acknowledged, over all tasks.
  size_t unacknowledged_updates() const;
  // ACKNOWLEDGEs that matched no update at the head of a queue.
  uint64_t stray_acknowledgements() const;
  // Calls answered 202: HEARTBEATs, UPDATEs (resends included).
  uint64_t heartbeats_sent() const;
  uint64_t updates_sent() const;
  // Records that did not parse as AgentEvent JSON.
  uint64_t malformed_records() const;

  // Removes and returns the first queued event (every event is queued in
  // arrival order, at most 10000) for which `predicate` is true, waiting
  // until `deadline`. kDeadlineExceeded, or kUnavailable when the stream
  // ended and nothing queued matches. Predicates run under the agent's lock.
  absl::StatusOr<v1::AgentEvent> WaitForEvent(
      const std::function<bool(const v1::AgentEvent&)>& predicate,
      absl::Time deadline);
  absl::StatusOr<v1::AgentEvent> NextEvent(v1::AgentEvent::Type type,
                                           absl::Time deadline);

  // Waits until `condition` holds, re-evaluating it whenever the agent's
  // state changes; false if `deadline` passes first.
  bool WaitUntil(const std::function<bool()>& condition,
                 absl::Time deadline) const;

 private:
  using TaskKey = std::pair<std::string, std::string>;  // framework, task
  struct Entry {
    FakeTask task;
    v1::ExecutorID executor_id;             // empty: none known
    std::optional<v1::TaskStatus> latest;   // the last status generated
    std::deque<v1::TaskStatus> queue;  // unacknowledged, head first
    bool head_sent = false;            // the head is in flight
    absl::Time retry_at;               // resend the head then
    absl::Duration backoff;            // the next resend interval
  };
  // An update the worker is to POST.
  struct Outgoing {
    v1::FrameworkID framework_id;
    v1::TaskStatus status;
  };

  // Stops and joins the reader. REQUIRES: subscribe_mu_ held.
  void StopReader();
  absl::StatusOr<v1::AgentID> SubscribeLocked();  // REQUIRES: subscribe_mu_
  v1::AgentCall SubscribeCall() const;            // REQUIRES: mu_ held

  // Reader thread.
  void OnRecord(uint64_t generation, const std::string& record);
  void OnEnd(uint64_t generation, absl::Status end);
  // Event handlers. REQUIRES: mu_ held.
  void HandleSubscribed(const v1::AgentEvent::Subscribed& subscribed);
  void HandleLaunch(const v1::AgentEvent::Launch& launch);
  void HandleKill(const v1::AgentEvent::Kill& kill);
  void HandleAcknowledge(const v1::AgentEvent::Acknowledge& ack);
  void HandleShutdown(const v1::AgentEvent::ShutdownFramework& shutdown);
  void HandleReconcile(const v1::AgentEvent::Reconcile& reconcile);
  // Appends a new update of `state` to the task's queue (adding the task if
  // unknown) and sets its state. Returns the uuid. REQUIRES: mu_ held.
  std::string QueueUpdateLocked(const v1::FrameworkID& framework_id,
                                const v1::TaskID& task_id, v1::TaskState state,
                                std::optional<v1::TaskStatus::Reason> reason,
                                const std::string& message,
                                v1::TaskStatus::Source source);
  void Changed();  // REQUIRES: mu_ held. Bumps changes_, wakes waiters.

  // Worker thread.
  void WorkerLoop();
  // POSTs `call` from the worker on `client` (the worker's). True on 202.
  bool WorkerPost(const v1::AgentCall& call, const std::string& stream_id,
                  http::Client* client);

  const FakeAgentOptions options_;
  MasterChannel channel_;
  std::thread worker_;

  // Serializes Subscribe/Resubscribe/Disconnect; guards reader_.
  std::mutex subscribe_mu_;
  std::unique_ptr<RecordStreamReader> reader_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;  // changes_ moved, or stopping_
  // Guarded by mu_:
  bool stopping_ = false;
  uint64_t changes_ = 0;     // bumped on every change of what is below
  uint64_t generation_ = 0;  // streams answered 200; older callbacks ignored
  bool subscribed_ = false;  // SUBSCRIBED seen on this generation
  std::optional<absl::Status> end_;
  bool disconnected_ = false;  // Disconnect(): no auto-resubscribe
  bool removed_ = false;       // ERROR 403 / answer 403: never resubscribe
  absl::Time resubscribe_at_ = absl::InfiniteFuture();
  absl::Duration resubscribe_backoff_;
  std::string stream_id_;
  std::optional<v1::AgentID> agent_id_;
  v1::AgentEvent::Subscribed last_subscribed_;
  int subscriptions_ = 0;
  absl::Duration heartbeat_interval_ = absl::InfiniteDuration();
  absl::Time next_heartbeat_ = absl::InfiniteFuture();
  bool heartbeats_enabled_;
  std::map<TaskKey, Entry> tasks_;
  std::map<std::string, v1::FrameworkInfo> frameworks_;  // by id
  std::map<std::string, v1::ExecutorInfo> executors_;    // by executor id
  std::vector<v1::TaskInfo> launched_;
  std::vector<v1::AgentEvent::Kill> kills_;
  std::vector<v1::AgentEvent::Acknowledge> acks_;
  std::vector<v1::AgentEvent::ShutdownFramework> shutdowns_;
  std::vector<v1::AgentEvent::Reconcile> reconciles_;
  std::vector<v1::AgentEvent::Error> errors_;
  std::deque<v1::AgentEvent> events_;
  uint64_t stray_acks_ = 0;
  uint64_t repeated_launches_ = 0;
  uint64_t heartbeats_sent_ = 0;
  uint64_t updates_sent_ = 0;
  uint64_t malformed_records_ = 0;
  std::mt19937_64 random_;  // uuids
};

}  // namespace cairn::tests

#endif  // CAIRN_TESTS_INTERNAL_AGENT_CLIENT_H_
