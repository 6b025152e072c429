// cairn-log: runs one replica of the replicated log, initialises a replica's
// store, or acts as a client of a running log. See kUsage below.
//
// Exit codes: 0 success, 1 error (the reason is printed to stderr), 2 usage
// error (unknown verb or flag, a flag value that does not parse, a missing
// argument).

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/http_server.h"
#include "common/logging.h"
#include "common/logging_flags.h"
#include "log/client.h"
#include "log/http_service.h"
#include "log/leveldb_storage.h"
#include "log/replicated_log.h"
#include "log/transport.h"
#include "monitoring/logging_http.h"

// Replica.
ABSL_FLAG(uint32_t, id, 0, "This replica's id (replica verb).");
ABSL_FLAG(std::string, replicas, "",
          "Every replica of the log as id=host:peer_port/http_port, comma "
          "separated, e.g. 1=127.0.0.1:7101/8101,2=127.0.0.1:7102/8102,"
          "3=127.0.0.1:7103/8103 (IPv6: 1=[::1]:7101/8101).");
ABSL_FLAG(std::string, dir, "", "The replica's LevelDB directory.");
ABSL_FLAG(std::string, bind, "",
          "Address to listen on for peers and HTTP (default: this replica's "
          "host in --replicas; 0.0.0.0 for every interface).");
ABSL_FLAG(bool, auto_initialize, true,
          "Let a brand-new cluster (every replica empty) initialise itself. "
          "When false, run `cairn-log init` on each replica's store first.");
ABSL_FLAG(absl::Duration, election_timeout, absl::Milliseconds(1500),
          "A follower that hears no leader for [t, 2t) campaigns.");
ABSL_FLAG(absl::Duration, lease, absl::Seconds(1),
          "Leader lease, renewed by heartbeats a quorum acknowledges.");
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Milliseconds(100),
          "How often the leader sends heartbeats.");
ABSL_FLAG(absl::Duration, retransmit_interval, absl::Milliseconds(200),
          "Resend unanswered phase 1 / phase 2 messages after this long.");
ABSL_FLAG(absl::Duration, recover_interval, absl::Milliseconds(250),
          "How often an empty replica asks its peers to recover.");
ABSL_FLAG(double, max_clock_drift, 0.05,
          "Assumed bound on clock rate differences (lease safety margin).");
ABSL_FLAG(uint32_t, max_in_flight, 8,
          "Positions the leader keeps in phase 2 at once (pipelining); "
          "appends arriving meanwhile are batched into the next position.");
ABSL_FLAG(uint32_t, pipeline_min_entries, 8,
          "While positions are in flight, open another only once this many "
          "appends have queued (adaptive batching; 1 = always pipeline).");
ABSL_FLAG(uint32_t, fetch_max_actions, 512, "Positions per catch-up fetch.");
ABSL_FLAG(bool, group_commit, true,
          "Merge the storage writes of consecutive messages into one fsync.");
ABSL_FLAG(int, http_threads, 2, "Threads serving the HTTP API.");
// --log_dir, --log_format, --max_log_size_mb, --max_log_files and --v come
// from common/logging_flags.h.

// Client.
ABSL_FLAG(std::string, http, "",
          "Client verbs: the replicas' HTTP addresses, host:port[,host:port]. "
          "Writes follow redirects to the leader and try each address.");
ABSL_FLAG(std::optional<uint64_t>, from, std::nullopt,
          "read: first position (default: the first retained one).");
ABSL_FLAG(std::optional<uint64_t>, to, std::nullopt,
          "read: last position (default: the last learned one); "
          "truncate: delete every position before this one (required).");
ABSL_FLAG(std::optional<uint64_t>, limit, std::nullopt,
          "read: at most this many positions (server default 1000).");
ABSL_FLAG(std::string, format, "json",
          "read: json (the server's JSON array, data in base64) or text "
          "(one line per entry: position index C-escaped-data).");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10),
          "Client verbs: give up after this long (retries included).");

namespace cairn::log {
namespace {

constexpr char kUsage[] = R"(cairn-log: the replicated log of Cairn.

Usage:
  cairn-log replica --id=N --replicas=1=HOST:PEER/HTTP,2=...,3=... --dir=DIR
                    [--auto_initialize=true] [--bind=ADDR]
                    [--election_timeout=1500ms --lease=1s
                     --heartbeat_interval=100ms ...] [--log_dir=DIR] [--v=N]
      Runs replica N: peers connect to PEER, clients to http://HOST:HTTP.
      HTTP API: POST /log/append, GET /log/read?from=&to=&limit=,
      GET /log/status, POST /log/truncate?to=, GET /health.
      SIGTERM or SIGINT stops it gracefully.
  cairn-log init --dir=DIR
      Initialises an empty store as a VOTING replica of a NEW log, for
      clusters run with --auto_initialize=false. Refuses a store that holds
      anything. Never use it on a replica that lost its disk: start that one
      with an empty --dir and it recovers from its peers.
  cairn-log append --http=HOST:PORT[,HOST:PORT...] DATA   (DATA "-": stdin)
      Prints {"position": "P", "index": I} once the entry is chosen.
  cairn-log read --http=... [--from=P] [--to=P] [--limit=N] [--format=text]
  cairn-log status --http=...
  cairn-log truncate --http=... --to=P

Every flag may also come from the environment: --dir from CAIRN_DIR, etc.
(the command line wins). Durations are like 300ms, 1.5s, 2m.
Exit codes: 0 ok, 1 error, 2 usage error.

Flags:
)";

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

int UsageError(const std::string& message) {
  std::cerr << "cairn-log: " << message
            << "\nRun `cairn-log --help` for usage.\n";
  return kExitUsage;
}

int Error(const absl::Status& status) {
  std::cerr << "cairn-log: error: " << status << "\n";
  return kExitError;
}

void PrintHelp() {
  std::cout << kUsage;
  std::map<std::string, const absl::CommandLineFlag*> ours;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::StrContains(flag->Filename(), "cairn_log_main")) {
      ours[std::string(name)] = flag;
    }
  }
  for (const auto& [name, flag] : ours) {
    std::cout << "  --" << name << " (default " << flag->DefaultValue()
              << ")\n      " << flag->Help() << "\n";
  }
}

// Parses the command line (after environment fallbacks) without absl's
// exit-on-error, so usage errors exit 2. Returns the positional arguments.
absl::StatusOr<std::vector<std::string>> ParseArgs(int argc, char** argv) {
  absl::Status env = ApplyEnvironmentFlags();
  if (!env.ok()) return env;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) positional.emplace_back(argv[i]);
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      positional.emplace_back(arg);
      continue;
    }
    arg.remove_prefix(arg[1] == '-' ? 2 : 1);
    std::string name(arg.substr(0, arg.find('=')));
    std::optional<std::string> value;
    if (arg.find('=') != absl::string_view::npos) {
      value = std::string(arg.substr(arg.find('=') + 1));
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr && absl::StartsWith(name, "no") && !value) {
      flag = absl::FindCommandLineFlag(name.substr(2));
      if (flag != nullptr && flag->IsOfType<bool>()) value = "false";
    }
    if (flag == nullptr ||
        !absl::StrContains(flag->Filename(), "cairn_log_main")) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (!value.has_value()) {
      if (flag->IsOfType<bool>()) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " needs a value"));
      }
    }
    std::string error;
    if (!flag->ParseFrom(*value, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad value '", *value, "' for --", name, ": ", error));
    }
  }
  return positional;
}

struct ReplicaAddresses {
  PeerAddress peer;
  PeerAddress http;
};

// Parses --replicas: id=host:peer_port/http_port,...
absl::StatusOr<std::map<uint32_t, ReplicaAddresses>> ParseReplicas(
    absl::string_view text) {
  std::map<uint32_t, ReplicaAddresses> replicas;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    const size_t eq = item.find('=');
    const size_t slash = item.rfind('/');
    uint32_t id = 0;
    uint32_t http_port = 0;
    if (eq == absl::string_view::npos || slash == absl::string_view::npos ||
        slash < eq || !absl::SimpleAtoi(item.substr(0, eq), &id) || id == 0 ||
        !absl::SimpleAtoi(item.substr(slash + 1), &http_port) ||
        http_port == 0 || http_port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad --replicas item '", item,
                       "': expected id=host:peer_port/http_port with id >= 1"));
    }
    auto peer = ParsePeerAddress(item.substr(eq + 1, slash - eq - 1));
    if (!peer.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad --replicas item '", item, "': ", peer.status().message()));
    }
    if (replicas.count(id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("replica ", id, " appears twice in --replicas"));
    }
    replicas[id] = {*peer, {peer->host, static_cast<uint16_t>(http_port)}};
  }
  if (replicas.empty()) {
    return absl::InvalidArgumentError("--replicas is required");
  }
  return replicas;
}

int RunReplica() {
  const uint32_t id = absl::GetFlag(FLAGS_id);
  auto replicas = ParseReplicas(absl::GetFlag(FLAGS_replicas));
  if (!replicas.ok())
    return UsageError(std::string(replicas.status().message()));
  if (id == 0 || !replicas->count(id)) {
    return UsageError(
        absl::StrCat("--id=", id, " must name one of --replicas"));
  }
  if (absl::GetFlag(FLAGS_dir).empty()) return UsageError("--dir is required");

  absl::StatusOr<logging::Options> log_options =
      logging::OptionsFromFlags("cairn-log");
  if (!log_options.ok()) {
    return UsageError(std::string(log_options.status().message()));
  }
  absl::Status log_init = logging::InitFromOptions(*log_options);
  if (!log_init.ok()) LOG(WARNING) << "log file: " << log_init;

  const ReplicaAddresses& self = replicas->at(id);
  const std::string bind = absl::GetFlag(FLAGS_bind).empty()
                               ? self.peer.host
                               : absl::GetFlag(FLAGS_bind);
  LogServerOptions options;
  options.config.node_id = id;
  for (const auto& [replica, addresses] : *replicas) {
    options.config.replicas.push_back(replica);
    if (replica != id) options.peers[replica] = addresses.peer;
  }
  options.config.election_timeout = absl::GetFlag(FLAGS_election_timeout);
  options.config.lease_duration = absl::GetFlag(FLAGS_lease);
  options.config.heartbeat_interval = absl::GetFlag(FLAGS_heartbeat_interval);
  options.config.retransmit_interval = absl::GetFlag(FLAGS_retransmit_interval);
  options.config.recover_interval = absl::GetFlag(FLAGS_recover_interval);
  options.config.max_clock_drift = absl::GetFlag(FLAGS_max_clock_drift);
  options.config.max_in_flight = absl::GetFlag(FLAGS_max_in_flight);
  options.config.pipeline_min_entries =
      absl::GetFlag(FLAGS_pipeline_min_entries);
  options.config.fetch_max_actions = absl::GetFlag(FLAGS_fetch_max_actions);
  options.config.auto_initialize = absl::GetFlag(FLAGS_auto_initialize);
  options.config.seed = id;
  options.dir = absl::GetFlag(FLAGS_dir);
  options.listen_address = bind;
  options.peer_port = self.peer.port;
  options.group_commit = absl::GetFlag(FLAGS_group_commit);
  if (options.config.lease_duration >= options.config.election_timeout) {
    LOG(WARNING) << "--lease (" << options.config.lease_duration
                 << ") should be shorter than --election_timeout ("
                 << options.config.election_timeout << ")";
  }

  // Signals are taken synchronously by this thread (sigwait below); block
  // them before any other thread exists so that every thread inherits it.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto log = ReplicatedLog::Open(options);
  if (!log.ok()) return Error(log.status());

  http::ServerOptions http_options;
  http_options.address = bind;
  http_options.port = self.http.port;
  http_options.num_threads = absl::GetFlag(FLAGS_http_threads);
  http::Server server(http_options);
  LogHttpOptions routes;
  for (const auto& [replica, addresses] : *replicas) {
    routes.http_addresses[replica] = addresses.http.ToString();
  }
  RegisterLogRoutes(log->get(), routes, &server);
  monitoring::ServeLoggingToggle(&server);
  absl::Status serving = server.Start();
  if (!serving.ok()) {
    (*log)->Stop();
    return Error(serving);
  }
  LOG(INFO) << "cairn-log replica " << id << " of "
            << options.config.replicas.size() << ": peers on " << bind << ":"
            << (*log)->peer_port() << ", HTTP on " << bind << ":"
            << server.port() << ", store " << options.dir;

  int received = 0;
  sigwait(&stop_signals, &received);
  LOG(INFO) << "cairn-log replica " << id << ": signal " << received
            << ", stopping";
  server.Stop();
  (*log)->Stop();
  logging::Flush();
  return kExitOk;
}

int RunInit() {
  const std::string dir = absl::GetFlag(FLAGS_dir);
  if (dir.empty()) return UsageError("--dir is required");
  logging::SetMinLevel(logging::Severity::kWarning);
  auto storage = LevelDbStorage::Open(dir);
  if (!storage.ok()) return Error(storage.status());
  auto metadata = (*storage)->ReadMetadata();
  if (!metadata.ok()) return Error(metadata.status());
  auto last = (*storage)->LastPosition();
  if (!last.ok()) return Error(last.status());
  if (metadata->has_value() || *last != 0) {
    return Error(absl::FailedPreconditionError(absl::StrCat(
        dir, " already holds a replica (",
        metadata->has_value()
            ? absl::StrCat("status ", ReplicaStatusName((*metadata)->status()))
            : "no metadata",
        ", last position ", *last, "); refusing to initialise it")));
  }
  WriteBatch batch;
  batch.metadata.emplace();
  batch.metadata->set_status(cairn::v1::Metadata::VOTING);
  batch.metadata->set_begin(1);
  absl::Status written = (*storage)->Write(batch, /*sync=*/true);
  if (!written.ok()) return Error(written);
  std::cout << "initialised " << dir
            << " as a VOTING replica of a new, empty log\n";
  return kExitOk;
}

int RunClient(const std::string& verb, const std::vector<std::string>& args) {
  logging::SetMinLevel(logging::Severity::kWarning);
  const size_t expected_args = verb == "append" ? 1 : 0;
  if (args.size() != expected_args) {
    return UsageError(verb == "append"
                          ? "append takes exactly one DATA argument"
                          : absl::StrCat(verb, " takes no arguments"));
  }
  if (absl::GetFlag(FLAGS_http).empty())
    return UsageError("--http is required");
  auto addresses = ParseAddressList(absl::GetFlag(FLAGS_http));
  if (!addresses.ok())
    return UsageError(std::string(addresses.status().message()));
  LogClientOptions options;
  options.addresses = *std::move(addresses);
  options.timeout = absl::GetFlag(FLAGS_timeout);
  LogClient client(std::move(options));

  if (verb == "append") {
    std::string data = args[0];
    if (data == "-") {
      data.assign(std::istreambuf_iterator<char>(std::cin),
                  std::istreambuf_iterator<char>());
    }
    auto position = client.Append(data);
    if (!position.ok()) return Error(position.status());
    std::cout << "{\"position\":\"" << position->position
              << "\",\"index\":" << position->index << "}\n";
    return kExitOk;
  }
  if (verb == "read") {
    const std::string format = absl::GetFlag(FLAGS_format);
    if (format != "json" && format != "text") {
      return UsageError("--format must be json or text");
    }
    const auto from = absl::GetFlag(FLAGS_from);
    const auto to = absl::GetFlag(FLAGS_to);
    const auto limit = absl::GetFlag(FLAGS_limit);
    if (format == "json") {
      auto read = client.ReadJson(from, to, limit);
      if (!read.ok()) return Error(read.status());
      std::cout << read->json << "\n";
      return kExitOk;
    }
    auto page = client.Read(from, to, limit);
    if (!page.ok()) return Error(page.status());
    for (const Entry& entry : page->entries) {
      std::cout << entry.position << " " << entry.index << " "
                << absl::CEscape(entry.data) << "\n";
    }
    return kExitOk;
  }
  if (verb == "status") {
    auto status = client.StatusJson();
    if (!status.ok()) return Error(status.status());
    std::cout << *status << "\n";
    return kExitOk;
  }
  // truncate
  const auto to = absl::GetFlag(FLAGS_to);
  if (!to.has_value()) return UsageError("truncate needs --to");
  auto position = client.Truncate(*to);
  if (!position.ok()) return Error(position.status());
  std::cout << "{\"position\":\"" << *position << "\",\"to\":\"" << *to
            << "\"}\n";
  return kExitOk;
}

int Main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "-help" || arg == "help") {
      PrintHelp();
      return kExitOk;
    }
  }
  auto args = ParseArgs(argc, argv);
  if (!args.ok()) return UsageError(std::string(args.status().message()));
  if (args->empty()) return UsageError("missing verb");
  const std::string verb = args->front();
  const std::vector<std::string> rest(args->begin() + 1, args->end());
  if (verb == "replica" || verb == "init") {
    if (!rest.empty()) {
      return UsageError(
          absl::StrCat(verb, " takes no arguments, got '", rest.front(), "'"));
    }
    return verb == "replica" ? RunReplica() : RunInit();
  }
  if (verb == "append" || verb == "read" || verb == "status" ||
      verb == "truncate") {
    return RunClient(verb, rest);
  }
  return UsageError(absl::StrCat("unknown verb '", verb, "'"));
}

}  // namespace
}  // namespace cairn::log

int main(int argc, char** argv) { return cairn::log::Main(argc, argv); }
