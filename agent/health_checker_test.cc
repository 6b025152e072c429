#include "agent/health_checker.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/http_server.h"
#include "gtest/gtest.h"

namespace cairn::agent {
namespace {

constexpr absl::Duration kDeadline = absl::Seconds(30);

// Collects a checker's updates.
class Updates {
 public:
  HealthChecker::Callback Callback() {
    return [this](const HealthUpdate& update) {
      std::lock_guard<std::mutex> lock(mu_);
      updates_.push_back(update);
      cv_.notify_all();
    };
  }

  // Waits until at least `n` updates arrived.
  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoSeconds(kDeadline),
                        [&] { return updates_.size() >= n; });
  }

  std::vector<HealthUpdate> Get() {
    std::lock_guard<std::mutex> lock(mu_);
    return updates_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<HealthUpdate> updates_;
};

v1::HealthCheck Fast(v1::HealthCheck::Type type) {
  v1::HealthCheck check;
  check.set_type(type);
  check.set_delay_seconds(0);
  check.set_interval_seconds(0.05);
  check.set_timeout_seconds(5);
  check.set_grace_period_seconds(0);
  check.set_consecutive_failures(2);
  return check;
}

std::string Sandbox() {
  const testing::TestInfo* info =
      testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", info->name());
  mkdir(dir.c_str(), 0755);
  return dir;
}

HealthCheckerOptions Options(const std::string& sandbox) {
  HealthCheckerOptions options;
  options.sandbox = sandbox;
  options.environment = {"PATH=/usr/bin:/bin", "MARKER=ok"};
  return options;
}

TEST(HealthCheckerTest, CommandCheckFollowsAFileInTheSandbox) {
  const std::string sandbox = Sandbox();
  const std::string marker = sandbox + "/ok";
  std::ofstream(marker) << "";
  v1::HealthCheck check = Fast(v1::HealthCheck::COMMAND);
  check.set_consecutive_failures(1000);
  // The task's environment is visible: $MARKER is "ok".
  check.mutable_command()->set_value("test -f \"$MARKER\"");
  Updates updates;
  auto checker =
      HealthChecker::Start(check, Options(sandbox), updates.Callback());
  ASSERT_TRUE(checker.ok()) << checker.status();

  ASSERT_TRUE(updates.WaitFor(1));
  EXPECT_TRUE(updates.Get()[0].healthy);
  std::remove(marker.c_str());
  ASSERT_TRUE(updates.WaitFor(2));
  EXPECT_FALSE(updates.Get()[1].healthy);
  EXPECT_EQ(updates.Get()[1].consecutive_failures, 1u);
  EXPECT_NE(updates.Get()[1].message.find("exited with status 1"),
            std::string::npos)
      << updates.Get()[1].message;
  std::ofstream(marker) << "";
  // Healthy again: one transition update, after any failures in between.
  ASSERT_TRUE(updates.WaitFor(3));
  ASSERT_TRUE(testing::AssertionResult([&] {
    for (int i = 0; i < 1000; ++i) {
      std::vector<HealthUpdate> got = updates.Get();
      if (got.back().healthy) return true;
      updates.WaitFor(got.size() + 1);
    }
    return false;
  }()));
  (*checker)->Stop();
  const size_t final_count = updates.Get().size();
  int healthy = 0;
  for (const HealthUpdate& u : updates.Get()) healthy += u.healthy ? 1 : 0;
  EXPECT_EQ(healthy, 2);  // first success, and the recovery
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(updates.Get().size(), final_count) << "callback after Stop()";
}

TEST(HealthCheckerTest, ConsecutiveFailuresAskToKill) {
  v1::HealthCheck check = Fast(v1::HealthCheck::COMMAND);
  check.set_consecutive_failures(3);
  check.mutable_command()->set_value("exit 1");
  Updates updates;
  auto checker =
      HealthChecker::Start(check, Options(Sandbox()), updates.Callback());
  ASSERT_TRUE(checker.ok());
  ASSERT_TRUE(updates.WaitFor(3));
  std::vector<HealthUpdate> got = updates.Get();
  ASSERT_EQ(got.size(), 3u);  // checking stops after the kill
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(got[i].healthy);
    EXPECT_EQ(got[i].consecutive_failures, static_cast<uint32_t>(i + 1));
    EXPECT_EQ(got[i].kill_task, i == 2);
  }
}

TEST(HealthCheckerTest, FailuresWithinGracePeriodAreIgnoredUntilFirstSuccess) {
  const std::string sandbox = Sandbox();
  v1::HealthCheck check = Fast(v1::HealthCheck::COMMAND);
  check.set_grace_period_seconds(600);
  check.mutable_command()->set_value("test -f ok");
  Updates updates;
  auto checker =
      HealthChecker::Start(check, Options(sandbox), updates.Callback());
  ASSERT_TRUE(checker.ok());
  // Check runs keep failing; nothing is reported. Then the first success.
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_TRUE(updates.Get().empty());
  std::ofstream(sandbox + "/ok") << "";
  ASSERT_TRUE(updates.WaitFor(1));
  EXPECT_TRUE(updates.Get()[0].healthy);
  // After a success the grace period no longer hides failures.
  std::remove((sandbox + "/ok").c_str());
  ASSERT_TRUE(updates.WaitFor(2));
  EXPECT_FALSE(updates.Get()[1].healthy);
}

TEST(HealthCheckerTest, CommandTimeoutIsAFailure) {
  v1::HealthCheck check = Fast(v1::HealthCheck::COMMAND);
  check.set_timeout_seconds(0.2);
  check.mutable_command()->set_value("sleep 100");
  Updates updates;
  auto checker =
      HealthChecker::Start(check, Options(Sandbox()), updates.Callback());
  ASSERT_TRUE(checker.ok());
  ASSERT_TRUE(updates.WaitFor(1));
  EXPECT_FALSE(updates.Get()[0].healthy);
  EXPECT_NE(updates.Get()[0].message.find("timed out"), std::string::npos)
      << updates.Get()[0].message;
}

TEST(HealthCheckerTest, HttpCheckUsesStatusRanges) {
  std::atomic<int> answer{200};
  http::Server server;
  server.HandleSync("GET", "/ready", [&](const http::Request&) {
    return http::Response::Text(answer.load(), "x");
  });
  ASSERT_TRUE(server.Start().ok());
  v1::HealthCheck check = Fast(v1::HealthCheck::HTTP);
  check.mutable_http()->set_port(server.port());
  check.mutable_http()->set_path("ready");  // "/" is added
  auto checker = HealthChecker::Start(check, Options(Sandbox()), nullptr);
  ASSERT_TRUE(checker.ok());
  (*checker)->Stop();
  EXPECT_TRUE((*checker)->CheckOnce().ok());
  answer.store(302);
  EXPECT_TRUE((*checker)->CheckOnce().ok());  // 3xx counts (no Location)
  answer.store(500);
  absl::Status failed = (*checker)->CheckOnce();
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(failed.message().find("500"), std::string::npos) << failed;

  // Explicit statuses replace the default range.
  check.mutable_http()->add_statuses(500);
  auto strict = HealthChecker::Start(check, Options(Sandbox()), nullptr);
  ASSERT_TRUE(strict.ok());
  (*strict)->Stop();
  EXPECT_TRUE((*strict)->CheckOnce().ok());
  answer.store(200);
  EXPECT_FALSE((*strict)->CheckOnce().ok());
}

TEST(HealthCheckerTest, HttpCheckReportsHealthyThenUnhealthy) {
  std::atomic<int> answer{200};
  http::Server server;
  server.HandleSync("GET", "/health", [&](const http::Request&) {
    return http::Response::Text(answer.load(), "x");
  });
  ASSERT_TRUE(server.Start().ok());
  v1::HealthCheck check = Fast(v1::HealthCheck::HTTP);
  check.mutable_http()->set_port(server.port());
  check.mutable_http()->set_path("/health");
  Updates updates;
  auto checker =
      HealthChecker::Start(check, Options(Sandbox()), updates.Callback());
  ASSERT_TRUE(checker.ok());
  ASSERT_TRUE(updates.WaitFor(1));
  EXPECT_TRUE(updates.Get()[0].healthy);
  answer.store(503);
  ASSERT_TRUE(updates.WaitFor(3));
  std::vector<HealthUpdate> got = updates.Get();
  EXPECT_FALSE(got[1].healthy);
  EXPECT_FALSE(got[1].kill_task);
  EXPECT_FALSE(got[2].healthy);
  EXPECT_TRUE(got[2].kill_task);
}

TEST(HealthCheckerTest, TcpCheckConnects) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  v1::HealthCheck check = Fast(v1::HealthCheck::TCP);
  check.mutable_tcp()->set_port(ntohs(addr.sin_port));
  auto checker = HealthChecker::Start(check, Options(Sandbox()), nullptr);
  ASSERT_TRUE(checker.ok());
  (*checker)->Stop();
  EXPECT_TRUE((*checker)->CheckOnce().ok());
  close(fd);
  absl::Status refused = (*checker)->CheckOnce();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(refused.message().find("refused"), std::string::npos) << refused;
}

TEST(HealthCheckerTest, ValidateNamesTheBadField) {
  struct Case {
    v1::HealthCheck check;
    std::string field;
  };
  std::vector<Case> cases;
  {
    v1::HealthCheck c;
    cases.push_back({c, "check.type"});
  }
  {
    v1::HealthCheck c;
    c.set_type(v1::HealthCheck::HTTP);
    cases.push_back({c, "check.http"});
    c.mutable_http()->set_port(0);
    cases.push_back({c, "check.http.port"});
    c.mutable_http()->set_port(80);
    c.mutable_http()->set_scheme("ftp");
    cases.push_back({c, "check.http.scheme"});
  }
  {
    v1::HealthCheck c;
    c.set_type(v1::HealthCheck::COMMAND);
    cases.push_back({c, "check.command"});
    c.mutable_command();
    cases.push_back({c, "check.command.value"});
  }
  {
    v1::HealthCheck c;
    c.set_type(v1::HealthCheck::TCP);
    c.mutable_tcp()->set_port(70000);
    cases.push_back({c, "check.tcp.port"});
    c.mutable_tcp()->set_port(80);
    c.set_interval_seconds(-1);
    cases.push_back({c, "check.interval_seconds"});
  }
  for (const Case& c : cases) {
    absl::Status s = HealthChecker::Validate(c.check, "check");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(s.message().find(c.field), std::string::npos)
        << c.field << ": " << s;
  }
}

}  // namespace
}  // namespace cairn::agent
