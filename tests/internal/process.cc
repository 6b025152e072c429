#include "tests/internal/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace cairn::tests {

absl::StatusOr<std::unique_ptr<Process>> Process::Start(
    const std::vector<std::string>& argv, const std::string& log_path) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  if (access(argv[0].c_str(), X_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat(argv[0], " is not executable: ", std::strerror(errno)));
  }
  const int log_fd =
      open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot open ", log_path, ": ", std::strerror(errno)));
  }
  // Everything the child needs is built before fork(): after it, only
  // async-signal-safe calls.
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);
  const pid_t parent = getpid();

  const pid_t pid = fork();
  if (pid < 0) {
    const int error = errno;
    close(log_fd);
    return absl::InternalError(
        absl::StrCat("fork failed: ", std::strerror(error)));
  }
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent already died
    const int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    // Sockets other test threads hold must not live on in the replica.
    if (close_range(3, ~0U, 0) != 0) {
      for (int fd = 3; fd < 65536; ++fd) close(fd);
    }
    execv(args[0], args.data());
    _exit(127);
  }
  close(log_fd);
  // Also from the parent, so Kill() finds the group even if the child has
  // not run yet.
  setpgid(pid, pid);
  return std::unique_ptr<Process>(new Process(pid, log_path));
}

Process::~Process() { Kill(); }

void Process::Kill() {
  if (exit_.has_value()) return;
  kill(-pid_, SIGKILL);  // the group: the replica and anything it forked
  kill(pid_, SIGKILL);
  int wait_status = 0;
  while (waitpid(pid_, &wait_status, 0) < 0 && errno == EINTR) {
  }
  Reaped(wait_status);
}

bool Process::Running() {
  if (exit_.has_value()) return false;
  int wait_status = 0;
  const pid_t reaped = waitpid(pid_, &wait_status, WNOHANG);
  if (reaped == pid_) {
    Reaped(wait_status);
    return false;
  }
  return true;
}

void Process::Reaped(int wait_status) {
  if (WIFEXITED(wait_status)) {
    exit_ = absl::StrCat("exited ", WEXITSTATUS(wait_status));
  } else if (WIFSIGNALED(wait_status)) {
    exit_ = absl::StrCat("killed by signal ", WTERMSIG(wait_status));
  } else {
    exit_ = absl::StrCat("ended (wait status ", wait_status, ")");
  }
}

std::string Process::LogTail(size_t max_bytes) const {
  return FileTail(log_path_, max_bytes);
}

std::string FileTail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  if (text.size() > max_bytes) text = text.substr(text.size() - max_bytes);
  return text;
}

}  // namespace cairn::tests
