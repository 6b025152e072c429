// Command-line flags for Cairn binaries: a thin layer over absl flags
// (declare flags with ABSL_FLAG / ABSL_DECLARE_FLAG as usual) that adds
//
//  - environment fallback, as Mesos does with MESOS_*: a flag not given on the
//    command line takes its value from CAIRN_<FLAG NAME IN UPPERCASE>, e.g.
//    --log_dir from CAIRN_LOG_DIR. Precedence: command line > environment >
//    the flag's default.
//  - a snapshot of every flag's current value, for the `/flags` endpoint.
//
// Thread safety: ParseCommandLine and ApplyEnvironmentFlags mutate global
// flag state and belong at the start of main(), before other threads exist.
// AllFlagValues and FlagsAsJson may be called from any thread.

#ifndef CAIRN_COMMON_FLAGS_H_
#define CAIRN_COMMON_FLAGS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace cairn {

// Prefix of the environment variables that supply flag values.
inline constexpr absl::string_view kFlagEnvPrefix = "CAIRN_";

// Sets the usage message (first call only), applies environment fallbacks,
// then parses the command line with absl::ParseCommandLine (so --help,
// --flagfile and unknown-flag errors behave as in absl). Returns the
// positional arguments, argv[0] first. Exits the process with status 1,
// after printing the reason to stderr, if an environment value does not parse
// or the command line is invalid.
std::vector<char*> ParseCommandLine(int argc, char** argv,
                                    absl::string_view usage);

// Sets every registered flag (except absl's own: --flagfile, --help, ...)
// whose variable `<prefix><NAME>` is set in the environment. Call it before
// the command line is parsed so that the command line wins. Returns OK, or
// kInvalidArgument naming the variable(s) whose value does not parse for the
// flag's type (those flags keep their value; the others are still applied).
absl::Status ApplyEnvironmentFlags(absl::string_view prefix = kFlagEnvPrefix);

// Returns the environment variable that feeds flag `flag_name`
// ("log_dir" -> "CAIRN_LOG_DIR").
std::string FlagEnvName(absl::string_view flag_name,
                        absl::string_view prefix = kFlagEnvPrefix);

// Returns every registered flag's name and current value (as absl prints it,
// e.g. "true", "5050", "/var/log"), sorted by name.
std::map<std::string, std::string> AllFlagValues();

// Returns AllFlagValues() as Mesos's /flags body:
// {"flags":{"log_dir":"/var/log","port":"5050"}} (values are strings).
std::string FlagsAsJson();

}  // namespace cairn

#endif  // CAIRN_COMMON_FLAGS_H_
