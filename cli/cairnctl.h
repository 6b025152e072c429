// cairnctl: the operator's command line for a Cairn cluster. Cairnctl()
// is the whole program behind main(): parses the arguments (args.h),
// dispatches to a subcommand (commands.h, events.h, run.h) and returns the
// exit code (exit_codes.h). `cairnctl help [command]` prints the usage.
//
// Thread safety: one call at a time (it reads the environment).

#ifndef CAIRN_CLI_CAIRNCTL_H_
#define CAIRN_CLI_CAIRNCTL_H_

#include <ostream>
#include <string>
#include <vector>

namespace cairn::cli {

// `args` without argv[0]. Writes results to `out`, errors and progress to
// `err`.
int Cairnctl(const std::vector<std::string>& args, std::ostream& out,
             std::ostream& err);

}  // namespace cairn::cli

#endif  // CAIRN_CLI_CAIRNCTL_H_
