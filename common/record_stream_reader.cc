#include "common/record_stream_reader.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace cairn::http {

RecordStreamReader::RecordStreamReader(
    std::unique_ptr<http::ClientStream> stream, RecordCallback on_record,
    EndCallback on_end, size_t max_record_size, absl::Duration poll_interval)
    : stream_(std::move(stream)),
      on_record_(std::move(on_record)),
      on_end_(std::move(on_end)),
      decoder_(max_record_size),
      poll_interval_(poll_interval) {
  thread_ = std::thread([this] { Run(); });
}

RecordStreamReader::~RecordStreamReader() { Stop(); }

void RecordStreamReader::Stop() {
  stop_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
}

void RecordStreamReader::Run() {
  absl::Status end;
  std::vector<std::string> records;
  while (true) {
    if (stop_.load(std::memory_order_acquire)) {
      end = absl::CancelledError("stopped by the client");
      break;
    }
    absl::StatusOr<std::optional<std::string>> chunk =
        stream_->NextChunk(poll_interval_);
    if (!chunk.ok()) {
      if (chunk.status().code() == absl::StatusCode::kDeadlineExceeded) {
        continue;  // nothing yet; the stream stays usable
      }
      end = chunk.status();
      break;
    }
    if (!chunk->has_value()) {
      end = decoder_.HasPartialRecord()
                ? absl::DataLossError("the stream ended inside a record")
                : absl::OkStatus();
      break;
    }
    records.clear();
    absl::Status fed = decoder_.Feed(**chunk, &records);
    for (std::string& record : records) on_record_(std::move(record));
    if (!fed.ok()) {
      end = fed;
      break;
    }
  }
  stream_.reset();  // closes the connection: the server sees us go
  on_end_(end);
}

}  // namespace cairn::http
