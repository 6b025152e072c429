// EventsApi: the history API's event stream, GET /api/v1/events
// (docs/history-api.md): the master's events from a log position on,
// filtered, as RecordIO (JSON or protobuf) or Server-Sent Events, first from
// the retained history and then following new events live.
//
// Query: from (position; absent: the live tail, only events after this
// master's applied position; 0: the oldest retained position), to
// (inclusive; absent: follow live until the client goes away), type
// (comma-separated type names, event_filter.h), framework_id, agent_id,
// task_id, limit (matching events, then the stream ends). SSE clients resume
// with Last-Event-ID ("position:index"), which overrides `from`.
//
// Answers before streaming: 400 {"error","field"} for a bad parameter; 406
// for an Accept the API cannot produce; 410 {"error",
// "oldest_retained_position", "lost"} when the first position asked for is
// not retained here (below the oldest retained one, or in a gap); 503 beyond
// max_streams; 500 when the history cannot be read. A position lost later in
// the range ends the stream explicitly (see FrameEnd): never a silent gap.
//
// Any master serves the API from its own fold, leader or standby: positions
// and event ids are the log's, the same on every master, so a client may
// resume on another master. Headers name the serving master, its role and
// its applied position; a standby may lag the leader by a few positions.
//
// How a stream runs: each stream has a thread of its own. It pages through
// the history by position (at most `page_positions` positions in memory),
// each page read on the master thread (which owns the archive) through
// `run_on_master_thread`, and encodes and writes on its own thread. Once
// caught up with the applied position it sleeps until OnApplied() (the
// master's applied_observers_ hook) reports a newer event, then reads on
// from its cursor: catch-up and live tail are the same position-ordered
// read, so the hand-off has no gap and no duplicate, and a fold that
// restarts (step-down rebuild) or jumps (installed snapshot) cannot skip or
// repeat an event. A client is never buffered for: the stream writes only
// while the responder holds at most `max_queued_bytes`; a client that makes
// no room for `slow_client_timeout` is disconnected with a final message.
// Idle streams get a heartbeat every `heartbeat_interval` (an SSE comment,
// or an empty RecordIO record).
//
// Thread safety: Handle() may be called from any thread; OnApplied() from
// the master thread. REQUIRES: work passed to run_on_master_thread is never
// run after the EventsApi is destroyed (the master joins its thread first).

#ifndef CAIRN_MASTER_EVENTS_API_H_
#define CAIRN_MASTER_EVENTS_API_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cairn/v1/master.pb.h"
#include "common/http_message.h"
#include "common/http_server.h"
#include "master/event_filter.h"
#include "master/event_source.h"

namespace cairn::master {

// ---- Query and framing (pure) ---------------------------------------------

enum class StreamFormat {
  kRecordIoJson,      // application/recordio of JSON Events
  kRecordIoProtobuf,  // application/recordio of serialized Events
  kServerSentEvents,  // text/event-stream
};

// A parsed GET /api/v1/events.
struct EventsQuery {
  // The stream starts at the first event at or after (from, from_index).
  // nullopt: after the applied position when the stream opens (live tail);
  // 0: at the oldest retained position.
  std::optional<uint64_t> from;
  uint32_t from_index = 0;
  std::optional<uint64_t> to;     // the last position, inclusive
  std::optional<uint64_t> limit;  // matching events to send, >= 1
  EventFilter filter;
  StreamFormat format = StreamFormat::kRecordIoJson;
};

// An answer to give instead of a stream: 400 (bad parameter, `field` names
// it) or 406 (unacceptable Accept).
struct EventsQueryError {
  int status = 400;
  std::string message;
  std::string field;
};

// Parses the query parameters and the Accept and Last-Event-ID headers.
// Unknown parameters are errors (a mistyped filter must not silently match
// everything).
std::variant<EventsQuery, EventsQueryError> ParseEventsQuery(
    const http::Request& request);

// The format `accept` asks for: text/event-stream -> SSE;
// application/json, */*, application/*, or nothing -> RecordIO JSON;
// application/x-protobuf -> RecordIO protobuf; the first acceptable item
// wins. nullopt (406) when no item is acceptable.
std::optional<StreamFormat> NegotiateStreamFormat(absl::string_view accept);

// "position:index" -> (position, index); a bare "position" means after
// every index of it. kInvalidArgument otherwise.
struct EventCursor {
  uint64_t position = 0;
  uint32_t index = 0;
};
absl::StatusOr<EventCursor> ParseEventId(absl::string_view id);

// One event framed for `format`: a RecordIO record, or an SSE message
// "id: <position>:<index>\nevent: <type>\ndata: <JSON>\n\n". kInternal if
// the event cannot be encoded as JSON.
absl::StatusOr<std::string> FrameEvent(const v1::Event& event,
                                       StreamFormat format);

// An idle stream's keep-alive: ": heartbeat\n\n", or an empty RecordIO
// record (which a reader skips).
std::string FrameHeartbeat(StreamFormat format);

// Why a stream ended (other than the client leaving or the server stopping).
enum class EndReason {
  kComplete,    // `to` reached
  kLimit,       // `limit` events sent
  kLost,        // the next positions are not retained here
  kSlowClient,  // the client made no room for slow_client_timeout
  kError,       // the history could not be read
};

// The JSON object that describes an end: {"reason", ...}, with "error" for
// an abnormal end, and for kLost "oldest_retained_position", "lost":
// {"first","last"} and "resume_from".
std::string EndJson(EndReason reason, const std::string& error,
                    const std::optional<LostPositions>& lost);

// The stream's last chunk for `reason`, or "" when nothing is sent: SSE
// sends "event: end" with EndJson as data (after a comment, for a slow
// client); RecordIO sends EndJson as a final record only for an abnormal
// end (a record that is not an Event: in a protobuf stream it never parses
// as one, as JSON it has no "position").
std::string FrameEnd(StreamFormat format, EndReason reason,
                     const std::string& error,
                     const std::optional<LostPositions>& lost);

// The 410 answer for lost positions: {"error", "oldest_retained_position",
// "lost": {"first","last"}}.
http::Response GoneResponse(const LostPositions& lost);

// ---- The API --------------------------------------------------------------

struct EventsApiOptions {
  // Streams open at once; more get 503.
  size_t max_streams = 32;
  // Positions read per page of history.
  size_t page_positions = 64;
  // A stream writes only while its responder queues at most this much.
  size_t max_queued_bytes = size_t{4} << 20;
  // A client that makes no room for this long is disconnected.
  absl::Duration slow_client_timeout = absl::Seconds(10);
  absl::Duration heartbeat_interval = absl::Seconds(15);
  // Chunks are flushed to the responder at this size (or at a page's end).
  size_t flush_bytes = 64 << 10;
  // This master's address ("host:port"), for the X-Cairn-Master header.
  std::string master_address;
};

class EventsApi {
 public:
  // Runs `work` on the master thread, later; may drop it when the master is
  // stopping.
  using RunOnMasterThread = std::function<void(std::function<void()>)>;

  // `source` is used on the master thread only; `role` (any thread) names
  // this master's role for a response header.
  EventsApi(EventsApiOptions options, std::unique_ptr<EventSource> source,
            RunOnMasterThread run_on_master_thread,
            std::function<std::string()> role);
  EventsApi(const EventsApi&) = delete;
  EventsApi& operator=(const EventsApi&) = delete;
  // Ends every stream (as the server's Stop() would) and joins the threads.
  ~EventsApi();

  // Serves one GET /api/v1/events (see the file comment). Any thread; does
  // not block.
  void Handle(http::Request request, std::shared_ptr<http::Responder> r);

  // The master folded `event` (applied_observers_). Master thread; O(streams).
  void OnApplied(const v1::Event& event);

  // Streams open now (their threads running).
  size_t active_streams() const;

 private:
  struct Stream;

  // What a stream's read on the master thread returns.
  struct MasterRead {
    absl::StatusOr<EventPage> page = EventPage();
    uint64_t start = 0;            // the position the read began at
    uint64_t oldest_retained = 0;  // the opening read only
    // generation_ when the page was read: every event folded by then is at
    // or below page->applied.
    uint64_t generation = 0;
  };

  // The body of a stream's thread; the caller closes the responder after.
  void Serve(const std::shared_ptr<Stream>& stream);
  // Runs `read` on the master thread and waits for its result; nullopt when
  // the stream closed or the API is shutting down first.
  std::optional<MasterRead> ReadOnMasterThread(
      const std::shared_ptr<Stream>& stream,
      std::function<MasterRead(EventSource*)> read);
  // Joins the threads of finished streams. REQUIRES: mu_ held.
  void ReapLocked();

  const EventsApiOptions options_;
  const std::unique_ptr<EventSource> source_;
  const RunOnMasterThread run_on_master_thread_;
  const std::function<std::string()> role_;

  // Counts OnApplied() calls: a stream that caught up with the fold waits
  // for it to change (an event folded after its last read).
  std::atomic<uint64_t> generation_{0};
  // Streams waiting for OnApplied (none: OnApplied only counts).
  std::atomic<int> waiting_live_{0};

  mutable std::mutex mu_;
  // Every stream whose thread is not joined yet. Guarded by mu_.
  std::vector<std::shared_ptr<Stream>> streams_;
  bool shutting_down_ = false;  // guarded by mu_
};

}  // namespace cairn::master

#endif  // CAIRN_MASTER_EVENTS_API_H_
