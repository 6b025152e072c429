// FakeApiServer: a tiny in-process stand-in for one master's streaming API
// endpoint (/api/v1/scheduler, /api/v1/agent), for unit tests of the test
// clients that need no real cairn-master. It records every request and
// answers as the test's handler says; the handler may open a RecordIO event
// stream (StartStream) that the test then feeds (SendEvent) and ends
// (CloseStream).
//
//   FakeApiServer master("/api/v1/scheduler");
//   master.SetHandler([&](const http::Request& req,
//                         std::shared_ptr<http::Responder> r) {
//     if (IsSubscribe(req)) { master.StartStream(r, "Mesos-Stream-Id", "s1");
//                             master.SendEvent(subscribed); }
//     else r->Respond(http::Response{202, {}, ""});
//   });
//   ASSERT_TRUE(master.Start().ok());
//
// Thread safety: every method is thread-safe. The handler runs on a server
// thread, after the request is recorded, and may call any method but Stop().

#ifndef CAIRN_TESTS_INTERNAL_FAKE_API_SERVER_H_
#define CAIRN_TESTS_INTERNAL_FAKE_API_SERVER_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/http_message.h"
#include "common/http_server.h"
#include "google/protobuf/message.h"

namespace cairn::tests {

class FakeApiServer {
 public:
  using Handler = std::function<void(const http::Request& request,
                                     std::shared_ptr<http::Responder> r)>;
  using Predicate = std::function<bool(const http::Request& request)>;

  // Serves POST `path` on 127.0.0.1, an ephemeral port.
  explicit FakeApiServer(std::string path);
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;
  ~FakeApiServer();

  // Errors as http::Server::Start.
  absl::Status Start();
  // Ends the stream and stops the server. Idempotent.
  void Stop();

  uint16_t port() const { return server_.port(); }
  // "127.0.0.1:<port>".
  std::string address() const;

  // How requests are answered from now on (default: 202, empty body).
  void SetHandler(Handler handler);

  // Every request so far, in arrival order.
  std::vector<http::Request> requests() const;
  // How many requests so far satisfy `predicate`.
  size_t CountRequests(const Predicate& predicate) const;
  // Waits until at least `count` requests satisfy `predicate`; false if
  // `deadline` passes first.
  bool WaitForRequests(const Predicate& predicate, size_t count,
                       absl::Time deadline) const;

  // Answers `r` with 200, Content-Type application/recordio,
  // Message-Content-Type application/json and `header: stream_id`, and makes
  // it the current stream (ending the previous one). Returns false if `r`
  // could not start streaming.
  bool StartStream(const std::shared_ptr<http::Responder>& r,
                   const std::string& header, const std::string& stream_id);
  // Writes `message` as JSON, RecordIO-framed, as one chunk of the current
  // stream. False if no stream is open.
  bool SendEvent(const google::protobuf::Message& message);
  // Ends the current stream (final chunk), if any.
  void CloseStream();
  // True while a stream is open and its client connected.
  bool stream_open() const;

 private:
  const std::string path_;
  http::Server server_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;  // a request arrived
  // Guarded by mu_:
  Handler handler_;
  std::vector<http::Request> requests_;
  std::shared_ptr<http::Responder> stream_;
};

}  // namespace cairn::tests

#endif  // CAIRN_TESTS_INTERNAL_FAKE_API_SERVER_H_
