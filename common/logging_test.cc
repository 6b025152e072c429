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
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "common/json_value.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn {
namespace logging {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

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

  // The one line the sink saw; fails the test otherwise.
  LogLine OnlyLine() {
    std::vector<LogLine> lines = Lines();
    EXPECT_EQ(lines.size(), 1u);
    return lines.empty() ? LogLine() : lines[0];
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

// ---- JSON lines, context, component, rotation --------------------------

TEST(FormatJsonLineTest, WritesEveryFieldAndTheContext) {
  LogLine line;
  line.severity = Severity::kWarning;
  line.time = absl::FromCivil(absl::CivilSecond(2026, 11, 25, 14, 3, 1),
                              absl::UTCTimeZone()) +
              absl::Microseconds(123456);
  line.thread_id = 123;
  line.file = "leader.cc";
  line.line = 42;
  line.message = "quote \" and\nnewline";
  line.component = "master";
  line.program = "cairn-master";
  line.context = {{"request_id", "r-1"}, {"event", "17"}, {"line", "x"}};
  EXPECT_EQ(FormatJsonLine(line),
            "{\"time\":\"2026-11-25T14:03:01.123456Z\",\"level\":\"WARNING\","
            "\"component\":\"master\",\"program\":\"cairn-master\","
            "\"thread\":123,\"file\":\"leader.cc\",\"line\":42,"
            "\"message\":\"quote \\\" and\\nnewline\",\"request_id\":\"r-1\","
            "\"event\":\"17\",\"ctx_line\":\"x\"}");
  absl::StatusOr<JsonValue> parsed = ParseJson(FormatJsonLine(line));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
}

TEST(FormatTest, ParsesTextAndJsonOnly) {
  EXPECT_EQ(ParseFormat("text").value(), Format::kText);
  EXPECT_EQ(ParseFormat("json").value(), Format::kJson);
  absl::StatusOr<Format> bad = ParseFormat("xml");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("xml"));
  EXPECT_STREQ(SeverityName(Severity::kError), "ERROR");
}

TEST_F(LoggingTest, ComponentIsTheSourceDirectory) {
  LOG(INFO) << "here";
  // Bazel compiles this file as "common/logging_test.cc".
  EXPECT_EQ(OnlyLine().component, "common");
}

TEST_F(LoggingTest, ScopedContextAttachesKeysUntilItEnds) {
  {
    ScopedContext outer({{"request_id", "r-1"}, {"skipped", ""}});
    {
      ScopedContext inner({{"event", "42"}, {"request_id", "r-2"}});
      LOG(INFO) << "inner";
    }
    LOG(INFO) << "outer";
  }
  LOG(INFO) << "none";
  std::vector<LogLine> lines = Lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].context,
            (LogContext{{"request_id", "r-2"}, {"event", "42"}}));
  EXPECT_EQ(lines[1].context, (LogContext{{"request_id", "r-1"}}));
  EXPECT_TRUE(lines[2].context.empty());
  EXPECT_TRUE(CurrentContext().empty());
}

TEST_F(LoggingTest, ContextIsPerThread) {
  ScopedContext mine({{"request_id", "main"}});
  std::thread other([] { LOG(INFO) << "other thread"; });
  other.join();
  EXPECT_TRUE(OnlyLine().context.empty());
}

TEST_F(LoggingTest, ContextCanNameTheComponent) {
  ScopedContext ctx({{"component", "allocator"}});
  LOG(INFO) << "allocating";
  EXPECT_EQ(OnlyLine().component, "allocator");
}

TEST_F(LoggingTest, JsonFormatWritesOneParsableObjectPerLine) {
  const std::string dir = TestDir();
  const std::string path = absl::StrCat(dir, "/json_test.log");
  std::remove(path.c_str());
  Options options;
  options.program_name = "/usr/bin/json_test";
  options.log_dir = dir;
  options.format = Format::kJson;
  ASSERT_TRUE(Init(options).ok());
  SetStderrLogging(false);
  {
    ScopedContext ctx({{"request_id", "req-7"}});
    LOG(WARNING) << "with \"quotes\"";
  }
  LOG(INFO) << "plain";
  Flush();
  std::vector<std::string> lines =
      absl::StrSplit(ReadFile(path), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u);
  absl::StatusOr<JsonValue> first = ParseJson(lines[0]);
  ASSERT_TRUE(first.ok()) << lines[0];
  ASSERT_NE(first->Find("level"), nullptr);
  EXPECT_EQ(first->Find("level")->text, "WARNING");
  EXPECT_EQ(first->Find("message")->text, "with \"quotes\"");
  EXPECT_EQ(first->Find("request_id")->text, "req-7");
  EXPECT_EQ(first->Find("program")->text, "json_test");
  EXPECT_EQ(first->Find("component")->text, "common");
  EXPECT_EQ(first->Find("file")->text, "logging_test.cc");
  EXPECT_THAT(first->Find("time")->text,
              MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{6}Z"));
  absl::StatusOr<JsonValue> second = ParseJson(lines[1]);
  ASSERT_TRUE(second.ok()) << lines[1];
  EXPECT_EQ(second->Find("request_id"), nullptr);
}

TEST_F(LoggingTest, RotatesBeforeExceedingMaxSizeAndKeepsMaxFiles) {
  const std::string dir = absl::StrCat(TestDir(), "/rotation");
  ASSERT_EQ(system(absl::StrCat("rm -rf ", dir, " && mkdir -p ", dir).c_str()),
            0);
  Options options;
  options.program_name = "rot";
  options.log_dir = dir;
  options.max_file_bytes = 1000;
  options.max_files = 2;
  ASSERT_TRUE(Init(options).ok());
  SetStderrLogging(false);
  const std::string path = dir + "/rot.log";
  EXPECT_EQ(LogFilePath(), path);
  EXPECT_EQ(LogDirectory(), dir);
  // Lines of ~100 bytes: each file holds 9 of them (10 would pass 1000).
  for (int i = 0; i < 40; ++i) {
    LOG(INFO) << "line " << absl::StrFormat("%03d", i) << " "
              << std::string(60, 'x');
  }
  Flush();
  const std::string current = ReadFile(path);
  const std::string rotated1 = ReadFile(path + ".1");
  const std::string rotated2 = ReadFile(path + ".2");
  EXPECT_FALSE(std::ifstream(path + ".3").good()) << "max_files is 2";
  for (const std::string* file : {&current, &rotated1, &rotated2}) {
    EXPECT_LE(file->size(), 1000u);
    EXPECT_FALSE(file->empty());
  }
  // The newest lines are in the current file, the ones before in .1, .2.
  EXPECT_THAT(current, HasSubstr("line 039"));
  std::vector<std::string> lines1 =
      absl::StrSplit(rotated1, '\n', absl::SkipEmpty());
  std::vector<std::string> lines_now =
      absl::StrSplit(current, '\n', absl::SkipEmpty());
  ASSERT_FALSE(lines1.empty());
  ASSERT_FALSE(lines_now.empty());
  const int last_of_1 =
      std::stoi(lines1.back().substr(lines1.back().find("line ") + 5, 3));
  const int first_now = std::stoi(
      lines_now.front().substr(lines_now.front().find("line ") + 5, 3));
  EXPECT_EQ(last_of_1 + 1, first_now);
  EXPECT_THAT(rotated2, Not(HasSubstr("line 000"))) << "oldest was dropped";
}

TEST_F(LoggingTest, RotationContinuesAnExistingFilesSize) {
  const std::string dir = absl::StrCat(TestDir(), "/rotation_existing");
  ASSERT_EQ(system(absl::StrCat("rm -rf ", dir, " && mkdir -p ", dir).c_str()),
            0);
  {
    std::ofstream existing(dir + "/pre.log");
    existing << std::string(950, 'o') << "\n";
  }
  Options options;
  options.program_name = "pre";
  options.log_dir = dir;
  options.max_file_bytes = 1000;
  ASSERT_TRUE(Init(options).ok());
  SetStderrLogging(false);
  LOG(INFO) << "does not fit after 951 bytes";
  Flush();
  EXPECT_EQ(ReadFile(dir + "/pre.log.1").size(), 951u);
  EXPECT_THAT(ReadFile(dir + "/pre.log"), HasSubstr("does not fit"));
}

TEST_F(LoggingTest, InitRejectsRotationWithoutFiles) {
  Options options;
  options.program_name = "x";
  options.max_file_bytes = 10;
  options.max_files = 0;
  EXPECT_EQ(Init(options).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace logging
}  // namespace cairn
