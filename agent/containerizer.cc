#include "agent/containerizer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace cairn {
namespace agent {
namespace {

absl::Status ErrnoError(int error, absl::string_view what) {
  return absl::Status(absl::ErrnoToStatusCode(error),
                      absl::StrCat(what, ": ", std::strerror(error)));
}

bool ValidName(absl::string_view name) {
  if (name.empty() || name == "." || name == "..") return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

// What the containerizer reads from /proc/<pid>/stat.
struct ProcStat {
  pid_t pid = 0;
  char state = '?';
  pid_t session = 0;
  uint64_t utime = 0, stime = 0, cutime = 0, cstime = 0;  // clock ticks
  uint64_t threads = 0;
  uint64_t start_ticks = 0;  // field 22: clock ticks after boot
};

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  absl::StatusOr<std::string> text =
      cgroups::ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!text.ok()) return std::nullopt;
  // The command name (field 2) may hold spaces and parentheses.
  size_t close = text->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::vector<absl::string_view> fields = absl::StrSplit(
      absl::string_view(*text).substr(close + 1), ' ', absl::SkipEmpty());
  // fields[i] is field i + 3 of proc(5).
  if (fields.size() < 20 || fields[0].empty()) return std::nullopt;
  ProcStat stat;
  stat.pid = pid;
  stat.state = fields[0][0];
  int session = 0;
  if (!absl::SimpleAtoi(fields[3], &session) ||
      !absl::SimpleAtoi(fields[11], &stat.utime) ||
      !absl::SimpleAtoi(fields[12], &stat.stime) ||
      !absl::SimpleAtoi(fields[13], &stat.cutime) ||
      !absl::SimpleAtoi(fields[14], &stat.cstime) ||
      !absl::SimpleAtoi(fields[17], &stat.threads) ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(fields[19]),
                        &stat.start_ticks)) {
    return std::nullopt;
  }
  stat.session = session;
  return stat;
}

std::optional<uint64_t> ReadRssBytes(pid_t pid) {
  absl::StatusOr<std::string> text =
      cgroups::ReadFile(absl::StrCat("/proc/", pid, "/statm"));
  if (!text.ok()) return std::nullopt;
  std::vector<absl::string_view> fields =
      absl::StrSplit(*text, ' ', absl::SkipEmpty());
  uint64_t pages = 0;
  if (fields.size() < 2 || !absl::SimpleAtoi(fields[1], &pages)) {
    return std::nullopt;
  }
  return pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

bool IsZombie(const ProcStat& stat) {
  return stat.state == 'Z' || stat.state == 'X' || stat.state == 'x';
}

// SIGKILLs `target` only if the pid still names that process: the pidfd pins
// the process, and the start time read after opening it proves it is ours.
void KillExactly(const ProcStat& target) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, target.pid, 0));
  if (pidfd < 0) {
    if (errno == ENOSYS) {  // kernels before 5.3
      std::optional<ProcStat> now = ReadProcStat(target.pid);
      if (now && now->start_ticks == target.start_ticks) {
        ::kill(target.pid, SIGKILL);
      }
    }
    return;
  }
  std::optional<ProcStat> now = ReadProcStat(target.pid);
  if (now && now->start_ticks == target.start_ticks) {
    ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
  }
  ::close(pidfd);
}

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Written by the child to the exec-report pipe when it fails before exec.
struct ChildFailure {
  int32_t stage;
  int32_t error;
};
enum ChildStage : int32_t { kSetsid = 1, kDup = 2, kChdir = 3, kExec = 4 };

// The child's side of Launch: only async-signal-safe calls (the parent may
// have other threads, holding locks the child would never see released).
[[noreturn]] void RunChild(int sync_fd, int report_fd, int null_fd,
                           int stdout_fd, int stderr_fd, const char* sandbox,
                           char* const* argv, char* const* envp) {
  auto fail = [report_fd](int32_t stage) {
    ChildFailure failure{stage, errno};
    ssize_t ignored = ::write(report_fd, &failure, sizeof(failure));
    (void)ignored;
    ::_exit(127);
  };
  // Start clean: no blocked or ignored signals inherited from the agent.
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  if (::setsid() < 0) fail(kSetsid);
  // Wait until the parent has put us into the cgroups: one byte means go,
  // EOF means the parent gave up (or died).
  char go = 0;
  ssize_t n;
  do {
    n = ::read(sync_fd, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) ::_exit(127);

  if (::dup2(null_fd, STDIN_FILENO) < 0 ||
      ::dup2(stdout_fd, STDOUT_FILENO) < 0 ||
      ::dup2(stderr_fd, STDERR_FILENO) < 0) {
    fail(kDup);
  }
  if (::chdir(sandbox) < 0) fail(kChdir);
    // Nothing of the agent's leaks into the container: every other descriptor
    // (some another thread may have opened without O_CLOEXEC) closes on exec;
    // the report pipe is already close-on-exec.
#ifdef CLOSE_RANGE_CLOEXEC
  ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
#endif
  ::execve(argv[0], argv, envp);
  fail(kExec);
  ::_exit(127);  // not reached
}

}  // namespace

absl::StatusOr<std::unique_ptr<Containerizer>> Containerizer::Create(
    const std::string& kind, const std::string& root,
    const std::string& state_dir) {
  std::vector<std::string> components = absl::StrSplit(root, '/');
  for (const std::string& component : components) {
    if (!ValidName(component)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "root '", root,
          "' must be a relative path of [A-Za-z0-9._-] components"));
    }
  }
  std::optional<cgroups::Cgroups> cgroups;
  if (kind == "cgroups") {
    ASSIGN_OR_RETURN(cgroups, cgroups::Cgroups::Probe());
  } else if (kind != "posix") {
    return absl::InvalidArgumentError(absl::StrCat(
        "isolation kind '", kind, "' is not one of \"cgroups\", \"posix\""));
  }
  if (!state_dir.empty()) {
    std::string dir;
    for (absl::string_view part : absl::StrSplit(state_dir, '/')) {
      if (!dir.empty() || state_dir[0] == '/') absl::StrAppend(&dir, "/");
      absl::StrAppend(&dir, part);
      if (part.empty()) continue;
      if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoError(errno, absl::StrCat("state_dir: mkdir '", dir, "'"));
      }
    }
  }
  return std::unique_ptr<Containerizer>(
      new Containerizer(std::move(cgroups), root, state_dir));
}

Containerizer::Containerizer(std::optional<cgroups::Cgroups> cgroups,
                             std::string root, std::string state_dir)
    : cgroups_(std::move(cgroups)),
      root_(std::move(root)),
      state_dir_(std::move(state_dir)) {}

Containerizer::~Containerizer() = default;

std::string Containerizer::isolation() const {
  return cgroups_ ? cgroups_->Name() : "posix";
}

void Containerizer::ReleaseRoot() {
  if (!cgroups_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!containers_.empty()) return;
  }
  if (!cgroups_->Children(root_).empty()) return;
  // Deepest first: the root, then its parents that are now empty ("cairn").
  for (const std::string& dir : cgroups_->Dirs(root_)) {
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
      VLOG(1) << "keeping " << dir << ": " << std::strerror(errno);
      continue;
    }
    ::rmdir(std::filesystem::path(dir).parent_path().c_str());  // if empty
  }
}

std::string Containerizer::CgroupOf(const std::string& container_id) const {
  return absl::StrCat(root_, "/", container_id);
}

std::vector<std::string> Containerizer::CgroupDirs(
    const std::string& container_id) const {
  if (!cgroups_) return {};
  return cgroups_->Dirs(CgroupOf(container_id));
}

absl::StatusOr<pid_t> Containerizer::Launch(const ContainerLaunchSpec& spec) {
  if (!ValidName(spec.container_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("container_id '", spec.container_id,
                     "' must be non-empty [A-Za-z0-9._-]"));
  }
  struct stat st;
  if (spec.sandbox.empty() || spec.sandbox[0] != '/' ||
      ::stat(spec.sandbox.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sandbox '", spec.sandbox, "' is not an existing absolute directory"));
  }
  if (spec.argv.empty() || spec.argv[0].empty() || spec.argv[0][0] != '/') {
    return absl::InvalidArgumentError(
        "argv[0] must be an absolute path to the program");
  }
  for (size_t i = 0; i < spec.env.size(); ++i) {
    if (spec.env[i].find('=') == std::string::npos || spec.env[i][0] == '=') {
      return absl::InvalidArgumentError(absl::StrCat(
          "env[", i, "] '", spec.env[i], "' is not of the form KEY=VALUE"));
    }
  }
  if (spec.limits.cpus < 0 || !std::isfinite(spec.limits.cpus)) {
    return absl::InvalidArgumentError(
        absl::StrCat("limits.cpus ", spec.limits.cpus, " is not >= 0"));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (containers_.count(spec.container_id) > 0) {
      return absl::AlreadyExistsError(absl::StrCat(
          "container_id '", spec.container_id, "' is already in use"));
    }
    containers_[spec.container_id].busy = true;
  }
  absl::StatusOr<pid_t> pid = LaunchProcess(spec);
  std::lock_guard<std::mutex> lock(mu_);
  if (!pid.ok()) {
    containers_.erase(spec.container_id);
  } else {
    containers_[spec.container_id].busy = false;
  }
  return pid;
}

absl::StatusOr<pid_t> Containerizer::LaunchProcess(
    const ContainerLaunchSpec& spec) {
  const std::string cgroup = CgroupOf(spec.container_id);
  if (cgroups_) {
    // A cgroup of this name can only be a leftover of a launch that crashed
    // before the agent recorded it.
    RETURN_IF_ERROR(cgroups_->Destroy(cgroup, kDestroyTimeout));
    absl::Status status = cgroups_->Create(cgroup);
    if (status.ok()) {
      status =
          cgroups_->SetLimits(cgroup, spec.limits.cpus, spec.limits.mem_bytes);
    }
    if (!status.ok()) {
      (void)cgroups_->Destroy(cgroup, kDestroyTimeout);
      return status;
    }
  }
  auto cleanup_cgroup = [&]() {
    if (cgroups_) {
      absl::Status status = cgroups_->Destroy(cgroup, kDestroyTimeout);
      if (!status.ok())
        LOG(WARNING) << "cleaning up a failed launch: " << status;
    }
  };

  // Everything the child needs is prepared here: after fork it may not
  // allocate.
  int null_fd = -1, stdout_fd = -1, stderr_fd = -1;
  int sync_fds[2] = {-1, -1}, report_fds[2] = {-1, -1};
  auto close_all = [&]() {
    CloseFd(null_fd);
    CloseFd(stdout_fd);
    CloseFd(stderr_fd);
    CloseFd(sync_fds[0]);
    CloseFd(sync_fds[1]);
    CloseFd(report_fds[0]);
    CloseFd(report_fds[1]);
  };
  absl::Status status;
  const std::string stdout_path = spec.sandbox + "/stdout";
  const std::string stderr_path = spec.sandbox + "/stderr";
  null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) status = ErrnoError(errno, "open '/dev/null'");
  if (status.ok()) {
    stdout_fd = ::open(stdout_path.c_str(),
                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (stdout_fd < 0) {
      status = ErrnoError(errno, absl::StrCat("open '", stdout_path, "'"));
    }
  }
  if (status.ok()) {
    stderr_fd = ::open(stderr_path.c_str(),
                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (stderr_fd < 0) {
      status = ErrnoError(errno, absl::StrCat("open '", stderr_path, "'"));
    }
  }
  // A socket, not a pipe, so the go byte can be sent with MSG_NOSIGNAL.
  if (status.ok() &&
      ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync_fds) != 0) {
    status = ErrnoError(errno, "socketpair");
  }
  if (status.ok() && ::pipe2(report_fds, O_CLOEXEC) != 0) {
    status = ErrnoError(errno, "pipe2");
  }
  if (!status.ok()) {
    close_all();
    cleanup_cgroup();
    return status;
  }
  std::vector<char*> argv, envp;
  for (const std::string& arg : spec.argv) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  for (const std::string& var : spec.env) {
    envp.push_back(const_cast<char*>(var.c_str()));
  }
  envp.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) {
    status = ErrnoError(errno, "fork");
    close_all();
    cleanup_cgroup();
    return status;
  }
  if (pid == 0) {
    ::close(sync_fds[1]);
    ::close(report_fds[0]);
    RunChild(sync_fds[0], report_fds[1], null_fd, stdout_fd, stderr_fd,
             spec.sandbox.c_str(), argv.data(), envp.data());
  }
  CloseFd(sync_fds[0]);
  CloseFd(report_fds[1]);
  CloseFd(null_fd);
  CloseFd(stdout_fd);
  CloseFd(stderr_fd);

  auto abandon = [&](absl::Status error) {
    ::kill(pid, SIGKILL);
    int ignored;
    while (::waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {
    }
    close_all();
    cleanup_cgroup();
    return error;
  };

  if (cgroups_) {
    status = cgroups_->Assign(cgroup, pid);
    if (!status.ok()) return abandon(status);
  }
  const char go = 1;
  if (::send(sync_fds[1], &go, 1, MSG_NOSIGNAL) != 1) {
    return abandon(ErrnoError(errno, "starting the container's process"));
  }
  CloseFd(sync_fds[1]);

  // EOF: execve succeeded (the pipe closed on exec). Data: where it failed.
  ChildFailure failure{0, 0};
  size_t got = 0;
  while (got < sizeof(failure)) {
    ssize_t n = ::read(report_fds[0], reinterpret_cast<char*>(&failure) + got,
                       sizeof(failure) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  CloseFd(report_fds[0]);
  if (got > 0) {
    std::string what;
    switch (failure.stage) {
      case kSetsid:
        what = "setsid";
        break;
      case kDup:
        what = "redirecting stdin/stdout/stderr";
        break;
      case kChdir:
        what = absl::StrCat("chdir to sandbox '", spec.sandbox, "'");
        break;
      default:
        what = absl::StrCat("execve '", spec.argv[0], "'");
        break;
    }
    return abandon(ErrnoError(failure.error, what));
  }

  Container container;
  container.pid = pid;
  container.limits = spec.limits;
  // The process exists (possibly as a zombie already) until it is reaped.
  if (std::optional<ProcStat> stat = ReadProcStat(pid)) {
    container.start_ticks = stat->start_ticks;
  }
  status = WriteRecord(spec.container_id, container);
  if (!status.ok()) return abandon(status);
  {
    std::lock_guard<std::mutex> lock(mu_);
    Container& entry = containers_[spec.container_id];
    entry = container;
    entry.busy = true;  // Launch() clears it
  }
  VLOG(1) << "launched container " << spec.container_id << " pid " << pid
          << " (" << isolation() << ")";
  return pid;
}

std::vector<pid_t> Containerizer::SessionProcesses(
    const Container& container) const {
  std::vector<pid_t> pids;
  const pid_t session = container.pid;
  if (session <= 0) return pids;
  std::optional<ProcStat> leader = ReadProcStat(session);
  if (leader && container.start_ticks != 0 &&
      leader->start_ticks != container.start_ticks &&
      leader->session == session) {
    return pids;  // the pid was reused for a new session: ours has ended
  }
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return pids;
  while (struct dirent* entry = ::readdir(proc)) {
    int pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid) || pid <= 0) continue;
    std::optional<ProcStat> stat = ReadProcStat(pid);
    if (!stat || stat->session != session || IsZombie(*stat)) continue;
    // Every member was started after the container's leader.
    if (stat->start_ticks < container.start_ticks) continue;
    pids.push_back(pid);
  }
  ::closedir(proc);
  return pids;
}

absl::StatusOr<v1::ResourceStatistics> Containerizer::Usage(
    const std::string& container_id) {
  Container container;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(container_id);
    if (it == containers_.end()) {
      return absl::NotFoundError(
          absl::StrCat("unknown container '", container_id, "'"));
    }
    container = it->second;
  }
  v1::ResourceStatistics stats;
  stats.set_timestamp(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
  if (cgroups_) {
    RETURN_IF_ERROR(cgroups_->Statistics(CgroupOf(container_id), &stats));
    return stats;
  }
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  uint64_t cpu_user = 0, cpu_system = 0, rss = 0, threads = 0;
  uint32_t processes = 0;
  for (pid_t pid : SessionProcesses(container)) {
    std::optional<ProcStat> stat = ReadProcStat(pid);
    if (!stat || IsZombie(*stat)) continue;
    ++processes;
    threads += stat->threads;
    cpu_user += stat->utime;
    cpu_system += stat->stime;
    // The leader's reaped children (container members) count too.
    if (pid == container.pid) {
      cpu_user += stat->cutime;
      cpu_system += stat->cstime;
    }
    rss += ReadRssBytes(pid).value_or(0);
  }
  stats.set_processes(processes);
  stats.set_threads(static_cast<uint32_t>(threads));
  stats.set_cpus_user_time_secs(cpu_user / ticks);
  stats.set_cpus_system_time_secs(cpu_system / ticks);
  stats.set_mem_rss_bytes(rss);
  stats.set_mem_total_bytes(rss);
  if (container.limits.cpus > 0) stats.set_cpus_limit(container.limits.cpus);
  if (container.limits.mem_bytes > 0) {
    stats.set_mem_limit_bytes(container.limits.mem_bytes);
  }
  return stats;
}

std::optional<Limitation> Containerizer::CheckLimitation(
    const std::string& container_id) {
  if (!cgroups_) return std::nullopt;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (containers_.count(container_id) == 0) return std::nullopt;
  }
  std::optional<cgroups::OomInfo> oom = cgroups_->Oom(CgroupOf(container_id));
  if (!oom || (oom->oom_kills == 0 && !oom->under_oom)) return std::nullopt;
  Limitation limitation;
  limitation.reason = v1::TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY;
  limitation.message = absl::StrCat(
      "Memory limit exceeded: Requested: ",
      cgroups::FormatBytes(oom->limit_bytes),
      " Maximum Used: ", cgroups::FormatBytes(oom->max_used_bytes));
  return limitation;
}

absl::Status Containerizer::DestroyContainer(const std::string& container_id,
                                             const Container& container) {
  if (cgroups_) {
    RETURN_IF_ERROR(cgroups_->Destroy(CgroupOf(container_id), kDestroyTimeout));
  } else {
    const absl::Time deadline = absl::Now() + kDestroyTimeout;
    while (true) {
      std::vector<pid_t> pids = SessionProcesses(container);
      if (pids.empty()) break;
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat(
            pids.size(), " process(es) of container '", container_id,
            "' survive SIGKILL, e.g. pid ", pids.front()));
      }
      for (pid_t pid : pids) {
        if (std::optional<ProcStat> stat = ReadProcStat(pid))
          KillExactly(*stat);
      }
      // Killed processes disappear (or turn zombie) shortly.
      absl::Time settle =
          std::min(deadline, absl::Now() + absl::Milliseconds(200));
      while (absl::Now() < settle && !SessionProcesses(container).empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
  }
  RemoveRecord(container_id);
  return absl::OkStatus();
}

absl::Status Containerizer::Destroy(const std::string& container_id) {
  if (!ValidName(container_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("container_id '", container_id, "' is not valid"));
  }
  Container container;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(container_id);
    if (it != containers_.end()) {
      if (it->second.busy) {
        return absl::UnavailableError(absl::StrCat(
            "container '", container_id, "' is being launched or destroyed"));
      }
      container = it->second;
    } else if (std::optional<Container> record = ReadRecord(container_id)) {
      container = *record;  // unknown here, but recorded: clean it up too
    }
    Container& entry = containers_[container_id];
    entry = container;
    entry.busy = true;
  }
  absl::Status status = DestroyContainer(container_id, container);
  std::lock_guard<std::mutex> lock(mu_);
  if (status.ok()) {
    containers_.erase(container_id);
    VLOG(1) << "destroyed container " << container_id;
  } else {
    containers_[container_id].busy = false;
  }
  return status;
}

absl::Status Containerizer::Recover(
    const std::map<std::string, pid_t>& wanted) {
  std::set<std::string> found;
  if (cgroups_) {
    for (const std::string& id : cgroups_->Children(root_)) found.insert(id);
  }
  if (!state_dir_.empty()) {
    if (DIR* dir = ::opendir(state_dir_.c_str())) {
      while (struct dirent* entry = ::readdir(dir)) {
        std::string name = entry->d_name;
        if (ValidName(name)) {
          found.insert(name);
        }
      }
      ::closedir(dir);
    }
  }
  for (const auto& [id, pid] : wanted) {
    if (!ValidName(id) || pid <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "wanted container '", id, "' with pid ", pid, " is not valid"));
    }
  }
  for (const auto& [id, pid] : wanted) {
    Container container;
    container.pid = pid;
    std::optional<Container> record = ReadRecord(id);
    if (record && record->pid == pid) {
      container.start_ticks = record->start_ticks;
      container.limits = record->limits;
    } else {
      if (record) {
        LOG(WARNING) << "container " << id << ": checkpointed pid " << pid
                     << " differs from the recorded pid " << record->pid;
      }
      // Unverifiable: trust the checkpoint for the process alive now.
      if (std::optional<ProcStat> stat = ReadProcStat(pid)) {
        container.start_ticks = stat->start_ticks;
      }
      if (record) container.limits = record->limits;
      absl::Status status = WriteRecord(id, container);
      if (!status.ok()) LOG(WARNING) << "container " << id << ": " << status;
    }
    std::lock_guard<std::mutex> lock(mu_);
    containers_.emplace(id, container);  // keeps one already known
  }
  absl::Status first_error;
  for (const std::string& id : found) {
    if (wanted.count(id) > 0) continue;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (containers_.count(id) > 0) continue;  // launched by this object
    }
    LOG(INFO) << "destroying orphan container " << id;
    absl::Status status = Destroy(id);
    if (!status.ok()) {
      LOG(WARNING) << "orphan container " << id << ": " << status;
      if (first_error.ok()) first_error = status;
    }
  }
  return first_error;
}

bool Containerizer::Alive(const std::string& container_id) {
  Container container;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(container_id);
    if (it == containers_.end()) return false;
    container = it->second;
  }
  if (cgroups_) return !cgroups_->Processes(CgroupOf(container_id)).empty();
  return !SessionProcesses(container).empty();
}

std::vector<std::string> Containerizer::Containers() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [id, container] : containers_) ids.push_back(id);
  return ids;
}

// A record is one line: "<pid> <start ticks> <cpus> <mem bytes>".
absl::Status Containerizer::WriteRecord(const std::string& container_id,
                                        const Container& container) const {
  if (state_dir_.empty()) return absl::OkStatus();
  const std::string path = absl::StrCat(state_dir_, "/", container_id);
  const std::string temp = path + "~";  // "~" is in no container id
  const std::string line =
      absl::StrFormat("%d %u %.17g %u\n", container.pid, container.start_ticks,
                      container.limits.cpus, container.limits.mem_bytes);
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("open '", temp, "'"));
  ssize_t n = ::write(fd, line.data(), line.size());
  int error = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(line.size())) {
    return ErrnoError(n < 0 ? error : EIO, absl::StrCat("write '", temp, "'"));
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return ErrnoError(errno, absl::StrCat("rename to '", path, "'"));
  }
  return absl::OkStatus();
}

std::optional<Containerizer::Container> Containerizer::ReadRecord(
    const std::string& container_id) const {
  if (state_dir_.empty()) return std::nullopt;
  absl::StatusOr<std::string> text =
      cgroups::ReadFile(absl::StrCat(state_dir_, "/", container_id));
  if (!text.ok()) return std::nullopt;
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::StripAsciiWhitespace(*text), ' ', absl::SkipEmpty());
  Container container;
  int pid = 0;
  if (fields.size() != 4 || !absl::SimpleAtoi(fields[0], &pid) ||
      !absl::SimpleAtoi(fields[1], &container.start_ticks) ||
      !absl::SimpleAtod(fields[2], &container.limits.cpus) ||
      !absl::SimpleAtoi(fields[3], &container.limits.mem_bytes)) {
    LOG(WARNING) << "ignoring a malformed container record for "
                 << container_id;
    return std::nullopt;
  }
  container.pid = pid;
  return container;
}

void Containerizer::RemoveRecord(const std::string& container_id) const {
  if (state_dir_.empty()) return;
  std::string path = absl::StrCat(state_dir_, "/", container_id);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    LOG(WARNING) << "removing '" << path << "': " << std::strerror(errno);
  }
}

}  // namespace agent
}  // namespace cairn
