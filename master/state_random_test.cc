// Randomized test of the fold: random valid event sequences (agents come and
// go or change resources, frameworks subscribe and fail over, offers,
// launches, status updates, kill requests, acknowledgements, reservations,
// quota, weights, maintenance), with a few
// invalid events mixed in. Checks, for every sequence:
//  - CheckInvariants() holds after every event;
//  - an invalid event is rejected with kInvalidArgument or
//    kFailedPrecondition and leaves the state byte-identical;
//  - for random cut points, FromSnapshot(state at cut) + replay of the tail
//    serializes byte-identically to the live state;
//  - folding the whole sequence again gives the same bytes (determinism),
//    also when every event is moved in (Apply(Event&&));
//  - a rejected event is left unchanged by Apply(Event&&).
//
// Sequence k runs with seed (base seed + k). The base seed is 1 unless given
// by --seed=N or the CAIRN_SEED environment variable; --sequences=N sets the
// count. A failure prints the command that replays just that sequence:
//   bazel run //master:state_random_test -- --seed=S --sequences=1

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "master/resources.h"
#include "master/state.h"

namespace cairn::master {
namespace {

using v1::AgentRecord;
using v1::Event;
using v1::FrameworkRecord;

uint64_t g_base_seed = 1;
int g_sequences = 200;
constexpr int kEventsPerSequence = 150;
constexpr int kCutsPerSequence = 4;

// splitmix64: small, fast and the same on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n). REQUIRES: n > 0.
  uint64_t Uniform(uint64_t n) { return Next() % n; }
  bool Chance(int percent) { return Uniform(100) < uint64_t(percent); }
  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[Uniform(items.size())];
  }

 private:
  uint64_t state_;
};

const std::vector<std::string> kRoles = {"web", "batch"};

// Produces random events that are valid against `state` (and, on request,
// invalid ones).
class EventGenerator {
 public:
  EventGenerator(Rng* rng, const MasterState* state)
      : rng_(*rng), state_(*state) {}

  // A valid event, or nullopt when the chosen action is impossible now.
  std::optional<Event> NextValid() {
    switch (rng_.Uniform(25)) {
      case 0:
        return RegisterAgent();
      case 1:
        return ReregisterAgent();
      case 2:
        return AgentTransition();
      case 3:
        return Drain();
      case 4:
        return Subscribe();
      case 5:
        return FrameworkTransition();
      case 6:
      case 7:
      case 8:
        return CreateOffers();
      case 9:
      case 10:
        return LaunchFromOffer();
      case 11:
        return LaunchWithoutOffer();
      case 12:
      case 13:
      case 14:
        return UpdateStatus();
      case 15:
      case 16:
        return Acknowledge();
      case 17:
        return RemoveOffers();
      case 18:
        return Reserve();
      case 19:
        return Unreserve();
      case 20:
        return RolesAndQuota();
      case 21:
        return Maintenance();
      case 22:
        return UpdateResources();
      case 23:
        return RequestKill();
      case 24:
        return ExecutorExit();
    }
    return std::nullopt;
  }

  // An event the fold must reject.
  Event Invalid() {
    Event e;
    switch (rng_.Uniform(8)) {
      case 0: {
        auto* u = e.mutable_task_status_updated();
        u->mutable_framework_id()->set_value("fw-none");
        u->mutable_status()->mutable_task_id()->set_value("t-none");
        u->mutable_status()->set_state(v1::TASK_RUNNING);
        break;
      }
      case 1: {
        // More than any agent has.
        std::vector<std::string> agents = state_.AgentIds();
        std::vector<std::string> frameworks =
            Frameworks([](const FrameworkRecord& f) {
              return f.state() == FrameworkRecord::CONNECTED;
            });
        v1::Offer* offer = e.mutable_offers_created()->add_offers();
        offer->mutable_id()->set_value(absl::StrCat("o-bad-", next_id_++));
        offer->mutable_agent_id()->set_value(
            agents.empty() ? "a-none" : rng_.Pick(agents));
        offer->mutable_framework_id()->set_value(
            frameworks.empty() ? "fw-none" : rng_.Pick(frameworks));
        offer->mutable_allocation_info()->set_role("web");
        Resources::Parse("cpus:1000000")
            ->AllocatedTo("web")
            .ToProto(offer->mutable_resources());
        break;
      }
      case 2: {
        auto* a = e.mutable_task_status_acknowledged();
        std::vector<TaskKey> tasks = LiveTasks();
        TaskKey key =
            tasks.empty() ? TaskKey{"fw-none", "t"} : rng_.Pick(tasks);
        a->mutable_framework_id()->set_value(key.first);
        a->mutable_task_id()->set_value(key.second);
        a->set_uuid("never-sent");
        break;
      }
      case 3: {
        std::vector<std::string> agents = state_.AgentIds();
        auto* info = e.mutable_agent_registered()->mutable_info();
        info->mutable_id()->set_value(agents.empty() ? "" : rng_.Pick(agents));
        info->set_hostname("dup");
        break;
      }
      case 4:
        e.mutable_offers_rescinded()->add_offer_ids()->set_value("o-none");
        break;
      case 5: {
        auto* k = e.mutable_task_kill_requested();
        k->mutable_framework_id()->set_value("fw-none");
        k->mutable_task_id()->set_value("t-none");
        break;
      }
      case 6: {
        // Below what some agent's tasks use, or an unknown agent.
        std::string agent = "a-none";
        for (const auto& id : state_.AgentIds()) {
          if (!state_.UsedResources(id)->empty()) agent = id;
        }
        auto* u = e.mutable_agent_resources_updated();
        u->mutable_agent_id()->set_value(agent);
        Resources::Parse("disk:1")->ToProto(u->mutable_resources());
        break;
      }
      default:
        e.mutable_framework_removed()->mutable_framework_id()->set_value(
            "fw-none");
        break;
    }
    return e;
  }

 private:
  template <typename Pred>
  std::vector<std::string> Agents(Pred pred) const {
    std::vector<std::string> out;
    for (const auto& id : state_.AgentIds()) {
      if (pred(*state_.FindAgent(id))) out.push_back(id);
    }
    return out;
  }

  template <typename Pred>
  std::vector<std::string> Frameworks(Pred pred) const {
    std::vector<std::string> out;
    for (const auto& id : state_.FrameworkIds()) {
      if (pred(*state_.FindFramework(id))) out.push_back(id);
    }
    return out;
  }

  std::vector<TaskKey> LiveTasks(bool running_only = true) const {
    std::vector<TaskKey> out;
    for (const auto& id : state_.FrameworkIds()) {
      for (const TaskKey& key : state_.TasksOfFramework(id)) {
        const v1::TaskRecord* t = state_.FindTask(key.first, key.second);
        if (!running_only || !IsTerminalState(t->task().state())) {
          out.push_back(key);
        }
      }
    }
    return out;
  }

  std::vector<std::string> OfferIds() const {
    std::vector<std::string> out;
    for (const auto& id : state_.AgentIds()) {
      for (const auto& o : state_.OffersOnAgent(id)) out.push_back(o);
    }
    return out;
  }

  std::string Role() { return rng_.Pick(kRoles); }

  // A random non-empty part of `from` (or empty if `from` is).
  Resources TakeSome(const Resources& from) {
    Resources out;
    for (v1::Resource r : from.ToProto()) {
      if (!rng_.Chance(60)) continue;
      if (r.type() == v1::MesosValue::SCALAR) {
        double part =
            RoundScalar(r.scalar().value() * double(1 + rng_.Uniform(4)) / 4.0);
        if (part > r.scalar().value()) part = r.scalar().value();
        r.mutable_scalar()->set_value(part);
      } else if (r.type() == v1::MesosValue::RANGES) {
        const auto& first = r.ranges().range(0);
        uint64_t begin = first.begin();
        uint64_t end = std::min(first.end(), begin + rng_.Uniform(4));
        r.mutable_ranges()->clear_range();
        auto* range = r.mutable_ranges()->add_range();
        range->set_begin(begin);
        range->set_end(end);
      }
      out += *Resources::FromProto(r);
    }
    if (out.empty() && !from.empty()) {
      out += *Resources::FromProto(from.ToProto().front());
    }
    return out;
  }

  // Resources `role` may be offered or use: unreserved or reserved to it.
  static Resources Usable(const Resources& r, const std::string& role) {
    return r.Unreserved() + r.ReservedTo(role);
  }

  std::optional<Event> RegisterAgent() {
    if (state_.AgentIds().size() >= 12) return std::nullopt;
    Event e;
    auto* info = e.mutable_agent_registered()->mutable_info();
    std::string id = absl::StrCat("agent-", next_id_++);
    info->mutable_id()->set_value(id);
    info->set_hostname(id + ".example");
    std::string text = absl::StrCat("cpus:", 1 + rng_.Uniform(8),
                                    ";mem:", 256 * (1 + rng_.Uniform(8)),
                                    ";ports:[31000-", 31000 + rng_.Uniform(40),
                                    "];disk:", 1000 * (1 + rng_.Uniform(4)));
    if (rng_.Chance(30)) absl::StrAppend(&text, ";cpus(web):1");
    if (rng_.Chance(20)) absl::StrAppend(&text, ";gpus(batch):2");
    Resources::Parse(text)->ToProto(info->mutable_resources());
    AddCapabilities(e.mutable_agent_registered()->mutable_capabilities());
    return e;
  }

  void AddCapabilities(
      google::protobuf::RepeatedPtrField<v1::AgentInfo::Capability>* out) {
    for (auto type : {v1::AgentInfo::Capability::MULTI_ROLE,
                      v1::AgentInfo::Capability::HIERARCHICAL_ROLE,
                      v1::AgentInfo::Capability::AGENT_DRAINING}) {
      if (rng_.Chance(50)) out->Add()->set_type(type);
    }
  }

  // A new total for an active agent: grown, or shrunk to no less than what
  // its tasks use.
  std::optional<Event> UpdateResources() {
    std::vector<std::string> ids = Agents(
        [](const AgentRecord& a) { return a.state() == AgentRecord::ACTIVE; });
    if (ids.empty()) return std::nullopt;
    const std::string& id = rng_.Pick(ids);
    Resources total = *state_.TotalResources(id);
    Resources used = *state_.UsedResources(id);
    Resources next = rng_.Chance(50)
                         ? total + *Resources::Parse("mem:128;disk:500")
                         : used + TakeSome(total - used);
    Event e;
    auto* u = e.mutable_agent_resources_updated();
    u->mutable_agent_id()->set_value(id);
    next.ToProto(u->mutable_resources());
    return e;
  }

  // History only: an executor of a known framework exited on a known agent.
  std::optional<Event> ExecutorExit() {
    std::vector<std::string> agents = state_.AgentIds();
    std::vector<std::string> frameworks =
        Frameworks([](const FrameworkRecord&) { return true; });
    if (agents.empty() || frameworks.empty()) return std::nullopt;
    Event e;
    v1::ExecutorExited* x = e.mutable_executor_exited();
    x->mutable_agent_id()->set_value(rng_.Pick(agents));
    x->mutable_framework_id()->set_value(rng_.Pick(frameworks));
    x->mutable_executor_id()->set_value(
        absl::StrCat("exec-", rng_.Uniform(next_id_ + 1)));
    x->set_status(int32_t(rng_.Uniform(256)) << 8);
    return e;
  }

  std::optional<Event> RequestKill() {
    std::vector<TaskKey> tasks = LiveTasks();
    if (tasks.empty()) return std::nullopt;
    const TaskKey& key = rng_.Pick(tasks);
    Event e;
    auto* k = e.mutable_task_kill_requested();
    k->mutable_framework_id()->set_value(key.first);
    k->mutable_task_id()->set_value(key.second);
    if (rng_.Chance(50)) {
      k->mutable_kill_policy()->mutable_grace_period()->set_nanoseconds(
          int64_t(rng_.Uniform(30)) * 1000000000);
    }
    return e;
  }

  std::optional<Event> ReregisterAgent() {
    std::vector<std::string> ids = Agents(
        [](const AgentRecord& a) { return a.state() != AgentRecord::REMOVED; });
    if (ids.empty()) return std::nullopt;
    const AgentRecord& a = *state_.FindAgent(rng_.Pick(ids));
    Event e;
    auto* info = e.mutable_agent_reregistered()->mutable_info();
    *info = a.info();
    *info->mutable_resources() = a.total_resources();
    if (rng_.Chance(30)) {
      // Grows: more memory.
      Resources more = *Resources::FromProto(a.total_resources()) +
                       *Resources::Parse("mem:256");
      more.ToProto(info->mutable_resources());
    }
    e.mutable_agent_reregistered()->set_version("1.0");
    AddCapabilities(e.mutable_agent_reregistered()->mutable_capabilities());
    return e;
  }

  std::optional<Event> AgentTransition() {
    Event e;
    switch (rng_.Uniform(4)) {
      case 0: {
        std::vector<std::string> ids = Agents([](const AgentRecord& a) {
          return a.state() == AgentRecord::ACTIVE;
        });
        if (ids.empty()) return std::nullopt;
        e.mutable_agent_unreachable()->mutable_agent_id()->set_value(
            rng_.Pick(ids));
        return e;
      }
      case 1: {
        if (!rng_.Chance(30)) return std::nullopt;  // rare
        // Only agents without live tasks (their ends come first).
        std::vector<std::string> ids = Agents([this](const AgentRecord& a) {
          return a.state() != AgentRecord::REMOVED &&
                 state_.UsedResources(a.info().id().value())->empty();
        });
        if (ids.empty()) return std::nullopt;
        e.mutable_agent_removed()->mutable_agent_id()->set_value(
            rng_.Pick(ids));
        e.mutable_agent_removed()->set_reason("gone");
        return e;
      }
      case 2: {
        std::vector<std::string> ids = Agents([](const AgentRecord& a) {
          return a.state() != AgentRecord::REMOVED && !a.deactivated();
        });
        if (ids.empty()) return std::nullopt;
        e.mutable_agent_deactivated()->mutable_agent_id()->set_value(
            rng_.Pick(ids));
        return e;
      }
      default: {
        std::vector<std::string> ids = Agents([](const AgentRecord& a) {
          return a.state() != AgentRecord::REMOVED && a.deactivated();
        });
        if (ids.empty()) return std::nullopt;
        e.mutable_agent_reactivated()->mutable_agent_id()->set_value(
            rng_.Pick(ids));
        return e;
      }
    }
  }

  std::optional<Event> Drain() {
    Event e;
    std::vector<std::string> draining = Agents([](const AgentRecord& a) {
      return a.drain_info().state() == v1::DRAINING;
    });
    if (!draining.empty() && rng_.Chance(70)) {
      std::string id = rng_.Pick(draining);
      for (const TaskKey& key : state_.TasksOnAgent(id)) {
        const v1::TaskRecord* t = state_.FindTask(key.first, key.second);
        if (!IsTerminalState(t->task().state())) {
          return Kill(key, v1::TaskStatus::REASON_AGENT_DRAINING);
        }
      }
      e.mutable_agent_drained()->mutable_agent_id()->set_value(id);
      return e;
    }
    std::vector<std::string> ids = Agents([](const AgentRecord& a) {
      return a.state() != AgentRecord::REMOVED &&
             a.drain_info().state() != v1::DRAINED;
    });
    if (ids.empty()) return std::nullopt;
    auto* drain = e.mutable_agent_drain_started();
    drain->mutable_agent_id()->set_value(rng_.Pick(ids));
    drain->mutable_config()->mutable_max_grace_period()->set_nanoseconds(
        int64_t(rng_.Uniform(10)) * 1000000000);
    return e;
  }

  Event Kill(const TaskKey& key, v1::TaskStatus::Reason reason) {
    Event e;
    auto* u = e.mutable_task_status_updated();
    u->mutable_framework_id()->set_value(key.first);
    u->mutable_status()->mutable_task_id()->set_value(key.second);
    u->mutable_status()->set_state(v1::TASK_KILLED);
    u->mutable_status()->set_source(v1::TaskStatus::SOURCE_MASTER);
    u->mutable_status()->set_reason(reason);
    return e;
  }

  v1::FrameworkInfo RandomInfo(const std::string& id,
                               const std::string& principal) {
    v1::FrameworkInfo info;
    info.mutable_id()->set_value(id);
    info.set_user("nobody");
    info.set_name(id);
    info.set_principal(principal);
    info.set_failover_timeout(double(rng_.Uniform(3600)));
    info.set_checkpoint(rng_.Chance(50));
    if (rng_.Chance(50)) {
      info.add_roles("web");
      if (rng_.Chance(50)) info.add_roles("batch");
    } else {
      info.add_roles("batch");
    }
    if (rng_.Chance(50)) {
      info.add_capabilities()->set_type(
          v1::FrameworkInfo::Capability::PARTITION_AWARE);
    }
    return info;
  }

  std::optional<Event> Subscribe() {
    if (state_.FrameworkIds().size() >= 8) return std::nullopt;
    Event e;
    std::string id = absl::StrCat("fw-", next_id_++);
    *e.mutable_framework_subscribed()->mutable_info() =
        RandomInfo(id, "p-" + id);
    return e;
  }

  std::optional<Event> FrameworkTransition() {
    Event e;
    switch (rng_.Uniform(5)) {
      case 0: {
        std::vector<std::string> ids = Frameworks([](const FrameworkRecord& f) {
          return f.state() != FrameworkRecord::COMPLETED;
        });
        if (ids.empty()) return std::nullopt;
        const std::string& id = rng_.Pick(ids);
        *e.mutable_framework_failed_over()->mutable_info() =
            RandomInfo(id, "p-" + id);
        return e;
      }
      case 1: {
        std::vector<std::string> ids = Frameworks([](const FrameworkRecord& f) {
          return f.state() == FrameworkRecord::CONNECTED ||
                 f.state() == FrameworkRecord::INACTIVE;
        });
        if (ids.empty()) return std::nullopt;
        e.mutable_framework_disconnected()->mutable_framework_id()->set_value(
            rng_.Pick(ids));
        return e;
      }
      case 2: {
        std::vector<std::string> ids = Frameworks([](const FrameworkRecord& f) {
          return f.state() == FrameworkRecord::CONNECTED;
        });
        if (ids.empty()) return std::nullopt;
        e.mutable_framework_deactivated()->mutable_framework_id()->set_value(
            rng_.Pick(ids));
        return e;
      }
      case 3: {
        std::vector<std::string> ids = Frameworks([](const FrameworkRecord& f) {
          return f.state() != FrameworkRecord::COMPLETED;
        });
        if (ids.empty()) return std::nullopt;
        const std::string& id = rng_.Pick(ids);
        *e.mutable_framework_updated()->mutable_info() =
            RandomInfo(id, "p-" + id);
        return e;
      }
      default: {
        if (!rng_.Chance(40)) return std::nullopt;
        std::vector<std::string> ids = Frameworks([](const FrameworkRecord& f) {
          return f.state() != FrameworkRecord::COMPLETED;
        });
        if (ids.empty()) return std::nullopt;
        const std::string& id = rng_.Pick(ids);
        for (const TaskKey& key : state_.TasksOfFramework(id)) {
          const v1::TaskRecord* t = state_.FindTask(key.first, key.second);
          if (!IsTerminalState(t->task().state())) {
            return Kill(key, v1::TaskStatus::REASON_FRAMEWORK_REMOVED);
          }
        }
        e.mutable_framework_removed()->mutable_framework_id()->set_value(id);
        e.mutable_framework_removed()->set_reason("teardown");
        return e;
      }
    }
  }

  std::optional<Event> CreateOffers() {
    std::vector<std::string> frameworks =
        Frameworks([](const FrameworkRecord& f) {
          return f.state() == FrameworkRecord::CONNECTED;
        });
    std::vector<std::string> agents;
    for (const auto& id : state_.AgentIds()) {
      if (state_.IsAgentOfferable(id)) agents.push_back(id);
    }
    if (frameworks.empty() || agents.empty()) return std::nullopt;
    Event e;
    e.mutable_offers_created()->set_allocation_cycle(next_id_++);
    std::map<std::string, Resources> left;
    int count = 1 + int(rng_.Uniform(4));
    for (int i = 0; i < count; ++i) {
      const std::string& agent = rng_.Pick(agents);
      const std::string& framework = rng_.Pick(frameworks);
      const v1::FrameworkInfo& info = state_.FindFramework(framework)->info();
      std::string role = info.roles(int(rng_.Uniform(info.roles_size())));
      if (left.count(agent) == 0) {
        left[agent] = *state_.AvailableResources(agent);
      }
      Resources take = TakeSome(Usable(left[agent], role));
      if (take.empty()) continue;
      left[agent] -= take;
      v1::Offer* offer = e.mutable_offers_created()->add_offers();
      offer->mutable_id()->set_value(absl::StrCat("offer-", next_id_++));
      offer->mutable_framework_id()->set_value(framework);
      offer->mutable_agent_id()->set_value(agent);
      offer->set_hostname(agent + ".example");
      offer->mutable_allocation_info()->set_role(role);
      take.AllocatedTo(role).ToProto(offer->mutable_resources());
    }
    if (e.offers_created().offers_size() == 0) return std::nullopt;
    return e;
  }

  v1::TaskInfo NewTask(const std::string& agent, const Resources& resources) {
    v1::TaskInfo task;
    std::string id = absl::StrCat("task-", next_id_++);
    task.set_name(id);
    task.mutable_task_id()->set_value(id);
    task.mutable_agent_id()->set_value(agent);
    task.mutable_command()->set_value("sleep 100");
    resources.ToProto(task.mutable_resources());
    return task;
  }

  std::optional<Event> LaunchFromOffer() {
    std::vector<std::string> offers = OfferIds();
    if (offers.empty()) return std::nullopt;
    const v1::Offer& offer = state_.FindOffer(rng_.Pick(offers))->offer();
    Event e;
    auto* launch = e.mutable_tasks_launched();
    *launch->mutable_framework_id() = offer.framework_id();
    *launch->add_offer_ids() = offer.id();
    // Sometimes a second offer of the same framework on the same agent.
    for (const auto& other :
         state_.OffersOfFramework(offer.framework_id().value())) {
      const v1::Offer& o = state_.FindOffer(other)->offer();
      if (other != offer.id().value() &&
          o.agent_id().value() == offer.agent_id().value() && rng_.Chance(50)) {
        *launch->add_offer_ids() = o.id();
        break;
      }
    }
    Resources pool;
    for (const auto& id : launch->offer_ids()) {
      pool += *Resources::FromProto(
          state_.FindOffer(id.value())->offer().resources());
    }
    int tasks = 1 + int(rng_.Uniform(2));
    for (int i = 0; i < tasks && !pool.empty(); ++i) {
      Resources take = TakeSome(pool);
      pool -= take;
      *launch->add_tasks() = NewTask(offer.agent_id().value(), take);
    }
    // Sometimes the tasks run in one executor with resources of its own
    // (used once on the agent however many of its tasks run): a new one,
    // or one this framework already runs tasks in on the agent.
    if (launch->tasks_size() > 0 && rng_.Chance(30)) {
      const std::string& framework = offer.framework_id().value();
      const std::string& agent = offer.agent_id().value();
      std::optional<v1::ExecutorInfo> executor;
      auto known = executors_.find({framework, agent});
      // (Reused only while it runs tasks: otherwise its resources would
      // have to come from this launch's offers again.)
      if (known != executors_.end() &&
          state_.ExecutorHasLiveTasks(agent, framework,
                                      known->second.executor_id().value()) &&
          rng_.Chance(70)) {
        executor = known->second;
      } else {
        Resources own = TakeSome(pool);
        if (!own.empty()) {
          v1::ExecutorInfo info;
          info.mutable_executor_id()->set_value(
              absl::StrCat("exec-", next_id_++));
          info.mutable_command()->set_value("run-executor");
          own.ToProto(info.mutable_resources());
          executors_[{framework, agent}] = info;
          executor = info;
        }
      }
      if (executor.has_value()) {
        for (v1::TaskInfo& task : *launch->mutable_tasks()) {
          task.clear_command();
          *task.mutable_executor() = *executor;
        }
      }
    }
    return e;
  }

  std::optional<Event> LaunchWithoutOffer() {
    std::vector<std::string> frameworks =
        Frameworks([](const FrameworkRecord& f) {
          return f.state() == FrameworkRecord::CONNECTED;
        });
    std::vector<std::string> agents = Agents([](const AgentRecord& a) {
      return a.state() == AgentRecord::ACTIVE && !a.has_drain_info();
    });
    if (frameworks.empty() || agents.empty()) return std::nullopt;
    const std::string& framework = rng_.Pick(frameworks);
    const std::string& agent = rng_.Pick(agents);
    std::string role = state_.FindFramework(framework)->info().roles(0);
    Resources take = TakeSome(Usable(*state_.AvailableResources(agent), role));
    if (take.empty()) return std::nullopt;
    Event e;
    auto* launch = e.mutable_tasks_launched();
    launch->mutable_framework_id()->set_value(framework);
    *launch->add_tasks() = NewTask(agent, take.AllocatedTo(role));
    return e;
  }

  std::optional<Event> UpdateStatus() {
    std::vector<TaskKey> tasks = LiveTasks();
    if (tasks.empty()) return std::nullopt;
    static const std::vector<v1::TaskState> kStates = {
        v1::TASK_STARTING, v1::TASK_RUNNING,          v1::TASK_RUNNING,
        v1::TASK_RUNNING,  v1::TASK_KILLING,          v1::TASK_FINISHED,
        v1::TASK_FAILED,   v1::TASK_KILLED,           v1::TASK_LOST,
        v1::TASK_ERROR,    v1::TASK_DROPPED,          v1::TASK_UNREACHABLE,
        v1::TASK_GONE,     v1::TASK_GONE_BY_OPERATOR, v1::TASK_UNKNOWN};
    static const std::vector<v1::TaskStatus::Reason> kReasons = {
        v1::TaskStatus::REASON_COMMAND_EXECUTOR_FAILED,
        v1::TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY,
        v1::TaskStatus::REASON_AGENT_REMOVED,
        v1::TaskStatus::REASON_RECONCILIATION,
        v1::TaskStatus::REASON_TASK_HEALTH_CHECK_STATUS_UPDATED};
    const TaskKey& key = rng_.Pick(tasks);
    Event e;
    auto* u = e.mutable_task_status_updated();
    u->mutable_framework_id()->set_value(key.first);
    v1::TaskStatus* s = u->mutable_status();
    s->mutable_task_id()->set_value(key.second);
    s->set_state(rng_.Pick(kStates));
    s->set_source(v1::TaskStatus::Source(rng_.Uniform(3)));
    if (rng_.Chance(50)) s->set_reason(rng_.Pick(kReasons));
    if (rng_.Chance(70)) s->set_uuid(absl::StrCat("uuid-", next_id_++));
    s->set_timestamp(double(next_id_));
    if (rng_.Chance(20)) s->set_healthy(rng_.Chance(50));
    return e;
  }

  std::optional<Event> Acknowledge() {
    std::vector<TaskKey> pending;
    for (const TaskKey& key : LiveTasks(/*running_only=*/false)) {
      if (state_.FindTask(key.first, key.second)->unacknowledged_size() > 0) {
        pending.push_back(key);
      }
    }
    if (pending.empty()) return std::nullopt;
    const TaskKey& key = rng_.Pick(pending);
    const v1::TaskRecord* t = state_.FindTask(key.first, key.second);
    Event e;
    auto* a = e.mutable_task_status_acknowledged();
    a->mutable_framework_id()->set_value(key.first);
    a->mutable_task_id()->set_value(key.second);
    *a->mutable_agent_id() = t->task().agent_id();
    a->set_uuid(
        t->unacknowledged(int(rng_.Uniform(t->unacknowledged_size()))).uuid());
    return e;
  }

  std::optional<Event> RemoveOffers() {
    std::vector<std::string> offers = OfferIds();
    if (offers.empty()) return std::nullopt;
    const v1::Offer& offer = state_.FindOffer(rng_.Pick(offers))->offer();
    Event e;
    switch (rng_.Uniform(3)) {
      case 0:
        *e.mutable_offers_rescinded()->add_offer_ids() = offer.id();
        break;
      case 1:
        *e.mutable_offers_declined()->mutable_framework_id() =
            offer.framework_id();
        *e.mutable_offers_declined()->add_offer_ids() = offer.id();
        e.mutable_offers_declined()->mutable_filters()->set_refuse_seconds(
            double(rng_.Uniform(10)));
        break;
      default:
        for (const auto& id : offers) {
          if (id == offer.id().value() || rng_.Chance(30)) {
            e.mutable_offers_expired()->add_offer_ids()->set_value(id);
          }
        }
        break;
    }
    return e;
  }

  std::optional<Event> Reserve() {
    std::vector<std::string> agents = Agents(
        [](const AgentRecord& a) { return a.state() == AgentRecord::ACTIVE; });
    if (agents.empty()) return std::nullopt;
    const std::string& agent = rng_.Pick(agents);
    Resources take = TakeSome(state_.AvailableResources(agent)->Unreserved());
    if (take.empty()) return std::nullopt;
    Event e;
    auto* r = e.mutable_resources_reserved();
    r->mutable_agent_id()->set_value(agent);
    std::string role = Role();
    for (v1::Resource res : take.ToProto()) {
      auto* info = res.add_reservations();
      info->set_type(v1::Resource::ReservationInfo::DYNAMIC);
      info->set_role(role);
      info->set_principal("ops");
      *r->add_resources() = res;
    }
    return e;
  }

  std::optional<Event> Unreserve() {
    std::vector<std::string> agents = Agents(
        [](const AgentRecord& a) { return a.state() == AgentRecord::ACTIVE; });
    if (agents.empty()) return std::nullopt;
    const std::string& agent = rng_.Pick(agents);
    Resources dynamic;
    for (const v1::Resource& r : state_.AvailableResources(agent)->ToProto()) {
      if (r.reservations_size() > 0 &&
          r.reservations(r.reservations_size() - 1).type() ==
              v1::Resource::ReservationInfo::DYNAMIC) {
        dynamic += *Resources::FromProto(r);
      }
    }
    if (dynamic.empty()) return std::nullopt;
    Event e;
    e.mutable_resources_unreserved()->mutable_agent_id()->set_value(agent);
    TakeSome(dynamic).ToProto(
        e.mutable_resources_unreserved()->mutable_resources());
    return e;
  }

  std::optional<Event> RolesAndQuota() {
    Event e;
    if (rng_.Chance(50)) {
      auto* w = e.mutable_weights_updated()->add_weights();
      w->set_role(Role());
      w->set_weight(double(1 + rng_.Uniform(5)) / 2);
    } else {
      auto* q = e.mutable_quota_updated()->add_configs();
      q->set_role(Role());
      if (rng_.Chance(75)) {
        double guarantee = double(rng_.Uniform(10));
        (*q->mutable_guarantees())["cpus"].set_value(guarantee);
        (*q->mutable_limits())["cpus"].set_value(guarantee +
                                                 double(rng_.Uniform(10)));
        (*q->mutable_limits())["mem"].set_value(double(rng_.Uniform(4096)));
      }
    }
    return e;
  }

  std::optional<Event> Maintenance() {
    Event e;
    auto* schedule =
        e.mutable_maintenance_schedule_updated()->mutable_schedule();
    for (const auto& id : state_.AgentIds()) {
      if (!rng_.Chance(20)) continue;
      auto* window = schedule->add_windows();
      window->add_machine_ids()->set_hostname(id + ".example");
      window->mutable_unavailability()->mutable_start()->set_nanoseconds(
          int64_t(rng_.Uniform(1000000)));
      window->mutable_unavailability()->mutable_duration()->set_nanoseconds(
          3600LL * 1000000000);
    }
    return e;
  }

  Rng& rng_;
  const MasterState& state_;
  uint64_t next_id_ = 1;
  // The last executor made for a (framework, agent), to launch into again.
  std::map<std::pair<std::string, std::string>, v1::ExecutorInfo> executors_;
};

// Runs one sequence; returns a description of the first failure, or "".
std::string RunSequence(uint64_t seed, int* rejected_invalid) {
  Rng rng(seed);
  MasterState state;
  EventGenerator generator(&rng, &state);
  std::vector<Event> applied;
  std::map<size_t, v1::MasterSnapshot> cuts;  // events applied -> snapshot
  std::set<size_t> cut_points;
  for (int i = 0; i < kCutsPerSequence; ++i) {
    cut_points.insert(rng.Uniform(kEventsPerSequence + 1));
  }
  cut_points.insert(0);

  uint64_t position = 0;
  uint32_t index = 0;
  int64_t now_ns = 1700000000LL * 1000000000;
  int attempts = 0;
  while (applied.size() < size_t(kEventsPerSequence) &&
         attempts++ < kEventsPerSequence * 20) {
    if (cut_points.count(applied.size()) > 0 &&
        cuts.count(applied.size()) == 0) {
      cuts[applied.size()] = state.ToSnapshot();
    }
    // A new log entry (batch) now and then.
    if (position == 0 || rng.Chance(40)) {
      ++position;
      index = 0;
      now_ns += int64_t(rng.Uniform(5000)) * 1000000;
    }
    bool invalid = rng.Chance(5);
    std::optional<Event> event =
        invalid ? generator.Invalid() : generator.NextValid();
    if (!event.has_value()) continue;
    event->set_position(position);
    event->set_index(index);
    event->mutable_time()->set_nanoseconds(now_ns);
    event->set_principal("random");
    event->set_request_id(absl::StrCat("req-", attempts));
    if (!applied.empty() && rng.Chance(50)) {
      event->mutable_cause()->set_position(applied.back().position());
      event->mutable_cause()->set_index(applied.back().index());
    }

    std::string before = invalid ? state.SerializeCanonical() : "";
    absl::Status status = state.Apply(*event);
    if (invalid) {
      MasterState copy = state;
      Event moved = *event;
      absl::Status moved_status = copy.Apply(std::move(moved));
      if (moved_status != status ||
          moved.SerializeAsString() != event->SerializeAsString()) {
        return absl::StrCat("Apply(Event&&) of a rejected event got ",
                            moved_status.ToString(), " or changed it:\n",
                            event->DebugString());
      }
      if (status.code() != absl::StatusCode::kFailedPrecondition &&
          status.code() != absl::StatusCode::kInvalidArgument) {
        return absl::StrCat("invalid event got ", status.ToString(), ":\n",
                            event->DebugString());
      }
      if (state.SerializeCanonical() != before) {
        return absl::StrCat("rejected event changed the state:\n",
                            event->DebugString());
      }
      ++*rejected_invalid;
      continue;
    }
    if (!status.ok()) {
      return absl::StrCat("valid event #", applied.size(),
                          " rejected: ", status.ToString(), "\n",
                          event->DebugString());
    }
    ++index;
    applied.push_back(*event);
    if (absl::Status s = state.CheckInvariants(); !s.ok()) {
      return absl::StrCat("after event #", applied.size() - 1, ": ",
                          s.ToString(), "\n", event->DebugString());
    }
  }
  if (cut_points.count(applied.size()) > 0) {
    cuts[applied.size()] = state.ToSnapshot();
  }

  const std::string live = state.SerializeCanonical();
  for (const auto& [cut, snapshot] : cuts) {
    absl::StatusOr<MasterState> restored = MasterState::FromSnapshot(snapshot);
    if (!restored.ok()) {
      return absl::StrCat("FromSnapshot at cut ", cut, ": ",
                          restored.status().ToString());
    }
    for (size_t i = cut; i < applied.size(); ++i) {
      if (absl::Status s = restored->Apply(applied[i]); !s.ok()) {
        return absl::StrCat("replay from cut ", cut, " rejected event #", i,
                            ": ", s.ToString());
      }
    }
    if (restored->SerializeCanonical() != live) {
      return absl::StrCat("snapshot at ", cut, " + replay differs from live");
    }
  }
  MasterState again;
  for (const Event& e : applied) {
    if (absl::Status s = again.Apply(e); !s.ok()) {
      return absl::StrCat("second fold rejected: ", s.ToString());
    }
  }
  if (again.SerializeCanonical() != live) return "second fold differs";
  MasterState moved;
  for (Event e : applied) {
    if (absl::Status s = moved.Apply(std::move(e)); !s.ok()) {
      return absl::StrCat("fold of moved events rejected: ", s.ToString());
    }
  }
  if (moved.SerializeCanonical() != live) return "fold of moved events differs";
  if (applied.size() < size_t(kEventsPerSequence) / 2) {
    return absl::StrCat("generator stalled after ", applied.size(), " events");
  }
  return "";
}

TEST(MasterStateRandomTest, SnapshotPlusReplayEqualsLiveFold) {
  std::printf("base seed %llu, %d sequences of %d events\n",
              static_cast<unsigned long long>(g_base_seed), g_sequences,
              kEventsPerSequence);
  int rejected_invalid = 0;
  for (int k = 0; k < g_sequences; ++k) {
    uint64_t seed = g_base_seed + uint64_t(k);
    std::string failure = RunSequence(seed, &rejected_invalid);
    ASSERT_EQ(failure, "") << "seed " << seed << "; replay with:\n"
                           << "  bazel run //master:state_random_test -- "
                           << "--seed=" << seed << " --sequences=1";
  }
  std::printf("%d invalid events rejected without change\n", rejected_invalid);
  EXPECT_GT(rejected_invalid, 0);
}

}  // namespace
}  // namespace cairn::master

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (const char* env = std::getenv("CAIRN_SEED"); env != nullptr) {
    if (!absl::SimpleAtoi(env, &cairn::master::g_base_seed)) {
      std::fprintf(stderr, "bad CAIRN_SEED '%s'\n", env);
      return 2;
    }
  }
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    bool ok = true;
    if (absl::ConsumePrefix(&arg, "--seed=")) {
      ok = absl::SimpleAtoi(arg, &cairn::master::g_base_seed);
    } else if (absl::ConsumePrefix(&arg, "--sequences=")) {
      ok = absl::SimpleAtoi(arg, &cairn::master::g_sequences);
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "unknown or bad flag '%s'\n", argv[i]);
      return 2;
    }
  }
  return RUN_ALL_TESTS();
}
