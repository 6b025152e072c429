#include "bench/internal/loopback.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"

namespace cairn::bench {
namespace {

// Closes a file descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }
  void Reset(int fd) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

absl::Status Errno(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  return addr;
}

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Reads or writes exactly n bytes; false on error or EOF.
bool ReadFull(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= r;
  }
  return true;
}

bool WriteFull(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t r = write(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= r;
  }
  return true;
}

constexpr size_t kEchoBytes = 8;

}  // namespace

absl::StatusOr<uint16_t> PickFreePort() {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Errno("socket");
  sockaddr_in addr = Loopback(0);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Errno("bind");
  }
  socklen_t len = sizeof(addr);
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Errno("getsockname");
  }
  return ntohs(addr.sin_port);
}

absl::StatusOr<std::unique_ptr<TcpEcho>> TcpEcho::Start() {
  std::unique_ptr<TcpEcho> echo(new TcpEcho);
  echo->listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (echo->listener_ < 0) return Errno("socket");
  sockaddr_in addr = Loopback(0);
  if (bind(echo->listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
          0 ||
      listen(echo->listener_, 1) != 0) {
    return Errno("bind/listen");
  }
  socklen_t len = sizeof(addr);
  getsockname(echo->listener_, reinterpret_cast<sockaddr*>(&addr), &len);
  echo->client_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (echo->client_ < 0) return Errno("socket");
  // The backlog holds the connection until the echo thread accepts it.
  if (connect(echo->client_, reinterpret_cast<sockaddr*>(&addr),
              sizeof(addr)) != 0) {
    return Errno("connect");
  }
  SetNoDelay(echo->client_);
  echo->echo_ = std::thread([fd = echo->listener_] {
    Fd conn(accept4(fd, nullptr, nullptr, SOCK_CLOEXEC));
    if (conn.get() < 0) return;
    SetNoDelay(conn.get());
    char buf[kEchoBytes];
    while (ReadFull(conn.get(), buf, sizeof(buf)) &&
           WriteFull(conn.get(), buf, sizeof(buf))) {
    }
  });
  return echo;
}

TcpEcho::~TcpEcho() {
  // EOF on the connection ends the echo loop; shutting the listener down
  // unblocks an accept() that never got its connection.
  if (client_ >= 0) close(client_);
  if (listener_ >= 0) shutdown(listener_, SHUT_RDWR);
  if (echo_.joinable()) echo_.join();
  if (listener_ >= 0) close(listener_);
}

absl::StatusOr<double> TcpEcho::RoundTrip() {
  char buf[kEchoBytes] = {'c', 'a', 'i', 'r', 'n', 'r', 't', 't'};
  auto start = std::chrono::steady_clock::now();
  if (!WriteFull(client_, buf, sizeof(buf)) ||
      !ReadFull(client_, buf, sizeof(buf))) {
    return Errno("echo round trip");
  }
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now() - start)
      .count();
}

absl::StatusOr<LatencySamples> MeasureTcpRoundTrips(int samples) {
  absl::StatusOr<std::unique_ptr<TcpEcho>> echo = TcpEcho::Start();
  if (!echo.ok()) return echo.status();
  LatencySamples result;
  result.Reserve(samples);
  const int warmup = samples / 10;
  for (int i = 0; i < warmup + samples; ++i) {
    absl::StatusOr<double> us = (*echo)->RoundTrip();
    if (!us.ok()) return us.status();
    if (i >= warmup) result.Add(*us);
  }
  return result;
}

}  // namespace cairn::bench
