// The agent's status update manager: per task, an ordered queue of status
// updates, each checkpointed before it may be sent and forgotten only after
// the master acknowledged it (which it does only once the update is committed
// to the replicated log). See docs/agent-protocol.md section 5.
//
// Delivery. Per task (framework id + task id) one update is in flight: the
// head of its queue. Due() hands out heads that were never sent or whose
// retry timer expired; the timer starts at `initial_retry` and doubles on
// every resend up to `max_retry`. Acknowledge() of the head's uuid pops it and
// makes the next update due at once. After a (re)subscription ResetRetries()
// makes every head due again. Delivery is at least once; the master drops
// duplicates by uuid.
//
// Durability. Each task's stream is the append-only file
// `<meta_dir>/updates/<fid>/<tid>.updates` (ids escaped by EscapeId) of
// framed records (StatusUpdateRecord: UPDATE with the update, ACK with the
// uuid). Each record is
//
//   4-byte little-endian payload length | 4-byte little-endian CRC-32C of
//   (the length bytes + the payload) | payload
//
// and is fdatasync'ed before the call that wrote it returns, so an update
// Update() accepted and an acknowledgement Acknowledge() accepted survive a
// crash. Recover() replays every file. Since each append is synced before
// the next, a crash can damage only the last record: a record that runs past
// the end of the file, or whose bytes up to the end of the file are all zero
// or fail their checksum exactly at the end, is a torn write (of an update
// never sent, or an acknowledgement the master will repeat) and is truncated
// away with a warning. Any other damage (a bad record followed by more
// bytes, records that contradict each other) is an error naming the file
// with `strict`; else the stream is skipped with a warning and its file
// renamed to `<tid>.updates.corrupt`.
//
// A stream ends when it is empty and its last update was terminal: its file
// is removed. An update for a task whose stream already holds a terminal
// update is refused (kFailedPrecondition).
//
// Thread safety: thread-compatible; the agent calls it under its own lock.

#ifndef CAIRN_AGENT_STATUS_UPDATE_MANAGER_H_
#define CAIRN_AGENT_STATUS_UPDATE_MANAGER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cairn/v1/agent.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "common/task_state.h"

namespace cairn {
namespace agent {

struct StatusUpdateManagerOptions {
  // The agent's meta directory (MetaStore::meta_dir()).
  std::string meta_dir;
  // Damage before a stream's last record fails Recover() (else the stream is
  // skipped with a warning).
  bool strict = false;
  absl::Duration initial_retry = absl::Seconds(10);
  absl::Duration max_retry = absl::Minutes(10);
};

// True for the states after which a task never changes.
using ::cairn::IsTerminalState;  // common/task_state.h

class StatusUpdateManager {
 public:
  explicit StatusUpdateManager(StatusUpdateManagerOptions options);
  ~StatusUpdateManager();

  StatusUpdateManager(const StatusUpdateManager&) = delete;
  StatusUpdateManager& operator=(const StatusUpdateManager&) = delete;

  // Reads every stream back (see Durability above); every head is due. Returns
  // the warnings (each also logged). kDataLoss naming the file for damage
  // with `strict`; the errno's status for I/O errors.
  // REQUIRES: called once, before any other method.
  absl::StatusOr<std::vector<std::string>> Recover();

  // Checkpoints `status` (with `framework_id`) then enqueues it behind the
  // task's earlier updates. Returns true if added; false (a no-op) if its
  // uuid is already in the queue or was acknowledged. kInvalidArgument naming
  // the field for a missing framework_id / task_id / state or a uuid that is
  // not 16 bytes; kFailedPrecondition if the task's stream already holds a
  // terminal update; the errno's status if the checkpoint failed (then
  // nothing changed).
  absl::StatusOr<bool> Update(const v1::FrameworkID& framework_id,
                              const v1::TaskStatus& status);

  // The master's ACKNOWLEDGE. Returns true if `uuid` is the head of the
  // task's queue: the acknowledgement is checkpointed and the head popped
  // (the next update is due at once; an empty stream whose last update was
  // terminal is closed and its file removed). Returns false (logged, no-op)
  // for an unknown task or any other uuid. The errno's status if the
  // checkpoint failed (then nothing changed).
  absl::StatusOr<bool> Acknowledge(const v1::FrameworkID& framework_id,
                                   const v1::TaskID& task_id,
                                   absl::string_view uuid);

  // The updates to send now: each head never sent (since the last
  // ResetRetries) or whose retry timer expired at `now`. Marks them sent at
  // `now`: a first send waits `initial_retry` for its acknowledgement, each
  // resend twice as long as the previous wait, at most `max_retry`.
  std::vector<v1::AgentCall::Update> Due(absl::Time now);

  // After (re)subscription to a master: every head is due at once and its
  // retry timer starts again from `initial_retry`.
  void ResetRetries();

  // When Due() next has something: absl::InfinitePast() if a head is due
  // regardless of time (not yet sent), the earliest retry time otherwise,
  // absl::InfiniteFuture() if no update is pending.
  absl::Time NextDue() const;

  // The head of the task's queue (the update in flight), if any.
  std::optional<v1::TaskStatus> Head(const v1::FrameworkID& framework_id,
                                     const v1::TaskID& task_id) const;

  // The task's latest status (the last enqueued, acknowledged or not), if it
  // has a stream.
  std::optional<v1::TaskStatus> Latest(const v1::FrameworkID& framework_id,
                                       const v1::TaskID& task_id) const;

  // The task's unacknowledged updates, head first (empty if none).
  std::vector<v1::TaskStatus> Pending(const v1::FrameworkID& framework_id,
                                      const v1::TaskID& task_id) const;

  // Whether the task has an unacknowledged update.
  bool HasPending(const v1::FrameworkID& framework_id,
                  const v1::TaskID& task_id) const;

  // Tasks with a stream, ordered by (framework id, task id).
  std::vector<std::pair<v1::FrameworkID, v1::TaskID>> Streams() const;

  // The number of unacknowledged updates of all tasks.
  size_t PendingCount() const;

  // Forgets a framework's streams and deletes their files (SHUTDOWN_FRAMEWORK
  // once its updates were acknowledged, or --recover=cleanup). OK if it has
  // none.
  absl::Status RemoveFramework(const v1::FrameworkID& framework_id);

 private:
  struct Stream;
  using Key = std::pair<std::string, std::string>;  // framework id, task id

  // Opens (creating it and its directory durably) the stream file for `key`.
  absl::StatusOr<std::unique_ptr<Stream>> OpenStream(const Key& key);
  // Replays one file into `stream`; kDataLoss for damage to report.
  absl::Status Replay(const std::string& path, Stream* stream,
                      std::vector<std::string>* warnings);
  // Appends one record durably; on failure the file is cut back.
  absl::Status Append(Stream* stream, const std::string& record_bytes);
  // Closes and deletes the stream's file.
  absl::Status CloseAndRemove(const Key& key);
  std::string FrameworkDir(const std::string& framework_id) const;

  const StatusUpdateManagerOptions options_;
  std::map<Key, std::unique_ptr<Stream>> streams_;
};

}  // namespace agent
}  // namespace cairn

#endif  // CAIRN_AGENT_STATUS_UPDATE_MANAGER_H_
