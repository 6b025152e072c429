#include "recovery/snapshot_store.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "recovery/internal/files.h"

namespace cairn::recovery {
namespace {

std::string FreshDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = absl::StrCat(::testing::TempDir(), "/snapshots-",
                                 info->test_suite_name(), "-", info->name());
  std::system(("rm -rf '" + dir + "'").c_str());
  return dir;
}

v1::MasterSnapshot SnapshotAt(uint64_t position, const std::string& tag) {
  v1::MasterSnapshot s;
  s.mutable_last_applied()->set_position(position);
  s.set_events_applied(position * 2);
  s.add_agents()->mutable_info()->mutable_id()->set_value(tag);
  return s;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::string data = *internal::ReadFile(path);
  ASSERT_LT(offset, data.size());
  data[offset] ^= 0x40;
  ASSERT_TRUE(internal::WriteFileDurably(path, path + ".x", data).ok());
}

TEST(SnapshotStoreTest, WritesAndReadsBackLatestAndAtOrBefore) {
  auto store = *SnapshotStore::Open(FreshDir());
  ASSERT_TRUE(store->Write(10, SnapshotAt(10, "a")).ok());
  ASSERT_TRUE(store->Write(20, SnapshotAt(18, "b")).ok());
  ASSERT_TRUE(store->Write(30, SnapshotAt(30, "c")).ok());

  absl::StatusOr<StoredSnapshot> latest = store->Latest();
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->position, 30u);
  EXPECT_EQ(latest->snapshot.agents(0).info().id().value(), "c");

  EXPECT_EQ(store->AtOrBefore(29)->position, 20u);
  EXPECT_EQ(store->AtOrBefore(20)->position, 20u);
  EXPECT_EQ(store->AtOrBefore(10)->snapshot.agents(0).info().id().value(), "a");
  EXPECT_EQ(store->AtOrBefore(9).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*store->Positions(), (std::vector<uint64_t>{10, 20, 30}));
}

TEST(SnapshotStoreTest, EmptyStoreHasNoLatest) {
  auto store = *SnapshotStore::Open(FreshDir());
  EXPECT_EQ(store->Latest().status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Read(5).status().code(), absl::StatusCode::kNotFound);
}

TEST(SnapshotStoreTest, RejectsPositionBelowItsLastAppliedEvent) {
  auto store = *SnapshotStore::Open(FreshDir());
  EXPECT_EQ(store->Write(9, SnapshotAt(10, "a")).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Write(0, v1::MasterSnapshot()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Latest().status().code(), absl::StatusCode::kNotFound);
}

TEST(SnapshotStoreTest, CrashMidWriteLeavesPreviousSnapshotReadable) {
  const std::string dir = FreshDir();
  auto store = *SnapshotStore::Open(dir);
  ASSERT_TRUE(store->Write(10, SnapshotAt(10, "old")).ok());
  // A crash during Write(20): the temporary holds part of the new file.
  const std::string tmp = store->PathFor(20) + ".tmp";
  {
    auto file = *internal::AppendFile::Create(tmp);
    ASSERT_TRUE(file.Append("CAIRNSNP\x01\x00").ok());
  }
  EXPECT_EQ(store->Latest()->position, 10u);
  EXPECT_EQ(store->Latest()->snapshot.agents(0).info().id().value(), "old");

  // Reopening (the restart) clears the leftover.
  store = *SnapshotStore::Open(dir);
  EXPECT_EQ(internal::FileSize(tmp).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Latest()->position, 10u);
}

TEST(SnapshotStoreTest, ChecksumMismatchIsDataLossAndOlderSnapshotIsUsed) {
  auto store = *SnapshotStore::Open(FreshDir());
  ASSERT_TRUE(store->Write(10, SnapshotAt(10, "old")).ok());
  ASSERT_TRUE(store->Write(20, SnapshotAt(20, "new")).ok());
  FlipByte(store->PathFor(20), SnapshotStore::kHeaderSize + 3);

  EXPECT_EQ(store->Read(20).status().code(), absl::StatusCode::kDataLoss);
  absl::StatusOr<StoredSnapshot> latest = store->Latest();
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->position, 10u);
  EXPECT_EQ(store->corrupt_skipped(), 1u);
}

TEST(SnapshotStoreTest, TornFileUnderFinalNameIsDataLoss) {
  auto store = *SnapshotStore::Open(FreshDir());
  ASSERT_TRUE(store->Write(10, SnapshotAt(10, "old")).ok());
  ASSERT_TRUE(store->Write(20, SnapshotAt(20, "new")).ok());
  std::string data = *internal::ReadFile(store->PathFor(20));
  data.resize(data.size() - 2);
  ASSERT_TRUE(internal::WriteFileDurably(store->PathFor(20),
                                         store->PathFor(20) + ".x", data)
                  .ok());
  EXPECT_EQ(store->Read(20).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(store->Latest()->position, 10u);
}

TEST(SnapshotStoreTest, CorruptHeaderIsDataLoss) {
  auto store = *SnapshotStore::Open(FreshDir());
  ASSERT_TRUE(store->Write(10, SnapshotAt(10, "a")).ok());
  FlipByte(store->PathFor(10), 9);  // format version
  EXPECT_EQ(store->Read(10).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(store->Latest().status().code(), absl::StatusCode::kNotFound);
}

TEST(SnapshotStoreTest, RetainKeepsNewestValidAndDeletesOlderAndCorrupt) {
  auto store = *SnapshotStore::Open(FreshDir());
  for (uint64_t p : {10, 20, 30, 40, 50}) {
    ASSERT_TRUE(store->Write(p, SnapshotAt(p, "x")).ok());
  }
  FlipByte(store->PathFor(50), SnapshotStore::kHeaderSize + 1);
  absl::StatusOr<int> deleted = store->Retain(2);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 3);  // 50 (corrupt), 20, 10
  EXPECT_EQ(*store->Positions(), (std::vector<uint64_t>{30, 40}));
}

TEST(SnapshotStoreTest, DeleteBeforeNeverDeletesTheNewestValid) {
  auto store = *SnapshotStore::Open(FreshDir());
  for (uint64_t p : {10, 20, 30}) {
    ASSERT_TRUE(store->Write(p, SnapshotAt(p, "x")).ok());
  }
  EXPECT_EQ(*store->DeleteBefore(25), 2);
  EXPECT_EQ(*store->DeleteBefore(100), 0);
  EXPECT_EQ(*store->Positions(), (std::vector<uint64_t>{30}));
}

TEST(SnapshotStoreTest, RewritingAPositionReplacesItAtomically) {
  auto store = *SnapshotStore::Open(FreshDir());
  ASSERT_TRUE(store->Write(10, SnapshotAt(10, "first")).ok());
  ASSERT_TRUE(store->Write(10, SnapshotAt(10, "second")).ok());
  EXPECT_EQ(store->Read(10)->snapshot.agents(0).info().id().value(), "second");
  EXPECT_EQ(store->Positions()->size(), 1u);
}

}  // namespace
}  // namespace cairn::recovery
