// cairn-executor end to end: the real binary as a child process, talking to
// a fake agent (an http::Server on 127.0.0.1 serving /api/v1/executor) that
// records every call and acknowledges updates as a test tells it to.

#include "agent/executor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/child_process.h"
#include "cairn/v1/executor.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "common/http_server.h"
#include "common/recordio.h"
#include "gtest/gtest.h"
#include "tools/cpp/runfiles/runfiles.h"

namespace cairn::agent {
namespace {

using bazel::tools::cpp::runfiles::Runfiles;
using v1::TaskStatus;
using v1::executor::Call;
using v1::executor::Event;

constexpr absl::Duration kDeadline = absl::Seconds(30);

std::string StateName(const TaskStatus& status) {
  return v1::TaskState_Name(status.state());
}

std::string Describe(const std::vector<TaskStatus>& statuses) {
  std::vector<std::string> parts;
  for (const TaskStatus& s : statuses) {
    std::string part = StateName(s);
    if (s.has_healthy()) absl::StrAppend(&part, s.healthy() ? "+" : "-");
    if (!s.message().empty()) absl::StrAppend(&part, "(", s.message(), ")");
    parts.push_back(part);
  }
  return absl::StrJoin(parts, ", ");
}

// Polls `condition` every 20 ms until it holds or `deadline` passes.
bool Eventually(const std::function<bool()>& condition,
                absl::Duration deadline = kDeadline) {
  const absl::Time end = absl::Now() + deadline;
  while (absl::Now() < end) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return condition();
}

// The agent side of the executor API, enough for one executor.
class FakeAgent {
 public:
  struct Options {
    uint16_t port = 0;
    bool task_killing_state = false;
    // Which updates to acknowledge (default: all).
    std::function<bool(const TaskStatus&)> ack = [](const TaskStatus&) {
      return true;
    };
  };

  explicit FakeAgent(Options options) : options_(std::move(options)) {
    http::ServerOptions server_options;
    server_options.port = options_.port;
    server_options.shutdown_grace = absl::Seconds(1);
    server_ = std::make_unique<http::Server>(server_options);
    server_->Handle("POST", "/api/v1/executor",
                    [this](http::Request request,
                           std::shared_ptr<http::Responder> responder) {
                      Serve(std::move(request), std::move(responder));
                    });
  }
  ~FakeAgent() { Stop(); }

  absl::Status Start() { return server_->Start(); }
  // Ends the stream and refuses connections from now on.
  void Stop() { server_->Stop(); }
  uint16_t port() const { return server_->port(); }

  // Sends `event` on the current stream; false if there is none.
  bool Send(const Event& event) {
    std::lock_guard<std::mutex> lock(mu_);
    return stream_ != nullptr &&
           stream_->WriteChunk(recordio::Encode(event.SerializeAsString()));
  }

  bool Launch(const v1::TaskInfo& task) {
    Event event;
    event.set_type(Event::LAUNCH);
    *event.mutable_launch()->mutable_task() = task;
    return Send(event);
  }

  bool LaunchGroup(const std::vector<v1::TaskInfo>& tasks) {
    Event event;
    event.set_type(Event::LAUNCH_GROUP);
    for (const v1::TaskInfo& task : tasks) {
      *event.mutable_launch_group()->mutable_task_group()->add_tasks() = task;
    }
    return Send(event);
  }

  bool Kill(const std::string& task_id,
            std::optional<absl::Duration> grace = std::nullopt) {
    Event event;
    event.set_type(Event::KILL);
    event.mutable_kill()->mutable_task_id()->set_value(task_id);
    if (grace.has_value()) {
      event.mutable_kill()
          ->mutable_kill_policy()
          ->mutable_grace_period()
          ->set_nanoseconds(absl::ToInt64Nanoseconds(*grace));
    }
    return Send(event);
  }

  // Waits until `n` SUBSCRIBE calls arrived.
  bool WaitForSubscribes(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoSeconds(kDeadline),
                        [&] { return subscribes_.size() >= n; });
  }

  // Waits until some update (UPDATE calls, then updates carried by a
  // SUBSCRIBE, in arrival order) satisfies `pred`.
  bool WaitForUpdate(const std::function<bool(const TaskStatus&)>& pred) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoSeconds(kDeadline), [&] {
      for (const TaskStatus& s : updates_) {
        if (pred(s)) return true;
      }
      return false;
    });
  }
  bool WaitForState(v1::TaskState state) {
    return WaitForUpdate(
        [state](const TaskStatus& s) { return s.state() == state; });
  }

  bool WaitForTaskState(const std::string& task_id, v1::TaskState state) {
    return WaitForUpdate([&](const TaskStatus& s) {
      return s.task_id().value() == task_id && s.state() == state;
    });
  }

  std::vector<TaskStatus> updates() {
    std::lock_guard<std::mutex> lock(mu_);
    return updates_;
  }
  std::vector<Call> subscribes() {
    std::lock_guard<std::mutex> lock(mu_);
    return subscribes_;
  }

 private:
  void Serve(http::Request request, std::shared_ptr<http::Responder> r) {
    Call call;
    if (!call.ParseFromString(request.body)) {
      r->Respond(http::Response::Error(400, "unparsable Call"));
      return;
    }
    if (call.executor_id().value() != "exec-1" ||
        call.framework_id().value() != "fw-1") {
      r->Respond(http::Response::Error(400, "wrong executor_id/framework_id"));
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (call.type() == Call::SUBSCRIBE) {
      r->StartStream(200, {{"Content-Type", "application/recordio"}});
      Event subscribed;
      subscribed.set_type(Event::SUBSCRIBED);
      auto* info = subscribed.mutable_subscribed();
      info->mutable_executor_info()->mutable_executor_id()->set_value("exec-1");
      info->mutable_framework_info()->mutable_id()->set_value("fw-1");
      if (options_.task_killing_state) {
        info->mutable_framework_info()->add_capabilities()->set_type(
            v1::FrameworkInfo::Capability::TASK_KILLING_STATE);
      }
      info->mutable_agent_info()->mutable_id()->set_value("agent-1");
      info->mutable_container_id()->set_value("container-1");
      r->WriteChunk(recordio::Encode(subscribed.SerializeAsString()));
      stream_ = r;
      subscribes_.push_back(call);
      for (const Call::Update& update : call.subscribe().unacknowledged_updates()) {
        updates_.push_back(update.status());
        MaybeAcknowledge(update.status());
      }
    } else if (call.type() == Call::UPDATE) {
      http::Response accepted;
      accepted.status = 202;
      r->Respond(accepted);
      updates_.push_back(call.update().status());
      MaybeAcknowledge(call.update().status());
    } else {
      http::Response accepted;
      accepted.status = 202;
      r->Respond(accepted);
    }
    cv_.notify_all();
  }

  // REQUIRES: mu_ held.
  void MaybeAcknowledge(const TaskStatus& status) {
    if (stream_ == nullptr || !options_.ack(status)) return;
    Event ack;
    ack.set_type(Event::ACKNOWLEDGED);
    *ack.mutable_acknowledged()->mutable_task_id() = status.task_id();
    ack.mutable_acknowledged()->set_uuid(status.uuid());
    stream_->WriteChunk(recordio::Encode(ack.SerializeAsString()));
  }

  const Options options_;
  std::unique_ptr<http::Server> server_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<http::Responder> stream_;  // guarded by mu_
  std::vector<Call> subscribes_;             // guarded by mu_
  std::vector<TaskStatus> updates_;          // guarded by mu_
};

v1::TaskInfo ShellTask(const std::string& command,
                       const std::string& task_id = "task-1") {
  v1::TaskInfo task;
  task.set_name("test task");
  task.mutable_task_id()->set_value(task_id);
  task.mutable_agent_id()->set_value("agent-1");
  task.mutable_command()->set_value(command);
  return task;
}

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    std::unique_ptr<Runfiles> runfiles(Runfiles::CreateForTest(&error));
    ASSERT_NE(runfiles, nullptr) << error;
    binary_ = runfiles->Rlocation("cairn/agent/cairn-executor");
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr);
    const testing::TestInfo* info =
        testing::UnitTest::GetInstance()->current_test_info();
    sandbox_ = absl::StrCat(tmp, "/", info->name());
    ASSERT_EQ(mkdir(sandbox_.c_str(), 0755), 0) << sandbox_;
  }

  void TearDown() override {
    if (executor_pid_ > 0 && !exit_status_.has_value()) {
      kill(-executor_pid_, SIGKILL);
      waitpid(executor_pid_, nullptr, 0);
    }
    for (pid_t pid : task_pids_) kill(-pid, SIGKILL);
    if (HasFailure()) {
      std::cerr << "---- executor stderr ----\n"
                << ReadFile(sandbox_ + "/stderr") << "\n";
    }
  }

  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // Starts cairn-executor as the agent would: its own session, in the
  // sandbox, output to sandbox/stdout and sandbox/stderr.
  void StartExecutor(uint16_t agent_port,
                     const std::vector<std::string>& extra_env = {}) {
    std::vector<std::string> env = {
        absl::StrCat("MESOS_AGENT_ENDPOINT=127.0.0.1:", agent_port),
        "MESOS_FRAMEWORK_ID=fw-1",
        "MESOS_EXECUTOR_ID=exec-1",
        "MESOS_DIRECTORY=" + sandbox_,
        "MESOS_SANDBOX=" + sandbox_,
        "MESOS_CHECKPOINT=1",
        "MESOS_RECOVERY_TIMEOUT=1mins",
        "MESOS_SUBSCRIPTION_BACKOFF_MAX=200ms",
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=1secs",
        "CAIRN_CONTAINER_ID=container-1",
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "HOME=" + sandbox_,
    };
    for (const std::string& e : extra_env) env.push_back(e);
    std::vector<char*> envp;
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const std::string out = sandbox_ + "/stdout";
    const std::string err = sandbox_ + "/stderr";
    char* argv[] = {binary_.data(), nullptr};
    const pid_t parent = getpid();
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      setsid();
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      const int in_fd = open("/dev/null", O_RDONLY);
      const int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      const int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(in_fd, 0);
      dup2(out_fd, 1);
      dup2(err_fd, 2);
      for (int fd = 3; fd < 1024; ++fd) close(fd);
      if (chdir(sandbox_.c_str()) != 0) _exit(126);
      execve(argv[0], argv, envp.data());
      _exit(127);
    }
    executor_pid_ = pid;
  }

  // Waits for the executor to exit; returns its wait status.
  std::optional<int> WaitForExit(absl::Duration deadline = kDeadline) {
    if (exit_status_.has_value()) return exit_status_;
    Eventually(
        [&] {
          int status = 0;
          if (waitpid(executor_pid_, &status, WNOHANG) == executor_pid_) {
            exit_status_ = status;
          }
          return exit_status_.has_value();
        },
        deadline);
    return exit_status_;
  }

  // The task's pid, from the TASK_RUNNING message "cairn-executor: pid N".
  pid_t TaskPid(FakeAgent& agent, const std::string& task_id = "task-1") {
    for (const TaskStatus& s : agent.updates()) {
      if (s.state() != v1::TASK_RUNNING || s.has_healthy() ||
          s.task_id().value() != task_id) {
        continue;
      }
      int pid = 0;
      if (absl::StartsWith(s.message(), "cairn-executor: pid ") &&
          absl::SimpleAtoi(s.message().substr(20), &pid)) {
        task_pids_.push_back(pid);
        return pid;
      }
    }
    return -1;
  }

  std::vector<v1::TaskState> States(FakeAgent& agent) {
    std::vector<v1::TaskState> states;
    for (const TaskStatus& s : agent.updates()) states.push_back(s.state());
    return states;
  }

  // The states reported for `task_id`, in order.
  std::vector<v1::TaskState> TaskStates(FakeAgent& agent,
                                        const std::string& task_id) {
    std::vector<v1::TaskState> states;
    for (const TaskStatus& s : agent.updates()) {
      if (s.task_id().value() == task_id) states.push_back(s.state());
    }
    return states;
  }

  // Starts the agent and the executor, waits for the subscription and
  // launches `task`.
  void StartAndLaunch(FakeAgent& agent, const v1::TaskInfo& task,
                      const std::vector<std::string>& extra_env = {}) {
    ASSERT_TRUE(agent.Start().ok());
    StartExecutor(agent.port(), extra_env);
    ASSERT_TRUE(agent.WaitForSubscribes(1));
    ASSERT_TRUE(agent.Launch(task));
  }

  std::string binary_;
  std::string sandbox_;
  pid_t executor_pid_ = -1;
  std::optional<int> exit_status_;
  std::vector<pid_t> task_pids_;
};

TEST_F(ExecutorTest, FinishedTaskIsReportedInOrderAndExecutorExits) {
  FakeAgent agent({});
  StartAndLaunch(agent, ShellTask("echo hello; sleep 1"));
  ASSERT_TRUE(agent.WaitForState(v1::TASK_FINISHED)) << Describe(agent.updates());
  std::optional<int> status = WaitForExit();
  ASSERT_TRUE(status.has_value()) << "executor did not exit";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;

  const std::vector<TaskStatus> updates = agent.updates();
  ASSERT_EQ(States(agent),
            (std::vector<v1::TaskState>{v1::TASK_STARTING, v1::TASK_RUNNING,
                                        v1::TASK_FINISHED}))
      << Describe(updates);
  std::set<std::string> uuids;
  for (const TaskStatus& s : updates) {
    EXPECT_EQ(s.task_id().value(), "task-1");
    EXPECT_EQ(s.executor_id().value(), "exec-1");
    EXPECT_EQ(s.source(), TaskStatus::SOURCE_EXECUTOR);
    EXPECT_EQ(s.uuid().size(), 16u);
    EXPECT_GT(s.timestamp(), 1e9);
    uuids.insert(s.uuid());
  }
  EXPECT_EQ(uuids.size(), 3u);
  EXPECT_TRUE(absl::StartsWith(updates[1].message(), "cairn-executor: pid "))
      << updates[1].message();
  EXPECT_EQ(updates[2].message(), "Command exited with status 0");
  EXPECT_NE(ReadFile(sandbox_ + "/stdout").find("hello"), std::string::npos);
  EXPECT_EQ(agent.subscribes().size(), 1u);
}

TEST_F(ExecutorTest, NonZeroExitIsTaskFailedWithStatus) {
  FakeAgent agent({});
  StartAndLaunch(agent, ShellTask("exit 3"));
  ASSERT_TRUE(agent.WaitForState(v1::TASK_FAILED)) << Describe(agent.updates());
  const TaskStatus failed = agent.updates().back();
  EXPECT_EQ(failed.state(), v1::TASK_FAILED);
  EXPECT_EQ(failed.message(), "Command exited with status 3");
  std::optional<int> status = WaitForExit();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

TEST_F(ExecutorTest, ArgvCommandGetsTaskEnvironmentAndSandbox) {
  FakeAgent agent({});
  v1::TaskInfo task = ShellTask("/bin/sh");
  task.mutable_command()->set_shell(false);
  task.mutable_command()->add_arguments("sh");
  task.mutable_command()->add_arguments("-c");
  task.mutable_command()->add_arguments(
      "echo \"$GREETING from $(pwd) $MESOS_EXECUTOR_ID\"");
  auto* var = task.mutable_command()->mutable_environment()->add_variables();
  var->set_name("GREETING");
  var->set_value("hi");
  StartAndLaunch(agent, task);
  ASSERT_TRUE(agent.WaitForState(v1::TASK_FINISHED)) << Describe(agent.updates());
  EXPECT_NE(ReadFile(sandbox_ + "/stdout")
                .find(absl::StrCat("hi from ", sandbox_, " exec-1")),
            std::string::npos)
      << ReadFile(sandbox_ + "/stdout");
}

TEST_F(ExecutorTest, MissingExecutableIsTaskFailedNamingIt) {
  FakeAgent agent({});
  v1::TaskInfo task = ShellTask("/no/such/program");
  task.mutable_command()->set_shell(false);
  StartAndLaunch(agent, task);
  ASSERT_TRUE(agent.WaitForState(v1::TASK_FAILED)) << Describe(agent.updates());
  EXPECT_NE(agent.updates().back().message().find("/no/such/program"),
            std::string::npos)
      << agent.updates().back().message();
}

TEST_F(ExecutorTest, UnknownUserIsTaskFailed) {
  if (geteuid() != 0) GTEST_SKIP() << "switching users needs root";
  FakeAgent agent({});
  v1::TaskInfo task = ShellTask("true");
  task.mutable_command()->set_user("no-such-user-cairn");
  StartAndLaunch(agent, task);
  ASSERT_TRUE(agent.WaitForState(v1::TASK_FAILED)) << Describe(agent.updates());
  const std::string message = agent.updates().back().message();
  EXPECT_NE(message.find("task.command.user"), std::string::npos) << message;
  EXPECT_NE(message.find("no-such-user-cairn"), std::string::npos) << message;
}

TEST_F(ExecutorTest, KillEscalatesToSigkillAndNoProcessOfTheTaskSurvives) {
  FakeAgent::Options options;
  options.task_killing_state = true;
  FakeAgent agent(options);
  // The shell and both sleeps ignore SIGTERM (an ignored signal stays
  // ignored across exec).
  StartAndLaunch(agent,
                 ShellTask("trap '' TERM; (sleep 1000) & sleep 1000; wait"));
  ASSERT_TRUE(agent.WaitForState(v1::TASK_RUNNING)) << Describe(agent.updates());
  const pid_t task_pid = TaskPid(agent);
  ASSERT_GT(task_pid, 0);
  ASSERT_TRUE(Eventually([&] { return LiveProcessesInGroup(task_pid).size() >= 3; }))
      << LiveProcessesInGroup(task_pid).size();

  ASSERT_TRUE(agent.Kill("task-1", absl::Seconds(1)));
  ASSERT_TRUE(agent.WaitForState(v1::TASK_KILLED)) << Describe(agent.updates());
  EXPECT_EQ(States(agent),
            (std::vector<v1::TaskState>{v1::TASK_STARTING, v1::TASK_RUNNING,
                                        v1::TASK_KILLING, v1::TASK_KILLED}))
      << Describe(agent.updates());
  EXPECT_EQ(agent.updates().back().message(),
            "Command terminated by signal SIGKILL");
  EXPECT_TRUE(Eventually([&] { return LiveProcessesInGroup(task_pid).empty(); }))
      << LiveProcessesInGroup(task_pid).size() << " process(es) survived";
  std::optional<int> status = WaitForExit();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

TEST_F(ExecutorTest, KillWithoutKillingCapabilitySendsNoTaskKilling) {
  FakeAgent agent({});
  StartAndLaunch(agent, ShellTask("sleep 1000"));
  ASSERT_TRUE(agent.WaitForState(v1::TASK_RUNNING));
  ASSERT_TRUE(agent.Kill("task-1"));
  ASSERT_TRUE(agent.WaitForState(v1::TASK_KILLED)) << Describe(agent.updates());
  EXPECT_EQ(States(agent),
            (std::vector<v1::TaskState>{v1::TASK_STARTING, v1::TASK_RUNNING,
                                        v1::TASK_KILLED}));
  EXPECT_EQ(agent.updates().back().message(),
            "Command terminated by signal SIGTERM");
}

TEST_F(ExecutorTest, MaxCompletionTimeFailsTheTask) {
  FakeAgent agent({});
  v1::TaskInfo task = ShellTask("sleep 1000");
  task.mutable_max_completion_time()->set_nanoseconds(
      absl::ToInt64Nanoseconds(absl::Milliseconds(300)));
  StartAndLaunch(agent, task);
  ASSERT_TRUE(agent.WaitForState(v1::TASK_FAILED)) << Describe(agent.updates());
  EXPECT_EQ(agent.updates().back().reason(),
            TaskStatus::REASON_MAX_COMPLETION_TIME_REACHED);
}

TEST_F(ExecutorTest, ShutdownKillsTheTaskAndExits) {
  FakeAgent agent({});
  StartAndLaunch(agent, ShellTask("sleep 1000"));
  ASSERT_TRUE(agent.WaitForState(v1::TASK_RUNNING));
  const pid_t task_pid = TaskPid(agent);
  Event shutdown;
  shutdown.set_type(Event::SHUTDOWN);
  ASSERT_TRUE(agent.Send(shutdown));
  ASSERT_TRUE(agent.WaitForState(v1::TASK_KILLED)) << Describe(agent.updates());
  std::optional<int> status = WaitForExit();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  EXPECT_TRUE(LiveProcessesInGroup(task_pid).empty());
}

// The core of agent recovery: the agent goes away while the task runs, the
// task ends meanwhile, and a new agent on the same port gets every update
// the executor holds, in order, with the true exit status.
TEST_F(ExecutorTest, AgentRestartLosesNoUpdate) {
  FakeAgent::Options first_options;
  // The first agent acknowledges only TASK_STARTING: TASK_RUNNING must be
  // resent too.
  first_options.ack = [](const TaskStatus& s) {
    return s.state() == v1::TASK_STARTING;
  };
  auto first = std::make_unique<FakeAgent>(first_options);
  StartAndLaunch(*first, ShellTask("sleep 2; exit 7"));
  ASSERT_TRUE(first->WaitForState(v1::TASK_RUNNING)) << Describe(first->updates());
  const pid_t task_pid = TaskPid(*first);
  ASSERT_GT(task_pid, 0);
  const uint16_t port = first->port();
  first->Stop();
  first.reset();

  // The task ends while no agent is there, and the executor stays.
  ASSERT_TRUE(Eventually([&] { return LiveProcessesInGroup(task_pid).empty(); }));
  ASSERT_FALSE(WaitForExit(absl::Milliseconds(500)).has_value())
      << "the executor exited without an agent";

  FakeAgent::Options second_options;
  second_options.port = port;
  FakeAgent second(second_options);
  ASSERT_TRUE(Eventually([&] { return second.Start().ok(); }));
  ASSERT_TRUE(second.WaitForSubscribes(1));
  const Call resubscribe = second.subscribes().front();
  // STARTING was acknowledged: the agent knows the task.
  EXPECT_EQ(resubscribe.subscribe().unacknowledged_tasks_size(), 0);
  ASSERT_EQ(resubscribe.subscribe().unacknowledged_updates_size(), 2)
      << resubscribe.DebugString();
  const TaskStatus& running =
      resubscribe.subscribe().unacknowledged_updates(0).status();
  const TaskStatus& failed =
      resubscribe.subscribe().unacknowledged_updates(1).status();
  EXPECT_EQ(running.state(), v1::TASK_RUNNING);
  EXPECT_EQ(failed.state(), v1::TASK_FAILED);
  EXPECT_EQ(failed.message(), "Command exited with status 7");
  EXPECT_EQ(failed.uuid().size(), 16u);
  EXPECT_NE(running.uuid(), failed.uuid());

  // Acknowledged by the new agent: done.
  std::optional<int> status = WaitForExit();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
}

TEST_F(ExecutorTest, UnacknowledgedTaskIsResentOnResubscription) {
  FakeAgent::Options first_options;
  first_options.ack = [](const TaskStatus&) { return false; };
  auto first = std::make_unique<FakeAgent>(first_options);
  StartAndLaunch(*first, ShellTask("sleep 1000"));
  ASSERT_TRUE(first->WaitForState(v1::TASK_RUNNING));
  TaskPid(*first);
  const uint16_t port = first->port();
  first->Stop();
  first.reset();

  FakeAgent::Options second_options;
  second_options.port = port;
  FakeAgent second(second_options);
  ASSERT_TRUE(Eventually([&] { return second.Start().ok(); }));
  ASSERT_TRUE(second.WaitForSubscribes(1));
  const Call resubscribe = second.subscribes().front();
  ASSERT_EQ(resubscribe.subscribe().unacknowledged_tasks_size(), 1);
  EXPECT_EQ(resubscribe.subscribe().unacknowledged_tasks(0).task_id().value(),
            "task-1");
  ASSERT_EQ(resubscribe.subscribe().unacknowledged_updates_size(), 2);
  EXPECT_EQ(resubscribe.subscribe().unacknowledged_updates(0).status().state(),
            v1::TASK_STARTING);
  // The task still runs, and can be killed through the new agent.
  ASSERT_TRUE(second.Kill("task-1"));
  ASSERT_TRUE(second.WaitForState(v1::TASK_KILLED)) << Describe(second.updates());
}

TEST_F(ExecutorTest, RecoveryTimeoutKillsTaskAndExitsNonZero) {
  auto agent = std::make_unique<FakeAgent>(FakeAgent::Options{});
  StartAndLaunch(*agent, ShellTask("sleep 1000"),
                 {"MESOS_RECOVERY_TIMEOUT=1secs"});
  ASSERT_TRUE(agent->WaitForState(v1::TASK_RUNNING));
  const pid_t task_pid = TaskPid(*agent);
  ASSERT_GT(task_pid, 0);
  agent->Stop();
  agent.reset();

  std::optional<int> status = WaitForExit();
  ASSERT_TRUE(status.has_value()) << "executor still running";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << *status;
  EXPECT_TRUE(Eventually([&] { return LiveProcessesInGroup(task_pid).empty(); }));
}

TEST_F(ExecutorTest, FailingHttpHealthCheckKillsTheTask) {
  std::atomic<int> answer{200};
  http::Server health_server;
  health_server.HandleSync("GET", "/health", [&](const http::Request&) {
    return http::Response::Text(answer.load(), "status");
  });
  ASSERT_TRUE(health_server.Start().ok());

  FakeAgent agent({});
  v1::TaskInfo task = ShellTask("sleep 1000");
  auto* check = task.mutable_health_check();
  check->set_type(v1::HealthCheck::HTTP);
  check->mutable_http()->set_port(health_server.port());
  check->mutable_http()->set_path("/health");
  check->set_delay_seconds(0);
  check->set_interval_seconds(0.2);
  check->set_timeout_seconds(5);
  check->set_grace_period_seconds(0);
  check->set_consecutive_failures(3);
  task.mutable_kill_policy()->mutable_grace_period()->set_nanoseconds(
      absl::ToInt64Nanoseconds(absl::Seconds(1)));
  StartAndLaunch(agent, task);

  ASSERT_TRUE(agent.WaitForUpdate([](const TaskStatus& s) {
    return s.state() == v1::TASK_RUNNING && s.has_healthy() && s.healthy();
  })) << Describe(agent.updates());
  answer.store(500);
  ASSERT_TRUE(agent.WaitForState(v1::TASK_KILLED)) << Describe(agent.updates());

  std::vector<TaskStatus> updates = agent.updates();
  int healthy = 0, unhealthy = 0;
  for (const TaskStatus& s : updates) {
    if (s.state() != v1::TASK_RUNNING || !s.has_healthy()) continue;
    EXPECT_EQ(s.reason(), TaskStatus::REASON_TASK_HEALTH_CHECK_STATUS_UPDATED);
    (s.healthy() ? healthy : unhealthy)++;
  }
  EXPECT_EQ(healthy, 1) << Describe(updates);
  EXPECT_EQ(unhealthy, 3) << Describe(updates);
  const TaskStatus& killed = updates.back();
  EXPECT_EQ(killed.state(), v1::TASK_KILLED);
  ASSERT_TRUE(killed.has_healthy());
  EXPECT_FALSE(killed.healthy());
  EXPECT_NE(killed.message().find("Health check failed 3 times"),
            std::string::npos)
      << killed.message();
}

TEST_F(ExecutorTest, CommandHealthCheckSeesTheSandbox) {
  FakeAgent agent({});
  // The task creates the file the check looks for.
  v1::TaskInfo task = ShellTask("touch ok; sleep 1000");
  auto* check = task.mutable_health_check();
  check->set_type(v1::HealthCheck::COMMAND);
  check->mutable_command()->set_value("test -f ok");
  check->set_delay_seconds(0);
  check->set_interval_seconds(0.2);
  check->set_grace_period_seconds(30);
  StartAndLaunch(agent, task);
  ASSERT_TRUE(agent.WaitForUpdate([](const TaskStatus& s) {
    return s.has_healthy() && s.healthy();
  })) << Describe(agent.updates());
  ASSERT_TRUE(agent.Kill("task-1"));
  ASSERT_TRUE(agent.WaitForState(v1::TASK_KILLED));
}

TEST_F(ExecutorTest, BadHealthCheckFailsTheLaunchNamingTheField) {
  FakeAgent agent({});
  v1::TaskInfo task = ShellTask("sleep 1000");
  task.mutable_health_check()->set_type(v1::HealthCheck::TCP);
  task.mutable_health_check()->mutable_tcp();  // no port
  StartAndLaunch(agent, task);
  ASSERT_TRUE(agent.WaitForState(v1::TASK_FAILED)) << Describe(agent.updates());
  EXPECT_NE(agent.updates().back().message().find("task.health_check.tcp.port"),
            std::string::npos)
      << agent.updates().back().message();
}

// ---- Several tasks in one executor (the default executor's job) -----------

TEST_F(ExecutorTest, TasksOfSeparateLaunchesEndIndependently) {
  FakeAgent agent({});
  // task-a ends only once task-b runs (the executor would exit otherwise).
  StartAndLaunch(agent,
                 ShellTask("while [ ! -f b-runs ]; do sleep 0.05; done; exit 0",
                           "task-a"));
  ASSERT_TRUE(agent.Launch(ShellTask("touch b-runs; sleep 1000", "task-b")));
  ASSERT_TRUE(agent.WaitForTaskState("task-a", v1::TASK_FINISHED))
      << Describe(agent.updates());
  ASSERT_TRUE(agent.WaitForTaskState("task-b", v1::TASK_RUNNING))
      << Describe(agent.updates());
  const pid_t b = TaskPid(agent, "task-b");
  ASSERT_GT(b, 0);
  // task-a's end touches neither task-b nor the executor.
  ASSERT_FALSE(WaitForExit(absl::Milliseconds(500)).has_value());
  EXPECT_FALSE(LiveProcessesInGroup(b).empty());
  EXPECT_EQ(TaskStates(agent, "task-b"),
            (std::vector<v1::TaskState>{v1::TASK_STARTING, v1::TASK_RUNNING}));

  ASSERT_TRUE(agent.Kill("task-b"));
  ASSERT_TRUE(agent.WaitForTaskState("task-b", v1::TASK_KILLED))
      << Describe(agent.updates());
  EXPECT_EQ(TaskStates(agent, "task-a"),
            (std::vector<v1::TaskState>{v1::TASK_STARTING, v1::TASK_RUNNING,
                                        v1::TASK_FINISHED}));
  std::optional<int> status = WaitForExit();
  ASSERT_TRUE(status.has_value()) << "executor did not exit";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  EXPECT_TRUE(Eventually([&] { return LiveProcessesInGroup(b).empty(); }));
}

TEST_F(ExecutorTest, FailingTaskOfAGroupKillsTheRestOfTheGroup) {
  FakeAgent agent({});
  ASSERT_TRUE(agent.Start().ok());
  StartExecutor(agent.port());
  ASSERT_TRUE(agent.WaitForSubscribes(1));
  // task-a fails only once task-b runs (it waits for task-b's file).
  ASSERT_TRUE(agent.LaunchGroup(
      {ShellTask("while [ ! -f b-runs ]; do sleep 0.05; done; exit 1",
                 "task-a"),
       ShellTask("touch b-runs; sleep 1000", "task-b")}));
  ASSERT_TRUE(agent.WaitForTaskState("task-a", v1::TASK_FAILED))
      << Describe(agent.updates());
  ASSERT_TRUE(agent.WaitForTaskState("task-b", v1::TASK_KILLED))
      << Describe(agent.updates());
  const pid_t b = TaskPid(agent, "task-b");
  ASSERT_GT(b, 0);
  EXPECT_EQ(TaskStates(agent, "task-a"),
            (std::vector<v1::TaskState>{v1::TASK_STARTING, v1::TASK_RUNNING,
                                        v1::TASK_FAILED}));
  EXPECT_EQ(TaskStates(agent, "task-b"),
            (std::vector<v1::TaskState>{v1::TASK_STARTING, v1::TASK_RUNNING,
                                        v1::TASK_KILLED}));
  std::optional<int> status = WaitForExit();
  ASSERT_TRUE(status.has_value()) << "executor did not exit";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  EXPECT_TRUE(LiveProcessesInGroup(b).empty());
}

// A finished task leaves its group running; a KILL of one task ends the
// whole group (as Mesos's default executor).
TEST_F(ExecutorTest, FinishedTaskLeavesTheGroupAndKillEndsIt) {
  FakeAgent agent({});
  ASSERT_TRUE(agent.Start().ok());
  StartExecutor(agent.port());
  ASSERT_TRUE(agent.WaitForSubscribes(1));
  ASSERT_TRUE(agent.LaunchGroup({ShellTask("exit 0", "task-a"),
                                 ShellTask("sleep 1000", "task-b"),
                                 ShellTask("sleep 1000", "task-c")}));
  ASSERT_TRUE(agent.WaitForTaskState("task-a", v1::TASK_FINISHED))
      << Describe(agent.updates());
  ASSERT_TRUE(agent.WaitForTaskState("task-b", v1::TASK_RUNNING));
  ASSERT_TRUE(agent.WaitForTaskState("task-c", v1::TASK_RUNNING));
  const pid_t b = TaskPid(agent, "task-b");
  const pid_t c = TaskPid(agent, "task-c");
  ASSERT_GT(b, 0);
  ASSERT_GT(c, 0);
  ASSERT_FALSE(WaitForExit(absl::Milliseconds(300)).has_value());
  EXPECT_FALSE(LiveProcessesInGroup(b).empty());
  EXPECT_FALSE(LiveProcessesInGroup(c).empty());

  ASSERT_TRUE(agent.Kill("task-b"));
  ASSERT_TRUE(agent.WaitForTaskState("task-b", v1::TASK_KILLED))
      << Describe(agent.updates());
  ASSERT_TRUE(agent.WaitForTaskState("task-c", v1::TASK_KILLED))
      << Describe(agent.updates());
  std::optional<int> status = WaitForExit();
  ASSERT_TRUE(status.has_value()) << "executor did not exit";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  EXPECT_TRUE(LiveProcessesInGroup(b).empty());
  EXPECT_TRUE(LiveProcessesInGroup(c).empty());
}

TEST_F(ExecutorTest, ResubscriptionCarriesEveryTaskAndItsUpdates) {
  FakeAgent::Options first_options;
  // task-a's updates are acknowledged, task-b's are not.
  first_options.ack = [](const TaskStatus& s) {
    return s.task_id().value() == "task-a";
  };
  auto first = std::make_unique<FakeAgent>(first_options);
  ASSERT_TRUE(first->Start().ok());
  StartExecutor(first->port());
  ASSERT_TRUE(first->WaitForSubscribes(1));
  ASSERT_TRUE(first->LaunchGroup({ShellTask("sleep 1000", "task-a"),
                                  ShellTask("sleep 1000", "task-b")}));
  ASSERT_TRUE(first->WaitForTaskState("task-a", v1::TASK_RUNNING));
  ASSERT_TRUE(first->WaitForTaskState("task-b", v1::TASK_RUNNING));
  const pid_t a = TaskPid(*first, "task-a");
  const pid_t b = TaskPid(*first, "task-b");
  const uint16_t port = first->port();
  first->Stop();
  first.reset();

  FakeAgent::Options second_options;
  second_options.port = port;
  FakeAgent second(second_options);
  ASSERT_TRUE(Eventually([&] { return second.Start().ok(); }));
  ASSERT_TRUE(second.WaitForSubscribes(1));
  const Call resubscribe = second.subscribes().front();
  ASSERT_EQ(resubscribe.subscribe().unacknowledged_tasks_size(), 1)
      << resubscribe.DebugString();
  EXPECT_EQ(resubscribe.subscribe().unacknowledged_tasks(0).task_id().value(),
            "task-b");
  ASSERT_EQ(resubscribe.subscribe().unacknowledged_updates_size(), 2)
      << resubscribe.DebugString();
  for (const Call::Update& u : resubscribe.subscribe().unacknowledged_updates()) {
    EXPECT_EQ(u.status().task_id().value(), "task-b");
  }
  EXPECT_EQ(resubscribe.subscribe().unacknowledged_updates(0).status().state(),
            v1::TASK_STARTING);
  EXPECT_EQ(resubscribe.subscribe().unacknowledged_updates(1).status().state(),
            v1::TASK_RUNNING);
  EXPECT_FALSE(LiveProcessesInGroup(a).empty());
  EXPECT_FALSE(LiveProcessesInGroup(b).empty());

  // Both still run and are supervised through the new agent.
  ASSERT_TRUE(second.Kill("task-a"));
  ASSERT_TRUE(second.WaitForTaskState("task-a", v1::TASK_KILLED))
      << Describe(second.updates());
  ASSERT_TRUE(second.WaitForTaskState("task-b", v1::TASK_KILLED))
      << Describe(second.updates());
  std::optional<int> status = WaitForExit();
  ASSERT_TRUE(status.has_value()) << "executor did not exit";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
}

TEST_F(ExecutorTest, EmptyLaunchGroupIsIgnored) {
  FakeAgent agent({});
  ASSERT_TRUE(agent.Start().ok());
  StartExecutor(agent.port());
  ASSERT_TRUE(agent.WaitForSubscribes(1));
  ASSERT_TRUE(agent.LaunchGroup({}));
  ASSERT_TRUE(agent.Launch(ShellTask("exit 0")));
  ASSERT_TRUE(agent.WaitForState(v1::TASK_FINISHED)) << Describe(agent.updates());
  EXPECT_EQ(States(agent),
            (std::vector<v1::TaskState>{v1::TASK_STARTING, v1::TASK_RUNNING,
                                        v1::TASK_FINISHED}));
  std::optional<int> status = WaitForExit();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
}

// ---- In-process: configuration ---------------------------------------------

TEST(ParseMesosDurationTest, ParsesMesosUnits) {
  EXPECT_EQ(*ParseMesosDuration("15mins"), absl::Minutes(15));
  EXPECT_EQ(*ParseMesosDuration("2secs"), absl::Seconds(2));
  EXPECT_EQ(*ParseMesosDuration("1.5secs"), absl::Milliseconds(1500));
  EXPECT_EQ(*ParseMesosDuration("200ms"), absl::Milliseconds(200));
  EXPECT_EQ(*ParseMesosDuration("10us"), absl::Microseconds(10));
  EXPECT_EQ(*ParseMesosDuration("7ns"), absl::Nanoseconds(7));
  EXPECT_EQ(*ParseMesosDuration("1hrs"), absl::Hours(1));
  EXPECT_EQ(*ParseMesosDuration("2days"), absl::Hours(48));
  EXPECT_EQ(*ParseMesosDuration("1weeks"), absl::Hours(168));
}

TEST(ParseMesosDurationTest, RejectsBadInput) {
  for (const char* bad : {"", "secs", "10", "10 secs", "10s", "-1secs",
                          "1.2.3secs", "abc"}) {
    EXPECT_EQ(ParseMesosDuration(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

std::vector<std::string> GoodEnvironment() {
  return {"MESOS_AGENT_ENDPOINT=127.0.0.1:5051", "MESOS_FRAMEWORK_ID=fw",
          "MESOS_EXECUTOR_ID=ex", "MESOS_SANDBOX=/tmp/s",
          "MESOS_CHECKPOINT=1", "MESOS_RECOVERY_TIMEOUT=15mins",
          "MESOS_SUBSCRIPTION_BACKOFF_MAX=2secs",
          "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=5secs"};
}

TEST(ExecutorOptionsTest, ReadsTheAgentsVariables) {
  absl::StatusOr<ExecutorOptions> options =
      ExecutorOptions::FromEnvironment(GoodEnvironment());
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->agent_host, "127.0.0.1");
  EXPECT_EQ(options->agent_port, 5051);
  EXPECT_EQ(options->framework_id.value(), "fw");
  EXPECT_EQ(options->executor_id.value(), "ex");
  EXPECT_EQ(options->sandbox, "/tmp/s");
  EXPECT_TRUE(options->checkpoint);
  EXPECT_EQ(options->recovery_timeout, absl::Minutes(15));
  EXPECT_EQ(options->subscription_backoff_max, absl::Seconds(2));
  EXPECT_EQ(options->shutdown_grace_period, absl::Seconds(5));
}

TEST(ExecutorOptionsTest, BadVariableIsNamed) {
  struct Case {
    std::string entry;
    std::string named;
  };
  for (const Case& c : std::vector<Case>{
           {"MESOS_AGENT_ENDPOINT=localhost", "MESOS_AGENT_ENDPOINT"},
           {"MESOS_AGENT_ENDPOINT=h:99999", "MESOS_AGENT_ENDPOINT"},
           {"MESOS_FRAMEWORK_ID=", "MESOS_FRAMEWORK_ID"},
           {"MESOS_RECOVERY_TIMEOUT=soon", "MESOS_RECOVERY_TIMEOUT"},
           {"MESOS_SUBSCRIPTION_BACKOFF_MAX=2", "MESOS_SUBSCRIPTION_BACKOFF_MAX"},
           {"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=x",
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"}}) {
    std::vector<std::string> env = GoodEnvironment();
    env.push_back(c.entry);  // the last value of a name wins
    absl::StatusOr<ExecutorOptions> options =
        ExecutorOptions::FromEnvironment(env);
    EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument)
        << c.entry;
    EXPECT_NE(options.status().message().find(c.named), std::string::npos)
        << options.status();
  }
}

}  // namespace
}  // namespace cairn::agent
