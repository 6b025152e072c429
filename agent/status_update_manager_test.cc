#include "agent/status_update_manager.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/checkpoint.h"
#include "gtest/gtest.h"

namespace cairn {
namespace agent {
namespace {

namespace fs = std::filesystem;

v1::FrameworkID Fid(const std::string& value) {
  v1::FrameworkID id;
  id.set_value(value);
  return id;
}

v1::TaskID Tid(const std::string& value) {
  v1::TaskID id;
  id.set_value(value);
  return id;
}

// A 16-byte uuid for `n`.
std::string Uuid(uint64_t n) {
  std::string uuid(16, '\0');
  for (int i = 0; i < 8; ++i) uuid[15 - i] = static_cast<char>(n >> (8 * i));
  uuid[0] = 'u';
  return uuid;
}

v1::TaskStatus Status(const std::string& task_id, v1::TaskState state,
                      uint64_t uuid) {
  v1::TaskStatus status;
  status.mutable_task_id()->set_value(task_id);
  status.set_state(state);
  status.set_source(v1::TaskStatus::SOURCE_EXECUTOR);
  status.set_uuid(Uuid(uuid));
  status.set_message(absl::StrCat("update ", uuid));
  return status;
}

std::vector<std::string> Uuids(const std::vector<v1::TaskStatus>& statuses) {
  std::vector<std::string> uuids;
  for (const v1::TaskStatus& status : statuses) uuids.push_back(status.uuid());
  return uuids;
}

std::vector<std::string> Uuids(
    const std::vector<v1::AgentCall::Update>& updates) {
  std::vector<std::string> uuids;
  for (const auto& update : updates) uuids.push_back(update.status().uuid());
  return uuids;
}

const absl::Time kT0 = absl::FromUnixSeconds(1800000000);

class StatusUpdateManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    meta_dir_ = absl::StrCat(
        tmp != nullptr ? tmp : "/tmp", "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name(),
        "/meta");
    fs::remove_all(meta_dir_);
    fs::create_directories(meta_dir_);
  }

  StatusUpdateManagerOptions Options(bool strict = false) const {
    StatusUpdateManagerOptions options;
    options.meta_dir = meta_dir_;
    options.strict = strict;
    return options;
  }

  // A manager over meta_dir_, recovered; its warnings in `warnings`.
  std::unique_ptr<StatusUpdateManager> Open(
      std::vector<std::string>* warnings = nullptr, bool strict = false) {
    auto manager = std::make_unique<StatusUpdateManager>(Options(strict));
    absl::StatusOr<std::vector<std::string>> recovered = manager->Recover();
    EXPECT_TRUE(recovered.ok()) << recovered.status();
    if (warnings != nullptr && recovered.ok()) *warnings = *recovered;
    return manager;
  }

  std::string StreamFile(const std::string& framework_id,
                         const std::string& task_id) const {
    return absl::StrCat(meta_dir_, "/updates/", EscapeId(framework_id).value(),
                        "/", EscapeId(task_id).value(), ".updates");
  }

  void Add(StatusUpdateManager& manager, const std::string& task_id,
           v1::TaskState state, uint64_t uuid, const std::string& fid = "f1") {
    absl::StatusOr<bool> added =
        manager.Update(Fid(fid), Status(task_id, state, uuid));
    ASSERT_TRUE(added.ok()) << added.status();
    ASSERT_TRUE(*added);
  }

  std::string meta_dir_;
};

TEST_F(StatusUpdateManagerTest, OnlyTheHeadIsDueAndTheRightAckAdvancesIt) {
  auto manager = Open();
  Add(*manager, "t1", v1::TASK_STARTING, 1);
  Add(*manager, "t1", v1::TASK_RUNNING, 2);
  Add(*manager, "t1", v1::TASK_FINISHED, 3);
  EXPECT_EQ(manager->PendingCount(), 3u);

  std::vector<v1::AgentCall::Update> due = manager->Due(kT0);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].framework_id().value(), "f1");
  EXPECT_EQ(due[0].status().uuid(), Uuid(1));
  EXPECT_TRUE(manager->Due(kT0).empty());  // in flight

  absl::StatusOr<bool> acked =
      manager->Acknowledge(Fid("f1"), Tid("t1"), Uuid(2));
  ASSERT_TRUE(acked.ok());
  EXPECT_FALSE(*acked);
  acked = manager->Acknowledge(Fid("f1"), Tid("nope"), Uuid(1));
  ASSERT_TRUE(acked.ok());
  EXPECT_FALSE(*acked);
  EXPECT_EQ(manager->Head(Fid("f1"), Tid("t1"))->uuid(), Uuid(1));

  acked = manager->Acknowledge(Fid("f1"), Tid("t1"), Uuid(1));
  ASSERT_TRUE(acked.ok());
  EXPECT_TRUE(*acked);
  EXPECT_EQ(manager->NextDue(), absl::InfinitePast());
  EXPECT_EQ(Uuids(manager->Due(kT0)), std::vector<std::string>{Uuid(2)});
  EXPECT_EQ(manager->Head(Fid("f1"), Tid("t1"))->uuid(), Uuid(2));
  EXPECT_EQ(manager->Latest(Fid("f1"), Tid("t1"))->uuid(), Uuid(3));
  EXPECT_TRUE(manager->HasPending(Fid("f1"), Tid("t1")));
}

TEST_F(StatusUpdateManagerTest, TasksAreIndependent) {
  auto manager = Open();
  Add(*manager, "t1", v1::TASK_RUNNING, 1);
  Add(*manager, "t1", v1::TASK_FINISHED, 2);
  Add(*manager, "t2", v1::TASK_RUNNING, 3);
  Add(*manager, "t1", v1::TASK_RUNNING, 4, "f2");
  EXPECT_EQ(Uuids(manager->Due(kT0)),
            (std::vector<std::string>{Uuid(1), Uuid(3), Uuid(4)}));
}

TEST_F(StatusUpdateManagerTest, RetryBacksOffByDoublingUpToTheCap) {
  StatusUpdateManagerOptions options = Options();
  options.initial_retry = absl::Seconds(10);
  options.max_retry = absl::Seconds(35);
  StatusUpdateManager manager(options);
  ASSERT_TRUE(manager.Recover().ok());
  EXPECT_EQ(manager.NextDue(), absl::InfiniteFuture());
  Add(manager, "t1", v1::TASK_RUNNING, 1);
  EXPECT_EQ(manager.NextDue(), absl::InfinitePast());

  absl::Time now = kT0;
  ASSERT_EQ(manager.Due(now).size(), 1u);
  // Waits: 10 s, then 20 s, then 35 s (not 40) and 35 s again.
  for (absl::Duration wait : {absl::Seconds(10), absl::Seconds(20),
                              absl::Seconds(35), absl::Seconds(35)}) {
    EXPECT_EQ(manager.NextDue(), now + wait);
    EXPECT_TRUE(manager.Due(now + wait - absl::Milliseconds(1)).empty());
    now += wait;
    EXPECT_EQ(manager.Due(now).size(), 1u);
  }
}

TEST_F(StatusUpdateManagerTest, ResetRetriesMakesEveryHeadDueAtOnce) {
  auto manager = Open();
  Add(*manager, "t1", v1::TASK_RUNNING, 1);
  Add(*manager, "t2", v1::TASK_RUNNING, 2);
  ASSERT_EQ(manager->Due(kT0).size(), 2u);
  ASSERT_EQ(manager->Due(kT0 + absl::Seconds(10)).size(), 2u);  // backoff 20 s
  EXPECT_TRUE(manager->Due(kT0 + absl::Seconds(11)).empty());

  manager->ResetRetries();
  EXPECT_EQ(manager->NextDue(), absl::InfinitePast());
  EXPECT_EQ(manager->Due(kT0 + absl::Seconds(11)).size(), 2u);
  // And the timer starts again from the initial retry.
  EXPECT_EQ(manager->NextDue(), kT0 + absl::Seconds(21));
}

TEST_F(StatusUpdateManagerTest, DuplicateUuidIsANoOp) {
  auto manager = Open();
  Add(*manager, "t1", v1::TASK_RUNNING, 1);
  Add(*manager, "t1", v1::TASK_RUNNING, 2);
  absl::StatusOr<bool> added =
      manager->Update(Fid("f1"), Status("t1", v1::TASK_RUNNING, 2));
  ASSERT_TRUE(added.ok());
  EXPECT_FALSE(*added);
  ASSERT_TRUE(*manager->Acknowledge(Fid("f1"), Tid("t1"), Uuid(1)));
  added = manager->Update(Fid("f1"), Status("t1", v1::TASK_RUNNING, 1));
  ASSERT_TRUE(added.ok());
  EXPECT_FALSE(*added);  // already acknowledged
  EXPECT_EQ(Uuids(manager->Pending(Fid("f1"), Tid("t1"))),
            std::vector<std::string>{Uuid(2)});

  // Also after a restart.
  manager = Open();
  added = manager->Update(Fid("f1"), Status("t1", v1::TASK_RUNNING, 1));
  ASSERT_TRUE(added.ok());
  EXPECT_FALSE(*added);
  EXPECT_EQ(manager->PendingCount(), 1u);
}

TEST_F(StatusUpdateManagerTest, BadUpdatesAreInvalidArgumentNamingTheField) {
  auto manager = Open();
  v1::TaskStatus status = Status("t1", v1::TASK_RUNNING, 1);
  status.set_uuid("short");
  absl::StatusOr<bool> added = manager->Update(Fid("f1"), status);
  EXPECT_EQ(added.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(added.status().message(), "uuid"));

  added = manager->Update(Fid(""), Status("t1", v1::TASK_RUNNING, 1));
  EXPECT_EQ(added.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(added.status().message(), "framework_id"));

  added = manager->Update(Fid("f1"), Status("", v1::TASK_RUNNING, 1));
  EXPECT_EQ(added.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(added.status().message(), "task_id"));

  status = Status("t1", v1::TASK_RUNNING, 1);
  status.clear_state();
  added = manager->Update(Fid("f1"), status);
  EXPECT_EQ(added.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(added.status().message(), "state"));
  EXPECT_TRUE(manager->Streams().empty());
}

TEST_F(StatusUpdateManagerTest, UpdatesAfterATerminalOneAreRefused) {
  auto manager = Open();
  Add(*manager, "t1", v1::TASK_FAILED, 1);
  absl::StatusOr<bool> added =
      manager->Update(Fid("f1"), Status("t1", v1::TASK_RUNNING, 2));
  EXPECT_EQ(added.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(manager->PendingCount(), 1u);
}

TEST_F(StatusUpdateManagerTest, AcknowledgedTerminalUpdateRemovesTheStream) {
  auto manager = Open();
  Add(*manager, "t1", v1::TASK_RUNNING, 1);
  Add(*manager, "t1", v1::TASK_FINISHED, 2);
  const std::string file = StreamFile("f1", "t1");
  ASSERT_TRUE(fs::exists(file));
  ASSERT_TRUE(*manager->Acknowledge(Fid("f1"), Tid("t1"), Uuid(1)));
  EXPECT_TRUE(fs::exists(file));
  ASSERT_TRUE(*manager->Acknowledge(Fid("f1"), Tid("t1"), Uuid(2)));
  EXPECT_FALSE(fs::exists(file));
  EXPECT_TRUE(manager->Streams().empty());
  EXPECT_FALSE(manager->Latest(Fid("f1"), Tid("t1")).has_value());

  std::vector<std::string> warnings;
  manager = Open(&warnings);
  EXPECT_TRUE(manager->Streams().empty());
  EXPECT_TRUE(warnings.empty());
}

TEST_F(StatusUpdateManagerTest, ARestartRecoversTheQueueAfterEveryPrefix) {
  struct Op {
    bool ack;
    std::string task;
    v1::TaskState state;
    uint64_t uuid;
  };
  const std::vector<Op> ops = {
      {false, "t1", v1::TASK_STARTING, 1},
      {false, "t2", v1::TASK_RUNNING, 2},
      {false, "t1", v1::TASK_RUNNING, 3},
      {true, "t1", {}, 1},
      {false, "t1", v1::TASK_KILLING, 4},
      {true, "t2", {}, 2},
      {true, "t1", {}, 3},
      {false, "t1", v1::TASK_KILLED, 5},
      {false, "t2", v1::TASK_FINISHED, 6},
      {true, "t1", {}, 4},
      {true, "t2", {}, 6},
      {true, "t1", {}, 5},
  };
  for (size_t prefix = 0; prefix <= ops.size(); ++prefix) {
    SCOPED_TRACE(absl::StrCat("after ", prefix, " operations"));
    fs::remove_all(meta_dir_);
    // The model: each task's pending uuids and latest uuid.
    std::map<std::string, std::deque<std::string>> pending;
    std::map<std::string, std::string> latest;
    std::set<std::string> ended;  // a terminal update was enqueued
    {
      auto manager = Open();
      for (size_t i = 0; i < prefix; ++i) {
        const Op& op = ops[i];
        if (op.ack) {
          absl::StatusOr<bool> acked =
              manager->Acknowledge(Fid("f1"), Tid(op.task), Uuid(op.uuid));
          ASSERT_TRUE(acked.ok() && *acked) << i;
          pending[op.task].pop_front();
        } else {
          Add(*manager, op.task, op.state, op.uuid);
          pending[op.task].push_back(Uuid(op.uuid));
          latest[op.task] = Uuid(op.uuid);
          if (IsTerminalState(op.state)) ended.insert(op.task);
        }
      }
    }  // "crash": nothing but the files survives
    std::vector<std::string> warnings;
    auto recovered = Open(&warnings);
    EXPECT_TRUE(warnings.empty());
    for (const std::string task : {"t1", "t2"}) {
      const std::vector<std::string> expected(pending[task].begin(),
                                              pending[task].end());
      EXPECT_EQ(Uuids(recovered->Pending(Fid("f1"), Tid(task))), expected)
          << task;
      std::optional<v1::TaskStatus> last =
          recovered->Latest(Fid("f1"), Tid(task));
      const bool closed = ended.count(task) > 0 && pending[task].empty();
      if (latest.count(task) == 0 || closed) {
        EXPECT_FALSE(last.has_value()) << task;
      } else {
        ASSERT_TRUE(last.has_value()) << task;
        EXPECT_EQ(last->uuid(), latest[task]);
      }
    }
    // The recovered heads are due at once.
    EXPECT_EQ(
        recovered->Due(kT0).size(),
        (pending["t1"].empty() ? 0u : 1u) + (pending["t2"].empty() ? 0u : 1u));
  }
}

void Truncate(const std::string& path, size_t cut) {
  const uintmax_t size = fs::file_size(path);
  ASSERT_GT(size, cut);
  fs::resize_file(path, size - cut);
}

void AppendBytes(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "ab");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
  std::fclose(f);
}

TEST_F(StatusUpdateManagerTest, TornLastRecordIsCutWithAWarning) {
  {
    auto manager = Open();
    Add(*manager, "t1", v1::TASK_RUNNING, 1);
    Add(*manager, "t1", v1::TASK_RUNNING, 2);
    Add(*manager, "t1", v1::TASK_FINISHED, 3);
  }
  const std::string file = StreamFile("f1", "t1");
  Truncate(file, 3);
  std::vector<std::string> warnings;
  auto manager = Open(&warnings, /*strict=*/true);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(warnings[0], file)) << warnings[0];
  EXPECT_EQ(Uuids(manager->Pending(Fid("f1"), Tid("t1"))),
            (std::vector<std::string>{Uuid(1), Uuid(2)}));

  // The file was cut cleanly: appending and recovering again is clean.
  Add(*manager, "t1", v1::TASK_FAILED, 4);
  manager = Open(&warnings, /*strict=*/true);
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(Uuids(manager->Pending(Fid("f1"), Tid("t1"))),
            (std::vector<std::string>{Uuid(1), Uuid(2), Uuid(4)}));
}

TEST_F(StatusUpdateManagerTest, EveryTruncationOfTheLastRecordIsATornWrite) {
  {
    auto manager = Open();
    Add(*manager, "t1", v1::TASK_RUNNING, 1);
  }
  const std::string file = StreamFile("f1", "t1");
  const uintmax_t one = fs::file_size(file);
  {
    auto manager = Open();
    Add(*manager, "t1", v1::TASK_RUNNING, 2);
  }
  const uintmax_t two = fs::file_size(file);
  const std::string whole = ReadFile(file).value();
  for (uintmax_t size = one; size < two; ++size) {
    ASSERT_TRUE(WriteFileAtomically(file, whole.substr(0, size)).ok());
    std::vector<std::string> warnings;
    auto manager = Open(&warnings, /*strict=*/true);
    EXPECT_EQ(warnings.size(), size == one ? 0u : 1u) << size;
    EXPECT_EQ(Uuids(manager->Pending(Fid("f1"), Tid("t1"))),
              std::vector<std::string>{Uuid(1)})
        << size;
  }
}

TEST_F(StatusUpdateManagerTest, ZeroFilledTailIsATornWrite) {
  {
    auto manager = Open();
    Add(*manager, "t1", v1::TASK_RUNNING, 1);
  }
  AppendBytes(StreamFile("f1", "t1"), std::string(40, '\0'));
  std::vector<std::string> warnings;
  auto manager = Open(&warnings, /*strict=*/true);
  EXPECT_EQ(warnings.size(), 1u);
  EXPECT_EQ(manager->PendingCount(), 1u);
}

TEST_F(StatusUpdateManagerTest, DamageBeforeTheLastRecordFailsStrictRecovery) {
  {
    auto manager = Open();
    Add(*manager, "t1", v1::TASK_RUNNING, 1);
    Add(*manager, "t1", v1::TASK_RUNNING, 2);
    Add(*manager, "t2", v1::TASK_RUNNING, 3);
  }
  const std::string file = StreamFile("f1", "t1");
  std::string data = ReadFile(file).value();
  data[12] ^= 0x40;  // inside the first record's payload
  ASSERT_TRUE(WriteFileAtomically(file, data).ok());

  StatusUpdateManager strict(Options(/*strict=*/true));
  absl::StatusOr<std::vector<std::string>> result = strict.Recover();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(result.status().message(), file))
      << result.status();

  std::vector<std::string> warnings;
  auto lenient = Open(&warnings, /*strict=*/false);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(warnings[0], file)) << warnings[0];
  EXPECT_FALSE(lenient->HasPending(Fid("f1"), Tid("t1")));
  EXPECT_TRUE(lenient->HasPending(Fid("f1"), Tid("t2")));
  EXPECT_TRUE(fs::exists(file + ".corrupt"));

  // The task's next update starts a fresh stream.
  Add(*lenient, "t1", v1::TASK_RUNNING, 4);
  lenient = Open(&warnings, /*strict=*/true);
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(Uuids(lenient->Pending(Fid("f1"), Tid("t1"))),
            std::vector<std::string>{Uuid(4)});
}

TEST_F(StatusUpdateManagerTest, RemoveFrameworkForgetsItsStreams) {
  auto manager = Open();
  Add(*manager, "t1", v1::TASK_RUNNING, 1);
  Add(*manager, "t2", v1::TASK_RUNNING, 2);
  Add(*manager, "t1", v1::TASK_RUNNING, 3, "f/2");
  ASSERT_TRUE(manager->RemoveFramework(Fid("f1")).ok());
  ASSERT_EQ(manager->Streams().size(), 1u);
  EXPECT_EQ(manager->Streams()[0].first.value(), "f/2");
  EXPECT_FALSE(fs::exists(meta_dir_ + "/updates/f1"));
  ASSERT_TRUE(manager->RemoveFramework(Fid("never")).ok());

  manager = Open();
  ASSERT_EQ(manager->Streams().size(), 1u);
  EXPECT_EQ(manager->Streams()[0].second.value(), "t1");
}

// Random updates, duplicates, right and wrong acknowledgements, restarts and
// torn tails against a model. Replay with CAIRN_SEED=N.
TEST_F(StatusUpdateManagerTest, RandomOperationsMatchAModel) {
  uint64_t seed = std::random_device()();
  if (const char* env = std::getenv("CAIRN_SEED"); env != nullptr) {
    ASSERT_TRUE(absl::SimpleAtoi(env, &seed)) << "CAIRN_SEED=" << env;
  }
  std::printf(
      "StatusUpdateManagerTest.RandomOperationsMatchAModel seed %llu "
      "(replay with CAIRN_SEED=%llu)\n",
      static_cast<unsigned long long>(seed),
      static_cast<unsigned long long>(seed));
  SCOPED_TRACE(absl::StrCat("CAIRN_SEED=", seed));
  std::mt19937_64 random(seed);
  auto chance = [&](int percent) {
    return std::uniform_int_distribution<int>(0, 99)(random) < percent;
  };

  struct ModelStream {
    std::deque<std::string> pending;
    std::set<std::string> received;
    std::string latest;
    bool terminal = false;
  };
  using Key = std::pair<std::string, std::string>;
  std::map<Key, ModelStream> model;
  const std::vector<Key> keys = {{"f1", "t1"}, {"f1", "t/2"}, {"f2", "t1"}};
  const std::vector<v1::TaskState> live = {v1::TASK_STARTING, v1::TASK_RUNNING,
                                           v1::TASK_KILLING};
  const std::vector<v1::TaskState> terminal = {
      v1::TASK_FINISHED, v1::TASK_FAILED, v1::TASK_KILLED};
  uint64_t next_uuid = 1;
  auto manager = Open();

  for (int step = 0; step < 400; ++step) {
    SCOPED_TRACE(absl::StrCat("step ", step));
    const Key& key = keys[random() % keys.size()];
    const int op = static_cast<int>(random() % 100);
    if (op < 40) {  // a new update
      const bool end = chance(20);
      const v1::TaskState state = end ? terminal[random() % terminal.size()]
                                      : live[random() % live.size()];
      const uint64_t uuid = next_uuid++;
      absl::StatusOr<bool> added =
          manager->Update(Fid(key.first), Status(key.second, state, uuid));
      auto it = model.find(key);
      if (it != model.end() && it->second.terminal) {
        ASSERT_EQ(added.status().code(), absl::StatusCode::kFailedPrecondition);
      } else {
        ASSERT_TRUE(added.ok() && *added) << added.status();
        ModelStream& stream = model[key];
        stream.pending.push_back(Uuid(uuid));
        stream.received.insert(Uuid(uuid));
        stream.latest = Uuid(uuid);
        stream.terminal = IsTerminalState(state);
      }
    } else if (op < 50) {  // a duplicate of an update still in the stream
      auto it = model.find(key);
      if (it == model.end()) continue;
      auto pick = it->second.received.begin();
      std::advance(pick, random() % it->second.received.size());
      v1::TaskStatus status = Status(key.second, v1::TASK_RUNNING, 0);
      status.set_uuid(*pick);
      absl::StatusOr<bool> added = manager->Update(Fid(key.first), status);
      ASSERT_TRUE(added.ok() && !*added) << added.status();
    } else if (op < 80) {  // the master's acknowledgement, right or wrong
      auto it = model.find(key);
      const bool right =
          it != model.end() && !it->second.pending.empty() && chance(80);
      const std::string uuid = right ? it->second.pending.front()
                                     : Uuid(1000000 + random() % next_uuid);
      absl::StatusOr<bool> acked =
          manager->Acknowledge(Fid(key.first), Tid(key.second), uuid);
      ASSERT_TRUE(acked.ok()) << acked.status();
      ASSERT_EQ(*acked, right);
      if (right) {
        it->second.pending.pop_front();
        if (it->second.pending.empty() && it->second.terminal) model.erase(it);
      }
    } else if (op < 90) {  // crash and restart
      manager.reset();
      std::vector<std::string> warnings;
      manager = Open(&warnings, /*strict=*/true);
      ASSERT_TRUE(warnings.empty()) << warnings[0];
    } else {  // a crash that tore a write at the end of a stream
      if (model.count(key) == 0) continue;
      manager.reset();
      std::string garbage(1 + random() % 30, '\0');
      for (char& c : garbage) c = static_cast<char>(random());
      if (chance(50)) garbage.assign(garbage.size(), '\0');
      garbage[0] = static_cast<char>(0xff);  // a length past the end
      garbage.resize(std::max<size_t>(garbage.size(), 4));
      AppendBytes(StreamFile(key.first, key.second), garbage);
      std::vector<std::string> warnings;
      manager = Open(&warnings, /*strict=*/true);
      ASSERT_EQ(warnings.size(), 1u);
    }

    // Everything the manager says agrees with the model.
    std::vector<Key> streams;
    for (const auto& [fid, tid] : manager->Streams()) {
      streams.emplace_back(fid.value(), tid.value());
    }
    std::vector<Key> expected_streams;
    for (const auto& [k, stream] : model) expected_streams.push_back(k);
    ASSERT_EQ(streams, expected_streams);
    size_t pending = 0;
    for (const auto& [k, stream] : model) {
      const std::vector<std::string> expected(stream.pending.begin(),
                                              stream.pending.end());
      ASSERT_EQ(Uuids(manager->Pending(Fid(k.first), Tid(k.second))), expected);
      ASSERT_EQ(manager->Latest(Fid(k.first), Tid(k.second))->uuid(),
                stream.latest);
      pending += stream.pending.size();
    }
    ASSERT_EQ(manager->PendingCount(), pending);
    if (chance(20)) {
      manager->ResetRetries();
      std::vector<std::string> heads;
      for (const auto& [k, stream] : model) {
        if (!stream.pending.empty()) heads.push_back(stream.pending.front());
      }
      ASSERT_EQ(Uuids(manager->Due(kT0)), heads);
    }
  }
}

}  // namespace
}  // namespace agent
}  // namespace cairn
