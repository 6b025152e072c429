#include "monitoring/logging_http.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "common/http_message.h"
#include "common/http_server.h"
#include "common/json_value.h"
#include "common/logging.h"
#include "gtest/gtest.h"

namespace cairn::monitoring {
namespace {

// Real-time waits below poll against this deadline (the revert thread runs
// on the wall clock); generous for a loaded machine.
constexpr absl::Duration kDeadline = absl::Seconds(20);

http::Request Query(std::map<std::string, std::string> query) {
  http::Request request;
  request.method = "GET";
  request.path = kLoggingTogglePath;
  request.query = std::move(query);
  return request;
}

// The "field" and "error" of a 400 answer.
std::string FieldOf(const http::Response& response) {
  absl::StatusOr<JsonValue> json = ParseJson(response.body);
  if (!json.ok() || json->Find("field") == nullptr) return "<none>";
  return json->Find("field")->text;
}

class VerbosityToggleTest : public ::testing::Test {
 protected:
  void SetUp() override { logging::SetVerbosity(1); }
  void TearDown() override { logging::SetVerbosity(0); }
};

TEST(ParseMesosDurationTest, AcceptsMesosUnits) {
  EXPECT_EQ(ParseMesosDuration("10secs").value(), absl::Seconds(10));
  EXPECT_EQ(ParseMesosDuration("1mins").value(), absl::Minutes(1));
  EXPECT_EQ(ParseMesosDuration("500ms").value(), absl::Milliseconds(500));
  EXPECT_EQ(ParseMesosDuration("1.5hrs").value(), absl::Minutes(90));
  EXPECT_EQ(ParseMesosDuration("2days").value(), absl::Hours(48));
  EXPECT_EQ(ParseMesosDuration("1weeks").value(), absl::Hours(168));
  EXPECT_EQ(ParseMesosDuration("3us").value(), absl::Microseconds(3));
  EXPECT_EQ(ParseMesosDuration("7ns").value(), absl::Nanoseconds(7));
}

TEST(ParseMesosDurationTest, RejectsOtherText) {
  for (const char* bad : {"", "secs", "10", "10s", "-1secs", "1 secs", ".secs",
                          "1e3secs", "10secsx"}) {
    absl::StatusOr<absl::Duration> d = ParseMesosDuration(bad);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST_F(VerbosityToggleTest, RaisesAndRevertsAtTheDeadline) {
  VerbosityToggle toggle(1);
  const absl::Time before = absl::Now();
  ASSERT_TRUE(toggle.Toggle(3, absl::Hours(1)).ok());
  VerbosityToggle::State state = toggle.Get();
  EXPECT_EQ(state.level, 3);
  EXPECT_EQ(logging::Verbosity(), 3);
  EXPECT_EQ(state.original_level, 1);
  ASSERT_TRUE(state.reverts_at.has_value());
  EXPECT_GE(*state.reverts_at, before + absl::Hours(1));
  toggle.TEST_RevertIfDue(before + absl::Minutes(30));
  EXPECT_EQ(toggle.Get().level, 3) << "not due yet";
  toggle.TEST_RevertIfDue(*state.reverts_at);
  EXPECT_EQ(toggle.Get().level, 1);
  EXPECT_FALSE(toggle.Get().reverts_at.has_value());
}

TEST_F(VerbosityToggleTest, SecondToggleReplacesTheFirstsDeadline) {
  VerbosityToggle toggle(1);
  ASSERT_TRUE(toggle.Toggle(2, absl::Hours(1)).ok());
  const absl::Time first = *toggle.Get().reverts_at;
  ASSERT_TRUE(toggle.Toggle(4, absl::Hours(5)).ok());
  EXPECT_EQ(toggle.Get().level, 4);
  toggle.TEST_RevertIfDue(first + absl::Seconds(1));
  EXPECT_EQ(toggle.Get().level, 4) << "the first deadline no longer counts";
  // A toggle to the original level reverts now.
  ASSERT_TRUE(toggle.Toggle(1, absl::Hours(1)).ok());
  EXPECT_EQ(toggle.Get().level, 1);
  EXPECT_FALSE(toggle.Get().reverts_at.has_value());
}

TEST_F(VerbosityToggleTest, RefusesLevelsBelowTheOriginalAndBadDurations) {
  VerbosityToggle toggle(1);
  EXPECT_EQ(toggle.Toggle(0, absl::Seconds(1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(toggle.Toggle(-1, absl::Seconds(1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(toggle.Toggle(2, absl::ZeroDuration()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(toggle.Toggle(2, absl::InfiniteDuration()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(logging::Verbosity(), 1);
}

TEST_F(VerbosityToggleTest, DestructionRevertsAPendingToggle) {
  {
    VerbosityToggle toggle(1);
    ASSERT_TRUE(toggle.Toggle(5, absl::Hours(1)).ok());
    EXPECT_EQ(logging::Verbosity(), 5);
  }
  EXPECT_EQ(logging::Verbosity(), 1);
}

TEST_F(VerbosityToggleTest, ItsThreadRevertsWithoutAnyCall) {
  VerbosityToggle toggle(1);
  ASSERT_TRUE(toggle.Toggle(2, absl::Milliseconds(50)).ok());
  const absl::Time deadline = absl::Now() + kDeadline;
  while (logging::Verbosity() != 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(logging::Verbosity(), 1);
  EXPECT_FALSE(toggle.Get().reverts_at.has_value());
}

TEST_F(VerbosityToggleTest, ToggleResponseNamesTheBadField) {
  VerbosityToggle toggle(1);
  struct Case {
    std::map<std::string, std::string> query;
    std::string field;
  };
  const Case cases[] = {
      {{{"level", "3"}}, "duration"},
      {{{"duration", "1secs"}}, "level"},
      {{{"level", "x"}, {"duration", "1secs"}}, "level"},
      {{{"level", "99999999999"}, {"duration", "1secs"}}, "level"},
      {{{"level", "0"}, {"duration", "1secs"}}, "level"},
      {{{"level", "-2"}, {"duration", "1secs"}}, "level"},
      {{{"level", "3"}, {"duration", "1sec"}}, "duration"},
      {{{"level", "3"}, {"duration", "0secs"}}, "duration"},
      {{{"level", "3"}, {"duration", ""}}, "duration"},
  };
  for (const Case& c : cases) {
    http::Response response = ToggleResponse(&toggle, Query(c.query));
    EXPECT_EQ(response.status, 400) << response.body;
    EXPECT_EQ(FieldOf(response), c.field) << response.body;
    EXPECT_EQ(response.headers.Get("Content-Type"), "application/json");
  }
  EXPECT_EQ(logging::Verbosity(), 1);
  // No parameters: the current level as text, as Mesos answers.
  http::Response plain = ToggleResponse(&toggle, Query({}));
  EXPECT_EQ(plain.status, 200);
  EXPECT_EQ(plain.body, "1\n");
}

TEST_F(VerbosityToggleTest, LevelResponseShowsThePendingRevert) {
  VerbosityToggle toggle(1);
  http::Response idle = LevelResponse(toggle);
  EXPECT_EQ(idle.body,
            "{\"level\":1,\"original_level\":1,\"reverts_at\":null}");
  http::Response toggled =
      ToggleResponse(&toggle, Query({{"level", "4"}, {"duration", "1hrs"}}));
  EXPECT_EQ(toggled.status, 200) << toggled.body;
  absl::StatusOr<JsonValue> json = ParseJson(toggled.body);
  ASSERT_TRUE(json.ok()) << toggled.body;
  EXPECT_EQ(json->Find("level")->text, "4");
  double reverts_at = 0;
  ASSERT_TRUE(absl::SimpleAtod(json->Find("reverts_at")->text, &reverts_at))
      << toggled.body;
  EXPECT_NEAR(reverts_at,
              absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()) + 3600,
              120);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Through a real server: the toggle raises the verbosity (a VLOG(3) line
// reaches the log file), /logging/level shows it, and it reverts by itself.
TEST_F(VerbosityToggleTest, HttpToggleRaisesThenReverts) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = tmp != nullptr ? tmp : "/tmp";
  ASSERT_TRUE(logging::Init("logging_http_test", dir).ok());
  const std::string log_file = logging::LogFilePath();
  logging::SetVerbosity(0);
  VerbosityToggle toggle(0);
  http::Server server;
  ServeLoggingToggle(&server, &toggle);
  ASSERT_TRUE(server.Start().ok());
  http::Client client;
  auto get = [&](const std::string& target) {
    return client.Request("GET", "127.0.0.1", server.port(), target);
  };

  VLOG(3) << "marker before the toggle";
  absl::StatusOr<http::Response> toggled =
      get("/logging/toggle?level=3&duration=1secs");
  ASSERT_TRUE(toggled.ok()) << toggled.status();
  ASSERT_EQ(toggled->status, 200) << toggled->body;
  absl::StatusOr<http::Response> level = get("/logging/level");
  ASSERT_TRUE(level.ok()) << level.status();
  absl::StatusOr<JsonValue> json = ParseJson(level->body);
  ASSERT_TRUE(json.ok()) << level->body;
  // Unless this machine stalled for the whole second, the level is raised.
  // Either way the VLOG below is emitted only while it is.
  if (json->Find("level")->text == "3") {
    VLOG(3) << "marker during the toggle";
    logging::Flush();
    EXPECT_TRUE(
        absl::StrContains(ReadFile(log_file), "marker during the toggle"));
  }
  absl::StatusOr<http::Response> post =
      client.Request("POST", "127.0.0.1", server.port(),
                     "/logging/toggle?level=x&duration=1secs");
  ASSERT_TRUE(post.ok());
  EXPECT_EQ(post->status, 400);

  // Reverts by itself: poll /logging/level.
  const absl::Time deadline = absl::Now() + kDeadline;
  std::string last;
  while (absl::Now() < deadline) {
    absl::StatusOr<http::Response> now = get("/logging/level");
    ASSERT_TRUE(now.ok()) << now.status();
    last = now->body;
    if (absl::StrContains(last, "\"level\":0,")) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(last, "{\"level\":0,\"original_level\":0,\"reverts_at\":null}");
  VLOG(3) << "marker after the revert";
  logging::Flush();
  const std::string text = ReadFile(log_file);
  EXPECT_FALSE(absl::StrContains(text, "marker before the toggle"));
  EXPECT_FALSE(absl::StrContains(text, "marker after the revert"));
  EXPECT_TRUE(absl::StrContains(text, "logging: verbosity reverted to 0"));
  server.Stop();
  ASSERT_TRUE(logging::Init("logging_http_test", "").ok());
}

}  // namespace
}  // namespace cairn::monitoring
