#include "common/logging.h"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn {
namespace logging {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

// Captures emitted lines through the test sink; restores defaults afterwards.
class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetSinkForTesting([this](const LogLine& line) {
      absl::MutexLock lock(&mu_);
      lines_.push_back(line);
    });
  }

  void TearDown() override {
    SetSinkForTesting({});
    SetMinLevel(Severity::kInfo);
    SetVerbosity(0);
    SetStderrLogging(true);
    ASSERT_TRUE(Init("logging_test", "").ok());
  }

  std::vector<std::string> Messages() {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> messages;
    for (const LogLine& line : lines_) messages.push_back(line.message);
    return messages;
  }

  std::vector<LogLine> Lines() {
    absl::MutexLock lock(&mu_);
    return lines_;
  }

 private:
  absl::Mutex mu_;
  std::vector<LogLine> lines_ ABSL_GUARDED_BY(mu_);
};

// ::testing::TempDir() without its trailing slash.
std::string TestDir() {
  std::string dir = ::testing::TempDir();
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Compiles without -Wreturn-type: LOG(FATAL) is known not to return.
int PositiveOrDie(int x) {
  if (x > 0) return x;
  LOG(FATAL) << "not positive: " << x;
}

TEST_F(LoggingTest, MacrosComposeWithIfElse) {
  for (int i = 0; i < 2; ++i) {
    if (i == 0)
      LOG(INFO) << "then";
    else
      LOG(INFO) << "else";
    if (i == 0)
      CHECK_EQ(i, 0);
    else
      CHECK_OK(absl::OkStatus());
  }
  EXPECT_EQ(PositiveOrDie(3), 3);
  EXPECT_THAT(Messages(), ElementsAre("then", "else"));
}

TEST_F(LoggingTest, EmitsAllLevelsByDefault) {
  LOG(INFO) << "info " << 1;
  LOG(WARNING) << "warning";
  LOG(ERROR) << "error";
  EXPECT_THAT(Messages(), ElementsAre("info 1", "warning", "error"));
  std::vector<LogLine> lines = Lines();
  EXPECT_EQ(lines[0].severity, Severity::kInfo);
  EXPECT_EQ(lines[1].severity, Severity::kWarning);
  EXPECT_EQ(lines[2].severity, Severity::kError);
}

TEST_F(LoggingTest, MinLevelFiltersLowerSeverities) {
  SetMinLevel(Severity::kWarning);
  EXPECT_EQ(MinLevel(), Severity::kWarning);
  LOG(INFO) << "dropped";
  LOG(WARNING) << "kept warning";
  LOG(ERROR) << "kept error";
  EXPECT_THAT(Messages(), ElementsAre("kept warning", "kept error"));
}

TEST_F(LoggingTest, DisabledStatementDoesNotEvaluateOperands) {
  SetMinLevel(Severity::kError);
  int evaluations = 0;
  auto expensive = [&evaluations] {
    ++evaluations;
    return "expensive";
  };
  LOG(INFO) << expensive();
  LOG(WARNING) << expensive();
  VLOG(0) << expensive();
  EXPECT_EQ(evaluations, 0);
  LOG(ERROR) << expensive();
  EXPECT_EQ(evaluations, 1);
}

TEST_F(LoggingTest, VlogEmitsOnlyAtOrBelowVerbosity) {
  EXPECT_EQ(Verbosity(), 0);
  VLOG(0) << "v0";
  VLOG(1) << "v1 hidden";
  SetVerbosity(2);
  EXPECT_EQ(Verbosity(), 2);
  VLOG(1) << "v1";
  VLOG(2) << "v2";
  VLOG(3) << "v3 hidden";
  EXPECT_TRUE(VLOG_IS_ON(2));
  EXPECT_FALSE(VLOG_IS_ON(3));
  EXPECT_THAT(Messages(), ElementsAre("v0", "v1", "v2"));
}

TEST_F(LoggingTest, VlogIsSuppressedWhenInfoIsOff) {
  SetVerbosity(5);
  SetMinLevel(Severity::kWarning);
  VLOG(1) << "hidden";
  EXPECT_TRUE(Messages().empty());
}

TEST_F(LoggingTest, LogIfLogsOnlyWhenConditionHolds) {
  LOG_IF(INFO, 1 + 1 == 3) << "no";
  LOG_IF(INFO, 1 + 1 == 2) << "yes";
  EXPECT_THAT(Messages(), ElementsAre("yes"));
}

TEST_F(LoggingTest, LineRecordsSourceLocationAndThread) {
  LOG(INFO) << "where";
  const int expected_line = __LINE__ - 1;
  std::vector<LogLine> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].file, "logging_test.cc");
  EXPECT_EQ(lines[0].line, expected_line);
  EXPECT_GT(lines[0].thread_id, 0);
}

TEST(FormatLogLineTest, UsesGlogStylePrefix) {
  LogLine line;
  line.severity = Severity::kWarning;
  line.time = absl::Now();
  line.thread_id = 12345;
  line.file = "replica.cc";
  line.line = 42;
  line.message = "hello";
  EXPECT_THAT(FormatLogLine(line),
              MatchesRegex("W[0-9]{8} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6} "
                           "12345 replica\\.cc:42\\] hello"));
}

TEST(FormatLogLineTest, SeverityLetters) {
  EXPECT_EQ(SeverityLetter(Severity::kInfo), 'I');
  EXPECT_EQ(SeverityLetter(Severity::kWarning), 'W');
  EXPECT_EQ(SeverityLetter(Severity::kError), 'E');
  EXPECT_EQ(SeverityLetter(Severity::kFatal), 'F');
}

TEST_F(LoggingTest, PassingChecksDoNotLogAndEvaluateOperandsOnce) {
  int a = 0;
  int b = 0;
  CHECK(++a == 1) << "unused";
  CHECK_EQ(++b, 1);
  CHECK_NE(a, 2);
  CHECK_LT(1, 2);
  CHECK_LE(2, 2);
  CHECK_GT(3, 2);
  CHECK_GE(3, 3);
  CHECK_OK(absl::OkStatus());
  CHECK_OK(absl::StatusOr<int>(7));
  DCHECK(true);
  DCHECK_EQ(1, 1);
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 1);
  EXPECT_TRUE(Messages().empty());
}

TEST(CheckOpTest, ComparesMixedSignednessByValue) {
  const std::vector<int> three(3);
  CHECK_EQ(three.size(), 3);
  CHECK_LT(-1, three.size());
  CHECK_GT(three.size(), -1);
  EXPECT_FALSE(internal::CheckLt(three.size(), -1));
  EXPECT_FALSE(internal::CheckEq(static_cast<uint32_t>(0xFFFFFFFFu), -1));
  EXPECT_TRUE(internal::CheckNe(static_cast<uint64_t>(1), int64_t{-1}));
}

using LoggingDeathTest = LoggingTest;

TEST_F(LoggingDeathTest, CheckFailureAbortsWithConditionAndMessage) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  const int answer = 41;
  EXPECT_DEATH(CHECK(answer == 42) << "wrong answer",
               "F[0-9]{8} .* logging_test\\.cc:[0-9]+\\] Check failed: "
               "answer == 42 wrong answer");
}

TEST_F(LoggingDeathTest, CheckEqFailurePrintsBothValues) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  const int ballot = 3;
  EXPECT_DEATH(CHECK_EQ(ballot, 4) << "context",
               "Check failed: ballot == 4 \\(3 vs\\. 4\\) context");
  EXPECT_DEATH(CHECK_LT(std::string("b"), std::string("a")), "\\(b vs\\. a\\)");
}

TEST_F(LoggingDeathTest, CheckOkFailurePrintsStatus) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(CHECK_OK(absl::NotFoundError("no such replica")) << "ctx",
               "is OK, got: NOT_FOUND: no such replica ctx");
  EXPECT_DEATH(CHECK_OK(absl::StatusOr<int>(absl::DataLossError("bad crc"))),
               "DATA_LOSS: bad crc");
}

TEST_F(LoggingDeathTest, LogFatalAborts) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(LOG(FATAL) << "unrecoverable", "unrecoverable");
}

TEST_F(LoggingDeathTest, FatalIsEmittedEvenAboveMinLevel) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  SetMinLevel(Severity::kFatal);
  EXPECT_DEATH(CHECK(false) << "still printed", "still printed");
}

#ifndef NDEBUG
TEST_F(LoggingDeathTest, DcheckFailsInDebugBuilds) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(DCHECK(1 > 2), "Check failed: 1 > 2");
}
#endif

TEST_F(LoggingTest, InitWritesAndAppendsToLogFile) {
  const std::string dir = TestDir();
  const std::string path = absl::StrCat(dir, "/file_test.log");
  std::remove(path.c_str());

  ASSERT_TRUE(Init("/usr/bin/file_test", dir).ok());
  EXPECT_EQ(LogFilePath(), path);
  LOG(INFO) << "first line";
  LOG(WARNING) << "second line";
  // Re-opening appends rather than truncates.
  ASSERT_TRUE(Init("file_test", dir).ok());
  LOG(INFO) << "third line";
  Flush();

  std::vector<std::string> lines =
      absl::StrSplit(ReadFile(path), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[0], MatchesRegex("I[0-9]{8} .* logging_test\\.cc:[0-9]+\\]"
                                     " first line"));
  EXPECT_THAT(lines[1], HasSubstr("] second line"));
  EXPECT_EQ(lines[1][0], 'W');
  EXPECT_THAT(lines[2], HasSubstr("] third line"));
}

TEST_F(LoggingTest, WarningIsFlushedToFileWithoutExplicitFlush) {
  const std::string dir = TestDir();
  const std::string path = absl::StrCat(dir, "/flush_test.log");
  std::remove(path.c_str());
  ASSERT_TRUE(Init("flush_test", dir).ok());
  LOG(WARNING) << "durable enough";
  EXPECT_THAT(ReadFile(path), HasSubstr("durable enough"));
}

TEST_F(LoggingTest, InitReportsMissingDirectory) {
  absl::Status status = Init("x", "/nonexistent/cairn/logging/dir");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("/nonexistent/cairn/logging/dir/x.log"));
  EXPECT_EQ(LogFilePath(), "");
}

TEST_F(LoggingTest, ConcurrentLinesNeverInterleave) {
  const std::string dir = TestDir();
  const std::string path = absl::StrCat(dir, "/concurrent_test.log");
  std::remove(path.c_str());
  ASSERT_TRUE(Init("concurrent_test", dir).ok());
  SetStderrLogging(false);  // 800 long lines would only clutter test.log

  constexpr int kThreads = 4;
  constexpr int kLinesPerThread = 200;
  const std::string payload(300, 'x');
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &payload] {
      for (int i = 0; i < kLinesPerThread; ++i) {
        LOG(INFO) << "thread " << t << " line " << i << " " << payload;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  Flush();

  std::vector<std::string> lines =
      absl::StrSplit(ReadFile(path), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kLinesPerThread));
  for (const std::string& line : lines) {
    ASSERT_THAT(line,
                MatchesRegex("I[0-9]{8} [0-9:.]+ [0-9]+ logging_test\\.cc:"
                             "[0-9]+\\] thread [0-9] line [0-9]+ x{300}"));
  }
  EXPECT_EQ(Messages().size(), static_cast<size_t>(kThreads * kLinesPerThread));
}

}  // namespace
}  // namespace logging
}  // namespace cairn
