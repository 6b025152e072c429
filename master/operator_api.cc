#include "master/operator_api.h"

#include <algorithm>
#include <limits>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json_value.h"
#include "common/logging.h"
#include "master/allocator.h"
#include "master/resources.h"

namespace cairn::master {

namespace {

using v1::master_api::Call;
using v1::master_api::Event;
using v1::master_api::Response;

// Seconds since the epoch, as Mesos's doubles.
double Seconds(absl::Time t) {
  return absl::ToDoubleSeconds(t - absl::UnixEpoch());
}

Answer Invalid(std::string message, std::string field) {
  return Answer::Error(400, std::move(message), std::move(field));
}

// `resources` summed (canonical form), or empty if they do not parse.
Resources Sum(const google::protobuf::RepeatedPtrField<v1::Resource>& list) {
  absl::StatusOr<Resources> r = Resources::FromProto(list);
  return r.ok() ? *std::move(r) : Resources();
}

// The role a task's or offer's resource is allocated to: its
// allocation_info, else the framework's only role ("" if it has several).
std::string RoleOf(const v1::Resource& resource,
                   const v1::FrameworkRecord* framework) {
  if (resource.has_allocation_info()) return resource.allocation_info().role();
  if (framework == nullptr) return "";
  const std::set<std::string> roles = SubscribedRoles(framework->info());
  return roles.size() == 1 ? *roles.begin() : "";
}

// The old GET_WEIGHTS JSON text (see EncodeResponse).
std::string LegacyWeightsJson(const Response::GetWeights& weights) {
  std::vector<std::string> items;
  for (const v1::WeightInfo& info : weights.weight_infos()) {
    items.push_back(absl::StrCat("{\"role\":", http::JsonQuote(info.role()),
                                 ",\"weight\":", info.weight(), "}"));
  }
  return absl::StrCat(
      "{\"type\":\"GET_WEIGHTS\",\"get_weights\":{\"weight_infos\":[",
      absl::StrJoin(items, ","), "]}}");
}

bool IsLive(const v1::TaskRecord& task) {
  return !IsTerminalState(task.task().state());
}

}  // namespace

// ---- Parsing ----------------------------------------------------------------

bool IsReadOnlyCall(Call::Type type) {
  switch (type) {
    case Call::GET_HEALTH:
    case Call::GET_FLAGS:
    case Call::GET_VERSION:
    case Call::GET_METRICS:
    case Call::GET_STATE:
    case Call::GET_AGENTS:
    case Call::GET_FRAMEWORKS:
    case Call::GET_EXECUTORS:
    case Call::GET_TASKS:
    case Call::GET_ROLES:
    case Call::GET_WEIGHTS:
    case Call::GET_MASTER:
    case Call::GET_QUOTA:
      return true;
    default:
      return false;
  }
}

std::optional<Answer> ValidateOperatorCall(const Call& call) {
  // Mesos's message when a call lacks its member.
  auto missing = [](const std::string& member) {
    return Invalid(absl::StrCat("Expecting '", member, "' to be present"),
                   member);
  };
  auto no_id = [](const std::string& field) {
    return Invalid(absl::StrCat("Expecting '", field, "' to be present"),
                   field);
  };
  if (IsReadOnlyCall(call.type()) && call.type() != Call::GET_METRICS) {
    return std::nullopt;
  }
  switch (call.type()) {
    case Call::GET_METRICS:
      if (!call.has_get_metrics()) return missing("get_metrics");
      return std::nullopt;
    case Call::SUBSCRIBE:
      return std::nullopt;
    case Call::UPDATE_WEIGHTS:
      if (!call.has_update_weights()) return missing("update_weights");
      return std::nullopt;
    case Call::UPDATE_QUOTA:
      if (!call.has_update_quota()) return missing("update_quota");
      return std::nullopt;
    case Call::RESERVE_RESOURCES:
      if (!call.has_reserve_resources()) return missing("reserve_resources");
      if (call.reserve_resources().agent_id().value().empty()) {
        return no_id("reserve_resources.agent_id");
      }
      return std::nullopt;
    case Call::UNRESERVE_RESOURCES:
      if (!call.has_unreserve_resources()) {
        return missing("unreserve_resources");
      }
      if (call.unreserve_resources().agent_id().value().empty()) {
        return no_id("unreserve_resources.agent_id");
      }
      return std::nullopt;
    case Call::DRAIN_AGENT: {
      if (!call.has_drain_agent()) return missing("drain_agent");
      const Call::DrainAgent& drain = call.drain_agent();
      if (drain.agent_id().value().empty()) {
        return no_id("drain_agent.agent_id");
      }
      if (drain.has_max_grace_period()) {
        const int64_t seconds = drain.max_grace_period().seconds();
        const int32_t nanos = drain.max_grace_period().nanos();
        // Non-negative, nanos in [0, 1e9), and representable in int64 ns.
        if (seconds < 0 || nanos < 0 || nanos >= 1000000000 ||
            seconds > std::numeric_limits<int64_t>::max() / 1000000000 - 1) {
          return Invalid("max_grace_period must be a non-negative duration",
                         "drain_agent.max_grace_period");
        }
      }
      return std::nullopt;
    }
    case Call::DEACTIVATE_AGENT:
      if (!call.has_deactivate_agent()) return missing("deactivate_agent");
      if (call.deactivate_agent().agent_id().value().empty()) {
        return no_id("deactivate_agent.agent_id");
      }
      return std::nullopt;
    case Call::REACTIVATE_AGENT:
      if (!call.has_reactivate_agent()) return missing("reactivate_agent");
      if (call.reactivate_agent().agent_id().value().empty()) {
        return no_id("reactivate_agent.agent_id");
      }
      return std::nullopt;
    case Call::TEARDOWN:
      if (!call.has_teardown()) return missing("teardown");
      if (call.teardown().framework_id().value().empty()) {
        return no_id("teardown.framework_id");
      }
      return std::nullopt;
    case Call::MARK_AGENT_GONE:
      if (!call.has_mark_agent_gone()) return missing("mark_agent_gone");
      if (call.mark_agent_gone().agent_id().value().empty()) {
        return no_id("mark_agent_gone.agent_id");
      }
      return std::nullopt;
    default:
      return Answer::Error(
          501,
          absl::StrCat("call type ", Call::Type_Name(call.type()),
                       " is not served by this master"),
          "type");
  }
}

std::optional<http::Response> ParseOperatorRequest(const http::Request& request,
                                                   OperatorRequest* out) {
  if (!request.headers.Has("Content-Type")) {
    return ApiError(400, "Expecting 'Content-Type' to be present",
                    "Content-Type");
  }
  Encoding encoding = Encoding::kJson;
  if (std::optional<http::Response> bad =
          ParseCall(request, &out->call, &encoding)) {
    return bad;
  }
  if (std::optional<Answer> invalid = ValidateOperatorCall(out->call)) {
    return AnswerResponse(*invalid);
  }
  // As Mesos: JSON unless Accept rules it out.
  const std::optional<Encoding> accept =
      NegotiateAccept(request.headers.Get("Accept"), Encoding::kJson);
  if (!accept.has_value()) {
    return ApiError(406,
                    "Expecting 'Accept' to allow 'application/x-protobuf' or "
                    "'application/json'",
                    "Accept");
  }
  out->accept = *accept;
  out->context = ContextOf(request);
  return std::nullopt;
}

v1::DrainConfig DrainConfigOf(const Call::DrainAgent& drain) {
  v1::DrainConfig config;
  if (drain.has_max_grace_period()) {
    config.mutable_max_grace_period()->set_nanoseconds(
        drain.max_grace_period().seconds() * 1000000000 +
        drain.max_grace_period().nanos());
  }
  config.set_mark_gone(drain.mark_gone());
  return config;
}

// ---- Answers from the state -------------------------------------------------

Response::GetAgents::Agent AgentToProto(const MasterState& state,
                                        const v1::AgentRecord& agent) {
  const std::string& id = agent.info().id().value();
  Response::GetAgents::Agent out;
  *out.mutable_agent_info() = agent.info();
  out.set_active(agent.state() == v1::AgentRecord::ACTIVE &&
                 !agent.deactivated());
  out.set_deactivated(agent.deactivated());
  out.set_version(agent.version());
  if (agent.has_registered_time()) {
    *out.mutable_registered_time() = agent.registered_time();
  }
  if (agent.has_reregistered_time()) {
    *out.mutable_reregistered_time() = agent.reregistered_time();
  }
  *out.mutable_total_resources() = agent.total_resources();
  if (absl::StatusOr<Resources> used = state.UsedResources(id); used.ok()) {
    used->ToProto(out.mutable_allocated_resources());
  }
  if (absl::StatusOr<Resources> offered = state.OfferedResources(id);
      offered.ok()) {
    offered->ToProto(out.mutable_offered_resources());
  }
  *out.mutable_capabilities() = agent.capabilities();
  if (agent.has_drain_info()) *out.mutable_drain_info() = agent.drain_info();
  return out;
}

Response::GetFrameworks::Framework FrameworkToProto(
    const MasterState& state, const v1::FrameworkRecord& framework) {
  const std::string& id = framework.info().id().value();
  Response::GetFrameworks::Framework out;
  *out.mutable_framework_info() = framework.info();
  out.set_active(framework.state() == v1::FrameworkRecord::CONNECTED);
  out.set_connected(framework.state() == v1::FrameworkRecord::CONNECTED ||
                    framework.state() == v1::FrameworkRecord::INACTIVE);
  out.set_recovered(false);
  if (framework.has_registered_time()) {
    *out.mutable_registered_time() = framework.registered_time();
  }
  if (framework.has_reregistered_time()) {
    *out.mutable_reregistered_time() = framework.reregistered_time();
  }
  if (framework.has_unregistered_time()) {
    *out.mutable_unregistered_time() = framework.unregistered_time();
  }
  Resources offered;
  for (const std::string& offer_id : state.OffersOfFramework(id)) {
    const v1::OfferRecord* offer = state.FindOffer(offer_id);
    if (offer == nullptr) continue;
    *out.add_offers() = offer->offer();
    offered += Sum(offer->offer().resources());
  }
  Resources allocated;
  for (const TaskKey& key : state.TasksOfFramework(id)) {
    const v1::TaskRecord* task = state.FindTask(key.first, key.second);
    if (task != nullptr && IsLive(*task)) {
      allocated += Sum(task->task().resources());
    }
  }
  allocated.ToProto(out.mutable_allocated_resources());
  offered.ToProto(out.mutable_offered_resources());
  return out;
}

v1::Task TaskToProto(const v1::Task& task) {
  v1::Task out = task;
  for (v1::TaskStatus& status : *out.mutable_statuses()) status.clear_data();
  return out;
}

Response::GetAgents MakeGetAgents(const MasterState& state) {
  Response::GetAgents out;
  for (const std::string& id : state.AgentIds()) {
    const v1::AgentRecord* agent = state.FindAgent(id);
    if (agent->state() != v1::AgentRecord::ACTIVE) continue;
    *out.add_agents() = AgentToProto(state, *agent);
  }
  return out;
}

Response::GetFrameworks MakeGetFrameworks(const MasterState& state) {
  Response::GetFrameworks out;
  for (const std::string& id : state.FrameworkIds()) {
    const v1::FrameworkRecord* f = state.FindFramework(id);
    *(f->state() == v1::FrameworkRecord::COMPLETED
          ? out.add_completed_frameworks()
          : out.add_frameworks()) = FrameworkToProto(state, *f);
  }
  return out;
}

Response::GetExecutors MakeGetExecutors(const MasterState& state) {
  Response::GetExecutors out;
  // (framework, executor, agent) seen.
  std::set<std::tuple<std::string, std::string, std::string>> seen;
  for (const std::string& framework_id : state.FrameworkIds()) {
    for (const TaskKey& key : state.TasksOfFramework(framework_id)) {
      const v1::TaskRecord* task = state.FindTask(key.first, key.second);
      if (task == nullptr || !IsLive(*task) || !task->info().has_executor()) {
        continue;
      }
      const v1::ExecutorInfo& executor = task->info().executor();
      const std::string& agent_id = task->task().agent_id().value();
      if (!seen.emplace(framework_id, executor.executor_id().value(), agent_id)
               .second) {
        continue;
      }
      Response::GetExecutors::Executor* e = out.add_executors();
      *e->mutable_executor_info() = executor;
      e->mutable_executor_info()->mutable_framework_id()->set_value(
          framework_id);
      *e->mutable_agent_id() = task->task().agent_id();
    }
  }
  return out;
}

Response::GetTasks MakeGetTasks(const MasterState& state) {
  Response::GetTasks out;
  for (const std::string& framework_id : state.FrameworkIds()) {
    for (const TaskKey& key : state.TasksOfFramework(framework_id)) {
      const v1::TaskRecord* task = state.FindTask(key.first, key.second);
      if (task == nullptr) continue;
      *(task->task().state() == v1::TASK_UNREACHABLE
            ? out.add_unreachable_tasks()
            : out.add_tasks()) = TaskToProto(task->task());
    }
    const v1::FrameworkRecord* f = state.FindFramework(framework_id);
    for (const v1::Task& task : f->completed_tasks()) {
      *out.add_completed_tasks() = TaskToProto(task);
    }
  }
  return out;
}

Response::GetState MakeGetState(const MasterState& state) {
  Response::GetState out;
  *out.mutable_get_tasks() = MakeGetTasks(state);
  *out.mutable_get_executors() = MakeGetExecutors(state);
  *out.mutable_get_frameworks() = MakeGetFrameworks(state);
  *out.mutable_get_agents() = MakeGetAgents(state);
  return out;
}

Response::GetRoles MakeGetRoles(const MasterState& state) {
  struct RoleEntry {
    std::vector<std::string> frameworks;
    Resources resources;
  };
  std::map<std::string, RoleEntry> roles;
  for (const std::string& id : state.FrameworkIds()) {
    const v1::FrameworkRecord* f = state.FindFramework(id);
    if (f->state() == v1::FrameworkRecord::COMPLETED) continue;
    for (const std::string& role : SubscribedRoles(f->info())) {
      roles[role].frameworks.push_back(id);
    }
    // What the framework's tasks use and its offers hold, per role.
    auto add = [&](const google::protobuf::RepeatedPtrField<v1::Resource>& rs) {
      for (const v1::Resource& r : rs) {
        const std::string role = RoleOf(r, f);
        if (role.empty()) continue;
        absl::StatusOr<Resources> one = Resources::FromProto(r);
        if (one.ok()) roles[role].resources += *one;
      }
    };
    for (const TaskKey& key : state.TasksOfFramework(id)) {
      const v1::TaskRecord* task = state.FindTask(key.first, key.second);
      if (task != nullptr && IsLive(*task)) add(task->task().resources());
    }
    for (const std::string& offer_id : state.OffersOfFramework(id)) {
      const v1::OfferRecord* offer = state.FindOffer(offer_id);
      if (offer != nullptr) add(offer->offer().resources());
    }
  }
  for (const auto& [role, weight] : state.weights()) roles[role];
  for (const auto& [role, quota] : state.quotas()) roles[role];

  Response::GetRoles out;
  for (const auto& [name, entry] : roles) {
    v1::Role* role = out.add_roles();
    role->set_name(name);
    auto weight = state.weights().find(name);
    role->set_weight(weight == state.weights().end() ? 1.0 : weight->second);
    for (const std::string& id : entry.frameworks) {
      role->add_frameworks()->set_value(id);
    }
    entry.resources.ToProto(role->mutable_resources());
  }
  return out;
}

Response::GetWeights MakeGetWeights(const MasterState& state) {
  Response::GetWeights out;
  for (const auto& [role, weight] : state.weights()) {
    v1::WeightInfo* info = out.add_weight_infos();
    info->set_role(role);
    info->set_weight(weight);
  }
  return out;
}

Response::GetQuota MakeGetQuota(const MasterState& state) {
  Response::GetQuota out;
  v1::QuotaStatus* status = out.mutable_status();
  for (const auto& [role, config] : state.quotas()) {
    *status->add_configs() = config;
    // The legacy form: guarantees as scalar resources, sorted by name.
    v1::QuotaInfo* info = status->add_infos();
    info->set_role(role);
    std::map<std::string, double> guarantees;  // sorted: Map is not
    for (const auto& [name, scalar] : config.guarantees()) {
      guarantees[name] = scalar.value();
    }
    for (const auto& [name, value] : guarantees) {
      v1::Resource* r = info->add_guarantee();
      r->set_name(name);
      r->set_type(v1::MesosValue::SCALAR);
      r->mutable_scalar()->set_value(value);
    }
  }
  return out;
}

Response::GetMetrics MakeGetMetrics(const std::string& metrics_json) {
  Response::GetMetrics out;
  absl::StatusOr<JsonValue> snapshot = ParseJson(metrics_json);
  if (!snapshot.ok() || snapshot->kind != JsonValue::Kind::kObject) {
    if (!metrics_json.empty()) {
      LOG(WARNING) << "GET_METRICS: the metrics snapshot does not parse";
    }
    return out;
  }
  std::map<std::string, double> values;  // sorted by name
  for (const auto& [name, value] : snapshot->fields) {
    double number = 0;
    if (value.kind == JsonValue::Kind::kNumber &&
        absl::SimpleAtod(value.text, &number)) {
      values.emplace(name, number);
    }
  }
  for (const auto& [name, value] : values) {
    v1::Metric* metric = out.add_metrics();
    metric->set_name(name);
    metric->set_value(value);
  }
  return out;
}

Response AnswerReadOnlyCall(const Call& call, const MasterState& state,
                            const MasterFacts& facts) {
  Response response;
  switch (call.type()) {
    case Call::GET_HEALTH:
      response.set_type(Response::GET_HEALTH);
      response.mutable_get_health()->set_healthy(true);
      break;
    case Call::GET_FLAGS:
      response.set_type(Response::GET_FLAGS);
      if (facts.flags == nullptr) break;
      for (const auto& [name, value] : *facts.flags) {
        v1::Flag* flag = response.mutable_get_flags()->add_flags();
        flag->set_name(name);
        flag->set_value(value);
      }
      break;
    case Call::GET_VERSION:
      response.set_type(Response::GET_VERSION);
      response.mutable_get_version()->mutable_version_info()->set_version(
          facts.version);
      break;
    case Call::GET_METRICS:
      response.set_type(Response::GET_METRICS);
      *response.mutable_get_metrics() = MakeGetMetrics(facts.metrics_json);
      break;
    case Call::GET_STATE:
      response.set_type(Response::GET_STATE);
      *response.mutable_get_state() = MakeGetState(state);
      break;
    case Call::GET_AGENTS:
      response.set_type(Response::GET_AGENTS);
      *response.mutable_get_agents() = MakeGetAgents(state);
      break;
    case Call::GET_FRAMEWORKS:
      response.set_type(Response::GET_FRAMEWORKS);
      *response.mutable_get_frameworks() = MakeGetFrameworks(state);
      break;
    case Call::GET_EXECUTORS:
      response.set_type(Response::GET_EXECUTORS);
      *response.mutable_get_executors() = MakeGetExecutors(state);
      break;
    case Call::GET_TASKS:
      response.set_type(Response::GET_TASKS);
      *response.mutable_get_tasks() = MakeGetTasks(state);
      break;
    case Call::GET_ROLES:
      response.set_type(Response::GET_ROLES);
      *response.mutable_get_roles() = MakeGetRoles(state);
      break;
    case Call::GET_WEIGHTS:
      response.set_type(Response::GET_WEIGHTS);
      *response.mutable_get_weights() = MakeGetWeights(state);
      break;
    case Call::GET_MASTER: {
      response.set_type(Response::GET_MASTER);
      Response::GetMaster* master = response.mutable_get_master();
      *master->mutable_master_info() = facts.master_info;
      master->set_start_time(Seconds(facts.start_time));
      master->set_elected_time(Seconds(facts.elected_time));
      break;
    }
    case Call::GET_QUOTA:
      response.set_type(Response::GET_QUOTA);
      *response.mutable_get_quota() = MakeGetQuota(state);
      break;
    default:
      LOG(ERROR) << "not a read-only call: " << Call::Type_Name(call.type());
      break;
  }
  return response;
}

http::Response EncodeResponse(const Response& response, Encoding encoding) {
  if (encoding == Encoding::kJson && response.type() == Response::GET_WEIGHTS) {
    return http::Response::Json(200, LegacyWeightsJson(response.get_weights()));
  }
  absl::StatusOr<std::string> body = EncodeMessage(response, encoding);
  if (!body.ok()) {
    return ApiError(500, absl::StrCat("cannot encode the response: ",
                                      body.status().message()));
  }
  http::Response out;
  out.status = 200;
  out.headers.Set("Content-Type", MediaType(encoding));
  out.body = *std::move(body);
  return out;
}

// ---- The SUBSCRIBE streams --------------------------------------------------

OperatorEvents::OperatorEvents(OperatorApiOptions options,
                               const MasterState* state)
    : options_(options), state_(state) {}

OperatorEvents::~OperatorEvents() { CloseAll(); }

uint64_t OperatorEvents::Subscribe(std::shared_ptr<OperatorEventStream> stream,
                                   absl::Time now) {
  const uint64_t id = next_id_++;
  Event subscribed;
  subscribed.set_type(Event::SUBSCRIBED);
  *subscribed.mutable_subscribed()->mutable_get_state() = MakeGetState(*state_);
  subscribed.mutable_subscribed()->set_heartbeat_interval_seconds(
      absl::ToDoubleSeconds(options_.heartbeat_interval));
  stream->Send(subscribed);
  subscribers_[id] = Subscriber{std::move(stream), now};
  while (subscribers_.size() > options_.max_event_stream_subscribers &&
         !subscribers_.empty()) {
    auto oldest = subscribers_.begin();
    LOG(INFO) << "more than " << options_.max_event_stream_subscribers
              << " operator event streams: closing the oldest ("
              << oldest->first << ")";
    oldest->second.stream->Close();
    subscribers_.erase(oldest);
  }
  return id;
}

void OperatorEvents::Unsubscribe(uint64_t id) { subscribers_.erase(id); }

void OperatorEvents::Broadcast(const Event& event) {
  for (auto& [id, subscriber] : subscribers_) subscriber.stream->Send(event);
}

void OperatorEvents::OnApplied(const v1::Event& e) {
  if (subscribers_.empty()) return;
  Event out;
  switch (e.type_case()) {
    case v1::Event::kTasksLaunched: {
      const std::string& framework_id =
          e.tasks_launched().framework_id().value();
      for (const v1::TaskInfo& info : e.tasks_launched().tasks()) {
        const v1::TaskRecord* task =
            state_->FindTask(framework_id, info.task_id().value());
        if (task == nullptr) continue;
        Event added;
        added.set_type(Event::TASK_ADDED);
        *added.mutable_task_added()->mutable_task() = TaskToProto(task->task());
        Broadcast(added);
      }
      return;
    }
    case v1::Event::kTaskStatusUpdated: {
      const v1::TaskStatusUpdated& update = e.task_status_updated();
      const v1::TaskStatus& status = update.status();
      const v1::TaskRecord* task = state_->FindTask(
          update.framework_id().value(), status.task_id().value());
      // As Mesos: one event per new state (and every health or check
      // change); a repeated state is not news.
      if (task != nullptr && task->task().statuses_size() >= 2 &&
          task->task().statuses(task->task().statuses_size() - 2).state() ==
              status.state() &&
          status.reason() != v1::TaskStatus::REASON_TASK_CHECK_STATUS_UPDATED &&
          status.reason() !=
              v1::TaskStatus::REASON_TASK_HEALTH_CHECK_STATUS_UPDATED) {
        return;
      }
      out.set_type(Event::TASK_UPDATED);
      Event::TaskUpdated* updated = out.mutable_task_updated();
      *updated->mutable_framework_id() = update.framework_id();
      *updated->mutable_status() = status;
      updated->set_state(task != nullptr ? task->task().state()
                                         : status.state());
      break;
    }
    case v1::Event::kAgentRegistered:
    case v1::Event::kAgentReregistered: {
      const v1::AgentInfo& info = e.has_agent_registered()
                                      ? e.agent_registered().info()
                                      : e.agent_reregistered().info();
      const v1::AgentRecord* agent = state_->FindAgent(info.id().value());
      if (agent == nullptr) return;
      out.set_type(Event::AGENT_ADDED);
      *out.mutable_agent_added()->mutable_agent() =
          AgentToProto(*state_, *agent);
      break;
    }
    case v1::Event::kAgentRemoved:
      out.set_type(Event::AGENT_REMOVED);
      *out.mutable_agent_removed()->mutable_agent_id() =
          e.agent_removed().agent_id();
      break;
    case v1::Event::kFrameworkSubscribed:
    case v1::Event::kFrameworkFailedOver:
    case v1::Event::kFrameworkUpdated: {
      const v1::FrameworkInfo& info =
          e.has_framework_subscribed()    ? e.framework_subscribed().info()
          : e.has_framework_failed_over() ? e.framework_failed_over().info()
                                          : e.framework_updated().info();
      const v1::FrameworkRecord* f = state_->FindFramework(info.id().value());
      if (f == nullptr) return;
      if (e.has_framework_subscribed()) {
        out.set_type(Event::FRAMEWORK_ADDED);
        *out.mutable_framework_added()->mutable_framework() =
            FrameworkToProto(*state_, *f);
      } else {
        out.set_type(Event::FRAMEWORK_UPDATED);
        *out.mutable_framework_updated()->mutable_framework() =
            FrameworkToProto(*state_, *f);
      }
      break;
    }
    case v1::Event::kFrameworkRemoved: {
      const v1::FrameworkRecord* f =
          state_->FindFramework(e.framework_removed().framework_id().value());
      out.set_type(Event::FRAMEWORK_REMOVED);
      if (f != nullptr) {
        *out.mutable_framework_removed()->mutable_framework_info() = f->info();
      } else {
        *out.mutable_framework_removed()
             ->mutable_framework_info()
             ->mutable_id() = e.framework_removed().framework_id();
      }
      break;
    }
    default:
      return;
  }
  Broadcast(out);
}

void OperatorEvents::Tick(absl::Time now) {
  Event heartbeat;
  heartbeat.set_type(Event::HEARTBEAT);
  for (auto& [id, subscriber] : subscribers_) {
    if (now - subscriber.last_heartbeat >= options_.heartbeat_interval) {
      subscriber.stream->Send(heartbeat);
      subscriber.last_heartbeat = now;
    }
  }
}

void OperatorEvents::CloseAll() {
  for (auto& [id, subscriber] : subscribers_) subscriber.stream->Close();
  subscribers_.clear();
}

// ---- The endpoint -----------------------------------------------------------

OperatorApi::OperatorApi(OperatorApiOptions options, OperatorApiContext context,
                         const MasterState* state)
    : context_(std::move(context)), state_(state), events_(options, state) {}

void OperatorApi::Handle(const OperatorRequest& request, Leader* leader,
                         std::shared_ptr<http::Responder> responder) {
  if (leader == nullptr) {
    responder->Respond(ApiError(503, "not the leading master"));
    return;
  }
  const Call& call = request.call;
  if (IsReadOnlyCall(call.type())) {
    MasterFacts facts;
    facts.version = context_.version;
    facts.flags = &context_.flags;
    facts.master_info = leader->master_info();
    facts.start_time = context_.start_time;
    facts.elected_time = leader->elected_time();
    if (call.type() == Call::GET_METRICS && context_.metrics_snapshot) {
      facts.metrics_json = context_.metrics_snapshot();
    }
    responder->Respond(EncodeResponse(AnswerReadOnlyCall(call, *state_, facts),
                                      request.accept));
    return;
  }
  if (call.type() == Call::SUBSCRIBE) {
    http::Headers headers;
    // As Mesos: Content-Type names the records' encoding.
    headers.Set("Content-Type", MediaType(request.accept));
    responder->StartStream(200, std::move(headers));
    auto stream = std::make_shared<HttpEventStream<OperatorEventStream, Event>>(
        responder, request.accept);
    const uint64_t id = events_.Subscribe(std::move(stream), context_.clock());
    responder->OnClose([post = context_.post, this, id] {
      post([this, id] { events_.Unsubscribe(id); });
    });
    return;
  }
  Leader::Done done = [responder](Answer answer) {
    responder->Respond(AnswerResponse(answer));
  };
  const CommandContext& context = request.context;
  switch (call.type()) {
    case Call::UPDATE_WEIGHTS:
      leader->UpdateWeights(call.update_weights().weight_infos(), context,
                            std::move(done));
      return;
    case Call::UPDATE_QUOTA:
      leader->UpdateQuota(call.update_quota().quota_configs(),
                          call.update_quota().force(), context,
                          std::move(done));
      return;
    case Call::RESERVE_RESOURCES:
      leader->ReserveResources(call.reserve_resources().agent_id().value(),
                               call.reserve_resources().source(),
                               call.reserve_resources().resources(), context,
                               std::move(done));
      return;
    case Call::UNRESERVE_RESOURCES:
      leader->UnreserveResources(call.unreserve_resources().agent_id().value(),
                                 call.unreserve_resources().resources(),
                                 context, std::move(done));
      return;
    case Call::DRAIN_AGENT:
      leader->DrainAgent(call.drain_agent().agent_id().value(),
                         DrainConfigOf(call.drain_agent()), context,
                         std::move(done));
      return;
    case Call::DEACTIVATE_AGENT:
      leader->DeactivateAgent(call.deactivate_agent().agent_id().value(),
                              context, std::move(done));
      return;
    case Call::REACTIVATE_AGENT:
      leader->ReactivateAgent(call.reactivate_agent().agent_id().value(),
                              context, std::move(done));
      return;
    case Call::TEARDOWN:
      leader->TeardownFramework(call.teardown().framework_id().value(), context,
                                std::move(done));
      return;
    case Call::MARK_AGENT_GONE:
      leader->MarkAgentGone(call.mark_agent_gone().agent_id().value(), context,
                            std::move(done));
      return;
    default:
      // ParseOperatorRequest answers every other type.
      responder->Respond(
          ApiError(501,
                   absl::StrCat("call type ", Call::Type_Name(call.type()),
                                " is not served by this master"),
                   "type"));
      return;
  }
}

}  // namespace cairn::master
