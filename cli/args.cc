#include "cli/args.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/match.h"

namespace cairn::cli {
namespace {

const FlagSpec* FindSpec(const std::vector<FlagSpec>& specs,
                         const std::string& name) {
  for (const FlagSpec& spec : specs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

}  // namespace

std::optional<std::string> CommandLine::Get(absl::string_view name) const {
  auto it = flags.find(CanonicalFlagName(name));
  if (it == flags.end()) return std::nullopt;
  return it->second;
}

bool CommandLine::Bool(absl::string_view name) const {
  std::optional<std::string> value = Get(name);
  return value.has_value() && *value == "true";
}

std::string CanonicalFlagName(absl::string_view name) {
  return absl::StrReplaceAll(name, {{"_", "-"}});
}

absl::StatusOr<CommandLine> ParseCommandLine(
    const std::vector<std::string>& args, const std::vector<FlagSpec>& global,
    const std::map<std::string, std::vector<FlagSpec>>& commands) {
  CommandLine line;
  const std::vector<FlagSpec> none;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      line.dashdash = true;
      line.rest.assign(args.begin() + i + 1, args.end());
      break;
    }
    if (!absl::StartsWith(arg, "-") || arg == "-") {
      if (line.command.empty()) {
        line.command = arg;
        if (commands.count(arg) == 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("unknown command '", arg,
                           "' (see 'cairnctl help')"));
        }
      } else {
        line.positional.push_back(arg);
      }
      continue;
    }
    absl::string_view body = arg;
    body.remove_prefix(absl::StartsWith(body, "--") ? 2 : 1);
    std::string name(body);
    std::optional<std::string> value;
    if (size_t eq = body.find('='); eq != absl::string_view::npos) {
      name = std::string(body.substr(0, eq));
      value = std::string(body.substr(eq + 1));
    }
    name = CanonicalFlagName(name);
    const FlagSpec* spec = nullptr;
    if (!line.command.empty()) {
      auto it = commands.find(line.command);
      spec = FindSpec(it == commands.end() ? none : it->second, name);
    }
    if (spec == nullptr) spec = FindSpec(global, name);
    if (spec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown flag --", name,
          line.command.empty() ? ""
                               : absl::StrCat(" for '", line.command, "'")));
    }
    if (spec->takes_value) {
      if (!value.has_value()) {
        if (i + 1 >= args.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("flag --", name, " needs a value"));
        }
        value = args[++i];
      }
    } else if (!value.has_value()) {
      value = "true";
    } else {
      std::string lower = absl::AsciiStrToLower(*value);
      if (lower != "true" && lower != "false") {
        return absl::InvalidArgumentError(absl::StrCat(
            "flag --", name, " takes no value (or true/false), got '",
            *value, "'"));
      }
      value = lower;
    }
    line.flags[name] = *value;
  }
  return line;
}

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view flag,
                                                 absl::string_view value) {
  absl::Duration duration;
  double seconds = 0;
  if (absl::SimpleAtod(value, &seconds) && std::isfinite(seconds)) {
    duration = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(value, &duration) ||
             duration == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": '", value,
                     "' is not a duration (e.g. 30s, 500ms, 2m)"));
  }
  if (duration < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": must not be negative, got '", value, "'"));
  }
  return duration;
}

absl::StatusOr<double> ParseNumberFlag(absl::string_view flag,
                                       absl::string_view value) {
  double number = 0;
  if (!absl::SimpleAtod(value, &number) || !std::isfinite(number) ||
      number < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, ": '", value, "' is not a non-negative number"));
  }
  return number;
}

}  // namespace cairn::cli
