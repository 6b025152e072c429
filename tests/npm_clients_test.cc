// Third-party Mesos clients from npm, which nobody on the team wrote, drive a
// real `cairn-master` process on 127.0.0.1 (issue 4, acceptance 2):
//  - @dcos/mesos-client (the operator API): GET_HEALTH, GET_VERSION and
//    GET_STATE answers, a SUBSCRIBE stream's SUBSCRIBED and the AGENT_ADDED
//    of a FakeAgent subscribing meanwhile, then GET_STATE listing it;
//  - mesos-framework (the scheduler API): SUBSCRIBE, an offer from a
//    FakeAgent accepted with a LAUNCH the agent receives, TASK_RUNNING and
//    TASK_FINISHED updates seen and acknowledged (the agent's queue drains),
//    TEARDOWN.
//
// The clients run as node scripts (tests/npm/*.js, see tests/npm/README.md)
// that print "@@ ..." progress lines and exit 0 after "@@ PASS". The test
// installs the clients itself, once per run: `npm ci` of
// tests/npm/package-lock.json into TEST_TMPDIR from the npm registry. When
// node or npm is missing or the registry cannot be reached, the tests FAIL
// with npm's own words: nothing is skipped.
//
// Every wait is bounded by a deadline on a condition (a process exit, a line
// of output, the FakeAgent's state); nothing asserts after a fixed sleep.

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/operator.pb.h"
#include "common/http_client.h"
#include "common/json.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_client.h"
#include "tests/internal/master_cluster.h"
#include "tests/internal/npm_install.h"
#include "tests/internal/process.h"

namespace cairn::tests {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(15);
// `npm ci` of ~100 small packages takes a few seconds; the bound leaves room
// for npm's own retries of a slow registry.
constexpr absl::Duration kInstallTimeout = absl::Seconds(150);
// The scripts give up by themselves after 20-25 s.
constexpr absl::Duration kScriptTimeout = absl::Seconds(40);

// What tests/npm holds, as runfiles.
const char* const kNpmFiles[] = {"package.json", "package-lock.json",
                                 "operator_client.js", "scheduler_client.js"};

class NpmClientsTest : public ::testing::Test {
 protected:
  // Installs the clients with `npm ci` into TEST_TMPDIR/npm, next to copies
  // of the scripts; records why it could not in install_error_.
  static void SetUpTestSuite() {
    install_error_ = new std::string;
    npm_dir_ = new std::string;
    const char* tmp = std::getenv("TEST_TMPDIR");
    NpmCiOptions npm;
    npm.runfiles_dir = "cairn/tests/npm";
    npm.files = {std::begin(kNpmFiles), std::end(kNpmFiles)};
    npm.dir =
        absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/npm_clients_", getpid());
    npm.timeout = kInstallTimeout;
    npm.what = "the third-party clients";
    npm.min_node_major = 18;
    const absl::Time start = absl::Now();
    absl::StatusOr<std::string> dir = NpmCiInto(npm);
    if (!dir.ok()) {
      *install_error_ = std::string(dir.status().message());
      return;
    }
    *npm_dir_ = *dir;
    std::cout << "npm ci installed the clients in "
              << absl::FormatDuration(absl::Now() - start) << std::endl;
  }

  static void TearDownTestSuite() {
    delete install_error_;
    delete npm_dir_;
  }

  void SetUp() override {
    ASSERT_TRUE(install_error_->empty()) << *install_error_;
    absl::StatusOr<MasterClusterOptions> options =
        OptionsForThisTest("npm_clients");
    ASSERT_TRUE(options.ok()) << options.status();
    log_dir_ = options->log_dir;
    options->masters = 1;
    options->timeout = kTimeout;
    options->flags.insert(
        options->flags.end(),
        {"--allocation_interval=100ms", "--scheduler_heartbeat_interval=1s"});
    absl::StatusOr<std::unique_ptr<MasterCluster>> cluster =
        MasterCluster::Start(*options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    absl::StatusOr<int> leader = cluster_->WaitForLeader({0});
    ASSERT_TRUE(leader.ok()) << leader.status();
  }

  void TearDown() override {
    script_.reset();
    agent_.reset();
  }

  // Starts `node tests/npm/<script> <args...>`, its output going to
  // <log_dir>/<script>.log (the log dir is the test's own).
  void StartScript(const std::string& script,
                   const std::vector<std::string>& args) {
    std::vector<std::string> argv = {*FindExecutable("node"),
                                     absl::StrCat(*npm_dir_, "/", script)};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<std::unique_ptr<Process>> process =
        Process::Start(argv, absl::StrCat(log_dir_, "/", script, ".log"));
    ASSERT_TRUE(process.ok()) << process.status();
    script_ = *std::move(process);
  }

  // A FakeAgent with `resources`, subscribed; returns its id.
  std::string StartAgent(const std::string& hostname,
                         std::vector<v1::Resource> resources) {
    FakeAgentOptions options;
    options.masters = {cluster_->Address(0)};
    options.hostname = hostname;
    options.resources = std::move(resources);
    options.subscribe_timeout = kTimeout;
    agent_ = std::make_unique<FakeAgent>(options);
    absl::StatusOr<v1::AgentID> id = agent_->Subscribe();
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? id->value() : "";
  }

  // A GET_* operator call answered 200 in JSON, parsed.
  v1::master_api::Response Get(const std::string& type) {
    absl::StatusOr<http::Response> r = cluster_->Request(
        0, "POST", "/api/v1", absl::StrCat(R"({"type":")", type, "\"}"));
    EXPECT_TRUE(r.ok()) << r.status();
    v1::master_api::Response response;
    if (!r.ok()) return response;
    EXPECT_EQ(r->status, 200) << type << ": " << r->body;
    absl::Status parsed = FromJson(r->body, &response);
    EXPECT_TRUE(parsed.ok()) << parsed << ": " << r->body;
    return response;
  }

  static std::string* install_error_;  // empty: installed
  static std::string* npm_dir_;        // scripts and node_modules

  std::string log_dir_;
  std::unique_ptr<MasterCluster> cluster_;
  std::unique_ptr<FakeAgent> agent_;
  std::unique_ptr<Process> script_;
};

std::string* NpmClientsTest::install_error_ = nullptr;
std::string* NpmClientsTest::npm_dir_ = nullptr;

// @dcos/mesos-client: operator calls, SUBSCRIBE with SUBSCRIBED and the
// AGENT_ADDED of an agent that subscribes while the stream is open, and
// GET_STATE with that agent.
TEST_F(NpmClientsTest, DcosMesosClientSubscribesAndGetsState) {
  StartScript("operator_client.js",
              {absl::StrCat("http://", cluster_->Address(0)), "npm-agent"});
  absl::StatusOr<std::string> subscribed =
      WaitForLine(*script_, "SUBSCRIBED", "", absl::Now() + kScriptTimeout);
  ASSERT_TRUE(subscribed.ok()) << subscribed.status();
  EXPECT_EQ(*subscribed, "SUBSCRIBED agents=0 heartbeat_interval_seconds=15");

  const std::string agent_id = StartAgent(
      "npm-agent", {ScalarResource("cpus", 4), ScalarResource("mem", 4096)});
  ASSERT_FALSE(agent_id.empty());

  absl::StatusOr<std::string> exit =
      WaitForExit(*script_, absl::Now() + kScriptTimeout);
  ASSERT_TRUE(exit.ok()) << exit.status();
  const std::string output = ReadFile(script_->log_path());
  EXPECT_EQ(*exit, "exited 0") << output;
  EXPECT_TRUE(absl::StrContains(
      output, "@@ CALLS GET_HEALTH GET_VERSION GET_STATE agents=0"))
      << output;
  EXPECT_TRUE(
      absl::StrContains(output, absl::StrCat("@@ AGENT_ADDED ", agent_id)))
      << output;
  EXPECT_TRUE(absl::StrContains(
      output,
      absl::StrCat("@@ GET_STATE agents=1 agent=", agent_id, " active=true")))
      << output;
  EXPECT_TRUE(absl::StrContains(output, "@@ PASS")) << output;
}

// mesos-framework: its scheduler subscribes, accepts an offer of the
// FakeAgent's resources with a LAUNCH, sees TASK_RUNNING and TASK_FINISHED
// (the agent's updates) and acknowledges both, then tears down.
TEST_F(NpmClientsTest, MesosFrameworkLaunchesATaskAndSeesItFinish) {
  v1::Resource ports;
  ports.set_name("ports");
  ports.set_type(v1::MesosValue::RANGES);
  v1::MesosValue::Range* range = ports.mutable_ranges()->add_range();
  range->set_begin(31000);
  range->set_end(31009);
  const std::string agent_id = StartAgent(
      "npm-agent", {ScalarResource("cpus", 4), ScalarResource("mem", 4096),
                    ScalarResource("disk", 1024), ports});
  ASSERT_FALSE(agent_id.empty());

  StartScript("scheduler_client.js",
              {cluster_->Address(0), cluster_->work_dir(0)});
  absl::StatusOr<std::string> running =
      WaitForLine(*script_, "UPDATE npm-mesos-framework.npm-task-1.",
                  " TASK_RUNNING ", absl::Now() + kScriptTimeout);
  ASSERT_TRUE(running.ok()) << running.status();

  // The LAUNCH the agent got: the task as mesos-framework built it.
  const std::vector<v1::TaskInfo> launched = agent_->launched_tasks();
  ASSERT_EQ(launched.size(), 1u);
  const v1::TaskInfo& task = launched[0];
  EXPECT_EQ(task.name(), "npm-task-1");
  EXPECT_EQ(task.agent_id().value(), agent_id);
  EXPECT_EQ(task.command().value(), "echo hello");
  EXPECT_TRUE(task.command().shell());
  double cpus = 0, mem = 0;
  int port_count = 0;
  for (const v1::Resource& r : task.resources()) {
    if (r.name() == "cpus") cpus += r.scalar().value();
    if (r.name() == "mem") mem += r.scalar().value();
    if (r.name() == "ports") {
      for (const v1::MesosValue::Range& p : r.ranges().range()) {
        EXPECT_GE(p.begin(), 31000u);
        EXPECT_LE(p.end(), 31009u);
        port_count += static_cast<int>(p.end() - p.begin() + 1);
      }
    }
  }
  // mesos-framework exports the offer's url.address.ip as HOST: Cairn fills
  // it in with the address the agent subscribed from (its hostname is not an
  // IP), as Mesos offers always carry the agent's IP.
  std::string host;
  for (const v1::Environment::Variable& v :
       task.command().environment().variables()) {
    if (v.name() == "HOST") host = v.value();
  }
  EXPECT_EQ(host, "127.0.0.1") << task.DebugString();
  EXPECT_DOUBLE_EQ(cpus, 0.5);
  EXPECT_DOUBLE_EQ(mem, 64);
  EXPECT_EQ(port_count, 1);
  EXPECT_EQ(*running, absl::StrCat("UPDATE ", task.task_id().value(),
                                   " TASK_RUNNING ", agent_id));

  // The scheduler's ACKNOWLEDGE of TASK_RUNNING reaches the agent.
  EXPECT_TRUE(
      agent_->WaitUntil([&] { return agent_->unacknowledged_updates() == 0; },
                        absl::Now() + kTimeout))
      << ReadFile(script_->log_path());
  std::vector<FakeTask> tasks = agent_->tasks();
  ASSERT_EQ(tasks.size(), 1u);
  agent_->SendUpdate(tasks[0].framework_id, task.task_id(), v1::TASK_FINISHED);

  absl::StatusOr<std::string> exit =
      WaitForExit(*script_, absl::Now() + kScriptTimeout);
  ASSERT_TRUE(exit.ok()) << exit.status();
  const std::string output = ReadFile(script_->log_path());
  EXPECT_EQ(*exit, "exited 0") << output;
  EXPECT_TRUE(absl::StrContains(
      output, absl::StrCat("@@ UPDATE ", task.task_id().value(),
                           " TASK_FINISHED ", agent_id)))
      << output;
  EXPECT_TRUE(absl::StrContains(output, "@@ PASS")) << output;
  EXPECT_TRUE(
      agent_->WaitUntil([&] { return agent_->unacknowledged_updates() == 0; },
                        absl::Now() + kTimeout));
  EXPECT_EQ(agent_->acknowledgements().size(), 2u);

  // TEARDOWN removed the framework; its task ended TASK_FINISHED.
  const v1::master_api::Response frameworks = Get("GET_FRAMEWORKS");
  EXPECT_EQ(frameworks.get_frameworks().frameworks_size(), 0);
  ASSERT_EQ(frameworks.get_frameworks().completed_frameworks_size(), 1);
  EXPECT_EQ(frameworks.get_frameworks()
                .completed_frameworks(0)
                .framework_info()
                .name(),
            "npm-mesos-framework");
  const v1::master_api::Response tasks_answer = Get("GET_TASKS");
  ASSERT_EQ(tasks_answer.get_tasks().completed_tasks_size(), 1);
  EXPECT_EQ(tasks_answer.get_tasks().completed_tasks(0).state(),
            v1::TASK_FINISHED);
}

}  // namespace
}  // namespace cairn::tests
