// MemoryStorage: a Storage on a simulated disk, for unit tests and the
// deterministic simulation. It keeps the same bytes the real one does
// (serialized cairn.v1.Record with CRC32C), so the integrity path runs.
//
// The disk model has a page cache: every write is visible to reads at once,
// but a write with sync=false is only in the "unsynced" queue until a later
// synced write, which (like fsync of a write-ahead log) makes it and every
// earlier write durable. Faults:
//   SimulateCrash()  power loss: unsynced writes are lost, whole batches only
//                    (optionally a prefix of them survives, as a log would).
//   Wipe()           the disk is replaced: everything is lost.
//   CorruptAction()  a byte of one stored record flips: reads return
//                    kDataLoss for that position only.
//   InjectWriteError() Write fails (without effect) until cleared.
//
// Thread safety: not thread-safe; owned and used by one thread (the
// simulation's). Deterministic: no clock, no randomness.

#ifndef CAIRN_LOG_MEMORY_STORAGE_H_
#define CAIRN_LOG_MEMORY_STORAGE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/v1/log.pb.h"
#include "log/storage.h"

namespace cairn::log {

class MemoryStorage : public Storage {
 public:
  MemoryStorage() = default;
  MemoryStorage(const MemoryStorage&) = delete;
  MemoryStorage& operator=(const MemoryStorage&) = delete;

  // Storage. Reads see every successful write, synced or not. kDataLoss
  // (naming the position) for a record that fails its checksum.
  absl::StatusOr<std::optional<cairn::v1::Metadata>> ReadMetadata() override;
  absl::StatusOr<std::optional<cairn::v1::Action>> Read(
      uint64_t position) override;
  absl::StatusOr<std::vector<cairn::v1::Action>> ReadRange(
      uint64_t from, uint64_t to, size_t limit) override;
  absl::StatusOr<uint64_t> LastPosition() override;
  // Returns the injected error, if any, without applying the batch.
  absl::Status Write(const WriteBatch& batch, bool sync) override;
  // Stored record bytes plus 8 bytes of key per action.
  uint64_t ApproximateBytes() override;

  // ---- Faults ----

  // Power loss: every write not yet made durable by a synced write is lost.
  void SimulateCrash() { SimulateCrash(0); }
  // Power loss after which the oldest `keep_unsynced_batches` unsynced
  // batches (all, if there are fewer) turned out to have reached the disk.
  void SimulateCrash(size_t keep_unsynced_batches);

  // The disk is replaced by an empty one.
  void Wipe();

  // Flips one byte of the stored record of the action at `position` (in the
  // page cache, on disk and in unsynced writes alike), so that reading it
  // returns kDataLoss; a damaged record stays damaged (idempotent).
  // kNotFound when there is no action at `position`.
  absl::Status CorruptAction(uint64_t position);
  // Same for the metadata record. kNotFound when there is none.
  absl::Status CorruptMetadata();

  // Every Write returns `status` (and changes nothing) until called again
  // with absl::OkStatus().
  void InjectWriteError(absl::Status status) {
    write_error_ = std::move(status);
  }

  // ---- Counters (never reset, not even by Wipe) ----

  // Successful Write calls, and those of them with sync=true.
  // Reads `position` as a crash now would leave it (synced writes only).
  absl::StatusOr<std::optional<cairn::v1::Action>> TEST_ReadDurable(
      uint64_t position) const;

  uint64_t writes() const { return writes_; }
  uint64_t sync_writes() const { return sync_writes_; }
  // Batches written since the last synced write (lost by SimulateCrash()).
  size_t unsynced_batches() const { return unsynced_.size(); }

 private:
  // One state of the simulated disk; values are serialized Records.
  struct Disk {
    std::optional<std::string> metadata;
    std::map<uint64_t, std::string> actions;
  };
  // A WriteBatch with its records already encoded.
  struct EncodedBatch {
    std::optional<std::string> metadata;
    std::vector<std::pair<uint64_t, std::string>> actions;
    std::optional<uint64_t> delete_before;
  };

  static void Apply(const EncodedBatch& batch, Disk& disk);

  // What reads see: durable_ with unsynced_ applied in order.
  Disk visible_;
  // What survives SimulateCrash().
  Disk durable_;
  std::deque<EncodedBatch> unsynced_;

  absl::Status write_error_;
  uint64_t writes_ = 0;
  uint64_t sync_writes_ = 0;
};

}  // namespace cairn::log

#endif  // CAIRN_LOG_MEMORY_STORAGE_H_
