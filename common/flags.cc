#include "common/flags.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/base/call_once.h"
#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json_quote.h"

namespace cairn {
namespace {

// absl's built-in flags (--flagfile, --fromenv, --help, ...) are about parsing
// itself; setting them from the environment would be surprising.
bool IsAbslBuiltinFlag(const absl::CommandLineFlag& flag) {
  return absl::StrContains(flag.Filename(), "absl/flags/");
}


}  // namespace

std::string FlagEnvName(absl::string_view flag_name, absl::string_view prefix) {
  return absl::StrCat(prefix, absl::AsciiStrToUpper(flag_name));
}

absl::Status ApplyEnvironmentFlags(absl::string_view prefix) {
  std::vector<std::string> errors;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (IsAbslBuiltinFlag(*flag)) continue;
    const std::string env_name = FlagEnvName(name, prefix);
    const char* value = std::getenv(env_name.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      errors.push_back(
          absl::StrCat(env_name, "=\"", value, "\" for --", name, ": ", error));
    }
  }
  if (!errors.empty()) {
    std::sort(errors.begin(), errors.end());
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid flag value in environment: ", absl::StrJoin(errors, "; ")));
  }
  return absl::OkStatus();
}

std::vector<char*> ParseCommandLine(int argc, char** argv,
                                    absl::string_view usage) {
  static absl::once_flag usage_once;
  absl::call_once(usage_once, [usage] { absl::SetProgramUsageMessage(usage); });
  const absl::Status env_status = ApplyEnvironmentFlags();
  if (!env_status.ok()) {
    std::fprintf(stderr, "ERROR: %s\n", env_status.ToString().c_str());
    std::exit(1);
  }
  return absl::ParseCommandLine(argc, argv);
}

std::map<std::string, std::string> AllFlagValues() {
  std::map<std::string, std::string> values;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    values.emplace(std::string(name), flag->CurrentValue());
  }
  return values;
}

std::string FlagsAsJson() {
  std::string json = "{\"flags\":{";
  bool first = true;
  for (const auto& [name, value] : AllFlagValues()) {
    if (!first) json.push_back(',');
    first = false;
    AppendJsonQuoted(name, &json);
    json.push_back(':');
    AppendJsonQuoted(value, &json);
  }
  json.append("}}");
  return json;
}

}  // namespace cairn
