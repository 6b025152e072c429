// Command-line parsing for cairnctl: a subcommand, its positional
// arguments, `--flag=value` / `--flag value` / `--bool` flags (global or the
// subcommand's own, anywhere on the line) and, after `--`, the arguments of
// `run`'s command, untouched.
//
// Flag names compare with '_' and '-' alike (`--max_grace_period` is
// `--max-grace-period`). A flag the subcommand does not know, a value flag
// without a value, or a value for a bool flag other than true/false is a
// usage error (kInvalidArgument naming the flag).
//
// Thread safety: pure functions.

#ifndef CAIRN_CLI_ARGS_H_
#define CAIRN_CLI_ARGS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace cairn::cli {

struct FlagSpec {
  std::string name;          // without dashes, e.g. "max-grace-period"
  bool takes_value = true;   // false: a bool flag
};

struct CommandLine {
  std::string command;                      // "" when none was given
  std::vector<std::string> positional;      // after the command
  std::map<std::string, std::string> flags; // canonical name -> value
  std::vector<std::string> rest;            // after "--"
  bool dashdash = false;                    // "--" was given

  // The flag's value, or nullopt when not given.
  std::optional<std::string> Get(absl::string_view name) const;
  // A bool flag: true when given without a value or as "true".
  bool Bool(absl::string_view name) const;
};

// The name with '_' turned into '-'.
std::string CanonicalFlagName(absl::string_view name);

// Parses argv (without argv[0]). `flags_of(command)` returns the flags the
// command accepts besides `global` ("" before the command is known).
// Returns kInvalidArgument for a usage error.
absl::StatusOr<CommandLine> ParseCommandLine(
    const std::vector<std::string>& args, const std::vector<FlagSpec>& global,
    const std::map<std::string, std::vector<FlagSpec>>& commands);

// "60s", "1m30s", "500ms" (absl::ParseDuration) or a bare number of
// seconds ("2.5"). kInvalidArgument naming `flag` otherwise, or when
// negative.
absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view flag,
                                                 absl::string_view value);

// A non-negative number ("0.5", "32"). kInvalidArgument naming `flag`.
absl::StatusOr<double> ParseNumberFlag(absl::string_view flag,
                                       absl::string_view value);

}  // namespace cairn::cli

#endif  // CAIRN_CLI_ARGS_H_
