#include "log/leveldb_storage.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cairn/v1/log.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "log/storage.h"

namespace cairn::log {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr uint64_t kMaxPosition = std::numeric_limits<uint64_t>::max();

cairn::v1::Action MakeAction(uint64_t position, std::string entry = "e") {
  cairn::v1::Action action;
  action.set_position(position);
  action.mutable_ballot()->set_round(3);
  action.mutable_ballot()->set_node_id(2);
  action.mutable_value()->set_kind(cairn::v1::Value::APPEND);
  action.mutable_value()->add_entries(std::move(entry));
  return action;
}

cairn::v1::Metadata MakeMetadata(uint64_t round) {
  cairn::v1::Metadata metadata;
  metadata.set_status(cairn::v1::Metadata::VOTING);
  metadata.mutable_promised()->set_round(round);
  metadata.mutable_promised()->set_node_id(1);
  metadata.set_begin(1);
  return metadata;
}

WriteBatch ActionsBatch(const std::vector<uint64_t>& positions) {
  WriteBatch batch;
  for (uint64_t p : positions) batch.actions.push_back(MakeAction(p));
  return batch;
}

WriteBatch DeleteBefore(uint64_t position) {
  WriteBatch batch;
  batch.delete_before = position;
  return batch;
}

std::vector<uint64_t> Positions(const std::vector<cairn::v1::Action>& actions) {
  std::vector<uint64_t> positions;
  for (const auto& a : actions) positions.push_back(a.position());
  return positions;
}

class LevelDbStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = absl::StrCat(::testing::TempDir(), "/leveldb_storage_test/",
                        info->name());
    std::filesystem::remove_all(dir_);
    Reopen();
  }

  void TearDown() override {
    storage_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Reopen(const LevelDbStorageOptions& options = {}) {
    storage_.reset();
    absl::StatusOr<std::unique_ptr<LevelDbStorage>> storage =
        LevelDbStorage::Open(dir_, options);
    ASSERT_TRUE(storage.ok()) << storage.status();
    storage_ = *std::move(storage);
  }

  std::vector<uint64_t> AllPositions() {
    absl::StatusOr<std::vector<cairn::v1::Action>> actions =
        storage_->ReadRange(0, kMaxPosition, 1 << 20);
    EXPECT_TRUE(actions.ok()) << actions.status();
    return actions.ok() ? Positions(*actions) : std::vector<uint64_t>{};
  }

  std::string dir_;
  std::unique_ptr<LevelDbStorage> storage_;
};

TEST_F(LevelDbStorageTest, NewStoreHasNoMetadataAndNoActions) {
  absl::StatusOr<std::optional<cairn::v1::Metadata>> metadata =
      storage_->ReadMetadata();
  ASSERT_TRUE(metadata.ok()) << metadata.status();
  EXPECT_FALSE(metadata->has_value());
  absl::StatusOr<std::optional<cairn::v1::Action>> action = storage_->Read(1);
  ASSERT_TRUE(action.ok()) << action.status();
  EXPECT_FALSE(action->has_value());
  EXPECT_EQ(*storage_->LastPosition(), 0u);
  EXPECT_TRUE(AllPositions().empty());
}

TEST_F(LevelDbStorageTest, MetadataRoundTrips) {
  WriteBatch batch;
  batch.metadata = MakeMetadata(7);
  ASSERT_TRUE(storage_->Write(batch, /*sync=*/true).ok());
  absl::StatusOr<std::optional<cairn::v1::Metadata>> metadata =
      storage_->ReadMetadata();
  ASSERT_TRUE(metadata.ok()) << metadata.status();
  ASSERT_TRUE(metadata->has_value());
  EXPECT_EQ((*metadata)->SerializeAsString(),
            MakeMetadata(7).SerializeAsString());

  batch.metadata = MakeMetadata(8);  // replaces
  ASSERT_TRUE(storage_->Write(batch, /*sync=*/true).ok());
  EXPECT_EQ((*storage_->ReadMetadata())->promised().round(), 8u);
}

TEST_F(LevelDbStorageTest, ActionRoundTrips) {
  cairn::v1::Action action = MakeAction(42, "payload");
  action.set_learned(true);
  WriteBatch batch;
  batch.actions.push_back(action);
  ASSERT_TRUE(storage_->Write(batch, /*sync=*/true).ok());
  absl::StatusOr<std::optional<cairn::v1::Action>> read = storage_->Read(42);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->SerializeAsString(), action.SerializeAsString());
  EXPECT_FALSE(storage_->Read(41)->has_value());
  EXPECT_FALSE(storage_->Read(43)->has_value());
}

TEST_F(LevelDbStorageTest, PositionsSortNumericallyAcrossTheWholeRange) {
  const std::vector<uint64_t> sorted = {0,
                                        1,
                                        255,
                                        256,
                                        uint64_t{1} << 31,
                                        uint64_t{1} << 32,
                                        10'000'000'000ull,
                                        kMaxPosition - 1};
  std::vector<uint64_t> shuffled = {
      10'000'000'000ull, 256, kMaxPosition - 1,  0,
      uint64_t{1} << 32, 1,   uint64_t{1} << 31, 255};
  ASSERT_TRUE(storage_->Write(ActionsBatch(shuffled), true).ok());

  EXPECT_THAT(AllPositions(), ElementsAreArray(sorted));
  EXPECT_EQ(*storage_->LastPosition(), kMaxPosition - 1);
  EXPECT_THAT(Positions(*storage_->ReadRange(256, uint64_t{1} << 32, 100)),
              ElementsAre(256, uint64_t{1} << 31, uint64_t{1} << 32));
  EXPECT_THAT(Positions(*storage_->ReadRange(2, 10'000'000'000ull, 3)),
              ElementsAre(255, 256, uint64_t{1} << 31));
  for (uint64_t p : sorted) {
    absl::StatusOr<std::optional<cairn::v1::Action>> read = storage_->Read(p);
    ASSERT_TRUE(read.ok() && read->has_value()) << p;
    EXPECT_EQ((*read)->position(), p);
  }

  // The largest position is a key too, and the metadata key does not count.
  WriteBatch batch = ActionsBatch({kMaxPosition});
  batch.metadata = MakeMetadata(1);
  ASSERT_TRUE(storage_->Write(batch, true).ok());
  EXPECT_EQ(*storage_->LastPosition(), kMaxPosition);
}

TEST_F(LevelDbStorageTest, ReadRangeHonoursBoundsAndLimit) {
  ASSERT_TRUE(storage_->Write(ActionsBatch({1, 2, 3, 4, 5, 6}), true).ok());
  EXPECT_THAT(Positions(*storage_->ReadRange(2, 4, 10)), ElementsAre(2, 3, 4));
  EXPECT_THAT(Positions(*storage_->ReadRange(2, 6, 2)), ElementsAre(2, 3));
  EXPECT_TRUE(storage_->ReadRange(2, 6, 0)->empty());
  EXPECT_TRUE(storage_->ReadRange(5, 4, 10)->empty());
  EXPECT_TRUE(storage_->ReadRange(7, kMaxPosition, 10)->empty());
}

TEST_F(LevelDbStorageTest, FlippedByteIsDataLossNamingThePosition) {
  const uint64_t kBad = 10'000'000'000ull;
  ASSERT_TRUE(storage_->Write(ActionsBatch({1, kBad, kBad + 1}), true).ok());
  ASSERT_TRUE(storage_->TEST_CorruptRecord(kBad).ok());

  absl::StatusOr<std::optional<cairn::v1::Action>> read = storage_->Read(kBad);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(read.status().message(), HasSubstr("position 10000000000"));

  absl::StatusOr<std::vector<cairn::v1::Action>> range =
      storage_->ReadRange(0, kMaxPosition, 10);
  EXPECT_EQ(range.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(range.status().message(), HasSubstr("position 10000000000"));

  // The damage is confined to the one record.
  EXPECT_TRUE(storage_->Read(1)->has_value());
  EXPECT_TRUE(storage_->Read(kBad + 1)->has_value());
  EXPECT_THAT(Positions(*storage_->ReadRange(0, kBad - 1, 10)), ElementsAre(1));
  EXPECT_EQ(*storage_->LastPosition(), kBad + 1);

  // Rewriting the position replaces the damaged record.
  ASSERT_TRUE(storage_->Write(ActionsBatch({kBad}), true).ok());
  EXPECT_TRUE(storage_->Read(kBad).ok());
}

TEST_F(LevelDbStorageTest, CorruptingAMissingPositionIsNotFound) {
  EXPECT_EQ(storage_->TEST_CorruptRecord(5).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(LevelDbStorageTest, BatchAppliesMetadataActionsAndDeletionTogether) {
  ASSERT_TRUE(storage_->Write(ActionsBatch({1, 2, 3}), true).ok());
  WriteBatch batch = ActionsBatch({2, 4, 5});  // 2 is below the deletion
  batch.metadata = MakeMetadata(9);
  batch.delete_before = 3;
  ASSERT_TRUE(storage_->Write(batch, true).ok());
  EXPECT_THAT(AllPositions(), ElementsAre(3, 4, 5));
  EXPECT_EQ((*storage_->ReadMetadata())->promised().round(), 9u);
}

TEST_F(LevelDbStorageTest, EmptyBatchIsAccepted) {
  EXPECT_TRUE(storage_->Write(WriteBatch(), /*sync=*/true).ok());
  EXPECT_TRUE(storage_->Write(WriteBatch(), /*sync=*/false).ok());
}

TEST_F(LevelDbStorageTest, DeleteBeforeRemovesExactlyThePositionsBelow) {
  std::vector<uint64_t> positions;
  for (uint64_t p = 1; p <= 20; ++p) positions.push_back(p);
  ASSERT_TRUE(storage_->Write(ActionsBatch(positions), true).ok());

  ASSERT_TRUE(storage_->Write(DeleteBefore(10), true).ok());
  EXPECT_FALSE(storage_->Read(9)->has_value());
  EXPECT_TRUE(storage_->Read(10)->has_value());
  EXPECT_EQ(AllPositions().front(), 10u);
  EXPECT_EQ(AllPositions().size(), 11u);

  // A lower truncation changes nothing; a higher one continues.
  ASSERT_TRUE(storage_->Write(DeleteBefore(5), true).ok());
  EXPECT_EQ(AllPositions().front(), 10u);
  ASSERT_TRUE(storage_->Write(DeleteBefore(15), true).ok());
  EXPECT_THAT(AllPositions(), ElementsAre(15, 16, 17, 18, 19, 20));

  // An action written below the truncation point is still deleted by the
  // next truncation (the remembered floor moves down with it).
  ASSERT_TRUE(storage_->Write(ActionsBatch({3}), true).ok());
  ASSERT_TRUE(storage_->Write(DeleteBefore(16), true).ok());
  EXPECT_THAT(AllPositions(), ElementsAre(16, 17, 18, 19, 20));
}

TEST_F(LevelDbStorageTest, DeleteBeforeAfterReopenDeletesOlderPositions) {
  ASSERT_TRUE(storage_->Write(ActionsBatch({1, 2, 3, 4}), true).ok());
  ASSERT_TRUE(storage_->Write(DeleteBefore(2), true).ok());
  Reopen();
  ASSERT_TRUE(storage_->Write(DeleteBefore(4), true).ok());
  EXPECT_THAT(AllPositions(), ElementsAre(4));
}

TEST_F(LevelDbStorageTest, ReopenPreservesSyncedState) {
  WriteBatch batch = ActionsBatch({1, 2, uint64_t{1} << 40});
  batch.metadata = MakeMetadata(4);
  ASSERT_TRUE(storage_->Write(batch, /*sync=*/true).ok());
  ASSERT_TRUE(storage_->Write(DeleteBefore(2), /*sync=*/true).ok());
  Reopen();
  EXPECT_EQ((*storage_->ReadMetadata())->promised().round(), 4u);
  EXPECT_THAT(AllPositions(), ElementsAre(2, uint64_t{1} << 40));
  EXPECT_EQ(*storage_->LastPosition(), uint64_t{1} << 40);
}

TEST_F(LevelDbStorageTest, SecondOpenOfTheSameDirectoryIsUnavailable) {
  absl::StatusOr<std::unique_ptr<LevelDbStorage>> second =
      LevelDbStorage::Open(dir_);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr(dir_));
}

TEST_F(LevelDbStorageTest, OpenUnderARegularFileIsUnavailable) {
  const std::string file = dir_ + "/not_a_directory";
  std::ofstream(file) << "x";
  const std::string dir = file + "/db";
  absl::StatusOr<std::unique_ptr<LevelDbStorage>> storage =
      LevelDbStorage::Open(dir);
  EXPECT_EQ(storage.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(storage.status().message(), HasSubstr(dir));
}

TEST_F(LevelDbStorageTest, OpenOfCorruptDatabaseIsDataLoss) {
  ASSERT_TRUE(storage_->Write(ActionsBatch({1}), true).ok());
  storage_.reset();
  // Replace every MANIFEST with garbage.
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    if (entry.path().filename().string().rfind("MANIFEST-", 0) == 0) {
      std::ofstream(entry.path(), std::ios::trunc) << "garbage, not a log";
    }
  }
  absl::StatusOr<std::unique_ptr<LevelDbStorage>> storage =
      LevelDbStorage::Open(dir_);
  EXPECT_EQ(storage.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(storage.status().message(), HasSubstr(dir_));
}

TEST_F(LevelDbStorageTest, CompactReclaimsDeletedSpace) {
  const std::string value(1024, 'v');
  for (uint64_t start = 1; start <= 4000; start += 500) {
    WriteBatch batch;
    for (uint64_t p = start; p < start + 500; ++p) {
      batch.actions.push_back(MakeAction(p, value));
    }
    ASSERT_TRUE(storage_->Write(batch, /*sync=*/false).ok());
  }
  const uint64_t full = storage_->ApproximateBytes();
  EXPECT_GT(full, 4000u * 1024);
  ASSERT_TRUE(storage_->Write(DeleteBefore(4001), /*sync=*/true).ok());
  storage_->Compact();
  EXPECT_LT(storage_->ApproximateBytes(), full / 10);
  EXPECT_TRUE(AllPositions().empty());
}

TEST_F(LevelDbStorageTest, CompactsAutomaticallyAfterManyDeletedKeys) {
  // Default options: every 10,000 deleted keys.
  WriteBatch batch;
  for (uint64_t p = 1; p <= 10'000; ++p) batch.actions.push_back(MakeAction(p));
  ASSERT_TRUE(storage_->Write(batch, false).ok());
  ASSERT_TRUE(storage_->Write(DeleteBefore(9'000), false).ok());
  EXPECT_EQ(storage_->compactions(), 0u);
  ASSERT_TRUE(storage_->Write(DeleteBefore(10'001), false).ok());
  EXPECT_EQ(storage_->compactions(), 1u);
  EXPECT_TRUE(AllPositions().empty());
}

TEST_F(LevelDbStorageTest, CompactsAutomaticallyAfterManyDeletedBytes) {
  // Few but large records: the byte trigger (default 4 MiB) fires long before
  // the key count would.
  WriteBatch batch;
  const std::string big(512 << 10, 'b');
  for (uint64_t p = 1; p <= 10; ++p) batch.actions.push_back(MakeAction(p, big));
  ASSERT_TRUE(storage_->Write(batch, false).ok());
  ASSERT_TRUE(storage_->Write(DeleteBefore(4), false).ok());
  EXPECT_EQ(storage_->compactions(), 0u);
  ASSERT_TRUE(storage_->Write(DeleteBefore(11), false).ok());
  EXPECT_EQ(storage_->compactions(), 1u);
}

// Many cycles of append-then-truncate: the bytes on disk must stop growing.
TEST_F(LevelDbStorageTest, DiskUseLevelsOffUnderAppendAndTruncate) {
  LevelDbStorageOptions options;
  // Every 10 cycles, so cycles 50 and 200 are at the same point between two
  // compactions (the write-ahead log grows between them).
  options.compact_after_deleted_keys = 500;
  Reopen(options);
  constexpr int kCycles = 200;
  constexpr uint64_t kPerCycle = 50;
  const std::string value(1024, 'v');
  uint64_t next = 1;
  uint64_t max_early = 0;  // cycles 1..50
  uint64_t max_late = 0;   // cycles 151..200
  uint64_t at_50 = 0;
  for (int cycle = 1; cycle <= kCycles; ++cycle) {
    WriteBatch append;
    for (uint64_t i = 0; i < kPerCycle; ++i) {
      append.actions.push_back(MakeAction(next++, value));
    }
    ASSERT_TRUE(storage_->Write(append, /*sync=*/false).ok());
    // Keep the last cycle's actions, as a snapshot would.
    ASSERT_TRUE(storage_->Write(DeleteBefore(next - kPerCycle), false).ok());
    const uint64_t bytes = storage_->ApproximateBytes();
    if (cycle <= 50) max_early = std::max(max_early, bytes);
    if (cycle > kCycles - 50) max_late = std::max(max_late, bytes);
    if (cycle == 50) at_50 = bytes;
  }
  const uint64_t at_200 = storage_->ApproximateBytes();
  SCOPED_TRACE(absl::StrCat("max early ", max_early, ", max late ", max_late,
                            ", at 50 ", at_50, ", at 200 ", at_200));
  EXPECT_GE(storage_->compactions(), 19u);
  EXPECT_LE(at_200, 2 * at_50);
  EXPECT_LE(max_late, 2 * max_early);
  // Far below the 10 MB written (without compaction: about 5 MB).
  EXPECT_LT(max_late, 1u << 20);
  EXPECT_EQ(AllPositions().size(), kPerCycle);
}

}  // namespace
}  // namespace cairn::log
