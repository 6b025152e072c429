#include "cli/exit_codes.h"

#include <string.h>

#include <csignal>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "common/task_state.h"

namespace cairn::cli {

bool IsTerminal(v1::TaskState state) {
  // TASK_UNKNOWN too: cairnctl stops waiting when the master knows nothing.
  return IsTerminalState(state) || state == v1::TASK_UNKNOWN;
}

std::optional<int> SignalOf(absl::string_view message) {
  constexpr absl::string_view kMarker = "terminated with signal ";
  size_t at = message.find(kMarker);
  if (at == absl::string_view::npos) return std::nullopt;
  absl::string_view name = message.substr(at + kMarker.size());
  name = absl::StripAsciiWhitespace(name);
  int number = 0;
  if (absl::SimpleAtoi(name, &number) && number > 0 && number < 128) {
    return number;
  }
  for (int signal = 1; signal < 65; ++signal) {
    const char* text = strsignal(signal);
    if (text != nullptr && absl::EqualsIgnoreCase(name, text)) return signal;
  }
  return std::nullopt;
}

int TaskExitCode(v1::TaskState state, absl::string_view message) {
  switch (state) {
    case v1::TASK_FINISHED:
      return kExitOk;
    case v1::TASK_FAILED: {
      constexpr absl::string_view kMarker = "exited with status ";
      size_t at = message.find(kMarker);
      if (at != absl::string_view::npos) {
        absl::string_view digits = message.substr(at + kMarker.size());
        size_t end = 0;
        while (end < digits.size() && absl::ascii_isdigit(digits[end])) ++end;
        int status = 0;
        if (absl::SimpleAtoi(digits.substr(0, end), &status) && status > 0 &&
            status < 256) {
          return status;
        }
        return kExitError;
      }
      if (std::optional<int> signal = SignalOf(message)) return 128 + *signal;
      return kExitError;
    }
    case v1::TASK_KILLED:
      return kExitKilled;
    case v1::TASK_ERROR:
    case v1::TASK_DROPPED:
      return kExitNotLaunched;
    default:
      return kExitOutcomeUnknown;
  }
}

int ExitCodeOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnavailable;
    default:
      return kExitError;
  }
}

}  // namespace cairn::cli
