#include "master/allocator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <utility>

#include "absl/status/statusor.h"
#include "master/internal/drf_sorter.h"

namespace cairn::master {

using internal::DrfSorter;
using internal::ScalarVec;

namespace {

// Scalars are fixed point with 3 decimals; anything below this is zero.
constexpr double kEpsilon = 1e-6;
constexpr double kInfinity = std::numeric_limits<double>::infinity();

// Rounds down to Mesos's fixed point, so a clipped amount never exceeds its
// cap.
double FloorMilli(double value) {
  if (value <= 0) return 0;
  return std::floor(value * 1000 + 1e-6) / 1000;
}

bool HasCapability(const v1::FrameworkInfo& info,
                   v1::FrameworkInfo::Capability::Type type) {
  for (const auto& capability : info.capabilities()) {
    if (capability.type() == type) return true;
  }
  return false;
}

// The role an allocated resource list counts for: its allocation info, else
// the framework's only role.
std::string AllocationRole(
    const google::protobuf::RepeatedPtrField<v1::Resource>& resources,
    const std::set<std::string>& framework_roles) {
  for (const auto& r : resources) {
    if (r.has_allocation_info()) return r.allocation_info().role();
  }
  return framework_roles.empty() ? "*" : *framework_roles.begin();
}

// Interned scalar resource names of one cycle.
class Names {
 public:
  int Intern(const std::string& name) {
    auto [it, inserted] = index_.emplace(name, static_cast<int>(names_.size()));
    if (inserted) names_.push_back(name);
    return it->second;
  }
  // -1 if unknown.
  int Find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? -1 : it->second;
  }
  size_t size() const { return names_.size(); }

 private:
  std::map<std::string, int> index_;
  std::vector<std::string> names_;
};

}  // namespace

// ---- Public helpers ---------------------------------------------------------

std::set<std::string> SubscribedRoles(const v1::FrameworkInfo& info) {
  if (info.roles_size() > 0) {
    return std::set<std::string>(info.roles().begin(), info.roles().end());
  }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  return {info.role()};
#pragma GCC diagnostic pop
}

bool RoleCovers(const std::string& ancestor, const std::string& role) {
  if (role.size() < ancestor.size()) return false;
  if (role.compare(0, ancestor.size(), ancestor) != 0) return false;
  return role.size() == ancestor.size() || role[ancestor.size()] == '/';
}

v1::Offer MakeOffer(const MasterState& state, const Allocation& allocation,
                    const std::string& offer_id) {
  v1::Offer offer;
  offer.mutable_id()->set_value(offer_id);
  offer.mutable_framework_id()->set_value(allocation.framework_id);
  offer.mutable_agent_id()->set_value(allocation.agent_id);
  offer.mutable_allocation_info()->set_role(allocation.role);
  if (const v1::AgentRecord* agent = state.FindAgent(allocation.agent_id)) {
    offer.set_hostname(agent->info().hostname());
    *offer.mutable_attributes() = agent->info().attributes();
    if (agent->info().has_domain()) {
      *offer.mutable_domain() = agent->info().domain();
    }
  }
  allocation.resources.AllocatedTo(allocation.role)
      .ToProto(offer.mutable_resources());
  return offer;
}

// ---- The cycle --------------------------------------------------------------

class Allocator::Cycle {
 public:
  Cycle(Allocator* allocator, const MasterState& state, absl::Time now)
      : allocator_(*allocator), state_(state), now_(now) {}

  // Reads the state; then Run() allocates on `agents` (nullptr: all).
  void Load();
  std::vector<Allocation> Run(const std::vector<std::string>* agent_ids);

 private:
  // One canonical resource group available on an agent.
  struct Item {
    v1::Resource resource;
    std::string reservation_role;  // "" when unreserved
    bool refined = false;
    bool revocable = false;
    int name = -1;       // scalar name index, -1 for ranges and sets
    double amount = 0;   // scalars: what is left
    bool taken = false;  // ranges and sets: already offered this cycle
  };
  struct AgentView {
    std::string id;
    std::vector<Item> items;
    bool has_gpus = false;
  };
  struct QuotaRole {
    std::string role;
    std::vector<bool> has_guarantee, has_limit;
    ScalarVec guarantee, limit;
    // Consumption: allocated (tasks + offers) over the role's subtree, plus
    // unallocated reservations to the subtree (what guarantees and limits
    // count, as in Mesos); `allocated` without the reservations.
    ScalarVec consumed, allocated;
    // Guarantees on a name that no ancestor quota role also guarantees:
    // these sum to the required headroom.
    std::vector<bool> outermost;
    bool any_guarantee = false;
  };
  struct Candidate {
    std::string framework_id;
    std::string role;
    int client = -1;
    bool revocable = false;
    bool refinement = false;
    bool gpus = false;
    bool suppressed = false;
    const std::map<std::string, std::vector<Filter>>* filters = nullptr;
    const v1::OfferFilters* offer_filters = nullptr;
    std::vector<QuotaRole*> chain;  // quota roles covering `role`
    uint64_t stamp = 0;
  };
  struct Take {
    int item;
    double amount;
  };

  void LoadAgents();
  void LoadFrameworks();
  void LoadQuota();
  void RecomputeRequiredHeadroom();
  ScalarVec Zero() const { return ScalarVec(names_.size(), 0); }
  void AddScalars(const google::protobuf::RepeatedPtrField<v1::Resource>& rs,
                  ScalarVec* into);

  void AllocateAgent(int agent, bool stage1);
  bool ChainHasUnmetGuarantee(const Candidate& c) const;
  bool RelevantForStage1(const std::string& path) const;
  bool AgentUsable(const AgentView& agent, const std::string& path,
                   bool stage1) const;
  // What `c` would get on `agent`; empty if nothing allocatable.
  std::vector<Take> Propose(const Candidate& c, const AgentView& agent,
                            bool stage1) const;
  bool MinAllocatable(const Candidate& c, const ScalarVec& quantities) const;
  bool Filtered(const Candidate& c, const AgentView& agent,
                const std::vector<Take>& takes) const;
  google::protobuf::RepeatedPtrField<v1::Resource> ToResources(
      const AgentView& agent, const std::vector<Take>& takes) const;
  void Commit(Candidate* c, int agent, const std::vector<Take>& takes);

  Allocator& allocator_;
  const MasterState& state_;
  const absl::Time now_;

  Names names_;
  std::vector<AgentView> agents_;  // offerable agents, by id
  std::map<std::string, int> agent_index_;
  ScalarVec totals_;
  ScalarVec available_unreserved_;  // over all offerable agents
  std::map<std::string, ScalarVec> unallocated_reserved_;  // by role
  std::map<std::string, ScalarVec> role_allocation_;       // tasks + offers
  std::vector<std::unique_ptr<QuotaRole>> quota_;
  std::vector<const QuotaRole*> guarantee_roles_;
  ScalarVec required_headroom_;
  std::unique_ptr<DrfSorter> sorter_;
  std::vector<Candidate> candidates_;  // by sorter client index
  uint64_t stamp_ = 0;
  std::vector<Allocation> result_;
  // (client, agent index) -> index in result_.
  std::map<std::pair<int, int>, int> offer_index_;
};

void Allocator::Cycle::AddScalars(
    const google::protobuf::RepeatedPtrField<v1::Resource>& rs,
    ScalarVec* into) {
  for (const auto& r : rs) {
    if (r.type() != v1::MesosValue::SCALAR) continue;
    int name = names_.Find(r.name());
    if (name >= 0) (*into)[name] += r.scalar().value();
  }
}

void Allocator::Cycle::Load() {
  LoadAgents();
  LoadFrameworks();
  LoadQuota();
}

void Allocator::Cycle::LoadAgents() {
  // Pass 1: intern names, collect available items of offerable agents.
  std::vector<const v1::AgentRecord*> active;
  for (const std::string& id : state_.AgentIds()) {
    const v1::AgentRecord* record = state_.FindAgent(id);
    if (record == nullptr || record->state() != v1::AgentRecord::ACTIVE) {
      continue;
    }
    active.push_back(record);
    for (const auto& r : record->total_resources()) {
      if (r.type() == v1::MesosValue::SCALAR) names_.Intern(r.name());
    }
    if (!state_.IsAgentOfferable(id)) continue;
    absl::StatusOr<Resources> available = state_.AvailableResources(id);
    if (!available.ok()) continue;
    AgentView view;
    view.id = id;
    for (v1::Resource& r : available->ToProto()) {
      Item item;
      if (r.reservations_size() > 0) {
        item.reservation_role =
            r.reservations(r.reservations_size() - 1).role();
        item.refined = r.reservations_size() > 1;
      }
      item.revocable = r.has_revocable();
      if (r.type() == v1::MesosValue::SCALAR) {
        item.name = names_.Intern(r.name());
        item.amount = r.scalar().value();
        if (r.name() == "gpus" && item.amount > 0) view.has_gpus = true;
      }
      item.resource = std::move(r);
      view.items.push_back(std::move(item));
    }
    agent_index_[id] = static_cast<int>(agents_.size());
    agents_.push_back(std::move(view));
  }
  for (const auto& [role, config] : state_.quotas()) {
    for (const auto& [name, value] : config.guarantees()) names_.Intern(name);
    for (const auto& [name, value] : config.limits()) names_.Intern(name);
  }

  // Pass 2: sums.
  totals_ = Zero();
  available_unreserved_ = Zero();
  for (const v1::AgentRecord* record : active) {
    AddScalars(record->total_resources(), &totals_);
  }
  for (const AgentView& agent : agents_) {
    for (const Item& item : agent.items) {
      if (item.name < 0 || item.revocable) continue;
      if (item.reservation_role.empty()) {
        available_unreserved_[item.name] += item.amount;
      } else {
        auto [it, inserted] =
            unallocated_reserved_.try_emplace(item.reservation_role, Zero());
        it->second[item.name] += item.amount;
      }
    }
  }
}

void Allocator::Cycle::LoadFrameworks() {
  sorter_ = std::make_unique<DrfSorter>(totals_, state_.weights());
  for (const std::string& id : state_.FrameworkIds()) {
    const v1::FrameworkRecord* record = state_.FindFramework(id);
    if (record == nullptr ||
        record->state() == v1::FrameworkRecord::COMPLETED) {
      continue;
    }
    const v1::FrameworkInfo& info = record->info();
    std::set<std::string> roles = SubscribedRoles(info);

    // What the framework holds, by role: outstanding offers and live tasks.
    std::map<std::string, ScalarVec> held;
    auto holding = [&](const std::string& role) -> ScalarVec& {
      return held.try_emplace(role, Zero()).first->second;
    };
    for (const std::string& offer_id : state_.OffersOfFramework(id)) {
      const v1::OfferRecord* offer = state_.FindOffer(offer_id);
      if (offer == nullptr) continue;
      std::string role =
          offer->offer().has_allocation_info()
              ? offer->offer().allocation_info().role()
              : AllocationRole(offer->offer().resources(), roles);
      AddScalars(offer->offer().resources(), &holding(role));
    }
    // An executor's own resources count once per agent, however many of
    // its tasks run there.
    std::set<std::pair<std::string, std::string>> executors;
    for (const TaskKey& key : state_.TasksOfFramework(id)) {
      const v1::TaskRecord* task = state_.FindTask(key.first, key.second);
      if (task == nullptr || IsTerminalState(task->task().state())) continue;
      const v1::TaskInfo& task_info = task->info();
      ScalarVec& into = holding(AllocationRole(task_info.resources(), roles));
      AddScalars(task_info.resources(), &into);
      if (task_info.has_executor() &&
          executors
              .emplace(task->task().agent_id().value(),
                       task_info.executor().executor_id().value())
              .second) {
        AddScalars(task_info.executor().resources(), &into);
      }
    }
    for (const auto& [role, quantities] : held) {
      auto [it, inserted] = role_allocation_.try_emplace(role, Zero());
      for (size_t i = 0; i < quantities.size(); ++i) {
        it->second[i] += quantities[i];
      }
    }

    const bool connected = record->state() == v1::FrameworkRecord::CONNECTED;
    auto filters = allocator_.filters_.find(id);
    auto suppressed = allocator_.suppressed_.find(id);
    for (const std::string& role : roles) {
      if (!connected) break;
      Candidate c;
      c.framework_id = id;
      c.role = role;
      c.client = sorter_->AddClient(role, id);
      c.revocable = HasCapability(
          info, v1::FrameworkInfo::Capability::REVOCABLE_RESOURCES);
      c.refinement = HasCapability(
          info, v1::FrameworkInfo::Capability::RESERVATION_REFINEMENT);
      c.gpus =
          HasCapability(info, v1::FrameworkInfo::Capability::GPU_RESOURCES);
      c.suppressed = suppressed != allocator_.suppressed_.end() &&
                     suppressed->second.count(role) > 0;
      if (filters != allocator_.filters_.end()) {
        auto by_role = filters->second.find(role);
        if (by_role != filters->second.end()) c.filters = &by_role->second;
      }
      auto offer_filters = info.offer_filters().find(role);
      if (offer_filters != info.offer_filters().end() &&
          offer_filters->second.has_min_allocatable_resources()) {
        c.offer_filters = &offer_filters->second;
      }
      auto it = held.find(role);
      if (it != held.end()) {
        sorter_->AddAllocation(c.client, role, it->second);
        held.erase(it);
      }
      candidates_.push_back(std::move(c));
    }
    // Held in roles it no longer (or, disconnected, not now) competes in.
    for (const auto& [role, quantities] : held) {
      sorter_->AddAllocation(-1, role, quantities);
    }
  }
  sorter_->Finalize();
}

void Allocator::Cycle::LoadQuota() {
  const size_t n = names_.size();
  for (const auto& [role, config] : state_.quotas()) {
    auto q = std::make_unique<QuotaRole>();
    q->role = role;
    q->has_guarantee.assign(n, false);
    q->has_limit.assign(n, false);
    q->guarantee = Zero();
    q->limit.assign(n, kInfinity);
    q->consumed = Zero();
    q->allocated = Zero();
    q->outermost.assign(n, false);
    for (const auto& [name, value] : config.guarantees()) {
      int i = names_.Find(name);
      if (value.value() <= 0) continue;
      q->has_guarantee[i] = true;
      q->guarantee[i] = value.value();
      q->any_guarantee = true;
    }
    for (const auto& [name, value] : config.limits()) {
      int i = names_.Find(name);
      q->has_limit[i] = true;
      q->limit[i] = value.value();
    }
    for (const auto& [held_role, quantities] : role_allocation_) {
      if (!RoleCovers(role, held_role)) continue;
      for (size_t i = 0; i < n; ++i) {
        q->consumed[i] += quantities[i];
        q->allocated[i] += quantities[i];
      }
    }
    for (const auto& [reserved_role, quantities] : unallocated_reserved_) {
      if (!RoleCovers(role, reserved_role)) continue;
      for (size_t i = 0; i < n; ++i) q->consumed[i] += quantities[i];
    }
    quota_.push_back(std::move(q));
  }
  for (auto& q : quota_) {
    for (size_t i = 0; i < n; ++i) {
      if (!q->has_guarantee[i]) continue;
      bool outermost = true;
      for (const auto& other : quota_) {
        if (other != q && other->has_guarantee[i] &&
            RoleCovers(other->role, q->role)) {
          outermost = false;
        }
      }
      q->outermost[i] = outermost;
    }
    if (q->any_guarantee) guarantee_roles_.push_back(q.get());
  }
  RecomputeRequiredHeadroom();
  for (Candidate& c : candidates_) {
    for (auto& q : quota_) {
      if (RoleCovers(q->role, c.role)) c.chain.push_back(q.get());
    }
    std::sort(c.chain.begin(), c.chain.end(),
              [](const QuotaRole* a, const QuotaRole* b) {
                return a->role.size() < b->role.size();
              });
  }
}

void Allocator::Cycle::RecomputeRequiredHeadroom() {
  required_headroom_ = Zero();
  for (const QuotaRole* q : guarantee_roles_) {
    for (size_t i = 0; i < names_.size(); ++i) {
      if (q->outermost[i]) {
        required_headroom_[i] +=
            std::max(0.0, q->guarantee[i] - q->consumed[i]);
      }
    }
  }
}

std::vector<Allocation> Allocator::Cycle::Run(
    const std::vector<std::string>* agent_ids) {
  std::vector<int> order;
  if (agent_ids == nullptr) {
    for (size_t i = 0; i < agents_.size(); ++i) {
      order.push_back(static_cast<int>(i));
    }
  } else {
    for (const std::string& id : *agent_ids) {
      auto it = agent_index_.find(id);
      if (it != agent_index_.end()) order.push_back(it->second);
    }
    std::sort(order.begin(), order.end());
    order.erase(std::unique(order.begin(), order.end()), order.end());
  }
  if (!guarantee_roles_.empty()) {
    for (int agent : order) AllocateAgent(agent, /*stage1=*/true);
  }
  for (int agent : order) AllocateAgent(agent, /*stage1=*/false);
  return std::move(result_);
}

bool Allocator::Cycle::ChainHasUnmetGuarantee(const Candidate& c) const {
  for (const QuotaRole* q : c.chain) {
    if (!q->any_guarantee) continue;
    for (size_t i = 0; i < names_.size(); ++i) {
      if (q->has_guarantee[i] && q->consumed[i] < q->guarantee[i] - kEpsilon) {
        return true;
      }
    }
  }
  return false;
}

bool Allocator::Cycle::RelevantForStage1(const std::string& path) const {
  for (const QuotaRole* q : guarantee_roles_) {
    if (RoleCovers(q->role, path) || RoleCovers(path, q->role)) return true;
  }
  return false;
}

bool Allocator::Cycle::AgentUsable(const AgentView& agent,
                                   const std::string& path, bool stage1) const {
  if (stage1 && !RelevantForStage1(path)) return false;
  for (const Item& item : agent.items) {
    bool left = item.name >= 0 ? item.amount > kEpsilon : !item.taken;
    if (!left) continue;
    if (item.reservation_role.empty()) return true;
    if (RoleCovers(item.reservation_role, path) ||
        RoleCovers(path, item.reservation_role)) {
      return true;
    }
  }
  return false;
}

std::vector<Allocator::Cycle::Take> Allocator::Cycle::Propose(
    const Candidate& c, const AgentView& agent, bool stage1) const {
  const size_t n = names_.size();
  // Room under each chain role's limits, shrinking as items are taken:
  // for new consumption (limit - consumed), and for a reservation the role
  // already counts as consumed (limit - allocated, so allocated + offered
  // stays within the limit even when reservations alone exceed it).
  std::vector<ScalarVec> limit_room, reserved_room;
  for (const QuotaRole* q : c.chain) {
    ScalarVec room(n, kInfinity), reserved(n, kInfinity);
    for (size_t i = 0; i < n; ++i) {
      if (!q->has_limit[i]) continue;
      room[i] = q->limit[i] - q->consumed[i];
      reserved[i] = q->limit[i] - q->allocated[i];
    }
    limit_room.push_back(std::move(room));
    reserved_room.push_back(std::move(reserved));
  }
  // Unreserved room: headroom for others' unmet guarantees, and in stage 1
  // this role's unmet guarantee.
  ScalarVec unreserved_room(n, kInfinity);
  ScalarVec guarantee_room(n, kInfinity);
  std::vector<bool> guaranteed(n, false);
  for (size_t i = 0; i < n; ++i) {
    if (required_headroom_[i] > kEpsilon) {
      double own = 0;
      for (const QuotaRole* q : c.chain) {
        if (q->outermost[i]) {
          own = std::max(0.0, q->guarantee[i] - q->consumed[i]);
        }
      }
      unreserved_room[i] =
          available_unreserved_[i] - (required_headroom_[i] - own);
    }
  }
  if (stage1) {
    for (const QuotaRole* q : c.chain) {
      for (size_t i = 0; i < n; ++i) {
        if (!q->has_guarantee[i]) continue;
        double unmet = std::max(0.0, q->guarantee[i] - q->consumed[i]);
        guarantee_room[i] =
            guaranteed[i] ? std::max(guarantee_room[i], unmet) : unmet;
        guaranteed[i] = true;
      }
    }
  }

  std::vector<Take> takes;
  bool any_scalar = false;
  bool helps_guarantee = false;
  std::vector<int> non_scalars;
  for (size_t idx = 0; idx < agent.items.size(); ++idx) {
    const Item& item = agent.items[idx];
    if (item.revocable && !c.revocable) continue;
    const bool reserved = !item.reservation_role.empty();
    if (reserved) {
      if (!RoleCovers(item.reservation_role, c.role)) continue;
      if (item.refined && !c.refinement) continue;
    }
    if (item.name < 0) {
      if (!item.taken) non_scalars.push_back(static_cast<int>(idx));
      continue;
    }
    if (item.amount <= kEpsilon) continue;
    const int i = item.name;
    double cap = item.amount;
    for (size_t k = 0; k < c.chain.size(); ++k) {
      // Reservations already count for the reservation role and above.
      bool counted =
          reserved && RoleCovers(c.chain[k]->role, item.reservation_role);
      cap = std::min(cap, counted ? reserved_room[k][i] : limit_room[k][i]);
    }
    if (!reserved) {
      cap = std::min(cap, unreserved_room[i]);
      if (stage1 && guaranteed[i]) cap = std::min(cap, guarantee_room[i]);
    }
    double take = cap >= item.amount - kEpsilon ? item.amount : FloorMilli(cap);
    if (take <= kEpsilon) continue;
    takes.push_back(Take{static_cast<int>(idx), take});
    any_scalar = true;
    for (size_t k = 0; k < c.chain.size(); ++k) {
      reserved_room[k][i] -= take;
      if (!reserved || !RoleCovers(c.chain[k]->role, item.reservation_role)) {
        limit_room[k][i] -= take;
      }
    }
    if (!reserved) {
      unreserved_room[i] -= take;
      if (stage1 && guaranteed[i]) {
        if (guarantee_room[i] > kEpsilon) helps_guarantee = true;
        guarantee_room[i] -= take;
      }
    } else if (stage1) {
      helps_guarantee = true;
    }
  }
  if (stage1 && !helps_guarantee) return {};
  // Ranges and sets (ports) go along with scalars, never alone.
  if (!any_scalar) return {};
  for (int idx : non_scalars) takes.push_back(Take{idx, 0});

  ScalarVec quantities = Zero();
  for (const Take& take : takes) {
    const Item& item = agent.items[take.item];
    if (item.name >= 0) quantities[item.name] += take.amount;
  }
  if (!MinAllocatable(c, quantities)) return {};
  return takes;
}

bool Allocator::Cycle::MinAllocatable(const Candidate& c,
                                      const ScalarVec& quantities) const {
  auto satisfies = [&](const std::string& name, double value) {
    int i = names_.Find(name);
    double have = i < 0 ? 0 : quantities[i];
    return have >= value - kEpsilon;
  };
  if (c.offer_filters != nullptr) {
    const auto& sets =
        c.offer_filters->min_allocatable_resources().quantities();
    if (sets.empty()) return true;
    for (const auto& set : sets) {
      bool ok = true;
      for (const auto& [name, value] : set.quantities()) {
        ok = ok && satisfies(name, value.value());
      }
      if (ok) return true;
    }
    return false;
  }
  const auto& sets = allocator_.options_.min_allocatable_resources;
  if (sets.empty()) return true;
  for (const auto& set : sets) {
    bool ok = true;
    for (const auto& [name, value] : set) ok = ok && satisfies(name, value);
    if (ok) return true;
  }
  return false;
}

google::protobuf::RepeatedPtrField<v1::Resource> Allocator::Cycle::ToResources(
    const AgentView& agent, const std::vector<Take>& takes) const {
  google::protobuf::RepeatedPtrField<v1::Resource> out;
  for (const Take& take : takes) {
    const Item& item = agent.items[take.item];
    v1::Resource* r = out.Add();
    *r = item.resource;
    if (item.name >= 0) r->mutable_scalar()->set_value(take.amount);
  }
  return out;
}

bool Allocator::Cycle::Filtered(const Candidate& c, const AgentView& agent,
                                const std::vector<Take>& takes) const {
  if (c.filters == nullptr) return false;
  auto it = c.filters->find(agent.id);
  if (it == c.filters->end()) return false;
  std::optional<Resources> offered;
  for (const Filter& filter : it->second) {
    if (filter.expiry <= now_) continue;
    if (!offered.has_value()) {
      absl::StatusOr<Resources> r =
          Resources::FromProto(ToResources(agent, takes));
      if (!r.ok()) return false;
      offered = *std::move(r);
    }
    if (filter.resources.Contains(*offered)) return true;
  }
  return false;
}

void Allocator::Cycle::Commit(Candidate* c, int agent_index,
                              const std::vector<Take>& takes) {
  AgentView& agent = agents_[agent_index];
  absl::StatusOr<Resources> resources =
      Resources::FromProto(ToResources(agent, takes));
  // Items come from a canonical Resources, so they always parse.
  if (!resources.ok()) return;
  Resources allocated = resources->AllocatedTo(c->role);
  // Stage 2 adds to the stage-1 offer of the same (framework, role, agent).
  auto [offer, inserted] = offer_index_.try_emplace(
      {c->client, agent_index}, static_cast<int>(result_.size()));
  if (!inserted) {
    result_[offer->second].resources += allocated;
  } else {
    result_.push_back(
        Allocation{c->framework_id, agent.id, c->role, std::move(allocated)});
  }

  ScalarVec delta = Zero();
  for (const Take& take : takes) {
    Item& item = agent.items[take.item];
    if (item.name < 0) {
      item.taken = true;
      continue;
    }
    item.amount = std::max(0.0, RoundScalar(item.amount - take.amount));
    delta[item.name] += take.amount;
    if (item.revocable) continue;
    if (item.reservation_role.empty()) {
      available_unreserved_[item.name] -= take.amount;
    }
    for (QuotaRole* q : c->chain) {
      q->allocated[item.name] += take.amount;
      if (!item.reservation_role.empty() &&
          RoleCovers(q->role, item.reservation_role)) {
        continue;  // was already counted as an unallocated reservation
      }
      q->consumed[item.name] += take.amount;
    }
  }
  if (!c->chain.empty()) RecomputeRequiredHeadroom();
  sorter_->Allocated(c->client, delta);
}

void Allocator::Cycle::AllocateAgent(int agent_index, bool stage1) {
  const AgentView& agent = agents_[agent_index];
  const uint64_t stamp = ++stamp_;
  while (true) {
    Candidate* chosen = nullptr;
    std::vector<Take> takes;
    auto descend = [&](const std::string& path) {
      return AgentUsable(agent, path, stage1);
    };
    auto visit = [&](int client) {
      Candidate& c = candidates_[client];
      if (c.stamp == stamp) return false;  // already considered here
      c.stamp = stamp;
      if (c.suppressed) {
        ++allocator_.metrics_.candidates_suppressed;
        return false;
      }
      if (agent.has_gpus && !c.gpus) return false;
      if (stage1 && !ChainHasUnmetGuarantee(c)) return false;
      std::vector<Take> proposal = Propose(c, agent, stage1);
      if (proposal.empty()) return false;
      if (Filtered(c, agent, proposal)) {
        ++allocator_.metrics_.offers_filtered;
        return false;
      }
      chosen = &c;
      takes = std::move(proposal);
      return true;
    };
    if (!sorter_->Walk(descend, visit)) return;
    Commit(chosen, agent_index, takes);
  }
}

// ---- Allocator --------------------------------------------------------------

Allocator::Allocator(AllocatorOptions options) : options_(std::move(options)) {}

std::vector<Allocation> Allocator::Allocate(const MasterState& state,
                                            absl::Time now) {
  return Run(state, nullptr, now);
}

std::vector<Allocation> Allocator::AllocateAgents(
    const MasterState& state, const std::vector<std::string>& agent_ids,
    absl::Time now) {
  return Run(state, &agent_ids, now);
}

std::vector<Allocation> Allocator::Run(
    const MasterState& state, const std::vector<std::string>* agent_ids,
    absl::Time now) {
  ++metrics_.allocation_runs;
  ExpireFilters(now);
  Cycle cycle(this, state, now);
  cycle.Load();
  std::vector<Allocation> result = cycle.Run(agent_ids);
  metrics_.offers_made += result.size();
  return result;
}

void Allocator::ExpireFilters(absl::Time now) {
  for (auto f = filters_.begin(); f != filters_.end();) {
    for (auto r = f->second.begin(); r != f->second.end();) {
      for (auto a = r->second.begin(); a != r->second.end();) {
        std::vector<Filter>& list = a->second;
        size_t before = list.size();
        list.erase(std::remove_if(list.begin(), list.end(),
                                  [&](const Filter& filter) {
                                    return filter.expiry <= now;
                                  }),
                   list.end());
        metrics_.filters_expired += before - list.size();
        a = list.empty() ? r->second.erase(a) : std::next(a);
      }
      r = r->second.empty() ? f->second.erase(r) : std::next(r);
    }
    f = f->second.empty() ? filters_.erase(f) : std::next(f);
  }
}

void Allocator::Decline(const v1::Offer& offer, const v1::Filters& filters,
                        absl::Time now) {
  absl::StatusOr<Resources> resources = Resources::FromProto(offer.resources());
  if (!resources.ok()) return;
  std::string role = offer.allocation_info().role();
  if (role.empty()) {
    for (const auto& r : offer.resources()) {
      if (r.has_allocation_info()) role = r.allocation_info().role();
    }
  }
  double seconds = filters.refuse_seconds();
  if (!(seconds > 0)) return;  // also NaN
  absl::Duration refuse = seconds >= absl::ToDoubleSeconds(options_.max_refuse)
                              ? options_.max_refuse
                              : absl::Seconds(seconds);
  Decline(offer.framework_id().value(), offer.agent_id().value(), role,
          *resources, refuse, now);
}

void Allocator::Decline(const std::string& framework_id,
                        const std::string& agent_id, const std::string& role,
                        const Resources& resources, absl::Duration refuse,
                        absl::Time now) {
  if (refuse <= absl::ZeroDuration()) return;
  refuse = std::min(refuse, options_.max_refuse);
  filters_[framework_id][role][agent_id].push_back(
      Filter{resources.WithoutAllocationInfo(), now + refuse});
  ++metrics_.filters_added;
}

void Allocator::Revive(const std::string& framework_id,
                       const std::set<std::string>& roles) {
  auto f = filters_.find(framework_id);
  if (f != filters_.end()) {
    for (const std::string& role : roles) f->second.erase(role);
    if (f->second.empty()) filters_.erase(f);
  }
  auto s = suppressed_.find(framework_id);
  if (s != suppressed_.end()) {
    for (const std::string& role : roles) s->second.erase(role);
    if (s->second.empty()) suppressed_.erase(s);
  }
}

void Allocator::Suppress(const std::string& framework_id,
                         const std::set<std::string>& roles) {
  if (roles.empty()) return;
  suppressed_[framework_id].insert(roles.begin(), roles.end());
}

void Allocator::SetSuppressedRoles(const std::string& framework_id,
                                   const std::set<std::string>& roles) {
  if (roles.empty()) {
    suppressed_.erase(framework_id);
  } else {
    suppressed_[framework_id] = roles;
  }
}

void Allocator::RemoveFramework(const std::string& framework_id) {
  filters_.erase(framework_id);
  suppressed_.erase(framework_id);
}

bool Allocator::IsSuppressed(const std::string& framework_id,
                             const std::string& role) const {
  auto s = suppressed_.find(framework_id);
  return s != suppressed_.end() && s->second.count(role) > 0;
}

size_t Allocator::filter_count() const {
  size_t count = 0;
  for (const auto& [framework, roles] : filters_) {
    for (const auto& [role, agents] : roles) {
      for (const auto& [agent, list] : agents) count += list.size();
    }
  }
  return count;
}

std::vector<std::string> Allocator::ExpiredOffers(const MasterState& state,
                                                  absl::Time now) {
  std::vector<std::string> expired;
  if (options_.offer_timeout == absl::InfiniteDuration()) return expired;
  for (const std::string& framework_id : state.FrameworkIds()) {
    for (const std::string& offer_id : state.OffersOfFramework(framework_id)) {
      const v1::OfferRecord* offer = state.FindOffer(offer_id);
      if (offer == nullptr) continue;
      if (ToTime(offer->created_time()) + options_.offer_timeout <= now) {
        expired.push_back(offer_id);
      }
    }
  }
  std::sort(expired.begin(), expired.end());
  metrics_.offers_expired += expired.size();
  return expired;
}

}  // namespace cairn::master
