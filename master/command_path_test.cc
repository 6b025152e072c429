#include "master/command_path.h"

#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cairn/v1/master.pb.h"
#include "gtest/gtest.h"
#include "master/allocator.h"
#include "master/resources.h"
#include "master/state.h"

namespace cairn::master {
namespace {

// An in-process log under the test's control: appends wait until Choose()
// or Fail(); chosen entries accumulate for the test's fold.
class FakeLog : public EventLog {
 public:
  void Append(std::string entry, AppendDone done) override {
    queued_.push_back({std::move(entry), std::move(done)});
  }

  // Chooses the oldest `n` queued appends, all at one new position (group
  // commit), completing them in order.
  void Choose(size_t n) {
    ++position_;
    for (uint32_t index = 0; index < n && !queued_.empty(); ++index) {
      Queued q = std::move(queued_.front());
      queued_.pop_front();
      chosen_.push_back({position_, index, q.entry});
      q.done(AppendedAt{position_, index});
    }
  }
  void ChooseAll() { Choose(queued_.size()); }

  // Fails the oldest queued append.
  void FailOne(const absl::Status& status) {
    Queued q = std::move(queued_.front());
    queued_.pop_front();
    q.done(status);
  }

  struct Chosen {
    uint64_t position;
    uint32_t index;
    std::string entry;
  };
  const std::vector<Chosen>& chosen() const { return chosen_; }
  size_t queued() const { return queued_.size(); }
  uint64_t position() const { return position_; }

 private:
  struct Queued {
    std::string entry;
    AppendDone done;
  };
  std::deque<Queued> queued_;
  std::vector<Chosen> chosen_;
  uint64_t position_ = 0;
};

std::vector<v1::Resource> Res(const std::string& text) {
  absl::StatusOr<Resources> r = Resources::Parse(text);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->ToProto() : std::vector<v1::Resource>{};
}

v1::Event Weights(const std::string& role, double weight) {
  v1::Event event;
  v1::WeightInfo* info = event.mutable_weights_updated()->add_weights();
  info->set_role(role);
  info->set_weight(weight);
  return event;
}

CommandPath::Decide DecideWeights(const std::string& role, double weight) {
  return [role, weight](
             const MasterState&) -> absl::StatusOr<std::vector<v1::Event>> {
    return std::vector<v1::Event>{Weights(role, weight)};
  };
}

class CommandPathTest : public ::testing::Test {
 protected:
  CommandPathTest()
      : path_(
            &log_, [this] { return now_; },
            [this](absl::Status why) { failures_.push_back(why); }) {}

  // What the master's fold does: applies newly chosen entries in log order
  // and reports the position reached.
  void Fold() {
    for (; folded_ < log_.chosen().size(); ++folded_) {
      const FakeLog::Chosen& c = log_.chosen()[folded_];
      v1::Event event;
      ASSERT_TRUE(event.ParseFromString(c.entry));
      event.set_position(c.position);
      event.set_index(c.index);
      ASSERT_TRUE(committed_.Apply(event).ok());
      ASSERT_TRUE(committed_.CheckInvariants().ok());
    }
    path_.OnApplied(log_.position(), committed_);
  }

  // Applies `event` as if an earlier leader had committed it.
  void Commit(v1::Event event) {
    event.set_position(++preexisting_);
    ASSERT_TRUE(committed_.Apply(event).ok());
  }

  CommandPath::Reply Record(std::optional<absl::Status>* out) {
    return [out](absl::Status s) {
      ASSERT_FALSE(out->has_value()) << "answered twice";
      *out = s;
    };
  }

  FakeLog log_;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
  std::vector<absl::Status> failures_;
  CommandPath path_;
  MasterState committed_;
  size_t folded_ = 0;
  uint64_t preexisting_ = 0;
};

TEST_F(CommandPathTest, AnswersOnlyAfterCommitAndApply) {
  path_.BecomeLeader(committed_, absl::InfinitePast());
  std::optional<absl::Status> reply;
  CommandContext context{"ops", "req-1", std::nullopt};
  ASSERT_TRUE(
      path_.Submit(context, DecideWeights("a", 2), Record(&reply)).ok());
  EXPECT_FALSE(reply.has_value());
  EXPECT_EQ(log_.queued(), 1u);

  log_.ChooseAll();  // chosen, not yet applied by the owner
  EXPECT_FALSE(reply.has_value());

  Fold();
  ASSERT_TRUE(reply.has_value());
  EXPECT_TRUE(reply->ok()) << *reply;
  EXPECT_EQ(committed_.weights().at("a"), 2);
  EXPECT_EQ(path_.pending_requests(), 0u);

  v1::Event event;
  ASSERT_TRUE(event.ParseFromString(log_.chosen()[0].entry));
  EXPECT_EQ(event.principal(), "ops");
  EXPECT_EQ(event.request_id(), "req-1");
  EXPECT_EQ(ToTime(event.time()), now_);
  EXPECT_EQ(event.position(), 0u);  // the log's place fills it on replay
}

TEST_F(CommandPathTest, RejectedDecisionAnswersAtOnceAndAppendsNothing) {
  path_.BecomeLeader(committed_, absl::InfinitePast());
  std::optional<absl::Status> reply;
  absl::Status submitted = path_.Submit(
      {},
      [](const MasterState&) -> absl::StatusOr<std::vector<v1::Event>> {
        return absl::InvalidArgumentError("weight must be > 0");
      },
      Record(&reply));
  EXPECT_EQ(submitted.code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log_.queued(), 0u);
}

TEST_F(CommandPathTest, EventTheViewRejectsIsInternalAndNotAppended) {
  path_.BecomeLeader(committed_, absl::InfinitePast());
  std::optional<absl::Status> reply;
  // A weight for an empty role name is malformed: Apply rejects it.
  EXPECT_EQ(path_.Submit({}, DecideWeights("", 1), Record(&reply)).code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(reply->code(), absl::StatusCode::kInternal);
  EXPECT_EQ(log_.queued(), 0u);
  EXPECT_TRUE(path_.view().weights().empty());
}

TEST_F(CommandPathTest, NotLeadingAnswersUnavailable) {
  std::optional<absl::Status> reply;
  EXPECT_EQ(path_.Submit({}, DecideWeights("a", 2), Record(&reply)).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(reply->code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(log_.queued(), 0u);
}

TEST_F(CommandPathTest, SpeculativeViewSeesEventsInFlight) {
  path_.BecomeLeader(committed_, absl::InfinitePast());
  std::optional<absl::Status> first;
  std::optional<absl::Status> second;
  ASSERT_TRUE(path_.Submit({}, DecideWeights("a", 2), Record(&first)).ok());
  bool saw_a = false;
  ASSERT_TRUE(path_
                  .Submit(
                      {},
                      [&saw_a](const MasterState& view)
                          -> absl::StatusOr<std::vector<v1::Event>> {
                        saw_a = view.weights().count("a") == 1;
                        return std::vector<v1::Event>{Weights("b", 3)};
                      },
                      Record(&second))
                  .ok());
  EXPECT_TRUE(saw_a);
  EXPECT_TRUE(committed_.weights().empty());
  EXPECT_EQ(path_.in_flight_events(), 2u);

  log_.Choose(1);
  Fold();
  EXPECT_TRUE(first.has_value() && first->ok());
  EXPECT_FALSE(second.has_value());
  log_.Choose(1);
  Fold();
  EXPECT_TRUE(second.has_value() && second->ok());
  EXPECT_EQ(path_.view(), committed_);
}

// The allocator runs against the view: a second cycle while the first
// cycle's OffersCreated is still being appended finds nothing left to offer.
TEST_F(CommandPathTest, AllocatorNeverOffersTheSameResourcesTwiceInFlight) {
  v1::Event agent;
  auto* info = agent.mutable_agent_registered()->mutable_info();
  info->mutable_id()->set_value("agent-1");
  info->set_hostname("agent-1.example");
  for (const auto& r : Res("cpus:4;mem:1024")) *info->add_resources() = r;
  Commit(agent);
  v1::Event framework;
  auto* fw = framework.mutable_framework_subscribed()->mutable_info();
  fw->mutable_id()->set_value("fw-1");
  fw->set_user("nobody");
  fw->set_name("fw-1");
  fw->add_roles("web");
  Commit(framework);
  // The fake log numbers positions from 1; start it after the commits.
  for (uint64_t i = 0; i < preexisting_; ++i) log_.Choose(0);
  folded_ = log_.chosen().size();
  path_.BecomeLeader(committed_, absl::InfinitePast());

  Allocator allocator;
  int cycle = 0;
  size_t offers_made = 0;
  auto allocate =
      [&](const MasterState& view) -> absl::StatusOr<std::vector<v1::Event>> {
    ++cycle;
    std::vector<Allocation> allocations = allocator.Allocate(view, now_);
    if (allocations.empty()) return std::vector<v1::Event>{};
    v1::Event event;
    event.mutable_offers_created()->set_allocation_cycle(cycle);
    for (size_t i = 0; i < allocations.size(); ++i) {
      *event.mutable_offers_created()->add_offers() =
          MakeOffer(view, allocations[i], absl::StrCat("o-", cycle, "-", i));
    }
    offers_made += allocations.size();
    return std::vector<v1::Event>{event};
  };
  std::optional<absl::Status> first;
  std::optional<absl::Status> second;
  ASSERT_TRUE(
      path_.Submit({"master", "", std::nullopt}, allocate, Record(&first))
          .ok());
  EXPECT_EQ(offers_made, 1u);
  ASSERT_TRUE(
      path_.Submit({"master", "", std::nullopt}, allocate, Record(&second))
          .ok());
  EXPECT_EQ(offers_made, 1u) << "the in-flight offer was offered again";
  // Nothing to append, but the decision read the in-flight offer: a
  // barrier, answered only once the first request is applied.
  EXPECT_FALSE(second.has_value());

  log_.ChooseAll();
  Fold();
  EXPECT_TRUE(first.has_value() && first->ok());
  ASSERT_TRUE(second.has_value());
  EXPECT_TRUE(second->ok());
  EXPECT_EQ(committed_.offer_count(), 1u);
  EXPECT_TRUE(committed_.CheckInvariants().ok());
}

TEST_F(CommandPathTest, EmptyDecisionWaitsForEarlierRequests) {
  path_.BecomeLeader(committed_, absl::InfinitePast());
  auto nothing = [](const MasterState&)
      -> absl::StatusOr<std::vector<v1::Event>> {
    return std::vector<v1::Event>{};
  };
  std::optional<absl::Status> idle;
  ASSERT_TRUE(path_.Submit({}, nothing, Record(&idle)).ok());
  ASSERT_TRUE(idle.has_value()) << "nothing in flight: answered at once";
  EXPECT_TRUE(idle->ok());

  std::optional<absl::Status> write;
  std::optional<absl::Status> barrier;
  std::optional<absl::Status> later_write;
  ASSERT_TRUE(path_.Submit({}, DecideWeights("a", 2), Record(&write)).ok());
  ASSERT_TRUE(path_.Submit({}, nothing, Record(&barrier)).ok());
  ASSERT_TRUE(
      path_.Submit({}, DecideWeights("b", 3), Record(&later_write)).ok());
  EXPECT_FALSE(barrier.has_value());
  log_.Choose(1);  // only the first write
  Fold();
  EXPECT_TRUE(write.has_value() && write->ok());
  ASSERT_TRUE(barrier.has_value()) << "answered once the write before it is";
  EXPECT_TRUE(barrier->ok());
  EXPECT_FALSE(later_write.has_value());

  // A barrier still waiting when leadership ends fails like a write.
  std::optional<absl::Status> orphan;
  ASSERT_TRUE(path_.Submit({}, nothing, Record(&orphan)).ok());
  path_.StepDown(absl::UnavailableError("stepping down"));
  ASSERT_TRUE(orphan.has_value());
  EXPECT_EQ(orphan->code(), absl::StatusCode::kUnavailable);
}

TEST_F(CommandPathTest, AppendFailureFailsEveryPendingRequestAndStepsDown) {
  path_.BecomeLeader(committed_, absl::InfinitePast());
  std::optional<absl::Status> first;
  std::optional<absl::Status> second;
  ASSERT_TRUE(path_.Submit({}, DecideWeights("a", 2), Record(&first)).ok());
  ASSERT_TRUE(path_.Submit({}, DecideWeights("b", 3), Record(&second)).ok());
  log_.FailOne(absl::UnavailableError("leadership lost"));
  EXPECT_EQ(first->code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(second->code(), absl::StatusCode::kUnavailable);
  ASSERT_EQ(failures_.size(), 1u);
  EXPECT_FALSE(path_.leading());

  // The second append completing late belongs to the past term.
  log_.ChooseAll();
  EXPECT_EQ(failures_.size(), 1u);

  std::optional<absl::Status> third;
  EXPECT_EQ(path_.Submit({}, DecideWeights("c", 1), Record(&third)).code(),
            absl::StatusCode::kUnavailable);

  // Leading again from a state rebuilt from the log.
  Fold();
  path_.BecomeLeader(committed_, absl::InfinitePast());
  EXPECT_TRUE(path_.leading());
  EXPECT_EQ(path_.view(), committed_);
}

TEST_F(CommandPathTest, StepDownAnswersPendingAndIgnoresLateCompletions) {
  path_.BecomeLeader(committed_, absl::InfinitePast());
  std::optional<absl::Status> reply;
  ASSERT_TRUE(path_.Submit({}, DecideWeights("a", 2), Record(&reply)).ok());
  path_.StepDown(absl::UnavailableError("lost leadership"));
  EXPECT_EQ(reply->code(), absl::StatusCode::kUnavailable);
  log_.ChooseAll();  // Record() asserts it is not answered twice
  Fold();
  EXPECT_TRUE(failures_.empty());
}

TEST_F(CommandPathTest, EventTimesNeverGoBackwardsAcrossLeaders) {
  const absl::Time floor = now_ + absl::Seconds(30);  // a previous leader's
  path_.BecomeLeader(committed_, floor);
  std::optional<absl::Status> reply;
  ASSERT_TRUE(path_.Submit({}, DecideWeights("a", 2), Record(&reply)).ok());
  now_ += absl::Seconds(60);
  std::optional<absl::Status> later;
  ASSERT_TRUE(path_.Submit({}, DecideWeights("b", 2), Record(&later)).ok());
  log_.ChooseAll();
  v1::Event first;
  v1::Event second;
  ASSERT_TRUE(first.ParseFromString(log_.chosen()[0].entry));
  ASSERT_TRUE(second.ParseFromString(log_.chosen()[1].entry));
  EXPECT_EQ(ToTime(first.time()), floor);
  EXPECT_EQ(ToTime(second.time()), now_);
}

TEST_F(CommandPathTest, RequestOfSeveralEventsIsAllOrNothingInTheView) {
  path_.BecomeLeader(committed_, absl::InfinitePast());
  std::optional<absl::Status> reply;
  EXPECT_EQ(
      path_
          .Submit(
              {},
              [](const MasterState&) -> absl::StatusOr<std::vector<v1::Event>> {
                return std::vector<v1::Event>{Weights("a", 2), Weights("", 1)};
              },
              Record(&reply))
          .code(),
      absl::StatusCode::kInternal);
  EXPECT_TRUE(path_.view().weights().empty());
  EXPECT_EQ(log_.queued(), 0u);

  std::optional<absl::Status> both;
  ASSERT_TRUE(
      path_
          .Submit(
              {},
              [](const MasterState&) -> absl::StatusOr<std::vector<v1::Event>> {
                return std::vector<v1::Event>{Weights("a", 2), Weights("b", 3)};
              },
              Record(&both))
          .ok());
  log_.Choose(1);
  Fold();
  EXPECT_FALSE(both.has_value()) << "answered before all its events applied";
  log_.Choose(1);
  Fold();
  EXPECT_TRUE(both.has_value() && both->ok());
  EXPECT_EQ(committed_.weights().size(), 2u);
}

}  // namespace
}  // namespace cairn::master
