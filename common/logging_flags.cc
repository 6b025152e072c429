#include "common/logging_flags.h"

#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

ABSL_FLAG(std::string, log_dir, "",
          "Also append log lines to <log_dir>/<program>.log (readable through "
          "/files/read where the process serves it).");
ABSL_FLAG(std::string, log_format, "text",
          "Log line format: 'text' (glog style) or 'json' (one JSON object a "
          "line: time, level, component, thread, file, line, message and the "
          "request/event ids where known).");
ABSL_FLAG(uint64_t, max_log_size_mb, 100,
          "Rotate the log file when it would exceed this many MiB (0: never).");
ABSL_FLAG(int32_t, max_log_files, 5,
          "Rotated log files kept besides the current one (<program>.log.1 "
          "newest .. .N oldest).");
ABSL_FLAG(int32_t, v, 0, "Verbose logging level (VLOG).");

namespace cairn {
namespace logging {

absl::StatusOr<Options> OptionsFromFlags(absl::string_view program_name) {
  Options options;
  options.program_name = std::string(program_name);
  options.log_dir = absl::GetFlag(FLAGS_log_dir);
  absl::StatusOr<Format> format = ParseFormat(absl::GetFlag(FLAGS_log_format));
  if (!format.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--log_format: ", format.status().message()));
  }
  options.format = *format;
  const uint64_t size_mb = absl::GetFlag(FLAGS_max_log_size_mb);
  if (size_mb > (UINT64_MAX >> 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_log_size_mb: ", size_mb, " is too large"));
  }
  options.max_file_bytes = size_mb << 20;
  options.max_files = absl::GetFlag(FLAGS_max_log_files);
  if (options.max_file_bytes > 0 && options.max_files < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_log_files: must be at least 1, got ", options.max_files));
  }
  if (absl::GetFlag(FLAGS_v) < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--v: must be >= 0, got ", absl::GetFlag(FLAGS_v)));
  }
  return options;
}

int VerbosityFromFlags() { return absl::GetFlag(FLAGS_v); }

absl::Status InitFromOptions(const Options& options) {
  SetVerbosity(VerbosityFromFlags());
  return Init(options);
}

absl::Status InitFromFlags(absl::string_view program_name) {
  ASSIGN_OR_RETURN(Options options, OptionsFromFlags(program_name));
  return InitFromOptions(options);
}

}  // namespace logging
}  // namespace cairn
