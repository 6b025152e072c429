#include "bench/internal/etcd_cluster.h"

#include <unistd.h>

#include <optional>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/internal/json_fields.h"
#include "bench/internal/loopback.h"
#include "common/http_client.h"

namespace cairn::bench {
namespace {

constexpr char kHost[] = "127.0.0.1";

std::string Url(uint16_t port) {
  return absl::StrCat("http://", kHost, ":", port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(
    const EtcdClusterOptions& options) {
  if (access(options.etcd_binary.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(
        options.etcd_binary,
        " not found (Debian package etcd-server; tools/setup.sh installs it)"));
  }
  std::unique_ptr<EtcdCluster> cluster(new EtcdCluster);
  std::vector<std::string> initial;
  for (int i = 0; i < options.members; ++i) {
    Member m;
    m.name = absl::StrCat("m", i + 1);
    absl::StatusOr<uint16_t> peer = PickFreePort();
    if (!peer.ok()) return peer.status();
    absl::StatusOr<uint16_t> client = PickFreePort();
    if (!client.ok()) return client.status();
    m.peer_port = *peer;
    m.client_port = *client;
    initial.push_back(absl::StrCat(m.name, "=", Url(m.peer_port)));
    cluster->members_.push_back(std::move(m));
  }
  const std::string initial_cluster = absl::StrJoin(initial, ",");
  for (Member& m : cluster->members_) {
    const std::string data_dir = absl::StrCat(options.dir, "/etcd-", m.name);
    // etcd creates its data directory itself, with the 0700 it insists on.
    std::vector<std::string> argv = {
        options.etcd_binary,
        absl::StrCat("--name=", m.name),
        absl::StrCat("--data-dir=", data_dir),
        absl::StrCat("--listen-peer-urls=", Url(m.peer_port)),
        absl::StrCat("--initial-advertise-peer-urls=", Url(m.peer_port)),
        absl::StrCat("--listen-client-urls=", Url(m.client_port)),
        absl::StrCat("--advertise-client-urls=", Url(m.client_port)),
        absl::StrCat("--initial-cluster=", initial_cluster),
        absl::StrCat("--initial-cluster-token=cairn-bench-", getpid()),
        "--initial-cluster-state=new",
        "--logger=zap",
        "--log-level=warn",
    };
    absl::StatusOr<std::unique_ptr<ChildProcess>> process = ChildProcess::Start(
        std::move(argv), absl::StrCat(options.dir, "/etcd-", m.name, ".log"));
    if (!process.ok()) return process.status();
    m.process = *std::move(process);
  }
  absl::Status healthy =
      cluster->WaitHealthy(absl::Now() + options.start_timeout);
  if (!healthy.ok()) return healthy;
  return cluster;
}

EtcdCluster::~EtcdCluster() { Stop(); }

void EtcdCluster::Stop() {
  for (Member& m : members_) {
    if (m.process != nullptr) m.process->Stop();
  }
}

std::string EtcdCluster::LogTails() const {
  std::string out;
  for (const Member& m : members_) {
    if (m.process == nullptr) continue;
    absl::StrAppend(&out, "\n--- ", m.process->log_path(), " (tail) ---\n",
                    m.process->LogTail(1500));
  }
  return out;
}

absl::Status EtcdCluster::WaitHealthy(absl::Time deadline) {
  http::Client client;
  std::string last_problem = "no answer yet";
  const std::string key = absl::Base64Escape("cairn-bench/probe");
  const std::string put_body =
      absl::StrCat("{\"key\":\"", key, "\",\"value\":\"",
                   absl::Base64Escape("probe"), "\"}");
  while (absl::Now() < deadline) {
    bool all_healthy = true;
    for (Member& m : members_) {
      if (!m.process->Running()) {
        return absl::UnavailableError(
            absl::StrCat("etcd member ", m.name, " exited: ", m.process->Stop(),
                         LogTails()));
      }
      absl::StatusOr<http::Response> r = client.Request(
          "GET", kHost, m.client_port, "/health", {}, "", absl::Seconds(2));
      if (!r.ok()) {
        last_problem =
            absl::StrCat(m.name, " /health: ", r.status().ToString());
        all_healthy = false;
        break;
      }
      absl::StatusOr<google::protobuf::Struct> doc = ParseJsonObject(r->body);
      std::optional<std::string> health =
          doc.ok() ? JsonField(*doc, "health") : std::nullopt;
      if (r->status != 200 || health != "true") {
        last_problem =
            absl::StrCat(m.name, " /health: ", r->status, " ", r->body);
        all_healthy = false;
        break;
      }
    }
    if (all_healthy) {
      // Find the gateway's API prefix: /v3 (etcd >= 3.4), else /v3beta.
      for (const char* target : {"/v3/kv/put", "/v3beta/kv/put"}) {
        absl::StatusOr<http::Response> r = client.Request(
            "POST", kHost, members_[0].client_port, target,
            {{"Content-Type", "application/json"}}, put_body, absl::Seconds(5));
        if (r.ok() && r->status == 200) {
          put_target_ = target;
          return absl::OkStatus();
        }
        last_problem = r.ok()
                           ? absl::StrCat(target, ": ", r->status, " ", r->body)
                           : r.status().ToString();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "etcd cluster not healthy in time; last problem: ", last_problem,
      LogTails()));
}

absl::StatusOr<int> EtcdCluster::LeaderIndex() {
  http::Client client;
  const std::string status_target = put_target_ == "/v3beta/kv/put"
                                        ? "/v3beta/maintenance/status"
                                        : "/v3/maintenance/status";
  std::vector<std::string> member_ids(members_.size());
  std::optional<std::string> leader;
  for (size_t i = 0; i < members_.size(); ++i) {
    absl::StatusOr<http::Response> r = client.Request(
        "POST", kHost, members_[i].client_port, status_target,
        {{"Content-Type", "application/json"}}, "{}", absl::Seconds(2));
    if (!r.ok() || r->status != 200) continue;
    absl::StatusOr<google::protobuf::Struct> doc = ParseJsonObject(r->body);
    if (!doc.ok()) continue;
    member_ids[i] = JsonField(*doc, "header.member_id").value_or("");
    if (!leader.has_value()) leader = JsonField(*doc, "leader");
  }
  if (!leader.has_value()) {
    return absl::UnavailableError("no etcd member answered its status");
  }
  for (size_t i = 0; i < members_.size(); ++i) {
    if (member_ids[i] == *leader) return static_cast<int>(i);
  }
  return absl::UnavailableError(
      absl::StrCat("etcd leader ", *leader, " is not a member we know"));
}

uint64_t EtcdCluster::RaftTerm(int member) {
  http::Client client;
  const std::string status_target = put_target_ == "/v3beta/kv/put"
                                        ? "/v3beta/maintenance/status"
                                        : "/v3/maintenance/status";
  absl::StatusOr<http::Response> r = client.Request(
      "POST", kHost, members_[member].client_port, status_target,
      {{"Content-Type", "application/json"}}, "{}", absl::Seconds(2));
  if (!r.ok() || r->status != 200) return 0;
  absl::StatusOr<google::protobuf::Struct> doc = ParseJsonObject(r->body);
  if (!doc.ok()) return 0;
  uint64_t term = 0;
  if (!absl::SimpleAtoi(
          JsonField(*doc, "raftTerm")
              .value_or(JsonField(*doc, "header.raft_term").value_or("0")),
          &term)) {
    return 0;
  }
  return term;
}

}  // namespace cairn::bench
