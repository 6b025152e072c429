#include "tests/internal/npm_install.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tools/cpp/runfiles/runfiles.h"

namespace cairn::tests {

namespace {

using bazel::tools::cpp::runfiles::Runfiles;
namespace fs = std::filesystem;

constexpr char kCaBundle[] = "/etc/ssl/certs/ca-certificates.crt";
constexpr size_t kScriptTailBytes = 6000;
constexpr size_t kNpmTailBytes = 4000;

}  // namespace

std::optional<std::string> FindExecutable(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs =
      path != nullptr && *path != '\0' ? path : "/usr/local/bin:/usr/bin:/bin";
  for (absl::string_view dir : absl::StrSplit(dirs, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<std::string> WaitForExit(Process& process, absl::Time deadline) {
  while (process.Running()) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("still running; output:\n", process.LogTail()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return *process.ExitDescription();
}

absl::StatusOr<std::string> WaitForLine(Process& process,
                                        const std::string& prefix,
                                        const std::string& infix,
                                        absl::Time deadline) {
  const std::string wanted = absl::StrCat("@@ ", prefix);
  for (;;) {
    // Whether it ran before its output is read: a line printed just before
    // it exited is still found.
    const bool running = process.Running();
    bool failed = false;
    for (absl::string_view line :
         absl::StrSplit(ReadFile(process.log_path()), '\n')) {
      if (absl::StartsWith(line, wanted) && absl::StrContains(line, infix)) {
        return std::string(absl::StripPrefix(line, "@@ "));
      }
      if (absl::StartsWith(line, "@@ FAIL")) failed = true;
    }
    if (failed || !running) {
      // A script exits after FAIL (a browser script closes its browser
      // first): its whole output then.
      WaitForExit(process, absl::Now() + absl::Seconds(15)).IgnoreError();
      std::string how = failed ? "failed" : "";
      if (const std::optional<std::string> exit = process.ExitDescription()) {
        absl::StrAppend(&how, failed ? " and " : "", *exit);
      }
      return absl::AbortedError(absl::StrCat(
          "the script ", how, " before \"", wanted, "\"; output:\n",
          process.LogTail(kScriptTailBytes)));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("no \"", wanted, "\" in time; output:\n",
                       process.LogTail(kScriptTailBytes)));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::StatusOr<std::string> NpmCiInto(const NpmCiOptions& options) {
  std::string error;
  std::unique_ptr<Runfiles> runfiles(Runfiles::CreateForTest(&error));
  if (runfiles == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read the runfiles: ", error));
  }
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", options.dir, ": ", ec.message()));
  }
  for (const std::string& name : options.files) {
    const std::string from =
        runfiles->Rlocation(absl::StrCat(options.runfiles_dir, "/", name));
    fs::copy_file(from, absl::StrCat(options.dir, "/", name),
                  fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot copy ", from, ": ", ec.message()));
    }
  }
  const std::optional<std::string> npm = FindExecutable("npm");
  if (!FindExecutable("node").has_value() || !npm.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "node and npm are not on PATH: install Node.js (",
        options.min_node_major,
        " or newer) with npm (tools/setup.sh does)"));
  }
  // Bazel runs tests with a scrubbed environment. Node trusts only its own
  // CA bundle unless told otherwise; a registry reached through a
  // TLS-inspecting proxy is signed by a CA only the system bundle has.
  if (std::getenv("NODE_EXTRA_CA_CERTS") == nullptr &&
      access(kCaBundle, R_OK) == 0) {
    setenv("NODE_EXTRA_CA_CERTS", kCaBundle, 1);
  }
  // The home directory is read-only in Bazel's sandbox: npm's cache goes to
  // `dir` too. --ignore-scripts: nothing here needs an install script, and
  // none may download anything else.
  absl::StatusOr<std::unique_ptr<Process>> install = Process::Start(
      {*npm, "ci", "--prefix", options.dir, "--cache",
       absl::StrCat(options.dir, "/.npm-cache"), "--ignore-scripts",
       "--no-audit", "--no-fund", "--loglevel=warn", "--fetch-retries=2",
       "--fetch-retry-mintimeout=2000", "--fetch-retry-maxtimeout=10000",
       "--fetch-timeout=30000"},
      absl::StrCat(options.dir, "/npm-ci.log"));
  if (!install.ok()) return install.status();
  absl::StatusOr<std::string> exit =
      WaitForExit(**install, absl::Now() + options.timeout);
  if (!exit.ok() || *exit != "exited 0") {
    // The lock file's path in the repository.
    absl::string_view dir = options.runfiles_dir;
    absl::ConsumePrefix(&dir, "cairn/");
    const std::string lock = absl::StrCat(dir, "/package-lock.json");
    return absl::UnavailableError(absl::StrCat(
        "`npm ci` could not install ", options.what, " (", lock,
        ") from the npm registry (is it reachable?): ",
        exit.ok() ? *exit : exit.status().ToString(), "\n",
        (*install)->LogTail(kNpmTailBytes)));
  }
  return options.dir;
}

}  // namespace cairn::tests
