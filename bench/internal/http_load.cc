#include "bench/internal/http_load.h"

#include <chrono>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http.hpp"

namespace cairn::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

enum class Phase { kWarmup, kMeasuring, kDraining };

// State shared by all connections of one run (single-threaded: the io thread).
struct Run {
  asio::io_context io;
  const HttpLoadSpec* spec = nullptr;
  Phase phase = Phase::kWarmup;
  HttpLoadResult result;
};

// Parses "http://host:port/path" into its parts. False if it is not that.
bool ParseLocation(absl::string_view location, std::string* host,
                   uint16_t* port, std::string* target) {
  if (!absl::ConsumePrefix(&location, "http://")) return false;
  size_t slash = location.find('/');
  absl::string_view authority = location.substr(0, slash);
  *target = slash == absl::string_view::npos
                ? "/"
                : std::string(location.substr(slash));
  size_t colon = authority.rfind(':');
  if (colon == absl::string_view::npos) return false;
  uint32_t p = 0;
  if (!absl::SimpleAtoi(authority.substr(colon + 1), &p) || p == 0 ||
      p > 65535) {
    return false;
  }
  absl::string_view h = authority.substr(0, colon);
  if (absl::ConsumePrefix(&h, "[")) absl::ConsumeSuffix(&h, "]");
  *host = std::string(h);
  *port = static_cast<uint16_t>(p);
  return true;
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Run* run, int id, tcp::endpoint endpoint)
      : run_(run),
        id_(id),
        endpoint_(endpoint),
        target_(run->spec->target),
        socket_(run->io),
        timer_(run->io) {}

  void Start() { Connect(); }

  // Closes the socket: pending operations complete with an error and the
  // connection ends (the run is draining).
  void Abort() {
    beast::error_code ignored;
    socket_.close(ignored);
    timer_.cancel();
  }

 private:
  void Connect() {
    if (run_->phase == Phase::kDraining) return;
    beast::error_code ignored;
    socket_.close(ignored);
    socket_ = tcp::socket(run_->io);
    socket_.async_connect(endpoint_,
                          [self = shared_from_this()](beast::error_code ec) {
                            self->OnConnect(ec);
                          });
  }

  void OnConnect(beast::error_code ec) {
    if (ec) return TransportError(ec, "connect");
    beast::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    buffer_.clear();
    Send();
  }

  void Send() {
    if (run_->phase == Phase::kDraining) {
      beast::error_code ignored;
      socket_.shutdown(tcp::socket::shutdown_both, ignored);
      socket_.close(ignored);
      return;
    }
    request_ = {};
    request_.method(bhttp::verb::post);
    request_.target(target_);
    request_.version(11);
    request_.set(
        bhttp::field::host,
        absl::StrCat(endpoint_.address().to_string(), ":", endpoint_.port()));
    request_.set(bhttp::field::content_type, run_->spec->content_type);
    request_.keep_alive(true);
    request_.body() = run_->spec->body(id_, seq_++);
    request_.prepare_payload();
    sent_at_ = Clock::now();
    bhttp::async_write(
        socket_, request_,
        [self = shared_from_this()](beast::error_code ec, size_t) {
          self->OnWrite(ec);
        });
  }

  void OnWrite(beast::error_code ec) {
    if (ec) return TransportError(ec, "write");
    response_ = {};
    bhttp::async_read(socket_, buffer_, response_,
                      [self = shared_from_this()](
                          beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return TransportError(ec, "read");
    HttpLoadResult& r = run_->result;
    const int status = response_.result_int();
    const bool keep_alive = response_.keep_alive();
    if (status == 200) {
      if (run_->phase == Phase::kMeasuring) {
        ++r.acks;
        r.latency_us.Add(
            std::chrono::duration<double, std::micro>(Clock::now() - sent_at_)
                .count());
      }
      if (keep_alive) return Send();
      return Connect();
    }
    if (status == 307 || status == 308) {
      ++r.redirects;
      std::string host;
      uint16_t port = 0;
      std::string target;
      beast::error_code bad;
      asio::ip::address address;
      if (ParseLocation(std::string(response_[bhttp::field::location]), &host,
                        &port, &target)) {
        address = asio::ip::make_address(host, bad);
      }
      if (port == 0 || bad) {
        Failure(
            status,
            absl::StrCat("redirect to unusable Location '",
                         std::string(response_[bhttp::field::location]), "'"));
        return RetryLater(/*reconnect=*/!keep_alive);
      }
      endpoint_ = tcp::endpoint(address, port);
      target_ = target;
      return Connect();
    }
    if (status == 503) {
      ++r.unavailable;
      ++r.failure_statuses[status];
      if (r.first_failure.empty()) {
        r.first_failure = absl::StrCat("503: ", response_.body());
      }
      return RetryLater(/*reconnect=*/!keep_alive);
    }
    ++r.other_failures;
    Failure(status, absl::StrCat(status, ": ", response_.body()));
    RetryLater(/*reconnect=*/!keep_alive);
  }

  void Failure(int status, std::string what) {
    HttpLoadResult& r = run_->result;
    ++r.failure_statuses[status];
    if (r.first_failure.empty()) r.first_failure = std::move(what);
  }

  void TransportError(beast::error_code ec, absl::string_view op) {
    if (run_->phase == Phase::kDraining) return;
    HttpLoadResult& r = run_->result;
    ++r.transport_errors;
    if (r.first_failure.empty()) {
      r.first_failure = absl::StrCat(op, ": ", ec.message());
    }
    RetryLater(/*reconnect=*/true);
  }

  void RetryLater(bool reconnect) {
    timer_.expires_after(std::chrono::milliseconds(20));
    timer_.async_wait(
        [self = shared_from_this(), reconnect](beast::error_code ec) {
          if (ec) return;
          if (reconnect) {
            self->Connect();
          } else {
            self->Send();
          }
        });
  }

  Run* const run_;
  const int id_;
  tcp::endpoint endpoint_;
  std::string target_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  bhttp::request<bhttp::string_body> request_;
  bhttp::response<bhttp::string_body> response_;
  Clock::time_point sent_at_;
  uint64_t seq_ = 0;
};

}  // namespace

absl::StatusOr<HttpLoadResult> RunHttpLoad(const HttpLoadSpec& spec) {
  if (spec.connections < 1) {
    return absl::InvalidArgumentError("connections must be >= 1");
  }
  beast::error_code ec;
  asio::ip::address address = asio::ip::make_address(spec.host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("host '", spec.host, "' is not an IP literal"));
  }
  Run run;
  run.spec = &spec;
  std::vector<std::shared_ptr<Connection>> connections;
  connections.reserve(spec.connections);
  for (int i = 0; i < spec.connections; ++i) {
    connections.push_back(std::make_shared<Connection>(
        &run, i, tcp::endpoint(address, spec.port)));
    connections.back()->Start();
  }

  Clock::time_point window_start;
  asio::steady_timer phase_timer(run.io);
  phase_timer.expires_after(absl::ToChronoNanoseconds(spec.warmup));
  phase_timer.async_wait([&](beast::error_code) {
    run.phase = Phase::kMeasuring;
    window_start = Clock::now();
    phase_timer.expires_after(absl::ToChronoNanoseconds(spec.duration));
    phase_timer.async_wait([&](beast::error_code) {
      run.phase = Phase::kDraining;
      run.result.seconds =
          std::chrono::duration<double>(Clock::now() - window_start).count();
      phase_timer.expires_after(absl::ToChronoNanoseconds(spec.drain_timeout));
      phase_timer.async_wait([&](beast::error_code) {
        for (auto& c : connections) c->Abort();
      });
    });
  });
  // Ends when every connection has finished (after the window closed) and
  // the drain timer fired or was cancelled below.
  while (run.io.run_one() > 0) {
    if (run.phase == Phase::kDraining) {
      bool all_done = true;
      for (auto& c : connections) {
        if (c.use_count() > 1) {
          all_done = false;
          break;
        }
      }
      if (all_done) phase_timer.cancel();
    }
  }
  HttpLoadResult result = std::move(run.result);
  if (result.seconds > 0) result.acks_per_second = result.acks / result.seconds;
  return result;
}

}  // namespace cairn::bench
