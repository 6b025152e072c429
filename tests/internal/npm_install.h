// Test plumbing for tests that drive node scripts (npm_clients_test,
// dashboard_browser_test): finding node and npm, `npm ci` of a package lock
// from the runfiles into a scratch directory, and waiting on a script's
// exit or on the "@@ ..." progress lines it prints.
//
//   NpmCiOptions npm;
//   npm.runfiles_dir = "cairn/tests/npm/dashboard";
//   npm.files = {"package.json", "package-lock.json", "script.js"};
//   npm.dir = absl::StrCat(test_tmpdir, "/dashboard");
//   npm.what = "playwright-core";
//   absl::StatusOr<std::string> dir = NpmCiInto(npm);
//   ... Process::Start({*FindExecutable("node"), *dir + "/script.js"}, log)
//   WaitForLine(*script, "READY", "", absl::Now() + absl::Seconds(60));
//
// Thread safety: call from the test's main thread (NpmCiInto sets an
// environment variable).

#ifndef CAIRN_TESTS_INTERNAL_NPM_INSTALL_H_
#define CAIRN_TESTS_INTERNAL_NPM_INSTALL_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/internal/process.h"

namespace cairn::tests {

// `name` found in $PATH (in /usr/local/bin:/usr/bin:/bin when PATH is unset
// or empty), or nullopt.
std::optional<std::string> FindExecutable(const std::string& name);

// The bytes of the file at `path` ("" if unreadable).
std::string ReadFile(const std::string& path);

// Waits until `process` exits: its ExitDescription() ("exited 0"), or
// kDeadlineExceeded (with its output) when `deadline` passes first.
absl::StatusOr<std::string> WaitForExit(Process& process, absl::Time deadline);

// Waits until `process` printed a line that starts with "@@ <prefix>" and
// contains `infix` ("" for any); returns that line without "@@ ".
// kAborted, with the output, when the process exited or printed a line
// starting with "@@ FAIL" first (then it first waits up to 15 s for the
// script to exit: a browser script closes its browser); kDeadlineExceeded
// after `deadline`.
absl::StatusOr<std::string> WaitForLine(Process& process,
                                        const std::string& prefix,
                                        const std::string& infix,
                                        absl::Time deadline);

struct NpmCiOptions {
  // Where package.json, package-lock.json and the scripts are in the
  // runfiles, e.g. "cairn/tests/npm/dashboard".
  std::string runfiles_dir;
  // The files (names in runfiles_dir) copied into `dir`.
  std::vector<std::string> files;
  // Created if missing; node_modules, npm's cache and npm-ci.log go there.
  std::string dir;
  // How long `npm ci` may take.
  absl::Duration timeout = absl::Seconds(150);
  // What it installs, for the error message ("playwright-core").
  std::string what = "the packages";
  // The oldest Node.js the scripts run on, for the error message.
  int min_node_major = 18;
};

// Copies the files into `dir` and runs `npm ci` there (its own cache in
// dir/.npm-cache, --ignore-scripts), setting NODE_EXTRA_CA_CERTS to the
// system's CA bundle when unset (Bazel scrubs the environment, and a
// registry behind a TLS-inspecting proxy is signed by a CA only the system
// bundle has). Returns `dir`, or an error whose message says what failed:
// the runfiles, a copy, node or npm not on PATH, or `npm ci` (how it ended
// and the tail of its output).
absl::StatusOr<std::string> NpmCiInto(const NpmCiOptions& options);

}  // namespace cairn::tests

#endif  // CAIRN_TESTS_INTERNAL_NPM_INSTALL_H_
