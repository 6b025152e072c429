#include "common/http_client.h"

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace cairn {
namespace http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

std::chrono::nanoseconds ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(std::min(d, absl::Hours(24 * 365)));
}

std::string ToString(beast::string_view s) {
  return std::string(s.data(), s.size());
}

// Bytes asked for per socket read while streaming.
constexpr size_t kStreamReadBytes = 64 * 1024;

bool IsHttpError(const beast::error_code& ec) {
  return &ec.category() ==
         &bhttp::make_error_code(bhttp::error::end_of_stream).category();
}

// Maps a socket or parser error to the status the caller should act on.
absl::Status ToStatus(const beast::error_code& ec, absl::string_view what,
                      absl::string_view where) {
  std::string message = absl::StrCat(what, " ", where, ": ", ec.message());
  if (ec == net::error::timed_out) return absl::DeadlineExceededError(message);
  if (IsHttpError(ec)) {
    if (ec == bhttp::error::body_limit) {
      return absl::ResourceExhaustedError(message);
    }
    if (ec == bhttp::error::end_of_stream ||
        ec == bhttp::error::partial_message) {
      return absl::UnavailableError(message);
    }
    return absl::InternalError(message);
  }
  return absl::UnavailableError(message);
}

std::string HostPort(absl::string_view host, uint16_t port) {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == ',' || c == '/' ||
        c == ':' || c == ';' || c == '<' || c == '=' || c == '>' || c == '?' ||
        c == '@' || c == '[' || c == '\\' || c == ']' || c == '{' || c == '}' ||
        c == '"') {
      return false;
    }
  }
  return true;
}

bool IsValidTarget(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c <= ' ' || c == 0x7f) return false;
  }
  return true;
}

// The request line and header block, ending with the empty line.
absl::StatusOr<std::string> RequestHead(absl::string_view method,
                                        absl::string_view host, uint16_t port,
                                        absl::string_view target,
                                        const Headers& headers,
                                        size_t body_size) {
  if (!IsToken(method)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid HTTP method '", method, "'"));
  }
  if (!IsValidTarget(target)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid HTTP request target '", target, "'"));
  }
  std::string head = absl::StrCat(method, " ", target, " HTTP/1.1\r\n");
  if (!headers.Has("Host")) {
    absl::StrAppend(&head, "Host: ", HostPort(host, port), "\r\n");
  }
  for (const auto& [name, value] : headers) {
    if (absl::EqualsIgnoreCase(name, "Content-Length") ||
        absl::EqualsIgnoreCase(name, "Transfer-Encoding")) {
      continue;
    }
    absl::StrAppend(&head, CanonicalHeaderName(name), ": ",
                    SanitizeHeaderValue(value), "\r\n");
  }
  if (body_size > 0 || method == "POST" || method == "PUT" ||
      method == "PATCH") {
    absl::StrAppend(&head, "Content-Length: ", body_size, "\r\n");
  }
  head += "\r\n";
  return head;
}

template <class Fields>
Headers ToHeaders(const Fields& fields) {
  Headers headers;
  for (const auto& field : fields) {
    headers.Add(ToString(field.name_string()), ToString(field.value()));
  }
  return headers;
}

bool IsRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 ||
         status == 308;
}

struct Location {
  std::string host;
  uint16_t port = 80;
  std::string target;
};

// Parses "http://host[:port][/path]" or "/path" (relative to `host`:`port`).
std::optional<Location> ParseLocation(absl::string_view location,
                                      absl::string_view host, uint16_t port) {
  Location out;
  if (absl::StartsWith(location, "/")) {
    out.host = std::string(host);
    out.port = port;
    out.target = std::string(location);
    return out;
  }
  if (!absl::ConsumePrefix(&location, "http://")) return std::nullopt;
  size_t slash = location.find('/');
  absl::string_view authority = location.substr(0, slash);
  out.target = slash == absl::string_view::npos
                   ? "/"
                   : std::string(location.substr(slash));
  absl::string_view port_text;
  if (absl::StartsWith(authority, "[")) {  // [v6]:port
    size_t close = authority.find(']');
    if (close == absl::string_view::npos) return std::nullopt;
    out.host = std::string(authority.substr(1, close - 1));
    absl::string_view rest = authority.substr(close + 1);
    if (absl::ConsumePrefix(&rest, ":")) port_text = rest;
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) {
      port_text = authority.substr(colon + 1);
    }
  }
  if (!port_text.empty()) {
    uint32_t p = 0;
    if (!absl::SimpleAtoi(port_text, &p) || p == 0 || p > 65535) {
      return std::nullopt;
    }
    out.port = static_cast<uint16_t>(p);
  }
  if (out.host.empty()) return std::nullopt;
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// ClientConnection: one TCP connection with its own io_context, driven
// synchronously by the thread that uses it.

namespace internal {

class ClientConnection {
 public:
  ClientConnection(absl::string_view host, uint16_t port)
      : host_(host), port_(port) {}

  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }
  std::string where() const { return HostPort(host_, port_); }
  tcp::socket& socket() { return socket_; }
  beast::flat_buffer& buffer() { return buffer_; }
  bool is_open() const { return socket_.is_open(); }

  void Close() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  // Starts an asynchronous operation with `start(done)`, where the operation
  // calls `done(error_code)` when it completes, and runs it to completion on
  // this thread. Returns the operation's error, or net::error::timed_out if
  // `deadline` passed first (the operation is then cancelled; the socket
  // stays open).
  template <class Start>
  beast::error_code Run(absl::Time deadline, Start&& start) {
    absl::Duration remaining = deadline - absl::Now();
    if (remaining <= absl::ZeroDuration()) return net::error::timed_out;
    bool finished = false;
    bool timed_out = false;
    beast::error_code result;
    net::steady_timer timer(ioc_, ToChrono(remaining));
    timer.async_wait([&](beast::error_code ec) {
      if (ec || finished) return;
      timed_out = true;
      beast::error_code ignored;
      socket_.cancel(ignored);
      resolver_.cancel();
    });
    start([&](beast::error_code ec) {
      finished = true;
      result = ec;
      timer.cancel();
    });
    ioc_.restart();
    ioc_.run();
    // An operation that completed just as the timer fired keeps its result.
    if (timed_out && result) return net::error::timed_out;
    return result;
  }

  absl::Status Connect(absl::Time deadline) {
    beast::error_code ec;
    std::vector<tcp::endpoint> endpoints;
    net::ip::address address = net::ip::make_address(host_, ec);
    if (!ec) {
      endpoints.emplace_back(address, port_);
    } else {
      tcp::resolver::results_type results;
      ec = Run(deadline, [&](auto done) {
        resolver_.async_resolve(
            host_, std::to_string(port_),
            [&results, done](beast::error_code e,
                             tcp::resolver::results_type r) {
              results = std::move(r);
              done(e);
            });
      });
      if (ec) return ToStatus(ec, "cannot resolve", where());
      for (const auto& entry : results) endpoints.push_back(entry.endpoint());
    }
    ec = Run(deadline, [&](auto done) {
      net::async_connect(
          socket_, endpoints,
          [done](beast::error_code e, const tcp::endpoint&) { done(e); });
    });
    if (ec) {
      Close();
      return ToStatus(ec, "cannot connect to", where());
    }
    socket_.set_option(tcp::no_delay(true), ec);
    return absl::OkStatus();
  }

  beast::error_code Write(const std::string& head, absl::string_view body,
                          absl::Time deadline) {
    std::array<net::const_buffer, 2> buffers = {
        net::buffer(head), net::buffer(body.data(), body.size())};
    return Run(deadline, [&](auto done) {
      net::async_write(socket_, buffers,
                       [done](beast::error_code e, size_t) { done(e); });
    });
  }

 private:
  const std::string host_;
  const uint16_t port_;
  // Declared before the I/O objects so that it is destroyed after them.
  net::io_context ioc_{1};
  tcp::socket socket_{ioc_};
  tcp::resolver resolver_{ioc_};
  beast::flat_buffer buffer_;  // received, not yet parsed
};

}  // namespace internal

// ---------------------------------------------------------------------------
// ClientStream

struct ClientStream::State {
  explicit State(const ClientOptions& options)
      : max_chunk_bytes(options.max_body_bytes) {
    on_chunk_header = [this](uint64_t size, beast::string_view,
                             beast::error_code& ec) {
      if (size > max_chunk_bytes) ec = bhttp::error::body_limit;
    };
    on_chunk_body = [this](uint64_t remain, beast::string_view data,
                           beast::error_code&) -> size_t {
      partial.append(data.data(), data.size());
      if (remain == data.size()) {  // this piece completes the chunk
        ready.push_back(std::move(partial));
        partial.clear();
      }
      return data.size();
    };
    parser.header_limit(static_cast<uint32_t>(
        std::min<size_t>(options.max_header_bytes, UINT32_MAX)));
    // Bounded per chunk instead. (Not boost::none: Beast 1.74 then rejects
    // every Content-Length body.)
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    parser.on_chunk_header(on_chunk_header);
    parser.on_chunk_body(on_chunk_body);
  }
  State(const State&) = delete;  // the parser points at the callbacks
  State& operator=(const State&) = delete;

  const size_t max_chunk_bytes;
  std::unique_ptr<internal::ClientConnection> connection;
  std::function<void(uint64_t, beast::string_view, beast::error_code&)>
      on_chunk_header;
  std::function<size_t(uint64_t, beast::string_view, beast::error_code&)>
      on_chunk_body;
  bhttp::response_parser<bhttp::string_body> parser;
  int status = 0;
  Headers headers;
  std::string partial;            // the chunk being received
  std::deque<std::string> ready;  // complete chunks not yet returned
  absl::Status error;             // final, once set
};

ClientStream::ClientStream(std::unique_ptr<State> state)
    : state_(std::move(state)) {}

ClientStream::~ClientStream() {
  if (state_->connection != nullptr) state_->connection->Close();
}

int ClientStream::status() const { return state_->status; }

const Headers& ClientStream::headers() const { return state_->headers; }

absl::StatusOr<std::optional<std::string>> ClientStream::NextChunk(
    absl::Duration timeout) {
  State& s = *state_;
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (!s.ready.empty()) {
      std::string chunk = std::move(s.ready.front());
      s.ready.pop_front();
      return chunk;
    }
    std::string& body = s.parser.get().body();  // non-chunked responses
    if (!body.empty()) {
      std::string piece = std::move(body);
      body.clear();
      return piece;
    }
    if (!s.error.ok()) return s.error;
    if (s.parser.is_done()) return std::nullopt;
    internal::ClientConnection& c = *s.connection;
    // Beast's read_some keeps reading while the parser wants more input even
    // after it delivered chunks, so the parser is fed here instead.
    if (c.buffer().size() > 0) {
      beast::error_code ec;
      size_t used = s.parser.put(c.buffer().data(), ec);
      c.buffer().consume(used);
      if (ec && ec != bhttp::error::need_more) {
        s.error = ToStatus(ec, "bad stream from", c.where());
        c.Close();
        continue;
      }
      if (used > 0) continue;
    }
    size_t received = 0;
    beast::error_code ec = c.Run(deadline, [&](auto done) {
      c.socket().async_read_some(
          c.buffer().prepare(kStreamReadBytes),
          [done, &received](beast::error_code e, size_t n) {
            received = n;
            done(e);
          });
    });
    c.buffer().commit(received);
    if (ec == net::error::timed_out) {
      return absl::DeadlineExceededError(
          absl::StrCat("no complete chunk from ", c.where(), " within ",
                       absl::FormatDuration(timeout)));
    }
    if (ec == net::error::eof) {
      // The end of a body delimited by the connection's end, or an error.
      s.parser.put_eof(ec);
      if (ec) s.error = ToStatus(ec, "stream from", c.where());
      c.Close();
    } else if (ec) {
      s.error = ToStatus(ec, "stream from", c.where());
      c.Close();
    }
  }
}

// ---------------------------------------------------------------------------
// Client

namespace {

// Writes a request on `c` and reads the whole response. Sets `*keep_alive`
// to whether `c` may carry another request, and `*retryable` to whether the
// failure happened before any response byte (so the server never saw the
// request on a stale connection, or dropped it unanswered).
absl::StatusOr<Response> RoundTrip(internal::ClientConnection& c,
                                   const ClientOptions& options,
                                   const std::string& head,
                                   absl::string_view body, bool head_request,
                                   absl::Time deadline, bool* keep_alive,
                                   bool* retryable) {
  *keep_alive = false;
  *retryable = false;
  beast::error_code ec = c.Write(head, body, deadline);
  if (ec) {
    *retryable = ec != net::error::timed_out;
    return ToStatus(ec, "cannot send request to", c.where());
  }
  std::optional<bhttp::response_parser<bhttp::string_body>> parser;
  for (;;) {
    parser.emplace();
    parser->body_limit(options.max_body_bytes);
    parser->header_limit(static_cast<uint32_t>(
        std::min<size_t>(options.max_header_bytes, UINT32_MAX)));
    if (head_request) parser->skip(true);
    ec = c.Run(deadline, [&](auto done) {
      bhttp::async_read_header(
          c.socket(), c.buffer(), *parser,
          [done](beast::error_code e, size_t) { done(e); });
    });
    // Beast 1.74 does not enforce body_limit on a response's Content-Length
    // when parsing eagerly (as async_read does), so check it here.
    if (!ec && parser->content_length().value_or(0) > options.max_body_bytes &&
        !parser->is_done()) {
      ec = bhttp::error::body_limit;
    }
    if (!ec && !parser->is_done()) {
      ec = c.Run(deadline, [&](auto done) {
        bhttp::async_read(c.socket(), c.buffer(), *parser,
                          [done](beast::error_code e, size_t) { done(e); });
      });
    }
    if (ec) {
      *retryable = ec != net::error::timed_out && !parser->got_some();
      return ToStatus(ec, "cannot read response from", c.where());
    }
    int status = parser->get().result_int();
    if (status < 100 || status >= 200 || status == 101) break;
    // An interim 1xx response: the real one follows.
  }
  bhttp::response<bhttp::string_body> msg = parser->release();
  *keep_alive = msg.keep_alive();
  Response response;
  response.status = msg.result_int();
  response.headers = ToHeaders(msg);
  response.body = std::move(msg.body());
  return response;
}

}  // namespace

Client::Client(ClientOptions options) : options_(std::move(options)) {}

Client::~Client() = default;

void Client::CloseConnection() { connection_.reset(); }

absl::StatusOr<std::unique_ptr<internal::ClientConnection>> Client::Connect(
    absl::string_view host, uint16_t port, absl::Time deadline, bool* reused) {
  if (connection_ != nullptr && connection_->is_open() &&
      connection_->host() == host && connection_->port() == port) {
    *reused = true;
    return std::move(connection_);
  }
  *reused = false;
  connection_.reset();
  auto c = std::make_unique<internal::ClientConnection>(host, port);
  absl::Status s = c->Connect(deadline);
  if (!s.ok()) return s;
  ++connections_opened_;
  return c;
}

absl::StatusOr<Response> Client::Request(absl::string_view method,
                                         absl::string_view host, uint16_t port,
                                         absl::string_view target,
                                         const Headers& headers,
                                         absl::string_view body,
                                         absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  std::string cur_method(method);
  std::string cur_host(host);
  uint16_t cur_port = port;
  std::string cur_target(target);
  std::string cur_body(body);
  for (int redirects = 0;; ++redirects) {
    absl::StatusOr<Response> r =
        RequestOnce(cur_method, cur_host, cur_port, cur_target, headers,
                    cur_body, deadline);
    if (!r.ok() || !options_.follow_redirects || !IsRedirect(r->status) ||
        redirects >= options_.max_redirects) {
      return r;
    }
    const std::string* location = r->headers.Find("Location");
    if (location == nullptr) return r;
    std::optional<Location> next = ParseLocation(*location, cur_host, cur_port);
    if (!next.has_value()) return r;
    if (r->status == 303 && cur_method != "HEAD") {
      cur_method = "GET";
      cur_body.clear();
    }
    cur_host = next->host;
    cur_port = next->port;
    cur_target = next->target;
  }
}

absl::StatusOr<Response> Client::RequestOnce(
    absl::string_view method, absl::string_view host, uint16_t port,
    absl::string_view target, const Headers& headers, absl::string_view body,
    absl::Time deadline) {
  absl::StatusOr<std::string> head =
      RequestHead(method, host, port, target, headers, body.size());
  if (!head.ok()) return head.status();
  bool close_after = headers.HasToken("Connection", "close");
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    absl::StatusOr<std::unique_ptr<internal::ClientConnection>> c =
        Connect(host, port, deadline, &reused);
    if (!c.ok()) return c.status();
    bool keep_alive = false;
    bool retryable = false;
    absl::StatusOr<Response> r =
        RoundTrip(**c, options_, *head, body, method == "HEAD", deadline,
                  &keep_alive, &retryable);
    if (r.ok()) {
      if (keep_alive && !close_after) connection_ = std::move(*c);
      return r;
    }
    // A kept-alive connection the server has closed in the meantime: try
    // once more on a fresh one.
    if (reused && retryable && attempt == 0) continue;
    return r.status();
  }
}

absl::StatusOr<std::unique_ptr<ClientStream>> Client::OpenStream(
    absl::string_view method, absl::string_view host, uint16_t port,
    absl::string_view target, const Headers& headers, absl::string_view body,
    absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<std::string> head =
      RequestHead(method, host, port, target, headers, body.size());
  if (!head.ok()) return head.status();
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    absl::StatusOr<std::unique_ptr<internal::ClientConnection>> c =
        Connect(host, port, deadline, &reused);
    if (!c.ok()) return c.status();
    internal::ClientConnection& conn = **c;
    beast::error_code ec = conn.Write(*head, body, deadline);
    if (ec) {
      if (reused && attempt == 0 && ec != net::error::timed_out) continue;
      return ToStatus(ec, "cannot send request to", conn.where());
    }
    auto state = std::make_unique<ClientStream::State>(options_);
    if (method == "HEAD") state->parser.skip(true);
    ec = conn.Run(deadline, [&](auto done) {
      bhttp::async_read_header(
          conn.socket(), conn.buffer(), state->parser,
          [done](beast::error_code e, size_t) { done(e); });
    });
    if (ec) {
      if (reused && attempt == 0 && ec != net::error::timed_out &&
          !state->parser.got_some()) {
        continue;
      }
      return ToStatus(ec, "cannot read response from", conn.where());
    }
    state->parser.eager(true);
    state->status = state->parser.get().result_int();
    state->headers = ToHeaders(state->parser.get());
    state->connection = std::move(*c);
    return std::unique_ptr<ClientStream>(new ClientStream(std::move(state)));
  }
}

}  // namespace http
}  // namespace cairn
