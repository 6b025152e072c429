#include "common/logging.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include <mutex>

namespace cairn {
namespace logging {
namespace {

std::atomic<int> g_verbosity{0};
std::atomic<bool> g_log_to_stderr{true};
std::atomic<int> g_min_level{static_cast<int>(Severity::kInfo)};

// Output state shared by all threads. Leaked on purpose so that logging from
// static destructors and other threads during exit stays safe.
struct Outputs {
  // std::mutex rather than absl::Mutex: ThreadSanitizer cannot see into
  // Debian's uninstrumented abseil.
  std::mutex mu;  // guards every field below
  std::string program_name;
  std::string file_path;
  FILE* file = nullptr;
  std::function<void(const LogLine&)> sink;
};

Outputs& GetOutputs() {
  static Outputs* outputs = new Outputs;
  return *outputs;
}

const absl::TimeZone& LocalZone() {
  static const absl::TimeZone* zone = new absl::TimeZone(absl::LocalTimeZone());
  return *zone;
}

int64_t CurrentThreadId() {
  thread_local const int64_t tid = static_cast<int64_t>(syscall(SYS_gettid));
  return tid;
}

absl::string_view Basename(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

void WriteAll(FILE* f, const std::string& text) {
  fwrite(text.data(), 1, text.size(), f);
}

void EmitLine(const LogLine& line) {
  std::string text = FormatLogLine(line);
  text.push_back('\n');
  Outputs& out = GetOutputs();
  std::lock_guard<std::mutex> lock(out.mu);
  if (g_log_to_stderr.load(std::memory_order_relaxed) ||
      line.severity == Severity::kFatal) {
    WriteAll(stderr, text);
  }
  if (out.file != nullptr) {
    WriteAll(out.file, text);
    if (line.severity >= Severity::kWarning) fflush(out.file);
  }
  if (line.severity >= Severity::kWarning) fflush(stderr);
  if (out.sink) out.sink(line);
}

}  // namespace

char SeverityLetter(Severity severity) {
  switch (severity) {
    case Severity::kInfo:
      return 'I';
    case Severity::kWarning:
      return 'W';
    case Severity::kError:
      return 'E';
    case Severity::kFatal:
      return 'F';
  }
  return '?';
}

std::string FormatLogLine(const LogLine& line) {
  return absl::StrCat(
      std::string(1, SeverityLetter(line.severity)),
      absl::FormatTime("%Y%m%d %H:%M:%E6S", line.time, LocalZone()), " ",
      line.thread_id, " ", line.file, ":", line.line, "] ", line.message);
}

absl::Status Init(absl::string_view program_name, absl::string_view log_dir) {
  std::string program(Basename(program_name));
  if (program.empty()) program = "cairn";
  std::string path;
  FILE* file = nullptr;
  if (!log_dir.empty()) {
    path = absl::StrCat(log_dir, log_dir.back() == '/' ? "" : "/", program,
                        ".log");
    // "e": O_CLOEXEC, so forked tasks do not inherit the log file.
    file = fopen(path.c_str(), "ae");
    if (file == nullptr) {
      const int error = errno;
      return absl::Status(
          absl::ErrnoToStatusCode(error),
          absl::StrCat("cannot open log file ", path, ": ", strerror(error)));
    }
    setvbuf(file, nullptr, _IOLBF, 1 << 16);
  }
  Outputs& out = GetOutputs();
  std::lock_guard<std::mutex> lock(out.mu);
  if (out.file != nullptr) fclose(out.file);
  out.file = file;
  out.file_path = path;
  out.program_name = program;
  return absl::OkStatus();
}

std::string LogFilePath() {
  Outputs& out = GetOutputs();
  std::lock_guard<std::mutex> lock(out.mu);
  return out.file_path;
}

void SetStderrLogging(bool enabled) {
  g_log_to_stderr.store(enabled, std::memory_order_relaxed);
}

void SetVerbosity(int verbosity) {
  g_verbosity.store(verbosity, std::memory_order_relaxed);
}

int Verbosity() { return g_verbosity.load(std::memory_order_relaxed); }

void SetMinLevel(Severity severity) {
  g_min_level.store(static_cast<int>(severity), std::memory_order_relaxed);
}

Severity MinLevel() {
  return static_cast<Severity>(g_min_level.load(std::memory_order_relaxed));
}

void SetSinkForTesting(std::function<void(const LogLine&)> sink) {
  Outputs& out = GetOutputs();
  std::lock_guard<std::mutex> lock(out.mu);
  out.sink = std::move(sink);
}

void Flush() {
  Outputs& out = GetOutputs();
  std::lock_guard<std::mutex> lock(out.mu);
  fflush(stderr);
  if (out.file != nullptr) fflush(out.file);
}

namespace internal {

bool IsOn(Severity severity) {
  return static_cast<int>(severity) >=
         g_min_level.load(std::memory_order_relaxed);
}

bool VlogIsOn(int level) {
  return level <= g_verbosity.load(std::memory_order_relaxed) &&
         IsOn(Severity::kInfo);
}

LogMessage::LogMessage(const char* file, int line, Severity severity)
    : file_(file), line_(line), severity_(severity) {}

LogMessage::~LogMessage() { Emit(); }

void LogMessage::Emit() {
  if (emitted_) return;
  emitted_ = true;
  LogLine line;
  line.severity = severity_;
  line.time = absl::Now();
  line.thread_id = CurrentThreadId();
  line.file = std::string(Basename(file_));
  line.line = line_;
  line.message = stream_.str();
  EmitLine(line);
}

LogMessageFatal::LogMessageFatal(const char* file, int line)
    : LogMessage(file, line, Severity::kFatal) {}

LogMessageFatal::LogMessageFatal(const char* file, int line,
                                 std::unique_ptr<std::string> failure)
    : LogMessage(file, line, Severity::kFatal) {
  if (failure != nullptr) stream() << *failure;
}

LogMessageFatal::~LogMessageFatal() {
  Emit();
  Flush();
  abort();
}

}  // namespace internal
}  // namespace logging
}  // namespace cairn
