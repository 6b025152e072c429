// Containerizer tests on the real kernel: real processes, real cgroups (the
// cgroups tests skip, saying why, when this process cannot manage cgroups).
// Each test uses its own cgroup root "cairn-test/<random>" and its own state
// and sandbox directories under TEST_TMPDIR, and destroys every container it
// launched. Launched helpers end by themselves within two minutes.

#include "agent/containerizer.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/cgroups.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/cpp/runfiles/runfiles.h"

namespace cairn {
namespace agent {
namespace {

using bazel::tools::cpp::runfiles::Runfiles;
using ::testing::HasSubstr;

constexpr auto kDeadline = std::chrono::seconds(60);

// Polls `condition` every few milliseconds until it holds or `kDeadline`
// passes; returns whether it held.
bool WaitUntil(const std::function<bool()>& condition) {
  auto end = std::chrono::steady_clock::now() + kDeadline;
  while (std::chrono::steady_clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

// Reaps our child `pid`; nullopt if it did not exit before the deadline.
std::optional<int> WaitExit(pid_t pid) {
  int status = 0;
  bool exited = WaitUntil([&] {
    pid_t r = waitpid(pid, &status, WNOHANG);
    return r == pid || (r < 0 && errno == ECHILD);
  });
  if (!exited) return std::nullopt;
  return status;
}

// True while `pid` is a live (non-zombie) process.
bool ProcessAlive(pid_t pid) {
  absl::StatusOr<std::string> stat =
      cgroups::ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return false;
  size_t close = stat->rfind(')');
  return close != std::string::npos && close + 2 < stat->size() &&
         (*stat)[close + 2] != 'Z';
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string Contents(const std::string& path) {
  absl::StatusOr<std::string> text = cgroups::ReadFile(path);
  return text.ok() ? *text : "<" + text.status().ToString() + ">";
}

std::string RandomHex() {
  std::random_device device;
  return absl::StrCat(absl::Hex(device(), absl::kZeroPad8),
                      absl::Hex(device(), absl::kZeroPad8));
}

class ContainerizerTest : public ::testing::Test {
 protected:
  // Creates the containerizer of `kind_`; skips the test if cgroups are
  // unavailable here.
  void SetUp() override {
    std::string error;
    std::unique_ptr<Runfiles> runfiles(Runfiles::CreateForTest(&error));
    ASSERT_NE(runfiles, nullptr) << error;
    helper_ = runfiles->Rlocation("cairn/agent/containerizer_test_helper");
    ASSERT_TRUE(Exists(helper_)) << helper_;

    const char* tmp = std::getenv("TEST_TMPDIR");
    scratch_ = absl::StrCat(tmp ? tmp : "/tmp", "/", RandomHex());
    ASSERT_EQ(mkdir(scratch_.c_str(), 0755), 0) << scratch_;
    state_dir_ = scratch_ + "/containers";
    root_ = "cairn-test/" + RandomHex();
    std::cerr << "cgroup root " << root_ << ", scratch " << scratch_ << "\n";

    absl::StatusOr<std::unique_ptr<Containerizer>> created =
        Containerizer::Create(kind(), root_, state_dir_);
    if (kind() == "cgroups" &&
        created.status().code() == absl::StatusCode::kFailedPrecondition) {
      GTEST_SKIP() << "cgroups unavailable: " << created.status();
    }
    ASSERT_TRUE(created.ok()) << created.status();
    containerizer_ = std::move(*created);
  }

  void TearDown() override {
    if (containerizer_ == nullptr) return;
    for (const std::string& id : containerizer_->Containers()) {
      EXPECT_TRUE(containerizer_->Destroy(id).ok()) << id;
    }
    for (pid_t pid : launched_) WaitExit(pid);
    // The root's own directories (and "cairn-test", unless another test
    // still uses it).
    for (const std::string& dir : containerizer_->CgroupDirs("x")) {
      std::string root_dir = dir.substr(0, dir.rfind('/'));
      EXPECT_EQ(rmdir(root_dir.c_str()), 0) << root_dir;
      rmdir(root_dir.substr(0, root_dir.rfind('/')).c_str());
    }
  }

  virtual std::string kind() const = 0;

  std::string Sandbox(const std::string& name) {
    std::string dir = scratch_ + "/" + name;
    EXPECT_EQ(mkdir(dir.c_str(), 0755), 0) << dir;
    return dir;
  }

  ContainerLaunchSpec Spec(const std::string& id,
                           std::vector<std::string> argv) {
    ContainerLaunchSpec spec;
    spec.container_id = id;
    spec.sandbox = Sandbox(id);
    spec.argv = std::move(argv);
    spec.env = {"PATH=/usr/bin:/bin"};
    return spec;
  }

  // Launches and remembers the pid so TearDown reaps it.
  pid_t Launch(const ContainerLaunchSpec& spec) {
    absl::StatusOr<pid_t> pid = containerizer_->Launch(spec);
    EXPECT_TRUE(pid.ok()) << pid.status();
    if (!pid.ok()) return -1;
    launched_.push_back(*pid);
    return *pid;
  }

  // Launches the tree helper and returns (leader, grandchild).
  std::pair<pid_t, pid_t> LaunchTree(const std::string& id, bool setsid) {
    ContainerLaunchSpec spec = Spec(id, {});
    std::string pidfile = spec.sandbox + "/grandchild.pid";
    spec.argv = {helper_, "tree", pidfile, setsid ? "1" : "0", "120"};
    pid_t leader = Launch(spec);
    pid_t grandchild = 0;
    EXPECT_TRUE(WaitUntil([&] {
      absl::StatusOr<std::string> text = cgroups::ReadFile(pidfile);
      return text.ok() &&
             absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &grandchild);
    })) << "the grandchild never wrote "
        << pidfile;
    return {leader, grandchild};
  }

  std::string helper_;
  std::string scratch_;
  std::string state_dir_;
  std::string root_;
  std::unique_ptr<Containerizer> containerizer_;
  std::vector<pid_t> launched_;
};

class CgroupsContainerizerTest : public ContainerizerTest {
 protected:
  std::string kind() const override { return "cgroups"; }
};

class PosixContainerizerTest : public ContainerizerTest {
 protected:
  std::string kind() const override { return "posix"; }
};

// ---- shared behaviour, checked for both kinds ------------------------------

void ExpectOutputInSandbox(ContainerizerTest* test, Containerizer* c,
                           const ContainerLaunchSpec& spec, pid_t pid) {
  ASSERT_GT(pid, 0);
  std::optional<int> status = WaitExit(pid);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  EXPECT_EQ(Contents(spec.sandbox + "/stdout"), "hi\n" + spec.sandbox + "\n");
  EXPECT_EQ(Contents(spec.sandbox + "/stderr"), "err\n");
  EXPECT_FALSE(c->Alive(spec.container_id));
  EXPECT_TRUE(c->Destroy(spec.container_id).ok());
}

TEST_F(CgroupsContainerizerTest, WritesStdoutAndStderrToSandboxFiles) {
  EXPECT_THAT(containerizer_->isolation(), HasSubstr("cgroups/v"));
  ContainerLaunchSpec spec =
      Spec("out", {"/bin/sh", "-c", "echo hi; echo err >&2; pwd"});
  ExpectOutputInSandbox(this, containerizer_.get(), spec, Launch(spec));
}

TEST_F(PosixContainerizerTest, WritesStdoutAndStderrToSandboxFiles) {
  EXPECT_EQ(containerizer_->isolation(), "posix");
  ContainerLaunchSpec spec =
      Spec("out", {"/bin/sh", "-c", "echo hi; echo err >&2; pwd"});
  ExpectOutputInSandbox(this, containerizer_.get(), spec, Launch(spec));
}

TEST_F(CgroupsContainerizerTest, EnvironmentIsExactlyTheGivenOne) {
  ContainerLaunchSpec spec = Spec("env", {"/usr/bin/env"});
  spec.env = {"FOO=bar", "EMPTY=", "WITH_EQUALS=a=b"};
  pid_t pid = Launch(spec);
  ASSERT_TRUE(WaitExit(pid).has_value());
  EXPECT_EQ(Contents(spec.sandbox + "/stdout"),
            "FOO=bar\nEMPTY=\nWITH_EQUALS=a=b\n");
}

TEST_F(CgroupsContainerizerTest, ProcessRunsInItsOwnSessionInsideItsCgroups) {
  ContainerLaunchSpec spec = Spec("inside", {"/bin/sleep", "120"});
  spec.limits.cpus = 0.5;
  spec.limits.mem_bytes = 64 << 20;
  pid_t pid = Launch(spec);
  ASSERT_GT(pid, 0);
  std::vector<std::string> dirs = containerizer_->CgroupDirs("inside");
  ASSERT_FALSE(dirs.empty());
  for (const std::string& dir : dirs) {
    EXPECT_THAT(dir, HasSubstr(root_ + "/inside"));
    std::vector<std::string> procs = absl::StrSplit(
        Contents(dir + "/cgroup.procs"), '\n', absl::SkipEmpty());
    EXPECT_THAT(procs, ::testing::ElementsAre(absl::StrCat(pid))) << dir;
  }
  EXPECT_EQ(getsid(pid), pid);
  EXPECT_NE(getpgid(pid), getpgrp());
  EXPECT_TRUE(containerizer_->Alive("inside"));
  EXPECT_FALSE(containerizer_->CheckLimitation("inside").has_value());

  ASSERT_TRUE(containerizer_->Destroy("inside").ok());
  std::optional<int> status = WaitExit(pid);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
  EXPECT_FALSE(containerizer_->Alive("inside"));
  for (const std::string& dir : dirs) EXPECT_FALSE(Exists(dir)) << dir;
}

TEST_F(CgroupsContainerizerTest, MemoryLimitKillsAndIsReportedAsLimitation) {
  ContainerLaunchSpec spec = Spec("oom", {helper_, "alloc", "256"});
  spec.limits.mem_bytes = 32 << 20;
  pid_t pid = Launch(spec);
  ASSERT_GT(pid, 0);
  std::optional<int> status = WaitExit(pid);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL)
      << "exit status " << *status;
  std::optional<Limitation> limitation = containerizer_->CheckLimitation("oom");
  ASSERT_TRUE(limitation.has_value());
  EXPECT_EQ(limitation->reason,
            v1::TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY);
  EXPECT_THAT(
      limitation->message,
      HasSubstr("Memory limit exceeded: Requested: 32MB Maximum Used: "));
  std::cerr << limitation->message << "\n";
}

void ExpectUsageOfBusyChild(Containerizer* c, const std::string& id,
                            bool cgroups) {
  v1::ResourceStatistics stats;
  bool reported = WaitUntil([&] {
    absl::StatusOr<v1::ResourceStatistics> usage = c->Usage(id);
    if (!usage.ok()) return false;
    stats = *usage;
    return stats.cpus_user_time_secs() + stats.cpus_system_time_secs() >= 0.2 &&
           stats.mem_rss_bytes() >= (32u << 20);
  });
  EXPECT_TRUE(reported) << stats.DebugString();
  EXPECT_GT(stats.timestamp(), 1.6e9);
  EXPECT_EQ(stats.processes(), 1u);
  EXPECT_GE(stats.threads(), 1u);
  EXPECT_GE(stats.mem_total_bytes(), 32u << 20);
  EXPECT_DOUBLE_EQ(stats.cpus_limit(), 0.5);
  EXPECT_EQ(stats.mem_limit_bytes(), 256u << 20);
  if (cgroups) {
    EXPECT_GT(stats.cpus_nr_periods(), 0u);
  }
}

TEST_F(CgroupsContainerizerTest, UsageReportsCpuTimeAndMemory) {
  ContainerLaunchSpec spec = Spec("busy", {helper_, "busy", "32", "120"});
  spec.limits.cpus = 0.5;
  spec.limits.mem_bytes = 256 << 20;
  ASSERT_GT(Launch(spec), 0);
  ExpectUsageOfBusyChild(containerizer_.get(), "busy", true);
  EXPECT_EQ(containerizer_->Usage("nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PosixContainerizerTest, UsageReportsCpuTimeAndMemory) {
  ContainerLaunchSpec spec = Spec("busy", {helper_, "busy", "32", "120"});
  spec.limits.cpus = 0.5;
  spec.limits.mem_bytes = 256 << 20;
  ASSERT_GT(Launch(spec), 0);
  ExpectUsageOfBusyChild(containerizer_.get(), "busy", false);
}

TEST_F(CgroupsContainerizerTest,
       DestroyKillsTreeWithDoubleForkedGrandchildInNewSession) {
  auto [leader, grandchild] = LaunchTree("tree", /*setsid=*/true);
  ASSERT_GT(grandchild, 0);
  EXPECT_NE(getsid(grandchild), leader);  // it left the session...
  std::vector<std::string> dirs = containerizer_->CgroupDirs("tree");
  EXPECT_THAT(Contents(dirs.front() + "/cgroup.procs"),
              HasSubstr(absl::StrCat(grandchild)));  // ...not the cgroup

  ASSERT_TRUE(containerizer_->Destroy("tree").ok());
  std::optional<int> status = WaitExit(leader);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
  EXPECT_TRUE(WaitUntil([&] { return !ProcessAlive(grandchild); }));
  for (const std::string& dir : dirs) EXPECT_FALSE(Exists(dir)) << dir;
  EXPECT_TRUE(containerizer_->Destroy("tree").ok());  // idempotent
}

TEST_F(PosixContainerizerTest, DestroyKillsTreeWithDoubleForkedGrandchild) {
  auto [leader, grandchild] = LaunchTree("tree", /*setsid=*/false);
  ASSERT_GT(grandchild, 0);
  EXPECT_EQ(getsid(grandchild), leader);
  EXPECT_TRUE(containerizer_->Alive("tree"));

  ASSERT_TRUE(containerizer_->Destroy("tree").ok());
  std::optional<int> status = WaitExit(leader);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
  EXPECT_FALSE(ProcessAlive(grandchild));  // Destroy waited for it
  EXPECT_FALSE(containerizer_->Alive("tree"));
  EXPECT_FALSE(Exists(state_dir_ + "/tree"));
  EXPECT_TRUE(containerizer_->Destroy("tree").ok());  // idempotent
}

void ExpectRecoverDestroysOrphansAndAdoptsWanted(ContainerizerTest* test,
                                                 Containerizer* before,
                                                 Containerizer* after,
                                                 pid_t keep, pid_t orphan) {
  ASSERT_GT(keep, 0);
  ASSERT_GT(orphan, 0);
  ASSERT_TRUE(after->Recover({{"keep", keep}}).ok());
  std::optional<int> status = WaitExit(orphan);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
  EXPECT_EQ(after->Containers(), std::vector<std::string>{"keep"});
  EXPECT_TRUE(after->Alive("keep"));
  EXPECT_TRUE(ProcessAlive(keep));
  EXPECT_FALSE(after->Alive("orphan"));
  for (const std::string& dir : after->CgroupDirs("orphan")) {
    EXPECT_FALSE(Exists(dir)) << dir;
  }
  EXPECT_TRUE(after->Usage("keep").ok());
  ASSERT_TRUE(after->Destroy("keep").ok());
  status = WaitExit(keep);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
}

TEST_F(CgroupsContainerizerTest, RecoverDestroysOrphansAndAdoptsWanted) {
  pid_t keep = Launch(Spec("keep", {"/bin/sleep", "120"}));
  pid_t orphan = Launch(Spec("orphan", {"/bin/sleep", "120"}));
  // The agent "restarts": a new containerizer on the same root; this one
  // has no state directory, so orphans are found by their cgroups alone.
  absl::StatusOr<std::unique_ptr<Containerizer>> after =
      Containerizer::Create("cgroups", root_);
  ASSERT_TRUE(after.ok()) << after.status();
  ExpectRecoverDestroysOrphansAndAdoptsWanted(this, containerizer_.get(),
                                              after->get(), keep, orphan);
  containerizer_ = std::move(*after);
}

TEST_F(PosixContainerizerTest, RecoverDestroysOrphansAndAdoptsWanted) {
  pid_t keep = Launch(Spec("keep", {"/bin/sleep", "120"}));
  pid_t orphan = Launch(Spec("orphan", {"/bin/sleep", "120"}));
  absl::StatusOr<std::unique_ptr<Containerizer>> after =
      Containerizer::Create("posix", root_, state_dir_);
  ASSERT_TRUE(after.ok()) << after.status();
  ExpectRecoverDestroysOrphansAndAdoptsWanted(this, containerizer_.get(),
                                              after->get(), keep, orphan);
  EXPECT_FALSE(Exists(state_dir_ + "/orphan"));
  containerizer_ = std::move(*after);
}

TEST_F(PosixContainerizerTest, RecoverRefusesAReusedPid) {
  // The record says "keep" started at some time; the checkpoint names a pid
  // that is now a different process (this test's own): it is not adopted as
  // alive, and nothing is killed.
  ASSERT_EQ(mkdir(state_dir_.c_str(), 0755) == 0 || errno == EEXIST, true);
  std::string record = state_dir_ + "/keep";
  FILE* file = fopen(record.c_str(), "w");
  ASSERT_NE(file, nullptr);
  fprintf(file, "%d 1 0 0\n", static_cast<int>(getpid()));
  fclose(file);
  ASSERT_TRUE(containerizer_->Recover({{"keep", getpid()}}).ok());
  EXPECT_FALSE(containerizer_->Alive("keep"));
  ASSERT_TRUE(containerizer_->Destroy("keep").ok());
  EXPECT_TRUE(ProcessAlive(getpid()));
}

void ExpectFailedExecNamesPath(Containerizer* c, ContainerizerTest* test,
                               const ContainerLaunchSpec& spec) {
  absl::StatusOr<pid_t> pid = c->Launch(spec);
  EXPECT_EQ(pid.status().code(), absl::StatusCode::kNotFound) << pid.status();
  EXPECT_THAT(pid.status().message(), HasSubstr("/nonexistent/cairn-executor"));
  EXPECT_TRUE(c->Containers().empty());
  for (const std::string& dir : c->CgroupDirs(spec.container_id)) {
    EXPECT_FALSE(Exists(dir)) << dir;
  }
}

TEST_F(CgroupsContainerizerTest, FailedExecIsAnErrorNamingThePath) {
  ContainerLaunchSpec spec = Spec("noexec", {"/nonexistent/cairn-executor"});
  spec.limits.mem_bytes = 64 << 20;
  ExpectFailedExecNamesPath(containerizer_.get(), this, spec);
  // The id is free again.
  spec.argv = {"/bin/true"};
  pid_t pid = Launch(spec);
  ASSERT_TRUE(WaitExit(pid).has_value());
}

TEST_F(PosixContainerizerTest, FailedExecIsAnErrorNamingThePath) {
  ContainerLaunchSpec spec = Spec("noexec", {"/nonexistent/cairn-executor"});
  ExpectFailedExecNamesPath(containerizer_.get(), this, spec);
  EXPECT_FALSE(Exists(state_dir_ + "/noexec"));
}

TEST_F(PosixContainerizerTest, RejectsBadLaunchSpecNamingTheField) {
  auto expect_invalid = [&](const ContainerLaunchSpec& spec,
                            const std::string& field) {
    absl::StatusOr<pid_t> pid = containerizer_->Launch(spec);
    EXPECT_EQ(pid.status().code(), absl::StatusCode::kInvalidArgument)
        << pid.status();
    EXPECT_THAT(pid.status().message(), HasSubstr(field));
  };
  ContainerLaunchSpec good = Spec("good", {"/bin/sleep", "120"});
  ContainerLaunchSpec spec = good;
  spec.container_id = "../escape";
  expect_invalid(spec, "container_id");
  spec = good;
  spec.container_id = "";
  expect_invalid(spec, "container_id");
  spec = good;
  spec.sandbox = scratch_ + "/missing";
  expect_invalid(spec, "sandbox");
  spec = good;
  spec.argv = {"sleep", "1"};
  expect_invalid(spec, "argv[0]");
  spec = good;
  spec.argv = {};
  expect_invalid(spec, "argv[0]");
  spec = good;
  spec.env = {"PATH=/bin", "NOEQUALS"};
  expect_invalid(spec, "env[1]");
  spec = good;
  spec.limits.cpus = -1;
  expect_invalid(spec, "limits.cpus");
  EXPECT_TRUE(containerizer_->Containers().empty());

  ASSERT_GT(Launch(good), 0);
  EXPECT_EQ(containerizer_->Launch(good).status().code(),
            absl::StatusCode::kAlreadyExists);
}

// Several threads launch, inspect and destroy their own containers at once.
void ExpectConcurrentContainersStayApart(
    ContainerizerTest* test, Containerizer* c,
    const std::vector<ContainerLaunchSpec>& specs) {
  std::vector<std::thread> threads;
  std::vector<std::string> errors(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<pid_t> pid = c->Launch(specs[i]);
      if (!pid.ok()) {
        errors[i] = pid.status().ToString();
        return;
      }
      if (!c->Alive(specs[i].container_id)) errors[i] += "not alive; ";
      absl::StatusOr<v1::ResourceStatistics> usage =
          c->Usage(specs[i].container_id);
      if (!usage.ok() || usage->processes() != 1) {
        errors[i] += "usage: " + (usage.ok() ? usage->DebugString()
                                             : usage.status().ToString());
      }
      absl::Status destroyed = c->Destroy(specs[i].container_id);
      if (!destroyed.ok()) errors[i] += destroyed.ToString();
      std::optional<int> status = WaitExit(*pid);
      if (!status || !WIFSIGNALED(*status)) errors[i] += "not killed; ";
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ(errors[i], "") << specs[i].container_id;
  }
  EXPECT_TRUE(c->Containers().empty());
}

TEST_F(CgroupsContainerizerTest, ConcurrentContainersStayApart) {
  std::vector<ContainerLaunchSpec> specs;
  for (int i = 0; i < 6; ++i) {
    specs.push_back(Spec(absl::StrCat("c", i), {"/bin/sleep", "120"}));
    specs.back().limits.mem_bytes = 64 << 20;
  }
  ExpectConcurrentContainersStayApart(this, containerizer_.get(), specs);
}

TEST_F(PosixContainerizerTest, ConcurrentContainersStayApart) {
  std::vector<ContainerLaunchSpec> specs;
  for (int i = 0; i < 6; ++i) {
    specs.push_back(Spec(absl::StrCat("c", i), {"/bin/sleep", "120"}));
  }
  ExpectConcurrentContainersStayApart(this, containerizer_.get(), specs);
}

TEST(ContainerizerCreateTest, RejectsUnknownKindAndBadRoot) {
  absl::StatusOr<std::unique_ptr<Containerizer>> created =
      Containerizer::Create("docker", "cairn/a");
  EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(created.status().message(), HasSubstr("docker"));
  for (const char* root : {"", "/abs", "a/../b", "a//b", "a b"}) {
    created = Containerizer::Create("posix", root);
    EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument)
        << root;
    EXPECT_THAT(created.status().message(), HasSubstr("root")) << root;
  }
}

TEST(CgroupsTest, FormatsBytesAsMesosDoes) {
  EXPECT_EQ(cgroups::FormatBytes(0), "0B");
  EXPECT_EQ(cgroups::FormatBytes(100), "100B");
  EXPECT_EQ(cgroups::FormatBytes(1536 * 1024), "1536KB");
  EXPECT_EQ(cgroups::FormatBytes(64 << 20), "64MB");
  EXPECT_EQ(cgroups::FormatBytes(uint64_t{2} << 30), "2GB");
}

}  // namespace
}  // namespace agent
}  // namespace cairn
