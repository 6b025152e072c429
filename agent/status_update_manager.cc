#include "agent/status_update_manager.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/checkpoint.h"
#include "cairn/v1/agent_checkpoint.pb.h"
#include "common/crc32c.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace cairn {
namespace agent {
namespace {

namespace fs = std::filesystem;

constexpr size_t kRecordHeaderBytes = 8;
constexpr size_t kUuidBytes = 16;
constexpr size_t kMaxFileNameBytes = 255;
constexpr char kSuffix[] = ".updates";
constexpr char kCorruptSuffix[] = ".corrupt";

absl::Status Errno(int error, absl::string_view what, const std::string& path) {
  return absl::ErrnoToStatus(error, absl::StrCat(what, " ", path));
}

void PutLittleEndian32(uint32_t value, char* out) {
  for (int i = 0; i < 4; ++i) {
    out[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  }
}

uint32_t GetLittleEndian32(const char* in) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    value |= static_cast<uint32_t>(static_cast<unsigned char>(in[i]))
             << (8 * i);
  }
  return value;
}

std::string FrameRecord(const v1::StatusUpdateRecord& record) {
  const std::string payload = record.SerializeAsString();
  std::string framed(kRecordHeaderBytes, '\0');
  PutLittleEndian32(static_cast<uint32_t>(payload.size()), &framed[0]);
  const uint32_t crc =
      Crc32cExtend(Crc32c(absl::string_view(framed.data(), 4)), payload);
  PutLittleEndian32(crc, &framed[4]);
  framed += payload;
  return framed;
}

std::string Hex(absl::string_view uuid) { return absl::BytesToHexString(uuid); }

}  // namespace

// One task's stream. Invariants: `pending` holds the updates appended and
// not acknowledged, in append order; `received` every uuid appended (pending
// or acknowledged); nothing follows a terminal update; `size` is the length
// of the file's whole records.
struct StatusUpdateManager::Stream {
  ~Stream() {
    if (fd >= 0) ::close(fd);
  }

  v1::FrameworkID framework_id;
  v1::TaskID task_id;
  std::string path;
  int fd = -1;
  uint64_t size = 0;

  std::deque<v1::AgentCall::Update> pending;
  std::set<std::string> received;
  std::optional<v1::TaskStatus> latest;
  bool terminal = false;

  // Delivery of the head (in memory only: after a restart every head is due).
  bool sent = false;
  absl::Time retry_at = absl::InfinitePast();
  absl::Duration backoff;
};

StatusUpdateManager::StatusUpdateManager(StatusUpdateManagerOptions options)
    : options_(std::move(options)) {}

StatusUpdateManager::~StatusUpdateManager() = default;

std::string StatusUpdateManager::FrameworkDir(
    const std::string& framework_id) const {
  // Callers validated the id, so escaping succeeds.
  return absl::StrCat(options_.meta_dir, "/updates/",
                      EscapeId(framework_id).value());
}

absl::StatusOr<std::unique_ptr<StatusUpdateManager::Stream>>
StatusUpdateManager::OpenStream(const Key& key) {
  auto stream = std::make_unique<Stream>();
  stream->framework_id.set_value(key.first);
  stream->task_id.set_value(key.second);
  const std::string dir = FrameworkDir(key.first);
  stream->path = absl::StrCat(dir, "/", EscapeId(key.second).value(), kSuffix);
  RETURN_IF_ERROR(MakeDirs(dir));
  stream->fd =
      ::open(stream->path.c_str(),
             O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (stream->fd < 0) return Errno(errno, "open", stream->path);
  RETURN_IF_ERROR(FsyncDir(dir));
  return stream;
}

absl::Status StatusUpdateManager::Append(Stream* stream,
                                         const std::string& bytes) {
  absl::string_view rest = bytes;
  absl::Status status;
  while (!rest.empty()) {
    ssize_t n = ::write(stream->fd, rest.data(), rest.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      status = Errno(errno, "write", stream->path);
      break;
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  if (status.ok() && ::fdatasync(stream->fd) != 0) {
    status = Errno(errno, "fdatasync", stream->path);
  }
  if (!status.ok()) {
    // Cut a partial record away so later appends do not follow garbage.
    if (::ftruncate(stream->fd, static_cast<off_t>(stream->size)) != 0) {
      LOG(ERROR) << "cannot cut " << stream->path << " back to " << stream->size
                 << " bytes after a failed append";
    }
    return status;
  }
  stream->size += bytes.size();
  return absl::OkStatus();
}

absl::Status StatusUpdateManager::CloseAndRemove(const Key& key) {
  auto it = streams_.find(key);
  if (it == streams_.end()) return absl::OkStatus();
  const std::string path = it->second->path;
  streams_.erase(it);  // closes the file
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Errno(errno, "unlink", path);
  }
  const std::string dir = fs::path(path).parent_path().string();
  RETURN_IF_ERROR(FsyncDir(dir));
  if (::rmdir(dir.c_str()) ==
      0) {  // best effort: the last stream of a framework
    RETURN_IF_ERROR(FsyncDir(fs::path(dir).parent_path().string()));
  }
  return absl::OkStatus();
}

absl::Status StatusUpdateManager::Replay(const std::string& path,
                                         Stream* stream,
                                         std::vector<std::string>* warnings) {
  ASSIGN_OR_RETURN(std::string data, ReadFile(path));
  auto damage = [&](uint64_t offset, absl::string_view what) {
    return absl::DataLossError(absl::StrCat("status update stream ", path, ": ",
                                            what, " at byte ", offset));
  };
  const std::string dir_name = fs::path(path).parent_path().filename().string();
  const std::string file_name = fs::path(path).filename().string();

  uint64_t offset = 0;
  std::optional<std::string> torn;  // why the tail at `offset` is cut
  while (offset < data.size()) {
    const uint64_t rest = data.size() - offset;
    if (rest < kRecordHeaderBytes) {
      torn = absl::StrCat("a partial record header (", rest, " bytes)");
      break;
    }
    const uint32_t length = GetLittleEndian32(&data[offset]);
    if (length > rest - kRecordHeaderBytes) {
      torn = absl::StrCat("a partial record (", rest - kRecordHeaderBytes,
                          " of ", length, " bytes)");
      break;
    }
    const absl::string_view payload(&data[offset + kRecordHeaderBytes], length);
    const uint32_t crc =
        Crc32cExtend(Crc32c(absl::string_view(&data[offset], 4)), payload);
    if (crc != GetLittleEndian32(&data[offset + 4])) {
      const bool at_end = offset + kRecordHeaderBytes + length == data.size();
      const bool zeros = std::all_of(data.begin() + offset, data.end(),
                                     [](char c) { return c == 0; });
      if (at_end || zeros) {
        torn = "a last record with a bad checksum";
        break;
      }
      return damage(offset, "checksum mismatch before the last record");
    }

    v1::StatusUpdateRecord record;
    if (!record.ParseFromArray(payload.data(), static_cast<int>(length))) {
      return damage(offset, "a record that does not parse");
    }
    switch (record.type()) {
      case v1::StatusUpdateRecord::UPDATE: {
        const v1::AgentCall::Update& update = record.update();
        const std::string& uuid = update.status().uuid();
        if (stream->received.empty()) {
          absl::StatusOr<std::string> fid =
              EscapeId(update.framework_id().value());
          absl::StatusOr<std::string> tid =
              EscapeId(update.status().task_id().value());
          if (!fid.ok() || !tid.ok() || *fid != dir_name ||
              *tid + kSuffix != file_name) {
            return damage(offset, "an update of another task");
          }
          stream->framework_id = update.framework_id();
          stream->task_id = update.status().task_id();
        } else if (update.framework_id().value() !=
                       stream->framework_id.value() ||
                   update.status().task_id().value() !=
                       stream->task_id.value()) {
          return damage(offset, "an update of another task");
        }
        if (uuid.size() != kUuidBytes || stream->received.count(uuid) > 0) {
          return damage(offset, "an update with a bad or repeated uuid");
        }
        if (stream->terminal) {
          return damage(offset, "an update after a terminal update");
        }
        stream->received.insert(uuid);
        stream->latest = update.status();
        stream->terminal = IsTerminalState(update.status().state());
        stream->pending.push_back(update);
        break;
      }
      case v1::StatusUpdateRecord::ACK:
        if (stream->pending.empty() ||
            stream->pending.front().status().uuid() != record.uuid()) {
          return damage(offset,
                        "an acknowledgement of an update not at the head");
        }
        stream->pending.pop_front();
        break;
      default:
        return damage(offset, "a record of unknown type");
    }
    offset += kRecordHeaderBytes + length;
  }

  if (torn.has_value()) {
    std::string warning = absl::StrCat(
        "status update stream ", path, ": cut ", data.size() - offset,
        " bytes of ", *torn, " at byte ", offset,
        " (a write torn by a crash; it was never acknowledged)");
    LOG(WARNING) << warning;
    warnings->push_back(std::move(warning));
    if (::truncate(path.c_str(), static_cast<off_t>(offset)) != 0) {
      return Errno(errno, "truncate", path);
    }
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return Errno(errno, "open", path);
    const int result = ::fsync(fd);
    const int error = errno;
    ::close(fd);
    if (result != 0) return Errno(error, "fsync", path);
  }
  stream->size = offset;
  stream->path = path;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> StatusUpdateManager::Recover() {
  CHECK(streams_.empty()) << "Recover() must come first";
  std::vector<std::string> warnings;
  auto warn = [&](std::string warning) {
    LOG(WARNING) << warning;
    warnings.push_back(std::move(warning));
  };

  const std::string updates_dir = options_.meta_dir + "/updates";
  ASSIGN_OR_RETURN(std::vector<std::string> framework_names,
                   ListDir(updates_dir));
  for (const std::string& framework_name : framework_names) {
    const std::string framework_dir = updates_dir + "/" + framework_name;
    if (absl::StartsWith(framework_name, ".")) {
      // RemoveFramework's rename happened; finish the deletion.
      std::error_code error;
      fs::remove_all(framework_dir, error);
      if (error) {
        return absl::InternalError(
            absl::StrCat("removing ", framework_dir, ": ", error.message()));
      }
      RETURN_IF_ERROR(FsyncDir(updates_dir));
      warn(absl::StrCat("removed ", framework_dir,
                        ", left by an interrupted removal"));
      continue;
    }
    ASSIGN_OR_RETURN(std::vector<std::string> file_names,
                     ListDir(framework_dir));
    for (const std::string& file_name : file_names) {
      if (!absl::EndsWith(file_name, kSuffix)) continue;  // e.g. .corrupt
      const std::string path = framework_dir + "/" + file_name;
      auto stream = std::make_unique<Stream>();
      absl::Status status = Replay(path, stream.get(), &warnings);
      if (absl::IsDataLoss(status)) {
        if (options_.strict) return status;
        const std::string aside = path + kCorruptSuffix;
        if (::rename(path.c_str(), aside.c_str()) != 0) {
          return Errno(errno, "rename", path);
        }
        RETURN_IF_ERROR(FsyncDir(framework_dir));
        warn(absl::StrCat(status.message(), "; skipping the stream (moved to ",
                          aside, ")"));
        continue;
      }
      RETURN_IF_ERROR(status);

      if (stream->received.empty() ||
          (stream->pending.empty() && stream->terminal)) {
        // Nothing was ever durably added, or the stream ended and a crash
        // came before its file was removed.
        if (::unlink(path.c_str()) != 0) return Errno(errno, "unlink", path);
        RETURN_IF_ERROR(FsyncDir(framework_dir));
        if (stream->received.empty()) {
          warn(absl::StrCat("removed ", path, ", a stream without updates"));
        }
        continue;
      }
      stream->fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
      if (stream->fd < 0) return Errno(errno, "open", path);
      Key key(stream->framework_id.value(), stream->task_id.value());
      streams_[key] = std::move(stream);
    }
  }
  return warnings;
}

absl::StatusOr<bool> StatusUpdateManager::Update(
    const v1::FrameworkID& framework_id, const v1::TaskStatus& status) {
  if (!EscapeId(framework_id.value()).ok()) {
    return absl::InvalidArgumentError(
        "update.framework_id: missing or unusable as a file name");
  }
  absl::StatusOr<std::string> task_name = EscapeId(status.task_id().value());
  if (!task_name.ok() ||
      task_name->size() + sizeof(kSuffix) - 1 > kMaxFileNameBytes) {
    return absl::InvalidArgumentError(
        "update.status.task_id: missing or unusable as a file name");
  }
  if (!status.has_state()) {
    return absl::InvalidArgumentError("update.status.state: missing");
  }
  if (status.uuid().size() != kUuidBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("update.status.uuid: must be ", kUuidBytes, " bytes, not ",
                     status.uuid().size()));
  }

  const Key key(framework_id.value(), status.task_id().value());
  auto it = streams_.find(key);
  std::unique_ptr<Stream> created;
  Stream* stream;
  if (it != streams_.end()) {
    stream = it->second.get();
    if (stream->received.count(status.uuid()) > 0) {
      VLOG(1) << "duplicate status update " << Hex(status.uuid()) << " of task "
              << key.second << " ignored";
      return false;
    }
    if (stream->terminal) {
      return absl::FailedPreconditionError(
          absl::StrCat("task '", key.second, "' of framework '", key.first,
                       "' already has a terminal status update (",
                       v1::TaskState_Name(stream->latest->state()), "); ",
                       v1::TaskState_Name(status.state()), " refused"));
    }
  } else {
    ASSIGN_OR_RETURN(created, OpenStream(key));
    stream = created.get();
  }

  v1::StatusUpdateRecord record;
  record.set_type(v1::StatusUpdateRecord::UPDATE);
  v1::AgentCall::Update* update = record.mutable_update();
  *update->mutable_framework_id() = framework_id;
  *update->mutable_status() = status;
  absl::Status appended = Append(stream, FrameRecord(record));
  if (!appended.ok()) {
    if (created != nullptr) {
      const std::string path = created->path;
      created.reset();
      ::unlink(path.c_str());
    }
    return appended;
  }

  stream->received.insert(status.uuid());
  stream->latest = status;
  stream->terminal = IsTerminalState(status.state());
  stream->pending.push_back(std::move(*update));
  if (stream->pending.size() == 1) stream->sent = false;
  if (created != nullptr) streams_[key] = std::move(created);
  return true;
}

absl::StatusOr<bool> StatusUpdateManager::Acknowledge(
    const v1::FrameworkID& framework_id, const v1::TaskID& task_id,
    absl::string_view uuid) {
  const Key key(framework_id.value(), task_id.value());
  auto it = streams_.find(key);
  if (it == streams_.end()) {
    LOG(WARNING) << "acknowledgement " << Hex(uuid) << " for task "
                 << key.second << " of framework " << key.first
                 << " ignored: no status update stream";
    return false;
  }
  Stream* stream = it->second.get();
  if (stream->pending.empty() ||
      stream->pending.front().status().uuid() != uuid) {
    LOG(WARNING) << "acknowledgement " << Hex(uuid) << " for task "
                 << key.second << " of framework " << key.first
                 << " ignored: the update in flight is "
                 << (stream->pending.empty()
                         ? std::string("none")
                         : Hex(stream->pending.front().status().uuid()));
    return false;
  }

  v1::StatusUpdateRecord record;
  record.set_type(v1::StatusUpdateRecord::ACK);
  record.set_uuid(std::string(uuid));
  RETURN_IF_ERROR(Append(stream, FrameRecord(record)));
  stream->pending.pop_front();
  stream->sent = false;
  if (stream->pending.empty() && stream->terminal) {
    RETURN_IF_ERROR(CloseAndRemove(key));
  }
  return true;
}

std::vector<v1::AgentCall::Update> StatusUpdateManager::Due(absl::Time now) {
  std::vector<v1::AgentCall::Update> due;
  for (auto& [key, stream] : streams_) {
    if (stream->pending.empty()) continue;
    if (!stream->sent) {
      stream->sent = true;
      stream->backoff = options_.initial_retry;
    } else if (now >= stream->retry_at) {
      stream->backoff = std::min(stream->backoff * 2, options_.max_retry);
    } else {
      continue;
    }
    stream->retry_at = now + stream->backoff;
    due.push_back(stream->pending.front());
  }
  return due;
}

void StatusUpdateManager::ResetRetries() {
  for (auto& [key, stream] : streams_) stream->sent = false;
}

absl::Time StatusUpdateManager::NextDue() const {
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [key, stream] : streams_) {
    if (stream->pending.empty()) continue;
    if (!stream->sent) return absl::InfinitePast();
    next = std::min(next, stream->retry_at);
  }
  return next;
}

std::optional<v1::TaskStatus> StatusUpdateManager::Head(
    const v1::FrameworkID& framework_id, const v1::TaskID& task_id) const {
  auto it = streams_.find(Key(framework_id.value(), task_id.value()));
  if (it == streams_.end() || it->second->pending.empty()) return std::nullopt;
  return it->second->pending.front().status();
}

std::optional<v1::TaskStatus> StatusUpdateManager::Latest(
    const v1::FrameworkID& framework_id, const v1::TaskID& task_id) const {
  auto it = streams_.find(Key(framework_id.value(), task_id.value()));
  if (it == streams_.end()) return std::nullopt;
  return it->second->latest;
}

std::vector<v1::TaskStatus> StatusUpdateManager::Pending(
    const v1::FrameworkID& framework_id, const v1::TaskID& task_id) const {
  std::vector<v1::TaskStatus> pending;
  auto it = streams_.find(Key(framework_id.value(), task_id.value()));
  if (it == streams_.end()) return pending;
  for (const v1::AgentCall::Update& update : it->second->pending) {
    pending.push_back(update.status());
  }
  return pending;
}

bool StatusUpdateManager::HasPending(const v1::FrameworkID& framework_id,
                                     const v1::TaskID& task_id) const {
  auto it = streams_.find(Key(framework_id.value(), task_id.value()));
  return it != streams_.end() && !it->second->pending.empty();
}

std::vector<std::pair<v1::FrameworkID, v1::TaskID>>
StatusUpdateManager::Streams() const {
  std::vector<std::pair<v1::FrameworkID, v1::TaskID>> streams;
  streams.reserve(streams_.size());
  for (const auto& [key, stream] : streams_) {
    streams.emplace_back(stream->framework_id, stream->task_id);
  }
  return streams;
}

size_t StatusUpdateManager::PendingCount() const {
  size_t count = 0;
  for (const auto& [key, stream] : streams_) count += stream->pending.size();
  return count;
}

absl::Status StatusUpdateManager::RemoveFramework(
    const v1::FrameworkID& framework_id) {
  if (!EscapeId(framework_id.value()).ok()) {
    return absl::InvalidArgumentError(
        "framework_id: missing or unusable as a file name");
  }
  for (auto it = streams_.begin(); it != streams_.end();) {
    if (it->first.first == framework_id.value()) {
      it = streams_.erase(it);  // closes the file
    } else {
      ++it;
    }
  }
  return RemoveDirDurably(FrameworkDir(framework_id.value()));
}

}  // namespace agent
}  // namespace cairn
