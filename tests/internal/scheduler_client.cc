#include "tests/internal/scheduler_client.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/http_message.h"
#include "common/json.h"

namespace cairn::tests {
namespace {

constexpr char kStreamIdHeader[] = "Mesos-Stream-Id";
constexpr char kJson[] = "application/json";

// Waits on `cv` until notified or `deadline`. REQUIRES: `lock` held.
void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
               absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return;
  cv.wait_for(lock, absl::ToChronoNanoseconds(left));
}

MasterChannelOptions ChannelOptions(const SchedulerClientOptions& options) {
  MasterChannelOptions channel;
  channel.masters = options.masters;
  channel.path = options.path;
  channel.request_timeout = options.request_timeout;
  return channel;
}

}  // namespace

SchedulerClient::SchedulerClient(SchedulerClientOptions options)
    : options_(std::move(options)), channel_(ChannelOptions(options_)) {}

SchedulerClient::~SchedulerClient() {
  channel_.Cancel();  // an auto-acknowledgement in progress gives up
  std::lock_guard<std::mutex> lock(subscribe_mu_);
  StopReader();
}

void SchedulerClient::StopReader() {
  if (reader_ != nullptr) {
    reader_->Stop();
    reader_.reset();
  }
}

absl::StatusOr<v1::FrameworkID> SchedulerClient::Subscribe(
    const v1::FrameworkInfo& framework_info,
    const std::vector<std::string>& suppressed_roles) {
  std::lock_guard<std::mutex> subscribe_lock(subscribe_mu_);
  StopReader();
  const absl::Time deadline = absl::Now() + options_.subscribe_timeout;

  Call call;
  call.set_type(Call::SUBSCRIBE);
  *call.mutable_subscribe()->mutable_framework_info() = framework_info;
  for (const std::string& role : suppressed_roles) {
    call.mutable_subscribe()->add_suppressed_roles(role);
  }
  if (framework_info.has_id())
    *call.mutable_framework_id() = framework_info.id();
  absl::StatusOr<std::string> body = ToJson(call);
  if (!body.ok()) return body.status();

  absl::StatusOr<std::unique_ptr<http::ClientStream>> stream =
      channel_.OpenStream({{"Content-Type", kJson}, {"Accept", kJson}}, *body,
                          deadline);
  {
    std::lock_guard<std::mutex> lock(mu_);
    framework_info_ = framework_info;
    suppressed_roles_ = suppressed_roles;
  }
  if (!stream.ok()) return stream.status();

  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation = ++generation_;
    subscribed_ = false;
    end_.reset();
    first_error_.clear();
    stream_id_ = (*stream)->headers().Get(kStreamIdHeader);
  }
  reader_ = std::make_unique<RecordStreamReader>(
      *std::move(stream),
      [this, generation](std::string record) { OnRecord(generation, record); },
      [this, generation](absl::Status end) { OnEnd(generation, end); });

  std::unique_lock<std::mutex> lock(mu_);
  while (!subscribed_ && !end_.has_value() && absl::Now() < deadline) {
    WaitUntil(cv_, lock, deadline);
  }
  if (subscribed_) return framework_id_;
  if (end_.has_value()) {
    return absl::UnavailableError(absl::StrCat(
        "the event stream ended before SUBSCRIBED: ", end_->ToString(),
        first_error_.empty() ? "" : absl::StrCat("; ERROR: ", first_error_)));
  }
  lock.unlock();
  StopReader();
  return absl::DeadlineExceededError(
      "no SUBSCRIBED event within subscribe_timeout");
}

absl::StatusOr<v1::FrameworkID> SchedulerClient::Resubscribe() {
  v1::FrameworkInfo framework_info;
  std::vector<std::string> suppressed_roles;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!framework_info_.has_value() || framework_id_.value().empty()) {
      return absl::FailedPreconditionError(
          "Resubscribe() before a successful Subscribe()");
    }
    framework_info = *framework_info_;
    *framework_info.mutable_id() = framework_id_;
    suppressed_roles = suppressed_roles_;
  }
  return Subscribe(framework_info, suppressed_roles);
}

void SchedulerClient::OnRecord(uint64_t generation, const std::string& record) {
  Event event;
  absl::Status parsed =
      FromJson(record, &event, /*ignore_unknown_fields=*/true);
  std::optional<v1::TaskStatus> to_acknowledge;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (generation != generation_) return;
    if (!parsed.ok()) {
      ++malformed_records_;
      return;
    }
    if (event.type() == Event::SUBSCRIBED) {
      subscribed_ = true;
      framework_id_ = event.subscribed().framework_id();
      heartbeat_interval_seconds_ =
          event.subscribed().heartbeat_interval_seconds();
      master_info_ = event.subscribed().master_info();
    } else if (event.type() == Event::ERROR && !subscribed_) {
      first_error_ = event.error().message();
    }
    if (options_.auto_acknowledge && event.type() == Event::UPDATE &&
        !event.update().status().uuid().empty()) {
      to_acknowledge = event.update().status();
    }
  }
  // Acknowledged before it is queued, so a test that sees the UPDATE can
  // count on its acknowledgement having been answered.
  if (to_acknowledge.has_value()) AutoAcknowledge(*to_acknowledge);
  std::lock_guard<std::mutex> lock(mu_);
  if (generation != generation_) return;
  Enqueue(std::move(event));
  cv_.notify_all();
}

void SchedulerClient::OnEnd(uint64_t generation, absl::Status end) {
  std::lock_guard<std::mutex> lock(mu_);
  if (generation != generation_) return;
  end_ = std::move(end);
  cv_.notify_all();
}

void SchedulerClient::AutoAcknowledge(const v1::TaskStatus& status) {
  Call call;
  call.set_type(Call::ACKNOWLEDGE);
  Call::Acknowledge* ack = call.mutable_acknowledge();
  *ack->mutable_agent_id() = status.agent_id();
  *ack->mutable_task_id() = status.task_id();
  ack->set_uuid(status.uuid());
  // Short and without 503 retries: the reader must not hang on a dead
  // leader (its stream is about to end anyway).
  absl::Status sent =
      Post(std::move(call), std::nullopt,
           absl::Now() + options_.request_timeout, /*retry_unavailable=*/false);
  std::lock_guard<std::mutex> lock(mu_);
  ++(sent.ok() ? auto_acknowledged_ : auto_acknowledge_failures_);
}

void SchedulerClient::Enqueue(Event event) {
  if (options_.max_queued_events == 0) {
    ++dropped_events_;
    return;
  }
  while (events_.size() >= options_.max_queued_events) {
    events_.pop_front();
    ++dropped_events_;
  }
  events_.push_back(std::move(event));
}

std::string SchedulerClient::QueuedTypes() const {
  std::vector<std::string> types;
  for (const Event& event : events_) {
    types.push_back(Event::Type_Name(event.type()));
  }
  return types.empty() ? "none" : absl::StrJoin(types, ",");
}

bool SchedulerClient::subscribed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return subscribed_ && !end_.has_value();
}

std::optional<absl::Status> SchedulerClient::stream_end() const {
  std::lock_guard<std::mutex> lock(mu_);
  return end_;
}

absl::Status SchedulerClient::WaitForStreamEnd(absl::Time deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  while (!end_.has_value()) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError("the event stream is still open");
    }
    WaitUntil(cv_, lock, deadline);
  }
  return absl::OkStatus();
}

v1::FrameworkID SchedulerClient::framework_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return framework_id_;
}

std::string SchedulerClient::stream_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stream_id_;
}

double SchedulerClient::heartbeat_interval_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return heartbeat_interval_seconds_;
}

v1::MasterInfo SchedulerClient::master_info() const {
  std::lock_guard<std::mutex> lock(mu_);
  return master_info_;
}

absl::StatusOr<SchedulerClient::Event> SchedulerClient::WaitForEvent(
    const std::function<bool(const Event&)>& predicate, absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    auto it = std::find_if(events_.begin(), events_.end(), predicate);
    if (it != events_.end()) {
      Event event = std::move(*it);
      events_.erase(it);
      return event;
    }
    if (generation_ == 0) {
      return absl::FailedPreconditionError("not subscribed");
    }
    if (end_.has_value()) {
      return absl::UnavailableError(absl::StrCat(
          "the event stream ended (", end_->ToString(),
          ") and no queued event matches; queued: ", QueuedTypes()));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "no matching event before the deadline; queued: ", QueuedTypes()));
    }
    WaitUntil(cv_, lock, deadline);
  }
}

absl::StatusOr<SchedulerClient::Event> SchedulerClient::NextEvent(
    Event::Type type, absl::Time deadline) {
  absl::StatusOr<Event> event = WaitForEvent(
      [type](const Event& e) { return e.type() == type; }, deadline);
  if (!event.ok()) {
    return absl::Status(event.status().code(),
                        absl::StrCat("waiting for ", Event::Type_Name(type),
                                     ": ", event.status().message()));
  }
  return event;
}

std::vector<SchedulerClient::Event> SchedulerClient::TakeEvents() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Event> events(std::make_move_iterator(events_.begin()),
                            std::make_move_iterator(events_.end()));
  events_.clear();
  return events;
}

uint64_t SchedulerClient::dropped_events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_events_;
}

uint64_t SchedulerClient::malformed_records() const {
  std::lock_guard<std::mutex> lock(mu_);
  return malformed_records_;
}

uint64_t SchedulerClient::auto_acknowledged() const {
  std::lock_guard<std::mutex> lock(mu_);
  return auto_acknowledged_;
}

uint64_t SchedulerClient::auto_acknowledge_failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return auto_acknowledge_failures_;
}

// ---- Calls ------------------------------------------------------------------

absl::Status SchedulerClient::Send(
    Call call, const std::optional<std::string>& stream_id) {
  return Post(std::move(call), stream_id, absl::Now() + options_.call_timeout,
              options_.retry_unavailable);
}

absl::Status SchedulerClient::Post(Call call,
                                   const std::optional<std::string>& stream_id,
                                   absl::Time deadline,
                                   bool retry_unavailable) {
  std::string header;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!call.has_framework_id() && !framework_id_.value().empty()) {
      *call.mutable_framework_id() = framework_id_;
    }
    header = stream_id.value_or(stream_id_);
  }
  absl::StatusOr<std::string> body = ToJson(call);
  if (!body.ok()) return body.status();
  http::Headers headers = {{"Content-Type", kJson}};
  if (!header.empty()) headers.Set(kStreamIdHeader, header);
  absl::StatusOr<http::Response> response =
      channel_.Post(headers, *body, deadline, retry_unavailable);
  if (!response.ok()) return response.status();
  return StatusFromHttp(response->status, response->body);
}

absl::Status SchedulerClient::Accept(
    const std::vector<v1::OfferID>& offer_ids,
    const std::vector<v1::Offer::Operation>& operations,
    const std::optional<v1::Filters>& filters) {
  Call call;
  call.set_type(Call::ACCEPT);
  Call::Accept* accept = call.mutable_accept();
  for (const v1::OfferID& id : offer_ids) *accept->add_offer_ids() = id;
  for (const v1::Offer::Operation& op : operations) {
    *accept->add_operations() = op;
  }
  if (filters.has_value()) *accept->mutable_filters() = *filters;
  return Send(std::move(call));
}

absl::Status SchedulerClient::Launch(
    const v1::Offer& offer, const std::vector<v1::TaskInfo>& tasks,
    const std::optional<v1::Filters>& filters) {
  v1::Offer::Operation launch;
  launch.set_type(v1::Offer::Operation::LAUNCH);
  for (const v1::TaskInfo& task : tasks) {
    v1::TaskInfo* added = launch.mutable_launch()->add_task_infos();
    *added = task;
    if (!added->has_agent_id()) *added->mutable_agent_id() = offer.agent_id();
  }
  return Accept({offer.id()}, {launch}, filters);
}

absl::Status SchedulerClient::Decline(
    const std::vector<v1::OfferID>& offer_ids,
    const std::optional<v1::Filters>& filters) {
  Call call;
  call.set_type(Call::DECLINE);
  for (const v1::OfferID& id : offer_ids) {
    *call.mutable_decline()->add_offer_ids() = id;
  }
  if (filters.has_value())
    *call.mutable_decline()->mutable_filters() = *filters;
  return Send(std::move(call));
}

absl::Status SchedulerClient::Kill(const v1::TaskID& task_id,
                                   const std::optional<v1::AgentID>& agent_id) {
  Call call;
  call.set_type(Call::KILL);
  *call.mutable_kill()->mutable_task_id() = task_id;
  if (agent_id.has_value())
    *call.mutable_kill()->mutable_agent_id() = *agent_id;
  return Send(std::move(call));
}

absl::Status SchedulerClient::Acknowledge(const v1::TaskStatus& status) {
  if (status.uuid().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the status of task '", status.task_id().value(),
                     "' has no uuid: there is nothing to acknowledge"));
  }
  Call call;
  call.set_type(Call::ACKNOWLEDGE);
  Call::Acknowledge* ack = call.mutable_acknowledge();
  *ack->mutable_agent_id() = status.agent_id();
  *ack->mutable_task_id() = status.task_id();
  ack->set_uuid(status.uuid());
  return Send(std::move(call));
}

absl::Status SchedulerClient::Reconcile(
    const std::vector<Call::Reconcile::Task>& tasks) {
  Call call;
  call.set_type(Call::RECONCILE);
  Call::Reconcile* reconcile = call.mutable_reconcile();
  for (const Call::Reconcile::Task& task : tasks) {
    *reconcile->add_tasks() = task;
  }
  return Send(std::move(call));
}

absl::Status SchedulerClient::Teardown() {
  Call call;
  call.set_type(Call::TEARDOWN);
  return Send(std::move(call));
}

absl::Status SchedulerClient::Revive(const std::vector<std::string>& roles) {
  Call call;
  call.set_type(Call::REVIVE);
  for (const std::string& role : roles) call.mutable_revive()->add_roles(role);
  return Send(std::move(call));
}

absl::Status SchedulerClient::Suppress(const std::vector<std::string>& roles) {
  Call call;
  call.set_type(Call::SUPPRESS);
  for (const std::string& role : roles) {
    call.mutable_suppress()->add_roles(role);
  }
  return Send(std::move(call));
}

absl::Status SchedulerClient::LaunchAndWaitRunning(const v1::Offer& offer,
                                                   const v1::TaskInfo& task,
                                                   absl::Time deadline) {
  v1::Filters refuse;
  refuse.set_refuse_seconds(3600);
  absl::Status launched = Launch(offer, {task}, refuse);
  if (!launched.ok()) return launched;
  const std::string& id = task.task_id().value();
  return WaitForEvent(
             [&id](const Event& e) {
               return e.type() == Event::UPDATE &&
                      e.update().status().task_id().value() == id &&
                      e.update().status().state() == v1::TASK_RUNNING;
             },
             deadline)
      .status();
}

}  // namespace cairn::tests
