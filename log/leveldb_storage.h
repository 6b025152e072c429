// LevelDbStorage: the production Storage of a log replica, one LevelDB
// database in a directory of its own.
//
// Layout (all values are serialized cairn.v1.Record, see storage.h):
//   "M"                      -> the replica's Metadata
//   "A" + 8-byte big-endian  -> the Action at that position
// Big-endian positions make LevelDB's bytewise key order the numeric order of
// every uint64 position, so range reads and LastPosition() are seeks.
//
// Durability: Write(batch, sync) is one leveldb::WriteBatch (atomic) written
// with WriteOptions.sync = sync; a synced write is fsynced before returning.
// Reads use ReadOptions.verify_checksums and verify each record's CRC32C.
//
// Truncation: delete_before deletes the range in the same leveldb::WriteBatch.
// The lowest position that may still exist (the floor) is kept in memory so
// repeated truncations scan only the newly deleted keys; after a reopen the
// first truncation starts from the first stored key. Deleted keys' space is
// reclaimed by Compact(), which also runs automatically (inside Write) once
// LevelDbStorageOptions::compact_after_deleted_keys keys were deleted since
// the last compaction, so disk use levels off without the caller's help.
//
// Thread safety: like every Storage, used by one thread at a time. (LevelDB's
// background compaction thread is internal.) Only one process may open a
// directory at a time; a second Open fails with kUnavailable.

#ifndef CAIRN_LOG_LEVELDB_STORAGE_H_
#define CAIRN_LOG_LEVELDB_STORAGE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/v1/log.pb.h"
#include "leveldb/db.h"
#include "log/storage.h"

namespace cairn::log {

struct LevelDbStorageOptions {
  // Compact() runs inside Write once this many keys have been deleted since
  // the last compaction. 0 disables automatic compaction.
  uint64_t compact_after_deleted_keys = 10000;
  // ... or once the deleted records held this many bytes: a position may
  // hold up to max_batch_bytes, so a key count alone does not bound the
  // garbage. 0 disables this trigger.
  uint64_t compact_after_deleted_bytes = 4 << 20;
};

class LevelDbStorage : public Storage {
 public:
  // Opens (creating it and its parent directories if missing) the database in
  // `dir`. Returns kUnavailable when the directory cannot be created or the
  // database is locked or unreadable (I/O error), kDataLoss when LevelDB
  // finds its files corrupt; the message names `dir`.
  static absl::StatusOr<std::unique_ptr<LevelDbStorage>> Open(
      const std::string& dir);
  static absl::StatusOr<std::unique_ptr<LevelDbStorage>> Open(
      const std::string& dir, const LevelDbStorageOptions& options);

  LevelDbStorage(const LevelDbStorage&) = delete;
  LevelDbStorage& operator=(const LevelDbStorage&) = delete;
  ~LevelDbStorage() override;

  // Storage. Errors: kDataLoss for a record that fails its checksum, does
  // not parse or holds another position than its key (the message names the
  // position) and for LevelDB corruption; kUnavailable for I/O errors.
  absl::StatusOr<std::optional<cairn::v1::Metadata>> ReadMetadata() override;
  absl::StatusOr<std::optional<cairn::v1::Action>> Read(
      uint64_t position) override;
  absl::StatusOr<std::vector<cairn::v1::Action>> ReadRange(
      uint64_t from, uint64_t to, size_t limit) override;
  absl::StatusOr<uint64_t> LastPosition() override;
  absl::Status Write(const WriteBatch& batch, bool sync) override;
  // Compacts the key range deleted by this process's truncations.
  void Compact() override;
  // Sum of the sizes of the files in the directory (tables, write-ahead log,
  // manifest, LevelDB's info log).
  uint64_t ApproximateBytes() override;

  const std::string& dir() const { return dir_; }

  // Number of compactions run, automatic ones included.
  uint64_t compactions() const { return compactions_; }

  // Test hook: flips one byte of the stored record of the action at
  // `position` (synced), so that reading it returns kDataLoss.
  // kNotFound when there is no action at `position`.
  absl::Status TEST_CorruptRecord(uint64_t position);

 private:
  LevelDbStorage(std::string dir, LevelDbStorageOptions options,
                 std::unique_ptr<leveldb::DB> db);

  std::string dir_;
  LevelDbStorageOptions options_;
  std::unique_ptr<leveldb::DB> db_;

  // Invariant: no action is stored below position floor_ (0: unknown, as
  // after a reopen). Raised by delete_before, lowered by a write below it.
  uint64_t floor_ = 0;
  // Highest delete_before applied by this process: Compact() covers the
  // action keys below it.
  uint64_t deleted_up_to_ = 0;
  // Keys deleted since the last compaction; drives automatic compaction.
  uint64_t deleted_since_compact_ = 0;
  uint64_t deleted_bytes_since_compact_ = 0;
  uint64_t compactions_ = 0;
};

}  // namespace cairn::log

#endif  // CAIRN_LOG_LEVELDB_STORAGE_H_
