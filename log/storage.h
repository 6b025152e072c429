// Storage: the durable state of one log replica (its metadata and one Action
// per position), behind an interface so the protocol core can run on LevelDB
// in production and on a simulated disk in tests.
//
// Thread safety: a Storage is used by one thread at a time (the replica's).
//
// Durability contract: Write(batch, /*sync=*/true) returns only after every
// record in the batch is on stable storage (fsync). With sync=false the
// records may be lost by a crash (never torn: a batch is all or nothing).
//
// Integrity: every record is stored with a CRC32C of its bytes. A record whose
// checksum does not match is reported as kDataLoss, never returned.

#ifndef CAIRN_LOG_STORAGE_H_
#define CAIRN_LOG_STORAGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/v1/log.pb.h"

namespace cairn::log {

// One atomic group of changes.
struct WriteBatch {
  std::optional<cairn::v1::Metadata> metadata;  // replaces the stored one
  std::vector<cairn::v1::Action> actions;       // replace by position
  // Deletes every action with position < delete_before (truncation).
  std::optional<uint64_t> delete_before;

  bool empty() const {
    return !metadata.has_value() && actions.empty() &&
           !delete_before.has_value();
  }
};

class Storage {
 public:
  virtual ~Storage() = default;

  // Returns the stored metadata, std::nullopt when the store is new or its
  // metadata was lost. kDataLoss when the record fails its checksum.
  virtual absl::StatusOr<std::optional<cairn::v1::Metadata>> ReadMetadata() = 0;

  // Returns the action at `position`, std::nullopt when there is none.
  // kDataLoss when the record fails its checksum.
  virtual absl::StatusOr<std::optional<cairn::v1::Action>> Read(
      uint64_t position) = 0;

  // Returns the actions with from <= position <= to, in position order, at
  // most `limit` of them. kDataLoss (naming the position) if any fails its
  // checksum.
  virtual absl::StatusOr<std::vector<cairn::v1::Action>> ReadRange(
      uint64_t from, uint64_t to, size_t limit) = 0;

  // Highest position holding an action, 0 when none.
  virtual absl::StatusOr<uint64_t> LastPosition() = 0;

  // Applies `batch` atomically; see the durability contract above.
  virtual absl::Status Write(const WriteBatch& batch, bool sync) = 0;

  // Reclaims the space of deleted ranges (LevelDB compaction); may be slow.
  virtual void Compact() {}

  // Bytes used on disk (approximate), for metrics and the level-off test.
  virtual uint64_t ApproximateBytes() = 0;
};

}  // namespace cairn::log

#endif  // CAIRN_LOG_STORAGE_H_
