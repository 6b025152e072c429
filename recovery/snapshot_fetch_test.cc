// Tests of the snapshot transfer between masters: the SnapshotTransfer wire
// format, the GET /master/snapshot answer, and the client against fake peer
// masters (real HTTP servers on 127.0.0.1, ephemeral ports).

#include "recovery/snapshot_fetch.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/history.pb.h"
#include "common/http_server.h"
#include "gtest/gtest.h"
#include "master/state.h"
#include "recovery/testing/random_events.h"

namespace cairn::recovery {
namespace {

using testing::RandomEvents;

constexpr absl::Duration kWait = absl::Seconds(5);

std::string FreshDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = absl::StrCat(::testing::TempDir(), "/snapshot-fetch-",
                                 info->test_suite_name(), "-", info->name());
  std::system(("rm -rf '" + dir + "'").c_str());
  return dir;
}

// A valid state with agents, frameworks, offers and tasks, folded through
// `events` random events; its snapshot and the position it reached.
struct Folded {
  uint64_t position = 0;
  v1::MasterSnapshot snapshot;
};

Folded FoldRandom(uint64_t seed, int events) {
  RandomEvents generator(seed, absl::FromUnixSeconds(1700000000));
  for (int i = 0; i < events; ++i) generator.Next();
  return {generator.position(), generator.state().ToSnapshot()};
}

std::string Canonical(const v1::MasterSnapshot& snapshot) {
  absl::StatusOr<master::MasterState> state =
      master::MasterState::FromSnapshot(snapshot);
  EXPECT_TRUE(state.ok()) << state.status();
  return state.ok() ? state->SerializeCanonical() : "";
}

// A peer master's HTTP server whose GET /master/snapshot answers with
// `handler`, recording the request targets it saw.
class FakePeer {
 public:
  using Handler = std::function<void(const http::Request&,
                                     std::shared_ptr<http::Responder>)>;

  explicit FakePeer(Handler handler) {
    http::ServerOptions options;
    options.shutdown_grace = absl::Milliseconds(100);
    server_ = std::make_unique<http::Server>(options);
    server_->Handle("GET", kSnapshotPath,
                    [this, handler](http::Request request,
                                    std::shared_ptr<http::Responder> r) {
                      {
                        std::lock_guard<std::mutex> lock(mu_);
                        targets_.push_back(request.target);
                      }
                      handler(request, std::move(r));
                    });
    absl::Status started = server_->Start();
    EXPECT_TRUE(started.ok()) << started;
  }

  // Always answers `response`.
  static std::unique_ptr<FakePeer> Answering(http::Response response) {
    return std::make_unique<FakePeer>(
        [response](const http::Request&, std::shared_ptr<http::Responder> r) {
          r->Respond(response);
        });
  }

  // Answers 200 with `body` as a snapshot transfer.
  static std::unique_ptr<FakePeer> Sending(std::string body) {
    http::Response response;
    response.headers.Set("Content-Type", kSnapshotContentType);
    response.body = std::move(body);
    return Answering(std::move(response));
  }

  SnapshotPeer address() const { return {"127.0.0.1", server_->port()}; }
  std::vector<std::string> targets() const {
    std::lock_guard<std::mutex> lock(mu_);
    return targets_;
  }
  void Stop() { server_->Stop(); }

 private:
  std::unique_ptr<http::Server> server_;
  mutable std::mutex mu_;
  std::vector<std::string> targets_;  // guarded by mu_
};

// A port nothing listens on: a server's, after it stopped.
SnapshotPeer ClosedPeer() {
  http::Server server;
  EXPECT_TRUE(server.Start().ok());
  SnapshotPeer peer{"127.0.0.1", server.port()};
  server.Stop();
  return peer;
}

// Flips one bit inside the transfer's snapshot bytes, keeping the stated
// checksum.
std::string Corrupt(const std::string& body) {
  v1::SnapshotTransfer transfer;
  EXPECT_TRUE(transfer.ParseFromString(body));
  std::string* bytes = transfer.mutable_snapshot();
  (*bytes)[bytes->size() / 2] ^= 0x10;
  return transfer.SerializeAsString();
}

// ---- wire format ------------------------------------------------------------

TEST(SnapshotTransferTest, DecodeReturnsWhatEncodeCarried) {
  const Folded folded = FoldRandom(1, 200);
  absl::StatusOr<StoredSnapshot> decoded = DecodeSnapshotTransfer(
      EncodeSnapshotTransfer(folded.position + 3, folded.snapshot));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->position, folded.position + 3);
  EXPECT_EQ(Canonical(decoded->snapshot), Canonical(folded.snapshot));
}

TEST(SnapshotTransferTest, DecodeRejectsFlippedBitWithDataLoss) {
  const Folded folded = FoldRandom(2, 100);
  absl::StatusOr<StoredSnapshot> decoded = DecodeSnapshotTransfer(
      Corrupt(EncodeSnapshotTransfer(folded.position, folded.snapshot)));
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(decoded.status().message(), "checksum"))
      << decoded.status();
}

TEST(SnapshotTransferTest, DecodeRejectsAChangedPositionWithDataLoss) {
  const Folded folded = FoldRandom(3, 100);
  v1::SnapshotTransfer transfer;
  ASSERT_TRUE(transfer.ParseFromString(
      EncodeSnapshotTransfer(folded.position, folded.snapshot)));
  transfer.set_position(folded.position + 1);
  EXPECT_EQ(
      DecodeSnapshotTransfer(transfer.SerializeAsString()).status().code(),
      absl::StatusCode::kDataLoss);
}

TEST(SnapshotTransferTest, DecodeRejectsGarbageAndMissingFieldsWithDataLoss) {
  EXPECT_EQ(DecodeSnapshotTransfer("\xff\xff\xff garbage").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeSnapshotTransfer("").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(SnapshotTransferTest, DecodeRejectsUnknownVersionWithFailedPrecondition) {
  const Folded folded = FoldRandom(4, 50);
  v1::SnapshotTransfer transfer;
  ASSERT_TRUE(transfer.ParseFromString(
      EncodeSnapshotTransfer(folded.position, folded.snapshot)));
  transfer.set_format_version(kSnapshotTransferVersion + 1);
  EXPECT_EQ(
      DecodeSnapshotTransfer(transfer.SerializeAsString()).status().code(),
      absl::StatusCode::kFailedPrecondition);
}

TEST(SnapshotTransferTest, DecodeRejectsSnapshotBeyondItsPositionWithDataLoss) {
  const Folded folded = FoldRandom(5, 50);
  ASSERT_GT(folded.position, 1u);
  EXPECT_EQ(DecodeSnapshotTransfer(
                EncodeSnapshotTransfer(folded.position - 1, folded.snapshot))
                .status()
                .code(),
            absl::StatusCode::kDataLoss);
}

TEST(SnapshotTransferTest, DecodeRejectsSnapshotTheFoldRefusesWithDataLoss) {
  Folded folded = FoldRandom(6, 100);
  ASSERT_GT(folded.snapshot.frameworks_size(), 0);
  v1::TaskRecord* task = folded.snapshot.add_tasks();
  task->mutable_task()->mutable_task_id()->set_value("orphan");
  task->mutable_task()->mutable_framework_id()->CopyFrom(
      folded.snapshot.frameworks(0).info().id());
  task->mutable_task()->mutable_agent_id()->set_value("no-such-agent");
  absl::StatusOr<StoredSnapshot> decoded = DecodeSnapshotTransfer(
      EncodeSnapshotTransfer(folded.position, folded.snapshot));
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(decoded.status().message(), "does not restore"))
      << decoded.status();
}

// ---- GET /master/snapshot ---------------------------------------------------

TEST(SnapshotResponseTest, AnswersNewestSnapshotOr404OrBadRequest) {
  absl::StatusOr<std::unique_ptr<SnapshotStore>> store =
      SnapshotStore::Open(FreshDir());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(SnapshotResponse(**store, {}).status, 404);

  const Folded older = FoldRandom(7, 40);
  const Folded newer = FoldRandom(7, 90);
  ASSERT_TRUE((*store)->Write(older.position, older.snapshot).ok());
  ASSERT_TRUE((*store)->Write(newer.position, newer.snapshot).ok());

  http::Response response = SnapshotResponse(**store, {});
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.headers.Get("Content-Type"), kSnapshotContentType);
  EXPECT_EQ(response.headers.Get(kSnapshotPositionHeader),
            absl::StrCat(newer.position));
  absl::StatusOr<StoredSnapshot> decoded =
      DecodeSnapshotTransfer(response.body);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->position, newer.position);
  EXPECT_EQ(Canonical(decoded->snapshot), Canonical(newer.snapshot));

  EXPECT_EQ(SnapshotResponse(**store,
                             {{"min_position", absl::StrCat(newer.position)}})
                .status,
            200);
  EXPECT_EQ(SnapshotResponse(
                **store, {{"min_position", absl::StrCat(newer.position + 1)}})
                .status,
            404);
  EXPECT_EQ(SnapshotResponse(**store, {{"min_position", "soon"}}).status, 400);
  EXPECT_EQ(SnapshotResponse(**store, {{"min_position", "-1"}}).status, 400);
}

// ---- client -----------------------------------------------------------------

class SnapshotFetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    older_ = FoldRandom(11, 60);
    good_ = FoldRandom(11, 150);
    newest_ = FoldRandom(11, 220);
    ASSERT_LT(older_.position, good_.position);
    ASSERT_LT(good_.position, newest_.position);
  }

  Folded older_;
  Folded good_;
  Folded newest_;
};

TEST_F(SnapshotFetchTest, PicksTheNewestVerifiedAmongCorruptOlderAndGood) {
  // The corrupt peer claims the newest position; it must lose to the good one.
  auto corrupt = FakePeer::Sending(
      Corrupt(EncodeSnapshotTransfer(newest_.position, newest_.snapshot)));
  auto older = FakePeer::Sending(
      EncodeSnapshotTransfer(older_.position, older_.snapshot));
  auto good =
      FakePeer::Sending(EncodeSnapshotTransfer(good_.position, good_.snapshot));

  absl::StatusOr<FetchedSnapshot> fetched = FetchNewestSnapshot(
      {corrupt->address(), older->address(), good->address()}, 1);
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(fetched->position, good_.position);
  EXPECT_EQ(fetched->peer, good->address().ToString());
  EXPECT_EQ(Canonical(fetched->snapshot), Canonical(good_.snapshot));
  for (FakePeer* peer : {corrupt.get(), older.get(), good.get()}) {
    EXPECT_EQ(peer->targets(),
              std::vector<std::string>{"/master/snapshot?min_position=1"});
  }

  // Installed, it is the local store's newest snapshot and restores.
  absl::StatusOr<std::unique_ptr<SnapshotStore>> store =
      SnapshotStore::Open(FreshDir());
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE(InstallSnapshot(*fetched, store->get()).ok());
  absl::StatusOr<StoredSnapshot> latest = (*store)->Latest();
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->position, good_.position);
  EXPECT_EQ(Canonical(latest->snapshot), Canonical(good_.snapshot));
}

TEST_F(SnapshotFetchTest, SkipsSnapshotsOlderThanMinPosition) {
  // A peer that ignores ?min_position and sends its older snapshot anyway.
  auto older = FakePeer::Sending(
      EncodeSnapshotTransfer(older_.position, older_.snapshot));
  auto good =
      FakePeer::Sending(EncodeSnapshotTransfer(good_.position, good_.snapshot));

  absl::StatusOr<FetchedSnapshot> fetched = FetchNewestSnapshot(
      {older->address(), good->address()}, older_.position + 1);
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(fetched->position, good_.position);

  fetched = FetchNewestSnapshot({older->address(), good->address()},
                                good_.position + 1);
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(fetched.status().message(), "older than"))
      << fetched.status();
}

TEST_F(SnapshotFetchTest, UnavailableWhenNoPeerOffersOne) {
  auto none = FakePeer::Answering(http::Response::Error(404, "no snapshot"));
  auto corrupt = FakePeer::Sending(
      Corrupt(EncodeSnapshotTransfer(good_.position, good_.snapshot)));
  const SnapshotPeer closed = ClosedPeer();

  absl::StatusOr<FetchedSnapshot> fetched =
      FetchNewestSnapshot({none->address(), corrupt->address(), closed}, 1);
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kUnavailable);
  const std::string message(fetched.status().message());
  EXPECT_TRUE(absl::StrContains(message, "HTTP 404")) << message;
  EXPECT_TRUE(absl::StrContains(message, "checksum mismatch")) << message;
  EXPECT_TRUE(absl::StrContains(message, closed.ToString())) << message;

  EXPECT_EQ(FetchNewestSnapshot({}, 1).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(SnapshotFetchTest, RefusesABodyOverTheLimit) {
  auto good =
      FakePeer::Sending(EncodeSnapshotTransfer(good_.position, good_.snapshot));
  SnapshotFetchOptions options;
  options.max_body_bytes = 64;
  absl::StatusOr<FetchedSnapshot> fetched =
      FetchNewestSnapshot({good->address()}, 1, options);
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(
      absl::StrContains(fetched.status().message(), "RESOURCE_EXHAUSTED"))
      << fetched.status();
}

TEST_F(SnapshotFetchTest, ASilentPeerCostsOneRequestTimeout) {
  std::mutex mu;
  std::vector<std::shared_ptr<http::Responder>> held;  // never answered
  auto silent = std::make_unique<FakePeer>(
      [&](const http::Request&, std::shared_ptr<http::Responder> r) {
        std::lock_guard<std::mutex> lock(mu);
        held.push_back(std::move(r));
      });
  auto good =
      FakePeer::Sending(EncodeSnapshotTransfer(good_.position, good_.snapshot));
  SnapshotFetchOptions options;
  options.request_timeout = absl::Milliseconds(200);

  const absl::Time start = absl::Now();
  absl::StatusOr<FetchedSnapshot> fetched =
      FetchNewestSnapshot({silent->address(), good->address()}, 1, options);
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(fetched->position, good_.position);
  EXPECT_GE(took, absl::Milliseconds(200));
  EXPECT_LT(took, absl::Seconds(2));
  silent->Stop();
}

// ---- SnapshotFetcher --------------------------------------------------------

// Collects a SnapshotFetcher's results; `done` may be held until Release().
class Results {
 public:
  SnapshotFetcher::Done Callback(bool hold) {
    return [this, hold](absl::StatusOr<FetchedSnapshot> result) {
      std::unique_lock<std::mutex> lock(mu_);
      results_.push_back(std::move(result));
      cv_.notify_all();
      if (hold) cv_.wait(lock, [this] { return released_; });
    };
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  // Waits (bounded) until `n` results arrived; returns how many did.
  size_t WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoMilliseconds(kWait),
                 [&] { return results_.size() >= n; });
    return results_.size();
  }
  std::vector<absl::StatusOr<FetchedSnapshot>> results() {
    std::lock_guard<std::mutex> lock(mu_);
    return results_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::vector<absl::StatusOr<FetchedSnapshot>> results_;
};

TEST_F(SnapshotFetchTest, FetcherReportsOnceAndRefusesASecondFetchMeanwhile) {
  auto good =
      FakePeer::Sending(EncodeSnapshotTransfer(good_.position, good_.snapshot));
  Results results;
  SnapshotFetcher fetcher({good->address()});
  EXPECT_FALSE(fetcher.busy());
  ASSERT_TRUE(fetcher.Start(5, results.Callback(/*hold=*/true)));
  EXPECT_TRUE(fetcher.busy());
  ASSERT_EQ(results.WaitFor(1), 1u);
  // Its `done` is still running: still busy, a second fetch is refused.
  EXPECT_TRUE(fetcher.busy());
  EXPECT_FALSE(fetcher.Start(5, results.Callback(/*hold=*/false)));
  results.Release();

  const absl::Time deadline = absl::Now() + kWait;
  while (fetcher.busy() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_FALSE(fetcher.busy());
  ASSERT_TRUE(fetcher.Start(good_.position + 1, results.Callback(false)));
  ASSERT_EQ(results.WaitFor(2), 2u);

  std::vector<absl::StatusOr<FetchedSnapshot>> all = results.results();
  ASSERT_TRUE(all[0].ok()) << all[0].status();
  EXPECT_EQ(all[0]->position, good_.position);
  EXPECT_EQ(all[1].status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(
      good->targets(),
      (std::vector<std::string>{
          "/master/snapshot?min_position=5",
          absl::StrCat("/master/snapshot?min_position=", good_.position + 1)}));
}

TEST_F(SnapshotFetchTest, DestroyingTheFetcherCancelsItsFetch) {
  std::mutex mu;
  std::vector<std::shared_ptr<http::Responder>> held;
  auto silent = std::make_unique<FakePeer>(
      [&](const http::Request&, std::shared_ptr<http::Responder> r) {
        std::lock_guard<std::mutex> lock(mu);
        held.push_back(std::move(r));
      });
  auto good =
      FakePeer::Sending(EncodeSnapshotTransfer(good_.position, good_.snapshot));
  Results results;
  SnapshotFetchOptions options;
  options.request_timeout = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  {
    SnapshotFetcher fetcher({silent->address(), good->address()}, options);
    ASSERT_TRUE(fetcher.Start(1, results.Callback(false)));
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  std::vector<absl::StatusOr<FetchedSnapshot>> all = results.results();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(good->targets().empty());
  silent->Stop();
}

}  // namespace
}  // namespace cairn::recovery
