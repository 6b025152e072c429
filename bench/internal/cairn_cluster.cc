#include "bench/internal/cairn_cluster.h"

#include <unistd.h>

#include <filesystem>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/internal/json_fields.h"
#include "bench/internal/loopback.h"
#include "common/http_client.h"

namespace cairn::bench {
namespace {

constexpr char kHost[] = "127.0.0.1";

}  // namespace

absl::StatusOr<std::unique_ptr<CairnCluster>> CairnCluster::Start(
    const CairnClusterOptions& options) {
  if (access(options.cairn_log_binary.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(
        "cairn-log binary '", options.cairn_log_binary,
        "' not found (build //log:cairn-log or pass --cairn_log=PATH)"));
  }
  std::unique_ptr<CairnCluster> cluster(new CairnCluster);
  std::vector<std::string> replica_specs;
  for (int i = 0; i < options.replicas; ++i) {
    Replica r;
    absl::StatusOr<uint16_t> peer = PickFreePort();
    if (!peer.ok()) return peer.status();
    absl::StatusOr<uint16_t> http = PickFreePort();
    if (!http.ok()) return http.status();
    r.peer_port = *peer;
    r.http_port = *http;
    replica_specs.push_back(
        absl::StrCat(i + 1, "=", kHost, ":", r.peer_port, "/", r.http_port));
    cluster->replicas_.push_back(std::move(r));
  }
  const std::string replicas_flag =
      absl::StrCat("--replicas=", absl::StrJoin(replica_specs, ","));
  for (int i = 0; i < options.replicas; ++i) {
    const std::string dir = absl::StrCat(options.dir, "/replica-", i + 1);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::vector<std::string> argv = {
        options.cairn_log_binary, "replica", absl::StrCat("--id=", i + 1),
        replicas_flag, absl::StrCat("--dir=", dir)};
    argv.insert(argv.end(), options.extra_flags.begin(),
                options.extra_flags.end());
    absl::StatusOr<std::unique_ptr<ChildProcess>> process = ChildProcess::Start(
        std::move(argv), absl::StrCat(options.dir, "/replica-", i + 1, ".log"));
    if (!process.ok()) return process.status();
    cluster->replicas_[i].process = *std::move(process);
  }
  absl::Status ready =
      cluster->WaitForLeader(absl::Now() + options.start_timeout);
  if (!ready.ok()) return ready;
  return cluster;
}

CairnCluster::~CairnCluster() { Stop(); }

std::vector<std::string> CairnCluster::Stop() {
  std::vector<std::string> endings;
  for (Replica& r : replicas_) {
    if (r.process != nullptr) endings.push_back(r.process->Stop());
  }
  return endings;
}

bool CairnCluster::AllRunning() {
  for (Replica& r : replicas_) {
    if (!r.process->Running()) return false;
  }
  return true;
}

std::string CairnCluster::LogTails(size_t bytes_each) const {
  std::string out;
  for (const Replica& r : replicas_) {
    if (r.process == nullptr) continue;
    absl::StrAppend(&out, "\n--- ", r.process->log_path(), " (tail) ---\n",
                    r.process->LogTail(bytes_each));
  }
  return out;
}

std::optional<google::protobuf::Struct> CairnCluster::Status(int index) {
  http::Client client;
  absl::StatusOr<http::Response> r =
      client.Request("GET", kHost, replicas_[index].http_port, "/log/status",
                     {}, "", absl::Seconds(2));
  if (!r.ok() || r->status != 200) return std::nullopt;
  absl::StatusOr<google::protobuf::Struct> doc = ParseJsonObject(r->body);
  if (!doc.ok()) return std::nullopt;
  return *std::move(doc);
}

absl::StatusOr<int> CairnCluster::LeaderIndex() {
  for (int i = 0; i < size(); ++i) {
    std::optional<google::protobuf::Struct> status = Status(i);
    // A leader still waiting out its predecessor's lease says
    // "serving": false; older replicas may not report the field at all.
    if (status.has_value() && JsonField(*status, "role") == "leader" &&
        JsonField(*status, "serving").value_or("true") == "true") {
      return i;
    }
  }
  return absl::UnavailableError(
      "no replica reports role \"leader\" and serving");
}

absl::Status CairnCluster::WaitForLeader(absl::Time deadline) {
  http::Client client;
  std::string last_problem = "no answer yet";
  uint64_t probe = 0;
  while (absl::Now() < deadline) {
    for (int i = 0; i < size(); ++i) {
      if (!replicas_[i].process->Running()) {
        return absl::UnavailableError(absl::StrCat(
            "replica ", i + 1, " exited: ", replicas_[i].process->Stop(),
            LogTails()));
      }
    }
    absl::StatusOr<int> leader = LeaderIndex();
    if (leader.ok()) {
      // The leader may still be waiting out its lease; an append tells.
      absl::StatusOr<http::Response> r = client.Request(
          "POST", kHost, replicas_[*leader].http_port, "/log/append",
          {{"Content-Type", "application/octet-stream"}},
          absl::StrCat("cairn-bench probe ", probe++), absl::Seconds(5));
      if (r.ok() && r->status == 200) return absl::OkStatus();
      last_problem =
          r.ok() ? absl::StrCat("probe append: ", r->status, " ", r->body)
                 : r.status().ToString();
    } else {
      last_problem = leader.status().ToString();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "no serving Cairn leader in time; last problem: ", last_problem,
      LogTails()));
}

}  // namespace cairn::bench
