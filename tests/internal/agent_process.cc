#include "tests/internal/agent_process.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/http_client.h"
#include "tests/internal/master_cluster.h"

namespace cairn::tests {
namespace {

constexpr absl::Duration kPollPause = absl::Milliseconds(20);
constexpr absl::Duration kStartTimeout = absl::Seconds(20);

// The environment of `pid` as NAME -> value (empty when unreadable).
std::map<std::string, std::string> EnvironmentOf(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/environ"), std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::map<std::string, std::string> env;
  for (absl::string_view entry :
       absl::StrSplit(buffer.str(), '\0', absl::SkipEmpty())) {
    const size_t eq = entry.find('=');
    if (eq == absl::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)),
                std::string(entry.substr(eq + 1)));
  }
  return env;
}

// A query parameter's value, percent-encoded.
std::string QueryEscape(absl::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' ||
        c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

}  // namespace

std::vector<pid_t> ProcessesBelow(const std::string& work_dir) {
  std::vector<pid_t> pids;
  std::error_code error;
  const std::string root = std::filesystem::absolute(work_dir).string();
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    pid_t pid = 0;
    if (!absl::SimpleAtoi(name, &pid) || pid == getpid()) continue;
    std::map<std::string, std::string> env = EnvironmentOf(pid);
    auto container = env.find("CAIRN_CONTAINER_ID");
    auto sandbox = env.find("MESOS_SANDBOX");
    if (container == env.end() || sandbox == env.end()) continue;
    if (!absl::StartsWith(sandbox->second, root)) continue;
    // Zombies have an empty environment; only live processes count here.
    pids.push_back(pid);
  }
  return pids;
}

AgentProcess::AgentProcess(AgentProcessOptions options)
    : options_(std::move(options)) {}

AgentProcess::~AgentProcess() {
  if (process_ != nullptr) {
    kill(process_->pid(), SIGTERM);
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (process_->Running() && absl::Now() < deadline) {
      absl::SleepFor(kPollPause);
    }
    process_->Kill();
  }
  // As an operator would: `--recover=cleanup` kills what the checkpoint
  // names and removes its containers (cgroups included). Then, whatever
  // escaped it, by environment.
  std::vector<std::string> argv = Argv();
  argv.push_back("--recover=cleanup");
  argv.push_back("--port=0");
  const std::string log_dir =
      options_.log_dir.empty() ? options_.work_dir : options_.log_dir;
  absl::StatusOr<std::unique_ptr<Process>> cleanup =
      Process::Start(argv, absl::StrCat(log_dir, "/agent-cleanup-at-exit.log"));
  if (cleanup.ok()) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while ((*cleanup)->Running() && absl::Now() < deadline) {
      absl::SleepFor(kPollPause);
    }
  }
  KillExecutors();
}

std::vector<std::string> AgentProcess::Argv() const {
  std::vector<std::string> argv = {
      options_.binary,
      absl::StrCat("--port=", port_),
      "--ip=127.0.0.1",
      absl::StrCat("--hostname=", options_.hostname),
      absl::StrCat("--master=", absl::StrJoin(options_.masters, ",")),
      absl::StrCat("--work_dir=", options_.work_dir),
      absl::StrCat("--resources=", options_.resources),
      absl::StrCat("--isolation=", options_.isolation),
  };
  argv.insert(argv.end(), options_.flags.begin(), options_.flags.end());
  return argv;
}

void AgentProcess::KillExecutors() {
  // Every process started under this agent's work_dir, until none is left.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    std::vector<pid_t> pids = ProcessesBelow(options_.work_dir);
    if (pids.empty()) break;
    for (pid_t pid : pids) {
      kill(pid, SIGKILL);
    }
    absl::SleepFor(kPollPause);
  }
  // Their cgroups (cgroups isolation) are removed by the next agent that
  // recovers this work_dir; tests using cgroups clean up through the agent.
}

absl::StatusOr<std::unique_ptr<AgentProcess>> AgentProcess::Start(
    AgentProcessOptions options, const std::string& log_name) {
  std::unique_ptr<AgentProcess> agent(new AgentProcess(std::move(options)));
  absl::Status status;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::vector<uint16_t> ports = FreePorts(1);
    if (ports.empty()) return absl::InternalError("cannot bind a port");
    agent->port_ = ports[0];
    status = agent->Launch(log_name);
    if (status.ok()) return agent;
  }
  return status;
}

absl::Status AgentProcess::Launch(const std::string& log_name) {
  std::error_code error;
  std::filesystem::create_directories(options_.work_dir, error);
  const std::string log_dir =
      options_.log_dir.empty() ? options_.work_dir : options_.log_dir;
  std::filesystem::create_directories(log_dir, error);
  absl::StatusOr<std::unique_ptr<Process>> process =
      Process::Start(Argv(), absl::StrCat(log_dir, "/", log_name));
  if (!process.ok()) return process.status();
  process_ = *std::move(process);
  const absl::Time deadline = absl::Now() + kStartTimeout;
  while (absl::Now() < deadline) {
    if (!process_->Running()) {
      return absl::UnavailableError(absl::StrCat(
          "cairn-agent exited (", process_->ExitDescription().value_or("?"),
          "): ", process_->LogTail()));
    }
    absl::StatusOr<http::Response> health = Get("/health");
    if (health.ok() && health->status == 200) return absl::OkStatus();
    absl::SleepFor(kPollPause);
  }
  return absl::UnavailableError(absl::StrCat(
      "cairn-agent did not answer /health: ", process_->LogTail()));
}

void AgentProcess::Kill() {
  if (process_ == nullptr) return;
  kill(process_->pid(), SIGKILL);
  while (process_->Running()) absl::SleepFor(absl::Milliseconds(5));
}

absl::Status AgentProcess::Restart(const std::string& log_name) {
  Kill();
  return Launch(log_name);
}

std::string AgentProcess::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

absl::StatusOr<http::Response> AgentProcess::Get(
    const std::string& target) const {
  http::Client client;
  return client.Request("GET", "127.0.0.1", port_, target,
                        {{"Connection", "close"}}, "", absl::Seconds(5));
}

absl::StatusOr<JsonValue> AgentProcess::State() const {
  absl::StatusOr<http::Response> response = Get("/state");
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return absl::UnavailableError(absl::StrCat(
        "/state answered ", response->status, ": ", response->body));
  }
  return ParseJson(response->body);
}

absl::StatusOr<std::string> AgentProcess::WaitForRegistered(
    absl::Time deadline) {
  std::string last = "no answer";
  while (absl::Now() < deadline) {
    absl::StatusOr<JsonValue> state = State();
    if (state.ok()) {
      std::optional<bool> registered = state->Bool("registered");
      std::optional<std::string> id = state->Text("id");
      if (registered.value_or(false) && id.has_value() && !id->empty()) {
        return *id;
      }
      last = "not registered yet";
    } else {
      last = state.status().ToString();
    }
    absl::SleepFor(kPollPause);
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "the agent did not register: ", last, "; log: ", process_->LogTail()));
}

absl::StatusOr<std::string> AgentProcess::SandboxOf(
    const std::string& executor_id) const {
  absl::StatusOr<JsonValue> state = State();
  if (!state.ok()) return state.status();
  for (const char* list : {"frameworks", "completed_frameworks"}) {
    const JsonValue* frameworks = state->Find(list);
    if (frameworks == nullptr) continue;
    for (const JsonValue& framework : frameworks->items) {
      for (const char* executors : {"executors", "completed_executors"}) {
        const JsonValue* list_of = framework.Find(executors);
        if (list_of == nullptr) continue;
        for (const JsonValue& executor : list_of->items) {
          if (executor.Text("id") == executor_id) {
            std::optional<std::string> directory = executor.Text("directory");
            if (directory.has_value()) return *directory;
          }
        }
      }
    }
  }
  return absl::NotFoundError(
      absl::StrCat("executor ", executor_id, " is not in the agent's /state"));
}

absl::StatusOr<std::string> AgentProcess::ReadFile(
    const std::string& path) const {
  absl::StatusOr<http::Response> response =
      Get(absl::StrCat("/files/read?path=", QueryEscape(path), "&offset=0"));
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return absl::NotFoundError(absl::StrCat(
        "/files/read answered ", response->status, ": ", response->body));
  }
  absl::StatusOr<JsonValue> json = ParseJson(response->body);
  if (!json.ok()) return json.status();
  std::optional<std::string> data = json->Text("data");
  if (!data.has_value()) return absl::InternalError("no data in /files/read");
  return *data;
}

}  // namespace cairn::tests
