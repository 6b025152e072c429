#include "log/leveldb_storage.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/logging.h"
#include "leveldb/env.h"
#include "leveldb/options.h"
#include "leveldb/slice.h"
#include "leveldb/write_batch.h"
#include "log/internal/storage_record.h"

namespace cairn::log {
namespace {

constexpr char kMetadataKey[] = "M";
constexpr char kActionPrefix = 'A';
constexpr size_t kActionKeySize = 1 + 8;

// "A" + position in big-endian, so bytewise order is numeric order.
std::string ActionKey(uint64_t position) {
  std::string key(kActionKeySize, '\0');
  key[0] = kActionPrefix;
  for (int i = 0; i < 8; ++i) {
    key[8 - i] = static_cast<char>(position & 0xff);
    position >>= 8;
  }
  return key;
}

bool IsActionKey(const leveldb::Slice& key) {
  return key.size() == kActionKeySize && key[0] == kActionPrefix;
}

// REQUIRES: IsActionKey(key).
uint64_t PositionOfKey(const leveldb::Slice& key) {
  uint64_t position = 0;
  for (size_t i = 1; i < kActionKeySize; ++i) {
    position = (position << 8) | static_cast<uint8_t>(key[i]);
  }
  return position;
}

std::string ActionName(uint64_t position) {
  return absl::StrCat("action at position ", position);
}

// Maps a LevelDB status to the code that tells the caller what to do.
absl::Status FromLevelDb(const leveldb::Status& status,
                         absl::string_view context) {
  if (status.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(context, ": ", status.ToString());
  if (status.IsCorruption()) return absl::DataLossError(message);
  if (status.IsNotFound()) return absl::NotFoundError(message);
  if (status.IsInvalidArgument()) return absl::InvalidArgumentError(message);
  if (status.IsNotSupportedError()) return absl::UnimplementedError(message);
  return absl::UnavailableError(message);  // I/O error: the disk, not us
}

// Sends LevelDB's informational messages (flushes, compactions) to VLOG(1)
// instead of a LOG file in the database directory that grows without bound.
class VlogLogger : public leveldb::Logger {
 public:
  void Logv(const char* format, va_list ap) override {
    if (!VLOG_IS_ON(1)) return;
    char buffer[512];
    va_list copy;
    va_copy(copy, ap);
    const int n = std::vsnprintf(buffer, sizeof(buffer), format, copy);
    va_end(copy);
    if (n < 0) return;
    if (static_cast<size_t>(n) < sizeof(buffer)) {
      VLOG(1) << "leveldb: " << buffer;
      return;
    }
    std::string text(static_cast<size_t>(n) + 1, '\0');
    std::vsnprintf(text.data(), text.size(), format, ap);
    text.resize(static_cast<size_t>(n));
    VLOG(1) << "leveldb: " << text;
  }
};

leveldb::Logger* SharedLogger() {
  static leveldb::Logger* const logger = new VlogLogger();
  return logger;
}

leveldb::ReadOptions VerifyingReadOptions() {
  leveldb::ReadOptions options;
  options.verify_checksums = true;
  return options;
}

absl::string_view View(const leveldb::Slice& slice) {
  return absl::string_view(slice.data(), slice.size());
}

}  // namespace

absl::StatusOr<std::unique_ptr<LevelDbStorage>> LevelDbStorage::Open(
    const std::string& dir) {
  return Open(dir, LevelDbStorageOptions());
}

absl::StatusOr<std::unique_ptr<LevelDbStorage>> LevelDbStorage::Open(
    const std::string& dir, const LevelDbStorageOptions& options) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return absl::UnavailableError(absl::StrCat(
        "cannot create log storage directory ", dir, ": ", error.message()));
  }
  leveldb::Options db_options;
  db_options.create_if_missing = true;
  // Report corruption found while opening instead of skipping it; a torn tail
  // of the write-ahead log (an unsynced write cut by a crash) is still fine.
  db_options.paranoid_checks = true;
  db_options.info_log = SharedLogger();
  leveldb::DB* db = nullptr;
  leveldb::Status status = leveldb::DB::Open(db_options, dir, &db);
  if (!status.ok()) {
    absl::Status result =
        FromLevelDb(status, absl::StrCat("cannot open log storage in ", dir));
    if (absl::IsNotFound(result) || absl::IsInvalidArgument(result) ||
        absl::IsUnimplemented(result)) {
      result = absl::UnavailableError(result.message());
    }
    return result;
  }
  LOG(INFO) << "Opened log storage in " << dir;
  return std::unique_ptr<LevelDbStorage>(
      new LevelDbStorage(dir, options, std::unique_ptr<leveldb::DB>(db)));
}

LevelDbStorage::LevelDbStorage(std::string dir, LevelDbStorageOptions options,
                               std::unique_ptr<leveldb::DB> db)
    : dir_(std::move(dir)), options_(options), db_(std::move(db)) {}

LevelDbStorage::~LevelDbStorage() = default;

absl::StatusOr<std::optional<cairn::v1::Metadata>>
LevelDbStorage::ReadMetadata() {
  std::string bytes;
  leveldb::Status status =
      db_->Get(VerifyingReadOptions(), kMetadataKey, &bytes);
  if (status.IsNotFound()) return std::nullopt;
  if (!status.ok()) return FromLevelDb(status, "reading metadata");
  absl::StatusOr<cairn::v1::Metadata> metadata =
      internal::DecodeRecord<cairn::v1::Metadata>(bytes, "metadata");
  if (!metadata.ok()) return metadata.status();
  return std::optional<cairn::v1::Metadata>(*std::move(metadata));
}

absl::StatusOr<std::optional<cairn::v1::Action>> LevelDbStorage::Read(
    uint64_t position) {
  std::string bytes;
  leveldb::Status status =
      db_->Get(VerifyingReadOptions(), ActionKey(position), &bytes);
  if (status.IsNotFound()) return std::nullopt;
  if (!status.ok()) return FromLevelDb(status, ActionName(position));
  absl::StatusOr<cairn::v1::Action> action =
      internal::DecodeAction(position, bytes);
  if (!action.ok()) return action.status();
  return std::optional<cairn::v1::Action>(*std::move(action));
}

absl::StatusOr<std::vector<cairn::v1::Action>> LevelDbStorage::ReadRange(
    uint64_t from, uint64_t to, size_t limit) {
  std::vector<cairn::v1::Action> actions;
  if (from > to || limit == 0) return actions;
  std::unique_ptr<leveldb::Iterator> it(
      db_->NewIterator(VerifyingReadOptions()));
  for (it->Seek(ActionKey(from)); it->Valid() && actions.size() < limit;
       it->Next()) {
    if (!IsActionKey(it->key())) break;
    const uint64_t position = PositionOfKey(it->key());
    if (position > to) break;
    absl::StatusOr<cairn::v1::Action> action =
        internal::DecodeAction(position, View(it->value()));
    if (!action.ok()) return action.status();
    actions.push_back(*std::move(action));
  }
  if (!it->status().ok()) {
    return FromLevelDb(it->status(),
                       absl::StrCat("reading actions from position ", from));
  }
  return actions;
}

absl::StatusOr<uint64_t> LevelDbStorage::LastPosition() {
  std::unique_ptr<leveldb::Iterator> it(
      db_->NewIterator(VerifyingReadOptions()));
  // The first key after every action key; its predecessor is the last action.
  const std::string past_actions(1, kActionPrefix + 1);
  it->Seek(past_actions);
  if (it->Valid()) {
    it->Prev();
  } else {
    it->SeekToLast();
  }
  uint64_t last = 0;
  if (it->Valid() && IsActionKey(it->key())) last = PositionOfKey(it->key());
  if (!it->status().ok()) {
    return FromLevelDb(it->status(), "finding the last position");
  }
  return last;
}

absl::Status LevelDbStorage::Write(const WriteBatch& batch, bool sync) {
  leveldb::WriteBatch updates;
  if (batch.metadata.has_value()) {
    updates.Put(kMetadataKey, internal::EncodeRecord(*batch.metadata));
  }
  const uint64_t delete_before = batch.delete_before.value_or(0);
  uint64_t new_floor = std::max(floor_, delete_before);
  for (const cairn::v1::Action& action : batch.actions) {
    // The batch's deletion applies after its puts.
    if (action.position() < delete_before) continue;
    updates.Put(ActionKey(action.position()), internal::EncodeRecord(action));
    new_floor = std::min(new_floor, action.position());
  }
  uint64_t deleted = 0;
  uint64_t deleted_bytes = 0;
  if (delete_before > floor_) {
    std::unique_ptr<leveldb::Iterator> it(
        db_->NewIterator(VerifyingReadOptions()));
    for (it->Seek(ActionKey(floor_)); it->Valid(); it->Next()) {
      if (!IsActionKey(it->key()) ||
          PositionOfKey(it->key()) >= delete_before) {
        break;
      }
      updates.Delete(it->key());
      ++deleted;
      deleted_bytes += it->key().size() + it->value().size();
    }
    if (!it->status().ok()) {
      return FromLevelDb(
          it->status(),
          absl::StrCat("scanning actions to delete before ", delete_before));
    }
  }
  leveldb::WriteOptions write_options;
  write_options.sync = sync;
  leveldb::Status status = db_->Write(write_options, &updates);
  if (!status.ok()) return FromLevelDb(status, "writing to " + dir_);
  floor_ = new_floor;
  deleted_up_to_ = std::max(deleted_up_to_, delete_before);
  deleted_since_compact_ += deleted;
  deleted_bytes_since_compact_ += deleted_bytes;
  if ((options_.compact_after_deleted_keys > 0 &&
       deleted_since_compact_ >= options_.compact_after_deleted_keys) ||
      (options_.compact_after_deleted_bytes > 0 &&
       deleted_bytes_since_compact_ >= options_.compact_after_deleted_bytes)) {
    Compact();
  }
  return absl::OkStatus();
}

void LevelDbStorage::Compact() {
  deleted_since_compact_ = 0;
  deleted_bytes_since_compact_ = 0;
  if (deleted_up_to_ == 0) return;  // nothing deleted by this process
  const std::string begin = ActionKey(0);
  const std::string end = ActionKey(deleted_up_to_);
  const leveldb::Slice begin_slice(begin);
  const leveldb::Slice end_slice(end);
  db_->CompactRange(&begin_slice, &end_slice);
  ++compactions_;
}

uint64_t LevelDbStorage::ApproximateBytes() {
  uint64_t total = 0;
  std::error_code error;
  for (std::filesystem::directory_iterator it(dir_, error), end;
       !error && it != end; it.increment(error)) {
    std::error_code size_error;
    if (!it->is_regular_file(size_error)) continue;
    const uintmax_t size = it->file_size(size_error);
    if (!size_error) total += size;
  }
  return total;
}

absl::Status LevelDbStorage::TEST_CorruptRecord(uint64_t position) {
  std::string bytes;
  const std::string key = ActionKey(position);
  leveldb::Status status = db_->Get(leveldb::ReadOptions(), key, &bytes);
  if (!status.ok()) return FromLevelDb(status, ActionName(position));
  if (!internal::FlipRecordByte(bytes)) {
    return absl::DataLossError(
        absl::StrCat(ActionName(position), ": already unparsable"));
  }
  leveldb::WriteOptions write_options;
  write_options.sync = true;
  return FromLevelDb(db_->Put(write_options, key, bytes), ActionName(position));
}

}  // namespace cairn::log
