#include "agent/health_checker.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/child_process.h"
#include "common/logging.h"

namespace cairn::agent {
namespace {

constexpr absl::Duration kPollStep = absl::Milliseconds(10);

absl::Duration Seconds(double seconds) {
  return absl::Microseconds(static_cast<int64_t>(seconds * 1e6));
}

absl::Status CheckSeconds(double value, const std::string& field) {
  if (!(value >= 0) || value > 1e9) {  // also rejects NaN
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be between 0 and 1e9 seconds, not ", value));
  }
  return absl::OkStatus();
}

absl::Status CheckPort(bool has, uint32_t port, const std::string& field) {
  if (!has || port == 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be a port between 1 and 65535"));
  }
  return absl::OkStatus();
}

void InitCurlOnce() {
  static const bool done = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)done;
}

}  // namespace

absl::Status HealthChecker::Validate(const v1::HealthCheck& check,
                                     const std::string& field) {
  if (absl::Status s = CheckSeconds(check.delay_seconds(),
                                    field + ".delay_seconds");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckSeconds(check.interval_seconds(),
                                    field + ".interval_seconds");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckSeconds(check.timeout_seconds(),
                                    field + ".timeout_seconds");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckSeconds(check.grace_period_seconds(),
                                    field + ".grace_period_seconds");
      !s.ok()) {
    return s;
  }
  switch (check.type()) {
    case v1::HealthCheck::COMMAND: {
      if (!check.has_command()) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ".command is required for type COMMAND"));
      }
      absl::StatusOr<CommandLine> line =
          ResolveCommand(check.command(), field + ".command");
      if (!line.ok()) return line.status();
      absl::StatusOr<std::vector<std::string>> env = MergeEnvironment(
          {}, check.command().environment(), field + ".command.environment");
      return env.status();
    }
    case v1::HealthCheck::HTTP: {
      if (!check.has_http()) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ".http is required for type HTTP"));
      }
      const auto& http = check.http();
      if (absl::Status s =
              CheckPort(http.has_port(), http.port(), field + ".http.port");
          !s.ok()) {
        return s;
      }
      if (http.has_scheme() && http.scheme() != "http" &&
          http.scheme() != "https") {
        return absl::InvalidArgumentError(absl::StrCat(
            field, ".http.scheme must be \"http\" or \"https\", not \"",
            http.scheme(), "\""));
      }
      for (int i = 0; i < http.statuses_size(); ++i) {
        if (http.statuses(i) < 100 || http.statuses(i) > 599) {
          return absl::InvalidArgumentError(absl::StrCat(
              field, ".http.statuses[", i, "] must be an HTTP status"));
        }
      }
      return absl::OkStatus();
    }
    case v1::HealthCheck::TCP:
      if (!check.has_tcp()) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ".tcp is required for type TCP"));
      }
      return CheckPort(check.tcp().has_port(), check.tcp().port(),
                       field + ".tcp.port");
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".type must be COMMAND, HTTP or TCP"));
  }
}

absl::StatusOr<std::unique_ptr<HealthChecker>> HealthChecker::Start(
    const v1::HealthCheck& check, HealthCheckerOptions options,
    Callback callback) {
  if (absl::Status s = Validate(check); !s.ok()) return s;
  InitCurlOnce();
  std::unique_ptr<HealthChecker> checker(
      new HealthChecker(check, std::move(options), std::move(callback)));
  checker->thread_ = std::thread([c = checker.get()] { c->Run(); });
  return checker;
}

HealthChecker::HealthChecker(v1::HealthCheck check,
                             HealthCheckerOptions options, Callback callback)
    : check_(std::move(check)),
      options_(std::move(options)),
      callback_(std::move(callback)),
      start_(absl::Now()) {}

HealthChecker::~HealthChecker() { Stop(); }

void HealthChecker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) {
    thread_.join();
  }
}

bool HealthChecker::WaitUntil(absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_.load()) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return true;
    cv_.wait_for(lock, absl::ToChronoMicroseconds(left));
  }
  return false;
}

void HealthChecker::Run() {
  const absl::Duration grace = Seconds(check_.grace_period_seconds());
  const absl::Duration interval = Seconds(check_.interval_seconds());
  const uint32_t limit = std::max<uint32_t>(1, check_.consecutive_failures());
  bool ever_healthy = false;
  bool healthy = false;
  uint32_t failures = 0;

  if (!WaitUntil(start_ + Seconds(check_.delay_seconds()))) return;
  while (!stop_.load()) {
    absl::Status result = RunCheck(stop_);
    if (stop_.load()) return;
    if (result.ok()) {
      failures = 0;
      if (!healthy) {
        healthy = true;
        ever_healthy = true;
        VLOG(1) << "health check passed";
        if (callback_) callback_(HealthUpdate{true, false, 0, ""});
      }
    } else if (!ever_healthy && absl::Now() - start_ < grace) {
      LOG(INFO) << "ignoring a failed health check within the grace period: "
                << result.message();
    } else {
      healthy = false;
      ++failures;
      const bool kill = failures >= limit;
      LOG(WARNING) << "health check failed " << failures << " time(s) in a row: "
                   << result.message();
      if (callback_) {
        callback_(HealthUpdate{false, kill, failures,
                               std::string(result.message())});
      }
      if (kill) return;
    }
    if (!WaitUntil(absl::Now() + interval)) return;
  }
}

absl::Status HealthChecker::CheckOnce() {
  const std::atomic<bool> never{false};
  return RunCheck(never);
}

absl::Status HealthChecker::RunCheck(const std::atomic<bool>& stop) {
  const absl::Duration timeout = Seconds(check_.timeout_seconds());
  const absl::Time deadline = timeout > absl::ZeroDuration()
                                  ? absl::Now() + timeout
                                  : absl::InfiniteFuture();
  switch (check_.type()) {
    case v1::HealthCheck::COMMAND:
      return CheckCommand(deadline, stop);
    case v1::HealthCheck::HTTP:
      return CheckHttp(deadline, stop);
    case v1::HealthCheck::TCP:
      return CheckTcp(deadline, stop);
    default:
      return absl::InvalidArgumentError("unknown health check type");
  }
}

absl::Status HealthChecker::CheckCommand(absl::Time deadline,
                                         const std::atomic<bool>& stop) {
  absl::StatusOr<CommandLine> line =
      ResolveCommand(check_.command(), "health_check.command");
  if (!line.ok()) return line.status();
  absl::StatusOr<std::vector<std::string>> env =
      MergeEnvironment(options_.environment, check_.command().environment(),
                       "health_check.command.environment");
  if (!env.ok()) return env.status();
  LaunchSpec spec;
  spec.executable = line->executable;
  spec.argv = line->argv;
  spec.environment = *std::move(env);
  spec.working_directory = options_.sandbox;
  absl::StatusOr<pid_t> pid = Launch(spec);
  if (!pid.ok()) {
    return absl::UnavailableError(
        absl::StrCat("command health check: ", pid.status().message()));
  }
  while (true) {
    if (std::optional<int> status = TryWait(*pid); status.has_value()) {
      if (WIFEXITED(*status) && WEXITSTATUS(*status) == 0) {
        return absl::OkStatus();
      }
      return absl::UnavailableError(
          absl::StrCat("command health check ", DescribeWaitStatus(*status)));
    }
    const bool stopped = stop.load();
    if (stopped || absl::Now() >= deadline) {
      kill(-*pid, SIGKILL);
      kill(*pid, SIGKILL);
      Wait(*pid);
      if (stopped) return absl::CancelledError("health checker stopped");
      return absl::DeadlineExceededError(
          absl::StrCat("command health check timed out after ",
                       check_.timeout_seconds(), "s"));
    }
    absl::SleepFor(kPollStep);
  }
}

namespace {

size_t DiscardBody(char*, size_t size, size_t count, void*) {
  return size * count;
}

// Aborts a transfer once the checker is stopped.
int AbortIfStopped(void* stop, curl_off_t, curl_off_t, curl_off_t,
                   curl_off_t) {
  return static_cast<std::atomic<bool>*>(stop)->load() ? 1 : 0;
}

}  // namespace

absl::Status HealthChecker::CheckHttp(absl::Time deadline,
                                      const std::atomic<bool>& stop) {
  const auto& http = check_.http();
  const std::string scheme = http.has_scheme() ? http.scheme() : "http";
  std::string path = http.path();
  if (!absl::StartsWith(path, "/")) path = "/" + path;
  const std::string url =
      absl::StrCat(scheme, "://", options_.host, ":", http.port(), path);

  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &DiscardBody);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &AbortIfStopped);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA,
                   const_cast<std::atomic<bool>*>(&stop));
  if (deadline != absl::InfiniteFuture()) {
    const int64_t ms =
        std::max<int64_t>(1, absl::ToInt64Milliseconds(deadline - absl::Now()));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(ms));
  }
  const CURLcode code = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);

  if (code == CURLE_OPERATION_TIMEDOUT) {
    return absl::DeadlineExceededError(absl::StrCat(
        "HTTP health check of ", url, " timed out after ",
        check_.timeout_seconds(), "s"));
  }
  if (code != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat("HTTP health check of ", url, " failed: ",
                     error[0] != '\0' ? error : curl_easy_strerror(code)));
  }
  bool good;
  if (http.statuses_size() > 0) {
    good = std::find(http.statuses().begin(), http.statuses().end(),
                     static_cast<uint32_t>(status)) != http.statuses().end();
  } else {
    good = status >= 200 && status < 400;
  }
  if (good) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(
      "HTTP health check of ", url, " returned status ", status));
}

absl::Status HealthChecker::CheckTcp(absl::Time deadline,
                                     const std::atomic<bool>& stop) {
  const uint32_t port = check_.tcp().port();
  const std::string where = absl::StrCat(options_.host, ":", port);
  sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, options_.host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad health check host ", options_.host));
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  }
  int error = 0;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    error = errno;
    if (error == EINPROGRESS) {
      error = ETIMEDOUT;
      while (!stop.load() && absl::Now() < deadline) {
        pollfd p{fd, POLLOUT, 0};
        const absl::Duration left =
            std::min(deadline - absl::Now(), absl::Milliseconds(50));
        const int ready = poll(&p, 1, static_cast<int>(std::max<int64_t>(
                                          1, absl::ToInt64Milliseconds(left))));
        if (ready > 0) {
          socklen_t len = sizeof(error);
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
          break;
        }
      }
    }
  }
  close(fd);
  if (error == 0) return absl::OkStatus();
  if (error == ETIMEDOUT) {
    return absl::DeadlineExceededError(
        absl::StrCat("TCP health check of ", where, " timed out after ",
                     check_.timeout_seconds(), "s"));
  }
  return absl::UnavailableError(absl::StrCat(
      "TCP health check of ", where, " failed: ", strerror(error)));
}

}  // namespace cairn::agent
