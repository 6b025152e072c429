#include "common/files_http.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json_quote.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace cairn {
namespace files {
namespace internal {

struct FilesState {
  explicit FilesState(FilesOptions o) : options(std::move(o)) {}

  const FilesOptions options;
  std::mutex mu;
  // Guarded by mu:
  std::map<std::string, std::string> attachments;  // virtual -> canonical real
  int streaming_downloads = 0;
  bool stopping = false;       // set once by ~FilesService, never cleared
  std::condition_variable cv;  // streaming_downloads fell, or stopping set
};

}  // namespace internal

namespace {

namespace fs = std::filesystem;
using internal::FilesState;

// Closes a file descriptor when it goes out of scope.
class ScopedFd {
 public:
  explicit ScopedFd(int fd = -1) : fd_(fd) {}
  ScopedFd(ScopedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() { Reset(); }

  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }

 private:
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  int fd_;
};

// A request path resolved to a real file system path.
struct Resolved {
  std::string request_path;  // as the client spelt it, for messages
  std::string real;  // canonical (symlinks resolved) up to its last existing
                     // component
  std::string root;  // canonical real path of its attachment
};

// An open file, checked to lie under its attachment.
struct OpenFile {
  ScopedFd fd;
  struct stat st {};
};

// ---- paths ----

// Path components: empty ones (repeated or trailing slashes) and "." dropped.
std::vector<std::string> Components(absl::string_view path) {
  std::vector<std::string> out;
  for (absl::string_view c : absl::StrSplit(path, '/')) {
    if (c.empty() || c == ".") continue;
    out.emplace_back(c);
  }
  return out;
}

std::string JoinVirtual(const std::vector<std::string>& components, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) absl::StrAppend(&out, "/", components[i]);
  return out.empty() ? "/" : out;
}

// True when canonical `path` is `root` or lies under it (by components).
bool IsWithin(absl::string_view path, absl::string_view root) {
  if (root == "/") return !path.empty() && path[0] == '/';
  if (path == root) return true;
  return path.size() > root.size() && path.substr(0, root.size()) == root &&
         path[root.size()] == '/';
}

// The key of the attachment map: absolute, no "." or "..", no repeated or
// trailing slashes.
absl::StatusOr<std::string> NormalizeVirtualPath(absl::string_view path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "virtual path '", path, "' must be absolute (start with '/')"));
  }
  std::vector<std::string> components;
  for (absl::string_view c : absl::StrSplit(path, '/')) {
    if (c.empty()) continue;
    if (c == "." || c == "..") {
      return absl::InvalidArgumentError(absl::StrCat(
          "virtual path '", path, "' must not contain '.' or '..'"));
    }
    components.emplace_back(c);
  }
  return JoinVirtual(components, components.size());
}

absl::Status LeavesAttachment(absl::string_view request_path) {
  return absl::PermissionDeniedError(
      absl::StrCat("path '", request_path, "' leaves the attached directory"));
}

absl::Status DoesNotExist(absl::string_view request_path) {
  return absl::NotFoundError(
      absl::StrCat("path '", request_path, "' does not exist"));
}

// Maps a request path to what it names. kNotFound: under no attachment, or
// below an attached file; kPermissionDenied: it leaves its attachment (by
// "..", or by a symlink), or a directory on the way is not searchable.
absl::StatusOr<Resolved> Resolve(FilesState& state,
                                 const std::string& request_path) {
  const std::vector<std::string> components = Components(request_path);
  std::string root;
  size_t matched = 0;
  {
    std::lock_guard<std::mutex> lock(state.mu);
    for (size_t n = components.size() + 1; n-- > 0;) {
      auto it = state.attachments.find(JoinVirtual(components, n));
      if (it != state.attachments.end()) {
        root = it->second;
        matched = n;
        break;
      }
    }
  }
  if (root.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "path '", request_path, "' is not under any attached path"));
  }

  // ".." is resolved against the path written so far; it may not climb
  // above the attachment (checked again below after symlinks).
  std::vector<std::string> rest;
  for (size_t i = matched; i < components.size(); ++i) {
    if (components[i] == "..") {
      if (rest.empty()) return LeavesAttachment(request_path);
      rest.pop_back();
    } else {
      rest.push_back(components[i]);
    }
  }

  fs::path candidate(root);
  for (const std::string& c : rest) candidate /= c;
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(candidate, ec);
  if (ec) {
    if (ec.value() == EACCES) {
      return absl::PermissionDeniedError(
          absl::StrCat("path '", request_path, "': permission denied"));
    }
    if (ec.value() == ELOOP) return LeavesAttachment(request_path);
    return absl::InternalError(absl::StrCat(
        "path '", request_path, "': cannot resolve: ", ec.message()));
  }
  Resolved resolved{request_path, canonical.string(), root};
  if (!IsWithin(resolved.real, root)) return LeavesAttachment(request_path);
  return resolved;
}

// Opens what `resolved` names for reading (O_NONBLOCK: a FIFO cannot hang
// us) and checks that the opened file itself lies under the attachment.
absl::StatusOr<OpenFile> Open(const Resolved& resolved) {
  OpenFile file;
  file.fd = ScopedFd(open(resolved.real.c_str(),
                          O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (file.fd.get() < 0) {
    const int error = errno;
    if (error == ENOENT || error == ENOTDIR) {
      return DoesNotExist(resolved.request_path);
    }
    // ELOOP: the last component became a symlink after Resolve.
    if (error == ELOOP) return LeavesAttachment(resolved.request_path);
    if (error == EACCES || error == EPERM) {
      return absl::PermissionDeniedError(absl::StrCat(
          "path '", resolved.request_path, "': permission denied"));
    }
    return absl::ErrnoToStatus(
        error, absl::StrCat("cannot open '", resolved.request_path, "'"));
  }
  // A directory on the way may have been swapped for a symlink since
  // Resolve: ask the kernel where the descriptor really is.
  char link[PATH_MAX + 1];
  const std::string proc = absl::StrCat("/proc/self/fd/", file.fd.get());
  const ssize_t n = readlink(proc.c_str(), link, PATH_MAX);
  if (n <= 0) {
    return absl::InternalError(
        absl::StrCat("cannot check where '", resolved.request_path,
                     "' is: readlink ", proc, " failed"));
  }
  if (!IsWithin(absl::string_view(link, static_cast<size_t>(n)),
                resolved.root)) {
    return LeavesAttachment(resolved.request_path);
  }
  if (fstat(file.fd.get(), &file.st) != 0) {
    return absl::ErrnoToStatus(
        errno, absl::StrCat("cannot stat '", resolved.request_path, "'"));
  }
  return file;
}

// Reads up to `length` bytes at `offset` (fewer at the end of the file).
absl::StatusOr<std::string> ReadAt(int fd, uint64_t offset, size_t length) {
  std::string data(length, '\0');
  size_t got = 0;
  while (got < length) {
    const ssize_t n = pread(fd, data.data() + got, length - got,
                            static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "read failed");
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  data.resize(got);
  return data;
}

// ---- responses ----

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
      return 503;
    default:
      return 500;
  }
}

// {"error": "<message>", "field": "<field>"}.
http::Response FieldError(int status, absl::string_view message,
                          absl::string_view field) {
  return http::Response::Json(
      status, absl::StrCat("{\"error\":", JsonQuoted(message),
                           ",\"field\":", JsonQuoted(field), "}"));
}

http::Response StatusError(const absl::Status& status,
                           absl::string_view field) {
  const int code = HttpStatusFor(status);
  if (code == 500) LOG(WARNING) << "/files: " << status;
  return FieldError(code, status.message(), field);
}

// A 200 with `json`, or `callback(json)` as text/javascript.
http::Response JsonOk(std::string json,
                      const std::optional<std::string>& jsonp) {
  if (!jsonp.has_value()) return http::Response::Json(200, std::move(json));
  http::Response r;
  r.headers.Set("Content-Type", "text/javascript");
  r.body = absl::StrCat(*jsonp, "(", json, ")");
  return r;
}

// The query parameter `name`, if present.
std::optional<std::string> Param(const http::Request& request,
                                 const std::string& name) {
  auto it = request.query.find(name);
  if (it == request.query.end()) return std::nullopt;
  return it->second;
}

// The `jsonp` callback name, if any. Only JavaScript identifier characters
// and '.' are accepted: the name is written into a script unescaped.
absl::StatusOr<std::optional<std::string>> JsonpParam(
    const http::Request& request) {
  std::optional<std::string> jsonp = Param(request, "jsonp");
  if (!jsonp.has_value()) return jsonp;
  bool ok = !jsonp->empty() && jsonp->size() <= 256;
  for (const char c : *jsonp) {
    ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                c == '_' || c == '$' || c == '.');
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        "'jsonp' must be a JavaScript function name (letters, digits, '_', "
        "'$', '.')");
  }
  return jsonp;
}

// The non-empty `path` parameter, or a 400 naming it.
std::optional<std::string> PathParam(const http::Request& request,
                                     http::Response* error) {
  std::optional<std::string> path = Param(request, "path");
  if (!path.has_value() || path->empty()) {
    *error = FieldError(400, "expecting 'path=value' in the query", "path");
    return std::nullopt;
  }
  return path;
}

// `ls -l` style: "-rw-r--r--", "drwxr-xr-x", "lrwxrwxrwx".
std::string ModeString(mode_t mode) {
  char type = '-';
  if (S_ISDIR(mode)) {
    type = 'd';
  } else if (S_ISCHR(mode)) {
    type = 'c';
  } else if (S_ISBLK(mode)) {
    type = 'b';
  } else if (S_ISFIFO(mode)) {
    type = 'p';
  } else if (S_ISLNK(mode)) {
    type = 'l';
  } else if (S_ISSOCK(mode)) {
    type = 's';
  }
  std::string out(1, type);
  const mode_t bits[] = {S_IRUSR, S_IWUSR, S_IXUSR, S_IRGRP, S_IWGRP,
                         S_IXGRP, S_IROTH, S_IWOTH, S_IXOTH};
  const char letters[] = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) out += (mode & bits[i]) ? letters[i] : '-';
  return out;
}

std::string UserName(uid_t uid) {
  std::vector<char> buffer(16384);
  passwd pw{};
  passwd* result = nullptr;
  if (getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &result) == 0 &&
      result != nullptr) {
    return result->pw_name;
  }
  return absl::StrCat(uid);
}

std::string GroupName(gid_t gid) {
  std::vector<char> buffer(16384);
  group gr{};
  group* result = nullptr;
  if (getgrgid_r(gid, &gr, buffer.data(), buffer.size(), &result) == 0 &&
      result != nullptr) {
    return result->gr_name;
  }
  return absl::StrCat(gid);
}

void AppendFileInfo(const std::string& virtual_path, const struct stat& st,
                    std::string* out) {
  absl::StrAppend(out, "{\"path\":", JsonQuoted(virtual_path),
                  ",\"nlink\":", st.st_nlink, ",\"size\":", st.st_size,
                  ",\"mtime\":", st.st_mtime,
                  ",\"mode\":", JsonQuoted(ModeString(st.st_mode)),
                  ",\"uid\":", JsonQuoted(UserName(st.st_uid)),
                  ",\"gid\":", JsonQuoted(GroupName(st.st_gid)), "}");
}

// Content types by extension (the common ones of Mesos's table, plus JSON).
std::string ContentTypeFor(absl::string_view filename) {
  static const auto* const kTypes = new std::map<std::string, std::string>{
      {".css", "text/css"},
      {".gif", "image/gif"},
      {".htm", "text/html"},
      {".html", "text/html"},
      {".jpeg", "image/jpeg"},
      {".jpg", "image/jpeg"},
      {".js", "application/x-javascript"},
      {".json", "application/json"},
      {".pdf", "application/pdf"},
      {".png", "image/png"},
      {".py", "text/x-python"},
      {".sh", "application/x-sh"},
      {".tar", "application/x-tar"},
      {".txt", "text/plain"},
      {".xml", "text/xml"},
      {".zip", "application/zip"},
  };
  const size_t dot = filename.rfind('.');
  if (dot != absl::string_view::npos && dot > 0) {
    auto it = kTypes->find(std::string(filename.substr(dot)));
    if (it != kTypes->end()) return it->second;
  }
  return "application/octet-stream";
}

// `attachment; filename=<name>`, the name quoted unless it is a plain token.
std::string ContentDisposition(absl::string_view filename) {
  bool token = !filename.empty();
  for (const char c : filename) {
    token = token && (absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                      c == '.' || c == '_' || c == '-' || c == '+');
  }
  if (token) return absl::StrCat("attachment; filename=", filename);
  std::string quoted = "\"";
  for (const char c : filename) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  quoted += '"';
  return absl::StrCat("attachment; filename=", quoted);
}

// ---- endpoints ----

http::Response Browse(FilesState& state, const http::Request& request) {
  http::Response error;
  std::optional<std::string> path = PathParam(request, &error);
  if (!path.has_value()) return error;
  absl::StatusOr<std::optional<std::string>> jsonp = JsonpParam(request);
  if (!jsonp.ok()) return StatusError(jsonp.status(), "jsonp");

  absl::StatusOr<Resolved> resolved = Resolve(state, *path);
  if (!resolved.ok()) return StatusError(resolved.status(), "path");
  absl::StatusOr<OpenFile> file = Open(*resolved);
  if (!file.ok()) return StatusError(file.status(), "path");
  // Mesos lists nothing for a file.
  if (!S_ISDIR(file->st.st_mode)) return JsonOk("[]", *jsonp);

  const int dir_fd = file->fd.Release();
  DIR* dir = fdopendir(dir_fd);
  if (dir == nullptr) {
    close(dir_fd);
    return StatusError(absl::ErrnoToStatus(errno, "cannot list directory"),
                       "path");
  }
  std::vector<std::string> names;
  while (const dirent* entry = readdir(dir)) {
    const absl::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());

  std::string prefix = *path;  // entries' virtual paths are prefix + "/" + name
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  std::string json = "[";
  bool first = true;
  for (const std::string& name : names) {
    struct stat st {};
    if (fstatat(dirfd(dir), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      continue;  // gone since readdir
    }
    // A symlink is described by its target only when the target is inside
    // the attachment; otherwise (or when dangling) by the link itself.
    if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      const fs::path target =
          fs::weakly_canonical(fs::path(resolved->real) / name, ec);
      struct stat target_st {};
      if (!ec && IsWithin(target.string(), resolved->root) &&
          stat(target.c_str(), &target_st) == 0) {
        st = target_st;
      }
    }
    if (!first) json += ",";
    first = false;
    AppendFileInfo(absl::StrCat(prefix, "/", name), st, &json);
  }
  closedir(dir);
  json += "]";
  return JsonOk(std::move(json), *jsonp);
}

http::Response Read(FilesState& state, const http::Request& request) {
  http::Response error;
  std::optional<std::string> path = PathParam(request, &error);
  if (!path.has_value()) return error;

  int64_t offset = -1;  // Mesos: no offset means -1 (the size)
  if (std::optional<std::string> text = Param(request, "offset")) {
    if (!absl::SimpleAtoi(*text, &offset)) {
      return FieldError(400,
                        absl::StrCat("failed to parse offset '", *text,
                                     "': expecting an integer"),
                        "offset");
    }
    if (offset < -1) {
      return FieldError(400, absl::StrCat("negative offset provided: ", offset),
                        "offset");
    }
  }
  std::optional<uint64_t> length;
  if (std::optional<std::string> text = Param(request, "length")) {
    int64_t value = 0;
    if (!absl::SimpleAtoi(*text, &value)) {
      return FieldError(400,
                        absl::StrCat("failed to parse length '", *text,
                                     "': expecting an integer"),
                        "length");
    }
    if (value < -1) {
      return FieldError(400, absl::StrCat("negative length provided: ", value),
                        "length");
    }
    // -1, as Mesos's web UI sends it, means no length.
    if (value >= 0) length = static_cast<uint64_t>(value);
  }
  absl::StatusOr<std::optional<std::string>> jsonp = JsonpParam(request);
  if (!jsonp.ok()) return StatusError(jsonp.status(), "jsonp");

  absl::StatusOr<Resolved> resolved = Resolve(state, *path);
  if (!resolved.ok()) return StatusError(resolved.status(), "path");
  absl::StatusOr<OpenFile> file = Open(*resolved);
  if (!file.ok()) return StatusError(file.status(), "path");
  if (S_ISDIR(file->st.st_mode)) {
    return FieldError(
        400, absl::StrCat("cannot read '", *path, "': it is a directory"),
        "path");
  }
  if (!S_ISREG(file->st.st_mode)) {
    return FieldError(
        400, absl::StrCat("cannot read '", *path, "': not a regular file"),
        "path");
  }
  const uint64_t size = static_cast<uint64_t>(file->st.st_size);

  // offset=-1 asks for the size: the data is empty and "offset" the size.
  if (offset == -1) {
    return JsonOk(absl::StrCat("{\"data\":\"\",\"offset\":", size, "}"),
                  *jsonp);
  }
  const uint64_t start = static_cast<uint64_t>(offset);
  std::string data;
  if (start < size) {
    const uint64_t wanted = std::min<uint64_t>(length.value_or(size - start),
                                               state.options.max_read_length);
    absl::StatusOr<std::string> read =
        ReadAt(file->fd.get(), start, static_cast<size_t>(wanted));
    if (!read.ok()) return StatusError(read.status(), "path");
    data = *std::move(read);
  }
  std::string json = "{\"data\":";
  AppendJsonQuoted(data, &json);
  absl::StrAppend(&json, ",\"offset\":", start, "}");
  return JsonOk(std::move(json), *jsonp);
}

// Streams `size` bytes of `fd` to `responder`, then ends the stream. Runs on
// its own thread; holds one of state.streaming_downloads. A stream cut short
// (the file shrank, or the service is being destroyed) still ends with the
// final chunk: the Responder has no way to abort a started stream, so the
// client must compare the length it got with /files/browse's size.
void StreamDownload(std::shared_ptr<FilesState> state, ScopedFd fd,
                    uint64_t size, std::shared_ptr<http::Responder> responder) {
  const FilesOptions& options = state->options;
  uint64_t offset = 0;
  while (offset < size && !responder->closed()) {
    {
      // Wait while the client is behind (or until Stop).
      std::unique_lock<std::mutex> lock(state->mu);
      while (!state->stopping && !responder->closed() &&
             responder->queued_bytes() > options.max_queued_download_bytes) {
        state->cv.wait_for(lock, std::chrono::milliseconds(2));
      }
      if (state->stopping) break;
    }
    const size_t want = static_cast<size_t>(
        std::min<uint64_t>(options.download_chunk_bytes, size - offset));
    absl::StatusOr<std::string> chunk = ReadAt(fd.get(), offset, want);
    if (!chunk.ok() || chunk->empty()) {
      // The file shrank or failed: end early, the client sees a short body.
      LOG(WARNING) << "/files/download: stopped at byte " << offset << " of "
                   << size << ": "
                   << (chunk.ok() ? "file shrank" : chunk.status().ToString());
      break;
    }
    offset += chunk->size();
    if (!responder->WriteChunk(*std::move(chunk))) break;
  }
  responder->Close();
  std::lock_guard<std::mutex> lock(state->mu);
  --state->streaming_downloads;
  state->cv.notify_all();
}

void Download(const std::shared_ptr<FilesState>& state,
              const http::Request& request,
              std::shared_ptr<http::Responder> responder) {
  http::Response error;
  std::optional<std::string> path = PathParam(request, &error);
  if (!path.has_value()) {
    responder->Respond(std::move(error));
    return;
  }
  absl::StatusOr<Resolved> resolved = Resolve(*state, *path);
  if (!resolved.ok()) {
    responder->Respond(StatusError(resolved.status(), "path"));
    return;
  }
  absl::StatusOr<OpenFile> file = Open(*resolved);
  if (!file.ok()) {
    responder->Respond(StatusError(file.status(), "path"));
    return;
  }
  if (S_ISDIR(file->st.st_mode) || !S_ISREG(file->st.st_mode)) {
    responder->Respond(FieldError(
        400,
        absl::StrCat("cannot download '", *path, "': ",
                     S_ISDIR(file->st.st_mode) ? "it is a directory"
                                               : "not a regular file"),
        "path"));
    return;
  }

  const std::string basename = fs::path(resolved->real).filename().string();
  http::Headers headers;
  headers.Set("Content-Type", ContentTypeFor(basename));
  headers.Set("Content-Disposition", ContentDisposition(basename));
  const uint64_t size = static_cast<uint64_t>(file->st.st_size);

  if (size <= state->options.inline_download_bytes) {
    absl::StatusOr<std::string> data =
        ReadAt(file->fd.get(), 0, static_cast<size_t>(size));
    if (!data.ok()) {
      responder->Respond(StatusError(data.status(), "path"));
      return;
    }
    http::Response response;
    response.headers = std::move(headers);
    response.body = *std::move(data);
    responder->Respond(std::move(response));
    return;
  }
  if (request.method == "HEAD") {
    responder->StartStream(200, std::move(headers));
    responder->Close();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(state->mu);
    if (state->stopping ||
        state->streaming_downloads >= state->options.max_streaming_downloads) {
      responder->Respond(FieldError(
          503, "too many downloads in progress; retry later", "path"));
      return;
    }
    ++state->streaming_downloads;
  }
  responder->StartStream(200, std::move(headers));
  std::thread(StreamDownload, state, std::move(file->fd), size,
              std::move(responder))
      .detach();
}

http::Response Debug(FilesState& state, const http::Request& request) {
  absl::StatusOr<std::optional<std::string>> jsonp = JsonpParam(request);
  if (!jsonp.ok()) return StatusError(jsonp.status(), "jsonp");
  std::string json = "{";
  {
    std::lock_guard<std::mutex> lock(state.mu);
    bool first = true;
    for (const auto& [virtual_path, real_path] : state.attachments) {
      if (!first) json += ",";
      first = false;
      absl::StrAppend(&json, JsonQuoted(virtual_path), ":",
                      JsonQuoted(real_path));
    }
  }
  json += "}";
  return JsonOk(std::move(json), *jsonp);
}

}  // namespace

FilesService::FilesService(FilesOptions options)
    : state_(std::make_shared<internal::FilesState>(std::move(options))) {}

FilesService::~FilesService() {
  std::unique_lock<std::mutex> lock(state_->mu);
  state_->stopping = true;
  state_->cv.notify_all();
  state_->cv.wait(lock, [this] { return state_->streaming_downloads == 0; });
}

absl::Status FilesService::Attach(const std::string& real_path,
                                  const std::string& virtual_path) {
  ASSIGN_OR_RETURN(std::string key, NormalizeVirtualPath(virtual_path));
  char* canonical = realpath(real_path.c_str(), nullptr);
  if (canonical == nullptr) {
    const int error = errno;
    const std::string what =
        absl::StrCat("cannot attach '", real_path, "' as '", virtual_path, "'");
    if (error == ENOENT || error == ENOTDIR) {
      return absl::NotFoundError(absl::StrCat(what, ": no such file"));
    }
    return absl::ErrnoToStatus(error, what);
  }
  std::string real(canonical);
  free(canonical);
  if (access(real.c_str(), R_OK) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot attach '", real_path, "' as '", virtual_path,
                     "': not readable"));
  }
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->attachments[key] = std::move(real);
  return absl::OkStatus();
}

void FilesService::Detach(const std::string& virtual_path) {
  absl::StatusOr<std::string> key = NormalizeVirtualPath(virtual_path);
  if (!key.ok()) return;
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->attachments.erase(*key);
}

int FilesService::TEST_StreamingDownloads() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->streaming_downloads;
}

void FilesService::Register(http::Server& server) {
  std::shared_ptr<FilesState> state = state_;
  for (const char* suffix : {"", ".json"}) {
    server.HandleSync("GET", absl::StrCat("/files/browse", suffix),
                      [state](const http::Request& request) {
                        return Browse(*state, request);
                      });
    server.HandleSync("GET", absl::StrCat("/files/read", suffix),
                      [state](const http::Request& request) {
                        return Read(*state, request);
                      });
    server.Handle("GET", absl::StrCat("/files/download", suffix),
                  [state](http::Request request,
                          std::shared_ptr<http::Responder> responder) {
                    Download(state, request, std::move(responder));
                  });
    server.HandleSync("GET", absl::StrCat("/files/debug", suffix),
                      [state](const http::Request& request) {
                        return Debug(*state, request);
                      });
  }
}

}  // namespace files
}  // namespace cairn
