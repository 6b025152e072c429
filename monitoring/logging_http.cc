#include "monitoring/logging_http.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/logging.h"

namespace cairn::monitoring {
namespace {

// {"error": message, "field": field}, as the APIs answer bad input.
http::Response BadRequest(absl::string_view message, absl::string_view field) {
  return http::Response::Json(
      400, absl::StrCat("{\"error\":", http::JsonQuote(message),
                        ",\"field\":", http::JsonQuote(field), "}"));
}

}  // namespace

absl::StatusOr<absl::Duration> ParseMesosDuration(absl::string_view text) {
  size_t unit_at = 0;
  while (unit_at < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[unit_at])) ||
          text[unit_at] == '.')) {
    ++unit_at;
  }
  const absl::string_view number = text.substr(0, unit_at);
  const absl::string_view unit = text.substr(unit_at);
  double value = 0;
  if (number.empty() || !absl::SimpleAtod(number, &value)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "duration '", text, "' does not start with a non-negative number"));
  }
  static constexpr std::pair<const char*, absl::Duration> kUnits[] = {
      {"ns", absl::Nanoseconds(1)},  {"us", absl::Microseconds(1)},
      {"ms", absl::Milliseconds(1)}, {"secs", absl::Seconds(1)},
      {"mins", absl::Minutes(1)},    {"hrs", absl::Hours(1)},
      {"days", absl::Hours(24)},     {"weeks", absl::Hours(24 * 7)},
  };
  for (const auto& [name, size] : kUnits) {
    if (unit == name) return value * size;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("duration '", text,
                   "' has no unit of ns, us, ms, secs, mins, hrs, days, "
                   "weeks"));
}

VerbosityToggle::VerbosityToggle(int original_level)
    : original_level_(original_level), thread_([this] { Run(); }) {}

VerbosityToggle::~VerbosityToggle() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (reverts_at_.has_value()) RevertLocked();
  }
  cv_.notify_all();
  thread_.join();
}

absl::Status VerbosityToggle::Toggle(int level, absl::Duration duration) {
  if (level < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("level ", level, " is negative"));
  }
  if (level < original_level_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "level ", level, " is below the original level ", original_level_));
  }
  if (duration == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError("duration is too long");
  }
  if (duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "duration ", absl::FormatDuration(duration), " is not positive"));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (level == original_level_) {
      RevertLocked();
    } else {
      reverts_at_ = absl::Now() + duration;
      logging::SetVerbosity(level);
      LOG(INFO) << "logging: verbosity " << level << " for "
                << absl::FormatDuration(duration) << " (then "
                << original_level_ << ")";
    }
  }
  cv_.notify_all();
  return absl::OkStatus();
}

VerbosityToggle::State VerbosityToggle::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  State state;
  state.level = logging::Verbosity();
  state.original_level = original_level_;
  state.reverts_at = reverts_at_;
  return state;
}

void VerbosityToggle::TEST_RevertIfDue(absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (reverts_at_.has_value() && now >= *reverts_at_) RevertLocked();
}

void VerbosityToggle::RevertLocked() {
  const bool was_pending = reverts_at_.has_value();
  reverts_at_.reset();
  logging::SetVerbosity(original_level_);
  if (was_pending) {
    LOG(INFO) << "logging: verbosity reverted to " << original_level_;
  }
}

void VerbosityToggle::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (!reverts_at_.has_value()) {
      cv_.wait(lock);
      continue;
    }
    const absl::Duration left = *reverts_at_ - absl::Now();
    if (left <= absl::ZeroDuration()) {
      RevertLocked();
      continue;
    }
    // In slices, so a far deadline cannot overflow the wait's clock.
    cv_.wait_for(lock,
                 absl::ToChronoNanoseconds(std::min(left, absl::Hours(1))));
  }
}

VerbosityToggle* ProcessVerbosityToggle() {
  static VerbosityToggle* toggle = new VerbosityToggle(logging::Verbosity());
  return toggle;
}

http::Response LevelResponse(const VerbosityToggle& toggle) {
  const VerbosityToggle::State state = toggle.Get();
  return http::Response::Json(
      200, absl::StrCat(
               "{\"level\":", state.level,
               ",\"original_level\":", state.original_level, ",\"reverts_at\":",
               state.reverts_at.has_value()
                   ? absl::StrFormat("%.6f",
                                     absl::ToDoubleSeconds(*state.reverts_at -
                                                           absl::UnixEpoch()))
                   : std::string("null"),
               "}"));
}

http::Response ToggleResponse(VerbosityToggle* toggle,
                              const http::Request& request) {
  const auto level = request.query.find("level");
  const auto duration = request.query.find("duration");
  const bool has_level = level != request.query.end();
  const bool has_duration = duration != request.query.end();
  if (!has_level && !has_duration) {
    return http::Response::Text(200, absl::StrCat(toggle->Get().level, "\n"));
  }
  if (!has_level)
    return BadRequest("Expecting 'level=value' in query", "level");
  if (!has_duration) {
    return BadRequest("Expecting 'duration=value' in query", "duration");
  }
  int n = 0;
  if (!absl::SimpleAtoi(level->second, &n)) {
    return BadRequest(
        absl::StrCat("level '", level->second, "' is not an integer"), "level");
  }
  const int original = toggle->Get().original_level;
  if (n < 0 || n < original) {
    return BadRequest(absl::StrCat("level ", n, " is below the original level ",
                                   original, " (or negative)"),
                      "level");
  }
  absl::StatusOr<absl::Duration> d = ParseMesosDuration(duration->second);
  if (!d.ok()) return BadRequest(d.status().message(), "duration");
  // Only the duration can be wrong now (the level was checked above).
  absl::Status toggled = toggle->Toggle(n, *d);
  if (!toggled.ok()) return BadRequest(toggled.message(), "duration");
  return LevelResponse(*toggle);
}

void ServeLoggingToggle(http::Server* server, VerbosityToggle* toggle) {
  for (const char* method : {"GET", "POST"}) {
    server->HandleSync(method, kLoggingTogglePath,
                       [toggle](const http::Request& request) {
                         return ToggleResponse(toggle, request);
                       });
  }
  server->HandleSync("GET", kLoggingLevelPath, [toggle](const http::Request&) {
    return LevelResponse(*toggle);
  });
}

}  // namespace cairn::monitoring
