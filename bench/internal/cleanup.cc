#include "bench/internal/cleanup.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <system_error>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace cairn::bench {
namespace {

struct Registry {
  absl::Mutex mu;
  std::set<pid_t> children ABSL_GUARDED_BY(mu);
  std::set<std::string> dirs ABSL_GUARDED_BY(mu);
};

Registry& GetRegistry() {
  static Registry* registry = new Registry;  // never destroyed: used atexit
  return *registry;
}

void AtExit() { CleanupAll(); }

}  // namespace

void InstallSignalCleanup() {
  std::atexit(AtExit);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) return;
    CleanupAll();
    _exit(128 + sig);
  }).detach();
  // A benchmark writing to a closed pipe (e.g. `| head`) should end, not die
  // silently with children left to the death signal.
  signal(SIGPIPE, SIG_IGN);
}

void RegisterChild(pid_t pid) {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  r.children.insert(pid);
}

void UnregisterChild(pid_t pid) {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  r.children.erase(pid);
}

void RegisterScratchDir(const std::string& path) {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  r.dirs.insert(path);
}

void UnregisterScratchDir(const std::string& path) {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  r.dirs.erase(path);
}

void CleanupAll() {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  for (pid_t pid : r.children) kill(pid, SIGKILL);
  for (pid_t pid : r.children) {
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  r.children.clear();
  for (const std::string& dir : r.dirs) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  r.dirs.clear();
}

}  // namespace cairn::bench
