// Scenario tests of the log protocol through whole Nodes on an in-memory,
// hand-driven network (internal/test_cluster.h). Randomized fault schedules
// live in sim/.

#include "log/node.h"

#include <set>

#include "gtest/gtest.h"
#include "log/internal/test_cluster.h"

namespace cairn::log {
namespace {

using testing::FastConfig;
using testing::TestCluster;

std::string EntryAt(TestCluster& c, uint32_t id, uint64_t position,
                    uint32_t index = 0) {
  for (const Action& a : c.Learned(id)) {
    if (a.position() == position) {
      if (a.value().kind() == Value::NOOP) return "<noop>";
      if (static_cast<int>(index) >= a.value().entries_size()) return "<none>";
      return a.value().entries(index);
    }
  }
  return "<missing>";
}

TEST(NodeTest, NewClusterInitialisesItselfAndElectsALeader) {
  TestCluster c(3);
  const uint32_t leader = c.WaitForLeader();
  ASSERT_NE(leader, 0u);
  for (uint32_t id = 1; id <= 3; ++id) {
    EXPECT_EQ(c.node(id).replica().status(), Metadata::VOTING) << id;
  }
  ASSERT_FALSE(c.leadership.empty());
  EXPECT_EQ(c.leadership.back().first, leader);
  EXPECT_TRUE(c.leadership.back().second.became_leader);
}

TEST(NodeTest, SingleReplicaLogAppends) {
  TestCluster c(1);
  ASSERT_EQ(c.WaitForLeader(), 1u);
  const uint64_t id = c.Append(1, "solo");
  c.DeliverAll();
  ASSERT_TRUE(c.results.count(id));
  EXPECT_TRUE(c.results[id].status.ok());
  EXPECT_EQ(EntryAt(c, 1, c.results[id].position), "solo");
}

TEST(NodeTest, AppendIsAcknowledgedOnlyOnceChosenAndReachesEveryReplica) {
  TestCluster c(3);
  const uint32_t leader = c.WaitForLeader();
  std::vector<uint64_t> ids;
  for (int i = 0; i < 20; ++i) {
    ids.push_back(c.Append(leader, "e" + std::to_string(i)));
  }
  EXPECT_TRUE(c.results.empty()) << "nothing is chosen before replies arrive";
  c.Advance(absl::Milliseconds(100));
  uint64_t last_position = 0;
  for (int i = 0; i < 20; ++i) {
    const AppendResult& r = c.results.at(ids[i]);
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_GE(r.position, last_position);
    last_position = r.position;
    for (uint32_t id = 1; id <= 3; ++id) {
      EXPECT_EQ(EntryAt(c, id, r.position, r.index), "e" + std::to_string(i));
    }
  }
}

TEST(NodeTest, AppendsQueuedBehindAFullPipelineShareOnePosition) {
  Config config = FastConfig();
  config.max_in_flight = 1;
  TestCluster c(3, config);
  const uint32_t leader = c.WaitForLeader();
  std::vector<uint64_t> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(c.Append(leader, "b"));
  c.DeliverAll();
  std::set<uint64_t> positions;
  for (uint64_t id : ids) {
    ASSERT_TRUE(c.results.at(id).status.ok());
    positions.insert(c.results.at(id).position);
  }
  // The first append goes out alone; the other 99 are one group commit.
  EXPECT_EQ(positions.size(), 2u);
}

TEST(NodeTest, PipelinesManyPositionsInFlight) {
  Config config = FastConfig();
  config.max_in_flight = 8;
  config.pipeline_min_entries = 1;
  TestCluster c(3, config);
  const uint32_t leader = c.WaitForLeader();
  for (int i = 0; i < 8; ++i) c.Append(leader, "p");
  EXPECT_EQ(c.node(leader).proposer().in_flight(), 8u);
  c.DeliverAll();
  EXPECT_EQ(c.node(leader).proposer().in_flight(), 0u);
}

TEST(NodeTest, AdaptivePipelineOpensAPositionOnlyForAFullBatch) {
  Config config = FastConfig();
  config.max_in_flight = 8;
  config.pipeline_min_entries = 4;
  TestCluster c(3, config);
  const uint32_t leader = c.WaitForLeader();
  c.Append(leader, "alone");  // nothing in flight: goes out at once
  EXPECT_EQ(c.node(leader).proposer().in_flight(), 1u);
  for (int i = 0; i < 3; ++i) c.Append(leader, "wait");
  EXPECT_EQ(c.node(leader).proposer().in_flight(), 1u);
  EXPECT_EQ(c.node(leader).proposer().queued(), 3u);
  c.Append(leader, "fourth");  // a full batch: pipelined behind the first
  EXPECT_EQ(c.node(leader).proposer().in_flight(), 2u);
  EXPECT_EQ(c.node(leader).proposer().queued(), 0u);
  c.DeliverAll();
  EXPECT_EQ(c.node(leader).proposer().in_flight(), 0u);
}

TEST(NodeTest, AppendsBeyondTheQueueLimitAreRefusedAtOnce) {
  Config config = FastConfig();
  config.max_in_flight = 1;
  config.max_queued_entries = 2;
  TestCluster c(3, config);
  const uint32_t leader = c.WaitForLeader();
  const uint64_t first = c.Append(leader, "in flight");
  const uint64_t second = c.Append(leader, "queued");
  const uint64_t third = c.Append(leader, "queued too");
  const uint64_t refused = c.Append(leader, "one too many");
  ASSERT_TRUE(c.results.count(refused));
  EXPECT_EQ(c.results.at(refused).status.code(),
            absl::StatusCode::kResourceExhausted);
  c.DeliverAll();
  for (uint64_t id : {first, second, third}) {
    ASSERT_TRUE(c.results.at(id).status.ok()) << c.results.at(id).status;
  }
  // Once the queue drains, appends are taken again.
  const uint64_t later = c.Append(leader, "later");
  c.DeliverAll();
  EXPECT_TRUE(c.results.at(later).status.ok());
}

TEST(NodeTest, DemotedProposerCannotAppendWithoutReelection) {
  Config config = FastConfig();
  config.sticky_leader = false;
  TestCluster c(3, config);
  const uint32_t old_leader = c.WaitForLeader();
  const Ballot old_ballot = c.node(old_leader).proposer().ballot();
  const uint32_t rival = old_leader == 1 ? 2 : 1;
  {
    Effects e;
    c.node(rival).TEST_Campaign(c.now, &e);
    c.Apply(rival, std::move(e));
  }
  c.DeliverAll();
  EXPECT_EQ(c.node(old_leader).proposer().role(), Proposer::Role::kFollower);
  EXPECT_FALSE(c.node(old_leader).IsServingLeader(c.now));
  // The old leader's appends are refused, and nothing is proposed.
  const uint64_t id = c.Append(old_leader, "late");
  EXPECT_EQ(c.results.at(id).status.code(), absl::StatusCode::kUnavailable);
  for (const LogMessage& m : c.network) {
    EXPECT_FALSE(m.from() == old_leader && m.has_accept_request());
  }
  // Leading again takes a new election with a higher ballot.
  {
    Effects e;
    c.node(old_leader).TEST_Campaign(c.now, &e);
    c.Apply(old_leader, std::move(e));
  }
  c.DeliverAll();
  EXPECT_GT(c.node(old_leader).proposer().ballot(), old_ballot);
  EXPECT_GT(c.node(old_leader).proposer().ballot(),
            c.node(rival).proposer().ballot());
}

TEST(NodeTest, RejectedAcceptDemotesTheLeader) {
  Config config = FastConfig();
  config.sticky_leader = false;
  TestCluster c(3, config);
  const uint32_t leader = c.WaitForLeader();
  const uint32_t other = leader % 3 + 1;
  // Another replica promises a higher ballot behind the leader's back.
  LogMessage promise;
  promise.set_from(99);
  promise.set_to(other);
  *promise.mutable_promise_request()->mutable_ballot() =
      MakeBallot(c.node(leader).proposer().ballot().round() + 10, 3);
  c.network.push_back(promise);
  c.drop = [](const LogMessage& m) { return m.to() == 99; };
  c.DeliverAll();
  c.Append(leader, "x");
  c.DeliverAll();
  EXPECT_EQ(c.node(leader).proposer().role(), Proposer::Role::kFollower);
}

TEST(NodeTest, NewLeaderRecoversAValueWhoseLearnedMessagesWereAllDropped) {
  TestCluster c(3);
  const uint32_t leader = c.WaitForLeader();
  // Nobody but the leader hears what was chosen.
  c.drop = [leader](const LogMessage& m) {
    return m.from() == leader && m.to() != leader &&
           (m.has_learned() || m.has_heartbeat());
  };
  const uint64_t id = c.Append(leader, "precious");
  c.DeliverAll();
  ASSERT_TRUE(c.results.at(id).status.ok());
  const uint64_t position = c.results.at(id).position;
  for (uint32_t other = 1; other <= 3; ++other) {
    if (other != leader) {
      EXPECT_LT(c.node(other).replica().learned_through(), position);
    }
  }
  c.Crash(leader);
  c.drop = nullptr;
  const uint32_t next = c.WaitForLeader();
  ASSERT_NE(next, 0u);
  ASSERT_NE(next, leader);
  EXPECT_EQ(EntryAt(c, next, position), "precious");
}

TEST(NodeTest, HolesAreFilledWithNoopsAndLaterValuesAdopted) {
  TestCluster c(5);
  const uint32_t leader = c.WaitForLeader();
  ASSERT_NE(leader, 0u);
  const uint64_t first = c.node(leader).proposer().committed() + 1;
  // Position `first` reaches only the leader; `first + 1` reaches a quorum
  // but nobody learns it.
  c.drop = [leader, first](const LogMessage& m) {
    if (m.from() != leader || m.to() == leader) return false;
    if (m.has_learned() || m.has_heartbeat()) return true;
    if (!m.has_accept_request()) return false;
    for (const Action& a : m.accept_request().actions()) {
      if (a.position() == first) return true;
    }
    return false;
  };
  c.Append(leader, "lost");
  c.Append(leader, "kept");
  c.DeliverAll();
  c.Crash(leader);
  c.drop = nullptr;
  const uint32_t next = c.WaitForLeader();
  ASSERT_NE(next, 0u);
  EXPECT_EQ(EntryAt(c, next, first), "<noop>");
  EXPECT_EQ(EntryAt(c, next, first + 1), "kept");
}

TEST(NodeTest, NewLeaderServesOnlyAfterTheOldLeaseHasExpired) {
  TestCluster c(3);
  const uint32_t old_leader = c.WaitForLeader();
  // Cut the leader off; record when it stops serving and when the next
  // leader starts.
  c.drop = [old_leader](const LogMessage& m) {
    return (m.from() == old_leader) != (m.to() == old_leader);
  };
  absl::Time old_stopped = absl::InfiniteFuture();
  absl::Time new_won = absl::InfiniteFuture();
  absl::Time new_serving = absl::InfiniteFuture();
  uint32_t next = 0;
  for (int step = 0; step < 2000 && next == 0; ++step) {
    c.Advance(absl::Milliseconds(1), absl::Milliseconds(1));
    if (old_stopped == absl::InfiniteFuture() &&
        !c.node(old_leader).IsServingLeader(c.now)) {
      old_stopped = c.now;
    }
    for (uint32_t id = 1; id <= 3; ++id) {
      if (id == old_leader) continue;
      if (new_won == absl::InfiniteFuture() &&
          c.node(id).proposer().role() == Proposer::Role::kLeader) {
        new_won = c.now;
      }
      if (c.node(id).IsServingLeader(c.now)) {
        new_serving = c.now;
        next = id;
      }
    }
  }
  ASSERT_NE(next, 0u);
  EXPECT_LT(old_stopped, new_serving);
  EXPECT_GE(new_serving - new_won, c.config().lease_duration);
}

TEST(NodeTest, LaggingReplicaCatchesUpInRangesWithoutDemotingTheLeader) {
  Config config = FastConfig();
  config.fetch_max_actions = 16;
  TestCluster c(3, config);
  const uint32_t leader = c.WaitForLeader();
  const uint32_t lagging = leader % 3 + 1;
  c.drop = [lagging](const LogMessage& m) { return m.to() == lagging; };
  for (int i = 0; i < 200; ++i) {
    c.Append(leader, "x");
    c.DeliverAll();
  }
  const Ballot ballot = c.node(leader).proposer().ballot();
  const uint64_t committed = c.node(leader).proposer().committed();
  EXPECT_LT(c.node(lagging).replica().learned_through(), committed);
  c.drop = nullptr;
  c.delivered.clear();
  c.Advance(absl::Milliseconds(500));
  EXPECT_GE(c.node(lagging).replica().learned_through(), committed);
  EXPECT_EQ(c.node(leader).proposer().ballot(), ballot);
  EXPECT_TRUE(c.node(leader).IsServingLeader(c.now));
  int fetches = 0;
  for (const LogMessage& m : c.delivered) {
    if (m.has_fetch_request() && m.from() == lagging) {
      ++fetches;
      EXPECT_LE(m.fetch_request().to_position() -
                    m.fetch_request().from_position() + 1,
                16u);
    }
  }
  EXPECT_GE(fetches, 200 / 16);
}

TEST(NodeTest, WipedReplicaRecoversAndDoesNotVoteUntilThen) {
  TestCluster c(3);
  const uint32_t leader = c.WaitForLeader();
  for (int i = 0; i < 50; ++i) c.Append(leader, "d" + std::to_string(i));
  c.Advance(absl::Milliseconds(100));
  const uint32_t victim = leader % 3 + 1;
  c.Crash(victim);
  c.storage(victim).Wipe();
  c.Restart(victim);
  EXPECT_EQ(c.node(victim).replica().status(), Metadata::EMPTY);
  c.delivered.clear();
  bool saw_recovering = false;
  c.observer = [&](const LogMessage&) {
    if (c.alive(victim) &&
        c.node(victim).replica().status() == Metadata::RECOVERING) {
      saw_recovering = true;
    }
  };
  for (int i = 0; i < 2000 && !c.node(victim).replica().voting(); ++i) {
    c.Advance(absl::Milliseconds(2), absl::Milliseconds(2));
    for (const LogMessage& m : c.delivered) {
      if (m.from() != victim) continue;
      EXPECT_FALSE(m.has_promise_response() || m.has_accept_response() ||
                   (m.has_heartbeat_response() &&
                    m.heartbeat_response().ok()))
          << "a replica voted before it recovered: " << m.ShortDebugString();
    }
    c.delivered.clear();
  }
  EXPECT_TRUE(saw_recovering);
  ASSERT_TRUE(c.node(victim).replica().voting());
  const uint64_t committed = c.node(leader).proposer().committed();
  c.Advance(absl::Milliseconds(100));
  EXPECT_GE(c.node(victim).replica().learned_through(), committed);
  for (uint64_t p = 1; p <= committed; ++p) {
    EXPECT_EQ(EntryAt(c, victim, p), EntryAt(c, leader, p)) << p;
  }
}

TEST(NodeTest, MajorityOfEmptyDisksIsRefusedNotReinitialised) {
  TestCluster c(3);
  const uint32_t leader = c.WaitForLeader();
  const uint64_t id = c.Append(leader, "must not vanish");
  c.Advance(absl::Milliseconds(100));
  ASSERT_TRUE(c.results.at(id).status.ok());
  const uint64_t position = c.results.at(id).position;
  uint32_t survivor = leader;
  for (uint32_t id = 1; id <= 3; ++id) {
    if (id == survivor) continue;
    c.Crash(id);
    c.storage(id).Wipe();
  }
  c.Crash(survivor);
  for (uint32_t id = 1; id <= 3; ++id) c.Restart(id);
  c.Advance(absl::Seconds(3));
  for (uint32_t id = 1; id <= 3; ++id) {
    EXPECT_FALSE(c.node(id).IsServingLeader(c.now));
    if (id == survivor) continue;
    EXPECT_EQ(c.node(id).replica().status(), Metadata::EMPTY);
    EXPECT_NE(c.node(id).replica().status_detail().find("refusing"),
              std::string::npos)
        << c.node(id).replica().status_detail();
  }
  // The survivor still holds the entry (accepted durably; its learned mark
  // may have been an unsynced write lost in the crash).
  auto kept = c.storage(survivor).Read(position);
  ASSERT_TRUE(kept.ok() && kept->has_value());
  EXPECT_EQ((*kept)->value().entries(0), "must not vanish");
}

TEST(NodeTest, WithoutAutoInitialiseEmptyClusterWaits) {
  Config config = FastConfig();
  config.auto_initialize = false;
  TestCluster c(3, config);
  c.Advance(absl::Seconds(2));
  for (uint32_t id = 1; id <= 3; ++id) {
    EXPECT_EQ(c.node(id).replica().status(), Metadata::EMPTY);
    EXPECT_NE(c.node(id).replica().status_detail().find("init"),
              std::string::npos);
  }
}

TEST(NodeTest, TruncationDeletesOnEveryReplica) {
  TestCluster c(3);
  const uint32_t leader = c.WaitForLeader();
  for (int i = 0; i < 40; ++i) {
    c.Append(leader, "t");
    c.DeliverAll();
  }
  const uint64_t to = c.node(leader).proposer().committed() - 5;
  Effects e;
  c.node(leader).Truncate(999, to, c.now, &e);
  c.Apply(leader, std::move(e));
  c.Advance(absl::Milliseconds(100));
  ASSERT_TRUE(c.results.at(999).status.ok()) << c.results.at(999).status;
  for (uint32_t id = 1; id <= 3; ++id) {
    EXPECT_EQ(c.node(id).replica().begin(), to);
    auto all = c.storage(id).ReadRange(0, to - 1, 1000);
    ASSERT_TRUE(all.ok());
    EXPECT_TRUE(all->empty()) << id;
  }
}

TEST(NodeTest, TruncatingPastTheChosenPrefixIsRefused) {
  TestCluster c(3);
  const uint32_t leader = c.WaitForLeader();
  Effects e;
  c.node(leader).Truncate(7, c.node(leader).proposer().committed() + 100,
                          c.now, &e);
  c.Apply(leader, std::move(e));
  EXPECT_EQ(c.results.at(7).status.code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(NodeTest, CorruptRecordStopsVotingAndIsRefetched) {
  TestCluster c(3);
  const uint32_t leader = c.WaitForLeader();
  for (int i = 0; i < 10; ++i) c.Append(leader, "c" + std::to_string(i));
  c.Advance(absl::Milliseconds(100));
  const uint32_t victim = leader % 3 + 1;
  const uint64_t position = c.node(leader).proposer().committed() - 3;
  const std::string expected = EntryAt(c, leader, position);
  c.Crash(victim);
  ASSERT_TRUE(c.storage(victim).CorruptAction(position).ok());
  c.Restart(victim);
  EXPECT_EQ(c.node(victim).replica().status(), Metadata::RECOVERING);
  c.Advance(absl::Milliseconds(300));
  EXPECT_TRUE(c.node(victim).replica().voting());
  EXPECT_EQ(EntryAt(c, victim, position), expected);
}

}  // namespace
}  // namespace cairn::log

namespace cairn::log {
namespace {

TEST(NodeTest, RecoveryFinishesPastAStaleAcceptedValueInAnIdleCluster) {
  testing::TestCluster c(3);
  const uint32_t leader = c.WaitForLeader();
  c.Append(leader, "x");
  c.Advance(absl::Milliseconds(50));
  const uint32_t stale = leader % 3 + 1;
  const uint32_t victim = 6 - leader - stale;  // the third replica
  ASSERT_NE(victim, leader);
  ASSERT_NE(victim, stale);
  // A value from an old ballot, accepted by one replica only, past the end.
  const uint64_t far = c.node(leader).proposer().next_position() + 3;
  LogMessage accept;
  accept.set_from(leader);
  accept.set_to(stale);
  *accept.mutable_accept_request()->mutable_ballot() =
      c.node(leader).proposer().ballot();
  Action* a = accept.mutable_accept_request()->add_actions();
  a->set_position(far);
  a->mutable_value()->set_kind(Value::APPEND);
  a->mutable_value()->add_entries("never chosen");
  c.drop = [](const LogMessage& m) { return m.has_accept_response(); };
  c.network.push_back(accept);
  c.DeliverAll();
  c.drop = nullptr;
  c.Crash(victim);
  c.storage(victim).Wipe();
  c.Restart(victim);
  c.Advance(absl::Seconds(2));
  EXPECT_TRUE(c.node(victim).replica().voting())
      << c.node(victim).replica().status_detail();
  EXPECT_GE(c.node(victim).replica().learned_through(), far);
}

}  // namespace
}  // namespace cairn::log
