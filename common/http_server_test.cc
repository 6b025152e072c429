#include "common/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "gtest/gtest.h"

namespace cairn {
namespace http {
namespace {

constexpr absl::Duration kWait = absl::Seconds(5);  // bound on every wait

// A plain TCP connection for sending exactly the bytes a test wants
// (garbage, partial requests) and observing when the server closes.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ =
        connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawConnection() { close(fd_); }

  bool connected() const { return connected_; }

  bool Send(absl::string_view data) {
    while (!data.empty()) {
      ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads what is available within `timeout`. Returns false once the server
  // has closed the connection (EOF or reset).
  bool ReadSome(absl::Duration timeout) {
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    if (r <= 0) return true;  // nothing yet; still open
    char buf[16384];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    data_.append(buf, static_cast<size_t>(n));
    return true;
  }

  // Reads until the received data contains `needle`; false on timeout/close.
  bool ReadUntil(absl::string_view needle, absl::Duration timeout = kWait) {
    absl::Time deadline = absl::Now() + timeout;
    while (!absl::StrContains(data_, needle)) {
      if (closed_ || absl::Now() >= deadline) return false;
      ReadSome(deadline - absl::Now());
    }
    return true;
  }

  // Reads one response with a Content-Length body and removes it from the
  // received data. Returns "" on timeout.
  std::string ReadResponse(absl::Duration timeout = kWait) {
    if (!ReadUntil("\r\n\r\n", timeout)) return "";
    size_t header_end = data_.find("\r\n\r\n") + 4;
    size_t length = 0;
    size_t cl = data_.find("Content-Length: ");
    if (cl != std::string::npos && cl < header_end) {
      size_t eol = data_.find("\r\n", cl);
      size_t v = cl + strlen("Content-Length: ");
      if (!absl::SimpleAtoi(data_.substr(v, eol - v), &length)) return "";
    }
    absl::Time deadline = absl::Now() + timeout;
    while (data_.size() < header_end + length) {
      if (closed_ || absl::Now() >= deadline) return "";
      ReadSome(deadline - absl::Now());
    }
    std::string response = data_.substr(0, header_end + length);
    data_.erase(0, header_end + length);
    return response;
  }

  // True if the server closes the connection within `timeout`.
  bool WaitClosed(absl::Duration timeout = kWait) {
    absl::Time deadline = absl::Now() + timeout;
    while (!closed_) {
      if (absl::Now() >= deadline) return false;
      ReadSome(deadline - absl::Now());
    }
    return true;
  }

  const std::string& data() const { return data_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string data_;
};

// Polls `condition` until it holds or `timeout` passes (for counters the
// server exposes; every wait is bounded).
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

Response Echo(const Request& request) {
  Response r = Response::Text(200, request.body);
  r.headers.Set("X-Method", request.method);
  r.headers.Set("X-Path", request.path);
  return r;
}

class HttpServerTest : public ::testing::Test {
 protected:
  // Creates and starts a server with `options` and an echo route.
  Server& StartServer(ServerOptions options = {}) {
    server_ = std::make_unique<Server>(options);
    server_->HandleSync("*", "/echo", Echo);
    absl::Status s = server_->Start();
    EXPECT_TRUE(s.ok()) << s;
    return *server_;
  }
  uint16_t port() const { return server_->port(); }

  std::unique_ptr<Server> server_;
  Client client_;
};

TEST_F(HttpServerTest, KeepAliveReusesOneConnection) {
  Server& server = StartServer();
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<Response> r = client_.Request(
        "POST", "127.0.0.1", port(), "/echo", {}, absl::StrCat("body ", i));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, absl::StrCat("body ", i));
  }
  EXPECT_EQ(server.connections_accepted(), 1u);
  EXPECT_EQ(client_.connections_opened(), 1u);
}

TEST_F(HttpServerTest, ConnectionCloseIsHonoured) {
  StartServer();
  RawConnection raw(port());
  ASSERT_TRUE(
      raw.Send("GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::string response = raw.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(response, "HTTP/1.1 200 OK\r\n")) << response;
  EXPECT_TRUE(absl::StrContains(response, "\r\nConnection: close\r\n"));
  EXPECT_TRUE(raw.WaitClosed());
}

TEST_F(HttpServerTest, Http10ClosesUnlessKeepAliveRequested) {
  StartServer();
  RawConnection raw(port());
  ASSERT_TRUE(raw.Send("GET /echo HTTP/1.0\r\n\r\n"));
  std::string response = raw.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(response, "HTTP/1.0 200 OK\r\n")) << response;
  EXPECT_TRUE(raw.WaitClosed());

  RawConnection kept(port());
  ASSERT_TRUE(
      kept.Send("GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  response = kept.ReadResponse();
  EXPECT_TRUE(absl::StrContains(response, "\r\nConnection: keep-alive\r\n"))
      << response;
  ASSERT_TRUE(kept.Send("GET /echo HTTP/1.0\r\n\r\n"));
  EXPECT_TRUE(absl::StartsWith(kept.ReadResponse(), "HTTP/1.0 200 OK"));
  EXPECT_TRUE(kept.WaitClosed());
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartServer();
  RawConnection raw(port());
  ASSERT_TRUE(raw.Send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecond"));
  EXPECT_TRUE(absl::EndsWith(raw.ReadResponse(), "\r\n\r\nfirst"));
  EXPECT_TRUE(absl::EndsWith(raw.ReadResponse(), "\r\n\r\nsecond"));
}

TEST_F(HttpServerTest, BodyOverLimitGets413WithJsonError) {
  ServerOptions options;
  options.max_body_bytes = 1024;
  StartServer(options);
  absl::StatusOr<Response> r = client_.Request(
      "POST", "127.0.0.1", port(), "/echo", {}, std::string(2048, 'x'));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->headers.Get("Content-Type"), "application/json");
  EXPECT_TRUE(absl::StartsWith(r->body, "{\"error\": \"")) << r->body;

  // At the limit is fine.
  r = client_.Request("POST", "127.0.0.1", port(), "/echo", {},
                      std::string(1024, 'x'));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, ChunkedBodyOverLimitGets413) {
  ServerOptions options;
  options.max_body_bytes = 8;
  StartServer(options);
  RawConnection raw(port());
  ASSERT_TRUE(raw.Send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  std::string response = raw.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(response, "HTTP/1.1 413 ")) << response;
  EXPECT_TRUE(raw.WaitClosed());
}

TEST_F(HttpServerTest, ChunkedRequestBodyIsAccepted) {
  StartServer();
  RawConnection raw(port());
  ASSERT_TRUE(raw.Send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  std::string response = raw.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(response, "HTTP/1.1 200 OK\r\n")) << response;
  EXPECT_TRUE(absl::EndsWith(response, "\r\n\r\nhello world")) << response;
}

TEST_F(HttpServerTest, ExpectContinueGets100BeforeBody) {
  StartServer();
  RawConnection raw(port());
  ASSERT_TRUE(
      raw.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
               "Expect: 100-continue\r\n\r\n"));
  ASSERT_TRUE(raw.ReadUntil("HTTP/1.1 100 Continue\r\n\r\n"));
  ASSERT_TRUE(raw.Send("data"));
  ASSERT_TRUE(raw.ReadUntil("\r\n\r\ndata"));
}

TEST_F(HttpServerTest, ReadTimeoutClosesSlowlorisConnection) {
  ServerOptions options;
  options.read_timeout = absl::Milliseconds(200);
  options.idle_timeout = absl::Seconds(30);
  StartServer(options);
  RawConnection raw(port());
  ASSERT_TRUE(raw.connected());
  // Trickle a request one byte at a time: each byte arrives well within any
  // per-read timeout, but the whole request never completes.
  const std::string request =
      "GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(1000, 'a');
  absl::Time start = absl::Now();
  bool closed = false;
  for (size_t i = 0; i < request.size() && !closed; ++i) {
    raw.Send(request.substr(i, 1));
    closed = !raw.ReadSome(absl::Milliseconds(20));
    if (absl::Now() - start > kWait) break;
  }
  EXPECT_TRUE(closed || raw.WaitClosed());
  absl::Duration elapsed = absl::Now() - start;
  EXPECT_GE(elapsed, absl::Milliseconds(150));
  EXPECT_LT(elapsed, absl::Seconds(3));
  EXPECT_EQ(raw.data(), "");  // closed without an answer
}

TEST_F(HttpServerTest, IdleTimeoutClosesIdleKeepAliveConnection) {
  ServerOptions options;
  options.read_timeout = absl::Seconds(30);
  options.idle_timeout = absl::Milliseconds(200);
  Server& server = StartServer(options);
  RawConnection raw(port());
  ASSERT_TRUE(raw.Send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(absl::StartsWith(raw.ReadResponse(), "HTTP/1.1 200 OK"));
  absl::Time idle_since = absl::Now();
  EXPECT_TRUE(raw.WaitClosed());
  EXPECT_GE(absl::Now() - idle_since, absl::Milliseconds(150));
  EXPECT_TRUE(Eventually([&] { return server.active_connections() == 0; }));
}

TEST_F(HttpServerTest, StreamingResponseDeliversEachWriteAsOneChunkInOrder) {
  Server& server = StartServer();
  constexpr int kChunks = 50;
  std::promise<void> saw_disconnect;
  std::atomic<bool> later_write_failed{false};
  std::thread producer;
  server.Handle(
      "GET", "/stream", [&](Request, std::shared_ptr<Responder> responder) {
        responder->OnClose([&] { saw_disconnect.set_value(); });
        ASSERT_TRUE(responder->StartStream(
            200, {{"content-type", "application/recordio"}}));
        // Write from another thread, as producers do.
        producer = std::thread([responder, &later_write_failed] {
          for (int i = 0; i < kChunks; ++i) {
            // Sizes vary: 1 byte up to 64 KiB.
            std::string chunk = absl::StrCat(i, ":");
            chunk.resize(i % 7 == 0 ? 65536 : 1 + i * 13, 'a' + i % 26);
            responder->WriteChunk(std::move(chunk));
          }
          absl::Time deadline = absl::Now() + kWait;
          while (!responder->closed() && absl::Now() < deadline) {
            absl::SleepFor(absl::Milliseconds(1));
          }
          later_write_failed = !responder->WriteChunk("late");
        });
      });

  absl::StatusOr<std::unique_ptr<ClientStream>> stream =
      client_.OpenStream("GET", "127.0.0.1", port(), "/stream");
  ASSERT_TRUE(stream.ok()) << stream.status();
  EXPECT_EQ((*stream)->status(), 200);
  EXPECT_EQ((*stream)->headers().Get("Transfer-Encoding"), "chunked");
  EXPECT_EQ((*stream)->headers().Get("Content-Type"), "application/recordio");
  for (int i = 0; i < kChunks; ++i) {
    absl::StatusOr<std::optional<std::string>> chunk =
        (*stream)->NextChunk(kWait);
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    ASSERT_TRUE(chunk->has_value());
    std::string expected = absl::StrCat(i, ":");
    expected.resize(i % 7 == 0 ? 65536 : 1 + i * 13, 'a' + i % 26);
    ASSERT_EQ(**chunk, expected) << "chunk " << i;
  }
  stream->reset();  // the client goes away
  EXPECT_EQ(saw_disconnect.get_future().wait_for(std::chrono::seconds(5)),
            std::future_status::ready);
  producer.join();
  EXPECT_TRUE(later_write_failed);
}

TEST_F(HttpServerTest, WriteTimeoutDropsAClientThatStopsReading) {
  ServerOptions options;
  options.write_timeout = absl::Milliseconds(200);
  Server& server = StartServer(options);
  Event closed;
  std::promise<std::shared_ptr<Responder>> streaming;
  server.Handle("GET", "/firehose", [&](Request, std::shared_ptr<Responder> r) {
    r->OnClose([&] { closed.Notify(); });
    r->StartStream(200, {});
    streaming.set_value(r);
  });
  RawConnection raw(port());  // sends a request, then never reads
  ASSERT_TRUE(raw.Send("GET /firehose HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::shared_ptr<Responder> responder = streaming.get_future().get();
  // Keep a few MiB queued until the socket buffers fill and a write stalls.
  const std::string chunk(1 << 20, 'z');
  absl::Time deadline = absl::Now() + kWait;
  while (!responder->closed() && absl::Now() < deadline) {
    if (responder->queued_bytes() < (4u << 20)) {
      responder->WriteChunk(chunk);
    } else {
      closed.WaitFor(absl::Milliseconds(5));
    }
  }
  EXPECT_TRUE(closed.WaitFor(kWait));
  EXPECT_EQ(responder->queued_bytes(), 0u);
  EXPECT_TRUE(Eventually([&] { return server.active_connections() == 0; }));
}

TEST_F(HttpServerTest, ClosedStreamEndsWithFinalChunkAndConnectionIsReused) {
  Server& server = StartServer();
  server.Handle("GET", "/three", [](Request, std::shared_ptr<Responder> r) {
    r->StartStream(200, {});
    r->WriteChunk("one");
    r->WriteChunk("");  // ignored: would end the stream
    r->WriteChunk("two");
    r->WriteChunk("three");
    r->Close();
    EXPECT_FALSE(r->WriteChunk("after close"));
  });
  absl::StatusOr<std::unique_ptr<ClientStream>> stream =
      client_.OpenStream("GET", "127.0.0.1", port(), "/three");
  ASSERT_TRUE(stream.ok()) << stream.status();
  std::vector<std::string> chunks;
  for (;;) {
    absl::StatusOr<std::optional<std::string>> chunk =
        (*stream)->NextChunk(kWait);
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    if (!chunk->has_value()) break;
    chunks.push_back(**chunk);
  }
  EXPECT_EQ(chunks, (std::vector<std::string>{"one", "two", "three"}));

  // The same connection serves the next request after the stream ended.
  RawConnection raw(port());
  ASSERT_TRUE(
      raw.Send("GET /three HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(raw.ReadUntil("0\r\n\r\nHTTP/1.1 200 OK"));
}

TEST_F(HttpServerTest, UnknownPathGets404AndWrongMethod405) {
  Server& server = StartServer();
  server.HandleSync("GET", "/only-get",
                    [](const Request&) { return Response::Text(200, "ok"); });
  absl::StatusOr<Response> r =
      client_.Request("GET", "127.0.0.1", port(), "/nowhere");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 404);
  EXPECT_TRUE(absl::StrContains(r->body, "\"error\"")) << r->body;

  r = client_.Request("DELETE", "127.0.0.1", port(), "/only-get");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->headers.Get("Allow"), "GET");
}

TEST_F(HttpServerTest, RoutesPreferExactThenLongestPrefixThenSpecificMethod) {
  Server& server = StartServer();
  auto text = [](std::string s) {
    return [s](const Request&) { return Response::Text(200, s); };
  };
  server.HandleSync("*", "/files/*", text("files-prefix"));
  server.HandleSync("*", "/files/deep/*", text("deep-prefix"));
  server.HandleSync("*", "/files/read", text("read-any"));
  server.HandleSync("POST", "/files/read", text("read-post"));
  server.HandleSync("GET", "/*", text("root"));

  auto body = [&](const char* method, const char* target) {
    absl::StatusOr<Response> r =
        client_.Request(method, "127.0.0.1", port(), target);
    return r.ok() ? r->body : r.status().ToString();
  };
  EXPECT_EQ(body("GET", "/files/read"), "read-any");
  EXPECT_EQ(body("POST", "/files/read"), "read-post");
  EXPECT_EQ(body("GET", "/files/other"), "files-prefix");
  EXPECT_EQ(body("GET", "/files/deep/x"), "deep-prefix");
  EXPECT_EQ(body("GET", "/elsewhere"), "root");
  EXPECT_EQ(body("GET", "/echo"), "");  // exact beats the "/*" prefix

  absl::StatusOr<Response> head =
      client_.Request("HEAD", "127.0.0.1", port(), "/elsewhere");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers.Get("Content-Length"), "4");
  EXPECT_EQ(head->body, "");
}

TEST_F(HttpServerTest, RequestCarriesPathQueryAndRemoteAddress) {
  Server& server = StartServer();
  std::promise<Request> seen;
  server.HandleSync("GET", "/q", [&](const Request& r) {
    seen.set_value(r);
    return Response::Text(200, "");
  });
  ASSERT_TRUE(
      client_.Request("GET", "127.0.0.1", port(), "/q?a=1&b=x%20y+z&a=2").ok());
  Request r = seen.get_future().get();
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/q");
  EXPECT_EQ(r.target, "/q?a=1&b=x%20y+z&a=2");
  EXPECT_EQ(r.query.at("a"), "1");
  EXPECT_EQ(r.query.at("b"), "x y z");
  EXPECT_EQ(r.remote_address, "127.0.0.1");
  EXPECT_NE(r.remote_port, 0);
  EXPECT_EQ(r.version, 11);
}

TEST_F(HttpServerTest, HeaderLookupIsCaseInsensitiveAndSentNamesCanonical) {
  Server& server = StartServer();
  server.HandleSync("GET", "/h", [](const Request& r) {
    Response response = Response::Text(200, r.headers.Get("X-Custom-Header"));
    response.headers.Set("x-mesos-stream-id", "abc");
    response.headers.Set("www-authenticate", "Basic");
    return response;
  });
  RawConnection raw(port());
  ASSERT_TRUE(
      raw.Send("GET /h HTTP/1.1\r\nhost: x\r\nx-custom-header: lower\r\n\r\n"));
  std::string response = raw.ReadResponse();
  EXPECT_TRUE(absl::EndsWith(response, "\r\n\r\nlower")) << response;
  EXPECT_TRUE(absl::StrContains(response, "\r\nX-Mesos-Stream-Id: abc\r\n"));
  EXPECT_TRUE(absl::StrContains(response, "\r\nWWW-Authenticate: Basic\r\n"));
  EXPECT_TRUE(absl::StrContains(response, "\r\nContent-Type: text/plain"));
  EXPECT_TRUE(absl::StrContains(response, "\r\nContent-Length: 5\r\n"));
}

TEST_F(HttpServerTest, GetAllowOriginIsAddedToGetAndHeadAnswersOnly) {
  ServerOptions options;
  options.get_allow_origin = "*";
  Server& server = StartServer(options);
  server.HandleSync("GET", "/own", [](const Request&) {
    Response response = Response::Text(200, "");
    response.headers.Set("Access-Control-Allow-Origin", "https://a.example");
    return response;
  });
  server.Handle("GET", "/stream",
                [](Request, std::shared_ptr<Responder> responder) {
                  responder->StartStream(200, {});
                  responder->WriteChunk("x");
                  responder->Close();
                });
  auto origin = [&](const char* method, const char* target) {
    absl::StatusOr<Response> r =
        client_.Request(method, "127.0.0.1", port(), target);
    return r.ok() ? r->headers.Get("Access-Control-Allow-Origin", "(none)")
                  : r.status().ToString();
  };
  EXPECT_EQ(origin("GET", "/echo"), "*");
  EXPECT_EQ(origin("HEAD", "/echo"), "*");
  EXPECT_EQ(origin("GET", "/stream"), "*");
  EXPECT_EQ(origin("GET", "/nowhere"), "*");  // the 404 too
  EXPECT_EQ(origin("GET", "/own"), "https://a.example");
  EXPECT_EQ(origin("POST", "/echo"), "(none)");
  EXPECT_EQ(origin("DELETE", "/echo"), "(none)");

  // Off by default.
  StartServer();
  EXPECT_EQ(origin("GET", "/echo"), "(none)");
}

TEST_F(HttpServerTest, GarbageGets400AndServerKeepsServing) {
  StartServer();
  {
    RawConnection raw(port());
    const char kGarbage[] = "\x00\x01\x02garbage \xff\r\n\r\n";
    ASSERT_TRUE(raw.Send(std::string(kGarbage, sizeof(kGarbage) - 1)));
    std::string response = raw.ReadResponse();
    EXPECT_TRUE(absl::StartsWith(response, "HTTP/1.1 400 ")) << response;
    EXPECT_TRUE(absl::StrContains(response, "\"error\""));
    EXPECT_TRUE(raw.WaitClosed());
  }
  {
    RawConnection raw(port());
    ASSERT_TRUE(raw.Send("GET /echo HTTP/1.1\r\nContent-Length: nope\r\n\r\n"));
    EXPECT_TRUE(absl::StartsWith(raw.ReadResponse(), "HTTP/1.1 400 "));
    EXPECT_TRUE(raw.WaitClosed());
  }
  absl::StatusOr<Response> r =
      client_.Request("GET", "127.0.0.1", port(), "/echo");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, OversizedHeaderGets431) {
  ServerOptions options;
  options.max_header_bytes = 1024;
  StartServer(options);
  RawConnection raw(port());
  ASSERT_TRUE(raw.Send(
      "GET /echo HTTP/1.1\r\nX-Big: " + std::string(4096, 'b') + "\r\n\r\n"));
  EXPECT_TRUE(absl::StartsWith(raw.ReadResponse(), "HTTP/1.1 431 "));
}

TEST_F(HttpServerTest, ConcurrentClientsAllGetTheirOwnAnswers) {
  ServerOptions options;
  options.num_threads = 4;
  StartServer(options);
  constexpr int kThreads = 8;
  constexpr int kRequests = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Client client;
      for (int i = 0; i < kRequests; ++i) {
        std::string body = absl::StrCat("thread ", t, " request ", i);
        absl::StatusOr<Response> r =
            client.Request("POST", "127.0.0.1", port(), "/echo", {}, body);
        if (r.ok() && r->status == 200 && r->body == body) ++ok;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kRequests);
  EXPECT_EQ(server_->connections_accepted(), static_cast<uint64_t>(kThreads));
}

TEST_F(HttpServerTest, AsyncHandlerAnswersFromAnotherThread) {
  Server& server = StartServer();
  std::vector<std::thread> workers;
  std::mutex mu;
  server.Handle("GET", "/later",
                [&](Request req, std::shared_ptr<Responder> r) {
                  std::lock_guard<std::mutex> lock(mu);
                  workers.emplace_back([r, path = req.path] {
                    r->Respond(Response::Text(202, "answered " + path));
                  });
                });
  absl::StatusOr<Response> resp =
      client_.Request("GET", "127.0.0.1", port(), "/later");
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 202);
  EXPECT_EQ(resp->body, "answered /later");
  std::lock_guard<std::mutex> lock(mu);
  for (std::thread& t : workers) t.join();
}

TEST_F(HttpServerTest, DroppedResponderGets500AndThrowingHandler500) {
  Server& server = StartServer();
  server.Handle("GET", "/drop", [](Request, std::shared_ptr<Responder>) {});
  server.HandleSync("GET", "/throw", [](const Request&) -> Response {
    throw std::runtime_error("boom");
  });
  absl::StatusOr<Response> r =
      client_.Request("GET", "127.0.0.1", port(), "/drop");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 500);
  r = client_.Request("GET", "127.0.0.1", port(), "/throw");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 500);
}

TEST_F(HttpServerTest, MaxConnectionsClosesConnectionsBeyondTheLimit) {
  ServerOptions options;
  options.max_connections = 2;
  Server& server = StartServer(options);
  RawConnection a(port());
  RawConnection b(port());
  ASSERT_TRUE(Eventually([&] { return server.active_connections() == 2; }));
  RawConnection c(port());
  EXPECT_TRUE(c.WaitClosed());
  ASSERT_TRUE(a.Send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(absl::StartsWith(a.ReadResponse(), "HTTP/1.1 200 OK"));
  EXPECT_EQ(server.connections_accepted(), 2u);
}

TEST_F(HttpServerTest, StopLetsAnInFlightRequestFinish) {
  Server& server = StartServer();
  std::promise<std::shared_ptr<Responder>> in_flight;
  server.Handle("GET", "/slow", [&](Request, std::shared_ptr<Responder> r) {
    in_flight.set_value(r);
  });
  auto response = std::async(std::launch::async, [&] {
    Client client;
    return client.Request("GET", "127.0.0.1", port(), "/slow");
  });
  std::shared_ptr<Responder> responder = in_flight.get_future().get();
  RawConnection idle(port());
  ASSERT_TRUE(idle.connected());
  ASSERT_TRUE(Eventually([&] { return server.active_connections() == 2; }));

  absl::Time start = absl::Now();
  std::thread stopper([&] { server.Stop(); });
  ASSERT_TRUE(Eventually([&] { return server.stopping(); }));
  EXPECT_TRUE(idle.WaitClosed());  // idle connections go right away
  EXPECT_TRUE(responder->Respond(Response::Text(200, "finished")));
  responder.reset();
  stopper.join();
  EXPECT_LT(absl::Now() - start, server.options().shutdown_grace);

  absl::StatusOr<Response> r = response.get();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "finished");
  EXPECT_EQ(r->headers.Get("Connection"), "close");
  server.Stop();  // a second Stop() is harmless
  EXPECT_EQ(
      client_.Request("GET", "127.0.0.1", port(), "/echo").status().code(),
      absl::StatusCode::kUnavailable);
}

TEST_F(HttpServerTest, StopAfterGraceClosesUnansweredRequest) {
  ServerOptions options;
  options.shutdown_grace = absl::Milliseconds(200);
  Server& server = StartServer(options);
  std::promise<std::shared_ptr<Responder>> in_flight;
  server.Handle("GET", "/never", [&](Request, std::shared_ptr<Responder> r) {
    in_flight.set_value(r);
  });
  auto response = std::async(std::launch::async, [&] {
    Client client;
    return client.Request("GET", "127.0.0.1", port(), "/never");
  });
  std::shared_ptr<Responder> responder = in_flight.get_future().get();
  Event closed;
  responder->OnClose([&] { closed.Notify(); });
  absl::Time start = absl::Now();
  server.Stop();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
  EXPECT_TRUE(closed.WaitFor(kWait));
  EXPECT_TRUE(responder->closed());
  EXPECT_FALSE(responder->Respond(Response::Text(200, "too late")));
  EXPECT_EQ(response.get().status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(HttpServerTest, StopEndsStreamsAndRunsTheirOnClose) {
  Server& server = StartServer();
  Event closed;
  std::promise<std::shared_ptr<Responder>> streaming;
  server.Handle("GET", "/events", [&](Request, std::shared_ptr<Responder> r) {
    r->OnClose([&] { closed.Notify(); });
    r->StartStream(200, {});
    r->WriteChunk("hello");
    streaming.set_value(r);
  });
  absl::StatusOr<std::unique_ptr<ClientStream>> stream =
      client_.OpenStream("GET", "127.0.0.1", port(), "/events");
  ASSERT_TRUE(stream.ok()) << stream.status();
  std::shared_ptr<Responder> responder = streaming.get_future().get();
  absl::StatusOr<std::optional<std::string>> chunk =
      (*stream)->NextChunk(kWait);
  ASSERT_TRUE(chunk.ok() && chunk->has_value()) << chunk.status();
  EXPECT_EQ(**chunk, "hello");

  absl::Time start = absl::Now();
  server.Stop();
  EXPECT_LT(absl::Now() - start, server.options().shutdown_grace);
  EXPECT_TRUE(closed.HasBeenNotified());
  EXPECT_FALSE(responder->WriteChunk("after stop"));
  chunk = (*stream)->NextChunk(kWait);
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_FALSE(chunk->has_value());  // a clean end of stream
}

TEST_F(HttpServerTest, ResponderOutlivingTheServerIsHarmless) {
  std::shared_ptr<Responder> kept;
  {
    Server& server = StartServer();
    std::promise<void> got;
    server.Handle("GET", "/keep", [&](Request, std::shared_ptr<Responder> r) {
      kept = r;
      r->StartStream(200, {});
      got.set_value();
    });
    auto stream = client_.OpenStream("GET", "127.0.0.1", port(), "/keep");
    ASSERT_TRUE(stream.ok()) << stream.status();
    got.get_future().wait();
    server_.reset();
  }
  EXPECT_TRUE(kept->closed());
  EXPECT_FALSE(kept->WriteChunk("x"));
  kept->Close();
}

TEST_F(HttpServerTest, StartReportsBindErrorsWithTheAddress) {
  Server& first = StartServer();
  ServerOptions same;
  same.port = first.port();
  Server second(same);
  absl::Status s = second.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_TRUE(
      absl::StrContains(s.message(), absl::StrCat("127.0.0.1:", first.port())))
      << s;

  ServerOptions bad;
  bad.address = "not-an-address";
  Server third(bad);
  s = third.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "not-an-address")) << s;

  ServerOptions foreign;
  foreign.address = "192.0.2.1";  // TEST-NET-1: never local; bind fails
  Server fourth(foreign);
  s = fourth.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;

  EXPECT_EQ(first.Start().code(), absl::StatusCode::kFailedPrecondition);
  first.Stop();
  EXPECT_EQ(first.Start().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace http
}  // namespace cairn
