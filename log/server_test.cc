// Three LogServers in one process, on loopback, with real LevelDB stores in
// TEST_TMPDIR. Short timeouts (election 300 ms, lease 200 ms, heartbeat
// 50 ms) keep each test to a few seconds.

#include "log/server.h"

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace cairn::log {
namespace {

constexpr uint32_t kReplicas = 3;
constexpr absl::Duration kWait = absl::Seconds(15);

Config TestConfig(uint32_t id) {
  Config config;
  config.node_id = id;
  config.replicas = {1, 2, 3};
  config.election_timeout = absl::Milliseconds(300);
  config.lease_duration = absl::Milliseconds(200);
  config.heartbeat_interval = absl::Milliseconds(50);
  config.retransmit_interval = absl::Milliseconds(100);
  config.recover_interval = absl::Milliseconds(100);
  config.fetch_max_actions = 16;  // recovery takes several fetches
  return config;
}

// Polls `condition` until it holds or `timeout` passes; true if it held.
bool WaitUntil(const std::function<bool()>& condition,
               absl::Duration timeout = kWait) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

// Completion of many asynchronous appends.
class Results {
 public:
  LogServer::AppendCallback Callback(const std::string& entry) {
    return [this, entry](const AppendResult& result) {
      AppendResult copy = result;
      // A deep copy: absl::Status shares its message by a reference count
      // that TSan cannot see in Debian's uninstrumented abseil.
      copy.status = result.status.ok()
                        ? absl::OkStatus()
                        : absl::Status(result.status.code(),
                                       std::string(result.status.message()));
      const bool not_appended = IsNotAppended(result.status);
      std::lock_guard<std::mutex> lock(mu_);
      if (not_appended) not_appended_.insert(entry);
      results_[entry] = std::move(copy);
      cv_.notify_all();
    };
  }
  bool WaitFor(size_t n, absl::Duration timeout = kWait) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [&] { return results_.size() >= n; });
  }
  std::map<std::string, AppendResult> results() {
    std::lock_guard<std::mutex> lock(mu_);
    return results_;
  }
  // Whether `entry` failed with IsNotAppended().
  bool not_appended(const std::string& entry) {
    std::lock_guard<std::mutex> lock(mu_);
    return not_appended_.count(entry) > 0;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, AppendResult> results_;  // guarded by mu_
  std::set<std::string> not_appended_;           // guarded by mu_
};

// Appends one entry and waits for its result.
AppendResult AppendAndWait(LogServer* server, const std::string& entry) {
  Results results;
  server->Append(entry, results.Callback(entry));
  EXPECT_TRUE(results.WaitFor(1)) << "append of " << entry << " never ended";
  return results.results()[entry];
}

// The entries of every learned APPEND position in [1, through], in order.
std::vector<std::string> LearnedEntries(LogServer* server, uint64_t through) {
  auto actions = server->Read(1, through, through + 1);
  EXPECT_TRUE(actions.ok()) << actions.status();
  std::vector<std::string> entries;
  if (!actions.ok()) return entries;
  uint64_t expected = 1;
  for (const Action& action : *actions) {
    EXPECT_EQ(action.position(), expected) << "hole in the learned prefix";
    expected = action.position() + 1;
    for (const std::string& e : action.value().entries()) entries.push_back(e);
  }
  return entries;
}

class LogServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    root_ = absl::StrCat(
        tmp != nullptr ? tmp : "/tmp", "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
  }

  void TearDown() override {
    for (auto& server : servers_) {
      if (server != nullptr) server->Stop();
    }
  }

  std::string Dir(uint32_t id) { return absl::StrCat(root_, "/replica", id); }

  LogServerOptions Options(uint32_t id) {
    LogServerOptions options;
    options.config = TestConfig(id);
    options.dir = Dir(id);
    options.group_commit = group_commit_;
    options.config.lease_duration = lease_duration_;
    return options;
  }

  // Creates all replicas on ephemeral ports, tells each the others' ports,
  // then starts them.
  void StartCluster() {
    for (uint32_t id = 1; id <= kReplicas; ++id) {
      auto server = LogServer::Create(Options(id));
      ASSERT_TRUE(server.ok()) << server.status();
      ports_[id] = (*server)->peer_port();
      servers_[id - 1] = *std::move(server);
    }
    for (auto& server : servers_) {
      for (const auto& [id, port] : ports_) {
        server->SetPeerAddress(id, {"127.0.0.1", port});
      }
    }
    for (auto& server : servers_) ASSERT_TRUE(server->Start().ok());
  }

  // Creates and starts replica `id` again, on its old peer port.
  absl::Status Restart(uint32_t id,
                       LogServer::StatusObserver observer = nullptr) {
    LogServerOptions options = Options(id);
    options.peer_port = ports_[id];
    for (const auto& [peer, port] : ports_) {
      if (peer != id) options.peers[peer] = {"127.0.0.1", port};
    }
    auto server = LogServer::Create(options);
    if (!server.ok()) return server.status();
    if (observer) (*server)->TEST_SetStatusObserver(std::move(observer));
    servers_[id - 1] = *std::move(server);
    return servers_[id - 1]->Start();
  }

  LogServer* server(uint32_t id) { return servers_[id - 1].get(); }

  // The serving leader among the running replicas, once there is one.
  LogServer* WaitForLeader() {
    LogServer* leader = nullptr;
    WaitUntil([&] {
      for (auto& s : servers_) {
        if (s != nullptr && s->GetStatus().running && s->GetStatus().serving) {
          leader = s.get();
          return true;
        }
      }
      return false;
    });
    return leader;
  }

  bool group_commit_ = true;
  absl::Duration lease_duration_ = TestConfig(1).lease_duration;
  std::string root_;
  std::map<uint32_t, uint16_t> ports_;
  std::unique_ptr<LogServer> servers_[kReplicas];
};

// 200 entries appended concurrently from 4 threads: each gets a distinct
// (position, index); every replica learns all of them in the same order.
void AppendsConcurrentlyAndEveryReplicaLearnsTheSameOrder(
    LogServer* leader, const std::function<LogServer*(uint32_t)>& server) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  Results results;
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string entry = absl::StrCat("t", t, "-", i);
        leader->Append(entry, results.Callback(entry));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(results.WaitFor(kThreads * kPerThread));
  const absl::Duration elapsed = absl::Now() - start;

  uint64_t last = 0;
  std::set<std::pair<uint64_t, uint32_t>> places;
  for (const auto& [entry, result] : results.results()) {
    ASSERT_TRUE(result.status.ok()) << entry << ": " << result.status;
    EXPECT_TRUE(places.insert({result.position, result.index}).second)
        << entry << " shares its place";
    last = std::max(last, result.position);
  }
  const LogServerStatus status = leader->GetStatus();
  std::cout << "200 concurrent appends took " << elapsed << " in " << last
            << " positions; " << status.counters.writes << " writes ("
            << status.counters.synced_writes << " synced) for "
            << status.counters.inputs << " inputs on the leader\n";

  std::vector<std::string> reference;
  for (uint32_t id = 1; id <= kReplicas; ++id) {
    ASSERT_TRUE(server(id)->WaitForLearned(last, absl::Now() + kWait).ok());
    const std::vector<std::string> entries = LearnedEntries(server(id), last);
    ASSERT_EQ(entries.size(), size_t{kThreads * kPerThread})
        << "replica " << id;
    if (reference.empty()) {
      reference = entries;
    } else {
      EXPECT_EQ(entries, reference) << "replica " << id;
    }
  }
  // Each thread's entries keep their order (appends are FIFO).
  std::map<int, int> next;
  for (const std::string& entry : reference) {
    int t = entry[1] - '0';
    EXPECT_EQ(entry, absl::StrCat("t", t, "-", next[t]++));
  }
  // The reported places match where the entries are.
  auto actions = leader->Read(1, last, last + 1);
  ASSERT_TRUE(actions.ok());
  std::map<std::string, AppendResult> all = results.results();
  for (const Action& action : *actions) {
    for (int i = 0; i < action.value().entries_size(); ++i) {
      const AppendResult& r = all[action.value().entries(i)];
      EXPECT_EQ(r.position, action.position());
      EXPECT_EQ(r.index, static_cast<uint32_t>(i));
    }
  }
}

TEST_F(LogServerTest, ElectsLeaderAndReplicatesConcurrentAppendsInOrder) {
  StartCluster();
  LogServer* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr) << "no leader elected";
  AppendsConcurrentlyAndEveryReplicaLearnsTheSameOrder(
      leader, [this](uint32_t id) { return server(id); });
  int leaders = 0;
  for (uint32_t id = 1; id <= kReplicas; ++id) {
    const LogServerStatus s = server(id)->GetStatus();
    EXPECT_EQ(s.status, cairn::v1::Metadata::VOTING);
    EXPECT_GT(s.counters.votes_sent, 0u) << "replica " << id;
    if (s.role == Proposer::Role::kLeader) ++leaders;
  }
  EXPECT_EQ(leaders, 1);
}

TEST_F(LogServerTest, ReplicatesWithoutGroupCommit) {
  group_commit_ = false;
  StartCluster();
  LogServer* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr) << "no leader elected";
  AppendsConcurrentlyAndEveryReplicaLearnsTheSameOrder(
      leader, [this](uint32_t id) { return server(id); });
}

TEST_F(LogServerTest, AppendToFollowerFailsUnavailableNamingTheLeader) {
  StartCluster();
  LogServer* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  const uint32_t leader_id = leader->GetStatus().id;
  LogServer* follower = server(leader_id == 1 ? 2 : 1);
  // The follower learns who leads from the first heartbeats.
  ASSERT_TRUE(WaitUntil([&] {
    return follower->GetStatus().leader == std::optional<uint32_t>(leader_id);
  }));
  Results results;
  follower->Append("x", results.Callback("x"));
  ASSERT_TRUE(results.WaitFor(1));
  const AppendResult result = results.results()["x"];
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(results.not_appended("x"));
  EXPECT_NE(result.status.message().find(
                absl::StrCat("the leader is replica ", leader_id)),
            std::string::npos)
      << result.status;
}

TEST_F(LogServerTest, NewLeaderTakesOverWhenTheLeaderStops) {
  StartCluster();
  LogServer* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(AppendAndWait(leader, absl::StrCat("before-", i)).status.ok());
  }
  const uint32_t old_id = leader->GetStatus().id;
  leader->Stop();
  Results late;
  leader->Append("late", late.Callback("late"));
  ASSERT_TRUE(late.WaitFor(1));
  EXPECT_EQ(late.results()["late"].status.code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(late.not_appended("late"));

  LogServer* next = WaitForLeader();
  ASSERT_NE(next, nullptr) << "no new leader";
  EXPECT_NE(next->GetStatus().id, old_id);
  uint64_t last = 0;
  for (int i = 0; i < 10; ++i) {
    const AppendResult r = AppendAndWait(next, absl::StrCat("after-", i));
    ASSERT_TRUE(r.status.ok()) << r.status;
    last = r.position;
  }
  for (uint32_t id = 1; id <= kReplicas; ++id) {
    if (id == old_id) continue;
    ASSERT_TRUE(server(id)->WaitForLearned(last, absl::Now() + kWait).ok());
    const std::vector<std::string> entries = LearnedEntries(server(id), last);
    ASSERT_EQ(entries.size(), 20u) << "replica " << id;
    for (int i = 0; i < 10; ++i) {
      EXPECT_EQ(entries[i], absl::StrCat("before-", i));
      EXPECT_EQ(entries[10 + i], absl::StrCat("after-", i));
    }
  }
}

TEST_F(LogServerTest, ReplicaThatLostItsDiskRecoversBeforeVoting) {
  StartCluster();
  LogServer* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(AppendAndWait(leader, absl::StrCat("e", i)).status.ok());
  }
  const uint32_t leader_id = leader->GetStatus().id;
  const uint32_t lost = leader_id == 3 ? 2 : 3;
  server(lost)->Stop();
  servers_[lost - 1].reset();
  std::filesystem::remove_all(Dir(lost));

  // What the restarted replica published, round by round. Shared with the
  // observer, which may outlive this scope until TearDown stops the server.
  struct Seen {
    cairn::v1::Metadata::Status status;
    uint64_t votes_sent;
  };
  struct Observed {
    std::mutex mu;
    std::vector<Seen> seen;  // guarded by mu
  };
  auto observed = std::make_shared<Observed>();
  ASSERT_TRUE(Restart(lost, [observed](const LogServerStatus& s) {
                std::lock_guard<std::mutex> lock(observed->mu);
                observed->seen.push_back({s.status, s.counters.votes_sent});
              }).ok());
  // Keep the log moving while it recovers.
  for (int i = 60; i < 80; ++i) {
    ASSERT_TRUE(AppendAndWait(leader, absl::StrCat("e", i)).status.ok());
  }
  ASSERT_TRUE(WaitUntil([&] {
    return server(lost)->GetStatus().status == cairn::v1::Metadata::VOTING;
  })) << server(lost)->GetStatus().status_detail;

  {
    std::lock_guard<std::mutex> lock(observed->mu);
    const std::vector<Seen>& seen = observed->seen;
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.front().status, cairn::v1::Metadata::EMPTY);
    bool recovering = false;
    for (const Seen& s : seen) {
      if (s.status == cairn::v1::Metadata::VOTING) break;
      if (s.status == cairn::v1::Metadata::RECOVERING) recovering = true;
      EXPECT_EQ(s.votes_sent, 0u)
          << "voted while " << ReplicaStatusName(s.status);
    }
    EXPECT_TRUE(recovering) << "never observed RECOVERING";
  }

  // Recovered: it votes again and holds the same log. (Its recovery made
  // the leader campaign again above the ballot it may have voted at, so ask
  // who leads now.)
  leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  uint64_t last = 0;
  for (int i = 80; i < 90; ++i) {
    const AppendResult r = AppendAndWait(leader, absl::StrCat("e", i));
    ASSERT_TRUE(r.status.ok()) << r.status;
    last = r.position;
  }
  ASSERT_TRUE(server(lost)->WaitForLearned(last, absl::Now() + kWait).ok());
  EXPECT_TRUE(WaitUntil(
      [&] { return server(lost)->GetStatus().counters.votes_sent > 0; }));
  EXPECT_EQ(LearnedEntries(server(lost), last), LearnedEntries(leader, last));
}

TEST_F(LogServerTest, CreateRejectsAnIdOutsideTheReplicas) {
  LogServerOptions options = Options(1);
  options.config.node_id = 7;
  EXPECT_EQ(LogServer::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(LogServerTest, SecondServerOnTheSameDirectoryIsUnavailable) {
  auto first = LogServer::Create(Options(1));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(LogServer::Create(Options(1)).status().code(),
            absl::StatusCode::kUnavailable);
}

// The leader's followers are gone, so an append waits for a quorum that
// never comes; stopping the leader must end it with an unknown outcome
// (kUnavailable, not IsNotAppended), and later appends as not appended.
TEST_F(LogServerTest, StopFailsAppendsStillWaitingForAQuorum) {
  // Long enough that the leader still serves when the append arrives.
  lease_duration_ = absl::Seconds(1);
  StartCluster();
  LogServer* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  ASSERT_TRUE(AppendAndWait(leader, "before").status.ok());
  for (auto& s : servers_) {
    if (s.get() != leader) s->Stop();
  }
  Results results;
  leader->Append("stranded", results.Callback("stranded"));
  ASSERT_TRUE(WaitUntil([&] { return leader->GetStatus().in_flight > 0; }))
      << "the append never reached phase 2";
  leader->Stop();
  ASSERT_TRUE(results.WaitFor(1));
  const AppendResult stranded = results.results()["stranded"];
  EXPECT_EQ(stranded.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(results.not_appended("stranded"));

  leader->Append("after", results.Callback("after"));
  ASSERT_TRUE(results.WaitFor(2));
  EXPECT_EQ(results.results()["after"].status.code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(results.not_appended("after"));
}

// Callbacks run on the node thread (the transport's I/O thread), where Read
// is served inline and already sees the entry just appended.
TEST_F(LogServerTest, AppendCallbackReadsItsOwnEntryInline) {
  StartCluster();
  LogServer* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::vector<std::string> seen;  // guarded by mu
  leader->Append("mine", [&](const AppendResult& result) {
    ASSERT_TRUE(result.status.ok());
    auto actions = leader->Read(result.position, result.position, 1);
    std::lock_guard<std::mutex> lock(mu);
    if (actions.ok() && actions->size() == 1) {
      for (const std::string& e : (*actions)[0].value().entries()) {
        seen.push_back(e);
      }
    }
    done = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, absl::ToChronoNanoseconds(kWait),
                          [&] { return done; }));
  EXPECT_EQ(seen, std::vector<std::string>{"mine"});
}

}  // namespace
}  // namespace cairn::log
