// A process for containerizer_test to run inside containers. Every mode ends
// by itself after a bounded time, so nothing outlives a crashed test for long.
//
//   alloc MIB                 touch MIB MiB of memory, then exit 0
//   busy MIB SECONDS          touch MIB MiB, then spin on the CPU for SECONDS
//   tree PIDFILE SETSID SECONDS
//       ignore SIGTERM; double-fork a grandchild that (if SETSID is 1) starts
//       its own session, ignores SIGTERM, writes its pid to PIDFILE and
//       sleeps SECONDS; the leader also sleeps SECONDS.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

char* Touch(long mib) {
  size_t bytes = static_cast<size_t>(mib) << 20;
  char* memory = static_cast<char*>(std::malloc(bytes));
  if (memory == nullptr) std::exit(3);
  volatile char* pages = memory;
  for (size_t i = 0; i < bytes; i += 4096) pages[i] = 1;
  return memory;
}

void SleepSeconds(long seconds) {
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "alloc" && argc == 3) {
    Touch(std::atol(argv[2]));
    return 0;
  }
  if (mode == "busy" && argc == 4) {
    char* memory = Touch(std::atol(argv[2]));
    auto end = std::chrono::steady_clock::now() +
               std::chrono::seconds(std::atol(argv[3]));
    volatile unsigned long counter = 0;
    while (std::chrono::steady_clock::now() < end) {
      for (int i = 0; i < 100000; ++i) counter = counter + 1;
    }
    std::free(memory);
    return 0;
  }
  if (mode == "tree" && argc == 5) {
    const char* pidfile = argv[2];
    bool new_session = std::strcmp(argv[3], "1") == 0;
    long seconds = std::atol(argv[4]);
    signal(SIGTERM, SIG_IGN);
    pid_t child = fork();
    if (child < 0) return 4;
    if (child == 0) {
      if (fork() != 0) _exit(0);  // the middle process exits at once
      if (new_session) setsid();
      std::string temp = std::string(pidfile) + ".tmp";
      FILE* file = std::fopen(temp.c_str(), "w");
      if (file == nullptr) _exit(5);
      std::fprintf(file, "%d\n", static_cast<int>(getpid()));
      std::fclose(file);
      std::rename(temp.c_str(), pidfile);
      SleepSeconds(seconds);
      _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    SleepSeconds(seconds);
    return 0;
  }
  std::fprintf(stderr,
               "usage: %s alloc MIB | busy MIB SECONDS | "
               "tree PIDFILE SETSID SECONDS\n",
               argv[0]);
  return 2;
}
