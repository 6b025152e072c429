// The logging flags every Cairn binary shares, defined once here so that a
// main links this library instead of declaring its own:
//
//   --log_dir=DIR            also append lines to DIR/<program>.log
//   --log_format=text|json   glog-style text (default) or JSON lines
//   --max_log_size_mb=N      rotate the log file beyond N MiB (0: never)
//   --max_log_files=N        rotated files kept (<program>.log.1 .. .N)
//   --v=N                    VLOG verbosity
//
// (With common/flags.h each also reads CAIRN_LOG_DIR, CAIRN_LOG_FORMAT, ...)
//
//   std::vector<char*> args = cairn::ParseCommandLine(argc, argv, kUsage);
//   absl::StatusOr<logging::Options> log = logging::OptionsFromFlags("x");
//   if (!log.ok()) { std::cerr << log.status().message(); return 2; }
//   absl::Status s = logging::InitFromOptions(*log);  // warn on failure
//
// Thread safety: call at the start of main(), like flag parsing.

#ifndef CAIRN_COMMON_LOGGING_FLAGS_H_
#define CAIRN_COMMON_LOGGING_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/logging.h"

ABSL_DECLARE_FLAG(std::string, log_dir);
ABSL_DECLARE_FLAG(std::string, log_format);
ABSL_DECLARE_FLAG(uint64_t, max_log_size_mb);
ABSL_DECLARE_FLAG(int32_t, max_log_files);
ABSL_DECLARE_FLAG(int32_t, v);

namespace cairn {
namespace logging {

// The Options the flags describe for `program_name`. kInvalidArgument,
// naming the flag, for a --log_format other than text/json, a negative
// --v, or --max_log_files < 1 while --max_log_size_mb > 0.
absl::StatusOr<Options> OptionsFromFlags(absl::string_view program_name);

// The verbosity --v asks for.
int VerbosityFromFlags();

// Sets the verbosity from --v and calls Init(options); returns Init's
// status (logging to stderr goes on when the file cannot be opened).
absl::Status InitFromOptions(const Options& options);

// OptionsFromFlags + InitFromOptions in one call, for mains that treat
// every failure alike.
absl::Status InitFromFlags(absl::string_view program_name);

}  // namespace logging
}  // namespace cairn

#endif  // CAIRN_COMMON_LOGGING_FLAGS_H_
