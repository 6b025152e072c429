#include "master/allocator.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "master/resources.h"
#include "master/state.h"

namespace cairn::master {
namespace {

using v1::Event;

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

Resources Parse(const std::string& text) {
  absl::StatusOr<Resources> r = Resources::Parse(text);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : Resources();
}

// A MasterState built through its events, as the master builds it.
class Cluster {
 public:
  void Apply(Event e, absl::Time time = kT0) {
    e.set_position(++position_);
    *e.mutable_time() = FromTime(time);
    absl::Status s = state_.Apply(e);
    ASSERT_TRUE(s.ok()) << s << "\n" << e.DebugString();
  }

  void AddAgent(const std::string& id, const std::string& resources) {
    Event e;
    auto* info = e.mutable_agent_registered()->mutable_info();
    info->mutable_id()->set_value(id);
    info->set_hostname(id + ".example");
    Parse(resources).ToProto(info->mutable_resources());
    Apply(e);
  }

  void AddFramework(
      const std::string& id, std::vector<std::string> roles,
      std::vector<v1::FrameworkInfo::Capability::Type> caps = {}) {
    Event e;
    auto* info = e.mutable_framework_subscribed()->mutable_info();
    info->mutable_id()->set_value(id);
    info->set_user("nobody");
    info->set_name(id);
    info->set_principal("p-" + id);
    for (const auto& role : roles) info->add_roles(role);
    info->add_capabilities()->set_type(
        v1::FrameworkInfo::Capability::MULTI_ROLE);
    for (auto cap : caps) info->add_capabilities()->set_type(cap);
    Apply(e);
  }

  void SetWeight(const std::string& role, double weight) {
    Event e;
    auto* w = e.mutable_weights_updated()->add_weights();
    w->set_role(role);
    w->set_weight(weight);
    Apply(e);
  }

  void SetQuota(const std::string& role,
                const std::map<std::string, double>& guarantees,
                const std::map<std::string, double>& limits) {
    Event e;
    auto* q = e.mutable_quota_updated()->add_configs();
    q->set_role(role);
    for (const auto& [name, v] : guarantees) {
      (*q->mutable_guarantees())[name].set_value(v);
    }
    for (const auto& [name, v] : limits) {
      (*q->mutable_limits())[name].set_value(v);
    }
    Apply(e);
  }

  // Records the allocations as one OffersCreated event; returns the offers.
  std::vector<v1::Offer> Offer(const std::vector<Allocation>& allocations,
                               absl::Time time = kT0) {
    Event e;
    e.mutable_offers_created()->set_allocation_cycle(++cycle_);
    std::vector<v1::Offer> offers;
    for (const Allocation& a : allocations) {
      offers.push_back(MakeOffer(state_, a, absl::StrCat("o", ++offer_id_)));
      *e.mutable_offers_created()->add_offers() = offers.back();
    }
    if (!offers.empty()) Apply(e, time);
    return offers;
  }

  void Decline(const v1::Offer& offer, absl::Time time) {
    Event e;
    auto* d = e.mutable_offers_declined();
    *d->mutable_framework_id() = offer.framework_id();
    *d->add_offer_ids() = offer.id();
    Apply(e, time);
  }

  const MasterState& state() const { return state_; }

 private:
  MasterState state_;
  uint64_t position_ = 0;
  uint64_t cycle_ = 0;
  uint64_t offer_id_ = 0;
};

double Sum(const std::vector<Allocation>& allocations,
           const std::string& framework, const std::string& name) {
  double sum = 0;
  for (const Allocation& a : allocations) {
    if (a.framework_id == framework) sum += a.resources.ScalarSum(name);
  }
  return sum;
}

int CountFor(const std::vector<Allocation>& allocations,
             const std::string& framework) {
  int n = 0;
  for (const Allocation& a : allocations) n += a.framework_id == framework;
  return n;
}

std::string Describe(const std::vector<Allocation>& allocations) {
  std::string out;
  for (const Allocation& a : allocations) {
    absl::StrAppend(&out, a.framework_id, "@", a.agent_id, "[", a.role,
                    "]: ", a.resources.ToString(), "\n");
  }
  return out;
}

void AddAgents(Cluster* cluster, int n, const std::string& resources) {
  for (int i = 0; i < n; ++i) {
    cluster->AddAgent(absl::StrFormat("agent-%03d", i), resources);
  }
}

// ---- DRF ------------------------------------------------------------------

TEST(AllocatorTest, TwoFrameworksInOneRoleGetEqualDominantShares) {
  Cluster c;
  AddAgents(&c, 10, "cpus:4;mem:4096");
  c.AddFramework("fw-a", {"web"});
  c.AddFramework("fw-b", {"web"});
  Allocator allocator;
  std::vector<Allocation> out = allocator.Allocate(c.state(), kT0);
  EXPECT_EQ(CountFor(out, "fw-a"), 5) << Describe(out);
  EXPECT_EQ(CountFor(out, "fw-b"), 5) << Describe(out);
  EXPECT_DOUBLE_EQ(Sum(out, "fw-a", "cpus"), Sum(out, "fw-b", "cpus"));
}

TEST(AllocatorTest, FrameworkWithExistingAllocationCatchesUpFirst) {
  Cluster c;
  AddAgents(&c, 6, "cpus:4;mem:4096");
  c.AddFramework("fw-a", {"web"});
  c.AddFramework("fw-b", {"web"});
  // fw-a already holds two agents (outstanding offers).
  c.Offer({Allocation{"fw-a", "agent-000", "web", Parse("cpus:4;mem:4096")},
           Allocation{"fw-a", "agent-001", "web", Parse("cpus:4;mem:4096")}});
  Allocator allocator;
  std::vector<Allocation> out = allocator.Allocate(c.state(), kT0);
  // 4 free agents: fw-b catches up to 2, then they alternate: 3 + 1.
  EXPECT_EQ(CountFor(out, "fw-b"), 3) << Describe(out);
  EXPECT_EQ(CountFor(out, "fw-a"), 1) << Describe(out);
}

TEST(AllocatorTest, WeightsTwoToOneGiveTwoToOne) {
  Cluster c;
  AddAgents(&c, 30, "cpus:4;mem:4096");
  c.SetWeight("heavy", 2);
  c.AddFramework("fw-heavy", {"heavy"});
  c.AddFramework("fw-light", {"light"});
  Allocator allocator;
  std::vector<Allocation> out = allocator.Allocate(c.state(), kT0);
  EXPECT_EQ(CountFor(out, "fw-heavy"), 20) << Describe(out);
  EXPECT_EQ(CountFor(out, "fw-light"), 10) << Describe(out);
}

TEST(AllocatorTest, HierarchicalRolesShareAtEachLevel) {
  Cluster c;
  AddAgents(&c, 8, "cpus:4;mem:4096");
  c.AddFramework("fw-web", {"eng/web"});
  c.AddFramework("fw-batch", {"eng/batch"});
  c.AddFramework("fw-ops", {"ops"});
  Allocator allocator;
  std::vector<Allocation> out = allocator.Allocate(c.state(), kT0);
  // eng and ops are siblings: 4 agents each; eng splits its 4 in two.
  EXPECT_EQ(CountFor(out, "fw-ops"), 4) << Describe(out);
  EXPECT_EQ(CountFor(out, "fw-web"), 2) << Describe(out);
  EXPECT_EQ(CountFor(out, "fw-batch"), 2) << Describe(out);
}

TEST(AllocatorTest, ParentRoleFrameworksCompeteWithSubroles) {
  Cluster c;
  AddAgents(&c, 8, "cpus:4;mem:4096");
  c.AddFramework("fw-eng", {"eng"});
  c.AddFramework("fw-web", {"eng/web"});
  c.AddFramework("fw-ops", {"ops"});
  Allocator allocator;
  std::vector<Allocation> out = allocator.Allocate(c.state(), kT0);
  EXPECT_EQ(CountFor(out, "fw-ops"), 4) << Describe(out);
  EXPECT_EQ(CountFor(out, "fw-eng"), 2) << Describe(out);
  EXPECT_EQ(CountFor(out, "fw-web"), 2) << Describe(out);
}

// ---- Reservations -----------------------------------------------------------

TEST(AllocatorTest, ReservedResourcesOnlyGoToTheirRoleAndSubroles) {
  Cluster c;
  c.AddAgent("agent-0", "cpus(ads):2;mem(ads):1024");
  c.AddAgent("agent-1", "cpus(ads):2;mem(ads):1024;cpus:1;mem:512");
  c.AddFramework("fw-web", {"web"});
  c.AddFramework("fw-ads-sub", {"ads/sub"});
  Allocator allocator;
  std::vector<Allocation> out = allocator.Allocate(c.state(), kT0);
  for (const Allocation& a : out) {
    for (const v1::Resource& r : a.resources.ToProto()) {
      if (r.reservations_size() > 0) {
        EXPECT_TRUE(RoleCovers(r.reservations(0).role(), a.role))
            << Describe(out);
      }
    }
  }
  // ads/sub gets both agents' ads reservations; web gets nothing reserved.
  double ads_cpus = 0;
  for (const Allocation& a : out) {
    if (a.framework_id == "fw-ads-sub") {
      ads_cpus += a.resources.ReservedTo("ads").ScalarSum("cpus");
    }
    if (a.framework_id == "fw-web") {
      EXPECT_EQ(a.resources.Unreserved().WithoutAllocationInfo(),
                a.resources.WithoutAllocationInfo());
    }
  }
  EXPECT_DOUBLE_EQ(ads_cpus, 4) << Describe(out);
}

TEST(AllocatorTest, SubroleReservationIsNotOfferedToParentRole) {
  Cluster c;
  c.AddAgent("agent-0", "cpus(ads/sub):2;mem(ads/sub):1024");
  c.AddFramework("fw-ads", {"ads"});
  Allocator allocator;
  EXPECT_TRUE(allocator.Allocate(c.state(), kT0).empty());
}

TEST(AllocatorTest, EachOfferHasExactlyOneRole) {
  Cluster c;
  c.AddAgent("agent-0",
             "cpus(a):1;mem(a):256;cpus(b):1;mem(b):256;cpus:2;"
             "mem:1024;ports:[31000-32000]");
  c.AddFramework("fw", {"a", "b"});
  Allocator allocator;
  std::vector<Allocation> out = allocator.Allocate(c.state(), kT0);
  ASSERT_EQ(out.size(), 2u) << Describe(out);
  std::set<std::string> roles;
  for (const Allocation& a : out) {
    roles.insert(a.role);
    for (const v1::Resource& r : a.resources.ToProto()) {
      EXPECT_EQ(r.allocation_info().role(), a.role);
    }
    v1::Offer offer = MakeOffer(c.state(), a, "x");
    EXPECT_EQ(offer.allocation_info().role(), a.role);
  }
  EXPECT_EQ(roles, (std::set<std::string>{"a", "b"}));
  // The offers are valid for the master's fold.
  c.Offer(out);
}

// ---- Quota ------------------------------------------------------------------

TEST(AllocatorTest, QuotaGuaranteeIsSatisfiedBeforeOtherRoles) {
  Cluster c;
  AddAgents(&c, 4, "cpus:4;mem:4096");
  c.SetWeight("big", 100);  // without quota, `big` would take every agent
  c.AddFramework("fw-big", {"big"});
  c.AddFramework("fw-q", {"q"});
  c.SetQuota("q", {{"cpus", 6}}, {});
  Allocator allocator;
  std::vector<Allocation> out = allocator.Allocate(c.state(), kT0);
  EXPECT_DOUBLE_EQ(Sum(out, "fw-q", "cpus"), 6) << Describe(out);
  EXPECT_DOUBLE_EQ(Sum(out, "fw-big", "cpus"), 10) << Describe(out);
}

TEST(AllocatorTest, QuotaLimitIsNeverExceeded) {
  Cluster c;
  AddAgents(&c, 4, "cpus:4;mem:4096");
  c.AddFramework("fw", {"capped"});
  c.SetQuota("capped", {}, {{"cpus", 6}, {"mem", 100000}});
  Allocator allocator;
  std::vector<Allocation> out = allocator.Allocate(c.state(), kT0);
  EXPECT_DOUBLE_EQ(Sum(out, "fw", "cpus"), 6) << Describe(out);
  c.Offer(out);
  // The outstanding offers count: nothing more.
  EXPECT_TRUE(allocator.Allocate(c.state(), kT0).empty());
}

TEST(AllocatorTest, ParentQuotaLimitBoundsSubroles) {
  Cluster c;
  AddAgents(&c, 4, "cpus:4;mem:4096");
  c.AddFramework("fw-1", {"eng/a"});
  c.AddFramework("fw-2", {"eng/b"});
  c.SetQuota("eng", {}, {{"cpus", 5}});
  Allocator allocator;
  std::vector<Allocation> out = allocator.Allocate(c.state(), kT0);
  EXPECT_DOUBLE_EQ(Sum(out, "fw-1", "cpus") + Sum(out, "fw-2", "cpus"), 5)
      << Describe(out);
}

TEST(AllocatorTest, HeadroomForUnmetGuaranteeIsKeptBack) {
  Cluster c;
  AddAgents(&c, 4, "cpus:4;mem:4096");
  // `q` has no framework yet: its guarantee must stay available.
  c.SetQuota("q", {{"cpus", 8}}, {});
  c.AddFramework("fw", {"other"});
  Allocator allocator;
  std::vector<Allocation> out = allocator.Allocate(c.state(), kT0);
  EXPECT_DOUBLE_EQ(Sum(out, "fw", "cpus"), 8) << Describe(out);
  c.Offer(out);
  // A framework of `q` arriving later gets the 8 cpus kept back.
  c.AddFramework("fw-q", {"q"});
  out = allocator.Allocate(c.state(), kT0);
  EXPECT_DOUBLE_EQ(Sum(out, "fw-q", "cpus"), 8) << Describe(out);
}

// ---- Filters, revive, suppress ----------------------------------------------

TEST(AllocatorTest, DeclineFilterIsHonouredUntilItExpires) {
  Cluster c;
  c.AddAgent("agent-0", "cpus:4;mem:4096");
  c.AddFramework("fw", {"web"});
  Allocator allocator;
  std::vector<v1::Offer> offers = c.Offer(allocator.Allocate(c.state(), kT0));
  ASSERT_EQ(offers.size(), 1u);
  v1::Filters filters;
  filters.set_refuse_seconds(10);
  allocator.Decline(offers[0], filters, kT0);
  c.Decline(offers[0], kT0);

  EXPECT_TRUE(allocator.Allocate(c.state(), kT0 + absl::Seconds(9)).empty());
  EXPECT_GE(allocator.metrics().offers_filtered, 1u);
  EXPECT_EQ(allocator.filter_count(), 1u);
  std::vector<Allocation> out =
      allocator.Allocate(c.state(), kT0 + absl::Seconds(10));
  EXPECT_EQ(out.size(), 1u);
  EXPECT_EQ(allocator.filter_count(), 0u);
  EXPECT_EQ(allocator.metrics().filters_expired, 1u);
}

TEST(AllocatorTest, DeclineDefaultsToFiveSeconds) {
  Cluster c;
  c.AddAgent("agent-0", "cpus:4;mem:4096");
  c.AddFramework("fw", {"web"});
  Allocator allocator;
  std::vector<v1::Offer> offers = c.Offer(allocator.Allocate(c.state(), kT0));
  ASSERT_EQ(offers.size(), 1u);
  allocator.Decline(offers[0], v1::Filters(), kT0);
  c.Decline(offers[0], kT0);
  EXPECT_TRUE(allocator.Allocate(c.state(), kT0 + absl::Seconds(4)).empty());
  EXPECT_EQ(allocator.Allocate(c.state(), kT0 + absl::Seconds(5)).size(), 1u);
}

TEST(AllocatorTest, FilterOnlyCoversDeclinedResources) {
  Cluster c;
  c.AddAgent("agent-0", "cpus:4;mem:4096");
  c.AddFramework("fw", {"web"});
  Allocator allocator;
  // Declined a smaller offer: the whole agent is not contained in it.
  allocator.Decline("fw", "agent-0", "web", Parse("cpus:1;mem:1024"),
                    absl::Seconds(60), kT0);
  EXPECT_EQ(allocator.Allocate(c.state(), kT0).size(), 1u);
}

TEST(AllocatorTest, FilteredFrameworkLeavesAgentToOthers) {
  Cluster c;
  c.AddAgent("agent-0", "cpus:4;mem:4096");
  c.AddFramework("fw-a", {"web"});
  c.AddFramework("fw-b", {"web"});
  Allocator allocator;
  allocator.Decline("fw-a", "agent-0", "web", Parse("cpus:4;mem:4096"),
                    absl::Seconds(60), kT0);
  std::vector<Allocation> out = allocator.Allocate(c.state(), kT0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].framework_id, "fw-b");
}

TEST(AllocatorTest, ReviveClearsFilters) {
  Cluster c;
  c.AddAgent("agent-0", "cpus:4;mem:4096");
  c.AddFramework("fw", {"web"});
  Allocator allocator;
  allocator.Decline("fw", "agent-0", "web", Parse("cpus:4;mem:4096"),
                    absl::Seconds(1000), kT0);
  EXPECT_TRUE(allocator.Allocate(c.state(), kT0).empty());
  allocator.Revive("fw", {"web"});
  EXPECT_EQ(allocator.filter_count(), 0u);
  EXPECT_EQ(allocator.Allocate(c.state(), kT0).size(), 1u);
}

TEST(AllocatorTest, SuppressStopsOffersUntilRevive) {
  Cluster c;
  c.AddAgent("agent-0", "cpus:4;mem:4096");
  c.AddAgent("agent-1", "cpus:4;mem:4096");
  c.AddFramework("fw", {"a", "b"});
  Allocator allocator;
  allocator.Suppress("fw", {"a", "b"});
  EXPECT_TRUE(allocator.IsSuppressed("fw", "a"));
  EXPECT_TRUE(allocator.Allocate(c.state(), kT0).empty());
  EXPECT_GE(allocator.metrics().candidates_suppressed, 1u);
  allocator.Revive("fw", {"b"});
  std::vector<Allocation> out = allocator.Allocate(c.state(), kT0);
  ASSERT_EQ(out.size(), 2u) << Describe(out);
  for (const Allocation& a : out) EXPECT_EQ(a.role, "b");
}

TEST(AllocatorTest, MinAllocatableResourcesPreventCrumbs) {
  Cluster c;
  c.AddAgent("agent-0", "cpus:0.005;mem:16;ports:[31000-31010]");
  c.AddFramework("fw", {"web"});
  Allocator allocator;
  EXPECT_TRUE(allocator.Allocate(c.state(), kT0).empty());
  AllocatorOptions options;
  options.min_allocatable_resources.clear();
  Allocator anything(options);
  EXPECT_EQ(anything.Allocate(c.state(), kT0).size(), 1u);
}

TEST(AllocatorTest, AgentsWithGpusOnlyGoToGpuFrameworks) {
  Cluster c;
  c.AddAgent("agent-0", "cpus:4;mem:4096;gpus:1");
  c.AddFramework("fw", {"web"});
  Allocator allocator;
  EXPECT_TRUE(allocator.Allocate(c.state(), kT0).empty());
  c.AddFramework("fw-gpu", {"web"},
                 {v1::FrameworkInfo::Capability::GPU_RESOURCES});
  std::vector<Allocation> out = allocator.Allocate(c.state(), kT0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].framework_id, "fw-gpu");
}

// ---- Offer timeout, event-driven allocation, determinism -------------------

TEST(AllocatorTest, ReportsOffersOlderThanTheTimeout) {
  Cluster c;
  c.AddAgent("agent-0", "cpus:4;mem:4096");
  c.AddFramework("fw", {"web"});
  AllocatorOptions options;
  options.offer_timeout = absl::Seconds(30);
  Allocator allocator(options);
  std::vector<v1::Offer> offers = c.Offer(allocator.Allocate(c.state(), kT0));
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_TRUE(
      allocator.ExpiredOffers(c.state(), kT0 + absl::Seconds(29)).empty());
  EXPECT_EQ(allocator.ExpiredOffers(c.state(), kT0 + absl::Seconds(30)),
            std::vector<std::string>{offers[0].id().value()});
  Allocator no_timeout;
  EXPECT_TRUE(
      no_timeout.ExpiredOffers(c.state(), kT0 + absl::Hours(1000)).empty());
}

TEST(AllocatorTest, AllocateAgentsOnlyTouchesThoseAgents) {
  Cluster c;
  AddAgents(&c, 5, "cpus:4;mem:4096");
  c.AddFramework("fw", {"web"});
  Allocator allocator;
  std::vector<Allocation> out = allocator.AllocateAgents(
      c.state(), {"agent-003", "agent-001", "agent-003", "nope"}, kT0);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].agent_id, "agent-001");
  EXPECT_EQ(out[1].agent_id, "agent-003");
}

TEST(AllocatorTest, SameInputGivesSameOffers) {
  Cluster c;
  AddAgents(&c, 20, "cpus:4;mem:4096;ports:[31000-32000];cpus(a):1");
  c.AddFramework("fw-1", {"a", "b"});
  c.AddFramework("fw-2", {"a/x"});
  c.AddFramework("fw-3", {"b"});
  c.SetQuota("b", {{"cpus", 10}}, {{"cpus", 30}});
  Allocator one, two;
  std::string first = Describe(one.Allocate(c.state(), kT0));
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(first, Describe(two.Allocate(c.state(), kT0)));
  EXPECT_EQ(first, Describe(one.Allocate(c.state(), kT0)));
}

// ---- Randomized properties
// ----------------------------------------------------

uint64_t SeedFromEnv() {
  const char* env = std::getenv("CAIRN_SEED");
  if (env != nullptr) return std::strtoull(env, nullptr, 10);
  return 20240601;
}

// Random clusters, frameworks, weights and quota; several cycles with
// offers applied to the state and random declines. After every cycle:
// offers fit what was available, no quota limit is exceeded, reservations
// go only to their roles, each offer has one role its framework holds, no
// active filter is violated, and the master's fold accepts the offers.
TEST(AllocatorPropertyTest, RandomClustersKeepInvariants) {
  const uint64_t seed = SeedFromEnv();
  std::printf("AllocatorPropertyTest seed=%llu (replay: CAIRN_SEED=%llu)\n",
              static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  auto uniform = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  const std::vector<std::string> roles = {"a", "a/b", "a/b/c", "b", "c", "*"};

  for (int trial = 0; trial < 60; ++trial) {
    SCOPED_TRACE(absl::StrCat("seed=", seed, " trial=", trial));
    Cluster c;
    int agents = uniform(1, 12);
    for (int i = 0; i < agents; ++i) {
      std::string res =
          absl::StrCat("cpus:", uniform(1, 16), ";mem:", uniform(1, 64) * 256,
                       ";ports:[31000-31100]");
      for (int k = uniform(0, 2); k > 0; --k) {
        const std::string& role = roles[uniform(0, roles.size() - 2)];
        absl::StrAppend(&res, ";cpus(", role, "):", uniform(1, 4), ";mem(",
                        role, "):", uniform(1, 8) * 128);
      }
      c.AddAgent(absl::StrFormat("agent-%02d", i), res);
    }
    int frameworks = uniform(1, 6);
    for (int i = 0; i < frameworks; ++i) {
      std::set<std::string> mine;
      for (int k = uniform(1, 3); k > 0; --k) {
        mine.insert(roles[uniform(0, roles.size() - 1)]);
      }
      c.AddFramework(absl::StrFormat("fw-%d", i),
                     std::vector<std::string>(mine.begin(), mine.end()));
    }
    for (int k = uniform(0, 2); k > 0; --k) {
      c.SetWeight(roles[uniform(0, roles.size() - 2)], uniform(1, 4));
    }
    for (int k = uniform(0, 3); k > 0; --k) {
      std::map<std::string, double> guarantees, limits;
      if (uniform(0, 1)) guarantees["cpus"] = uniform(1, 20);
      if (uniform(0, 1)) {
        limits["cpus"] = guarantees["cpus"] + uniform(0, 10);
        if (limits["cpus"] == 0) limits["cpus"] = 1;
      }
      if (guarantees.count("cpus") && guarantees["cpus"] == 0) {
        guarantees.erase("cpus");
      }
      if (uniform(0, 1)) limits["mem"] = uniform(1, 40) * 256;
      c.SetQuota(roles[uniform(0, roles.size() - 2)], guarantees, limits);
    }

    Allocator allocator;
    // Test's own record of filters: (framework, role, agent) -> (res, until).
    std::map<std::tuple<std::string, std::string, std::string>,
             std::vector<std::pair<Resources, absl::Time>>>
        filters;
    absl::Time now = kT0;
    for (int cycle = 0; cycle < 6; ++cycle) {
      now += absl::Seconds(uniform(0, 4));
      const MasterState& s = c.state();
      std::vector<Allocation> out =
          uniform(0, 3) == 0
              ? allocator.AllocateAgents(
                    s, {absl::StrFormat("agent-%02d", uniform(0, agents - 1))},
                    now)
              : allocator.Allocate(s, now);

      std::map<std::string, Resources> per_agent;
      std::set<std::tuple<std::string, std::string, std::string>> seen;
      for (const Allocation& a : out) {
        EXPECT_FALSE(a.resources.empty());
        EXPECT_TRUE(seen.insert({a.framework_id, a.role, a.agent_id}).second)
            << "two offers for one (framework, role, agent)";
        const v1::FrameworkRecord* f = s.FindFramework(a.framework_id);
        ASSERT_NE(f, nullptr);
        EXPECT_EQ(SubscribedRoles(f->info()).count(a.role), 1u);
        for (const v1::Resource& r : a.resources.ToProto()) {
          EXPECT_EQ(r.allocation_info().role(), a.role);
          if (r.reservations_size() > 0) {
            EXPECT_TRUE(RoleCovers(
                r.reservations(r.reservations_size() - 1).role(), a.role))
                << Describe(out);
          }
        }
        per_agent[a.agent_id] += a.resources.WithoutAllocationInfo();
        auto it = filters.find({a.framework_id, a.role, a.agent_id});
        if (it != filters.end()) {
          for (const auto& [declined, until] : it->second) {
            if (now < until) {
              EXPECT_FALSE(
                  declined.Contains(a.resources.WithoutAllocationInfo()))
                  << "filtered offer made: " << Describe(out);
            }
          }
        }
      }
      for (const auto& [agent, wanted] : per_agent) {
        absl::StatusOr<Resources> available = s.AvailableResources(agent);
        ASSERT_TRUE(available.ok());
        EXPECT_TRUE(available->Contains(wanted))
            << agent << " has " << available->ToString() << ", offered "
            << wanted.ToString();
      }

      std::vector<v1::Offer> offers = c.Offer(out, now);
      ASSERT_TRUE(c.state().CheckInvariants().ok());

      // Quota limits over outstanding offers (the only allocations here).
      for (const auto& [role, config] : c.state().quotas()) {
        std::map<std::string, double> held;
        for (const std::string& fid : c.state().FrameworkIds()) {
          for (const std::string& oid : c.state().OffersOfFramework(fid)) {
            const v1::Offer& o = c.state().FindOffer(oid)->offer();
            if (!RoleCovers(role, o.allocation_info().role())) continue;
            for (const auto& r : o.resources()) {
              if (r.type() == v1::MesosValue::SCALAR) {
                held[r.name()] += r.scalar().value();
              }
            }
          }
        }
        for (const auto& [name, limit] : config.limits()) {
          EXPECT_LE(held[name], limit.value() + 1e-6)
              << "role " << role << " over its " << name << " limit";
        }
      }

      // Decline some offers, sometimes revive or suppress.
      for (const v1::Offer& offer : offers) {
        if (uniform(0, 2) != 0) continue;
        v1::Filters f;
        f.set_refuse_seconds(uniform(0, 10));
        allocator.Decline(offer, f, now);
        if (f.refuse_seconds() > 0) {
          filters[{offer.framework_id().value(), offer.allocation_info().role(),
                   offer.agent_id().value()}]
              .push_back({Resources::FromProto(offer.resources())
                              ->WithoutAllocationInfo(),
                          now + absl::Seconds(f.refuse_seconds())});
        }
        c.Decline(offer, now);
      }
      if (uniform(0, 4) == 0) {
        std::string fid = absl::StrFormat("fw-%d", uniform(0, frameworks - 1));
        std::set<std::string> all =
            SubscribedRoles(c.state().FindFramework(fid)->info());
        allocator.Revive(fid, all);
        for (auto it = filters.begin(); it != filters.end();) {
          it =
              std::get<0>(it->first) == fid ? filters.erase(it) : std::next(it);
        }
      }
    }
  }
}

}  // namespace
}  // namespace cairn::master
