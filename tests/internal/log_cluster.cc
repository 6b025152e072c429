#include "tests/internal/log_cluster.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/http_client.h"
#include "common/json_value.h"
#include "log/client.h"

namespace cairn::tests {
namespace {

constexpr char kHost[] = "127.0.0.1";
constexpr absl::Duration kPollPause = absl::Milliseconds(5);

// Binds `count` distinct ephemeral ports on 127.0.0.1 (all held open at
// once, so they differ), then releases them.
absl::StatusOr<std::vector<uint16_t>> FreePorts(int count) {
  std::vector<int> sockets;
  std::vector<uint16_t> ports;
  absl::Status status;
  for (int i = 0; i < count && status.ok(); ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      status = absl::InternalError("socket() failed");
      break;
    }
    sockets.push_back(fd);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof(address);
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      status = absl::InternalError("cannot bind an ephemeral port");
      break;
    }
    ports.push_back(ntohs(address.sin_port));
  }
  for (int fd : sockets) close(fd);
  if (!status.ok()) return status;
  return ports;
}

absl::StatusOr<http::Response> Get(uint16_t port, absl::string_view target,
                                   absl::Duration timeout) {
  http::Client client;
  return client.Request("GET", kHost, port, target, {{"Connection", "close"}},
                        "", timeout);
}

}  // namespace

const char* OutcomeName(AppendResult::Outcome outcome) {
  switch (outcome) {
    case AppendResult::Outcome::kAcknowledged:
      return "acknowledged";
    case AppendResult::Outcome::kUnknown:
      return "unknown";
    case AppendResult::Outcome::kNotAppended:
      return "not-appended";
    case AppendResult::Outcome::kError:
      return "error";
  }
  return "?";
}

LogCluster::LogCluster(LogClusterOptions options)
    : options_(std::move(options)) {
  const std::string log_dir =
      options_.log_dir.empty() ? options_.root : options_.log_dir;
  for (int i = 1; i <= options_.replicas; ++i) {
    const uint32_t id = static_cast<uint32_t>(i);
    Replica& replica = replicas_[id];
    replica.dir = absl::StrCat(options_.root, "/replica-", id);
    replica.log_path =
        absl::StrCat(log_dir, "/", options_.log_prefix, "replica-", id, ".log");
  }
}

LogCluster::~LogCluster() {
  for (auto& [id, replica] : replicas_) replica.process.reset();
}

absl::StatusOr<std::unique_ptr<LogCluster>> LogCluster::Start(
    LogClusterOptions options) {
  std::unique_ptr<LogCluster> cluster(new LogCluster(std::move(options)));
  std::error_code error;
  for (const std::string& dir :
       {cluster->options_.root, cluster->options_.log_dir}) {
    if (dir.empty()) continue;
    std::filesystem::create_directories(dir, error);
    if (error) {
      return absl::InternalError(
          absl::StrCat("cannot create ", dir, ": ", error.message()));
    }
  }
  absl::Status status;
  for (int attempt = 0; attempt < 3; ++attempt) {
    for (auto& [id, replica] : cluster->replicas_) {
      replica.process.reset();
      std::filesystem::remove_all(replica.dir, error);
    }
    status = cluster->PickPorts();
    if (!status.ok()) return status;
    for (uint32_t id : cluster->ids()) {
      status = cluster->StartOnce(id);
      if (!status.ok()) break;
    }
    if (status.ok()) return cluster;
  }
  return status;
}

std::vector<uint32_t> LogCluster::ids() const {
  std::vector<uint32_t> ids;
  for (const auto& [id, replica] : replicas_) ids.push_back(id);
  return ids;
}

absl::Status LogCluster::PickPorts() {
  auto ports = FreePorts(2 * options_.replicas);
  if (!ports.ok()) return ports.status();
  size_t next = 0;
  for (auto& [id, replica] : replicas_) {
    replica.peer_port = (*ports)[next++];
    replica.http_port = (*ports)[next++];
  }
  return absl::OkStatus();
}

std::string LogCluster::ReplicasFlag() const {
  std::vector<std::string> items;
  for (const auto& [id, replica] : replicas_) {
    items.push_back(absl::StrCat(id, "=", kHost, ":", replica.peer_port, "/",
                                 replica.http_port));
  }
  return absl::StrJoin(items, ",");
}

absl::Status LogCluster::StartOnce(uint32_t id) {
  Replica& replica = replicas_.at(id);
  std::vector<std::string> argv = {
      options_.binary, "replica", absl::StrCat("--id=", id),
      "--replicas=" + ReplicasFlag(), "--dir=" + replica.dir};
  argv.insert(argv.end(), options_.flags.begin(), options_.flags.end());
  auto process = Process::Start(argv, replica.log_path);
  if (!process.ok()) return process.status();
  replica.process = *std::move(process);

  const absl::Time deadline = absl::Now() + options_.start_timeout;
  while (true) {
    if (!replica.process->Running()) {
      const std::string exit = replica.process->ExitDescription().value_or("");
      replica.process.reset();
      return absl::UnavailableError(absl::StrCat(
          "replica ", id, " ", exit, " during startup; log:\n", LogTail(id)));
    }
    auto health = Get(replica.http_port, "/health", absl::Milliseconds(500));
    if (health.ok() && health->status == 200) return absl::OkStatus();
    if (absl::Now() > deadline) {
      replica.process.reset();
      return absl::DeadlineExceededError(
          absl::StrCat("replica ", id, " did not answer /health within ",
                       absl::FormatDuration(options_.start_timeout), "; log:\n",
                       LogTail(id)));
    }
    absl::SleepFor(kPollPause);
  }
}

absl::Status LogCluster::StartReplica(uint32_t id) {
  if (IsRunning(id)) {
    return absl::FailedPreconditionError(
        absl::StrCat("replica ", id, " is running"));
  }
  absl::Status status;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (attempt > 0) absl::SleepFor(absl::Milliseconds(200));
    status = StartOnce(id);
    if (status.ok()) return status;
  }
  return status;
}

void LogCluster::KillReplica(uint32_t id) { replicas_.at(id).process.reset(); }

absl::Status LogCluster::WipeReplica(uint32_t id) {
  if (IsRunning(id)) {
    return absl::FailedPreconditionError(
        absl::StrCat("replica ", id, " is running"));
  }
  std::error_code error;
  std::filesystem::remove_all(replicas_.at(id).dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat(
        "cannot remove ", replicas_.at(id).dir, ": ", error.message()));
  }
  return absl::OkStatus();
}

bool LogCluster::IsRunning(uint32_t id) {
  Replica& replica = replicas_.at(id);
  return replica.process != nullptr && replica.process->Running();
}

absl::StatusOr<ReplicaStatus> LogCluster::Status(uint32_t id) const {
  auto response = Get(http_port(id), "/log/status", absl::Seconds(2));
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return absl::UnavailableError(absl::StrCat(
        "replica ", id, ": HTTP ", response->status, " ", response->body));
  }
  auto json = ParseJson(response->body);
  if (!json.ok()) return absl::InternalError(json.status().message());
  ReplicaStatus s;
  s.id = static_cast<uint32_t>(json->Uint("id").value_or(0));
  s.status = json->Text("status").value_or("");
  s.status_detail = json->Text("status_detail").value_or("");
  s.role = json->Text("role").value_or("");
  s.serving = json->Bool("serving").value_or(false);
  if (auto leader = json->Uint("leader")) {
    s.leader = static_cast<uint32_t>(*leader);
  }
  s.begin = json->Uint("begin").value_or(0);
  s.end = json->Uint("end").value_or(0);
  s.learned_through = json->Uint("learned_through").value_or(0);
  s.committed = json->Uint("committed").value_or(0);
  s.votes_sent = json->Uint("votes_sent").value_or(0);
  s.bytes_on_disk = json->Uint("bytes_on_disk").value_or(0);
  s.elections_won = json->Uint("elections_won").value_or(0);
  if (s.id != id || s.status.empty() || !json->Uint("learned_through")) {
    return absl::InternalError(
        absl::StrCat("replica ", id, ": unexpected status ", response->body));
  }
  s.json = std::move(response->body);
  return s;
}

std::string LogCluster::Describe() const {
  std::string out;
  for (const auto& [id, replica] : replicas_) {
    auto status = Status(id);
    absl::StrAppend(&out, "  replica ", id, ": ",
                    status.ok() ? status->json : status.status().ToString(),
                    "\n");
  }
  return out;
}

absl::StatusOr<uint32_t> LogCluster::WaitForServingLeader(absl::Time deadline) {
  while (true) {
    for (const auto& [id, replica] : replicas_) {
      if (replica.process == nullptr) continue;
      auto status = Status(id);
      if (status.ok() && status->serving) return id;
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("no replica serves as leader; statuses:\n", Describe()));
    }
    absl::SleepFor(kPollPause);
  }
}

absl::StatusOr<uint64_t> LogCluster::WaitForEqualLearned(
    const std::vector<uint32_t>& ids, uint64_t at_least, absl::Time deadline) {
  while (true) {
    std::optional<uint64_t> common;
    bool equal = true;
    for (uint32_t id : ids) {
      auto status = Status(id);
      if (!status.ok() || status->learned_through < at_least ||
          (common.has_value() && *common != status->learned_through)) {
        equal = false;
        break;
      }
      common = status->learned_through;
    }
    if (equal && common.has_value()) return *common;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("replicas ", absl::StrJoin(ids, ","),
                       " did not agree on learned_through (>= ", at_least,
                       "); statuses:\n", Describe()));
    }
    absl::SleepFor(kPollPause);
  }
}

AppendResult LogCluster::AppendOnce(absl::string_view data, absl::Time deadline,
                                    uint32_t* hint) const {
  uint32_t target = replicas_.count(*hint) ? *hint : replicas_.begin()->first;
  auto next_replica = [this](uint32_t id) {
    auto it = replicas_.upper_bound(id);
    return it == replicas_.end() ? replicas_.begin()->first : it->first;
  };
  http::Client client;  // no redirects followed: each hop is decided here
  const http::Headers headers = {{"Connection", "close"},
                                 {"Content-Type", "application/octet-stream"}};
  AppendResult result;
  int refusals = 0;
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      result.outcome = AppendResult::Outcome::kNotAppended;
      return result;
    }
    // Pause once every replica has refused in a row: no leader right now.
    if (refusals > 0 && refusals % static_cast<int>(replicas_.size()) == 0) {
      absl::SleepFor(std::min(absl::Milliseconds(10), left));
    }
    auto response =
        client.Request("POST", kHost, http_port(target), "/log/append", headers,
                       data, std::min(left, absl::Seconds(5)));
    if (!response.ok()) {
      result.detail =
          absl::StrCat("replica ", target, ": ", response.status().ToString());
      // Nothing was sent when the connection could not be made.
      if (absl::StrContains(response.status().message(), "cannot connect") ||
          absl::StrContains(response.status().message(), "cannot resolve")) {
        ++refusals;
        target = next_replica(target);
        continue;
      }
      result.outcome = AppendResult::Outcome::kUnknown;
      return result;
    }
    auto body = ParseJson(response->body);
    result.detail = absl::StrCat("replica ", target, ": HTTP ",
                                 response->status, " ", response->body);
    if (response->status == 200) {
      std::optional<uint64_t> position;
      std::optional<uint64_t> index;
      if (body.ok()) {
        position = body->Uint("position");
        index = body->Uint("index");
      }
      if (!position.has_value() || !index.has_value()) {
        result.outcome = AppendResult::Outcome::kError;
        return result;
      }
      result.outcome = AppendResult::Outcome::kAcknowledged;
      result.position.position = *position;
      result.position.index = static_cast<uint32_t>(*index);
      *hint = target;
      return result;
    }
    if (response->status == 503 && body.ok() &&
        body->Text("outcome") == std::optional<std::string>("unknown")) {
      result.outcome = AppendResult::Outcome::kUnknown;
      return result;
    }
    if (response->status != 307 && response->status != 503) {
      result.outcome = AppendResult::Outcome::kError;
      return result;
    }
    // Not appended: go where the answer points, else to the next replica.
    ++refusals;
    std::optional<uint64_t> leader;
    if (body.ok()) leader = body->Uint("leader");
    if (leader.has_value() && replicas_.count(*leader) && *leader != target) {
      target = static_cast<uint32_t>(*leader);
    } else {
      target = next_replica(target);
    }
  }
}

absl::StatusOr<uint64_t> LogCluster::Truncate(uint64_t to) const {
  log::LogClientOptions options;
  for (const auto& [id, replica] : replicas_) {
    options.addresses.push_back({kHost, replica.http_port});
  }
  options.timeout = absl::Seconds(10);
  log::LogClient client(std::move(options));
  return client.Truncate(to);
}

absl::StatusOr<std::vector<log::Entry>> LogCluster::ReadAll(
    uint32_t id, uint64_t from, uint64_t through) const {
  log::LogClientOptions options;
  options.addresses.push_back({kHost, http_port(id)});
  options.timeout = absl::Seconds(10);
  log::LogClient client(std::move(options));
  std::vector<log::Entry> entries;
  while (from <= through) {
    auto page = client.Read(from, through, 1000);
    if (!page.ok()) return page.status();
    if (page->next <= from) {
      return absl::FailedPreconditionError(
          absl::StrCat("replica ", id, " has not learned position ", from,
                       " (reading through ", through, ")"));
    }
    for (log::Entry& entry : page->entries) {
      entries.push_back(std::move(entry));
    }
    from = page->next;
  }
  return entries;
}

std::string LogCluster::LogTail(uint32_t id, size_t max_bytes) const {
  return FileTail(replicas_.at(id).log_path, max_bytes);
}

}  // namespace cairn::tests
