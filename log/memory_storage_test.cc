#include "log/memory_storage.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
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
  action.mutable_value()->set_kind(cairn::v1::Value::APPEND);
  action.mutable_value()->add_entries(std::move(entry));
  return action;
}

cairn::v1::Metadata MakeMetadata(uint64_t round) {
  cairn::v1::Metadata metadata;
  metadata.set_status(cairn::v1::Metadata::VOTING);
  metadata.mutable_promised()->set_round(round);
  return metadata;
}

WriteBatch ActionsBatch(const std::vector<uint64_t>& positions) {
  WriteBatch batch;
  for (uint64_t p : positions) batch.actions.push_back(MakeAction(p));
  return batch;
}

WriteBatch MetadataBatch(uint64_t round) {
  WriteBatch batch;
  batch.metadata = MakeMetadata(round);
  return batch;
}

WriteBatch DeleteBefore(uint64_t position) {
  WriteBatch batch;
  batch.delete_before = position;
  return batch;
}

class MemoryStorageTest : public ::testing::Test {
 protected:
  std::vector<uint64_t> AllPositions() {
    absl::StatusOr<std::vector<cairn::v1::Action>> actions =
        storage_.ReadRange(0, kMaxPosition, 1 << 20);
    EXPECT_TRUE(actions.ok()) << actions.status();
    std::vector<uint64_t> positions;
    if (actions.ok()) {
      for (const auto& a : *actions) positions.push_back(a.position());
    }
    return positions;
  }

  uint64_t PromisedRound() {
    absl::StatusOr<std::optional<cairn::v1::Metadata>> metadata =
        storage_.ReadMetadata();
    EXPECT_TRUE(metadata.ok() && metadata->has_value());
    return metadata.ok() && metadata->has_value()
               ? (*metadata)->promised().round()
               : 0;
  }

  MemoryStorage storage_;
};

TEST_F(MemoryStorageTest, NewStoreHasNoMetadataAndNoActions) {
  absl::StatusOr<std::optional<cairn::v1::Metadata>> metadata =
      storage_.ReadMetadata();
  ASSERT_TRUE(metadata.ok());
  EXPECT_FALSE(metadata->has_value());
  EXPECT_FALSE(storage_.Read(1)->has_value());
  EXPECT_EQ(*storage_.LastPosition(), 0u);
  EXPECT_EQ(storage_.ApproximateBytes(), 0u);
}

TEST_F(MemoryStorageTest, MetadataAndActionsRoundTrip) {
  WriteBatch batch = MetadataBatch(5);
  cairn::v1::Action action = MakeAction(7, "x");
  action.set_learned(true);
  batch.actions.push_back(action);
  ASSERT_TRUE(storage_.Write(batch, true).ok());
  EXPECT_EQ((*storage_.ReadMetadata())->SerializeAsString(),
            MakeMetadata(5).SerializeAsString());
  EXPECT_EQ((*storage_.Read(7))->SerializeAsString(),
            action.SerializeAsString());
  EXPECT_GT(storage_.ApproximateBytes(), 0u);
}

TEST_F(MemoryStorageTest, PositionsSortNumericallyAcrossTheWholeRange) {
  ASSERT_TRUE(
      storage_
          .Write(ActionsBatch({10'000'000'000ull, 256, kMaxPosition - 1, 0,
                               uint64_t{1} << 32, 1, uint64_t{1} << 31, 255}),
                 true)
          .ok());
  EXPECT_THAT(AllPositions(),
              ElementsAreArray(std::vector<uint64_t>{
                  0, 1, 255, 256, uint64_t{1} << 31, uint64_t{1} << 32,
                  10'000'000'000ull, kMaxPosition - 1}));
  EXPECT_EQ(*storage_.LastPosition(), kMaxPosition - 1);
  EXPECT_EQ(AllPositions().size(), 8u);
  absl::StatusOr<std::vector<cairn::v1::Action>> limited =
      storage_.ReadRange(2, kMaxPosition, 2);
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->size(), 2u);
  EXPECT_EQ((*limited)[0].position(), 255u);
  EXPECT_EQ((*limited)[1].position(), 256u);
  EXPECT_TRUE(storage_.ReadRange(5, 4, 10)->empty());
}

TEST_F(MemoryStorageTest, DeleteBeforeRemovesExactlyThePositionsBelow) {
  ASSERT_TRUE(storage_.Write(ActionsBatch({1, 2, 3, 4, 5}), true).ok());
  ASSERT_TRUE(storage_.Write(DeleteBefore(3), true).ok());
  EXPECT_THAT(AllPositions(), ElementsAre(3, 4, 5));
  WriteBatch batch = ActionsBatch({2, 6});  // 2 is below the deletion
  batch.delete_before = 4;
  ASSERT_TRUE(storage_.Write(batch, true).ok());
  EXPECT_THAT(AllPositions(), ElementsAre(4, 5, 6));
}

TEST_F(MemoryStorageTest, SimulateCrashDropsUnsyncedWritesAndKeepsSynced) {
  ASSERT_TRUE(storage_.Write(MetadataBatch(1), /*sync=*/true).ok());
  ASSERT_TRUE(storage_.Write(ActionsBatch({1}), /*sync=*/true).ok());
  ASSERT_TRUE(storage_.Write(MetadataBatch(2), /*sync=*/false).ok());
  ASSERT_TRUE(storage_.Write(ActionsBatch({2, 3}), /*sync=*/false).ok());
  // Reads see the page cache.
  EXPECT_EQ(PromisedRound(), 2u);
  EXPECT_THAT(AllPositions(), ElementsAre(1, 2, 3));
  EXPECT_EQ(storage_.unsynced_batches(), 2u);

  storage_.SimulateCrash();
  EXPECT_EQ(PromisedRound(), 1u);
  EXPECT_THAT(AllPositions(), ElementsAre(1));
  EXPECT_EQ(*storage_.LastPosition(), 1u);
  EXPECT_EQ(storage_.unsynced_batches(), 0u);
}

TEST_F(MemoryStorageTest, SyncedWriteMakesEarlierUnsyncedWritesDurable) {
  ASSERT_TRUE(storage_.Write(ActionsBatch({1}), /*sync=*/false).ok());
  ASSERT_TRUE(storage_.Write(DeleteBefore(1), /*sync=*/false).ok());
  ASSERT_TRUE(storage_.Write(ActionsBatch({2}), /*sync=*/true).ok());
  ASSERT_TRUE(storage_.Write(ActionsBatch({3}), /*sync=*/false).ok());
  storage_.SimulateCrash();
  EXPECT_THAT(AllPositions(), ElementsAre(1, 2));
}

TEST_F(MemoryStorageTest, UnsyncedTruncationIsUndoneByCrash) {
  ASSERT_TRUE(storage_.Write(ActionsBatch({1, 2, 3}), true).ok());
  ASSERT_TRUE(storage_.Write(DeleteBefore(3), false).ok());
  EXPECT_THAT(AllPositions(), ElementsAre(3));
  storage_.SimulateCrash();
  EXPECT_THAT(AllPositions(), ElementsAre(1, 2, 3));
}

TEST_F(MemoryStorageTest, CrashKeepsAPrefixOfWholeUnsyncedBatches) {
  ASSERT_TRUE(storage_.Write(ActionsBatch({1, 2}), false).ok());
  ASSERT_TRUE(storage_.Write(ActionsBatch({3, 4}), false).ok());
  ASSERT_TRUE(storage_.Write(ActionsBatch({5, 6}), false).ok());
  storage_.SimulateCrash(/*keep_unsynced_batches=*/2);
  EXPECT_THAT(AllPositions(), ElementsAre(1, 2, 3, 4));
  // Keeping more than there are keeps them all.
  ASSERT_TRUE(storage_.Write(ActionsBatch({7}), false).ok());
  storage_.SimulateCrash(/*keep_unsynced_batches=*/5);
  EXPECT_THAT(AllPositions(), ElementsAre(1, 2, 3, 4, 7));
}

TEST_F(MemoryStorageTest, WipeLosesEverything) {
  ASSERT_TRUE(storage_.Write(MetadataBatch(3), true).ok());
  ASSERT_TRUE(storage_.Write(ActionsBatch({1, 2}), true).ok());
  ASSERT_TRUE(storage_.Write(ActionsBatch({3}), false).ok());
  storage_.Wipe();
  EXPECT_FALSE(storage_.ReadMetadata()->has_value());
  EXPECT_TRUE(AllPositions().empty());
  EXPECT_EQ(*storage_.LastPosition(), 0u);
  EXPECT_EQ(storage_.ApproximateBytes(), 0u);
  storage_.SimulateCrash();
  EXPECT_TRUE(AllPositions().empty());
}

TEST_F(MemoryStorageTest, CorruptActionIsDataLossNamingThePosition) {
  const uint64_t kBad = uint64_t{1} << 32;
  ASSERT_TRUE(storage_.Write(ActionsBatch({1, kBad, kBad + 1}), true).ok());
  ASSERT_TRUE(storage_.CorruptAction(kBad).ok());

  absl::StatusOr<std::optional<cairn::v1::Action>> read = storage_.Read(kBad);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(read.status().message(), HasSubstr("position 4294967296"));
  absl::StatusOr<std::vector<cairn::v1::Action>> range =
      storage_.ReadRange(0, kMaxPosition, 10);
  EXPECT_EQ(range.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(range.status().message(), HasSubstr("position 4294967296"));

  EXPECT_TRUE(storage_.Read(1)->has_value());
  EXPECT_TRUE(storage_.Read(kBad + 1)->has_value());
  EXPECT_EQ(*storage_.LastPosition(), kBad + 1);
}

TEST_F(MemoryStorageTest, CorruptionIsOnDiskAndIdempotent) {
  ASSERT_TRUE(storage_.Write(ActionsBatch({1}), true).ok());
  ASSERT_TRUE(storage_.Write(ActionsBatch({2}), false).ok());
  ASSERT_TRUE(storage_.CorruptAction(1).ok());
  ASSERT_TRUE(storage_.CorruptAction(1).ok());  // stays damaged
  ASSERT_TRUE(storage_.CorruptAction(2).ok());
  // A later sync does not heal the queued write; a crash does not heal the
  // durable one.
  ASSERT_TRUE(storage_.Write(WriteBatch(), true).ok());
  storage_.SimulateCrash();
  EXPECT_EQ(storage_.Read(1).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(storage_.Read(2).status().code(), absl::StatusCode::kDataLoss);
  // Rewriting the position does.
  ASSERT_TRUE(storage_.Write(ActionsBatch({1}), true).ok());
  EXPECT_TRUE(storage_.Read(1)->has_value());
}

TEST_F(MemoryStorageTest, CorruptingAMissingRecordIsNotFound) {
  EXPECT_EQ(storage_.CorruptAction(1).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(storage_.CorruptMetadata().code(), absl::StatusCode::kNotFound);
}

TEST_F(MemoryStorageTest, CorruptMetadataIsDataLoss) {
  ASSERT_TRUE(storage_.Write(MetadataBatch(4), true).ok());
  ASSERT_TRUE(storage_.CorruptMetadata().ok());
  absl::StatusOr<std::optional<cairn::v1::Metadata>> metadata =
      storage_.ReadMetadata();
  EXPECT_EQ(metadata.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(metadata.status().message(), HasSubstr("metadata"));
}

TEST_F(MemoryStorageTest, CorruptsEvenAnEmptyRecord) {
  // Position 0 with no other fields serializes to zero bytes.
  WriteBatch batch;
  batch.actions.emplace_back();
  batch.metadata = cairn::v1::Metadata();
  ASSERT_TRUE(storage_.Write(batch, true).ok());
  ASSERT_TRUE(storage_.Read(0)->has_value());
  ASSERT_TRUE(storage_.CorruptAction(0).ok());
  ASSERT_TRUE(storage_.CorruptMetadata().ok());
  EXPECT_EQ(storage_.Read(0).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(storage_.ReadMetadata().status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(MemoryStorageTest, CountsWritesAndSyncedWrites) {
  ASSERT_TRUE(storage_.Write(ActionsBatch({1}), true).ok());
  ASSERT_TRUE(storage_.Write(ActionsBatch({2}), false).ok());
  ASSERT_TRUE(storage_.Write(ActionsBatch({3}), true).ok());
  EXPECT_EQ(storage_.writes(), 3u);
  EXPECT_EQ(storage_.sync_writes(), 2u);
  EXPECT_EQ(storage_.unsynced_batches(), 0u);
}

TEST_F(MemoryStorageTest, InjectedWriteErrorFailsWritesWithoutEffect) {
  storage_.InjectWriteError(absl::UnavailableError("disk full"));
  EXPECT_EQ(storage_.Write(ActionsBatch({1}), true).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(AllPositions().empty());
  EXPECT_EQ(storage_.writes(), 0u);
  storage_.InjectWriteError(absl::OkStatus());
  EXPECT_TRUE(storage_.Write(ActionsBatch({1}), true).ok());
  EXPECT_THAT(AllPositions(), ElementsAre(1));
}

TEST_F(MemoryStorageTest, DiskUseLevelsOffUnderAppendAndTruncate) {
  const std::string value(1024, 'v');
  uint64_t next = 1;
  uint64_t at_50 = 0;
  for (int cycle = 1; cycle <= 200; ++cycle) {
    WriteBatch batch;
    for (int i = 0; i < 50; ++i)
      batch.actions.push_back(MakeAction(next++, value));
    batch.delete_before = next - 50;
    ASSERT_TRUE(storage_.Write(batch, cycle % 2 == 0).ok());
    if (cycle == 50) at_50 = storage_.ApproximateBytes();
  }
  EXPECT_LE(storage_.ApproximateBytes(), 2 * at_50);
}

}  // namespace
}  // namespace cairn::log
