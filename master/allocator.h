// Allocator: decides which resources the master offers to which framework.
//
// A pure, deterministic library: no I/O, no clock (callers pass `now`), no
// randomness, no threads. It reads the cluster from a MasterState (agents,
// their available = total - used - offered resources, frameworks and their
// roles, weights, quota, what every role holds in tasks and outstanding
// offers) and keeps only what the state does not: offer filters (DECLINE
// with refuse_seconds) and suppressed roles. Its output is a list of
// Allocations, one per (framework, role, agent), which the master turns
// into one OffersCreated event (see MakeOffer()). Given the same state, the
// same calls and the same `now`, it returns the same allocations.
//
// How a cycle allocates (Mesos's hierarchical allocator, two stages):
//  - Candidates are (framework, role) pairs of CONNECTED frameworks, visited
//    in weighted DRF order over hierarchical roles (internal/drf_sorter.h):
//    siblings by weighted dominant share, frameworks within a role by their
//    own dominant share; ties by name. Allocations (tasks + outstanding
//    offers) count toward shares, and every offer made updates them at once.
//  - Stage 1, only when some role has quota guarantees: for each agent (by
//    id), roles whose guarantee (or an ancestor's) is not yet met get their
//    reservations plus unreserved resources up to the unmet guarantee.
//  - Stage 2: for each agent, every candidate in DRF order gets what is left:
//    the reservations of its role (or of an ancestor role: a reservation to
//    `a` serves `a/b`), and unreserved resources, unless that would leave
//    too little unreserved capacity in the cluster for the unmet guarantees
//    of other roles (headroom).
//  - Quota limits are never exceeded: a role's consumption (allocated +
//    offered + unallocated reservations, over its subtree) plus an offer
//    stays <= its limit for every limited scalar, for the role and every
//    ancestor.
//  - An offer is made only if it holds at least one of the
//    min_allocatable_resources sets (or the framework's own
//    offer_filters[role].min_allocatable_resources), is not covered by an
//    active decline filter, and the (framework, role) is not suppressed.
//    Revocable resources go only to REVOCABLE_RESOURCES frameworks, refined
//    reservations only to RESERVATION_REFINEMENT frameworks, and agents with
//    GPUs only to GPU_RESOURCES frameworks (as in Mesos).
//
// Thread safety: none; one thread (the leading master's) owns an Allocator.
// Invariants: the allocations of one call never exceed any agent's
// available resources in the state passed; every allocation carries exactly
// one role, to which its framework is subscribed, and resources whose
// allocation_info.role is that role.

#ifndef CAIRN_MASTER_ALLOCATOR_H_
#define CAIRN_MASTER_ALLOCATOR_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "master/resources.h"
#include "master/state.h"

namespace cairn::master {

struct AllocatorOptions {
  // An offer must hold at least all the quantities of one of these sets
  // (Mesos's --min_allocatable_resources, default "cpus:0.01|mem:32").
  // Empty: any non-empty offer is allocatable.
  std::vector<std::map<std::string, double>> min_allocatable_resources = {
      {{"cpus", 0.01}}, {{"mem", 32}}};
  // Offers outstanding this long are reported by ExpiredOffers().
  // InfiniteDuration(): offers never expire.
  absl::Duration offer_timeout = absl::InfiniteDuration();
  // A decline filter lasts at most this long (Mesos caps refuse_seconds at
  // a year).
  absl::Duration max_refuse = absl::Hours(24 * 365);
};

// Plain counters; the caller exports them. last_cycle_duration is measured
// by the caller (the allocator reads no clock) and stored with
// RecordCycleDuration().
struct AllocatorMetrics {
  uint64_t allocation_runs = 0;        // Allocate() + AllocateAgents() calls
  uint64_t offers_made = 0;            // allocations returned
  uint64_t offers_filtered = 0;        // candidates skipped by a decline filter
  uint64_t candidates_suppressed = 0;  // (framework, role) skipped: suppressed
  uint64_t filters_added = 0;
  uint64_t filters_expired = 0;
  uint64_t offers_expired = 0;  // reported by ExpiredOffers()
  absl::Duration last_cycle_duration = absl::ZeroDuration();
};

// One decision: offer `resources` (allocation_info.role == role) on
// `agent_id` to `framework_id`.
struct Allocation {
  std::string framework_id;
  std::string agent_id;
  std::string role;
  Resources resources;
};

class Allocator {
 public:
  explicit Allocator(AllocatorOptions options = AllocatorOptions());

  // One allocation cycle over every offerable agent, in agent id order.
  // Expired decline filters (expiry <= now) are dropped first. Returns the
  // allocations, at most one per (framework, role, agent); empty if nothing
  // is allocatable.
  std::vector<Allocation> Allocate(const MasterState& state, absl::Time now);

  // The same over a subset of agents (e.g. those whose resources were just
  // freed). Unknown or non-offerable ids are ignored; duplicates count
  // once. Quota headroom still counts the whole cluster.
  std::vector<Allocation> AllocateAgents(
      const MasterState& state, const std::vector<std::string>& agent_ids,
      absl::Time now);

  // The framework declined `offer` (DECLINE, or ACCEPT without operations)
  // with `filters`: until now + refuse_seconds (default 5 s; <= 0 adds no
  // filter), the framework is not offered, for the offer's role on the
  // offer's agent, resources contained in the declined ones.
  void Decline(const v1::Offer& offer, const v1::Filters& filters,
               absl::Time now);
  // The same from parts. `resources` may carry allocation info (ignored).
  void Decline(const std::string& framework_id, const std::string& agent_id,
               const std::string& role, const Resources& resources,
               absl::Duration refuse, absl::Time now);

  // REVIVE: clears the framework's filters for `roles` and unsuppresses
  // them. The master passes the framework's roles when the call lists none.
  void Revive(const std::string& framework_id,
              const std::set<std::string>& roles);
  // SUPPRESS: no offers to the framework for `roles` until revived (or
  // SetSuppressedRoles()). The master passes all its roles when the call
  // lists none.
  void Suppress(const std::string& framework_id,
                const std::set<std::string>& roles);
  // SUBSCRIBE/UPDATE_FRAMEWORK carry the full set of suppressed roles.
  void SetSuppressedRoles(const std::string& framework_id,
                          const std::set<std::string>& roles);
  // Forgets the framework's filters and suppression (framework removed).
  void RemoveFramework(const std::string& framework_id);

  bool IsSuppressed(const std::string& framework_id,
                    const std::string& role) const;
  // Active decline filters (including ones not yet dropped as expired).
  size_t filter_count() const;

  // Outstanding offers created at or before now - offer_timeout, sorted by
  // offer id; the master rescinds them (OffersExpired). Empty when the
  // timeout is infinite.
  std::vector<std::string> ExpiredOffers(const MasterState& state,
                                         absl::Time now);

  const AllocatorOptions& options() const { return options_; }
  const AllocatorMetrics& metrics() const { return metrics_; }
  void RecordCycleDuration(absl::Duration d) {
    metrics_.last_cycle_duration = d;
  }

 private:
  struct Filter {
    Resources resources;  // without allocation info
    absl::Time expiry;
  };
  // role -> agent id -> filters.
  using RoleFilters =
      std::map<std::string, std::map<std::string, std::vector<Filter>>>;

  // One allocation cycle's working state (allocator.cc).
  class Cycle;

  std::vector<Allocation> Run(const MasterState& state,
                              const std::vector<std::string>* agent_ids,
                              absl::Time now);
  void ExpireFilters(absl::Time now);

  AllocatorOptions options_;
  AllocatorMetrics metrics_;
  std::map<std::string, RoleFilters> filters_;               // by framework id
  std::map<std::string, std::set<std::string>> suppressed_;  // framework id
};

// The Offer for an allocation: ids, the agent's hostname and attributes,
// allocation_info, and the resources. Returns an offer without hostname or
// attributes if the agent is unknown to `state`.
v1::Offer MakeOffer(const MasterState& state, const Allocation& allocation,
                    const std::string& offer_id);

// The roles a framework is subscribed to (`roles`, or the legacy `role`).
std::set<std::string> SubscribedRoles(const v1::FrameworkInfo& info);

// True iff `role` is `ancestor` or below it (`a` covers `a` and `a/b`).
bool RoleCovers(const std::string& ancestor, const std::string& role);

}  // namespace cairn::master

#endif  // CAIRN_MASTER_ALLOCATOR_H_
