// The HTTP API (http_service.h) and its client (client.h) on a three-replica
// log in one process: loopback sockets, LevelDB in TEST_TMPDIR.

#include "log/http_service.h"

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "common/http_server.h"
#include "gtest/gtest.h"
#include "log/client.h"
#include "log/replicated_log.h"

namespace cairn::log {
namespace {

constexpr uint32_t kReplicas = 3;
constexpr absl::Duration kWait = absl::Seconds(15);

bool WaitUntil(const std::function<bool()>& condition) {
  const absl::Time deadline = absl::Now() + kWait;
  while (!condition()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

class LogHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    root_ = absl::StrCat(
        tmp != nullptr ? tmp : "/tmp", "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
  }

  void TearDown() override {
    for (auto& server : http_) {
      if (server != nullptr) server->Stop();
    }
    for (auto& log : logs_) {
      if (log != nullptr) log->Stop();
    }
  }

  // Starts `count` of the three replicas (ids 1..count), each with its HTTP
  // API; the others are configured but never run.
  void StartCluster(uint32_t count) {
    std::map<uint32_t, uint16_t> peer_ports;
    LogHttpOptions http_options;
    for (uint32_t id = 1; id <= count; ++id) {
      LogServerOptions options;
      options.config.node_id = id;
      options.config.replicas = {1, 2, 3};
      options.config.election_timeout = absl::Milliseconds(300);
      options.config.lease_duration = absl::Milliseconds(200);
      options.config.heartbeat_interval = absl::Milliseconds(50);
      options.dir = absl::StrCat(root_, "/replica", id);
      auto log = ReplicatedLog::Open(options);
      ASSERT_TRUE(log.ok()) << log.status();
      peer_ports[id] = (*log)->peer_port();
      logs_[id - 1] = *std::move(log);
      http::ServerOptions server_options;
      http_[id - 1] = std::make_unique<http::Server>(server_options);
      ASSERT_TRUE(http_[id - 1]->Start().ok());
      http_options.http_addresses[id] =
          absl::StrCat("127.0.0.1:", http_[id - 1]->port());
    }
    for (uint32_t id = 1; id <= count; ++id) {
      for (const auto& [peer, port] : peer_ports) {
        logs_[id - 1]->SetPeerAddress(peer, {"127.0.0.1", port});
      }
      RegisterLogRoutes(logs_[id - 1].get(), http_options, http_[id - 1].get());
    }
  }

  uint16_t port(uint32_t id) { return http_[id - 1]->port(); }

  // Waits for a serving leader that every running replica knows.
  uint32_t WaitForLeader(uint32_t count) {
    uint32_t leader = 0;
    EXPECT_TRUE(WaitUntil([&] {
      for (uint32_t id = 1; id <= count; ++id) {
        if (logs_[id - 1]->Status().serving) leader = id;
      }
      if (leader == 0) return false;
      for (uint32_t id = 1; id <= count; ++id) {
        if (logs_[id - 1]->Status().leader != std::optional<uint32_t>(leader)) {
          return false;
        }
      }
      return true;
    }));
    return leader;
  }

  LogClient Client(const std::vector<uint32_t>& ids) {
    LogClientOptions options;
    for (uint32_t id : ids)
      options.addresses.push_back({"127.0.0.1", port(id)});
    options.timeout = absl::Seconds(5);
    return LogClient(options);
  }

  std::string root_;
  std::unique_ptr<ReplicatedLog> logs_[kReplicas];
  std::unique_ptr<http::Server> http_[kReplicas];
};

TEST_F(LogHttpTest, FollowerRedirectsAppendToTheLeader) {
  StartCluster(3);
  const uint32_t leader = WaitForLeader(3);
  ASSERT_NE(leader, 0u);
  const uint32_t follower = leader == 1 ? 2 : 1;

  http::Client raw;  // does not follow redirects
  auto response = raw.Request("POST", "127.0.0.1", port(follower),
                              "/log/append", {}, "hello");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 307);
  EXPECT_EQ(response->headers.Get("Location"),
            absl::StrCat("http://127.0.0.1:", port(leader), "/log/append"));

  LogClient client = Client({follower});
  auto appended = client.Append("hello");
  ASSERT_TRUE(appended.ok()) << appended.status();
  EXPECT_GE(appended->position, 1u);

  // The leader's own replica has learned it: read it back there.
  auto page = Client({leader}).Read(appended->position, appended->position,
                                    std::nullopt);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_EQ(page->entries[0].data, "hello");
  EXPECT_EQ(page->entries[0].index, appended->index);
  EXPECT_EQ(page->next, appended->position + 1);
}

TEST_F(LogHttpTest, ReadsStatusAndHealthAnswerJson) {
  StartCluster(3);
  const uint32_t leader = WaitForLeader(3);
  ASSERT_NE(leader, 0u);
  LogClient client = Client({1, 2, 3});
  uint64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    auto p = client.Append(std::string("bin\0ary", 7) + std::to_string(i));
    ASSERT_TRUE(p.ok()) << p.status();
    last = p->position;
  }
  for (uint32_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(logs_[id - 1]->WaitForLearned(last, absl::Now() + kWait).ok());
    auto page = Client({id}).Read(std::nullopt, std::nullopt, std::nullopt);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_EQ(page->entries.size(), 5u) << "replica " << id;
    EXPECT_EQ(page->entries[4].data, std::string("bin\0ary4", 8));
  }

  http::Client raw;
  auto status = raw.Request("GET", "127.0.0.1", port(leader), "/log/status");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->status, 200);
  for (const std::string& key : std::vector<std::string>{
           "\"status\":\"VOTING\"", "\"role\":\"leader\"",
           absl::StrCat("\"leader\":", leader), "\"learned_through\":\"",
           "\"votes_sent\":\"", "\"counters\":{", "\"bytes_on_disk\":\""}) {
    EXPECT_NE(status->body.find(key), std::string::npos)
        << key << " not in " << status->body;
  }
  auto health = raw.Request("GET", "127.0.0.1", port(leader), "/health");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
  EXPECT_NE(health->body.find("\"healthy\":true"), std::string::npos);

  auto bad = raw.Request("GET", "127.0.0.1", port(leader), "/log/read?from=x");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("'from' must be an unsigned integer"),
            std::string::npos)
      << bad->body;
  auto limit =
      raw.Request("GET", "127.0.0.1", port(leader), "/log/read?limit=0");
  ASSERT_TRUE(limit.ok());
  EXPECT_EQ(limit->status, 400);
}

TEST_F(LogHttpTest, TruncateNeedsToAndDeletesEarlierPositions) {
  StartCluster(3);
  const uint32_t leader = WaitForLeader(3);
  ASSERT_NE(leader, 0u);
  http::Client raw;
  auto missing =
      raw.Request("POST", "127.0.0.1", port(leader), "/log/truncate");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 400);
  EXPECT_NE(missing->body.find("missing query parameter 'to'"),
            std::string::npos)
      << missing->body;

  LogClient client = Client({1, 2, 3});
  std::vector<Position> positions;
  for (int i = 0; i < 4; ++i) {
    auto p = client.Append(absl::StrCat("e", i));
    ASSERT_TRUE(p.ok()) << p.status();
    positions.push_back(*p);
  }
  EXPECT_EQ(client.Truncate(positions[3].position + 100).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto truncated = client.Truncate(positions[2].position);
  ASSERT_TRUE(truncated.ok()) << truncated.status();
  ASSERT_TRUE(WaitUntil([&] {
    return logs_[leader - 1]->Status().begin == positions[2].position;
  }));
  auto old = Client({leader}).Read(1, std::nullopt, std::nullopt);
  EXPECT_EQ(old.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(old.status().message().find("truncated"), std::string::npos)
      << old.status();
  auto rest = Client({leader}).Read(std::nullopt, std::nullopt, std::nullopt);
  ASSERT_TRUE(rest.ok()) << rest.status();
  ASSERT_EQ(rest->entries.size(), 2u);
  EXPECT_EQ(rest->entries[0].data, "e2");
}

TEST_F(LogHttpTest, WithoutAQuorumAppendIsUnavailable) {
  StartCluster(1);  // replicas 2 and 3 never start: no leader can exist
  http::Client raw;
  auto response =
      raw.Request("POST", "127.0.0.1", port(1), "/log/append", {}, "x");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503);
  EXPECT_NE(response->body.find("\"leader\":null"), std::string::npos)
      << response->body;
  EXPECT_EQ(response->headers.Get("Retry-After"), "1");

  LogClientOptions options;
  options.addresses = {{"127.0.0.1", port(1)}};
  options.timeout = absl::Milliseconds(300);
  LogClient client(options);
  auto appended = client.Append("x");
  EXPECT_EQ(appended.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(appended.status().message().find("no leader is known"),
            std::string::npos)
      << appended.status();
}

TEST_F(LogHttpTest, ClientSkipsUnreachableReplicas) {
  StartCluster(3);
  const uint32_t leader = WaitForLeader(3);
  ASSERT_NE(leader, 0u);
  // A follower's HTTP API goes away; the client tries it first.
  const uint32_t down = leader == 1 ? 2 : 1;
  const uint32_t up = 6 - leader - down;
  http_[down - 1]->Stop();
  LogClientOptions options;
  options.addresses = {{"127.0.0.1", port(down)},
                       {"127.0.0.1", port(up)},
                       {"127.0.0.1", port(leader)}};
  LogClient client(options);
  auto appended = client.Append("x");
  ASSERT_TRUE(appended.ok()) << appended.status();
  auto status = client.StatusJson();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_NE(status->find("\"status\":\"VOTING\""), std::string::npos);
}

TEST(ErrorFromResponseTest, DecodesTheJsonErrorAndMapsTheStatus) {
  http::Response response;
  response.status = 409;
  response.body = R"({"error": "to \"9\" is past \u00e9nd\n", "x": [1, {}]})";
  const absl::Status status = ErrorFromResponse(response);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "HTTP 409: to \"9\" is past \xc3\xa9nd\n");
  response.status = 502;
  response.body = "not json";
  EXPECT_EQ(ErrorFromResponse(response).code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ErrorFromResponse(response).message(), "HTTP 502: not json");
}

TEST(ParseAddressListTest, ParsesAndRejects) {
  auto list = ParseAddressList("127.0.0.1:8101,localhost:8102");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].host, "localhost");
  EXPECT_EQ((*list)[1].port, 8102);
  EXPECT_EQ(ParseAddressList("").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseAddressList("127.0.0.1").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::log
