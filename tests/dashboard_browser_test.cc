// The dashboard every master serves at / (monitoring/dashboard.h), driven by
// headless Chromium (Debian's /usr/bin/chromium through npm's
// playwright-core) against three real cairn-master processes, a FakeAgent
// and a scheduler that launches one task:
//  - the page, loaded from a standby, shows the agent with its resources
//    and the task TASK_RUNNING with a sandbox link;
//  - when the agent finishes the task, the live event timeline (the
//    history API's SSE stream) shows its TASK_FINISHED;
//  - when the leader is SIGKILLed, the page names the new leader, shows the
//    dead master unreachable, and the timeline goes on (the agent's
//    reregistration).
// Screenshots land in test.outputs/ (dashboard.png, dashboard-failover.png).
//
// The browser script is tests/npm/dashboard/dashboard_browser.js; the test
// installs playwright-core itself (`npm ci` of its lock file into
// TEST_TMPDIR, as npm_clients_test does) and fails when it cannot. It skips
// only when /usr/bin/chromium is absent (tools/setup.sh installs it).
//
// Every wait is bounded by a deadline on a condition (a line the script
// prints, its exit, the FakeAgent's state); nothing asserts after a sleep.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_client.h"
#include "tests/internal/master_cluster.h"
#include "tests/internal/npm_install.h"
#include "tests/internal/process.h"
#include "tests/internal/scheduler_client.h"

namespace cairn::tests {
namespace {

namespace fs = std::filesystem;

constexpr char kChromium[] = "/usr/bin/chromium";
constexpr char kAgentHostname[] = "dash-agent";
constexpr char kTaskId[] = "dash-task-1";
constexpr absl::Duration kTimeout = absl::Seconds(20);
constexpr absl::Duration kInstallTimeout = absl::Seconds(150);
// The script gives up by itself after 90 s (and closes the browser).
constexpr absl::Duration kScriptTimeout = absl::Seconds(120);

const char* const kScriptFiles[] = {"package.json", "package-lock.json",
                                    "dashboard_browser.js"};

class DashboardBrowserTest : public ::testing::Test {
 protected:
  // Installs playwright-core with `npm ci` into TEST_TMPDIR, next to a copy
  // of the script; records why it could not in install_error_.
  static void SetUpTestSuite() {
    install_error_ = new std::string;
    npm_dir_ = new std::string;
    if (access(kChromium, X_OK) != 0) return;  // SetUp skips
    const char* tmp = std::getenv("TEST_TMPDIR");
    NpmCiOptions npm;
    npm.runfiles_dir = "cairn/tests/npm/dashboard";
    npm.files = {std::begin(kScriptFiles), std::end(kScriptFiles)};
    npm.dir =
        absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/dashboard_", getpid());
    npm.timeout = kInstallTimeout;
    npm.what = "playwright-core";
    npm.min_node_major = 20;
    absl::StatusOr<std::string> dir = NpmCiInto(npm);
    if (!dir.ok()) {
      *install_error_ = std::string(dir.status().message());
      return;
    }
    *npm_dir_ = *dir;
  }

  static void TearDownTestSuite() {
    delete install_error_;
    delete npm_dir_;
  }

  void SetUp() override {
    if (access(kChromium, X_OK) != 0) {
      GTEST_SKIP() << kChromium
                   << " is not installed (Debian's chromium package; "
                      "tools/setup.sh installs it)";
    }
    ASSERT_TRUE(install_error_->empty()) << *install_error_;
    absl::StatusOr<MasterClusterOptions> options =
        OptionsForThisTest("dashboard");
    ASSERT_TRUE(options.ok()) << options.status();
    options->masters = 3;
    options->timeout = kTimeout;
    // Leader elections slower than the other master tests' (Chromium
    // shares the machine), so that leadership stays put until the test
    // kills the leader.
    options->flags = {"--election_timeout=1s", "--lease=500ms",
                      "--heartbeat_interval=100ms",
                      "--allocation_interval=100ms"};
    absl::StatusOr<std::unique_ptr<MasterCluster>> cluster =
        MasterCluster::Start(*options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    const char* outputs = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
    outputs_dir_ = outputs != nullptr ? outputs : options->root;
  }

  void TearDown() override {
    script_.reset();
    scheduler_.reset();
    agent_.reset();
  }

  std::vector<std::string> Addresses() const {
    return {cluster_->Address(0), cluster_->Address(1), cluster_->Address(2)};
  }

  static std::string* install_error_;  // empty: installed
  static std::string* npm_dir_;        // the script and node_modules

  std::unique_ptr<MasterCluster> cluster_;
  std::string outputs_dir_;
  std::unique_ptr<FakeAgent> agent_;
  std::unique_ptr<SchedulerClient> scheduler_;
  std::unique_ptr<Process> script_;
};

std::string* DashboardBrowserTest::install_error_ = nullptr;
std::string* DashboardBrowserTest::npm_dir_ = nullptr;

TEST_F(DashboardBrowserTest, ShowsTasksAndLiveEventsAndFollowsTheLeader) {
  absl::StatusOr<int> leader = cluster_->WaitForLeader({0, 1, 2});
  ASSERT_TRUE(leader.ok()) << leader.status();
  // The page comes from a standby: it must find the leader itself.
  const int page_master = (*leader + 1) % 3;

  FakeAgentOptions agent_options;
  agent_options.masters = Addresses();
  agent_options.hostname = kAgentHostname;
  agent_options.resources = {ScalarResource("cpus", 4),
                             ScalarResource("mem", 4096),
                             ScalarResource("disk", 8192)};
  agent_options.subscribe_timeout = kTimeout;
  agent_options.auto_resubscribe = true;  // to the new leader, after the kill
  agent_ = std::make_unique<FakeAgent>(agent_options);
  absl::StatusOr<v1::AgentID> agent_id = agent_->Subscribe();
  ASSERT_TRUE(agent_id.ok()) << agent_id.status();

  SchedulerClientOptions scheduler_options;
  scheduler_options.masters = Addresses();
  scheduler_options.auto_acknowledge = true;
  scheduler_options.subscribe_timeout = kTimeout;
  scheduler_options.call_timeout = kTimeout;
  scheduler_ = std::make_unique<SchedulerClient>(scheduler_options);
  v1::FrameworkInfo framework;
  framework.set_user("nobody");
  framework.set_name("dashboard-test");
  // Its task outlives a lost scheduler stream (the client does not
  // resubscribe by itself).
  framework.set_failover_timeout(600);
  absl::StatusOr<v1::FrameworkID> framework_id =
      scheduler_->Subscribe(framework);
  ASSERT_TRUE(framework_id.ok()) << framework_id.status();
  absl::StatusOr<SchedulerClient::Event> offers = scheduler_->NextEvent(
      SchedulerClient::Event::OFFERS, absl::Now() + kTimeout);
  ASSERT_TRUE(offers.ok()) << offers.status();
  ASSERT_GT(offers->offers().offers_size(), 0);
  v1::TaskInfo task;
  task.set_name("dashboard task");
  task.mutable_task_id()->set_value(kTaskId);
  *task.add_resources() = ScalarResource("cpus", 1.5);
  *task.add_resources() = ScalarResource("mem", 512);
  task.mutable_command()->set_value("sleep 1000");
  absl::Status running = scheduler_->LaunchAndWaitRunning(
      offers->offers().offers(0), task, absl::Now() + kTimeout);
  ASSERT_TRUE(running.ok()) << running;

  // The browser.
  const std::string control = absl::StrCat(*npm_dir_, "/control");
  fs::remove(control);
  absl::StatusOr<std::unique_ptr<Process>> script = Process::Start(
      {*FindExecutable("node"),
       absl::StrCat(*npm_dir_, "/dashboard_browser.js"),
       absl::StrCat("http://", cluster_->Address(page_master), "/"),
       kAgentHostname, kTaskId, control, outputs_dir_},
      absl::StrCat(outputs_dir_, "/dashboard_browser.js.log"));
  ASSERT_TRUE(script.ok()) << script.status();
  script_ = *std::move(script);

  // 1. The agent with its resources and the running task.
  absl::StatusOr<std::string> ready =
      WaitForLine(*script_, "READY", "", absl::Now() + kScriptTimeout);
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_TRUE(absl::StrContains(*ready, kAgentHostname)) << *ready;
  EXPECT_TRUE(absl::StrContains(*ready, agent_id->value())) << *ready;
  EXPECT_TRUE(absl::StrContains(*ready, "1.5 / 4")) << *ready;  // CPUs
  EXPECT_TRUE(absl::StrContains(*ready, "512 MB / 4 GB")) << *ready;
  absl::StatusOr<std::string> sandbox =
      WaitForLine(*script_, "TASK", "", absl::Now() + kTimeout);
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  EXPECT_TRUE(absl::StrContains(
      *sandbox, absl::StrCat("sandbox=http://", kAgentHostname,
                             ":5051/files/browse?path=%2Fframeworks%2F",
                             framework_id->value(), "%2Fexecutors%2F", kTaskId,
                             "%2Fruns%2Flatest")))
      << *sandbox;
  absl::StatusOr<std::string> masters =
      WaitForLine(*script_, "MASTERS", "", absl::Now() + kTimeout);
  ASSERT_TRUE(masters.ok()) << masters.status();
  EXPECT_TRUE(absl::StrContains(
      *masters, absl::StrCat(cluster_->Address(*leader), "=leading")))
      << *masters;
  EXPECT_TRUE(absl::StrContains(
      *masters, absl::StrCat("leader: ", cluster_->Address(*leader))))
      << *masters;

  // 2. The agent finishes the task; the timeline shows it.
  agent_->SendUpdate(*framework_id, task.task_id(), v1::TASK_FINISHED);
  absl::StatusOr<std::string> finished =
      WaitForLine(*script_, "FINISHED_SEEN", "", absl::Now() + kScriptTimeout);
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_TRUE(absl::StrContains(*finished, "TASK_FINISHED")) << *finished;
  absl::StatusOr<std::string> timeline =
      WaitForLine(*script_, "TIMELINE", "", absl::Now() + kTimeout);
  ASSERT_TRUE(timeline.ok()) << timeline.status();
  // The history from before the page opened, in order.
  for (const char* type : {"agent_registered,", "framework_subscribed,",
                           "tasks_launched,", "task_status_updated,"}) {
    EXPECT_TRUE(absl::StrContains(*timeline, type)) << *timeline;
  }
  ASSERT_TRUE(
      WaitForLine(*script_, "WAITING", "", absl::Now() + kTimeout).ok());

  // 3. The leader dies; the page follows the new one.
  leader = cluster_->WaitForLeader({0, 1, 2});
  ASSERT_TRUE(leader.ok()) << leader.status();
  cluster_->Kill(*leader);
  {
    std::ofstream out(control + ".tmp");
    out << "killed " << cluster_->Address(*leader) << "\n";
  }
  fs::rename(control + ".tmp", control);
  absl::StatusOr<std::string> followed =
      WaitForLine(*script_, "FOLLOWED", "", absl::Now() + kScriptTimeout);
  ASSERT_TRUE(followed.ok()) << followed.status();

  absl::StatusOr<std::string> exit =
      WaitForExit(*script_, absl::Now() + kScriptTimeout);
  ASSERT_TRUE(exit.ok()) << exit.status();
  const std::string output = ReadFile(script_->log_path());
  EXPECT_EQ(*exit, "exited 0") << output;
  EXPECT_TRUE(absl::StrContains(output, "@@ PASS")) << output;
  for (const char* png : {"dashboard.png", "dashboard-failover.png"}) {
    const std::string bytes = ReadFile(absl::StrCat(outputs_dir_, "/", png));
    EXPECT_TRUE(absl::StartsWith(bytes, "\x89PNG")) << png;
    EXPECT_GT(bytes.size(), 10000u) << png;
  }
}

}  // namespace
}  // namespace cairn::tests
