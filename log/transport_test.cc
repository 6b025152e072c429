#include "log/transport.h"

#include <boost/asio.hpp>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace cairn::log {
namespace {

namespace asio = boost::asio;
using cairn::v1::LogMessage;

// Collects delivered messages; waits for them with a bounded deadline.
class Inbox {
 public:
  Transport::Receiver Receiver() {
    return [this](LogMessage m) {
      std::lock_guard<std::mutex> lock(mu_);
      messages_.push_back(std::move(m));
      arrived_.notify_all();
    };
  }

  // True once at least `n` messages arrived (within `timeout`).
  bool WaitFor(size_t n, absl::Duration timeout = absl::Seconds(5)) {
    std::unique_lock<std::mutex> lock(mu_);
    return arrived_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                             [&] { return messages_.size() >= n; });
  }

  std::vector<LogMessage> messages() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }

 private:
  std::mutex mu_;
  std::condition_variable arrived_;
  std::vector<LogMessage> messages_;  // guarded by mu_
};

LogMessage Heartbeat(uint32_t from, uint32_t to, uint64_t sequence) {
  LogMessage m;
  m.set_from(from);
  m.set_to(to);
  m.mutable_heartbeat()->set_sequence(sequence);
  return m;
}

PeerAddress Loopback(uint16_t port) { return {"127.0.0.1", port}; }

TransportOptions Options(uint32_t id) {
  TransportOptions options;
  options.node_id = id;
  return options;
}

// A loopback port on which nothing listens (bound, then released).
uint16_t ClosedPort() {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(
      io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

TEST(ParsePeerAddressTest, ParsesHostAndPort) {
  auto a = ParsePeerAddress("127.0.0.1:7101");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 7101);
  auto v6 = ParsePeerAddress("[::1]:80");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->ToString(), "[::1]:80");
}

TEST(ParsePeerAddressTest, RejectsMalformedAddresses) {
  for (const char* bad : {"", "host", ":80", "host:", "host:0", "host:70000",
                          "host:x", "[::1]80", "[::1"}) {
    EXPECT_EQ(ParsePeerAddress(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(TransportTest, DeliversMessagesInOrderBothWays) {
  Inbox inbox1, inbox2;
  Transport t1(Options(1), inbox1.Receiver());
  Transport t2(Options(2), inbox2.Receiver());
  ASSERT_TRUE(t1.Start().ok());
  ASSERT_TRUE(t2.Start().ok());
  t1.SetPeerAddress(2, Loopback(t2.port()));
  t2.SetPeerAddress(1, Loopback(t1.port()));

  constexpr int kCount = 2000;
  for (int i = 0; i < kCount; ++i) t1.Send(Heartbeat(1, 2, i));
  t2.Send(Heartbeat(2, 1, 7));
  ASSERT_TRUE(inbox2.WaitFor(kCount));
  ASSERT_TRUE(inbox1.WaitFor(1));

  const auto received = inbox2.messages();
  ASSERT_EQ(received.size(), kCount);
  for (int i = 0; i < kCount; ++i) {
    EXPECT_EQ(received[i].from(), 1u);
    EXPECT_EQ(received[i].heartbeat().sequence(), static_cast<uint64_t>(i));
  }
  EXPECT_EQ(inbox1.messages()[0].heartbeat().sequence(), 7u);
  EXPECT_EQ(t1.Stats().messages_sent, static_cast<uint64_t>(kCount));
  EXPECT_EQ(t2.Stats().messages_received, static_cast<uint64_t>(kCount));
  EXPECT_EQ(t1.Stats().dropped_queue_full, 0u);
}

TEST(TransportTest, CarriesFramesLargerThanTheReadBuffer) {
  Inbox inbox;
  Transport t1(Options(1), [](LogMessage) {});
  Transport t2(Options(2), inbox.Receiver());
  ASSERT_TRUE(t2.Start().ok());
  ASSERT_TRUE(t1.Start().ok());
  t1.SetPeerAddress(2, Loopback(t2.port()));

  LogMessage big;
  big.set_from(1);
  big.set_to(2);
  auto* action = big.mutable_learned()->add_actions();
  action->set_position(9);
  action->mutable_value()->add_entries(std::string(5 << 20, 'x'));
  t1.Send(big);
  t1.Send(Heartbeat(1, 2, 1));
  ASSERT_TRUE(inbox.WaitFor(2));
  const auto received = inbox.messages();
  EXPECT_EQ(received[0].learned().actions(0).value().entries(0).size(),
            size_t{5} << 20);
  EXPECT_EQ(received[1].heartbeat().sequence(), 1u);
}

TEST(TransportTest, DropsMessagesLargerThanMaxFrameWhenSending) {
  TransportOptions options = Options(1);
  options.max_frame_bytes = 100;
  Transport t1(options, [](LogMessage) {});
  ASSERT_TRUE(t1.Start().ok());
  t1.SetPeerAddress(2, Loopback(ClosedPort()));
  LogMessage big = Heartbeat(1, 2, 1);
  big.mutable_learned()->add_actions()->mutable_value()->add_entries(
      std::string(200, 'x'));
  t1.Send(big);
  EXPECT_EQ(t1.Stats().dropped_on_error, 1u);
  EXPECT_EQ(t1.Stats().queued, 0u);
}

// Connects a raw socket to `port`, writes `bytes`, and returns true when the
// transport closes the connection (read returns EOF or an error) in time.
bool ServerClosesAfter(uint16_t port, const std::string& bytes) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  boost::system::error_code ec;
  socket.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) return false;
  asio::write(socket, asio::buffer(bytes), ec);
  bool closed = false;
  char byte;
  socket.async_read_some(asio::buffer(&byte, 1),
                         [&](const boost::system::error_code& e, size_t) {
                           closed = static_cast<bool>(e);
                         });
  io.run_for(std::chrono::seconds(5));
  return closed;
}

TEST(TransportTest, ClosesConnectionOnOversizedFrame) {
  Inbox inbox;
  TransportOptions options = Options(2);
  options.max_frame_bytes = 1000;
  Transport t(options, inbox.Receiver());
  ASSERT_TRUE(t.Start().ok());
  // Length 1001 > max_frame_bytes.
  EXPECT_TRUE(ServerClosesAfter(t.port(), std::string("\x00\x00\x03\xe9", 4)));
  EXPECT_EQ(t.Stats().bad_frames, 1u);
  EXPECT_TRUE(inbox.messages().empty());
}

TEST(TransportTest, ClosesConnectionOnUnparsableFrame) {
  Inbox inbox;
  Transport t(Options(2), inbox.Receiver());
  ASSERT_TRUE(t.Start().ok());
  // A good frame, then 3 bytes that are not a LogMessage.
  std::string good = Heartbeat(1, 2, 5).SerializeAsString();
  std::string bytes = std::string("\x00\x00\x00", 3) +
                      static_cast<char>(good.size()) + good +
                      std::string("\x00\x00\x00\x03\xff\xff\xff", 7);
  EXPECT_TRUE(ServerClosesAfter(t.port(), bytes));
  EXPECT_EQ(t.Stats().bad_frames, 1u);
  ASSERT_EQ(inbox.messages().size(), 1u);
  EXPECT_EQ(inbox.messages()[0].heartbeat().sequence(), 5u);
}

TEST(TransportTest, DropsOldestWhenQueueIsFullAndDeliversTheRestLater) {
  Inbox inbox;
  Transport t2(Options(2), inbox.Receiver());
  ASSERT_TRUE(t2.Start().ok());
  TransportOptions options = Options(1);
  options.peers[2] = Loopback(ClosedPort());
  options.max_queued_messages = 4;
  Transport t1(options, [](LogMessage) {});
  ASSERT_TRUE(t1.Start().ok());
  for (int i = 0; i < 10; ++i) t1.Send(Heartbeat(1, 2, i));
  EXPECT_EQ(t1.Stats().dropped_queue_full, 6u);
  EXPECT_EQ(t1.Stats().queued, 4u);

  // The peer shows up at another address: the newest four arrive.
  t1.SetPeerAddress(2, Loopback(t2.port()));
  ASSERT_TRUE(inbox.WaitFor(4));
  const auto received = inbox.messages();
  ASSERT_EQ(received.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(received[i].heartbeat().sequence(), static_cast<uint64_t>(6 + i));
  }
}

TEST(TransportTest, ReconnectsWhenPeerRestartsOnTheSamePort) {
  Inbox first, second;
  auto t2 = std::make_unique<Transport>(Options(2), first.Receiver());
  ASSERT_TRUE(t2->Start().ok());
  const uint16_t port = t2->port();
  TransportOptions options = Options(1);
  options.peers[2] = Loopback(port);
  options.reconnect_initial_backoff = absl::Milliseconds(5);
  options.reconnect_max_backoff = absl::Milliseconds(20);
  Transport t1(options, [](LogMessage) {});
  ASSERT_TRUE(t1.Start().ok());
  t1.Send(Heartbeat(1, 2, 1));
  ASSERT_TRUE(first.WaitFor(1));
  t2.reset();

  TransportOptions again = Options(2);
  again.listen_port = port;
  Transport t2_again(again, second.Receiver());
  ASSERT_TRUE(t2_again.Start().ok());
  // Messages written into the dying connection may be lost; keep sending
  // until one gets through the new one.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  uint64_t sequence = 2;
  while (!second.WaitFor(1, absl::Milliseconds(20)) && absl::Now() < deadline) {
    t1.Send(Heartbeat(1, 2, sequence++));
  }
  ASSERT_FALSE(second.messages().empty());
  EXPECT_GE(t1.Stats().connects, 2u);
}

TEST(TransportTest, StartFailsWhenThePortIsTaken) {
  Transport t1(Options(1), [](LogMessage) {});
  ASSERT_TRUE(t1.Start().ok());
  TransportOptions taken = Options(2);
  taken.listen_port = t1.port();
  Transport t2(taken, [](LogMessage) {});
  // reuse_address does not allow two listeners on one port.
  EXPECT_EQ(t2.Start().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(t1.Start().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(TransportTest, SendAfterStopIsDropped) {
  TransportOptions options = Options(1);
  options.peers[2] = Loopback(ClosedPort());
  Transport t1(options, [](LogMessage) {});
  ASSERT_TRUE(t1.Start().ok());
  t1.Stop();
  t1.Send(Heartbeat(1, 2, 1));
  EXPECT_EQ(t1.Stats().queued, 0u);
  EXPECT_EQ(t1.Stats().dropped_unknown_peer, 1u);
}

// Counts runs of posted functions and where they ran; waits with a deadline.
class Runs {
 public:
  std::function<void()> Record(int id, const Transport* transport) {
    return [this, id, transport] {
      std::lock_guard<std::mutex> lock(mu_);
      order_.push_back(id);
      on_io_thread_.push_back(transport->InIoThread());
      ran_.notify_all();
    };
  }
  bool WaitFor(size_t n, absl::Duration timeout = absl::Seconds(5)) {
    std::unique_lock<std::mutex> lock(mu_);
    return ran_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                         [&] { return order_.size() >= n; });
  }
  std::vector<int> order() {
    std::lock_guard<std::mutex> lock(mu_);
    return order_;
  }
  std::vector<bool> on_io_thread() {
    std::lock_guard<std::mutex> lock(mu_);
    return on_io_thread_;
  }

 private:
  std::mutex mu_;
  std::condition_variable ran_;
  std::vector<int> order_;          // guarded by mu_
  std::vector<bool> on_io_thread_;  // guarded by mu_
};

TEST(TransportTest, PostRunsFunctionsOnTheIoThreadInOrder) {
  Transport t(Options(1), [](LogMessage) {});
  ASSERT_TRUE(t.Start().ok());
  EXPECT_FALSE(t.InIoThread());
  Runs runs;
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(t.Post(runs.Record(i, &t)));
  ASSERT_TRUE(runs.WaitFor(100));
  std::vector<int> expected;
  for (int i = 0; i < 100; ++i) expected.push_back(i);
  EXPECT_EQ(runs.order(), expected);
  for (bool on_io_thread : runs.on_io_thread()) EXPECT_TRUE(on_io_thread);
}

TEST(TransportTest, PostAfterRunsOnceTheDelayHasPassed) {
  Transport t(Options(1), [](LogMessage) {});
  ASSERT_TRUE(t.Start().ok());
  Runs runs;
  const absl::Time posted = absl::Now();
  ASSERT_TRUE(t.PostAfter(absl::Milliseconds(30), runs.Record(2, &t)));
  ASSERT_TRUE(t.Post(runs.Record(1, &t)));
  ASSERT_TRUE(runs.WaitFor(2));
  EXPECT_GE(absl::Now() - posted, absl::Milliseconds(30));
  EXPECT_EQ(runs.order(), (std::vector<int>{1, 2}));
  for (bool on_io_thread : runs.on_io_thread()) EXPECT_TRUE(on_io_thread);
}

TEST(TransportTest, PostIsRefusedBeforeStartAndAfterStop) {
  Transport t(Options(1), [](LogMessage) {});
  Runs runs;
  EXPECT_FALSE(t.Post(runs.Record(1, &t)));
  EXPECT_FALSE(t.PostAfter(absl::ZeroDuration(), runs.Record(2, &t)));
  ASSERT_TRUE(t.Start().ok());
  t.Stop();
  EXPECT_FALSE(t.Post(runs.Record(3, &t)));
  EXPECT_FALSE(t.PostAfter(absl::ZeroDuration(), runs.Record(4, &t)));
  EXPECT_TRUE(runs.order().empty());
}

TEST(TransportTest, StopCancelsPendingPostAfter) {
  Transport t(Options(1), [](LogMessage) {});
  ASSERT_TRUE(t.Start().ok());
  Runs runs;
  ASSERT_TRUE(t.PostAfter(absl::Hours(1), runs.Record(1, &t)));
  const absl::Time stopping = absl::Now();
  t.Stop();  // returns without waiting for the timer
  EXPECT_LT(absl::Now() - stopping, absl::Seconds(5));
  EXPECT_TRUE(runs.order().empty());
}

// A receive callback that answers at once sends from the I/O thread itself
// (written without a hand-off); every answer must still arrive, in order.
TEST(TransportTest, SendFromTheReceiveCallbackIsDelivered) {
  Inbox inbox1;
  std::unique_ptr<Transport> t2;
  Transport t1(Options(1), inbox1.Receiver());
  t2 = std::make_unique<Transport>(Options(2), [&t2](LogMessage m) {
    EXPECT_TRUE(t2->InIoThread());
    t2->Send(Heartbeat(2, 1, m.heartbeat().sequence()));
  });
  ASSERT_TRUE(t1.Start().ok());
  ASSERT_TRUE(t2->Start().ok());
  t1.SetPeerAddress(2, Loopback(t2->port()));
  t2->SetPeerAddress(1, Loopback(t1.port()));

  constexpr int kCount = 1000;
  for (int i = 0; i < kCount; ++i) t1.Send(Heartbeat(1, 2, i));
  ASSERT_TRUE(inbox1.WaitFor(kCount));
  const auto received = inbox1.messages();
  for (int i = 0; i < kCount; ++i) {
    EXPECT_EQ(received[i].heartbeat().sequence(), static_cast<uint64_t>(i));
  }
  t1.Stop();
  t2->Stop();
}

}  // namespace
}  // namespace cairn::log
