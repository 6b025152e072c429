#include "recovery/testing/random_events.h"

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "master/resources.h"

namespace cairn::recovery::testing {

using master::Resources;
using master::TaskKey;

uint64_t Rng::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

RandomEvents::RandomEvents(uint64_t seed, absl::Time start,
                           absl::Duration max_step)
    : rng_(seed), now_(start), max_step_(max_step) {}

v1::Event RandomEvents::Next() {
  for (int attempt = 0;; ++attempt) {
    std::optional<v1::Event> event = Propose();
    if (!event.has_value()) {
      if (attempt > 1000) std::abort();  // generator stalled: a bug here
      continue;
    }
    if (end_position_ || rng_.Chance(40)) {
      ++position_;
      index_ = 0;
      end_position_ = false;
      now_ += max_step_ * double(rng_.Uniform(1001)) / 1000.0;
    }
    event->set_position(position_);
    event->set_index(index_++);
    *event->mutable_time() = master::FromTime(now_);
    event->set_principal("random");
    absl::Status status = state_.Apply(*event);
    if (!status.ok()) std::abort();  // generated an invalid event: a bug here
    return *std::move(event);
  }
}

std::optional<v1::Event> RandomEvents::Propose() {
  switch (rng_.Uniform(14)) {
    case 0:
      return RegisterAgent();
    case 1:
      return AgentGoesAway();
    case 2:
      return ReregisterAgent();
    case 3:
      return Subscribe();
    case 4:
      return FrameworkTransition();
    case 5:
    case 6:
      return CreateOffer();
    case 7:
      return DeclineOffer();
    case 8:
    case 9:
      return Launch();
    case 10:
    case 11:
      return UpdateStatus();
    default:
      return Acknowledge();
  }
}

std::vector<std::string> RandomEvents::AgentsIn(
    v1::AgentRecord::State state) const {
  std::vector<std::string> out;
  for (const std::string& id : state_.AgentIds()) {
    if (state_.FindAgent(id)->state() == state) out.push_back(id);
  }
  return out;
}

std::vector<std::string> RandomEvents::FrameworksIn(
    v1::FrameworkRecord::State state) const {
  std::vector<std::string> out;
  for (const std::string& id : state_.FrameworkIds()) {
    if (state_.FindFramework(id)->state() == state) out.push_back(id);
  }
  return out;
}

std::vector<TaskKey> RandomEvents::LiveTasks() const {
  std::vector<TaskKey> out;
  for (const std::string& id : state_.FrameworkIds()) {
    for (const TaskKey& key : state_.TasksOfFramework(id)) {
      if (!master::IsTerminalState(
              state_.FindTask(key.first, key.second)->task().state())) {
        out.push_back(key);
      }
    }
  }
  return out;
}

std::optional<v1::Event> RandomEvents::RegisterAgent() {
  if (AgentsIn(v1::AgentRecord::ACTIVE).size() >= 6) return std::nullopt;
  v1::Event e;
  auto* info = e.mutable_agent_registered()->mutable_info();
  std::string id = absl::StrCat("agent-", next_id_++);
  info->mutable_id()->set_value(id);
  info->set_hostname(id + ".example");
  Resources::Parse(absl::StrCat("cpus:", 2 + rng_.Uniform(6),
                                ";mem:", 512 * (1 + rng_.Uniform(4))))
      ->ToProto(info->mutable_resources());
  e.mutable_agent_registered()->set_version("1.0");
  return e;
}

std::optional<v1::Event> RandomEvents::AgentGoesAway() {
  std::vector<std::string> active = AgentsIn(v1::AgentRecord::ACTIVE);
  if (active.empty()) return std::nullopt;
  // Only an agent without live tasks may be removed (their ends come
  // first: MasterState::ApplyAgentRemoved).
  std::vector<std::string> idle;
  for (const std::string& id : active) {
    if (state_.UsedResources(id)->empty()) idle.push_back(id);
  }
  v1::Event e;
  if (idle.empty() || rng_.Chance(70)) {
    e.mutable_agent_unreachable()->mutable_agent_id()->set_value(Pick(active));
  } else {
    e.mutable_agent_removed()->mutable_agent_id()->set_value(Pick(idle));
    e.mutable_agent_removed()->set_reason("gone");
  }
  return e;
}

std::optional<v1::Event> RandomEvents::ReregisterAgent() {
  std::vector<std::string> ids = AgentsIn(v1::AgentRecord::UNREACHABLE);
  if (ids.empty()) return std::nullopt;
  const v1::AgentRecord& a = *state_.FindAgent(Pick(ids));
  v1::Event e;
  auto* info = e.mutable_agent_reregistered()->mutable_info();
  *info = a.info();
  *info->mutable_resources() = a.total_resources();
  e.mutable_agent_reregistered()->set_version("1.1");
  return e;
}

std::optional<v1::Event> RandomEvents::Subscribe() {
  if (FrameworksIn(v1::FrameworkRecord::CONNECTED).size() >= 4) {
    return std::nullopt;
  }
  v1::Event e;
  std::string id = absl::StrCat("fw-", next_id_++);
  auto* info = e.mutable_framework_subscribed()->mutable_info();
  info->mutable_id()->set_value(id);
  info->set_user("nobody");
  info->set_name(id);
  info->set_principal("p-" + id);
  info->set_failover_timeout(double(rng_.Uniform(3600)));
  info->add_roles("web");
  return e;
}

std::optional<v1::Event> RandomEvents::FrameworkTransition() {
  v1::Event e;
  if (rng_.Chance(50)) {
    std::vector<std::string> ids = FrameworksIn(v1::FrameworkRecord::CONNECTED);
    if (ids.empty()) return std::nullopt;
    e.mutable_framework_disconnected()->mutable_framework_id()->set_value(
        Pick(ids));
    return e;
  }
  std::vector<std::string> ids =
      FrameworksIn(v1::FrameworkRecord::DISCONNECTED);
  if (ids.empty()) return std::nullopt;
  const std::string id = Pick(ids);
  if (rng_.Chance(60)) {
    *e.mutable_framework_failed_over()->mutable_info() =
        state_.FindFramework(id)->info();
    return e;
  }
  // Removal: kill its live tasks first, one event each.
  for (const TaskKey& key : state_.TasksOfFramework(id)) {
    const v1::TaskRecord* t = state_.FindTask(key.first, key.second);
    if (!master::IsTerminalState(t->task().state())) {
      auto* u = e.mutable_task_status_updated();
      u->mutable_framework_id()->set_value(key.first);
      u->mutable_status()->mutable_task_id()->set_value(key.second);
      u->mutable_status()->set_state(v1::TASK_KILLED);
      u->mutable_status()->set_source(v1::TaskStatus::SOURCE_MASTER);
      u->mutable_status()->set_reason(v1::TaskStatus::REASON_FRAMEWORK_REMOVED);
      return e;
    }
  }
  e.mutable_framework_removed()->mutable_framework_id()->set_value(id);
  e.mutable_framework_removed()->set_reason("teardown");
  return e;
}

std::optional<v1::Event> RandomEvents::CreateOffer() {
  std::vector<std::string> frameworks =
      FrameworksIn(v1::FrameworkRecord::CONNECTED);
  std::vector<std::string> agents;
  for (const std::string& id : state_.AgentIds()) {
    if (state_.IsAgentOfferable(id)) agents.push_back(id);
  }
  if (frameworks.empty() || agents.empty()) return std::nullopt;
  const std::string agent = Pick(agents);
  Resources available = state_.AvailableResources(agent)->Unreserved();
  double cpus = available.ScalarSum("cpus");
  double mem = available.ScalarSum("mem");
  if (cpus < 1 || mem < 64) return std::nullopt;
  Resources take = *Resources::Parse(
      absl::StrCat("cpus:", 1 + rng_.Uniform(uint64_t(cpus)),
                   ";mem:", 64 * (1 + rng_.Uniform(uint64_t(mem) / 64))));
  v1::Event e;
  e.mutable_offers_created()->set_allocation_cycle(next_id_++);
  v1::Offer* offer = e.mutable_offers_created()->add_offers();
  offer->mutable_id()->set_value(absl::StrCat("offer-", next_id_++));
  offer->mutable_framework_id()->set_value(Pick(frameworks));
  offer->mutable_agent_id()->set_value(agent);
  offer->set_hostname(agent + ".example");
  offer->mutable_allocation_info()->set_role("web");
  take.AllocatedTo("web").ToProto(offer->mutable_resources());
  return e;
}

std::optional<v1::Event> RandomEvents::DeclineOffer() {
  std::vector<std::string> offers;
  for (const std::string& id : state_.AgentIds()) {
    for (const std::string& o : state_.OffersOnAgent(id)) offers.push_back(o);
  }
  if (offers.empty()) return std::nullopt;
  const v1::Offer& offer = state_.FindOffer(Pick(offers))->offer();
  v1::Event e;
  *e.mutable_offers_declined()->mutable_framework_id() = offer.framework_id();
  *e.mutable_offers_declined()->add_offer_ids() = offer.id();
  return e;
}

std::optional<v1::Event> RandomEvents::Launch() {
  std::vector<std::string> offers;
  for (const std::string& id : state_.AgentIds()) {
    for (const std::string& o : state_.OffersOnAgent(id)) offers.push_back(o);
  }
  if (offers.empty()) return std::nullopt;
  const v1::Offer& offer = state_.FindOffer(Pick(offers))->offer();
  v1::Event e;
  auto* launch = e.mutable_tasks_launched();
  *launch->mutable_framework_id() = offer.framework_id();
  *launch->add_offer_ids() = offer.id();
  v1::TaskInfo* task = launch->add_tasks();
  std::string id = absl::StrCat("task-", next_id_++);
  task->set_name(id);
  task->mutable_task_id()->set_value(id);
  *task->mutable_agent_id() = offer.agent_id();
  task->mutable_command()->set_value("sleep 100");
  *task->mutable_resources() = offer.resources();
  return e;
}

std::optional<v1::Event> RandomEvents::UpdateStatus() {
  std::vector<TaskKey> tasks = LiveTasks();
  if (tasks.empty()) return std::nullopt;
  static const std::vector<v1::TaskState> kStates = {
      v1::TASK_STARTING, v1::TASK_RUNNING, v1::TASK_RUNNING,
      v1::TASK_FINISHED, v1::TASK_FAILED,  v1::TASK_LOST};
  const TaskKey key = Pick(tasks);
  v1::Event e;
  auto* u = e.mutable_task_status_updated();
  u->mutable_framework_id()->set_value(key.first);
  v1::TaskStatus* s = u->mutable_status();
  s->mutable_task_id()->set_value(key.second);
  s->set_state(Pick(kStates));
  s->set_source(v1::TaskStatus::SOURCE_EXECUTOR);
  s->set_uuid(absl::StrCat("uuid-", next_id_++));
  return e;
}

std::optional<v1::Event> RandomEvents::Acknowledge() {
  std::vector<TaskKey> pending;
  for (const std::string& id : state_.FrameworkIds()) {
    for (const TaskKey& key : state_.TasksOfFramework(id)) {
      if (state_.FindTask(key.first, key.second)->unacknowledged_size() > 0) {
        pending.push_back(key);
      }
    }
  }
  if (pending.empty()) return std::nullopt;
  const TaskKey key = Pick(pending);
  const v1::TaskRecord* t = state_.FindTask(key.first, key.second);
  v1::Event e;
  auto* a = e.mutable_task_status_acknowledged();
  a->mutable_framework_id()->set_value(key.first);
  a->mutable_task_id()->set_value(key.second);
  *a->mutable_agent_id() = t->task().agent_id();
  a->set_uuid(t->unacknowledged(0).uuid());
  return e;
}

}  // namespace cairn::recovery::testing
