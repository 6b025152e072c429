#include "master/leader.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"

namespace cairn::master {

namespace {

// Why `id` cannot name a task or an executor, or "" when it can. As Mesos's
// validation: ids become file names on agents (sandboxes, checkpoints), so
// no "/", no control characters, not "." or "..", at most 255 bytes.
std::string InvalidIdReason(const std::string& id) {
  if (id.empty()) return "is empty";
  if (id == "." || id == "..") return "is '.' or '..'";
  if (id.size() > 255) return "is longer than 255 bytes";
  for (unsigned char c : id) {
    if (c == '/' || c == '\\') return "contains '/' or '\\'";
    if (c < 0x20 || c == 0x7f) return "contains a control character";
  }
  return "";
}

using v1::AgentEvent;
using v1::Event;
using v1::TaskStatus;
namespace scheduler = v1::scheduler;

constexpr size_t kUuidBytes = 16;

int HttpCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 202;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
      return 409;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
      return 503;
    default:
      return 500;
  }
}

bool HasCapability(const v1::FrameworkInfo& info,
                   v1::FrameworkInfo::Capability::Type type) {
  for (const auto& c : info.capabilities()) {
    if (c.type() == type) return true;
  }
  return false;
}

// Mesos's role name rules: non-empty, not "." or "..", no leading '-', no
// whitespace, control characters, '\\'; '/' separates non-empty parts; "*"
// only alone.
absl::Status ValidateRoleName(const std::string& role) {
  if (role == "*") return absl::OkStatus();
  if (role.empty()) return absl::InvalidArgumentError("empty role name");
  for (absl::string_view part : absl::StrSplit(role, '/')) {
    if (part.empty() || part == "." || part == ".." || part[0] == '-') {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid role name '", role, "'"));
    }
    for (char c : part) {
      if (c <= ' ' || c == 0x7f || c == '\\' || c == '*') {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid role name '", role, "'"));
      }
    }
  }
  return absl::OkStatus();
}

// Resources a task takes on its agent (its own and its executor's), without
// allocation info; kInvalidArgument for resources that do not parse.
absl::StatusOr<Resources> LaunchResources(const v1::TaskInfo& task) {
  absl::StatusOr<Resources> own = Resources::FromProto(task.resources());
  if (!own.ok()) return own.status();
  absl::StatusOr<Resources> executor =
      Resources::FromProto(task.executor().resources());
  if (!executor.ok()) return executor.status();
  return (*own + *executor).WithoutAllocationInfo();
}

// True for a dotted-quad IPv4 or a bracket-free IPv6 literal.
bool IsIpLiteral(const std::string& host) {
  if (host.find(':') != std::string::npos) return true;
  int dots = 0;
  for (char c : host) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return dots == 3;
}

double Seconds(absl::Time t) {
  return absl::ToDoubleSeconds(t - absl::UnixEpoch());
}

}  // namespace

// ---- lifecycle --------------------------------------------------------------

Leader::Leader(LeaderOptions options, CommandPath* commands,
               const MasterState* committed, std::function<absl::Time()> clock)
    : options_(std::move(options)),
      commands_(commands),
      committed_(committed),
      clock_(std::move(clock)),
      random_(options_.seed),
      allocator_(options_.allocator) {
  const uint64_t a = random_();
  const uint64_t b = random_();
  id_prefix_ =
      absl::StrFormat("%08x-%04x-%04x-%04x-%012x", a >> 32, (a >> 16) & 0xffff,
                      a & 0xffff, b >> 48, b & 0xffffffffffffULL);
  const absl::Time now = Now();
  const absl::Duration first_timeout =
      std::max(options_.agent_reregister_timeout,
               options_.agent_ping_timeout * options_.max_agent_ping_timeouts);
  for (const std::string& id : committed_->AgentIds()) {
    const v1::AgentRecord* agent = committed_->FindAgent(id);
    if (agent->state() == v1::AgentRecord::ACTIVE) {
      agents_[id].deadline = now + first_timeout;
    }
    // The previous leader may have sent any committed task's LAUNCH.
    for (const TaskKey& key : committed_->TasksOnAgent(id)) {
      dispatched_.insert(key);
    }
  }
  // Schedulers were connected to the previous leader: their failover
  // timeouts start now.
  std::vector<std::string> connected;
  for (const std::string& id : committed_->FrameworkIds()) {
    const v1::FrameworkRecord* f = committed_->FindFramework(id);
    if (f->state() == v1::FrameworkRecord::CONNECTED ||
        f->state() == v1::FrameworkRecord::INACTIVE) {
      connected.push_back(id);
    }
  }
  if (!connected.empty()) {
    Request request;
    request.context.principal = "master";
    request.decide =
        [connected](
            const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
      std::vector<Event> events;
      for (const std::string& id : connected) {
        const v1::FrameworkRecord* f = view.FindFramework(id);
        if (f == nullptr || (f->state() != v1::FrameworkRecord::CONNECTED &&
                             f->state() != v1::FrameworkRecord::INACTIVE)) {
          continue;
        }
        Event e;
        e.mutable_framework_disconnected()->mutable_framework_id()->set_value(
            id);
        events.push_back(std::move(e));
      }
      return events;
    };
    Submit(std::move(request));
  }
  RepairCutRequests();
  LOG(INFO) << "leading: " << agents_.size() << " active agents, "
            << connected.size() << " frameworks to resubscribe, ids "
            << id_prefix_;
}

// A request's events are separate log entries, so a leader change can
// commit some of them and not others (a prefix, or with holes any subset).
// The fold keeps the state valid (e.g. AgentRemoved waits for its tasks'
// ends), but one cut leaves a state no later event repairs: an UNREACHABLE
// agent (AgentUnreachable committed) whose tasks' TASK_UNREACHABLE /
// TASK_LOST were lost. Nobody watches an unreachable agent, so the new
// leader writes those ends now. (sim/MASTER_FINDINGS.md, M1.)
void Leader::RepairCutRequests() {
  std::vector<std::string> unreachable;
  for (const std::string& id : committed_->AgentIds()) {
    const v1::AgentRecord* agent = committed_->FindAgent(id);
    if (agent->state() != v1::AgentRecord::ACTIVE) unreachable.push_back(id);
  }
  if (unreachable.empty()) return;
  Request request;
  request.context.principal = "master";
  request.decide =
      [this, unreachable](
          const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    std::vector<Event> events;
    for (const std::string& id : unreachable) {
      const v1::AgentRecord* agent = view.FindAgent(id);
      if (agent == nullptr || agent->state() == v1::AgentRecord::ACTIVE) {
        continue;
      }
      const bool removed = agent->state() == v1::AgentRecord::REMOVED;
      for (const TaskKey& key : view.TasksOnAgent(id)) {
        const v1::TaskRecord* task = view.FindTask(key.first, key.second);
        if (task == nullptr || IsTerminalState(task->task().state()) ||
            (!removed && task->task().state() == v1::TASK_UNREACHABLE)) {
          continue;
        }
        const bool aware = PartitionAware(view, key.first);
        if (removed) {
          // Only logs written before the fold refused this can hold it.
          events.push_back(MasterStatus(
              *task, aware ? v1::TASK_GONE : v1::TASK_LOST,
              TaskStatus::REASON_AGENT_REMOVED, "the agent was removed"));
        } else {
          events.push_back(
              MasterStatus(*task, aware ? v1::TASK_UNREACHABLE : v1::TASK_LOST,
                           TaskStatus::REASON_AGENT_DISCONNECTED,
                           "the agent is unreachable"));
        }
      }
    }
    if (!events.empty()) {
      LOG(WARNING) << "repairing " << events.size()
                   << " task(s) left live on unreachable or removed agents "
                      "by a request cut by a leader change";
    }
    return events;
  };
  Submit(std::move(request));
}

Leader::~Leader() {
  alive_.reset();
  for (auto& [id, conn] : agents_) {
    if (conn.stream) conn.stream->Close();
  }
  for (auto& [id, conn] : frameworks_) {
    if (conn.stream) conn.stream->Close();
  }
}

size_t Leader::agent_streams() const { return agent_by_stream_.size(); }
size_t Leader::framework_streams() const { return framework_by_stream_.size(); }

std::string Leader::NewId(absl::string_view kind) {
  return absl::StrCat(id_prefix_, "-", kind,
                      absl::Dec(next_id_++, absl::kZeroPad4));
}

std::string Leader::NewUuid() {
  std::string uuid(kUuidBytes, '\0');
  for (size_t i = 0; i < kUuidBytes; i += 8) {
    const uint64_t r = random_();
    for (size_t j = 0; j < 8; ++j) {
      uuid[i + j] = static_cast<char>((r >> (8 * j)) & 0xff);
    }
  }
  return uuid;
}

std::string Leader::NewStreamId() {
  const std::string u = NewUuid();
  std::string hex;
  for (unsigned char c : u)
    absl::StrAppend(&hex, absl::Hex(c, absl::kZeroPad2));
  return absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-",
                      hex.substr(12, 4), "-", hex.substr(16, 4), "-",
                      hex.substr(20));
}

// ---- the command path -------------------------------------------------------

void Leader::Submit(Request request) {
  // What the decided events imply for messages, found once they are known.
  auto touched = std::make_shared<std::vector<TaskKey>>();
  auto changes = std::make_shared<bool>(false);
  CommandPath::Decide decide =
      [&request, touched,
       changes](const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    absl::StatusOr<std::vector<Event>> events = request.decide(view);
    if (events.ok()) {
      for (const Event& e : *events) {
        // Anything but new offers may free or add resources.
        if (!e.has_offers_created()) *changes = true;
        if (e.has_task_status_updated()) {
          touched->emplace_back(
              e.task_status_updated().framework_id().value(),
              e.task_status_updated().status().task_id().value());
        }
      }
    }
    return events;
  };
  std::weak_ptr<bool> alive = alive_;
  auto on_commit = std::move(request.on_commit);
  auto on_failure = std::move(request.on_failure);
  Done done = std::move(request.done);
  const std::string field = request.error_field;
  auto reply = [this, alive, touched, changes, on_commit = std::move(on_commit),
                on_failure = std::move(on_failure), done = std::move(done),
                field](absl::Status status) mutable {
    if (alive.expired()) {
      if (done) done(Answer::Error(503, "the leader stepped down"));
      return;
    }
    if (!status.ok()) {
      if (on_failure) on_failure(status);
      if (done) {
        done(Answer::Error(HttpCodeFor(status), std::string(status.message()),
                           field));
      }
      return;
    }
    if (*changes) allocation_pending_ = true;
    for (const TaskKey& key : *touched) PumpTask(key, absl::InfinitePast());
    RescindVanishedOffers();
    if (on_commit) {
      on_commit(std::move(done));
    } else if (done) {
      done(Answer{});
    }
  };
  commands_->Submit(request.context, decide, std::move(reply)).IgnoreError();
}

// ---- agents -----------------------------------------------------------------

void Leader::AgentSubscribe(const v1::AgentCall& call,
                            const CommandContext& context,
                            std::shared_ptr<AgentStream> stream, Done done) {
  ++metrics_.agent_subscribes;
  if (!leading()) {
    done(Answer::Error(503, "not the leading master"));
    return;
  }
  if (!call.has_subscribe()) {
    done(Answer::Error(400, "SUBSCRIBE without 'subscribe'", "subscribe"));
    return;
  }
  const v1::AgentInfo& info = call.subscribe().agent_info();
  if (std::optional<Answer> full = AgentStreamLimit(info.id().value())) {
    done(*std::move(full));
    return;
  }
  if (info.hostname().empty()) {
    done(Answer::Error(400, "the agent has no hostname",
                       "subscribe.agent_info.hostname"));
    return;
  }
  absl::StatusOr<Resources> total = Resources::FromProto(info.resources());
  if (!total.ok()) {
    done(Answer::Error(400, std::string(total.status().message()),
                       "subscribe.agent_info.resources"));
    return;
  }
  if (!info.id().value().empty()) {
    if (call.has_agent_id() && call.agent_id().value() != info.id().value()) {
      done(Answer::Error(400, "agent_id differs from agent_info.id",
                         "agent_id"));
      return;
    }
    SubscribeKnownAgent(call, context, std::move(stream), std::move(done));
  } else {
    SubscribeNewAgent(call, context, std::move(stream), std::move(done));
  }
}

void Leader::SubscribeNewAgent(const v1::AgentCall& call,
                               const CommandContext& context,
                               std::shared_ptr<AgentStream> stream, Done done) {
  const v1::AgentInfo& info = call.subscribe().agent_info();
  const std::string address = absl::StrCat(info.hostname(), ":", info.port());
  if (agent_subscribing_.count(address) > 0) {
    done(Answer::Error(503, "a SUBSCRIBE from this agent is in progress"));
    return;
  }
  agent_subscribing_.insert(address);
  const std::string agent_id = NewId("S");
  auto replaced = std::make_shared<std::string>();
  Request request;
  request.context = context;
  request.context.principal = agent_id;
  request.decide =
      [this, call, agent_id, replaced](
          const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    const v1::AgentInfo& info = call.subscribe().agent_info();
    std::vector<Event> events;
    for (const std::string& id : view.AgentIds()) {
      const v1::AgentRecord* old = view.FindAgent(id);
      if (old->state() == v1::AgentRecord::REMOVED ||
          old->info().hostname() != info.hostname() ||
          old->info().port() != info.port()) {
        continue;
      }
      // The agent at this address restarted without its checkpoint.
      for (const TaskKey& key : view.TasksOnAgent(id)) {
        const v1::TaskRecord* task = view.FindTask(key.first, key.second);
        if (task == nullptr || IsTerminalState(task->task().state())) continue;
        events.push_back(MasterStatus(
            *task,
            PartitionAware(view, key.first) ? v1::TASK_GONE : v1::TASK_LOST,
            TaskStatus::REASON_AGENT_RESTARTED,
            "the agent restarted without its checkpoint"));
      }
      Event removed;
      removed.mutable_agent_removed()->mutable_agent_id()->set_value(id);
      removed.mutable_agent_removed()->set_reason(
          "reregistered as a new agent");
      events.push_back(std::move(removed));
      *replaced = id;
    }
    Event registered;
    v1::AgentRegistered* r = registered.mutable_agent_registered();
    *r->mutable_info() = info;
    r->mutable_info()->mutable_id()->set_value(agent_id);
    r->set_version(call.subscribe().version());
    *r->mutable_capabilities() = call.subscribe().capabilities();
    events.push_back(std::move(registered));
    return events;
  };
  request.on_commit = [this, address, agent_id, replaced,
                       stream = std::move(stream)](Done done) {
    agent_subscribing_.erase(address);
    if (!replaced->empty()) {
      EndAgentStream(*replaced, 409, "replaced by a new agent at its address");
      agents_.erase(*replaced);
      SendAgentLost(*replaced);  // FAILURE {agent_id}, as Mesos
    }
    OpenAgentStream(agent_id, stream, {}, {}, std::move(done));
  };
  request.on_failure = [this, address](const absl::Status&) {
    agent_subscribing_.erase(address);
  };
  request.done = std::move(done);
  request.error_field = "subscribe.agent_info";
  Submit(std::move(request));
}

void Leader::SubscribeKnownAgent(const v1::AgentCall& call,
                                 const CommandContext& context,
                                 std::shared_ptr<AgentStream> stream,
                                 Done done) {
  const std::string agent_id = call.subscribe().agent_info().id().value();
  if (agent_subscribing_.count(agent_id) > 0) {
    done(Answer::Error(503, "a SUBSCRIBE from this agent is in progress"));
    return;
  }
  const v1::AgentRecord* record = view().FindAgent(agent_id);
  if (record == nullptr) {
    done(Answer::Error(
        403, absl::StrCat("agent ", agent_id, " is unknown to this cluster"),
        "subscribe.agent_info.id"));
    return;
  }
  if (record->state() == v1::AgentRecord::REMOVED) {
    done(Answer::Error(403, absl::StrCat("agent ", agent_id, " was removed"),
                       "subscribe.agent_info.id"));
    return;
  }
  // One stream per agent: the older one ends before the new one is handled.
  EndAgentStream(agent_id, 409, "replaced by a newer SUBSCRIBE");
  agent_subscribing_.insert(agent_id);

  struct Plan {
    std::vector<TaskKey> kills;
    std::set<std::string> shutdowns;
  };
  auto plan = std::make_shared<Plan>();
  Request request;
  request.context = context;
  request.context.principal = agent_id;
  request.decide =
      [this, call, agent_id,
       plan](const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    plan->kills.clear();
    plan->shutdowns.clear();
    const v1::AgentRecord* record = view.FindAgent(agent_id);
    if (record == nullptr || record->state() == v1::AgentRecord::REMOVED) {
      return absl::PermissionDeniedError(
          absl::StrCat("agent ", agent_id, " was removed"));
    }
    std::map<TaskKey, const v1::Task*> reported;
    for (const v1::Task& task : call.subscribe().tasks()) {
      reported[{task.framework_id().value(), task.task_id().value()}] = &task;
    }
    std::vector<Event> before;
    std::vector<Event> after;
    // What the tasks left on the agent use once `before` is applied.
    absl::StatusOr<Resources> used = view.UsedResources(agent_id);
    Resources remaining = used.ok() ? *used : Resources();
    for (const TaskKey& key : view.TasksOnAgent(agent_id)) {
      const v1::TaskRecord* task = view.FindTask(key.first, key.second);
      if (task == nullptr || IsTerminalState(task->task().state())) continue;
      auto it = reported.find(key);
      if (it == reported.end()) {
        // Missing on the agent. An undispatched task is launched instead.
        if (dispatched_.count(key) > 0) {
          before.push_back(MasterStatus(*task, MissingState(view, *task),
                                        TaskStatus::REASON_RECONCILIATION,
                                        "task unknown to the agent"));
          absl::StatusOr<Resources> freed = LaunchResources(task->info());
          if (freed.ok()) remaining -= *freed;
        }
      } else if (task->task().state() == v1::TASK_UNREACHABLE &&
                 !IsTerminalState(it->second->state()) &&
                 it->second->state() != v1::TASK_UNREACHABLE) {
        after.push_back(MasterStatus(*task, it->second->state(),
                                     TaskStatus::REASON_AGENT_REREGISTERED,
                                     "the agent reregistered"));
      }
    }
    for (const auto& [key, task] : reported) {
      const v1::FrameworkRecord* f = view.FindFramework(key.first);
      if (f == nullptr || f->state() == v1::FrameworkRecord::COMPLETED) {
        plan->shutdowns.insert(key.first);
        continue;
      }
      const v1::TaskRecord* known = view.FindTask(key.first, key.second);
      const bool live_here = known != nullptr &&
                             !IsTerminalState(known->task().state()) &&
                             known->task().agent_id().value() == agent_id;
      if (!live_here && !IsTerminalState(task->state())) {
        plan->kills.push_back(key);
      }
    }
    for (const v1::ExecutorInfo& executor : call.subscribe().executors()) {
      const v1::FrameworkRecord* f =
          view.FindFramework(executor.framework_id().value());
      if (f == nullptr || f->state() == v1::FrameworkRecord::COMPLETED) {
        plan->shutdowns.insert(executor.framework_id().value());
      }
    }
    // AgentReregistered's precondition, checked here so that it is answered
    // 400 (docs/agent-protocol.md §3) rather than refused by the view (500).
    absl::StatusOr<Resources> total =
        Resources::FromProto(call.subscribe().agent_info().resources());
    if (total.ok() && !total->Contains(remaining)) {
      return absl::InvalidArgumentError(
          absl::StrCat("the agent reports ", total->ToString(),
                       ", less than its tasks use: ", remaining.ToString()));
    }
    Event reregistered;
    v1::AgentReregistered* r = reregistered.mutable_agent_reregistered();
    *r->mutable_info() = call.subscribe().agent_info();
    r->set_version(call.subscribe().version());
    *r->mutable_capabilities() = call.subscribe().capabilities();
    std::vector<Event> events = std::move(before);
    events.push_back(std::move(reregistered));
    for (Event& e : after) events.push_back(std::move(e));
    return events;
  };
  request.on_commit = [this, agent_id, plan,
                       stream = std::move(stream)](Done done) {
    agent_subscribing_.erase(agent_id);
    OpenAgentStream(agent_id, stream, plan->kills, plan->shutdowns,
                    std::move(done));
  };
  request.on_failure = [this, agent_id](const absl::Status&) {
    agent_subscribing_.erase(agent_id);
  };
  request.done = std::move(done);
  // The fold refuses a reregistration whose total is less than what the
  // agent's remaining tasks use.
  request.error_field = "subscribe.agent_info.resources";
  Submit(std::move(request));
}

void Leader::OpenAgentStream(const std::string& agent_id,
                             std::shared_ptr<AgentStream> stream,
                             const std::vector<TaskKey>& kills,
                             const std::set<std::string>& shutdowns,
                             Done done) {
  EndAgentStream(agent_id, 409, "replaced by a newer SUBSCRIBE");
  const absl::Time now = Now();
  const std::string stream_id = NewStreamId();
  AgentConn& conn = agents_[agent_id];
  conn.stream_id = stream_id;
  conn.stream = std::move(stream);
  conn.deadline =
      now + options_.agent_ping_timeout * options_.max_agent_ping_timeouts;
  conn.last_heartbeat = now;
  conn.last_reconcile = now;
  agent_by_stream_[stream_id] = agent_id;
  Answer answer;
  answer.code = 200;
  answer.stream_id = stream_id;
  done(std::move(answer));

  AgentEvent subscribed;
  subscribed.set_type(AgentEvent::SUBSCRIBED);
  AgentEvent::Subscribed* s = subscribed.mutable_subscribed();
  s->mutable_agent_id()->set_value(agent_id);
  s->set_heartbeat_interval_seconds(
      absl::ToDoubleSeconds(options_.agent_ping_timeout));
  s->set_agent_ping_timeout_seconds(
      absl::ToDoubleSeconds(options_.agent_ping_timeout));
  s->set_max_agent_ping_timeouts(options_.max_agent_ping_timeouts);
  *s->mutable_master_info() = options_.master_info;
  SendToAgent(agent_id, subscribed);

  for (const std::string& framework_id : shutdowns) {
    AgentEvent shutdown;
    shutdown.set_type(AgentEvent::SHUTDOWN_FRAMEWORK);
    shutdown.mutable_shutdown_framework()->mutable_framework_id()->set_value(
        framework_id);
    SendToAgent(agent_id, shutdown);
  }
  for (const TaskKey& key : kills) SendKill(agent_id, key);
  for (const TaskKey& key : committed_->TasksOnAgent(agent_id)) {
    const v1::TaskRecord* task = committed_->FindTask(key.first, key.second);
    if (task == nullptr || IsTerminalState(task->task().state())) continue;
    if (dispatched_.count(key) == 0) {
      if (task->task().state() == v1::TASK_STAGING) SendLaunch(key);
    } else if (task->has_kill_request()) {
      SendKill(agent_id, key);
    }
  }
  SendReconcile(agent_id);
}

void Leader::EndAgentStream(const std::string& agent_id, int code,
                            const std::string& message) {
  auto it = agents_.find(agent_id);
  if (it == agents_.end() || !it->second.stream) return;
  AgentEvent error;
  error.set_type(AgentEvent::ERROR);
  error.mutable_error()->set_message(message);
  error.mutable_error()->set_code(code);
  it->second.stream->Send(error);
  it->second.stream->Close();
  agent_by_stream_.erase(it->second.stream_id);
  it->second.stream.reset();
  it->second.stream_id.clear();
}

void Leader::SendToAgent(const std::string& agent_id, const AgentEvent& event) {
  auto it = agents_.find(agent_id);
  if (it == agents_.end() || !it->second.stream) return;
  it->second.stream->Send(event);
}

void Leader::SendLaunch(const TaskKey& key) {
  const v1::TaskRecord* task = committed_->FindTask(key.first, key.second);
  const v1::FrameworkRecord* framework = committed_->FindFramework(key.first);
  if (task == nullptr || framework == nullptr) return;
  // A task never dispatched may have been ended by the master alone (a KILL
  // decided while its launch was in flight: TASK_KILLED, committed with it
  // or still in flight). It must then never reach its agent.
  if (IsTerminalState(task->task().state())) return;
  if (leading()) {
    const v1::TaskRecord* speculative = view().FindTask(key.first, key.second);
    if (speculative == nullptr ||
        IsTerminalState(speculative->task().state())) {
      return;
    }
  }
  const std::string& agent_id = task->task().agent_id().value();
  auto it = agents_.find(agent_id);
  if (it == agents_.end() || !it->second.stream) return;  // at SUBSCRIBE
  AgentEvent launch;
  launch.set_type(AgentEvent::LAUNCH);
  AgentEvent::Launch* l = launch.mutable_launch();
  *l->mutable_framework_info() = framework->info();
  if (task->info().has_executor()) {
    *l->mutable_executor_info() = task->info().executor();
    *l->mutable_resources() = task->info().executor().resources();
  }
  *l->add_tasks() = task->info();
  for (const v1::Resource& r : task->info().resources()) {
    *l->add_resources() = r;
  }
  it->second.stream->Send(launch);
  dispatched_.insert(key);
}

void Leader::SendKill(const std::string& agent_id, const TaskKey& key) {
  AgentEvent kill;
  kill.set_type(AgentEvent::KILL);
  kill.mutable_kill()->mutable_framework_id()->set_value(key.first);
  kill.mutable_kill()->mutable_task_id()->set_value(key.second);
  const v1::TaskRecord* task = committed_->FindTask(key.first, key.second);
  if (task != nullptr && task->kill_request().has_kill_policy()) {
    *kill.mutable_kill()->mutable_kill_policy() =
        task->kill_request().kill_policy();
  }
  SendToAgent(agent_id, kill);
}

void Leader::SendReconcile(const std::string& agent_id) {
  AgentEvent reconcile;
  reconcile.set_type(AgentEvent::RECONCILE);
  AgentEvent::Reconcile* r = reconcile.mutable_reconcile();
  for (const TaskKey& key : committed_->TasksOnAgent(agent_id)) {
    const v1::TaskRecord* task = committed_->FindTask(key.first, key.second);
    if (task == nullptr || IsTerminalState(task->task().state())) continue;
    AgentEvent::Reconcile::Task* t = r->add_tasks();
    t->mutable_framework_id()->set_value(key.first);
    t->mutable_task_id()->set_value(key.second);
    t->set_state(task->task().state());
    t->set_uuid(task->task().status_update_uuid());
  }
  r->set_log_position(committed_->last_applied().position());
  auto it = agents_.find(agent_id);
  if (it != agents_.end()) it->second.last_reconcile = Now();
  SendToAgent(agent_id, reconcile);
}

void Leader::AgentStreamClosed(const std::string& stream_id) {
  auto it = agent_by_stream_.find(stream_id);
  if (it == agent_by_stream_.end()) return;
  auto conn = agents_.find(it->second);
  if (conn != agents_.end()) {
    conn->second.stream.reset();
    conn->second.stream_id.clear();
  }
  agent_by_stream_.erase(it);
}

void Leader::AgentCall(const v1::AgentCall& call, const std::string& stream_id,
                       const CommandContext& context, Done done) {
  if (!leading()) {
    done(Answer::Error(503, "not the leading master"));
    return;
  }
  if (stream_id.empty()) {
    done(Answer::Error(400, "the call has no stream id", "X-Cairn-Stream-Id"));
    return;
  }
  auto it = agent_by_stream_.find(stream_id);
  if (it == agent_by_stream_.end()) {
    done(Answer::Error(409, "not the agent's current stream; resubscribe",
                       "X-Cairn-Stream-Id"));
    return;
  }
  const std::string agent_id = it->second;
  if (call.agent_id().value() != agent_id) {
    done(Answer::Error(400, "agent_id is not the stream's agent", "agent_id"));
    return;
  }
  agents_[agent_id].deadline =
      Now() + options_.agent_ping_timeout * options_.max_agent_ping_timeouts;
  CommandContext ctx = context;
  ctx.principal = agent_id;

  switch (call.type()) {
    case v1::AgentCall::HEARTBEAT:
      done(Answer{});
      return;
    case v1::AgentCall::UPDATE: {
      if (!call.has_update()) {
        done(Answer::Error(400, "UPDATE without 'update'", "update"));
        return;
      }
      const v1::AgentCall::Update& update = call.update();
      const TaskStatus& status = update.status();
      Answer bad;
      if (update.framework_id().value().empty()) {
        bad = Answer::Error(400, "no framework id", "update.framework_id");
      } else if (status.task_id().value().empty()) {
        bad = Answer::Error(400, "no task id", "update.status.task_id");
      } else if (!status.has_state() || status.state() == v1::TASK_STAGING) {
        bad = Answer::Error(400, "missing state, or TASK_STAGING",
                            "update.status.state");
      } else if (status.uuid().size() != kUuidBytes) {
        bad = Answer::Error(400, "uuid must be 16 bytes", "update.status.uuid");
      } else if (status.has_agent_id() &&
                 status.agent_id().value() != agent_id) {
        bad = Answer::Error(400, "status.agent_id is not the caller",
                            "update.status.agent_id");
      } else if (status.source() != TaskStatus::SOURCE_AGENT &&
                 status.source() != TaskStatus::SOURCE_EXECUTOR) {
        bad =
            Answer::Error(400, "source must be SOURCE_AGENT or SOURCE_EXECUTOR",
                          "update.status.source");
      } else if (status.data().size() > options_.max_status_data_bytes) {
        bad = Answer::Error(400, "status data too large", "update.status.data");
      } else if (status.message().size() > options_.max_status_message_bytes) {
        bad = Answer::Error(400, "status message too large",
                            "update.status.message");
      }
      if (!bad.ok()) {
        done(std::move(bad));
        return;
      }
      ++metrics_.agent_updates;
      QueuedUpdate queued;
      queued.agent_id = agent_id;
      queued.update = update;
      queued.update.mutable_status()->mutable_agent_id()->set_value(agent_id);
      queued.context = ctx;
      done(Answer{});
      HandleUpdate(std::move(queued));
      return;
    }
    case v1::AgentCall::UPDATE_RESOURCES: {
      absl::StatusOr<Resources> total =
          Resources::FromProto(call.update_resources().resources());
      if (!call.has_update_resources() || !total.ok()) {
        done(Answer::Error(400,
                           total.ok() ? "UPDATE_RESOURCES without resources"
                                      : std::string(total.status().message()),
                           "update_resources.resources"));
        return;
      }
      Request request;
      request.context = ctx;
      request.decide =
          [agent_id, call, total = *total](
              const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
        // The fold refuses a total below what the tasks use; that is the
        // caller's error (400), not one the view should find (500).
        absl::StatusOr<Resources> used = view.UsedResources(agent_id);
        if (used.ok() && !total.Contains(*used)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "the new total ", total.ToString(),
              " is less than what the agent's tasks use: ", used->ToString()));
        }
        Event e;
        e.mutable_agent_resources_updated()->mutable_agent_id()->set_value(
            agent_id);
        *e.mutable_agent_resources_updated()->mutable_resources() =
            call.update_resources().resources();
        return std::vector<Event>{std::move(e)};
      };
      request.done = std::move(done);
      request.error_field = "update_resources.resources";
      Submit(std::move(request));
      return;
    }
    case v1::AgentCall::EXITED_EXECUTOR: {
      const auto& exited = call.exited_executor();
      if (exited.framework_id().value().empty() ||
          exited.executor_id().value().empty()) {
        done(Answer::Error(400, "framework_id and executor_id are required",
                           "exited_executor"));
        return;
      }
      // Recorded for history (ExecutorExited); the tasks' terminal updates
      // carry their own outcome.
      LOG(INFO) << "agent " << agent_id << ": executor "
                << exited.executor_id().value() << " of framework "
                << exited.framework_id().value() << " exited with status "
                << exited.status() << " " << exited.message();
      done(Answer{});
      // The scheduler hears FAILURE {agent_id, executor_id, status}, as
      // from Mesos (best effort: dropped if it has no stream). A barrier,
      // so that it follows the commits of the updates the agent sent
      // before this call (the executor's tasks' terminal ones).
      scheduler::Event failure;
      failure.set_type(scheduler::Event::FAILURE);
      failure.mutable_failure()->mutable_agent_id()->set_value(agent_id);
      *failure.mutable_failure()->mutable_executor_id() = exited.executor_id();
      failure.mutable_failure()->set_status(exited.status());
      Request request;
      request.context = ctx;
      request.decide =
          [agent_id, exited](
              const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
        // Of a framework the log no longer knows: nothing to record (an
        // empty decision is still a barrier).
        if (view.FindFramework(exited.framework_id().value()) == nullptr) {
          return std::vector<Event>{};
        }
        Event e;
        v1::ExecutorExited* x = e.mutable_executor_exited();
        x->mutable_agent_id()->set_value(agent_id);
        *x->mutable_framework_id() = exited.framework_id();
        *x->mutable_executor_id() = exited.executor_id();
        x->set_status(exited.status());
        if (!exited.message().empty()) x->set_message(exited.message());
        return std::vector<Event>{std::move(e)};
      };
      request.on_commit = [this, framework_id = exited.framework_id().value(),
                           failure](Done) {
        SendToFramework(framework_id, failure);
      };
      Submit(std::move(request));
      return;
    }
    case v1::AgentCall::EXECUTOR_MESSAGE: {
      // Executor -> scheduler data: not state, so never logged; best
      // effort, as Mesos's ExecutorToFrameworkMessage.
      const auto& message = call.executor_message();
      Answer bad;
      if (!call.has_executor_message()) {
        bad = Answer::Error(400, "EXECUTOR_MESSAGE without 'executor_message'",
                            "executor_message");
      } else if (message.framework_id().value().empty()) {
        bad = Answer::Error(400, "no framework id",
                            "executor_message.framework_id");
      } else if (message.executor_id().value().empty()) {
        bad = Answer::Error(400, "no executor id",
                            "executor_message.executor_id");
      } else if (!message.has_data()) {
        bad = Answer::Error(400, "no data", "executor_message.data");
      } else if (message.data().size() > options_.max_message_data_bytes) {
        bad = Answer::Error(
            400,
            absl::StrCat("data larger than ", options_.max_message_data_bytes,
                         " bytes"),
            "executor_message.data");
      }
      if (!bad.ok()) {
        done(std::move(bad));
        return;
      }
      const std::string& framework_id = message.framework_id().value();
      auto conn = frameworks_.find(framework_id);
      if (conn == frameworks_.end() || !conn->second.stream) {
        ++metrics_.invalid_executor_to_framework_messages;
        LOG(WARNING) << "dropping a message from executor "
                     << message.executor_id().value() << " on agent "
                     << agent_id << ": framework " << framework_id
                     << " has no stream to this master";
      } else {
        ++metrics_.valid_executor_to_framework_messages;
        scheduler::Event event;
        event.set_type(scheduler::Event::MESSAGE);
        event.mutable_message()->mutable_agent_id()->set_value(agent_id);
        *event.mutable_message()->mutable_executor_id() = message.executor_id();
        event.mutable_message()->set_data(message.data());
        conn->second.stream->Send(event);
      }
      done(Answer{});
      return;
    }
    case v1::AgentCall::UNSUBSCRIBE: {
      Request request;
      request.context = ctx;
      request.decide =
          [this, agent_id](
              const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
        const v1::AgentRecord* agent = view.FindAgent(agent_id);
        if (agent == nullptr || agent->state() == v1::AgentRecord::REMOVED) {
          return std::vector<Event>{};
        }
        std::vector<Event> events;
        for (const TaskKey& key : view.TasksOnAgent(agent_id)) {
          const v1::TaskRecord* task = view.FindTask(key.first, key.second);
          if (task == nullptr || IsTerminalState(task->task().state())) {
            continue;
          }
          events.push_back(MasterStatus(
              *task,
              PartitionAware(view, key.first) ? v1::TASK_GONE : v1::TASK_LOST,
              TaskStatus::REASON_AGENT_REMOVED, "the agent unsubscribed"));
        }
        Event removed;
        removed.mutable_agent_removed()->mutable_agent_id()->set_value(
            agent_id);
        removed.mutable_agent_removed()->set_by_operator(false);
        removed.mutable_agent_removed()->set_reason("agent unsubscribed");
        events.push_back(std::move(removed));
        return events;
      };
      request.on_commit = [this, agent_id](Done done) {
        auto it = agents_.find(agent_id);
        if (it != agents_.end() && it->second.stream) {
          it->second.stream->Close();
          agent_by_stream_.erase(it->second.stream_id);
        }
        // FAILURE {agent_id}, as Mesos, once (not for a repeated call).
        if (agents_.erase(agent_id) > 0) SendAgentLost(agent_id);
        if (done) done(Answer{});
      };
      request.done = std::move(done);
      Submit(std::move(request));
      return;
    }
    default:
      done(Answer::Error(400,
                         absl::StrCat("unknown call type ",
                                      v1::AgentCall::Type_Name(call.type())),
                         "type"));
      return;
  }
}

void Leader::HandleUpdate(QueuedUpdate queued) {
  const TaskKey key{queued.update.framework_id().value(),
                    queued.update.status().task_id().value()};
  std::deque<QueuedUpdate>& queue = updates_[key];
  queue.push_back(std::move(queued));
  // One update per task at a time: a later one waits for the first.
  if (queue.size() == 1) ProcessUpdate(key);
}

void Leader::ProcessUpdate(const TaskKey& key) {
  auto found = updates_.find(key);
  if (found == updates_.end() || found->second.empty()) return;
  const QueuedUpdate queued = found->second.front();
  enum class Then { kAck, kAckKill, kAckShutdown, kNothing };
  auto then = std::make_shared<Then>(Then::kAck);
  Request request;
  request.context = queued.context;
  request.decide =
      [this, queued, key,
       then](const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    const TaskStatus& status = queued.update.status();
    const bool reports_terminal = IsTerminalState(status.state());
    const v1::FrameworkRecord* f = view.FindFramework(key.first);
    if (f == nullptr || f->state() == v1::FrameworkRecord::COMPLETED) {
      // Rule 4: the framework is gone.
      *then = Then::kAckShutdown;
      ++metrics_.late_updates;
      return std::vector<Event>{};
    }
    const v1::AgentRecord* agent = view.FindAgent(queued.agent_id);
    if (agent == nullptr || agent->state() != v1::AgentRecord::ACTIVE) {
      // The agent was marked unreachable (or removed) while this update
      // waited: nothing is written or acknowledged; the agent resends it
      // when it resubscribes, and reconciliation decides then.
      *then = Then::kNothing;
      return std::vector<Event>{};
    }
    const v1::TaskRecord* task = view.FindTask(key.first, key.second);
    if (task == nullptr || task->task().agent_id().value() != queued.agent_id) {
      // Rules 3/4: completed, or never on this agent.
      *then = reports_terminal ? Then::kAck : Then::kAckKill;
      ++metrics_.late_updates;
      return std::vector<Event>{};
    }
    bool duplicate = task->latest_agent_uuid() == status.uuid();
    for (const TaskStatus& s : task->unacknowledged()) {
      if (s.uuid() == status.uuid()) duplicate = true;
    }
    for (const TaskStatus& s : task->task().statuses()) {
      if (s.uuid() == status.uuid()) duplicate = true;
    }
    if (duplicate) {  // Rule 1.
      *then = Then::kAck;
      ++metrics_.duplicate_updates;
      return std::vector<Event>{};
    }
    if (IsTerminalState(task->task().state())) {  // Rule 3.
      *then = reports_terminal ? Then::kAck : Then::kAckKill;
      ++metrics_.late_updates;
      return std::vector<Event>{};
    }
    *then = Then::kAck;  // Rule 2.
    Event e;
    e.mutable_task_status_updated()->mutable_framework_id()->set_value(
        key.first);
    *e.mutable_task_status_updated()->mutable_status() = status;
    return std::vector<Event>{std::move(e)};
  };
  request.on_commit = [this, queued, key, then](Done) {
    if (*then == Then::kNothing) {
      FinishUpdate(key);
      return;
    }
    AgentEvent ack;
    ack.set_type(AgentEvent::ACKNOWLEDGE);
    ack.mutable_acknowledge()->mutable_framework_id()->set_value(key.first);
    ack.mutable_acknowledge()->mutable_task_id()->set_value(key.second);
    ack.mutable_acknowledge()->set_uuid(queued.update.status().uuid());
    SendToAgent(queued.agent_id, ack);
    if (*then == Then::kAckKill) {
      AgentEvent kill;
      kill.set_type(AgentEvent::KILL);
      kill.mutable_kill()->mutable_framework_id()->set_value(key.first);
      kill.mutable_kill()->mutable_task_id()->set_value(key.second);
      SendToAgent(queued.agent_id, kill);
    } else if (*then == Then::kAckShutdown) {
      AgentEvent shutdown;
      shutdown.set_type(AgentEvent::SHUTDOWN_FRAMEWORK);
      shutdown.mutable_shutdown_framework()->mutable_framework_id()->set_value(
          key.first);
      SendToAgent(queued.agent_id, shutdown);
    }
    FinishUpdate(key);
  };
  request.on_failure = [this, key](const absl::Status&) {
    // Not acknowledged: the agent resends it (to us or the next leader).
    FinishUpdate(key);
  };
  Submit(std::move(request));
}

void Leader::FinishUpdate(const TaskKey& key) {
  auto it = updates_.find(key);
  if (it == updates_.end()) return;
  it->second.pop_front();
  if (it->second.empty()) {
    updates_.erase(it);
  } else {
    ProcessUpdate(key);
  }
}

void Leader::MarkUnreachable(const std::string& agent_id) {
  auto conn = agents_.find(agent_id);
  if (conn != agents_.end()) conn->second.deadline = absl::InfiniteFuture();
  Request request;
  request.context.principal = "master";
  request.decide =
      [this, agent_id](
          const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    const v1::AgentRecord* agent = view.FindAgent(agent_id);
    if (agent == nullptr || agent->state() != v1::AgentRecord::ACTIVE) {
      return std::vector<Event>{};
    }
    std::vector<Event> events;
    Event unreachable;
    unreachable.mutable_agent_unreachable()->mutable_agent_id()->set_value(
        agent_id);
    events.push_back(std::move(unreachable));
    for (const TaskKey& key : view.TasksOnAgent(agent_id)) {
      const v1::TaskRecord* task = view.FindTask(key.first, key.second);
      if (task == nullptr || IsTerminalState(task->task().state())) continue;
      events.push_back(MasterStatus(
          *task,
          PartitionAware(view, key.first) ? v1::TASK_UNREACHABLE
                                          : v1::TASK_LOST,
          TaskStatus::REASON_AGENT_DISCONNECTED, "the agent is unreachable"));
    }
    return events;
  };
  request.on_commit = [this, agent_id](Done) {
    const v1::AgentRecord* agent = committed_->FindAgent(agent_id);
    if (agent != nullptr && agent->state() == v1::AgentRecord::UNREACHABLE) {
      ++metrics_.agents_marked_unreachable;
      LOG(WARNING) << "agent " << agent_id << " marked unreachable";
      EndAgentStream(agent_id, 409, "the agent was marked unreachable");
      agents_.erase(agent_id);
      SendAgentLost(agent_id);  // FAILURE {agent_id}, as Mesos
    }
  };
  request.on_failure = [this, agent_id](const absl::Status&) {
    auto conn = agents_.find(agent_id);
    if (conn != agents_.end()) conn->second.deadline = Now();
  };
  Submit(std::move(request));
}

Event Leader::MasterStatus(const v1::TaskRecord& task, v1::TaskState state,
                           TaskStatus::Reason reason,
                           const std::string& message) {
  Event e;
  v1::TaskStatusUpdated* u = e.mutable_task_status_updated();
  *u->mutable_framework_id() = task.task().framework_id();
  TaskStatus* s = u->mutable_status();
  *s->mutable_task_id() = task.task().task_id();
  s->set_state(state);
  s->set_source(TaskStatus::SOURCE_MASTER);
  s->set_reason(reason);
  s->set_message(message);
  *s->mutable_agent_id() = task.task().agent_id();
  if (task.task().has_executor_id()) {
    *s->mutable_executor_id() = task.task().executor_id();
  }
  const absl::Time now = Now();
  s->set_timestamp(Seconds(now));
  s->set_uuid(NewUuid());
  if (state == v1::TASK_UNREACHABLE)
    *s->mutable_unreachable_time() = FromTime(now);
  return e;
}

v1::TaskState Leader::MissingState(const MasterState& state,
                                   const v1::TaskRecord& task) const {
  if (!PartitionAware(state, task.task().framework_id().value())) {
    return v1::TASK_LOST;
  }
  return task.task().state() == v1::TASK_STAGING ? v1::TASK_DROPPED
                                                 : v1::TASK_GONE;
}

bool Leader::PartitionAware(const MasterState& state,
                            const std::string& framework_id) const {
  const v1::FrameworkRecord* f = state.FindFramework(framework_id);
  return f != nullptr &&
         HasCapability(f->info(),
                       v1::FrameworkInfo::Capability::PARTITION_AWARE);
}

// ---- frameworks -------------------------------------------------------------

void Leader::FrameworkSubscribe(const scheduler::Call& call,
                                const CommandContext& context,
                                std::shared_ptr<FrameworkStream> stream,
                                Done done) {
  ++metrics_.framework_subscribes;
  if (!leading()) {
    done(Answer::Error(503, "not the leading master"));
    return;
  }
  if (!call.subscribe().has_framework_info()) {
    done(Answer::Error(400, "SUBSCRIBE needs subscribe.framework_info",
                       "subscribe.framework_info"));
    return;
  }
  v1::FrameworkInfo info = call.subscribe().framework_info();
  if (info.user().empty()) {
    done(Answer::Error(400, "framework_info.user is required",
                       "subscribe.framework_info.user"));
    return;
  }
  if (info.name().empty()) {
    done(Answer::Error(400, "framework_info.name is required",
                       "subscribe.framework_info.name"));
    return;
  }
  if (!std::isfinite(info.failover_timeout()) || info.failover_timeout() < 0) {
    done(Answer::Error(400, "failover_timeout must be finite and >= 0",
                       "subscribe.framework_info.failover_timeout"));
    return;
  }
  const bool multi_role =
      HasCapability(info, v1::FrameworkInfo::Capability::MULTI_ROLE);
  if (!multi_role && info.roles_size() > 0) {
    done(Answer::Error(400, "'roles' needs the MULTI_ROLE capability",
                       "subscribe.framework_info.roles"));
    return;
  }
  for (const std::string& role : SubscribedRoles(info)) {
    absl::Status valid = ValidateRoleName(role);
    if (!valid.ok()) {
      done(Answer::Error(400, std::string(valid.message()),
                         multi_role ? "subscribe.framework_info.roles"
                                    : "subscribe.framework_info.role"));
      return;
    }
  }
  if (call.has_framework_id() && info.has_id() &&
      call.framework_id().value() != info.id().value()) {
    done(Answer::Error(400, "framework_id differs from framework_info.id",
                       "framework_id"));
    return;
  }
  std::string framework_id = info.id().value();
  if (framework_id.empty()) framework_id = call.framework_id().value();
  if (std::optional<Answer> full = FrameworkStreamLimit(framework_id)) {
    done(*std::move(full));
    return;
  }
  if (!framework_id.empty()) {
    const v1::FrameworkRecord* f = view().FindFramework(framework_id);
    if (f != nullptr && f->state() == v1::FrameworkRecord::COMPLETED) {
      done(Answer::Error(403, "the framework was removed",
                         "subscribe.framework_info.id"));
      return;
    }
    if (f != nullptr && f->info().principal() != info.principal()) {
      done(Answer::Error(400, "a framework cannot change its principal",
                         "subscribe.framework_info.principal"));
      return;
    }
  } else {
    framework_id = NewId("");
  }
  if (framework_subscribing_.count(framework_id) > 0 ||
      removing_frameworks_.count(framework_id) > 0) {
    done(Answer::Error(503, "a SUBSCRIBE of this framework is in progress"));
    return;
  }
  info.mutable_id()->set_value(framework_id);
  framework_subscribing_.insert(framework_id);
  std::set<std::string> suppressed(call.subscribe().suppressed_roles().begin(),
                                   call.subscribe().suppressed_roles().end());
  Request request;
  request.context = context;
  request.decide =
      [info](const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    Event e;
    if (view.FindFramework(info.id().value()) != nullptr) {
      *e.mutable_framework_failed_over()->mutable_info() = info;
    } else {
      *e.mutable_framework_subscribed()->mutable_info() = info;
    }
    return std::vector<Event>{std::move(e)};
  };
  request.on_commit = [this, framework_id, suppressed,
                       stream = std::move(stream)](Done done) {
    framework_subscribing_.erase(framework_id);
    FrameworkConn& conn = frameworks_[framework_id];
    if (conn.stream) {
      scheduler::Event error;
      error.set_type(scheduler::Event::ERROR);
      error.mutable_error()->set_message("Framework failed over");
      conn.stream->Send(error);
      conn.stream->Close();
      framework_by_stream_.erase(conn.stream_id);
    }
    conn.stream_id = NewStreamId();
    conn.stream = stream;
    conn.last_heartbeat = Now();
    framework_by_stream_[conn.stream_id] = framework_id;
    allocator_.SetSuppressedRoles(framework_id, suppressed);
    Answer answer;
    answer.code = 200;
    answer.stream_id = conn.stream_id;
    done(std::move(answer));

    scheduler::Event subscribed;
    subscribed.set_type(scheduler::Event::SUBSCRIBED);
    subscribed.mutable_subscribed()->mutable_framework_id()->set_value(
        framework_id);
    subscribed.mutable_subscribed()->set_heartbeat_interval_seconds(
        absl::ToDoubleSeconds(options_.framework_heartbeat_interval));
    *subscribed.mutable_subscribed()->mutable_master_info() =
        options_.master_info;
    conn.stream->Send(subscribed);
    // Every pending update again: the scheduler may have lost them.
    PumpUpdates(framework_id, absl::InfiniteFuture());
  };
  request.on_failure = [this, framework_id](const absl::Status&) {
    framework_subscribing_.erase(framework_id);
  };
  request.done = std::move(done);
  request.error_field = "subscribe.framework_info";
  Submit(std::move(request));
}

std::optional<Answer> Leader::FrameworkStreamLimit(
    const std::string& id) const {
  auto conn = frameworks_.find(id);
  if (conn != frameworks_.end() && conn->second.stream) return std::nullopt;
  if (framework_by_stream_.size() + framework_subscribing_.size() <
      options_.max_framework_streams) {
    return std::nullopt;
  }
  return Answer::Error(
      503, absl::StrCat("too many scheduler streams: this master serves at "
                        "most ",
                        options_.max_framework_streams,
                        " (--max_framework_streams); retry later"));
}

std::optional<Answer> Leader::AgentStreamLimit(const std::string& id) const {
  auto conn = agents_.find(id);
  if (conn != agents_.end() && conn->second.stream) return std::nullopt;
  if (agent_by_stream_.size() + agent_subscribing_.size() <
      options_.max_agent_streams) {
    return std::nullopt;
  }
  return Answer::Error(
      503, absl::StrCat("too many agent streams: this master serves at most ",
                        options_.max_agent_streams,
                        " (--max_agent_streams); retry later"));
}

void Leader::FrameworkStreamClosed(const std::string& stream_id) {
  auto it = framework_by_stream_.find(stream_id);
  if (it == framework_by_stream_.end()) return;
  const std::string framework_id = it->second;
  framework_by_stream_.erase(it);
  auto conn = frameworks_.find(framework_id);
  if (conn != frameworks_.end()) {
    conn->second.stream.reset();
    conn->second.stream_id.clear();
  }
  for (auto offer = sent_offers_.begin(); offer != sent_offers_.end();) {
    offer = offer->second == framework_id ? sent_offers_.erase(offer)
                                          : std::next(offer);
  }
  if (!leading()) return;
  Request request;
  request.context.principal = "master";
  request.decide =
      [this, framework_id](
          const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    // A SUBSCRIBE that raced ahead keeps the framework connected.
    auto conn = frameworks_.find(framework_id);
    if ((conn != frameworks_.end() && conn->second.stream) ||
        framework_subscribing_.count(framework_id) > 0) {
      return std::vector<Event>{};
    }
    const v1::FrameworkRecord* f = view.FindFramework(framework_id);
    if (f == nullptr || (f->state() != v1::FrameworkRecord::CONNECTED &&
                         f->state() != v1::FrameworkRecord::INACTIVE)) {
      return std::vector<Event>{};
    }
    Event e;
    e.mutable_framework_disconnected()->mutable_framework_id()->set_value(
        framework_id);
    return std::vector<Event>{std::move(e)};
  };
  Submit(std::move(request));
}

void Leader::FrameworkCall(const scheduler::Call& call,
                           const std::string& stream_id,
                           const CommandContext& context, Done done) {
  if (!leading()) {
    done(Answer::Error(503, "not the leading master"));
    return;
  }
  const std::string& framework_id = call.framework_id().value();
  if (framework_id.empty()) {
    done(Answer::Error(400, "the call has no framework_id", "framework_id"));
    return;
  }
  auto conn = frameworks_.find(framework_id);
  if (conn == frameworks_.end() || !conn->second.stream) {
    done(Answer::Error(403, "the framework is not subscribed", "framework_id"));
    return;
  }
  if (stream_id.empty()) {
    done(Answer::Error(400, "the call has no Mesos-Stream-Id header",
                       "Mesos-Stream-Id"));
    return;
  }
  if (conn->second.stream_id != stream_id) {
    done(Answer::Error(
        400,
        "the Mesos-Stream-Id is not the one of the framework's subscription",
        "Mesos-Stream-Id"));
    return;
  }
  switch (call.type()) {
    case scheduler::Call::TEARDOWN:
      RemoveFramework(framework_id, "the framework tore itself down", context,
                      std::move(done));
      return;
    case scheduler::Call::ACCEPT:
      HandleAccept(framework_id, call, context, std::move(done));
      return;
    case scheduler::Call::DECLINE:
      HandleDecline(framework_id, call, context, std::move(done));
      return;
    case scheduler::Call::REVIVE:
    case scheduler::Call::SUPPRESS: {
      const bool revive = call.type() == scheduler::Call::REVIVE;
      const auto& listed =
          revive ? call.revive().roles() : call.suppress().roles();
      const v1::FrameworkRecord* f = view().FindFramework(framework_id);
      std::set<std::string> subscribed =
          f != nullptr ? SubscribedRoles(f->info()) : std::set<std::string>();
      std::set<std::string> roles(listed.begin(), listed.end());
      for (const std::string& role : roles) {
        if (subscribed.count(role) == 0) {
          done(Answer::Error(
              400,
              absl::StrCat("the framework is not subscribed to role '", role,
                           "'"),
              revive ? "revive.roles" : "suppress.roles"));
          return;
        }
      }
      if (roles.empty()) roles = subscribed;
      if (revive) {
        allocator_.Revive(framework_id, roles);
        allocation_pending_ = true;
      } else {
        allocator_.Suppress(framework_id, roles);
      }
      done(Answer{});
      return;
    }
    case scheduler::Call::KILL:
      HandleKill(framework_id, call, context, std::move(done));
      return;
    case scheduler::Call::ACKNOWLEDGE:
      HandleAcknowledge(framework_id, call, context, std::move(done));
      return;
    case scheduler::Call::RECONCILE:
      HandleReconcile(framework_id, call, std::move(done));
      return;
    case scheduler::Call::SHUTDOWN:
      HandleShutdown(framework_id, call, std::move(done));
      return;
    case scheduler::Call::MESSAGE:
      HandleMessage(framework_id, call, std::move(done));
      return;
    case scheduler::Call::UPDATE_FRAMEWORK: {
      v1::FrameworkInfo info = call.update_framework().framework_info();
      if (info.id().value() != framework_id) {
        done(Answer::Error(400, "framework_info.id must be the framework's id",
                           "update_framework.framework_info.id"));
        return;
      }
      if (!std::isfinite(info.failover_timeout()) ||
          info.failover_timeout() < 0) {
        done(Answer::Error(400, "failover_timeout must be finite and >= 0",
                           "update_framework.framework_info.failover_timeout"));
        return;
      }
      // The fold refuses it too, but as the view's error (500).
      const v1::FrameworkRecord* current = view().FindFramework(framework_id);
      if (current != nullptr &&
          current->info().principal() != info.principal()) {
        done(Answer::Error(400, "a framework cannot change its principal",
                           "update_framework.framework_info.principal"));
        return;
      }
      std::set<std::string> suppressed(
          call.update_framework().suppressed_roles().begin(),
          call.update_framework().suppressed_roles().end());
      Request request;
      request.context = context;
      request.decide =
          [info](const MasterState&) -> absl::StatusOr<std::vector<Event>> {
        Event e;
        *e.mutable_framework_updated()->mutable_info() = info;
        return std::vector<Event>{std::move(e)};
      };
      request.on_commit = [this, framework_id, suppressed](Done done) {
        allocator_.SetSuppressedRoles(framework_id, suppressed);
        if (done) done(Answer{});
      };
      request.done = std::move(done);
      request.error_field = "update_framework.framework_info";
      Submit(std::move(request));
      return;
    }
    default:
      done(Answer::Error(
          400,
          absl::StrCat("call type ", scheduler::Call::Type_Name(call.type()),
                       " is not supported by this master"),
          "type"));
      return;
  }
}

void Leader::HandleAccept(const std::string& framework_id,
                          const scheduler::Call& call,
                          const CommandContext& context, Done done) {
  const scheduler::Call::Accept& accept = call.accept();
  if (accept.offer_ids_size() == 0) {
    done(Answer::Error(400, "ACCEPT without offer_ids", "accept.offer_ids"));
    return;
  }
  for (const v1::OfferID& id : accept.offer_ids()) {
    sent_offers_.erase(id.value());
  }
  struct Outcome {
    std::vector<TaskKey> launched;
    std::vector<TaskStatus> errors;  // sent, not recorded
  };
  auto outcome = std::make_shared<Outcome>();
  const absl::Time now = Now();
  Request request;
  request.context = context;
  request.decide =
      [this, framework_id, accept, outcome,
       now](const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    outcome->launched.clear();
    outcome->errors.clear();
    auto error = [&](const v1::TaskInfo& task, v1::TaskState state,
                     TaskStatus::Reason reason, const std::string& message) {
      TaskStatus s;
      *s.mutable_task_id() = task.task_id();
      s.set_state(state);
      s.set_source(TaskStatus::SOURCE_MASTER);
      s.set_reason(reason);
      s.set_message(message);
      if (task.has_agent_id()) *s.mutable_agent_id() = task.agent_id();
      s.set_timestamp(Seconds(now));
      outcome->errors.push_back(std::move(s));
    };
    auto all_tasks = [&](const std::function<void(const v1::TaskInfo&)>& f) {
      for (const v1::Offer::Operation& op : accept.operations()) {
        for (const v1::TaskInfo& t : op.launch().task_infos()) f(t);
        for (const v1::TaskInfo& t : op.launch_group().task_group().tasks()) {
          f(t);
        }
      }
    };

    // The offers: outstanding, this framework's, distinct, on one agent.
    std::string agent_id;
    std::string role;
    Resources offered;
    std::set<std::string> seen;
    std::string invalid;
    for (const v1::OfferID& id : accept.offer_ids()) {
      const v1::OfferRecord* offer = view.FindOffer(id.value());
      if (offer == nullptr) {
        invalid = absl::StrCat("offer ", id.value(), " is no longer valid");
      } else if (offer->offer().framework_id().value() != framework_id) {
        invalid =
            absl::StrCat("offer ", id.value(), " is not this framework's");
      } else if (!seen.insert(id.value()).second) {
        invalid = absl::StrCat("offer ", id.value(), " appears twice");
      } else if (!agent_id.empty() &&
                 offer->offer().agent_id().value() != agent_id) {
        invalid = "the offers are on different agents";
      }
      if (!invalid.empty()) break;
      agent_id = offer->offer().agent_id().value();
      role = offer->offer().allocation_info().role();
      absl::StatusOr<Resources> r =
          Resources::FromProto(offer->offer().resources());
      if (r.ok()) offered += r->WithoutAllocationInfo();
    }
    if (!invalid.empty()) {
      const bool aware = PartitionAware(view, framework_id);
      all_tasks([&](const v1::TaskInfo& t) {
        error(t, aware ? v1::TASK_DROPPED : v1::TASK_LOST,
              TaskStatus::REASON_INVALID_OFFERS, invalid);
      });
      return std::vector<Event>{};
    }

    absl::StatusOr<Resources> free = view.AvailableResources(agent_id);
    Resources available = (free.ok() ? *free : Resources()) + offered;
    std::vector<Event> events;
    bool offers_consumed = false;
    auto consume = [&](google::protobuf::RepeatedPtrField<v1::OfferID>* ids) {
      if (!offers_consumed) *ids = accept.offer_ids();
      offers_consumed = true;
    };
    std::set<std::string> ids_in_accept;
    // Executors whose own resources this ACCEPT already counted: an
    // executor's resources are used once, however many of its tasks run.
    std::set<std::string> executors_charged;
    auto check_task = [&](v1::TaskInfo& task, bool in_group,
                          Resources* uses) -> std::string {
      if (task.task_id().value().empty()) return "the task has no task_id";
      if (std::string bad = InvalidIdReason(task.task_id().value());
          !bad.empty()) {
        return absl::StrCat("task_id ", bad);
      }
      if (task.has_executor()) {
        if (std::string bad =
                InvalidIdReason(task.executor().executor_id().value());
            !bad.empty()) {
          return absl::StrCat("executor.executor_id ", bad);
        }
      }
      if (task.has_agent_id() && task.agent_id().value() != agent_id) {
        return "the task's agent_id is not the offers' agent";
      }
      task.mutable_agent_id()->set_value(agent_id);
      if (view.FindTask(framework_id, task.task_id().value()) != nullptr ||
          !ids_in_accept.insert(task.task_id().value()).second) {
        return absl::StrCat("task ", task.task_id().value(),
                            " is already in use");
      }
      // A task of a group (LAUNCH_GROUP) runs its own command in the
      // group's executor, which the caller copied into it.
      if (in_group && !task.has_command()) {
        return "a task in a task group needs a command";
      }
      if (!in_group && task.has_command() == task.has_executor()) {
        return "a task needs exactly one of command and executor";
      }
      absl::StatusOr<Resources> own = Resources::FromProto(task.resources());
      if (!own.ok()) return std::string(own.status().message());
      if (own->empty()) return "the task uses no resources";
      Resources r = own->WithoutAllocationInfo();
      const std::string& executor_id = task.executor().executor_id().value();
      const bool charge_executor =
          task.has_executor() &&
          !view.ExecutorHasLiveTasks(agent_id, framework_id, executor_id) &&
          executors_charged.count(executor_id) == 0;
      if (charge_executor) {
        absl::StatusOr<Resources> executor =
            Resources::FromProto(task.executor().resources());
        if (!executor.ok()) return std::string(executor.status().message());
        r += executor->WithoutAllocationInfo();
      }
      if (!available.Contains(r)) {
        return absl::StrCat("the task needs ", r.ToString(), " but only ",
                            available.ToString(), " is offered");
      }
      if (charge_executor) executors_charged.insert(executor_id);
      *uses = std::move(r);
      return "";
    };
    for (const v1::Offer::Operation& op : accept.operations()) {
      switch (op.type()) {
        case v1::Offer::Operation::LAUNCH:
        case v1::Offer::Operation::LAUNCH_GROUP: {
          const bool group = op.type() == v1::Offer::Operation::LAUNCH_GROUP;
          const auto& tasks = group ? op.launch_group().task_group().tasks()
                                    : op.launch().task_infos();
          Event e;
          v1::TasksLaunched* launched = e.mutable_tasks_launched();
          launched->mutable_framework_id()->set_value(framework_id);
          // A task group is all or nothing (as in Mesos): one invalid task
          // fails every task of the group with REASON_TASK_GROUP_INVALID.
          const Resources available_before = available;
          const std::set<std::string> charged_before = executors_charged;
          std::vector<std::pair<v1::TaskInfo, std::string>> checked;
          std::string group_error;
          for (v1::TaskInfo task : tasks) {
            std::string why;
            if (group) {
              if (task.has_executor()) {
                why = "a task in a task group must not name an executor";
              }
              *task.mutable_executor() = op.launch_group().executor();
            }
            Resources uses;
            if (why.empty()) why = check_task(task, group, &uses);
            if (why.empty()) available -= uses;
            if (!why.empty() && group_error.empty()) {
              group_error =
                  absl::StrCat("task ", task.task_id().value(), ": ", why);
            }
            checked.emplace_back(std::move(task), std::move(why));
          }
          if (group && !group_error.empty()) {
            available = available_before;
            executors_charged = charged_before;
            for (auto& [task, why] : checked) {
              error(task, v1::TASK_ERROR, TaskStatus::REASON_TASK_GROUP_INVALID,
                    absl::StrCat("the task group is invalid: ", group_error));
            }
            break;
          }
          for (auto& [task, why] : checked) {
            if (!why.empty()) {
              error(task, v1::TASK_ERROR, TaskStatus::REASON_TASK_INVALID, why);
              continue;
            }
            outcome->launched.emplace_back(framework_id,
                                           task.task_id().value());
            *launched->add_tasks() = std::move(task);
          }
          if (launched->tasks_size() == 0) break;
          consume(launched->mutable_offer_ids());
          events.push_back(std::move(e));
          break;
        }
        case v1::Offer::Operation::RESERVE:
        case v1::Offer::Operation::UNRESERVE: {
          const bool reserve = op.type() == v1::Offer::Operation::RESERVE;
          const auto& listed =
              reserve ? op.reserve().resources() : op.unreserve().resources();
          absl::StatusOr<Resources> target = Resources::FromProto(listed);
          if (!target.ok()) break;
          Resources reserved = target->WithoutAllocationInfo();
          absl::StatusOr<Resources> unreserved = reserved.PopReservation();
          if (!unreserved.ok()) break;
          const Resources& from = reserve ? *unreserved : reserved;
          const Resources& to = reserve ? reserved : *unreserved;
          if (!available.Contains(from)) break;
          available -= from;
          available += to;
          Event e;
          if (reserve) {
            v1::ResourcesReserved* r = e.mutable_resources_reserved();
            r->mutable_agent_id()->set_value(agent_id);
            *r->mutable_resources() = listed;
            consume(r->mutable_offer_ids());
          } else {
            v1::ResourcesUnreserved* r = e.mutable_resources_unreserved();
            r->mutable_agent_id()->set_value(agent_id);
            *r->mutable_resources() = listed;
            consume(r->mutable_offer_ids());
          }
          events.push_back(std::move(e));
          break;
        }
        default:
          LOG(WARNING) << "framework " << framework_id
                       << ": unsupported offer operation "
                       << v1::Offer::Operation::Type_Name(op.type());
          break;
      }
    }
    if (!offers_consumed) {
      Event e;
      v1::OffersDeclined* d = e.mutable_offers_declined();
      d->mutable_framework_id()->set_value(framework_id);
      *d->mutable_offer_ids() = accept.offer_ids();
      if (accept.has_filters()) *d->mutable_filters() = accept.filters();
      events.push_back(std::move(e));
    }
    // What the operations left unused is declined with the call's filters.
    Resources leftover = offered;
    leftover -= (offered - available);
    const double refuse = accept.filters().refuse_seconds();
    if (!leftover.empty() && refuse > 0) {
      allocator_.Decline(framework_id, agent_id, role, leftover,
                         absl::Seconds(refuse), now);
    }
    return events;
  };
  request.on_commit = [this, framework_id, outcome](Done done) {
    for (const TaskKey& key : outcome->launched) SendLaunch(key);
    for (const TaskStatus& status : outcome->errors) {
      SendTransientUpdate(framework_id, status);
    }
    if (done) done(Answer{});
  };
  request.done = std::move(done);
  request.error_field = "accept";
  Submit(std::move(request));
}

void Leader::HandleDecline(const std::string& framework_id,
                           const scheduler::Call& call,
                           const CommandContext& context, Done done) {
  const scheduler::Call::Decline& decline = call.decline();
  if (decline.offer_ids_size() == 0) {
    done(Answer::Error(400, "DECLINE without offer_ids", "decline.offer_ids"));
    return;
  }
  for (const v1::OfferID& id : decline.offer_ids()) {
    sent_offers_.erase(id.value());
  }
  const absl::Time now = Now();
  Request request;
  request.context = context;
  request.decide =
      [this, framework_id, decline,
       now](const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    Event e;
    v1::OffersDeclined* d = e.mutable_offers_declined();
    d->mutable_framework_id()->set_value(framework_id);
    if (decline.has_filters()) *d->mutable_filters() = decline.filters();
    std::set<std::string> seen;
    for (const v1::OfferID& id : decline.offer_ids()) {
      const v1::OfferRecord* offer = view.FindOffer(id.value());
      // Offers no longer valid are ignored, as Mesos does.
      if (offer == nullptr ||
          offer->offer().framework_id().value() != framework_id ||
          !seen.insert(id.value()).second) {
        continue;
      }
      allocator_.Decline(offer->offer(), decline.filters(), now);
      *d->add_offer_ids() = id;
    }
    if (d->offer_ids_size() == 0) return std::vector<Event>{};
    return std::vector<Event>{std::move(e)};
  };
  request.done = std::move(done);
  request.error_field = "decline";
  Submit(std::move(request));
}

void Leader::HandleKill(const std::string& framework_id,
                        const scheduler::Call& call,
                        const CommandContext& context, Done done) {
  const scheduler::Call::Kill& kill = call.kill();
  if (kill.task_id().value().empty()) {
    done(Answer::Error(400, "KILL without task_id", "kill.task_id"));
    return;
  }
  if (kill.kill_policy().grace_period().nanoseconds() < 0) {
    done(Answer::Error(400, "negative grace period",
                       "kill.kill_policy.grace_period"));
    return;
  }
  const TaskKey key{framework_id, kill.task_id().value()};
  auto unknown = std::make_shared<bool>(false);
  auto requested = std::make_shared<bool>(false);
  Request request;
  request.context = context;
  request.decide =
      [this, key, kill, unknown, requested](
          const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    const v1::TaskRecord* task = view.FindTask(key.first, key.second);
    if (task == nullptr) {
      *unknown = true;
      return std::vector<Event>{};
    }
    if (IsTerminalState(task->task().state())) return std::vector<Event>{};
    if (dispatched_.count(key) == 0) {
      // Never sent to the agent: the master ends it alone.
      return std::vector<Event>{MasterStatus(
          *task, v1::TASK_KILLED, TaskStatus::REASON_TASK_KILLED_DURING_LAUNCH,
          "killed before it was sent to its agent")};
    }
    *requested = true;
    Event e;
    v1::TaskKillRequested* k = e.mutable_task_kill_requested();
    k->mutable_framework_id()->set_value(key.first);
    k->mutable_task_id()->set_value(key.second);
    if (kill.has_kill_policy()) *k->mutable_kill_policy() = kill.kill_policy();
    return std::vector<Event>{std::move(e)};
  };
  request.on_commit = [this, key, unknown, requested](Done done) {
    if (*unknown) {
      TaskStatus s;
      s.mutable_task_id()->set_value(key.second);
      s.set_state(PartitionAware(*committed_, key.first) ? v1::TASK_UNKNOWN
                                                         : v1::TASK_LOST);
      s.set_source(TaskStatus::SOURCE_MASTER);
      s.set_reason(TaskStatus::REASON_RECONCILIATION);
      s.set_message("kill of a task unknown to the master");
      s.set_timestamp(Seconds(Now()));
      SendTransientUpdate(key.first, s);
    }
    if (*requested) {
      const v1::TaskRecord* task = committed_->FindTask(key.first, key.second);
      if (task != nullptr && !IsTerminalState(task->task().state())) {
        SendKill(task->task().agent_id().value(), key);
      }
    }
    if (done) done(Answer{});
  };
  request.done = std::move(done);
  request.error_field = "kill";
  Submit(std::move(request));
}

void Leader::HandleAcknowledge(const std::string& framework_id,
                               const scheduler::Call& call,
                               const CommandContext& context, Done done) {
  const scheduler::Call::Acknowledge& ack = call.acknowledge();
  if (ack.agent_id().value().empty()) {
    done(Answer::Error(400, "ACKNOWLEDGE without agent_id",
                       "acknowledge.agent_id"));
    return;
  }
  if (ack.task_id().value().empty()) {
    done(Answer::Error(400, "ACKNOWLEDGE without task_id",
                       "acknowledge.task_id"));
    return;
  }
  if (ack.uuid().size() != kUuidBytes) {
    done(Answer::Error(400, "uuid must be 16 bytes", "acknowledge.uuid"));
    return;
  }
  const TaskKey key{framework_id, ack.task_id().value()};
  Request request;
  request.context = context;
  request.decide =
      [key,
       ack](const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    const v1::TaskRecord* task = view.FindTask(key.first, key.second);
    if (task == nullptr ||
        task->task().agent_id().value() != ack.agent_id().value()) {
      return std::vector<Event>{};
    }
    bool pending = false;
    for (const TaskStatus& s : task->unacknowledged()) {
      if (s.uuid() == ack.uuid()) pending = true;
    }
    if (!pending) return std::vector<Event>{};  // a repeat: nothing to do
    Event e;
    v1::TaskStatusAcknowledged* a = e.mutable_task_status_acknowledged();
    a->mutable_framework_id()->set_value(key.first);
    *a->mutable_agent_id() = ack.agent_id();
    *a->mutable_task_id() = ack.task_id();
    a->set_uuid(ack.uuid());
    return std::vector<Event>{std::move(e)};
  };
  request.on_commit = [this, key](Done done) {
    // The next unacknowledged update of the task, if any.
    PumpTask(key, absl::InfinitePast());
    if (done) done(Answer{});
  };
  request.done = std::move(done);
  request.error_field = "acknowledge";
  Submit(std::move(request));
}

void Leader::HandleReconcile(const std::string& framework_id,
                             const scheduler::Call& call, Done done) {
  for (int i = 0; i < call.reconcile().tasks_size(); ++i) {
    if (call.reconcile().tasks(i).task_id().value().empty()) {
      done(Answer::Error(400, "a task without task_id",
                         absl::StrCat("reconcile.tasks[", i, "].task_id")));
      return;
    }
  }
  // A barrier: answer from the committed state once what is in flight is.
  Request request;
  request.context.principal = "master";
  request.decide =
      [](const MasterState&) -> absl::StatusOr<std::vector<Event>> {
    return std::vector<Event>{};
  };
  request.on_commit = [this, framework_id, call](Done done) {
    const absl::Time now = Now();
    auto answer = [&](const v1::TaskRecord& task) {
      TaskStatus s;
      if (task.task().statuses_size() > 0) {
        s = task.task().statuses(task.task().statuses_size() - 1);
      }
      *s.mutable_task_id() = task.task().task_id();
      *s.mutable_agent_id() = task.task().agent_id();
      s.set_state(task.task().state());
      s.set_source(TaskStatus::SOURCE_MASTER);
      s.set_reason(TaskStatus::REASON_RECONCILIATION);
      s.clear_uuid();
      s.set_timestamp(Seconds(now));
      SendTransientUpdate(framework_id, s);
    };
    if (call.reconcile().tasks_size() == 0) {
      for (const TaskKey& key : committed_->TasksOfFramework(framework_id)) {
        const v1::TaskRecord* task =
            committed_->FindTask(key.first, key.second);
        if (task != nullptr && !IsTerminalState(task->task().state())) {
          answer(*task);
        }
      }
    } else {
      const bool aware = PartitionAware(*committed_, framework_id);
      for (const auto& t : call.reconcile().tasks()) {
        const v1::TaskRecord* task =
            committed_->FindTask(framework_id, t.task_id().value());
        if (task != nullptr) {
          answer(*task);
          continue;
        }
        TaskStatus s;
        *s.mutable_task_id() = t.task_id();
        if (t.has_agent_id()) *s.mutable_agent_id() = t.agent_id();
        s.set_state(aware ? v1::TASK_UNKNOWN : v1::TASK_LOST);
        s.set_source(TaskStatus::SOURCE_MASTER);
        s.set_reason(TaskStatus::REASON_RECONCILIATION);
        s.set_message("task unknown to the master");
        s.set_timestamp(Seconds(now));
        SendTransientUpdate(framework_id, s);
      }
    }
    if (done) done(Answer{});
  };
  request.done = std::move(done);
  Submit(std::move(request));
}

void Leader::HandleShutdown(const std::string& framework_id,
                            const scheduler::Call& call, Done done) {
  const scheduler::Call::Shutdown& shutdown = call.shutdown();
  if (!call.has_shutdown()) {
    done(Answer::Error(400, "SHUTDOWN without 'shutdown'", "shutdown"));
    return;
  }
  if (shutdown.executor_id().value().empty()) {
    done(Answer::Error(400, "SHUTDOWN without executor_id",
                       "shutdown.executor_id"));
    return;
  }
  if (shutdown.agent_id().value().empty()) {
    done(Answer::Error(400, "SHUTDOWN without agent_id", "shutdown.agent_id"));
    return;
  }
  // As Mesos: 202 whatever becomes of it; an agent this leader cannot
  // reach (unknown, not ACTIVE, no stream) is logged and the call dropped.
  const std::string& agent_id = shutdown.agent_id().value();
  auto conn = agents_.find(agent_id);
  if (conn == agents_.end() || !conn->second.stream) {
    LOG(WARNING) << "dropping SHUTDOWN of executor "
                 << shutdown.executor_id().value() << " of framework "
                 << framework_id << ": agent " << agent_id
                 << " has no stream to this master";
  } else {
    AgentEvent event;
    event.set_type(AgentEvent::SHUTDOWN_EXECUTOR);
    event.mutable_shutdown_executor()->mutable_framework_id()->set_value(
        framework_id);
    *event.mutable_shutdown_executor()->mutable_executor_id() =
        shutdown.executor_id();
    conn->second.stream->Send(event);
  }
  done(Answer{});
}

void Leader::HandleMessage(const std::string& framework_id,
                           const scheduler::Call& call, Done done) {
  const scheduler::Call::Message& message = call.message();
  Answer bad;
  if (!call.has_message()) {
    bad = Answer::Error(400, "MESSAGE without 'message'", "message");
  } else if (message.agent_id().value().empty()) {
    bad = Answer::Error(400, "MESSAGE without agent_id", "message.agent_id");
  } else if (message.executor_id().value().empty()) {
    bad = Answer::Error(400, "MESSAGE without executor_id",
                        "message.executor_id");
  } else if (!message.has_data()) {
    bad = Answer::Error(400, "MESSAGE without data", "message.data");
  } else if (message.data().size() > options_.max_message_data_bytes) {
    bad = Answer::Error(400,
                        absl::StrCat("data larger than ",
                                     options_.max_message_data_bytes, " bytes"),
                        "message.data");
  }
  if (!bad.ok()) {
    done(std::move(bad));
    return;
  }
  // As Mesos: unreliable; 202 also when the agent cannot be reached (the
  // message is dropped and counted as invalid).
  const std::string& agent_id = message.agent_id().value();
  auto conn = agents_.find(agent_id);
  if (conn == agents_.end() || !conn->second.stream) {
    ++metrics_.invalid_framework_to_executor_messages;
    LOG(WARNING) << "dropping a message of framework " << framework_id
                 << " for executor " << message.executor_id().value()
                 << ": agent " << agent_id << " has no stream to this master";
  } else {
    ++metrics_.valid_framework_to_executor_messages;
    AgentEvent event;
    event.set_type(AgentEvent::FRAMEWORK_MESSAGE);
    AgentEvent::FrameworkMessage* m = event.mutable_framework_message();
    m->mutable_framework_id()->set_value(framework_id);
    *m->mutable_executor_id() = message.executor_id();
    m->set_data(message.data());
    conn->second.stream->Send(event);
  }
  done(Answer{});
}

void Leader::SendAgentLost(const std::string& agent_id) {
  scheduler::Event failure;
  failure.set_type(scheduler::Event::FAILURE);
  failure.mutable_failure()->mutable_agent_id()->set_value(agent_id);
  for (auto& [id, conn] : frameworks_) {
    if (conn.stream) conn.stream->Send(failure);
  }
}

void Leader::RemoveFramework(const std::string& framework_id,
                             const std::string& reason,
                             const CommandContext& context, Done done) {
  if (removing_frameworks_.count(framework_id) > 0) {
    if (done) done(Answer{});
    return;
  }
  removing_frameworks_.insert(framework_id);
  auto agents = std::make_shared<std::set<std::string>>();
  Request request;
  request.context = context;
  request.decide =
      [this, framework_id, reason,
       agents](const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    agents->clear();
    const v1::FrameworkRecord* f = view.FindFramework(framework_id);
    if (f == nullptr || f->state() == v1::FrameworkRecord::COMPLETED) {
      return std::vector<Event>{};
    }
    std::vector<Event> events;
    for (const TaskKey& key : view.TasksOfFramework(framework_id)) {
      const v1::TaskRecord* task = view.FindTask(key.first, key.second);
      if (task == nullptr) continue;
      agents->insert(task->task().agent_id().value());
      if (IsTerminalState(task->task().state())) continue;
      events.push_back(MasterStatus(*task, v1::TASK_KILLED,
                                    TaskStatus::REASON_FRAMEWORK_REMOVED,
                                    reason));
    }
    Event removed;
    removed.mutable_framework_removed()->mutable_framework_id()->set_value(
        framework_id);
    removed.mutable_framework_removed()->set_reason(reason);
    events.push_back(std::move(removed));
    return events;
  };
  request.on_commit = [this, framework_id, agents](Done done) {
    removing_frameworks_.erase(framework_id);
    const v1::FrameworkRecord* f = committed_->FindFramework(framework_id);
    if (f != nullptr && f->state() == v1::FrameworkRecord::COMPLETED) {
      ++metrics_.frameworks_removed;
      LOG(INFO) << "framework " << framework_id << " removed";
      for (const std::string& agent_id : *agents) {
        AgentEvent shutdown;
        shutdown.set_type(AgentEvent::SHUTDOWN_FRAMEWORK);
        shutdown.mutable_shutdown_framework()
            ->mutable_framework_id()
            ->set_value(framework_id);
        SendToAgent(agent_id, shutdown);
      }
      auto conn = frameworks_.find(framework_id);
      if (conn != frameworks_.end()) {
        if (conn->second.stream) conn->second.stream->Close();
        framework_by_stream_.erase(conn->second.stream_id);
        frameworks_.erase(conn);
      }
      allocator_.RemoveFramework(framework_id);
      for (auto it = delivered_.begin(); it != delivered_.end();) {
        it = it->first.first == framework_id ? delivered_.erase(it)
                                             : std::next(it);
      }
    }
    if (done) done(Answer{});
  };
  request.on_failure = [this, framework_id](const absl::Status&) {
    removing_frameworks_.erase(framework_id);
  };
  request.done = std::move(done);
  Submit(std::move(request));
}

void Leader::SendToFramework(const std::string& framework_id,
                             const scheduler::Event& event) {
  auto it = frameworks_.find(framework_id);
  if (it == frameworks_.end() || !it->second.stream) return;
  it->second.stream->Send(event);
}

void Leader::SendTransientUpdate(const std::string& framework_id,
                                 const TaskStatus& status) {
  scheduler::Event update;
  update.set_type(scheduler::Event::UPDATE);
  *update.mutable_update()->mutable_status() = status;
  ++metrics_.updates_sent;
  SendToFramework(framework_id, update);
}

void Leader::PumpUpdates(const std::string& framework_id,
                         absl::Time resend_before) {
  for (const TaskKey& key : committed_->TasksOfFramework(framework_id)) {
    PumpTask(key, resend_before);
  }
}

void Leader::PumpTask(const TaskKey& key, absl::Time resend_before) {
  const v1::TaskRecord* task = committed_->FindTask(key.first, key.second);
  if (task == nullptr || task->unacknowledged_size() == 0) {
    delivered_.erase(key);
    return;
  }
  auto conn = frameworks_.find(key.first);
  if (conn == frameworks_.end() || !conn->second.stream) return;
  const TaskStatus& head = task->unacknowledged(0);
  auto it = delivered_.find(key);
  // Resent iff sent at or before `resend_before`: Tick() finds an update
  // due when now - sent >= status_update_retry and passes
  // now - status_update_retry, so the two agree at the boundary.
  if (it != delivered_.end() && it->second.uuid == head.uuid() &&
      it->second.sent > resend_before) {
    return;  // sent recently
  }
  scheduler::Event update;
  update.set_type(scheduler::Event::UPDATE);
  *update.mutable_update()->mutable_status() = head;
  conn->second.stream->Send(update);
  ++metrics_.updates_sent;
  Delivery& d = delivered_[key];
  d.uuid = head.uuid();
  d.sent = Now();
}

void Leader::RescindVanishedOffers() {
  for (auto it = sent_offers_.begin(); it != sent_offers_.end();) {
    if (committed_->FindOffer(it->first) != nullptr) {
      ++it;
      continue;
    }
    scheduler::Event rescind;
    rescind.set_type(scheduler::Event::RESCIND);
    rescind.mutable_rescind()->mutable_offer_id()->set_value(it->first);
    SendToFramework(it->second, rescind);
    ++metrics_.offers_rescinded;
    it = sent_offers_.erase(it);
  }
}

// ---- time -------------------------------------------------------------------

void Leader::Tick(absl::Time now) {
  if (!leading()) return;
  // Agents: heartbeats, anti-entropy, liveness.
  std::vector<std::string> silent;
  std::vector<std::string> reconcile;
  for (auto& [id, conn] : agents_) {
    if (conn.stream &&
        now - conn.last_heartbeat >= options_.agent_ping_timeout) {
      AgentEvent heartbeat;
      heartbeat.set_type(AgentEvent::HEARTBEAT);
      conn.stream->Send(heartbeat);
      conn.last_heartbeat = now;
    }
    if (conn.stream &&
        now - conn.last_reconcile >= options_.agent_reconcile_interval) {
      reconcile.push_back(id);
    }
    if (now >= conn.deadline && agent_subscribing_.count(id) == 0) {
      silent.push_back(id);
    }
  }
  for (const std::string& id : reconcile) SendReconcile(id);
  for (const std::string& id : silent) MarkUnreachable(id);

  // Schedulers: heartbeats and redelivery of unacknowledged updates.
  for (auto& [id, conn] : frameworks_) {
    if (conn.stream &&
        now - conn.last_heartbeat >= options_.framework_heartbeat_interval) {
      scheduler::Event heartbeat;
      heartbeat.set_type(scheduler::Event::HEARTBEAT);
      conn.stream->Send(heartbeat);
      conn.last_heartbeat = now;
    }
  }
  std::vector<TaskKey> due;
  for (const auto& [key, delivery] : delivered_) {
    if (now - delivery.sent >= options_.status_update_retry) due.push_back(key);
  }
  for (const TaskKey& key : due) {
    PumpTask(key, now - options_.status_update_retry);
  }

  // Failover timeouts.
  for (const std::string& id :
       committed_->FrameworksPastFailoverDeadline(now)) {
    if (framework_subscribing_.count(id) > 0 ||
        removing_frameworks_.count(id) > 0) {
      continue;
    }
    CommandContext context;
    context.principal = "master";
    RemoveFramework(id, "the framework's failover timeout elapsed", context,
                    nullptr);
  }

  ExpireOffers(now);
  MaybeAllocate(now);
  CheckDrainingAgents();  // Operator API: DRAIN_AGENT's AgentDrained
}

void Leader::ExpireOffers(absl::Time now) {
  if (expiring_) return;
  std::vector<std::string> expired = allocator_.ExpiredOffers(view(), now);
  if (expired.empty()) return;
  expiring_ = true;
  Request request;
  request.context.principal = "master";
  request.decide =
      [expired](const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    Event e;
    for (const std::string& id : expired) {
      if (view.FindOffer(id) != nullptr) {
        e.mutable_offers_expired()->add_offer_ids()->set_value(id);
      }
    }
    if (e.offers_expired().offer_ids_size() == 0) return std::vector<Event>{};
    return std::vector<Event>{std::move(e)};
  };
  request.on_commit = [this](Done) { expiring_ = false; };
  request.on_failure = [this](const absl::Status&) { expiring_ = false; };
  Submit(std::move(request));
}

void Leader::MaybeAllocate(absl::Time now) {
  if (allocating_) return;
  if (!allocation_pending_ &&
      now - last_allocation_ < options_.allocation_interval) {
    return;
  }
  allocation_pending_ = false;
  last_allocation_ = now;
  allocating_ = true;
  auto offers = std::make_shared<std::vector<v1::Offer>>();
  Request request;
  request.context.principal = "master";
  request.decide =
      [this, now,
       offers](const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    ++metrics_.allocation_cycles;
    const absl::Time run_start = Now();
    std::vector<Allocation> allocations = allocator_.Allocate(view, now);
    if (options_.on_allocation_run) {
      options_.on_allocation_run(Now() - run_start);
    }
    Event e;
    v1::OffersCreated* created = e.mutable_offers_created();
    for (const Allocation& a : allocations) {
      auto conn = frameworks_.find(a.framework_id);
      // Only schedulers with an open stream can receive offers, and only
      // agents subscribed to this leader are offered (as Mesos: no offers
      // for an agent until it reregisters after a failover; its
      // reregistration would drop them anyway).
      if (conn == frameworks_.end() || !conn->second.stream) continue;
      auto agent = agents_.find(a.agent_id);
      if (agent == agents_.end() || !agent->second.stream) continue;
      v1::Offer* offer = created->add_offers();
      *offer = MakeOffer(view, a, NewId("O"));
      // The agent's URL, as Mesos offers carry it (clients build agent
      // endpoints from url.address).
      const std::string& peer_ip = agent->second.stream->peer_ip();
      if (const v1::AgentRecord* agent = view.FindAgent(a.agent_id)) {
        v1::URL* url = offer->mutable_url();
        url->set_scheme("http");
        url->mutable_address()->set_hostname(agent->info().hostname());
        if (IsIpLiteral(agent->info().hostname())) {
          url->mutable_address()->set_ip(agent->info().hostname());
        } else if (!peer_ip.empty()) {
          // Mesos always fills in the agent's IP; a hostname is not one.
          url->mutable_address()->set_ip(peer_ip);
        }
        url->mutable_address()->set_port(agent->info().port());
        url->set_path("/slave(1)");
      }
    }
    if (created->offers_size() == 0) return std::vector<Event>{};
    created->set_allocation_cycle(++allocation_cycle_);
    offers->assign(created->offers().begin(), created->offers().end());
    return std::vector<Event>{std::move(e)};
  };
  request.on_commit = [this, offers](Done) {
    allocating_ = false;
    std::map<std::string, scheduler::Event> batches;
    for (const v1::Offer& offer : *offers) {
      if (committed_->FindOffer(offer.id().value()) == nullptr) continue;
      scheduler::Event& batch = batches[offer.framework_id().value()];
      batch.set_type(scheduler::Event::OFFERS);
      v1::Offer* sent = batch.mutable_offers()->add_offers();
      *sent = offer;
      // A framework without MULTI_ROLE knows nothing of allocation_info
      // (as Mesos does: it gets offers and resources without it).
      const v1::FrameworkRecord* f =
          committed_->FindFramework(offer.framework_id().value());
      if (f != nullptr &&
          !HasCapability(f->info(),
                         v1::FrameworkInfo::Capability::MULTI_ROLE)) {
        sent->clear_allocation_info();
        for (v1::Resource& r : *sent->mutable_resources()) {
          r.clear_allocation_info();
        }
      }
      sent_offers_[offer.id().value()] = offer.framework_id().value();
    }
    for (const auto& [framework_id, batch] : batches) {
      metrics_.offers_sent += batch.offers().offers_size();
      SendToFramework(framework_id, batch);
    }
  };
  request.on_failure = [this](const absl::Status&) { allocating_ = false; };
  Submit(std::move(request));
}

// ---- Operator API -----------------------------------------------------------

namespace {

// Mesos answers a synchronous operator mutation 200 OK.
Answer OperatorOk() {
  Answer answer;
  answer.code = 200;
  return answer;
}

// Mesos's largest quota quantities (master/quota.cpp): 1 exabyte (in MB)
// for mem and disk, 1 trillion for anything else.
constexpr double kMaxQuotaMegabytes = 1024.0 * 1024 * 1024 * 1024;
constexpr double kMaxQuotaOther = 1e12;

// Scalar quantities by resource name.
using Quantities = std::map<std::string, double>;

void AddScalar(const v1::Resource& r, Quantities* q) {
  if (r.type() == v1::MesosValue::SCALAR) (*q)[r.name()] += r.scalar().value();
}

std::string QuantitiesToString(const Quantities& q) {
  std::vector<std::string> parts;
  for (const auto& [name, value] : q) {
    parts.push_back(absl::StrCat(name, ":", RoundScalar(value)));
  }
  return parts.empty() ? "{}" : absl::StrJoin(parts, ";");
}

// The role a task's or offer's unreserved resource is allocated to: its
// allocation_info, else the framework's only role ("" if it has several).
std::string AllocationRole(const v1::Resource& r,
                           const v1::FrameworkRecord* framework) {
  if (r.has_allocation_info()) return r.allocation_info().role();
  if (framework == nullptr) return "";
  const std::set<std::string> roles = SubscribedRoles(framework->info());
  return roles.size() == 1 ? *roles.begin() : "";
}

// What `role` consumes of its quota (Mesos's consumed quota): every
// resource reserved to it (or below it) on an active agent, plus the
// unreserved resources its live tasks use and its outstanding offers hold.
Quantities ConsumedQuota(const MasterState& state, const std::string& role) {
  Quantities consumed;
  for (const std::string& agent_id : state.AgentIds()) {
    const v1::AgentRecord* agent = state.FindAgent(agent_id);
    if (agent->state() != v1::AgentRecord::ACTIVE) continue;
    absl::StatusOr<Resources> total =
        Resources::FromProto(agent->total_resources());
    if (!total.ok()) continue;
    for (const v1::Resource& r : total->ToProto()) {
      if (r.reservations_size() > 0 &&
          RoleCovers(role, r.reservations(r.reservations_size() - 1).role())) {
        AddScalar(r, &consumed);
      }
    }
    for (const TaskKey& key : state.TasksOnAgent(agent_id)) {
      const v1::TaskRecord* task = state.FindTask(key.first, key.second);
      if (task == nullptr || IsTerminalState(task->task().state())) continue;
      const v1::FrameworkRecord* f = state.FindFramework(key.first);
      for (const v1::Resource& r : task->task().resources()) {
        if (r.reservations_size() == 0 &&
            RoleCovers(role, AllocationRole(r, f))) {
          AddScalar(r, &consumed);
        }
      }
    }
    for (const std::string& offer_id : state.OffersOnAgent(agent_id)) {
      const v1::OfferRecord* offer = state.FindOffer(offer_id);
      if (offer == nullptr) continue;
      for (const v1::Resource& r : offer->offer().resources()) {
        if (r.reservations_size() == 0 &&
            RoleCovers(role, AllocationRole(r, nullptr))) {
          AddScalar(r, &consumed);
        }
      }
    }
  }
  return consumed;
}

// The non-revocable scalar totals of the active agents.
Quantities ClusterCapacity(const MasterState& state) {
  Quantities capacity;
  for (const std::string& agent_id : state.AgentIds()) {
    const v1::AgentRecord* agent = state.FindAgent(agent_id);
    if (agent->state() != v1::AgentRecord::ACTIVE) continue;
    for (const v1::Resource& r : agent->total_resources()) {
      if (!r.has_revocable()) AddScalar(r, &capacity);
    }
  }
  return capacity;
}

// True iff every quantity of `needed` is at most the same one of `have`
// (absent: 0), compared as Mesos's fixed point.
bool QuantitiesContain(const Quantities& have, const Quantities& needed) {
  for (const auto& [name, value] : needed) {
    auto it = have.find(name);
    const double available = it == have.end() ? 0 : it->second;
    if (RoundScalar(value) > RoundScalar(available)) return false;
  }
  return true;
}

}  // namespace

void Leader::TeardownFramework(const std::string& framework_id,
                               const CommandContext& context, Done done) {
  if (!leading()) {
    done(Answer::Error(503, "not the leading master"));
    return;
  }
  if (framework_id.empty()) {
    done(Answer::Error(400, "TEARDOWN needs a framework_id",
                       "teardown.framework_id"));
    return;
  }
  const v1::FrameworkRecord* f = view().FindFramework(framework_id);
  if (f == nullptr || f->state() == v1::FrameworkRecord::COMPLETED) {
    done(Answer::Error(
        400, absl::StrCat("No framework found with ID ", framework_id),
        "teardown.framework_id"));
    return;
  }
  RemoveFramework(framework_id, "torn down by an operator", context,
                  [done = std::move(done)](Answer answer) {
                    if (answer.ok()) answer.code = 200;
                    done(std::move(answer));
                  });
}

void Leader::MarkAgentGone(const std::string& agent_id,
                           const CommandContext& context, Done done) {
  auto answer = [&done](Answer a) {
    if (done) done(std::move(a));
  };
  if (!leading()) {
    answer(Answer::Error(503, "not the leading master"));
    return;
  }
  if (agent_id.empty()) {
    answer(Answer::Error(400, "MARK_AGENT_GONE needs an agent_id",
                         "mark_agent_gone.agent_id"));
    return;
  }
  const v1::AgentRecord* agent = view().FindAgent(agent_id);
  if (agent == nullptr) {
    answer(Answer::Error(404, absl::StrCat("Agent '", agent_id, "' not found"),
                         "mark_agent_gone.agent_id"));
    return;
  }
  if (agent->state() == v1::AgentRecord::REMOVED) {
    answer(OperatorOk());  // already gone
    return;
  }
  if (marking_gone_.count(agent_id) > 0) {
    answer(Answer::Error(503, absl::StrCat("Agent '", agent_id,
                                           "' is already being marked gone")));
    return;
  }
  marking_gone_.insert(agent_id);
  Request request;
  request.context = context;
  request.decide =
      [this, agent_id](
          const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    const v1::AgentRecord* agent = view.FindAgent(agent_id);
    if (agent == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("Agent '", agent_id, "' not found"));
    }
    if (agent->state() == v1::AgentRecord::REMOVED) {
      return std::vector<Event>{};
    }
    std::vector<Event> events;
    for (const TaskKey& key : view.TasksOnAgent(agent_id)) {
      const v1::TaskRecord* task = view.FindTask(key.first, key.second);
      if (task == nullptr || IsTerminalState(task->task().state())) continue;
      // As Mesos: frameworks that do not know TASK_GONE_BY_OPERATOR hear
      // TASK_LOST.
      const bool aware = PartitionAware(view, key.first);
      events.push_back(
          MasterStatus(*task, aware ? v1::TASK_GONE_BY_OPERATOR : v1::TASK_LOST,
                       aware ? TaskStatus::REASON_AGENT_REMOVED_BY_OPERATOR
                             : TaskStatus::REASON_AGENT_REMOVED,
                       "the agent was marked gone by an operator"));
    }
    Event removed;
    v1::AgentRemoved* r = removed.mutable_agent_removed();
    r->mutable_agent_id()->set_value(agent_id);
    r->set_by_operator(true);
    r->set_reason("marked gone by an operator");
    events.push_back(std::move(removed));
    return events;
  };
  request.on_commit = [this, agent_id](Done done) {
    marking_gone_.erase(agent_id);
    LOG(WARNING) << "agent " << agent_id << " marked gone by an operator";
    EndAgentStream(agent_id, 403, "the agent was marked gone by an operator");
    agents_.erase(agent_id);
    SendAgentLost(agent_id);  // FAILURE {agent_id}, as Mesos
    if (done) done(OperatorOk());
  };
  request.on_failure = [this, agent_id](const absl::Status&) {
    marking_gone_.erase(agent_id);
  };
  request.done = std::move(done);
  request.error_field = "mark_agent_gone.agent_id";
  Submit(std::move(request));
}

void Leader::DrainAgent(const std::string& agent_id,
                        const v1::DrainConfig& config,
                        const CommandContext& context, Done done) {
  if (!leading()) {
    done(Answer::Error(503, "not the leading master"));
    return;
  }
  if (agent_id.empty()) {
    done(Answer::Error(400, "DRAIN_AGENT needs an agent_id",
                       "drain_agent.agent_id"));
    return;
  }
  if (config.max_grace_period().nanoseconds() < 0) {
    done(Answer::Error(400, "max_grace_period must not be negative",
                       "drain_agent.max_grace_period"));
    return;
  }
  const v1::AgentRecord* agent = view().FindAgent(agent_id);
  if (agent == nullptr || agent->state() == v1::AgentRecord::REMOVED) {
    done(Answer::Error(400, "Unknown agent", "drain_agent.agent_id"));
    return;
  }
  if (marking_gone_.count(agent_id) > 0) {
    done(Answer::Error(409, "Agent is currently being marked gone",
                       "drain_agent.agent_id"));
    return;
  }
  if (agent->drain_info().state() == v1::DRAINED) {
    done(OperatorOk());
    return;
  }
  auto kills = std::make_shared<std::vector<TaskKey>>();
  Request request;
  request.context = context;
  request.decide =
      [this, agent_id, config,
       kills](const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    kills->clear();
    const v1::AgentRecord* agent = view.FindAgent(agent_id);
    if (agent == nullptr || agent->state() == v1::AgentRecord::REMOVED) {
      return absl::InvalidArgumentError("Unknown agent");
    }
    if (agent->drain_info().state() == v1::DRAINED) {
      return std::vector<Event>{};
    }
    std::vector<Event> events;
    Event started;
    started.mutable_agent_drain_started()->mutable_agent_id()->set_value(
        agent_id);
    *started.mutable_agent_drain_started()->mutable_config() = config;
    events.push_back(std::move(started));
    for (const TaskKey& key : view.TasksOnAgent(agent_id)) {
      const v1::TaskRecord* task = view.FindTask(key.first, key.second);
      if (task == nullptr || IsTerminalState(task->task().state())) continue;
      if (dispatched_.count(key) == 0) {
        // Never sent to the agent: the master ends it alone.
        events.push_back(MasterStatus(
            *task, v1::TASK_KILLED,
            TaskStatus::REASON_TASK_KILLED_DURING_LAUNCH,
            "killed before it was sent to its agent: the agent is draining"));
        continue;
      }
      // The task's grace period (a pending kill's, else its own), capped.
      std::optional<int64_t> grace;
      if (task->kill_request().kill_policy().has_grace_period()) {
        grace = task->kill_request().kill_policy().grace_period().nanoseconds();
      } else if (task->info().kill_policy().has_grace_period()) {
        grace = task->info().kill_policy().grace_period().nanoseconds();
      }
      if (config.has_max_grace_period()) {
        const int64_t max = config.max_grace_period().nanoseconds();
        grace = grace.has_value() ? std::min(*grace, max) : max;
      }
      Event e;
      v1::TaskKillRequested* k = e.mutable_task_kill_requested();
      k->mutable_framework_id()->set_value(key.first);
      k->mutable_task_id()->set_value(key.second);
      if (grace.has_value()) {
        k->mutable_kill_policy()->mutable_grace_period()->set_nanoseconds(
            *grace);
      }
      events.push_back(std::move(e));
      kills->push_back(key);
    }
    return events;
  };
  request.on_commit = [this, agent_id, kills](Done done) {
    LOG(INFO) << "agent " << agent_id << " is draining (" << kills->size()
              << " tasks to kill)";
    for (const TaskKey& key : *kills) {
      const v1::TaskRecord* task = committed_->FindTask(key.first, key.second);
      if (task != nullptr && !IsTerminalState(task->task().state())) {
        SendKill(task->task().agent_id().value(), key);
      }
    }
    CheckDrainingAgents();
    if (done) done(OperatorOk());
  };
  request.done = std::move(done);
  request.error_field = "drain_agent.agent_id";
  Submit(std::move(request));
}

void Leader::CheckDrainingAgents() {
  if (!leading()) return;
  std::vector<std::string> drained;
  for (const auto& entry : agents_) {
    const std::string& id = entry.first;
    if (finishing_drain_.count(id) > 0 || marking_gone_.count(id) > 0) {
      continue;
    }
    const v1::AgentRecord* agent = committed_->FindAgent(id);
    if (agent == nullptr || agent->state() == v1::AgentRecord::REMOVED ||
        agent->drain_info().state() != v1::DRAINING) {
      continue;
    }
    bool live = false;
    for (const TaskKey& key : committed_->TasksOnAgent(id)) {
      const v1::TaskRecord* task = committed_->FindTask(key.first, key.second);
      if (task != nullptr && !IsTerminalState(task->task().state())) {
        live = true;
        break;
      }
    }
    if (!live) drained.push_back(id);
  }
  for (const std::string& id : drained) {
    finishing_drain_.insert(id);
    Request request;
    request.context.principal = "master";
    request.decide =
        [id](const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
      const v1::AgentRecord* agent = view.FindAgent(id);
      if (agent == nullptr || agent->drain_info().state() != v1::DRAINING) {
        return std::vector<Event>{};
      }
      for (const TaskKey& key : view.TasksOnAgent(id)) {
        const v1::TaskRecord* task = view.FindTask(key.first, key.second);
        if (task != nullptr && !IsTerminalState(task->task().state())) {
          return std::vector<Event>{};
        }
      }
      Event e;
      e.mutable_agent_drained()->mutable_agent_id()->set_value(id);
      return std::vector<Event>{std::move(e)};
    };
    request.on_commit = [this, id](Done) {
      finishing_drain_.erase(id);
      const v1::AgentRecord* agent = committed_->FindAgent(id);
      if (agent == nullptr || agent->drain_info().state() != v1::DRAINED) {
        return;
      }
      LOG(INFO) << "agent " << id << " is drained";
      if (agent->drain_info().config().mark_gone()) {
        CommandContext context;
        context.principal = "master";
        MarkAgentGone(id, context, nullptr);
      }
    };
    request.on_failure = [this, id](const absl::Status&) {
      finishing_drain_.erase(id);
    };
    Submit(std::move(request));
  }
}

void Leader::DeactivateAgent(const std::string& agent_id,
                             const CommandContext& context, Done done) {
  if (!leading()) {
    done(Answer::Error(503, "not the leading master"));
    return;
  }
  const v1::AgentRecord* agent =
      agent_id.empty() ? nullptr : view().FindAgent(agent_id);
  if (agent == nullptr || agent->state() == v1::AgentRecord::REMOVED) {
    done(Answer::Error(400, "Unknown agent", "deactivate_agent.agent_id"));
    return;
  }
  if (agent->deactivated()) {
    done(OperatorOk());
    return;
  }
  Request request;
  request.context = context;
  request.decide =
      [agent_id](
          const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    const v1::AgentRecord* agent = view.FindAgent(agent_id);
    if (agent == nullptr || agent->state() == v1::AgentRecord::REMOVED) {
      return absl::InvalidArgumentError("Unknown agent");
    }
    if (agent->deactivated()) return std::vector<Event>{};
    Event e;
    e.mutable_agent_deactivated()->mutable_agent_id()->set_value(agent_id);
    return std::vector<Event>{std::move(e)};
  };
  request.on_commit = [](Done done) {
    if (done) done(OperatorOk());
  };
  request.done = std::move(done);
  request.error_field = "deactivate_agent.agent_id";
  Submit(std::move(request));
}

void Leader::ReactivateAgent(const std::string& agent_id,
                             const CommandContext& context, Done done) {
  if (!leading()) {
    done(Answer::Error(503, "not the leading master"));
    return;
  }
  // The same checks on the view now and again when deciding.
  auto check = [agent_id](const MasterState& view) -> absl::Status {
    const v1::AgentRecord* agent =
        agent_id.empty() ? nullptr : view.FindAgent(agent_id);
    if (agent == nullptr || agent->state() == v1::AgentRecord::REMOVED) {
      return absl::InvalidArgumentError("Unknown agent");
    }
    if (!agent->deactivated()) {
      return absl::InvalidArgumentError("Agent is not deactivated");
    }
    if (agent->drain_info().state() == v1::DRAINING) {
      return absl::InvalidArgumentError("Agent is still in the DRAINING state");
    }
    return absl::OkStatus();
  };
  absl::Status valid = check(view());
  if (!valid.ok()) {
    done(Answer::Error(400, std::string(valid.message()),
                       "reactivate_agent.agent_id"));
    return;
  }
  Request request;
  request.context = context;
  request.decide =
      [agent_id,
       check](const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    absl::Status valid = check(view);
    if (!valid.ok()) return valid;
    Event e;
    e.mutable_agent_reactivated()->mutable_agent_id()->set_value(agent_id);
    return std::vector<Event>{std::move(e)};
  };
  request.on_commit = [](Done done) {
    if (done) done(OperatorOk());
  };
  request.done = std::move(done);
  request.error_field = "reactivate_agent.agent_id";
  Submit(std::move(request));
}

void Leader::UpdateWeights(
    const google::protobuf::RepeatedPtrField<v1::WeightInfo>& weights,
    const CommandContext& context, Done done) {
  if (!leading()) {
    done(Answer::Error(503, "not the leading master"));
    return;
  }
  Event e;
  v1::WeightsUpdated* updated = e.mutable_weights_updated();
  for (int i = 0; i < weights.size(); ++i) {
    const std::string field =
        absl::StrCat("update_weights.weight_infos[", i, "]");
    // Mesos trims the role.
    const std::string role(absl::StripAsciiWhitespace(weights[i].role()));
    absl::Status valid =
        role == "*"
            ? absl::InvalidArgumentError("the default role '*' has no weight")
            : ValidateRoleName(role);
    if (!valid.ok()) {
      done(Answer::Error(400, std::string(valid.message()),
                         absl::StrCat(field, ".role")));
      return;
    }
    const double weight = weights[i].weight();
    if (!std::isfinite(weight) || weight <= 0) {
      done(Answer::Error(
          400, absl::StrCat("weight of role '", role, "' must be > 0"),
          absl::StrCat(field, ".weight")));
      return;
    }
    v1::WeightInfo* info = updated->add_weights();
    info->set_role(role);
    info->set_weight(weight);
  }
  SubmitOperatorEvent(std::move(e), context, std::move(done),
                      "update_weights.weight_infos");
}

// One operator event, answered 200 once committed.
void Leader::SubmitOperatorEvent(Event e, const CommandContext& context,
                                 Done done, const std::string& error_field) {
  Request request;
  request.context = context;
  request.decide = [e = std::move(e)](const MasterState&)
      -> absl::StatusOr<std::vector<Event>> { return std::vector<Event>{e}; };
  request.on_commit = [](Done done) {
    if (done) done(OperatorOk());
  };
  request.done = std::move(done);
  request.error_field = error_field;
  Submit(std::move(request));
}

void Leader::UpdateQuota(
    const google::protobuf::RepeatedPtrField<v1::QuotaConfig>& configs,
    bool force, const CommandContext& context, Done done) {
  if (!leading()) {
    done(Answer::Error(503, "not the leading master"));
    return;
  }
  std::set<std::string> roles;
  for (int i = 0; i < configs.size(); ++i) {
    const v1::QuotaConfig& config = configs[i];
    const std::string field =
        absl::StrCat("update_quota.quota_configs[", i, "]");
    const std::string& role = config.role();
    absl::Status valid =
        role.empty()
            ? absl::InvalidArgumentError("'QuotaConfig.role' must be set")
        : role == "*" ? absl::InvalidArgumentError(
                            "quota cannot be set on the default role '*'")
                      : ValidateRoleName(role);
    if (valid.ok() && role.find('/') != std::string::npos) {
      // As Mesos (MESOS-7402).
      valid = absl::InvalidArgumentError(absl::StrCat(
          "Updating quota on nested role '", role, "' is not supported yet"));
    }
    if (valid.ok() && !roles.insert(role).second) {
      valid = absl::InvalidArgumentError(
          absl::StrCat("role '", role, "' appears twice"));
    }
    if (!valid.ok()) {
      done(Answer::Error(400, std::string(valid.message()),
                         absl::StrCat(field, ".role")));
      return;
    }
    for (const bool limits : {false, true}) {
      const auto& map = limits ? config.limits() : config.guarantees();
      for (const auto& [name, scalar] : map) {
        const double value = scalar.value();
        const double max = name == "mem" || name == "disk" ? kMaxQuotaMegabytes
                                                           : kMaxQuotaOther;
        std::string why;
        if (!std::isfinite(value) || value < 0) {
          why = "must be finite and >= 0";
        } else if (value > max) {
          why = absl::StrCat("is larger than the supported maximum ", max);
        }
        if (!why.empty()) {
          done(Answer::Error(
              400,
              absl::StrCat("Invalid QuotaConfig: {'", name, "': ", value, "} ",
                           why),
              absl::StrCat(field, limits ? ".limits" : ".guarantees")));
          return;
        }
      }
    }
    for (const auto& [name, guarantee] : config.guarantees()) {
      auto limit = config.limits().find(name);
      if (limit != config.limits().end() &&
          RoundScalar(guarantee.value()) > RoundScalar(limit->second.value())) {
        done(Answer::Error(
            400,
            absl::StrCat("Invalid QuotaConfig: the guarantee of '", name, "' (",
                         guarantee.value(), ") exceeds its limit (",
                         limit->second.value(), ")"),
            absl::StrCat(field, ".guarantees")));
        return;
      }
    }
  }
  if (!force) {
    const MasterState& state = view();
    for (int i = 0; i < configs.size(); ++i) {
      const v1::QuotaConfig& config = configs[i];
      if (config.limits().empty()) continue;
      Quantities limits;
      for (const auto& [name, scalar] : config.limits()) {
        limits[name] = scalar.value();
      }
      Quantities consumed = ConsumedQuota(state, config.role());
      Quantities limited;  // the consumption of the limited names
      for (const auto& [name, value] : limits) {
        if (consumed.count(name) > 0) limited[name] = consumed[name];
      }
      if (!QuantitiesContain(limits, limited)) {
        done(Answer::Error(
            400,
            absl::StrCat("Invalid QuotaConfig: Role '", config.role(),
                         "' is already consuming '",
                         QuantitiesToString(limited),
                         "'; this is more than the requested limits '",
                         QuantitiesToString(limits),
                         "' (use 'force' flag to bypass this check)"),
            absl::StrCat("update_quota.quota_configs[", i, "].limits")));
        return;
      }
    }
    std::map<std::string, const v1::QuotaConfig*> after;
    for (const auto& [role, config] : state.quotas()) after[role] = &config;
    for (const v1::QuotaConfig& config : configs)
      after[config.role()] = &config;
    Quantities guarantees;
    for (const auto& [role, config] : after) {
      for (const auto& [name, scalar] : config->guarantees()) {
        guarantees[name] += scalar.value();
      }
    }
    const Quantities capacity = ClusterCapacity(state);
    if (!QuantitiesContain(capacity, guarantees)) {
      done(Answer::Error(
          400,
          absl::StrCat("Invalid QuotaConfig: total quota guarantees '",
                       QuantitiesToString(guarantees),
                       "' exceed cluster capacity '",
                       QuantitiesToString(capacity),
                       "' (use 'force' flag to bypass this check)"),
          "update_quota.quota_configs"));
      return;
    }
  }
  Event e;
  *e.mutable_quota_updated()->mutable_configs() = configs;
  SubmitOperatorEvent(std::move(e), context, std::move(done),
                      "update_quota.quota_configs");
}

void Leader::ReserveResources(
    const std::string& agent_id,
    const google::protobuf::RepeatedPtrField<v1::Resource>& source,
    const google::protobuf::RepeatedPtrField<v1::Resource>& resources,
    const CommandContext& context, Done done) {
  if (!source.empty()) {
    // Only the plain form is served: `source` must be what `resources`
    // are reserved from.
    absl::StatusOr<Resources> from = Resources::FromProto(source);
    absl::StatusOr<Resources> to = Resources::FromProto(resources);
    absl::StatusOr<Resources> popped =
        to.ok() ? to->WithoutAllocationInfo().PopReservation() : to.status();
    if (!from.ok() || !popped.ok() ||
        from->WithoutAllocationInfo() != *popped) {
      done(Answer::Error(
          400,
          "source must be the resources with their last reservation removed",
          "reserve_resources.source"));
      return;
    }
  }
  ChangeReservation(true, agent_id, resources, context, std::move(done));
}

void Leader::UnreserveResources(
    const std::string& agent_id,
    const google::protobuf::RepeatedPtrField<v1::Resource>& resources,
    const CommandContext& context, Done done) {
  ChangeReservation(false, agent_id, resources, context, std::move(done));
}

void Leader::ChangeReservation(
    bool reserve, const std::string& agent_id,
    const google::protobuf::RepeatedPtrField<v1::Resource>& resources,
    const CommandContext& context, Done done) {
  const std::string call =
      reserve ? "reserve_resources" : "unreserve_resources";
  if (!leading()) {
    done(Answer::Error(503, "not the leading master"));
    return;
  }
  if (agent_id.empty()) {
    done(Answer::Error(400, "agent_id is required",
                       absl::StrCat(call, ".agent_id")));
    return;
  }
  const std::string field = absl::StrCat(call, ".resources");
  absl::StatusOr<Resources> parsed = Resources::FromProto(resources);
  if (!parsed.ok()) {
    done(Answer::Error(400, std::string(parsed.status().message()), field));
    return;
  }
  const Resources reserved = parsed->WithoutAllocationInfo();
  if (reserved.empty()) {
    done(Answer::Error(400, "no resources", field));
    return;
  }
  for (const v1::Resource& r : reserved.ToProto()) {
    if (r.reservations_size() == 0 ||
        r.reservations(r.reservations_size() - 1).type() !=
            v1::Resource::ReservationInfo::DYNAMIC) {
      done(Answer::Error(400,
                         absl::StrCat("resource ", r.name(),
                                      " does not end in a dynamic reservation"),
                         field));
      return;
    }
    const std::string& role = r.reservations(r.reservations_size() - 1).role();
    absl::Status valid =
        role == "*"
            ? absl::InvalidArgumentError("cannot reserve for the role '*'")
            : ValidateRoleName(role);
    if (!valid.ok()) {
      done(Answer::Error(400, std::string(valid.message()), field));
      return;
    }
  }
  absl::StatusOr<Resources> unreserved = reserved.PopReservation();
  if (!unreserved.ok()) {
    done(Answer::Error(400, std::string(unreserved.status().message()), field));
    return;
  }
  const v1::AgentRecord* agent = view().FindAgent(agent_id);
  if (agent == nullptr || agent->state() != v1::AgentRecord::ACTIVE) {
    done(Answer::Error(400, "No agent found with specified ID",
                       absl::StrCat(call, ".agent_id")));
    return;
  }
  const Resources from = reserve ? *unreserved : reserved;
  Request request;
  request.context = context;
  request.decide =
      [reserve, agent_id, from, reserved](
          const MasterState& view) -> absl::StatusOr<std::vector<Event>> {
    const v1::AgentRecord* agent = view.FindAgent(agent_id);
    if (agent == nullptr || agent->state() != v1::AgentRecord::ACTIVE) {
      return absl::InvalidArgumentError("No agent found with specified ID");
    }
    absl::StatusOr<Resources> free = view.AvailableResources(agent_id);
    Resources available = free.ok() ? *free : Resources();
    std::vector<Event> events;
    if (!available.Contains(from)) {
      // Rescind outstanding offers on the agent, one at a time, until what
      // they hold covers the shortfall (as Mesos does).
      Resources missing = from - available;
      Event rescinded;
      for (const std::string& id : view.OffersOnAgent(agent_id)) {
        const v1::OfferRecord* offer = view.FindOffer(id);
        if (offer == nullptr) continue;
        absl::StatusOr<Resources> held =
            Resources::FromProto(offer->offer().resources());
        if (!held.ok()) continue;
        const Resources r = held->WithoutAllocationInfo();
        if (missing - r == missing) continue;  // nothing the call needs
        rescinded.mutable_offers_rescinded()->add_offer_ids()->set_value(id);
        available += r;
        missing -= r;
        if (available.Contains(from)) break;
      }
      if (!available.Contains(from)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "agent ", agent_id, " has ", available.ToString(),
            " available (outstanding offers included), not ", from.ToString()));
      }
      events.push_back(std::move(rescinded));
    }
    Event e;
    if (reserve) {
      v1::ResourcesReserved* r = e.mutable_resources_reserved();
      r->mutable_agent_id()->set_value(agent_id);
      reserved.ToProto(r->mutable_resources());
    } else {
      v1::ResourcesUnreserved* r = e.mutable_resources_unreserved();
      r->mutable_agent_id()->set_value(agent_id);
      reserved.ToProto(r->mutable_resources());
    }
    events.push_back(std::move(e));
    return events;
  };
  request.done = std::move(done);  // 202 once committed, as Mesos
  request.error_field = field;
  Submit(std::move(request));
}

}  // namespace cairn::master
