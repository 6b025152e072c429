// A bounded, seeded fuzz of every HTTP endpoint of a real `cairn-master`
// (issue 4, acceptance 5: "random and mutated bodies to every endpoint for
// a bounded time; the master answers every one and stays up").
//
// One master on 127.0.0.1 runs a FakeAgent and a framework with a running
// task (so the handlers meet real agents, frameworks and tasks). Requests
// come from tests/internal/http_fuzz.h and are written byte for byte to raw
// sockets, one connection each: POST /api/v1/scheduler, /api/v1 and
// /api/v1/agent with random calls from the schema in JSON or protobuf, half
// of them damaged (wrong types, huge or malformed numbers, deep nesting,
// unknown fields, random enum values, very long strings; bit flips,
// truncation); GET /api/v1/events, /master/state and the other read-only
// endpoints, /metrics/snapshot (?jsonp= where Mesos has it) with random
// queries and headers; random methods, paths and bytes; chunked bodies,
// short or malformed Content-Length, missing or wrong Content-Type and
// Accept, HTTP/1.0, Expect: 100-continue, odd headers.
//
// Every request must get a complete HTTP answer within the client timeout
// (a stream's 200 counts once its headers arrived), no 5xx but 503 (and the
// operator API's documented 501 for call types it does not serve); after
// the run the process still runs and answers /health and /master/state.
// Two runs:
//  - GarbageLeavesTheStateUnchanged: no request carries a live stream id,
//    and no body that would parse as a state-changing call (a SUBSCRIBE of
//    a framework or agent, an operator mutation) is sent; the master's
//    state checksum (/master/replica state_crc32c) and applied position
//    are the same after, and the agent and framework still subscribed;
//  - MutatedCallsOnLiveStreamsAreAnswered: requests also carry the live
//    framework's and agent's stream ids and ids, so mutated calls reach
//    the leader's validation and may change the state (between requests,
//    the framework's offers become ids to use, and a framework or agent
//    whose stream a fuzzed call ended resubscribes, or is replaced when a
//    fuzzed TEARDOWN or MARK_AGENT_GONE removed it).
//
// Seeds: each run prints its seed; CAIRN_FUZZ_SEED=<seed> replays it,
// CAIRN_FUZZ_REQUESTS=<n> and CAIRN_FUZZ_SECONDS=<s> change the bounds
// (defaults: 3000 requests or 10 s each). A failing request is
// printed and its exact bytes written to $TEST_UNDECLARED_OUTPUTS_DIR
// (replay: `nc 127.0.0.1 <port> < fuzz-failure-<n>.bin`).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "common/http_client.h"
#include "common/json_value.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_client.h"
#include "tests/internal/http_fuzz.h"
#include "tests/internal/master_cluster.h"
#include "tests/internal/scheduler_client.h"

namespace cairn::tests {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(15);
// Bound on one request's exchange: connect, send, a complete answer.
constexpr absl::Duration kRequestTimeout = absl::Seconds(5);

// The resident memory of process `pid` in KiB (VmRSS), or 0.
uint64_t ResidentKiB(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    uint64_t kib = 0;
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "VmRSS:") &&
        absl::SimpleAtoi(
            absl::StripSuffix(absl::StripAsciiWhitespace(rest), " kB"), &kib)) {
      return kib;
    }
  }
  return 0;
}

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  uint64_t parsed = 0;
  if (value != nullptr && absl::SimpleAtoi(value, &parsed)) return parsed;
  return fallback;
}

class ApiFuzzTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<MasterClusterOptions> options =
        OptionsForThisTest("api_fuzz");
    ASSERT_TRUE(options.ok()) << options.status();
    name_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    const char* outputs = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
    outputs_ = outputs != nullptr ? outputs : options->root;
    options->masters = 1;
    options->timeout = kTimeout;
    options->flags.insert(
        options->flags.end(),
        {"--allocation_interval=100ms", "--scheduler_heartbeat_interval=1s"});
    // Start creates the log dir, which is <outputs_>/<name_>.
    absl::StatusOr<std::unique_ptr<MasterCluster>> cluster =
        MasterCluster::Start(*options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    ASSERT_TRUE(cluster_->WaitForLeader({0}).ok());
    ASSERT_NO_FATAL_FAILURE(StartTask());
  }

  void TearDown() override {
    scheduler_.reset();
    agent_.reset();
  }

  // A new FakeAgent (4 cpus, 4096 mem), subscribed; its id.
  absl::StatusOr<std::string> NewAgent() {
    FakeAgentOptions options;
    options.masters = {cluster_->Address(0)};
    options.hostname = absl::StrCat("fuzz-agent-", agents_started_++);
    options.resources = {ScalarResource("cpus", 4),
                         ScalarResource("mem", 4096)};
    options.subscribe_timeout = kTimeout;
    agent_ = std::make_unique<FakeAgent>(options);
    absl::StatusOr<v1::AgentID> id = agent_->Subscribe();
    if (!id.ok()) return id.status();
    return id->value();
  }

  // A new framework (auto-acknowledging), subscribed; its id.
  absl::StatusOr<std::string> NewFramework() {
    SchedulerClientOptions options;
    options.masters = {cluster_->Address(0)};
    options.auto_acknowledge = true;
    options.subscribe_timeout = kTimeout;
    options.call_timeout = kTimeout;
    scheduler_ = std::make_unique<SchedulerClient>(options);
    v1::FrameworkInfo framework;
    framework.set_user("nobody");
    framework.set_name("fuzz");
    framework.set_failover_timeout(3600);
    absl::StatusOr<v1::FrameworkID> id = scheduler_->Subscribe(framework);
    if (!id.ok()) return id.status();
    return id->value();
  }

  // A FakeAgent and a framework with one running task; the framework's
  // other resources are refused for an hour, so no more offers follow.
  void StartTask() {
    absl::StatusOr<std::string> agent_id = NewAgent();
    ASSERT_TRUE(agent_id.ok()) << agent_id.status();
    absl::StatusOr<std::string> framework_id = NewFramework();
    ASSERT_TRUE(framework_id.ok()) << framework_id.status();
    absl::StatusOr<v1::scheduler::Event> offers = scheduler_->NextEvent(
        v1::scheduler::Event::OFFERS, absl::Now() + kTimeout);
    ASSERT_TRUE(offers.ok()) << offers.status();
    const v1::Offer& offer = offers->offers().offers(0);
    v1::TaskInfo task;
    task.set_name("fuzzed");
    task.mutable_task_id()->set_value("fuzz-task");
    *task.add_resources() = ScalarResource("cpus", 1);
    *task.add_resources() = ScalarResource("mem", 128);
    task.mutable_command()->set_value("sleep 1000");
    ASSERT_TRUE(
        scheduler_->LaunchAndWaitRunning(offer, task, absl::Now() + kTimeout)
            .ok());
    ASSERT_TRUE(agent_->WaitUntil(
        [this] { return agent_->unacknowledged_updates() == 0; },
        absl::Now() + kTimeout));
    pools_.framework_id = *framework_id;
    pools_.agent_id = *agent_id;
    pools_.ids = {pools_.framework_id,
                  pools_.agent_id,
                  "fuzz-task",
                  offer.id().value(),
                  "default",
                  "*",
                  "nobody",
                  "fuzz-agent-0",
                  "1:0"};
  }

  // Sends requests until `max_requests` or `duration`; every one must be
  // answered (see the top of the file). Returns the number sent.
  int Run(uint64_t seed, uint64_t max_requests, absl::Duration duration,
          bool garbage_only) {
    std::printf(
        "%s: fuzz seed %llu (replay: CAIRN_FUZZ_SEED=%llu), at most %llu "
        "requests or %s\n",
        name_.c_str(), static_cast<unsigned long long>(seed),
        static_cast<unsigned long long>(seed),
        static_cast<unsigned long long>(max_requests),
        absl::FormatDuration(duration).c_str());
    std::fflush(stdout);
    const uint64_t rss_before = ResidentKiB(cluster_->process(0)->pid());
    Random random(seed);
    // The generator's strings are often not UTF-8; protobuf would log it.
    google::protobuf::LogSilencer silencer;
    const absl::Time start = absl::Now();
    const absl::Time end = start + duration;
    std::map<std::string, int> statuses;  // "<endpoint> <status>" -> count
    int sent = 0, skipped = 0, failures = 0, closed_early = 0;
    const uint16_t port = cluster_->http_port(0);
    for (uint64_t i = 0; i < max_requests && absl::Now() < end; ++i) {
      if (!garbage_only && i % 50 == 0) Refresh();
      FuzzRequest request = NextRequest(random, pools_);
      if (garbage_only &&
          (MayChangeState(request.endpoint, request.body) ||
           MayChangeState(request.endpoint, request.seen_body))) {
        ++skipped;
        continue;
      }
      ++sent;
      const RawAnswer answer =
          Exchange(port, request.wire, request.head, kRequestTimeout);
      ++statuses[absl::StrCat(EndpointName(request.endpoint), " ",
                              answer.status)];
      std::string problem;
      if (!answer.complete) {
        if (!cluster_->process(0)->Running()) {
          problem = absl::StrCat(
              "the master died: ",
              cluster_->process(0)->ExitDescription().value_or("?"));
        } else if (answer.closed_while_sending && answer.status == 0) {
          ++closed_early;  // refused before the whole request was sent
        } else {
          problem = absl::StrCat("no complete answer (", answer.error, ")");
        }
      } else if (answer.status >= 500 && answer.status != 503 &&
                 !(answer.status == 501 &&
                   request.endpoint == Endpoint::kOperator)) {
        problem = absl::StrCat("answered ", answer.status);
      } else if (answer.status == 200 && !answer.stream && !answer.chunked &&
                 !request.head &&
                 absl::StartsWith(answer.content_type, "application/json")) {
        // A 200 that says JSON must be JSON (e.g. no NaN a fuzzed call
        // slipped into the state).
        if (absl::StatusOr<JsonValue> json = ParseJson(answer.body);
            !json.ok()) {
          problem = absl::StrCat("a 200 answer is not JSON: ",
                                 json.status().ToString());
        }
      }
      if (problem.empty()) continue;
      ++failures;
      const std::string file =
          absl::StrCat(outputs_, "/fuzz-failure-", name_, "-", i, ".bin");
      std::ofstream(file, std::ios::binary) << request.wire;
      ADD_FAILURE() << "request " << i << " of seed " << seed << ": " << problem
                    << "\n  " << request.summary
                    << "\n  answer: " << absl::CHexEscape(answer.head)
                    << absl::CHexEscape(answer.body.substr(0, 300))
                    << "\n  bytes: " << file
                    << "\n  replay: CAIRN_FUZZ_SEED=" << seed
                    << " CAIRN_FUZZ_REQUESTS=" << i + 1;
      if (failures >= 5 || !cluster_->process(0)->Running()) break;
    }
    std::string histogram;
    for (const auto& [key, count] : statuses) {
      absl::StrAppend(&histogram, "  ", key, ": ", count, "\n");
    }
    std::printf(
        "%s: %d requests in %s (%d not sent: could change the state; %d "
        "refused while sending), answers by endpoint and status:\n%s",
        name_.c_str(), sent, absl::FormatDuration(absl::Now() - start).c_str(),
        skipped, closed_early, histogram.c_str());
    std::printf(
        "%s: the master's resident memory %llu KiB before, %llu after\n",
        name_.c_str(), static_cast<unsigned long long>(rss_before),
        static_cast<unsigned long long>(
            ResidentKiB(cluster_->process(0)->pid())));
    std::fflush(stdout);
    return sent;
  }

  // Between requests of a run with live streams: the framework's offers
  // become ids to use (asking for offers when it has none), and the
  // framework and agent resubscribe when a fuzzed call ended their streams
  // (a SUBSCRIBE that took them over, an UNSUBSCRIBE...), so that later
  // calls carry live stream ids again. One that is gone for good (a fuzzed
  // TEARDOWN or MARK_AGENT_GONE) is replaced by a new one.
  void Refresh() {
    for (const v1::scheduler::Event& event : scheduler_->TakeEvents()) {
      if (event.type() != v1::scheduler::Event::OFFERS) continue;
      for (const v1::Offer& offer : event.offers().offers()) {
        pools_.offer_ids.push_back(offer.id().value());
      }
    }
    if (pools_.offer_ids.size() > 32) {
      pools_.offer_ids.erase(pools_.offer_ids.begin(),
                             pools_.offer_ids.end() - 32);
    }
    if (!scheduler_->subscribed()) {
      absl::StatusOr<v1::FrameworkID> id = scheduler_->Resubscribe();
      if (id.ok()) {
        ++resubscriptions_;
      } else if (absl::StatusOr<std::string> fresh = NewFramework();
                 fresh.ok()) {
        ++replacements_;
        pools_.framework_id = *fresh;
        pools_.ids.push_back(*fresh);
      }
      pools_.framework_stream_id = scheduler_->stream_id();
    }
    if (scheduler_->subscribed() && pools_.offer_ids.empty()) {
      scheduler_->Revive().IgnoreError();
    }
    if (!agent_->subscribed()) {
      absl::StatusOr<v1::AgentID> id = agent_->Resubscribe();
      if (id.ok()) {
        ++resubscriptions_;
      } else if (absl::StatusOr<std::string> fresh = NewAgent(); fresh.ok()) {
        ++replacements_;
        pools_.agent_id = *fresh;
        pools_.ids.push_back(*fresh);
      }
      pools_.agent_stream_id = agent_->stream_id();
    }
  }

  // The master still runs, answers /health and serves its clients.
  void ExpectAlive() {
    ASSERT_TRUE(cluster_->process(0)->Running())
        << cluster_->process(0)->ExitDescription().value_or("?") << "\n"
        << cluster_->process(0)->LogTail();
    absl::StatusOr<http::Response> health =
        cluster_->Request(0, "GET", "/health");
    ASSERT_TRUE(health.ok()) << health.status();
    EXPECT_EQ(health->status, 200);
    absl::StatusOr<http::Response> state =
        cluster_->Request(0, "GET", "/master/state");
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_EQ(state->status, 200) << state->body;
  }

  uint64_t Seed() {
    return EnvOr(
        "CAIRN_FUZZ_SEED",
        std::random_device()() ^ (uint64_t{std::random_device()()} << 32));
  }

  std::string name_;
  std::string outputs_;
  std::unique_ptr<MasterCluster> cluster_;
  std::unique_ptr<FakeAgent> agent_;
  std::unique_ptr<SchedulerClient> scheduler_;
  Pools pools_;
  int agents_started_ = 0;
  int resubscriptions_ = 0;  // by Refresh()
  int replacements_ = 0;     // by Refresh()
};

TEST_F(ApiFuzzTest, GarbageLeavesTheStateUnchanged) {
  absl::StatusOr<MasterReplica> before = cluster_->WaitForEqualStates({0}, 1);
  ASSERT_TRUE(before.ok()) << before.status();
  const int sent =
      Run(Seed(), EnvOr("CAIRN_FUZZ_REQUESTS", 3000),
          absl::Seconds(static_cast<int64_t>(EnvOr("CAIRN_FUZZ_SECONDS", 10))),
          /*garbage_only=*/true);
  EXPECT_GT(sent, 0);
  ASSERT_NO_FATAL_FAILURE(ExpectAlive());
  EXPECT_TRUE(scheduler_->subscribed());
  EXPECT_TRUE(agent_->subscribed());
  std::optional<MasterReplica> after = cluster_->GetReplica(0);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->crc, before->crc)
      << "before: " << before->json << "\nafter: " << after->json;
  EXPECT_EQ(after->applied, before->applied);
}

TEST_F(ApiFuzzTest, MutatedCallsOnLiveStreamsAreAnswered) {
  pools_.framework_stream_id = scheduler_->stream_id();
  pools_.agent_stream_id = agent_->stream_id();
  ASSERT_FALSE(pools_.framework_stream_id.empty());
  ASSERT_FALSE(pools_.agent_stream_id.empty());
  const int sent =
      Run(Seed(), EnvOr("CAIRN_FUZZ_REQUESTS", 3000),
          absl::Seconds(static_cast<int64_t>(EnvOr("CAIRN_FUZZ_SECONDS", 10))),
          /*garbage_only=*/false);
  EXPECT_GT(sent, 0);
  std::printf(
      "%d resubscriptions and %d new agents or frameworks after fuzzed calls "
      "ended or removed them\n",
      resubscriptions_, replacements_);
  ASSERT_NO_FATAL_FAILURE(ExpectAlive());
  absl::StatusOr<http::Response> state =
      cluster_->Request(0, "POST", "/api/v1", R"({"type":"GET_STATE"})");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, 200) << state->body;
}

}  // namespace
}  // namespace cairn::tests
