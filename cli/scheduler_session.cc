#include "cli/scheduler_session.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/cluster.h"
#include "common/json.h"

namespace cairn::cli {
namespace {

constexpr char kJson[] = "application/json";

http::MasterChannelOptions Options(const std::vector<std::string>& masters,
                                   absl::Duration request_timeout) {
  http::MasterChannelOptions options;
  options.masters = masters;
  options.path = "/api/v1/scheduler";
  options.request_timeout = request_timeout;
  return options;
}

}  // namespace

SchedulerSession::SchedulerSession(const std::vector<std::string>& masters,
                                   absl::Duration request_timeout,
                                   std::string principal)
    : channel_(Options(masters, request_timeout)),
      principal_(std::move(principal)) {}

void SchedulerSession::Close() {
  stream_.reset();
  decoder_.reset();
  records_.clear();
  ended_ = true;
}

absl::Status SchedulerSession::Subscribe(const v1::FrameworkInfo& info,
                                         absl::Time deadline) {
  Close();
  Call call;
  call.set_type(Call::SUBSCRIBE);
  *call.mutable_subscribe()->mutable_framework_info() = info;
  if (info.has_id()) *call.mutable_framework_id() = info.id();
  http::Headers headers = {{"Content-Type", kJson}, {"Accept", kJson}};
  if (!principal_.empty()) headers.Set("X-Cairn-Principal", principal_);
  absl::StatusOr<std::unique_ptr<http::ClientStream>> stream =
      channel_.OpenStream(headers, MesosJson(call), deadline);
  if (!stream.ok()) {
    // OpenStream words an error answer as "HTTP <code>: <body>".
    return stream.status();
  }
  stream_ = *std::move(stream);
  decoder_ = std::make_unique<recordio::Decoder>();
  stream_id_ = stream_->headers().Get("Mesos-Stream-Id");
  ended_ = false;
  while (absl::Now() < deadline) {
    absl::StatusOr<std::optional<Event>> event =
        Next(std::min(deadline - absl::Now(), absl::Seconds(1)));
    if (!event.ok()) return event.status();
    if (!event->has_value()) continue;
    if ((*event)->type() == Event::SUBSCRIBED) {
      framework_id_ = (*event)->subscribed().framework_id();
      return absl::OkStatus();
    }
    if ((*event)->type() == Event::ERROR) {
      Close();
      return absl::FailedPreconditionError(absl::StrCat(
          "the master refused the subscription: ",
          (*event)->error().message()));
    }
  }
  Close();
  return absl::DeadlineExceededError("no SUBSCRIBED event before the deadline");
}

absl::StatusOr<std::optional<SchedulerSession::Event>> SchedulerSession::Next(
    absl::Duration wait) {
  const absl::Time deadline = absl::Now() + wait;
  while (true) {
    while (!records_.empty()) {
      std::string record = std::move(records_.front());
      records_.pop_front();
      Event event;
      absl::Status parsed =
          FromJson(record, &event, /*ignore_unknown_fields=*/true);
      if (!parsed.ok()) {
        return absl::InternalError(
            absl::StrCat("an event does not parse: ", parsed.message()));
      }
      if (event.type() == Event::HEARTBEAT) continue;
      return std::optional<Event>(std::move(event));
    }
    if (stream_ == nullptr) {
      return ended_ ? absl::UnavailableError("the event stream ended")
                    : absl::FailedPreconditionError("not subscribed");
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return std::optional<Event>();
    absl::StatusOr<std::optional<std::string>> chunk = stream_->NextChunk(left);
    if (!chunk.ok()) {
      if (chunk.status().code() == absl::StatusCode::kDeadlineExceeded) {
        return std::optional<Event>();
      }
      Close();
      return absl::UnavailableError(
          absl::StrCat("the event stream ended: ", chunk.status().message()));
    }
    if (!chunk->has_value()) {
      Close();
      return absl::UnavailableError("the master ended the event stream");
    }
    std::vector<std::string> records;
    absl::Status fed = decoder_->Feed(**chunk, &records);
    for (std::string& record : records) records_.push_back(std::move(record));
    if (!fed.ok()) {
      Close();
      return absl::InternalError(
          absl::StrCat("the event stream is malformed: ", fed.message()));
    }
  }
}

absl::Status SchedulerSession::Send(Call call, absl::Time deadline) {
  if (!call.has_framework_id()) *call.mutable_framework_id() = framework_id_;
  http::Headers headers = {{"Content-Type", kJson},
                           {"Accept", kJson},
                           {"Mesos-Stream-Id", stream_id_}};
  if (!principal_.empty()) headers.Set("X-Cairn-Principal", principal_);
  absl::StatusOr<http::Response> answer =
      channel_.Post(headers, MesosJson(call), deadline);
  if (!answer.ok()) return answer.status();
  if (answer->status >= 200 && answer->status < 300) return absl::OkStatus();
  return ErrorFromAnswer(answer->status, answer->body);
}

absl::Status SchedulerSession::Acknowledge(const v1::TaskStatus& status,
                                           absl::Time deadline) {
  if (status.uuid().empty()) return absl::OkStatus();
  Call call;
  call.set_type(Call::ACKNOWLEDGE);
  *call.mutable_acknowledge()->mutable_agent_id() = status.agent_id();
  *call.mutable_acknowledge()->mutable_task_id() = status.task_id();
  call.mutable_acknowledge()->set_uuid(status.uuid());
  return Send(std::move(call), deadline);
}

}  // namespace cairn::cli
