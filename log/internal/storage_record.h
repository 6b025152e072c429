// Record codec shared by the Storage implementations: a message is stored as a
// serialized cairn.v1.Record { payload = message bytes, crc32c = CRC32C of
// them }, and is believed only after its checksum verifies.
//
// Package-private to //log (storage implementations and their tests).
// Stateless; safe to call from any thread.

#ifndef CAIRN_LOG_INTERNAL_STORAGE_RECORD_H_
#define CAIRN_LOG_INTERNAL_STORAGE_RECORD_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "cairn/v1/log.pb.h"
#include "google/protobuf/message_lite.h"

namespace cairn::log::internal {

// Returns the serialized Record holding `message` and its checksum.
std::string EncodeRecord(const google::protobuf::MessageLite& message);

// Returns the payload of the serialized Record `bytes` after verifying its
// checksum. kDataLoss (mentioning `what`, e.g. "action at position 7") when
// the record does not parse or its checksum does not match.
absl::StatusOr<std::string> VerifiedPayload(absl::string_view bytes,
                                            absl::string_view what);

// Returns the message of type M stored in the serialized Record `bytes`.
// kDataLoss (mentioning `what`) when the record or the payload is damaged.
template <typename M>
absl::StatusOr<M> DecodeRecord(absl::string_view bytes,
                               absl::string_view what) {
  absl::StatusOr<std::string> payload = VerifiedPayload(bytes, what);
  if (!payload.ok()) return payload.status();
  M message;
  if (!message.ParseFromString(*payload)) {
    return absl::DataLossError(absl::StrCat(
        what, ": checksum matches but the payload does not parse"));
  }
  return message;
}

// Returns the Action stored in the serialized Record `bytes` under
// `position`. kDataLoss naming the position when the record is damaged or
// holds an action for another position.
absl::StatusOr<cairn::v1::Action> DecodeAction(uint64_t position,
                                               absl::string_view bytes);

// Test support: damages the serialized Record `record` in place by flipping
// one bit of one payload byte (of the checksum when the payload is empty), so
// that VerifiedPayload reports kDataLoss. Returns false if `record` does not
// parse as a Record (it is left unchanged).
bool FlipRecordByte(std::string& record);

}  // namespace cairn::log::internal

#endif  // CAIRN_LOG_INTERNAL_STORAGE_RECORD_H_
