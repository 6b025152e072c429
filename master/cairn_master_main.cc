// cairn-master: one master of a Cairn cluster (see master/README.md).
//
// Exit codes: 0 after SIGTERM/SIGINT, 1 when the master cannot start (the
// reason is printed), 2 for a usage error.

#include <signal.h>

#include <cstdint>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/logging_flags.h"
#include "master/master.h"

ABSL_FLAG(std::string, ip, "127.0.0.1",
          "Address to listen on (HTTP and the log's peer port).");
ABSL_FLAG(uint16_t, port, 5050, "HTTP port.");
ABSL_FLAG(std::string, hostname, "",
          "Advertised host name (default: --ip); also used to find this "
          "master in --masters.");
ABSL_FLAG(std::string, cluster, "", "Human-readable cluster name.");
ABSL_FLAG(std::string, work_dir, "",
          "Where the log replica (log/), snapshots (snapshots/) and the "
          "history archive (archive/) live. Required.");
ABSL_FLAG(std::string, masters, "",
          "Every master of the cluster including this one, comma separated "
          "host:port[/log_port]; a master's log replica listens on log_port "
          "(default port + 1000). Quorum is a majority. Default: this master "
          "alone.");
ABSL_FLAG(uint16_t, log_port, 0,
          "This master's log peer port (default: from --masters, else "
          "--port + 1000).");
ABSL_FLAG(uint64_t, snapshot_interval, 1000,
          "Write a snapshot (and archive the log before it) every this many "
          "events; 0 disables snapshots.");
ABSL_FLAG(absl::Duration, history_retention, absl::Hours(24 * 7),
          "Keep archived history this long (0: forever).");
ABSL_FLAG(absl::Duration, election_timeout, absl::Milliseconds(1500),
          "Log: a master that hears no leader for [t, 2t) campaigns.");
ABSL_FLAG(absl::Duration, lease, absl::Seconds(1),
          "Log: leader lease (shorter than --election_timeout).");
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Milliseconds(100),
          "Log: leader heartbeat interval.");
ABSL_FLAG(absl::Duration, agent_ping_timeout, absl::Seconds(15),
          "Agents and this master exchange heartbeats this often.");
ABSL_FLAG(uint32_t, max_agent_ping_timeouts, 5,
          "An agent silent for agent_ping_timeout times this is marked "
          "unreachable.");
ABSL_FLAG(absl::Duration, agent_reregister_timeout, absl::Minutes(10),
          "After an election, how long agents have to resubscribe before "
          "they are marked unreachable.");
ABSL_FLAG(absl::Duration, agent_reconcile_interval, absl::Minutes(15),
          "Send RECONCILE to every agent this often.");
ABSL_FLAG(absl::Duration, scheduler_heartbeat_interval, absl::Seconds(15),
          "HEARTBEAT events on scheduler streams this often.");
ABSL_FLAG(uint32_t, max_framework_streams, 256,
          "Scheduler event streams (SUBSCRIBE) open at once; beyond, a new "
          "one is answered 503 (a resubscription replacing its own stream is "
          "not).");
ABSL_FLAG(uint32_t, max_agent_streams, 640,
          "Agent event streams open at once; beyond, a new one is answered "
          "503 (a resubscription replacing its own stream is not).");
ABSL_FLAG(absl::Duration, status_update_retry, absl::Seconds(10),
          "Resend an unacknowledged status update to its scheduler after.");
ABSL_FLAG(absl::Duration, allocation_interval, absl::Seconds(1),
          "Run a periodic allocation cycle this often.");
ABSL_FLAG(absl::Duration, offer_timeout, absl::InfiniteDuration(),
          "Rescind offers outstanding this long (default: never).");
// --log_dir, --log_format, --max_log_size_mb, --max_log_files and --v come
// from common/logging_flags.h.

namespace {

constexpr char kUsage[] =
    "cairn-master --work_dir=DIR [--ip=ADDR --port=5050] "
    "[--masters=h1:p1,h2:p2,h3:p3] [--snapshot_interval=N "
    "--history_retention=DURATION]";

int Main(int argc, char** argv) {
  std::vector<char*> args = cairn::ParseCommandLine(argc, argv, kUsage);
  if (args.size() > 1) {
    std::cerr << "cairn-master: unexpected argument '" << args[1] << "'\n";
    return 2;
  }
  absl::StatusOr<cairn::logging::Options> log_options =
      cairn::logging::OptionsFromFlags("cairn-master");
  if (!log_options.ok()) {
    std::cerr << "cairn-master: " << log_options.status().message() << "\n";
    return 2;
  }
  absl::Status log_init = cairn::logging::InitFromOptions(*log_options);
  if (!log_init.ok()) LOG(WARNING) << "log file: " << log_init;

  cairn::master::MasterOptions options;
  options.ip = absl::GetFlag(FLAGS_ip);
  options.port = absl::GetFlag(FLAGS_port);
  options.hostname = absl::GetFlag(FLAGS_hostname);
  options.cluster = absl::GetFlag(FLAGS_cluster);
  options.work_dir = absl::GetFlag(FLAGS_work_dir);
  options.log_port = absl::GetFlag(FLAGS_log_port);
  options.snapshot_interval = absl::GetFlag(FLAGS_snapshot_interval);
  options.retention.archive.max_age = absl::GetFlag(FLAGS_history_retention);
  options.election_timeout = absl::GetFlag(FLAGS_election_timeout);
  options.lease = absl::GetFlag(FLAGS_lease);
  options.heartbeat_interval = absl::GetFlag(FLAGS_heartbeat_interval);
  options.leader.agent_ping_timeout = absl::GetFlag(FLAGS_agent_ping_timeout);
  options.leader.max_agent_ping_timeouts =
      absl::GetFlag(FLAGS_max_agent_ping_timeouts);
  options.leader.agent_reregister_timeout =
      absl::GetFlag(FLAGS_agent_reregister_timeout);
  options.leader.agent_reconcile_interval =
      absl::GetFlag(FLAGS_agent_reconcile_interval);
  options.leader.framework_heartbeat_interval =
      absl::GetFlag(FLAGS_scheduler_heartbeat_interval);
  options.leader.status_update_retry = absl::GetFlag(FLAGS_status_update_retry);
  options.leader.max_framework_streams =
      absl::GetFlag(FLAGS_max_framework_streams);
  options.leader.max_agent_streams = absl::GetFlag(FLAGS_max_agent_streams);
  options.leader.allocation_interval = absl::GetFlag(FLAGS_allocation_interval);
  options.leader.allocator.offer_timeout = absl::GetFlag(FLAGS_offer_timeout);
  // Every flag's effective value, for GET /master/flags and /master/state.
  options.flags = cairn::AllFlagValues();
  if (options.leader.max_agent_ping_timeouts == 0 ||
      options.leader.agent_ping_timeout <= absl::ZeroDuration() ||
      options.leader.allocation_interval <= absl::ZeroDuration()) {
    std::cerr << "cairn-master: --agent_ping_timeout, "
                 "--max_agent_ping_timeouts and --allocation_interval must "
                 "be > 0\n";
    return 2;
  }
  if (options.work_dir.empty()) {
    std::cerr << "cairn-master: --work_dir is required\n";
    return 2;
  }
  if (!absl::GetFlag(FLAGS_masters).empty()) {
    auto masters = cairn::master::ParseMasters(absl::GetFlag(FLAGS_masters));
    if (!masters.ok()) {
      std::cerr << "cairn-master: " << masters.status().message() << "\n";
      return 2;
    }
    options.masters = *std::move(masters);
  }

  // Signals are taken synchronously (sigwait below); block them before any
  // thread exists so every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto master = cairn::master::Master::Start(std::move(options));
  if (!master.ok()) {
    std::cerr << "cairn-master: " << master.status() << "\n";
    return 1;
  }
  int received = 0;
  sigwait(&stop_signals, &received);
  LOG(INFO) << "cairn-master: signal " << received << ", stopping";
  (*master)->Stop();
  cairn::logging::Flush();
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
