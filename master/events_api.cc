#include "master/events_api.h"

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/json.h"
#include "common/logging.h"
#include "common/recordio.h"
#include "recovery/history.h"

namespace cairn::master {
namespace {

constexpr uint64_t kNoEnd = std::numeric_limits<uint64_t>::max();
// How often a stream waiting for a slow client looks at its queue again.
constexpr absl::Duration kRoomPoll = absl::Milliseconds(5);

constexpr const char* kParameters[] = {
    "from", "to", "type", "framework_id", "agent_id", "task_id", "limit"};

// Digits only (no sign, no spaces), fitting in a uint64_t.
bool ParseUnsigned(absl::string_view text, uint64_t* value) {
  if (text.empty() || text.size() > 20) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(text, value);
}

EventsQueryError BadParameter(absl::string_view field,
                              absl::string_view message) {
  return EventsQueryError{400, std::string(message), std::string(field)};
}

std::string ErrorBody(absl::string_view message, absl::string_view field) {
  std::string body = absl::StrCat("{\"error\":", http::JsonQuote(message));
  if (!field.empty()) {
    absl::StrAppend(&body, ",\"field\":", http::JsonQuote(field));
  }
  absl::StrAppend(&body, "}");
  return body;
}

const char* EndReasonName(EndReason reason) {
  switch (reason) {
    case EndReason::kComplete:
      return "complete";
    case EndReason::kLimit:
      return "limit";
    case EndReason::kLost:
      return "lost";
    case EndReason::kSlowClient:
      return "slow_client";
    case EndReason::kError:
      return "error";
  }
  return "unknown";
}

bool Before(uint64_t p1, uint32_t i1, uint64_t p2, uint32_t i2) {
  return p1 < p2 || (p1 == p2 && i1 < i2);
}

}  // namespace

// ---- Query and framing ------------------------------------------------------

std::optional<StreamFormat> NegotiateStreamFormat(absl::string_view accept) {
  if (absl::StripAsciiWhitespace(accept).empty()) {
    return StreamFormat::kRecordIoJson;
  }
  for (absl::string_view item : absl::StrSplit(accept, ',')) {
    const absl::string_view type =
        absl::StripAsciiWhitespace(item.substr(0, item.find(';')));
    if (absl::EqualsIgnoreCase(type, "text/event-stream")) {
      return StreamFormat::kServerSentEvents;
    }
    if (absl::EqualsIgnoreCase(type, "application/json") || type == "*/*" ||
        type == "application/*") {
      return StreamFormat::kRecordIoJson;
    }
    if (absl::EqualsIgnoreCase(type, "application/x-protobuf")) {
      return StreamFormat::kRecordIoProtobuf;
    }
  }
  return std::nullopt;
}

absl::StatusOr<EventCursor> ParseEventId(absl::string_view id) {
  id = absl::StripAsciiWhitespace(id);
  const size_t colon = id.find(':');
  EventCursor cursor;
  uint64_t index = 0;
  if (!ParseUnsigned(id.substr(0, colon), &cursor.position) ||
      (colon != absl::string_view::npos &&
       (!ParseUnsigned(id.substr(colon + 1), &index) ||
        index > std::numeric_limits<uint32_t>::max()))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "event id '", id, "' is not <position>:<index> (e.g. 42:0)"));
  }
  cursor.index = colon == absl::string_view::npos
                     ? std::numeric_limits<uint32_t>::max()
                     : static_cast<uint32_t>(index);
  return cursor;
}

std::variant<EventsQuery, EventsQueryError> ParseEventsQuery(
    const http::Request& request) {
  EventsQuery query;
  for (const auto& [name, value] : request.query) {
    if (std::find(std::begin(kParameters), std::end(kParameters), name) ==
        std::end(kParameters)) {
      return BadParameter(
          name, absl::StrCat("unknown parameter '", name, "' (known: ",
                             absl::StrJoin(kParameters, ", "), ")"));
    }
  }
  const std::optional<StreamFormat> format =
      NegotiateStreamFormat(request.headers.Get("Accept"));
  if (!format.has_value()) {
    return EventsQueryError{406,
                            "Accept must allow text/event-stream, "
                            "application/json or application/x-protobuf",
                            "Accept"};
  }
  query.format = *format;

  auto number =
      [&](const char* name,
          std::optional<uint64_t>* out) -> std::optional<EventsQueryError> {
    auto it = request.query.find(name);
    if (it == request.query.end()) return std::nullopt;
    uint64_t value = 0;
    if (!ParseUnsigned(it->second, &value)) {
      return BadParameter(name, absl::StrCat(name,
                                             " must be a log position "
                                             "(an unsigned integer), not '",
                                             it->second, "'"));
    }
    *out = value;
    return std::nullopt;
  };
  if (auto error = number("from", &query.from)) return *error;
  if (auto error = number("to", &query.to)) return *error;
  if (auto error = number("limit", &query.limit)) return *error;
  if (query.limit.has_value() && *query.limit == 0) {
    return BadParameter("limit", "limit must be at least 1");
  }
  if (query.from.has_value() && *query.from > 0 && query.to.has_value() &&
      *query.to < *query.from) {
    return BadParameter(
        "to", absl::StrCat("to (", *query.to, ") is before from (", *query.from,
                           ")"));
  }

  const std::string last_event_id = request.headers.Get("Last-Event-ID");
  if (!absl::StripAsciiWhitespace(last_event_id).empty()) {
    absl::StatusOr<EventCursor> last = ParseEventId(last_event_id);
    if (!last.ok()) {
      return BadParameter("Last-Event-ID", last.status().message());
    }
    // Resume right after the last event the client has.
    if (last->index == std::numeric_limits<uint32_t>::max()) {
      query.from = last->position + 1;
      query.from_index = 0;
    } else {
      query.from = last->position;
      query.from_index = last->index + 1;
    }
    if (*query.from == 0) {  // "0:0" names no event: start at position 1
      query.from = 1;
      query.from_index = 0;
    }
  }

  if (auto it = request.query.find("type"); it != request.query.end()) {
    for (absl::string_view name :
         absl::StrSplit(it->second, ',', absl::SkipWhitespace())) {
      name = absl::StripAsciiWhitespace(name);
      std::optional<v1::Event::TypeCase> type = EventTypeFromName(name);
      if (!type.has_value()) {
        return BadParameter(
            "type",
            absl::StrCat("unknown event type '", name, "' (known: ",
                         absl::StrJoin(AllEventTypeNames(), ", "), ")"));
      }
      query.filter.types.insert(*type);
    }
    if (query.filter.types.empty()) {
      return BadParameter("type", "type names no event type");
    }
  }
  for (auto [name, out] :
       {std::pair{"framework_id", &query.filter.framework_id},
        std::pair{"agent_id", &query.filter.agent_id},
        std::pair{"task_id", &query.filter.task_id}}) {
    auto it = request.query.find(name);
    if (it == request.query.end()) continue;
    if (it->second.empty()) {
      return BadParameter(name, absl::StrCat(name, " is empty"));
    }
    *out = it->second;
  }
  return query;
}

absl::StatusOr<std::string> FrameEvent(const v1::Event& event,
                                       StreamFormat format) {
  if (format == StreamFormat::kRecordIoProtobuf) {
    return recordio::Encode(event.SerializeAsString());
  }
  // 64-bit integers (positions, times) as numbers, as in the v1 APIs, but
  // no declared defaults: a history record shows only what was recorded.
  JsonOptions options;
  options.int64_as_number = true;
  absl::StatusOr<std::string> json = ToJson(event, options);
  if (!json.ok()) {
    return absl::InternalError(
        absl::StrCat("event ", event.position(), ":", event.index(),
                     " has no JSON form: ", json.status().message()));
  }
  if (format == StreamFormat::kRecordIoJson) return recordio::Encode(*json);
  // Compact JSON has no line breaks (they are escaped inside strings), so
  // one data line carries it.
  std::string type = EventTypeName(event);
  return absl::StrCat("id: ", event.position(), ":", event.index(),
                      "\nevent: ", type.empty() ? "unknown" : type,
                      "\ndata: ", *json, "\n\n");
}

std::string FrameHeartbeat(StreamFormat format) {
  return format == StreamFormat::kServerSentEvents ? ": heartbeat\n\n"
                                                   : recordio::Encode("");
}

std::string EndJson(EndReason reason, const std::string& error,
                    const std::optional<LostPositions>& lost) {
  std::string json =
      absl::StrCat("{\"reason\":\"", EndReasonName(reason), "\"");
  if (!error.empty())
    absl::StrAppend(&json, ",\"error\":", http::JsonQuote(error));
  if (lost.has_value()) {
    absl::StrAppend(
        &json, ",\"oldest_retained_position\":", lost->oldest_retained,
        ",\"lost\":{\"first\":", lost->first, ",\"last\":", lost->last,
        "},\"resume_from\":", lost->last + 1);
  }
  absl::StrAppend(&json, "}");
  return json;
}

std::string FrameEnd(StreamFormat format, EndReason reason,
                     const std::string& error,
                     const std::optional<LostPositions>& lost) {
  const std::string json = EndJson(reason, error, lost);
  if (format == StreamFormat::kServerSentEvents) {
    std::string out;
    if (reason == EndReason::kSlowClient) {
      out = ": closing: the client reads too slowly\n";
    }
    absl::StrAppend(&out, "event: end\ndata: ", json, "\n\n");
    return out;
  }
  const bool abnormal = reason == EndReason::kLost ||
                        reason == EndReason::kSlowClient ||
                        reason == EndReason::kError;
  return abnormal ? recordio::Encode(json) : std::string();
}

http::Response GoneResponse(const LostPositions& lost) {
  return http::Response::Json(
      410, absl::StrCat("{\"error\":", http::JsonQuote(lost.message),
                        ",\"oldest_retained_position\":", lost.oldest_retained,
                        ",\"lost\":{\"first\":", lost.first,
                        ",\"last\":", lost.last, "}}"));
}

// ---- Streams ----------------------------------------------------------------

struct EventsApi::Stream {
  Stream(EventsQuery q, std::shared_ptr<http::Responder> r)
      : query(std::move(q)), responder(std::move(r)) {}

  // True once the stream must end without another word: the client went
  // away, or the API is shutting down. REQUIRES: mu held.
  bool StoppedLocked() const {
    return closed || shutting_down || responder->closed();
  }

  const EventsQuery query;
  const std::shared_ptr<http::Responder> responder;

  std::mutex mu;
  std::condition_variable cv;
  // Guarded by mu:
  bool closed = false;             // the client went away (OnClose)
  bool shutting_down = false;      // ~EventsApi
  bool waiting_live = false;       // caught up, waiting for OnApplied
  std::optional<MasterRead> read;  // the master thread's answer

  std::atomic<bool> done{false};  // Serve() returned
  std::thread thread;             // joined by ReapLocked / ~EventsApi
};

EventsApi::EventsApi(EventsApiOptions options,
                     std::unique_ptr<EventSource> source,
                     RunOnMasterThread run_on_master_thread,
                     std::function<std::string()> role)
    : options_(std::move(options)),
      source_(std::move(source)),
      run_on_master_thread_(std::move(run_on_master_thread)),
      role_(std::move(role)) {}

EventsApi::~EventsApi() {
  std::vector<std::shared_ptr<Stream>> streams;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutting_down_ = true;
    streams.swap(streams_);
  }
  for (const auto& s : streams) {
    {
      std::lock_guard<std::mutex> lock(s->mu);
      s->shutting_down = true;
    }
    s->cv.notify_all();
  }
  for (const auto& s : streams) {
    if (s->thread.joinable()) s->thread.join();
  }
}

size_t EventsApi::active_streams() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<size_t>(
      std::count_if(streams_.begin(), streams_.end(),
                    [](const auto& s) { return !s->done.load(); }));
}

void EventsApi::ReapLocked() {
  auto finished = std::partition(
      streams_.begin(), streams_.end(),
      [](const std::shared_ptr<Stream>& s) { return !s->done.load(); });
  for (auto it = finished; it != streams_.end(); ++it) {
    if ((*it)->thread.joinable()) (*it)->thread.join();
  }
  streams_.erase(finished, streams_.end());
}

void EventsApi::Handle(http::Request request,
                       std::shared_ptr<http::Responder> r) {
  std::variant<EventsQuery, EventsQueryError> parsed =
      ParseEventsQuery(request);
  if (const auto* error = std::get_if<EventsQueryError>(&parsed)) {
    r->Respond(http::Response::Json(error->status,
                                    ErrorBody(error->message, error->field)));
    return;
  }
  auto stream =
      std::make_shared<Stream>(std::get<EventsQuery>(std::move(parsed)), r);
  std::lock_guard<std::mutex> lock(mu_);
  ReapLocked();
  if (shutting_down_ || streams_.size() >= options_.max_streams) {
    http::Response busy = http::Response::Json(
        503, ErrorBody(shutting_down_
                           ? "the master is stopping"
                           : absl::StrCat("this master already serves ",
                                          streams_.size(),
                                          " event streams (the most it "
                                          "serves at once); retry later or "
                                          "ask another master"),
                       ""));
    busy.headers.Set("Retry-After", "5");
    r->Respond(std::move(busy));
    return;
  }
  streams_.push_back(stream);
  r->OnClose([weak = std::weak_ptr<Stream>(stream)] {
    if (std::shared_ptr<Stream> s = weak.lock()) {
      {
        std::lock_guard<std::mutex> lock(s->mu);
        s->closed = true;
      }
      s->cv.notify_all();
    }
  });
  stream->thread = std::thread([this, stream] {
    Serve(stream);
    stream->responder->Close();  // idempotent; ends a stream Serve left
    stream->done.store(true);
  });
}

void EventsApi::OnApplied(const v1::Event& event) {
  generation_.fetch_add(1);
  if (waiting_live_.load() == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& s : streams_) {
    bool waiting;
    {
      std::lock_guard<std::mutex> stream_lock(s->mu);
      waiting = s->waiting_live;
    }
    if (waiting) s->cv.notify_all();
  }
}

std::optional<EventsApi::MasterRead> EventsApi::ReadOnMasterThread(
    const std::shared_ptr<Stream>& s,
    std::function<MasterRead(EventSource*)> read) {
  {
    std::lock_guard<std::mutex> lock(s->mu);
    if (s->StoppedLocked()) return std::nullopt;
    s->read.reset();
  }
  EventSource* source = source_.get();
  std::atomic<uint64_t>* generation = &generation_;
  run_on_master_thread_([s, source, generation, read = std::move(read)] {
    {
      std::lock_guard<std::mutex> lock(s->mu);
      if (s->StoppedLocked()) return;  // nobody waits for it any more
    }
    MasterRead result = read(source);
    // On the master thread, as OnApplied: every event folded so far is
    // at or below result.page->applied.
    result.generation = generation->load();
    {
      std::lock_guard<std::mutex> lock(s->mu);
      s->read = std::move(result);
    }
    s->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(s->mu);
  s->cv.wait(lock, [&] { return s->read.has_value() || s->StoppedLocked(); });
  if (!s->read.has_value()) return std::nullopt;
  MasterRead out = *std::move(s->read);
  s->read.reset();
  return out;
}

void EventsApi::Serve(const std::shared_ptr<Stream>& s) {
  const EventsQuery& q = s->query;
  const uint64_t through = q.to.value_or(kNoEnd);
  const size_t page_positions = options_.page_positions;

  // Opening, on the master thread: where the stream starts, what is
  // retained, and the first page.
  std::optional<MasterRead> read = ReadOnMasterThread(
      s, [from = q.from, through, page_positions](EventSource* source) {
        MasterRead r;
        absl::StatusOr<uint64_t> oldest = source->OldestRetained();
        if (!oldest.ok()) {
          r.page = oldest.status();
          return r;
        }
        r.oldest_retained = *oldest;
        r.start = !from.has_value() ? source->Applied() + 1
                  : *from == 0      ? *oldest
                                    : *from;
        r.page = source->Read(r.start, through, page_positions);
        return r;
      });
  if (!read.has_value()) {
    // The client left (nothing is sent), or the API is going away.
    s->responder->Respond(
        http::Response::Json(503, ErrorBody("the master is stopping", "")));
    return;
  }
  if (!read->page.ok()) {
    const absl::Status& status = read->page.status();
    LOG(WARNING) << "GET /api/v1/events: reading the history: " << status;
    const int code =
        absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status) ? 503
                                                                        : 500;
    s->responder->Respond(http::Response::Json(
        code,
        ErrorBody(absl::StrCat("cannot read the history: ", status.message()),
                  "")));
    return;
  }
  if (read->page->lost.has_value() && read->page->next == read->start) {
    s->responder->Respond(GoneResponse(*read->page->lost));
    return;
  }

  http::Headers headers;
  if (q.format == StreamFormat::kServerSentEvents) {
    headers.Set("Content-Type", "text/event-stream");
  } else {
    headers.Set("Content-Type", "application/recordio");
    headers.Set("Message-Content-Type", q.format == StreamFormat::kRecordIoJson
                                            ? "application/json"
                                            : "application/x-protobuf");
  }
  headers.Set("Cache-Control", "no-cache");
  headers.Set("X-Accel-Buffering", "no");  // proxies: do not buffer a stream
  headers.Set("X-Cairn-Master", options_.master_address);
  headers.Set("X-Cairn-Master-Role", role_ ? role_() : "");
  headers.Set("X-Cairn-Applied-Position", absl::StrCat(read->page->applied));
  headers.Set("X-Cairn-Oldest-Retained-Position",
              absl::StrCat(read->oldest_retained));
  headers.Set("X-Cairn-Stream-Start", absl::StrCat(read->start));
  if (!s->responder->StartStream(200, std::move(headers))) return;

  // ---- Writing, with room for the client ----------------------------------
  absl::Time last_write = absl::Now();
  enum class Sent { kOk, kGone, kSlow };
  auto send = [&](std::string chunk) -> Sent {
    if (chunk.empty()) return Sent::kOk;
    const absl::Time deadline = absl::Now() + options_.slow_client_timeout;
    std::unique_lock<std::mutex> lock(s->mu);
    while (s->responder->queued_bytes() > options_.max_queued_bytes) {
      if (s->StoppedLocked()) return Sent::kGone;
      if (absl::Now() >= deadline) return Sent::kSlow;
      s->cv.wait_for(lock, absl::ToChronoMilliseconds(kRoomPoll));
    }
    if (s->StoppedLocked()) return Sent::kGone;
    lock.unlock();
    if (!s->responder->WriteChunk(std::move(chunk))) return Sent::kGone;
    last_write = absl::Now();
    return Sent::kOk;
  };
  auto end = [&](EndReason reason, const std::string& error,
                 const std::optional<LostPositions>& lost) {
    if (reason == EndReason::kError) {
      LOG(WARNING) << "GET /api/v1/events stream ended: " << error;
    }
    std::string last = FrameEnd(q.format, reason, error, lost);
    // A slow client gets its last words without waiting for room.
    if (!last.empty()) s->responder->WriteChunk(std::move(last));
    s->responder->Close();
  };

  if (q.format == StreamFormat::kServerSentEvents) {
    send(absl::StrCat(": cairn events from position ", read->start, " (",
                      options_.master_address, ", applied ",
                      read->page->applied, ")\n\n"));
  }

  // The next event to send is the first at or after (cursor, cursor_index);
  // cursor_index is nonzero only at a Last-Event-ID's position.
  const uint64_t resume_position = read->start;
  uint64_t cursor = read->start;
  uint32_t cursor_index = q.from_index;
  uint64_t matched = 0;
  std::string out;  // framed events not yet written
  for (;;) {
    if (!read->page.ok()) {
      end(EndReason::kError,
          absl::StrCat("cannot read the history at position ", cursor, ": ",
                       read->page.status().message()),
          std::nullopt);
      return;
    }
    const EventPage& page = *read->page;
    bool limit_reached = false;
    for (const recovery::LogEntry& entry : page.entries) {
      if (Before(entry.position, entry.index, cursor, cursor_index)) continue;
      absl::StatusOr<v1::Event> event =
          recovery::DecodeEntry(entry.position, entry.index, entry.data);
      absl::StatusOr<std::string> framed =
          event.ok() ? FrameEvent(*event, q.format)
                     : absl::StatusOr<std::string>(event.status());
      if (!framed.ok()) {
        send(std::move(out));
        end(EndReason::kError,
            absl::StrCat(framed.status().message(),
                         " (resume after it with "
                         "from=",
                         entry.position + 1, ")"),
            std::nullopt);
        return;
      }
      if (!q.filter.Matches(*event)) continue;
      absl::StrAppend(&out, *framed);
      ++matched;
      if (q.limit.has_value() && matched >= *q.limit) {
        limit_reached = true;
        break;
      }
      if (out.size() >= options_.flush_bytes) {
        Sent sent = send(std::move(out));
        out.clear();
        if (sent == Sent::kGone) return;
        if (sent == Sent::kSlow) {
          end(EndReason::kSlowClient, "the client reads too slowly",
              std::nullopt);
          return;
        }
      }
    }
    Sent sent = send(std::move(out));
    out.clear();
    if (sent == Sent::kGone) return;
    if (sent == Sent::kSlow) {
      end(EndReason::kSlowClient, "the client reads too slowly", std::nullopt);
      return;
    }
    if (limit_reached) {
      end(EndReason::kLimit, "", std::nullopt);
      return;
    }
    cursor = std::max(cursor, page.next);
    if (cursor > resume_position) cursor_index = 0;
    if (page.lost.has_value()) {
      end(EndReason::kLost, page.lost->message, page.lost);
      return;
    }
    if (cursor > through) {
      end(EndReason::kComplete, "", std::nullopt);
      return;
    }

    // Caught up with the fold: wait for OnApplied to report a newer event,
    // keeping the connection alive meanwhile.
    Sent beat = Sent::kOk;
    if (cursor > page.applied) {
      const uint64_t seen = read->generation;
      std::unique_lock<std::mutex> lock(s->mu);
      s->waiting_live = true;
      waiting_live_.fetch_add(1);
      while (beat == Sent::kOk) {
        const absl::Time due = last_write + options_.heartbeat_interval;
        if (s->cv.wait_for(
                lock, absl::ToChronoMilliseconds(due - absl::Now()), [&] {
                  return generation_.load() != seen || s->StoppedLocked();
                })) {
          break;
        }
        lock.unlock();
        beat = send(FrameHeartbeat(q.format));
        lock.lock();
      }
      s->waiting_live = false;
      waiting_live_.fetch_sub(1);
      if (s->StoppedLocked()) return;
    } else if (absl::Now() - last_write >= options_.heartbeat_interval) {
      // A long catch-up through events the filter drops.
      beat = send(FrameHeartbeat(q.format));
    }
    if (beat == Sent::kGone) return;
    if (beat == Sent::kSlow) {
      end(EndReason::kSlowClient, "the client reads too slowly", std::nullopt);
      return;
    }

    read = ReadOnMasterThread(
        s, [cursor, through, page_positions](EventSource* source) {
          MasterRead r;
          r.start = cursor;
          r.page = source->Read(cursor, through, page_positions);
          return r;
        });
    if (!read.has_value()) return;
  }
}

}  // namespace cairn::master
