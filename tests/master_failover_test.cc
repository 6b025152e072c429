// Multi-process test of master failover: three real `cairn-master`
// processes on 127.0.0.1 (ephemeral HTTP and log ports, stores under
// TEST_TMPDIR). A leader is elected; standbys redirect (307) to it;
// UPDATE_WEIGHTS commits through it; it is SIGKILLed; a new leader serves
// the weight (it was in the log), and the surviving standby's state equals
// the new leader's.
//
// Every wait polls an endpoint against a bounded deadline; nothing asserts
// an outcome after a fixed sleep.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "gtest/gtest.h"
#include "tests/internal/json_value.h"
#include "tests/internal/process.h"
#include "tools/cpp/runfiles/runfiles.h"

namespace cairn::tests {
namespace {

using bazel::tools::cpp::runfiles::Runfiles;

constexpr char kHost[] = "127.0.0.1";
constexpr absl::Duration kTimeout = absl::Seconds(15);
constexpr absl::Duration kPollPause = absl::Milliseconds(10);
constexpr char kUpdateA[] =
    R"({"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[)"
    R"({"role":"a","weight":2}]}})";
constexpr char kGetWeights[] = R"({"type":"GET_WEIGHTS"})";
constexpr char kWeightsA[] =
    R"({"type":"GET_WEIGHTS","get_weights":{"weight_infos":[)"
    R"({"role":"a","weight":2}]}})";

// Binds `count` distinct ephemeral ports on 127.0.0.1, then releases them.
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

absl::StatusOr<http::Response> Request(uint16_t port, const std::string& method,
                                       const std::string& target,
                                       const std::string& body = "") {
  http::Client client;  // no redirects followed
  http::Headers headers = {{"Connection", "close"}};
  if (method == "POST") headers.Add("Content-Type", "application/json");
  return client.Request(method, kHost, port, target, headers, body,
                        absl::Seconds(3));
}

// What GET /master/replica says about one master.
struct Replica {
  std::string role;
  std::string leader;
  uint64_t applied = 0;
  std::string crc;
  std::string weights;  // the JSON text of the weights
  std::string json;
};

std::optional<Replica> GetReplica(uint16_t port) {
  absl::StatusOr<http::Response> r = Request(port, "GET", "/master/replica");
  if (!r.ok() || r->status != 200) return std::nullopt;
  absl::StatusOr<JsonValue> json = ParseJson(r->body);
  if (!json.ok()) return std::nullopt;
  Replica replica;
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

class MasterFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    std::unique_ptr<Runfiles> runfiles(Runfiles::CreateForTest(&error));
    ASSERT_NE(runfiles, nullptr) << error;
    binary_ = runfiles->Rlocation("cairn/master/cairn-master");
    ASSERT_FALSE(binary_.empty());
    const char* tmp = std::getenv("TEST_TMPDIR");
    root_ = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/master_failover_",
                         getpid());
    const char* outputs = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
    log_dir_ = outputs != nullptr ? outputs : root_;
  }

  // Starts three masters on fresh ports; retries with new ports when one
  // exits during startup (a port taken meanwhile).
  void StartCluster() {
    for (int attempt = 0; attempt < 3; ++attempt) {
      processes_.clear();
      std::vector<uint16_t> ports = FreePorts(6);
      ASSERT_EQ(ports.size(), 6u);
      http_ports_ = {ports[0], ports[1], ports[2]};
      std::vector<std::string> masters;
      for (int i = 0; i < 3; ++i) {
        masters.push_back(
            absl::StrCat(kHost, ":", ports[i], "/", ports[3 + i]));
      }
      bool up = true;
      for (int i = 0; i < 3 && up; ++i) {
        std::vector<std::string> argv = {
            binary_,
            absl::StrCat("--port=", http_ports_[i]),
            absl::StrCat("--ip=", kHost),
            absl::StrCat("--masters=", absl::StrJoin(masters, ",")),
            absl::StrCat("--work_dir=", root_, "/a", attempt, "/m", i),
            "--election_timeout=300ms",
            "--lease=200ms",
            "--heartbeat_interval=50ms"};
        auto process =
            Process::Start(argv, absl::StrCat(log_dir_, "/master-", i, ".log"));
        ASSERT_TRUE(process.ok()) << process.status();
        processes_.push_back(*std::move(process));
      }
      const absl::Time deadline = absl::Now() + kTimeout;
      for (int i = 0; i < 3 && up; ++i) {
        for (;;) {
          absl::StatusOr<http::Response> r =
              Request(http_ports_[i], "GET", "/health");
          if (r.ok() && r->status == 200) break;
          if (!processes_[i]->Running() || absl::Now() > deadline) {
            up = false;
            break;
          }
          absl::SleepFor(kPollPause);
        }
      }
      if (up) return;
    }
    FAIL() << "the masters did not come up: " << processes_.back()->LogTail();
  }

  std::string Address(int i) const {
    return absl::StrCat(kHost, ":", http_ports_[i]);
  }

  // Polls until exactly one of the running masters in `candidates` leads
  // and the others name it as the leader; returns its index.
  int WaitForLeader(const std::vector<int>& candidates) {
    const absl::Time deadline = absl::Now() + kTimeout;
    std::string last;
    while (absl::Now() < deadline) {
      std::vector<int> leading;
      bool agreed = true;
      last.clear();
      std::map<int, Replica> replicas;
      for (int i : candidates) {
        std::optional<Replica> r = GetReplica(http_ports_[i]);
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
    ADD_FAILURE() << "no single leader:" << last;
    return -1;
  }

  // Polls until every master in `indices` reports the same applied
  // position and state checksum, at least `min_applied`.
  void WaitForEqualStates(const std::vector<int>& indices,
                          uint64_t min_applied) {
    const absl::Time deadline = absl::Now() + kTimeout;
    std::string last;
    while (absl::Now() < deadline) {
      std::vector<Replica> seen;
      last.clear();
      for (int i : indices) {
        std::optional<Replica> r = GetReplica(http_ports_[i]);
        if (r.has_value()) {
          seen.push_back(*r);
          absl::StrAppend(&last, "\n  master ", i, ": ", r->json);
        }
      }
      bool equal = seen.size() == indices.size();
      for (const Replica& r : seen) {
        equal = equal && r.applied >= min_applied &&
                r.applied == seen[0].applied && r.crc == seen[0].crc &&
                r.weights == seen[0].weights;
      }
      if (equal) return;
      absl::SleepFor(kPollPause);
    }
    ADD_FAILURE() << "states differ:" << last;
  }

  std::string binary_;
  std::string root_;
  std::string log_dir_;
  std::vector<uint16_t> http_ports_;
  std::vector<std::unique_ptr<Process>> processes_;
};

TEST_F(MasterFailoverTest, NewLeaderServesCommittedWeightsAfterLeaderKill) {
  StartCluster();
  ASSERT_FALSE(HasFatalFailure());
  const int leader = WaitForLeader({0, 1, 2});
  ASSERT_GE(leader, 0);

  // Standbys redirect to the leader, Mesos style.
  for (int i = 0; i < 3; ++i) {
    if (i == leader) continue;
    absl::StatusOr<http::Response> redirect =
        Request(http_ports_[i], "GET", "/master/redirect");
    ASSERT_TRUE(redirect.ok()) << redirect.status();
    EXPECT_EQ(redirect->status, 307);
    EXPECT_EQ(redirect->headers.Get("Location"),
              absl::StrCat("//", Address(leader)));
    absl::StatusOr<http::Response> state =
        Request(http_ports_[i], "GET", "/master/state");
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_EQ(state->status, 307);
    EXPECT_EQ(state->headers.Get("Location"),
              absl::StrCat("//", Address(leader), "/master/state"));
    absl::StatusOr<http::Response> call =
        Request(http_ports_[i], "POST", "/api/v1", kUpdateA);
    ASSERT_TRUE(call.ok()) << call.status();
    EXPECT_EQ(call->status, 307);
    EXPECT_EQ(call->headers.Get("Location"),
              absl::StrCat("//", Address(leader), "/api/v1"));
  }

  absl::StatusOr<http::Response> update =
      Request(http_ports_[leader], "POST", "/api/v1", kUpdateA);
  ASSERT_TRUE(update.ok()) << update.status();
  ASSERT_EQ(update->status, 200) << update->body;
  absl::StatusOr<http::Response> weights =
      Request(http_ports_[leader], "POST", "/api/v1", kGetWeights);
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_EQ(weights->body, kWeightsA);
  // The standbys tail the log: their warm states equal the leader's.
  WaitForEqualStates({0, 1, 2}, 1);

  // SIGKILL the leader; a survivor takes over and serves what was committed.
  const absl::Time killed = absl::Now();
  processes_[leader]->Kill();
  std::vector<int> survivors;
  for (int i = 0; i < 3; ++i) {
    if (i != leader) survivors.push_back(i);
  }
  const int next = WaitForLeader(survivors);
  ASSERT_GE(next, 0);
  const absl::Time deadline = absl::Now() + kTimeout;
  absl::StatusOr<http::Response> after;
  for (;;) {
    after = Request(http_ports_[next], "POST", "/api/v1", kGetWeights);
    if (after.ok() && after->status == 200) break;
    ASSERT_LT(absl::Now(), deadline)
        << (after.ok() ? after->body : after.status().ToString());
    absl::SleepFor(kPollPause);
  }
  std::printf("failover: new leader %s serving %s after the kill\n",
              Address(next).c_str(),
              absl::FormatDuration(absl::Now() - killed).c_str());
  EXPECT_EQ(after->body, kWeightsA);

  // The new leader commits with two of three masters, and the remaining
  // standby's state follows it exactly.
  absl::StatusOr<http::Response> update_b =
      Request(http_ports_[next], "POST", "/api/v1",
              R"({"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[)"
              R"({"role":"b","weight":3}]}})");
  ASSERT_TRUE(update_b.ok()) << update_b.status();
  EXPECT_EQ(update_b->status, 200) << update_b->body;
  WaitForEqualStates(survivors, 2);
  for (int i : survivors) {
    if (i == next) continue;
    absl::StatusOr<http::Response> redirect =
        Request(http_ports_[i], "GET", "/master/redirect");
    ASSERT_TRUE(redirect.ok());
    EXPECT_EQ(redirect->headers.Get("Location"),
              absl::StrCat("//", Address(next)));
  }
}

}  // namespace
}  // namespace cairn::tests
