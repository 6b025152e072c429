#include "bench/internal/child_process.h"

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
#include <thread>

#include "absl/strings/str_cat.h"
#include "bench/internal/cleanup.h"

namespace cairn::bench {

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    std::vector<std::string> argv, const std::string& log_path) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  if (access(argv[0].c_str(), X_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat(argv[0], " is not an executable file"));
  }
  int log_fd =
      open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(
        absl::StrCat("open ", log_path, ": ", std::strerror(errno)));
  }
  // Everything the child needs is prepared before fork(): between fork and
  // exec only async-signal-safe calls are allowed.
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const pid_t parent = getpid();

  // Block signals while forking so the child does not run our handlers; the
  // child restores an empty mask before exec.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died already
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int fork_errno = errno;
  if (pid > 0) RegisterChild(pid);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(log_fd);
  if (pid < 0) {
    return absl::InternalError(
        absl::StrCat("fork: ", std::strerror(fork_errno)));
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, log_path));
}

ChildProcess::~ChildProcess() { Stop(); }

void ChildProcess::Reaped(int wait_status) {
  reaped_ = true;
  UnregisterChild(pid_);
  if (WIFEXITED(wait_status)) {
    exit_description_ = absl::StrCat("exited ", WEXITSTATUS(wait_status));
  } else if (WIFSIGNALED(wait_status)) {
    exit_description_ =
        absl::StrCat("killed by signal ", WTERMSIG(wait_status));
  } else {
    exit_description_ = "ended";
  }
}

bool ChildProcess::Running() {
  if (reaped_) return false;
  int wait_status = 0;
  pid_t r = waitpid(pid_, &wait_status, WNOHANG);
  if (r == pid_) {
    Reaped(wait_status);
    return false;
  }
  if (r < 0 && errno == ECHILD) {  // reaped by CleanupAll()
    reaped_ = true;
    exit_description_ = "reaped elsewhere";
    return false;
  }
  return true;
}

std::string ChildProcess::Stop(absl::Duration grace) {
  if (!Running()) return exit_description_;
  kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + grace;
  while (absl::Now() < deadline) {
    if (!Running()) return exit_description_;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid_, SIGKILL);
  int wait_status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &wait_status, 0);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    Reaped(wait_status);
  } else {
    reaped_ = true;
    UnregisterChild(pid_);
    exit_description_ = "reaped elsewhere";
  }
  return exit_description_;
}

std::string ChildProcess::LogTail(size_t max_bytes) const {
  std::ifstream in(log_path_, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string all = buffer.str();
  if (all.size() > max_bytes) all = all.substr(all.size() - max_bytes);
  return all;
}

}  // namespace cairn::bench
