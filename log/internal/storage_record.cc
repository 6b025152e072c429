#include "log/internal/storage_record.h"

#include <cstdint>
#include <utility>

#include "common/crc32c.h"

namespace cairn::log::internal {

std::string EncodeRecord(const google::protobuf::MessageLite& message) {
  cairn::v1::Record record;
  message.SerializeToString(record.mutable_payload());
  record.set_crc32c(cairn::Crc32c(record.payload()));
  return record.SerializeAsString();
}

absl::StatusOr<std::string> VerifiedPayload(absl::string_view bytes,
                                            absl::string_view what) {
  cairn::v1::Record record;
  if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(
        absl::StrCat(what, ": stored record does not parse"));
  }
  const uint32_t actual = cairn::Crc32c(record.payload());
  if (actual != record.crc32c()) {
    return absl::DataLossError(
        absl::StrCat(what, ": checksum mismatch (stored ", record.crc32c(),
                     ", computed ", actual, ")"));
  }
  return std::move(*record.mutable_payload());
}

absl::StatusOr<cairn::v1::Action> DecodeAction(uint64_t position,
                                               absl::string_view bytes) {
  const std::string what = absl::StrCat("action at position ", position);
  absl::StatusOr<cairn::v1::Action> action =
      DecodeRecord<cairn::v1::Action>(bytes, what);
  if (action.ok() && action->position() != position) {
    return absl::DataLossError(
        absl::StrCat(what, ": record holds position ", action->position()));
  }
  return action;
}

bool FlipRecordByte(std::string& record_bytes) {
  cairn::v1::Record record;
  if (!record.ParseFromString(record_bytes)) return false;
  std::string& payload = *record.mutable_payload();
  if (payload.empty()) {
    record.set_crc32c(record.crc32c() ^ 0x01u);
  } else {
    payload[payload.size() / 2] ^= 0x01;
  }
  record_bytes = record.SerializeAsString();
  return true;
}

}  // namespace cairn::log::internal
