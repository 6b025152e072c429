// The agent issue's acceptance tests about what happens to one task, with
// real processes: a cairn-master, a cairn-agent, cairn-executors and a
// framework speaking the Mesos v1 scheduler API (AgentE2eTest).
//
//   MemoryLimitKillsWithContainerLimitation    3: cgroups OOM -> reason
//   KillEscalatesToSigkillAfterTheGracePeriod  4: kill policy, no survivors
//   HttpHealthCheckFlipsHealthyAndKills        5: HTTP check
//   CommandHealthCheckFlipsHealthyAndKills     5: command check
//   FetcherPutsUrisInTheSandbox                6: http fetch, tar.gz
//   FetchOf404FailsTheTaskNamingTheUri         6: fetch errors
//   FilesRefusesPathsOutsideTheSandbox         8: /files/read path checks
//
// Every wait is a poll or a blocking wait against a generous deadline;
// nothing is asserted after a fixed sleep, and no timing is asserted.

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "common/http_message.h"
#include "common/http_server.h"
#include "common/json_value.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_e2e_fixture.h"
#include "tests/internal/agent_process.h"

namespace cairn::tests {
namespace {

// Polls until `condition` holds or `timeout` passes; returns whether it held.
bool Eventually(const std::function<bool()>& condition,
                absl::Duration timeout = kTimeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(kPoll);
  }
  return true;
}

// Single-quotes `s` for /bin/sh.
std::string ShellQuote(const std::string& s) {
  std::string quoted = "'";
  for (char c : s) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

pid_t ParsePid(const std::string& text) {
  pid_t pid = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid)) return 0;
  return pid;
}

// The memory cgroup (v1) or the unified cgroup (v2) named in the text of a
// /proc/<pid>/cgroup file, as a directory under /sys/fs/cgroup.
std::optional<std::string> MemoryCgroupDir(const std::string& proc_cgroup) {
  for (absl::string_view line : absl::StrSplit(proc_cgroup, '\n')) {
    std::vector<std::string> parts =
        absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    for (absl::string_view controller : absl::StrSplit(parts[1], ',')) {
      if (controller == "memory") {
        return "/sys/fs/cgroup/memory" + parts[2];
      }
    }
  }
  for (absl::string_view line : absl::StrSplit(proc_cgroup, '\n')) {
    if (absl::StartsWith(line, "0::")) {
      return absl::StrCat("/sys/fs/cgroup", line.substr(3));
    }
  }
  return std::nullopt;
}

// An HTTP server on 127.0.0.1 (ephemeral port) for the tasks' fetches and
// health checks.
std::unique_ptr<http::Server> StartServer() {
  http::ServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  auto server = std::make_unique<http::Server>(options);
  return server;
}

class AgentTasksTest : public AgentE2eTest {
 protected:
  // Waits until no process of the agent's executors and tasks is left.
  void ExpectNoProcessesLeft() {
    const bool none = Eventually(
        [&] { return ProcessesBelow(agent_options_.work_dir).empty(); });
    EXPECT_TRUE(none) << ProcessesBelow(agent_options_.work_dir).size()
                      << " processes of the agent's containers are left";
  }

  // Expects a 4xx JSON answer naming `path` for GET /files/read of `path`
  // (spelt as given, already percent-encoded where wanted).
  void ExpectRefused(const std::string& what, const std::string& path) {
    SCOPED_TRACE(what);
    absl::StatusOr<http::Response> answer =
        agent_->Get(absl::StrCat("/files/read?path=", path, "&offset=0"));
    ASSERT_TRUE(answer.ok()) << answer.status();
    EXPECT_TRUE(answer->status == 403 || answer->status == 404)
        << answer->status << " " << answer->body;
    EXPECT_FALSE(absl::StrContains(answer->body, "root:x:0:0"))
        << "the answer holds /etc/passwd: " << answer->body;
    absl::StatusOr<JsonValue> body = ParseJson(answer->body);
    ASSERT_TRUE(body.ok()) << body.status() << ": " << answer->body;
    EXPECT_EQ(body->Text("field"), "path") << answer->body;
    EXPECT_TRUE(body->Text("error").has_value()) << answer->body;
  }
};

// Acceptance 3.
TEST_F(AgentTasksTest, MemoryLimitKillsWithContainerLimitation) {
  if (!CgroupsUsable()) {
    GTEST_SKIP() << "cgroups v1 memory and cpu hierarchies are not writable "
                    "here (needs root and a writable /sys/fs/cgroup; the "
                    "target is tagged no-sandbox)";
  }
  agent_options_.isolation = "cgroups";
  ASSERT_NO_FATAL_FAILURE(StartAll());
  const std::string hog = runfiles_->Rlocation("cairn/tests/memory_hog");
  ASSERT_EQ(access(hog.c_str(), X_OK), 0) << hog;
  Launch({CommandTask("hog",
                      absl::StrCat("cat /proc/self/cgroup > cgroup; "
                                   "echo $$ > pid; exec ",
                                   ShellQuote(hog), " 256"),
                      /*cpus=*/0.1, /*mem=*/32)});

  absl::StatusOr<v1::TaskStatus> terminal = WaitForTerminal("hog");
  ASSERT_TRUE(terminal.ok()) << terminal.status();
  EXPECT_EQ(terminal->state(), v1::TASK_FAILED) << terminal->message();
  EXPECT_EQ(terminal->reason(),
            v1::TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY)
      << v1::TaskStatus::Reason_Name(terminal->reason()) << ": "
      << terminal->message();
  EXPECT_FALSE(terminal->message().empty());

  absl::StatusOr<std::string> sandbox = agent_->SandboxOf("hog");
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  const std::string stdout_text = ReadWholeFile(*sandbox + "/stdout");
  EXPECT_FALSE(absl::StrContains(stdout_text, "holding"))
      << "the hog got all its memory: " << stdout_text;
  // The task ran in a cgroup of the container; it is gone afterwards.
  const std::string container_id =
      std::filesystem::path(*sandbox).filename().string();
  std::optional<std::string> cgroup =
      MemoryCgroupDir(ReadWholeFile(*sandbox + "/cgroup"));
  ASSERT_TRUE(cgroup.has_value()) << ReadWholeFile(*sandbox + "/cgroup");
  EXPECT_TRUE(absl::StrContains(*cgroup, container_id))
      << *cgroup << " is not the container " << container_id << "'s";
  EXPECT_TRUE(Eventually([&] { return !std::filesystem::exists(*cgroup); }))
      << *cgroup << " is left";
  const pid_t pid = ParsePid(ReadWholeFile(*sandbox + "/pid"));
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(Eventually([&] { return !PidAlive(pid); })) << pid;
  ExpectNoProcessesLeft();
}

// Acceptance 4. The task and its background child catch (and so survive)
// SIGTERM, each writing a marker when it arrives: only SIGKILL ends them.
TEST_F(AgentTasksTest, KillEscalatesToSigkillAfterTheGracePeriod) {
  ASSERT_NO_FATAL_FAILURE(StartAll());
  v1::TaskInfo task = CommandTask("stubborn",
                                  "trap 'echo got-term > term' TERM; "
                                  "(trap 'echo got-term > child-term' TERM; "
                                  " while :; do sleep 1; done) & "
                                  "echo $! > child; echo $$ > pid; "
                                  "while :; do sleep 1; done");
  task.mutable_kill_policy()->mutable_grace_period()->set_nanoseconds(
      absl::ToInt64Nanoseconds(absl::Seconds(2)));
  Launch({task});
  absl::StatusOr<v1::TaskStatus> running =
      WaitForState("stubborn", v1::TASK_RUNNING);
  ASSERT_TRUE(running.ok()) << running.status();
  absl::StatusOr<pid_t> pid = TaskPid("stubborn");
  ASSERT_TRUE(pid.ok()) << pid.status();
  absl::StatusOr<std::string> child_text =
      WaitForSandboxFile("stubborn", "child");
  ASSERT_TRUE(child_text.ok()) << child_text.status();
  const pid_t child = ParsePid(*child_text);
  ASSERT_GT(child, 0);
  ASSERT_TRUE(PidAlive(*pid));
  ASSERT_TRUE(PidAlive(child));

  v1::TaskID id;
  id.set_value("stubborn");
  absl::Status killed = scheduler_->Kill(id);
  ASSERT_TRUE(killed.ok()) << killed;
  absl::StatusOr<v1::TaskStatus> killing =
      WaitForState("stubborn", v1::TASK_KILLING);
  ASSERT_TRUE(killing.ok()) << killing.status();
  absl::StatusOr<v1::TaskStatus> terminal = WaitForTerminal("stubborn");
  ASSERT_TRUE(terminal.ok()) << terminal.status();
  EXPECT_EQ(terminal->state(), v1::TASK_KILLED) << terminal->message();
  EXPECT_TRUE(absl::StrContains(terminal->message(), "SIGKILL"))
      << terminal->message();

  // Both got SIGTERM and outlived it (a trap ran), and both are gone now.
  absl::StatusOr<std::string> term = WaitForSandboxFile("stubborn", "term");
  ASSERT_TRUE(term.ok()) << term.status();
  EXPECT_EQ(*term, "got-term\n");
  absl::StatusOr<std::string> child_term =
      WaitForSandboxFile("stubborn", "child-term");
  ASSERT_TRUE(child_term.ok()) << child_term.status();
  EXPECT_EQ(*child_term, "got-term\n");
  EXPECT_TRUE(Eventually([&] { return !PidAlive(*pid); })) << *pid;
  EXPECT_TRUE(Eventually([&] { return !PidAlive(child); })) << child;
  ExpectNoProcessesLeft();
}

// Acceptance 5, HTTP: the check answers 200, then 500.
TEST_F(AgentTasksTest, HttpHealthCheckFlipsHealthyAndKills) {
  std::atomic<int> answer{200};
  std::unique_ptr<http::Server> server = StartServer();
  server->HandleSync("GET", "/health", [&answer](const http::Request&) {
    return http::Response::Text(answer.load(), "health\n");
  });
  ASSERT_TRUE(server->Start().ok());
  ASSERT_NO_FATAL_FAILURE(StartAll());

  v1::TaskInfo task = CommandTask("web", "sleep 1000");
  v1::HealthCheck* check = task.mutable_health_check();
  check->set_type(v1::HealthCheck::HTTP);
  check->mutable_http()->set_port(server->port());
  check->mutable_http()->set_path("/health");
  check->set_delay_seconds(0);
  check->set_interval_seconds(0.2);
  // Generous: a check timing out on a loaded machine while the server says
  // 200 would be a failure the test does not expect.
  check->set_timeout_seconds(5);
  check->set_consecutive_failures(3);
  check->set_grace_period_seconds(0);
  Launch({task});

  absl::StatusOr<v1::TaskStatus> healthy =
      WaitForUpdate("web", [](const v1::TaskStatus& s) {
        return s.state() == v1::TASK_RUNNING && s.has_healthy() && s.healthy();
      });
  ASSERT_TRUE(healthy.ok()) << healthy.status();
  for (const v1::TaskStatus& s : seen_["web"]) {
    EXPECT_FALSE(s.has_healthy() && !s.healthy()) << "unhealthy while 200";
    EXPECT_FALSE(IsTerminalState(s.state())) << v1::TaskState_Name(s.state());
  }

  answer = 500;
  absl::StatusOr<v1::TaskStatus> unhealthy = WaitForUpdate(
      "web",
      [](const v1::TaskStatus& s) { return s.has_healthy() && !s.healthy(); });
  ASSERT_TRUE(unhealthy.ok()) << unhealthy.status();
  EXPECT_EQ(unhealthy->state(), v1::TASK_RUNNING);
  EXPECT_EQ(unhealthy->reason(),
            v1::TaskStatus::REASON_TASK_HEALTH_CHECK_STATUS_UPDATED);
  absl::StatusOr<v1::TaskStatus> terminal = WaitForTerminal("web");
  ASSERT_TRUE(terminal.ok()) << terminal.status();
  EXPECT_EQ(terminal->state(), v1::TASK_KILLED) << terminal->message();
  EXPECT_TRUE(terminal->has_healthy() && !terminal->healthy());
  EXPECT_TRUE(absl::StrContains(terminal->message(), "Health check failed"))
      << terminal->message();
  ExpectNoProcessesLeft();
  server->Stop();
}

// Acceptance 5, command: `test -f healthy` in the sandbox, the file created
// and removed by the test. The grace period covers the checks before the
// test creates it (failures within it are ignored until a first success).
TEST_F(AgentTasksTest, CommandHealthCheckFlipsHealthyAndKills) {
  ASSERT_NO_FATAL_FAILURE(StartAll());
  v1::TaskInfo task = CommandTask("checked", "sleep 1000");
  v1::HealthCheck* check = task.mutable_health_check();
  check->set_type(v1::HealthCheck::COMMAND);
  check->mutable_command()->set_value("test -f healthy");
  check->set_delay_seconds(0);
  check->set_interval_seconds(0.2);
  check->set_timeout_seconds(5);
  check->set_consecutive_failures(3);
  check->set_grace_period_seconds(600);
  Launch({task});
  absl::StatusOr<v1::TaskStatus> running =
      WaitForState("checked", v1::TASK_RUNNING);
  ASSERT_TRUE(running.ok()) << running.status();
  absl::StatusOr<std::string> sandbox = agent_->SandboxOf("checked");
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  const std::string marker = *sandbox + "/healthy";
  std::ofstream(marker) << "yes\n";

  absl::StatusOr<v1::TaskStatus> healthy =
      WaitForUpdate("checked", [](const v1::TaskStatus& s) {
        return s.state() == v1::TASK_RUNNING && s.has_healthy() && s.healthy();
      });
  ASSERT_TRUE(healthy.ok()) << healthy.status();

  ASSERT_EQ(unlink(marker.c_str()), 0) << marker;
  absl::StatusOr<v1::TaskStatus> unhealthy = WaitForUpdate(
      "checked",
      [](const v1::TaskStatus& s) { return s.has_healthy() && !s.healthy(); });
  ASSERT_TRUE(unhealthy.ok()) << unhealthy.status();
  EXPECT_EQ(unhealthy->state(), v1::TASK_RUNNING);
  absl::StatusOr<v1::TaskStatus> terminal = WaitForTerminal("checked");
  ASSERT_TRUE(terminal.ok()) << terminal.status();
  EXPECT_EQ(terminal->state(), v1::TASK_KILLED) << terminal->message();
  EXPECT_TRUE(terminal->has_healthy() && !terminal->healthy());
  ExpectNoProcessesLeft();
}

// Acceptance 6: a plain file and a tar.gz (extracted) from a local server.
TEST_F(AgentTasksTest, FetcherPutsUrisInTheSandbox) {
  // The archive: dir/inner.txt, made with /bin/tar.
  const std::string scratch = master_options_.root + "/archive";
  std::filesystem::create_directories(scratch + "/dir");
  std::ofstream(scratch + "/dir/inner.txt") << "inner text\n";
  const std::string archive = master_options_.root + "/bundle.tar.gz";
  const std::string tar = absl::StrCat("/bin/tar -czf ", ShellQuote(archive),
                                       " -C ", ShellQuote(scratch), " dir");
  ASSERT_EQ(system(tar.c_str()), 0) << tar;
  const std::string archive_bytes = ReadWholeFile(archive);
  ASSERT_FALSE(archive_bytes.empty());

  std::unique_ptr<http::Server> server = StartServer();
  server->HandleSync("GET", "/hello.txt", [](const http::Request&) {
    return http::Response::Text(200, "hello from the server\n");
  });
  server->HandleSync("GET", "/bundle.tar.gz",
                     [&archive_bytes](const http::Request&) {
                       http::Response r{200, {}, archive_bytes};
                       r.headers.Set("Content-Type", "application/gzip");
                       return r;
                     });
  ASSERT_TRUE(server->Start().ok());
  ASSERT_NO_FATAL_FAILURE(StartAll());

  const std::string base = absl::StrCat("http://127.0.0.1:", server->port());
  v1::TaskInfo task = CommandTask("fetch", "cat hello.txt dir/inner.txt");
  task.mutable_command()->add_uris()->set_value(base + "/hello.txt");
  task.mutable_command()->add_uris()->set_value(base + "/bundle.tar.gz");
  Launch({task});
  absl::StatusOr<v1::TaskStatus> terminal = WaitForTerminal("fetch");
  ASSERT_TRUE(terminal.ok()) << terminal.status();
  EXPECT_EQ(terminal->state(), v1::TASK_FINISHED) << terminal->message();

  absl::StatusOr<std::string> sandbox = agent_->SandboxOf("fetch");
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  absl::StatusOr<std::string> stdout_text =
      agent_->ReadFile(*sandbox + "/stdout");
  ASSERT_TRUE(stdout_text.ok()) << stdout_text.status();
  EXPECT_TRUE(
      absl::StrContains(*stdout_text, "hello from the server\ninner text\n"))
      << "stdout: [" << *stdout_text << "]";
  EXPECT_EQ(ReadWholeFile(*sandbox + "/hello.txt"), "hello from the server\n");
  EXPECT_EQ(ReadWholeFile(*sandbox + "/dir/inner.txt"), "inner text\n");
  server->Stop();
}

// Acceptance 6: a URI the server answers 404 fails the task at launch.
TEST_F(AgentTasksTest, FetchOf404FailsTheTaskNamingTheUri) {
  std::unique_ptr<http::Server> server = StartServer();
  server->HandleSync("GET", "/hello.txt", [](const http::Request&) {
    return http::Response::Text(200, "hello\n");
  });
  ASSERT_TRUE(server->Start().ok());
  ASSERT_NO_FATAL_FAILURE(StartAll());

  const std::string base = absl::StrCat("http://127.0.0.1:", server->port());
  const std::string missing = base + "/missing.tar.gz";
  v1::TaskInfo task = CommandTask("nofetch", "echo should-not-run");
  task.mutable_command()->add_uris()->set_value(base + "/hello.txt");
  task.mutable_command()->add_uris()->set_value(missing);
  Launch({task});
  absl::StatusOr<v1::TaskStatus> terminal = WaitForTerminal("nofetch");
  ASSERT_TRUE(terminal.ok()) << terminal.status();
  EXPECT_EQ(terminal->state(), v1::TASK_FAILED) << terminal->message();
  EXPECT_EQ(terminal->reason(), v1::TaskStatus::REASON_CONTAINER_LAUNCH_FAILED)
      << v1::TaskStatus::Reason_Name(terminal->reason());
  EXPECT_TRUE(absl::StrContains(terminal->message(), "404"))
      << terminal->message();
  EXPECT_TRUE(absl::StrContains(terminal->message(), missing))
      << terminal->message();
  for (const v1::TaskStatus& s : seen_["nofetch"]) {
    EXPECT_NE(s.state(), v1::TASK_RUNNING) << "the task ran without its URIs";
  }
  absl::StatusOr<std::string> sandbox = agent_->SandboxOf("nofetch");
  if (sandbox.ok()) {
    EXPECT_FALSE(absl::StrContains(ReadWholeFile(*sandbox + "/stdout"),
                                   "should-not-run"));
  }
  ExpectNoProcessesLeft();
  server->Stop();
}

// Acceptance 8.
TEST_F(AgentTasksTest, FilesRefusesPathsOutsideTheSandbox) {
  ASSERT_NO_FATAL_FAILURE(StartAll());
  Launch({CommandTask("escape", "ln -s /etc/passwd link; echo inside > own")});
  absl::StatusOr<v1::TaskStatus> terminal = WaitForTerminal("escape");
  ASSERT_TRUE(terminal.ok()) << terminal.status();
  ASSERT_EQ(terminal->state(), v1::TASK_FINISHED) << terminal->message();
  absl::StatusOr<std::string> sandbox = agent_->SandboxOf("escape");
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  ASSERT_EQ(ReadWholeFile("/etc/passwd").find("root:x:0:0"), 0u)
      << "this check needs an /etc/passwd starting with root";

  // The sandbox itself is readable.
  absl::StatusOr<std::string> own = agent_->ReadFile(*sandbox + "/own");
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(*own, "inside\n");

  ExpectRefused("dot-dot", *sandbox + "/../../../../../../../../etc/passwd");
  ExpectRefused("absolute", "/etc/passwd");
  ExpectRefused("percent-encoded dot-dot",
                *sandbox +
                    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/"
                    "%2e%2e/etc/passwd");
  ExpectRefused(
      "percent-encoded slashes",
      *sandbox + "%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd");
  ExpectRefused("symlink", *sandbox + "/link");
  ExpectRefused("dot-dot then back in",
                *sandbox + "/../../../../../../../../etc/../etc/passwd");

  // The same through the sandbox's virtual path (what UIs link to).
  const std::string latest =
      absl::StrCat("/frameworks/", scheduler_->framework_id().value(),
                   "/executors/escape/runs/latest");
  absl::StatusOr<std::string> own_latest = agent_->ReadFile(latest + "/own");
  ASSERT_TRUE(own_latest.ok()) << own_latest.status();
  EXPECT_EQ(*own_latest, "inside\n");
  ExpectRefused("virtual dot-dot",
                latest + "/../../../../../../../../../../etc/passwd");
  ExpectRefused("virtual percent-encoded dot-dot",
                latest +
                    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/"
                    "%2e%2e/%2e%2e/%2e%2e/etc/passwd");
  ExpectRefused("virtual symlink", latest + "/link");
}

}  // namespace
}  // namespace cairn::tests
