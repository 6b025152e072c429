// AgentE2eTest: the fixture of the agent's end-to-end tests
// (tests/agent_*_test.cc): real cairn-master processes (MasterCluster), one
// real cairn-agent (AgentProcess) running real cairn-executors, and a framework
// speaking the Mesos v1 scheduler API (SchedulerClient, auto-acknowledging),
// plus the waits those tests share. Every wait is bounded by a deadline.

#ifndef CAIRN_TESTS_INTERNAL_AGENT_E2E_FIXTURE_H_
#define CAIRN_TESTS_INTERNAL_AGENT_E2E_FIXTURE_H_

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "common/json_value.h"
#include "common/task_state.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_process.h"
#include "tests/internal/master_cluster.h"
#include "tests/internal/scheduler_client.h"
#include "tools/cpp/runfiles/runfiles.h"

namespace cairn::tests {

using Event = v1::scheduler::Event;

inline constexpr absl::Duration kTimeout = absl::Seconds(30);
inline constexpr absl::Duration kPoll = absl::Milliseconds(20);

inline bool CgroupsUsable() {
  return getuid() == 0 && access("/sys/fs/cgroup/memory", W_OK) == 0 &&
         access("/sys/fs/cgroup/cpu", W_OK) == 0;
}

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline bool PidAlive(pid_t pid) {
  if (kill(pid, 0) != 0) return false;
  std::string stat = ReadWholeFile(absl::StrCat("/proc/", pid, "/stat"));
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() &&
         stat[paren + 2] != 'Z';
}

inline v1::TaskID MakeTaskId(const std::string& id) {
  v1::TaskID task_id;
  task_id.set_value(id);
  return task_id;
}

class AgentE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    runfiles_.reset(
        bazel::tools::cpp::runfiles::Runfiles::CreateForTest(&error));
    ASSERT_NE(runfiles_, nullptr) << error;
    absl::StatusOr<MasterClusterOptions> options =
        OptionsForThisTest("agent_e2e");
    ASSERT_TRUE(options.ok()) << options.status();
    master_options_ = *std::move(options);
    master_options_.masters = 1;
    master_options_.flags.push_back("--allocation_interval=100ms");
    agent_options_.binary = runfiles_->Rlocation("cairn/agent/cairn-agent");
    agent_options_.work_dir = master_options_.root + "/agent";
    agent_options_.log_dir = master_options_.log_dir;
  }

  // Masters, one agent, and a subscribed framework (auto-acknowledging).
  void StartAll(int masters = 1) {
    master_options_.masters = masters;
    absl::StatusOr<std::unique_ptr<MasterCluster>> cluster =
        MasterCluster::Start(master_options_);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    std::vector<int> all;
    for (int i = 0; i < masters; ++i) {
      all.push_back(i);
      agent_options_.masters.push_back(cluster_->Address(i));
    }
    ASSERT_TRUE(cluster_->WaitForLeader(all).ok());
    absl::StatusOr<std::unique_ptr<AgentProcess>> agent =
        AgentProcess::Start(agent_options_);
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
    absl::StatusOr<std::string> id =
        agent_->WaitForRegistered(absl::Now() + kTimeout);
    ASSERT_TRUE(id.ok()) << id.status();
    agent_id_ = *id;

    SchedulerClientOptions options;
    options.masters = agent_options_.masters;
    options.auto_acknowledge = true;
    scheduler_ = std::make_unique<SchedulerClient>(options);
    v1::FrameworkInfo framework;
    framework.set_name("agent-e2e");
    framework.set_user("root");
    framework.set_failover_timeout(600);
    framework.set_checkpoint(true);
    framework.add_capabilities()->set_type(
        v1::FrameworkInfo::Capability::TASK_KILLING_STATE);
    absl::StatusOr<v1::FrameworkID> fid = scheduler_->Subscribe(framework);
    ASSERT_TRUE(fid.ok()) << fid.status();
  }

  void TearDown() override {
    scheduler_.reset();
    agent_.reset();  // stops the agent, kills what it left behind
    cluster_.reset();
  }

  static v1::Resource Scalar(const std::string& name, double value) {
    v1::Resource r;
    r.set_name(name);
    r.set_type(v1::MesosValue::SCALAR);
    r.mutable_scalar()->set_value(value);
    return r;
  }

  static v1::TaskInfo CommandTask(const std::string& id,
                                  const std::string& command, double cpus = 0.1,
                                  double mem = 32) {
    v1::TaskInfo task;
    task.set_name(id);
    task.mutable_task_id()->set_value(id);
    task.mutable_command()->set_value(command);
    *task.add_resources() = Scalar("cpus", cpus);
    *task.add_resources() = Scalar("mem", mem);
    return task;
  }

  // Launches `tasks` on the next offer (declining nothing: one agent).
  void Launch(const std::vector<v1::TaskInfo>& tasks) {
    absl::StatusOr<Event> offers =
        scheduler_->NextEvent(Event::OFFERS, absl::Now() + kTimeout);
    ASSERT_TRUE(offers.ok()) << offers.status();
    ASSERT_GT(offers->offers().offers_size(), 0);
    const v1::Offer offer = offers->offers().offers(0);
    std::vector<v1::OfferID> rest;
    for (int i = 1; i < offers->offers().offers_size(); ++i) {
      rest.push_back(offers->offers().offers(i).id());
    }
    if (!rest.empty()) {
      ASSERT_TRUE(scheduler_->Decline(rest).ok());
    }
    absl::Status launched = scheduler_->Launch(offer, tasks);
    ASSERT_TRUE(launched.ok()) << launched;
  }

  // Waits for an UPDATE of `task_id` for which `predicate` holds, keeping
  // every update of that task seen on the way in `seen`.
  absl::StatusOr<v1::TaskStatus> WaitForUpdate(
      const std::string& task_id,
      const std::function<bool(const v1::TaskStatus&)>& predicate,
      absl::Duration timeout = kTimeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      absl::StatusOr<Event> event = scheduler_->WaitForEvent(
          [&](const Event& e) {
            return e.type() == Event::UPDATE &&
                   e.update().status().task_id().value() == task_id;
          },
          deadline);
      if (!event.ok()) {
        return absl::Status(
            event.status().code(),
            absl::StrCat("waiting for an update of ", task_id, ": ",
                         event.status().message(), "; agent log: ",
                         agent_ != nullptr && agent_->process() != nullptr
                             ? agent_->process()->LogTail(2000)
                             : ""));
      }
      seen_[task_id].push_back(event->update().status());
      if (predicate(event->update().status())) return event->update().status();
    }
  }

  absl::StatusOr<v1::TaskStatus> WaitForState(
      const std::string& task_id, v1::TaskState state,
      absl::Duration timeout = kTimeout) {
    return WaitForUpdate(
        task_id,
        [state](const v1::TaskStatus& s) { return s.state() == state; },
        timeout);
  }

  absl::StatusOr<v1::TaskStatus> WaitForTerminal(const std::string& task_id) {
    return WaitForUpdate(task_id, [](const v1::TaskStatus& s) {
      return IsTerminalState(s.state());
    });
  }

  // Polls until `file` in `task_id`'s sandbox exists; returns its contents.
  absl::StatusOr<std::string> WaitForSandboxFile(const std::string& task_id,
                                                 const std::string& file) {
    const absl::Time deadline = absl::Now() + kTimeout;
    while (absl::Now() < deadline) {
      absl::StatusOr<std::string> sandbox = agent_->SandboxOf(task_id);
      if (sandbox.ok()) {
        const std::string path = *sandbox + "/" + file;
        std::string contents = ReadWholeFile(path);
        if (!contents.empty() && contents.back() == '\n') return contents;
      }
      absl::SleepFor(kPoll);
    }
    return absl::DeadlineExceededError(
        absl::StrCat("no ", file, " in the sandbox of ", task_id));
  }

  absl::StatusOr<pid_t> TaskPid(const std::string& task_id) {
    absl::StatusOr<std::string> text = WaitForSandboxFile(task_id, "pid");
    if (!text.ok()) return text.status();
    pid_t pid = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &pid)) {
      return absl::InternalError("bad pid file: " + *text);
    }
    return pid;
  }

  // Polls until ProcessesBelow(work_dir) has `count` processes; returns the
  // last list seen.
  std::vector<pid_t> WaitForProcesses(size_t count) {
    std::vector<pid_t> pids = ProcessesBelow(agent_options_.work_dir);
    for (const absl::Time deadline = absl::Now() + kTimeout;
         pids.size() != count && absl::Now() < deadline;
         pids = ProcessesBelow(agent_options_.work_dir)) {
      absl::SleepFor(kPoll);
    }
    return pids;
  }

  // The live executors of the agent's only framework in /state.
  absl::StatusOr<std::vector<JsonValue>> Executors() {
    absl::StatusOr<JsonValue> state = agent_->State();
    if (!state.ok()) return state.status();
    const JsonValue* frameworks = state->Find("frameworks");
    if (frameworks == nullptr || frameworks->items.size() != 1) {
      return absl::FailedPreconditionError("not one framework in /state");
    }
    const JsonValue* executors = frameworks->items[0].Find("executors");
    if (executors == nullptr) return std::vector<JsonValue>();
    return executors->items;
  }

  std::unique_ptr<bazel::tools::cpp::runfiles::Runfiles> runfiles_;
  MasterClusterOptions master_options_;
  AgentProcessOptions agent_options_;
  std::unique_ptr<MasterCluster> cluster_;
  std::unique_ptr<AgentProcess> agent_;
  std::string agent_id_;
  std::unique_ptr<SchedulerClient> scheduler_;
  std::map<std::string, std::vector<v1::TaskStatus>> seen_;
};

}  // namespace cairn::tests

#endif  // CAIRN_TESTS_INTERNAL_AGENT_E2E_FIXTURE_H_
