// AgentProcess: a real `cairn-agent` process for multi-process tests, on
// 127.0.0.1 with an ephemeral port and its own work_dir, plus the calls a
// test makes to it (GET /state, /files/read).
//
//   AgentProcessOptions options;
//   options.binary = runfiles->Rlocation("cairn/agent/cairn-agent");
//   options.masters = {cluster->Address(0)};
//   options.work_dir = root + "/agent";
//   auto agent = AgentProcess::Start(options);
//   (*agent)->WaitForRegistered(deadline);
//   (*agent)->Kill();                    // SIGKILL the agent only: its
//   (*agent)->Restart("agent-2.log");    // executors keep running
//
// Kill() signals the agent's own pid, not its process group: executors run
// in sessions of their own, and a test of "the agent dies" must not kill
// them. The destructor stops the agent with SIGTERM and then kills every
// executor it left behind (`--recover=cleanup` over its checkpoint, which
// removes their cgroups too; then any process whose environment places it
// under the work_dir), so no test leaves processes or cgroups behind.

#ifndef CAIRN_TESTS_INTERNAL_AGENT_PROCESS_H_
#define CAIRN_TESTS_INTERNAL_AGENT_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/http_message.h"
#include "common/json_value.h"
#include "tests/internal/process.h"

namespace cairn::tests {

struct AgentProcessOptions {
  std::string binary;  // cairn-agent; cairn-executor must be beside it
  std::vector<std::string> masters;  // "host:port"
  std::string work_dir;
  std::string log_dir;  // the agent's stdout/stderr: <log_dir>/<log name>
  std::string resources = "cpus:4;mem:2048;disk:1024;ports:[31000-31100]";
  std::string isolation = "posix";
  std::string hostname = "127.0.0.1";
  std::vector<std::string> flags;  // more flags
};

class AgentProcess {
 public:
  // Picks a port and starts the agent; waits until GET /health answers.
  static absl::StatusOr<std::unique_ptr<AgentProcess>> Start(
      AgentProcessOptions options, const std::string& log_name = "agent.log");
  ~AgentProcess();

  // SIGKILLs the agent process (only it) and reaps it.
  void Kill();
  // Starts it again, same flags and port; waits for /health.
  absl::Status Restart(const std::string& log_name);

  // Polls GET /state until "registered" is true and "id" is set.
  absl::StatusOr<std::string> WaitForRegistered(absl::Time deadline);

  absl::StatusOr<JsonValue> State() const;
  absl::StatusOr<http::Response> Get(const std::string& target) const;
  // The whole file `path` through GET /files/read (offset 0, no length).
  absl::StatusOr<std::string> ReadFile(const std::string& path) const;
  // The sandbox directory of `executor_id` (live or completed) from /state.
  absl::StatusOr<std::string> SandboxOf(const std::string& executor_id) const;

  uint16_t port() const { return port_; }
  std::string address() const;
  Process* process() const { return process_.get(); }
  const AgentProcessOptions& options() const { return options_; }

 private:
  explicit AgentProcess(AgentProcessOptions options);
  absl::Status Launch(const std::string& log_name);
  // The agent's command line (--port = port_).
  std::vector<std::string> Argv() const;
  // Kills every process of every executor the agent's checkpoint knows.
  void KillExecutors();

  const AgentProcessOptions options_;
  uint16_t port_ = 0;
  std::unique_ptr<Process> process_;
};

// Pids of every process whose environment has CAIRN_CONTAINER_ID set and
// whose MESOS_SANDBOX is below `work_dir` (an agent's executors and the
// tasks they started), for leak checks.
std::vector<pid_t> ProcessesBelow(const std::string& work_dir);

}  // namespace cairn::tests

#endif  // CAIRN_TESTS_INTERNAL_AGENT_PROCESS_H_
