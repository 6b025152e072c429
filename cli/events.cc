#include "cli/events.h"

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cli/exit_codes.h"
#include "cli/sandbox_output.h"
#include "cli/table.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/json_value.h"
#include "common/recordio.h"
#include "google/protobuf/descriptor.h"

namespace cairn::cli {
namespace {

constexpr size_t kSummaryWidth = 100;

std::string Ids(const google::protobuf::RepeatedPtrField<v1::OfferID>& ids) {
  std::vector<std::string> values;
  for (const auto& id : ids) values.push_back(id.value());
  return absl::StrJoin(values, ",");
}

std::string Summary(const v1::Event& e) {
  switch (e.type_case()) {
    case v1::Event::kAgentRegistered:
      return absl::StrCat("agent ", e.agent_registered().info().id().value(),
                          " ", e.agent_registered().info().hostname());
    case v1::Event::kAgentReregistered:
      return absl::StrCat("agent ", e.agent_reregistered().info().id().value(),
                          " ", e.agent_reregistered().info().hostname());
    case v1::Event::kAgentUnreachable:
      return absl::StrCat("agent ", e.agent_unreachable().agent_id().value());
    case v1::Event::kAgentRemoved:
      return absl::StrCat("agent ", e.agent_removed().agent_id().value(),
                          e.agent_removed().reason().empty() ? "" : ": ",
                          e.agent_removed().reason());
    case v1::Event::kAgentDeactivated:
      return absl::StrCat("agent ", e.agent_deactivated().agent_id().value());
    case v1::Event::kAgentReactivated:
      return absl::StrCat("agent ", e.agent_reactivated().agent_id().value());
    case v1::Event::kAgentDrainStarted:
      return absl::StrCat(
          "agent ", e.agent_drain_started().agent_id().value(),
          e.agent_drain_started().config().mark_gone() ? " (mark gone)" : "");
    case v1::Event::kAgentDrained:
      return absl::StrCat("agent ", e.agent_drained().agent_id().value());
    case v1::Event::kFrameworkSubscribed:
      return absl::StrCat("framework ",
                          e.framework_subscribed().info().id().value(), " ",
                          e.framework_subscribed().info().name());
    case v1::Event::kFrameworkFailedOver:
      return absl::StrCat("framework ",
                          e.framework_failed_over().info().id().value(), " ",
                          e.framework_failed_over().info().name());
    case v1::Event::kFrameworkDisconnected:
      return absl::StrCat("framework ",
                          e.framework_disconnected().framework_id().value());
    case v1::Event::kFrameworkRemoved:
      return absl::StrCat("framework ",
                          e.framework_removed().framework_id().value(),
                          e.framework_removed().reason().empty() ? "" : ": ",
                          e.framework_removed().reason());
    case v1::Event::kTasksLaunched: {
      std::vector<std::string> tasks;
      std::string agent;
      for (const v1::TaskInfo& t : e.tasks_launched().tasks()) {
        tasks.push_back(t.task_id().value());
        agent = t.agent_id().value();
      }
      return absl::StrCat("framework ",
                          e.tasks_launched().framework_id().value(), " task ",
                          absl::StrJoin(tasks, ","), " on agent ", agent);
    }
    case v1::Event::kTaskStatusUpdated: {
      const v1::TaskStatus& s = e.task_status_updated().status();
      return absl::StrCat(
          "task ", s.task_id().value(), " ", v1::TaskState_Name(s.state()),
          s.has_reason()
              ? absl::StrCat(" ", v1::TaskStatus::Reason_Name(s.reason()))
              : "",
          s.message().empty() ? "" : absl::StrCat(": ", s.message()));
    }
    case v1::Event::kTaskStatusAcknowledged:
      return absl::StrCat("task ",
                          e.task_status_acknowledged().task_id().value());
    case v1::Event::kTaskKillRequested:
      return absl::StrCat("task ", e.task_kill_requested().task_id().value());
    case v1::Event::kExecutorExited:
      return absl::StrCat("executor ",
                          e.executor_exited().executor_id().value(), " status ",
                          e.executor_exited().status());
    case v1::Event::kOffersCreated: {
      std::vector<std::string> offers;
      for (const v1::Offer& o : e.offers_created().offers()) {
        offers.push_back(
            absl::StrCat(o.id().value(), "->", o.framework_id().value()));
      }
      return absl::StrCat(offers.size(), " offer(s) ",
                          absl::StrJoin(offers, ","));
    }
    case v1::Event::kOffersRescinded:
      return Ids(e.offers_rescinded().offer_ids());
    case v1::Event::kOffersDeclined:
      return absl::StrCat("framework ",
                          e.offers_declined().framework_id().value(), " ",
                          Ids(e.offers_declined().offer_ids()));
    case v1::Event::kOffersExpired:
      return Ids(e.offers_expired().offer_ids());
    default: {
      // The member itself, compactly.
      const google::protobuf::OneofDescriptor* oneof =
          e.GetDescriptor()->FindOneofByName("type");
      const google::protobuf::FieldDescriptor* field =
          oneof == nullptr
              ? nullptr
              : e.GetReflection()->GetOneofFieldDescriptor(e, oneof);
      if (field == nullptr ||
          field->cpp_type() !=
              google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
        return "";
      }
      return MesosJson(e.GetReflection()->GetMessage(e, field));
    }
  }
}

std::string TimeText(const v1::Event& e) {
  if (!e.has_time()) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ",
                          absl::FromUnixNanos(e.time().nanoseconds()),
                          absl::UTCTimeZone());
}

}  // namespace

std::string EventTypeName(const v1::Event& event) {
  const google::protobuf::OneofDescriptor* oneof =
      event.GetDescriptor()->FindOneofByName("type");
  if (oneof == nullptr) return "unknown";
  const google::protobuf::FieldDescriptor* field =
      event.GetReflection()->GetOneofFieldDescriptor(event, oneof);
  return field == nullptr ? "unknown" : field->name();
}

std::string EventLine(const v1::Event& event) {
  return absl::StrCat(event.position(), ":", event.index(), "  ",
                      TimeText(event), "  ", EventTypeName(event), "  ",
                      event.principal().empty() ? "-" : event.principal(), "  ",
                      Truncate(Summary(event), kSummaryWidth));
}

int StreamEvents(Cluster& cluster, const EventsOptions& options,
                 std::ostream& out, std::ostream& err) {
  const std::vector<http::HostPort>& masters = cluster.hosts();
  std::optional<uint64_t> from = options.from;
  if (!options.follow && !from.has_value()) from = 0;
  std::optional<uint64_t> to;
  std::optional<std::string> last_id;  // of the last event printed
  uint64_t printed = 0;
  size_t next = 0;
  absl::Time connect_deadline = absl::Now() + cluster.options().timeout;
  absl::Duration backoff = absl::Milliseconds(50);
  std::string last_error = "no master was asked";
  bool any_answered = false;

  while (true) {
    if (absl::Now() >= connect_deadline) {
      err << "cairnctl: "
          << (any_answered ? "no master served the events at "
                           : "no master answered at ")
          << cluster.MastersText() << " (" << last_error << ")" << std::endl;
      return kExitUnavailable;
    }
    const http::HostPort master = masters[next++ % masters.size()];
    auto retry = [&](std::string why) {
      last_error = absl::StrCat(master.ToString(), ": ", why);
      if (next % masters.size() == 0) {
        absl::SleepFor(backoff);
        backoff = std::min(backoff * 2, absl::Milliseconds(500));
      }
    };
    const absl::Duration request_timeout =
        std::clamp(connect_deadline - absl::Now(), absl::Milliseconds(100),
                   absl::Seconds(5));
    if (!options.follow && !to.has_value()) {
      absl::StatusOr<http::Response> replica =
          cluster.Get(master, "/master/replica", request_timeout);
      if (!replica.ok()) {
        retry(std::string(replica.status().message()));
        continue;
      }
      any_answered = true;
      absl::StatusOr<JsonValue> json = ParseJson(replica->body);
      std::optional<uint64_t> applied =
          json.ok() ? json->Uint("applied") : std::nullopt;
      if (replica->status != 200 || !applied.has_value()) {
        retry(absl::StrCat("/master/replica answered HTTP ", replica->status));
        continue;
      }
      to = *applied;
    }
    if (to.has_value() && (*to == 0 || (from.has_value() && *from > *to &&
                                        !last_id.has_value()))) {
      return kExitOk;  // nothing up to `to`
    }
    std::vector<std::string> query;
    if (!last_id.has_value() && from.has_value()) {
      query.push_back(absl::StrCat("from=", *from));
    }
    if (to.has_value()) query.push_back(absl::StrCat("to=", *to));
    if (!options.types.empty()) {
      query.push_back(absl::StrCat(
          "type=", UrlEncode(absl::AsciiStrToLower(options.types))));
    }
    if (!options.agent_id.empty()) {
      query.push_back(absl::StrCat("agent_id=", UrlEncode(options.agent_id)));
    }
    if (!options.framework_id.empty()) {
      query.push_back(
          absl::StrCat("framework_id=", UrlEncode(options.framework_id)));
    }
    if (!options.task_id.empty()) {
      query.push_back(absl::StrCat("task_id=", UrlEncode(options.task_id)));
    }
    if (options.limit.has_value()) {
      query.push_back(absl::StrCat("limit=", *options.limit - printed));
    }
    std::string target = "/api/v1/events";
    if (!query.empty())
      absl::StrAppend(&target, "?", absl::StrJoin(query, "&"));
    http::Headers headers = {{"Accept", "application/json"}};
    if (last_id.has_value()) headers.Set("Last-Event-ID", *last_id);

    http::Client client;
    absl::StatusOr<std::unique_ptr<http::ClientStream>> stream =
        client.OpenStream("GET", master.host, master.port, target, headers, "",
                          request_timeout);
    if (!stream.ok()) {
      retry(std::string(stream.status().message()));
      continue;
    }
    any_answered = true;
    const int code = (*stream)->status();
    if (code != 200) {
      std::string body;
      for (int i = 0; i < 64; ++i) {
        absl::StatusOr<std::optional<std::string>> chunk =
            (*stream)->NextChunk(absl::Seconds(2));
        if (!chunk.ok() || !chunk->has_value()) break;
        body += **chunk;
      }
      absl::Status error = ErrorFromAnswer(code, body);
      if (code == 503) {
        retry(std::string(error.message()));
        continue;
      }
      err << "cairnctl: " << master.ToString() << ": " << error.message()
          << std::endl;
      return code == 400 ? kExitUsage : kExitError;
    }
    // Connected: a later failure gets a fresh --timeout to reconnect. A live
    // tail resumes after the position this master had applied.
    if (!last_id.has_value() && !from.has_value()) {
      uint64_t applied = 0;
      if (absl::SimpleAtoi((*stream)->headers().Get("X-Cairn-Applied-Position"),
                           &applied)) {
        from = applied + 1;
      }
    }
    backoff = absl::Milliseconds(50);
    recordio::Decoder decoder;
    bool reconnect = false;
    while (!reconnect) {
      absl::StatusOr<std::optional<std::string>> chunk =
          (*stream)->NextChunk(absl::Seconds(1));
      if (!chunk.ok()) {
        if (chunk.status().code() == absl::StatusCode::kDeadlineExceeded) {
          continue;
        }
        last_error =
            absl::StrCat(master.ToString(), ": ", chunk.status().message());
        reconnect = true;
        break;
      }
      if (!chunk->has_value()) {
        if (!options.follow) return kExitOk;  // passed `to`
        last_error = absl::StrCat(master.ToString(), ": the stream ended");
        reconnect = true;
        break;
      }
      std::vector<std::string> records;
      absl::Status fed = decoder.Feed(**chunk, &records);
      for (const std::string& record : records) {
        if (record.empty()) continue;  // heartbeat
        absl::StatusOr<JsonValue> json = ParseJson(record);
        if (json.ok() && json->Find("reason") != nullptr &&
            json->Find("position") == nullptr) {
          const std::string reason = json->Text("reason").value_or("");
          if (reason == "complete" || reason == "limit") return kExitOk;
          err << "cairnctl: warning: " << master.ToString()
              << " ended the stream: " << record << std::endl;
          if (reason == "lost") {
            std::optional<uint64_t> resume = json->Uint("resume_from");
            if (!resume.has_value()) return kExitError;
            from = *resume;
            last_id.reset();
          } else if (reason != "slow_client") {
            return kExitError;
          }
          reconnect = true;
          break;
        }
        v1::Event event;
        absl::Status parsed =
            FromJson(record, &event, /*ignore_unknown_fields=*/true);
        if (!parsed.ok()) {
          err << "cairnctl: warning: an event does not parse: "
              << parsed.message() << std::endl;
          continue;
        }
        if (options.json) {
          out << record << '\n';
        } else {
          out << EventLine(event) << '\n';
        }
        out.flush();
        last_id = absl::StrCat(event.position(), ":", event.index());
        ++printed;
        if (options.limit.has_value() && printed >= *options.limit) {
          return kExitOk;
        }
      }
      if (!fed.ok()) {
        last_error = absl::StrCat(master.ToString(), ": ", fed.message());
        reconnect = true;
      }
    }
    connect_deadline = absl::Now() + cluster.options().timeout;
  }
}

}  // namespace cairn::cli
