#include "common/logging.h"

#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/json_quote.h"

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
  std::string program_name = "cairn";
  std::string file_path;
  FILE* file = nullptr;
  uint64_t file_bytes = 0;  // the current file's size, as far as we wrote it
  Format format = Format::kText;
  uint64_t max_file_bytes = 0;
  int max_files = 5;
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

// The thread's context stack: ScopedContexts push, their destructors pop.
std::vector<std::pair<std::string, std::string>>& ContextStack() {
  thread_local std::vector<std::pair<std::string, std::string>> stack;
  return stack;
}

// Opens `path` for appending (close-on-exec, line-buffered) and reports
// its current size through `*bytes`.
absl::StatusOr<FILE*> OpenLogFile(const std::string& path, uint64_t* bytes) {
  // "e": O_CLOEXEC, so forked tasks do not inherit the log file.
  FILE* file = fopen(path.c_str(), "ae");
  if (file == nullptr) {
    const int error = errno;
    return absl::Status(
        absl::ErrnoToStatusCode(error),
        absl::StrCat("cannot open log file ", path, ": ", strerror(error)));
  }
  setvbuf(file, nullptr, _IOLBF, 1 << 16);
  struct stat st;
  *bytes =
      fstat(fileno(file), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return file;
}

// Shifts `<path>.k` to `.k+1` (dropping the oldest), `<path>` to `.1`, and
// opens a fresh `<path>`. On failure the old file stays in use (if it could
// not be renamed) or file output stops (if the new one cannot be opened);
// either way a note goes to stderr, never a crash.
void RotateLocked(Outputs& out) {
  fclose(out.file);
  out.file = nullptr;
  const std::string& path = out.file_path;
  std::remove(absl::StrCat(path, ".", out.max_files).c_str());
  for (int k = out.max_files - 1; k >= 1; --k) {
    std::rename(absl::StrCat(path, ".", k).c_str(),
                absl::StrCat(path, ".", k + 1).c_str());
  }
  if (std::rename(path.c_str(), absl::StrCat(path, ".1").c_str()) != 0) {
    fprintf(stderr, "logging: cannot rotate %s: %s\n", path.c_str(),
            strerror(errno));
  }
  absl::StatusOr<FILE*> file = OpenLogFile(path, &out.file_bytes);
  if (!file.ok()) {
    fprintf(stderr, "logging: %s; logging to stderr only\n",
            std::string(file.status().message()).c_str());
    return;
  }
  out.file = *file;
}

void EmitLine(LogLine& line) {
  Outputs& out = GetOutputs();
  std::lock_guard<std::mutex> lock(out.mu);
  line.program = out.program_name;
  if (line.component.empty()) line.component = out.program_name;
  std::string text =
      out.format == Format::kJson ? FormatJsonLine(line) : FormatLogLine(line);
  text.push_back('\n');
  if (g_log_to_stderr.load(std::memory_order_relaxed) ||
      line.severity == Severity::kFatal) {
    WriteAll(stderr, text);
  }
  if (out.file != nullptr && out.max_file_bytes > 0 && out.file_bytes > 0 &&
      out.file_bytes + text.size() > out.max_file_bytes) {
    RotateLocked(out);
  }
  if (out.file != nullptr) {
    WriteAll(out.file, text);
    out.file_bytes += text.size();
    if (line.severity >= Severity::kWarning) fflush(out.file);
  }
  if (line.severity >= Severity::kWarning) fflush(stderr);
  if (out.sink) out.sink(line);
}

// The last directory of a source path ("master/leader.cc" -> "master"), or
// "" for a bare file name.
std::string SourceDirectory(absl::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return "";
  absl::string_view dir = path.substr(0, slash);
  const size_t parent = dir.rfind('/');
  return std::string(
      parent == absl::string_view::npos ? dir : dir.substr(parent + 1));
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

const char* SeverityName(Severity severity) {
  switch (severity) {
    case Severity::kInfo:
      return "INFO";
    case Severity::kWarning:
      return "WARNING";
    case Severity::kError:
      return "ERROR";
    case Severity::kFatal:
      return "FATAL";
  }
  return "UNKNOWN";
}

absl::StatusOr<Format> ParseFormat(absl::string_view name) {
  if (name == "text") return Format::kText;
  if (name == "json") return Format::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("log format '", name, "' is neither 'text' nor 'json'"));
}

std::string FormatJsonLine(const LogLine& line) {
  static constexpr const char* kFixed[] = {"time",    "level",  "component",
                                           "program", "thread", "file",
                                           "line",    "message"};
  std::string json = "{\"time\":\"";
  absl::StrAppend(
      &json,
      absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", line.time, absl::UTCTimeZone()),
      "\",\"level\":\"", SeverityName(line.severity), "\",\"component\":");
  AppendJsonQuoted(line.component, &json);
  json += ",\"program\":";
  AppendJsonQuoted(line.program, &json);
  absl::StrAppend(&json, ",\"thread\":", line.thread_id, ",\"file\":");
  AppendJsonQuoted(line.file, &json);
  absl::StrAppend(&json, ",\"line\":", line.line, ",\"message\":");
  AppendJsonQuoted(line.message, &json);
  for (const auto& [key, value] : line.context) {
    if (key == "component") continue;  // already the "component" field
    bool clashes = false;
    for (const char* fixed : kFixed) clashes = clashes || key == fixed;
    json.push_back(',');
    AppendJsonQuoted(clashes ? absl::StrCat("ctx_", key) : key, &json);
    json.push_back(':');
    AppendJsonQuoted(value, &json);
  }
  json.push_back('}');
  return json;
}

ScopedContext::ScopedContext(
    std::initializer_list<std::pair<std::string, std::string>> entries) {
  auto& stack = ContextStack();
  for (const auto& entry : entries) {
    if (entry.second.empty()) continue;
    stack.push_back(entry);
    ++pushed_;
  }
}

ScopedContext::~ScopedContext() {
  auto& stack = ContextStack();
  stack.resize(stack.size() - pushed_);
}

LogContext CurrentContext() {
  LogContext context;
  for (const auto& [key, value] : ContextStack()) {
    bool replaced = false;
    for (auto& existing : context) {
      if (existing.first == key) {
        existing.second = value;  // an inner scope wins
        replaced = true;
        break;
      }
    }
    if (!replaced) context.emplace_back(key, value);
  }
  return context;
}

std::string FormatLogLine(const LogLine& line) {
  return absl::StrCat(
      std::string(1, SeverityLetter(line.severity)),
      absl::FormatTime("%Y%m%d %H:%M:%E6S", line.time, LocalZone()), " ",
      line.thread_id, " ", line.file, ":", line.line, "] ", line.message);
}

absl::Status Init(const Options& options) {
  if (options.max_file_bytes > 0 && options.max_files < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_files must be at least 1 when rotating, got ", options.max_files));
  }
  std::string program(Basename(options.program_name));
  if (program.empty()) program = "cairn";
  const absl::string_view log_dir = options.log_dir;
  std::string path;
  FILE* file = nullptr;
  uint64_t bytes = 0;
  absl::Status status;
  if (!log_dir.empty()) {
    path = absl::StrCat(log_dir, log_dir.back() == '/' ? "" : "/", program,
                        ".log");
    absl::StatusOr<FILE*> opened = OpenLogFile(path, &bytes);
    if (opened.ok()) {
      file = *opened;
    } else {
      status = opened.status();
      path.clear();
    }
  }
  Outputs& out = GetOutputs();
  std::lock_guard<std::mutex> lock(out.mu);
  if (out.file != nullptr) fclose(out.file);
  out.file = file;
  out.file_bytes = bytes;
  out.file_path = path;
  out.program_name = program;
  out.format = options.format;
  out.max_file_bytes = options.max_file_bytes;
  out.max_files = options.max_files;
  return status;
}

absl::Status Init(absl::string_view program_name, absl::string_view log_dir) {
  Options options;
  options.program_name = std::string(program_name);
  options.log_dir = std::string(log_dir);
  return Init(options);
}

std::string LogFilePath() {
  Outputs& out = GetOutputs();
  std::lock_guard<std::mutex> lock(out.mu);
  return out.file_path;
}

std::string LogDirectory() {
  const std::string path = LogFilePath();
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return path.empty() ? "" : ".";
  return slash == 0 ? "/" : path.substr(0, slash);
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
  line.context = CurrentContext();
  for (const auto& [key, value] : line.context) {
    if (key == "component") line.component = value;
  }
  if (line.component.empty()) line.component = SourceDirectory(file_);
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
