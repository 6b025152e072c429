// CairnctlProcess: one `cairnctl` (//cli:cairnctl) run as a child process
// for multi-process tests, its stdout and stderr in files under a scratch
// directory. The child dies with the test (PR_SET_PDEATHSIG) and does not
// see CAIRN_MASTER; the destructor SIGKILLs and reaps it if it still runs.
//
//   auto cli = CairnctlProcess::Start(binary, {"--master=...", "run", "--",
//                                              "true"}, scratch_dir);
//   std::optional<int> code = cli->Wait(absl::Now() + absl::Seconds(60));
//   cli->out(); cli->err();
//
// Thread safety: one thread uses a CairnctlProcess.

#ifndef CAIRN_TESTS_INTERNAL_CAIRNCTL_PROCESS_H_
#define CAIRN_TESTS_INTERNAL_CAIRNCTL_PROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace cairn::tests {

class CairnctlProcess {
 public:
  // Forks and execs `binary` with `args`; output files go to `dir`.
  static std::unique_ptr<CairnctlProcess> Start(
      const std::string& binary, const std::vector<std::string>& args,
      const std::string& dir) {
    static int counter = 0;
    auto cli = std::unique_ptr<CairnctlProcess>(new CairnctlProcess());
    cli->out_path_ =
        absl::StrCat(dir, "/cairnctl-", getpid(), "-", counter, ".out");
    cli->err_path_ =
        absl::StrCat(dir, "/cairnctl-", getpid(), "-", counter, ".err");
    ++counter;
    std::vector<std::string> argv = {binary};
    argv.insert(argv.end(), args.begin(), args.end());
    const pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      int out = open(cli->out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = open(cli->err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int in = open("/dev/null", O_RDONLY);
      if (out < 0 || err < 0 || in < 0) _exit(120);
      dup2(in, 0);
      dup2(out, 1);
      dup2(err, 2);
      std::vector<char*> c_argv;
      for (std::string& a : argv) c_argv.push_back(a.data());
      c_argv.push_back(nullptr);
      unsetenv("CAIRN_MASTER");
      execv(c_argv[0], c_argv.data());
      _exit(121);
    }
    cli->pid_ = pid;
    return cli;
  }

  ~CairnctlProcess() {
    if (!exit_code_.has_value() && pid_ > 0) {
      kill(pid_, SIGKILL);
      int status;
      waitpid(pid_, &status, 0);
    }
  }

  // The exit code once it exited (128+S for signal S); nullopt when
  // `deadline` passed first.
  std::optional<int> Wait(absl::Time deadline) {
    while (!exit_code_.has_value()) {
      int status = 0;
      pid_t done = waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status)
                                       : 128 + WTERMSIG(status);
        break;
      }
      if (absl::Now() >= deadline) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return exit_code_;
  }

  // What it printed so far.
  std::string out() const { return ReadAll(out_path_); }
  std::string err() const { return ReadAll(err_path_); }

 private:
  CairnctlProcess() = default;
  static std::string ReadAll(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string out_path_, err_path_;
};

}  // namespace cairn::tests

#endif  // CAIRN_TESTS_INTERNAL_CAIRNCTL_PROCESS_H_
