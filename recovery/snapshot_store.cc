#include "recovery/snapshot_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/crc32c.h"
#include "common/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "recovery/internal/files.h"

namespace cairn::recovery {
namespace {

using internal::DecodeFixed32;
using internal::DecodeFixed64;
using internal::PutFixed32;
using internal::PutFixed64;

constexpr absl::string_view kMagic = "CAIRNSNP";
constexpr absl::string_view kPrefix = "snapshot-";
constexpr absl::string_view kSuffix = ".snap";
constexpr absl::string_view kTmpSuffix = ".snap.tmp";

std::string SerializeDeterministic(const v1::MasterSnapshot& snapshot) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    snapshot.SerializeToCodedStream(&coded);
  }
  return out;
}

// The position named by a snapshot file name, if it is one.
bool ParseName(absl::string_view name, uint64_t* position) {
  if (!absl::ConsumePrefix(&name, kPrefix)) return false;
  if (!absl::ConsumeSuffix(&name, kSuffix)) return false;
  if (name.size() != 20) return false;
  return absl::SimpleAtoi(name, position);
}

}  // namespace

absl::StatusOr<std::unique_ptr<SnapshotStore>> SnapshotStore::Open(
    std::string dir) {
  RETURN_IF_ERROR(internal::CreateDirs(dir));
  ASSIGN_OR_RETURN(std::vector<std::string> names, internal::ListDir(dir));
  for (const std::string& name : names) {
    if (absl::StartsWith(name, kPrefix) && absl::EndsWith(name, kTmpSuffix)) {
      RETURN_IF_ERROR(internal::RemoveFile(dir + "/" + name));
    }
  }
  return std::unique_ptr<SnapshotStore>(new SnapshotStore(std::move(dir)));
}

std::string SnapshotStore::PathFor(uint64_t position) const {
  return absl::StrFormat("%s/%s%020u%s", dir_, kPrefix, position, kSuffix);
}

absl::Status SnapshotStore::Write(uint64_t position,
                                  const v1::MasterSnapshot& snapshot) {
  if (position == 0) {
    return absl::InvalidArgumentError("a snapshot covers a position >= 1");
  }
  if (position < snapshot.last_applied().position()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "snapshot at position ", position, " holds an event at position ",
        snapshot.last_applied().position()));
  }
  std::string payload = SerializeDeterministic(snapshot);
  std::string file;
  file.reserve(kHeaderSize + payload.size());
  file.append(kMagic.data(), kMagic.size());
  PutFixed32(&file, kFormatVersion);
  PutFixed64(&file, position);
  PutFixed64(&file, payload.size());
  PutFixed32(&file, Crc32cExtend(Crc32c(file), payload));
  file.append(payload);
  std::string path = PathFor(position);
  return internal::WriteFileDurably(path, path + ".tmp", file);
}

absl::StatusOr<std::vector<uint64_t>> SnapshotStore::Positions() const {
  ASSIGN_OR_RETURN(std::vector<std::string> names, internal::ListDir(dir_));
  std::vector<uint64_t> positions;
  for (const std::string& name : names) {
    uint64_t position = 0;
    if (ParseName(name, &position)) positions.push_back(position);
  }
  std::sort(positions.begin(), positions.end());
  return positions;
}

absl::StatusOr<StoredSnapshot> SnapshotStore::Read(uint64_t position) const {
  const std::string path = PathFor(position);
  ASSIGN_OR_RETURN(std::string file, internal::ReadFile(path));
  auto corrupt = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("snapshot ", path, ": ", why));
  };
  if (file.size() < kHeaderSize) return corrupt("shorter than its header");
  const char* p = file.data();
  if (absl::string_view(p, kMagic.size()) != kMagic)
    return corrupt("bad magic");
  uint32_t version = DecodeFixed32(p + 8);
  if (version != kFormatVersion) {
    return corrupt(absl::StrCat("unknown format version ", version));
  }
  if (DecodeFixed64(p + 12) != position) {
    return corrupt(
        absl::StrCat("header names position ", DecodeFixed64(p + 12)));
  }
  uint64_t length = DecodeFixed64(p + 20);
  if (length != file.size() - kHeaderSize) {
    return corrupt(absl::StrCat("payload length ", length, " but ",
                                file.size() - kHeaderSize, " bytes follow"));
  }
  absl::string_view payload(p + kHeaderSize, length);
  uint32_t crc = Crc32cExtend(Crc32c(absl::string_view(p, 28)), payload);
  if (crc != DecodeFixed32(p + 28)) return corrupt("checksum mismatch");
  StoredSnapshot out;
  out.position = position;
  if (!out.snapshot.ParseFromArray(payload.data(), int(payload.size()))) {
    return corrupt("payload does not parse");
  }
  return out;
}

absl::StatusOr<StoredSnapshot> SnapshotStore::AtOrBefore(
    uint64_t position) const {
  ASSIGN_OR_RETURN(std::vector<uint64_t> positions, Positions());
  for (auto it = positions.rbegin(); it != positions.rend(); ++it) {
    if (*it > position) continue;
    absl::StatusOr<StoredSnapshot> snapshot = Read(*it);
    if (snapshot.ok()) return snapshot;
    if (snapshot.status().code() != absl::StatusCode::kDataLoss) {
      return snapshot.status();
    }
    ++corrupt_skipped_;
  }
  return absl::NotFoundError(absl::StrCat(
      "no usable snapshot at or before position ", position, " in ", dir_));
}

absl::StatusOr<StoredSnapshot> SnapshotStore::Latest() const {
  return AtOrBefore(UINT64_MAX);
}

absl::StatusOr<int> SnapshotStore::Retain(size_t keep) {
  ASSIGN_OR_RETURN(std::vector<uint64_t> positions, Positions());
  size_t kept = 0;
  int deleted = 0;
  for (auto it = positions.rbegin(); it != positions.rend(); ++it) {
    bool remove = keep > 0 && kept >= keep;
    if (!remove) {
      absl::StatusOr<StoredSnapshot> snapshot = Read(*it);
      if (snapshot.ok()) {
        ++kept;
      } else if (snapshot.status().code() == absl::StatusCode::kDataLoss) {
        remove = true;
      } else {
        return snapshot.status();
      }
    }
    if (remove) {
      RETURN_IF_ERROR(internal::RemoveFile(PathFor(*it)));
      ++deleted;
    }
  }
  if (deleted > 0) RETURN_IF_ERROR(internal::SyncDir(dir_));
  return deleted;
}

absl::StatusOr<int> SnapshotStore::DeleteBefore(uint64_t position) {
  absl::StatusOr<StoredSnapshot> latest = Latest();
  if (!latest.ok() && latest.status().code() != absl::StatusCode::kNotFound) {
    return latest.status();
  }
  ASSIGN_OR_RETURN(std::vector<uint64_t> positions, Positions());
  int deleted = 0;
  for (uint64_t p : positions) {
    if (p >= position) break;
    if (latest.ok() && p == latest->position) continue;
    RETURN_IF_ERROR(internal::RemoveFile(PathFor(p)));
    ++deleted;
  }
  if (deleted > 0) RETURN_IF_ERROR(internal::SyncDir(dir_));
  return deleted;
}

absl::StatusOr<uint64_t> SnapshotStore::DiskBytes() const {
  ASSIGN_OR_RETURN(std::vector<uint64_t> positions, Positions());
  uint64_t total = 0;
  for (uint64_t p : positions) {
    absl::StatusOr<uint64_t> size = internal::FileSize(PathFor(p));
    if (size.ok()) total += *size;  // a file deleted meanwhile counts 0
  }
  return total;
}

}  // namespace cairn::recovery
