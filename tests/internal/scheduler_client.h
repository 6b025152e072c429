// SchedulerClient: a Mesos v1 scheduler API client (POST /api/v1/scheduler,
// proto/cairn/v1/scheduler.proto) for multi-process tests against real
// cairn-master processes, speaking JSON.
//
//   SchedulerClient scheduler({.masters = {cluster->Address(0), ...}});
//   absl::StatusOr<v1::FrameworkID> id = scheduler.Subscribe(framework_info);
//   absl::StatusOr<Event> offers =
//       scheduler.NextEvent(Event::OFFERS, absl::Now() + absl::Seconds(10));
//   ASSERT_TRUE(scheduler.Launch(offers->offers().offers(0), {task}).ok());
//   absl::StatusOr<Event> update = scheduler.NextEvent(Event::UPDATE, ...);
//
// Subscribe() finds the leader among `masters` (MasterChannel: follows 307,
// retries 503 and connection errors until its deadline), keeps the stream's
// `Mesos-Stream-Id` and reads the RecordIO event stream on a background
// thread into a queue. Every event, SUBSCRIBED and HEARTBEAT included, is
// queued in arrival order; WaitForEvent()/NextEvent() take the first queued
// event that matches and leave the others queued (at most
// `max_queued_events`; beyond that the oldest are dropped and counted).
//
// Calls (Accept, Decline, Kill, ...) each POST one JSON Call with the
// stream's `Mesos-Stream-Id` header and the framework id, to the leader,
// and return StatusFromHttp of the answer (master_channel.h): OK for 202,
// kInvalidArgument for 400, kPermissionDenied for 403 (the stream id is not
// the framework's current one), kFailedPrecondition for 409, kUnavailable
// when no leader answered in time, ...; HttpStatusOf() gives the HTTP code.
//
// Failover: when the stream ends (the leader stepped down or died, or the
// framework was removed) the client does not reconnect by itself: waits for
// events return kUnavailable once nothing matching is queued, stream_end()
// says why, and the caller decides when to Resubscribe() (same FrameworkInfo
// with the framework id it got). Events of the ended stream stay queued
// after Resubscribe(), ahead of the new stream's; its OFFERS are void (a
// framework's offers end with its failover), so a caller that takes offers
// drops them first (WaitForEvent with a past deadline, or TakeEvents()).
//
// With `auto_acknowledge`, every UPDATE whose status has a uuid is
// acknowledged from the reader thread as it arrives (before it is queued);
// otherwise the caller acknowledges with Acknowledge().
//
// Thread safety: every public method is thread-safe. Subscribe/Resubscribe
// calls are serialized. Predicates passed to WaitForEvent run under the
// client's lock and must not call the client.

#ifndef CAIRN_TESTS_INTERNAL_SCHEDULER_CLIENT_H_
#define CAIRN_TESTS_INTERNAL_SCHEDULER_CLIENT_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "common/master_channel.h"
#include "common/record_stream_reader.h"

namespace cairn::tests {

// The channel to the leader lives in common/ (the agent and cairnctl use it).
using http::HostPort;
using http::HttpStatusOf;
using http::MasterChannel;
using http::MasterChannelOptions;
using http::ParseHostPort;
using http::ParseLocation;
using http::RecordStreamReader;
using http::StatusFromHttp;

struct SchedulerClientOptions {
  // "host:port" of every master (HTTP).
  std::vector<std::string> masters;
  // Acknowledge UPDATEs with a uuid as they arrive.
  bool auto_acknowledge = false;
  // Bound on one HTTP exchange with one master.
  absl::Duration request_timeout = absl::Seconds(5);
  // Bound on Subscribe()/Resubscribe(): finding the leader, its 200 and the
  // SUBSCRIBED event.
  absl::Duration subscribe_timeout = absl::Seconds(15);
  // Bound on every other call, retries included.
  absl::Duration call_timeout = absl::Seconds(10);
  // Whether calls other than SUBSCRIBE retry 503 (SUBSCRIBE always does).
  bool retry_unavailable = true;
  size_t max_queued_events = 10000;
  // The path of the API.
  std::string path = "/api/v1/scheduler";
};

class SchedulerClient {
 public:
  using Event = v1::scheduler::Event;
  using Call = v1::scheduler::Call;

  explicit SchedulerClient(SchedulerClientOptions options);
  SchedulerClient(const SchedulerClient&) = delete;
  SchedulerClient& operator=(const SchedulerClient&) = delete;
  // Closes the stream (the master sees the framework disconnect) and joins
  // the reader thread. Sends nothing (no TEARDOWN). REQUIRES: no other
  // thread is in a call (calls in progress would return kCancelled).
  ~SchedulerClient();

  // ---- Subscription -----------------------------------------------------

  // Closes the current stream, if any, SUBSCRIBEs with `framework_info`
  // and waits for SUBSCRIBED; returns the framework id it names. A
  // `framework_info.id` is kept (a failover of an existing framework).
  // Errors: the leader's 4xx as StatusFromHttp (kInvalidArgument for 400,
  // ...); kUnavailable when no leader answered or the stream ended before
  // SUBSCRIBED; kDeadlineExceeded when SUBSCRIBED did not arrive within
  // subscribe_timeout; kInternal when it did not parse.
  absl::StatusOr<v1::FrameworkID> Subscribe(
      const v1::FrameworkInfo& framework_info,
      const std::vector<std::string>& suppressed_roles = {});

  // Subscribe() again with the last FrameworkInfo and the framework id
  // obtained (e.g. after a leader change). kFailedPrecondition if Subscribe()
  // never succeeded; otherwise as Subscribe().
  absl::StatusOr<v1::FrameworkID> Resubscribe();

  // True while the current stream is open after its SUBSCRIBED.
  bool subscribed() const;

  // Why the current stream ended (see record_stream_reader.h: OK when the
  // master ended it), or nullopt while it is open or before Subscribe().
  std::optional<absl::Status> stream_end() const;

  // Waits until the current stream ends. OK then (see stream_end()), or
  // kDeadlineExceeded.
  absl::Status WaitForStreamEnd(absl::Time deadline) const;

  // From the last SUBSCRIBED / SUBSCRIBE answer ("" / empty before).
  v1::FrameworkID framework_id() const;
  std::string stream_id() const;
  double heartbeat_interval_seconds() const;
  v1::MasterInfo master_info() const;

  // ---- Events -----------------------------------------------------------

  // Removes and returns the first queued event for which `predicate` is
  // true, waiting for one until `deadline`. Errors: kDeadlineExceeded (the
  // message lists the queued event types); kUnavailable when the stream has
  // ended and no queued event matches; kFailedPrecondition before
  // Subscribe().
  absl::StatusOr<Event> WaitForEvent(
      const std::function<bool(const Event&)>& predicate, absl::Time deadline);

  // WaitForEvent for the first event of `type`.
  absl::StatusOr<Event> NextEvent(Event::Type type, absl::Time deadline);

  // Removes and returns every queued event, oldest first.
  std::vector<Event> TakeEvents();

  // Events dropped because the queue was full; records that did not parse.
  uint64_t dropped_events() const;
  uint64_t malformed_records() const;
  // Acknowledgements sent by auto_acknowledge that were answered 202 / not.
  uint64_t auto_acknowledged() const;
  uint64_t auto_acknowledge_failures() const;

  // ---- Calls ------------------------------------------------------------
  // Each returns StatusFromHttp of the leader's answer (see the top).

  // POSTs `call`, filling in `framework_id` when unset, with the stream id
  // header (`stream_id` overrides the current one; "" sends none).
  absl::Status Send(Call call,
                    const std::optional<std::string>& stream_id = std::nullopt);

  absl::Status Accept(const std::vector<v1::OfferID>& offer_ids,
                      const std::vector<v1::Offer::Operation>& operations,
                      const std::optional<v1::Filters>& filters = std::nullopt);
  // ACCEPTs `offer` with one LAUNCH of `tasks`; tasks without `agent_id` get
  // the offer's.
  absl::Status Launch(const v1::Offer& offer,
                      const std::vector<v1::TaskInfo>& tasks,
                      const std::optional<v1::Filters>& filters = std::nullopt);
  absl::Status Decline(
      const std::vector<v1::OfferID>& offer_ids,
      const std::optional<v1::Filters>& filters = std::nullopt);
  absl::Status Kill(const v1::TaskID& task_id,
                    const std::optional<v1::AgentID>& agent_id = std::nullopt);
  // ACKNOWLEDGEs `status` (agent_id, task_id, uuid). kInvalidArgument,
  // without sending, when it has no uuid (nothing to acknowledge).
  absl::Status Acknowledge(const v1::TaskStatus& status);
  // Explicit reconciliation of `tasks`, or implicit (all tasks) when empty.
  absl::Status Reconcile(const std::vector<Call::Reconcile::Task>& tasks = {});
  absl::Status Teardown();
  absl::Status Revive(const std::vector<std::string>& roles = {});
  absl::Status Suppress(const std::vector<std::string>& roles = {});

  // Launches `task` on `offer` (the rest of the offer declined for an hour)
  // and waits until its TASK_RUNNING arrives (removed from the queue with
  // every event before it that WaitForEvent skips). Errors: the ACCEPT's,
  // or WaitForEvent's.
  absl::Status LaunchAndWaitRunning(const v1::Offer& offer,
                                    const v1::TaskInfo& task,
                                    absl::Time deadline);

 private:
  // Stops and joins the reader, if any. REQUIRES: subscribe_mu_ held, mu_
  // not held, not on the reader thread.
  void StopReader();
  // Reader thread callbacks for stream `generation`.
  void OnRecord(uint64_t generation, const std::string& record);
  void OnEnd(uint64_t generation, absl::Status end);
  void AutoAcknowledge(const v1::TaskStatus& status);
  // Send() with a deadline and retry policy.
  absl::Status Post(Call call, const std::optional<std::string>& stream_id,
                    absl::Time deadline, bool retry_unavailable);
  void Enqueue(Event event);        // REQUIRES: mu_ held
  std::string QueuedTypes() const;  // REQUIRES: mu_ held

  const SchedulerClientOptions options_;
  MasterChannel channel_;

  // Serializes Subscribe/Resubscribe; guards reader_.
  std::mutex subscribe_mu_;
  std::unique_ptr<RecordStreamReader> reader_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;  // any change below
  // Guarded by mu_:
  // Counts subscriptions that got a 200; callbacks of older streams are
  // ignored.
  uint64_t generation_ = 0;
  bool subscribed_ = false;          // SUBSCRIBED seen on this generation
  std::optional<absl::Status> end_;  // this generation's stream ended
  std::string stream_id_;
  std::optional<v1::FrameworkInfo> framework_info_;  // last subscribed with
  std::vector<std::string> suppressed_roles_;
  v1::FrameworkID framework_id_;
  double heartbeat_interval_seconds_ = 0;
  v1::MasterInfo master_info_;
  std::string first_error_;  // an ERROR event before SUBSCRIBED
  std::deque<Event> events_;
  uint64_t dropped_events_ = 0;
  uint64_t malformed_records_ = 0;
  uint64_t auto_acknowledged_ = 0;
  uint64_t auto_acknowledge_failures_ = 0;
};

}  // namespace cairn::tests

#endif  // CAIRN_TESTS_INTERNAL_SCHEDULER_CLIENT_H_
