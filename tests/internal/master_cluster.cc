#include "tests/internal/master_cluster.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/json_value.h"
#include "gtest/gtest.h"
#include "tools/cpp/runfiles/runfiles.h"

namespace cairn::tests {
namespace {

constexpr char kHost[] = "127.0.0.1";
constexpr absl::Duration kPollPause = absl::Milliseconds(10);

}  // namespace

// Binds `count` distinct ephemeral ports on 127.0.0.1 (all held open at
// once, so they differ), then releases them.
std::vector<uint16_t> FreePorts(int count) {
  std::vector<int> sockets;
  std::vector<uint16_t> ports;
  for (int i = 0; i < count; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    sockets.push_back(fd);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      break;
    }
    ports.push_back(ntohs(address.sin_port));
  }
  for (int fd : sockets) close(fd);
  return ports;
}


void UseTestScratchDirs(absl::string_view prefix, absl::string_view test_name,
                        MasterClusterOptions* options) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  options->root = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", prefix, "_",
                               getpid(), "_", test_name);
  const char* outputs = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  options->log_dir = absl::StrCat(outputs != nullptr ? outputs : options->root,
                                  "/", test_name);
}

absl::StatusOr<MasterClusterOptions> OptionsForThisTest(
    absl::string_view prefix) {
  const ::testing::TestInfo* test =
      ::testing::UnitTest::GetInstance()->current_test_info();
  if (test == nullptr) {
    return absl::FailedPreconditionError(
        "OptionsForThisTest: no gtest test is running");
  }
  std::string error;
  std::unique_ptr<bazel::tools::cpp::runfiles::Runfiles> runfiles(
      bazel::tools::cpp::runfiles::Runfiles::CreateForTest(&error));
  if (runfiles == nullptr) {
    return absl::InternalError(absl::StrCat("cannot read runfiles: ", error));
  }
  MasterClusterOptions options;
  options.binary = runfiles->Rlocation("cairn/master/cairn-master");
  if (options.binary.empty()) {
    return absl::InternalError("cairn/master/cairn-master is not in runfiles");
  }
  UseTestScratchDirs(prefix, test->name(), &options);
  return options;
}

MasterCluster::MasterCluster(MasterClusterOptions options)
    : options_(std::move(options)) {
  if (options_.log_dir.empty()) options_.log_dir = options_.root;
  masters_.resize(options_.masters);
}

absl::StatusOr<std::unique_ptr<MasterCluster>> MasterCluster::Start(
    MasterClusterOptions options) {
  std::unique_ptr<MasterCluster> cluster(new MasterCluster(std::move(options)));
  std::error_code error;
  std::filesystem::create_directories(cluster->options_.log_dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat(
        "cannot create ", cluster->options_.log_dir, ": ", error.message()));
  }
  absl::Status status;
  for (int attempt = 0; attempt < 3; ++attempt) {
    status = cluster->StartOnce(attempt);
    if (status.ok()) return cluster;
    if (!absl::IsUnavailable(status)) return status;
  }
  return status;
}

absl::Status MasterCluster::StartOnce(int attempt) {
  const int n = options_.masters;
  for (Master& master : masters_) master.process.reset();
  std::vector<uint16_t> ports = FreePorts(2 * n);
  if (static_cast<int>(ports.size()) != 2 * n) {
    return absl::InternalError("cannot bind ephemeral ports");
  }
  std::vector<std::string> addresses;
  for (int i = 0; i < n; ++i) {
    addresses.push_back(absl::StrCat(kHost, ":", ports[i], "/", ports[n + i]));
  }
  for (int i = 0; i < n; ++i) {
    Master& master = masters_[i];
    master.http_port = ports[i];
    master.work_dir = absl::StrCat(options_.root, "/a", attempt, "/m", i);
    master.argv = {options_.binary, absl::StrCat("--port=", master.http_port),
                   absl::StrCat("--ip=", kHost),
                   absl::StrCat("--masters=", absl::StrJoin(addresses, ",")),
                   absl::StrCat("--work_dir=", master.work_dir)};
    master.argv.insert(master.argv.end(), options_.flags.begin(),
                       options_.flags.end());
    auto process = Process::Start(
        master.argv, absl::StrCat(options_.log_dir, "/master-", i, ".log"));
    if (!process.ok()) return process.status();
    master.process = *std::move(process);
  }
  for (int i = 0; i < n; ++i) {
    if (!WaitForHealth(i, absl::Now() + options_.timeout)) {
      return absl::UnavailableError(
          absl::StrCat("the masters did not come up: master ", i, ": ",
                       masters_[i].process->LogTail()));
    }
  }
  return absl::OkStatus();
}

void MasterCluster::Kill(int i) {
  if (masters_.at(i).process != nullptr) masters_.at(i).process->Kill();
}

absl::Status MasterCluster::Restart(int i, const std::string& log_name) {
  Master& master = masters_.at(i);
  auto process = Process::Start(master.argv,
                                absl::StrCat(options_.log_dir, "/", log_name));
  if (!process.ok()) return process.status();
  master.process = *std::move(process);
  return absl::OkStatus();
}

bool MasterCluster::WaitForHealth(int i, absl::Time deadline) {
  for (;;) {
    absl::StatusOr<http::Response> r = Request(i, "GET", "/health");
    if (r.ok() && r->status == 200) return true;
    if (!masters_.at(i).process->Running() || absl::Now() > deadline) {
      return false;
    }
    absl::SleepFor(kPollPause);
  }
}

std::string MasterCluster::Address(int i) const {
  return absl::StrCat(kHost, ":", http_port(i));
}

absl::StatusOr<http::Response> MasterCluster::Request(
    int i, const std::string& method, const std::string& target,
    const std::string& body) const {
  http::Client client;  // no redirects followed
  http::Headers headers = {{"Connection", "close"}};
  if (method == "POST") headers.Add("Content-Type", "application/json");
  return client.Request(method, kHost, http_port(i), target, headers, body,
                        absl::Seconds(3));
}

std::optional<MasterReplica> MasterCluster::GetReplica(int i) const {
  absl::StatusOr<http::Response> r = Request(i, "GET", "/master/replica");
  if (!r.ok() || r->status != 200) return std::nullopt;
  absl::StatusOr<JsonValue> json = ParseJson(r->body);
  if (!json.ok()) return std::nullopt;
  MasterReplica replica;
  replica.role = json->Text("role").value_or("");
  replica.leader = json->Text("leader").value_or("");
  replica.applied = json->Uint("applied").value_or(0);
  replica.crc = json->Text("state_crc32c").value_or("");
  const size_t begin = r->body.find("\"weights\":");
  const size_t end = r->body.find("],", begin);
  if (begin != std::string::npos && end != std::string::npos) {
    replica.weights = r->body.substr(begin, end - begin + 1);
  }
  replica.json = r->body;
  return replica;
}

absl::StatusOr<int> MasterCluster::WaitForLeader(
    const std::vector<int>& candidates) const {
  const absl::Time deadline = absl::Now() + options_.timeout;
  std::string last;
  while (absl::Now() < deadline) {
    std::vector<int> leading;
    bool agreed = true;
    last.clear();
    std::map<int, MasterReplica> replicas;
    for (int i : candidates) {
      std::optional<MasterReplica> r = GetReplica(i);
      if (!r.has_value()) {
        agreed = false;
        continue;
      }
      absl::StrAppend(&last, "\n  master ", i, ": ", r->json);
      if (r->role == "leading") leading.push_back(i);
      replicas[i] = *r;
    }
    if (agreed && leading.size() == 1) {
      for (const auto& [i, r] : replicas) {
        if (r.leader != Address(leading[0])) agreed = false;
      }
      if (agreed) return leading[0];
    }
    absl::SleepFor(kPollPause);
  }
  return absl::DeadlineExceededError(absl::StrCat("no single leader:", last));
}

absl::StatusOr<MasterReplica> MasterCluster::WaitForEqualStates(
    const std::vector<int>& indices, uint64_t min_applied) const {
  const absl::Time deadline = absl::Now() + options_.timeout;
  std::string last;
  while (absl::Now() < deadline) {
    std::vector<MasterReplica> seen;
    last.clear();
    for (int i : indices) {
      std::optional<MasterReplica> r = GetReplica(i);
      if (r.has_value()) {
        seen.push_back(*r);
        absl::StrAppend(&last, "\n  master ", i, ": ", r->json);
      }
    }
    bool equal = !seen.empty() && seen.size() == indices.size();
    for (const MasterReplica& r : seen) {
      equal = equal && r.applied >= min_applied &&
              r.applied == seen[0].applied && r.crc == seen[0].crc &&
              r.weights == seen[0].weights;
    }
    if (equal) return seen[0];
    absl::SleepFor(kPollPause);
  }
  return absl::DeadlineExceededError(absl::StrCat("states differ:", last));
}

}  // namespace cairn::tests
