// Operations acceptance on real `cairn-master` processes (127.0.0.1):
//
//  - PromtoolAndPrometheusScrapeEveryMaster: three masters and a real
//    cairn-agent registered with them; `promtool check metrics` accepts each
//    /metrics body (which carries the process/* metrics), the agent's too; a
//    real Prometheus server (Debian package prometheus), started here on a
//    free loopback port with a generated config (scrape_interval 1s),
//    scrapes them, and its query API answers cairn_master_elected with one
//    sample per master, exactly one of them 1: the leader's, and
//    cairn_slave_registered (the agent's slave/registered) with 1. Skipped,
//    saying so, when /usr/bin/promtool or /usr/bin/prometheus is absent.
//  - LoggingToggleRaisesVerbosityThenReverts: one master logging JSON lines
//    to --log_dir; GET /logging/toggle?level=3&duration=1secs raises the
//    level (/logging/level says 3, and an operator call's VLOG(3) line with
//    its X-Request-Id reaches the log file), and the level reverts to 0 by
//    itself (polled on /logging/level); a call made before or after the
//    toggle leaves no such line. The log file is then read back through
//    /files/read?path=/master/log/cairn-master.log.
//
// Every wait polls against a bounded deadline; Prometheus is SIGKILLed at
// the end (tests/internal/process.h).

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "common/json_value.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_process.h"
#include "tests/internal/master_cluster.h"
#include "tests/internal/process.h"
#include "tools/cpp/runfiles/runfiles.h"

namespace cairn::tests {
namespace {

using bazel::tools::cpp::runfiles::Runfiles;

constexpr absl::Duration kTimeout = absl::Seconds(30);
constexpr absl::Duration kPollPause = absl::Milliseconds(50);
constexpr char kPromtool[] = "/usr/bin/promtool";
constexpr char kPrometheus[] = "/usr/bin/prometheus";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A port the kernel handed out on 127.0.0.1 (bound to 0, then released).
absl::StatusOr<uint16_t> FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    close(fd);
    return absl::InternalError("bind() to 127.0.0.1:0 failed");
  }
  close(fd);
  return ntohs(address.sin_port);
}

class PrometheusScrapeTest : public ::testing::Test {
 protected:
  // Starts `masters` masters with `flags` added and waits for a leader.
  void StartCluster(int masters, const std::vector<std::string>& flags) {
    absl::StatusOr<MasterClusterOptions> options =
        OptionsForThisTest("prometheus_scrape");
    ASSERT_TRUE(options.ok()) << options.status();
    options->masters = masters;
    options->timeout = kTimeout;
    options->flags.insert(options->flags.end(), flags.begin(), flags.end());
    scratch_ = options->root;
    log_dir_ = options->log_dir;
    absl::StatusOr<std::unique_ptr<MasterCluster>> cluster =
        MasterCluster::Start(*options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    std::vector<int> all;
    for (int i = 0; i < masters; ++i) all.push_back(i);
    absl::StatusOr<int> leader = cluster_->WaitForLeader(all);
    ASSERT_TRUE(leader.ok()) << leader.status();
    leader_ = *leader;
  }

  // GET `target` of master `i`; the body of a 200, else an error.
  absl::StatusOr<std::string> Get(int i, const std::string& target) const {
    absl::StatusOr<http::Response> response =
        cluster_->Request(i, "GET", target);
    if (!response.ok()) return response.status();
    if (response->status != 200) {
      return absl::InternalError(absl::StrCat("GET ", target, ": ",
                                              response->status, " ",
                                              response->body));
    }
    return response->body;
  }

  // Starts a real cairn-agent (posix isolation) following every master
  // and waits until it is registered.
  void StartAgent() {
    std::string error;
    std::unique_ptr<Runfiles> runfiles(Runfiles::CreateForTest(&error));
    ASSERT_NE(runfiles, nullptr) << error;
    AgentProcessOptions options;
    options.binary = runfiles->Rlocation("cairn/agent/cairn-agent");
    ASSERT_FALSE(options.binary.empty());
    for (int i = 0; i < 3; ++i) options.masters.push_back(cluster_->Address(i));
    options.work_dir = absl::StrCat(scratch_, "/agent");
    options.log_dir = log_dir_.empty() ? scratch_ : log_dir_;
    absl::StatusOr<std::unique_ptr<AgentProcess>> agent =
        AgentProcess::Start(options);
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
    absl::StatusOr<std::string> id =
        agent_->WaitForRegistered(absl::Now() + kTimeout);
    ASSERT_TRUE(id.ok()) << id.status() << "\n"
                         << agent_->process()->LogTail(2000);
  }

  // Starts Prometheus scraping every master (and the agent, if any);
  // retries with a new port when it exits at startup (its port was taken).
  void StartPrometheus() {
    std::vector<std::string> targets;
    for (int i = 0; i < 3; ++i) {
      targets.push_back(absl::StrCat("'", cluster_->Address(i), "'"));
    }
    const std::string dir = absl::StrCat(scratch_, "/prometheus");
    std::filesystem::create_directories(dir);
    const std::string config = absl::StrCat(dir, "/prometheus.yml");
    {
      std::ofstream out(config);
      out << "global:\n"
          << "  scrape_interval: 1s\n"
          << "  scrape_timeout: 1s\n"
          << "  evaluation_interval: 1s\n"
          << "scrape_configs:\n"
          << "  - job_name: cairn-master\n"
          << "    static_configs:\n"
          << "      - targets: [" << absl::StrJoin(targets, ", ") << "]\n";
      if (agent_ != nullptr) {
        out << "  - job_name: cairn-agent\n"
            << "    static_configs:\n"
            << "      - targets: ['" << agent_->address() << "']\n";
      }
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
      absl::StatusOr<uint16_t> port = FreePort();
      ASSERT_TRUE(port.ok()) << port.status();
      prometheus_port_ = *port;
      absl::StatusOr<std::unique_ptr<Process>> process = Process::Start(
          {kPrometheus, absl::StrCat("--config.file=", config),
           absl::StrCat("--storage.tsdb.path=", dir, "/data-", attempt),
           absl::StrCat("--web.listen-address=127.0.0.1:", *port),
           "--log.level=warn"},
          absl::StrCat(cluster_->log_dir(), "/prometheus-", attempt, ".log"));
      ASSERT_TRUE(process.ok()) << process.status();
      prometheus_ = *std::move(process);
      // Ready once /-/ready answers 200; a quick exit means a taken port.
      const absl::Time deadline = absl::Now() + kTimeout;
      http::Client client;
      while (absl::Now() < deadline && prometheus_->Running()) {
        absl::StatusOr<http::Response> ready = client.Request(
            "GET", "127.0.0.1", prometheus_port_, "/-/ready", {}, "",
            absl::Seconds(2));
        if (ready.ok() && ready->status == 200) return;
        absl::SleepFor(kPollPause);
      }
      ASSERT_FALSE(prometheus_->Running())
          << "prometheus not ready in " << kTimeout << ":\n"
          << prometheus_->LogTail();
    }
    FAIL() << "prometheus did not start:\n" << prometheus_->LogTail();
  }

  // Prometheus's query API: the samples of `query` as instance -> value,
  // once `done` holds for them or the deadline passes (the last answer is
  // kept in `last`).
  std::map<std::string, std::string> QueryUntil(
      const std::string& query,
      const std::function<bool(const std::map<std::string, std::string>&)>&
          done,
      std::string* last) {
    http::Client client;
    const absl::Time deadline = absl::Now() + kTimeout;
    std::map<std::string, std::string> samples;  // instance -> value
    while (absl::Now() < deadline) {
      absl::StatusOr<http::Response> answer = client.Request(
          "GET", "127.0.0.1", prometheus_port_,
          absl::StrCat("/api/v1/query?query=", query), {}, "",
          absl::Seconds(5));
      if (answer.ok() && answer->status == 200) {
        *last = answer->body;
        absl::StatusOr<JsonValue> json = ParseJson(answer->body);
        if (!json.ok() || json->Text("status") != "success") {
          ADD_FAILURE() << answer->body;
          return {};
        }
        const JsonValue* data = json->Find("data");
        const JsonValue* result = data ? data->Find("result") : nullptr;
        if (result == nullptr) {
          ADD_FAILURE() << answer->body;
          return {};
        }
        samples.clear();
        for (const JsonValue& sample : result->items) {
          const JsonValue* metric = sample.Find("metric");
          const JsonValue* value = sample.Find("value");
          if (metric == nullptr || value == nullptr ||
              value->items.size() != 2) {
            ADD_FAILURE() << answer->body;
            return {};
          }
          samples[metric->Text("instance").value_or("")] =
              value->items[1].text;
        }
        if (done(samples)) break;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    return samples;
  }

  std::string scratch_;
  std::string log_dir_;
  std::unique_ptr<MasterCluster> cluster_;
  std::unique_ptr<AgentProcess> agent_;
  int leader_ = -1;
  std::unique_ptr<Process> prometheus_;
  uint16_t prometheus_port_ = 0;
};

TEST_F(PrometheusScrapeTest, PromtoolAndPrometheusScrapeEveryMaster) {
  if (access(kPromtool, X_OK) != 0 || access(kPrometheus, X_OK) != 0) {
    GTEST_SKIP() << kPromtool << " or " << kPrometheus
                 << " is absent (apt-get install prometheus; tools/setup.sh "
                    "installs it)";
  }
  ASSERT_NO_FATAL_FAILURE(StartCluster(3, {}));
  ASSERT_NO_FATAL_FAILURE(StartAgent());

  // promtool accepts every master's exposition and the agent's, process
  // metrics included.
  auto check_with_promtool = [&](const std::string& name,
                                 const std::string& metrics) {
    const std::string path = absl::StrCat(scratch_, "/metrics-", name, ".txt");
    {
      std::ofstream out(path);
      out << metrics;
    }
    const std::string command = absl::StrCat(
        kPromtool, " check metrics < ", path, " > ", path, ".out 2>&1");
    const int rc = std::system(command.c_str());
    EXPECT_EQ(rc, 0) << name << ": " << ReadFile(path + ".out");
  };
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<std::string> metrics = Get(i, "/metrics");
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    for (const char* family :
         {"cairn_master_elected ", "cairn_process_uptime_seconds ",
          "cairn_process_cpu_user_seconds ", "cairn_process_rss_bytes ",
          "cairn_process_open_fds ", "cairn_process_threads "}) {
      EXPECT_TRUE(absl::StrContains(*metrics, absl::StrCat("\n", family)))
          << "master " << i << " lacks " << family;
    }
    check_with_promtool(absl::StrCat("master-", i), *metrics);
  }
  {
    absl::StatusOr<http::Response> metrics = agent_->Get("/metrics");
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    ASSERT_EQ(metrics->status, 200) << metrics->body;
    for (const char* family :
         {"cairn_slave_registered 1", "cairn_slave_uptime_seconds ",
          "cairn_process_rss_bytes "}) {
      EXPECT_TRUE(absl::StrContains(metrics->body, absl::StrCat("\n", family)))
          << "the agent lacks " << family;
    }
    check_with_promtool("agent", metrics->body);
  }

  ASSERT_NO_FATAL_FAILURE(StartPrometheus());
  // Poll the query API until it has a sample from every master and exactly
  // one says 1.
  auto count_ones = [](const std::map<std::string, std::string>& samples) {
    int ones = 0;
    for (const auto& [instance, value] : samples) ones += value == "1";
    return ones;
  };
  std::string last;
  std::map<std::string, std::string> elected = QueryUntil(
      "cairn_master_elected",
      [&](const std::map<std::string, std::string>& samples) {
        return samples.size() == 3 && count_ones(samples) == 1;
      },
      &last);
  ASSERT_EQ(elected.size(), 3u) << "last answer: " << last;
  int ones = 0;
  for (int i = 0; i < 3; ++i) {
    const auto found = elected.find(cluster_->Address(i));
    ASSERT_NE(found, elected.end()) << cluster_->Address(i) << ": " << last;
    EXPECT_TRUE(found->second == "0" || found->second == "1") << last;
    if (found->second == "1") {
      ++ones;
      EXPECT_EQ(i, leader_) << "Prometheus saw master " << i
                            << " elected, the cluster named " << leader_;
    }
  }
  EXPECT_EQ(ones, 1) << last;

  // The agent's slave/registered, scraped: 1 from the agent's instance.
  std::map<std::string, std::string> registered = QueryUntil(
      "cairn_slave_registered",
      [&](const std::map<std::string, std::string>& samples) {
        return samples.size() == 1 && count_ones(samples) == 1;
      },
      &last);
  ASSERT_EQ(registered.size(), 1u) << "last answer: " << last;
  EXPECT_EQ(registered.begin()->first, agent_->address()) << last;
  EXPECT_EQ(registered.begin()->second, "1") << last;
  prometheus_->Kill();
}

// Sends an operator GET_HEALTH call carrying `request_id` to master `i` and
// waits for its answer (by then the master has logged what it logs for it).
void OperatorCall(const MasterCluster& cluster, int i,
                  const std::string& request_id) {
  http::Client client;
  absl::StatusOr<http::Response> response = client.Request(
      "POST", "127.0.0.1", cluster.http_port(i), "/api/v1",
      {{"Content-Type", "application/json"}, {"X-Request-Id", request_id}},
      "{\"type\":\"GET_HEALTH\"}", absl::Seconds(5));
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->status, 200) << response->body;
}

// The JSON log line whose request_id is `request_id` and whose message
// names the operator call; nullopt when there is none.
std::optional<JsonValue> CallLine(const std::string& log,
                                  const std::string& request_id) {
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (!absl::StrContains(line, request_id)) continue;
    absl::StatusOr<JsonValue> json = ParseJson(line);
    if (!json.ok()) continue;
    if (json->Text("request_id") == request_id &&
        absl::StrContains(json->Text("message").value_or(""),
                          "operator API call GET_HEALTH")) {
      return *std::move(json);
    }
  }
  return std::nullopt;
}

TEST_F(PrometheusScrapeTest, LoggingToggleRaisesVerbosityThenReverts) {
  std::string dir = absl::StrCat(
      std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp",
      "/toggle_logs_", getpid());
  std::filesystem::create_directories(dir);
  ASSERT_NO_FATAL_FAILURE(StartCluster(
      1, {absl::StrCat("--log_dir=", dir), "--log_format=json",
          "--max_log_size_mb=64", "--max_log_files=2"}));
  const std::string log_file = dir + "/cairn-master.log";

  absl::StatusOr<std::string> level = Get(0, "/logging/level");
  ASSERT_TRUE(level.ok()) << level.status();
  EXPECT_EQ(*level, "{\"level\":0,\"original_level\":0,\"reverts_at\":null}");
  ASSERT_NO_FATAL_FAILURE(OperatorCall(*cluster_, 0, "before-toggle"));

  // Bad input names the field.
  absl::StatusOr<http::Response> bad =
      cluster_->Request(0, "GET", "/logging/toggle?level=3&duration=soon");
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->status, 400);
  EXPECT_TRUE(absl::StrContains(bad->body, "\"field\":\"duration\""))
      << bad->body;

  // Toggle, call, and check the call ran while the level was still 3 (the
  // same toggle's deadline still pending); on a machine too slow for that
  // within one second, toggle again (bounded).
  bool seen_raised = false;
  for (int attempt = 0; attempt < 5 && !seen_raised; ++attempt) {
    absl::StatusOr<http::Response> toggled = cluster_->Request(
        0, "POST", "/logging/toggle?level=3&duration=1secs");
    ASSERT_TRUE(toggled.ok()) << toggled.status();
    ASSERT_EQ(toggled->status, 200) << toggled->body;
    absl::StatusOr<JsonValue> toggle_state = ParseJson(toggled->body);
    ASSERT_TRUE(toggle_state.ok()) << toggled->body;
    EXPECT_EQ(toggle_state->Text("level"), "3") << toggled->body;
    const std::string request_id = absl::StrCat("during-toggle-", attempt);
    ASSERT_NO_FATAL_FAILURE(OperatorCall(*cluster_, 0, request_id));
    absl::StatusOr<std::string> now = Get(0, "/logging/level");
    ASSERT_TRUE(now.ok()) << now.status();
    absl::StatusOr<JsonValue> state = ParseJson(*now);
    ASSERT_TRUE(state.ok()) << *now;
    if (state->Text("level") != "3" ||
        state->Text("reverts_at") != toggle_state->Text("reverts_at")) {
      continue;  // reverted before the call was surely made: try again
    }
    seen_raised = true;
    std::optional<JsonValue> line = CallLine(ReadFile(log_file), request_id);
    ASSERT_TRUE(line.has_value())
        << "no VLOG(3) line for " << request_id << " in " << log_file;
    EXPECT_EQ(line->Text("level"), "INFO");
    EXPECT_EQ(line->Text("component"), "master");
    EXPECT_EQ(line->Text("program"), "cairn-master");
    EXPECT_EQ(line->Text("file"), "master.cc");
  }
  ASSERT_TRUE(seen_raised) << "the level never stayed 3 long enough";

  // It reverts by itself.
  const absl::Time deadline = absl::Now() + kTimeout;
  std::string last;
  while (absl::Now() < deadline) {
    absl::StatusOr<std::string> now = Get(0, "/logging/level");
    ASSERT_TRUE(now.ok()) << now.status();
    last = *now;
    if (absl::StrContains(last, "\"level\":0,")) break;
    absl::SleepFor(kPollPause);
  }
  EXPECT_EQ(last, "{\"level\":0,\"original_level\":0,\"reverts_at\":null}");
  ASSERT_NO_FATAL_FAILURE(OperatorCall(*cluster_, 0, "after-revert"));
  const std::string log = ReadFile(log_file);
  EXPECT_FALSE(CallLine(log, "before-toggle").has_value());
  EXPECT_FALSE(CallLine(log, "after-revert").has_value());
  EXPECT_TRUE(absl::StrContains(log, "logging: verbosity reverted to 0"));

  // The log file is readable through /files/read as /master/log (Mesos's
  // name): its JSON lines, the toggle's own among them.
  absl::StatusOr<std::string> read =
      Get(0, "/files/read?path=/master/log/cairn-master.log&offset=0");
  ASSERT_TRUE(read.ok()) << read.status();
  absl::StatusOr<JsonValue> page = ParseJson(*read);
  ASSERT_TRUE(page.ok()) << *read;
  EXPECT_EQ(page->Text("offset"), "0") << *read;
  const std::string data = page->Text("data").value_or("");
  EXPECT_TRUE(absl::StrContains(data, "\"program\":\"cairn-master\""))
      << data.substr(0, 2000);
  EXPECT_TRUE(absl::StrContains(data, "logging: verbosity reverted to 0"))
      << data.substr(0, 2000);
  absl::StatusOr<std::string> browse = Get(0, "/files/browse?path=/master/log");
  ASSERT_TRUE(browse.ok()) << browse.status();
  EXPECT_TRUE(absl::StrContains(*browse, "/master/log/cairn-master.log"))
      << *browse;
  // Nothing outside the attached directory.
  absl::StatusOr<http::Response> outside = cluster_->Request(
      0, "GET", "/files/read?path=/master/log/../../etc/passwd&offset=0");
  ASSERT_TRUE(outside.ok()) << outside.status();
  EXPECT_NE(outside->status, 200) << outside->body;
}

}  // namespace
}  // namespace cairn::tests
