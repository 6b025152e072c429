// cairn-agent: runs tasks for the leading cairn-master (see agent/agent.h,
// docs/agent.md).
//
//   cairn-agent --master=127.0.0.1:5050,127.0.0.1:5051
//               --work_dir=/var/lib/cairn/agent
//               --resources='cpus:4;mem:4096;ports:[31000-32000]'
//               --attributes='rack:r1'

#include <curl/curl.h>
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "agent/agent.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/logging_flags.h"
#include "master/resources.h"
#include "monitoring/logging_http.h"

ABSL_FLAG(std::string, ip, "127.0.0.1", "IP address to listen on.");
ABSL_FLAG(uint16_t, port, 5051, "HTTP port.");
ABSL_FLAG(std::string, hostname, "",
          "Hostname the agent advertises (default: --ip).");
ABSL_FLAG(std::string, work_dir, "",
          "Directory for checkpoints and sandboxes (required).");
ABSL_FLAG(std::string, master, "",
          "Comma-separated host:port of the masters; the agent follows "
          "redirects to the leader.");
ABSL_FLAG(std::string, resources, "",
          "Total resources in Mesos syntax, e.g. "
          "'cpus:4;mem:4096;disk:10240;ports:[31000-32000];cpus(ads):2'. "
          "What is not named is derived from the machine.");
ABSL_FLAG(std::string, attributes, "", "Attributes, e.g. 'rack:r1;zone:a'.");
ABSL_FLAG(std::string, recover, "reconnect",
          "After a restart: 'reconnect' to live executors, or 'cleanup': "
          "kill them, forget the checkpoint and exit.");
ABSL_FLAG(bool, strict, true,
          "A damaged checkpoint is an error (true) or skipped with a warning "
          "(false).");
ABSL_FLAG(std::string, isolation, "cgroups",
          "'cgroups' (v1, or v2 where mounted) or 'posix'.");
ABSL_FLAG(std::string, executor_path, "",
          "The cairn-executor binary (default: next to cairn-agent).");
ABSL_FLAG(absl::Duration, executor_registration_timeout, absl::Minutes(1),
          "How long a new executor has to subscribe.");
ABSL_FLAG(absl::Duration, executor_reregistration_timeout, absl::Seconds(10),
          "How long executors have to resubscribe after an agent restart.");
ABSL_FLAG(absl::Duration, executor_shutdown_grace_period, absl::Seconds(5),
          "How long an executor has to shut down before it is killed.");
ABSL_FLAG(absl::Duration, recovery_timeout, absl::Minutes(15),
          "How long executors wait for a restarted agent before they kill "
          "their tasks.");
ABSL_FLAG(absl::Duration, gc_delay, absl::Hours(24 * 7),
          "How long sandboxes of completed executors are kept.");
ABSL_FLAG(absl::Duration, registration_backoff_factor, absl::Seconds(1),
          "First backoff between attempts to (re)subscribe to a master; "
          "doubles after each failure, up to 1 minute (as Mesos).");
ABSL_FLAG(std::string, fetcher_cache_dir, "",
          "Fetcher cache (default <work_dir>/fetch_cache).");
ABSL_FLAG(uint64_t, fetcher_cache_size_mb, 2048, "Fetcher cache size.");

namespace {

constexpr char kUsage[] =
    "cairn-agent: runs tasks for a Cairn cluster.\n"
    "  cairn-agent --master=HOST:PORT[,...] --work_dir=DIR [--resources=...]";

std::string DefaultExecutorPath() {
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return "cairn-executor";
  self[n] = '\0';
  return (std::filesystem::path(self).parent_path() / "cairn-executor")
      .string();
}

cairn::agent::Agent* g_agent = nullptr;

void OnSignal(int) {
  // Stop from a thread of its own: Stop() takes locks.
  if (g_agent != nullptr) {
    std::thread([] { g_agent->Stop(); }).detach();
  }
}

}  // namespace

int main(int argc, char** argv) {
  cairn::ParseCommandLine(argc, argv, kUsage);
  absl::Status log = cairn::logging::InitFromFlags("cairn-agent");
  if (!log.ok()) std::cerr << "cairn-agent: logging: " << log << "\n";
  signal(SIGPIPE, SIG_IGN);
  // Once, before any thread: the fetcher and health checks use libcurl.
  curl_global_init(CURL_GLOBAL_ALL);

  cairn::agent::AgentOptions options;
  options.ip = absl::GetFlag(FLAGS_ip);
  options.port = absl::GetFlag(FLAGS_port);
  options.hostname = absl::GetFlag(FLAGS_hostname);
  options.work_dir = absl::GetFlag(FLAGS_work_dir);
  if (options.work_dir.empty()) {
    std::cerr << "cairn-agent: --work_dir is required\n";
    return 2;
  }
  for (absl::string_view m : absl::StrSplit(absl::GetFlag(FLAGS_master), ',',
                                            absl::SkipWhitespace())) {
    options.masters.emplace_back(m);
  }
  if (options.masters.empty()) {
    std::cerr << "cairn-agent: --master is required\n";
    return 2;
  }
  {
    // The disk default is measured on the work_dir's file system.
    std::error_code error;
    std::filesystem::create_directories(options.work_dir, error);
  }
  std::vector<cairn::v1::Resource> given;
  if (!absl::GetFlag(FLAGS_resources).empty()) {
    absl::StatusOr<cairn::master::Resources> parsed =
        cairn::master::Resources::Parse(absl::GetFlag(FLAGS_resources));
    if (!parsed.ok()) {
      std::cerr << "cairn-agent: --resources: " << parsed.status().message()
                << "\n";
      return 2;
    }
    given = parsed->ToProto();
  }
  options.resources = cairn::agent::DefaultResources(given, options.work_dir);
  absl::StatusOr<std::vector<cairn::v1::Attribute>> attributes =
      cairn::agent::ParseAttributes(absl::GetFlag(FLAGS_attributes));
  if (!attributes.ok()) {
    std::cerr << "cairn-agent: --attributes: " << attributes.status().message()
              << "\n";
    return 2;
  }
  options.attributes = *attributes;
  options.recover = absl::GetFlag(FLAGS_recover);
  if (options.recover != "reconnect" && options.recover != "cleanup") {
    std::cerr << "cairn-agent: --recover must be 'reconnect' or 'cleanup'\n";
    return 2;
  }
  options.strict = absl::GetFlag(FLAGS_strict);
  options.isolation = absl::GetFlag(FLAGS_isolation);
  if (options.isolation != "cgroups" && options.isolation != "posix") {
    std::cerr << "cairn-agent: --isolation must be 'cgroups' or 'posix'\n";
    return 2;
  }
  options.executor_path = absl::GetFlag(FLAGS_executor_path);
  if (options.executor_path.empty())
    options.executor_path = DefaultExecutorPath();
  if (access(options.executor_path.c_str(), X_OK) != 0) {
    std::cerr << "cairn-agent: the executor binary " << options.executor_path
              << " is not executable (set --executor_path)\n";
    return 2;
  }
  options.executor_registration_timeout =
      absl::GetFlag(FLAGS_executor_registration_timeout);
  options.executor_reregistration_timeout =
      absl::GetFlag(FLAGS_executor_reregistration_timeout);
  options.executor_shutdown_grace_period =
      absl::GetFlag(FLAGS_executor_shutdown_grace_period);
  options.recovery_timeout = absl::GetFlag(FLAGS_recovery_timeout);
  options.gc_delay = absl::GetFlag(FLAGS_gc_delay);
  options.registration_backoff_factor =
      absl::GetFlag(FLAGS_registration_backoff_factor);
  options.fetcher_cache_dir = absl::GetFlag(FLAGS_fetcher_cache_dir);
  options.fetcher_cache_size_bytes = absl::GetFlag(FLAGS_fetcher_cache_size_mb)
                                     << 20;
  options.log_dir = absl::GetFlag(FLAGS_log_dir);
  options.flags = cairn::AllFlagValues();

  cairn::agent::Agent agent(options);
  absl::Status started = agent.Start();
  if (absl::IsCancelled(started)) {
    LOG(INFO) << started.message();
    return 0;
  }
  if (!started.ok()) {
    LOG(ERROR) << "cairn-agent cannot start: " << started;
    return 1;
  }
  g_agent = &agent;
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  absl::Status exit = agent.Wait();
  g_agent = nullptr;
  agent.Stop();
  if (!exit.ok()) {
    LOG(ERROR) << "cairn-agent exits: " << exit;
    return 1;
  }
  return 0;
}
