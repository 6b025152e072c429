#include "log/transport.h"

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"

namespace cairn::log {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr size_t kHeaderBytes = 4;
// One write gathers at most this many frames / bytes.
constexpr size_t kMaxFramesPerWrite = 512;
constexpr size_t kMaxBytesPerWrite = 4 << 20;
constexpr size_t kInitialReadBuffer = 64 << 10;

std::chrono::nanoseconds ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

void PutBigEndian32(uint32_t v, char* out) {
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
}

uint32_t GetBigEndian32(const char* in) {
  const auto* p = reinterpret_cast<const unsigned char*>(in);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
         (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

std::string PeerAddress::ToString() const {
  if (host.find(':') != std::string::npos) {
    return absl::StrCat("[", host, "]:", port);
  }
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<PeerAddress> ParsePeerAddress(absl::string_view text) {
  PeerAddress address;
  absl::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos || close + 1 >= text.size() ||
        text[close + 1] != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat("bad address '", text, "': expected [ipv6]:port"));
    }
    address.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos || colon == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad address '", text, "': expected host:port"));
    }
    address.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port == 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad address '", text, "': port must be 1..65535"));
  }
  address.port = static_cast<uint16_t>(port);
  return address;
}

// All state below is owned by the I/O thread unless a comment says it is
// guarded by a mutex or atomic. (std::mutex rather than absl::Mutex: TSan
// cannot see into Debian's uninstrumented abseil.)
class Transport::Impl {
 public:
  Impl(TransportOptions options, Receiver receiver)
      : options_(std::move(options)),
        receiver_(std::move(receiver)),
        acceptor_(io_),
        port_(options_.listen_port) {
    std::lock_guard<std::mutex> lock(peers_mu_);
    for (const auto& [id, address] : options_.peers) {
      if (id == options_.node_id) continue;
      peers_[id] = NewPeer(id, address);
    }
  }

  ~Impl() { Stop(); }

  absl::Status Start();
  void Stop();
  void Send(const cairn::v1::LogMessage& message);
  void SetPeerAddress(uint32_t id, const PeerAddress& address);
  bool Post(std::function<void()> fn);
  bool PostAfter(absl::Duration delay, std::function<void()> fn);
  bool InIoThread() const {
    return std::this_thread::get_id() ==
           io_thread_id_.load(std::memory_order_acquire);
  }
  uint16_t port() const { return port_.load(std::memory_order_acquire); }
  TransportStats Stats() const;

 private:
  // One outbound TCP connection (attempt). Replaced on every reconnect, so
  // handlers of an old connection recognise themselves as stale.
  struct Conn {
    explicit Conn(asio::io_context& io) : socket(io), connect_timer(io) {}
    tcp::socket socket;
    asio::steady_timer connect_timer;
    bool connected = false;
    bool writing = false;
    std::vector<std::string> in_flight;  // frames of the current write
    char probe = 0;                      // read target to notice closes
  };

  struct Peer {
    Peer(uint32_t peer_id, asio::io_context& io)
        : id(peer_id), resolver(io), backoff_timer(io) {}
    const uint32_t id;
    // I/O thread.
    tcp::resolver resolver;
    asio::steady_timer backoff_timer;
    absl::Duration backoff;
    std::shared_ptr<Conn> conn;
    bool failing = false;  // last attempt failed (log once per outage)
    // Shared with Send() and SetPeerAddress().
    std::mutex mu;
    PeerAddress address;            // guarded by mu
    std::deque<std::string> queue;  // guarded by mu
    bool kick_posted = false;       // guarded by mu
  };

  // One accepted connection; reads frames and delivers them.
  struct Inbound : std::enable_shared_from_this<Inbound> {
    explicit Inbound(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    std::vector<char> buffer = std::vector<char>(kInitialReadBuffer);
    size_t start = 0;  // first unconsumed byte
    size_t end = 0;    // one past the last received byte
  };

  // The I/O thread's body.
  void RunIo();
  std::unique_ptr<Peer> NewPeer(uint32_t id, const PeerAddress& address);
  Peer* FindPeer(uint32_t id);
  PeerAddress AddressOf(Peer* peer);
  // Drops the current connection (attempt) and connects afresh.
  void Reconnect(Peer* peer);
  void Connect(Peer* peer);
  void OnConnected(Peer* peer, const std::shared_ptr<Conn>& conn);
  void Fail(Peer* peer, const std::shared_ptr<Conn>& conn,
            const std::string& why);
  void ScheduleReconnect(Peer* peer);
  void Kick(Peer* peer);
  void MaybeWrite(Peer* peer);
  void Accept();
  void Read(const std::shared_ptr<Inbound>& in);
  // Parses every complete frame in the buffer; false on a bad frame.
  bool ConsumeFrames(Inbound* in);
  void CloseInbound(const std::shared_ptr<Inbound>& in);

  const TransportOptions options_;
  const Receiver receiver_;

  // Declared first so that it is destroyed last: sockets and timers below
  // refer to it.
  asio::io_context io_{1};  // one thread runs it
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
      work_;
  std::thread thread_;
  std::atomic<std::thread::id> io_thread_id_;
  tcp::acceptor acceptor_;
  std::set<std::shared_ptr<Inbound>> inbound_;  // I/O thread
  // PostAfter() timers not yet fired (I/O thread); Stop cancels them.
  std::set<std::shared_ptr<asio::steady_timer>> timers_;

  mutable std::mutex peers_mu_;
  // Peers are never removed, so a Peer* stays valid for the Impl's lifetime.
  std::map<uint32_t, std::unique_ptr<Peer>> peers_;  // guarded by peers_mu_

  std::mutex state_mu_;
  bool started_ = false;              // guarded by state_mu_
  bool stopped_ = false;              // guarded by state_mu_
  std::atomic<bool> running_{false};  // between Start() and Stop()
  bool stopping_ = false;             // I/O thread: shutting down

  std::atomic<uint16_t> port_;
  std::atomic<uint64_t> messages_sent_{0}, bytes_sent_{0},
      messages_received_{0}, bytes_received_{0}, dropped_queue_full_{0},
      dropped_on_error_{0}, dropped_unknown_peer_{0}, connects_{0},
      connect_failures_{0}, bad_frames_{0}, inbound_connections_{0};
};

absl::Status Transport::Impl::Start() {
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    if (started_ || stopped_) {
      return absl::FailedPreconditionError("transport already started");
    }
    started_ = true;
  }
  error_code ec;
  const asio::ip::address address =
      asio::ip::make_address(options_.listen_address, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad peer listen address '", options_.listen_address, "'"));
  }
  const tcp::endpoint endpoint(address, options_.listen_port);
  const std::string where = absl::StrCat("peer port ", options_.listen_address,
                                         ":", options_.listen_port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    acceptor_.close(ec);
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", where, ": ", ec.message()));
  }
  port_.store(acceptor_.local_endpoint(ec).port(), std::memory_order_release);

  work_.emplace(io_.get_executor());
  running_.store(true, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(peers_mu_);
    for (auto& [id, peer] : peers_) {
      Peer* p = peer.get();
      asio::post(io_, [this, p] { Connect(p); });
    }
  }
  asio::post(io_, [this] { Accept(); });
  thread_ = std::thread([this] { RunIo(); });
  return absl::OkStatus();
}

void Transport::Impl::RunIo() {
  io_thread_id_.store(std::this_thread::get_id(), std::memory_order_release);
  io_.run();
}

bool Transport::Impl::Post(std::function<void()> fn) {
  if (!running_.load(std::memory_order_acquire)) return false;
  asio::post(io_, [this, fn = std::move(fn)] {
    if (!stopping_) fn();
  });
  return true;
}

bool Transport::Impl::PostAfter(absl::Duration delay,
                                std::function<void()> fn) {
  if (!running_.load(std::memory_order_acquire)) return false;
  asio::post(io_, [this, delay, fn = std::move(fn)]() mutable {
    if (stopping_) return;
    auto timer = std::make_shared<asio::steady_timer>(io_);
    timers_.insert(timer);
    timer->expires_after(ToChrono(std::max(delay, absl::ZeroDuration())));
    timer->async_wait([this, timer, fn = std::move(fn)](const error_code& ec) {
      timers_.erase(timer);
      if (ec || stopping_) return;
      fn();
    });
  });
  return true;
}

void Transport::Impl::Stop() {
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    if (stopped_) return;
    stopped_ = true;
    if (!started_) return;
  }
  running_.store(false, std::memory_order_release);
  asio::post(io_, [this] {
    stopping_ = true;
    error_code ignored;
    acceptor_.close(ignored);
    for (const auto& in : inbound_) in->socket.close(ignored);
    inbound_.clear();
    for (const auto& timer : timers_) timer->cancel();
    std::lock_guard<std::mutex> lock(peers_mu_);
    for (auto& [id, peer] : peers_) {
      peer->resolver.cancel();
      peer->backoff_timer.cancel();
      if (peer->conn != nullptr) {
        peer->conn->connect_timer.cancel();
        peer->conn->socket.close(ignored);
        peer->conn.reset();
      }
    }
  });
  work_.reset();
  // Every handler sees stopping_ (or an aborted operation) and re-arms
  // nothing, so run() returns once they have all completed.
  if (thread_.joinable()) thread_.join();
}

Transport::Impl::Peer* Transport::Impl::FindPeer(uint32_t id) {
  std::lock_guard<std::mutex> lock(peers_mu_);
  auto it = peers_.find(id);
  return it == peers_.end() ? nullptr : it->second.get();
}

void Transport::Impl::Send(const cairn::v1::LogMessage& message) {
  if (!running_.load(std::memory_order_acquire)) {
    dropped_unknown_peer_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Peer* peer = FindPeer(message.to());
  if (peer == nullptr) {
    dropped_unknown_peer_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const size_t size = message.ByteSizeLong();
  if (size > options_.max_frame_bytes) {
    LOG(ERROR) << "transport " << options_.node_id << ": dropping a " << size
               << "-byte message to " << message.to()
               << ": larger than max_frame_bytes " << options_.max_frame_bytes;
    dropped_on_error_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::string frame(kHeaderBytes + size, '\0');
  PutBigEndian32(static_cast<uint32_t>(size), frame.data());
  message.SerializeWithCachedSizesToArray(
      reinterpret_cast<uint8_t*>(frame.data() + kHeaderBytes));
  const bool in_io_thread = InIoThread();
  bool post = false;
  {
    std::lock_guard<std::mutex> lock(peer->mu);
    peer->queue.push_back(std::move(frame));
    while (peer->queue.size() > options_.max_queued_messages) {
      peer->queue.pop_front();
      dropped_queue_full_.fetch_add(1, std::memory_order_relaxed);
    }
    if (!in_io_thread && !peer->kick_posted) {
      peer->kick_posted = true;
      post = true;
    }
  }
  if (in_io_thread) {
    // Write now, from this thread: the first write is attempted at once
    // (Asio writes speculatively when nothing else is queued).
    MaybeWrite(peer);
  } else if (post) {
    asio::post(io_, [this, peer] { Kick(peer); });
  }
}

std::unique_ptr<Transport::Impl::Peer> Transport::Impl::NewPeer(
    uint32_t id, const PeerAddress& address) {
  auto peer = std::make_unique<Peer>(id, io_);
  peer->backoff = options_.reconnect_initial_backoff;
  std::lock_guard<std::mutex> lock(peer->mu);
  peer->address = address;
  return peer;
}

PeerAddress Transport::Impl::AddressOf(Peer* peer) {
  std::lock_guard<std::mutex> lock(peer->mu);
  return peer->address;
}

void Transport::Impl::SetPeerAddress(uint32_t id, const PeerAddress& address) {
  if (id == options_.node_id) return;
  Peer* peer = nullptr;
  {
    std::lock_guard<std::mutex> lock(peers_mu_);
    auto& slot = peers_[id];
    if (slot == nullptr) {
      slot = NewPeer(id, address);
    } else {
      std::lock_guard<std::mutex> peer_lock(slot->mu);
      if (slot->address.host == address.host &&
          slot->address.port == address.port) {
        return;
      }
      slot->address = address;
    }
    peer = slot.get();
  }
  // Before Start() the peer is connected by Start(); after Stop() never.
  if (!running_.load(std::memory_order_acquire)) return;
  asio::post(io_, [this, peer] { Reconnect(peer); });
}

void Transport::Impl::Reconnect(Peer* peer) {
  if (stopping_) return;
  peer->backoff = options_.reconnect_initial_backoff;
  peer->resolver.cancel();
  peer->backoff_timer.cancel();
  if (peer->conn != nullptr) {
    error_code ignored;
    peer->conn->connect_timer.cancel();
    peer->conn->socket.close(ignored);
    peer->conn.reset();
  }
  Connect(peer);
}

void Transport::Impl::Connect(Peer* peer) {
  if (stopping_) return;
  auto conn = std::make_shared<Conn>(io_);
  peer->conn = conn;
  conn->connect_timer.expires_after(ToChrono(options_.connect_timeout));
  conn->connect_timer.async_wait([this, peer, conn](const error_code& ec) {
    if (ec || stopping_ || peer->conn != conn || conn->connected) return;
    Fail(peer, conn, "connect timed out");
  });
  const PeerAddress address = AddressOf(peer);
  peer->resolver.async_resolve(
      address.host, std::to_string(address.port),
      [this, peer, conn](const error_code& ec,
                         tcp::resolver::results_type results) {
        if (stopping_ || peer->conn != conn) return;
        if (ec) {
          Fail(peer, conn, absl::StrCat("resolve: ", ec.message()));
          return;
        }
        asio::async_connect(
            conn->socket, results,
            [this, peer, conn](const error_code& ec, const tcp::endpoint&) {
              if (stopping_ || peer->conn != conn) return;
              if (ec) {
                Fail(peer, conn, ec.message());
                return;
              }
              OnConnected(peer, conn);
            });
      });
}

void Transport::Impl::OnConnected(Peer* peer,
                                  const std::shared_ptr<Conn>& conn) {
  conn->connect_timer.cancel();
  conn->connected = true;
  error_code ignored;
  conn->socket.set_option(tcp::no_delay(true), ignored);
  connects_.fetch_add(1, std::memory_order_relaxed);
  if (peer->failing) {
    LOG(INFO) << "transport " << options_.node_id << ": connected to peer "
              << peer->id << " at " << AddressOf(peer).ToString();
  }
  peer->failing = false;
  peer->backoff = options_.reconnect_initial_backoff;
  // The peer never writes on this connection: a completed read means it
  // closed (or misbehaved), either way the connection is done.
  conn->socket.async_read_some(
      asio::buffer(&conn->probe, 1),
      [this, peer, conn](const error_code& ec, size_t) {
        if (stopping_ || peer->conn != conn) return;
        Fail(peer, conn,
             ec ? ec.message() : std::string("unexpected data from peer"));
      });
  MaybeWrite(peer);
}

void Transport::Impl::Fail(Peer* peer, const std::shared_ptr<Conn>& conn,
                           const std::string& why) {
  if (peer->conn != conn) return;
  if (conn->connected) {
    LOG(WARNING) << "transport " << options_.node_id
                 << ": lost connection to peer " << peer->id << " at "
                 << AddressOf(peer).ToString() << ": " << why;
  } else {
    connect_failures_.fetch_add(1, std::memory_order_relaxed);
    if (!peer->failing) {
      LOG(WARNING) << "transport " << options_.node_id
                   << ": cannot connect to peer " << peer->id << " at "
                   << AddressOf(peer).ToString() << ": " << why
                   << " (retrying quietly)";
    }
    peer->failing = true;
  }
  error_code ignored;
  conn->connect_timer.cancel();
  conn->socket.close(ignored);
  peer->conn.reset();
  ScheduleReconnect(peer);
}

void Transport::Impl::ScheduleReconnect(Peer* peer) {
  if (stopping_) return;
  const absl::Duration delay = peer->backoff;
  peer->backoff = std::min(peer->backoff * 2, options_.reconnect_max_backoff);
  peer->backoff_timer.expires_after(ToChrono(delay));
  peer->backoff_timer.async_wait([this, peer](const error_code& ec) {
    if (ec || stopping_ || peer->conn != nullptr) return;
    Connect(peer);
  });
}

void Transport::Impl::Kick(Peer* peer) {
  {
    std::lock_guard<std::mutex> lock(peer->mu);
    peer->kick_posted = false;
  }
  MaybeWrite(peer);
}

void Transport::Impl::MaybeWrite(Peer* peer) {
  if (stopping_) return;
  std::shared_ptr<Conn> conn = peer->conn;
  if (conn == nullptr || !conn->connected || conn->writing) return;
  {
    std::lock_guard<std::mutex> lock(peer->mu);
    size_t bytes = 0;
    while (!peer->queue.empty() &&
           conn->in_flight.size() < kMaxFramesPerWrite &&
           (conn->in_flight.empty() ||
            bytes + peer->queue.front().size() <= kMaxBytesPerWrite)) {
      bytes += peer->queue.front().size();
      conn->in_flight.push_back(std::move(peer->queue.front()));
      peer->queue.pop_front();
    }
  }
  if (conn->in_flight.empty()) return;
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(conn->in_flight.size());
  for (const std::string& frame : conn->in_flight) {
    buffers.push_back(asio::buffer(frame));
  }
  conn->writing = true;
  asio::async_write(conn->socket, buffers,
                    [this, peer, conn](const error_code& ec, size_t written) {
                      conn->writing = false;
                      if (ec) {
                        dropped_on_error_.fetch_add(conn->in_flight.size(),
                                                    std::memory_order_relaxed);
                        conn->in_flight.clear();
                        if (!stopping_) Fail(peer, conn, ec.message());
                        return;
                      }
                      messages_sent_.fetch_add(conn->in_flight.size(),
                                               std::memory_order_relaxed);
                      bytes_sent_.fetch_add(written, std::memory_order_relaxed);
                      conn->in_flight.clear();
                      if (peer->conn == conn) MaybeWrite(peer);
                    });
}

void Transport::Impl::Accept() {
  if (stopping_) return;
  acceptor_.async_accept([this](const error_code& ec, tcp::socket socket) {
    if (stopping_) return;
    if (ec) {
      LOG(WARNING) << "transport " << options_.node_id
                   << ": accept failed: " << ec.message();
    } else {
      inbound_connections_.fetch_add(1, std::memory_order_relaxed);
      error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      auto in = std::make_shared<Inbound>(std::move(socket));
      inbound_.insert(in);
      Read(in);
    }
    Accept();
  });
}

void Transport::Impl::Read(const std::shared_ptr<Inbound>& in) {
  if (in->end == in->buffer.size()) {
    // ConsumeFrames() made room for the frame in progress; a full buffer
    // here only happens when a frame fills it exactly.
    in->buffer.resize(in->buffer.size() * 2);
  }
  in->socket.async_read_some(
      asio::buffer(in->buffer.data() + in->end, in->buffer.size() - in->end),
      [this, in](const error_code& ec, size_t n) {
        if (stopping_) return;
        if (ec) {
          CloseInbound(in);
          return;
        }
        in->end += n;
        bytes_received_.fetch_add(n, std::memory_order_relaxed);
        if (!ConsumeFrames(in.get())) {
          bad_frames_.fetch_add(1, std::memory_order_relaxed);
          error_code ignored;
          LOG(WARNING) << "transport " << options_.node_id
                       << ": bad frame from "
                       << in->socket.remote_endpoint(ignored)
                       << "; closing the connection";
          CloseInbound(in);
          return;
        }
        Read(in);
      });
}

bool Transport::Impl::ConsumeFrames(Inbound* in) {
  while (in->end - in->start >= kHeaderBytes) {
    const uint32_t length = GetBigEndian32(in->buffer.data() + in->start);
    if (length > options_.max_frame_bytes) return false;
    if (in->end - in->start < kHeaderBytes + length) {
      // Incomplete: make sure the whole frame will fit.
      const size_t need = kHeaderBytes + length;
      if (in->start > 0) {
        std::memmove(in->buffer.data(), in->buffer.data() + in->start,
                     in->end - in->start);
        in->end -= in->start;
        in->start = 0;
      }
      if (in->buffer.size() < need) in->buffer.resize(need);
      return true;
    }
    cairn::v1::LogMessage message;
    if (!message.ParseFromArray(in->buffer.data() + in->start + kHeaderBytes,
                                static_cast<int>(length))) {
      return false;
    }
    in->start += kHeaderBytes + length;
    messages_received_.fetch_add(1, std::memory_order_relaxed);
    receiver_(std::move(message));
  }
  // Keep the (partial) header at the front of the buffer.
  if (in->start > 0) {
    std::memmove(in->buffer.data(), in->buffer.data() + in->start,
                 in->end - in->start);
    in->end -= in->start;
    in->start = 0;
  }
  // Shrink a buffer that grew for one large frame.
  if (in->end == 0 && in->buffer.size() > kInitialReadBuffer) {
    std::vector<char>(kInitialReadBuffer).swap(in->buffer);
  }
  return true;
}

void Transport::Impl::CloseInbound(const std::shared_ptr<Inbound>& in) {
  error_code ignored;
  in->socket.close(ignored);
  inbound_.erase(in);
}

TransportStats Transport::Impl::Stats() const {
  TransportStats s;
  s.messages_sent = messages_sent_.load(std::memory_order_relaxed);
  s.bytes_sent = bytes_sent_.load(std::memory_order_relaxed);
  s.messages_received = messages_received_.load(std::memory_order_relaxed);
  s.bytes_received = bytes_received_.load(std::memory_order_relaxed);
  s.dropped_queue_full = dropped_queue_full_.load(std::memory_order_relaxed);
  s.dropped_on_error = dropped_on_error_.load(std::memory_order_relaxed);
  s.dropped_unknown_peer =
      dropped_unknown_peer_.load(std::memory_order_relaxed);
  s.connects = connects_.load(std::memory_order_relaxed);
  s.connect_failures = connect_failures_.load(std::memory_order_relaxed);
  s.bad_frames = bad_frames_.load(std::memory_order_relaxed);
  s.inbound_connections = inbound_connections_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(peers_mu_);
  for (const auto& [id, peer] : peers_) {
    std::lock_guard<std::mutex> peer_lock(peer->mu);
    s.queued += peer->queue.size();
  }
  return s;
}

Transport::Transport(TransportOptions options, Receiver receiver)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(receiver))) {}

Transport::~Transport() { impl_->Stop(); }

absl::Status Transport::Start() { return impl_->Start(); }
void Transport::Stop() { impl_->Stop(); }
void Transport::Send(const cairn::v1::LogMessage& message) {
  impl_->Send(message);
}
void Transport::SetPeerAddress(uint32_t id, const PeerAddress& address) {
  impl_->SetPeerAddress(id, address);
}
bool Transport::Post(std::function<void()> fn) {
  return impl_->Post(std::move(fn));
}
bool Transport::PostAfter(absl::Duration delay, std::function<void()> fn) {
  return impl_->PostAfter(delay, std::move(fn));
}
bool Transport::InIoThread() const { return impl_->InIoThread(); }
uint16_t Transport::port() const { return impl_->port(); }
TransportStats Transport::Stats() const { return impl_->Stats(); }

}  // namespace cairn::log
