#include "common/http_server.h"

#include <algorithm>
#include <array>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"

namespace cairn {
namespace http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

// Bytes asked for per socket read.
constexpr size_t kReadChunkBytes = 16 * 1024;
// While a request is being handled the connection keeps reading (to notice a
// disconnect); it stops once this much pipelined input is buffered.
constexpr size_t kMaxPipelinedBytes = 1 << 20;
// After the last response on a connection the server half-closes and reads
// (discarding) for at most this long, so the client sees the response rather
// than a reset caused by its own unread bytes.
// Shorter while the server stops: then only a client that keeps sending
// (none of ours do) could lose the end of its response.
constexpr absl::Duration kMaxLinger = absl::Seconds(2);
constexpr absl::Duration kMaxLingerWhileStopping = absl::Milliseconds(200);

std::chrono::nanoseconds ToChrono(absl::Duration d) {
  // steady_timer overflows on "infinite"; a year is forever enough.
  return absl::ToChronoNanoseconds(std::min(d, absl::Hours(24 * 365)));
}

std::string ToString(beast::string_view s) {
  return std::string(s.data(), s.size());
}

bool HasNoBody(int status) {
  return (status >= 100 && status < 200) || status == 204 || status == 304;
}

// "HTTP/1.1 200 OK\r\n" followed by the handler's headers, minus those the
// server owns (framing and connection management).
std::string ResponseHead(int version, int status, const Headers& headers) {
  std::string head =
      absl::StrFormat("HTTP/%d.%d %d %s\r\n", version / 10, version % 10,
                      status, ReasonPhrase(status));
  for (const auto& [name, value] : headers) {
    if (absl::EqualsIgnoreCase(name, "Content-Length") ||
        absl::EqualsIgnoreCase(name, "Transfer-Encoding") ||
        absl::EqualsIgnoreCase(name, "Connection")) {
      continue;
    }
    absl::StrAppend(&head, CanonicalHeaderName(name), ": ",
                    SanitizeHeaderValue(value), "\r\n");
  }
  return head;
}

}  // namespace

// ---------------------------------------------------------------------------
// Server::Impl

class Server::Impl {
 public:
  explicit Impl(Server* server)
      : server_(server),
        options_(server->options_),
        ioc_(std::max(1, options_.num_threads)),
        work_(net::make_work_guard(ioc_)),
        acceptor_(net::make_strand(ioc_)),
        accept_retry_timer_(acceptor_.get_executor()) {}

  void AddRoute(absl::string_view method, absl::string_view pattern,
                Handler handler);

  struct RouteMatch {
    std::shared_ptr<const Handler> handler;  // null: see status
    int status = 200;                        // 404 or 405 when no handler
    std::string allow;                       // for 405
  };
  RouteMatch FindRoute(absl::string_view method, absl::string_view path) const;

  absl::Status Start();
  void Stop();

  // Called by a connection, on its strand, exactly once when it closes.
  void OnConnectionClosed(uint64_t id);

  const ServerOptions& options() const { return options_; }
  bool stopping() const { return server_->stopping(); }
  uint64_t accepted() const { return accepted_.load(); }
  int active() const {
    std::lock_guard<std::mutex> lock(mu_);
    return active_;
  }

 private:
  struct Route {
    std::string method;   // "*" = any
    std::string pattern;  // as registered
    bool prefix = false;  // pattern ended in '*'
    std::string path;     // pattern without the '*'
    std::shared_ptr<const Handler> handler;
  };

  void DoAccept();
  void OnAccept(beast::error_code ec, tcp::socket socket);
  std::vector<std::shared_ptr<internal::Connection>> SnapshotConnections();

  Server* const server_;
  const ServerOptions& options_;
  // Declared before every I/O object so that it is destroyed after them.
  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  tcp::acceptor acceptor_;  // its executor is a strand
  net::steady_timer accept_retry_timer_;
  std::vector<std::thread> threads_;
  std::string listen_address_;  // "ip:port", for messages

  // Standard mutexes rather than absl::Mutex: Debian's prebuilt abseil is
  // not instrumented for ThreadSanitizer, which then cannot see absl::Mutex.
  mutable std::shared_mutex routes_mu_;
  std::vector<Route> routes_;  // guarded by routes_mu_

  std::mutex stop_mu_;  // serializes Start() and Stop()
  mutable std::mutex mu_;
  std::condition_variable connection_closed_;  // signalled when active_ drops
  // Guarded by mu_:
  bool started_ = false;
  bool stopped_ = false;
  std::map<uint64_t, std::weak_ptr<internal::Connection>> connections_;
  int active_ = 0;
  uint64_t next_id_ = 0;
  std::atomic<uint64_t> accepted_{0};
};

// ---------------------------------------------------------------------------
// Connection: one accepted socket. Every member is confined to the socket's
// strand; the public Post*/Begin*/Force* methods may be called from any
// thread and only post to that strand.
//
// A connection alternates between reading a request (kReading) and handling
// it (kHandling: the handler has it and the response is being written); it
// ends in kDraining (half-closed, discarding input) and kClosed. While
// handling, a read stays outstanding so that a client disconnect is noticed.

namespace internal {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server::Impl* server, uint64_t id, tcp::socket socket)
      : server_(server),
        options_(server->options()),
        id_(id),
        socket_(std::move(socket)),
        read_timer_(socket_.get_executor()),
        write_timer_(socket_.get_executor()) {}

  void Start() {
    net::post(socket_.get_executor(),
              [self = shared_from_this()] { self->OnStart(); });
  }
  void BeginShutdown() {
    net::post(socket_.get_executor(),
              [self = shared_from_this()] { self->OnBeginShutdown(); });
  }
  void ForceClose() {
    net::post(socket_.get_executor(),
              [self = shared_from_this()] { self->CloseNow(); });
  }

  // Called by the Responder of request `seq`, from any thread.
  void PostResponse(uint64_t seq, Response response) {
    net::post(socket_.get_executor(), [self = shared_from_this(), seq,
                                       r = std::move(response)]() mutable {
      if (self->Current(seq)) self->WriteFullResponse(std::move(r));
    });
  }
  void PostStreamStart(uint64_t seq, int status, Headers headers) {
    net::post(socket_.get_executor(), [self = shared_from_this(), seq, status,
                                       h = std::move(headers)]() mutable {
      if (self->Current(seq)) self->WriteStreamHead(status, std::move(h));
    });
  }
  void PostChunk(uint64_t seq, std::string data) {
    queued_bytes_.fetch_add(data.size());
    net::post(socket_.get_executor(),
              [self = shared_from_this(), seq, d = std::move(data)]() mutable {
                if (self->Current(seq)) {
                  self->WriteChunk(std::move(d));
                } else {
                  self->queued_bytes_.fetch_sub(d.size());
                }
              });
  }
  void PostStreamEnd(uint64_t seq) {
    net::post(socket_.get_executor(), [self = shared_from_this(), seq] {
      if (self->Current(seq)) self->EndStream();
    });
  }
  void PostAbort(uint64_t seq) {
    net::post(socket_.get_executor(), [self = shared_from_this(), seq] {
      if (self->Current(seq)) self->CloseNow();
    });
  }

  size_t queued_bytes() const { return queued_bytes_.load(); }

 private:
  enum class Phase { kReading, kHandling, kDraining, kClosed };

  struct Pending {
    std::string bytes;
    size_t credit = 0;  // share of queued_bytes_ released once written
  };

  // True if `seq` is the request being handled right now.
  bool Current(uint64_t seq) const {
    return phase_ == Phase::kHandling && seq == request_seq_;
  }

  void OnStart() {
    beast::error_code ec;
    tcp::endpoint remote = socket_.remote_endpoint(ec);
    if (!ec) {
      remote_address_ = remote.address().to_string();
      remote_port_ = remote.port();
    }
    socket_.set_option(tcp::no_delay(true), ec);
    ArmReadTimer(options_.idle_timeout);
    StartRead();
  }

  // ---- reading ----

  void StartRead() {
    if (reading_ || peer_eof_ || phase_ == Phase::kClosed) return;
    if (phase_ == Phase::kHandling && in_.size() >= kMaxPipelinedBytes) return;
    reading_ = true;
    socket_.async_read_some(
        net::buffer(read_buf_),
        [self = shared_from_this()](beast::error_code ec, size_t n) {
          self->OnRead(ec, n);
        });
  }

  void OnRead(beast::error_code ec, size_t n) {
    reading_ = false;
    if (phase_ == Phase::kClosed) return;
    if (ec) {
      // EOF or reset: the client is gone (a half-closed client is treated
      // as gone too; HTTP clients keep their side open for the response).
      if (ec == net::error::eof) peer_eof_ = true;
      VLOG(2) << "http: connection " << id_ << " read ended: " << ec.message();
      CloseNow();
      return;
    }
    if (phase_ == Phase::kDraining) {
      StartRead();  // discard
      return;
    }
    net::buffer_copy(in_.prepare(n), net::buffer(read_buf_, n));
    in_.commit(n);
    if (phase_ == Phase::kReading) ProcessInput();
    StartRead();
  }

  // Feeds buffered input to the parser; dispatches a complete request.
  void ProcessInput() {
    while (phase_ == Phase::kReading && in_.size() > 0) {
      if (!parser_) {
        parser_.emplace();
        parser_->body_limit(options_.max_body_bytes);
        parser_->header_limit(static_cast<uint32_t>(
            std::min<size_t>(options_.max_header_bytes, UINT32_MAX)));
        parser_->eager(true);
      }
      if (!request_started_) {
        request_started_ = true;
        ArmReadTimer(options_.read_timeout);
      }
      beast::error_code ec;
      size_t used = parser_->put(in_.data(), ec);
      in_.consume(used);
      if (ec == bhttp::error::need_more) break;
      if (ec == bhttp::error::body_limit) {
        RespondErrorAndClose(413,
                             absl::StrCat("request body exceeds the limit of ",
                                          options_.max_body_bytes, " bytes"));
        return;
      }
      if (ec == bhttp::error::header_limit) {
        RespondErrorAndClose(
            431, absl::StrCat("request header exceeds the limit of ",
                              options_.max_header_bytes, " bytes"));
        return;
      }
      if (ec) {
        RespondErrorAndClose(400,
                             absl::StrCat("malformed request: ", ec.message()));
        return;
      }
      if (parser_->is_done()) {
        Dispatch();
        return;
      }
      MaybeSendContinue();
      if (used == 0) break;
    }
  }

  // Answers `Expect: 100-continue` once the header is in and the body is not.
  void MaybeSendContinue() {
    if (continue_sent_ || !parser_->is_header_done()) return;
    const auto& msg = parser_->get();
    if (msg.version() < 11) return;
    beast::string_view expect = msg[bhttp::field::expect];
    if (!beast::iequals(expect, "100-continue")) return;
    continue_sent_ = true;
    Enqueue("HTTP/1.1 100 Continue\r\n\r\n");
    Flush();
  }

  void Dispatch() {
    CancelReadTimer();
    phase_ = Phase::kHandling;
    request_started_ = false;
    continue_sent_ = false;
    ++request_seq_;

    bhttp::request<bhttp::string_body> msg = parser_->release();
    parser_.reset();
    version_ = msg.version();
    client_closes_ = !msg.keep_alive();
    keep_alive_ = !client_closes_ && !shutting_down_;
    head_request_ = msg.method() == bhttp::verb::head;
    allow_origin_ = !options_.get_allow_origin.empty() &&
                    (head_request_ || msg.method() == bhttp::verb::get);

    Request req;
    req.method = ToString(msg.method_string());
    req.target = ToString(msg.target());
    size_t q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) {
      req.query = ParseQuery(absl::string_view(req.target).substr(q + 1));
    }
    for (const auto& field : msg) {
      req.headers.Add(ToString(field.name_string()), ToString(field.value()));
    }
    req.body = std::move(msg.body());
    req.version = version_;
    req.remote_address = remote_address_;
    req.remote_port = remote_port_;

    Server::Impl::RouteMatch route = server_->FindRoute(req.method, req.path);
    if (route.handler == nullptr) {
      Response r = Response::Error(
          route.status, route.status == 404
                            ? absl::StrCat("no handler for ", req.path)
                            : absl::StrCat("method ", req.method,
                                           " not allowed for ", req.path));
      if (!route.allow.empty()) r.headers.Set("Allow", route.allow);
      WriteFullResponse(std::move(r));
      return;
    }
    std::shared_ptr<Responder> responder(
        new Responder(shared_from_this(), request_seq_));
    responder_ = responder;
    try {
      (*route.handler)(std::move(req), responder);
    } catch (const std::exception& e) {
      LOG(ERROR) << "http: handler for " << msg.target()
                 << " threw: " << e.what();
      responder->Respond(Response::Error(500, "internal error"));
    } catch (...) {
      LOG(ERROR) << "http: handler for " << msg.target() << " threw";
      responder->Respond(Response::Error(500, "internal error"));
    }
  }

  // ---- writing responses ----

  void WriteFullResponse(Response r) {
    if (response_started_) return;
    response_started_ = true;
    if (r.headers.HasToken("Connection", "close") || shutting_down_) {
      keep_alive_ = false;
    }
    AddAllowOrigin(&r.headers);
    std::string head = ResponseHead(version_, r.status, r.headers);
    if (!HasNoBody(r.status)) {
      absl::StrAppend(&head, "Content-Length: ", r.body.size(), "\r\n");
    }
    AppendConnectionHeader(&head);
    head += "\r\n";
    Enqueue(std::move(head));
    if (!head_request_ && !HasNoBody(r.status) && !r.body.empty()) {
      Enqueue(std::move(r.body));
    }
    response_done_ = true;
    Flush();
  }

  void WriteStreamHead(int status, Headers headers) {
    if (response_started_) return;
    response_started_ = true;
    streaming_ = true;
    stream_chunked_ = version_ >= 11;
    if (!stream_chunked_ || shutting_down_) keep_alive_ = false;
    AddAllowOrigin(&headers);
    std::string head = ResponseHead(version_, status, headers);
    if (stream_chunked_) head += "Transfer-Encoding: chunked\r\n";
    AppendConnectionHeader(&head);
    head += "\r\n";
    Enqueue(std::move(head));
    Flush();
    StartRead();  // watch for the client going away
  }

  void WriteChunk(std::string data) {
    if (!streaming_ || stream_ended_ || head_request_) {
      queued_bytes_.fetch_sub(data.size());
      return;
    }
    size_t credit = data.size();
    if (stream_chunked_) {
      Enqueue(absl::StrFormat("%x\r\n", data.size()));
      Enqueue(std::move(data), credit);
      Enqueue("\r\n");
    } else {
      Enqueue(std::move(data), credit);
    }
    Flush();
  }

  void EndStream() {
    if (!streaming_ || stream_ended_) return;
    stream_ended_ = true;
    if (stream_chunked_ && !head_request_) Enqueue("0\r\n\r\n");
    response_done_ = true;
    Flush();
  }

  void AppendConnectionHeader(std::string* head) {
    if (version_ >= 11) {
      if (!keep_alive_) *head += "Connection: close\r\n";
    } else if (keep_alive_) {
      *head += "Connection: keep-alive\r\n";
    }
  }

  // Answers a request that could not be read, then closes.
  void RespondErrorAndClose(int status, const std::string& message) {
    VLOG(1) << "http: connection " << id_ << " from " << remote_address_ << ": "
            << status << " " << message;
    CancelReadTimer();
    phase_ = Phase::kHandling;
    ++request_seq_;
    if (parser_ && parser_->is_header_done()) {
      version_ = std::min(parser_->get().version(), 11u);
    } else {
      version_ = 11;
    }
    parser_.reset();
    keep_alive_ = false;
    client_closes_ = false;  // it may still be sending: linger
    head_request_ = false;
    allow_origin_ = false;
    WriteFullResponse(Response::Error(status, message));
  }

  // ServerOptions::get_allow_origin, for a GET or HEAD request.
  void AddAllowOrigin(Headers* headers) const {
    if (allow_origin_ && !headers->Has("Access-Control-Allow-Origin")) {
      headers->Set("Access-Control-Allow-Origin", options_.get_allow_origin);
    }
  }

  void Enqueue(std::string bytes, size_t credit = 0) {
    out_.push_back(Pending{std::move(bytes), credit});
  }

  void Flush() {
    if (writing_ || out_.empty() || phase_ == Phase::kClosed) return;
    writing_ = true;
    write_batch_.clear();
    write_buffers_.clear();
    while (!out_.empty()) {
      write_batch_.push_back(std::move(out_.front()));
      out_.pop_front();
    }
    for (const Pending& p : write_batch_) {
      write_buffers_.push_back(net::buffer(p.bytes));
    }
    ArmWriteTimer();
    net::async_write(socket_, write_buffers_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->OnWrite(ec);
                     });
  }

  void OnWrite(beast::error_code ec) {
    writing_ = false;
    CancelWriteTimer();
    for (const Pending& p : write_batch_) queued_bytes_.fetch_sub(p.credit);
    write_batch_.clear();
    write_buffers_.clear();
    if (phase_ == Phase::kClosed) return;
    if (ec) {
      VLOG(2) << "http: connection " << id_
              << " write failed: " << ec.message();
      CloseNow();
      return;
    }
    if (!out_.empty()) {
      Flush();
    } else if (phase_ == Phase::kHandling && response_done_) {
      FinishResponse();
    }
  }

  // The current response is fully written.
  void FinishResponse() {
    if (std::shared_ptr<Responder> r = responder_.lock()) {
      // Normally already done; a stream ended by the server is aborted.
      r->Abort();
    }
    responder_.reset();
    response_started_ = false;
    response_done_ = false;
    streaming_ = false;
    stream_ended_ = false;
    stream_chunked_ = false;
    if (!keep_alive_ || shutting_down_) {
      LingeringClose();
      return;
    }
    phase_ = Phase::kReading;
    if (in_.size() == 0) ArmReadTimer(options_.idle_timeout);
    ProcessInput();
    StartRead();
  }

  // Half-closes and, unless the client said this was its last request,
  // discards input until the client closes (or kMaxLinger): closing with
  // unread input would reset the connection and could destroy the response
  // before the client reads it.
  void LingeringClose() {
    phase_ = Phase::kDraining;
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec || (client_closes_ && in_.size() == 0)) {
      CloseNow();
      return;
    }
    in_.clear();
    ArmReadTimer(std::min(options_.read_timeout, shutting_down_
                                                     ? kMaxLingerWhileStopping
                                                     : kMaxLinger));
    StartRead();
  }

  // ---- shutdown ----

  void OnBeginShutdown() {
    shutting_down_ = true;
    keep_alive_ = false;
    switch (phase_) {
      case Phase::kReading:
        // A request already arriving may finish (within the grace period).
        if (!request_started_) CloseNow();
        break;
      case Phase::kHandling:
        if (streaming_) {
          if (std::shared_ptr<Responder> r = responder_.lock()) r->Abort();
          EndStream();
        }
        // Else: the response is written with Connection: close.
        break;
      case Phase::kDraining:
      case Phase::kClosed:
        break;
    }
  }

  void CloseNow() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    CancelReadTimer();
    CancelWriteTimer();
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    for (const Pending& p : out_) queued_bytes_.fetch_sub(p.credit);
    out_.clear();
    parser_.reset();
    if (std::shared_ptr<Responder> r = responder_.lock()) r->Abort();
    responder_.reset();
    server_->OnConnectionClosed(id_);
  }

  // ---- timers ----

  void ArmReadTimer(absl::Duration d) {
    uint64_t gen = ++read_timer_gen_;
    read_timer_.expires_after(ToChrono(d));
    read_timer_.async_wait(
        [self = shared_from_this(), gen](beast::error_code ec) {
          if (ec || gen != self->read_timer_gen_) return;
          VLOG(1) << "http: connection " << self->id_ << " from "
                  << self->remote_address_ << " timed out reading";
          self->CloseNow();
        });
  }
  void CancelReadTimer() {
    ++read_timer_gen_;
    read_timer_.cancel();
  }
  void ArmWriteTimer() {
    uint64_t gen = ++write_timer_gen_;
    write_timer_.expires_after(ToChrono(options_.write_timeout));
    write_timer_.async_wait(
        [self = shared_from_this(), gen](beast::error_code ec) {
          if (ec || gen != self->write_timer_gen_) return;
          VLOG(1) << "http: connection " << self->id_ << " from "
                  << self->remote_address_ << " timed out writing";
          self->CloseNow();
        });
  }
  void CancelWriteTimer() {
    ++write_timer_gen_;
    write_timer_.cancel();
  }

  Server::Impl* const server_;
  const ServerOptions& options_;
  const uint64_t id_;
  tcp::socket socket_;             // its executor is this connection's strand
  net::steady_timer read_timer_;   // idle, read and linger deadline
  net::steady_timer write_timer_;  // deadline of the outstanding write
  uint64_t read_timer_gen_ = 0;    // a timer firing for an old gen is stale
  uint64_t write_timer_gen_ = 0;
  std::string remote_address_;
  uint16_t remote_port_ = 0;

  Phase phase_ = Phase::kReading;
  bool shutting_down_ = false;

  // Input.
  std::array<char, kReadChunkBytes> read_buf_;  // target of the pending read
  beast::flat_buffer in_;                       // received, not yet parsed
  bool reading_ = false;                        // a read is outstanding
  bool peer_eof_ = false;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bool request_started_ = false;  // bytes of the next request have arrived
  bool continue_sent_ = false;

  // The request being handled (kHandling).
  uint64_t request_seq_ = 0;  // identifies it to its Responder's posts
  std::weak_ptr<Responder> responder_;
  int version_ = 11;
  bool keep_alive_ = true;
  bool client_closes_ = false;  // the request asked for no keep-alive
  bool head_request_ = false;
  bool allow_origin_ = false;  // add ServerOptions::get_allow_origin
  bool response_started_ = false;  // head queued
  bool response_done_ = false;     // last byte queued
  bool streaming_ = false;
  bool stream_chunked_ = false;
  bool stream_ended_ = false;

  // Output: queued, and the batch being written.
  std::deque<Pending> out_;
  std::vector<Pending> write_batch_;
  std::vector<net::const_buffer> write_buffers_;
  bool writing_ = false;
  std::atomic<size_t> queued_bytes_{0};
};

}  // namespace internal

// ---------------------------------------------------------------------------
// Responder

Responder::Responder(std::shared_ptr<internal::Connection> connection,
                     uint64_t seq)
    : seq_(seq), connection_(std::move(connection)) {}

Responder::~Responder() {
  std::lock_guard<std::mutex> lock(mu_);
  if (connection_ == nullptr) return;
  if (state_ == State::kPending) {
    connection_->PostResponse(
        seq_, Response::Error(500, "the handler dropped the request"));
  } else if (state_ == State::kStreaming) {
    connection_->PostStreamEnd(seq_);
  }
}

bool Responder::Respond(Response response) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kPending || connection_ == nullptr) return false;
  state_ = State::kDone;
  closed_.store(true, std::memory_order_release);
  connection_->PostResponse(seq_, std::move(response));
  connection_.reset();
  on_close_ = nullptr;
  return true;
}

bool Responder::StartStream(int status, Headers headers) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kPending || connection_ == nullptr) return false;
  state_ = State::kStreaming;
  connection_->PostStreamStart(seq_, status, std::move(headers));
  return true;
}

bool Responder::WriteChunk(std::string data) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kStreaming || connection_ == nullptr) return false;
  // Posting under mu_ keeps the strand's order equal to the callers' order.
  if (!data.empty()) connection_->PostChunk(seq_, std::move(data));
  return true;
}

void Responder::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kDone || connection_ == nullptr) return;
  if (state_ == State::kStreaming) {
    connection_->PostStreamEnd(seq_);
  } else {
    connection_->PostAbort(seq_);
  }
  state_ = State::kDone;
  closed_.store(true, std::memory_order_release);
  connection_.reset();
  on_close_ = nullptr;
}

void Responder::OnClose(std::function<void()> callback) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!aborted_) {
      if (state_ != State::kDone) on_close_ = std::move(callback);
      return;
    }
  }
  if (callback) callback();
}

size_t Responder::queued_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connection_ != nullptr ? connection_->queued_bytes() : 0;
}

void Responder::Abort() {
  std::function<void()> callback;
  std::shared_ptr<internal::Connection> connection;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == State::kDone) return;
    state_ = State::kDone;
    aborted_ = true;
    closed_.store(true, std::memory_order_release);
    connection = std::move(connection_);
    callback = std::move(on_close_);
  }
  if (callback) callback();
}

// ---------------------------------------------------------------------------
// Server::Impl

void Server::Impl::AddRoute(absl::string_view method, absl::string_view pattern,
                            Handler handler) {
  Route route;
  route.method = method.empty() ? "*" : std::string(method);
  route.pattern = std::string(pattern);
  route.prefix = absl::EndsWith(pattern, "*");
  route.path = std::string(route.prefix ? pattern.substr(0, pattern.size() - 1)
                                        : pattern);
  route.handler = std::make_shared<const Handler>(std::move(handler));
  std::unique_lock<std::shared_mutex> lock(routes_mu_);
  for (Route& r : routes_) {
    if (r.method == route.method && r.pattern == route.pattern) {
      r = std::move(route);
      return;
    }
  }
  routes_.push_back(std::move(route));
}

Server::Impl::RouteMatch Server::Impl::FindRoute(absl::string_view method,
                                                 absl::string_view path) const {
  std::shared_lock<std::shared_mutex> lock(routes_mu_);
  // The most specific matching pattern: exact beats prefix, longer prefix
  // beats shorter.
  const Route* best_pattern = nullptr;
  auto rank = [](const Route& r) {
    return r.prefix ? static_cast<int64_t>(r.path.size()) : INT64_MAX;
  };
  for (const Route& r : routes_) {
    bool matches = r.prefix ? absl::StartsWith(path, r.path) : path == r.path;
    if (matches && (best_pattern == nullptr || rank(r) > rank(*best_pattern))) {
      best_pattern = &r;
    }
  }
  RouteMatch match;
  if (best_pattern == nullptr) {
    match.status = 404;
    return match;
  }
  // Among that pattern's routes: exact method, then GET for HEAD, then "*".
  const Route* chosen = nullptr;
  int chosen_score = 0;
  std::vector<std::string> allowed;
  for (const Route& r : routes_) {
    if (r.pattern != best_pattern->pattern) continue;
    allowed.push_back(r.method);
    int score = 0;
    if (r.method == method) {
      score = 3;
    } else if (method == "HEAD" && r.method == "GET") {
      score = 2;
    } else if (r.method == "*") {
      score = 1;
    }
    if (score > chosen_score) {
      chosen = &r;
      chosen_score = score;
    }
  }
  if (chosen == nullptr) {
    match.status = 405;
    std::sort(allowed.begin(), allowed.end());
    match.allow = absl::StrJoin(allowed, ", ");
    return match;
  }
  match.handler = chosen->handler;
  return match;
}

absl::Status Server::Impl::Start() {
  std::lock_guard<std::mutex> stop_lock(stop_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_ || stopped_) {
      return absl::FailedPreconditionError(
          started_ ? "http server already started" : "http server stopped");
    }
  }
  std::string where = absl::StrCat(options_.address, ":", options_.port);
  beast::error_code ec;
  net::ip::address address = net::ip::make_address(options_.address, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid listen address '", options_.address, "'"));
  }
  tcp::endpoint endpoint(address, options_.port);
  auto fail = [&](const char* what) {
    beast::error_code ignored;
    acceptor_.close(ignored);
    std::string message = absl::StrCat("http server cannot ", what, " ", where,
                                       ": ", ec.message());
    if (ec == net::error::address_in_use) {
      return absl::UnavailableError(message);
    }
    if (ec == net::error::access_denied) {
      return absl::PermissionDeniedError(message);
    }
    if (ec == net::error::address_family_not_supported ||
        ec == net::error::invalid_argument ||
        ec == boost::system::errc::address_not_available) {
      return absl::InvalidArgumentError(message);
    }
    return absl::UnavailableError(message);
  };
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) return fail("open a socket for");
  acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (ec) return fail("set SO_REUSEADDR on");
  acceptor_.bind(endpoint, ec);
  if (ec) return fail("bind");
  acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen on");
  tcp::endpoint bound = acceptor_.local_endpoint(ec);
  if (ec) return fail("read the bound port of");
  server_->port_.store(bound.port(), std::memory_order_release);
  listen_address_ = absl::StrCat(options_.address, ":", bound.port());
  {
    std::lock_guard<std::mutex> lock(mu_);
    started_ = true;
  }
  net::post(acceptor_.get_executor(), [this] { DoAccept(); });
  int n = std::max(1, options_.num_threads);
  for (int i = 0; i < n; ++i) {
    threads_.emplace_back([this] {
      for (;;) {
        try {
          ioc_.run();
          return;
        } catch (const std::exception& e) {
          LOG(ERROR) << "http server " << listen_address_
                     << ": uncaught exception in an I/O thread: " << e.what();
        }
      }
    });
  }
  VLOG(1) << "http server listening on " << listen_address_;
  return absl::OkStatus();
}

void Server::Impl::DoAccept() {
  acceptor_.async_accept(net::make_strand(ioc_),
                         [this](beast::error_code ec, tcp::socket socket) {
                           OnAccept(ec, std::move(socket));
                         });
}

void Server::Impl::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (ec) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    // E.g. out of file descriptors: back off instead of spinning.
    LOG(WARNING) << "http server " << listen_address_
                 << ": accept failed: " << ec.message();
    accept_retry_timer_.expires_after(std::chrono::milliseconds(50));
    accept_retry_timer_.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && acceptor_.is_open()) DoAccept();
    });
    return;
  }
  std::shared_ptr<internal::Connection> connection;
  if (!stopping()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (active_ < options_.max_connections) {
      uint64_t id = ++next_id_;
      ++active_;
      connection =
          std::make_shared<internal::Connection>(this, id, std::move(socket));
      connections_[id] = connection;
    }
  }
  if (connection != nullptr) {
    accepted_.fetch_add(1);
    connection->Start();
  } else {
    VLOG(1) << "http server " << listen_address_
            << ": refusing a connection (limit or shutdown)";
    beast::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }
  DoAccept();
}

void Server::Impl::OnConnectionClosed(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  connections_.erase(id);
  --active_;
  connection_closed_.notify_all();
}

std::vector<std::shared_ptr<internal::Connection>>
Server::Impl::SnapshotConnections() {
  std::vector<std::shared_ptr<internal::Connection>> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, weak] : connections_) {
    if (auto c = weak.lock()) out.push_back(std::move(c));
  }
  return out;
}

void Server::Impl::Stop() {
  std::lock_guard<std::mutex> stop_lock(stop_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    if (!started_) return;
  }
  server_->stopping_.store(true, std::memory_order_release);

  // Stop accepting; once this has run on the acceptor's strand no new
  // connection can be registered.
  std::promise<void> acceptor_closed;
  net::post(acceptor_.get_executor(), [this, &acceptor_closed] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_timer_.cancel();
    acceptor_closed.set_value();
  });
  acceptor_closed.get_future().wait();

  for (auto& c : SnapshotConnections()) c->BeginShutdown();
  bool drained;
  {
    std::unique_lock<std::mutex> lock(mu_);
    drained =
        connection_closed_.wait_for(lock, ToChrono(options_.shutdown_grace),
                                    [this] { return active_ == 0; });
  }
  if (!drained) {
    LOG(WARNING) << "http server " << listen_address_
                 << ": closing connections still busy after "
                 << options_.shutdown_grace;
    for (auto& c : SnapshotConnections()) c->ForceClose();
    std::unique_lock<std::mutex> lock(mu_);
    connection_closed_.wait(lock, [this] { return active_ == 0; });
  }

  work_.reset();
  ioc_.stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  VLOG(1) << "http server " << listen_address_ << " stopped";
}

// ---------------------------------------------------------------------------
// Server

Server::Server(ServerOptions options)
    : options_(std::move(options)),
      port_(options_.port),
      impl_(std::make_unique<Impl>(this)) {}

Server::~Server() { Stop(); }

void Server::Handle(absl::string_view method, absl::string_view pattern,
                    Handler handler) {
  impl_->AddRoute(method, pattern, std::move(handler));
}

void Server::HandleSync(absl::string_view method, absl::string_view pattern,
                        SyncHandler handler) {
  impl_->AddRoute(method, pattern,
                  [handler = std::move(handler)](
                      Request request, std::shared_ptr<Responder> responder) {
                    responder->Respond(handler(request));
                  });
}

absl::Status Server::Start() { return impl_->Start(); }

void Server::Stop() { impl_->Stop(); }

uint64_t Server::connections_accepted() const { return impl_->accepted(); }

int Server::active_connections() const { return impl_->active(); }

}  // namespace http
}  // namespace cairn
