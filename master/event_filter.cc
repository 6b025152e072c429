#include "master/event_filter.h"

#include <algorithm>

#include "google/protobuf/descriptor.h"

namespace cairn::master {
namespace {

const google::protobuf::OneofDescriptor* TypeOneof() {
  static const google::protobuf::OneofDescriptor* const oneof =
      v1::Event::descriptor()->FindOneofByName("type");
  return oneof;
}

void AddOnce(const std::string& id, std::vector<std::string>* ids) {
  if (id.empty()) return;
  if (std::find(ids->begin(), ids->end(), id) == ids->end()) {
    ids->push_back(id);
  }
}

bool Contains(const std::vector<std::string>& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

std::string EventTypeName(const v1::Event& event) {
  const google::protobuf::FieldDescriptor* field =
      event.GetReflection()->GetOneofFieldDescriptor(event, TypeOneof());
  return field == nullptr ? std::string() : field->name();
}

std::optional<v1::Event::TypeCase> EventTypeFromName(absl::string_view name) {
  const google::protobuf::OneofDescriptor* oneof = TypeOneof();
  for (int i = 0; i < oneof->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = oneof->field(i);
    if (field->name() == name) {
      return static_cast<v1::Event::TypeCase>(field->number());
    }
  }
  return std::nullopt;
}

std::vector<std::string> AllEventTypeNames() {
  const google::protobuf::OneofDescriptor* oneof = TypeOneof();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  for (int i = 0; i < oneof->field_count(); ++i) {
    fields.push_back(oneof->field(i));
  }
  std::sort(fields.begin(), fields.end(), [](const auto* a, const auto* b) {
    return a->number() < b->number();
  });
  std::vector<std::string> names;
  for (const auto* field : fields) names.push_back(field->name());
  return names;
}

EventSubjects SubjectsOf(const v1::Event& event) {
  EventSubjects s;
  auto framework = [&s](const v1::FrameworkID& id) {
    AddOnce(id.value(), &s.framework_ids);
  };
  auto agent = [&s](const v1::AgentID& id) {
    AddOnce(id.value(), &s.agent_ids);
  };
  auto task = [&s](const v1::TaskID& id) { AddOnce(id.value(), &s.task_ids); };

  switch (event.type_case()) {
    // Agents.
    case v1::Event::kAgentRegistered:
      agent(event.agent_registered().info().id());
      break;
    case v1::Event::kAgentReregistered:
      agent(event.agent_reregistered().info().id());
      break;
    case v1::Event::kAgentUnreachable:
      agent(event.agent_unreachable().agent_id());
      break;
    case v1::Event::kAgentRemoved:
      agent(event.agent_removed().agent_id());
      break;
    case v1::Event::kAgentDeactivated:
      agent(event.agent_deactivated().agent_id());
      break;
    case v1::Event::kAgentReactivated:
      agent(event.agent_reactivated().agent_id());
      break;
    case v1::Event::kAgentDrainStarted:
      agent(event.agent_drain_started().agent_id());
      break;
    case v1::Event::kAgentDrained:
      agent(event.agent_drained().agent_id());
      break;
    case v1::Event::kAgentResourcesUpdated:
      agent(event.agent_resources_updated().agent_id());
      break;

    // Frameworks.
    case v1::Event::kFrameworkSubscribed:
      framework(event.framework_subscribed().info().id());
      break;
    case v1::Event::kFrameworkFailedOver:
      framework(event.framework_failed_over().info().id());
      break;
    case v1::Event::kFrameworkDisconnected:
      framework(event.framework_disconnected().framework_id());
      break;
    case v1::Event::kFrameworkDeactivated:
      framework(event.framework_deactivated().framework_id());
      break;
    case v1::Event::kFrameworkUpdated:
      framework(event.framework_updated().info().id());
      break;
    case v1::Event::kFrameworkRemoved:
      framework(event.framework_removed().framework_id());
      break;

    // Tasks.
    case v1::Event::kTasksLaunched: {
      const v1::TasksLaunched& launched = event.tasks_launched();
      framework(launched.framework_id());
      for (const v1::TaskInfo& info : launched.tasks()) {
        agent(info.agent_id());
        task(info.task_id());
      }
      break;
    }
    case v1::Event::kTaskStatusUpdated: {
      const v1::TaskStatusUpdated& updated = event.task_status_updated();
      framework(updated.framework_id());
      agent(updated.status().agent_id());
      task(updated.status().task_id());
      break;
    }
    case v1::Event::kTaskStatusAcknowledged: {
      const v1::TaskStatusAcknowledged& ack = event.task_status_acknowledged();
      framework(ack.framework_id());
      agent(ack.agent_id());
      task(ack.task_id());
      break;
    }
    case v1::Event::kTaskKillRequested:
      framework(event.task_kill_requested().framework_id());
      task(event.task_kill_requested().task_id());
      break;
    case v1::Event::kExecutorExited:
      framework(event.executor_exited().framework_id());
      agent(event.executor_exited().agent_id());
      break;

    // Offers.
    case v1::Event::kOffersCreated:
      for (const v1::Offer& offer : event.offers_created().offers()) {
        framework(offer.framework_id());
        agent(offer.agent_id());
      }
      break;
    case v1::Event::kOffersDeclined:
      framework(event.offers_declined().framework_id());
      break;
    case v1::Event::kOffersRescinded:
    case v1::Event::kOffersExpired:
      break;  // offer ids only

    // Roles, quota, reservations, maintenance.
    case v1::Event::kResourcesReserved:
      agent(event.resources_reserved().agent_id());
      break;
    case v1::Event::kResourcesUnreserved:
      agent(event.resources_unreserved().agent_id());
      break;
    case v1::Event::kWeightsUpdated:
    case v1::Event::kQuotaUpdated:
    case v1::Event::kMaintenanceScheduleUpdated:
    case v1::Event::TYPE_NOT_SET:
      break;
  }
  return s;
}

bool EventFilter::Matches(const v1::Event& event) const {
  if (!types.empty() && !types.contains(event.type_case())) return false;
  if (framework_id.empty() && agent_id.empty() && task_id.empty()) {
    return true;
  }
  const EventSubjects subjects = SubjectsOf(event);
  if (!framework_id.empty() &&
      !Contains(subjects.framework_ids, framework_id)) {
    return false;
  }
  if (!agent_id.empty() && !Contains(subjects.agent_ids, agent_id)) {
    return false;
  }
  if (!task_id.empty() && !Contains(subjects.task_ids, task_id)) return false;
  return true;
}

}  // namespace cairn::master
