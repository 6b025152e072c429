// SchedulerClient against in-process fake masters (FakeApiServer): leader
// redirects, 503 retries, the SUBSCRIBE stream, calls and their status
// codes, event waits, auto-acknowledgement, stream end and resubscription.

#include "tests/internal/scheduler_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "common/json.h"
#include "gtest/gtest.h"
#include "tests/internal/fake_api_server.h"
#include "common/master_channel.h"

namespace cairn::tests {
namespace {

using Call = v1::scheduler::Call;
using Event = v1::scheduler::Event;

constexpr absl::Duration kWait = absl::Seconds(5);  // bound on every wait
constexpr char kPath[] = "/api/v1/scheduler";

absl::Time Deadline() { return absl::Now() + kWait; }

Call ParseCall(const http::Request& request) {
  Call call;
  EXPECT_TRUE(FromJson(request.body, &call).ok()) << request.body;
  return call;
}

FakeApiServer::Predicate IsCall(Call::Type type) {
  return [type](const http::Request& request) {
    Call call;
    return FromJson(request.body, &call).ok() && call.type() == type;
  };
}

// Answers `r` with 307 to `leader`.
void Redirect(const std::shared_ptr<http::Responder>& r,
              const FakeApiServer& leader) {
  http::Response response = http::Response::Error(307, "not the leader");
  response.headers.Set("Location",
                       absl::StrCat("//", leader.address(), kPath));
  r->Respond(std::move(response));
}

// A fake leading master: SUBSCRIBE gets a stream "s<n>" that starts with
// SUBSCRIBED for "fw-1" (or the framework's own id); other calls get
// `call_code` (202 by default).
class FakeLeader {
 public:
  FakeLeader() : server_(kPath) {}

  absl::Status Start() {
    Lead();
    return server_.Start();
  }

  // Makes this master answer as the leader.
  void Lead() {
    server_.SetHandler([this](const http::Request& request,
                              std::shared_ptr<http::Responder> r) {
      const Call call = ParseCall(request);
      if (call.type() != Call::SUBSCRIBE) {
        const int code = call_code_.load();
        r->Respond(code == 202 ? http::Response{202, {}, ""}
                               : http::Response::Error(code, "refused"));
        return;
      }
      if (const int code = subscribe_code_.load(); code != 200) {
        r->Respond(http::Response::Error(code, "subscribe refused"));
        return;
      }
      const std::string stream_id = absl::StrCat("s", ++streams_);
      ASSERT_TRUE(server_.StartStream(r, "Mesos-Stream-Id", stream_id));
      Event subscribed;
      subscribed.set_type(Event::SUBSCRIBED);
      subscribed.mutable_subscribed()->mutable_framework_id()->set_value(
          call.subscribe().framework_info().has_id()
              ? call.subscribe().framework_info().id().value()
              : "fw-1");
      subscribed.mutable_subscribed()->set_heartbeat_interval_seconds(15);
      subscribed.mutable_subscribed()->mutable_master_info()->set_id("m-1");
      ASSERT_TRUE(server_.SendEvent(subscribed));
    });
  }

  FakeApiServer& server() { return server_; }
  void set_call_code(int code) { call_code_ = code; }
  void set_subscribe_code(int code) { subscribe_code_ = code; }

 private:
  FakeApiServer server_;
  std::atomic<int> streams_{0};
  std::atomic<int> call_code_{202};
  std::atomic<int> subscribe_code_{200};
};

v1::FrameworkInfo TestFramework() {
  v1::FrameworkInfo info;
  info.set_user("test");
  info.set_name("scheduler-client-test");
  info.add_roles("web");
  return info;
}

Event UpdateEvent(const std::string& task, const std::string& uuid) {
  Event event;
  event.set_type(Event::UPDATE);
  v1::TaskStatus* status = event.mutable_update()->mutable_status();
  status->mutable_task_id()->set_value(task);
  status->mutable_agent_id()->set_value("agent-1");
  status->set_state(v1::TASK_RUNNING);
  if (!uuid.empty()) status->set_uuid(uuid);
  return event;
}

class SchedulerClientTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(leader_.Start().ok()); }

  SchedulerClientOptions Options() {
    SchedulerClientOptions options;
    options.masters = {leader_.server().address()};
    options.subscribe_timeout = kWait;
    options.call_timeout = kWait;
    return options;
  }

  // A client subscribed to leader_.
  std::unique_ptr<SchedulerClient> Subscribed(SchedulerClientOptions options) {
    auto client = std::make_unique<SchedulerClient>(std::move(options));
    absl::StatusOr<v1::FrameworkID> id = client->Subscribe(TestFramework());
    EXPECT_TRUE(id.ok()) << id.status();
    return client;
  }

  FakeLeader leader_;
};

TEST_F(SchedulerClientTest, SubscribeFollowsRedirectToTheLeader) {
  FakeApiServer standby(kPath);
  standby.SetHandler(
      [this](const http::Request&, std::shared_ptr<http::Responder> r) {
        Redirect(r, leader_.server());
      });
  ASSERT_TRUE(standby.Start().ok());

  SchedulerClientOptions options = Options();
  options.masters = {standby.address(), leader_.server().address()};
  SchedulerClient client(options);
  absl::StatusOr<v1::FrameworkID> id = client.Subscribe(TestFramework());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->value(), "fw-1");
  EXPECT_EQ(client.stream_id(), "s1");
  EXPECT_TRUE(client.subscribed());
  EXPECT_EQ(client.heartbeat_interval_seconds(), 15);
  EXPECT_EQ(client.master_info().id(), "m-1");
  EXPECT_EQ(standby.requests().size(), 1u);

  const std::vector<http::Request> requests = leader_.server().requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].headers.Get("Accept"), "application/json");
  EXPECT_EQ(requests[0].headers.Get("Content-Type"), "application/json");
  EXPECT_FALSE(requests[0].headers.Has("Mesos-Stream-Id"));
  const Call call = ParseCall(requests[0]);
  EXPECT_EQ(call.type(), Call::SUBSCRIBE);
  EXPECT_EQ(call.subscribe().framework_info().name(), "scheduler-client-test");

  absl::StatusOr<Event> subscribed =
      client.NextEvent(Event::SUBSCRIBED, Deadline());
  ASSERT_TRUE(subscribed.ok()) << subscribed.status();
  EXPECT_EQ(subscribed->subscribed().framework_id().value(), "fw-1");
}

TEST_F(SchedulerClientTest, SubscribeRetriesUnavailableUntilTheLeaderAnswers) {
  std::atomic<int> refusals{2};
  FakeApiServer recovering(kPath);
  recovering.SetHandler([&](const http::Request&,
                            std::shared_ptr<http::Responder> r) {
    if (refusals.fetch_sub(1) > 0) {
      r->Respond(http::Response::Error(503, "no leading master is known"));
    } else {
      Redirect(r, leader_.server());
    }
  });
  ASSERT_TRUE(recovering.Start().ok());

  SchedulerClientOptions options = Options();
  // Only the recovering master is known: the client has to keep asking it.
  options.masters = {recovering.address()};
  SchedulerClient client(options);
  absl::StatusOr<v1::FrameworkID> id = client.Subscribe(TestFramework());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(recovering.requests().size(), 3u);
  EXPECT_EQ(leader_.server().requests().size(), 1u);
}

// A 127.0.0.1 port that is bound but not listening: connections to it are
// refused, and no other process can take it while this object lives.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (fd_ >= 0 &&
        bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ~RefusingPort() {
    if (fd_ >= 0) close(fd_);
  }
  uint16_t port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

TEST_F(SchedulerClientTest, SubscribeIsUnavailableWhenNoMasterAnswers) {
  RefusingPort refusing;
  ASSERT_NE(refusing.port(), 0);
  FakeApiServer leaderless(kPath);
  leaderless.SetHandler(
      [](const http::Request&, std::shared_ptr<http::Responder> r) {
        r->Respond(http::Response::Error(503, "no leading master is known"));
      });
  ASSERT_TRUE(leaderless.Start().ok());

  SchedulerClientOptions options = Options();
  options.masters = {refusing.address(), leaderless.address()};
  options.subscribe_timeout = absl::Milliseconds(300);
  SchedulerClient client(options);
  absl::StatusOr<v1::FrameworkID> id = client.Subscribe(TestFramework());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kUnavailable) << id.status();
  EXPECT_FALSE(client.subscribed());
  // It kept trying both until the deadline.
  EXPECT_GE(leaderless.requests().size(), 2u);
}

TEST_F(SchedulerClientTest, SubscribeReturnsTheLeadersRejection) {
  leader_.set_subscribe_code(400);
  SchedulerClient client(Options());
  absl::StatusOr<v1::FrameworkID> id = client.Subscribe(TestFramework());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpStatusOf(id.status()), 400);
  EXPECT_TRUE(absl::StrContains(id.status().message(), "subscribe refused"))
      << id.status();
}

TEST_F(SchedulerClientTest, CallsCarryTheStreamIdAndFrameworkId) {
  std::unique_ptr<SchedulerClient> client = Subscribed(Options());

  v1::Offer offer;
  offer.mutable_id()->set_value("o-1");
  offer.mutable_agent_id()->set_value("agent-1");
  v1::TaskInfo task;
  task.set_name("t");
  task.mutable_task_id()->set_value("t-1");
  EXPECT_TRUE(client->Launch(offer, {task}).ok());
  EXPECT_TRUE(client->Decline({offer.id()}).ok());
  EXPECT_TRUE(client->Kill(task.task_id()).ok());
  EXPECT_TRUE(client->Acknowledge(UpdateEvent("t-1", "0123456789abcdef")
                                      .update()
                                      .status())
                  .ok());
  EXPECT_TRUE(client->Reconcile().ok());
  EXPECT_TRUE(client->Revive({"web"}).ok());
  EXPECT_TRUE(client->Suppress().ok());
  EXPECT_TRUE(client->Teardown().ok());

  const std::vector<http::Request> requests = leader_.server().requests();
  ASSERT_EQ(requests.size(), 9u);  // SUBSCRIBE + 8 calls
  const std::vector<Call::Type> expected = {
      Call::ACCEPT, Call::DECLINE,   Call::KILL,     Call::ACKNOWLEDGE,
      Call::RECONCILE, Call::REVIVE, Call::SUPPRESS, Call::TEARDOWN};
  for (size_t i = 0; i < expected.size(); ++i) {
    const http::Request& request = requests[i + 1];
    const Call call = ParseCall(request);
    EXPECT_EQ(call.type(), expected[i]) << request.body;
    EXPECT_EQ(call.framework_id().value(), "fw-1") << request.body;
    EXPECT_EQ(request.headers.Get("Mesos-Stream-Id"), "s1");
    EXPECT_EQ(request.headers.Get("Content-Type"), "application/json");
  }
  const Call accept = ParseCall(requests[1]);
  ASSERT_EQ(accept.accept().operations_size(), 1);
  EXPECT_EQ(accept.accept().offer_ids(0).value(), "o-1");
  const v1::Offer::Operation& launch = accept.accept().operations(0);
  EXPECT_EQ(launch.type(), v1::Offer::Operation::LAUNCH);
  ASSERT_EQ(launch.launch().task_infos_size(), 1);
  EXPECT_EQ(launch.launch().task_infos(0).agent_id().value(), "agent-1");
  const Call ack = ParseCall(requests[4]);
  EXPECT_EQ(ack.acknowledge().uuid(), "0123456789abcdef");
  EXPECT_EQ(ack.acknowledge().agent_id().value(), "agent-1");
  EXPECT_EQ(ParseCall(requests[6]).revive().roles(0), "web");
}

TEST_F(SchedulerClientTest, CallAnswersMapToStatusCodes) {
  SchedulerClientOptions options = Options();
  options.retry_unavailable = false;
  std::unique_ptr<SchedulerClient> client = Subscribed(options);

  leader_.set_call_code(400);
  absl::Status status = client->Revive();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "refused")) << status;

  leader_.set_call_code(403);
  EXPECT_EQ(client->Revive().code(), absl::StatusCode::kPermissionDenied);
  leader_.set_call_code(409);
  EXPECT_EQ(client->Revive().code(), absl::StatusCode::kFailedPrecondition);
  leader_.set_call_code(503);
  status = client->Revive();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(HttpStatusOf(status), 503);
  leader_.set_call_code(202);
  EXPECT_TRUE(client->Revive().ok());
}

TEST_F(SchedulerClientTest, AcknowledgeWithoutUuidIsInvalidArgument) {
  std::unique_ptr<SchedulerClient> client = Subscribed(Options());
  EXPECT_EQ(client->Acknowledge(UpdateEvent("t-1", "").update().status())
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(leader_.server().CountRequests(IsCall(Call::ACKNOWLEDGE)), 0u);
}

TEST_F(SchedulerClientTest, NextEventTakesTheFirstOfItsTypeAndKeepsOthers) {
  std::unique_ptr<SchedulerClient> client = Subscribed(Options());
  Event offers;
  offers.set_type(Event::OFFERS);
  offers.mutable_offers()->add_offers()->mutable_id()->set_value("o-1");
  Event heartbeat;
  heartbeat.set_type(Event::HEARTBEAT);
  ASSERT_TRUE(leader_.server().SendEvent(offers));
  ASSERT_TRUE(leader_.server().SendEvent(heartbeat));
  ASSERT_TRUE(leader_.server().SendEvent(UpdateEvent("t-1", "")));

  absl::StatusOr<Event> update = client->NextEvent(Event::UPDATE, Deadline());
  ASSERT_TRUE(update.ok()) << update.status();
  EXPECT_EQ(update->update().status().task_id().value(), "t-1");
  absl::StatusOr<Event> offer = client->NextEvent(Event::OFFERS, Deadline());
  ASSERT_TRUE(offer.ok()) << offer.status();
  EXPECT_EQ(offer->offers().offers(0).id().value(), "o-1");

  const std::vector<Event> rest = client->TakeEvents();
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].type(), Event::SUBSCRIBED);
  EXPECT_EQ(rest[1].type(), Event::HEARTBEAT);
  EXPECT_EQ(client->malformed_records(), 0u);
}

TEST_F(SchedulerClientTest, NextEventTimesOutWithDeadlineExceeded) {
  std::unique_ptr<SchedulerClient> client = Subscribed(Options());
  absl::StatusOr<Event> event =
      client->NextEvent(Event::OFFERS, absl::Now() + absl::Milliseconds(50));
  EXPECT_EQ(event.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(absl::StrContains(event.status().message(), "SUBSCRIBED"))
      << event.status();  // lists what is queued
}

TEST_F(SchedulerClientTest, WaitingBeforeSubscribeIsFailedPrecondition) {
  SchedulerClient client(Options());
  EXPECT_EQ(client.NextEvent(Event::OFFERS, Deadline()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client.Resubscribe().status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(SchedulerClientTest, AutoAcknowledgeAcknowledgesUpdatesWithUuid) {
  SchedulerClientOptions options = Options();
  options.auto_acknowledge = true;
  std::unique_ptr<SchedulerClient> client = Subscribed(options);
  ASSERT_TRUE(leader_.server().SendEvent(UpdateEvent("t-1", "")));
  ASSERT_TRUE(
      leader_.server().SendEvent(UpdateEvent("t-2", "fedcba9876543210")));
  ASSERT_TRUE(client->NextEvent(Event::UPDATE, Deadline()).ok());
  ASSERT_TRUE(client->NextEvent(Event::UPDATE, Deadline()).ok());

  // Acknowledged before queued: both updates are in, so is the ack.
  EXPECT_EQ(client->auto_acknowledged(), 1u);
  EXPECT_EQ(client->auto_acknowledge_failures(), 0u);
  std::vector<Call> acks;
  for (const http::Request& request : leader_.server().requests()) {
    if (IsCall(Call::ACKNOWLEDGE)(request)) acks.push_back(ParseCall(request));
  }
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].acknowledge().task_id().value(), "t-2");
  EXPECT_EQ(acks[0].acknowledge().uuid(), "fedcba9876543210");
}

TEST_F(SchedulerClientTest, StreamEndIsReportedAndResubscribeKeepsTheId) {
  std::unique_ptr<SchedulerClient> client = Subscribed(Options());
  leader_.server().CloseStream();
  ASSERT_TRUE(client->WaitForStreamEnd(Deadline()).ok());
  ASSERT_TRUE(client->stream_end().has_value());
  EXPECT_TRUE(client->stream_end()->ok()) << *client->stream_end();
  EXPECT_FALSE(client->subscribed());
  EXPECT_EQ(client->NextEvent(Event::OFFERS, Deadline()).status().code(),
            absl::StatusCode::kUnavailable);

  absl::StatusOr<v1::FrameworkID> id = client->Resubscribe();
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->value(), "fw-1");
  EXPECT_EQ(client->stream_id(), "s2");
  EXPECT_TRUE(client->subscribed());
  const std::vector<http::Request> requests = leader_.server().requests();
  ASSERT_EQ(requests.size(), 2u);
  const Call again = ParseCall(requests[1]);
  EXPECT_EQ(again.subscribe().framework_info().id().value(), "fw-1");
  EXPECT_EQ(again.framework_id().value(), "fw-1");
  EXPECT_EQ(again.subscribe().framework_info().name(), "scheduler-client-test");
}

TEST_F(SchedulerClientTest, ResubscribeFindsTheNewLeaderAfterAFailover) {
  FakeLeader other;
  ASSERT_TRUE(other.Start().ok());
  // `other` starts as a standby that points at leader_.
  other.server().SetHandler(
      [this](const http::Request&, std::shared_ptr<http::Responder> r) {
        Redirect(r, leader_.server());
      });
  SchedulerClientOptions options = Options();
  options.masters = {other.server().address(), leader_.server().address()};
  std::unique_ptr<SchedulerClient> client = Subscribed(options);

  // Failover: leader_ steps down (ends the stream, then redirects), `other`
  // leads.
  other.Lead();
  leader_.server().SetHandler(
      [&other](const http::Request&, std::shared_ptr<http::Responder> r) {
        Redirect(r, other.server());
      });
  leader_.server().CloseStream();
  ASSERT_TRUE(client->WaitForStreamEnd(Deadline()).ok());

  absl::StatusOr<v1::FrameworkID> id = client->Resubscribe();
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->value(), "fw-1");
  EXPECT_TRUE(client->Revive().ok());
  EXPECT_EQ(other.server().CountRequests(IsCall(Call::REVIVE)), 1u);
  EXPECT_EQ(leader_.server().CountRequests(IsCall(Call::REVIVE)), 0u);
}

TEST(MasterChannelTest, ParsesLocationsAndAddresses) {
  absl::StatusOr<HostPort> a = ParseLocation("//127.0.0.1:5050/api/v1/agent");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->ToString(), "127.0.0.1:5050");
  absl::StatusOr<HostPort> b = ParseLocation("http://master-2:5051");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "master-2");
  EXPECT_EQ(b->port, 5051);
  absl::StatusOr<HostPort> c = ParseHostPort("[::1]:80");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->ToString(), "[::1]:80");
  EXPECT_EQ(ParseLocation("//nowhere/path").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseHostPort("h:0").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseHostPort("h:70000").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MasterChannelTest, EmptyMasterListIsInvalidArgument) {
  MasterChannel channel(MasterChannelOptions{});
  EXPECT_EQ(channel.Post({}, "", Deadline()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::tests
