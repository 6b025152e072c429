#include "recovery/archive.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/crc32c.h"
#include "common/status_macros.h"
#include "recovery/internal/files.h"

namespace cairn::recovery {
namespace {

using internal::DecodeFixed32;
using internal::DecodeFixed64;
using internal::PutFixed32;
using internal::PutFixed64;

constexpr absl::string_view kMagic = "CAIRNSEG";
constexpr absl::string_view kEndMagic = "CAIRNEND";
constexpr absl::string_view kPrefix = "segment-";
constexpr absl::string_view kSealedSuffix = ".seg";
constexpr absl::string_view kOpenSuffix = ".open";
constexpr size_t kFlushBytes = 1 << 20;

absl::Status Corrupt(const std::string& path, uint64_t offset,
                     absl::string_view why) {
  return absl::DataLossError(
      absl::StrCat("archive segment ", path, " at offset ", offset, ": ", why));
}

// Parses "segment-<first>-<last>.seg".
bool ParseSealedName(absl::string_view name, uint64_t* first, uint64_t* last) {
  if (!absl::ConsumePrefix(&name, kPrefix)) return false;
  if (!absl::ConsumeSuffix(&name, kSealedSuffix)) return false;
  std::vector<absl::string_view> parts = absl::StrSplit(name, '-');
  return parts.size() == 2 && parts[0].size() == 20 && parts[1].size() == 20 &&
         absl::SimpleAtoi(parts[0], first) && absl::SimpleAtoi(parts[1], last);
}

std::string SealedName(uint64_t first, uint64_t last) {
  return absl::StrFormat("%s%020u-%020u%s", kPrefix, first, last,
                         kSealedSuffix);
}

absl::Time FromNanos(int64_t nanos) { return absl::FromUnixNanos(nanos); }

SegmentInfo InfoFrom(const std::string& path, const v1::SegmentFooter& footer,
                     uint64_t bytes) {
  SegmentInfo info;
  info.path = path;
  info.first_position = footer.first_position();
  info.last_position = footer.last_position();
  info.entry_count = footer.entry_count();
  if (footer.entry_count() > 0) {
    info.min_time = FromNanos(footer.min_time_nanos());
    info.max_time = FromNanos(footer.max_time_nanos());
  }
  info.bytes = bytes;
  if (footer.has_gap()) {
    ArchiveGap gap;
    gap.reason = footer.gap().reason();
    gap.recorded = FromNanos(footer.gap().recorded_time_nanos());
    if (footer.gap().has_after_time_nanos()) {
      gap.after = FromNanos(footer.gap().after_time_nanos());
    }
    info.gap = std::move(gap);
  }
  return info;
}

// When retention counts the segment's newest entry as written.
absl::Time AgeTime(const SegmentInfo& s) {
  return s.gap.has_value() ? s.gap->recorded : s.max_time;
}

std::string Positions(uint64_t first, uint64_t last) {
  return first == last ? absl::StrCat(first) : absl::StrCat(first, "..", last);
}

// (position, index) order.
bool Before(uint64_t p1, uint32_t i1, uint64_t p2, uint32_t i2) {
  return p1 < p2 || (p1 == p2 && i1 < i2);
}

}  // namespace

absl::StatusOr<v1::SegmentFooter> ReadSegmentFooter(const std::string& path) {
  ASSIGN_OR_RETURN(internal::ReadableFile file,
                   internal::ReadableFile::Open(path));
  const uint64_t size = file.size();
  if (size < Archive::kHeaderSize + Archive::kTrailerSize) {
    return Corrupt(path, 0, "shorter than header and trailer");
  }
  ASSIGN_OR_RETURN(std::string header, file.Read(0, Archive::kHeaderSize));
  if (absl::string_view(header.data(), 8) != kMagic) {
    return Corrupt(path, 0, "bad header magic");
  }
  if (Crc32c(absl::string_view(header.data(), 20)) !=
      DecodeFixed32(header.data() + 20)) {
    return Corrupt(path, 0, "header checksum mismatch");
  }
  const uint32_t version = DecodeFixed32(header.data() + 8);
  if (version != Archive::kFormatVersion &&
      version != Archive::kGapFormatVersion) {
    return Corrupt(path, 8, "unknown format version");
  }
  const uint64_t trailer_at = size - Archive::kTrailerSize;
  ASSIGN_OR_RETURN(std::string trailer,
                   file.Read(trailer_at, Archive::kTrailerSize));
  if (absl::string_view(trailer.data() + 8, 8) != kEndMagic) {
    return Corrupt(path, trailer_at, "bad trailer magic (not sealed?)");
  }
  const uint64_t footer_length = DecodeFixed32(trailer.data());
  if (footer_length > trailer_at - Archive::kHeaderSize) {
    return Corrupt(path, trailer_at, "footer length past the header");
  }
  const uint64_t footer_at = trailer_at - footer_length;
  ASSIGN_OR_RETURN(std::string footer_bytes,
                   file.Read(footer_at, footer_length));
  if (Crc32c(footer_bytes) != DecodeFixed32(trailer.data() + 4)) {
    return Corrupt(path, footer_at, "footer checksum mismatch");
  }
  v1::SegmentFooter footer;
  if (!footer.ParseFromString(footer_bytes)) {
    return Corrupt(path, footer_at, "footer does not parse");
  }
  if (footer.first_position() != DecodeFixed64(header.data() + 12) ||
      footer.last_position() < footer.first_position() ||
      footer.records_end() != footer_at ||
      footer.entry_count() != uint64_t(footer.index_size())) {
    return Corrupt(path, footer_at, "footer disagrees with the file");
  }
  // A gap is exactly a version-2 segment without entries.
  const bool gap = version == Archive::kGapFormatVersion;
  if (footer.format_version() != version || footer.has_gap() != gap ||
      (gap && footer.entry_count() != 0)) {
    return Corrupt(path, footer_at, "footer disagrees with the format version");
  }
  return footer;
}

absl::StatusOr<std::unique_ptr<Archive>> Archive::Open(std::string dir) {
  RETURN_IF_ERROR(internal::CreateDirs(dir));
  std::unique_ptr<Archive> archive(new Archive(std::move(dir)));
  ASSIGN_OR_RETURN(std::vector<std::string> names,
                   internal::ListDir(archive->dir_));
  for (const std::string& name : names) {
    const std::string path = archive->dir_ + "/" + name;
    if (absl::StartsWith(name, kPrefix) && absl::EndsWith(name, kOpenSuffix)) {
      RETURN_IF_ERROR(internal::RemoveFile(path));
      continue;
    }
    uint64_t first = 0, last = 0;
    if (!ParseSealedName(name, &first, &last)) continue;
    ASSIGN_OR_RETURN(v1::SegmentFooter footer, ReadSegmentFooter(path));
    if (footer.first_position() != first || footer.last_position() != last) {
      return Corrupt(path, 0, "file name disagrees with the footer");
    }
    ASSIGN_OR_RETURN(uint64_t bytes, internal::FileSize(path));
    archive->segments_.push_back(InfoFrom(path, footer, bytes));
  }
  // Names sort by first position (fixed width).
  for (size_t i = 1; i < archive->segments_.size(); ++i) {
    if (archive->segments_[i].first_position <=
        archive->segments_[i - 1].last_position) {
      return Corrupt(archive->segments_[i].path, 0,
                     "overlaps the previous segment");
    }
  }
  archive->footers_.resize(archive->segments_.size());
  return archive;
}

Archive::~Archive() { Abandon(); }

// ---- Writing
// ------------------------------------------------------------------

absl::Status Archive::BeginSegment(uint64_t first_position) {
  return Begin(first_position, kFormatVersion);
}

absl::Status Archive::Begin(uint64_t first_position, uint32_t format_version) {
  if (open_.has_value()) {
    return absl::FailedPreconditionError("a segment is already open");
  }
  if (first_position == 0) {
    return absl::InvalidArgumentError("positions start at 1");
  }
  if (!empty() && first_position <= last_position()) {
    return absl::FailedPreconditionError(
        absl::StrCat("segment would begin at ", first_position,
                     " but the archive covers through ", last_position()));
  }
  const std::string path = absl::StrFormat("%s/%s%020u%s", dir_, kPrefix,
                                           first_position, kOpenSuffix);
  ASSIGN_OR_RETURN(internal::AppendFile file,
                   internal::AppendFile::Create(path));
  OpenSegment segment{first_position, std::move(file), {}, {}};
  segment.footer.set_format_version(format_version);
  segment.footer.set_first_position(first_position);
  segment.buffer.append(kMagic.data(), kMagic.size());
  PutFixed32(&segment.buffer, format_version);
  PutFixed64(&segment.buffer, first_position);
  PutFixed32(&segment.buffer, Crc32c(segment.buffer));
  open_.emplace(std::move(segment));
  return absl::OkStatus();
}

absl::Status Archive::Add(const ArchivedEntry& entry) {
  if (!open_.has_value()) {
    return absl::FailedPreconditionError("no open segment");
  }
  OpenSegment& s = *open_;
  if (s.footer.has_gap()) {
    return absl::FailedPreconditionError("a gap segment holds no entries");
  }
  if (entry.position < s.first_position) {
    return absl::InvalidArgumentError(absl::StrCat(
        "entry at position ", entry.position,
        " before the segment's first position ", s.first_position));
  }
  if (s.footer.index_size() > 0) {
    const v1::SegmentIndexEntry& prev =
        s.footer.index(s.footer.index_size() - 1);
    if (!Before(prev.position(), prev.index(), entry.position, entry.index)) {
      return absl::InvalidArgumentError(
          absl::StrCat("entry ", entry.position, ":", entry.index,
                       " not after ", prev.position(), ":", prev.index()));
    }
  }
  const int64_t nanos = absl::ToUnixNanos(entry.time);
  v1::ArchiveRecord record;
  record.set_position(entry.position);
  record.set_index(entry.index);
  record.set_time_nanos(nanos);
  record.set_data(entry.data);
  std::string payload = record.SerializeAsString();

  v1::SegmentIndexEntry* index = s.footer.add_index();
  index->set_position(entry.position);
  index->set_index(entry.index);
  index->set_time_nanos(nanos);
  index->set_offset(s.file.size() + s.buffer.size());
  if (s.footer.entry_count() == 0) {
    s.footer.set_min_time_nanos(nanos);
    s.footer.set_max_time_nanos(nanos);
  } else {
    s.footer.set_min_time_nanos(std::min(s.footer.min_time_nanos(), nanos));
    s.footer.set_max_time_nanos(std::max(s.footer.max_time_nanos(), nanos));
  }
  s.footer.set_entry_count(s.footer.entry_count() + 1);

  std::string length;
  PutFixed32(&length, uint32_t(payload.size()));
  s.buffer.append(length);
  PutFixed32(&s.buffer, Crc32cExtend(Crc32c(length), payload));
  s.buffer.append(payload);
  if (s.buffer.size() >= kFlushBytes) {
    absl::Status status = s.file.Append(s.buffer);
    if (!status.ok()) {
      Abandon();
      return status;
    }
    s.buffer.clear();
  }
  return absl::OkStatus();
}

absl::Status Archive::Seal(uint64_t last_position) {
  if (!open_.has_value()) {
    return absl::FailedPreconditionError("no open segment");
  }
  OpenSegment& s = *open_;
  if (last_position < s.first_position ||
      (s.footer.index_size() > 0 &&
       last_position < s.footer.index(s.footer.index_size() - 1).position())) {
    return absl::InvalidArgumentError(
        absl::StrCat("segment cannot end at ", last_position, ": it begins at ",
                     s.first_position, " or holds a later entry"));
  }
  s.footer.set_last_position(last_position);
  s.footer.set_records_end(s.file.size() + s.buffer.size());
  std::string footer = s.footer.SerializeAsString();
  s.buffer.append(footer);
  PutFixed32(&s.buffer, uint32_t(footer.size()));
  PutFixed32(&s.buffer, Crc32c(footer));
  s.buffer.append(kEndMagic.data(), kEndMagic.size());

  const std::string open_path = s.file.path();
  const std::string sealed_path =
      dir_ + "/" + SealedName(s.first_position, last_position);
  absl::Status status = s.file.Append(s.buffer);
  if (status.ok()) status = s.file.Sync();
  if (status.ok()) status = s.file.Close();
  if (status.ok()) status = internal::RenameFile(open_path, sealed_path);
  if (status.ok()) status = internal::SyncDir(dir_);
  if (!status.ok()) {
    Abandon();
    return status;
  }
  const uint64_t bytes = s.file.size();
  segments_.push_back(InfoFrom(sealed_path, s.footer, bytes));
  footers_.push_back(std::make_unique<v1::SegmentFooter>(std::move(s.footer)));
  open_.reset();
  return absl::OkStatus();
}

void Archive::Abandon() {
  if (!open_.has_value()) return;
  const std::string path = open_->file.path();
  open_->file.Close().IgnoreError();
  internal::RemoveFile(path).IgnoreError();
  open_.reset();
}

absl::Status Archive::WriteSegment(uint64_t first_position,
                                   uint64_t last_position,
                                   const std::vector<ArchivedEntry>& entries) {
  RETURN_IF_ERROR(BeginSegment(first_position));
  for (const ArchivedEntry& entry : entries) {
    absl::Status status = Add(entry);
    if (!status.ok()) {
      Abandon();
      return status;
    }
  }
  absl::Status status = Seal(last_position);
  if (!status.ok()) Abandon();
  return status;
}

absl::Status Archive::RecordGap(uint64_t first_position, uint64_t last_position,
                                absl::string_view reason, absl::Time now) {
  if (last_position < first_position) {
    return absl::InvalidArgumentError(
        absl::StrCat("a gap cannot end at ", last_position,
                     " before it begins at ", first_position));
  }
  // Times do not go backwards along the log: no event of the gap is older
  // than the newest entry archived before it.
  absl::Time after = absl::InfinitePast();
  for (const SegmentInfo& s : segments_) {
    if (s.entry_count > 0) after = std::max(after, s.max_time);
    if (s.gap.has_value()) after = std::max(after, s.gap->after);
  }
  RETURN_IF_ERROR(Begin(first_position, kGapFormatVersion));
  v1::SegmentGap* gap = open_->footer.mutable_gap();
  gap->set_reason(std::string(reason));
  gap->set_recorded_time_nanos(absl::ToUnixNanos(now));
  if (after != absl::InfinitePast()) {
    gap->set_after_time_nanos(absl::ToUnixNanos(after));
  }
  absl::Status status = Seal(last_position);
  if (!status.ok()) Abandon();
  return status;
}

// ---- Reading
// ------------------------------------------------------------------

uint64_t Archive::first_position() const {
  return segments_.front().first_position;
}

uint64_t Archive::last_position() const {
  return segments_.back().last_position;
}

uint64_t Archive::next_position(uint64_t if_empty) const {
  return empty() ? if_empty : last_position() + 1;
}

uint64_t Archive::total_bytes() const {
  uint64_t total = 0;
  for (const SegmentInfo& s : segments_) total += s.bytes;
  return total;
}

absl::StatusOr<const v1::SegmentFooter*> Archive::Footer(size_t i) {
  if (footers_[i] == nullptr) {
    ASSIGN_OR_RETURN(v1::SegmentFooter footer,
                     ReadSegmentFooter(segments_[i].path));
    footers_[i] = std::make_unique<v1::SegmentFooter>(std::move(footer));
  }
  return footers_[i].get();
}

template <typename Keep>
absl::Status Archive::ReadRecords(size_t i, size_t begin, size_t end, Keep keep,
                                  std::vector<ArchivedEntry>* out) {
  if (begin >= end) return absl::OkStatus();
  ASSIGN_OR_RETURN(const v1::SegmentFooter* footer, Footer(i));
  const std::string& path = segments_[i].path;
  const uint64_t span_begin = footer->index(int(begin)).offset();
  const uint64_t span_end = end < size_t(footer->index_size())
                                ? footer->index(int(end)).offset()
                                : footer->records_end();
  if (span_begin < kHeaderSize || span_end < span_begin ||
      span_end > footer->records_end()) {
    return Corrupt(path, span_begin, "index offsets out of order");
  }
  ASSIGN_OR_RETURN(internal::ReadableFile file,
                   internal::ReadableFile::Open(path));
  ASSIGN_OR_RETURN(std::string span,
                   file.Read(span_begin, span_end - span_begin));
  uint64_t at = 0;
  for (size_t k = begin; k < end; ++k) {
    const v1::SegmentIndexEntry& index = footer->index(int(k));
    const uint64_t offset = span_begin + at;
    if (index.offset() != offset) {
      return Corrupt(path, offset, "record not where the index says");
    }
    if (span.size() - at < kFrameHeaderSize) {
      return Corrupt(path, offset, "truncated record header");
    }
    const uint32_t length = DecodeFixed32(span.data() + at);
    if (span.size() - at - kFrameHeaderSize < length) {
      return Corrupt(path, offset, "record length runs past the records");
    }
    absl::string_view payload(span.data() + at + kFrameHeaderSize, length);
    if (Crc32cExtend(Crc32c(absl::string_view(span.data() + at, 4)), payload) !=
        DecodeFixed32(span.data() + at + 4)) {
      return Corrupt(path, offset, "record checksum mismatch");
    }
    v1::ArchiveRecord record;
    if (!record.ParseFromArray(payload.data(), int(payload.size()))) {
      return Corrupt(path, offset, "record does not parse");
    }
    if (record.position() != index.position() ||
        record.index() != index.index() ||
        record.time_nanos() != index.time_nanos()) {
      return Corrupt(path, offset, "record disagrees with the index");
    }
    at += kFrameHeaderSize + length;
    ArchivedEntry entry;
    entry.position = record.position();
    entry.index = record.index();
    entry.time = FromNanos(record.time_nanos());
    if (!keep(entry)) continue;
    entry.data = std::move(*record.mutable_data());
    out->push_back(std::move(entry));
  }
  return absl::OkStatus();
}

const SegmentInfo* Archive::GapAt(uint64_t position) const {
  auto it = std::partition_point(
      segments_.begin(), segments_.end(),
      [&](const SegmentInfo& s) { return s.last_position < position; });
  if (it == segments_.end() || it->first_position > position ||
      !it->gap.has_value()) {
    return nullptr;
  }
  return &*it;
}

absl::StatusOr<std::vector<ArchivedEntry>> Archive::Read(uint64_t from,
                                                         uint64_t to) {
  for (const SegmentInfo& s : segments_) {
    if (s.gap.has_value() && s.first_position <= to &&
        s.last_position >= from) {
      return GapError(s, absl::StrCat("positions ", Positions(from, to)));
    }
  }
  std::vector<ArchivedEntry> out;
  for (size_t i = 0; i < segments_.size(); ++i) {
    const SegmentInfo& s = segments_[i];
    if (s.last_position < from || s.first_position > to) continue;
    if (s.entry_count == 0) continue;
    ASSIGN_OR_RETURN(const v1::SegmentFooter* footer, Footer(i));
    const auto& index = footer->index();
    auto lo = std::partition_point(
        index.begin(), index.end(),
        [&](const v1::SegmentIndexEntry& e) { return e.position() < from; });
    auto hi = std::partition_point(
        lo, index.end(),
        [&](const v1::SegmentIndexEntry& e) { return e.position() <= to; });
    RETURN_IF_ERROR(ReadRecords(
        i, size_t(lo - index.begin()), size_t(hi - index.begin()),
        [](const ArchivedEntry&) { return true; }, &out));
  }
  return out;
}

absl::StatusOr<std::vector<ArchivedEntry>> Archive::ReadTimeRange(
    absl::Time from, absl::Time to) {
  for (const SegmentInfo& s : segments_) {
    if (s.gap.has_value() && s.gap->after <= to && s.gap->recorded >= from) {
      return GapError(
          s, absl::StrCat("the entries between ", absl::FormatTime(from),
                          " and ", absl::FormatTime(to)));
    }
  }
  std::vector<ArchivedEntry> out;
  for (size_t i = 0; i < segments_.size(); ++i) {
    const SegmentInfo& s = segments_[i];
    if (s.entry_count == 0 || s.max_time < from || s.min_time > to) continue;
    ASSIGN_OR_RETURN(const v1::SegmentFooter* footer, Footer(i));
    // Read the span between the first and last index entries in range.
    int lo = -1, hi = -1;
    for (int k = 0; k < footer->index_size(); ++k) {
      absl::Time t = FromNanos(footer->index(k).time_nanos());
      if (t >= from && t <= to) {
        if (lo < 0) lo = k;
        hi = k;
      }
    }
    if (lo < 0) continue;
    RETURN_IF_ERROR(ReadRecords(
        i, size_t(lo), size_t(hi) + 1,
        [&](const ArchivedEntry& e) { return e.time >= from && e.time <= to; },
        &out));
  }
  return out;
}

absl::StatusOr<std::optional<EntryLocation>> Archive::FirstEntryAfter(
    absl::Time time) {
  for (size_t i = 0; i < segments_.size(); ++i) {
    const SegmentInfo& s = segments_[i];
    if (s.entry_count == 0 || s.max_time <= time) continue;
    ASSIGN_OR_RETURN(const v1::SegmentFooter* footer, Footer(i));
    for (const v1::SegmentIndexEntry& e : footer->index()) {
      if (FromNanos(e.time_nanos()) > time) {
        return std::optional<EntryLocation>(
            EntryLocation{e.position(), e.index()});
      }
    }
    return Corrupt(s.path, footer->records_end(),
                   "footer's time range disagrees with its index");
  }
  return std::optional<EntryLocation>();
}

absl::StatusOr<std::optional<EntryLocation>> Archive::FirstEntryFrom(
    uint64_t position) {
  for (size_t i = 0; i < segments_.size(); ++i) {
    const SegmentInfo& s = segments_[i];
    if (s.entry_count == 0 || s.last_position < position) continue;
    ASSIGN_OR_RETURN(const v1::SegmentFooter* footer, Footer(i));
    for (const v1::SegmentIndexEntry& e : footer->index()) {
      if (e.position() >= position) {
        return std::optional<EntryLocation>(
            EntryLocation{e.position(), e.index()});
      }
    }
  }
  return std::optional<EntryLocation>();
}

absl::Status Archive::VerifyAll() {
  for (size_t i = 0; i < segments_.size(); ++i) {
    std::vector<ArchivedEntry> ignored;
    RETURN_IF_ERROR(ReadRecords(
        i, 0, segments_[i].entry_count,
        [](const ArchivedEntry&) { return false; }, &ignored));
  }
  return absl::OkStatus();
}

// ---- Retention
// ----------------------------------------------------------------

absl::StatusOr<int> Archive::ApplyRetention(const ArchiveRetention& policy,
                                            absl::Time now,
                                            uint64_t protect_after) {
  uint64_t total = total_bytes();
  size_t drop = 0;
  while (drop < segments_.size()) {
    const SegmentInfo& s = segments_[drop];
    if (s.last_position > protect_after) break;
    const bool too_big = policy.max_bytes > 0 && total > policy.max_bytes;
    const bool too_old = policy.max_age > absl::ZeroDuration() &&
                         AgeTime(s) < now - policy.max_age;
    if (!too_big && !too_old) break;
    total -= s.bytes;
    ++drop;
  }
  // Oldest first, so the archive stays contiguous even if a delete fails.
  size_t deleted = 0;
  absl::Status status;
  while (deleted < drop && status.ok()) {
    status = internal::RemoveFile(segments_[deleted].path);
    if (status.ok()) ++deleted;
  }
  segments_.erase(segments_.begin(), segments_.begin() + long(deleted));
  footers_.erase(footers_.begin(), footers_.begin() + long(deleted));
  if (status.ok() && deleted > 0) status = internal::SyncDir(dir_);
  if (!status.ok()) return status;
  return int(deleted);
}

// ---- Gaps
// ---------------------------------------------------------------------

absl::Status GapError(const SegmentInfo& gap, absl::string_view what) {
  return absl::OutOfRangeError(absl::StrCat(
      what, ": positions ", Positions(gap.first_position, gap.last_position),
      " are a gap in this master's archive (", gap.gap->reason, "; recorded ",
      absl::FormatTime(gap.gap->recorded, absl::UTCTimeZone()),
      "); that history still exists in the other masters' archives"));
}

}  // namespace cairn::recovery
