// Multi-process test of the history API's event stream, GET /api/v1/events
// (master/events_api.h, docs/history-api.md), against real `cairn-master`
// processes on 127.0.0.1 (ephemeral ports, stores under TEST_TMPDIR).
// Events come from UPDATE_WEIGHTS calls (POST /api/v1) and from FakeAgents
// registering (tests/internal/agent_client.h).
//
//   - three masters: every master (leader and standbys) streams the whole
//     history from position 1 in the same order, positions strictly
//     increasing; filters by type and agent; SSE resumed with Last-Event-ID
//     on another master; a live stream on a standby sees a new event;
//   - one master with --snapshot_interval=2 and --history_retention=1ms:
//     once retention has run, from=1 answers 410 naming the oldest retained
//     position, and from=0 starts there.
//
// Every wait polls against a bounded deadline or reads a stream with one;
// nothing asserts an outcome after a fixed sleep.

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/master.pb.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/json_value.h"
#include "common/recordio.h"
#include "gtest/gtest.h"
#include "tests/internal/agent_client.h"
#include "tests/internal/master_cluster.h"

namespace cairn::tests {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(15);
constexpr absl::Duration kPollPause = absl::Milliseconds(10);

std::string UpdateWeights(const std::string& role, int weight) {
  return absl::StrCat(
      R"({"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[)",
      R"({"role":")", role, R"(","weight":)", weight, "}]}}");
}

// A stream's body as read so far.
struct Body {
  int status = 0;
  http::Headers headers;
  std::unique_ptr<http::ClientStream> stream;
  std::string bytes;
  bool ended = false;
  absl::Status error;

  // Reads until `done(bytes)`, the end of the stream or the deadline.
  bool ReadUntil(const std::function<bool(const std::string&)>& done,
                 absl::Duration timeout = kTimeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!done(bytes)) {
      if (ended || !error.ok() || absl::Now() >= deadline) return false;
      absl::StatusOr<std::optional<std::string>> chunk =
          stream->NextChunk(absl::Milliseconds(100));
      if (absl::IsDeadlineExceeded(chunk.status())) continue;
      if (!chunk.ok()) {
        error = chunk.status();
        return false;
      }
      if (!chunk->has_value()) {
        ended = true;
        continue;
      }
      bytes += **chunk;
    }
    return true;
  }
  bool ReadToEnd() {
    ReadUntil([this](const std::string&) { return ended; });
    return ended;
  }
};

// The Events of a RecordIO JSON body (heartbeats and end records skipped).
std::vector<v1::Event> JsonEvents(const std::string& bytes) {
  recordio::Decoder decoder;
  std::vector<std::string> records;
  decoder.Feed(bytes, &records).IgnoreError();
  std::vector<v1::Event> events;
  for (const std::string& r : records) {
    v1::Event event;
    if (r.empty() || absl::StrContains(r, "\"reason\"")) continue;
    if (FromJson(r, &event).ok()) events.push_back(std::move(event));
  }
  return events;
}

std::string Id(const v1::Event& e) {
  return absl::StrCat(e.position(), ":", e.index());
}

// "id: ..." lines of an SSE body, in order.
std::vector<std::string> SseIds(const std::string& bytes) {
  std::vector<std::string> ids;
  for (absl::string_view line : absl::StrSplit(bytes, '\n')) {
    if (absl::ConsumePrefix(&line, "id: ")) ids.emplace_back(line);
  }
  return ids;
}

class EventsApiProcessTest : public ::testing::Test {
 protected:
  void StartCluster(int masters, std::vector<std::string> extra_flags = {}) {
    absl::StatusOr<MasterClusterOptions> options =
        OptionsForThisTest("events_api");
    ASSERT_TRUE(options.ok()) << options.status();
    options->masters = masters;
    options->timeout = kTimeout;
    options->flags.insert(options->flags.end(), extra_flags.begin(),
                          extra_flags.end());
    absl::StatusOr<std::unique_ptr<MasterCluster>> cluster =
        MasterCluster::Start(*options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    for (int i = 0; i < masters; ++i) {
      all_.push_back(i);
      addresses_.push_back(cluster_->Address(i));
    }
    absl::StatusOr<int> leader = cluster_->WaitForLeader(all_);
    ASSERT_TRUE(leader.ok()) << leader.status();
    leader_ = *leader;
  }

  void TearDown() override { agents_.clear(); }

  // UPDATE_WEIGHTS through the leader until it answers 200 (committed and
  // applied); re-sending after a 503 is safe (setting a weight is
  // idempotent).
  void Update(const std::string& role, int weight) {
    const absl::Time deadline = absl::Now() + kTimeout;
    std::string last;
    for (;;) {
      for (int i : all_) {
        absl::StatusOr<http::Response> r = cluster_->Request(
            i, "POST", "/api/v1", UpdateWeights(role, weight));
        if (r.ok() && r->status == 200) return;
        if (r.ok() && r->status == 400) FAIL() << r->body;
        if (r.ok() && r->status != 307) {
          last = absl::StrCat("master ", i, ": ", r->status, " ", r->body);
        }
      }
      ASSERT_LT(absl::Now(), deadline) << "no leader took the update: " << last;
      absl::SleepFor(kPollPause);
    }
  }

  // Subscribes a FakeAgent; returns its id.
  std::string StartAgent(int i) {
    FakeAgentOptions options;
    options.masters = addresses_;
    options.hostname = absl::StrCat("agent-", i);
    options.resources = {ScalarResource("cpus", 4),
                         ScalarResource("mem", 1024)};
    options.request_timeout = absl::Seconds(2);
    options.subscribe_timeout = kTimeout;
    agents_.push_back(std::make_unique<FakeAgent>(options));
    absl::StatusOr<v1::AgentID> id = agents_.back()->Subscribe();
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? id->value() : "";
  }

  // Every master's applied position, once they agree.
  uint64_t WaitForEqualStates() {
    absl::StatusOr<MasterReplica> replica =
        cluster_->WaitForEqualStates(all_, 1);
    EXPECT_TRUE(replica.ok()) << replica.status();
    return replica.ok() ? replica->applied : 0;
  }

  Body Open(int i, const std::string& target, http::Headers headers = {}) {
    http::Client client;
    absl::StatusOr<std::unique_ptr<http::ClientStream>> stream =
        client.OpenStream("GET", "127.0.0.1", cluster_->http_port(i), target,
                          headers, "", absl::Seconds(5));
    Body body;
    EXPECT_TRUE(stream.ok()) << stream.status();
    if (!stream.ok()) return body;
    body.status = (*stream)->status();
    body.headers = (*stream)->headers();
    body.stream = *std::move(stream);
    return body;
  }

  // The JSON events of a finite stream (one that names `to`) from master i.
  std::vector<v1::Event> History(int i, const std::string& query) {
    Body body = Open(i, "/api/v1/events?" + query);
    EXPECT_EQ(body.status, 200) << body.bytes;
    if (body.status != 200) return {};
    EXPECT_TRUE(body.ReadToEnd()) << body.error;
    return JsonEvents(body.bytes);
  }

  std::unique_ptr<MasterCluster> cluster_;
  std::vector<int> all_;
  std::vector<std::string> addresses_;
  int leader_ = 0;
  std::vector<std::unique_ptr<FakeAgent>> agents_;
};

TEST_F(EventsApiProcessTest, EveryMasterStreamsTheWholeHistoryInOrder) {
  StartCluster(3);
  const std::string agent = StartAgent(0);
  for (int w = 1; w <= 8; ++w) Update(absl::StrCat("r", w % 3), w);
  const uint64_t applied = WaitForEqualStates();
  ASSERT_GT(applied, 0u);

  std::vector<std::string> first_ids;
  for (int i : all_) {
    Body body = Open(i, absl::StrCat("/api/v1/events?from=1&to=", applied));
    ASSERT_EQ(body.status, 200) << "master " << i;
    EXPECT_EQ(body.headers.Get("X-Cairn-Master"), cluster_->Address(i));
    EXPECT_EQ(body.headers.Get("X-Cairn-Master-Role"),
              i == leader_ ? "leading" : "standby");
    uint64_t header_applied = 0;
    EXPECT_TRUE(absl::SimpleAtoi(body.headers.Get("X-Cairn-Applied-Position"),
                                 &header_applied));
    EXPECT_GE(header_applied, applied);
    ASSERT_TRUE(body.ReadToEnd()) << body.error;
    const std::vector<v1::Event> events = JsonEvents(body.bytes);
    std::vector<std::string> ids;
    int weights = 0, registrations = 0;
    for (size_t k = 0; k < events.size(); ++k) {
      const v1::Event& e = events[k];
      ids.push_back(Id(e));
      EXPECT_LE(e.position(), applied);
      if (k > 0) {
        const v1::Event& p = events[k - 1];
        EXPECT_TRUE(p.position() < e.position() ||
                    (p.position() == e.position() && p.index() < e.index()))
            << Id(p) << " then " << Id(e);
      }
      if (e.has_weights_updated()) ++weights;
      if (e.has_agent_registered()) ++registrations;
    }
    EXPECT_EQ(weights, 8) << "master " << i;
    EXPECT_EQ(registrations, 1) << "master " << i;
    // Positions are the log's: every master streams the same ids.
    if (first_ids.empty()) {
      first_ids = ids;
    } else {
      EXPECT_EQ(ids, first_ids) << "master " << i;
    }
  }
  ASSERT_FALSE(agent.empty());
}

TEST_F(EventsApiProcessTest, FiltersByTypeAndAgent) {
  StartCluster(3);
  const std::string a0 = StartAgent(0);
  const std::string a1 = StartAgent(1);
  ASSERT_FALSE(a0.empty());
  ASSERT_FALSE(a1.empty());
  Update("web", 2);
  const uint64_t applied = WaitForEqualStates();
  const int standby = (leader_ + 1) % 3;
  const std::string to = absl::StrCat("&to=", applied);

  std::vector<v1::Event> events =
      History(standby, "from=1&type=agent_registered" + to);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].agent_registered().info().id().value(), a0);
  EXPECT_EQ(events[1].agent_registered().info().id().value(), a1);

  events = History(standby, "from=1&agent_id=" + a1 + to);
  ASSERT_FALSE(events.empty());
  for (const v1::Event& e : events) {
    EXPECT_NE(e.agent_registered().info().id().value(), a0) << Id(e);
    EXPECT_FALSE(e.has_weights_updated()) << Id(e);
  }

  events = History(standby, "from=1&type=weights_updated,agent_removed" + to);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].weights_updated().weights(0).role(), "web");

  absl::StatusOr<http::Response> bad =
      cluster_->Request(standby, "GET", "/api/v1/events?type=agent_exploded");
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->status, 400);
  EXPECT_TRUE(absl::StrContains(bad->body, "\"field\":\"type\"")) << bad->body;
}

TEST_F(EventsApiProcessTest, ServerSentEventsResumeWithLastEventIdElsewhere) {
  StartCluster(3);
  for (int w = 1; w <= 6; ++w) Update(absl::StrCat("r", w), w);
  const uint64_t applied = WaitForEqualStates();
  const std::string target = absl::StrCat("/api/v1/events?from=1&to=", applied);
  const http::Headers sse = {{"Accept", "text/event-stream"}};

  Body whole = Open(leader_, target, sse);
  ASSERT_EQ(whole.status, 200);
  EXPECT_EQ(whole.headers.Get("Content-Type"), "text/event-stream");
  ASSERT_TRUE(whole.ReadToEnd()) << whole.error;
  const std::vector<std::string> ids = SseIds(whole.bytes);
  ASSERT_GE(ids.size(), 6u);
  EXPECT_TRUE(absl::StrContains(whole.bytes, "event: weights_updated\n"));
  EXPECT_TRUE(absl::StrContains(whole.bytes, "event: end\n"));

  // A client that saw the first three events reconnects to a standby.
  const int standby = (leader_ + 1) % 3;
  Body rest =
      Open(standby, target,
           {{"Accept", "text/event-stream"}, {"Last-Event-ID", ids[2]}});
  ASSERT_EQ(rest.status, 200);
  ASSERT_TRUE(rest.ReadToEnd()) << rest.error;
  EXPECT_EQ(SseIds(rest.bytes),
            std::vector<std::string>(ids.begin() + 3, ids.end()));
}

TEST_F(EventsApiProcessTest, ALiveStreamOnAStandbySeesANewEvent) {
  StartCluster(3);
  Update("before", 1);
  WaitForEqualStates();
  const int standby = (leader_ + 2) % 3;
  Body live = Open(standby, "/api/v1/events");  // the live tail
  ASSERT_EQ(live.status, 200);
  Update("after", 3);
  ASSERT_TRUE(live.ReadUntil([](const std::string& b) {
    return !JsonEvents(b).empty();
  })) << live.error;
  const std::vector<v1::Event> events = JsonEvents(live.bytes);
  ASSERT_EQ(events.size(), 1u);
  ASSERT_TRUE(events[0].has_weights_updated());
  EXPECT_EQ(events[0].weights_updated().weights(0).role(), "after");
}

TEST_F(EventsApiProcessTest, PositionsNoLongerRetainedAreGone) {
  StartCluster(1, {"--snapshot_interval=2", "--history_retention=1ms"});
  int weight = 1;
  // Updates until retention has deleted position 1's events.
  const absl::Time deadline = absl::Now() + kTimeout;
  std::optional<http::Response> gone;
  while (!gone.has_value()) {
    ASSERT_LT(absl::Now(), deadline) << "position 1 is still retained";
    Update(absl::StrCat("r", weight % 4), weight);
    ++weight;
    absl::StatusOr<http::Response> r =
        cluster_->Request(0, "GET", "/api/v1/events?from=1&to=1");
    ASSERT_TRUE(r.ok()) << r.status();
    if (r->status == 410) {
      gone = *r;
    } else {
      ASSERT_EQ(r->status, 200) << r->body;
    }
  }
  absl::StatusOr<JsonValue> json = ParseJson(gone->body);
  ASSERT_TRUE(json.ok()) << gone->body;
  const JsonValue* error = json->Find("error");
  ASSERT_NE(error, nullptr) << gone->body;
  std::optional<uint64_t> oldest = json->Uint("oldest_retained_position");
  ASSERT_TRUE(oldest.has_value()) << gone->body;
  EXPECT_GT(*oldest, 1u);
  EXPECT_TRUE(absl::StrContains(gone->body, absl::StrCat(*oldest)));

  // from=0 starts at the oldest retained position (or later, if retention
  // ran again meanwhile), and from that position itself is answered.
  Update("last", 100);
  Body body = Open(0, "/api/v1/events?from=0");
  ASSERT_EQ(body.status, 200) << body.bytes;
  uint64_t start = 0;
  ASSERT_TRUE(
      absl::SimpleAtoi(body.headers.Get("X-Cairn-Stream-Start"), &start));
  EXPECT_GE(start, *oldest);
  ASSERT_TRUE(body.ReadUntil([](const std::string& b) {
    for (const v1::Event& e : JsonEvents(b)) {
      if (e.has_weights_updated() &&
          e.weights_updated().weights(0).role() == "last") {
        return true;
      }
    }
    return false;
  })) << body.error;
  const std::vector<v1::Event> events = JsonEvents(body.bytes);
  ASSERT_FALSE(events.empty());
  EXPECT_GE(events.front().position(), start);
}

}  // namespace
}  // namespace cairn::tests
