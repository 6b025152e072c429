// Process-wide cleanup for a benchmark run: child processes to kill and
// scratch directories to remove, whichever way the run ends.
//
// A benchmark starts servers (Cairn replicas, etcd members) and writes into
// temporary directories. None of that may outlive it: not on success, not on
// an error return, not on Ctrl-C. Owners (ChildProcess, ScratchDir) register
// here and unregister when they clean up after themselves; this registry
// covers the other exits:
//   - exit() and returning from main(): an atexit handler runs CleanupAll();
//   - SIGINT, SIGTERM, SIGHUP: InstallSignalCleanup() blocks them in every
//     thread and a dedicated thread sigwait()s, runs CleanupAll() and exits
//     with 128 + signal;
//   - a crash of the benchmark itself: children are started with
//     PR_SET_PDEATHSIG=SIGKILL (see ChildProcess), so the kernel kills them;
//     only scratch directories can then be left behind.
//
// Thread safety: every function may be called from any thread.

#ifndef CAIRN_BENCH_INTERNAL_CLEANUP_H_
#define CAIRN_BENCH_INTERNAL_CLEANUP_H_

#include <sys/types.h>

#include <string>

namespace cairn::bench {

// Registers the atexit handler and the signal thread. Call once at the start
// of main(), before any other thread exists (the signal mask is inherited).
void InstallSignalCleanup();

void RegisterChild(pid_t pid);
void UnregisterChild(pid_t pid);
void RegisterScratchDir(const std::string& path);
void UnregisterScratchDir(const std::string& path);

// SIGKILLs and reaps every registered child, then removes every registered
// directory (recursively). Idempotent.
void CleanupAll();

}  // namespace cairn::bench

#endif  // CAIRN_BENCH_INTERNAL_CLEANUP_H_
