#include "master/state.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "master/resources.h"

namespace cairn::master {
namespace {

using v1::AgentRecord;
using v1::Event;
using v1::FrameworkRecord;

constexpr int64_t kSecond = 1000000000;

std::vector<v1::Resource> Res(const std::string& text) {
  absl::StatusOr<Resources> r = Resources::Parse(text);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->ToProto() : std::vector<v1::Resource>{};
}

template <typename Field>
void SetResources(const std::string& text, Field* field) {
  for (const auto& r : Res(text)) *field->Add() = r;
}

Event AgentRegistered(const std::string& id, const std::string& resources) {
  Event e;
  auto* info = e.mutable_agent_registered()->mutable_info();
  info->mutable_id()->set_value(id);
  info->set_hostname(id + ".example");
  SetResources(resources, info->mutable_resources());
  return e;
}

Event AgentReregistered(const std::string& id, const std::string& resources) {
  Event e;
  auto* info = e.mutable_agent_reregistered()->mutable_info();
  info->mutable_id()->set_value(id);
  info->set_hostname(id + ".example");
  SetResources(resources, info->mutable_resources());
  return e;
}

Event ResourcesUpdated(const std::string& agent, const std::string& resources) {
  Event e;
  e.mutable_agent_resources_updated()->mutable_agent_id()->set_value(agent);
  SetResources(resources,
               e.mutable_agent_resources_updated()->mutable_resources());
  return e;
}

Event KillRequested(const std::string& framework, const std::string& task) {
  Event e;
  auto* k = e.mutable_task_kill_requested();
  k->mutable_framework_id()->set_value(framework);
  k->mutable_task_id()->set_value(task);
  return e;
}

void AddCapability(
    v1::AgentInfo::Capability::Type type,
    google::protobuf::RepeatedPtrField<v1::AgentInfo::Capability>*
        capabilities) {
  capabilities->Add()->set_type(type);
}

v1::FrameworkInfo Info(const std::string& id, double failover_timeout = 60,
                       std::vector<std::string> roles = {"web"}) {
  v1::FrameworkInfo info;
  info.mutable_id()->set_value(id);
  info.set_user("nobody");
  info.set_name(id);
  info.set_principal("p-" + id);
  info.set_failover_timeout(failover_timeout);
  for (const auto& role : roles) info.add_roles(role);
  return info;
}

Event Subscribed(const std::string& id, double failover_timeout = 60) {
  Event e;
  *e.mutable_framework_subscribed()->mutable_info() =
      Info(id, failover_timeout);
  return e;
}

v1::Offer MakeOffer(const std::string& id, const std::string& framework,
                    const std::string& agent, const std::string& resources,
                    const std::string& role = "web") {
  v1::Offer offer;
  offer.mutable_id()->set_value(id);
  offer.mutable_framework_id()->set_value(framework);
  offer.mutable_agent_id()->set_value(agent);
  offer.set_hostname(agent + ".example");
  offer.mutable_allocation_info()->set_role(role);
  absl::StatusOr<Resources> r = Resources::Parse(resources);
  EXPECT_TRUE(r.ok());
  r->AllocatedTo(role).ToProto(offer.mutable_resources());
  return offer;
}

Event Offers(std::vector<v1::Offer> offers) {
  Event e;
  e.mutable_offers_created()->set_allocation_cycle(1);
  for (auto& o : offers) *e.mutable_offers_created()->add_offers() = o;
  return e;
}

Event Launch(const std::string& framework, const std::string& agent,
             const std::string& task, const std::string& resources,
             std::vector<std::string> offer_ids = {}) {
  Event e;
  auto* launch = e.mutable_tasks_launched();
  launch->mutable_framework_id()->set_value(framework);
  for (const auto& id : offer_ids) launch->add_offer_ids()->set_value(id);
  auto* t = launch->add_tasks();
  t->set_name(task);
  t->mutable_task_id()->set_value(task);
  t->mutable_agent_id()->set_value(agent);
  t->mutable_command()->set_value("sleep 1000");
  absl::StatusOr<Resources> r = Resources::Parse(resources);
  EXPECT_TRUE(r.ok());
  r->AllocatedTo("web").ToProto(t->mutable_resources());
  return e;
}

Event Status(const std::string& framework, const std::string& task,
             v1::TaskState state, const std::string& uuid = "") {
  Event e;
  auto* u = e.mutable_task_status_updated();
  u->mutable_framework_id()->set_value(framework);
  u->mutable_status()->mutable_task_id()->set_value(task);
  u->mutable_status()->set_state(state);
  u->mutable_status()->set_source(v1::TaskStatus::SOURCE_EXECUTOR);
  if (!uuid.empty()) u->mutable_status()->set_uuid(uuid);
  return e;
}

Event Ack(const std::string& framework, const std::string& task,
          const std::string& uuid) {
  Event e;
  auto* a = e.mutable_task_status_acknowledged();
  a->mutable_framework_id()->set_value(framework);
  a->mutable_task_id()->set_value(task);
  a->set_uuid(uuid);
  return e;
}

template <typename Message>
Event WithAgent(const std::string& agent, Message* (Event::*mutable_field)()) {
  Event e;
  ((e.*mutable_field)())->mutable_agent_id()->set_value(agent);
  return e;
}

template <typename Message>
Event WithFramework(const std::string& framework,
                    Message* (Event::*mutable_field)()) {
  Event e;
  ((e.*mutable_field)())->mutable_framework_id()->set_value(framework);
  return e;
}

Event Reservation(bool reserve, const std::string& agent,
                  const std::string& resources, const std::string& role) {
  Event e;
  google::protobuf::RepeatedPtrField<v1::Resource>* list;
  if (reserve) {
    e.mutable_resources_reserved()->mutable_agent_id()->set_value(agent);
    list = e.mutable_resources_reserved()->mutable_resources();
  } else {
    e.mutable_resources_unreserved()->mutable_agent_id()->set_value(agent);
    list = e.mutable_resources_unreserved()->mutable_resources();
  }
  for (v1::Resource r : Res(resources)) {
    auto* res = r.add_reservations();
    res->set_type(v1::Resource::ReservationInfo::DYNAMIC);
    res->set_role(role);
    res->set_principal("ops");
    *list->Add() = r;
  }
  return e;
}

class MasterStateTest : public ::testing::Test {
 protected:
  // Applies `e` at the next log position and the current time.
  absl::Status Apply(Event e) {
    e.set_position(++position_);
    e.mutable_time()->set_nanoseconds(now_ns_);
    e.set_principal("test");
    return state_.Apply(e);
  }

  void ApplyOk(const Event& e) {
    absl::Status s = Apply(e);
    ASSERT_TRUE(s.ok()) << s << "\n" << e.DebugString();
  }

  // The event must be rejected with `code` and leave the state untouched.
  void ExpectRejected(const Event& e, absl::StatusCode code) {
    MasterState before = state_;
    absl::Status s = Apply(e);
    EXPECT_EQ(s.code(), code) << s << "\n" << e.DebugString();
    EXPECT_TRUE(state_ == before) << "a rejected event changed the state";
  }

  Resources Available(const std::string& agent) {
    absl::StatusOr<Resources> r = state_.AvailableResources(agent);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : Resources();
  }

  Resources R(const std::string& text) { return *Resources::Parse(text); }

  // One agent "a1" (cpus:4;mem:1024;ports:[31000-31009]), one connected
  // framework "f1" (role web).
  void SetUpCluster() {
    ApplyOk(AgentRegistered("a1", "cpus:4;mem:1024;ports:[31000-31009]"));
    ApplyOk(Subscribed("f1"));
  }

  void TearDown() override {
    absl::Status s = state_.CheckInvariants();
    EXPECT_TRUE(s.ok()) << s;
    absl::StatusOr<MasterState> copy =
        MasterState::FromSnapshot(state_.ToSnapshot());
    ASSERT_TRUE(copy.ok()) << copy.status();
    EXPECT_TRUE(*copy == state_);
  }

  MasterState state_;
  uint64_t position_ = 0;
  int64_t now_ns_ = 1000 * kSecond;
};

// ---- Envelope
// -----------------------------------------------------------------

TEST_F(MasterStateTest, RejectsEventWithoutType) {
  ExpectRejected(Event(), absl::StatusCode::kInvalidArgument);
}

TEST_F(MasterStateTest, RejectsReplayedPosition) {
  ApplyOk(AgentRegistered("a1", "cpus:1"));
  Event e = AgentRegistered("a2", "cpus:1");
  e.set_position(position_);  // same position, same index
  MasterState before = state_;
  EXPECT_EQ(state_.Apply(e).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(state_ == before);
  e.set_index(1);  // next event of the same entry
  EXPECT_TRUE(state_.Apply(e).ok());
  EXPECT_EQ(EventIdToString(state_.last_applied()),
            absl::StrCat(position_, ":1"));
}

// ---- Agents
// -------------------------------------------------------------------

TEST_F(MasterStateTest, AgentRegisteredAddsActiveAgentWithItsTotal) {
  ApplyOk(AgentRegistered("a1", "cpus:4;mem:1024;cpus(ads):1"));
  const AgentRecord* a = state_.FindAgent("a1");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->state(), AgentRecord::ACTIVE);
  EXPECT_EQ(a->registered_time().nanoseconds(), now_ns_);
  EXPECT_EQ(*state_.TotalResources("a1"), R("cpus:4;mem:1024;cpus(ads):1"));
  EXPECT_EQ(*state_.ReservedResources("a1"), R("cpus(ads):1"));
  EXPECT_EQ(Available("a1"), R("cpus:4;mem:1024;cpus(ads):1"));
  EXPECT_TRUE(state_.IsAgentOfferable("a1"));
  EXPECT_EQ(state_.AvailableResources("nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(MasterStateTest, AgentRegisteredRejectsKnownIdAndBadInfo) {
  ApplyOk(AgentRegistered("a1", "cpus:1"));
  ExpectRejected(AgentRegistered("a1", "cpus:1"),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(AgentRegistered("", "cpus:1"),
                 absl::StatusCode::kInvalidArgument);
  Event bad = AgentRegistered("a2", "cpus:1");
  bad.mutable_agent_registered()
      ->mutable_info()
      ->mutable_resources(0)
      ->mutable_scalar()
      ->set_value(-3);
  ExpectRejected(bad, absl::StatusCode::kInvalidArgument);
}

TEST_F(MasterStateTest, AgentUnreachableDropsItsOffers) {
  SetUpCluster();
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:1")}));
  ASSERT_EQ(state_.OffersOnAgent("a1").size(), 1u);
  ApplyOk(WithAgent("a1", &Event::mutable_agent_unreachable));
  EXPECT_EQ(state_.FindAgent("a1")->state(), AgentRecord::UNREACHABLE);
  EXPECT_EQ(state_.offer_count(), 0u);
  EXPECT_FALSE(state_.IsAgentOfferable("a1"));
  ExpectRejected(WithAgent("a1", &Event::mutable_agent_unreachable),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(Offers({MakeOffer("o2", "f1", "a1", "cpus:1")}),
                 absl::StatusCode::kFailedPrecondition);
}

TEST_F(MasterStateTest, AgentReregisteredMakesUnreachableAgentActive) {
  SetUpCluster();
  ApplyOk(Launch("f1", "a1", "t1", "cpus:2"));
  ApplyOk(WithAgent("a1", &Event::mutable_agent_unreachable));
  ApplyOk(AgentReregistered("a1", "cpus:4;mem:2048;ports:[31000-31009]"));
  const AgentRecord* a = state_.FindAgent("a1");
  EXPECT_EQ(a->state(), AgentRecord::ACTIVE);
  EXPECT_FALSE(a->has_unreachable_time());
  EXPECT_EQ(Available("a1"), R("cpus:2;mem:2048;ports:[31000-31009]"));
}

TEST_F(MasterStateTest, AgentReregisteredRejectsTotalBelowTaskUse) {
  SetUpCluster();
  ApplyOk(Launch("f1", "a1", "t1", "cpus:3"));
  ExpectRejected(AgentReregistered("a1", "cpus:2;mem:1024"),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(AgentReregistered("a9", "cpus:2"),
                 absl::StatusCode::kFailedPrecondition);
}

TEST_F(MasterStateTest, AgentCapabilitiesAreStoredAndReplacedOnReregistration) {
  Event registered = AgentRegistered("a1", "cpus:1");
  auto* caps = registered.mutable_agent_registered()->mutable_capabilities();
  AddCapability(v1::AgentInfo::Capability::MULTI_ROLE, caps);
  AddCapability(v1::AgentInfo::Capability::AGENT_DRAINING, caps);
  ApplyOk(registered);
  ASSERT_EQ(state_.FindAgent("a1")->capabilities_size(), 2);
  EXPECT_EQ(state_.FindAgent("a1")->capabilities(1).type(),
            v1::AgentInfo::Capability::AGENT_DRAINING);

  Event reregistered = AgentReregistered("a1", "cpus:1");
  AddCapability(
      v1::AgentInfo::Capability::TASK_RESOURCE_LIMITS,
      reregistered.mutable_agent_reregistered()->mutable_capabilities());
  ApplyOk(reregistered);
  ASSERT_EQ(state_.FindAgent("a1")->capabilities_size(), 1);
  EXPECT_EQ(state_.FindAgent("a1")->capabilities(0).type(),
            v1::AgentInfo::Capability::TASK_RESOURCE_LIMITS);

  // A removed agent's capabilities stay as they were.
  ApplyOk(WithAgent("a1", &Event::mutable_agent_removed));
  ExpectRejected(registered, absl::StatusCode::kFailedPrecondition);
  Event again = AgentReregistered("a1", "cpus:1");
  *again.mutable_agent_reregistered()->mutable_capabilities() = *caps;
  ExpectRejected(again, absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(state_.FindAgent("a1")->capabilities_size(), 1);
}

TEST_F(MasterStateTest, AgentResourcesUpdatedReplacesTotalAndDropsOffers) {
  SetUpCluster();
  ApplyOk(Launch("f1", "a1", "t1", "cpus:2"));
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:1;mem:512")}));
  ApplyOk(ResourcesUpdated("a1", "cpus:2;mem:4096;disk:100"));
  EXPECT_EQ(state_.offer_count(), 0u);
  EXPECT_EQ(*state_.TotalResources("a1"), R("cpus:2;mem:4096;disk:100"));
  EXPECT_EQ(Available("a1"), R("mem:4096;disk:100"));
  const AgentRecord* a = state_.FindAgent("a1");
  EXPECT_EQ(*Resources::FromProto(a->info().resources()),
            R("cpus:2;mem:4096;disk:100"));
  EXPECT_EQ(a->state(), AgentRecord::ACTIVE);
}

TEST_F(MasterStateTest, AgentResourcesUpdatedRejectsTotalBelowTaskUse) {
  SetUpCluster();
  ApplyOk(Launch("f1", "a1", "t1", "cpus:3"));
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:1")}));
  ExpectRejected(ResourcesUpdated("a1", "cpus:2;mem:1024"),
                 absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(state_.offer_count(), 1u);
  ExpectRejected(ResourcesUpdated("a9", "cpus:8"),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(ResourcesUpdated("", "cpus:8"),
                 absl::StatusCode::kInvalidArgument);
  Event negative = ResourcesUpdated("a1", "cpus:8");
  negative.mutable_agent_resources_updated()
      ->mutable_resources(0)
      ->mutable_scalar()
      ->set_value(-1);
  ExpectRejected(negative, absl::StatusCode::kInvalidArgument);
  ApplyOk(WithAgent("a1", &Event::mutable_agent_unreachable));
  ExpectRejected(ResourcesUpdated("a1", "cpus:8"),
                 absl::StatusCode::kFailedPrecondition);
}

TEST_F(MasterStateTest, AgentRemovedLeavesATombstoneThatBlocksTheId) {
  SetUpCluster();
  ApplyOk(Launch("f1", "a1", "t1", "cpus:1"));
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:1")}));
  Event removed = WithAgent("a1", &Event::mutable_agent_removed);
  removed.mutable_agent_removed()->set_by_operator(true);
  // Not while a task is live: its end is written first (a log that lost it
  // must not strand the task on a removed agent).
  ExpectRejected(removed, absl::StatusCode::kFailedPrecondition);
  ApplyOk(Status("f1", "t1", v1::TASK_GONE_BY_OPERATOR));
  ApplyOk(removed);
  EXPECT_EQ(state_.FindAgent("a1")->state(), AgentRecord::REMOVED);
  EXPECT_EQ(state_.offer_count(), 0u);
  ExpectRejected(removed, absl::StatusCode::kFailedPrecondition);
  ExpectRejected(AgentRegistered("a1", "cpus:1"),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(AgentReregistered("a1", "cpus:1"),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(WithAgent("a9", &Event::mutable_agent_removed),
                 absl::StatusCode::kFailedPrecondition);
}

TEST_F(MasterStateTest, AgentDeactivatedGetsNoOffersUntilReactivated) {
  SetUpCluster();
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:1")}));
  ApplyOk(WithAgent("a1", &Event::mutable_agent_deactivated));
  EXPECT_TRUE(state_.FindAgent("a1")->deactivated());
  EXPECT_EQ(state_.offer_count(), 0u);
  ExpectRejected(Offers({MakeOffer("o2", "f1", "a1", "cpus:1")}),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(WithAgent("a1", &Event::mutable_agent_deactivated),
                 absl::StatusCode::kFailedPrecondition);
  ApplyOk(WithAgent("a1", &Event::mutable_agent_reactivated));
  EXPECT_FALSE(state_.FindAgent("a1")->deactivated());
  ApplyOk(Offers({MakeOffer("o2", "f1", "a1", "cpus:1")}));
}

TEST_F(MasterStateTest, AgentReactivatedRejectsActiveAgent) {
  SetUpCluster();
  ExpectRejected(WithAgent("a1", &Event::mutable_agent_reactivated),
                 absl::StatusCode::kFailedPrecondition);
}

TEST_F(MasterStateTest, AgentDrainStartedDeactivatesAndDrainedNeedsNoTasks) {
  SetUpCluster();
  ApplyOk(Launch("f1", "a1", "t1", "cpus:1"));
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:1")}));
  Event drain = WithAgent("a1", &Event::mutable_agent_drain_started);
  drain.mutable_agent_drain_started()->mutable_config()->set_mark_gone(true);
  ApplyOk(drain);
  const AgentRecord* a = state_.FindAgent("a1");
  EXPECT_TRUE(a->deactivated());
  EXPECT_EQ(a->drain_info().state(), v1::DRAINING);
  EXPECT_TRUE(a->drain_info().config().mark_gone());
  EXPECT_EQ(state_.offer_count(), 0u);
  ExpectRejected(Launch("f1", "a1", "t2", "cpus:1"),
                 absl::StatusCode::kFailedPrecondition);

  ExpectRejected(WithAgent("a1", &Event::mutable_agent_drained),
                 absl::StatusCode::kFailedPrecondition);
  ApplyOk(Status("f1", "t1", v1::TASK_KILLED));
  ApplyOk(WithAgent("a1", &Event::mutable_agent_drained));
  EXPECT_EQ(state_.FindAgent("a1")->drain_info().state(), v1::DRAINED);
  ExpectRejected(drain, absl::StatusCode::kFailedPrecondition);
  ApplyOk(WithAgent("a1", &Event::mutable_agent_reactivated));
  EXPECT_FALSE(state_.FindAgent("a1")->has_drain_info());
  EXPECT_TRUE(state_.IsAgentOfferable("a1"));
}

// ---- Frameworks
// ---------------------------------------------------------------

TEST_F(MasterStateTest, FrameworkSubscribedIsConnected) {
  ApplyOk(Subscribed("f1"));
  const FrameworkRecord* f = state_.FindFramework("f1");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->state(), FrameworkRecord::CONNECTED);
  EXPECT_EQ(f->info().roles(0), "web");
  ExpectRejected(Subscribed("f1"), absl::StatusCode::kFailedPrecondition);
  ExpectRejected(Subscribed("f2", -1), absl::StatusCode::kInvalidArgument);
  ExpectRejected(Subscribed(""), absl::StatusCode::kInvalidArgument);
}

TEST_F(MasterStateTest, FrameworkDisconnectedGetsAFailoverDeadline) {
  SetUpCluster();
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:1")}));
  ApplyOk(WithFramework("f1", &Event::mutable_framework_disconnected));
  const FrameworkRecord* f = state_.FindFramework("f1");
  EXPECT_EQ(f->state(), FrameworkRecord::DISCONNECTED);
  EXPECT_EQ(f->failover_deadline().nanoseconds(), now_ns_ + 60 * kSecond);
  EXPECT_EQ(state_.offer_count(), 0u);
  absl::Time now = absl::FromUnixNanos(now_ns_);
  EXPECT_TRUE(
      state_.FrameworksPastFailoverDeadline(now + absl::Seconds(59)).empty());
  EXPECT_EQ(state_.FrameworksPastFailoverDeadline(now + absl::Seconds(60)),
            std::vector<std::string>{"f1"});
  ExpectRejected(WithFramework("f1", &Event::mutable_framework_disconnected),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(Offers({MakeOffer("o2", "f1", "a1", "cpus:1")}),
                 absl::StatusCode::kFailedPrecondition);
}

TEST_F(MasterStateTest, FrameworkFailedOverReconnectsAndClearsDeadline) {
  SetUpCluster();
  ApplyOk(WithFramework("f1", &Event::mutable_framework_disconnected));
  Event e;
  *e.mutable_framework_failed_over()->mutable_info() = Info("f1", 120);
  ApplyOk(e);
  const FrameworkRecord* f = state_.FindFramework("f1");
  EXPECT_EQ(f->state(), FrameworkRecord::CONNECTED);
  EXPECT_FALSE(f->has_failover_deadline());
  EXPECT_EQ(f->info().failover_timeout(), 120);
  EXPECT_EQ(f->reregistered_time().nanoseconds(), now_ns_);

  e.mutable_framework_failed_over()->mutable_info()->set_principal("mallory");
  ExpectRejected(e, absl::StatusCode::kFailedPrecondition);
  *e.mutable_framework_failed_over()->mutable_info() = Info("f9");
  ExpectRejected(e, absl::StatusCode::kFailedPrecondition);
}

TEST_F(MasterStateTest, FrameworkDeactivatedIsInactiveWithoutOffers) {
  SetUpCluster();
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:1")}));
  ApplyOk(WithFramework("f1", &Event::mutable_framework_deactivated));
  EXPECT_EQ(state_.FindFramework("f1")->state(), FrameworkRecord::INACTIVE);
  EXPECT_EQ(state_.offer_count(), 0u);
  ExpectRejected(WithFramework("f1", &Event::mutable_framework_deactivated),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(Launch("f1", "a1", "t1", "cpus:1"),
                 absl::StatusCode::kFailedPrecondition);
}

TEST_F(MasterStateTest, FrameworkUpdatedDropsOffersOfRolesItLeaves) {
  SetUpCluster();
  Event update;
  *update.mutable_framework_updated()->mutable_info() =
      Info("f1", 60, {"web", "batch"});
  ApplyOk(update);
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:1", "web"),
                  MakeOffer("o2", "f1", "a1", "cpus:1", "batch")}));
  *update.mutable_framework_updated()->mutable_info() =
      Info("f1", 30, {"batch"});
  ApplyOk(update);
  EXPECT_EQ(state_.OffersOfFramework("f1"), std::vector<std::string>{"o2"});
  EXPECT_EQ(state_.FindFramework("f1")->info().failover_timeout(), 30);

  // While disconnected, a new failover_timeout moves the deadline.
  ApplyOk(WithFramework("f1", &Event::mutable_framework_disconnected));
  int64_t disconnected_at = now_ns_;
  now_ns_ += 5 * kSecond;
  *update.mutable_framework_updated()->mutable_info() =
      Info("f1", 300, {"batch"});
  ApplyOk(update);
  EXPECT_EQ(state_.FindFramework("f1")->failover_deadline().nanoseconds(),
            disconnected_at + 300 * kSecond);

  update.mutable_framework_updated()->mutable_info()->set_principal("x");
  ExpectRejected(update, absl::StatusCode::kFailedPrecondition);
}

TEST_F(MasterStateTest, FrameworkRemovedNeedsEndedTasksAndCompletesThem) {
  SetUpCluster();
  ApplyOk(Launch("f1", "a1", "t1", "cpus:1"));
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:1")}));
  ExpectRejected(WithFramework("f1", &Event::mutable_framework_removed),
                 absl::StatusCode::kFailedPrecondition);
  Event killed = Status("f1", "t1", v1::TASK_KILLED, "u1");
  killed.mutable_task_status_updated()->mutable_status()->set_reason(
      v1::TaskStatus::REASON_FRAMEWORK_REMOVED);
  ApplyOk(killed);
  ApplyOk(WithFramework("f1", &Event::mutable_framework_removed));
  const FrameworkRecord* f = state_.FindFramework("f1");
  EXPECT_EQ(f->state(), FrameworkRecord::COMPLETED);
  EXPECT_EQ(f->completed_tasks_size(), 1);
  EXPECT_EQ(state_.task_count(), 0u);
  EXPECT_EQ(state_.offer_count(), 0u);
  ExpectRejected(WithFramework("f1", &Event::mutable_framework_removed),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(Subscribed("f1"), absl::StatusCode::kFailedPrecondition);
}

// ---- Tasks
// --------------------------------------------------------------------

TEST_F(MasterStateTest, TasksLaunchedConsumeOffersAndReturnTheRest) {
  SetUpCluster();
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:2;mem:512"),
                  MakeOffer("o2", "f1", "a1", "ports:[31000-31004]")}));
  EXPECT_EQ(Available("a1"), R("cpus:2;mem:512;ports:[31005-31009]"));
  ApplyOk(Launch("f1", "a1", "t1", "cpus:1;mem:128;ports:[31002-31002]",
                 {"o1", "o2"}));
  EXPECT_EQ(state_.offer_count(), 0u);
  EXPECT_EQ(*state_.UsedResources("a1"),
            R("cpus:1;mem:128;ports:[31002-31002]"));
  EXPECT_EQ(Available("a1"),
            R("cpus:3;mem:896;ports:[31000-31001,31003-31009]"));
  const v1::TaskRecord* t = state_.FindTask("f1", "t1");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->task().state(), v1::TASK_STAGING);
  EXPECT_EQ(t->task().user(), "nobody");
  EXPECT_EQ(t->launched_by().position(), position_);
  EXPECT_EQ(state_.TasksOnAgent("a1").size(), 1u);
  EXPECT_EQ(state_.TasksOfFramework("f1").size(), 1u);
}

TEST_F(MasterStateTest, TasksLaunchedRejectsWhatTheAgentCannotHold) {
  SetUpCluster();
  ApplyOk(Subscribed("f2"));
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:3"),
                  MakeOffer("o2", "f2", "a1", "cpus:1")}));
  // Offered to someone else: not available without its offer.
  ExpectRejected(Launch("f1", "a1", "t1", "cpus:4", {"o1"}),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(Launch("f1", "a1", "t1", "cpus:1", {"o2"}),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(Launch("f1", "a1", "t1", "cpus:1", {"o9"}),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(Launch("f1", "a1", "t1", "cpus:1", {"o1", "o1"}),
                 absl::StatusCode::kInvalidArgument);
  ExpectRejected(Launch("f1", "a1", "t1", "gpus:1", {"o1"}),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(Launch("f1", "a9", "t1", "cpus:1"),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(Launch("f9", "a1", "t1", "cpus:1"),
                 absl::StatusCode::kFailedPrecondition);
  ApplyOk(Launch("f1", "a1", "t1", "cpus:3", {"o1"}));
  ExpectRejected(Launch("f1", "a1", "t1", "mem:1"),
                 absl::StatusCode::kFailedPrecondition);  // t1 is live
  Event two = Launch("f1", "a1", "t2", "mem:1");
  *two.mutable_tasks_launched()->add_tasks() = two.tasks_launched().tasks(0);
  ExpectRejected(two, absl::StatusCode::kInvalidArgument);
}

TEST_F(MasterStateTest, TaskStatusUpdatedRecordsTransitionsWithSource) {
  SetUpCluster();
  ApplyOk(Launch("f1", "a1", "t1", "cpus:1"));
  Event running = Status("f1", "t1", v1::TASK_RUNNING, "u1");
  running.mutable_task_status_updated()
      ->mutable_status()
      ->mutable_agent_id()
      ->set_value("a1");
  ApplyOk(running);
  const v1::TaskRecord* t = state_.FindTask("f1", "t1");
  EXPECT_EQ(t->task().state(), v1::TASK_RUNNING);
  EXPECT_EQ(t->task().status_update_uuid(), "u1");
  ASSERT_EQ(t->task().statuses_size(), 1);
  EXPECT_EQ(t->task().statuses(0).source(), v1::TaskStatus::SOURCE_EXECUTOR);
  EXPECT_EQ(t->unacknowledged_size(), 1);
  ExpectRejected(running, absl::StatusCode::kFailedPrecondition);  // dup uuid
  running.mutable_task_status_updated()
      ->mutable_status()
      ->mutable_agent_id()
      ->set_value("a2");
  running.mutable_task_status_updated()->mutable_status()->set_uuid("u2");
  ExpectRejected(running, absl::StatusCode::kFailedPrecondition);
  ExpectRejected(Status("f1", "t9", v1::TASK_RUNNING),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(Status("f9", "t1", v1::TASK_RUNNING),
                 absl::StatusCode::kFailedPrecondition);
  Event no_state = Status("f1", "t1", v1::TASK_RUNNING);
  no_state.mutable_task_status_updated()->mutable_status()->clear_state();
  ExpectRejected(no_state, absl::StatusCode::kInvalidArgument);
}

TEST_F(MasterStateTest, TaskStatusUpdatedTerminalFreesResources) {
  SetUpCluster();
  ApplyOk(Launch("f1", "a1", "t1", "cpus:2"));
  ApplyOk(Status("f1", "t1", v1::TASK_RUNNING));
  ApplyOk(Status("f1", "t1", v1::TASK_FAILED, "u9"));
  EXPECT_EQ(Available("a1"), R("cpus:4;mem:1024;ports:[31000-31009]"));
  // Kept until acknowledged, and final.
  ASSERT_NE(state_.FindTask("f1", "t1"), nullptr);
  ExpectRejected(Status("f1", "t1", v1::TASK_RUNNING),
                 absl::StatusCode::kFailedPrecondition);
}

// Tasks sharing an executor: its own resources are used once while any of
// its tasks is live on the agent (as the agent counts them), and freed with
// the last one.
TEST_F(MasterStateTest, AnExecutorsResourcesAreUsedOnceForAllItsTasks) {
  SetUpCluster();
  auto with_executor = [&](const std::string& task) {
    Event e = Launch("f1", "a1", task, "cpus:1;mem:100");
    v1::ExecutorInfo* executor =
        e.mutable_tasks_launched()->mutable_tasks(0)->mutable_executor();
    e.mutable_tasks_launched()->mutable_tasks(0)->clear_command();
    executor->mutable_executor_id()->set_value("shared");
    executor->mutable_command()->set_value("run-executor");
    R("cpus:0.5;mem:200")
        .AllocatedTo("web")
        .ToProto(executor->mutable_resources());
    return e;
  };
  ApplyOk(with_executor("t1"));
  EXPECT_EQ(Available("a1"), R("cpus:2.5;mem:724;ports:[31000-31009]"));
  EXPECT_TRUE(state_.ExecutorHasLiveTasks("a1", "f1", "shared"));
  ApplyOk(with_executor("t2"));
  EXPECT_EQ(Available("a1"), R("cpus:1.5;mem:624;ports:[31000-31009]"));
  // Not enough for a third task's own resources plus nothing else: refused
  // only by what it really needs (cpus 1 fits, mem 700 does not).
  ExpectRejected(Launch("f1", "a1", "big", "cpus:1;mem:700"),
                 absl::StatusCode::kFailedPrecondition);
  ApplyOk(Status("f1", "t1", v1::TASK_FINISHED, "u1"));
  EXPECT_EQ(Available("a1"), R("cpus:2.5;mem:724;ports:[31000-31009]"));
  EXPECT_TRUE(state_.ExecutorHasLiveTasks("a1", "f1", "shared"));
  ApplyOk(Status("f1", "t2", v1::TASK_FINISHED, "u2"));
  EXPECT_EQ(Available("a1"), R("cpus:4;mem:1024;ports:[31000-31009]"));
  EXPECT_FALSE(state_.ExecutorHasLiveTasks("a1", "f1", "shared"));
}

TEST_F(MasterStateTest, TaskStatusUpdatedKeepsLatestAgentUuid) {
  SetUpCluster();
  ApplyOk(Launch("f1", "a1", "t1", "cpus:1"));
  ApplyOk(Status("f1", "t1", v1::TASK_RUNNING, "u1"));
  EXPECT_EQ(state_.FindTask("f1", "t1")->latest_agent_uuid(), "u1");
  ApplyOk(Ack("f1", "t1", "u1"));
  // Master-sourced updates leave it alone.
  Event master = Status("f1", "t1", v1::TASK_RUNNING, "m1");
  master.mutable_task_status_updated()->mutable_status()->set_source(
      v1::TaskStatus::SOURCE_MASTER);
  ApplyOk(master);
  EXPECT_EQ(state_.FindTask("f1", "t1")->latest_agent_uuid(), "u1");
  // Enough updates without uuid to push u1 out of the bounded history.
  for (int i = 0; i < MasterState::kMaxStatusHistory; ++i) {
    ApplyOk(Status("f1", "t1", v1::TASK_RUNNING));
  }
  EXPECT_EQ(state_.FindTask("f1", "t1")->latest_agent_uuid(), "u1");
}

TEST_F(MasterStateTest, TaskStatusUpdatedRejectsAcknowledgedAgentDuplicate) {
  SetUpCluster();
  ApplyOk(Launch("f1", "a1", "t1", "cpus:1"));
  ApplyOk(Status("f1", "t1", v1::TASK_RUNNING, "u1"));
  ApplyOk(Ack("f1", "t1", "u1"));
  // No longer unacknowledged, but still the latest from the agent.
  ExpectRejected(Status("f1", "t1", v1::TASK_RUNNING, "u1"),
                 absl::StatusCode::kFailedPrecondition);
  ApplyOk(Status("f1", "t1", v1::TASK_RUNNING, "u2"));
  EXPECT_EQ(state_.FindTask("f1", "t1")->latest_agent_uuid(), "u2");
}

// ExecutorExited is history only: it changes nothing but the applied
// position, and needs a known agent and framework.
TEST_F(MasterStateTest, ExecutorExitedIsHistoryOnly) {
  SetUpCluster();
  auto exited = [](const std::string& agent, const std::string& framework,
                   const std::string& executor) {
    Event e;
    v1::ExecutorExited* x = e.mutable_executor_exited();
    x->mutable_agent_id()->set_value(agent);
    x->mutable_framework_id()->set_value(framework);
    x->mutable_executor_id()->set_value(executor);
    x->set_status(9);
    return e;
  };
  ApplyOk(Launch("f1", "a1", "t1", "cpus:1"));
  const size_t tasks = state_.task_count();
  ApplyOk(exited("a1", "f1", "e1"));
  EXPECT_EQ(state_.task_count(), tasks);
  EXPECT_EQ(Available("a1"), R("cpus:3;mem:1024;ports:[31000-31009]"));
  ExpectRejected(exited("nope", "f1", "e1"),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(exited("a1", "nope", "e1"),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(exited("a1", "f1", ""), absl::StatusCode::kInvalidArgument);
}

TEST_F(MasterStateTest, TaskKillRequestedIsRecordedUntilTheTaskEnds) {
  SetUpCluster();
  ApplyOk(Launch("f1", "a1", "t1", "cpus:1"));
  ApplyOk(Status("f1", "t1", v1::TASK_RUNNING));
  Event kill = KillRequested("f1", "t1");
  kill.mutable_task_kill_requested()
      ->mutable_kill_policy()
      ->mutable_grace_period()
      ->set_nanoseconds(5 * kSecond);
  ApplyOk(kill);
  const v1::TaskRecord* t = state_.FindTask("f1", "t1");
  ASSERT_TRUE(t->has_kill_request());
  EXPECT_EQ(t->kill_request().kill_policy().grace_period().nanoseconds(),
            5 * kSecond);
  EXPECT_EQ(t->kill_request().time().nanoseconds(), now_ns_);
  EXPECT_EQ(t->kill_request().requested_by().position(), position_);
  EXPECT_EQ(t->kill_request().principal(), "test");
  EXPECT_EQ(t->task().state(), v1::TASK_RUNNING);  // no implicit transition

  // A retry replaces the request; a non-terminal update keeps it.
  ApplyOk(KillRequested("f1", "t1"));
  EXPECT_FALSE(state_.FindTask("f1", "t1")->kill_request().has_kill_policy());
  ApplyOk(Status("f1", "t1", v1::TASK_KILLING, "u1"));
  EXPECT_TRUE(state_.FindTask("f1", "t1")->has_kill_request());
  ApplyOk(Status("f1", "t1", v1::TASK_KILLED, "u2"));
  t = state_.FindTask("f1", "t1");
  ASSERT_NE(t, nullptr);  // awaiting acknowledgements
  EXPECT_FALSE(t->has_kill_request());
}

TEST_F(MasterStateTest, TaskKillRequestedRejectsEndedOrUnknownTask) {
  SetUpCluster();
  ApplyOk(Launch("f1", "a1", "t1", "cpus:1"));
  ApplyOk(Status("f1", "t1", v1::TASK_FAILED, "u1"));
  ExpectRejected(KillRequested("f1", "t1"),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(KillRequested("f1", "t9"),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(KillRequested("f9", "t1"),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(KillRequested("f1", ""), absl::StatusCode::kInvalidArgument);
  ApplyOk(Launch("f1", "a1", "t2", "cpus:1"));
  Event negative = KillRequested("f1", "t2");
  negative.mutable_task_kill_requested()
      ->mutable_kill_policy()
      ->mutable_grace_period()
      ->set_nanoseconds(-1);
  ExpectRejected(negative, absl::StatusCode::kInvalidArgument);
}

TEST_F(MasterStateTest, TaskStatusHistoryIsBounded) {
  SetUpCluster();
  ApplyOk(Launch("f1", "a1", "t1", "cpus:1"));
  for (int i = 0; i < 3 * MasterState::kMaxStatusHistory; ++i) {
    Event e = Status("f1", "t1", v1::TASK_RUNNING);
    e.mutable_task_status_updated()->mutable_status()->set_message(
        absl::StrCat("update ", i));
    ApplyOk(e);
  }
  const v1::Task& task = state_.FindTask("f1", "t1")->task();
  ASSERT_EQ(task.statuses_size(), MasterState::kMaxStatusHistory);
  EXPECT_EQ(task.statuses(task.statuses_size() - 1).message(),
            absl::StrCat("update ", 3 * MasterState::kMaxStatusHistory - 1));
}

TEST_F(MasterStateTest, TaskStatusAcknowledgedCompletesAnEndedTask) {
  SetUpCluster();
  ApplyOk(Launch("f1", "a1", "t1", "cpus:1"));
  ApplyOk(Status("f1", "t1", v1::TASK_RUNNING, "u1"));
  ApplyOk(Status("f1", "t1", v1::TASK_FINISHED, "u2"));
  ExpectRejected(Ack("f1", "t1", "u3"), absl::StatusCode::kFailedPrecondition);
  ExpectRejected(Ack("f1", "t1", ""), absl::StatusCode::kInvalidArgument);
  ApplyOk(Ack("f1", "t1", "u2"));
  ASSERT_NE(state_.FindTask("f1", "t1"), nullptr);  // u1 still pending
  EXPECT_EQ(state_.FindTask("f1", "t1")->unacknowledged_size(), 1);
  ApplyOk(Ack("f1", "t1", "u1"));
  EXPECT_EQ(state_.FindTask("f1", "t1"), nullptr);
  const FrameworkRecord* f = state_.FindFramework("f1");
  ASSERT_EQ(f->completed_tasks_size(), 1);
  EXPECT_EQ(f->completed_tasks(0).state(), v1::TASK_FINISHED);
  ExpectRejected(Ack("f1", "t1", "u1"), absl::StatusCode::kFailedPrecondition);
  // An ended task's id may be used again.
  ApplyOk(Launch("f1", "a1", "t1", "cpus:1"));
}

TEST_F(MasterStateTest, CompletedTasksAreBoundedPerFramework) {
  SetUpCluster();
  for (int i = 0; i < MasterState::kMaxCompletedTasksPerFramework + 5; ++i) {
    std::string id = absl::StrCat("t", i);
    ApplyOk(Launch("f1", "a1", id, "cpus:1"));
    ApplyOk(Status("f1", id, v1::TASK_FINISHED));  // no uuid: no ack needed
  }
  const FrameworkRecord* f = state_.FindFramework("f1");
  ASSERT_EQ(f->completed_tasks_size(),
            MasterState::kMaxCompletedTasksPerFramework);
  EXPECT_EQ(f->completed_tasks(0).task_id().value(), "t5");
}

// ---- Offers
// -------------------------------------------------------------------

TEST_F(MasterStateTest, OffersCreatedReserveResourcesForFrameworks) {
  SetUpCluster();
  ApplyOk(Subscribed("f2"));
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:1;mem:100"),
                  MakeOffer("o2", "f2", "a1", "cpus:2")}));
  EXPECT_EQ(*state_.OfferedResources("a1"), R("cpus:3;mem:100"));
  EXPECT_EQ(Available("a1"), R("cpus:1;mem:924;ports:[31000-31009]"));
  const v1::OfferRecord* o = state_.FindOffer("o1");
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(o->created_time().nanoseconds(), now_ns_);
  EXPECT_EQ(o->offer().allocation_info().role(), "web");
}

TEST_F(MasterStateTest, OffersCreatedNeverOffersTheSameResourcesTwice) {
  SetUpCluster();
  ApplyOk(Subscribed("f2"));
  // Together the batch exceeds the agent.
  ExpectRejected(Offers({MakeOffer("o1", "f1", "a1", "cpus:3"),
                         MakeOffer("o2", "f2", "a1", "cpus:3")}),
                 absl::StatusCode::kFailedPrecondition);
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "ports:[31000-31005]")}));
  ExpectRejected(Offers({MakeOffer("o2", "f2", "a1", "ports:[31005-31006]")}),
                 absl::StatusCode::kFailedPrecondition);
  ExpectRejected(Offers({MakeOffer("o1", "f2", "a1", "cpus:1")}),
                 absl::StatusCode::kFailedPrecondition);  // id in use
  ExpectRejected(Offers({MakeOffer("o3", "f1", "a1", "cpus:1", "batch")}),
                 absl::StatusCode::kFailedPrecondition);  // role
  ExpectRejected(Offers({MakeOffer("o3", "f1", "a1", "")}),
                 absl::StatusCode::kInvalidArgument);
}

TEST_F(MasterStateTest, OffersRescindedReturnResources) {
  SetUpCluster();
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:1"),
                  MakeOffer("o2", "f1", "a1", "cpus:1")}));
  Event e;
  e.mutable_offers_rescinded()->add_offer_ids()->set_value("o1");
  ApplyOk(e);
  EXPECT_EQ(state_.OffersOnAgent("a1"), std::vector<std::string>{"o2"});
  ExpectRejected(e, absl::StatusCode::kFailedPrecondition);
  Event twice;
  twice.mutable_offers_rescinded()->add_offer_ids()->set_value("o2");
  twice.mutable_offers_rescinded()->add_offer_ids()->set_value("o2");
  ExpectRejected(twice, absl::StatusCode::kInvalidArgument);
}

TEST_F(MasterStateTest, OffersDeclinedOnlyByTheirFramework) {
  SetUpCluster();
  ApplyOk(Subscribed("f2"));
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:1")}));
  Event e = WithFramework("f2", &Event::mutable_offers_declined);
  e.mutable_offers_declined()->add_offer_ids()->set_value("o1");
  e.mutable_offers_declined()->mutable_filters()->set_refuse_seconds(30);
  ExpectRejected(e, absl::StatusCode::kFailedPrecondition);
  e.mutable_offers_declined()->mutable_framework_id()->set_value("f1");
  ApplyOk(e);
  EXPECT_EQ(state_.offer_count(), 0u);
  EXPECT_EQ(Available("a1"), R("cpus:4;mem:1024;ports:[31000-31009]"));
}

TEST_F(MasterStateTest, OffersExpiredAreRemoved) {
  SetUpCluster();
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:1")}));
  Event e;
  e.mutable_offers_expired()->add_offer_ids()->set_value("o1");
  ApplyOk(e);
  EXPECT_EQ(state_.offer_count(), 0u);
  ExpectRejected(e, absl::StatusCode::kFailedPrecondition);
  ExpectRejected(
      [] {
        Event empty;
        empty.mutable_offers_expired();
        return empty;
      }(),
      absl::StatusCode::kInvalidArgument);
}

// ---- Roles, quota, reservations, maintenance
// ----------------------------------

TEST_F(MasterStateTest, WeightsUpdatedSetsListedRoles) {
  Event e;
  auto* w = e.mutable_weights_updated()->add_weights();
  w->set_role("web");
  w->set_weight(2.5);
  ApplyOk(e);
  EXPECT_EQ(state_.weights().at("web"), 2.5);
  w->set_weight(0);
  ExpectRejected(e, absl::StatusCode::kInvalidArgument);
  w->set_weight(1);
  w->clear_role();
  ExpectRejected(e, absl::StatusCode::kInvalidArgument);
}

TEST_F(MasterStateTest, QuotaUpdatedSetsAndRemovesQuota) {
  Event e;
  auto* q = e.mutable_quota_updated()->add_configs();
  q->set_role("web");
  (*q->mutable_guarantees())["cpus"].set_value(2);
  (*q->mutable_limits())["cpus"].set_value(4);
  ApplyOk(e);
  EXPECT_EQ(state_.quotas().at("web").limits().at("cpus").value(), 4);
  (*q->mutable_limits())["cpus"].set_value(1);
  ExpectRejected(e, absl::StatusCode::kInvalidArgument);  // guarantee > limit
  q->clear_guarantees();
  q->clear_limits();
  ApplyOk(e);
  EXPECT_TRUE(state_.quotas().empty());
  q->set_role("*");
  ExpectRejected(e, absl::StatusCode::kInvalidArgument);
}

TEST_F(MasterStateTest, ResourcesReservedAndUnreservedMoveTotal) {
  SetUpCluster();
  ApplyOk(Reservation(true, "a1", "cpus:2;ports:[31000-31001]", "web"));
  absl::StatusOr<Resources> reserved = state_.ReservedResources("a1");
  EXPECT_DOUBLE_EQ(reserved->ScalarSum("cpus"), 2);
  EXPECT_EQ(reserved->ReservedTo("web"), *reserved);
  EXPECT_EQ(state_.TotalResources("a1")->Unreserved(),
            R("cpus:2;mem:1024;ports:[31002-31009]"));
  // Not enough unreserved cpus left.
  ExpectRejected(Reservation(true, "a1", "cpus:3", "web"),
                 absl::StatusCode::kFailedPrecondition);
  // Cannot unreserve more than is reserved.
  ExpectRejected(Reservation(false, "a1", "cpus:3", "web"),
                 absl::StatusCode::kFailedPrecondition);
  ApplyOk(Reservation(false, "a1", "cpus:2;ports:[31000-31001]", "web"));
  EXPECT_EQ(*state_.TotalResources("a1"),
            R("cpus:4;mem:1024;ports:[31000-31009]"));
  // Static reservations cannot be undone by an event.
  Event stat = Reservation(false, "a1", "cpus:1", "web");
  stat.mutable_resources_unreserved()
      ->mutable_resources(0)
      ->mutable_reservations(0)
      ->set_type(v1::Resource::ReservationInfo::STATIC);
  ExpectRejected(stat, absl::StatusCode::kInvalidArgument);
  ExpectRejected(Reservation(true, "a9", "cpus:1", "web"),
                 absl::StatusCode::kFailedPrecondition);
}

TEST_F(MasterStateTest, ResourcesReservedMayConsumeOffers) {
  SetUpCluster();
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:4")}));
  ExpectRejected(Reservation(true, "a1", "cpus:1", "web"),
                 absl::StatusCode::kFailedPrecondition);  // all offered
  Event e = Reservation(true, "a1", "cpus:1", "web");
  e.mutable_resources_reserved()->add_offer_ids()->set_value("o1");
  ApplyOk(e);
  EXPECT_EQ(state_.offer_count(), 0u);
  EXPECT_EQ(Available("a1").ReservedTo("web").ScalarSum("cpus"), 1);
}

TEST_F(MasterStateTest, MaintenanceScheduleUpdatedReplacesSchedule) {
  Event e;
  auto* window = e.mutable_maintenance_schedule_updated()
                     ->mutable_schedule()
                     ->add_windows();
  window->add_machine_ids()->set_hostname("a1.example");
  window->mutable_unavailability()->mutable_start()->set_nanoseconds(5);
  ApplyOk(e);
  EXPECT_EQ(state_.maintenance_schedule().windows_size(), 1);
  window->add_machine_ids()->set_hostname("a1.example");
  ExpectRejected(e, absl::StatusCode::kInvalidArgument);
  window->mutable_machine_ids()->RemoveLast();
  window->clear_unavailability();
  ExpectRejected(e, absl::StatusCode::kInvalidArgument);
}

// ---- Snapshots
// ----------------------------------------------------------------

TEST_F(MasterStateTest, SnapshotRoundTripsAndCoversLastPosition) {
  SetUpCluster();
  ApplyOk(Launch("f1", "a1", "t1", "cpus:1"));
  ApplyOk(Status("f1", "t1", v1::TASK_RUNNING, "u1"));
  ApplyOk(KillRequested("f1", "t1"));
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:1")}));
  v1::MasterSnapshot snapshot = state_.ToSnapshot();
  EXPECT_EQ(snapshot.last_applied().position(), position_);
  absl::StatusOr<MasterState> copy = MasterState::FromSnapshot(snapshot);
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_TRUE(*copy == state_);
  EXPECT_EQ(copy->SerializeCanonical(), state_.SerializeCanonical());
  EXPECT_EQ(*copy->AvailableResources("a1"), Available("a1"));
}

TEST_F(MasterStateTest, FromSnapshotRejectsBrokenInvariants) {
  SetUpCluster();
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:4")}));
  v1::MasterSnapshot snapshot = state_.ToSnapshot();
  // Over-offered agent.
  snapshot.mutable_agents(0)->clear_total_resources();
  EXPECT_EQ(MasterState::FromSnapshot(snapshot).status().code(),
            absl::StatusCode::kDataLoss);
  // A task on an unknown agent.
  snapshot = state_.ToSnapshot();
  auto* t = snapshot.add_tasks();
  t->mutable_task()->mutable_task_id()->set_value("tx");
  t->mutable_task()->mutable_framework_id()->set_value("f1");
  t->mutable_task()->mutable_agent_id()->set_value("nope");
  EXPECT_EQ(MasterState::FromSnapshot(snapshot).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---- Apply(Event&&)
// ------------------------------------------------------------

// Offers, a launch consuming one (a task with an executor and one without),
// status updates with and without uuids, acknowledgements and completion:
// folding moved events gives the same state, byte for byte, as folding
// copies.
TEST_F(MasterStateTest, ApplyOfMovedEventsEqualsApplyOfCopies) {
  Event launch = Launch("f1", "a1", "t1", "cpus:1;mem:128", {"o1"});
  v1::TaskInfo* t2 = launch.mutable_tasks_launched()->add_tasks();
  *t2 = launch.tasks_launched().tasks(0);
  t2->mutable_task_id()->set_value("t2");
  t2->mutable_executor()->mutable_executor_id()->set_value("e2");
  SetResources("cpus:0.5;mem:32", t2->mutable_executor()->mutable_resources());
  std::vector<Event> events = {
      AgentRegistered("a1", "cpus:4;mem:1024;ports:[31000-31009]"),
      Subscribed("f1"),
      Offers({MakeOffer("o1", "f1", "a1", "cpus:3;mem:512"),
              MakeOffer("o2", "f1", "a1", "ports:[31000-31004]")}),
      launch,
      Status("f1", "t1", v1::TASK_RUNNING, "u1"),
      Status("f1", "t2", v1::TASK_RUNNING),
      Ack("f1", "t1", "u1"),
      Status("f1", "t1", v1::TASK_FINISHED, "u2"),
      Status("f1", "t2", v1::TASK_FAILED),
      Ack("f1", "t1", "u2"),
  };
  MasterState copied;
  MasterState moved;
  for (size_t i = 0; i < events.size(); ++i) {
    events[i].set_position(i + 1);
    events[i].mutable_time()->set_nanoseconds(now_ns_ + int64_t(i));
    Event copy = events[i];
    absl::Status s = copied.Apply(events[i]);
    ASSERT_TRUE(s.ok()) << s << "\n" << events[i].DebugString();
    s = moved.Apply(std::move(copy));
    ASSERT_TRUE(s.ok()) << s << "\n" << events[i].DebugString();
    ASSERT_EQ(moved.SerializeCanonical(), copied.SerializeCanonical())
        << "after event #" << i;
  }
  EXPECT_EQ(moved.task_count(), 0u);
  EXPECT_EQ(moved.FindFramework("f1")->completed_tasks_size(), 2);
  EXPECT_TRUE(moved.CheckInvariants().ok());
}

TEST_F(MasterStateTest, RejectedMovedEventIsLeftUnchanged) {
  SetUpCluster();
  ApplyOk(Offers({MakeOffer("o1", "f1", "a1", "cpus:1")}));
  Event launch = Launch("f1", "a1", "t1", "cpus:5", {"o1"});  // > total
  launch.set_position(++position_);
  const std::string bytes = launch.SerializeAsString();
  MasterState before = state_;
  EXPECT_EQ(state_.Apply(std::move(launch)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(launch.SerializeAsString(),
            bytes);  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(state_ == before);
}

// A completed task's record is cleared and reused for a later launch: the new
// task's record must be exactly what a fresh state records.
TEST_F(MasterStateTest, TaskLaunchedAfterACompletionIsRecordedAsInAFreshState) {
  SetUpCluster();
  Event rich = Launch("f1", "a1", "t1", "cpus:2;mem:256");
  v1::TaskInfo* info = rich.mutable_tasks_launched()->mutable_tasks(0);
  info->mutable_labels()->add_labels()->set_key("tier");
  info->mutable_kill_policy()->mutable_grace_period()->set_nanoseconds(5);
  info->mutable_command()->set_user("root");
  ApplyOk(rich);
  ApplyOk(Status("f1", "t1", v1::TASK_RUNNING, "u1"));
  ApplyOk(KillRequested("f1", "t1"));
  ApplyOk(Status("f1", "t1", v1::TASK_KILLED, "u2"));
  ApplyOk(Ack("f1", "t1", "u1"));
  ApplyOk(Ack("f1", "t1", "u2"));
  ASSERT_EQ(state_.FindTask("f1", "t1"), nullptr);  // completed

  Event plain = Launch("f1", "a1", "t2", "cpus:1");
  plain.set_position(100);
  plain.mutable_time()->set_nanoseconds(now_ns_);
  plain.set_principal("test");
  ASSERT_TRUE(state_.Apply(plain).ok());
  MasterState fresh;
  Event agent = AgentRegistered("a1", "cpus:4;mem:1024;ports:[31000-31009]");
  agent.set_position(1);
  Event framework = Subscribed("f1");
  framework.set_position(2);
  ASSERT_TRUE(fresh.Apply(agent).ok());
  ASSERT_TRUE(fresh.Apply(framework).ok());
  ASSERT_TRUE(fresh.Apply(plain).ok());
  ASSERT_NE(state_.FindTask("f1", "t2"), nullptr);
  EXPECT_EQ(state_.FindTask("f1", "t2")->SerializeAsString(),
            fresh.FindTask("f1", "t2")->SerializeAsString());
  position_ = 100;
}

// A removed offer's record is cleared and reused for a later offer: the new
// offer's record must be exactly what a fresh state records.
TEST_F(MasterStateTest, OfferCreatedAfterARemovalIsRecordedAsInAFreshState) {
  SetUpCluster();
  v1::Offer rich =
      MakeOffer("o1", "f1", "a1", "cpus:2;mem:256;ports:[31000-31001]");
  rich.mutable_url()->set_path("/x");
  rich.add_executor_ids()->set_value("e1");
  ApplyOk(Offers({rich}));
  Event rescind;
  rescind.mutable_offers_rescinded()->add_offer_ids()->set_value("o1");
  ApplyOk(rescind);
  ASSERT_EQ(state_.FindOffer("o1"), nullptr);

  Event plain = Offers({MakeOffer("o2", "f1", "a1", "cpus:1")});
  plain.set_position(100);
  plain.mutable_time()->set_nanoseconds(now_ns_);
  ASSERT_TRUE(state_.Apply(plain).ok());
  MasterState fresh;
  Event agent = AgentRegistered("a1", "cpus:4;mem:1024;ports:[31000-31009]");
  agent.set_position(1);
  Event framework = Subscribed("f1");
  framework.set_position(2);
  ASSERT_TRUE(fresh.Apply(agent).ok());
  ASSERT_TRUE(fresh.Apply(framework).ok());
  ASSERT_TRUE(fresh.Apply(plain).ok());
  ASSERT_NE(state_.FindOffer("o2"), nullptr);
  EXPECT_EQ(state_.FindOffer("o2")->SerializeAsString(),
            fresh.FindOffer("o2")->SerializeAsString());
  position_ = 100;
}

}  // namespace
}  // namespace cairn::master
