#include "log/replica.h"

#include "gtest/gtest.h"
#include "log/memory_storage.h"

namespace cairn::log {
namespace {

const absl::Time kNow = absl::UnixEpoch() + absl::Seconds(100);

Config ThreeReplicas() {
  Config c;
  c.node_id = 1;
  c.replicas = {1, 2, 3};
  c.sticky_leader = false;
  return c;
}

// A replica whose storage says it is a voting member.
class ReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Metadata md;
    md.set_status(Metadata::VOTING);
    md.set_begin(1);
    WriteBatch b;
    b.metadata = md;
    ASSERT_TRUE(storage_.Write(b, true).ok());
    Effects e;
    ASSERT_TRUE(replica_.Start(kNow, &e).ok());
    ASSERT_TRUE(replica_.voting());
  }

  Effects Deliver(const LogMessage& m) {
    Effects e;
    replica_.Handle(m, kNow, &e);
    if (!e.write.empty()) {
      EXPECT_TRUE(storage_.Write(e.write, e.sync).ok());
    }
    replica_.CheckInvariants();
    return e;
  }

  static LogMessage Promise(uint64_t round, uint32_t node, uint64_t from) {
    LogMessage m;
    m.set_from(node);
    m.set_to(1);
    *m.mutable_promise_request()->mutable_ballot() = MakeBallot(round, node);
    m.mutable_promise_request()->set_from_position(from);
    return m;
  }

  static LogMessage Accept(uint64_t round, uint32_t node, uint64_t position,
                           const std::string& entry) {
    LogMessage m;
    m.set_from(node);
    m.set_to(1);
    auto* req = m.mutable_accept_request();
    *req->mutable_ballot() = MakeBallot(round, node);
    Action* a = req->add_actions();
    a->set_position(position);
    a->mutable_value()->set_kind(Value::APPEND);
    a->mutable_value()->add_entries(entry);
    return m;
  }

  static LogMessage Learned(uint64_t position, const std::string& entry) {
    LogMessage m;
    m.set_from(2);
    m.set_to(1);
    Action* a = m.mutable_learned()->add_actions();
    a->set_position(position);
    *a->mutable_ballot() = MakeBallot(1, 2);
    a->mutable_value()->set_kind(Value::APPEND);
    a->mutable_value()->add_entries(entry);
    a->set_learned(true);
    return m;
  }

  MemoryStorage storage_;
  Replica replica_{ThreeReplicas(), &storage_};
};

TEST_F(ReplicaTest, GrantsPromiseAndPersistsItBeforeReplying) {
  Effects e = Deliver(Promise(5, 2, 1));
  ASSERT_EQ(e.messages.size(), 1u);
  EXPECT_TRUE(e.messages[0].promise_response().ok());
  EXPECT_TRUE(e.sync);
  ASSERT_TRUE(e.write.metadata.has_value());
  EXPECT_EQ(e.write.metadata->promised().round(), 5u);
  auto md = storage_.ReadMetadata();
  ASSERT_TRUE(md.ok() && md->has_value());
  EXPECT_EQ((*md)->promised().round(), 5u);
}

TEST_F(ReplicaTest, RejectsPromiseWithLowerBallot) {
  Deliver(Promise(5, 2, 1));
  Effects e = Deliver(Promise(4, 3, 1));
  ASSERT_EQ(e.messages.size(), 1u);
  const auto& resp = e.messages[0].promise_response();
  EXPECT_FALSE(resp.ok());
  EXPECT_EQ(resp.ballot().round(), 5u);
  EXPECT_EQ(resp.ballot().node_id(), 2u);
  EXPECT_EQ(replica_.promised().round(), 5u);
}

TEST_F(ReplicaTest, SameRoundHigherNodeIdIsAHigherBallot) {
  Deliver(Promise(5, 2, 1));
  Effects e = Deliver(Promise(5, 3, 1));
  EXPECT_TRUE(e.messages[0].promise_response().ok());
  e = Deliver(Promise(5, 2, 1));
  EXPECT_FALSE(e.messages[0].promise_response().ok());
}

TEST_F(ReplicaTest, RejectsAcceptBelowPromise) {
  Deliver(Promise(5, 2, 1));
  Effects e = Deliver(Accept(4, 3, 1, "x"));
  ASSERT_EQ(e.messages.size(), 1u);
  EXPECT_FALSE(e.messages[0].accept_response().ok());
  EXPECT_EQ(e.messages[0].accept_response().ballot().round(), 5u);
  auto stored = storage_.Read(1);
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(stored->has_value());
}

TEST_F(ReplicaTest, AcceptIsDurableBeforeTheReply) {
  Effects e = Deliver(Accept(1, 2, 1, "x"));
  EXPECT_TRUE(e.messages[0].accept_response().ok());
  EXPECT_TRUE(e.sync);
  ASSERT_EQ(e.write.actions.size(), 1u);
  storage_.SimulateCrash();
  auto stored = storage_.Read(1);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->value().entries(0), "x");
  EXPECT_FALSE((*stored)->learned());
}

TEST_F(ReplicaTest, PromiseResponseCarriesAcceptedValues) {
  Deliver(Accept(1, 2, 1, "a"));
  Deliver(Accept(1, 2, 2, "b"));
  Effects e = Deliver(Promise(2, 3, 2));
  const auto& resp = e.messages[0].promise_response();
  ASSERT_TRUE(resp.ok());
  ASSERT_EQ(resp.actions_size(), 1);
  EXPECT_EQ(resp.actions(0).position(), 2u);
  EXPECT_EQ(resp.actions(0).value().entries(0), "b");
  EXPECT_EQ(resp.end_position(), 2u);
}

TEST_F(ReplicaTest, PromiseResponsesArePaged) {
  Config c = ThreeReplicas();
  for (uint64_t p = 1; p <= 2500; ++p) Deliver(Accept(1, 2, p, "v"));
  Effects e = Deliver(Promise(2, 3, 1));
  const auto& resp = e.messages[0].promise_response();
  EXPECT_TRUE(resp.more());
  EXPECT_EQ(resp.actions_size(), static_cast<int>(c.promise_page_actions));
  EXPECT_EQ(resp.end_position(), 2500u);
}

TEST_F(ReplicaTest, LearnedBeforeAcceptKeepsTheLearnedValue) {
  // The learned message overtakes the accept request on the network.
  Deliver(Learned(1, "chosen"));
  EXPECT_EQ(replica_.learned_through(), 1u);
  Effects e = Deliver(Accept(1, 2, 1, "chosen"));
  EXPECT_TRUE(e.messages[0].accept_response().ok());
  EXPECT_TRUE(e.write.actions.empty()) << "a learned position is not rewritten";
  auto stored = storage_.Read(1);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_TRUE((*stored)->learned());
  EXPECT_EQ((*stored)->value().entries(0), "chosen");
}

TEST_F(ReplicaTest, LearnedOutOfOrderAdvancesThePrefixWhenTheGapCloses) {
  Deliver(Learned(2, "b"));
  Deliver(Learned(3, "c"));
  EXPECT_EQ(replica_.learned_through(), 0u);
  Deliver(Learned(1, "a"));
  EXPECT_EQ(replica_.learned_through(), 3u);
}

TEST_F(ReplicaTest, TruncateEntryMovesBeginAndDeletes) {
  for (uint64_t p = 1; p <= 5; ++p) Deliver(Learned(p, "x"));
  LogMessage m;
  m.set_from(2);
  m.set_to(1);
  Action* a = m.mutable_learned()->add_actions();
  a->set_position(6);
  a->mutable_value()->set_kind(Value::TRUNCATE);
  a->mutable_value()->set_truncate_to(4);
  a->set_learned(true);
  Deliver(m);
  EXPECT_EQ(replica_.begin(), 4u);
  EXPECT_EQ(replica_.learned_through(), 6u);
  auto gone = storage_.Read(3);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  auto kept = storage_.Read(4);
  ASSERT_TRUE(kept.ok());
  EXPECT_TRUE(kept->has_value());
}

TEST_F(ReplicaTest, HeartbeatFromStaleBallotIsRefused) {
  Deliver(Promise(5, 2, 1));
  LogMessage m;
  m.set_from(3);
  m.set_to(1);
  *m.mutable_heartbeat()->mutable_ballot() = MakeBallot(4, 3);
  Effects e = Deliver(m);
  EXPECT_FALSE(e.messages[0].heartbeat_response().ok());
  EXPECT_EQ(e.messages[0].heartbeat_response().ballot().round(), 5u);
}

TEST_F(ReplicaTest, HeartbeatShowingChosenPositionsStartsCatchUp) {
  LogMessage m;
  m.set_from(2);
  m.set_to(1);
  *m.mutable_heartbeat()->mutable_ballot() = MakeBallot(1, 2);
  m.mutable_heartbeat()->set_committed(10);
  Effects e = Deliver(m);
  bool fetched = false;
  for (const auto& out : e.messages) {
    if (out.has_fetch_request()) {
      fetched = true;
      EXPECT_EQ(out.to(), 2u);
      EXPECT_EQ(out.fetch_request().from_position(), 1u);
      EXPECT_EQ(out.fetch_request().to_position(), 10u);
    }
  }
  EXPECT_TRUE(fetched);
}

TEST(ReplicaStartTest, EmptyReplicaDoesNotVote) {
  MemoryStorage storage;
  Replica replica(ThreeReplicas(), &storage);
  Effects e;
  ASSERT_TRUE(replica.Start(kNow, &e).ok());
  EXPECT_EQ(replica.status(), Metadata::EMPTY);
  LogMessage m;
  m.set_from(2);
  m.set_to(1);
  *m.mutable_promise_request()->mutable_ballot() = MakeBallot(1, 2);
  Effects out;
  replica.Handle(m, kNow, &out);
  EXPECT_TRUE(out.messages.empty());
}

TEST(ReplicaStartTest, FlippedByteInStoredRecordStopsVoting) {
  MemoryStorage storage;
  Metadata md;
  md.set_status(Metadata::VOTING);
  md.set_begin(1);
  WriteBatch b;
  b.metadata = md;
  for (uint64_t p = 1; p <= 3; ++p) {
    Action a;
    a.set_position(p);
    a.mutable_value()->set_kind(Value::NOOP);
    a.set_learned(true);
    b.actions.push_back(a);
  }
  ASSERT_TRUE(storage.Write(b, true).ok());
  ASSERT_TRUE(storage.CorruptAction(2).ok());
  Replica replica(ThreeReplicas(), &storage);
  Effects e;
  ASSERT_TRUE(replica.Start(kNow, &e).ok());
  EXPECT_EQ(replica.status(), Metadata::RECOVERING);
  EXPECT_EQ(replica.learned_through(), 1u);
  EXPECT_NE(replica.status_detail().find("checksum"), std::string::npos);
}

}  // namespace
}  // namespace cairn::log

namespace cairn::log {
namespace {

TEST(ReplicaPagingTest, PromisePagesAreBoundedByBytes) {
  Config config = ThreeReplicas();
  config.max_message_bytes = 1000;
  MemoryStorage storage;
  Metadata md;
  md.set_status(Metadata::VOTING);
  md.set_begin(1);
  WriteBatch b;
  b.metadata = md;
  for (uint64_t p = 1; p <= 10; ++p) {
    Action a;
    a.set_position(p);
    a.mutable_value()->set_kind(Value::APPEND);
    a.mutable_value()->add_entries(std::string(300, 'x'));
    b.actions.push_back(a);
  }
  ASSERT_TRUE(storage.Write(b, true).ok());
  Replica replica(config, &storage);
  Effects e;
  ASSERT_TRUE(replica.Start(kNow, &e).ok());
  LogMessage m;
  m.set_from(2);
  m.set_to(1);
  *m.mutable_promise_request()->mutable_ballot() = MakeBallot(1, 2);
  m.mutable_promise_request()->set_from_position(1);
  Effects out;
  replica.Handle(m, kNow, &out);
  ASSERT_EQ(out.messages.size(), 1u);
  const auto& resp = out.messages[0].promise_response();
  EXPECT_TRUE(resp.ok());
  EXPECT_TRUE(resp.more());
  EXPECT_GE(resp.actions_size(), 1);
  EXPECT_LE(resp.actions_size(), 3);
  EXPECT_EQ(resp.end_position(), 10u);
}

}  // namespace
}  // namespace cairn::log
