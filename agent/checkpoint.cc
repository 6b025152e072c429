#include "agent/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crc32c.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace cairn {
namespace agent {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[4] = {'C', 'K', 'P', '1'};
constexpr size_t kHeaderBytes = 12;
constexpr size_t kMaxNameBytes = 255;
constexpr char kTmpSuffix[] = ".tmp";
constexpr char kRemovingSuffix[] = ".removing";

absl::Status Errno(int error, absl::string_view what, const std::string& path) {
  return absl::ErrnoToStatus(error, absl::StrCat(what, " ", path));
}

void PutLittleEndian32(uint32_t value, char* out) {
  for (int i = 0; i < 4; ++i)
    out[i] = static_cast<char>((value >> (8 * i)) & 0xff);
}

uint32_t GetLittleEndian32(const char* in) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    value |= static_cast<uint32_t>(static_cast<unsigned char>(in[i]))
             << (8 * i);
  }
  return value;
}

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno(errno, "write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

std::string Parent(const std::string& path) {
  return fs::path(path).parent_path().string();
}

bool IsSafeByte(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '-' || c == '.';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Recovery's bookkeeping: the mode and the warnings collected so far.
class RecoveryContext {
 public:
  explicit RecoveryContext(bool strict, std::vector<std::string>* warnings)
      : strict_(strict), warnings_(warnings) {}

  void Warn(std::string warning) {
    LOG(WARNING) << "recovery: " << warning;
    warnings_->push_back(std::move(warning));
  }

  // For a failed read of an item's record. Returns the status to fail
  // recovery with (kDataLoss in strict mode, any non-data error), or OK
  // after recording a warning that `skipped` is skipped.
  absl::Status Damaged(const absl::Status& status, absl::string_view skipped) {
    if (status.code() == absl::StatusCode::kDataLoss && !strict_) {
      Warn(absl::StrCat(status.message(), "; skipping ", skipped));
      return absl::OkStatus();
    }
    return status;
  }

  // Deletes every `.tmp` file and interrupted removal under `dir`, with a
  // warning each.
  absl::Status RemoveLeftovers(const std::string& dir) {
    std::vector<fs::path> leftovers;
    std::error_code error;
    fs::recursive_directory_iterator it(dir, error);
    if (error == std::errc::no_such_file_or_directory) return absl::OkStatus();
    for (; !error && it != fs::recursive_directory_iterator();
         it.increment(error)) {
      const std::string name = it->path().filename().string();
      if (absl::EndsWith(name, kTmpSuffix) ||
          (absl::StartsWith(name, ".") &&
           absl::EndsWith(name, kRemovingSuffix))) {
        leftovers.push_back(it->path());
        if (it->is_directory()) it.disable_recursion_pending();
      }
    }
    if (error) {
      return absl::InternalError(
          absl::StrCat("listing ", dir, ": ", error.message()));
    }
    for (const fs::path& path : leftovers) {
      fs::remove_all(path, error);
      if (error) {
        return absl::InternalError(
            absl::StrCat("removing ", path.string(), ": ", error.message()));
      }
      RETURN_IF_ERROR(FsyncDir(path.parent_path().string()));
      Warn(absl::StrCat("removed ", path.string(),
                        ", left by an interrupted write or removal"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> List(const std::string& dir) {
    return ListDir(dir);
  }

 private:
  const bool strict_;
  std::vector<std::string>* warnings_;
};

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::StatusOr<std::string> IdName(absl::string_view field,
                                   const std::string& id) {
  absl::StatusOr<std::string> name = EscapeId(id);
  if (!name.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", name.status().message()));
  }
  return name;
}

}  // namespace

// ---- Files ------------------------------------------------------------------

absl::Status FsyncDir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno(errno, "open", path);
  int result = ::fsync(fd);
  int error = errno;
  ::close(fd);
  if (result != 0) return Errno(error, "fsync", path);
  return absl::OkStatus();
}

absl::Status RemoveDirDurably(const std::string& dir) {
  if (!Exists(dir)) return absl::OkStatus();
  const std::string parent = Parent(dir);
  const std::string doomed = absl::StrCat(
      parent, "/.", fs::path(dir).filename().string(), kRemovingSuffix);
  std::error_code error;
  fs::remove_all(doomed, error);  // a previous attempt's leftover
  if (error) {
    return absl::InternalError(
        absl::StrCat("removing ", doomed, ": ", error.message()));
  }
  if (::rename(dir.c_str(), doomed.c_str()) != 0) {
    return Errno(errno, "rename", dir);
  }
  RETURN_IF_ERROR(FsyncDir(parent));
  fs::remove_all(doomed, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("removing ", doomed, ": ", error.message()));
  }
  return FsyncDir(parent);
}

absl::Status MakeDirs(const std::string& path) {
  if (path.empty() || IsDirectory(path)) return absl::OkStatus();
  const std::string parent = Parent(path);
  if (!parent.empty() && parent != path) RETURN_IF_ERROR(MakeDirs(parent));
  if (::mkdir(path.c_str(), 0755) != 0) {
    if (errno == EEXIST && IsDirectory(path)) return absl::OkStatus();
    return Errno(errno, "mkdir", path);
  }
  return FsyncDir(parent.empty() ? "." : parent);
}

absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code error;
  fs::directory_iterator it(dir, error);
  if (error == std::errc::no_such_file_or_directory) return names;
  for (; !error && it != fs::directory_iterator(); it.increment(error)) {
    names.push_back(it->path().filename().string());
  }
  if (error) {
    return absl::InternalError(
        absl::StrCat("listing ", dir, ": ", error.message()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view data) {
  const std::string dir = Parent(path);
  if (!dir.empty()) RETURN_IF_ERROR(MakeDirs(dir));
  const std::string tmp = path + kTmpSuffix;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(errno, "open", tmp);
  absl::Status status = WriteAll(fd, data, tmp);
  if (status.ok() && ::fsync(fd) != 0) status = Errno(errno, "fsync", tmp);
  if (::close(fd) != 0 && status.ok()) status = Errno(errno, "close", tmp);
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    status = Errno(errno, "rename", tmp);
  }
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  return FsyncDir(dir.empty() ? "." : dir);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno(errno, "open", path);
  std::string data;
  char buffer[8192];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      int error = errno;
      ::close(fd);
      return Errno(error, "read", path);
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

std::string FrameProto(const google::protobuf::Message& message) {
  std::string payload = message.SerializeAsString();
  std::string framed(kHeaderBytes, '\0');
  std::memcpy(&framed[0], kMagic, 4);
  PutLittleEndian32(static_cast<uint32_t>(payload.size()), &framed[4]);
  PutLittleEndian32(Crc32c(payload), &framed[8]);
  framed += payload;
  return framed;
}

absl::Status WriteProtoFile(const std::string& path,
                            const google::protobuf::Message& message) {
  return WriteFileAtomically(path, FrameProto(message));
}

absl::Status ReadProtoFile(const std::string& path,
                           google::protobuf::Message* message) {
  ASSIGN_OR_RETURN(std::string data, ReadFile(path));
  auto loss = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("checkpoint ", path, ": ", what));
  };
  if (data.size() < kHeaderBytes) {
    return loss(absl::StrCat("truncated (", data.size(), " bytes, header is ",
                             kHeaderBytes, ")"));
  }
  if (std::memcmp(data.data(), kMagic, 4) != 0) return loss("bad magic");
  const uint32_t length = GetLittleEndian32(&data[4]);
  const size_t actual = data.size() - kHeaderBytes;
  if (actual < length) {
    return loss(
        absl::StrCat("truncated (", actual, " of ", length, " payload bytes)"));
  }
  if (actual > length) {
    return loss(absl::StrCat(actual - length, " trailing bytes"));
  }
  absl::string_view payload(data.data() + kHeaderBytes, length);
  if (Crc32c(payload) != GetLittleEndian32(&data[8])) {
    return loss("checksum mismatch");
  }
  if (!message->ParseFromArray(payload.data(), static_cast<int>(length))) {
    return loss(absl::StrCat("does not parse as ", message->GetTypeName()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> EscapeId(absl::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError("empty id");
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string name;
  name.reserve(id.size());
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (IsSafeByte(c) && !(i == 0 && c == '.')) {
      name.push_back(c);
    } else {
      const auto byte = static_cast<unsigned char>(c);
      name.push_back('%');
      name.push_back(kHex[byte >> 4]);
      name.push_back(kHex[byte & 0xf]);
    }
  }
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("id too long for a file name (", name.size(),
                     " bytes escaped, at most ", kMaxNameBytes, ")"));
  }
  return name;
}

absl::StatusOr<std::string> UnescapeId(absl::string_view name) {
  std::string id;
  id.reserve(name.size());
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] != '%') {
      if (!IsSafeByte(name[i])) {
        return absl::InvalidArgumentError(
            absl::StrCat("not an escaped id: '", name, "'"));
      }
      id.push_back(name[i]);
      continue;
    }
    if (i + 2 >= name.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("not an escaped id: '", name, "'"));
    }
    const int high = HexValue(name[i + 1]);
    const int low = HexValue(name[i + 2]);
    if (high < 0 || low < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("not an escaped id: '", name, "'"));
    }
    id.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  if (id.empty()) return absl::InvalidArgumentError("empty name");
  return id;
}

absl::StatusOr<std::string> ReadHostBootId() {
  ASSIGN_OR_RETURN(std::string data,
                   ReadFile("/proc/sys/kernel/random/boot_id"));
  return std::string(absl::StripAsciiWhitespace(data));
}

// ---- MetaStore --------------------------------------------------------------

MetaStore::MetaStore(const std::string& work_dir)
    : meta_dir_(work_dir + "/meta") {}

absl::StatusOr<std::string> MetaStore::FrameworkDir(
    const v1::FrameworkID& id) const {
  ASSIGN_OR_RETURN(std::string name, IdName("framework_id", id.value()));
  return absl::StrCat(meta_dir_, "/frameworks/", name);
}

absl::StatusOr<std::string> MetaStore::ExecutorDir(
    const v1::FrameworkID& framework_id, const v1::ExecutorID& id) const {
  ASSIGN_OR_RETURN(std::string framework_dir, FrameworkDir(framework_id));
  ASSIGN_OR_RETURN(std::string name, IdName("executor_id", id.value()));
  return absl::StrCat(framework_dir, "/executors/", name);
}

absl::StatusOr<std::string> MetaStore::RunDir(
    const v1::FrameworkID& framework_id, const v1::ExecutorID& executor_id,
    const v1::ContainerID& id) const {
  ASSIGN_OR_RETURN(std::string executor_dir,
                   ExecutorDir(framework_id, executor_id));
  ASSIGN_OR_RETURN(std::string name, IdName("container_id", id.value()));
  return absl::StrCat(executor_dir, "/runs/", name);
}

absl::StatusOr<std::string> MetaStore::ExistingRunDir(
    const v1::FrameworkID& framework_id, const v1::ExecutorID& executor_id,
    const v1::ContainerID& container_id) const {
  ASSIGN_OR_RETURN(std::string run_dir,
                   RunDir(framework_id, executor_id, container_id));
  if (!Exists(run_dir + "/executor.ckpt")) {
    return absl::FailedPreconditionError(
        absl::StrCat("executor '", executor_id.value(), "' of framework '",
                     framework_id.value(), "' has no checkpointed run '",
                     container_id.value(), "'"));
  }
  return run_dir;
}

absl::Status MetaStore::CheckpointAgentInfo(const v1::AgentInfo& info) {
  return WriteProtoFile(meta_dir_ + "/agent.ckpt", info);
}

absl::Status MetaStore::CheckpointBootId(const std::string& boot_id) {
  v1::BootIdCheckpoint record;
  record.set_boot_id(boot_id);
  return WriteProtoFile(meta_dir_ + "/boot_id.ckpt", record);
}

absl::Status MetaStore::CheckpointFramework(const v1::FrameworkInfo& info) {
  ASSIGN_OR_RETURN(std::string dir, FrameworkDir(info.id()));
  return WriteProtoFile(dir + "/framework.ckpt", info);
}

absl::Status MetaStore::CheckpointExecutor(
    const v1::FrameworkID& framework_id, const v1::ExecutorInfo& info,
    const v1::ContainerID& container_id) {
  ASSIGN_OR_RETURN(std::string executor_dir,
                   ExecutorDir(framework_id, info.executor_id()));
  ASSIGN_OR_RETURN(std::string run_dir,
                   RunDir(framework_id, info.executor_id(), container_id));
  v1::ExecutorRunCheckpoint run;
  *run.mutable_executor_info() = info;
  *run.mutable_container_id() = container_id;
  RETURN_IF_ERROR(WriteProtoFile(run_dir + "/executor.ckpt", run));
  v1::LatestRunCheckpoint latest;
  *latest.mutable_container_id() = container_id;
  return WriteProtoFile(executor_dir + "/latest.ckpt", latest);
}

absl::Status MetaStore::CheckpointExecutorPid(
    const v1::FrameworkID& framework_id, const v1::ExecutorID& executor_id,
    const v1::ContainerID& container_id, pid_t pid, uint64_t start_time) {
  ASSIGN_OR_RETURN(std::string run_dir,
                   ExistingRunDir(framework_id, executor_id, container_id));
  v1::ExecutorPidCheckpoint record;
  record.set_pid(pid);
  record.set_start_time(start_time);
  return WriteProtoFile(run_dir + "/pid.ckpt", record);
}

absl::Status MetaStore::CheckpointTask(const v1::FrameworkID& framework_id,
                                       const v1::ExecutorID& executor_id,
                                       const v1::ContainerID& container_id,
                                       const v1::TaskInfo& task) {
  ASSIGN_OR_RETURN(std::string run_dir,
                   ExistingRunDir(framework_id, executor_id, container_id));
  ASSIGN_OR_RETURN(std::string name, IdName("task_id", task.task_id().value()));
  v1::TaskCheckpoint record;
  *record.mutable_framework_id() = framework_id;
  *record.mutable_executor_id() = executor_id;
  *record.mutable_container_id() = container_id;
  *record.mutable_task_info() = task;
  return WriteProtoFile(absl::StrCat(run_dir, "/tasks/", name, "/task.ckpt"),
                        record);
}

absl::Status MetaStore::MarkExecutorRunCompleted(
    const v1::FrameworkID& framework_id, const v1::ExecutorID& executor_id,
    const v1::ContainerID& container_id) {
  ASSIGN_OR_RETURN(std::string run_dir,
                   ExistingRunDir(framework_id, executor_id, container_id));
  return WriteFileAtomically(run_dir + "/completed", "");
}

absl::Status MetaStore::RemoveExecutor(const v1::FrameworkID& framework_id,
                                       const v1::ExecutorID& executor_id) {
  ASSIGN_OR_RETURN(std::string dir, ExecutorDir(framework_id, executor_id));
  return RemoveDirDurably(dir);
}

absl::Status MetaStore::RemoveFramework(const v1::FrameworkID& framework_id) {
  ASSIGN_OR_RETURN(std::string dir, FrameworkDir(framework_id));
  return RemoveDirDurably(dir);
}

absl::StatusOr<RecoveredState> MetaStore::Recover(bool strict) {
  RecoveredState state;
  RecoveryContext context(strict, &state.warnings);

  RETURN_IF_ERROR(context.RemoveLeftovers(meta_dir_));

  v1::AgentInfo agent_info;
  absl::Status status = ReadProtoFile(meta_dir_ + "/agent.ckpt", &agent_info);
  if (status.ok()) {
    state.agent_info = std::move(agent_info);
  } else if (!absl::IsNotFound(status)) {
    RETURN_IF_ERROR(context.Damaged(status, "the agent info"));
  }

  v1::BootIdCheckpoint boot_id;
  status = ReadProtoFile(meta_dir_ + "/boot_id.ckpt", &boot_id);
  if (status.ok()) {
    state.boot_id = boot_id.boot_id();
  } else if (!absl::IsNotFound(status)) {
    RETURN_IF_ERROR(context.Damaged(status, "the boot id"));
  }

  const std::string frameworks_dir = meta_dir_ + "/frameworks";
  ASSIGN_OR_RETURN(std::vector<std::string> framework_names,
                   context.List(frameworks_dir));
  for (const std::string& framework_name : framework_names) {
    const std::string framework_dir = frameworks_dir + "/" + framework_name;
    RecoveredFramework framework;
    status = ReadProtoFile(framework_dir + "/framework.ckpt", &framework.info);
    if (absl::IsNotFound(status)) {
      context.Warn(
          absl::StrCat("no framework.ckpt in ", framework_dir,
                       " (a crash before it was written); skipping it"));
      continue;
    }
    if (!status.ok()) {
      RETURN_IF_ERROR(
          context.Damaged(status, absl::StrCat("framework ", framework_dir)));
      continue;
    }
    const std::string executors_dir = framework_dir + "/executors";
    ASSIGN_OR_RETURN(std::vector<std::string> executor_names,
                     context.List(executors_dir));
    for (const std::string& executor_name : executor_names) {
      const std::string executor_dir = executors_dir + "/" + executor_name;
      v1::LatestRunCheckpoint latest;
      status = ReadProtoFile(executor_dir + "/latest.ckpt", &latest);
      if (absl::IsNotFound(status)) {
        context.Warn(absl::StrCat("no latest.ckpt in ", executor_dir,
                                  " (a crash before it was written); skipping "
                                  "the executor"));
        continue;
      }
      if (!status.ok()) {
        RETURN_IF_ERROR(
            context.Damaged(status, absl::StrCat("executor ", executor_dir)));
        continue;
      }
      ASSIGN_OR_RETURN(std::string run_name,
                       IdName("container_id", latest.container_id().value()));
      const std::string run_dir = executor_dir + "/runs/" + run_name;

      RecoveredExecutor executor;
      RecoveredExecutorRun& run = executor.latest_run;
      v1::ExecutorRunCheckpoint run_record;
      status = ReadProtoFile(run_dir + "/executor.ckpt", &run_record);
      if (!status.ok()) {
        // latest.ckpt is written after executor.ckpt, so absent is damage too.
        if (absl::IsNotFound(status)) {
          status = absl::DataLossError(
              absl::StrCat("checkpoint ", run_dir, "/executor.ckpt: missing"));
        }
        RETURN_IF_ERROR(
            context.Damaged(status, absl::StrCat("executor ", executor_dir)));
        continue;
      }
      executor.executor_id = run_record.executor_info().executor_id();
      run.container_id = run_record.container_id();
      run.executor_info = run_record.executor_info();

      v1::ExecutorPidCheckpoint pid;
      status = ReadProtoFile(run_dir + "/pid.ckpt", &pid);
      if (status.ok()) {
        run.pid = pid.pid();
        run.start_time = pid.start_time();
      } else if (!absl::IsNotFound(status)) {
        RETURN_IF_ERROR(
            context.Damaged(status, absl::StrCat("the pid of ", run_dir)));
      }
      run.completed = Exists(run_dir + "/completed");

      const std::string tasks_dir = run_dir + "/tasks";
      ASSIGN_OR_RETURN(std::vector<std::string> task_names,
                       context.List(tasks_dir));
      for (const std::string& task_name : task_names) {
        const std::string task_dir = tasks_dir + "/" + task_name;
        v1::TaskCheckpoint task;
        status = ReadProtoFile(task_dir + "/task.ckpt", &task);
        if (absl::IsNotFound(status)) {
          context.Warn(absl::StrCat("no task.ckpt in ", task_dir,
                                    " (a crash before it was written); "
                                    "skipping it"));
          continue;
        }
        if (!status.ok()) {
          RETURN_IF_ERROR(
              context.Damaged(status, absl::StrCat("task ", task_dir)));
          continue;
        }
        run.tasks.push_back(std::move(*task.mutable_task_info()));
      }
      framework.executors.push_back(std::move(executor));
    }
    state.frameworks.push_back(std::move(framework));
  }
  return state;
}

}  // namespace agent
}  // namespace cairn
