#include "common/logging_flags.h"

#include <string>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn {
namespace logging {
namespace {

using ::testing::HasSubstr;

class LoggingFlagsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    absl::SetFlag(&FLAGS_log_dir, "");
    absl::SetFlag(&FLAGS_log_format, "text");
    absl::SetFlag(&FLAGS_max_log_size_mb, 100);
    absl::SetFlag(&FLAGS_max_log_files, 5);
    absl::SetFlag(&FLAGS_v, 0);
    SetVerbosity(0);
  }
};

TEST_F(LoggingFlagsTest, DefaultsAreTextWithRotationAt100MiB) {
  absl::StatusOr<Options> options = OptionsFromFlags("/usr/bin/cairn-x");
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->program_name, "/usr/bin/cairn-x");
  EXPECT_EQ(options->log_dir, "");
  EXPECT_EQ(options->format, Format::kText);
  EXPECT_EQ(options->max_file_bytes, uint64_t{100} << 20);
  EXPECT_EQ(options->max_files, 5);
}

TEST_F(LoggingFlagsTest, ReadsEveryFlag) {
  absl::SetFlag(&FLAGS_log_dir, "/var/log/cairn");
  absl::SetFlag(&FLAGS_log_format, "json");
  absl::SetFlag(&FLAGS_max_log_size_mb, 2);
  absl::SetFlag(&FLAGS_max_log_files, 3);
  absl::SetFlag(&FLAGS_v, 2);
  absl::StatusOr<Options> options = OptionsFromFlags("p");
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->log_dir, "/var/log/cairn");
  EXPECT_EQ(options->format, Format::kJson);
  EXPECT_EQ(options->max_file_bytes, uint64_t{2} << 20);
  EXPECT_EQ(options->max_files, 3);
  EXPECT_EQ(VerbosityFromFlags(), 2);
}

TEST_F(LoggingFlagsTest, BadValuesNameTheFlag) {
  absl::SetFlag(&FLAGS_log_format, "xml");
  absl::Status status = OptionsFromFlags("p").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("--log_format"));
  absl::SetFlag(&FLAGS_log_format, "text");

  absl::SetFlag(&FLAGS_max_log_files, 0);
  status = OptionsFromFlags("p").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("--max_log_files"));
  // Without rotation the number of files does not matter.
  absl::SetFlag(&FLAGS_max_log_size_mb, 0);
  EXPECT_TRUE(OptionsFromFlags("p").ok());

  absl::SetFlag(&FLAGS_v, -1);
  status = OptionsFromFlags("p").status();
  EXPECT_THAT(std::string(status.message()), HasSubstr("--v"));
}

TEST_F(LoggingFlagsTest, InitFromFlagsSetsVerbosity) {
  absl::SetFlag(&FLAGS_v, 3);
  ASSERT_TRUE(InitFromFlags("logging_flags_test").ok());
  EXPECT_EQ(Verbosity(), 3);
  absl::SetFlag(&FLAGS_log_format, "yaml");
  EXPECT_EQ(InitFromFlags("logging_flags_test").code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace logging
}  // namespace cairn
