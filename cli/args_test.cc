#include "cli/args.h"

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace cairn::cli {
namespace {

const std::vector<FlagSpec> kGlobal = {{"master", true}, {"json", false}};
const std::map<std::string, std::vector<FlagSpec>> kCommands = {
    {"tasks", {{"state", true}, {"all", false}}},
    {"drain", {{"max-grace-period", true}, {"mark-gone", false}}},
    {"run", {{"cpus", true}}},
};

TEST(ArgsTest, FlagsAnywhereInEitherSpelling) {
  absl::StatusOr<CommandLine> line = ParseCommandLine(
      {"--master=a:1", "drain", "agent-1", "--max_grace_period", "10s",
       "--mark-gone", "--json=false"},
      kGlobal, kCommands);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->command, "drain");
  EXPECT_EQ(line->positional, std::vector<std::string>{"agent-1"});
  EXPECT_EQ(line->Get("master"), "a:1");
  EXPECT_EQ(line->Get("max-grace-period"), "10s");
  EXPECT_TRUE(line->Bool("mark_gone"));
  EXPECT_FALSE(line->Bool("json"));
}

TEST(ArgsTest, EverythingAfterDashDashIsTheCommand) {
  absl::StatusOr<CommandLine> line = ParseCommandLine(
      {"run", "--cpus=1", "--", "sh", "-c", "exit 3", "--json"}, kGlobal,
      kCommands);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_TRUE(line->dashdash);
  EXPECT_EQ(line->rest,
            (std::vector<std::string>{"sh", "-c", "exit 3", "--json"}));
  EXPECT_FALSE(line->Bool("json"));
}

TEST(ArgsTest, UsageErrorsNameTheFlag) {
  absl::StatusOr<CommandLine> unknown =
      ParseCommandLine({"tasks", "--mark-gone"}, kGlobal, kCommands);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("--mark-gone"), std::string::npos);

  absl::StatusOr<CommandLine> missing =
      ParseCommandLine({"tasks", "--state"}, kGlobal, kCommands);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("--state"), std::string::npos);

  absl::StatusOr<CommandLine> bad_bool =
      ParseCommandLine({"tasks", "--all=maybe"}, kGlobal, kCommands);
  EXPECT_EQ(bad_bool.status().code(), absl::StatusCode::kInvalidArgument);

  absl::StatusOr<CommandLine> command =
      ParseCommandLine({"frobnicate"}, kGlobal, kCommands);
  EXPECT_EQ(command.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ArgsTest, Durations) {
  EXPECT_EQ(*ParseDurationFlag("timeout", "60s"), absl::Seconds(60));
  EXPECT_EQ(*ParseDurationFlag("timeout", "1m30s"), absl::Seconds(90));
  EXPECT_EQ(*ParseDurationFlag("timeout", "2.5"), absl::Milliseconds(2500));
  EXPECT_EQ(ParseDurationFlag("timeout", "soon").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseDurationFlag("timeout", "-1s").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseNumberFlag("cpus", "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseNumberFlag("mem", "32"), 32);
}

}  // namespace
}  // namespace cairn::cli
