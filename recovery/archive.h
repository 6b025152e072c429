// Archive: the master's truncated history, as immutable, checksummed segment
// files with a position and time index.
//
// Before the master truncates the replicated log below position T, it
// archives the entries of positions [next_position(), T - 1] as one segment
// (BeginSegment, Add..., Seal) and truncates only after Seal returned OK.
// A sealed segment never changes; retention deletes whole segments, oldest
// first, and never one that still covers positions after the newest snapshot
// (those are needed to roll that snapshot forward once the log is gone).
//
// Gaps. A master that was away (down, or too far behind) while the log was
// truncated past its archive's end continues from a peer's snapshot; the
// positions in between are in no file of its own. RecordGap writes them as a
// gap segment: a sealed segment without records whose footer carries a
// cairn.v1.SegmentGap (why, when). The archive stays contiguous, archiving
// continues after the gap, and every read that touches a gap fails with
// kOutOfRange naming it (GapError): a hole is never silent. The entries still
// exist in the other masters' archives. Retention treats a gap like any
// segment; it ages by the time it was recorded (an upper bound of its
// events' times).
//
// Files in the archive directory:
//   segment-<first>-<last>.seg   a sealed segment covering positions
//                                [first, last] (20-digit decimal numbers)
//   segment-<first>.open         the segment being written; an interrupted
//                                one is deleted by Open() (its entries are
//                                still in the log: truncation waits for Seal)
// A gap segment has the same name and layout as one with entries.
//
// Segment layout, little-endian:
//   header   24 bytes: magic "CAIRNSEG", u32 format version (1: entries;
//            2: a gap, so that a reader which predates gaps refuses it
//            instead of reading it as covered positions without entries),
//            u64 first position, u32 CRC-32C of the preceding 20 bytes
//   records  per entry: u32 payload length N, u32 CRC-32C of (the 4 length
//            bytes + payload), N bytes of cairn.v1.ArchiveRecord
//   footer   cairn.v1.SegmentFooter: what the segment covers, its time range
//            and one index entry (position, index, time, offset) per record
//   trailer  16 bytes: u32 footer length, u32 CRC-32C of the footer, magic
//            "CAIRNEND"
// Every read verifies what it touches; a mismatch is kDataLoss naming the
// segment file and the byte offset.
//
// Times are the events' envelope times. Time lookups find the first entry
// (in log order) whose time is later than T; with the leader's clock
// non-decreasing along the log this is "everything up to time T".
//
// Thread safety: none; one thread owns an Archive (reads included, as the
// footer cache is filled lazily).

#ifndef CAIRN_RECOVERY_ARCHIVE_H_
#define CAIRN_RECOVERY_ARCHIVE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cairn/v1/history.pb.h"
#include "recovery/internal/files.h"

namespace cairn::recovery {

// One log entry as archived.
struct ArchivedEntry {
  uint64_t position = 0;
  uint32_t index = 0;
  absl::Time time;   // the event's envelope time
  std::string data;  // the entry's bytes (a serialized cairn.v1.Event)

  friend bool operator==(const ArchivedEntry& a, const ArchivedEntry& b) {
    return a.position == b.position && a.index == b.index && a.time == b.time &&
           a.data == b.data;
  }
};

// What a gap segment records (cairn.v1.SegmentGap).
struct ArchiveGap {
  std::string reason;
  // When it was recorded: every event of the gap is older (up to the clock
  // skew between masters).
  absl::Time recorded = absl::InfinitePast();
  // The newest archived entry before the gap (InfinitePast: none): no event
  // of the gap is older, as times do not go backwards along the log.
  absl::Time after = absl::InfinitePast();
};

// A sealed segment as listed by the archive.
struct SegmentInfo {
  std::string path;
  uint64_t first_position = 0;  // covers [first_position, last_position]
  uint64_t last_position = 0;
  uint64_t entry_count = 0;
  absl::Time min_time = absl::InfinitePast();  // of its entries; an empty
  absl::Time max_time = absl::InfinitePast();  // segment has InfinitePast
  uint64_t bytes = 0;
  // Set for a gap segment (entry_count 0): the positions it covers are
  // missing from this archive.
  std::optional<ArchiveGap> gap;
};

// The first entry later than some time: where a time cut falls.
struct EntryLocation {
  uint64_t position = 0;
  uint32_t index = 0;
};

// Which segments retention may delete: the oldest ones, while any limit is
// exceeded. Zero means no limit.
struct ArchiveRetention {
  // Delete a segment whose newest entry is older than now - max_age (an
  // empty segment counts by its neighbour's age: it goes with them; a gap
  // by the time it was recorded).
  absl::Duration max_age = absl::ZeroDuration();
  // Delete oldest segments while the archive is larger than this.
  uint64_t max_bytes = 0;
};

class Archive {
 public:
  static constexpr uint32_t kFormatVersion = 1;     // a segment of entries
  static constexpr uint32_t kGapFormatVersion = 2;  // a gap segment
  static constexpr size_t kHeaderSize = 24;
  static constexpr size_t kTrailerSize = 16;
  static constexpr size_t kFrameHeaderSize = 8;

  // Opens the archive in `dir` (creating it), deletes an interrupted open
  // segment, and lists the sealed ones, reading each trailer and footer.
  // Errors: kDataLoss for a sealed segment whose footer does not verify or
  // whose name disagrees with it; kDataLoss for overlapping segments; I/O
  // errors by errno.
  static absl::StatusOr<std::unique_ptr<Archive>> Open(std::string dir);

  Archive(const Archive&) = delete;
  Archive& operator=(const Archive&) = delete;
  ~Archive();

  // ---- Writing ------------------------------------------------------------

  // Starts a segment covering positions from `first_position` on. Returns
  // kFailedPrecondition if a segment is already open, or if first_position
  // is not after last_position() (segments never overlap); kInvalidArgument
  // for position 0.
  absl::Status BeginSegment(uint64_t first_position);

  // Appends one entry to the open segment (buffered; durable at Seal).
  // Returns kFailedPrecondition when no segment is open; kInvalidArgument
  // when (position, index) is not after the previous entry's or position
  // is before the segment's first position.
  absl::Status Add(const ArchivedEntry& entry);

  // Writes the footer, fsyncs, renames the segment to its sealed name and
  // fsyncs the directory. The segment covers [first, last_position].
  // Returns kFailedPrecondition when no segment is open; kInvalidArgument
  // when last_position is before the first position or before an added
  // entry (the segment stays open). I/O errors by errno (the open segment
  // is abandoned then).
  absl::Status Seal(uint64_t last_position);

  // Deletes the open segment, if any.
  void Abandon();

  // BeginSegment + Add(each) + Seal; abandons the segment on any error.
  absl::Status WriteSegment(uint64_t first_position, uint64_t last_position,
                            const std::vector<ArchivedEntry>& entries);

  // Seals a gap segment covering [first_position, last_position]: this
  // archive will never hold those positions, because of `reason` (say what
  // happened and where the history is instead), recorded at `now`. The
  // next segment begins after last_position. Returns kFailedPrecondition
  // when a segment is open or first_position is not after last_position();
  // kInvalidArgument for position 0 or last_position < first_position; I/O
  // errors by errno.
  absl::Status RecordGap(uint64_t first_position, uint64_t last_position,
                         absl::string_view reason, absl::Time now);

  // ---- Reading --------------------------------------------------------------

  // Sealed segments, oldest first.
  const std::vector<SegmentInfo>& segments() const { return segments_; }
  bool empty() const { return segments_.empty(); }
  // The first / last position covered by a sealed segment. REQUIRES: !empty().
  uint64_t first_position() const;
  uint64_t last_position() const;
  // Where the next segment should begin: last_position() + 1, or
  // `if_empty` for an empty archive.
  uint64_t next_position(uint64_t if_empty) const;
  uint64_t total_bytes() const;

  // The gap segment covering `position`, or null. The pointer is valid until
  // the next write or retention.
  const SegmentInfo* GapAt(uint64_t position) const;

  // The archived entries at positions [from, to], in order. Positions not
  // covered by any segment simply yield nothing. kOutOfRange (GapError)
  // when [from, to] reaches into a gap; kDataLoss on corruption.
  absl::StatusOr<std::vector<ArchivedEntry>> Read(uint64_t from, uint64_t to);

  // The archived entries whose time is in [from, to], in log order.
  // kOutOfRange (GapError) when a gap's events may fall in [from, to] (its
  // ArchiveGap::after .. recorded overlaps it); kDataLoss on corruption.
  absl::StatusOr<std::vector<ArchivedEntry>> ReadTimeRange(absl::Time from,
                                                           absl::Time to);

  // The first archived entry (in log order) whose time is after `time`, or
  // nullopt when no archived entry is. Gaps hold no entries and are not
  // looked at: a caller that cares where the cut falls checks them (as
  // History does). Reads footers only.
  absl::StatusOr<std::optional<EntryLocation>> FirstEntryAfter(absl::Time time);

  // The first archived entry at a position >= `position`, or nullopt.
  // Reads footers only.
  absl::StatusOr<std::optional<EntryLocation>> FirstEntryFrom(
      uint64_t position);

  // Verifies every record of every segment. kDataLoss for the first bad one.
  absl::Status VerifyAll();

  // ---- Retention ------------------------------------------------------------

  // Deletes the oldest segments while `policy` says so (at `now`), never a
  // segment whose last position is > `protect_after` (pass the newest
  // snapshot's position). Returns the number of segments deleted.
  absl::StatusOr<int> ApplyRetention(const ArchiveRetention& policy,
                                     absl::Time now, uint64_t protect_after);

  const std::string& dir() const { return dir_; }

 private:
  struct OpenSegment {
    uint64_t first_position = 0;
    internal::AppendFile file;
    v1::SegmentFooter footer;
    std::string buffer;  // records not yet written to the file
  };

  explicit Archive(std::string dir) : dir_(std::move(dir)) {}

  // BeginSegment with the header's format version.
  absl::Status Begin(uint64_t first_position, uint32_t format_version);

  // The footer of sealed segment `i`, read and verified on first use.
  absl::StatusOr<const v1::SegmentFooter*> Footer(size_t i);
  // Reads the records with index entries [begin, end) of segment `i`,
  // keeping those for which `keep` is true.
  template <typename Keep>
  absl::Status ReadRecords(size_t i, size_t begin, size_t end, Keep keep,
                           std::vector<ArchivedEntry>* out);

  std::string dir_;
  std::vector<SegmentInfo> segments_;
  // Footers of segments_, parallel; filled lazily (null until read).
  std::vector<std::unique_ptr<v1::SegmentFooter>> footers_;
  std::optional<OpenSegment> open_;
};

// Reads the trailer and footer of the segment file at `path` and verifies
// them (kDataLoss naming the file and offset otherwise).
absl::StatusOr<v1::SegmentFooter> ReadSegmentFooter(const std::string& path);

// The kOutOfRange status for `what` (e.g. "position 42") falling into the
// gap segment `gap`: names the gap's positions, its reason and when it was
// recorded, and says that the other masters' archives hold that history.
// REQUIRES: gap.gap has a value.
absl::Status GapError(const SegmentInfo& gap, absl::string_view what);

}  // namespace cairn::recovery

#endif  // CAIRN_RECOVERY_ARCHIVE_H_
