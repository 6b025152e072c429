#include "common/flags.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "common/json.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "gtest/gtest.h"

ABSL_FLAG(int32_t, plumbing_test_port, 5050, "test-only port flag");
ABSL_FLAG(std::string, plumbing_test_name, "default-name", "test-only name");
ABSL_FLAG(bool, plumbing_test_verbose, false, "test-only bool flag");

namespace cairn {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kPortEnv = "CAIRN_PLUMBING_TEST_PORT";
constexpr const char* kNameEnv = "CAIRN_PLUMBING_TEST_NAME";
constexpr const char* kVerboseEnv = "CAIRN_PLUMBING_TEST_VERBOSE";

// Restores flag values and clears the test's environment variables.
class FlagsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    unsetenv(kPortEnv);
    unsetenv(kNameEnv);
    unsetenv(kVerboseEnv);
  }

 private:
  absl::FlagSaver saver_;
};

TEST_F(FlagsTest, EnvNameIsPrefixedUppercaseFlagName) {
  EXPECT_EQ(FlagEnvName("log_dir"), "CAIRN_LOG_DIR");
  EXPECT_EQ(FlagEnvName("port", "X_"), "X_PORT");
}

TEST_F(FlagsTest, CommandLineWinsOverEnvironmentWhichWinsOverDefault) {
  setenv(kPortEnv, "6060", 1);
  setenv(kNameEnv, "from-env", 1);
  std::vector<std::string> args = {
      "cairn-master", "--plumbing_test_name=from-cmdline", "positional"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());

  std::vector<char*> rest = ParseCommandLine(static_cast<int>(argv.size()),
                                             argv.data(), "usage: test");

  EXPECT_EQ(absl::GetFlag(FLAGS_plumbing_test_port), 6060);            // env
  EXPECT_EQ(absl::GetFlag(FLAGS_plumbing_test_name), "from-cmdline");  // argv
  EXPECT_FALSE(absl::GetFlag(FLAGS_plumbing_test_verbose));  // default
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_STREQ(rest[0], "cairn-master");
  EXPECT_STREQ(rest[1], "positional");
}

TEST_F(FlagsTest, ApplyEnvironmentSetsTypedValues) {
  setenv(kPortEnv, "7070", 1);
  setenv(kVerboseEnv, "true", 1);
  ASSERT_TRUE(ApplyEnvironmentFlags().ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_plumbing_test_port), 7070);
  EXPECT_TRUE(absl::GetFlag(FLAGS_plumbing_test_verbose));
  EXPECT_EQ(absl::GetFlag(FLAGS_plumbing_test_name), "default-name");
}

TEST_F(FlagsTest, AbslBuiltinFlagsAreNotTakenFromEnvironment) {
  setenv("CAIRN_UNDEFOK", "plumbing_test_port", 1);
  EXPECT_TRUE(ApplyEnvironmentFlags().ok());
  unsetenv("CAIRN_UNDEFOK");
  EXPECT_EQ(AllFlagValues().at("undefok"), "");
}

TEST_F(FlagsTest, UnparsableEnvironmentValueIsInvalidArgument) {
  setenv(kPortEnv, "not-a-number", 1);
  setenv(kNameEnv, "still-applied", 1);
  absl::Status status = ApplyEnvironmentFlags();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("CAIRN_PLUMBING_TEST_PORT=\"not-a-number\""));
  EXPECT_EQ(absl::GetFlag(FLAGS_plumbing_test_port), 5050);
  EXPECT_EQ(absl::GetFlag(FLAGS_plumbing_test_name), "still-applied");
}

TEST_F(FlagsTest, ParseCommandLineExitsOnUnparsableEnvironmentValue) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  setenv(kPortEnv, "99999999999", 1);  // out of int32 range
  std::string program = "prog";
  char* argv[] = {program.data()};
  EXPECT_EXIT(ParseCommandLine(1, argv, "usage: test"),
              ::testing::ExitedWithCode(1), "CAIRN_PLUMBING_TEST_PORT");
}

TEST_F(FlagsTest, AllFlagValuesReportsCurrentValues) {
  absl::SetFlag(&FLAGS_plumbing_test_port, 1234);
  std::map<std::string, std::string> values = AllFlagValues();
  EXPECT_EQ(values.at("plumbing_test_port"), "1234");
  EXPECT_EQ(values.at("plumbing_test_name"), "default-name");
  EXPECT_EQ(values.at("plumbing_test_verbose"), "false");
}

TEST_F(FlagsTest, FlagsAsJsonIsValidJsonWithEscapedStrings) {
  absl::SetFlag(&FLAGS_plumbing_test_name, "a \"quoted\"\\ name\n\x01");
  const std::string json = FlagsAsJson();
  EXPECT_THAT(json, StartsWith("{\"flags\":{"));

  google::protobuf::Struct parsed;
  ASSERT_TRUE(FromJson(json, &parsed).ok()) << json;
  const google::protobuf::Struct& flags =
      parsed.fields().at("flags").struct_value();
  EXPECT_EQ(flags.fields().at("plumbing_test_name").string_value(),
            "a \"quoted\"\\ name\n\x01");
  EXPECT_EQ(flags.fields().at("plumbing_test_port").string_value(), "5050");
}

}  // namespace
}  // namespace cairn
