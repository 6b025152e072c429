// cairn-executor: runs tasks for cairn-agent (see agent/executor.h).
// Configured only through the environment the agent sets, as Mesos's
// command executor is (MESOS_AGENT_ENDPOINT, MESOS_FRAMEWORK_ID, ...).
// Exit codes: 0 done, 1 agent gone past the recovery timeout, 2 bad
// environment.

#include <signal.h>

#include <iostream>

#include "absl/status/statusor.h"
#include "agent/child_process.h"
#include "agent/executor.h"
#include "common/logging.h"

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  cairn::logging::Init(argc > 0 ? argv[0] : "cairn-executor", "").IgnoreError();
  absl::StatusOr<cairn::agent::ExecutorOptions> options =
      cairn::agent::ExecutorOptions::FromEnvironment(
          cairn::agent::CurrentEnvironment());
  if (!options.ok()) {
    std::cerr << "cairn-executor: " << options.status().message() << "\n";
    return 2;
  }
  cairn::agent::Executor executor(*std::move(options));
  return executor.Run();
}
