// The Mesos v1 operator API on the leading master: POST /api/v1
// (proto/cairn/v1/operator.proto; Mesos's docs/operator-http-api.md).
//
// Three parts:
//  - Parsing (any thread): ParseOperatorRequest turns a request into a
//    validated Call, the answer's encoding and the caller's context, or
//    answers it at once (400 naming the field, 406, 415, 501).
//  - Answers from the folded state (pure functions): GET_STATE, GET_AGENTS,
//    ... are built from the committed MasterState, so they show exactly
//    what the replicated log holds.
//  - OperatorEvents: the SUBSCRIBE streams. Each subscriber gets SUBSCRIBED
//    (the whole state, as GET_STATE) and then one event per folded change:
//      TasksLaunched                        -> TASK_ADDED (per task)
//      TaskStatusUpdated (a new state)      -> TASK_UPDATED
//      AgentRegistered, AgentReregistered   -> AGENT_ADDED
//      AgentRemoved                         -> AGENT_REMOVED
//      FrameworkSubscribed                  -> FRAMEWORK_ADDED
//      FrameworkFailedOver, FrameworkUpdated -> FRAMEWORK_UPDATED
//      FrameworkRemoved                     -> FRAMEWORK_REMOVED
//    plus HEARTBEAT every heartbeat_interval. As in Mesos, an agent that
//    becomes unreachable is not AGENT_REMOVED, and a framework that merely
//    disconnects is not FRAMEWORK_UPDATED. Streams end when the master
//    stops leading (subscribers resubscribe to the next leader); beyond
//    max_event_stream_subscribers the oldest stream is closed (Mesos's
//    --max_operator_event_stream_subscribers).
//
// OperatorApi ties them together for the master: it answers a parsed
// request on the master thread, reading the state directly (GET_*), handing
// mutations to the Leader (master/leader.h, "Operator API"), or opening a
// stream (SUBSCRIBE).
//
// Status codes (as Mesos): 200 with a Response for GET_*; 200 without a
// body for mutations once committed, 202 for RESERVE_RESOURCES and
// UNRESERVE_RESOURCES; 400 {"error", "field"} for an invalid call; 404 /
// 409 where Mesos answers so; 501 for calls this master does not serve;
// 503 when not leading (the HTTP layer answers 307 to the leader first).
//
// Thread safety: ParseOperatorRequest and the free functions may be called
// from any thread. OperatorApi and OperatorEvents belong to the master
// thread (the one that folds the log and owns the Leader).

#ifndef CAIRN_MASTER_OPERATOR_API_H_
#define CAIRN_MASTER_OPERATOR_API_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "cairn/v1/master.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/operator.pb.h"
#include "common/http_message.h"
#include "common/http_server.h"
#include "master/api_http.h"
#include "master/command_path.h"
#include "master/leader.h"
#include "master/state.h"

namespace cairn::master {

struct OperatorApiOptions {
  // More SUBSCRIBE streams than this close the oldest (Mesos's default).
  size_t max_event_stream_subscribers = 1000;
  // HEARTBEAT events on every stream this often (Mesos's default).
  absl::Duration heartbeat_interval = absl::Seconds(15);
};

// ---- Parsing ----------------------------------------------------------------

// A call ready for the master thread.
struct OperatorRequest {
  v1::master_api::Call call;
  Encoding accept = Encoding::kJson;  // of the answer or the stream
  CommandContext context;
};

// Parses a POST /api/v1 request by its Content-Type and validates the call.
// Returns nullopt and fills `*out`, or the answer to send: 400 for a
// missing Content-Type, a body that does not parse or an invalid call
// (naming the field); 415 for another Content-Type; 406 when Accept allows
// neither JSON nor protobuf (absent Accept: JSON); 501 for a call type this
// master does not serve. REQUIRES: out != nullptr.
std::optional<http::Response> ParseOperatorRequest(const http::Request& request,
                                                   OperatorRequest* out);

// The checks of ParseOperatorRequest on a call: nullopt when the call has
// the member its type needs and the ids it must carry; else 400 with the
// field (e.g. "drain_agent.agent_id"), or 501.
std::optional<Answer> ValidateOperatorCall(const v1::master_api::Call& call);

// True for the calls answered from the state alone (every GET_*).
bool IsReadOnlyCall(v1::master_api::Call::Type type);

// DRAIN_AGENT's parameters as the log records them. REQUIRES: the call
// passed ValidateOperatorCall.
v1::DrainConfig DrainConfigOf(const v1::master_api::Call::DrainAgent& drain);

// ---- Answers from the state -------------------------------------------------

// What GET_FLAGS, GET_VERSION, GET_MASTER and GET_METRICS report besides
// the state.
struct MasterFacts {
  std::string version;
  const std::map<std::string, std::string>* flags = nullptr;  // name -> value
  v1::MasterInfo master_info;
  absl::Time start_time = absl::InfinitePast();
  absl::Time elected_time = absl::InfinitePast();
  // The metrics registry's snapshot: a flat JSON object of numbers
  // (monitoring/metrics.h); other values are left out of GET_METRICS.
  std::string metrics_json;
};

// An agent as GET_AGENTS and AGENT_ADDED show it.
v1::master_api::Response::GetAgents::Agent AgentToProto(
    const MasterState& state, const v1::AgentRecord& agent);
// A framework as GET_FRAMEWORKS and FRAMEWORK_ADDED/UPDATED show it.
v1::master_api::Response::GetFrameworks::Framework FrameworkToProto(
    const MasterState& state, const v1::FrameworkRecord& framework);
// A task as GET_TASKS and TASK_ADDED show it (statuses without `data`, as
// Mesos keeps them).
v1::Task TaskToProto(const v1::Task& task);

// Registered agents: active (not unreachable, not removed).
v1::master_api::Response::GetAgents MakeGetAgents(const MasterState& state);
v1::master_api::Response::GetFrameworks MakeGetFrameworks(
    const MasterState& state);
// Executors named by live tasks (command tasks have none the master knows).
v1::master_api::Response::GetExecutors MakeGetExecutors(
    const MasterState& state);
v1::master_api::Response::GetTasks MakeGetTasks(const MasterState& state);
v1::master_api::Response::GetState MakeGetState(const MasterState& state);
// Roles with a subscribed framework, a weight or a quota; each with its
// weight (default 1), frameworks, and the resources its tasks use and its
// offers hold.
v1::master_api::Response::GetRoles MakeGetRoles(const MasterState& state);
v1::master_api::Response::GetWeights MakeGetWeights(const MasterState& state);
v1::master_api::Response::GetQuota MakeGetQuota(const MasterState& state);
// The numbers of a metrics snapshot ({"master/elected": 1, ...}), sorted
// by name; nothing if it does not parse.
v1::master_api::Response::GetMetrics MakeGetMetrics(
    const std::string& metrics_json);

// The Response to a GET_* call. REQUIRES: IsReadOnlyCall(call.type()).
v1::master_api::Response AnswerReadOnlyCall(const v1::master_api::Call& call,
                                            const MasterState& state,
                                            const MasterFacts& facts);

// 200 with `response` in `encoding`. GET_WEIGHTS in JSON keeps the exact
// text earlier versions of this master wrote (role before weight, an empty
// list as []); it is the same JSON value as Mesos's.
http::Response EncodeResponse(const v1::master_api::Response& response,
                              Encoding encoding);

// ---- The SUBSCRIBE streams --------------------------------------------------

// One subscriber's stream. Send() and Close() after Close() are ignored.
class OperatorEventStream {
 public:
  virtual ~OperatorEventStream() = default;
  virtual void Send(const v1::master_api::Event& event) = 0;
  // Ends the stream. Idempotent.
  virtual void Close() = 0;
};

class OperatorEvents {
 public:
  // REQUIRES: `state` outlives this and is the state OnApplied's events
  // were folded into.
  OperatorEvents(OperatorApiOptions options, const MasterState* state);
  OperatorEvents(const OperatorEvents&) = delete;
  OperatorEvents& operator=(const OperatorEvents&) = delete;
  // Closes every stream.
  ~OperatorEvents();

  // Adds a subscriber and sends it SUBSCRIBED (the state now, and the
  // heartbeat interval). If that makes more than max_event_stream_
  // subscribers, the oldest stream is closed. Returns the subscriber's id.
  uint64_t Subscribe(std::shared_ptr<OperatorEventStream> stream,
                     absl::Time now);
  // Forgets a subscriber whose stream ended (client gone). Unknown ids are
  // ignored.
  void Unsubscribe(uint64_t id);
  // One folded event; the state already includes it.
  void OnApplied(const v1::Event& event);
  // HEARTBEAT to every stream that had none for heartbeat_interval.
  void Tick(absl::Time now);
  // Ends every stream (the master stopped leading).
  void CloseAll();

  size_t size() const { return subscribers_.size(); }

 private:
  struct Subscriber {
    std::shared_ptr<OperatorEventStream> stream;
    absl::Time last_heartbeat;
  };
  void Broadcast(const v1::master_api::Event& event);

  const OperatorApiOptions options_;
  const MasterState* const state_;
  std::map<uint64_t, Subscriber> subscribers_;  // by id: oldest first
  uint64_t next_id_ = 1;
};

// ---- The endpoint -----------------------------------------------------------

// What the operator API needs from its master besides the state.
struct OperatorApiContext {
  std::string version;
  std::map<std::string, std::string> flags;  // GET_FLAGS
  absl::Time start_time = absl::InfinitePast();
  // GET_METRICS: the metrics registry's JSON snapshot. May be null.
  std::function<std::string()> metrics_snapshot;
  // Runs `work` on the master thread, later (the master's Post). Work posted
  // after the master stopped may never run.
  std::function<void(std::function<void()> work)> post;
  std::function<absl::Time()> clock;
};

class OperatorApi {
 public:
  // REQUIRES: `state` (the master's folded state) outlives this; `post`
  // stays callable while any HTTP stream may end.
  OperatorApi(OperatorApiOptions options, OperatorApiContext context,
              const MasterState* state);
  OperatorApi(const OperatorApi&) = delete;
  OperatorApi& operator=(const OperatorApi&) = delete;

  // Answers `request` (from ParseOperatorRequest) through `responder`: 503
  // when `leader` is null (not leading); GET_* at once from the state;
  // SUBSCRIBE by starting the stream; mutations through `leader` once
  // committed.
  void Handle(const OperatorRequest& request, Leader* leader,
              std::shared_ptr<http::Responder> responder);

  // The master's hooks.
  void OnApplied(const v1::Event& event) { events_.OnApplied(event); }
  void OnStepDown() { events_.CloseAll(); }
  void Tick(absl::Time now) { events_.Tick(now); }

  const OperatorEvents& events() const { return events_; }

 private:
  const OperatorApiContext context_;
  const MasterState* const state_;
  OperatorEvents events_;
};

}  // namespace cairn::master

#endif  // CAIRN_MASTER_OPERATOR_API_H_
