// SchedulerSession: cairnctl's own Mesos v1 scheduler API client (POST
// /api/v1/scheduler), single-threaded, for `run` and `kill`: the caller's
// thread subscribes, reads events and sends calls in turn.
//
//   SchedulerSession session(masters, absl::Seconds(5));
//   RETURN_IF_ERROR(session.Subscribe(info, deadline));   // waits SUBSCRIBED
//   absl::StatusOr<std::optional<Event>> e = session.Next(absl::Seconds(1));
//   session.Send(call, deadline);
//
// Subscribe() finds the leader through http::MasterChannel and keeps the
// stream's Mesos-Stream-Id; after a leader change (Next() says
// kUnavailable: the stream ended) the caller subscribes again with the
// framework id it got (FrameworkInfo.id), as a Mesos scheduler fails over.
// HEARTBEATs are consumed by Next(); every other event is returned in
// stream order.
//
// Thread safety: one thread at a time.

#ifndef CAIRN_CLI_SCHEDULER_SESSION_H_
#define CAIRN_CLI_SCHEDULER_SESSION_H_

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "common/http_client.h"
#include "common/master_channel.h"
#include "common/recordio.h"

namespace cairn::cli {

class SchedulerSession {
 public:
  using Event = v1::scheduler::Event;
  using Call = v1::scheduler::Call;

  SchedulerSession(const std::vector<std::string>& masters,
                   absl::Duration request_timeout, std::string principal);

  // Closes any current stream, SUBSCRIBEs with `info` (with `info.id`: a
  // failover of that framework) and waits for SUBSCRIBED. Errors: the
  // leader's answer (kPermissionDenied for 403: the framework was removed,
  // kInvalidArgument for 400, ...); kUnavailable when no leader answered
  // or the stream ended before SUBSCRIBED; kDeadlineExceeded.
  absl::Status Subscribe(const v1::FrameworkInfo& info, absl::Time deadline);

  // The next event other than HEARTBEAT, waiting at most `wait`: nullopt
  // when none came. kUnavailable once the stream ended (subscribe again);
  // kFailedPrecondition before Subscribe(); kInternal for a bad stream.
  absl::StatusOr<std::optional<Event>> Next(absl::Duration wait);

  // POSTs `call` (framework_id filled in) with the stream id to the leader.
  // OK for 2xx; the answer's error otherwise (ErrorFromAnswer), or
  // kUnavailable when no leader answered before `deadline`.
  absl::Status Send(Call call, absl::Time deadline);

  // ACKNOWLEDGE of `status` (no-op without a uuid).
  absl::Status Acknowledge(const v1::TaskStatus& status, absl::Time deadline);

  // Closes the stream (the master sees the scheduler disconnect).
  void Close();

  const v1::FrameworkID& framework_id() const { return framework_id_; }
  // The leader that answered last, if any.
  std::optional<http::HostPort> leader() const { return channel_.leader_hint(); }

 private:
  http::MasterChannel channel_;
  const std::string principal_;
  std::unique_ptr<http::ClientStream> stream_;
  std::unique_ptr<recordio::Decoder> decoder_;
  std::deque<std::string> records_;
  std::string stream_id_;
  v1::FrameworkID framework_id_;
  bool ended_ = true;
};

}  // namespace cairn::cli

#endif  // CAIRN_CLI_SCHEDULER_SESSION_H_
