// RecordStreamReader: reads a RecordIO event stream (the body of a
// SUBSCRIBE's 200 answer, common/recordio.h framing) on a thread of its own
// and hands every record to a callback, in stream order.
//
//   RecordStreamReader reader(std::move(stream),
//       [](std::string record) { ... },       // each record
//       [](absl::Status end) { ... });        // once, at the end
//   ...
//   reader.Stop();  // or let the destructor do it
//
// `on_end` runs exactly once, on the reader thread, after the last
// `on_record`: with OK when the server ended the stream (final chunk),
// kUnavailable when the connection dropped, kInvalidArgument/kInternal for a
// malformed stream or chunk framing, kDataLoss when the stream ended inside a
// record, kCancelled when Stop() ended it.
//
// Thread safety: the callbacks run on the reader thread and must not call
// Stop() or destroy the reader. Stop() and the destructor may be called from
// any other thread. Stop() returns within about `poll_interval` once the
// callbacks in progress return.

#ifndef CAIRN_COMMON_RECORD_STREAM_READER_H_
#define CAIRN_COMMON_RECORD_STREAM_READER_H_

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "common/recordio.h"

namespace cairn::http {

class RecordStreamReader {
 public:
  using RecordCallback = std::function<void(std::string record)>;
  using EndCallback = std::function<void(absl::Status end)>;

  // Starts the reader thread. REQUIRES: `stream` is a 200 answer whose body
  // is RecordIO.
  RecordStreamReader(std::unique_ptr<http::ClientStream> stream,
                     RecordCallback on_record, EndCallback on_end,
                     size_t max_record_size = size_t{16} << 20,
                     absl::Duration poll_interval = absl::Milliseconds(20));
  RecordStreamReader(const RecordStreamReader&) = delete;
  RecordStreamReader& operator=(const RecordStreamReader&) = delete;
  // Stop().
  ~RecordStreamReader();

  // Ends reading (closing the connection) and joins the thread; `on_end`
  // has run when it returns. Idempotent.
  void Stop();

 private:
  void Run();

  std::unique_ptr<http::ClientStream> stream_;  // owned by the thread
  const RecordCallback on_record_;
  const EndCallback on_end_;
  recordio::Decoder decoder_;  // owned by the thread
  const absl::Duration poll_interval_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace cairn::http

#endif  // CAIRN_COMMON_RECORD_STREAM_READER_H_
