#include "log/memory_storage.h"

#include "absl/strings/str_cat.h"
#include "log/internal/storage_record.h"

namespace cairn::log {

absl::StatusOr<std::optional<cairn::v1::Metadata>>
MemoryStorage::ReadMetadata() {
  if (!visible_.metadata.has_value()) return std::nullopt;
  absl::StatusOr<cairn::v1::Metadata> metadata =
      internal::DecodeRecord<cairn::v1::Metadata>(*visible_.metadata,
                                                  "metadata");
  if (!metadata.ok()) return metadata.status();
  return std::optional<cairn::v1::Metadata>(*std::move(metadata));
}

absl::StatusOr<std::optional<cairn::v1::Action>> MemoryStorage::Read(
    uint64_t position) {
  auto it = visible_.actions.find(position);
  if (it == visible_.actions.end()) return std::nullopt;
  absl::StatusOr<cairn::v1::Action> action =
      internal::DecodeAction(position, it->second);
  if (!action.ok()) return action.status();
  return std::optional<cairn::v1::Action>(*std::move(action));
}

absl::StatusOr<std::optional<cairn::v1::Action>>
MemoryStorage::TEST_ReadDurable(uint64_t position) const {
  auto it = durable_.actions.find(position);
  if (it == durable_.actions.end()) return std::nullopt;
  absl::StatusOr<cairn::v1::Action> action =
      internal::DecodeAction(position, it->second);
  if (!action.ok()) return action.status();
  return std::optional<cairn::v1::Action>(*std::move(action));
}

absl::StatusOr<std::vector<cairn::v1::Action>> MemoryStorage::ReadRange(
    uint64_t from, uint64_t to, size_t limit) {
  std::vector<cairn::v1::Action> actions;
  if (from > to) return actions;
  for (auto it = visible_.actions.lower_bound(from);
       it != visible_.actions.end() && it->first <= to &&
       actions.size() < limit;
       ++it) {
    absl::StatusOr<cairn::v1::Action> action =
        internal::DecodeAction(it->first, it->second);
    if (!action.ok()) return action.status();
    actions.push_back(*std::move(action));
  }
  return actions;
}

absl::StatusOr<uint64_t> MemoryStorage::LastPosition() {
  if (visible_.actions.empty()) return 0;
  return visible_.actions.rbegin()->first;
}

absl::Status MemoryStorage::Write(const WriteBatch& batch, bool sync) {
  if (!write_error_.ok()) return write_error_;
  EncodedBatch encoded;
  if (batch.metadata.has_value()) {
    encoded.metadata = internal::EncodeRecord(*batch.metadata);
  }
  encoded.actions.reserve(batch.actions.size());
  for (const cairn::v1::Action& action : batch.actions) {
    encoded.actions.emplace_back(action.position(),
                                 internal::EncodeRecord(action));
  }
  encoded.delete_before = batch.delete_before;

  Apply(encoded, visible_);
  ++writes_;
  if (sync) {
    ++sync_writes_;
    for (const EncodedBatch& earlier : unsynced_) Apply(earlier, durable_);
    unsynced_.clear();
    Apply(encoded, durable_);
  } else {
    unsynced_.push_back(std::move(encoded));
  }
  return absl::OkStatus();
}

void MemoryStorage::Apply(const EncodedBatch& batch, Disk& disk) {
  if (batch.metadata.has_value()) disk.metadata = batch.metadata;
  const uint64_t delete_before = batch.delete_before.value_or(0);
  for (const auto& [position, record] : batch.actions) {
    // The batch's deletion applies after its puts.
    if (position >= delete_before) disk.actions[position] = record;
  }
  if (delete_before > 0) {
    disk.actions.erase(disk.actions.begin(),
                       disk.actions.lower_bound(delete_before));
  }
}

uint64_t MemoryStorage::ApproximateBytes() {
  uint64_t total =
      visible_.metadata.has_value() ? visible_.metadata->size() : 0;
  for (const auto& [position, record] : visible_.actions) {
    total += sizeof(position) + record.size();
  }
  return total;
}

void MemoryStorage::SimulateCrash(size_t keep_unsynced_batches) {
  for (size_t i = 0; i < keep_unsynced_batches && !unsynced_.empty(); ++i) {
    Apply(unsynced_.front(), durable_);
    unsynced_.pop_front();
  }
  unsynced_.clear();
  visible_ = durable_;
}

void MemoryStorage::Wipe() {
  visible_ = Disk();
  durable_ = Disk();
  unsynced_.clear();
}

namespace {

// Damages `record` unless it already fails verification, so that corrupting
// twice does not flip the bit back.
void Damage(std::string& record) {
  if (internal::VerifiedPayload(record, "").ok()) {
    internal::FlipRecordByte(record);
  }
}

}  // namespace

absl::Status MemoryStorage::CorruptAction(uint64_t position) {
  auto it = visible_.actions.find(position);
  if (it == visible_.actions.end()) {
    return absl::NotFoundError(
        absl::StrCat("no action at position ", position, " to corrupt"));
  }
  // Every copy of the position's record: the page cache, the disk and the
  // queued writes (so a later sync does not heal it).
  Damage(it->second);
  auto durable = durable_.actions.find(position);
  if (durable != durable_.actions.end()) Damage(durable->second);
  for (EncodedBatch& batch : unsynced_) {
    for (auto& [batch_position, record] : batch.actions) {
      if (batch_position == position) Damage(record);
    }
  }
  return absl::OkStatus();
}

absl::Status MemoryStorage::CorruptMetadata() {
  if (!visible_.metadata.has_value()) {
    return absl::NotFoundError("no metadata to corrupt");
  }
  Damage(*visible_.metadata);
  if (durable_.metadata.has_value()) Damage(*durable_.metadata);
  for (EncodedBatch& batch : unsynced_) {
    if (batch.metadata.has_value()) Damage(*batch.metadata);
  }
  return absl::OkStatus();
}

}  // namespace cairn::log
