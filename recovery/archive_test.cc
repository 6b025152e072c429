#include "recovery/archive.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "recovery/internal/files.h"

namespace cairn::recovery {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1700000000);

std::string FreshDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = absl::StrCat(::testing::TempDir(), "/archive-",
                                 info->test_suite_name(), "-", info->name());
  std::system(("rm -rf '" + dir + "'").c_str());
  return dir;
}

// Two entries per position, one second apart per position.
std::vector<ArchivedEntry> EntriesFor(uint64_t first, uint64_t last) {
  std::vector<ArchivedEntry> out;
  for (uint64_t p = first; p <= last; ++p) {
    for (uint32_t i = 0; i < 2; ++i) {
      out.push_back(ArchivedEntry{p, i, kStart + absl::Seconds(p),
                                  absl::StrCat("entry ", p, ":", i)});
    }
  }
  return out;
}

std::vector<ArchivedEntry> Between(const std::vector<ArchivedEntry>& all,
                                   uint64_t from, uint64_t to) {
  std::vector<ArchivedEntry> out;
  for (const auto& e : all) {
    if (e.position >= from && e.position <= to) out.push_back(e);
  }
  return out;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::string data = *internal::ReadFile(path);
  ASSERT_LT(offset, data.size());
  data[offset] ^= 0x01;
  ASSERT_TRUE(internal::WriteFileDurably(path, path + ".x", data).ok());
}

TEST(ArchiveTest, WrittenSegmentsReadBackByPositionAfterReopen) {
  const std::string dir = FreshDir();
  std::vector<ArchivedEntry> all = EntriesFor(1, 30);
  {
    auto archive = *Archive::Open(dir);
    ASSERT_TRUE(archive->WriteSegment(1, 10, Between(all, 1, 10)).ok());
    ASSERT_TRUE(archive->WriteSegment(11, 30, Between(all, 11, 30)).ok());
  }
  auto archive = *Archive::Open(dir);
  ASSERT_EQ(archive->segments().size(), 2u);
  EXPECT_EQ(archive->first_position(), 1u);
  EXPECT_EQ(archive->last_position(), 30u);
  EXPECT_EQ(archive->segments()[1].entry_count, 40u);
  EXPECT_EQ(archive->segments()[1].min_time, kStart + absl::Seconds(11));
  EXPECT_EQ(archive->next_position(1), 31u);

  absl::StatusOr<std::vector<ArchivedEntry>> read = archive->Read(8, 14);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, Between(all, 8, 14));
  EXPECT_EQ(*archive->Read(1, 100), all);
  EXPECT_TRUE(archive->Read(31, 40)->empty());
  EXPECT_TRUE(archive->VerifyAll().ok());
}

TEST(ArchiveTest, ReadsByTimeAndFindsTheFirstEntryAfterATime) {
  auto archive = *Archive::Open(FreshDir());
  std::vector<ArchivedEntry> all = EntriesFor(1, 20);
  ASSERT_TRUE(archive->WriteSegment(1, 10, Between(all, 1, 10)).ok());
  ASSERT_TRUE(archive->WriteSegment(11, 20, Between(all, 11, 20)).ok());

  absl::StatusOr<std::vector<ArchivedEntry>> read = archive->ReadTimeRange(
      kStart + absl::Seconds(9), kStart + absl::Seconds(12));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, Between(all, 9, 12));

  auto after = archive->FirstEntryAfter(kStart + absl::Seconds(10));
  ASSERT_TRUE(after.ok() && after->has_value());
  EXPECT_EQ((*after)->position, 11u);
  EXPECT_EQ((*after)->index, 0u);
  EXPECT_FALSE(
      archive->FirstEntryAfter(kStart + absl::Seconds(20))->has_value());
  EXPECT_EQ((*archive->FirstEntryAfter(absl::InfinitePast()))->position, 1u);
}

TEST(ArchiveTest, FlippedRecordByteIsDataLossNamingSegmentAndOffset) {
  const std::string dir = FreshDir();
  {
    auto archive = *Archive::Open(dir);
    ASSERT_TRUE(archive->WriteSegment(1, 10, EntriesFor(1, 10)).ok());
  }
  auto archive = *Archive::Open(dir);
  const std::string path = archive->segments()[0].path;
  // The fifth record's payload: header + 4 records of known size + frame.
  const uint64_t offset = Archive::kHeaderSize + 60;
  FlipByte(path, offset);
  archive = *Archive::Open(dir);  // footer intact: opens

  absl::Status status = archive->VerifyAll();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(status.message().find(path), std::string::npos) << status;
  EXPECT_NE(status.message().find("at offset"), std::string::npos) << status;
  EXPECT_EQ(archive->Read(1, 10).status().code(), absl::StatusCode::kDataLoss);
}

TEST(ArchiveTest, FlippedFooterByteFailsOpenWithDataLoss) {
  const std::string dir = FreshDir();
  std::string path;
  {
    auto archive = *Archive::Open(dir);
    ASSERT_TRUE(archive->WriteSegment(1, 10, EntriesFor(1, 10)).ok());
    path = archive->segments()[0].path;
  }
  const uint64_t size = *internal::FileSize(path);
  FlipByte(path, size - Archive::kTrailerSize - 5);
  absl::StatusOr<std::unique_ptr<Archive>> archive = Archive::Open(dir);
  EXPECT_EQ(archive.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(archive.status().message().find(path), std::string::npos);
}

TEST(ArchiveTest, InterruptedSegmentIsDiscardedOnReopen) {
  const std::string dir = FreshDir();
  {
    auto archive = *Archive::Open(dir);
    ASSERT_TRUE(archive->WriteSegment(1, 10, EntriesFor(1, 10)).ok());
    ASSERT_TRUE(archive->BeginSegment(11).ok());
    for (const auto& e : EntriesFor(11, 12)) ASSERT_TRUE(archive->Add(e).ok());
    // Crash before Seal: simulate by copying the open file aside and back.
    const std::string open_path =
        absl::StrCat(dir, "/segment-00000000000000000011.open");
    std::string partial = *internal::ReadFile(open_path);
    archive->Abandon();
    ASSERT_TRUE(
        internal::WriteFileDurably(open_path, open_path + ".x", partial).ok());
  }
  auto archive = *Archive::Open(dir);
  EXPECT_EQ(archive->segments().size(), 1u);
  EXPECT_EQ(archive->last_position(), 10u);
  EXPECT_EQ(*internal::ListDir(dir),
            std::vector<std::string>{
                "segment-00000000000000000001-00000000000000000010.seg"});
  EXPECT_TRUE(archive->BeginSegment(11).ok());
}

TEST(ArchiveTest, WriterEnforcesOrderAndNoOverlap) {
  auto archive = *Archive::Open(FreshDir());
  EXPECT_EQ(archive->Add(ArchivedEntry{1, 0, kStart, "x"}).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(archive->Seal(1).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(archive->BeginSegment(5).ok());
  EXPECT_EQ(archive->BeginSegment(6).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(archive->Add(ArchivedEntry{4, 0, kStart, "x"}).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(archive->Add(ArchivedEntry{6, 1, kStart, "x"}).ok());
  EXPECT_EQ(archive->Add(ArchivedEntry{6, 1, kStart, "x"}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(archive->Add(ArchivedEntry{6, 0, kStart, "x"}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(archive->Seal(5).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(archive->Seal(9).ok());
  EXPECT_EQ(archive->BeginSegment(9).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(archive->BeginSegment(0).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(archive->BeginSegment(12).ok());  // a gap is allowed
}

TEST(ArchiveTest, EmptySegmentCoversNoOpPositions) {
  const std::string dir = FreshDir();
  {
    auto archive = *Archive::Open(dir);
    ASSERT_TRUE(archive->WriteSegment(1, 4, {}).ok());
  }
  auto archive = *Archive::Open(dir);
  EXPECT_EQ(archive->last_position(), 4u);
  EXPECT_TRUE(archive->Read(1, 4)->empty());
  EXPECT_FALSE(archive->FirstEntryAfter(absl::InfinitePast())->has_value());
}

TEST(ArchiveTest, RetentionByBytesDeletesOldestFirst) {
  auto archive = *Archive::Open(FreshDir());
  for (uint64_t first = 1; first <= 50; first += 10) {
    ASSERT_TRUE(
        archive->WriteSegment(first, first + 9, EntriesFor(first, first + 9))
            .ok());
  }
  const uint64_t segment_bytes = archive->segments()[0].bytes;
  ArchiveRetention policy;
  policy.max_bytes = 2 * segment_bytes + segment_bytes / 2;
  absl::StatusOr<int> deleted =
      archive->ApplyRetention(policy, kStart, /*protect_after=*/1000);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 3);
  EXPECT_EQ(archive->first_position(), 31u);
  EXPECT_LE(archive->total_bytes(), policy.max_bytes);
  EXPECT_EQ(archive->Read(1, 30)->size(), 0u);
  EXPECT_EQ(archive->Read(31, 50)->size(), 40u);
}

TEST(ArchiveTest, RetentionByAgeDeletesExpiredSegmentsOnly) {
  auto archive = *Archive::Open(FreshDir());
  for (uint64_t first = 1; first <= 31; first += 10) {
    ASSERT_TRUE(
        archive->WriteSegment(first, first + 9, EntriesFor(first, first + 9))
            .ok());
  }
  // Segment [11, 20] ends at kStart + 20s: expired at kStart + 30s + 9s.
  ArchiveRetention policy;
  policy.max_age = absl::Seconds(9);
  EXPECT_EQ(*archive->ApplyRetention(policy, kStart + absl::Seconds(30),
                                     /*protect_after=*/1000),
            2);
  EXPECT_EQ(archive->first_position(), 21u);
}

TEST(ArchiveTest, RetentionNeverDeletesBeyondTheLatestSnapshot) {
  auto archive = *Archive::Open(FreshDir());
  for (uint64_t first = 1; first <= 31; first += 10) {
    ASSERT_TRUE(
        archive->WriteSegment(first, first + 9, EntriesFor(first, first + 9))
            .ok());
  }
  ArchiveRetention policy;
  policy.max_bytes = 1;  // wants everything gone
  EXPECT_EQ(*archive->ApplyRetention(policy, kStart, /*protect_after=*/25), 2);
  // [21, 30] covers position 26..30, after the snapshot at 25: kept.
  EXPECT_EQ(archive->first_position(), 21u);
  EXPECT_EQ(*archive->ApplyRetention(policy, kStart, /*protect_after=*/25), 0);
}

// ---- Gaps ----------------------------------------------------------------

const absl::Time kGapRecorded = kStart + absl::Hours(10);
constexpr char kGapReason[] =
    "the log was truncated past them while this master was down";

// Entries at 1..10, a gap at 11..20 recorded at kGapRecorded, entries at
// 21..30.
void WriteWithGap(Archive* archive, const std::vector<ArchivedEntry>& all) {
  ASSERT_TRUE(archive->WriteSegment(1, 10, Between(all, 1, 10)).ok());
  ASSERT_TRUE(archive->RecordGap(11, 20, kGapReason, kGapRecorded).ok());
  EXPECT_EQ(archive->next_position(1), 21u);
  ASSERT_TRUE(archive->WriteSegment(21, 30, Between(all, 21, 30)).ok());
}

TEST(ArchiveTest, RecordedGapSurvivesReopenWithItsReasonAndTimes) {
  const std::string dir = FreshDir();
  const std::vector<ArchivedEntry> all = EntriesFor(1, 30);
  {
    auto archive = *Archive::Open(dir);
    WriteWithGap(archive.get(), all);
  }
  auto archive = *Archive::Open(dir);
  ASSERT_EQ(archive->segments().size(), 3u);
  const SegmentInfo& gap = archive->segments()[1];
  ASSERT_TRUE(gap.gap.has_value());
  EXPECT_EQ(gap.first_position, 11u);
  EXPECT_EQ(gap.last_position, 20u);
  EXPECT_EQ(gap.entry_count, 0u);
  EXPECT_EQ(gap.gap->reason, kGapReason);
  EXPECT_EQ(gap.gap->recorded, kGapRecorded);
  EXPECT_EQ(gap.gap->after, kStart + absl::Seconds(10));  // newest before it
  EXPECT_FALSE(archive->segments()[0].gap.has_value());
  EXPECT_EQ(archive->GapAt(11), &archive->segments()[1]);
  EXPECT_EQ(archive->GapAt(20), &archive->segments()[1]);
  EXPECT_EQ(archive->GapAt(10), nullptr);
  EXPECT_EQ(archive->GapAt(21), nullptr);
  EXPECT_EQ(archive->last_position(), 30u);
  EXPECT_TRUE(archive->VerifyAll().ok());

  // A reader that predates gaps must refuse the file, not read it as
  // positions without entries: its header says format version 2.
  const std::string header = internal::ReadFile(gap.path)->substr(0, 12);
  EXPECT_EQ(internal::DecodeFixed32(header.data() + 8),
            Archive::kGapFormatVersion);
}

TEST(ArchiveTest, ReadsThatTouchAGapAreOutOfRangeNamingIt) {
  auto archive = *Archive::Open(FreshDir());
  const std::vector<ArchivedEntry> all = EntriesFor(1, 30);
  WriteWithGap(archive.get(), all);

  EXPECT_EQ(*archive->Read(2, 10), Between(all, 2, 10));
  EXPECT_EQ(*archive->Read(21, 30), Between(all, 21, 30));
  for (auto [from, to] :
       {std::pair<uint64_t, uint64_t>{15, 15}, {8, 12}, {19, 25}, {1, 30}}) {
    absl::StatusOr<std::vector<ArchivedEntry>> read = archive->Read(from, to);
    EXPECT_EQ(read.status().code(), absl::StatusCode::kOutOfRange)
        << from << ".." << to;
    EXPECT_NE(read.status().message().find("positions 11..20 are a gap"),
              std::string::npos)
        << read.status();
    EXPECT_NE(read.status().message().find(kGapReason), std::string::npos);
    EXPECT_NE(read.status().message().find("other masters' archives"),
              std::string::npos);
  }

  // By time: the gap's events are after the newest entry before it
  // (kStart + 10s) and before it was recorded.
  EXPECT_EQ(*archive->ReadTimeRange(kStart, kStart + absl::Seconds(9)),
            Between(all, 1, 9));
  EXPECT_EQ(
      archive
          ->ReadTimeRange(kStart + absl::Seconds(5), kStart + absl::Seconds(25))
          .status()
          .code(),
      absl::StatusCode::kOutOfRange);
  EXPECT_EQ(archive
                ->ReadTimeRange(kGapRecorded + absl::Seconds(1),
                                kGapRecorded + absl::Hours(1))
                .status(),
            absl::OkStatus());

  // Lookups that return locations skip the gap (it has no entries).
  EXPECT_EQ((*archive->FirstEntryAfter(kStart + absl::Seconds(10)))->position,
            21u);
  EXPECT_EQ((*archive->FirstEntryFrom(11))->position, 21u);
  EXPECT_EQ((*archive->FirstEntryFrom(7))->position, 7u);
  EXPECT_FALSE(archive->FirstEntryFrom(31)->has_value());
}

TEST(ArchiveTest, GapIsWrittenOnlyWhereASegmentCouldBe) {
  auto archive = *Archive::Open(FreshDir());
  ASSERT_TRUE(archive->WriteSegment(1, 10, EntriesFor(1, 10)).ok());
  EXPECT_EQ(archive->RecordGap(10, 20, kGapReason, kStart).code(),
            absl::StatusCode::kFailedPrecondition);  // overlaps
  EXPECT_EQ(archive->RecordGap(20, 11, kGapReason, kStart).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(archive->BeginSegment(11).ok());
  EXPECT_EQ(archive->RecordGap(21, 30, kGapReason, kStart).code(),
            absl::StatusCode::kFailedPrecondition);  // a segment is open
  archive->Abandon();
  ASSERT_TRUE(archive->RecordGap(11, 11, kGapReason, kStart).ok());
  EXPECT_EQ(archive->last_position(), 11u);
  EXPECT_EQ(archive->segments().size(), 2u);
  // An empty archive may begin with a gap; it has no lower time bound.
  auto empty = *Archive::Open(FreshDir() + "-empty");
  EXPECT_EQ(empty->RecordGap(0, 5, kGapReason, kStart).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(empty->RecordGap(1, 5, kGapReason, kStart).ok());
  EXPECT_EQ(empty->segments()[0].gap->after, absl::InfinitePast());
}

TEST(ArchiveTest, RetentionTreatsAGapLikeAnySegmentAgedByItsRecordTime) {
  auto archive = *Archive::Open(FreshDir());
  WriteWithGap(archive.get(), EntriesFor(1, 30));
  ArchiveRetention policy;
  policy.max_age = absl::Hours(1);
  // [1, 10] expired long ago; the gap, recorded at 10h, has not: it stays
  // and keeps everything after it.
  EXPECT_EQ(*archive->ApplyRetention(policy, kGapRecorded + absl::Minutes(30),
                                     /*protect_after=*/1000),
            1);
  ASSERT_TRUE(archive->segments()[0].gap.has_value());
  EXPECT_EQ(archive->Read(15, 15).status().code(),
            absl::StatusCode::kOutOfRange);
  // An hour after it was recorded it goes, with what expired after it.
  EXPECT_EQ(*archive->ApplyRetention(policy, kGapRecorded + absl::Minutes(61),
                                     /*protect_after=*/1000),
            2);
  EXPECT_TRUE(archive->empty());

  // By bytes it goes oldest first like any segment, never past the snapshot.
  auto by_bytes = *Archive::Open(FreshDir() + "-bytes");
  WriteWithGap(by_bytes.get(), EntriesFor(1, 30));
  ArchiveRetention tiny;
  tiny.max_bytes = 1;
  EXPECT_EQ(*by_bytes->ApplyRetention(tiny, kStart, /*protect_after=*/20), 2);
  EXPECT_EQ(by_bytes->first_position(), 21u);
}

}  // namespace
}  // namespace cairn::recovery
