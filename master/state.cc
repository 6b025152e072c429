#include "master/state.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/task_state.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace cairn::master {
namespace {

using google::protobuf::RepeatedPtrField;
using v1::AgentRecord;
using v1::Event;
using v1::FrameworkRecord;

absl::Status Precondition(absl::string_view what) {
  return absl::FailedPreconditionError(what);
}

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(what);
}

bool Later(const v1::EventId& a, const v1::EventId& b) {
  return a.position() != b.position() ? a.position() > b.position()
                                      : a.index() > b.index();
}

// True iff a framework may be offered resources for `role`.
bool HasRole(const v1::FrameworkInfo& info, const std::string& role) {
  if (info.roles_size() > 0) {
    return std::find(info.roles().begin(), info.roles().end(), role) !=
           info.roles().end();
  }
  // The pre-MULTI_ROLE field, still what old schedulers send.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  return info.role() == role;
#pragma GCC diagnostic pop
}

absl::Status ValidateFrameworkInfo(const v1::FrameworkInfo& info) {
  if (info.id().value().empty()) return Invalid("framework info without id");
  if (!std::isfinite(info.failover_timeout()) || info.failover_timeout() < 0) {
    return Invalid("failover_timeout must be finite and >= 0");
  }
  std::set<std::string> seen;
  for (const auto& role : info.roles()) {
    if (role.empty() || !seen.insert(role).second) {
      return Invalid(absl::StrCat("framework ", info.id().value(),
                                  ": empty or repeated role '", role, "'"));
    }
  }
  return absl::OkStatus();
}

// A task's own resources, without allocation info.
absl::StatusOr<Resources> TaskResources(const v1::TaskInfo& info) {
  absl::StatusOr<Resources> task = Resources::FromProto(info.resources());
  if (!task.ok()) return task.status();
  return task->WithoutAllocationInfo();
}

// The resources of a task's executor (none for a command task), without
// allocation info.
absl::StatusOr<Resources> ExecutorResources(const v1::TaskInfo& info) {
  if (!info.has_executor()) return Resources();
  absl::StatusOr<Resources> executor =
      Resources::FromProto(info.executor().resources());
  if (!executor.ok()) return executor.status();
  return executor->WithoutAllocationInfo();
}

std::pair<std::string, std::string> ExecutorKey(const v1::TaskRecord& record) {
  return {record.task().framework_id().value(),
          record.info().executor().executor_id().value()};
}

// Appends `value` to `list` and drops its oldest entries beyond `max`,
// reusing a dropped entry's object when there is one.
template <typename T>
void AppendBounded(T&& value, int max,
                   RepeatedPtrField<std::decay_t<T>>* list) {
  if (list->size() < max) {
    *list->Add() = std::forward<T>(value);
    return;
  }
  if (list->size() > max) list->DeleteSubrange(0, list->size() - max);
  // Overwrite the oldest entry and rotate it to the end.
  *list->Mutable(0) = std::forward<T>(value);
  std::rotate(list->pointer_begin(), list->pointer_begin() + 1,
              list->pointer_end());
}

int64_t DeadlineNanos(int64_t now_ns, double timeout_seconds) {
  double add = timeout_seconds * 1e9;
  double room = static_cast<double>(std::numeric_limits<int64_t>::max()) -
                static_cast<double>(now_ns);
  if (add >= room) return std::numeric_limits<int64_t>::max();
  return now_ns + static_cast<int64_t>(std::llround(add));
}

std::string Serialize(const google::protobuf::MessageLite& message) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializePartialToCodedStream(&coded);
  coded.Trim();
  return bytes;
}

}  // namespace

std::string EventIdToString(const v1::EventId& id) {
  return absl::StrCat(id.position(), ":", id.index());
}

absl::Time ToTime(const v1::TimeInfo& time) {
  return absl::FromUnixNanos(time.nanoseconds());
}

v1::TimeInfo FromTime(absl::Time time) {
  v1::TimeInfo info;
  info.set_nanoseconds(absl::ToUnixNanos(time));
  return info;
}

// ---- Apply ------------------------------------------------------------------

absl::Status MasterState::Apply(const Event& e) {
  return ApplyEvent(e, nullptr);
}

absl::Status MasterState::Apply(Event&& e) { return ApplyEvent(e, &e); }

absl::Status MasterState::ApplyEvent(const Event& e, Event* owned) {
  if (e.position() > 0) {
    v1::EventId id;
    id.set_position(e.position());
    id.set_index(e.index());
    if (!Later(id, last_applied_)) {
      return Precondition(absl::StrCat("event ", EventIdToString(id),
                                       " is not after the last applied ",
                                       EventIdToString(last_applied_)));
    }
  }
  absl::Status status;
  switch (e.type_case()) {
    case Event::kAgentRegistered:
      status = ApplyAgentRegistered(e);
      break;
    case Event::kAgentReregistered:
      status = ApplyAgentReregistered(e);
      break;
    case Event::kAgentUnreachable:
      status = ApplyAgentUnreachable(e);
      break;
    case Event::kAgentRemoved:
      status = ApplyAgentRemoved(e);
      break;
    case Event::kAgentDeactivated:
      status = ApplyAgentDeactivated(e);
      break;
    case Event::kAgentReactivated:
      status = ApplyAgentReactivated(e);
      break;
    case Event::kAgentDrainStarted:
      status = ApplyAgentDrainStarted(e);
      break;
    case Event::kAgentDrained:
      status = ApplyAgentDrained(e);
      break;
    case Event::kAgentResourcesUpdated:
      status = ApplyAgentResourcesUpdated(e);
      break;
    case Event::kFrameworkSubscribed:
      status = ApplyFrameworkSubscribed(e);
      break;
    case Event::kFrameworkFailedOver:
      status = ApplyFrameworkFailedOver(e);
      break;
    case Event::kFrameworkDisconnected:
      status = ApplyFrameworkDisconnected(e);
      break;
    case Event::kFrameworkDeactivated:
      status = ApplyFrameworkDeactivated(e);
      break;
    case Event::kFrameworkUpdated:
      status = ApplyFrameworkUpdated(e);
      break;
    case Event::kFrameworkRemoved:
      status = ApplyFrameworkRemoved(e);
      break;
    case Event::kTasksLaunched:
      status = ApplyTasksLaunched(e, owned);
      break;
    case Event::kTaskStatusUpdated:
      status = ApplyTaskStatusUpdated(e, owned);
      break;
    case Event::kTaskStatusAcknowledged:
      status = ApplyTaskStatusAcknowledged(e);
      break;
    case Event::kTaskKillRequested:
      status = ApplyTaskKillRequested(e);
      break;
    case Event::kExecutorExited:
      status = ApplyExecutorExited(e);
      break;
    case Event::kOffersCreated:
      status = ApplyOffersCreated(e, owned);
      break;
    case Event::kOffersRescinded:
      status = ApplyOffersRemoved(e.offers_rescinded().offer_ids(), nullptr);
      break;
    case Event::kOffersDeclined:
      status = ApplyOffersRemoved(e.offers_declined().offer_ids(),
                                  &e.offers_declined().framework_id());
      break;
    case Event::kOffersExpired:
      status = ApplyOffersRemoved(e.offers_expired().offer_ids(), nullptr);
      break;
    case Event::kWeightsUpdated:
      status = ApplyWeightsUpdated(e);
      break;
    case Event::kQuotaUpdated:
      status = ApplyQuotaUpdated(e);
      break;
    case Event::kResourcesReserved:
      status = ApplyReservation(e, /*reserve=*/true);
      break;
    case Event::kResourcesUnreserved:
      status = ApplyReservation(e, /*reserve=*/false);
      break;
    case Event::kMaintenanceScheduleUpdated:
      status = ApplyMaintenanceScheduleUpdated(e);
      break;
    case Event::TYPE_NOT_SET:
      status = Invalid("event without a type");
      break;
  }
  if (!status.ok()) return status;
  if (e.position() > 0) {
    last_applied_.set_position(e.position());
    last_applied_.set_index(e.index());
  }
  ++events_applied_;
  return absl::OkStatus();
}

absl::StatusOr<MasterState::AgentEntry*> MasterState::GetAgent(
    const v1::AgentID& id) {
  if (id.value().empty()) return Invalid("missing agent id");
  auto it = agents_.find(id.value());
  if (it == agents_.end()) {
    return Precondition(absl::StrCat("unknown agent ", id.value()));
  }
  return &it->second;
}

absl::StatusOr<MasterState::FrameworkEntry*> MasterState::GetFramework(
    const v1::FrameworkID& id) {
  if (id.value().empty()) return Invalid("missing framework id");
  auto it = frameworks_.find(id.value());
  if (it == frameworks_.end()) {
    return Precondition(absl::StrCat("unknown framework ", id.value()));
  }
  return &it->second;
}

bool MasterState::IsOfferable(const AgentEntry& agent) const {
  return agent.record.state() == AgentRecord::ACTIVE &&
         !agent.record.deactivated() && !agent.record.has_drain_info();
}

void MasterState::RemoveOffer(const std::string& offer_id) {
  auto it = offers_.find(offer_id);
  if (it != offers_.end()) RemoveOffer(it, nullptr, nullptr);
}

void MasterState::RemoveOffer(OfferMap::iterator it, AgentEntry* agent,
                              FrameworkEntry* framework) {
  const std::string& offer_id = it->first;
  const v1::Offer& offer = it->second.record.offer();
  if (agent == nullptr) {
    auto a = agents_.find(offer.agent_id().value());
    if (a != agents_.end()) agent = &a->second;
  }
  if (agent != nullptr) {
    agent->offered -= it->second.resources;
    agent->offers.erase(offer_id);
  }
  if (framework == nullptr) {
    auto f = frameworks_.find(offer.framework_id().value());
    if (f != frameworks_.end()) framework = &f->second;
  }
  if (framework != nullptr) framework->offers.erase(offer_id);
  offer_record_pool_.Put(&it->second.record);
  offers_.erase(it);
}

void MasterState::RemoveOffersOnAgent(const std::string& agent_id) {
  auto it = agents_.find(agent_id);
  if (it == agents_.end()) return;
  std::set<std::string> ids = it->second.offers;
  for (const auto& id : ids) RemoveOffer(id);
}

void MasterState::RemoveOffersOfFramework(const std::string& framework_id) {
  auto it = frameworks_.find(framework_id);
  if (it == frameworks_.end()) return;
  std::set<std::string> ids = it->second.offers;
  for (const auto& id : ids) RemoveOffer(id);
}

absl::StatusOr<Resources> MasterState::CheckOffersToConsume(
    const RepeatedPtrField<v1::OfferID>& offer_ids, const std::string& agent_id,
    const std::string& framework_id) const {
  Resources total;
  absl::flat_hash_set<absl::string_view> seen;
  for (const auto& id : offer_ids) {
    if (id.value().empty()) return Invalid("missing offer id");
    if (offer_ids.size() > 1 && !seen.insert(id.value()).second) {
      return Invalid(absl::StrCat("offer ", id.value(), " listed twice"));
    }
    auto it = offers_.find(id.value());
    if (it == offers_.end()) {
      return Precondition(absl::StrCat("unknown offer ", id.value()));
    }
    const v1::Offer& offer = it->second.record.offer();
    if (offer.agent_id().value() != agent_id) {
      return Precondition(absl::StrCat("offer ", id.value(), " is for agent ",
                                       offer.agent_id().value(), ", not ",
                                       agent_id));
    }
    if (!framework_id.empty() && offer.framework_id().value() != framework_id) {
      return Precondition(absl::StrCat("offer ", id.value(),
                                       " is not for framework ", framework_id));
    }
    total += it->second.resources;
  }
  return total;
}

void MasterState::MaybeCompleteTask(const TaskKey& key) {
  auto it = tasks_.find(key);
  if (it != tasks_.end()) MaybeCompleteTask(it);
}

void MasterState::MaybeCompleteTask(TaskMap::iterator it) {
  const TaskKey& key = it->first;
  const v1::TaskRecord& record = it->second.record;
  if (!IsTerminalState(record.task().state()) ||
      record.unacknowledged_size() > 0) {
    return;
  }
  auto agent = agents_.find(record.task().agent_id().value());
  if (agent != agents_.end()) agent->second.tasks.erase(key);
  auto framework = frameworks_.find(key.first);
  if (framework != frameworks_.end()) {
    // The record goes away: move its task, do not copy it.
    AppendBounded(std::move(*it->second.record.mutable_task()),
                  kMaxCompletedTasksPerFramework,
                  framework->second.record.mutable_completed_tasks());
    framework->second.tasks.erase(key.second);
  }
  task_record_pool_.Put(&it->second.record);
  tasks_.erase(it);
}

// ---- Agents -----------------------------------------------------------------

absl::Status MasterState::ApplyAgentRegistered(const Event& e) {
  const v1::AgentInfo& info = e.agent_registered().info();
  if (info.id().value().empty()) return Invalid("agent info without id");
  if (info.hostname().empty()) return Invalid("agent info without hostname");
  absl::StatusOr<Resources> total = Resources::FromProto(info.resources());
  if (!total.ok()) return total.status();
  if (agents_.count(info.id().value()) > 0) {
    return Precondition(
        absl::StrCat("agent ", info.id().value(), " is already known"));
  }

  AgentEntry& agent = agents_[info.id().value()];
  agent.record.mutable_info()->CopyFrom(info);
  agent.record.set_version(e.agent_registered().version());
  agent.total = *std::move(total);
  agent.total.ToProto(agent.record.mutable_total_resources());
  agent.record.set_state(AgentRecord::ACTIVE);
  *agent.record.mutable_registered_time() = e.time();
  *agent.record.mutable_capabilities() = e.agent_registered().capabilities();
  return absl::OkStatus();
}

absl::Status MasterState::ApplyAgentReregistered(const Event& e) {
  const v1::AgentInfo& info = e.agent_reregistered().info();
  if (info.hostname().empty()) return Invalid("agent info without hostname");
  absl::StatusOr<Resources> total = Resources::FromProto(info.resources());
  if (!total.ok()) return total.status();
  absl::StatusOr<AgentEntry*> agent = GetAgent(info.id());
  if (!agent.ok()) return agent.status();
  AgentEntry& a = **agent;
  if (a.record.state() == AgentRecord::REMOVED) {
    return Precondition(
        absl::StrCat("agent ", info.id().value(), " was removed"));
  }
  if (!total->Contains(a.used)) {
    return Precondition(absl::StrCat(
        "agent ", info.id().value(), " reports ", total->ToString(),
        ", less than its tasks use: ", a.used.ToString()));
  }

  RemoveOffersOnAgent(info.id().value());
  a.record.mutable_info()->CopyFrom(info);
  a.record.set_version(e.agent_reregistered().version());
  a.total = *std::move(total);
  a.total.ToProto(a.record.mutable_total_resources());
  a.record.set_state(AgentRecord::ACTIVE);
  *a.record.mutable_reregistered_time() = e.time();
  a.record.clear_unreachable_time();
  *a.record.mutable_capabilities() = e.agent_reregistered().capabilities();
  return absl::OkStatus();
}

absl::Status MasterState::ApplyAgentUnreachable(const Event& e) {
  absl::StatusOr<AgentEntry*> agent =
      GetAgent(e.agent_unreachable().agent_id());
  if (!agent.ok()) return agent.status();
  AgentEntry& a = **agent;
  if (a.record.state() != AgentRecord::ACTIVE) {
    return Precondition(
        absl::StrCat("agent ", a.record.info().id().value(), " is not active"));
  }

  RemoveOffersOnAgent(a.record.info().id().value());
  a.record.set_state(AgentRecord::UNREACHABLE);
  *a.record.mutable_unreachable_time() = e.time();
  return absl::OkStatus();
}

absl::Status MasterState::ApplyAgentRemoved(const Event& e) {
  absl::StatusOr<AgentEntry*> agent = GetAgent(e.agent_removed().agent_id());
  if (!agent.ok()) return agent.status();
  AgentEntry& a = **agent;
  if (a.record.state() == AgentRecord::REMOVED) {
    return Precondition(absl::StrCat("agent ", a.record.info().id().value(),
                                     " is already removed"));
  }
  // Its tasks' ends are separate events written before this one; a log in
  // which one of them was lost (a request cut by a leader change) must not
  // strand live tasks on a removed agent.
  for (const TaskKey& key : a.tasks) {
    if (!IsTerminalState(tasks_.at(key).record.task().state())) {
      return Precondition(absl::StrCat("agent ", a.record.info().id().value(),
                                       " still has live task ", key.second));
    }
  }

  RemoveOffersOnAgent(a.record.info().id().value());
  a.record.set_state(AgentRecord::REMOVED);
  *a.record.mutable_removed_time() = e.time();
  return absl::OkStatus();
}

absl::Status MasterState::ApplyAgentDeactivated(const Event& e) {
  absl::StatusOr<AgentEntry*> agent =
      GetAgent(e.agent_deactivated().agent_id());
  if (!agent.ok()) return agent.status();
  AgentEntry& a = **agent;
  if (a.record.state() == AgentRecord::REMOVED || a.record.deactivated()) {
    return Precondition(absl::StrCat("agent ", a.record.info().id().value(),
                                     " is removed or already deactivated"));
  }

  RemoveOffersOnAgent(a.record.info().id().value());
  a.record.set_deactivated(true);
  return absl::OkStatus();
}

absl::Status MasterState::ApplyAgentReactivated(const Event& e) {
  absl::StatusOr<AgentEntry*> agent =
      GetAgent(e.agent_reactivated().agent_id());
  if (!agent.ok()) return agent.status();
  AgentEntry& a = **agent;
  if (a.record.state() == AgentRecord::REMOVED || !a.record.deactivated()) {
    return Precondition(absl::StrCat("agent ", a.record.info().id().value(),
                                     " is removed or not deactivated"));
  }

  a.record.set_deactivated(false);
  a.record.clear_drain_info();
  return absl::OkStatus();
}

absl::Status MasterState::ApplyAgentDrainStarted(const Event& e) {
  absl::StatusOr<AgentEntry*> agent =
      GetAgent(e.agent_drain_started().agent_id());
  if (!agent.ok()) return agent.status();
  AgentEntry& a = **agent;
  if (a.record.state() == AgentRecord::REMOVED) {
    return Precondition(
        absl::StrCat("agent ", a.record.info().id().value(), " is removed"));
  }
  if (a.record.drain_info().state() == v1::DRAINED) {
    return Precondition(absl::StrCat("agent ", a.record.info().id().value(),
                                     " is already drained"));
  }

  RemoveOffersOnAgent(a.record.info().id().value());
  a.record.set_deactivated(true);
  a.record.mutable_drain_info()->set_state(v1::DRAINING);
  *a.record.mutable_drain_info()->mutable_config() =
      e.agent_drain_started().config();
  return absl::OkStatus();
}

absl::Status MasterState::ApplyAgentDrained(const Event& e) {
  absl::StatusOr<AgentEntry*> agent = GetAgent(e.agent_drained().agent_id());
  if (!agent.ok()) return agent.status();
  AgentEntry& a = **agent;
  const std::string& id = a.record.info().id().value();
  if (!a.record.has_drain_info() ||
      a.record.drain_info().state() != v1::DRAINING) {
    return Precondition(absl::StrCat("agent ", id, " is not draining"));
  }
  for (const TaskKey& key : a.tasks) {
    if (!IsTerminalState(tasks_.at(key).record.task().state())) {
      return Precondition(absl::StrCat("agent ", id, " still runs task ",
                                       key.second, " of ", key.first));
    }
  }

  a.record.mutable_drain_info()->set_state(v1::DRAINED);
  return absl::OkStatus();
}

absl::Status MasterState::ApplyAgentResourcesUpdated(const Event& e) {
  const v1::AgentResourcesUpdated& update = e.agent_resources_updated();
  absl::StatusOr<Resources> total = Resources::FromProto(update.resources());
  if (!total.ok()) return total.status();
  absl::StatusOr<AgentEntry*> agent = GetAgent(update.agent_id());
  if (!agent.ok()) return agent.status();
  AgentEntry& a = **agent;
  const std::string& id = update.agent_id().value();
  if (a.record.state() != AgentRecord::ACTIVE) {
    return Precondition(absl::StrCat("agent ", id, " is not active"));
  }
  if (!total->Contains(a.used)) {
    return Precondition(
        absl::StrCat("agent ", id, " reports ", total->ToString(),
                     ", less than its tasks use: ", a.used.ToString()));
  }

  RemoveOffersOnAgent(id);
  *a.record.mutable_info()->mutable_resources() = update.resources();
  a.total = *std::move(total);
  a.total.ToProto(a.record.mutable_total_resources());
  return absl::OkStatus();
}

// ---- Frameworks -------------------------------------------------------------

absl::Status MasterState::ApplyFrameworkSubscribed(const Event& e) {
  const v1::FrameworkInfo& info = e.framework_subscribed().info();
  if (absl::Status s = ValidateFrameworkInfo(info); !s.ok()) return s;
  if (frameworks_.count(info.id().value()) > 0) {
    return Precondition(
        absl::StrCat("framework ", info.id().value(), " is already known"));
  }

  FrameworkEntry& f = frameworks_[info.id().value()];
  *f.record.mutable_info() = info;
  f.record.set_state(FrameworkRecord::CONNECTED);
  *f.record.mutable_registered_time() = e.time();
  return absl::OkStatus();
}

absl::Status MasterState::ApplyFrameworkFailedOver(const Event& e) {
  const v1::FrameworkInfo& info = e.framework_failed_over().info();
  if (absl::Status s = ValidateFrameworkInfo(info); !s.ok()) return s;
  absl::StatusOr<FrameworkEntry*> framework = GetFramework(info.id());
  if (!framework.ok()) return framework.status();
  FrameworkEntry& f = **framework;
  if (f.record.state() == FrameworkRecord::COMPLETED) {
    return Precondition(
        absl::StrCat("framework ", info.id().value(), " was removed"));
  }
  if (f.record.info().principal() != info.principal()) {
    return Precondition(absl::StrCat("framework ", info.id().value(),
                                     " cannot change its principal"));
  }

  RemoveOffersOfFramework(info.id().value());
  *f.record.mutable_info() = info;
  f.record.set_state(FrameworkRecord::CONNECTED);
  *f.record.mutable_reregistered_time() = e.time();
  f.record.clear_unregistered_time();
  f.record.clear_failover_deadline();
  return absl::OkStatus();
}

absl::Status MasterState::ApplyFrameworkDisconnected(const Event& e) {
  absl::StatusOr<FrameworkEntry*> framework =
      GetFramework(e.framework_disconnected().framework_id());
  if (!framework.ok()) return framework.status();
  FrameworkEntry& f = **framework;
  if (f.record.state() != FrameworkRecord::CONNECTED &&
      f.record.state() != FrameworkRecord::INACTIVE) {
    return Precondition(absl::StrCat("framework ", f.record.info().id().value(),
                                     " is not connected"));
  }

  RemoveOffersOfFramework(f.record.info().id().value());
  f.record.set_state(FrameworkRecord::DISCONNECTED);
  *f.record.mutable_unregistered_time() = e.time();
  f.record.mutable_failover_deadline()->set_nanoseconds(DeadlineNanos(
      e.time().nanoseconds(), f.record.info().failover_timeout()));
  return absl::OkStatus();
}

absl::Status MasterState::ApplyFrameworkDeactivated(const Event& e) {
  absl::StatusOr<FrameworkEntry*> framework =
      GetFramework(e.framework_deactivated().framework_id());
  if (!framework.ok()) return framework.status();
  FrameworkEntry& f = **framework;
  if (f.record.state() != FrameworkRecord::CONNECTED) {
    return Precondition(absl::StrCat("framework ", f.record.info().id().value(),
                                     " is not connected"));
  }

  RemoveOffersOfFramework(f.record.info().id().value());
  f.record.set_state(FrameworkRecord::INACTIVE);
  return absl::OkStatus();
}

absl::Status MasterState::ApplyFrameworkUpdated(const Event& e) {
  const v1::FrameworkInfo& info = e.framework_updated().info();
  if (absl::Status s = ValidateFrameworkInfo(info); !s.ok()) return s;
  absl::StatusOr<FrameworkEntry*> framework = GetFramework(info.id());
  if (!framework.ok()) return framework.status();
  FrameworkEntry& f = **framework;
  if (f.record.state() == FrameworkRecord::COMPLETED) {
    return Precondition(
        absl::StrCat("framework ", info.id().value(), " was removed"));
  }
  if (f.record.info().principal() != info.principal()) {
    return Precondition(absl::StrCat("framework ", info.id().value(),
                                     " cannot change its principal"));
  }

  std::set<std::string> ids = f.offers;
  for (const auto& id : ids) {
    const v1::Offer& offer = offers_.at(id).record.offer();
    if (!HasRole(info, offer.allocation_info().role())) RemoveOffer(id);
  }
  *f.record.mutable_info() = info;
  if (f.record.state() == FrameworkRecord::DISCONNECTED) {
    f.record.mutable_failover_deadline()->set_nanoseconds(DeadlineNanos(
        f.record.unregistered_time().nanoseconds(), info.failover_timeout()));
  }
  return absl::OkStatus();
}

absl::Status MasterState::ApplyFrameworkRemoved(const Event& e) {
  absl::StatusOr<FrameworkEntry*> framework =
      GetFramework(e.framework_removed().framework_id());
  if (!framework.ok()) return framework.status();
  FrameworkEntry& f = **framework;
  const std::string& id = f.record.info().id().value();
  if (f.record.state() == FrameworkRecord::COMPLETED) {
    return Precondition(absl::StrCat("framework ", id, " is already removed"));
  }
  for (const std::string& task_id : f.tasks) {
    if (!IsTerminalState(tasks_.at({id, task_id}).record.task().state())) {
      return Precondition(absl::StrCat("framework ", id, " still has task ",
                                       task_id, " running"));
    }
  }

  RemoveOffersOfFramework(id);
  // Ended tasks awaiting acknowledgements will get none: complete them.
  std::set<std::string> task_ids = f.tasks;
  for (const std::string& task_id : task_ids) {
    tasks_.at({id, task_id}).record.clear_unacknowledged();
    MaybeCompleteTask({id, task_id});
  }
  f.record.set_state(FrameworkRecord::COMPLETED);
  if (!f.record.has_unregistered_time()) {
    *f.record.mutable_unregistered_time() = e.time();
  }
  f.record.clear_failover_deadline();
  return absl::OkStatus();
}

// ---- Tasks ------------------------------------------------------------------

absl::Status MasterState::ApplyTasksLaunched(const Event& e, Event* owned) {
  const v1::TasksLaunched& launch = e.tasks_launched();
  absl::StatusOr<FrameworkEntry*> framework =
      GetFramework(launch.framework_id());
  if (!framework.ok()) return framework.status();
  FrameworkEntry& f = **framework;
  const std::string& framework_id = launch.framework_id().value();
  if (launch.tasks_size() == 0) return Invalid("launch without tasks");
  if (f.record.state() != FrameworkRecord::CONNECTED) {
    return Precondition(
        absl::StrCat("framework ", framework_id, " is not connected"));
  }

  const v1::AgentID& agent_id = launch.tasks(0).agent_id();
  absl::flat_hash_set<absl::string_view> ids;
  std::vector<Resources> task_resources;
  task_resources.reserve(launch.tasks_size());
  Resources needed;
  std::set<std::pair<std::string, std::string>> new_executors;
  for (const v1::TaskInfo& task : launch.tasks()) {
    if (task.task_id().value().empty()) return Invalid("task without id");
    if (task.agent_id().value() != agent_id.value()) {
      return Invalid("one launch's tasks must be on one agent");
    }
    if (launch.tasks_size() > 1 && !ids.insert(task.task_id().value()).second) {
      return Invalid(
          absl::StrCat("task ", task.task_id().value(), " launched twice"));
    }
    if (f.tasks.count(task.task_id().value()) > 0) {
      return Precondition(absl::StrCat("task ", task.task_id().value(), " of ",
                                       framework_id, " is live"));
    }
    absl::StatusOr<Resources> r = TaskResources(task);
    if (!r.ok()) return r.status();
    absl::StatusOr<Resources> executor = ExecutorResources(task);
    if (!executor.ok()) return executor.status();
    if (r->empty() && executor->empty()) {
      return Invalid(
          absl::StrCat("task ", task.task_id().value(), " uses no resources"));
    }
    needed += *r;
    // An executor's own resources count once: not again for an executor
    // already running tasks on the agent, nor for a second task of it here.
    if (task.has_executor() && !executor->empty()) {
      const std::pair<std::string, std::string> key(
          framework_id, task.executor().executor_id().value());
      auto agent_it = agents_.find(agent_id.value());
      const bool live = agent_it != agents_.end() &&
                        agent_it->second.executors.count(key) > 0;
      if (!live && new_executors.insert(key).second) needed += *executor;
    }
    task_resources.push_back(*std::move(r));
  }
  absl::StatusOr<AgentEntry*> agent = GetAgent(agent_id);
  if (!agent.ok()) return agent.status();
  AgentEntry& a = **agent;
  if (a.record.state() != AgentRecord::ACTIVE || a.record.has_drain_info()) {
    return Precondition(absl::StrCat("agent ", agent_id.value(),
                                     " is not active or is draining"));
  }
  absl::StatusOr<Resources> consumed =
      CheckOffersToConsume(launch.offer_ids(), agent_id.value(), framework_id);
  if (!consumed.ok()) return consumed.status();
  Resources available = a.total - a.used - a.offered + *consumed;
  if (!available.Contains(needed)) {
    return Precondition(absl::StrCat("agent ", agent_id.value(), " has ",
                                     available.ToString(), ", tasks need ",
                                     needed.ToString()));
  }

  // The consumed offers are on this agent and of this framework (checked).
  for (const auto& id : launch.offer_ids()) {
    RemoveOffer(offers_.find(id.value()), &a, &f);
  }
  v1::EventId launched_by;
  launched_by.set_position(e.position());
  launched_by.set_index(e.index());
  for (int i = 0; i < launch.tasks_size(); ++i) {
    const v1::TaskInfo& info = launch.tasks(i);
    TaskKey key{framework_id, info.task_id().value()};
    TaskEntry& t = tasks_[key];
    task_record_pool_.Take(&t.record);
    v1::Task* task = t.record.mutable_task();
    task->set_name(info.name());
    *task->mutable_task_id() = info.task_id();
    *task->mutable_framework_id() = launch.framework_id();
    if (info.has_executor()) {
      *task->mutable_executor_id() = info.executor().executor_id();
    }
    *task->mutable_agent_id() = info.agent_id();
    task->set_state(v1::TASK_STAGING);
    *task->mutable_resources() = info.resources();
    if (info.has_labels()) *task->mutable_labels() = info.labels();
    if (info.has_health_check()) {
      *task->mutable_health_check() = info.health_check();
    }
    if (info.has_kill_policy()) {
      *task->mutable_kill_policy() = info.kill_policy();
    }
    task->set_user(info.command().has_user() ? info.command().user()
                                             : f.record.info().user());
    *task->mutable_limits() = info.limits();
    *t.record.mutable_launched_time() = e.time();
    *t.record.mutable_launched_by() = launched_by;
    t.resources = std::move(task_resources[i]);
    a.tasks.insert(key);
    f.tasks.insert(key.second);
    // Last: this may move `info` away.
    if (owned != nullptr) {
      *t.record.mutable_info() =
          std::move(*owned->mutable_tasks_launched()->mutable_tasks(i));
    } else {
      *t.record.mutable_info() = info;
    }
    UseTask(t, &a);
  }
  return absl::OkStatus();
}

void MasterState::UseTask(const TaskEntry& t, AgentEntry* a) {
  a->used += t.resources;
  if (!t.record.info().has_executor()) return;
  ExecutorUse& use = a->executors[ExecutorKey(t.record)];
  if (use.live_tasks++ == 0) {
    absl::StatusOr<Resources> executor = ExecutorResources(t.record.info());
    use.resources = executor.ok() ? *std::move(executor) : Resources();
    a->used += use.resources;
  }
}

void MasterState::FreeTask(const TaskEntry& t, AgentEntry* a) {
  a->used -= t.resources;
  if (!t.record.info().has_executor()) return;
  auto it = a->executors.find(ExecutorKey(t.record));
  if (it == a->executors.end()) return;
  if (--it->second.live_tasks == 0) {
    a->used -= it->second.resources;
    a->executors.erase(it);
  }
}

absl::Status MasterState::ApplyTaskStatusUpdated(const Event& e, Event* owned) {
  const v1::TaskStatusUpdated& update = e.task_status_updated();
  const v1::TaskStatus& status = update.status();
  absl::StatusOr<FrameworkEntry*> framework =
      GetFramework(update.framework_id());
  if (!framework.ok()) return framework.status();
  if (status.task_id().value().empty()) return Invalid("status without task");
  if (!status.has_state()) return Invalid("status without state");
  TaskKey key{update.framework_id().value(), status.task_id().value()};
  auto it = tasks_.find(key);
  if (it == tasks_.end()) {
    return Precondition(
        absl::StrCat("unknown task ", key.second, " of ", key.first));
  }
  TaskEntry& t = it->second;
  v1::Task* task = t.record.mutable_task();
  if (status.has_agent_id() &&
      status.agent_id().value() != task->agent_id().value()) {
    return Precondition(absl::StrCat("task ", key.second, " is on agent ",
                                     task->agent_id().value(), ", not ",
                                     status.agent_id().value()));
  }
  if (IsTerminalState(task->state())) {
    return Precondition(absl::StrCat("task ", key.second, " already ended as ",
                                     v1::TaskState_Name(task->state())));
  }
  const bool from_agent = status.source() != v1::TaskStatus::SOURCE_MASTER;
  if (!status.uuid().empty()) {
    bool duplicate =
        from_agent && status.uuid() == t.record.latest_agent_uuid();
    for (const auto& pending : t.record.unacknowledged()) {
      if (pending.uuid() == status.uuid()) duplicate = true;
    }
    if (duplicate) {
      return Precondition(
          absl::StrCat("task ", key.second, ": duplicate status update"));
    }
  }

  const bool terminal = IsTerminalState(status.state());
  task->set_state(status.state());
  task->set_status_update_state(status.state());
  task->set_status_update_uuid(status.uuid());
  AppendBounded(status, kMaxStatusHistory, task->mutable_statuses());
  if (!status.uuid().empty()) {
    if (from_agent) t.record.set_latest_agent_uuid(status.uuid());
    // Last use of `status`: this may move it away.
    if (owned != nullptr) {
      *t.record.add_unacknowledged() =
          std::move(*owned->mutable_task_status_updated()->mutable_status());
    } else {
      *t.record.add_unacknowledged() = status;
    }
  }
  if (terminal) {
    FreeTask(t, &agents_.at(task->agent_id().value()));
    t.record.clear_kill_request();
  }
  MaybeCompleteTask(it);
  return absl::OkStatus();
}

absl::Status MasterState::ApplyTaskStatusAcknowledged(const Event& e) {
  const v1::TaskStatusAcknowledged& ack = e.task_status_acknowledged();
  absl::StatusOr<FrameworkEntry*> framework = GetFramework(ack.framework_id());
  if (!framework.ok()) return framework.status();
  if (ack.task_id().value().empty()) return Invalid("ack without task id");
  if (ack.uuid().empty()) return Invalid("ack without uuid");
  TaskKey key{ack.framework_id().value(), ack.task_id().value()};
  auto it = tasks_.find(key);
  if (it == tasks_.end()) {
    return Precondition(
        absl::StrCat("unknown task ", key.second, " of ", key.first));
  }
  v1::TaskRecord& record = it->second.record;
  if (ack.has_agent_id() &&
      ack.agent_id().value() != record.task().agent_id().value()) {
    return Precondition(absl::StrCat("task ", key.second, " is not on agent ",
                                     ack.agent_id().value()));
  }
  int index = -1;
  for (int i = 0; i < record.unacknowledged_size(); ++i) {
    if (record.unacknowledged(i).uuid() == ack.uuid()) index = i;
  }
  if (index < 0) {
    return Precondition(
        absl::StrCat("task ", key.second, ": no such unacknowledged update"));
  }

  // Remove it, keeping the others' order and its object for reuse by the
  // next update (RemoveLast keeps a cleared element).
  auto* unacknowledged = record.mutable_unacknowledged();
  std::rotate(unacknowledged->pointer_begin() + index,
              unacknowledged->pointer_begin() + index + 1,
              unacknowledged->pointer_end());
  unacknowledged->RemoveLast();
  MaybeCompleteTask(it);
  return absl::OkStatus();
}

absl::Status MasterState::ApplyExecutorExited(const Event& e) {
  const v1::ExecutorExited& exited = e.executor_exited();
  if (exited.executor_id().value().empty()) {
    return Invalid("executor exit without executor id");
  }
  if (agents_.count(exited.agent_id().value()) == 0) {
    return Precondition(
        absl::StrCat("unknown agent ", exited.agent_id().value()));
  }
  absl::StatusOr<FrameworkEntry*> framework =
      GetFramework(exited.framework_id());
  if (!framework.ok()) return framework.status();
  return absl::OkStatus();  // history only
}

absl::Status MasterState::ApplyTaskKillRequested(const Event& e) {
  const v1::TaskKillRequested& kill = e.task_kill_requested();
  absl::StatusOr<FrameworkEntry*> framework = GetFramework(kill.framework_id());
  if (!framework.ok()) return framework.status();
  if (kill.task_id().value().empty()) return Invalid("kill without task id");
  if (kill.kill_policy().grace_period().nanoseconds() < 0) {
    return Invalid("kill policy with a negative grace period");
  }
  TaskKey key{kill.framework_id().value(), kill.task_id().value()};
  auto it = tasks_.find(key);
  if (it == tasks_.end()) {
    return Precondition(
        absl::StrCat("unknown task ", key.second, " of ", key.first));
  }
  v1::TaskRecord& record = it->second.record;
  if (IsTerminalState(record.task().state())) {
    return Precondition(
        absl::StrCat("task ", key.second, " already ended as ",
                     v1::TaskState_Name(record.task().state())));
  }

  v1::TaskRecord::KillRequest* request = record.mutable_kill_request();
  request->Clear();
  if (kill.has_kill_policy()) {
    *request->mutable_kill_policy() = kill.kill_policy();
  }
  *request->mutable_time() = e.time();
  request->mutable_requested_by()->set_position(e.position());
  request->mutable_requested_by()->set_index(e.index());
  request->set_principal(e.principal());
  return absl::OkStatus();
}

// ---- Offers -----------------------------------------------------------------

absl::Status MasterState::ApplyOffersCreated(const Event& e, Event* owned) {
  const auto& offers = e.offers_created().offers();
  absl::flat_hash_set<absl::string_view> ids;
  // Per offer, found while validating: its resources, where it goes in
  // offers_ (a hint) and its agent and framework.
  struct Target {
    Resources resources;
    OfferMap::iterator position;
    AgentEntry* agent;
    FrameworkEntry* framework;
  };
  std::vector<Target> targets;
  targets.reserve(offers.size());
  for (const v1::Offer& offer : offers) {
    const std::string& id = offer.id().value();
    if (id.empty()) return Invalid("offer without id");
    auto position = offers_.lower_bound(id);
    if ((offers.size() > 1 && !ids.insert(id).second) ||
        (position != offers_.end() && position->first == id)) {
      return Precondition(absl::StrCat("offer ", id, " already exists"));
    }
    absl::StatusOr<Resources> r = Resources::FromProto(offer.resources());
    if (!r.ok()) return r.status();
    if (r->empty()) return Invalid(absl::StrCat("offer ", id, " is empty"));
    auto f = frameworks_.find(offer.framework_id().value());
    if (f == frameworks_.end() ||
        f->second.record.state() != FrameworkRecord::CONNECTED) {
      return Precondition(absl::StrCat("offer ", id, ": framework '",
                                       offer.framework_id().value(),
                                       "' is unknown or not connected"));
    }
    if (!HasRole(f->second.record.info(), offer.allocation_info().role())) {
      return Precondition(absl::StrCat(
          "offer ", id, ": framework ", offer.framework_id().value(),
          " is not subscribed to role '", offer.allocation_info().role(), "'"));
    }
    auto a = agents_.find(offer.agent_id().value());
    if (a == agents_.end() || !IsOfferable(a->second)) {
      return Precondition(absl::StrCat("offer ", id, ": agent '",
                                       offer.agent_id().value(),
                                       "' is unknown or not offerable"));
    }
    targets.push_back(
        {r->WithoutAllocationInfo(), position, &a->second, &f->second});
  }
  // What the offers take from each agent, checked agent by agent in id order
  // (the order decides which shortfall is reported).
  std::vector<int> by_agent(offers.size());
  for (int i = 0; i < offers.size(); ++i) by_agent[i] = i;
  std::stable_sort(by_agent.begin(), by_agent.end(), [&](int x, int y) {
    return offers[x].agent_id().value() < offers[y].agent_id().value();
  });
  for (size_t begin = 0, end; begin < by_agent.size(); begin = end) {
    const std::string& agent_id = offers[by_agent[begin]].agent_id().value();
    Resources wanted = targets[by_agent[begin]].resources;
    for (end = begin + 1; end < by_agent.size() &&
                          offers[by_agent[end]].agent_id().value() == agent_id;
         ++end) {
      wanted += targets[by_agent[end]].resources;
    }
    const AgentEntry& a = *targets[by_agent[begin]].agent;
    Resources available = a.total - a.used - a.offered;
    if (!available.Contains(wanted)) {
      return Precondition(absl::StrCat("agent ", agent_id, " has ",
                                       available.ToString(), ", offers need ",
                                       wanted.ToString()));
    }
  }

  v1::EventId created_by;
  created_by.set_position(e.position());
  created_by.set_index(e.index());
  for (int i = 0; i < e.offers_created().offers_size(); ++i) {
    const v1::Offer& offer = e.offers_created().offers(i);
    Target& target = targets[i];
    OfferEntry& o = offers_
                        .emplace_hint(target.position, std::piecewise_construct,
                                      std::forward_as_tuple(offer.id().value()),
                                      std::forward_as_tuple())
                        ->second;
    offer_record_pool_.Take(&o.record);
    *o.record.mutable_created_time() = e.time();
    *o.record.mutable_created_by() = created_by;
    o.resources = std::move(target.resources);
    target.agent->offered += o.resources;
    target.agent->offers.insert(offer.id().value());
    target.framework->offers.insert(offer.id().value());
    // Last: this may move `offer` away.
    if (owned != nullptr) {
      *o.record.mutable_offer() =
          std::move(*owned->mutable_offers_created()->mutable_offers(i));
    } else {
      *o.record.mutable_offer() = offer;
    }
  }
  return absl::OkStatus();
}

absl::Status MasterState::ApplyOffersRemoved(
    const RepeatedPtrField<v1::OfferID>& ids,
    const v1::FrameworkID* framework_id) {
  if (ids.empty()) return Invalid("no offers listed");
  std::set<std::string> seen;
  for (const auto& id : ids) {
    if (id.value().empty()) return Invalid("missing offer id");
    if (!seen.insert(id.value()).second) {
      return Invalid(absl::StrCat("offer ", id.value(), " listed twice"));
    }
    auto it = offers_.find(id.value());
    if (it == offers_.end()) {
      return Precondition(absl::StrCat("unknown offer ", id.value()));
    }
    if (framework_id != nullptr &&
        it->second.record.offer().framework_id().value() !=
            framework_id->value()) {
      return Precondition(absl::StrCat("offer ", id.value(),
                                       " is not for framework ",
                                       framework_id->value()));
    }
  }

  for (const auto& id : ids) RemoveOffer(id.value());
  return absl::OkStatus();
}

// ---- Roles, quota, reservations, maintenance --------------------------------

absl::Status MasterState::ApplyWeightsUpdated(const Event& e) {
  for (const v1::WeightInfo& w : e.weights_updated().weights()) {
    if (w.role().empty()) return Invalid("weight without role");
    if (!std::isfinite(w.weight()) || w.weight() <= 0) {
      return Invalid(absl::StrCat("weight of ", w.role(), " must be > 0"));
    }
  }

  for (const v1::WeightInfo& w : e.weights_updated().weights()) {
    weights_[w.role()] = w.weight();
  }
  return absl::OkStatus();
}

absl::Status MasterState::ApplyQuotaUpdated(const Event& e) {
  std::set<std::string> roles;
  for (const v1::QuotaConfig& config : e.quota_updated().configs()) {
    if (config.role().empty() || config.role() == "*") {
      return Invalid(absl::StrCat("bad quota role '", config.role(), "'"));
    }
    if (!roles.insert(config.role()).second) {
      return Invalid(absl::StrCat("quota for ", config.role(), " twice"));
    }
    for (const auto* map : {&config.guarantees(), &config.limits()}) {
      for (const auto& [name, scalar] : *map) {
        if (!std::isfinite(scalar.value()) || scalar.value() < 0) {
          return Invalid(absl::StrCat("quota of ", config.role(), ": ", name,
                                      " must be finite and >= 0"));
        }
      }
    }
    for (const auto& [name, guarantee] : config.guarantees()) {
      auto limit = config.limits().find(name);
      if (limit != config.limits().end() &&
          RoundScalar(guarantee.value()) > RoundScalar(limit->second.value())) {
        return Invalid(absl::StrCat("quota of ", config.role(), ": ", name,
                                    " guarantee exceeds limit"));
      }
    }
  }

  for (const v1::QuotaConfig& config : e.quota_updated().configs()) {
    if (config.guarantees().empty() && config.limits().empty()) {
      quotas_.erase(config.role());
    } else {
      quotas_[config.role()] = config;
    }
  }
  return absl::OkStatus();
}

absl::Status MasterState::ApplyReservation(const Event& e, bool reserve) {
  const v1::AgentID& agent_id = reserve ? e.resources_reserved().agent_id()
                                        : e.resources_unreserved().agent_id();
  const auto& list = reserve ? e.resources_reserved().resources()
                             : e.resources_unreserved().resources();
  const auto& offer_ids = reserve ? e.resources_reserved().offer_ids()
                                  : e.resources_unreserved().offer_ids();
  absl::StatusOr<Resources> parsed = Resources::FromProto(list);
  if (!parsed.ok()) return parsed.status();
  Resources reserved = parsed->WithoutAllocationInfo();
  if (reserved.empty()) return Invalid("no resources to (un)reserve");
  for (const v1::Resource& r : reserved.ToProto()) {
    if (r.reservations_size() == 0 ||
        r.reservations(r.reservations_size() - 1).type() !=
            v1::Resource::ReservationInfo::DYNAMIC) {
      return Invalid(absl::StrCat("resource ", r.name(),
                                  " does not end in a dynamic reservation"));
    }
  }
  absl::StatusOr<Resources> unreserved = reserved.PopReservation();
  if (!unreserved.ok()) return unreserved.status();
  absl::StatusOr<AgentEntry*> agent = GetAgent(agent_id);
  if (!agent.ok()) return agent.status();
  AgentEntry& a = **agent;
  if (a.record.state() != AgentRecord::ACTIVE) {
    return Precondition(
        absl::StrCat("agent ", agent_id.value(), " is not active"));
  }
  absl::StatusOr<Resources> consumed =
      CheckOffersToConsume(offer_ids, agent_id.value(), "");
  if (!consumed.ok()) return consumed.status();
  const Resources& from = reserve ? *unreserved : reserved;
  const Resources& to = reserve ? reserved : *unreserved;
  Resources available = a.total - a.used - a.offered + *consumed;
  if (!available.Contains(from)) {
    return Precondition(absl::StrCat("agent ", agent_id.value(), " has ",
                                     available.ToString(), ", not ",
                                     from.ToString()));
  }

  for (const auto& id : offer_ids) RemoveOffer(id.value());
  a.total -= from;
  a.total += to;
  a.total.ToProto(a.record.mutable_total_resources());
  return absl::OkStatus();
}

absl::Status MasterState::ApplyMaintenanceScheduleUpdated(const Event& e) {
  const v1::MaintenanceSchedule& schedule =
      e.maintenance_schedule_updated().schedule();
  std::set<std::pair<std::string, std::string>> machines;
  for (const auto& window : schedule.windows()) {
    if (!window.unavailability().has_start()) {
      return Invalid("maintenance window without a start");
    }
    for (const auto& machine : window.machine_ids()) {
      if (machine.hostname().empty() && machine.ip().empty()) {
        return Invalid("machine id without hostname or ip");
      }
      if (!machines.emplace(machine.hostname(), machine.ip()).second) {
        return Invalid(absl::StrCat("machine ", machine.hostname(), "/",
                                    machine.ip(), " in two windows"));
      }
    }
  }

  maintenance_schedule_ = schedule;
  return absl::OkStatus();
}

// ---- Snapshots
// ----------------------------------------------------------------

v1::MasterSnapshot MasterState::ToSnapshot() const {
  v1::MasterSnapshot snapshot;
  *snapshot.mutable_last_applied() = last_applied_;
  snapshot.set_events_applied(events_applied_);
  for (const auto& [id, a] : agents_) *snapshot.add_agents() = a.record;
  for (const auto& [id, f] : frameworks_) {
    *snapshot.add_frameworks() = f.record;
  }
  for (const auto& [key, t] : tasks_) *snapshot.add_tasks() = t.record;
  for (const auto& [id, o] : offers_) *snapshot.add_offers() = o.record;
  for (const auto& [role, weight] : weights_) {
    auto* w = snapshot.add_weights();
    w->set_role(role);
    w->set_weight(weight);
  }
  for (const auto& [role, config] : quotas_) *snapshot.add_quotas() = config;
  *snapshot.mutable_maintenance_schedule() = maintenance_schedule_;
  return snapshot;
}

std::string MasterState::SerializeCanonical() const {
  return Serialize(ToSnapshot());
}

bool operator==(const MasterState& a, const MasterState& b) {
  return a.SerializeCanonical() == b.SerializeCanonical();
}

absl::StatusOr<MasterState> MasterState::FromSnapshot(
    const v1::MasterSnapshot& snapshot) {
  MasterState state;
  state.last_applied_ = snapshot.last_applied();
  state.events_applied_ = snapshot.events_applied();
  for (const AgentRecord& record : snapshot.agents()) {
    const std::string& id = record.info().id().value();
    if (id.empty() || state.agents_.count(id) > 0) {
      return Invalid(
          absl::StrCat("snapshot: bad or repeated agent '", id, "'"));
    }
    absl::StatusOr<Resources> total =
        Resources::FromProto(record.total_resources());
    if (!total.ok()) return total.status();
    AgentEntry& a = state.agents_[id];
    a.record = record;
    a.total = *std::move(total);
  }
  for (const FrameworkRecord& record : snapshot.frameworks()) {
    const std::string& id = record.info().id().value();
    if (id.empty() || state.frameworks_.count(id) > 0) {
      return Invalid(
          absl::StrCat("snapshot: bad or repeated framework '", id, "'"));
    }
    state.frameworks_[id].record = record;
  }
  for (const v1::TaskRecord& record : snapshot.tasks()) {
    TaskKey key{record.task().framework_id().value(),
                record.task().task_id().value()};
    auto a = state.agents_.find(record.task().agent_id().value());
    auto f = state.frameworks_.find(key.first);
    if (a == state.agents_.end() || f == state.frameworks_.end() ||
        state.tasks_.count(key) > 0) {
      return Invalid(
          absl::StrCat("snapshot: bad task ", key.second, " of ", key.first));
    }
    absl::StatusOr<Resources> r = TaskResources(record.info());
    if (!r.ok()) return r.status();
    TaskEntry& t = state.tasks_[key];
    t.record = record;
    t.resources = *std::move(r);
    if (!IsTerminalState(record.task().state())) UseTask(t, &a->second);
    a->second.tasks.insert(key);
    f->second.tasks.insert(key.second);
  }
  for (const v1::OfferRecord& record : snapshot.offers()) {
    const v1::Offer& offer = record.offer();
    auto a = state.agents_.find(offer.agent_id().value());
    auto f = state.frameworks_.find(offer.framework_id().value());
    if (offer.id().value().empty() || a == state.agents_.end() ||
        f == state.frameworks_.end() ||
        state.offers_.count(offer.id().value()) > 0) {
      return Invalid(
          absl::StrCat("snapshot: bad offer '", offer.id().value(), "'"));
    }
    absl::StatusOr<Resources> r = Resources::FromProto(offer.resources());
    if (!r.ok()) return r.status();
    OfferEntry& o = state.offers_[offer.id().value()];
    o.record = record;
    o.resources = r->WithoutAllocationInfo();
    a->second.offered += o.resources;
    a->second.offers.insert(offer.id().value());
    f->second.offers.insert(offer.id().value());
  }
  for (const v1::WeightInfo& w : snapshot.weights()) {
    state.weights_[w.role()] = w.weight();
  }
  for (const v1::QuotaConfig& q : snapshot.quotas()) {
    state.quotas_[q.role()] = q;
  }
  state.maintenance_schedule_ = snapshot.maintenance_schedule();
  if (absl::Status s = state.CheckInvariants(); !s.ok()) {
    return absl::DataLossError(absl::StrCat("snapshot: ", s.message()));
  }
  return state;
}

// ---- Invariants
// ---------------------------------------------------------------

absl::Status MasterState::CheckInvariants() const {
  auto broken = [](auto&&... parts) {
    return absl::InternalError(absl::StrCat("invariant: ", parts...));
  };
  std::map<std::string, Resources> used, offered;
  std::map<std::string, std::set<std::pair<std::string, std::string>>>
      live_executors;
  std::map<std::string, TaskKeySet> agent_tasks;
  std::map<std::string, std::set<std::string>> framework_tasks, agent_offers,
      framework_offers;

  for (const auto& [key, t] : tasks_) {
    const v1::Task& task = t.record.task();
    if (task.framework_id().value() != key.first ||
        task.task_id().value() != key.second) {
      return broken("task ", key.second, " is filed under the wrong key");
    }
    auto f = frameworks_.find(key.first);
    if (f == frameworks_.end()) {
      return broken("task ", key.second, " of unknown framework ", key.first);
    }
    if (f->second.record.state() == FrameworkRecord::COMPLETED) {
      return broken("live task ", key.second, " of removed framework");
    }
    if (agents_.count(task.agent_id().value()) == 0) {
      return broken("task ", key.second, " on unknown agent ",
                    task.agent_id().value());
    }
    if (IsTerminalState(task.state()) && t.record.unacknowledged_size() == 0) {
      return broken("task ", key.second, " ended but was not completed");
    }
    if (IsTerminalState(task.state()) && t.record.has_kill_request()) {
      return broken("task ", key.second, " ended with a kill request");
    }
    // (The resource caches of tasks, offers and agent totals are derived
    // from their records once, when written or in FromSnapshot; re-deriving
    // them on every check would dominate the randomized test's run time.
    // Snapshot round trips compare them with the records.)
    if (!IsTerminalState(task.state())) {
      used[task.agent_id().value()] += t.resources;
      if (t.record.info().has_executor()) {
        absl::StatusOr<Resources> executor = ExecutorResources(t.record.info());
        if (executor.ok() && live_executors[task.agent_id().value()]
                                 .insert(ExecutorKey(t.record))
                                 .second) {
          used[task.agent_id().value()] += *executor;
        }
      }
    }
    agent_tasks[task.agent_id().value()].insert(key);
    framework_tasks[key.first].insert(key.second);
  }

  for (const auto& [id, o] : offers_) {
    const v1::Offer& offer = o.record.offer();
    if (offer.id().value() != id) return broken("offer ", id, " key");
    auto a = agents_.find(offer.agent_id().value());
    if (a == agents_.end() || !IsOfferable(a->second)) {
      return broken("offer ", id, " for an agent that is not offerable");
    }
    auto f = frameworks_.find(offer.framework_id().value());
    if (f == frameworks_.end() ||
        f->second.record.state() != FrameworkRecord::CONNECTED) {
      return broken("offer ", id, " for a framework that is not connected");
    }
    offered[offer.agent_id().value()] += o.resources;
    agent_offers[offer.agent_id().value()].insert(id);
    framework_offers[offer.framework_id().value()].insert(id);
  }

  for (const auto& [id, a] : agents_) {
    if (a.record.info().id().value() != id) return broken("agent ", id, " key");
    if (a.executors.size() != live_executors[id].size()) {
      return broken("agent ", id, " counts ", a.executors.size(),
                    " executors with live tasks, its tasks ",
                    live_executors[id].size());
    }
    if (a.used != used[id]) {
      return broken("agent ", id, " used cache ", a.used.ToString(), " vs ",
                    used[id].ToString());
    }
    if (a.offered != offered[id]) {
      return broken("agent ", id, " offered cache ", a.offered.ToString(),
                    " vs ", offered[id].ToString());
    }
    if (a.tasks != agent_tasks[id]) return broken("agent ", id, " task index");
    if (a.offers != agent_offers[id]) {
      return broken("agent ", id, " offer index");
    }
    if (!a.total.Contains(a.used + a.offered)) {
      return broken("agent ", id, ": used ", a.used.ToString(), " + offered ",
                    a.offered.ToString(), " exceed total ", a.total.ToString());
    }
  }

  for (const auto& [id, f] : frameworks_) {
    if (f.record.info().id().value() != id) {
      return broken("framework ", id, " key");
    }
    if (f.tasks != framework_tasks[id]) {
      return broken("framework ", id, " task index");
    }
    if (f.offers != framework_offers[id]) {
      return broken("framework ", id, " offer index");
    }
    bool disconnected = f.record.state() == FrameworkRecord::DISCONNECTED;
    if (disconnected != f.record.has_failover_deadline()) {
      return broken("framework ", id, " failover deadline");
    }
    if (f.record.completed_tasks_size() > kMaxCompletedTasksPerFramework) {
      return broken("framework ", id, " keeps too many completed tasks");
    }
  }
  return absl::OkStatus();
}

// ---- Queries
// ------------------------------------------------------------------

const v1::AgentRecord* MasterState::FindAgent(
    const std::string& agent_id) const {
  auto it = agents_.find(agent_id);
  return it == agents_.end() ? nullptr : &it->second.record;
}

const v1::FrameworkRecord* MasterState::FindFramework(
    const std::string& framework_id) const {
  auto it = frameworks_.find(framework_id);
  return it == frameworks_.end() ? nullptr : &it->second.record;
}

const v1::TaskRecord* MasterState::FindTask(const std::string& framework_id,
                                            const std::string& task_id) const {
  auto it = tasks_.find({framework_id, task_id});
  return it == tasks_.end() ? nullptr : &it->second.record;
}

const v1::OfferRecord* MasterState::FindOffer(
    const std::string& offer_id) const {
  auto it = offers_.find(offer_id);
  return it == offers_.end() ? nullptr : &it->second.record;
}

std::vector<std::string> MasterState::AgentIds() const {
  std::vector<std::string> out;
  for (const auto& [id, a] : agents_) out.push_back(id);
  return out;
}

std::vector<std::string> MasterState::FrameworkIds() const {
  std::vector<std::string> out;
  for (const auto& [id, f] : frameworks_) out.push_back(id);
  return out;
}

std::vector<TaskKey> MasterState::TasksOnAgent(
    const std::string& agent_id) const {
  auto it = agents_.find(agent_id);
  if (it == agents_.end()) return {};
  return {it->second.tasks.begin(), it->second.tasks.end()};
}

std::vector<TaskKey> MasterState::TasksOfFramework(
    const std::string& framework_id) const {
  std::vector<TaskKey> out;
  auto it = frameworks_.find(framework_id);
  if (it == frameworks_.end()) return out;
  for (const auto& task_id : it->second.tasks) {
    out.emplace_back(framework_id, task_id);
  }
  return out;
}

std::vector<std::string> MasterState::OffersOnAgent(
    const std::string& agent_id) const {
  auto it = agents_.find(agent_id);
  if (it == agents_.end()) return {};
  return {it->second.offers.begin(), it->second.offers.end()};
}

std::vector<std::string> MasterState::OffersOfFramework(
    const std::string& framework_id) const {
  auto it = frameworks_.find(framework_id);
  if (it == frameworks_.end()) return {};
  return {it->second.offers.begin(), it->second.offers.end()};
}

namespace {
// `f` applied to the record of agent `agent_id`; kNotFound if none.
template <typename AgentMap, typename F>
absl::StatusOr<Resources> OfAgent(const AgentMap& agents,
                                  const std::string& agent_id, F f) {
  auto it = agents.find(agent_id);
  if (it == agents.end()) {
    return absl::NotFoundError(absl::StrCat("unknown agent ", agent_id));
  }
  return f(it->second);
}
}  // namespace

absl::StatusOr<Resources> MasterState::TotalResources(
    const std::string& agent_id) const {
  return OfAgent(agents_, agent_id, [](const auto& a) { return a.total; });
}

absl::StatusOr<Resources> MasterState::UsedResources(
    const std::string& agent_id) const {
  return OfAgent(agents_, agent_id, [](const auto& a) { return a.used; });
}

bool MasterState::ExecutorHasLiveTasks(const std::string& agent_id,
                                       const std::string& framework_id,
                                       const std::string& executor_id) const {
  auto a = agents_.find(agent_id);
  return a != agents_.end() &&
         a->second.executors.count({framework_id, executor_id}) > 0;
}

absl::StatusOr<Resources> MasterState::OfferedResources(
    const std::string& agent_id) const {
  return OfAgent(agents_, agent_id, [](const auto& a) { return a.offered; });
}

absl::StatusOr<Resources> MasterState::AvailableResources(
    const std::string& agent_id) const {
  return OfAgent(agents_, agent_id,
                 [](const auto& a) { return a.total - a.used - a.offered; });
}

absl::StatusOr<Resources> MasterState::ReservedResources(
    const std::string& agent_id) const {
  auto it = agents_.find(agent_id);
  if (it == agents_.end()) {
    return absl::NotFoundError(absl::StrCat("unknown agent ", agent_id));
  }
  return it->second.total - it->second.total.Unreserved();
}

bool MasterState::IsAgentOfferable(const std::string& agent_id) const {
  auto it = agents_.find(agent_id);
  return it != agents_.end() && IsOfferable(it->second);
}

std::vector<std::string> MasterState::FrameworksPastFailoverDeadline(
    absl::Time now) const {
  std::vector<std::string> out;
  for (const auto& [id, f] : frameworks_) {
    if (f.record.state() == FrameworkRecord::DISCONNECTED &&
        ToTime(f.record.failover_deadline()) <= now) {
      out.push_back(id);
    }
  }
  return out;
}

}  // namespace cairn::master
