// Cairn's one logging facility: glog/Mesos-style LOG, VLOG and CHECK macros.
//
//   LOG(INFO) << "elected leader " << id;
//   VLOG(2) << "sent " << n << " accepts";      // only when Verbosity() >= 2
//   CHECK(promised <= ballot) << "ballot went backwards";
//   CHECK_EQ(a, b);  CHECK_OK(storage->Persist(action));
//   LOG(FATAL) << "unrecoverable";              // flushes, then aborts
//
// Every emitted message is one line, to stderr and (after Init() with a log
// directory) appended to `<log_dir>/<program>.log`. The text format (the
// default) is glog's:
//
//   I20261125 09:12:01.123456 12345 replica.cc:42] message
//   ^severity ^local date/time        ^tid ^file:line
//
// The JSON-lines format (Options::format = kJson) writes one object a line:
//
//   {"time":"2026-11-25T09:12:01.123456Z","level":"INFO","component":"log",
//    "program":"cairn-master","thread":12345,"file":"replica.cc","line":42,
//    "message":"...","request_id":"r-1"}
//
// "component" is the directory of the source file ("master", "log",
// "common"; the program name for a file without one) unless the log context
// names one. The log context (ScopedContext) adds its keys, e.g. a request
// id or an event position, to every JSON line written on that thread while
// it is in scope; the text format does not show them.
//
// Rotation: with Options::max_file_bytes > 0, a line that would take the
// file past that size first rotates it: `<program>.log.<k>` becomes
// `.log.<k+1>` (the oldest beyond max_files is deleted), `<program>.log`
// becomes `.log.1`, and a new `<program>.log` is started. LogFilePath()
// always names the current file.
//
// Cost when disabled: a LOG/VLOG statement whose severity or verbosity is off
// evaluates none of its `<<` operands and formats nothing; it costs one relaxed
// atomic load. CHECK conditions are always evaluated; the message operands only
// on failure. DCHECK evaluates nothing when NDEBUG is defined.
//
// Thread safety: all functions and macros may be used from any thread at any
// time. Whole lines never interleave: each line is written under one mutex.
// Verbosity and minimum level are atomics and may change while others log.
// A ScopedContext belongs to the thread that made it.

#ifndef CAIRN_COMMON_LOGGING_H_
#define CAIRN_COMMON_LOGGING_H_

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace cairn {
namespace logging {

// Ordered: a message is emitted when its severity >= MinLevel().
enum class Severity : int {
  kInfo = 0,
  kWarning = 1,
  kError = 2,
  kFatal = 3,
};

// 'I', 'W', 'E' or 'F'.
char SeverityLetter(Severity severity);

// "INFO", "WARNING", "ERROR" or "FATAL".
const char* SeverityName(Severity severity);

// Key/value pairs attached to log lines, in the order they were set.
using LogContext = std::vector<std::pair<std::string, std::string>>;

// One log message, before formatting.
struct LogLine {
  Severity severity = Severity::kInfo;
  absl::Time time;
  int64_t thread_id = 0;  // kernel thread id (gettid)
  std::string file;       // basename of the source file
  int line = 0;
  std::string message;    // the streamed text, without a trailing newline
  std::string component;  // see the file comment
  std::string program;    // the program name given to Init()
  LogContext context;     // the thread's log context when it was emitted
};

enum class Format { kText, kJson };

// Returns the text form of `line` without a trailing newline, e.g.
// "I20261125 09:12:01.123456 12345 file.cc:42] message". Uses local time.
std::string FormatLogLine(const LogLine& line);

// Returns the JSON-lines form of `line` (one object, no trailing newline):
// the fields of the file comment, time in UTC with microseconds, then the
// context's keys (a key that repeats a fixed field's name is written as
// "ctx_<key>" so the object has unique names).
std::string FormatJsonLine(const LogLine& line);

// Parses "text" or "json". kInvalidArgument names the value otherwise.
absl::StatusOr<Format> ParseFormat(absl::string_view name);

// Sets keys of the calling thread's log context for its lifetime; on
// destruction the previous values come back. Empty values are ignored, so
// `ScopedContext ctx({{"request_id", maybe_empty}})` is always safe.
//
//   logging::ScopedContext ctx({{"request_id", id}, {"event", "42"}});
//   LOG(INFO) << "accepted";  // JSON: ..."request_id":"r-1","event":"42"}
//
// REQUIRES: destroyed on the thread that made it, in reverse order of
// creation (as scopes are).
class ScopedContext {
 public:
  ScopedContext(
      std::initializer_list<std::pair<std::string, std::string>> entries);
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;
  ~ScopedContext();

 private:
  size_t pushed_ = 0;
};

// The calling thread's current log context (outermost first).
LogContext CurrentContext();

// How the facility writes; see Init(const Options&).
struct Options {
  // Basename used for the file name and the "program" field (argv[0] is
  // fine: the directory is dropped). Empty: "cairn".
  std::string program_name;
  // Empty: no file, stderr only.
  std::string log_dir;
  Format format = Format::kText;  // for stderr and the file alike
  // Rotate the file before it would exceed this size; 0 never rotates.
  uint64_t max_file_bytes = 0;
  // Rotated files kept besides the current one (`.1` newest .. `.N`
  // oldest). REQUIRES: >= 1 when max_file_bytes > 0.
  int max_files = 5;
};

// Sets the program name, format and rotation and, when `log_dir` is
// non-empty, also appends every line to `<log_dir>/<program>.log`
// (line-buffered; flushed explicitly on WARNING and above). May be called
// again to switch files; an empty `log_dir` stops file output.
// Returns kInvalidArgument for max_files < 1 with rotation on (nothing
// changes), or the errno-derived status (e.g. kNotFound, kPermissionDenied)
// if the file cannot be opened; logging to stderr continues in that case.
absl::Status Init(const Options& options);

// Init() with the text format and no rotation.
absl::Status Init(absl::string_view program_name, absl::string_view log_dir);

// Path of the current log file, or "" when logging only to stderr. Rotated
// files are this path plus ".1", ".2", ...
std::string LogFilePath();

// The directory of the log file, or "" when logging only to stderr; what
// an HTTP server attaches for /files/read.
std::string LogDirectory();

// Whether lines go to stderr (default true; FATAL always does). Turning it off
// is meant for daemons that log to a file and for noisy tests.
void SetStderrLogging(bool enabled);

// VLOG(n) statements are emitted when n <= Verbosity(). Default 0.
void SetVerbosity(int verbosity);
int Verbosity();

// LOG statements below `severity` are dropped (VLOG counts as kInfo).
// FATAL is always emitted. Default kInfo.
void SetMinLevel(Severity severity);
Severity MinLevel();

// Test hook: every emitted line is also passed to `sink` (stderr and file
// output continue). An empty function removes the sink. The sink runs under
// the logging mutex, so it must not log itself.
void SetSinkForTesting(std::function<void(const LogLine&)> sink);

// Flushes stderr and the log file.
void Flush();

namespace internal {

// Relaxed copies of the settings above, read by the macros.
bool IsOn(Severity severity);
bool VlogIsOn(int level);

// Collects one message; emits it on destruction.
class LogMessage {
 public:
  LogMessage(const char* file, int line, Severity severity);
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  ~LogMessage();

  std::ostream& stream() { return stream_; }

 protected:
  // Emits the line now (used by LogMessageFatal before aborting).
  void Emit();

 private:
  const char* file_;
  int line_;
  Severity severity_;
  bool emitted_ = false;
  std::ostringstream stream_;
};

// A FATAL message: emits, flushes all outputs, then aborts.
class LogMessageFatal : public LogMessage {
 public:
  LogMessageFatal(const char* file, int line);
  // `failure` is the "Check failed: ..." text of a CHECK_op (may be null).
  LogMessageFatal(const char* file, int line,
                  std::unique_ptr<std::string> failure);
  [[noreturn]] ~LogMessageFatal();
};

// Turns a `std::ostream&` into void so both branches of the macros' ?: agree.
// `&` binds looser than `<<` and tighter than `?:`.
struct Voidify {
  void operator&(std::ostream&) {}
};

// ---- CHECK_op support ------------------------------------------------------

template <typename T, typename = void>
struct IsStreamable : std::false_type {};
template <typename T>
struct IsStreamable<T, std::void_t<decltype(std::declval<std::ostream&>()
                                            << std::declval<const T&>())>>
    : std::true_type {};

// Prints a CHECK_op operand: streamable values as themselves, chars as
// numbers too, enums without operator<< as their underlying value.
template <typename T>
void PrintCheckOperand(std::ostream& os, const T& v) {
  if constexpr (std::is_same_v<T, char> || std::is_same_v<T, signed char> ||
                std::is_same_v<T, unsigned char>) {
    os << "'" << v << "' (" << static_cast<int>(v) << ")";
  } else if constexpr (std::is_same_v<T, std::nullptr_t>) {
    os << "nullptr";
  } else if constexpr (IsStreamable<T>::value) {
    os << v;
  } else if constexpr (std::is_enum_v<T>) {
    os << static_cast<std::underlying_type_t<T>>(v);
  } else {
    os << "(unprintable value)";
  }
}

template <typename A, typename B>
std::unique_ptr<std::string> MakeCheckOpString(const A& a, const B& b,
                                               const char* expr) {
  std::ostringstream os;
  os << "Check failed: " << expr << " (";
  PrintCheckOperand(os, a);
  os << " vs. ";
  PrintCheckOperand(os, b);
  os << ") ";
  return std::make_unique<std::string>(os.str());
}

template <typename T>
constexpr bool kIsCheckInteger =
    std::is_integral_v<T> && !std::is_same_v<T, bool>;

// Integer comparisons are value-correct across signedness (like C++20's
// std::cmp_less), so CHECK_EQ(v.size(), 3) neither warns nor lies.
template <typename A, typename B>
constexpr bool CheckEq(const A& a, const B& b) {
  if constexpr (kIsCheckInteger<A> && kIsCheckInteger<B> &&
                std::is_signed_v<A> != std::is_signed_v<B>) {
    if constexpr (std::is_signed_v<A>) {
      return a >= 0 && static_cast<std::make_unsigned_t<A>>(a) == b;
    } else {
      return b >= 0 && a == static_cast<std::make_unsigned_t<B>>(b);
    }
  } else {
    return a == b;
  }
}
template <typename A, typename B>
constexpr bool CheckLt(const A& a, const B& b) {
  if constexpr (kIsCheckInteger<A> && kIsCheckInteger<B> &&
                std::is_signed_v<A> != std::is_signed_v<B>) {
    if constexpr (std::is_signed_v<A>) {
      return a < 0 || static_cast<std::make_unsigned_t<A>>(a) < b;
    } else {
      return b >= 0 && a < static_cast<std::make_unsigned_t<B>>(b);
    }
  } else {
    return a < b;
  }
}
template <typename A, typename B>
constexpr bool CheckNe(const A& a, const B& b) {
  return !CheckEq(a, b);
}
template <typename A, typename B>
constexpr bool CheckLe(const A& a, const B& b) {
  return !CheckLt(b, a);
}
template <typename A, typename B>
constexpr bool CheckGt(const A& a, const B& b) {
  return CheckLt(b, a);
}
template <typename A, typename B>
constexpr bool CheckGe(const A& a, const B& b) {
  return !CheckLt(a, b);
}

#define CAIRN_DEFINE_CHECK_OP_IMPL(name)                                 \
  template <typename A, typename B>                                      \
  std::unique_ptr<std::string> Check##name##Impl(const A& a, const B& b, \
                                                 const char* expr) {     \
    if (ABSL_PREDICT_TRUE(Check##name(a, b))) return nullptr;            \
    return MakeCheckOpString(a, b, expr);                                \
  }
CAIRN_DEFINE_CHECK_OP_IMPL(Eq)
CAIRN_DEFINE_CHECK_OP_IMPL(Ne)
CAIRN_DEFINE_CHECK_OP_IMPL(Lt)
CAIRN_DEFINE_CHECK_OP_IMPL(Le)
CAIRN_DEFINE_CHECK_OP_IMPL(Gt)
CAIRN_DEFINE_CHECK_OP_IMPL(Ge)
#undef CAIRN_DEFINE_CHECK_OP_IMPL

// CHECK_OK accepts a Status or a StatusOr<T>.
inline const absl::Status& AsStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& AsStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

}  // namespace internal
}  // namespace logging
}  // namespace cairn

// ---- Macros ----------------------------------------------------------------

#define CAIRN_LOG_SEVERITY_INFO ::cairn::logging::Severity::kInfo
#define CAIRN_LOG_SEVERITY_WARNING ::cairn::logging::Severity::kWarning
#define CAIRN_LOG_SEVERITY_ERROR ::cairn::logging::Severity::kError
#define CAIRN_LOG_SEVERITY_FATAL ::cairn::logging::Severity::kFatal

#define CAIRN_LOG_MESSAGE_INFO                               \
  ::cairn::logging::internal::LogMessage(__FILE__, __LINE__, \
                                         CAIRN_LOG_SEVERITY_INFO)
#define CAIRN_LOG_MESSAGE_WARNING                            \
  ::cairn::logging::internal::LogMessage(__FILE__, __LINE__, \
                                         CAIRN_LOG_SEVERITY_WARNING)
#define CAIRN_LOG_MESSAGE_ERROR                              \
  ::cairn::logging::internal::LogMessage(__FILE__, __LINE__, \
                                         CAIRN_LOG_SEVERITY_ERROR)
#define CAIRN_LOG_MESSAGE_FATAL \
  ::cairn::logging::internal::LogMessageFatal(__FILE__, __LINE__)

// LOG(INFO|WARNING|ERROR|FATAL) << ...;
// LOG(FATAL) is a plain statement (no ?:) so the compiler sees it never
// returns.
#define LOG(severity) CAIRN_LOG_##severity
#define CAIRN_LOG_INFO LOG_IF(INFO, true)
#define CAIRN_LOG_WARNING LOG_IF(WARNING, true)
#define CAIRN_LOG_ERROR LOG_IF(ERROR, true)
#define CAIRN_LOG_FATAL CAIRN_LOG_MESSAGE_FATAL.stream()

// LOG_IF(severity, cond) << ...;  logs only when `cond` is true.
#define LOG_IF(severity, cond)                                                 \
  !((cond) && ::cairn::logging::internal::IsOn(CAIRN_LOG_SEVERITY_##severity)) \
      ? (void)0                                                                \
      : ::cairn::logging::internal::Voidify() &                                \
            CAIRN_LOG_MESSAGE_##severity.stream()

// VLOG(n) << ...;  emitted at INFO when n <= Verbosity().
#define VLOG(level)                                                    \
  !::cairn::logging::internal::VlogIsOn(level)                         \
      ? (void)0                                                        \
      : ::cairn::logging::internal::Voidify() &                        \
            ::cairn::logging::internal::LogMessage(                    \
                __FILE__, __LINE__, ::cairn::logging::Severity::kInfo) \
                .stream()

// Whether VLOG(n) would emit; for guarding expensive debug-only work.
#define VLOG_IS_ON(level) (::cairn::logging::internal::VlogIsOn(level))

// CHECK(cond) << ...;  aborts with "Check failed: cond ..." when false.
#define CHECK(cond)                                                       \
  ABSL_PREDICT_TRUE(cond)                                                 \
  ? (void)0                                                               \
  : ::cairn::logging::internal::Voidify() &                               \
          ::cairn::logging::internal::LogMessageFatal(__FILE__, __LINE__) \
                  .stream()                                               \
              << "Check failed: " #cond " "

// CHECK_EQ(a, b) << ...;  each operand is evaluated exactly once; on failure
// both values are printed.
#define CAIRN_CHECK_OP_(name, op, a, b)                                        \
  while (::std::unique_ptr<::std::string> cairn_check_failure_ =               \
             ::cairn::logging::internal::Check##name##Impl((a), (b),           \
                                                           #a " " #op " " #b)) \
  ::cairn::logging::internal::LogMessageFatal(                                 \
      __FILE__, __LINE__, ::std::move(cairn_check_failure_))                   \
      .stream()

#define CHECK_EQ(a, b) CAIRN_CHECK_OP_(Eq, ==, a, b)
#define CHECK_NE(a, b) CAIRN_CHECK_OP_(Ne, !=, a, b)
#define CHECK_LT(a, b) CAIRN_CHECK_OP_(Lt, <, a, b)
#define CHECK_LE(a, b) CAIRN_CHECK_OP_(Le, <=, a, b)
#define CHECK_GT(a, b) CAIRN_CHECK_OP_(Gt, >, a, b)
#define CHECK_GE(a, b) CAIRN_CHECK_OP_(Ge, >=, a, b)

// CHECK_OK(status_or_statusor_expr) << ...;  aborts printing the status.
#define CHECK_OK(expr)                                                     \
  for (const ::absl::Status cairn_check_ok_status_ =                       \
           ::cairn::logging::internal::AsStatus(expr);                     \
       ABSL_PREDICT_FALSE(!cairn_check_ok_status_.ok());)                  \
  ::cairn::logging::internal::LogMessageFatal(__FILE__, __LINE__).stream() \
      << "Check failed: " #expr " is OK, got: " << cairn_check_ok_status_  \
      << " "

// DCHECK*: like CHECK* in debug builds; in NDEBUG builds nothing is evaluated
// (operands must still compile).
#ifndef NDEBUG
#define DCHECK(cond) CHECK(cond)
#define DCHECK_EQ(a, b) CHECK_EQ(a, b)
#define DCHECK_NE(a, b) CHECK_NE(a, b)
#define DCHECK_LT(a, b) CHECK_LT(a, b)
#define DCHECK_LE(a, b) CHECK_LE(a, b)
#define DCHECK_GT(a, b) CHECK_GT(a, b)
#define DCHECK_GE(a, b) CHECK_GE(a, b)
#define DCHECK_OK(expr) CHECK_OK(expr)
#else
#define CAIRN_DCHECK_NOP_(cond) \
  while (false && (cond)) CHECK(cond)
#define DCHECK(cond) CAIRN_DCHECK_NOP_(cond)
#define DCHECK_EQ(a, b) \
  CAIRN_DCHECK_NOP_(::cairn::logging::internal::CheckEq((a), (b)))
#define DCHECK_NE(a, b) \
  CAIRN_DCHECK_NOP_(::cairn::logging::internal::CheckNe((a), (b)))
#define DCHECK_LT(a, b) \
  CAIRN_DCHECK_NOP_(::cairn::logging::internal::CheckLt((a), (b)))
#define DCHECK_LE(a, b) \
  CAIRN_DCHECK_NOP_(::cairn::logging::internal::CheckLe((a), (b)))
#define DCHECK_GT(a, b) \
  CAIRN_DCHECK_NOP_(::cairn::logging::internal::CheckGt((a), (b)))
#define DCHECK_GE(a, b) \
  CAIRN_DCHECK_NOP_(::cairn::logging::internal::CheckGe((a), (b)))
#define DCHECK_OK(expr) \
  CAIRN_DCHECK_NOP_(::cairn::logging::internal::AsStatus(expr).ok())
#endif

#endif  // CAIRN_COMMON_LOGGING_H_
