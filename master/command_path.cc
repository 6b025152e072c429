#include "master/command_path.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace cairn::master {

CommandPath::CommandPath(EventLog* log, std::function<absl::Time()> clock,
                         OnLogFailure on_log_failure)
    : log_(log),
      clock_(std::move(clock)),
      on_log_failure_(std::move(on_log_failure)) {}

void CommandPath::BecomeLeader(const MasterState& committed,
                               absl::Time time_floor) {
  StepDown(absl::UnavailableError("a new leadership term began"));
  view_ = committed;
  failed_ = false;
  last_time_ = std::max(last_time_, time_floor);
  applied_through_ = committed.last_applied().position();
}

void CommandPath::StepDown(const absl::Status& why) {
  ++term_;
  view_.reset();
  failed_ = false;
  std::map<uint64_t, Pending> pending;
  pending.swap(pending_);
  for (auto& [id, request] : pending) request.reply(why);
}

size_t CommandPath::in_flight_events() const {
  size_t events = 0;
  for (const auto& [id, request] : pending_) events += request.events;
  return events;
}

absl::Time CommandPath::NextTime() {
  last_time_ = std::max(last_time_, clock_());
  return last_time_;
}

absl::Status CommandPath::Submit(const CommandContext& context,
                                 const Decide& decide, Reply reply) {
  if (!leading()) {
    absl::Status status = absl::UnavailableError("not the leading master");
    reply(status);
    return status;
  }
  absl::StatusOr<std::vector<v1::Event>> events = decide(*view_);
  if (!events.ok()) {
    reply(events.status());
    return events.status();
  }
  if (events->empty()) {
    // A barrier: the decision read the view, which may include events in
    // flight; answer once they are applied (at once when none are).
    if (pending_.empty()) {
      reply(absl::OkStatus());
    } else {
      Pending& barrier = pending_[next_request_++];
      barrier.reply = std::move(reply);
    }
    return absl::OkStatus();
  }
  const v1::TimeInfo time = FromTime(NextTime());
  for (v1::Event& event : *events) {
    event.clear_position();
    event.clear_index();
    *event.mutable_time() = time;
    event.set_principal(context.principal);
    if (!context.request_id.empty()) event.set_request_id(context.request_id);
    if (context.cause.has_value()) *event.mutable_cause() = *context.cause;
  }
  // Apply is all-or-nothing per event; a request of several events goes to
  // a copy first so that a rejected one leaves the view untouched.
  absl::Status speculative;
  if (events->size() == 1) {
    speculative = view_->Apply(events->front());
  } else {
    MasterState next = *view_;
    for (const v1::Event& event : *events) {
      speculative = next.Apply(event);
      if (!speculative.ok()) break;
    }
    if (speculative.ok()) view_ = std::move(next);
  }
  if (!speculative.ok()) {
    absl::Status status = absl::InternalError(absl::StrCat(
        "decided event rejected by the view: ", speculative.message()));
    reply(status);
    return status;
  }

  const uint64_t request = next_request_++;
  Pending& pending = pending_[request];
  pending.reply = std::move(reply);
  pending.events = events->size();
  events_proposed_ += events->size();
  const uint64_t term = term_;
  for (const v1::Event& event : *events) {
    std::string entry;
    event.SerializeToString(&entry);
    log_->Append(std::move(entry),
                 [this, term, request](absl::StatusOr<AppendedAt> result) {
                   if (term != term_) return;  // a past term's append
                   OnAppended(request, std::move(result));
                 });
    if (term != term_) break;  // an append failed synchronously
  }
  return absl::OkStatus();
}

void CommandPath::OnAppended(uint64_t request,
                             absl::StatusOr<AppendedAt> result) {
  if (!result.ok()) {
    Fail(result.status());
    return;
  }
  auto it = pending_.find(request);
  if (it == pending_.end()) return;
  Pending& pending = it->second;
  ++pending.appended;
  pending.max_position = std::max(pending.max_position, result->position);
  if (pending.appended == pending.events &&
      pending.max_position <= applied_through_) {
    Reply reply = std::move(pending.reply);
    pending_.erase(it);
    std::vector<Reply> barriers = TakeReadyBarriers();
    reply(absl::OkStatus());
    for (Reply& barrier : barriers) barrier(absl::OkStatus());
  }
}

std::vector<CommandPath::Reply> CommandPath::TakeReadyBarriers() {
  std::vector<Reply> ready;
  while (!pending_.empty() && pending_.begin()->second.events == 0) {
    ready.push_back(std::move(pending_.begin()->second.reply));
    pending_.erase(pending_.begin());
  }
  return ready;
}

void CommandPath::OnApplied(uint64_t position, const MasterState& committed) {
  applied_through_ = std::max(applied_through_, position);
  if (!leading()) return;
  std::vector<Reply> done;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.events > 0 && it->second.appended == it->second.events &&
        it->second.max_position <= applied_through_) {
      done.push_back(std::move(it->second.reply));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  // Barriers behind no unfinished request are answered too, in order.
  std::vector<Reply> barriers = TakeReadyBarriers();
  done.insert(done.end(), std::make_move_iterator(barriers.begin()),
              std::make_move_iterator(barriers.end()));
  // Nothing in flight: the view is exactly the committed state.
  if (pending_.empty()) view_ = committed;
  for (Reply& reply : done) reply(absl::OkStatus());
}

void CommandPath::Fail(const absl::Status& why) {
  if (failed_) return;
  LOG(WARNING) << "command path: append failed, stepping down: " << why;
  const absl::Status status = absl::UnavailableError(
      absl::StrCat("the log failed (outcome unknown): ", why.message()));
  StepDown(status);
  failed_ = true;
  if (on_log_failure_) on_log_failure_(status);
}

}  // namespace cairn::master
