#include "log/http_service.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/http_message.h"

namespace cairn::log {

namespace {

// Builds one JSON object, field by field, in order.
class JsonObject {
 public:
  JsonObject& String(absl::string_view name, absl::string_view value) {
    return Raw(name, http::JsonQuote(value));
  }
  // 64-bit values as strings (proto3 JSON).
  JsonObject& U64(absl::string_view name, uint64_t value) {
    return Raw(name, absl::StrCat("\"", value, "\""));
  }
  JsonObject& Int(absl::string_view name, int64_t value) {
    return Raw(name, absl::StrCat(value));
  }
  JsonObject& Bool(absl::string_view name, bool value) {
    return Raw(name, value ? "true" : "false");
  }
  JsonObject& Raw(absl::string_view name, absl::string_view json) {
    absl::StrAppend(&body_, body_.empty() ? "" : ",", http::JsonQuote(name),
                    ":", json);
    return *this;
  }
  std::string Build() const { return absl::StrCat("{", body_, "}"); }

 private:
  std::string body_;
};

std::string BallotJson(const Ballot& ballot) {
  return JsonObject()
      .U64("round", ballot.round())
      .Int("node_id", ballot.node_id())
      .Build();
}

http::Response ErrorResponse(const absl::Status& status) {
  return http::Response::Error(HttpStatusFor(status), status.message());
}

// Parses query parameter `name` as an unsigned integer. nullopt when it is
// absent; kInvalidArgument when it does not parse.
absl::StatusOr<std::optional<uint64_t>> QueryNumber(const http::Request& req,
                                                    const std::string& name) {
  auto it = req.query.find(name);
  if (it == req.query.end()) return std::optional<uint64_t>();
  uint64_t value = 0;
  if (!absl::SimpleAtoi(it->second, &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("query parameter '", name,
                     "' must be an unsigned integer, got '", it->second, "'"));
  }
  return std::optional<uint64_t>(value);
}

// The answer to a write request this replica cannot serve, or nullopt when
// it is the serving leader. Nothing has been appended.
std::optional<http::Response> NotLeader(const ReplicatedLog& log,
                                        const LogHttpOptions& options,
                                        const http::Request& req,
                                        const std::string& reason) {
  const LogServerStatus status = log.Status();
  if (status.serving && reason.empty()) return std::nullopt;
  const std::string leader_json =
      status.leader.has_value() ? absl::StrCat(*status.leader) : "null";
  if (status.leader.has_value() && *status.leader != status.id) {
    auto address = options.http_addresses.find(*status.leader);
    if (address != options.http_addresses.end()) {
      const std::string location =
          absl::StrCat("http://", address->second, req.target);
      http::Response response = http::Response::Json(
          307, JsonObject()
                   .String("error", absl::StrCat("replica ", status.id,
                                                 " is not the leader; "
                                                 "redirecting to replica ",
                                                 *status.leader))
                   .Raw("leader", leader_json)
                   .String("location", location)
                   .Build());
      response.headers.Set("Location", location);
      return response;
    }
  }
  std::string error = reason;
  if (error.empty()) {
    if (status.role == Proposer::Role::kLeader) {
      error = absl::StrCat("replica ", status.id,
                           " leads but is not serving yet (waiting out the "
                           "previous leader's lease)");
    } else if (status.leader.has_value() && *status.leader != status.id) {
      error = absl::StrCat("replica ", status.id,
                           " is not the leader; the leader is replica ",
                           *status.leader, " whose HTTP address is unknown");
    } else {
      error = absl::StrCat("replica ", status.id,
                           " is not the leader and no leader is known");
      if (status.status != cairn::v1::Metadata::VOTING) {
        absl::StrAppend(&error, " (this replica is ",
                        ReplicaStatusName(status.status), ": ",
                        status.status_detail, ")");
      }
    }
  }
  http::Response response = http::Response::Json(
      503,
      JsonObject().String("error", error).Raw("leader", leader_json).Build());
  response.headers.Set("Retry-After", "1");
  return response;
}

// The answer to an append/truncate that did not succeed.
http::Response WriteFailed(const ReplicatedLog& log,
                           const LogHttpOptions& options,
                           const http::Request& req,
                           const absl::Status& status) {
  if (IsNotAppended(status)) {
    return *NotLeader(log, options, req, std::string(status.message()));
  }
  if (status.code() == absl::StatusCode::kUnavailable) {
    return http::Response::Json(503, JsonObject()
                                         .String("error", status.message())
                                         .String("outcome", "unknown")
                                         .Build());
  }
  return ErrorResponse(status);
}

}  // namespace

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kFailedPrecondition:
      return 409;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    case absl::StatusCode::kResourceExhausted:
      return 429;  // the leader's append queue is full; nothing appended
    default:
      return 500;
  }
}

std::string StatusJson(const LogServerStatus& s) {
  const LogServerCounters& c = s.counters;
  const TransportStats& t = s.transport;
  const std::string counters =
      JsonObject()
          .U64("votes_sent", c.votes_sent)
          .U64("appends_requested", c.appends_requested)
          .U64("appends_ok", c.appends_ok)
          .U64("appends_failed", c.appends_failed)
          .U64("truncates_requested", c.truncates_requested)
          .U64("fetches_sent", c.fetches_sent)
          .U64("fetches_served", c.fetches_served)
          .U64("reads", c.reads)
          .U64("messages_received", c.messages_received)
          .U64("messages_sent", c.messages_sent)
          .U64("messages_dropped", c.messages_dropped)
          .U64("writes", c.writes)
          .U64("synced_writes", c.synced_writes)
          .U64("inputs", c.inputs)
          .Build();
  const std::string transport =
      JsonObject()
          .U64("messages_sent", t.messages_sent)
          .U64("messages_received", t.messages_received)
          .U64("bytes_sent", t.bytes_sent)
          .U64("bytes_received", t.bytes_received)
          .U64("dropped_queue_full", t.dropped_queue_full)
          .U64("dropped_on_error", t.dropped_on_error)
          .U64("dropped_unknown_peer", t.dropped_unknown_peer)
          .U64("connects", t.connects)
          .U64("connect_failures", t.connect_failures)
          .U64("bad_frames", t.bad_frames)
          .U64("inbound_connections", t.inbound_connections)
          .U64("queued", t.queued)
          .Build();
  return JsonObject()
      .Int("id", s.id)
      .Bool("running", s.running)
      .String("status", ReplicaStatusName(s.status))
      .String("status_detail", s.status_detail)
      .String("role", RoleName(s.role))
      .Bool("serving", s.serving)
      .Raw("leader", s.leader.has_value() ? absl::StrCat(*s.leader) : "null")
      .Raw("promised", BallotJson(s.promised))
      .Raw("ballot", BallotJson(s.ballot))
      .U64("begin", s.begin)
      .U64("end", s.end)
      .U64("learned_through", s.learned_through)
      .U64("known_committed", s.known_committed)
      .U64("committed", s.committed)
      .Int("in_flight", static_cast<int64_t>(s.in_flight))
      .Int("queued", static_cast<int64_t>(s.queued))
      .Int("lease_remaining_ms", absl::ToInt64Milliseconds(s.lease_remaining))
      .U64("elections_won", s.elections_won)
      .U64("votes_sent", c.votes_sent)
      .U64("bytes_on_disk", s.bytes_on_disk)
      .Raw("counters", counters)
      .Raw("transport", transport)
      .Build();
}

void RegisterLogRoutes(ReplicatedLog* log, LogHttpOptions options,
                       http::Server* server) {
  auto shared = std::make_shared<const LogHttpOptions>(std::move(options));

  server->Handle(
      "POST", "/log/append",
      [log, shared](http::Request req, std::shared_ptr<http::Responder> r) {
        if (auto answer = NotLeader(*log, *shared, req, "")) {
          r->Respond(*std::move(answer));
          return;
        }
        auto request = std::make_shared<http::Request>(std::move(req));
        std::string entry = std::move(request->body);
        log->Append(std::move(entry), [log, shared, request,
                                       r](absl::StatusOr<Position> p) {
          if (!p.ok()) {
            r->Respond(WriteFailed(*log, *shared, *request, p.status()));
            return;
          }
          r->Respond(http::Response::Json(200, JsonObject()
                                                   .U64("position", p->position)
                                                   .Int("index", p->index)
                                                   .Build()));
        });
      });

  server->Handle(
      "POST", "/log/truncate",
      [log, shared](http::Request req, std::shared_ptr<http::Responder> r) {
        auto to = QueryNumber(req, "to");
        if (!to.ok()) {
          r->Respond(ErrorResponse(to.status()));
          return;
        }
        if (!to->has_value()) {
          r->Respond(http::Response::Error(
              400,
              "missing query parameter 'to' (truncate deletes every "
              "position before it)"));
          return;
        }
        if (auto answer = NotLeader(*log, *shared, req, "")) {
          r->Respond(*std::move(answer));
          return;
        }
        const uint64_t target = **to;
        auto request = std::make_shared<http::Request>(std::move(req));
        log->Truncate(target, [log, shared, request, r,
                               target](absl::StatusOr<uint64_t> p) {
          if (!p.ok()) {
            r->Respond(WriteFailed(*log, *shared, *request, p.status()));
            return;
          }
          r->Respond(http::Response::Json(
              200, JsonObject().U64("position", *p).U64("to", target).Build()));
        });
      });

  server->HandleSync(
      "GET", "/log/read", [log, shared](const http::Request& req) {
        auto from = QueryNumber(req, "from");
        if (!from.ok()) return ErrorResponse(from.status());
        auto to = QueryNumber(req, "to");
        if (!to.ok()) return ErrorResponse(to.status());
        auto limit = QueryNumber(req, "limit");
        if (!limit.ok()) return ErrorResponse(limit.status());
        const LogServerStatus status = log->Status();
        const uint64_t first = from->value_or(status.begin);
        const uint64_t last = to->value_or(status.learned_through);
        uint64_t positions = limit->value_or(shared->default_read_positions);
        if (positions == 0 || positions > shared->max_read_positions) {
          return http::Response::Error(
              400, absl::StrCat("query parameter 'limit' must be in 1..",
                                shared->max_read_positions));
        }
        auto page = log->Read(first, last, positions);
        if (!page.ok()) return ErrorResponse(page.status());
        std::string body = "[";
        for (size_t i = 0; i < page->entries.size(); ++i) {
          const Entry& e = page->entries[i];
          absl::StrAppend(&body, i == 0 ? "" : ",",
                          JsonObject()
                              .U64("position", e.position)
                              .Int("index", e.index)
                              .String("data", absl::Base64Escape(e.data))
                              .Build());
        }
        body += "]";
        http::Response response = http::Response::Json(200, std::move(body));
        response.headers.Set("X-Cairn-Next-Position", absl::StrCat(page->next));
        response.headers.Set("X-Cairn-Learned-Through",
                             absl::StrCat(log->Status().learned_through));
        return response;
      });

  server->HandleSync("GET", "/log/status", [log](const http::Request&) {
    return http::Response::Json(200, StatusJson(log->Status()));
  });

  server->HandleSync("GET", "/health", [log](const http::Request&) {
    const LogServerStatus status = log->Status();
    return http::Response::Json(
        status.running ? 200 : 503,
        JsonObject()
            .Bool("healthy", status.running)
            .Int("id", status.id)
            .String("status", ReplicaStatusName(status.status))
            .String("role", RoleName(status.role))
            .Build());
  });
}

}  // namespace cairn::log
