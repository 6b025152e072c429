#include "agent/child_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

extern char** environ;

namespace cairn::agent {
namespace {

// Guards fork-and-register and stray reaping (see the header).
std::mutex& ChildrenMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}
// Pids started by Launch() and not reaped yet. Guarded by ChildrenMutex().
std::set<pid_t>& OwnedChildren() {
  static std::set<pid_t>* owned = new std::set<pid_t>;
  return *owned;
}

void Release(pid_t pid) {
  std::lock_guard<std::mutex> lock(ChildrenMutex());
  OwnedChildren().erase(pid);
}

// What the child reports through the pipe before it dies.
struct ChildFailure {
  int stage;  // 1: become the user, 2: chdir, 3: exec
  int error;  // errno
};

// Writes all of `data`; async-signal-safe.
void WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    size -= static_cast<size_t>(n);
  }
}

[[noreturn]] void ChildFail(int fd, int stage) {
  ChildFailure failure{stage, errno};
  WriteAll(fd, &failure, sizeof(failure));
  _exit(127);
}

// The part of `path_value` search execvpe would do, done in the parent.
std::string FindExecutable(const std::string& name,
                           const std::vector<std::string>& environment) {
  if (name.find('/') != std::string::npos) return name;
  std::string path = "/usr/local/bin:/usr/bin:/bin";
  for (const std::string& entry : environment) {
    if (absl::StartsWith(entry, "PATH=")) path = entry.substr(5);
  }
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    std::string candidate =
        absl::StrCat(dir.empty() ? "." : dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;  // exec fails with ENOENT, reported as such
}

}  // namespace

absl::StatusOr<UserIds> ResolveUser(const std::string& user) {
  std::vector<char> buffer(16384);
  passwd entry;
  passwd* result = nullptr;
  const int error =
      getpwnam_r(user.c_str(), &entry, buffer.data(), buffer.size(), &result);
  if (result == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "unknown user '", user, "'",
        error != 0 ? absl::StrCat(": ", strerror(error)) : ""));
  }
  UserIds ids;
  ids.name = user;
  ids.uid = entry.pw_uid;
  ids.gid = entry.pw_gid;
  int count = 64;
  std::vector<gid_t> groups(count);
  while (getgrouplist(user.c_str(), ids.gid, groups.data(), &count) < 0) {
    groups.resize(count + 64);
    count = static_cast<int>(groups.size());
  }
  groups.resize(count);
  ids.groups = std::move(groups);
  return ids;
}

absl::StatusOr<pid_t> Launch(const LaunchSpec& spec) {
  if (spec.executable.empty()) {
    return absl::InvalidArgumentError("empty executable");
  }
  // Everything the child needs, built before fork().
  const std::string executable =
      FindExecutable(spec.executable, spec.environment);
  std::vector<char*> argv;
  for (const std::string& arg : spec.argv) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& var : spec.environment) {
    envp.push_back(const_cast<char*>(var.c_str()));
  }
  envp.push_back(nullptr);
  const char* cwd =
      spec.working_directory.empty() ? nullptr : spec.working_directory.c_str();

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }

  pid_t pid;
  {
    std::lock_guard<std::mutex> lock(ChildrenMutex());
    pid = fork();
    if (pid == 0) {
      close(pipe_fds[0]);
      if (spec.new_process_group) setpgid(0, 0);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      struct sigaction dfl;
      memset(&dfl, 0, sizeof(dfl));
      dfl.sa_handler = SIG_DFL;
      for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);
      // Descriptors of the executor (agent connections) stay behind.
      if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0) {
        for (int fd = 3; fd < 4096; ++fd) {
          if (fd != pipe_fds[1]) fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
      }
      if (spec.user.has_value()) {
        const UserIds& user = *spec.user;
        if (setgroups(user.groups.size(), user.groups.data()) != 0 ||
            setgid(user.gid) != 0 || setuid(user.uid) != 0) {
          ChildFail(pipe_fds[1], 1);
        }
      }
      if (cwd != nullptr && chdir(cwd) != 0) ChildFail(pipe_fds[1], 2);
      execve(executable.c_str(), argv.data(), envp.data());
      ChildFail(pipe_fds[1], 3);
    }
    if (pid > 0) OwnedChildren().insert(pid);
  }
  close(pipe_fds[1]);
  if (pid < 0) {
    const int error = errno;
    close(pipe_fds[0]);
    return absl::InternalError(absl::StrCat("fork: ", strerror(error)));
  }
  if (spec.new_process_group) setpgid(pid, pid);  // no race with kill(-pid)

  ChildFailure failure{0, 0};
  size_t got = 0;
  while (got < sizeof(failure)) {
    ssize_t n =
        read(pipe_fds[0], reinterpret_cast<char*>(&failure) + got,
             sizeof(failure) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(pipe_fds[0]);
  if (got < sizeof(failure)) return pid;  // EOF: exec succeeded

  Wait(pid);
  switch (failure.stage) {
    case 1:
      return absl::FailedPreconditionError(
          absl::StrCat("cannot run as user '", spec.user->name,
                       "': ", strerror(failure.error)));
    case 2:
      return absl::FailedPreconditionError(
          absl::StrCat("cannot change to directory '", spec.working_directory,
                       "': ", strerror(failure.error)));
    default:
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot execute '", spec.executable, "': ", strerror(failure.error)));
  }
}

std::optional<int> TryWait(pid_t pid) {
  int status = 0;
  pid_t reaped;
  do {
    reaped = waitpid(pid, &status, WNOHANG);
  } while (reaped < 0 && errno == EINTR);
  if (reaped == 0) return std::nullopt;
  Release(pid);
  // ECHILD (someone else reaped it): report a kill rather than hang.
  if (reaped < 0) return W_EXITCODE(0, SIGKILL);
  return status;
}

int Wait(pid_t pid) {
  int status = 0;
  pid_t reaped;
  do {
    reaped = waitpid(pid, &status, 0);
  } while (reaped < 0 && errno == EINTR);
  Release(pid);
  if (reaped < 0) return W_EXITCODE(0, SIGKILL);
  return status;
}

int ReapStrays() {
  std::lock_guard<std::mutex> lock(ChildrenMutex());
  int reaped = 0;
  while (true) {
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0) break;
    const pid_t pid = info.si_pid;
    if (pid == 0) break;                               // none exited
    if (OwnedChildren().count(pid) > 0) break;         // its owner reaps it
    if (waitpid(pid, nullptr, WNOHANG) != pid) break;  // raced; next time
    ++reaped;
  }
  return reaped;
}

namespace {

// Fields of /proc/<pid>/stat after the command name: state, ppid, pgrp.
struct ProcStat {
  char state = '?';
  pid_t ppid = 0;
  pid_t pgrp = 0;
};

std::optional<ProcStat> ReadProcStat(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/stat");
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream rest(text.substr(paren + 1));
  ProcStat stat;
  if (!(rest >> stat.state >> stat.ppid >> stat.pgrp)) return std::nullopt;
  return stat;
}

template <typename Fn>
void ForEachProcess(Fn fn) {
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return;
  while (dirent* entry = readdir(dir)) {
    int pid;
    if (!absl::SimpleAtoi(entry->d_name, &pid)) continue;
    std::optional<ProcStat> stat = ReadProcStat(entry->d_name);
    if (stat.has_value()) fn(static_cast<pid_t>(pid), *stat);
  }
  closedir(dir);
}

}  // namespace

int KillStrayChildren() {
  const pid_t self = getpid();
  std::lock_guard<std::mutex> lock(ChildrenMutex());
  int killed = 0;
  ForEachProcess([&](pid_t pid, const ProcStat& stat) {
    if (stat.ppid != self || stat.state == 'Z') return;
    if (OwnedChildren().count(pid) > 0) return;
    if (kill(pid, SIGKILL) == 0) ++killed;
  });
  return killed;
}

std::vector<pid_t> LiveProcessesInGroup(pid_t pgid) {
  std::vector<pid_t> pids;
  ForEachProcess([&](pid_t pid, const ProcStat& stat) {
    if (stat.pgrp == pgid && stat.state != 'Z' && stat.state != 'X') {
      pids.push_back(pid);
    }
  });
  return pids;
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) {
    return absl::StrCat("exited with status ", WEXITSTATUS(wait_status));
  }
  if (WIFSIGNALED(wait_status)) {
    const int sig = WTERMSIG(wait_status);
    const char* abbrev = sigabbrev_np(sig);
    return absl::StrCat("terminated by signal ",
                        abbrev != nullptr ? absl::StrCat("SIG", abbrev)
                                          : absl::StrCat(sig));
  }
  return absl::StrCat("ended with wait status ", wait_status);
}

absl::StatusOr<std::vector<std::string>> MergeEnvironment(
    const std::vector<std::string>& base, const v1::Environment& overrides,
    const std::string& field) {
  std::vector<std::string> merged = base;
  for (int i = 0; i < overrides.variables_size(); ++i) {
    const v1::Environment::Variable& var = overrides.variables(i);
    const std::string where = absl::StrCat(field, ".variables[", i, "]");
    if (!var.has_name() || var.name().empty() ||
        var.name().find('=') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".name must be a non-empty name without '='"));
    }
    if (var.type() == v1::Environment::Variable::SECRET) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": SECRET variables are not supported"));
    }
    const std::string prefix = var.name() + "=";
    std::string entry = prefix + var.value();
    bool replaced = false;
    for (std::string& existing : merged) {
      if (absl::StartsWith(existing, prefix)) {
        existing = entry;
        replaced = true;
      }
    }
    if (!replaced) merged.push_back(std::move(entry));
  }
  return merged;
}

absl::StatusOr<CommandLine> ResolveCommand(const v1::CommandInfo& command,
                                           const std::string& field) {
  if (!command.has_value() || command.value().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".value is required"));
  }
  CommandLine line;
  if (command.shell()) {
    line.executable = "/bin/sh";
    line.argv = {"sh", "-c", command.value()};
    return line;
  }
  line.executable = command.value();
  line.argv.assign(command.arguments().begin(), command.arguments().end());
  if (line.argv.empty()) line.argv.push_back(command.value());
  return line;
}

std::vector<std::string> CurrentEnvironment() {
  std::vector<std::string> env;
  for (char** p = environ; p != nullptr && *p != nullptr; ++p) {
    env.emplace_back(*p);
  }
  return env;
}

}  // namespace cairn::agent
