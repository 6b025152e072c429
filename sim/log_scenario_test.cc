// Hand-made fault scenarios for the replicated log, on the deterministic
// LogCluster (one seed each; the LogChecker's invariants run throughout).

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/log_cluster.h"

namespace cairn::sim {
namespace {

using cairn::v1::LogMessage;
using cairn::v1::Metadata;
using cairn::v1::Value;
using ::testing::HasSubstr;

constexpr uint64_t kSeed = 20240611;

ClusterOptions Options(int replicas) {
  ClusterOptions o;
  o.replicas = replicas;
  o.config.heartbeat_interval = absl::Milliseconds(40);
  o.config.lease_duration = absl::Milliseconds(300);
  o.config.election_timeout = absl::Milliseconds(450);
  o.config.retransmit_interval = absl::Milliseconds(60);
  o.config.fetch_interval = absl::Milliseconds(5);
  o.config.fetch_timeout = absl::Milliseconds(100);
  o.config.recover_interval = absl::Milliseconds(60);
  o.network.min_delay = absl::Milliseconds(1);
  o.network.max_delay = absl::Milliseconds(5);
  return o;
}

class LogScenarioTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    logging::SetMinLevel(logging::Severity::kFatal);
  }

  void TearDown() override {
    if (cluster_ != nullptr) {
      EXPECT_FALSE(cluster_->failed()) << cluster_->failure();
    }
  }

  // CAIRN_SIM_TRACE=1 prints every event of the scenario to stdout.
  LogCluster& Make(int replicas, ClusterOptions options) {
    options.replicas = replicas;
    if (std::getenv("CAIRN_SIM_TRACE") != nullptr) options.trace = &std::cout;
    cluster_ = std::make_unique<LogCluster>(kSeed + replicas, options);
    cluster_->Start();
    return *cluster_;
  }
  LogCluster& Make(int replicas) { return Make(replicas, Options(replicas)); }

  // Steps until one node serves as leader; returns it (0 on timeout).
  uint32_t WaitForLeader(int max_steps = 3000) {
    LogCluster& c = *cluster_;
    c.RunUntil([&] { return c.ServingLeader().has_value(); }, max_steps);
    return c.ServingLeader().value_or(0);
  }

  // The ack of `value`, if any.
  std::optional<Ack> AckOf(const std::string& value) const {
    for (const Ack& a : cluster_->acks()) {
      if (a.value == value) return a;
    }
    return std::nullopt;
  }

  // Appends through the leader and steps until acknowledged; returns the
  // position (0 on timeout).
  uint64_t AppendAndWait(uint32_t leader, int max_steps = 1000) {
    const std::string value = cluster_->Append(leader);
    cluster_->RunUntil([&] { return AckOf(value).has_value(); }, max_steps);
    auto ack = AckOf(value);
    return ack.has_value() ? ack->position : 0;
  }

  bool AllLearnedThrough(uint64_t position) {
    for (uint32_t id : cluster_->ids()) {
      log::Node* node = cluster_->node(id);
      if (node == nullptr || node->replica().learned_through() < position) {
        return false;
      }
    }
    return true;
  }

  std::unique_ptr<LogCluster> cluster_;
};

TEST_F(LogScenarioTest, AllEmptyReplicasInitialiseTheLog) {
  for (int replicas : {3, 5}) {
    SCOPED_TRACE(absl::StrCat(replicas, " replicas"));
    LogCluster& c = Make(replicas);
    std::map<uint32_t, std::set<int>> seen;  // statuses each node went through
    for (uint32_t id : c.ids()) seen[id].insert(c.status(id));
    c.RunUntil(
        [&] {
          for (uint32_t id : c.ids()) seen[id].insert(c.status(id));
          return c.ServingLeader().has_value();
        },
        3000);
    const uint32_t leader = c.ServingLeader().value_or(0);
    ASSERT_NE(leader, 0u) << "no leader after initialisation";
    for (uint32_t id : c.ids()) {
      EXPECT_EQ(c.status(id), Metadata::VOTING) << "node " << id;
      EXPECT_TRUE(seen[id].count(Metadata::EMPTY)) << "node " << id;
      EXPECT_TRUE(seen[id].count(Metadata::STARTING)) << "node " << id;
    }
    EXPECT_EQ(AppendAndWait(leader), 1u);
    ASSERT_FALSE(c.failed()) << c.failure();
  }
}

TEST_F(LogScenarioTest, NewLeaderRecoversQuorumAcceptedValueWhoseLearnedWereLost) {
  LogCluster& c = Make(3);
  const uint32_t leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  for (int i = 0; i < 3; ++i) ASSERT_NE(AppendAndWait(leader), 0u);
  ASSERT_TRUE(c.RunUntil([&] { return AllLearnedThrough(3); }, 500));

  // From now on nobody but the leader learns anything: its LearnedMessages
  // and every catch-up message are lost.
  c.set_drop_filter([&](const LogMessage& m) {
    return (m.from() == leader && m.has_learned()) || m.has_fetch_request() ||
           m.has_fetch_response();
  });
  const std::string value = c.Append(leader);
  ASSERT_TRUE(c.RunUntil([&] { return AckOf(value).has_value(); }, 500));
  const uint64_t p = AckOf(value)->position;
  // Let the other acceptors' accepts land; they must not have learned it.
  for (int i = 0; i < 20; ++i) c.Step();
  int accepted_elsewhere = 0;
  for (uint32_t id : c.ids()) {
    if (id == leader) continue;
    EXPECT_LT(c.node(id)->replica().learned_through(), p) << "node " << id;
    auto stored = c.storage(id).Read(p);
    ASSERT_TRUE(stored.ok());
    if (stored->has_value() && !(*stored)->learned() &&
        (*stored)->value().entries_size() == 1 &&
        (*stored)->value().entries(0) == value) {
      ++accepted_elsewhere;
    }
  }
  ASSERT_GE(accepted_elsewhere, 1) << "the value reached no other acceptor";

  // The leader dies with the only learned copy.
  c.Crash(leader, CrashPoint::kNow);
  c.set_drop_filter(nullptr);
  uint32_t next = 0;
  c.RunUntil(
      [&] {
        auto l = c.ServingLeader();
        if (l.has_value() && *l != leader) next = *l;
        if (next == 0) return false;
        for (uint32_t id : c.ids()) {
          if (id != leader && c.node(id)->replica().learned_through() < p) {
            return false;
          }
        }
        return true;
      },
      4000);
  ASSERT_NE(next, 0u) << "no new leader";
  for (uint32_t id : c.ids()) {
    if (id == leader) continue;
    auto stored = c.storage(id).Read(p);
    ASSERT_TRUE(stored.ok() && stored->has_value()) << "node " << id;
    EXPECT_TRUE((*stored)->learned()) << "node " << id;
    EXPECT_EQ((*stored)->value().kind(), Value::APPEND)
        << "node " << id << " has " << (*stored)->ShortDebugString();
    ASSERT_EQ((*stored)->value().entries_size(), 1);
    EXPECT_EQ((*stored)->value().entries(0), value);
  }
  // And the old leader, restarted, agrees (the checker would also object).
  c.Restart(leader);
  EXPECT_TRUE(c.RunUntil([&] { return AllLearnedThrough(p); }, 2000));
}

TEST_F(LogScenarioTest, WipedReplicaRecoversWithoutVotingUntilDone) {
  ClusterOptions options = Options(3);
  options.config.fetch_max_actions = 4;  // recovery takes many fetches
  options.config.max_batch_entries = 1;  // one position per append
  LogCluster& c = Make(3, options);
  const uint32_t leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  for (int i = 0; i < 60; ++i) c.Append(leader);
  ASSERT_TRUE(c.RunUntil([&] { return c.acks().size() == 60; }, 3000));
  const uint64_t committed = c.node(leader)->proposer().committed();
  ASSERT_TRUE(c.RunUntil([&] { return AllLearnedThrough(committed); }, 500));

  const uint32_t wiped = leader % 3 + 1;
  c.Wipe(wiped);
  c.Restart(wiped);
  ASSERT_EQ(c.status(wiped), Metadata::EMPTY);

  // Watch what the wiped replica is sent and what it answers while it is
  // not VOTING; keep the leader busy and make another node campaign.
  std::map<int, int> received_while_not_voting;  // body case -> count
  int votes_while_not_voting = 0;
  c.set_drop_filter([&](const LogMessage& m) {
    if (c.status(wiped) == Metadata::VOTING) return false;
    if (m.to() == wiped) ++received_while_not_voting[m.body_case()];
    if (m.from() == wiped &&
        (m.has_promise_response() || m.has_accept_response() ||
         (m.has_heartbeat_response() && m.heartbeat_response().ok()))) {
      ++votes_while_not_voting;
    }
    return false;
  });
  std::set<int> statuses;
  bool campaigned = false;
  int steps = 0;
  c.RunUntil(
      [&] {
        statuses.insert(c.status(wiped));
        if (++steps % 10 == 0 && c.ServingLeader().has_value()) {
          c.Append(*c.ServingLeader());
        }
        if (!campaigned && c.status(wiped) == Metadata::RECOVERING) {
          campaigned = true;
          const uint32_t other = 6 - leader - wiped;
          c.Campaign(other);  // its PromiseRequest reaches the wiped node
        }
        return c.status(wiped) == Metadata::VOTING;
      },
      5000);
  EXPECT_EQ(c.status(wiped), Metadata::VOTING);
  EXPECT_TRUE(statuses.count(Metadata::EMPTY));
  EXPECT_TRUE(statuses.count(Metadata::RECOVERING));
  EXPECT_TRUE(campaigned);
  EXPECT_EQ(votes_while_not_voting, 0);
  // The check was not vacuous: it was asked to vote while recovering.
  EXPECT_GT(received_while_not_voting[LogMessage::kHeartbeat], 0);
  EXPECT_GT(received_while_not_voting[LogMessage::kPromiseRequest] +
                received_while_not_voting[LogMessage::kAcceptRequest],
            0);
  EXPECT_GT(c.checker().inputs_while_not_voting(wiped), 0u);
  EXPECT_GE(c.node(wiped)->replica().learned_through(), committed);
  c.set_drop_filter(nullptr);
}

TEST_F(LogScenarioTest, MajorityOfWipedDisksRefusesToInitialise) {
  for (int replicas : {3, 5}) {
    SCOPED_TRACE(absl::StrCat(replicas, " replicas"));
    LogCluster& c = Make(replicas);
    const uint32_t leader = WaitForLeader();
    ASSERT_NE(leader, 0u);
    for (int i = 0; i < 5; ++i) ASSERT_NE(AppendAndWait(leader), 0u);
    const size_t acks_before = c.acks().size();

    // Wipe a majority; a minority (including the leader) keeps its data.
    std::vector<uint32_t> wiped;
    for (uint32_t id : c.ids()) {
      if (id != leader && wiped.size() < c.ids().size() / 2 + 1) {
        wiped.push_back(id);
      }
    }
    for (uint32_t id : wiped) c.Wipe(id);
    for (uint32_t id : wiped) c.Restart(id);

    for (int step = 0; step < 3000 && !c.failed(); ++step) {
      if (step % 50 == 0) {
        for (uint32_t id : c.ids()) c.Append(id);
      }
      c.Step();
      for (uint32_t id : wiped) {
        ASSERT_NE(c.status(id), Metadata::VOTING)
            << "wiped node " << id << " re-initialised at step " << step;
      }
    }
    EXPECT_EQ(c.acks().size(), acks_before) << "an append succeeded";
    EXPECT_FALSE(c.ServingLeader().has_value());
    for (uint32_t id : wiped) {
      EXPECT_THAT(c.node(id)->replica().status_detail(),
                  HasSubstr("refusing to start"))
          << "node " << id;
    }
    ASSERT_FALSE(c.failed()) << c.failure();
  }
}

TEST_F(LogScenarioTest, CorruptedRecordIsRefetchedAfterRestart) {
  LogCluster& c = Make(3);
  const uint32_t leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  for (int i = 0; i < 10; ++i) ASSERT_NE(AppendAndWait(leader), 0u);
  ASSERT_TRUE(c.RunUntil([&] { return AllLearnedThrough(10); }, 500));
  const uint32_t victim = leader % 3 + 1;
  c.Crash(victim, CrashPoint::kNow);
  ASSERT_TRUE(c.Corrupt(victim, 4).ok());
  EXPECT_EQ(c.storage(victim).Read(4).status().code(),
            absl::StatusCode::kDataLoss);
  c.Restart(victim);
  EXPECT_EQ(c.status(victim), Metadata::RECOVERING);
  EXPECT_THAT(c.node(victim)->replica().status_detail(),
              HasSubstr("checksum mismatch"));
  ASSERT_TRUE(c.RunUntil(
      [&] { return c.status(victim) == Metadata::VOTING; }, 2000));
  auto healed = c.storage(victim).Read(4);
  ASSERT_TRUE(healed.ok()) << healed.status();
  ASSERT_TRUE(healed->has_value());
  EXPECT_TRUE((*healed)->learned());
}

// Regression test for FINDINGS.md F5 (safety). Before the fix, a wiped
// replica's accept, given before it lost its disk, completed a quorum after
// it had recovered from peers that never had the value: the value was chosen
// (and acknowledged) while only a minority held it, and a later leader
// overwrote it (AGREEMENT violated at the value's position).
TEST_F(LogScenarioTest,
       WipedAcceptorsOldVoteCannotChooseAValueAfterRecovery) {
  ClusterOptions options = Options(5);
  options.config.sticky_leader = false;
  LogCluster& c = Make(5, options);
  ASSERT_NE(WaitForLeader(), 0u);
  const uint32_t leader = 1, wiped = 2, late = 3;
  if (c.ServingLeader() != leader) c.Campaign(leader);
  ASSERT_TRUE(c.RunUntil([&] { return c.ServingLeader() == leader; }, 2000));
  for (int i = 0; i < 3; ++i) ASSERT_NE(AppendAndWait(leader), 0u);
  ASSERT_TRUE(c.RunUntil([&] { return AllLearnedThrough(3); }, 500));

  enum { kOnlyWiped, kRecovering, kLateAccept, kOpen } phase = kOnlyWiped;
  c.set_drop_filter([&](const LogMessage& m) {
    switch (phase) {
      case kOnlyWiped:  // Only the leader and `wiped` accept the next value.
        return m.from() == leader && m.has_accept_request() && m.to() != wiped;
      case kRecovering:  // `wiped` recovers from the other three.
        return (m.from() == leader && m.has_accept_request()) ||
               (m.to() == leader && m.has_recover_request());
      case kLateAccept:  // `late` accepts; nobody else learns anything.
        return (m.from() == leader && m.has_accept_request() &&
                m.to() != late) ||
               (m.has_learned() && m.to() != late) || m.has_fetch_request();
      case kOpen:
        return false;
    }
    return false;
  });
  // 1. `wiped` accepts (and acknowledges) the value at p.
  const std::string value = c.Append(leader);
  uint64_t p = 0;
  ASSERT_TRUE(c.RunUntil(
      [&] {
        auto last = c.storage(wiped).LastPosition();
        p = last.ok() ? *last : 0;
        return p > 3;
      },
      200));
  // 2. It loses its disk, restarts and recovers from the other three.
  phase = kRecovering;
  c.Wipe(wiped);
  c.Restart(wiped);
  c.RunUntil([&] { return c.status(wiped) == Metadata::VOTING; }, 3000);
  // 3. The leader's retransmission finally reaches `late`.
  phase = kLateAccept;
  const bool acked =
      c.RunUntil([&] { return AckOf(value).has_value(); }, 1000);
  // 4. The leader and `late` (a minority) fail; the rest carry on.
  c.Crash(leader, CrashPoint::kNow);
  c.Crash(late, CrashPoint::kNow);
  phase = kOpen;
  if (c.RunUntil([&] { return c.ServingLeader().has_value(); }, 3000)) {
    for (int i = 0; i < 3; ++i) c.Append(*c.ServingLeader());
  }
  c.RunUntil([&] { return c.failed(); }, 1000);
  c.Restart(leader);
  c.Restart(late);
  c.RunUntil([&] { return c.failed() || AllLearnedThrough(p); }, 5000);
  ASSERT_FALSE(c.failed()) << c.failure();
  ASSERT_TRUE(AllLearnedThrough(p));
  if (acked) {
    auto stored = c.storage(wiped).Read(p);
    ASSERT_TRUE(stored.ok() && stored->has_value());
    ASSERT_EQ((*stored)->value().entries_size(), 1);
    EXPECT_EQ((*stored)->value().entries(0), value)
        << "acknowledged value lost at position " << p;
  }
}

// Positive control for the lease check: clocks that drift far more than the
// configuration allows let a deposed leader keep serving while its successor
// already serves, and the checker must say so.
TEST_F(LogScenarioTest, LeaseCheckCatchesClocksDriftingBeyondTheBound) {
  ClusterOptions options = Options(3);
  options.config.max_clock_drift = 0.0;
  options.config.sticky_leader = false;
  options.config.lease_duration = absl::Milliseconds(1000);
  options.config.election_timeout = absl::Milliseconds(1500);
  options.clock_rates = {1.0, 10.0, 10.0};  // node 1 runs 10x slower
  LogCluster& c = Make(3, options);
  ASSERT_NE(WaitForLeader(), 0u);
  if (c.ServingLeader() != 1u) c.Campaign(1);
  ASSERT_TRUE(c.RunUntil([&] { return c.ServingLeader() == 1u; }, 3000));
  // Isolate node 1; nodes 2 and 3 elect a leader while node 1's lease, on
  // its slow clock, still runs.
  for (uint32_t other : {2u, 3u}) c.network().CutBoth(1, other);
  c.RunUntil([&] { return c.failed(); }, 3000);
  ASSERT_TRUE(c.failed());
  EXPECT_THAT(c.failure(), HasSubstr("LEASE violated"));
  cluster_.reset();  // the failure was the point
}

}  // namespace
}  // namespace cairn::sim
