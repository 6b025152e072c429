// RecordIO: the framing Mesos's v1 streaming HTTP API uses for events
// (SUBSCRIBE responses, operator event streams): each record is its length in
// ASCII decimal, a newline, then exactly that many bytes:
//
//   "5\nhello3\nabc0\n"  ->  {"hello", "abc", ""}
//
// Records are opaque bytes (JSON or serialized protobuf, per Content-Type) and
// may themselves contain newlines and digits.
//
// Thread safety: Encode is a pure function. A Decoder is not thread-safe: one
// reader owns it.

#ifndef CAIRN_COMMON_RECORDIO_H_
#define CAIRN_COMMON_RECORDIO_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace cairn {
namespace recordio {

// Returns `record` framed as "<decimal length>\n<record>".
std::string Encode(absl::string_view record);

// Appends the framed `record` to `*out` (avoids a copy when batching).
void AppendEncoded(absl::string_view record, std::string* out);

// Incremental decoder for a RecordIO byte stream delivered in arbitrary
// chunks (a record, or its length header, may be split anywhere; one chunk may
// hold many records).
//
// Invariants: the decoder is either between records, inside a length header
// (at most kMaxHeaderDigits digits buffered), inside a record body (at most
// max_record_size bytes buffered), or failed. Once failed it stays failed.
class Decoder {
 public:
  // Longest accepted length header; 20 digits hold any uint64_t.
  static constexpr size_t kMaxHeaderDigits = 20;
  static constexpr size_t kDefaultMaxRecordSize = size_t{64} << 20;  // 64 MiB

  explicit Decoder(size_t max_record_size = kDefaultMaxRecordSize);

  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Consumes `chunk` and appends every record it completes to `*records`, in
  // stream order (existing elements are kept). Returns OK, or
  // kInvalidArgument when the stream is malformed: a length header with a
  // non-digit byte or no digits, a header longer than kMaxHeaderDigits, or a
  // record longer than max_record_size. Records completed before the bad byte
  // in the same call are still appended. After an error the decoder is failed
  // and every later call returns the same status without consuming anything.
  // REQUIRES: records != nullptr.
  absl::Status Feed(absl::string_view chunk, std::vector<std::string>* records);

  // True once Feed has returned an error.
  bool failed() const { return state_ == State::kFailed; }

  // True when bytes of an unfinished header or record are buffered, i.e. the
  // stream would be truncated if it ended now.
  bool HasPartialRecord() const;

  size_t max_record_size() const { return max_record_size_; }

 private:
  enum class State { kHeader, kBody, kFailed };

  absl::Status Fail(absl::Status status);

  const size_t max_record_size_;
  State state_ = State::kHeader;
  std::string header_;    // digits of the current header (kHeader)
  std::string record_;    // bytes of the current record so far (kBody)
  size_t remaining_ = 0;  // bytes still missing from record_ (kBody)
  absl::Status failure_;  // set iff state_ == kFailed
};

}  // namespace recordio
}  // namespace cairn

#endif  // CAIRN_COMMON_RECORDIO_H_
