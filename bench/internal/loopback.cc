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

absl::StatusOr<LatencySamples> MeasureTcpRoundTrips(int samples) {
  Fd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (listener.get() < 0) return Errno("socket");
  sockaddr_in addr = Loopback(0);
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(&addr),
           sizeof(addr)) != 0 ||
      listen(listener.get(), 1) != 0) {
    return Errno("bind/listen");
  }
  socklen_t len = sizeof(addr);
  getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);

  constexpr size_t kMessageBytes = 8;
  std::thread echo([fd = listener.get()] {
    Fd conn(accept4(fd, nullptr, nullptr, SOCK_CLOEXEC));
    if (conn.get() < 0) return;
    SetNoDelay(conn.get());
    char buf[kMessageBytes];
    while (ReadFull(conn.get(), buf, sizeof(buf)) &&
           WriteFull(conn.get(), buf, sizeof(buf))) {
    }
  });

  Fd client(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  absl::Status status;
  LatencySamples result;
  if (client.get() < 0 ||
      connect(client.get(), reinterpret_cast<sockaddr*>(&addr),
              sizeof(addr)) != 0) {
    status = Errno("connect");
    // Unblock the echo thread's accept().
    shutdown(listener.get(), SHUT_RDWR);
  } else {
    SetNoDelay(client.get());
    result.Reserve(samples);
    char buf[kMessageBytes] = {'c', 'a', 'i', 'r', 'n', 'r', 't', 't'};
    const int warmup = samples / 10;
    for (int i = 0; i < warmup + samples; ++i) {
      auto start = std::chrono::steady_clock::now();
      if (!WriteFull(client.get(), buf, sizeof(buf)) ||
          !ReadFull(client.get(), buf, sizeof(buf))) {
        status = Errno("echo round trip");
        break;
      }
      auto end = std::chrono::steady_clock::now();
      if (i >= warmup) {
        result.Add(std::chrono::duration<double, std::micro>(end - start)
                       .count());
      }
    }
    client.Reset(-1);  // the echo thread sees EOF and ends
  }
  echo.join();
  if (!status.ok()) return status;
  return result;
}

}  // namespace cairn::bench
