#include "common/http_client.h"

#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http_server.h"
#include "gtest/gtest.h"

namespace cairn {
namespace http {
namespace {

constexpr absl::Duration kWait = absl::Seconds(5);  // bound on every wait

// A one-shot event. (Event would do, but Debian's abseil is not
// instrumented for ThreadSanitizer, which then reports false races.)
class Event {
 public:
  void Notify() {
    std::lock_guard<std::mutex> lock(mu_);
    notified_ = true;
    cv_.notify_all();
  }
  bool WaitFor(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [this] { return notified_; });
  }
  bool HasBeenNotified() {
    std::lock_guard<std::mutex> lock(mu_);
    return notified_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
};

bool Eventually(const std::function<bool()>& condition,
                absl::Duration timeout = kWait) {
  absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer({}); }

  void StartServer(ServerOptions options) {
    server_ = std::make_unique<Server>(options);
    server_->HandleSync("*", "/echo", [](const Request& r) {
      Response response = Response::Text(200, r.body);
      response.headers.Set("X-Method", r.method);
      response.headers.Set("X-Seen-Header", r.headers.Get("X-Test"));
      return response;
    });
    ASSERT_TRUE(server_->Start().ok());
  }
  uint16_t port() const { return server_->port(); }

  std::unique_ptr<Server> server_;
  Client client_;
};

TEST_F(HttpClientTest, SendsHeadersAndBodyAndReturnsResponse) {
  absl::StatusOr<Response> r = client_.Request(
      "PUT", "127.0.0.1", port(), "/echo", {{"x-test", "yes"}}, "payload");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "payload");
  EXPECT_EQ(r->headers.Get("x-method"), "PUT");
  EXPECT_EQ(r->headers.Get("X-Seen-Header"), "yes");
}

TEST_F(HttpClientTest, LargeBodiesRoundTrip) {
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31);
  absl::StatusOr<Response> r =
      client_.Request("POST", "127.0.0.1", port(), "/echo", {}, big);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, big);
}

TEST_F(HttpClientTest, ResolvesHostNames) {
  absl::StatusOr<Response> r =
      client_.Request("GET", "localhost", port(), "/echo");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpClientTest, ConnectionRefusedIsUnavailable) {
  uint16_t dead_port = port();
  server_.reset();  // nothing listens there any more
  absl::StatusOr<Response> r =
      client_.Request("GET", "127.0.0.1", dead_port, "/echo");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(),
                                absl::StrCat("127.0.0.1:", dead_port)));
  EXPECT_EQ(
      client_.OpenStream("GET", "127.0.0.1", dead_port, "/").status().code(),
      absl::StatusCode::kUnavailable);
}

TEST_F(HttpClientTest, SlowServerIsDeadlineExceeded) {
  std::promise<std::shared_ptr<Responder>> pending;
  server_->Handle("GET", "/slow", [&](Request, std::shared_ptr<Responder> r) {
    pending.set_value(r);  // answered only after the client gave up
  });
  absl::Time start = absl::Now();
  absl::StatusOr<Response> r = client_.Request(
      "GET", "127.0.0.1", port(), "/slow", {}, "", absl::Milliseconds(200));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded)
      << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  pending.get_future().get()->Respond(Response::Text(200, "late"));

  // The client recovers on a new connection.
  r = client_.Request("GET", "127.0.0.1", port(), "/echo");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpClientTest, ConnectionCloseHeaderClosesTheConnection) {
  Headers close = {{"Connection", "close"}};
  ASSERT_TRUE(client_.Request("GET", "127.0.0.1", port(), "/echo", close).ok());
  ASSERT_TRUE(client_.Request("GET", "127.0.0.1", port(), "/echo").ok());
  ASSERT_TRUE(client_.Request("GET", "127.0.0.1", port(), "/echo").ok());
  EXPECT_EQ(client_.connections_opened(), 2u);
  EXPECT_EQ(server_->connections_accepted(), 2u);
}

TEST_F(HttpClientTest, RetriesOnceWhenTheServerClosedTheIdleConnection) {
  ServerOptions options;
  options.idle_timeout = absl::Milliseconds(50);
  StartServer(options);
  ASSERT_TRUE(client_.Request("GET", "127.0.0.1", port(), "/echo").ok());
  // The server closes the kept-alive connection once it has been idle.
  ASSERT_TRUE(Eventually([&] { return server_->active_connections() == 0; }));
  absl::StatusOr<Response> r =
      client_.Request("POST", "127.0.0.1", port(), "/echo", {}, "again");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "again");
  EXPECT_EQ(client_.connections_opened(), 2u);
}

TEST_F(HttpClientTest, RedirectIsReturnedUnlessFollowingIsEnabled) {
  server_->HandleSync("GET", "/old", [&](const Request&) {
    Response r = Response::Text(307, "");
    r.headers.Set("Location",
                  absl::StrCat("http://127.0.0.1:", port(), "/echo"));
    return r;
  });
  server_->HandleSync("GET", "/relative", [](const Request&) {
    Response r = Response::Text(307, "");
    r.headers.Set("Location", "/old");
    return r;
  });
  server_->HandleSync("GET", "/loop", [](const Request&) {
    Response r = Response::Text(307, "");
    r.headers.Set("Location", "/loop");
    return r;
  });

  absl::StatusOr<Response> r =
      client_.Request("GET", "127.0.0.1", port(), "/old");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 307);
  EXPECT_EQ(r->headers.Get("Location"),
            absl::StrCat("http://127.0.0.1:", port(), "/echo"));

  ClientOptions follow;
  follow.follow_redirects = true;
  Client following(follow);
  r = following.Request("GET", "127.0.0.1", port(), "/relative");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers.Get("X-Method"), "GET");

  r = following.Request("GET", "127.0.0.1", port(), "/loop");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 307);  // gave up after max_redirects
}

TEST_F(HttpClientTest, ResponseBodyOverLimitIsResourceExhausted) {
  ClientOptions small;
  small.max_body_bytes = 100;
  Client client(small);
  absl::StatusOr<Response> r = client.Request(
      "POST", "127.0.0.1", port(), "/echo", {}, std::string(200, 'x'));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted)
      << r.status() << " " << (r.ok() ? r->body.size() : 0);
}

TEST_F(HttpClientTest, InvalidMethodOrTargetIsInvalidArgument) {
  EXPECT_EQ(
      client_.Request("GE T", "127.0.0.1", port(), "/echo").status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_.Request("GET", "127.0.0.1", port(), "/a b").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_.Request("GET", "127.0.0.1", port(), "/x\r\nEvil: 1")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(HttpClientTest, NextChunkTimesOutAndTheStreamStaysUsable) {
  std::promise<std::shared_ptr<Responder>> streaming;
  server_->Handle("GET", "/events", [&](Request, std::shared_ptr<Responder> r) {
    r->StartStream(200, {});
    streaming.set_value(r);
  });
  absl::StatusOr<std::unique_ptr<ClientStream>> stream =
      client_.OpenStream("GET", "127.0.0.1", port(), "/events");
  ASSERT_TRUE(stream.ok()) << stream.status();
  std::shared_ptr<Responder> responder = streaming.get_future().get();

  absl::StatusOr<std::optional<std::string>> chunk =
      (*stream)->NextChunk(absl::Milliseconds(100));
  EXPECT_EQ(chunk.status().code(), absl::StatusCode::kDeadlineExceeded);

  ASSERT_TRUE(responder->WriteChunk("first"));
  chunk = (*stream)->NextChunk(kWait);
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  ASSERT_TRUE(chunk->has_value());
  EXPECT_EQ(**chunk, "first");

  responder->WriteChunk("second");
  responder->Close();
  chunk = (*stream)->NextChunk(kWait);
  ASSERT_TRUE(chunk.ok() && chunk->has_value()) << chunk.status();
  EXPECT_EQ(**chunk, "second");
  chunk = (*stream)->NextChunk(kWait);
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_FALSE(chunk->has_value());
}

TEST_F(HttpClientTest, ChunksSplitAcrossReadsArriveWhole) {
  // A 1 MiB chunk needs many socket reads; small chunks share one read.
  server_->Handle("GET", "/mixed", [](Request, std::shared_ptr<Responder> r) {
    r->StartStream(200, {});
    r->WriteChunk("a");
    r->WriteChunk(std::string(1 << 20, 'b'));
    r->WriteChunk("c");
    r->WriteChunk("d");
    r->Close();
  });
  absl::StatusOr<std::unique_ptr<ClientStream>> stream =
      client_.OpenStream("GET", "127.0.0.1", port(), "/mixed");
  ASSERT_TRUE(stream.ok()) << stream.status();
  std::vector<std::string> chunks;
  for (;;) {
    absl::StatusOr<std::optional<std::string>> chunk =
        (*stream)->NextChunk(kWait);
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    if (!chunk->has_value()) break;
    chunks.push_back(std::move(**chunk));
  }
  ASSERT_EQ(chunks.size(), 4u);
  EXPECT_EQ(chunks[0], "a");
  EXPECT_EQ(chunks[1], std::string(1 << 20, 'b'));
  EXPECT_EQ(chunks[2], "c");
  EXPECT_EQ(chunks[3], "d");
}

TEST_F(HttpClientTest, StreamOfAnOrdinaryResponseYieldsItsBody) {
  absl::StatusOr<std::unique_ptr<ClientStream>> stream = client_.OpenStream(
      "POST", "127.0.0.1", port(), "/echo", {}, "not chunked");
  ASSERT_TRUE(stream.ok()) << stream.status();
  EXPECT_EQ((*stream)->status(), 200);
  std::string body;
  for (;;) {
    absl::StatusOr<std::optional<std::string>> chunk =
        (*stream)->NextChunk(kWait);
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    if (!chunk->has_value()) break;
    body += **chunk;
  }
  EXPECT_EQ(body, "not chunked");
}

TEST_F(HttpClientTest, StreamReportsTheErrorStatusOfTheResponse) {
  absl::StatusOr<std::unique_ptr<ClientStream>> stream =
      client_.OpenStream("GET", "127.0.0.1", port(), "/missing");
  ASSERT_TRUE(stream.ok()) << stream.status();
  EXPECT_EQ((*stream)->status(), 404);
}

TEST_F(HttpClientTest, StreamCanOutliveItsClient) {
  Event closed;
  std::shared_ptr<Responder> responder;  // keeps the stream open
  server_->Handle("GET", "/events", [&](Request, std::shared_ptr<Responder> r) {
    responder = r;
    r->OnClose([&] { closed.Notify(); });
    r->StartStream(200, {});
    r->WriteChunk("x");
  });
  std::unique_ptr<ClientStream> stream;
  {
    Client client;
    absl::StatusOr<std::unique_ptr<ClientStream>> s =
        client.OpenStream("GET", "127.0.0.1", port(), "/events");
    ASSERT_TRUE(s.ok()) << s.status();
    stream = std::move(*s);
  }
  absl::StatusOr<std::optional<std::string>> chunk = stream->NextChunk(kWait);
  ASSERT_TRUE(chunk.ok() && chunk->has_value()) << chunk.status();
  EXPECT_EQ(**chunk, "x");
  stream.reset();
  EXPECT_TRUE(closed.WaitFor(kWait));
}

}  // namespace
}  // namespace http
}  // namespace cairn
