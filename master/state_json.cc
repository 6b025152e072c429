#include "master/state_json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/http_message.h"
#include "common/json.h"
#include "google/protobuf/message.h"

namespace cairn::master {

namespace {

using google::protobuf::Message;

// ---- JSON text --------------------------------------------------------------

std::string Quote(absl::string_view s) { return http::JsonQuote(s); }

// A double as rapidjson (Mesos's writer) prints it: the shortest text that
// reads back as the same double, with ".0" on integral values.
std::string Number(double value) {
  if (!std::isfinite(value)) return "0.0";  // not valid JSON otherwise
  char buffer[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof(buffer), "%.*g", precision, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  std::string text = buffer;
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

std::string Bool(bool value) { return value ? "true" : "false"; }

// Float seconds since the epoch, as Mesos's Time::secs().
std::string Seconds(const v1::TimeInfo& time) {
  return Number(static_cast<double>(time.nanoseconds()) / 1e9);
}
std::string Seconds(absl::Time time) {
  return Number(absl::ToDoubleSeconds(time - absl::UnixEpoch()));
}

std::string Array(const std::vector<std::string>& items) {
  return absl::StrCat("[", absl::StrJoin(items, ","), "]");
}

// Builds one JSON object; values are JSON text.
class Object {
 public:
  Object& Raw(absl::string_view key, absl::string_view json) {
    absl::StrAppend(&text_, text_.empty() ? "{" : ",", Quote(key), ":", json);
    return *this;
  }
  Object& Str(absl::string_view key, absl::string_view value) {
    return Raw(key, Quote(value));
  }
  Object& Num(absl::string_view key, double value) {
    return Raw(key, Number(value));
  }
  Object& Int(absl::string_view key, uint64_t value) {
    return Raw(key, absl::StrCat(value));
  }
  Object& Flag(absl::string_view key, bool value) {
    return Raw(key, Bool(value));
  }
  std::string Build() const { return text_.empty() ? "{}" : text_ + "}"; }

 private:
  std::string text_;
};

// ---- Protobuf as Mesos's JSON::Protobuf prints it ---------------------------

// Set fields, plus unset optional fields that declare a default and are not
// deprecated (stout's rule); maps as objects keyed by the entry's key. One
// printer for every Mesos-facing output: common/json.h's Mesos dialect.
std::string ProtoJson(const Message& message) { return MesosJson(message); }

// Mesos's pre-multi-role `FrameworkInfo.role` and pre-refinement
// `Resource.role` are deprecated in the schema but still part of the
// endpoints' shapes.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
const std::string& LegacyRole(const v1::FrameworkInfo& info) {
  return info.role();
}
void SetLegacyRole(v1::Resource* resource, const std::string& role) {
  resource->set_role(role);
}
#pragma GCC diagnostic pop

// ---- Mesos's models ---------------------------------------------------------

std::string SetText(const v1::MesosValue::Set& set) {
  return absl::StrCat("{", absl::StrJoin(set.item(), ", "), "}");
}

std::string LabelsJson(const v1::Labels& labels) {
  std::vector<std::string> items;
  for (const v1::Label& label : labels.labels()) {
    items.push_back(ProtoJson(label));
  }
  return Array(items);
}

std::string AttributesJson(
    const google::protobuf::RepeatedPtrField<v1::Attribute>& attributes) {
  Object object;
  for (const v1::Attribute& a : attributes) {
    switch (a.type()) {
      case v1::MesosValue::SCALAR:
        object.Num(a.name(), a.scalar().value());
        break;
      case v1::MesosValue::RANGES:
        object.Str(a.name(), RangesToString(a.ranges()));
        break;
      case v1::MesosValue::SET:
        object.Str(a.name(), SetText(a.set()));
        break;
      case v1::MesosValue::TEXT:
        object.Str(a.name(), a.text().value());
        break;
    }
  }
  return object.Build();
}

std::string DomainJson(const v1::DomainInfo& domain) {
  Object object;
  if (domain.has_fault_domain()) {
    const auto& fault = domain.fault_domain();
    object.Raw(
        "fault_domain",
        Object()
            .Raw("region", Object().Str("name", fault.region().name()).Build())
            .Raw("zone", Object().Str("name", fault.zone().name()).Build())
            .Build());
  }
  return object.Build();
}

template <typename Capabilities>
std::string CapabilitiesJson(const Capabilities& capabilities) {
  std::vector<std::string> names;
  for (const auto& c : capabilities) {
    names.push_back(Quote(std::decay_t<decltype(c)>::Type_Name(c.type())));
  }
  return Array(names);
}

Resources ResourcesOf(
    const google::protobuf::RepeatedPtrField<v1::Resource>& resources) {
  absl::StatusOr<Resources> r = Resources::FromProto(resources);
  return r.ok() ? *std::move(r) : Resources();
}

std::string FlattenedJson(
    const google::protobuf::RepeatedPtrField<v1::Resource>& resources) {
  return FlattenedResourcesJson(ResourcesOf(resources));
}

// A resource in Mesos's ENDPOINT format (convertResourceFormat): the
// post-refinement `reservations` plus, where it can be said, the
// pre-refinement `role` (and `reservation` for a dynamic one).
v1::Resource EndpointFormat(v1::Resource resource) {
  if (resource.reservations_size() == 0) {
    SetLegacyRole(&resource, "*");
  } else if (resource.reservations_size() == 1) {
    const auto& reservation = resource.reservations(0);
    if (reservation.type() == v1::Resource::ReservationInfo::DYNAMIC) {
      auto* target = resource.mutable_reservation();
      if (reservation.has_principal()) {
        target->set_principal(reservation.principal());
      }
      if (reservation.has_labels()) {
        *target->mutable_labels() = reservation.labels();
      }
    }
    SetLegacyRole(&resource, reservation.role());
  }
  return resource;
}

std::string FullResourcesJson(const Resources& resources) {
  std::vector<std::string> items;
  for (const v1::Resource& r : resources.ToProto()) {
    items.push_back(ProtoJson(EndpointFormat(r)));
  }
  return Array(items);
}

// The roles that hold a (last) reservation in `resources`, sorted.
std::set<std::string> ReservationRoles(const Resources& resources) {
  std::set<std::string> roles;
  for (const v1::Resource& r : resources.ToProto()) {
    if (r.reservations_size() > 0)
      roles.insert(r.reservations().rbegin()->role());
  }
  return roles;
}

bool HasCapability(const v1::FrameworkInfo& info,
                   v1::FrameworkInfo::Capability::Type type) {
  for (const auto& c : info.capabilities()) {
    if (c.type() == type) return true;
  }
  return false;
}

// The role a task's resources are allocated to (Mesos: the first
// resource's allocation role); the framework's role when they carry none.
std::string TaskRole(const v1::Task& task, const v1::FrameworkInfo* framework) {
  for (const v1::Resource& r : task.resources()) {
    if (r.has_allocation_info()) return r.allocation_info().role();
  }
  if (framework == nullptr) return "";
  if (framework->roles_size() > 0) return framework->roles(0);
  return LegacyRole(*framework);
}

std::string StatusJson(const v1::TaskStatus& status) {
  Object object;
  object.Str("state", v1::TaskState_Name(status.state()))
      .Num("timestamp", status.timestamp());
  if (status.has_labels()) object.Raw("labels", LabelsJson(status.labels()));
  if (status.has_healthy()) object.Flag("healthy", status.healthy());
  return object.Build();
}

std::string TaskJson(const v1::Task& task, const v1::FrameworkInfo* framework) {
  Object object;
  object.Str("id", task.task_id().value())
      .Str("name", task.name())
      .Str("framework_id", task.framework_id().value())
      .Str("executor_id", task.executor_id().value())
      .Str("slave_id", task.agent_id().value())
      .Str("state", v1::TaskState_Name(task.state()))
      .Raw("resources", FlattenedJson(task.resources()));
  if (!task.limits().empty()) {
    Object limits;
    for (const auto& [name, scalar] : task.limits()) {
      limits.Num(name, scalar.value());
    }
    object.Raw("limits", limits.Build());
  }
  object.Str("role", TaskRole(task, framework));
  std::vector<std::string> statuses;
  for (const v1::TaskStatus& status : task.statuses()) {
    statuses.push_back(StatusJson(status));
  }
  object.Raw("statuses", Array(statuses));
  if (task.has_user()) object.Str("user", task.user());
  if (task.has_labels()) object.Raw("labels", LabelsJson(task.labels()));
  if (task.has_health_check()) {
    object.Raw("health_check", ProtoJson(task.health_check()));
  }
  return object.Build();
}

std::string OfferJson(const v1::Offer& offer) {
  return Object()
      .Str("id", offer.id().value())
      .Str("framework_id", offer.framework_id().value())
      .Raw("allocation_info", ProtoJson(offer.allocation_info()))
      .Str("slave_id", offer.agent_id().value())
      .Raw("resources", FlattenedJson(offer.resources()))
      .Build();
}

std::string CommandJson(const v1::CommandInfo& command) {
  Object object;
  if (command.has_shell()) object.Flag("shell", command.shell());
  if (command.has_value()) object.Str("value", command.value());
  std::vector<std::string> argv;
  for (const std::string& arg : command.arguments()) argv.push_back(Quote(arg));
  object.Raw("argv", Array(argv));
  if (command.has_environment()) {
    object.Raw("environment", ProtoJson(command.environment()));
  }
  std::vector<std::string> uris;
  for (const auto& uri : command.uris()) {
    uris.push_back(Object()
                       .Str("value", uri.value())
                       .Flag("executable", uri.executable())
                       .Build());
  }
  object.Raw("uris", Array(uris));
  return object.Build();
}

std::string ExecutorJson(const v1::ExecutorInfo& executor,
                         const std::string& agent_id) {
  Object object;
  object.Str("executor_id", executor.executor_id().value())
      .Str("name", executor.name())
      .Str("framework_id", executor.framework_id().value())
      .Raw("command", CommandJson(executor.command()))
      .Raw("resources", FlattenedJson(executor.resources()));
  if (executor.resources_size() > 0) {
    object.Str("role", executor.resources(0).allocation_info().role());
  }
  if (executor.has_labels()) {
    object.Raw("labels", LabelsJson(executor.labels()));
  }
  if (executor.has_type()) {
    object.Str("type", v1::ExecutorInfo::Type_Name(executor.type()));
  }
  object.Str("slave_id", agent_id);
  return object.Build();
}

// "slave(1)@host:port": the form of an agent's libprocess pid. Cairn agents
// have no pid; this keeps tools that split it on '@' and ':' working.
std::string AgentPid(const v1::AgentInfo& info) {
  return absl::StrCat("slave(1)@", info.hostname(), ":", info.port());
}

// The fields of Mesos's SlaveWriter.
void AppendSlave(const MasterState& state, const v1::AgentRecord& agent,
                 Object* object) {
  const v1::AgentInfo& info = agent.info();
  const std::string& id = info.id().value();
  object->Str("id", id)
      .Str("hostname", info.hostname())
      .Int("port", static_cast<uint64_t>(std::max(0, info.port())))
      .Raw("attributes", AttributesJson(info.attributes()));
  if (info.has_domain()) object->Raw("domain", DomainJson(info.domain()));
  object->Str("pid", AgentPid(info))
      .Raw("registered_time", Seconds(agent.registered_time()));
  if (agent.has_reregistered_time()) {
    object->Raw("reregistered_time", Seconds(agent.reregistered_time()));
  }
  const Resources total = state.TotalResources(id).value_or(Resources());
  object->Raw("resources", FlattenedResourcesJson(total))
      .Raw("used_resources", FlattenedResourcesJson(
                                 state.UsedResources(id).value_or(Resources())))
      .Raw("offered_resources",
           FlattenedResourcesJson(
               state.OfferedResources(id).value_or(Resources())));
  Object reserved;
  for (const std::string& role : ReservationRoles(total)) {
    reserved.Raw(role, FlattenedResourcesJson(total.ReservedTo(role)));
  }
  object->Raw("reserved_resources", reserved.Build())
      .Raw("unreserved_resources", FlattenedResourcesJson(total.Unreserved()))
      .Flag("active", agent.state() == v1::AgentRecord::ACTIVE)
      .Flag("deactivated", agent.deactivated())
      .Str("version", agent.version())
      .Raw("capabilities", CapabilitiesJson(agent.capabilities()));
  if (agent.has_drain_info()) {
    object->Raw("drain_info", ProtoJson(agent.drain_info()));
  }
}

// /master/slaves adds the full protobuf form of the resources.
void AppendSlaveFull(const MasterState& state, const v1::AgentRecord& agent,
                     Object* object) {
  const std::string& id = agent.info().id().value();
  const Resources total = state.TotalResources(id).value_or(Resources());
  Object reserved;
  for (const std::string& role : ReservationRoles(total)) {
    reserved.Raw(role, FullResourcesJson(total.ReservedTo(role)));
  }
  object->Raw("reserved_resources_full", reserved.Build())
      .Raw("unreserved_resources_full", FullResourcesJson(total.Unreserved()))
      .Raw("used_resources_full",
           FullResourcesJson(state.UsedResources(id).value_or(Resources())))
      .Raw("offered_resources_full",
           FullResourcesJson(state.OfferedResources(id).value_or(Resources())));
}

// Agents listed as Mesos's registered slaves, in id order.
std::vector<const v1::AgentRecord*> RegisteredAgents(const MasterState& state) {
  std::vector<const v1::AgentRecord*> agents;
  for (const std::string& id : state.AgentIds()) {
    const v1::AgentRecord* agent = state.FindAgent(id);
    if (agent != nullptr && agent->state() == v1::AgentRecord::ACTIVE) {
      agents.push_back(agent);
    }
  }
  return agents;
}

// One framework's tasks, split as Mesos splits them.
struct FrameworkTasks {
  std::vector<const v1::Task*> live;         // not TASK_UNREACHABLE
  std::vector<const v1::Task*> unreachable;  // TASK_UNREACHABLE
  std::vector<const v1::Task*> completed;
};

FrameworkTasks TasksOf(const MasterState& state,
                       const v1::FrameworkRecord& framework) {
  FrameworkTasks tasks;
  const std::string& id = framework.info().id().value();
  for (const TaskKey& key : state.TasksOfFramework(id)) {
    const v1::TaskRecord* record = state.FindTask(key.first, key.second);
    if (record == nullptr) continue;
    (record->task().state() == v1::TASK_UNREACHABLE ? tasks.unreachable
                                                    : tasks.live)
        .push_back(&record->task());
  }
  for (const v1::Task& task : framework.completed_tasks()) {
    tasks.completed.push_back(&task);
  }
  return tasks;
}

// What the framework uses (its tasks that are neither ended nor
// unreachable, with their executors, as Cairn's fold counts them; Mesos too
// stops counting an unreachable task) and what it is offered.
std::pair<Resources, Resources> UsedAndOffered(
    const MasterState& state, const v1::FrameworkRecord& framework) {
  const std::string& id = framework.info().id().value();
  Resources used;
  for (const TaskKey& key : state.TasksOfFramework(id)) {
    const v1::TaskRecord* record = state.FindTask(key.first, key.second);
    if (record == nullptr || IsTerminalState(record->task().state()) ||
        record->task().state() == v1::TASK_UNREACHABLE) {
      continue;
    }
    used += ResourcesOf(record->task().resources());
    used += ResourcesOf(record->info().executor().resources());
  }
  Resources offered;
  for (const std::string& offer_id : state.OffersOfFramework(id)) {
    const v1::OfferRecord* offer = state.FindOffer(offer_id);
    if (offer != nullptr) offered += ResourcesOf(offer->offer().resources());
  }
  return {std::move(used), std::move(offered)};
}

// The fields of Mesos's Summary<Framework>.
void AppendFrameworkSummary(const v1::FrameworkRecord& framework,
                            const Resources& used, const Resources& offered,
                            Object* object) {
  const v1::FrameworkInfo& info = framework.info();
  const v1::FrameworkRecord::State s = framework.state();
  object->Str("id", info.id().value())
      .Str("name", info.name())
      .Raw("used_resources", FlattenedResourcesJson(used))
      .Raw("offered_resources", FlattenedResourcesJson(offered))
      .Raw("capabilities", CapabilitiesJson(info.capabilities()))
      .Str("hostname", info.hostname())
      .Str("webui_url", info.webui_url())
      .Flag("active", s == v1::FrameworkRecord::CONNECTED)
      .Flag("connected", s == v1::FrameworkRecord::CONNECTED ||
                             s == v1::FrameworkRecord::INACTIVE)
      .Flag("recovered", false);
}

// Mesos's FullFrameworkWriter.
std::string FullFrameworkJson(const MasterState& state,
                              const v1::FrameworkRecord& framework) {
  const v1::FrameworkInfo& info = framework.info();
  const auto [used, offered] = UsedAndOffered(state, framework);
  Object object;
  AppendFrameworkSummary(framework, used, offered, &object);
  object.Str("user", info.user())
      .Num("failover_timeout", info.failover_timeout())
      .Flag("checkpoint", info.checkpoint())
      .Raw("registered_time", Seconds(framework.registered_time()))
      .Raw("unregistered_time", Seconds(framework.unregistered_time()));
  if (info.has_principal()) object.Str("principal", info.principal());
  object.Raw("resources", FlattenedResourcesJson(used + offered));
  if (framework.has_reregistered_time() &&
      framework.reregistered_time().nanoseconds() !=
          framework.registered_time().nanoseconds()) {
    object.Raw("reregistered_time", Seconds(framework.reregistered_time()));
  }
  if (HasCapability(info, v1::FrameworkInfo::Capability::MULTI_ROLE)) {
    std::vector<std::string> roles;
    for (const std::string& role : info.roles()) roles.push_back(Quote(role));
    object.Raw("roles", Array(roles));
  } else {
    object.Str("role", LegacyRole(info));
  }

  const FrameworkTasks tasks = TasksOf(state, framework);
  auto tasks_json = [&info](const std::vector<const v1::Task*>& list) {
    std::vector<std::string> items;
    for (const v1::Task* task : list) items.push_back(TaskJson(*task, &info));
    return Array(items);
  };
  object.Raw("tasks", tasks_json(tasks.live))
      .Raw("unreachable_tasks", tasks_json(tasks.unreachable))
      .Raw("completed_tasks", tasks_json(tasks.completed));

  std::vector<std::string> offers;
  for (const std::string& offer_id :
       state.OffersOfFramework(info.id().value())) {
    const v1::OfferRecord* offer = state.FindOffer(offer_id);
    if (offer != nullptr) offers.push_back(OfferJson(offer->offer()));
  }
  object.Raw("offers", Array(offers));

  // Custom executors of live tasks, once per (agent, executor id).
  std::set<std::pair<std::string, std::string>> seen;
  std::vector<std::string> executors;
  for (const TaskKey& key : state.TasksOfFramework(info.id().value())) {
    const v1::TaskRecord* record = state.FindTask(key.first, key.second);
    if (record == nullptr || !record->info().has_executor() ||
        IsTerminalState(record->task().state())) {
      continue;
    }
    const std::string& agent_id = record->task().agent_id().value();
    v1::ExecutorInfo executor = record->info().executor();
    if (!seen.insert({agent_id, executor.executor_id().value()}).second) {
      continue;
    }
    if (!executor.has_framework_id()) {
      *executor.mutable_framework_id() = info.id();
    }
    executors.push_back(ExecutorJson(executor, agent_id));
  }
  object.Raw("executors", Array(executors));

  if (info.has_labels()) object.Raw("labels", LabelsJson(info.labels()));
  // Cairn keeps no offer constraints on the record: Mesos's empty form.
  object.Raw("offer_constraints", "{}");
  return object.Build();
}

// The task state counts of /master/state-summary (the states Mesos counts).
constexpr v1::TaskState kSummaryStates[] = {
    v1::TASK_STAGING,  v1::TASK_STARTING,   v1::TASK_RUNNING, v1::TASK_KILLING,
    v1::TASK_FINISHED, v1::TASK_KILLED,     v1::TASK_FAILED,  v1::TASK_LOST,
    v1::TASK_ERROR,    v1::TASK_UNREACHABLE};

using StateCounts = std::map<v1::TaskState, uint64_t>;

void AppendCounts(const StateCounts& counts, Object* object) {
  for (v1::TaskState s : kSummaryStates) {
    auto it = counts.find(s);
    object->Int(v1::TaskState_Name(s), it == counts.end() ? 0 : it->second);
  }
}

std::vector<const v1::FrameworkRecord*> Frameworks(const MasterState& state,
                                                   bool completed) {
  std::vector<const v1::FrameworkRecord*> out;
  for (const std::string& id : state.FrameworkIds()) {
    const v1::FrameworkRecord* f = state.FindFramework(id);
    if (f == nullptr) continue;
    if ((f->state() == v1::FrameworkRecord::COMPLETED) == completed) {
      out.push_back(f);
    }
  }
  return out;
}

std::string FrameworkListJson(const MasterState& state, bool completed,
                              const std::optional<std::string>& only) {
  std::vector<std::string> items;
  for (const v1::FrameworkRecord* f : Frameworks(state, completed)) {
    if (only.has_value() && f->info().id().value() != *only) continue;
    items.push_back(FullFrameworkJson(state, *f));
  }
  return Array(items);
}

std::string QuotedIds(const std::set<std::string>& ids) {
  std::vector<std::string> items;
  for (const std::string& id : ids) items.push_back(Quote(id));
  return Array(items);
}

bool IsJsIdentifierPath(absl::string_view name) {
  if (name.empty() || name.size() > 256) return false;
  for (absl::string_view part : absl::StrSplit(name, '.')) {
    if (part.empty() || absl::ascii_isdigit(part[0])) return false;
    for (char c : part) {
      if (!absl::ascii_isalnum(c) && c != '_' && c != '$') return false;
    }
  }
  return true;
}

std::string FlagValuesJson(const std::map<std::string, std::string>& flags) {
  Object values;
  for (const auto& [name, value] : flags) values.Str(name, value);
  return values.Build();
}

std::optional<size_t> ParseCount(
    const std::map<std::string, std::string>& query, const std::string& key) {
  auto it = query.find(key);
  if (it == query.end()) return std::nullopt;
  int64_t value = 0;
  if (!absl::SimpleAtoi(it->second, &value) || value < 0) return std::nullopt;
  return static_cast<size_t>(value);
}

}  // namespace

std::string MasterEndpoint::Pid() const {
  return absl::StrCat("master@", ip, ":", port);
}

std::string FlattenedResourcesJson(const Resources& resources) {
  // Scalars summed per name; ranges and sets merged per name through a
  // Resources of bare (unreserved, unallocated) values.
  std::map<std::string, double> scalars = {
      {"cpus", 0}, {"disk", 0}, {"gpus", 0}, {"mem", 0}};
  Resources bare;
  for (const v1::Resource& r : resources.ToProto()) {
    const std::string name =
        r.has_revocable() ? absl::StrCat(r.name(), "_revocable") : r.name();
    if (r.type() == v1::MesosValue::SCALAR) {
      scalars[name] = RoundScalar(scalars[name] + r.scalar().value());
      continue;
    }
    v1::Resource value;
    value.set_name(name);
    value.set_type(r.type());
    if (r.type() == v1::MesosValue::RANGES)
      *value.mutable_ranges() = r.ranges();
    if (r.type() == v1::MesosValue::SET) *value.mutable_set() = r.set();
    absl::StatusOr<Resources> one = Resources::FromProto(value);
    if (one.ok()) bare += *one;
  }
  std::map<std::string, std::string> fields;
  for (const auto& [name, value] : scalars) fields[name] = Number(value);
  for (const v1::Resource& r : bare.ToProto()) {
    fields[r.name()] =
        Quote(r.type() == v1::MesosValue::RANGES ? RangesToString(r.ranges())
                                                 : SetText(r.set()));
  }
  Object object;
  for (const auto& [name, json] : fields) object.Raw(name, json);
  return object.Build();
}

std::string StateJson(const MasterState& state,
                      const MasterIdentity& identity) {
  const std::vector<const v1::AgentRecord*> agents = RegisteredAgents(state);
  size_t unreachable = 0;
  std::vector<std::string> unreachable_ids;
  for (const std::string& id : state.AgentIds()) {
    const v1::AgentRecord* agent = state.FindAgent(id);
    if (agent != nullptr && agent->state() == v1::AgentRecord::UNREACHABLE) {
      ++unreachable;
      unreachable_ids.push_back(Quote(id));
    }
  }

  Object object;
  object.Str("version", identity.version);
  if (!identity.git_sha.empty()) object.Str("git_sha", identity.git_sha);
  if (!identity.build_date.empty()) {
    object.Str("build_date", identity.build_date);
  }
  if (!identity.build_time.empty()) {
    object.Str("build_time", identity.build_time);
  }
  if (!identity.build_user.empty()) {
    object.Str("build_user", identity.build_user);
  }
  object.Raw("start_time", Seconds(identity.start_time));
  if (identity.elected_time.has_value()) {
    object.Raw("elected_time", Seconds(*identity.elected_time));
  }
  std::vector<std::string> capabilities;
  for (auto type : identity.capabilities) {
    capabilities.push_back(Quote(v1::MasterInfo::Capability::Type_Name(type)));
  }
  object.Str("id", identity.self.id)
      .Str("pid", identity.self.Pid())
      .Str("hostname", identity.self.hostname)
      .Raw("capabilities", Array(capabilities))
      // Gauges in Mesos, hence floats.
      .Num("activated_slaves", static_cast<double>(agents.size()))
      .Num("deactivated_slaves", 0)
      .Num("unreachable_slaves", static_cast<double>(unreachable));
  if (identity.leader.has_value()) {
    const MasterEndpoint& leader = *identity.leader;
    object.Str("leader", leader.Pid())
        .Raw("leader_info", Object()
                                .Str("id", leader.id)
                                .Str("pid", leader.Pid())
                                .Int("port", leader.port)
                                .Str("hostname", leader.hostname)
                                .Build());
  }
  if (!identity.cluster.empty()) object.Str("cluster", identity.cluster);
  if (!identity.log_dir.empty()) object.Str("log_dir", identity.log_dir);
  object.Raw("flags", FlagValuesJson(identity.flags));

  std::vector<std::string> slaves;
  for (const v1::AgentRecord* agent : agents) {
    Object slave;
    AppendSlave(state, *agent, &slave);
    slaves.push_back(slave.Build());
  }
  object.Raw("slaves", Array(slaves))
      .Raw("recovered_slaves", "[]")
      .Raw("frameworks", FrameworkListJson(state, false, std::nullopt))
      .Raw("completed_frameworks", FrameworkListJson(state, true, std::nullopt))
      .Raw("orphan_tasks", "[]")
      .Raw("unregistered_frameworks", "[]");

  std::vector<std::string> masters;
  for (const std::string& m : identity.cairn.masters)
    masters.push_back(Quote(m));
  object.Raw("cairn",
             Object()
                 .Raw("masters", Array(masters))
                 // 64-bit numbers as JSON numbers, as in Mesos's JSON
                 // (common/json.h).
                 .Int("log_position", identity.cairn.log_position)
                 .Int("log_begin", identity.cairn.log_begin)
                 .Int("snapshot_position", identity.cairn.snapshot_position)
                 .Str("last_applied", EventIdToString(state.last_applied()))
                 .Int("events_applied", state.events_applied())
                 .Raw("unreachable_agents", Array(unreachable_ids))
                 .Build());
  return object.Build();
}

std::string StateSummaryJson(const MasterState& state,
                             const MasterIdentity& identity) {
  // Over the tasks of frameworks that are not completed, as Mesos does.
  std::map<std::string, StateCounts> agent_counts;
  std::map<std::string, StateCounts> framework_counts;
  std::map<std::string, std::set<std::string>> agent_frameworks;
  std::map<std::string, std::set<std::string>> framework_agents;
  const std::vector<const v1::FrameworkRecord*> frameworks =
      Frameworks(state, false);
  for (const v1::FrameworkRecord* f : frameworks) {
    const std::string& framework_id = f->info().id().value();
    const FrameworkTasks tasks = TasksOf(state, *f);
    for (const auto* list :
         {&tasks.live, &tasks.unreachable, &tasks.completed}) {
      for (const v1::Task* task : *list) {
        const std::string& agent_id = task->agent_id().value();
        ++agent_counts[agent_id][task->state()];
        ++framework_counts[framework_id][task->state()];
        agent_frameworks[agent_id].insert(framework_id);
        framework_agents[framework_id].insert(agent_id);
      }
    }
  }

  Object object;
  object.Str("hostname", identity.self.hostname);
  if (!identity.cluster.empty()) object.Str("cluster", identity.cluster);
  std::vector<std::string> slaves;
  for (const v1::AgentRecord* agent : RegisteredAgents(state)) {
    const std::string& id = agent->info().id().value();
    Object slave;
    AppendSlave(state, *agent, &slave);
    AppendCounts(agent_counts[id], &slave);
    slave.Raw("framework_ids", QuotedIds(agent_frameworks[id]));
    slaves.push_back(slave.Build());
  }
  object.Raw("slaves", Array(slaves));
  std::vector<std::string> items;
  for (const v1::FrameworkRecord* f : frameworks) {
    const std::string& id = f->info().id().value();
    const auto [used, offered] = UsedAndOffered(state, *f);
    Object framework;
    AppendFrameworkSummary(*f, used, offered, &framework);
    AppendCounts(framework_counts[id], &framework);
    framework.Raw("slave_ids", QuotedIds(framework_agents[id]));
    items.push_back(framework.Build());
  }
  object.Raw("frameworks", Array(items));
  return object.Build();
}

std::string FrameworksJson(const MasterState& state,
                           const std::optional<std::string>& framework_id) {
  return Object()
      .Raw("frameworks", FrameworkListJson(state, false, framework_id))
      .Raw("completed_frameworks", FrameworkListJson(state, true, framework_id))
      .Raw("unregistered_frameworks", "[]")
      .Build();
}

std::string SlavesJson(const MasterState& state,
                       const std::optional<std::string>& slave_id) {
  std::vector<std::string> slaves;
  for (const v1::AgentRecord* agent : RegisteredAgents(state)) {
    if (slave_id.has_value() && agent->info().id().value() != *slave_id) {
      continue;
    }
    Object slave;
    AppendSlave(state, *agent, &slave);
    AppendSlaveFull(state, *agent, &slave);
    slaves.push_back(slave.Build());
  }
  return Object()
      .Raw("slaves", Array(slaves))
      .Raw("recovered_slaves", "[]")
      .Build();
}

TasksQuery TasksQuery::FromQuery(
    const std::map<std::string, std::string>& query) {
  TasksQuery q;
  q.limit = ParseCount(query, "limit").value_or(kDefaultLimit);
  q.offset = ParseCount(query, "offset").value_or(0);
  auto order = query.find("order");
  q.ascending = order != query.end() && order->second == "asc";
  if (auto it = query.find("framework_id"); it != query.end()) {
    q.framework_id = it->second;
  }
  if (auto it = query.find("task_id"); it != query.end()) {
    q.task_id = it->second;
  }
  return q;
}

std::string TasksJson(const MasterState& state, const TasksQuery& query) {
  struct Item {
    const v1::Task* task;
    const v1::FrameworkInfo* framework;
  };
  std::vector<Item> items;
  for (bool completed : {false, true}) {
    for (const v1::FrameworkRecord* f : Frameworks(state, completed)) {
      if (query.framework_id.has_value() &&
          f->info().id().value() != *query.framework_id) {
        continue;
      }
      const FrameworkTasks tasks = TasksOf(state, *f);
      for (const auto* list :
           {&tasks.live, &tasks.unreachable, &tasks.completed}) {
        for (const v1::Task* task : *list) {
          if (query.task_id.has_value() &&
              task->task_id().value() != *query.task_id) {
            continue;
          }
          items.push_back({task, &f->info()});
        }
      }
    }
  }
  // By the first status's timestamp; tasks without one sort as the oldest
  // (first when ascending, last when descending), as in Mesos.
  const bool ascending = query.ascending;
  std::stable_sort(
      items.begin(), items.end(), [ascending](const Item& a, const Item& b) {
        const bool a_none = a.task->statuses().empty();
        const bool b_none = b.task->statuses().empty();
        if (a_none || b_none) {
          return ascending ? (a_none && !b_none) : (!a_none && b_none);
        }
        const double ta = a.task->statuses(0).timestamp();
        const double tb = b.task->statuses(0).timestamp();
        return ascending ? ta < tb : ta > tb;
      });
  std::vector<std::string> out;
  for (size_t i = query.offset; i < items.size() && out.size() < query.limit;
       ++i) {
    out.push_back(TaskJson(*items[i].task, items[i].framework));
  }
  return Object().Raw("tasks", Array(out)).Build();
}

std::string FlagsJson(const std::map<std::string, std::string>& flags) {
  return Object().Raw("flags", FlagValuesJson(flags)).Build();
}

absl::StatusOr<JsonBody> WrapJsonp(
    std::string json, const std::map<std::string, std::string>& query) {
  auto it = query.find("jsonp");
  if (it == query.end()) return JsonBody{"application/json", std::move(json)};
  if (!IsJsIdentifierPath(it->second)) {
    return absl::InvalidArgumentError(
        "jsonp must be a JavaScript identifier (letters, digits, '_', '$', "
        "'.')");
  }
  return JsonBody{"text/javascript", absl::StrCat(it->second, "(", json, ")")};
}

}  // namespace cairn::master
