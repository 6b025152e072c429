#include "master/state_json.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "common/json_value.h"
#include "gtest/gtest.h"
#include "master/resources.h"
#include "master/state.h"

namespace cairn::master {
namespace {

using v1::Event;

constexpr int64_t kSecond = 1000000000;
constexpr int64_t kBase = 1700000000;  // event p happens at kBase + p seconds

// ---- JSON reading helpers ---------------------------------------------------

JsonValue Parse(const std::string& text) {
  absl::StatusOr<JsonValue> v = ParseJson(text);
  EXPECT_TRUE(v.ok()) << v.status() << "\n" << text;
  return v.ok() ? *std::move(v) : JsonValue();
}

// The field `name` of `object`; a null value (and a test failure) when absent.
const JsonValue& Get(const JsonValue& object, const std::string& name) {
  static const JsonValue kNull;
  const JsonValue* v = object.Find(name);
  if (v == nullptr) {
    ADD_FAILURE() << "no field '" << name << "'";
    return kNull;
  }
  return *v;
}

double Num(const JsonValue& object, const std::string& name) {
  const JsonValue& v = Get(object, name);
  EXPECT_EQ(v.kind, JsonValue::Kind::kNumber) << name;
  return v.kind == JsonValue::Kind::kNumber ? std::stod(v.text) : -1;
}

std::string Str(const JsonValue& object, const std::string& name) {
  const JsonValue& v = Get(object, name);
  EXPECT_EQ(v.kind, JsonValue::Kind::kString) << name;
  return v.text;
}

bool Has(const JsonValue& object, const std::string& name) {
  return object.Find(name) != nullptr;
}

// The element of `array` whose "id" is `id`; nullptr when none.
const JsonValue* ById(const JsonValue& array, const std::string& id) {
  for (const JsonValue& item : array.items) {
    std::optional<std::string> item_id = item.Text("id");
    if (item_id.has_value() && *item_id == id) return &item;
  }
  return nullptr;
}

std::vector<std::string> Strings(const JsonValue& array) {
  std::vector<std::string> out;
  for (const JsonValue& item : array.items) out.push_back(item.text);
  return out;
}

std::vector<std::string> Ids(const JsonValue& array,
                             const std::string& key = "id") {
  std::vector<std::string> out;
  for (const JsonValue& item : array.items) {
    out.push_back(item.Text(key).value_or("?"));
  }
  return out;
}

// ---- Events -----------------------------------------------------------------

Resources Res(const std::string& text) {
  absl::StatusOr<Resources> r = Resources::Parse(text);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : Resources();
}

Event AgentRegistered(const std::string& id, const std::string& resources) {
  Event e;
  auto* registered = e.mutable_agent_registered();
  auto* info = registered->mutable_info();
  info->mutable_id()->set_value(id);
  info->set_hostname(id + ".example");
  info->set_port(5051);
  Res(resources).ToProto(info->mutable_resources());
  registered->set_version("1.2.0");
  registered->add_capabilities()->set_type(
      v1::AgentInfo::Capability::MULTI_ROLE);
  return e;
}

v1::FrameworkInfo Info(const std::string& id, bool multi_role) {
  v1::FrameworkInfo info;
  info.mutable_id()->set_value(id);
  info.set_user("nobody");
  info.set_name(id + "-name");
  info.set_principal("p-" + id);
  info.set_failover_timeout(60);
  info.set_hostname("sched.example");
  info.set_webui_url("http://sched.example/ui");
  if (multi_role) {
    info.add_capabilities()->set_type(
        v1::FrameworkInfo::Capability::MULTI_ROLE);
    info.add_roles("web");
  } else {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    info.set_role("web");
#pragma GCC diagnostic pop
  }
  return info;
}

Event Subscribed(const v1::FrameworkInfo& info) {
  Event e;
  *e.mutable_framework_subscribed()->mutable_info() = info;
  return e;
}

Event Launch(const std::string& framework, const std::string& agent,
             const std::string& task, const std::string& resources,
             const std::string& executor = "") {
  Event e;
  auto* launch = e.mutable_tasks_launched();
  launch->mutable_framework_id()->set_value(framework);
  auto* t = launch->add_tasks();
  t->set_name(task + "-name");
  t->mutable_task_id()->set_value(task);
  t->mutable_agent_id()->set_value(agent);
  Res(resources).AllocatedTo("web").ToProto(t->mutable_resources());
  if (executor.empty()) {
    t->mutable_command()->set_value("sleep 1000");
  } else {
    auto* info = t->mutable_executor();
    info->mutable_executor_id()->set_value(executor);
    info->set_name(executor + "-name");
    info->mutable_command()->set_value("./run-executor");
    info->mutable_command()->add_arguments("--fast");
  }
  return e;
}

Event Status(const std::string& framework, const std::string& task,
             v1::TaskState state, const std::string& uuid, int64_t seconds) {
  Event e;
  auto* u = e.mutable_task_status_updated();
  u->mutable_framework_id()->set_value(framework);
  u->mutable_status()->mutable_task_id()->set_value(task);
  u->mutable_status()->set_state(state);
  u->mutable_status()->set_source(v1::TaskStatus::SOURCE_EXECUTOR);
  u->mutable_status()->set_uuid(uuid);
  u->mutable_status()->set_timestamp(static_cast<double>(seconds));
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

// ---- The state every test reads ---------------------------------------------
//
// Agents: a1 (active: a dynamic reservation for "web", tasks, an offer),
// a2 (unreachable, with t3), a3 (removed), a4 (active, draining).
// Frameworks: f1 (MULTI_ROLE, connected): t1 running, t2 finished and
// acknowledged (completed), t3 unreachable, t4 staging with a custom
// executor, offer o1; f2 (single role, removed): t5 killed (completed).
class StateJsonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Event a1 = AgentRegistered("a1",
                               "cpus:4;mem:4096;disk:100;"
                               "ports:[31000-31009]");
    auto* info = a1.mutable_agent_registered()->mutable_info();
    auto* rack = info->add_attributes();
    rack->set_name("rack");
    rack->set_type(v1::MesosValue::TEXT);
    rack->mutable_text()->set_value("r1");
    auto* level = info->add_attributes();
    level->set_name("level");
    level->set_type(v1::MesosValue::SCALAR);
    level->mutable_scalar()->set_value(2);
    auto* fault = info->mutable_domain()->mutable_fault_domain();
    fault->mutable_region()->set_name("eu");
    fault->mutable_zone()->set_name("eu-1");
    ApplyOk(a1);                                            // 1
    ApplyOk(AgentRegistered("a2", "cpus:2;mem:1024"));      // 2
    ApplyOk(AgentRegistered("a3", "cpus:1;mem:512"));       // 3
    ApplyOk(AgentRegistered("a4", "cpus:1;mem:512"));       // 4
    ApplyOk(Subscribed(Info("f1", /*multi_role=*/true)));   // 5
    ApplyOk(Subscribed(Info("f2", /*multi_role=*/false)));  // 6

    Event reserve;  // 7
    reserve.mutable_resources_reserved()->mutable_agent_id()->set_value("a1");
    for (v1::Resource r : Res("cpus:1;mem:512").ToProto()) {
      auto* reservation = r.add_reservations();
      reservation->set_type(v1::Resource::ReservationInfo::DYNAMIC);
      reservation->set_role("web");
      reservation->set_principal("ops");
      *reserve.mutable_resources_reserved()->add_resources() = r;
    }
    ApplyOk(reserve);

    ApplyOk(Launch("f1", "a1", "t1", "cpus:1;mem:256;ports:[31000-31001]"));
    ApplyOk(Status("f1", "t1", v1::TASK_RUNNING, "u1", kBase + 100));
    ApplyOk(Ack("f1", "t1", "u1"));
    ApplyOk(Launch("f1", "a1", "t2", "cpus:0.5;mem:128"));
    ApplyOk(Status("f1", "t2", v1::TASK_FINISHED, "u2", kBase + 50));
    ApplyOk(Ack("f1", "t2", "u2"));
    ApplyOk(Launch("f1", "a2", "t3", "cpus:1;mem:256"));
    ApplyOk(Status("f1", "t3", v1::TASK_RUNNING, "u3", kBase + 200));
    ApplyOk(Ack("f1", "t3", "u3"));
    Event unreachable;
    unreachable.mutable_agent_unreachable()->mutable_agent_id()->set_value(
        "a2");
    ApplyOk(unreachable);
    ApplyOk(Status("f1", "t3", v1::TASK_UNREACHABLE, "u4", kBase + 300));
    ApplyOk(Launch("f1", "a1", "t4", "cpus:0.5;mem:64", "exec-1"));

    ApplyOk(Launch("f2", "a1", "t5", "cpus:0.1;mem:32"));
    ApplyOk(Status("f2", "t5", v1::TASK_KILLED, "u5", kBase + 10));
    ApplyOk(Ack("f2", "t5", "u5"));
    Event removed;
    removed.mutable_framework_removed()->mutable_framework_id()->set_value(
        "f2");
    ApplyOk(removed);

    Event gone;
    gone.mutable_agent_removed()->mutable_agent_id()->set_value("a3");
    ApplyOk(gone);
    Event drain;
    drain.mutable_agent_drain_started()->mutable_agent_id()->set_value("a4");
    drain.mutable_agent_drain_started()->mutable_config()->set_mark_gone(true);
    ApplyOk(drain);

    Event offers;
    offers.mutable_offers_created()->set_allocation_cycle(1);
    v1::Offer* offer = offers.mutable_offers_created()->add_offers();
    offer->mutable_id()->set_value("o1");
    offer->mutable_framework_id()->set_value("f1");
    offer->mutable_agent_id()->set_value("a1");
    offer->set_hostname("a1.example");
    offer->mutable_allocation_info()->set_role("web");
    Res("cpus:1;mem:1024;ports:[31005-31009]")
        .AllocatedTo("web")
        .ToProto(offer->mutable_resources());
    ApplyOk(offers);
    ASSERT_TRUE(state_.CheckInvariants().ok()) << state_.CheckInvariants();
  }

  void ApplyOk(Event e) {
    e.set_position(++position_);
    e.mutable_time()->set_nanoseconds((kBase + position_) * kSecond);
    e.set_principal("test");
    absl::Status s = state_.Apply(e);
    ASSERT_TRUE(s.ok()) << s << "\n" << e.DebugString();
  }

  MasterIdentity Identity() const {
    MasterIdentity identity;
    identity.self = {"m-1", "master1.example", "10.0.0.1", 5050};
    identity.leader = identity.self;
    identity.version = "0.1.0";
    identity.cluster = "prod";
    identity.log_dir = "/var/log/cairn";
    identity.start_time = absl::FromUnixSeconds(kBase);
    identity.elected_time = absl::FromUnixMillis(kBase * 1000 + 1500);
    identity.flags = {{"port", "5050"}, {"work_dir", "/var/lib/cairn"}};
    identity.cairn.masters = {"10.0.0.1:5050", "10.0.0.2:5050"};
    identity.cairn.log_position = 42;
    identity.cairn.log_begin = 7;
    identity.cairn.snapshot_position = 30;
    return identity;
  }

  MasterState state_;
  uint64_t position_ = 0;
};

// ---- Resources --------------------------------------------------------------

TEST(FlattenedResourcesTest, HasMesosDefaultsAndSumsAcrossRoles) {
  Resources r =
      Res("cpus:2;mem:1024;ports:[31000-31002];cpus(web):1.5;"
          "ports(web):[31005-31005]");
  JsonValue json = Parse(FlattenedResourcesJson(r));
  EXPECT_DOUBLE_EQ(Num(json, "cpus"), 3.5);
  EXPECT_DOUBLE_EQ(Num(json, "mem"), 1024);
  EXPECT_DOUBLE_EQ(Num(json, "disk"), 0);
  EXPECT_DOUBLE_EQ(Num(json, "gpus"), 0);
  EXPECT_EQ(Str(json, "ports"), "[31000-31002, 31005-31005]");
}

TEST(FlattenedResourcesTest, EmptyResourcesStillHaveTheFourScalars) {
  EXPECT_EQ(FlattenedResourcesJson(Resources()),
            R"({"cpus":0.0,"disk":0.0,"gpus":0.0,"mem":0.0})");
}

TEST(FlattenedResourcesTest, RevocableAndSetResourcesAsMesosNamesThem) {
  v1::Resource revocable;
  revocable.set_name("cpus");
  revocable.set_type(v1::MesosValue::SCALAR);
  revocable.mutable_scalar()->set_value(0.5);
  revocable.mutable_revocable();
  v1::Resource set;
  set.set_name("zones");
  set.set_type(v1::MesosValue::SET);
  set.mutable_set()->add_item("a");
  set.mutable_set()->add_item("b");
  google::protobuf::RepeatedPtrField<v1::Resource> list;
  *list.Add() = revocable;
  *list.Add() = set;
  absl::StatusOr<Resources> r = Resources::FromProto(list);
  ASSERT_TRUE(r.ok()) << r.status();
  JsonValue json = Parse(FlattenedResourcesJson(*r));
  EXPECT_DOUBLE_EQ(Num(json, "cpus_revocable"), 0.5);
  EXPECT_DOUBLE_EQ(Num(json, "cpus"), 0);
  EXPECT_EQ(Str(json, "zones"), "{a, b}");
}

// ---- /master/state ----------------------------------------------------------

TEST_F(StateJsonTest, StateDescribesTheMasterAsMesosDoes) {
  JsonValue json = Parse(StateJson(state_, Identity()));
  EXPECT_EQ(Str(json, "version"), "0.1.0");
  EXPECT_EQ(Str(json, "id"), "m-1");
  EXPECT_EQ(Str(json, "pid"), "master@10.0.0.1:5050");
  EXPECT_EQ(Str(json, "hostname"), "master1.example");
  EXPECT_DOUBLE_EQ(Num(json, "start_time"), kBase);
  EXPECT_DOUBLE_EQ(Num(json, "elected_time"), kBase + 1.5);
  EXPECT_EQ(Str(json, "leader"), "master@10.0.0.1:5050");
  const JsonValue& leader_info = Get(json, "leader_info");
  EXPECT_EQ(Str(leader_info, "id"), "m-1");
  EXPECT_EQ(Str(leader_info, "pid"), "master@10.0.0.1:5050");
  EXPECT_EQ(Str(leader_info, "hostname"), "master1.example");
  EXPECT_DOUBLE_EQ(Num(leader_info, "port"), 5050);
  EXPECT_EQ(Str(json, "cluster"), "prod");
  EXPECT_EQ(Str(json, "log_dir"), "/var/log/cairn");
  EXPECT_EQ(Str(Get(json, "flags"), "work_dir"), "/var/lib/cairn");
  // a1 and a4 are registered, a2 unreachable, a3 removed.
  EXPECT_DOUBLE_EQ(Num(json, "activated_slaves"), 2);
  EXPECT_DOUBLE_EQ(Num(json, "deactivated_slaves"), 0);
  EXPECT_DOUBLE_EQ(Num(json, "unreachable_slaves"), 1);
  EXPECT_FALSE(Has(json, "git_sha"));
  for (const char* empty :
       {"recovered_slaves", "orphan_tasks", "unregistered_frameworks"}) {
    EXPECT_EQ(Get(json, empty).kind, JsonValue::Kind::kArray) << empty;
    EXPECT_TRUE(Get(json, empty).items.empty()) << empty;
  }
}

TEST_F(StateJsonTest, StateKeepsCairnFieldsUnderTheCairnObject) {
  JsonValue json = Parse(StateJson(state_, Identity()));
  const JsonValue& cairn = Get(json, "cairn");
  // 64-bit numbers are JSON numbers, as everywhere in Mesos's JSON.
  EXPECT_EQ(Get(cairn, "log_position").kind, JsonValue::Kind::kNumber);
  EXPECT_EQ(cairn.Uint("log_position"), 42u);
  EXPECT_EQ(cairn.Uint("log_begin"), 7u);
  EXPECT_EQ(cairn.Uint("snapshot_position"), 30u);
  EXPECT_EQ(Get(cairn, "events_applied").kind, JsonValue::Kind::kNumber);
  EXPECT_EQ(Str(cairn, "last_applied"), EventIdToString(state_.last_applied()));
  EXPECT_EQ(Strings(Get(cairn, "masters")),
            (std::vector<std::string>{"10.0.0.1:5050", "10.0.0.2:5050"}));
  EXPECT_EQ(Strings(Get(cairn, "unreachable_agents")),
            std::vector<std::string>{"a2"});
  for (const char* cairn_only : {"log_position", "masters", "agents"}) {
    EXPECT_FALSE(Has(json, cairn_only)) << cairn_only;
  }
}

TEST_F(StateJsonTest, StateOmitsLeaderAndElectionWhenUnknown) {
  MasterIdentity identity = Identity();
  identity.leader.reset();
  identity.elected_time.reset();
  identity.cluster.clear();
  JsonValue json = Parse(StateJson(state_, identity));
  EXPECT_FALSE(Has(json, "leader"));
  EXPECT_FALSE(Has(json, "leader_info"));
  EXPECT_FALSE(Has(json, "elected_time"));
  EXPECT_FALSE(Has(json, "cluster"));
}

TEST_F(StateJsonTest, StateListsOnlyRegisteredSlaves) {
  JsonValue json = Parse(StateJson(state_, Identity()));
  EXPECT_EQ(Ids(Get(json, "slaves")), (std::vector<std::string>{"a1", "a4"}));
}

TEST_F(StateJsonTest, SlaveHasMesosFieldsAndResourceBreakdown) {
  JsonValue json = Parse(StateJson(state_, Identity()));
  const JsonValue* a1 = ById(Get(json, "slaves"), "a1");
  ASSERT_NE(a1, nullptr);
  EXPECT_EQ(Str(*a1, "hostname"), "a1.example");
  EXPECT_DOUBLE_EQ(Num(*a1, "port"), 5051);
  EXPECT_EQ(Str(*a1, "pid"), "slave(1)@a1.example:5051");
  EXPECT_DOUBLE_EQ(Num(*a1, "registered_time"), kBase + 1);
  EXPECT_FALSE(Has(*a1, "reregistered_time"));
  EXPECT_EQ(Get(*a1, "active").text, "true");
  EXPECT_EQ(Get(*a1, "deactivated").text, "false");
  EXPECT_EQ(Str(*a1, "version"), "1.2.0");
  EXPECT_EQ(Strings(Get(*a1, "capabilities")),
            std::vector<std::string>{"MULTI_ROLE"});
  EXPECT_EQ(Str(Get(*a1, "attributes"), "rack"), "r1");
  EXPECT_DOUBLE_EQ(Num(Get(*a1, "attributes"), "level"), 2);
  const JsonValue& domain = Get(Get(*a1, "domain"), "fault_domain");
  EXPECT_EQ(Str(Get(domain, "region"), "name"), "eu");
  EXPECT_EQ(Str(Get(domain, "zone"), "name"), "eu-1");

  const JsonValue& total = Get(*a1, "resources");
  EXPECT_DOUBLE_EQ(Num(total, "cpus"), 4);
  EXPECT_DOUBLE_EQ(Num(total, "mem"), 4096);
  EXPECT_DOUBLE_EQ(Num(total, "disk"), 100);
  EXPECT_EQ(Str(total, "ports"), "[31000-31009]");
  // t1 (1 cpu) + t4 (0.5 cpu); t2 ended, t5's framework is gone.
  const JsonValue& used = Get(*a1, "used_resources");
  EXPECT_DOUBLE_EQ(Num(used, "cpus"), 1.5);
  EXPECT_DOUBLE_EQ(Num(used, "mem"), 320);
  EXPECT_EQ(Str(used, "ports"), "[31000-31001]");
  const JsonValue& offered = Get(*a1, "offered_resources");
  EXPECT_DOUBLE_EQ(Num(offered, "cpus"), 1);
  EXPECT_EQ(Str(offered, "ports"), "[31005-31009]");
  const JsonValue& reserved = Get(*a1, "reserved_resources");
  ASSERT_EQ(reserved.fields.size(), 1u);
  EXPECT_DOUBLE_EQ(Num(Get(reserved, "web"), "cpus"), 1);
  EXPECT_DOUBLE_EQ(Num(Get(reserved, "web"), "mem"), 512);
  const JsonValue& unreserved = Get(*a1, "unreserved_resources");
  EXPECT_DOUBLE_EQ(Num(unreserved, "cpus"), 3);
  EXPECT_DOUBLE_EQ(Num(unreserved, "mem"), 3584);
  EXPECT_FALSE(Has(*a1, "drain_info"));
  // /master/state has no *_full lists (only /master/slaves).
  EXPECT_FALSE(Has(*a1, "used_resources_full"));
}

TEST_F(StateJsonTest, DrainingSlaveIsDeactivatedWithDrainInfo) {
  JsonValue json = Parse(StateJson(state_, Identity()));
  const JsonValue* a4 = ById(Get(json, "slaves"), "a4");
  ASSERT_NE(a4, nullptr);
  EXPECT_EQ(Get(*a4, "deactivated").text, "true");
  EXPECT_EQ(Get(*a4, "active").text, "true");
  const JsonValue& drain = Get(*a4, "drain_info");
  EXPECT_EQ(Str(drain, "state"), "DRAINING");
  EXPECT_EQ(Get(Get(drain, "config"), "mark_gone").text, "true");
}

TEST_F(StateJsonTest, FrameworkHasMesosFields) {
  JsonValue json = Parse(StateJson(state_, Identity()));
  EXPECT_EQ(Ids(Get(json, "frameworks")), std::vector<std::string>{"f1"});
  const JsonValue* f1 = ById(Get(json, "frameworks"), "f1");
  ASSERT_NE(f1, nullptr);
  EXPECT_EQ(Str(*f1, "name"), "f1-name");
  EXPECT_FALSE(Has(*f1, "pid"));  // an HTTP framework, as Mesos shows them
  EXPECT_EQ(Str(*f1, "user"), "nobody");
  EXPECT_EQ(Str(*f1, "principal"), "p-f1");
  EXPECT_EQ(Str(*f1, "hostname"), "sched.example");
  EXPECT_EQ(Str(*f1, "webui_url"), "http://sched.example/ui");
  EXPECT_DOUBLE_EQ(Num(*f1, "failover_timeout"), 60);
  EXPECT_EQ(Get(*f1, "checkpoint").text, "false");
  EXPECT_EQ(Get(*f1, "active").text, "true");
  EXPECT_EQ(Get(*f1, "connected").text, "true");
  EXPECT_EQ(Get(*f1, "recovered").text, "false");
  EXPECT_DOUBLE_EQ(Num(*f1, "registered_time"), kBase + 5);
  EXPECT_DOUBLE_EQ(Num(*f1, "unregistered_time"), 0);
  EXPECT_FALSE(Has(*f1, "reregistered_time"));
  EXPECT_EQ(Strings(Get(*f1, "capabilities")),
            std::vector<std::string>{"MULTI_ROLE"});
  // MULTI_ROLE: "roles", not "role" (Mesos mirrors the protobuf).
  EXPECT_EQ(Strings(Get(*f1, "roles")), std::vector<std::string>{"web"});
  EXPECT_FALSE(Has(*f1, "role"));
  // Used: t1 + t4 (t3 is unreachable, t2 ended); offered: o1.
  EXPECT_DOUBLE_EQ(Num(Get(*f1, "used_resources"), "cpus"), 1.5);
  EXPECT_DOUBLE_EQ(Num(Get(*f1, "offered_resources"), "cpus"), 1);
  EXPECT_DOUBLE_EQ(Num(Get(*f1, "resources"), "cpus"), 2.5);
  EXPECT_EQ(Get(*f1, "offer_constraints").kind, JsonValue::Kind::kObject);
}

TEST_F(StateJsonTest, FrameworkSplitsTasksAsMesosDoes) {
  JsonValue json = Parse(StateJson(state_, Identity()));
  const JsonValue* f1 = ById(Get(json, "frameworks"), "f1");
  ASSERT_NE(f1, nullptr);
  EXPECT_EQ(Ids(Get(*f1, "tasks")), (std::vector<std::string>{"t1", "t4"}));
  EXPECT_EQ(Ids(Get(*f1, "unreachable_tasks")), std::vector<std::string>{"t3"});
  EXPECT_EQ(Ids(Get(*f1, "completed_tasks")), std::vector<std::string>{"t2"});

  const JsonValue* t1 = ById(Get(*f1, "tasks"), "t1");
  ASSERT_NE(t1, nullptr);
  EXPECT_EQ(Str(*t1, "name"), "t1-name");
  EXPECT_EQ(Str(*t1, "framework_id"), "f1");
  EXPECT_EQ(Str(*t1, "slave_id"), "a1");
  EXPECT_EQ(Str(*t1, "executor_id"), "");
  EXPECT_EQ(Str(*t1, "state"), "TASK_RUNNING");
  EXPECT_EQ(Str(*t1, "role"), "web");
  EXPECT_EQ(Str(*t1, "user"), "nobody");
  EXPECT_DOUBLE_EQ(Num(Get(*t1, "resources"), "cpus"), 1);
  EXPECT_EQ(Str(Get(*t1, "resources"), "ports"), "[31000-31001]");
  const JsonValue& statuses = Get(*t1, "statuses");
  ASSERT_EQ(statuses.items.size(), 1u);
  EXPECT_EQ(Str(statuses.items[0], "state"), "TASK_RUNNING");
  EXPECT_DOUBLE_EQ(Num(statuses.items[0], "timestamp"), kBase + 100);

  const JsonValue* t3 = ById(Get(*f1, "unreachable_tasks"), "t3");
  ASSERT_NE(t3, nullptr);
  EXPECT_EQ(Str(*t3, "state"), "TASK_UNREACHABLE");
  EXPECT_EQ(Str(*t3, "slave_id"), "a2");
  const JsonValue* t2 = ById(Get(*f1, "completed_tasks"), "t2");
  ASSERT_NE(t2, nullptr);
  EXPECT_EQ(Str(*t2, "state"), "TASK_FINISHED");
  const JsonValue* t4 = ById(Get(*f1, "tasks"), "t4");
  ASSERT_NE(t4, nullptr);
  EXPECT_EQ(Str(*t4, "executor_id"), "exec-1");
  EXPECT_EQ(Str(*t4, "state"), "TASK_STAGING");
  EXPECT_TRUE(Get(*t4, "statuses").items.empty());
}

TEST_F(StateJsonTest, FrameworkListsOffersAndExecutors) {
  JsonValue json = Parse(StateJson(state_, Identity()));
  const JsonValue* f1 = ById(Get(json, "frameworks"), "f1");
  ASSERT_NE(f1, nullptr);
  const JsonValue& offers = Get(*f1, "offers");
  ASSERT_EQ(offers.items.size(), 1u);
  const JsonValue& o1 = offers.items[0];
  EXPECT_EQ(Str(o1, "id"), "o1");
  EXPECT_EQ(Str(o1, "framework_id"), "f1");
  EXPECT_EQ(Str(o1, "slave_id"), "a1");
  EXPECT_EQ(Str(Get(o1, "allocation_info"), "role"), "web");
  EXPECT_DOUBLE_EQ(Num(Get(o1, "resources"), "mem"), 1024);
  EXPECT_EQ(Str(Get(o1, "resources"), "ports"), "[31005-31009]");

  const JsonValue& executors = Get(*f1, "executors");
  ASSERT_EQ(executors.items.size(), 1u);
  const JsonValue& e = executors.items[0];
  EXPECT_EQ(Str(e, "executor_id"), "exec-1");
  EXPECT_EQ(Str(e, "name"), "exec-1-name");
  EXPECT_EQ(Str(e, "framework_id"), "f1");
  EXPECT_EQ(Str(e, "slave_id"), "a1");
  EXPECT_EQ(Str(Get(e, "command"), "value"), "./run-executor");
  EXPECT_EQ(Strings(Get(Get(e, "command"), "argv")),
            std::vector<std::string>{"--fast"});
}

TEST_F(StateJsonTest, CompletedFrameworkKeepsItsCompletedTasks) {
  JsonValue json = Parse(StateJson(state_, Identity()));
  EXPECT_EQ(Ids(Get(json, "completed_frameworks")),
            std::vector<std::string>{"f2"});
  const JsonValue& f2 = Get(json, "completed_frameworks").items.at(0);
  EXPECT_EQ(Get(f2, "active").text, "false");
  EXPECT_EQ(Get(f2, "connected").text, "false");
  // Not MULTI_ROLE: "role", not "roles".
  EXPECT_EQ(Str(f2, "role"), "web");
  EXPECT_FALSE(Has(f2, "roles"));
  EXPECT_GT(Num(f2, "unregistered_time"), kBase);
  EXPECT_TRUE(Get(f2, "tasks").items.empty());
  EXPECT_EQ(Ids(Get(f2, "completed_tasks")), std::vector<std::string>{"t5"});
  EXPECT_EQ(Str(Get(f2, "completed_tasks").items.at(0), "state"),
            "TASK_KILLED");
  EXPECT_DOUBLE_EQ(Num(Get(f2, "used_resources"), "cpus"), 0);
}

TEST_F(StateJsonTest, LabelsAreKeyValueObjects) {
  v1::FrameworkInfo info = Info("f3", true);
  auto* label = info.mutable_labels()->add_labels();
  label->set_key("team");
  label->set_value("ops");
  ApplyOk(Subscribed(info));
  JsonValue json = Parse(FrameworksJson(state_, std::string("f3")));
  const JsonValue& f3 = Get(json, "frameworks").items.at(0);
  const JsonValue& labels = Get(f3, "labels");
  ASSERT_EQ(labels.items.size(), 1u);
  EXPECT_EQ(Str(labels.items[0], "key"), "team");
  EXPECT_EQ(Str(labels.items[0], "value"), "ops");
}

// ---- /master/state-summary --------------------------------------------------

TEST_F(StateJsonTest, SummaryCountsTasksOfRegisteredFrameworks) {
  JsonValue json = Parse(StateSummaryJson(state_, Identity()));
  EXPECT_EQ(Str(json, "hostname"), "master1.example");
  EXPECT_EQ(Str(json, "cluster"), "prod");
  const JsonValue* a1 = ById(Get(json, "slaves"), "a1");
  ASSERT_NE(a1, nullptr);
  // f1's t1 (running), t2 (finished) and t4 (staging); f2 is completed, so
  // its t5 is not counted (as in Mesos).
  EXPECT_DOUBLE_EQ(Num(*a1, "TASK_RUNNING"), 1);
  EXPECT_DOUBLE_EQ(Num(*a1, "TASK_FINISHED"), 1);
  EXPECT_DOUBLE_EQ(Num(*a1, "TASK_STAGING"), 1);
  EXPECT_DOUBLE_EQ(Num(*a1, "TASK_KILLED"), 0);
  EXPECT_DOUBLE_EQ(Num(*a1, "TASK_UNREACHABLE"), 0);
  EXPECT_EQ(Strings(Get(*a1, "framework_ids")), std::vector<std::string>{"f1"});
  EXPECT_DOUBLE_EQ(Num(Get(*a1, "resources"), "cpus"), 4);

  EXPECT_EQ(Ids(Get(json, "frameworks")), std::vector<std::string>{"f1"});
  const JsonValue& f1 = Get(json, "frameworks").items.at(0);
  EXPECT_DOUBLE_EQ(Num(f1, "TASK_RUNNING"), 1);
  EXPECT_DOUBLE_EQ(Num(f1, "TASK_UNREACHABLE"), 1);
  EXPECT_DOUBLE_EQ(Num(f1, "TASK_FINISHED"), 1);
  EXPECT_DOUBLE_EQ(Num(f1, "TASK_STAGING"), 1);
  EXPECT_EQ(Strings(Get(f1, "slave_ids")),
            (std::vector<std::string>{"a1", "a2"}));
  // The summary has no task lists.
  EXPECT_FALSE(Has(f1, "tasks"));
  EXPECT_EQ(Str(f1, "name"), "f1-name");
}

// ---- /master/frameworks, /master/slaves -------------------------------------

TEST_F(StateJsonTest, FrameworksEndpointListsAllAndFiltersById) {
  JsonValue all = Parse(FrameworksJson(state_));
  EXPECT_EQ(Ids(Get(all, "frameworks")), std::vector<std::string>{"f1"});
  EXPECT_EQ(Ids(Get(all, "completed_frameworks")),
            std::vector<std::string>{"f2"});
  EXPECT_TRUE(Get(all, "unregistered_frameworks").items.empty());
  JsonValue only = Parse(FrameworksJson(state_, std::string("f2")));
  EXPECT_TRUE(Get(only, "frameworks").items.empty());
  EXPECT_EQ(Ids(Get(only, "completed_frameworks")),
            std::vector<std::string>{"f2"});
}

TEST_F(StateJsonTest, SlavesEndpointAddsFullResourcesAndFiltersById) {
  JsonValue all = Parse(SlavesJson(state_));
  EXPECT_EQ(Ids(Get(all, "slaves")), (std::vector<std::string>{"a1", "a4"}));
  EXPECT_TRUE(Get(all, "recovered_slaves").items.empty());
  JsonValue only = Parse(SlavesJson(state_, std::string("a1")));
  ASSERT_EQ(Get(only, "slaves").items.size(), 1u);
  const JsonValue& a1 = Get(only, "slaves").items[0];
  EXPECT_DOUBLE_EQ(Num(Get(a1, "resources"), "cpus"), 4);

  // Reserved: the dynamic reservation in Mesos's ENDPOINT format.
  const JsonValue& reserved = Get(Get(a1, "reserved_resources_full"), "web");
  ASSERT_EQ(reserved.items.size(), 2u);  // cpus and mem
  const JsonValue& cpus = reserved.items[0];
  EXPECT_EQ(Str(cpus, "name"), "cpus");
  EXPECT_EQ(Str(cpus, "type"), "SCALAR");
  EXPECT_DOUBLE_EQ(Num(Get(cpus, "scalar"), "value"), 1);
  EXPECT_EQ(Str(cpus, "role"), "web");
  EXPECT_EQ(Str(Get(cpus, "reservation"), "principal"), "ops");
  EXPECT_EQ(Str(Get(cpus, "reservations").items.at(0), "type"), "DYNAMIC");

  // Unreserved: role "*", ranges with numeric bounds (as JSON::Protobuf).
  const JsonValue& unreserved = Get(a1, "unreserved_resources_full");
  const JsonValue* ports = nullptr;
  for (const JsonValue& r : unreserved.items) {
    if (r.Text("name") == "ports") ports = &r;
  }
  ASSERT_NE(ports, nullptr);
  EXPECT_EQ(Str(*ports, "role"), "*");
  const JsonValue& range = Get(Get(*ports, "ranges"), "range").items.at(0);
  EXPECT_DOUBLE_EQ(Num(range, "begin"), 31000);
  EXPECT_DOUBLE_EQ(Num(range, "end"), 31009);

  EXPECT_EQ(Get(a1, "used_resources_full").kind, JsonValue::Kind::kArray);
  EXPECT_EQ(Get(a1, "offered_resources_full").items.size(), 3u);
}

// ---- /master/tasks ----------------------------------------------------------

TEST_F(StateJsonTest, TasksAreNewestFirstByDefault) {
  JsonValue json = Parse(TasksJson(state_, TasksQuery()));
  // First status timestamps: t3 200, t1 100, t2 50, t5 10; t4 has none
  // and sorts last.
  EXPECT_EQ(Ids(Get(json, "tasks")),
            (std::vector<std::string>{"t3", "t1", "t2", "t5", "t4"}));
}

TEST_F(StateJsonTest, TasksAscendingWithOffsetAndLimit) {
  TasksQuery query = TasksQuery::FromQuery(
      {{"order", "asc"}, {"offset", "1"}, {"limit", "3"}});
  JsonValue json = Parse(TasksJson(state_, query));
  // Ascending: t4 (no status), t5, t2, t1, t3; skip 1, take 3.
  EXPECT_EQ(Ids(Get(json, "tasks")),
            (std::vector<std::string>{"t5", "t2", "t1"}));
}

TEST_F(StateJsonTest, TasksFilterByFrameworkAndTask) {
  JsonValue by_framework =
      Parse(TasksJson(state_, TasksQuery::FromQuery({{"framework_id", "f2"}})));
  EXPECT_EQ(Ids(Get(by_framework, "tasks")), std::vector<std::string>{"t5"});
  JsonValue by_task =
      Parse(TasksJson(state_, TasksQuery::FromQuery({{"task_id", "t3"}})));
  ASSERT_EQ(Get(by_task, "tasks").items.size(), 1u);
  EXPECT_EQ(Str(Get(by_task, "tasks").items[0], "state"), "TASK_UNREACHABLE");
}

TEST(TasksQueryTest, MalformedOrNegativeNumbersTakeDefaults) {
  TasksQuery q = TasksQuery::FromQuery(
      {{"limit", "ten"}, {"offset", "-3"}, {"order", "ascending"}});
  EXPECT_EQ(q.limit, TasksQuery::kDefaultLimit);
  EXPECT_EQ(q.offset, 0u);
  EXPECT_FALSE(q.ascending);
  EXPECT_FALSE(q.framework_id.has_value());
  TasksQuery defaults = TasksQuery::FromQuery({});
  EXPECT_EQ(defaults.limit, 100u);
}

// ---- /master/flags, jsonp ---------------------------------------------------

TEST(FlagsJsonTest, WrapsFlagsAsStrings) {
  EXPECT_EQ(FlagsJson({{"port", "5050"}, {"quiet", "true"}}),
            R"({"flags":{"port":"5050","quiet":"true"}})");
  EXPECT_EQ(FlagsJson({}), R"({"flags":{}})");
}

TEST(WrapJsonpTest, PlainJsonWithoutCallback) {
  absl::StatusOr<JsonBody> body = WrapJsonp("{}", {{"limit", "1"}});
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->content_type, "application/json");
  EXPECT_EQ(body->body, "{}");
}

TEST(WrapJsonpTest, CallbackWrapsAsJavascript) {
  absl::StatusOr<JsonBody> body =
      WrapJsonp(R"({"a":1})", {{"jsonp", "angular.callbacks._0"}});
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->content_type, "text/javascript");
  EXPECT_EQ(body->body, R"(angular.callbacks._0({"a":1}))");
}

TEST(WrapJsonpTest, RejectsCallbacksThatAreNotIdentifiers) {
  for (const char* bad :
       {"", "alert(1);x", "a..b", "1abc", "a b", "</script>"}) {
    absl::StatusOr<JsonBody> body = WrapJsonp("{}", {{"jsonp", bad}});
    EXPECT_EQ(body.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST_F(StateJsonTest, StringsAreEscaped) {
  v1::FrameworkInfo info = Info("f\"4", true);
  info.set_name("line\nbreak \"quoted\"");
  ApplyOk(Subscribed(info));
  JsonValue json = Parse(StateJson(state_, Identity()));
  const JsonValue* f4 = ById(Get(json, "frameworks"), "f\"4");
  ASSERT_NE(f4, nullptr);
  EXPECT_EQ(Str(*f4, "name"), "line\nbreak \"quoted\"");
}

}  // namespace
}  // namespace cairn::master
