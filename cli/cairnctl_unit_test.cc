// cairnctl in-process: usage errors, help, a cluster that does not answer,
// and the pure helpers of events and run.

#include "cli/cairnctl.h"

#include <sstream>

#include "absl/strings/match.h"
#include "cairn/v1/master.pb.h"
#include "cli/events.h"
#include "cli/exit_codes.h"
#include "cli/sandbox_output.h"
#include "common/json.h"
#include "common/json_value.h"
#include "gtest/gtest.h"

namespace cairn::cli {
namespace {

struct Result {
  int code;
  std::string out, err;
};

Result Ctl(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = Cairnctl(args, out, err);
  return {code, out.str(), err.str()};
}

TEST(CairnctlTest, UsageErrorsExit64WithOneLine) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"frobnicate"},
           {"tasks", "--bogus"},
           {"drain"},
           {"status", "extra"},
           {"run", "--cpus=1"},
           {"run", "--cpus=lots", "--", "true"},
           {"events", "--from=x"},
           {"agents", "--master=nohost"},
           {"agents", "--timeout=later"},
       }) {
    Result r = Ctl(args);
    EXPECT_EQ(r.code, kExitUsage) << args[0] << ": " << r.err;
    EXPECT_TRUE(absl::StartsWith(r.err, "cairnctl: ")) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  }
}

TEST(CairnctlTest, HelpPrintsUsageAndExitCodes) {
  Result r = Ctl({"help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "exit codes")) << r.out;
  Result run = Ctl({"help", "run"});
  EXPECT_EQ(run.code, 0);
  EXPECT_TRUE(absl::StrContains(run.out, "124")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "Command exited with status N"));
  EXPECT_EQ(Ctl({"tasks", "--help"}).code, 0);
  EXPECT_EQ(Ctl({}).code, kExitUsage);
}

TEST(CairnctlTest, NoMasterAnsweringExits2NamingTheMasters) {
  // Port 1 on loopback: refused at once.
  for (const char* command : {"agents", "tasks", "metrics", "events"}) {
    Result r = Ctl({command, "--master=127.0.0.1:1", "--timeout=1s"});
    EXPECT_EQ(r.code, kExitUnavailable) << command << ": " << r.err;
    EXPECT_TRUE(absl::StartsWith(r.err, "cairnctl: no master answered at "
                                        "127.0.0.1:1 ("))
        << r.err;
  }
  Result status = Ctl({"status", "--master=127.0.0.1:1", "--json"});
  EXPECT_EQ(status.code, kExitUnavailable);
  absl::StatusOr<JsonValue> json = ParseJson(status.out);
  ASSERT_TRUE(json.ok()) << status.out;
  EXPECT_EQ(json->Find("leader")->kind, JsonValue::Kind::kNull);
  EXPECT_EQ(json->Find("masters")->items.at(0).Text("role"), "down");
}

TEST(CairnctlTest, EventLineShowsIdTimeTypePrincipalAndSummary) {
  v1::Event event;
  ASSERT_TRUE(FromJson(R"({"position":7,"index":1,
      "time":{"nanoseconds":1700000000000000000},"principal":"ops",
      "task_status_updated":{"framework_id":{"value":"f1"},
        "status":{"task_id":{"value":"t1"},"state":"TASK_FAILED",
                  "message":"Command exited with status 3"}}})",
                       &event)
                  .ok());
  EXPECT_EQ(EventTypeName(event), "task_status_updated");
  EXPECT_EQ(EventLine(event),
            "7:1  2023-11-14T22:13:20.000Z  task_status_updated  ops  task t1 "
            "TASK_FAILED: Command exited with status 3");
}

TEST(CairnctlTest, SandboxDirectoryFollowsMesosAgentState) {
  absl::StatusOr<JsonValue> state = ParseJson(R"({
    "frameworks": [{"id": "other", "executors": [
        {"id": "t1", "directory": "/wrong"}]}],
    "completed_frameworks": [{"id": "f1", "executors": [],
      "completed_executors": [{"id": "e9", "directory": "/sandbox/e9",
        "tasks": [], "completed_tasks": [{"id": "t1"}]}]}]})");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(SandboxDirectory(*state, "f1", "t1"), "/sandbox/e9");
  EXPECT_EQ(SandboxDirectory(*state, "f1", "t2"), std::nullopt);
  EXPECT_EQ(UrlEncode("/a b/stdout&x"), "/a%20b/stdout%26x");
}

}  // namespace
}  // namespace cairn::cli
