#include "common/recordio.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace cairn {
namespace recordio {
namespace {

// Buffer growth for a record body is bounded by what has actually arrived, so
// a large (but allowed) length header alone cannot force a huge allocation.
constexpr size_t kMaxUpfrontReserve = size_t{1} << 20;

}  // namespace

void AppendEncoded(absl::string_view record, std::string* out) {
  absl::StrAppend(out, record.size(), "\n", record);
}

std::string Encode(absl::string_view record) {
  std::string out;
  AppendEncoded(record, &out);
  return out;
}

Decoder::Decoder(size_t max_record_size) : max_record_size_(max_record_size) {}

bool Decoder::HasPartialRecord() const {
  switch (state_) {
    case State::kHeader:
      return !header_.empty();
    case State::kBody:
      return true;
    case State::kFailed:
      return false;
  }
  return false;
}

absl::Status Decoder::Fail(absl::Status status) {
  state_ = State::kFailed;
  header_.clear();
  record_.clear();
  record_.shrink_to_fit();
  failure_ = status;
  return status;
}

absl::Status Decoder::Feed(absl::string_view chunk,
                           std::vector<std::string>* records) {
  while (true) {
    switch (state_) {
      case State::kFailed:
        return failure_;

      case State::kHeader: {
        if (chunk.empty()) return absl::OkStatus();
        const char c = chunk.front();
        chunk.remove_prefix(1);
        if (c == '\n') {
          if (header_.empty()) {
            return Fail(absl::InvalidArgumentError(
                "RecordIO: empty length header (newline without digits)"));
          }
          uint64_t length = 0;
          // SimpleAtoi fails only on overflow here: header_ is all digits.
          if (!absl::SimpleAtoi(header_, &length) ||
              length > max_record_size_) {
            return Fail(absl::InvalidArgumentError(absl::StrCat(
                "RecordIO: record length ", header_,
                " exceeds the maximum record size ", max_record_size_)));
          }
          header_.clear();
          remaining_ = static_cast<size_t>(length);
          record_.clear();
          record_.reserve(std::min(remaining_, kMaxUpfrontReserve));
          state_ = State::kBody;
          break;
        }
        if (c < '0' || c > '9') {
          return Fail(absl::InvalidArgumentError(
              absl::StrCat("RecordIO: invalid length header: non-digit byte '",
                           absl::CHexEscape(absl::string_view(&c, 1)),
                           "' after \"", header_, "\"")));
        }
        if (header_.size() == kMaxHeaderDigits) {
          return Fail(absl::InvalidArgumentError(
              absl::StrCat("RecordIO: length header longer than ",
                           kMaxHeaderDigits, " digits")));
        }
        header_.push_back(c);
        break;
      }

      case State::kBody: {
        const size_t take = std::min(remaining_, chunk.size());
        record_.append(chunk.data(), take);
        chunk.remove_prefix(take);
        remaining_ -= take;
        if (remaining_ > 0) return absl::OkStatus();  // chunk exhausted
        records->push_back(std::move(record_));
        record_ = std::string();
        state_ = State::kHeader;
        break;
      }
    }
  }
}

}  // namespace recordio
}  // namespace cairn
