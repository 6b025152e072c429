#include "monitoring/process_metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/json_value.h"
#include "gtest/gtest.h"
#include "monitoring/metrics.h"

namespace cairn::monitoring {
namespace {

double Number(const JsonValue& snapshot, const std::string& key) {
  const JsonValue* v = snapshot.Find(key);
  double value = -1;
  if (v == nullptr || !absl::SimpleAtod(v->text, &value)) {
    ADD_FAILURE() << key << " missing";
  }
  return value;
}

TEST(ProcessStatsTest, ReadsPlausibleValues) {
  absl::StatusOr<ProcessStats> stats = ReadProcessStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_LE(stats->start_time, absl::Now());
  EXPECT_GT(stats->start_time, absl::Now() - absl::Hours(24));
  EXPECT_GT(stats->rss_bytes, 0u);
  EXPECT_GE(stats->virtual_memory_bytes, stats->rss_bytes);
  EXPECT_GE(stats->open_fds, 3u);  // stdin, stdout, stderr at least
  EXPECT_GE(stats->max_fds, stats->open_fds);
  EXPECT_GE(stats->threads, 1u);
  EXPECT_GE(stats->cpu_user_secs + stats->cpu_system_secs, 0);
}

TEST(ProcessStatsTest, CountsOpenedFdsAndThreads) {
  absl::StatusOr<ProcessStats> before = ReadProcessStats();
  ASSERT_TRUE(before.ok());
  std::vector<int> fds;
  for (int i = 0; i < 5; ++i) fds.push_back(open("/dev/null", O_RDONLY));
  std::atomic<bool> done{false};
  std::thread thread([&done] {
    while (!done.load()) absl::SleepFor(absl::Milliseconds(1));
  });
  absl::StatusOr<ProcessStats> after = ReadProcessStats();
  done = true;
  thread.join();
  for (int fd : fds) close(fd);
  ASSERT_TRUE(after.ok());
  // At least: sanitizer runtimes may add threads or fds of their own.
  EXPECT_GE(after->open_fds, before->open_fds + 5);
  EXPECT_GE(after->threads, before->threads + 1);
}

TEST(ProcessMetricsTest, RegistersGaugesReadAtScrape) {
  Registry registry;
  RegisterProcessMetrics(&registry);
  absl::StatusOr<JsonValue> snapshot = ParseJson(registry.Snapshot());
  ASSERT_TRUE(snapshot.ok());
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  const double start = Number(*snapshot, "process/start_time_secs");
  EXPECT_LE(start, now);
  EXPECT_NEAR(Number(*snapshot, "process/uptime_secs"), now - start, 60);
  EXPECT_GT(Number(*snapshot, "process/rss_bytes"), 0);
  EXPECT_GT(Number(*snapshot, "process/virtual_memory_bytes"), 0);
  EXPECT_GE(Number(*snapshot, "process/open_fds"), 3);
  EXPECT_GE(Number(*snapshot, "process/max_fds"), 3);
  EXPECT_GE(Number(*snapshot, "process/threads"), 1);
  EXPECT_GE(Number(*snapshot, "process/cpu_user_secs"), 0);
  EXPECT_GE(Number(*snapshot, "process/cpu_system_secs"), 0);

  const std::string text = registry.Prometheus();
  for (const char* family :
       {"cairn_process_start_time_seconds ", "cairn_process_uptime_seconds ",
        "cairn_process_cpu_user_seconds ", "cairn_process_cpu_system_seconds ",
        "cairn_process_rss_bytes ", "cairn_process_open_fds ",
        "cairn_process_threads ", "cairn_process_max_fds ",
        "cairn_process_virtual_memory_bytes "}) {
    EXPECT_TRUE(absl::StrContains(text, absl::StrCat("\n", family)))
        << family << "\n"
        << text;
  }
}

// `promtool check metrics` (Debian package prometheus) on the exposition.
TEST(ProcessMetricsTest, PromtoolAcceptsTheExposition) {
  const char* promtool = "/usr/bin/promtool";
  if (access(promtool, X_OK) != 0) {
    GTEST_SKIP() << promtool
                 << " is absent (apt-get install prometheus; tools/setup.sh "
                    "installs it)";
  }
  Registry registry;
  RegisterProcessMetrics(&registry);
  const std::string path = absl::StrCat(
      std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp",
      "/process_metrics_", getpid(), ".txt");
  const std::string exposition = registry.Prometheus();
  {
    std::ofstream out(path);
    out << exposition;
  }
  const std::string command = absl::StrCat(promtool, " check metrics < ", path,
                                           " > ", path, ".out 2>&1");
  const int rc = std::system(command.c_str());
  std::ifstream result(path + ".out");
  const std::string output((std::istreambuf_iterator<char>(result)),
                           std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << output << "\n--- exposition:\n" << exposition;
}

}  // namespace
}  // namespace cairn::monitoring
