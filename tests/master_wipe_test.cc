// Multi-process test of a wiped master rejoining (issue 3, acceptance 4):
// three real `cairn-master` processes on 127.0.0.1 (ephemeral HTTP and log
// ports, stores under TEST_TMPDIR). Weights are updated through the leader;
// a standby is SIGKILLed, its --work_dir deleted, and it is restarted with
// the same flags while updates go on. Its embedded log replica recovers the
// log from the two voting replicas, its master folds it from position 1, and
// its state ends equal to the leader's and the other standby's.
//
// Snapshots are off in effect (--snapshot_interval far above the number of
// events), so the log is never truncated: snapshots are not transferred
// between masters, so a wiped master can fold only a log that still starts
// at position 1 (master/README.md, "Known limits").
//
// Every wait polls an endpoint against a bounded deadline; nothing asserts
// an outcome after a fixed sleep.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
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
constexpr char kGetWeights[] = R"({"type":"GET_WEIGHTS"})";

std::string UpdateWeights(const std::string& role, int weight) {
  return absl::StrCat(
      R"({"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[)",
      R"({"role":")", role, R"(","weight":)", weight, "}]}}");
}

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

class MasterWipeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    std::unique_ptr<Runfiles> runfiles(Runfiles::CreateForTest(&error));
    ASSERT_NE(runfiles, nullptr) << error;
    binary_ = runfiles->Rlocation("cairn/master/cairn-master");
    ASSERT_FALSE(binary_.empty());
    const char* tmp = std::getenv("TEST_TMPDIR");
    root_ =
        absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/master_wipe_", getpid());
    const char* outputs = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
    log_dir_ = outputs != nullptr ? outputs : root_;
  }

  // Starts three masters on fresh ports; retries with new ports when one
  // exits during startup (a port taken meanwhile).
  void StartCluster() {
    for (int attempt = 0; attempt < 3; ++attempt) {
      processes_.clear();
      argvs_.clear();
      work_dirs_.clear();
      std::vector<uint16_t> ports = FreePorts(6);
      ASSERT_EQ(ports.size(), 6u);
      http_ports_ = {ports[0], ports[1], ports[2]};
      std::vector<std::string> masters;
      for (int i = 0; i < 3; ++i) {
        masters.push_back(
            absl::StrCat(kHost, ":", ports[i], "/", ports[3 + i]));
      }
      for (int i = 0; i < 3; ++i) {
        work_dirs_.push_back(absl::StrCat(root_, "/a", attempt, "/m", i));
        argvs_.push_back(
            {binary_, absl::StrCat("--port=", http_ports_[i]),
             absl::StrCat("--ip=", kHost),
             absl::StrCat("--masters=", absl::StrJoin(masters, ",")),
             absl::StrCat("--work_dir=", work_dirs_[i]),
             "--snapshot_interval=1000000", "--election_timeout=300ms",
             "--lease=200ms", "--heartbeat_interval=50ms"});
        auto process = Process::Start(
            argvs_[i], absl::StrCat(log_dir_, "/master-", i, ".log"));
        ASSERT_TRUE(process.ok()) << process.status();
        processes_.push_back(*std::move(process));
      }
      bool up = true;
      for (int i = 0; i < 3 && up; ++i) up = WaitForHealth(i);
      if (up) return;
    }
    FAIL() << "the masters did not come up: " << processes_.back()->LogTail();
  }

  // Polls GET /health on master `i`; false when it exits or the deadline
  // passes first.
  bool WaitForHealth(int i) {
    const absl::Time deadline = absl::Now() + kTimeout;
    for (;;) {
      absl::StatusOr<http::Response> r =
          Request(http_ports_[i], "GET", "/health");
      if (r.ok() && r->status == 200) return true;
      if (!processes_[i]->Running() || absl::Now() > deadline) return false;
      absl::SleepFor(kPollPause);
    }
  }

  std::string Address(int i) const {
    return absl::StrCat(kHost, ":", http_ports_[i]);
  }

  // Polls until exactly one of the masters in `candidates` leads and the
  // others name it as the leader; returns its index.
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
  // position, state checksum and weights, at least `min_applied`; returns
  // the common state.
  std::optional<Replica> WaitForEqualStates(const std::vector<int>& indices,
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
      if (equal) return seen[0];
      absl::SleepFor(kPollPause);
    }
    ADD_FAILURE() << "states differ:" << last;
    return std::nullopt;
  }

  // UPDATE_WEIGHTS through whichever of `masters` leads, until one answers
  // 200 (committed and applied) or the deadline passes. Standbys answer 307
  // without appending; a leader that loses the log's leadership meanwhile
  // answers 503 with the outcome unknown, and re-sending is safe because
  // setting a weight is idempotent. Counts the refused attempts in
  // `refused_`.
  void Update(const std::vector<int>& masters, const std::string& role,
              int weight) {
    const absl::Time deadline = absl::Now() + kTimeout;
    std::string last;
    for (;;) {
      for (int i : masters) {
        absl::StatusOr<http::Response> r = Request(
            http_ports_[i], "POST", "/api/v1", UpdateWeights(role, weight));
        if (r.ok() && r->status == 200) return;
        if (r.ok() && r->status == 400) FAIL() << r->body;
        if (r.ok() && r->status != 307) {
          ++refused_;
          last = absl::StrCat("master ", i, ": ", r->status, " ", r->body);
        }
      }
      ASSERT_LT(absl::Now(), deadline) << "no leader took the update: " << last;
      absl::SleepFor(kPollPause);
    }
  }

  std::string binary_;
  std::string root_;
  std::string log_dir_;
  std::vector<uint16_t> http_ports_;
  std::vector<std::vector<std::string>> argvs_;
  std::vector<std::string> work_dirs_;
  std::vector<std::unique_ptr<Process>> processes_;
  int refused_ = 0;
};

TEST_F(MasterWipeTest, WipedStandbyRejoinsWithLeadersState) {
  StartCluster();
  ASSERT_FALSE(HasFatalFailure());
  const int leader = WaitForLeader({0, 1, 2});
  ASSERT_GE(leader, 0);
  const int wiped = (leader + 1) % 3;
  const int other = (leader + 2) % 3;

  const std::vector<int> all = {0, 1, 2};
  Update(all, "a", 2);
  Update(all, "b", 3);
  Update(all, "a", 5);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(WaitForEqualStates({0, 1, 2}, 3).has_value());

  // SIGKILL a standby and delete its whole store (log, snapshots, archive).
  processes_[wiped]->Kill();
  std::error_code error;
  std::filesystem::remove_all(work_dirs_[wiped], error);
  ASSERT_FALSE(error) << error.message();
  ASSERT_FALSE(std::filesystem::exists(work_dirs_[wiped]));

  // The other two still commit; then the wiped master restarts with the
  // same flags and more updates go on while it recovers.
  Update({leader, other}, "c", 4);
  Update({leader, other}, "b", 7);
  ASSERT_FALSE(HasFatalFailure());
  const absl::Time restarted = absl::Now();
  const std::string rejoin_log =
      absl::StrCat(log_dir_, "/master-", wiped, "-after-wipe.log");
  auto process = Process::Start(argvs_[wiped], rejoin_log);
  ASSERT_TRUE(process.ok()) << process.status();
  processes_[wiped] = *std::move(process);
  // Its replica, once recovered, asks the leader to campaign again with a
  // higher ballot (docs/log.md, "Disk loss and recovery"), so leadership may
  // move meanwhile: Update() follows it.
  Update(all, "d", 1);
  Update(all, "c", 9);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(WaitForHealth(wiped)) << processes_[wiped]->LogTail();

  // Wait until the wiped master has folded as far as the leader.
  const absl::Time deadline = absl::Now() + kTimeout;
  std::optional<Replica> wiped_state;
  std::optional<Replica> leader_state;
  for (;;) {
    wiped_state = GetReplica(http_ports_[wiped]);
    leader_state = GetReplica(http_ports_[leader]);
    if (wiped_state.has_value() && leader_state.has_value() &&
        leader_state->applied >= 7 &&
        wiped_state->applied == leader_state->applied) {
      break;
    }
    ASSERT_LT(absl::Now(), deadline)
        << "wiped master: " << (wiped_state ? wiped_state->json : "-")
        << "\nleader: " << (leader_state ? leader_state->json : "-") << "\n"
        << processes_[wiped]->LogTail();
    absl::SleepFor(kPollPause);
  }
  std::printf(
      "wipe: master %s rejoined at applied position %llu %s after "
      "its restart\n",
      Address(wiped).c_str(),
      static_cast<unsigned long long>(wiped_state->applied),
      absl::FormatDuration(absl::Now() - restarted).c_str());
  EXPECT_EQ(wiped_state->crc, leader_state->crc);
  EXPECT_EQ(wiped_state->weights, leader_state->weights);

  // All three agree, and the state is what the updates wrote.
  std::optional<Replica> common = WaitForEqualStates({leader, wiped, other}, 7);
  ASSERT_TRUE(common.has_value());
  EXPECT_EQ(common->weights,
            R"("weights":[{"role":"a","weight":5},{"role":"b","weight":7},)"
            R"({"role":"c","weight":9},{"role":"d","weight":1}])");

  // Its log replica came back EMPTY and recovered from the voting replicas
  // before voting (docs/log.md, "Disk loss and recovery"); /master/replica
  // does not expose the replica's status, so read its log. It votes again
  // only after a leader with a higher ballot (it asks for one), so wait for
  // that too, then commit once more and compare all three.
  const absl::Time voting_deadline = absl::Now() + kTimeout;
  std::string log_text;
  for (;;) {
    log_text = processes_[wiped]->LogTail(1 << 20);
    if (absl::StrContains(log_text, "now VOTING")) break;
    ASSERT_LT(absl::Now(), voting_deadline)
        << "the wiped replica never voted again:\n"
        << log_text;
    absl::SleepFor(kPollPause);
  }
  std::printf("wipe: its log replica was VOTING again %s after its restart\n",
              absl::FormatDuration(absl::Now() - restarted).c_str());
  EXPECT_TRUE(absl::StrContains(log_text, "started EMPTY")) << log_text;
  EXPECT_TRUE(absl::StrContains(log_text, "RECOVERING: catching up"))
      << log_text;
  EXPECT_LT(log_text.find("RECOVERING: catching up"),
            log_text.find("now VOTING"));

  // A full member again: one more update commits, all three fold it, and
  // the (possibly new) leader serves the weights every update wrote.
  Update(all, "e", 6);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(WaitForEqualStates(all, common->applied + 1).has_value());
  const int final_leader = WaitForLeader(all);
  ASSERT_GE(final_leader, 0);
  absl::StatusOr<http::Response> weights =
      Request(http_ports_[final_leader], "POST", "/api/v1", kGetWeights);
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_EQ(weights->body,
            R"({"type":"GET_WEIGHTS","get_weights":{"weight_infos":[)"
            R"({"role":"a","weight":5},{"role":"b","weight":7},)"
            R"({"role":"c","weight":9},{"role":"d","weight":1},)"
            R"({"role":"e","weight":6}]}})");
  std::printf(
      "wipe: leader %s before, %s after; %d update attempts "
      "answered 503 by some master\n",
      Address(leader).c_str(), Address(final_leader).c_str(), refused_);
}

}  // namespace
}  // namespace cairn::tests
