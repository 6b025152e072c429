// The agent's checkpoints: what cairn-agent writes to its local disk so that,
// restarted (--recover=reconnect), it knows its id, its frameworks, the
// executors it launched (to reattach to the live ones) and their tasks.
//
// Durability. Every checkpoint file is replaced atomically
// (WriteFileAtomically: write `<path>.tmp`, fsync, rename over `<path>`,
// fsync the directory), so after a crash a file holds either its old or its
// new contents, never a mix. A `.tmp` left by a crash mid-write is ignored
// and removed by Recover. Every file is framed (WriteProtoFile: magic,
// length, CRC-32C), so a truncated or damaged file is detected, never parsed
// as something else.
//
// Layout under `<work_dir>/meta` (ids escaped by EscapeId):
//
//   boot_id.ckpt                          BootIdCheckpoint
//   agent.ckpt                            AgentInfo (with `id` once SUBSCRIBED)
//   frameworks/<fid>/framework.ckpt       FrameworkInfo (`id` set)
//   frameworks/<fid>/executors/<eid>/latest.ckpt
//                                         LatestRunCheckpoint: the latest run
//   frameworks/<fid>/executors/<eid>/runs/<cid>/executor.ckpt
//                                         ExecutorRunCheckpoint
//   .../runs/<cid>/pid.ckpt               ExecutorPidCheckpoint
//   .../runs/<cid>/completed              empty: the run has ended
//   .../runs/<cid>/tasks/<tid>/task.ckpt  TaskCheckpoint
//   updates/<fid>/<tid>.updates           status_update_manager.h
//
// A framework is removed by renaming its directory to
// `frameworks/.<fid>.removing` (atomic) and then deleting it; Recover
// finishes any such deletion a crash interrupted.
//
// Errors: a checkpoint that cannot be written is the errno's status (the
// agent must not act as if it were durable). A file that is truncated,
// damaged or unparsable reads as kDataLoss naming the file.
//
// Thread safety: MetaStore is thread-compatible (the agent calls it under its
// own lock); the free functions are safe from any thread on distinct paths.
//
// Facts on Mesos's agent checkpointing: apache/mesos docs/agent-recovery.md.

#ifndef CAIRN_AGENT_CHECKPOINT_H_
#define CAIRN_AGENT_CHECKPOINT_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cairn/v1/agent_checkpoint.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "google/protobuf/message.h"

namespace cairn {
namespace agent {

// ---- Files ------------------------------------------------------------------

// Creates `path` and any missing parents (like mkdir -p), fsyncing the parent
// of each directory it creates so the new entries survive a crash.
absl::Status MakeDirs(const std::string& path);

// fsyncs the directory `path` (makes renames, creations and deletions of its
// entries durable).
absl::Status FsyncDir(const std::string& path);

// Deletes the directory tree `dir` so that a crash leaves either all of it or
// a `.<name>.removing` sibling that MetaStore::Recover deletes: renames it to
// that name in its parent (atomic), fsyncs the parent, deletes the tree. OK if
// `dir` does not exist.
absl::Status RemoveDirDurably(const std::string& dir);

// Replaces `path` with `data` atomically and durably: creates parent
// directories, writes `<path>.tmp`, fsyncs it, renames it over `path`, fsyncs
// the directory. Returns the errno's status on failure (the old contents, if
// any, are then still in place).
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view data);

// The names in `dir`, sorted; none for an absent directory. kInternal
// naming `dir` on another error.
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir);

// Reads a whole file. kNotFound if it does not exist.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// A framed message: 4-byte magic "CKP1", 4-byte little-endian payload length,
// 4-byte little-endian CRC-32C of the payload, then the serialized message.
std::string FrameProto(const google::protobuf::Message& message);

// Writes `message` framed, with WriteFileAtomically.
absl::Status WriteProtoFile(const std::string& path,
                            const google::protobuf::Message& message);

// Reads a file written by WriteProtoFile into `message`. kNotFound if it does
// not exist; kDataLoss naming `path` if it is truncated, has trailing bytes, a
// bad magic or checksum, or does not parse as `message`'s type.
absl::Status ReadProtoFile(const std::string& path,
                           google::protobuf::Message* message);

// A file name for an id: bytes other than [A-Za-z0-9_.-], and a leading '.',
// become %XX (uppercase hex), so no id can be "", ".", "..", contain '/', or
// collide with another id or with the store's own dot-names. kInvalidArgument
// if `id` is empty or its escaped form exceeds 255 bytes.
absl::StatusOr<std::string> EscapeId(absl::string_view id);

// The inverse of EscapeId. kInvalidArgument for a malformed name.
absl::StatusOr<std::string> UnescapeId(absl::string_view name);

// The host's boot id (/proc/sys/kernel/random/boot_id, trimmed).
absl::StatusOr<std::string> ReadHostBootId();

// ---- MetaStore --------------------------------------------------------------

// One run of an executor, as recovered.
struct RecoveredExecutorRun {
  v1::ContainerID container_id;
  v1::ExecutorInfo executor_info;
  // Set once the executor process was checkpointed (CheckpointExecutorPid).
  std::optional<pid_t> pid;
  uint64_t start_time = 0;  // as given to CheckpointExecutorPid
  // MarkExecutorRunCompleted was called: the run has ended.
  bool completed = false;
  // The tasks launched in this run, ordered by task id.
  std::vector<v1::TaskInfo> tasks;
};

struct RecoveredExecutor {
  v1::ExecutorID executor_id;
  // The executor's latest run (the last CheckpointExecutor). Older runs are
  // not recovered.
  RecoveredExecutorRun latest_run;
};

struct RecoveredFramework {
  v1::FrameworkInfo info;                    // `id` set
  std::vector<RecoveredExecutor> executors;  // ordered by executor id
};

struct RecoveredState {
  // Absent if never checkpointed (a new agent).
  std::optional<v1::AgentInfo> agent_info;
  // Absent if never checkpointed.
  std::optional<std::string> boot_id;
  std::vector<RecoveredFramework> frameworks;  // ordered by framework id
  // One line per skipped item or repaired leftover (each also logged as a
  // WARNING). Never fatal.
  std::vector<std::string> warnings;
};

// The agent's checkpoints under `<work_dir>/meta` (layout above).
//
// Invariant (the agent's duty, not checked beyond what is cheap): a
// framework is checkpointed before its executors, an executor run before its
// pid and tasks.
class MetaStore {
 public:
  explicit MetaStore(const std::string& work_dir);

  // `<work_dir>/meta`: also the StatusUpdateManager's `meta_dir`.
  const std::string& meta_dir() const { return meta_dir_; }

  // Each Checkpoint* returns OK once the record is durable, the errno's
  // status if writing failed, kInvalidArgument (naming the field) for a
  // missing or unusable id.

  absl::Status CheckpointAgentInfo(const v1::AgentInfo& info);
  absl::Status CheckpointBootId(const std::string& boot_id);

  // REQUIRES: info.id set.
  absl::Status CheckpointFramework(const v1::FrameworkInfo& info);

  // Records a new run `container_id` of the executor and makes it the
  // executor's latest run.
  absl::Status CheckpointExecutor(const v1::FrameworkID& framework_id,
                                  const v1::ExecutorInfo& info,
                                  const v1::ContainerID& container_id);

  // kFailedPrecondition if the run was not checkpointed.
  absl::Status CheckpointExecutorPid(const v1::FrameworkID& framework_id,
                                     const v1::ExecutorID& executor_id,
                                     const v1::ContainerID& container_id,
                                     pid_t pid, uint64_t start_time);

  // kFailedPrecondition if the run was not checkpointed.
  absl::Status CheckpointTask(const v1::FrameworkID& framework_id,
                              const v1::ExecutorID& executor_id,
                              const v1::ContainerID& container_id,
                              const v1::TaskInfo& task);

  // The run has ended (its executor exited or was never started).
  // kFailedPrecondition if the run was not checkpointed.
  absl::Status MarkExecutorRunCompleted(const v1::FrameworkID& framework_id,
                                        const v1::ExecutorID& executor_id,
                                        const v1::ContainerID& container_id);

  // Deletes an executor's checkpoints (all its runs). OK if absent.
  absl::Status RemoveExecutor(const v1::FrameworkID& framework_id,
                              const v1::ExecutorID& executor_id);

  // Deletes a framework's checkpoints (once nothing of it is left on the
  // agent). OK if absent. Not its status update streams: see
  // StatusUpdateManager::RemoveFramework.
  absl::Status RemoveFramework(const v1::FrameworkID& framework_id);

  // Reads every checkpoint back. A file that is damaged or partial
  // (kDataLoss): with `strict`, that error (naming the file); else the item
  // it describes (agent info, framework with its executors, executor, pid,
  // task) is skipped with a warning. A missing file where a crash may have
  // left none (a framework or run directory without its record, an executor
  // without its latest run) is skipped with a warning in either mode.
  // `.tmp` leftovers and interrupted removals are deleted. Other I/O errors
  // are returned as is. An absent meta directory is an empty state.
  absl::StatusOr<RecoveredState> Recover(bool strict);

 private:
  absl::StatusOr<std::string> FrameworkDir(const v1::FrameworkID& id) const;
  absl::StatusOr<std::string> ExecutorDir(const v1::FrameworkID& framework_id,
                                          const v1::ExecutorID& id) const;
  absl::StatusOr<std::string> RunDir(const v1::FrameworkID& framework_id,
                                     const v1::ExecutorID& executor_id,
                                     const v1::ContainerID& id) const;
  // RunDir, kFailedPrecondition if its executor.ckpt does not exist.
  absl::StatusOr<std::string> ExistingRunDir(
      const v1::FrameworkID& framework_id, const v1::ExecutorID& executor_id,
      const v1::ContainerID& container_id) const;

  const std::string meta_dir_;
};

}  // namespace agent
}  // namespace cairn

#endif  // CAIRN_AGENT_CHECKPOINT_H_
