#include "agent/checkpoint.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace cairn {
namespace agent {
namespace {

namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = absl::StrCat(
        tmp != nullptr ? tmp : "/tmp", "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }

  static void WriteRaw(const std::string& path, const std::string& data) {
    fs::create_directories(fs::path(path).parent_path());
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr) << path;
    ASSERT_EQ(std::fwrite(data.data(), 1, data.size(), f), data.size());
    std::fclose(f);
  }

  static std::string ReadRaw(const std::string& path) {
    absl::StatusOr<std::string> data = ReadFile(path);
    EXPECT_TRUE(data.ok()) << data.status();
    return data.ok() ? *data : "";
  }

  std::string dir_;
};

v1::FrameworkID Fid(const std::string& value) {
  v1::FrameworkID id;
  id.set_value(value);
  return id;
}

v1::FrameworkInfo Framework(const std::string& id) {
  v1::FrameworkInfo info;
  info.mutable_id()->set_value(id);
  info.set_name("framework " + id);
  info.set_user("nobody");
  return info;
}

v1::ExecutorInfo Executor(const std::string& id) {
  v1::ExecutorInfo info;
  info.mutable_executor_id()->set_value(id);
  info.set_name("executor " + id);
  info.mutable_command()->set_value("sleep 1000");
  return info;
}

v1::ContainerID Cid(const std::string& value) {
  v1::ContainerID id;
  id.set_value(value);
  return id;
}

v1::TaskInfo Task(const std::string& id) {
  v1::TaskInfo info;
  info.set_name("task " + id);
  info.mutable_task_id()->set_value(id);
  info.mutable_agent_id()->set_value("agent-1");
  return info;
}

// ---- Files ------------------------------------------------------------------

TEST_F(CheckpointTest, WriteFileAtomicallyCreatesParentsAndReplaces) {
  const std::string path = dir_ + "/a/b/c/file";
  ASSERT_TRUE(WriteFileAtomically(path, "one").ok());
  EXPECT_EQ(ReadRaw(path), "one");
  ASSERT_TRUE(WriteFileAtomically(path, "two, longer").ok());
  EXPECT_EQ(ReadRaw(path), "two, longer");
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST_F(CheckpointTest, LeftoverTmpIsIgnoredByReadsAndRemovedByRecover) {
  MetaStore store(dir_);
  v1::AgentInfo info;
  info.set_hostname("host");
  ASSERT_TRUE(store.CheckpointAgentInfo(info).ok());
  // A crash mid-way through the next write leaves a partial .tmp.
  const std::string path = store.meta_dir() + "/agent.ckpt";
  WriteRaw(path + ".tmp", "partial garbage");

  v1::AgentInfo read;
  ASSERT_TRUE(ReadProtoFile(path, &read).ok());
  EXPECT_EQ(read.hostname(), "host");

  absl::StatusOr<RecoveredState> state = store.Recover(/*strict=*/true);
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_TRUE(state->agent_info.has_value());
  EXPECT_EQ(state->agent_info->hostname(), "host");
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  ASSERT_EQ(state->warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(state->warnings[0], "agent.ckpt.tmp"));
}

TEST_F(CheckpointTest, ReadProtoFileRoundTrips) {
  const std::string path = dir_ + "/framework.ckpt";
  ASSERT_TRUE(WriteProtoFile(path, Framework("f1")).ok());
  v1::FrameworkInfo read;
  ASSERT_TRUE(ReadProtoFile(path, &read).ok());
  EXPECT_EQ(read.SerializeAsString(), Framework("f1").SerializeAsString());
}

TEST_F(CheckpointTest, ReadProtoFileMissingIsNotFound) {
  v1::FrameworkInfo read;
  EXPECT_EQ(ReadProtoFile(dir_ + "/nothing", &read).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(CheckpointTest, ReadProtoFileDetectsEveryTruncation) {
  const std::string path = dir_ + "/framework.ckpt";
  const std::string framed = FrameProto(Framework("f1"));
  for (size_t size = 0; size < framed.size(); ++size) {
    WriteRaw(path, framed.substr(0, size));
    v1::FrameworkInfo read;
    absl::Status status = ReadProtoFile(path, &read);
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << size;
    EXPECT_TRUE(absl::StrContains(status.message(), path)) << status;
  }
}

TEST_F(CheckpointTest, ReadProtoFileDetectsEveryFlippedByte) {
  const std::string path = dir_ + "/framework.ckpt";
  const std::string framed = FrameProto(Framework("f1"));
  for (size_t i = 0; i < framed.size(); ++i) {
    std::string damaged = framed;
    damaged[i] ^= 0x20;
    WriteRaw(path, damaged);
    v1::FrameworkInfo read;
    absl::Status status = ReadProtoFile(path, &read);
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << i;
    EXPECT_TRUE(absl::StrContains(status.message(), path)) << status;
  }
}

TEST_F(CheckpointTest, ReadProtoFileDetectsTrailingBytes) {
  const std::string path = dir_ + "/framework.ckpt";
  WriteRaw(path, FrameProto(Framework("f1")) + "x");
  v1::FrameworkInfo read;
  EXPECT_EQ(ReadProtoFile(path, &read).code(), absl::StatusCode::kDataLoss);
}

TEST_F(CheckpointTest, EscapeIdIsSafeAndReversible) {
  for (const std::string& id : std::vector<std::string>{
           "plain-id_1.2", ".", "..", ".hidden", "a/b", "../x", "%41", "x y\n",
           std::string("\0\xff", 2)}) {
    absl::StatusOr<std::string> name = EscapeId(id);
    ASSERT_TRUE(name.ok()) << id;
    EXPECT_FALSE(absl::StrContains(*name, "/")) << *name;
    EXPECT_NE(name->front(), '.') << *name;
    absl::StatusOr<std::string> back = UnescapeId(*name);
    ASSERT_TRUE(back.ok()) << *name;
    EXPECT_EQ(*back, id);
  }
  EXPECT_EQ(*EscapeId("plain-id_1.2"), "plain-id_1.2");
  EXPECT_NE(*EscapeId("%41"), *EscapeId("A"));
  EXPECT_EQ(EscapeId("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EscapeId(std::string(200, '/')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UnescapeId("%4").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UnescapeId("%zz").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CheckpointTest, HostBootIdIsReadable) {
  absl::StatusOr<std::string> boot_id = ReadHostBootId();
  ASSERT_TRUE(boot_id.ok()) << boot_id.status();
  EXPECT_EQ(boot_id->size(), 36u) << *boot_id;
}

// ---- MetaStore --------------------------------------------------------------

// Two frameworks; f1 has an executor with two runs (the latest with a pid and
// two tasks) and a completed executor; f2 an executor without a pid.
void CheckpointEverything(MetaStore& store) {
  v1::AgentInfo agent;
  agent.set_hostname("host-1");
  agent.mutable_id()->set_value("agent-1");
  ASSERT_TRUE(store.CheckpointAgentInfo(agent).ok());
  ASSERT_TRUE(store.CheckpointBootId("boot-1").ok());

  ASSERT_TRUE(store.CheckpointFramework(Framework("f1")).ok());
  ASSERT_TRUE(store.CheckpointFramework(Framework("f/2")).ok());

  ASSERT_TRUE(
      store.CheckpointExecutor(Fid("f1"), Executor("e1"), Cid("c0")).ok());
  ASSERT_TRUE(store
                  .CheckpointTask(Fid("f1"), Executor("e1").executor_id(),
                                  Cid("c0"), Task("old"))
                  .ok());
  ASSERT_TRUE(store
                  .MarkExecutorRunCompleted(
                      Fid("f1"), Executor("e1").executor_id(), Cid("c0"))
                  .ok());
  ASSERT_TRUE(
      store.CheckpointExecutor(Fid("f1"), Executor("e1"), Cid("c1")).ok());
  ASSERT_TRUE(store
                  .CheckpointExecutorPid(Fid("f1"),
                                         Executor("e1").executor_id(),
                                         Cid("c1"), 4242, 987654321)
                  .ok());
  ASSERT_TRUE(store
                  .CheckpointTask(Fid("f1"), Executor("e1").executor_id(),
                                  Cid("c1"), Task("t2"))
                  .ok());
  ASSERT_TRUE(store
                  .CheckpointTask(Fid("f1"), Executor("e1").executor_id(),
                                  Cid("c1"), Task("t1"))
                  .ok());

  ASSERT_TRUE(
      store.CheckpointExecutor(Fid("f1"), Executor("e2"), Cid("c2")).ok());
  ASSERT_TRUE(store
                  .CheckpointExecutorPid(
                      Fid("f1"), Executor("e2").executor_id(), Cid("c2"), 7, 8)
                  .ok());
  ASSERT_TRUE(store
                  .MarkExecutorRunCompleted(
                      Fid("f1"), Executor("e2").executor_id(), Cid("c2"))
                  .ok());

  ASSERT_TRUE(
      store.CheckpointExecutor(Fid("f/2"), Executor("e/3"), Cid("c3")).ok());
  ASSERT_TRUE(store
                  .CheckpointTask(Fid("f/2"), Executor("e/3").executor_id(),
                                  Cid("c3"), Task("t/3"))
                  .ok());
}

TEST_F(CheckpointTest, MetaStoreRoundTripsEverything) {
  {
    MetaStore store(dir_);
    CheckpointEverything(store);
  }
  MetaStore store(dir_);
  absl::StatusOr<RecoveredState> state = store.Recover(/*strict=*/true);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_TRUE(state->warnings.empty());
  ASSERT_TRUE(state->agent_info.has_value());
  EXPECT_EQ(state->agent_info->id().value(), "agent-1");
  EXPECT_EQ(state->agent_info->hostname(), "host-1");
  EXPECT_EQ(state->boot_id, "boot-1");

  ASSERT_EQ(state->frameworks.size(), 2u);
  // Ordered by escaped id: "f%2F2" < "f1".
  const RecoveredFramework& f2 = state->frameworks[0];
  const RecoveredFramework& f1 = state->frameworks[1];
  EXPECT_EQ(f1.info.SerializeAsString(), Framework("f1").SerializeAsString());
  EXPECT_EQ(f2.info.id().value(), "f/2");

  ASSERT_EQ(f1.executors.size(), 2u);
  const RecoveredExecutor& e1 = f1.executors[0];
  EXPECT_EQ(e1.executor_id.value(), "e1");
  EXPECT_EQ(e1.latest_run.container_id.value(), "c1");
  EXPECT_EQ(e1.latest_run.executor_info.SerializeAsString(),
            Executor("e1").SerializeAsString());
  EXPECT_EQ(e1.latest_run.pid, 4242);
  EXPECT_EQ(e1.latest_run.start_time, 987654321u);
  EXPECT_FALSE(e1.latest_run.completed);
  ASSERT_EQ(e1.latest_run.tasks.size(), 2u);
  EXPECT_EQ(e1.latest_run.tasks[0].SerializeAsString(),
            Task("t1").SerializeAsString());
  EXPECT_EQ(e1.latest_run.tasks[1].task_id().value(), "t2");

  const RecoveredExecutor& e2 = f1.executors[1];
  EXPECT_EQ(e2.executor_id.value(), "e2");
  EXPECT_TRUE(e2.latest_run.completed);
  EXPECT_EQ(e2.latest_run.pid, 7);
  EXPECT_TRUE(e2.latest_run.tasks.empty());

  ASSERT_EQ(f2.executors.size(), 1u);
  EXPECT_EQ(f2.executors[0].executor_id.value(), "e/3");
  EXPECT_FALSE(f2.executors[0].latest_run.pid.has_value());
  ASSERT_EQ(f2.executors[0].latest_run.tasks.size(), 1u);
  EXPECT_EQ(f2.executors[0].latest_run.tasks[0].task_id().value(), "t/3");
}

TEST_F(CheckpointTest, EmptyWorkDirRecoversNothing) {
  MetaStore store(dir_ + "/never-written");
  absl::StatusOr<RecoveredState> state = store.Recover(/*strict=*/true);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_FALSE(state->agent_info.has_value());
  EXPECT_FALSE(state->boot_id.has_value());
  EXPECT_TRUE(state->frameworks.empty());
  EXPECT_TRUE(state->warnings.empty());
}

TEST_F(CheckpointTest, CheckpointsInUnknownRunAreRefused) {
  MetaStore store(dir_);
  ASSERT_TRUE(store.CheckpointFramework(Framework("f1")).ok());
  const v1::ExecutorID eid = Executor("e1").executor_id();
  EXPECT_EQ(store.CheckpointTask(Fid("f1"), eid, Cid("c1"), Task("t1")).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store.CheckpointExecutorPid(Fid("f1"), eid, Cid("c1"), 1, 1).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store.MarkExecutorRunCompleted(Fid("f1"), eid, Cid("c1")).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(CheckpointTest, MissingIdsAreInvalidArgumentNamingTheField) {
  MetaStore store(dir_);
  absl::Status status = store.CheckpointFramework(v1::FrameworkInfo());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "framework_id")) << status;

  ASSERT_TRUE(store.CheckpointFramework(Framework("f1")).ok());
  status =
      store.CheckpointExecutor(Fid("f1"), Executor("e1"), v1::ContainerID());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "container_id")) << status;

  ASSERT_TRUE(
      store.CheckpointExecutor(Fid("f1"), Executor("e1"), Cid("c1")).ok());
  status = store.CheckpointTask(Fid("f1"), Executor("e1").executor_id(),
                                Cid("c1"), v1::TaskInfo());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "task_id")) << status;
}

TEST_F(CheckpointTest, CorruptTaskFileIsAnErrorWhenStrictElseSkipped) {
  MetaStore store(dir_);
  CheckpointEverything(store);
  const std::string task_file = store.meta_dir() +
                                "/frameworks/f1/executors/e1/runs/c1/tasks/t1/"
                                "task.ckpt";
  std::string data = ReadRaw(task_file);
  ASSERT_FALSE(data.empty());
  data[data.size() / 2] ^= 0x01;
  WriteRaw(task_file, data);

  absl::StatusOr<RecoveredState> strict = store.Recover(/*strict=*/true);
  EXPECT_EQ(strict.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(strict.status().message(), task_file))
      << strict.status();

  absl::StatusOr<RecoveredState> lenient = store.Recover(/*strict=*/false);
  ASSERT_TRUE(lenient.ok()) << lenient.status();
  ASSERT_EQ(lenient->warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(lenient->warnings[0], task_file))
      << lenient->warnings[0];
  // Only that task is gone.
  const RecoveredExecutorRun& run =
      lenient->frameworks[1].executors[0].latest_run;
  ASSERT_EQ(run.tasks.size(), 1u);
  EXPECT_EQ(run.tasks[0].task_id().value(), "t2");
  EXPECT_EQ(lenient->frameworks[0].executors.size(), 1u);
}

TEST_F(CheckpointTest, TruncatedFrameworkFileSkipsTheFrameworkWhenLenient) {
  MetaStore store(dir_);
  CheckpointEverything(store);
  const std::string file = store.meta_dir() + "/frameworks/f1/framework.ckpt";
  const std::string data = ReadRaw(file);
  WriteRaw(file, data.substr(0, data.size() - 3));

  EXPECT_EQ(store.Recover(/*strict=*/true).status().code(),
            absl::StatusCode::kDataLoss);
  absl::StatusOr<RecoveredState> lenient = store.Recover(/*strict=*/false);
  ASSERT_TRUE(lenient.ok()) << lenient.status();
  ASSERT_EQ(lenient->frameworks.size(), 1u);
  EXPECT_EQ(lenient->frameworks[0].info.id().value(), "f/2");
  EXPECT_EQ(lenient->warnings.size(), 1u);
}

TEST_F(CheckpointTest, CorruptAgentInfoIsSkippedWhenLenient) {
  MetaStore store(dir_);
  CheckpointEverything(store);
  WriteRaw(store.meta_dir() + "/agent.ckpt", "not a checkpoint at all");
  EXPECT_EQ(store.Recover(/*strict=*/true).status().code(),
            absl::StatusCode::kDataLoss);
  absl::StatusOr<RecoveredState> lenient = store.Recover(/*strict=*/false);
  ASSERT_TRUE(lenient.ok());
  EXPECT_FALSE(lenient->agent_info.has_value());
  EXPECT_EQ(lenient->frameworks.size(), 2u);
}

TEST_F(CheckpointTest, CrashLeftoversAreSkippedWithWarningsEvenWhenStrict) {
  MetaStore store(dir_);
  ASSERT_TRUE(store.CheckpointFramework(Framework("f1")).ok());
  // A framework directory whose record was never renamed into place, and an
  // executor run whose latest.ckpt was never written.
  WriteRaw(store.meta_dir() + "/frameworks/f9/framework.ckpt.tmp", "x");
  v1::ExecutorRunCheckpoint run;
  *run.mutable_executor_info() = Executor("e1");
  *run.mutable_container_id() = Cid("c1");
  ASSERT_TRUE(WriteProtoFile(store.meta_dir() +
                                 "/frameworks/f1/executors/e1/runs/c1/"
                                 "executor.ckpt",
                             run)
                  .ok());
  absl::StatusOr<RecoveredState> state = store.Recover(/*strict=*/true);
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_EQ(state->frameworks.size(), 1u);
  EXPECT_TRUE(state->frameworks[0].executors.empty());
  // The .tmp removed, then f9 (empty) and e1 skipped.
  EXPECT_EQ(state->warnings.size(), 3u);
}

TEST_F(CheckpointTest, RemoveFrameworkAndExecutor) {
  MetaStore store(dir_);
  CheckpointEverything(store);
  ASSERT_TRUE(
      store.RemoveExecutor(Fid("f1"), Executor("e2").executor_id()).ok());
  ASSERT_TRUE(store.RemoveFramework(Fid("f/2")).ok());
  ASSERT_TRUE(store.RemoveFramework(Fid("never")).ok());
  absl::StatusOr<RecoveredState> state = store.Recover(/*strict=*/true);
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_EQ(state->frameworks.size(), 1u);
  EXPECT_EQ(state->frameworks[0].info.id().value(), "f1");
  ASSERT_EQ(state->frameworks[0].executors.size(), 1u);
  EXPECT_EQ(state->frameworks[0].executors[0].executor_id.value(), "e1");
}

TEST_F(CheckpointTest, InterruptedRemovalIsFinishedByRecover) {
  MetaStore store(dir_);
  CheckpointEverything(store);
  // As if RemoveFramework crashed after its rename.
  const std::string frameworks = store.meta_dir() + "/frameworks";
  ASSERT_EQ(::rename((frameworks + "/f1").c_str(),
                     (frameworks + "/.f1.removing").c_str()),
            0);
  absl::StatusOr<RecoveredState> state = store.Recover(/*strict=*/true);
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_EQ(state->frameworks.size(), 1u);
  EXPECT_EQ(state->frameworks[0].info.id().value(), "f/2");
  EXPECT_FALSE(fs::exists(frameworks + "/.f1.removing"));
  EXPECT_EQ(state->warnings.size(), 1u);
}

}  // namespace
}  // namespace agent
}  // namespace cairn
