#include "agent/fetcher.h"

#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/http_message.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace cairn::agent {

struct Fetcher::CacheEntry {
  enum class State { kDownloading, kReady, kFailed };
  State state = State::kDownloading;
  absl::Status failure;  // when kFailed
  std::string key;
  std::string path;  // the file in cache_dir, once kReady
  uint64_t size = 0;
  uint64_t last_use = 0;
  int pins = 0;  // fetches downloading, waiting for, copying or extracting it
};

namespace {

constexpr long kMaxRedirects = 10;
constexpr char kCacheEntryPrefix[] = "entry-";

std::string ErrnoText(int error) { return std::strerror(error); }

absl::Status ErrnoStatus(absl::string_view what, const std::string& path,
                         int error) {
  return absl::InternalError(
      absl::StrCat(what, " '", path, "': ", ErrnoText(error)));
}

// ---- sources and destinations ----

struct Source {
  enum class Kind { kHttp, kLocal };
  Kind kind = Kind::kLocal;
  std::string location;  // the URL, or the local path
  std::string basename;  // "" when the URI names no file
};

std::string BasenameOf(absl::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == absl::string_view::npos ? path
                                                      : path.substr(slash + 1));
}

// The scheme of "scheme://...", lowercased, or "" when `value` has none.
std::string SchemeOf(absl::string_view value) {
  size_t sep = value.find("://");
  if (sep == absl::string_view::npos || sep == 0) return "";
  absl::string_view scheme = value.substr(0, sep);
  if (!absl::ascii_isalpha(static_cast<unsigned char>(scheme[0]))) return "";
  for (char c : scheme) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '+' &&
        c != '-' && c != '.') {
      return "";
    }
  }
  return absl::AsciiStrToLower(scheme);
}

absl::StatusOr<Source> ParseSource(const std::string& value) {
  if (value.empty()) return absl::InvalidArgumentError("uri value is empty");
  Source source;
  std::string scheme = SchemeOf(value);
  if (scheme == "http" || scheme == "https") {
    absl::string_view rest = absl::string_view(value).substr(scheme.size() + 3);
    rest = rest.substr(0, rest.find_first_of("?#"));
    size_t slash = rest.find('/');
    if (slash == absl::string_view::npos || slash == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(slash == 0 ? "no host" : "no path", " in the URI"));
    }
    source.kind = Source::Kind::kHttp;
    source.location = value;
    source.basename = BasenameOf(rest.substr(slash));
    return source;
  }
  if (scheme == "file") {
    absl::string_view rest = absl::string_view(value).substr(7);
    size_t slash = rest.find('/');
    absl::string_view host = rest.substr(0, slash);
    if (slash == absl::string_view::npos ||
        (!host.empty() && !absl::EqualsIgnoreCase(host, "localhost"))) {
      return absl::InvalidArgumentError(
          "a file:// URI must name an absolute path on this host "
          "(file:///path)");
    }
    source.location = http::PercentDecode(rest.substr(slash), false);
  } else if (!scheme.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported URI scheme '", scheme,
                     "' (supported: http, https, file, absolute paths)"));
  } else if (value[0] != '/') {
    return absl::InvalidArgumentError(
        "not an absolute path or a URI with a supported scheme (http, "
        "https, file)");
  } else {
    source.location = value;
  }
  source.kind = Source::Kind::kLocal;
  source.basename = BasenameOf(source.location);
  return source;
}

// The destination, relative to the sandbox and normalized ("a/./b" ->
// "a/b", "a/../b" -> "b"): `output_file` if set, else the basename.
absl::StatusOr<std::string> RelativeDestination(const v1::CommandInfo::URI& uri,
                                                const Source& source) {
  if (!uri.has_output_file()) {
    if (source.basename.empty() || source.basename == "." ||
        source.basename == "..") {
      return absl::InvalidArgumentError(
          "the URI names no file; set output_file");
    }
    return source.basename;
  }
  const std::string& output = uri.output_file();
  if (output.empty() || output[0] == '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "output_file '", output, "' must be a non-empty relative path"));
  }
  std::vector<absl::string_view> parts;
  for (absl::string_view part : absl::StrSplit(output, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "output_file '", output, "' leads out of the sandbox"));
      }
      parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  if (parts.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("output_file '", output, "' names no file"));
  }
  return absl::StrJoin(parts, "/");
}

absl::StatusOr<std::string> RealPath(const std::string& path) {
  char buffer[PATH_MAX];
  if (realpath(path.c_str(), buffer) == nullptr) {
    return ErrnoStatus("cannot resolve", path, errno);
  }
  return std::string(buffer);
}

bool IsWithin(const std::string& path, const std::string& root) {
  return path == root || absl::StartsWith(path, root == "/" ? "/" : root + "/");
}

// Creates the directories of `relative` (all but its last component) under
// `sandbox_real`, refusing any that resolves outside it (a symbolic link an
// earlier archive left). Returns the destination's absolute path, its
// directory resolved.
absl::StatusOr<std::string> PrepareDestination(const std::string& sandbox_real,
                                               const std::string& relative) {
  std::vector<std::string> parts = absl::StrSplit(relative, '/');
  std::string dir = sandbox_real;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    std::string next = absl::StrCat(dir, "/", parts[i]);
    if (mkdir(next.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus("cannot create directory", next, errno);
    }
    ASSIGN_OR_RETURN(std::string resolved, RealPath(next));
    if (!IsWithin(resolved, sandbox_real)) {
      return absl::InvalidArgumentError(
          absl::StrCat("output_file '", relative,
                       "' leads out of the sandbox through a symbolic link"));
    }
    struct stat st;
    if (stat(resolved.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "output_file '", relative, "': '", parts[i], "' is not a directory"));
    }
    dir = std::move(resolved);
  }
  return absl::StrCat(dir, "/", parts.back());
}

// ---- files ----

// A new file in `dir` (mode 0600, close-on-exec), removed by the destructor
// unless Commit() renamed it into place.
class TempFile {
 public:
  static absl::StatusOr<std::unique_ptr<TempFile>> Create(
      const std::string& dir, absl::string_view prefix) {
    std::string path = absl::StrCat(dir, "/", prefix, "XXXXXX");
    int fd = mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("cannot create a file in", dir, errno);
    return std::unique_ptr<TempFile>(new TempFile(std::move(path), fd));
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) close(fd_);
    if (!committed_) unlink(path_.c_str());
  }

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

  // Sets the mode, closes, and renames to `final_path` (or, with "", keeps
  // the temporary name).
  absl::Status Commit(mode_t mode, const std::string& final_path) {
    if (fchmod(fd_, mode) != 0)
      return ErrnoStatus("cannot chmod", path_, errno);
    int fd = fd_;
    fd_ = -1;
    if (close(fd) != 0) return ErrnoStatus("cannot write", path_, errno);
    if (!final_path.empty() && rename(path_.c_str(), final_path.c_str()) != 0) {
      return ErrnoStatus("cannot rename to", final_path, errno);
    }
    committed_ = true;
    return absl::OkStatus();
  }

 private:
  TempFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  const std::string path_;
  int fd_;
  bool committed_ = false;
};

absl::Status WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("write: ", ErrnoText(errno)));
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status TooLarge(uint64_t max_bytes) {
  return absl::ResourceExhaustedError(
      absl::StrCat("larger than the limit of ", max_bytes, " bytes"));
}

absl::Status TimedOut(absl::Duration timeout) {
  return absl::DeadlineExceededError(
      absl::StrCat("timed out after ", absl::FormatDuration(timeout)));
}

// Copies the regular file at `path` to `fd`; returns the bytes copied.
absl::StatusOr<uint64_t> CopyLocal(const std::string& path, int fd,
                                   uint64_t max_bytes, absl::Time deadline,
                                   absl::Duration timeout) {
  int in = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    int error = errno;
    if (error == ENOENT || error == ENOTDIR) {
      return absl::NotFoundError("no such file");
    }
    return ErrnoStatus("cannot open", path, error);
  }
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{in};
  struct stat st;
  if (fstat(in, &st) != 0) return ErrnoStatus("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' is not a regular file"));
  }
  uint64_t total = 0;
  std::vector<char> buffer(1 << 16);
  while (true) {
    ssize_t n = read(in, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot read", path, errno);
    }
    if (n == 0) return total;
    total += static_cast<uint64_t>(n);
    if (total > max_bytes) return TooLarge(max_bytes);
    if (absl::Now() > deadline) return TimedOut(timeout);
    RETURN_IF_ERROR(WriteAll(fd, buffer.data(), static_cast<size_t>(n)));
  }
}

// ---- HTTP ----

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct HttpTransfer {
  CURL* curl = nullptr;
  int fd = -1;
  uint64_t max_bytes = 0;
  uint64_t bytes = 0;
  bool too_large = false;
  bool http_error = false;  // a status >= 400 arrived; body not written
  absl::Status write_error;
  std::string status_line;  // the latest "HTTP/1.1 404 Not Found"
};

size_t WriteBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<HttpTransfer*>(user);
  long code = 0;
  curl_easy_getinfo(transfer->curl, CURLINFO_RESPONSE_CODE, &code);
  if (code >= 400) {
    transfer->http_error = true;
    return 0;  // aborts the transfer
  }
  size_t n = size * count;
  if (transfer->bytes + n > transfer->max_bytes) {
    transfer->too_large = true;
    return 0;
  }
  absl::Status written = WriteAll(transfer->fd, data, n);
  if (!written.ok()) {
    transfer->write_error = written;
    return 0;
  }
  transfer->bytes += n;
  return n;
}

size_t ReadHeader(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<HttpTransfer*>(user);
  size_t n = size * count;
  absl::string_view line(data, n);
  if (absl::StartsWith(line, "HTTP/")) {
    transfer->status_line =
        std::string(absl::StripTrailingAsciiWhitespace(line));
  }
  return n;
}

absl::Status HttpStatusError(long code, const std::string& status_line) {
  // "HTTP/1.1 404 Not Found" -> "Not Found"; HTTP/2 sends no reason.
  std::vector<absl::string_view> words =
      absl::StrSplit(status_line, absl::MaxSplits(' ', 2));
  std::string reason = words.size() == 3 && !words[2].empty()
                           ? std::string(words[2])
                           : http::ReasonPhrase(static_cast<int>(code));
  std::string message = absl::StrCat("HTTP ", code, " ", reason);
  if (code == 404 || code == 410) return absl::NotFoundError(message);
  if (code >= 500) return absl::UnavailableError(message);
  return absl::FailedPreconditionError(message);
}

absl::StatusOr<uint64_t> DownloadHttp(const std::string& url, int fd,
                                      const FetcherOptions& options) {
  InitCurlOnce();
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  std::unique_ptr<CURL, void (*)(CURL*)> cleanup(curl, curl_easy_cleanup);

  HttpTransfer transfer;
  transfer.curl = curl;
  transfer.fd = fd;
  transfer.max_bytes = options.max_bytes;
  char error_buffer[CURL_ERROR_SIZE] = {0};
  long timeout_ms = static_cast<long>(
      std::max<int64_t>(1, absl::ToInt64Milliseconds(options.timeout)));

  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, kMaxRedirects);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "cairn-fetcher");
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, ReadHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  if (options.max_bytes < static_cast<uint64_t>(INT64_MAX)) {
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
                     static_cast<curl_off_t>(options.max_bytes));
  }

  CURLcode result = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  if (transfer.http_error ||
      (result == CURLE_OK && (code < 200 || code >= 300))) {
    return HttpStatusError(code, transfer.status_line);
  }
  if (!transfer.write_error.ok()) return transfer.write_error;
  if (transfer.too_large || result == CURLE_FILESIZE_EXCEEDED) {
    return TooLarge(options.max_bytes);
  }
  switch (result) {
    case CURLE_OK:
      return transfer.bytes;
    case CURLE_OPERATION_TIMEDOUT:
      return TimedOut(options.timeout);
    case CURLE_TOO_MANY_REDIRECTS:
      return absl::FailedPreconditionError(
          absl::StrCat("more than ", kMaxRedirects, " redirects"));
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::InvalidArgumentError(
          absl::StrCat("redirected to an unsupported scheme: ", error_buffer));
    default:
      return absl::UnavailableError(error_buffer[0] != '\0'
                                        ? std::string(error_buffer)
                                        : curl_easy_strerror(result));
  }
}

absl::StatusOr<uint64_t> Download(const Source& source, int fd,
                                  const FetcherOptions& options) {
  if (source.kind == Source::Kind::kHttp) {
    return DownloadHttp(source.location, fd, options);
  }
  return CopyLocal(source.location, fd, options.max_bytes,
                   absl::Now() + options.timeout, options.timeout);
}

// ---- extraction ----

enum class ArchiveKind { kNone, kTar, kZip, kGzip };

ArchiveKind ArchiveKindOf(absl::string_view name) {
  for (absl::string_view suffix :
       {".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz"}) {
    if (absl::EndsWith(name, suffix)) return ArchiveKind::kTar;
  }
  if (absl::EndsWith(name, ".zip")) return ArchiveKind::kZip;
  if (absl::EndsWith(name, ".gz")) return ArchiveKind::kGzip;
  return ArchiveKind::kNone;
}

std::string FindTool(std::initializer_list<const char*> candidates) {
  for (const char* path : candidates) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

// Runs `argv` (argv[0] an absolute path) with stdin from /dev/null, stdout
// to `stdout_fd` (or /dev/null when -1) and stderr captured. Returns its
// wait status; `stderr_text` gets the first KiB of what it wrote.
absl::StatusOr<int> RunTool(const std::vector<std::string>& argv, int stdout_fd,
                            std::string* stderr_text) {
  std::vector<char*> args;
  for (const std::string& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);

  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) return ErrnoStatus("cannot open", "/dev/null", errno);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    int error = errno;
    close(null_fd);
    return absl::InternalError(absl::StrCat("pipe: ", ErrnoText(error)));
  }
  int out_fd = stdout_fd >= 0 ? stdout_fd : null_fd;

  pid_t pid = fork();
  if (pid == 0) {
    // The child of a multi-threaded process: async-signal-safe calls only.
    if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
        dup2(pipe_fds[1], STDERR_FILENO) < 0) {
      _exit(126);
    }
    execv(args[0], args.data());
    _exit(127);
  }
  int fork_error = errno;
  close(null_fd);
  close(pipe_fds[1]);
  if (pid < 0) {
    close(pipe_fds[0]);
    return absl::InternalError(absl::StrCat("fork: ", ErrnoText(fork_error)));
  }

  char buffer[4096];
  while (true) {
    ssize_t n = read(pipe_fds[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (stderr_text->size() < 1024) {
      stderr_text->append(buffer, std::min<size_t>(static_cast<size_t>(n),
                                                   1024 - stderr_text->size()));
    }
  }
  close(pipe_fds[0]);

  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return absl::InternalError(absl::StrCat("waitpid: ", ErrnoText(errno)));
    }
  }
  return status;
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status))
    return absl::StrCat("exit status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("signal ", WTERMSIG(status));
  return absl::StrCat("wait status ", status);
}

// Extracts `archive` (whose kind follows from `name`, the destination's
// name) into `sandbox_real`.
absl::Status Extract(ArchiveKind kind, const std::string& archive,
                     const std::string& name, const std::string& sandbox_real) {
  std::vector<std::string> argv;
  std::unique_ptr<TempFile> output;
  std::string output_path;
  bool warnings_ok = false;  // unzip exits 1 for warnings
  switch (kind) {
    case ArchiveKind::kNone:
      return absl::OkStatus();
    case ArchiveKind::kTar: {
      std::string tar = FindTool({"/bin/tar", "/usr/bin/tar"});
      if (tar.empty())
        return absl::FailedPreconditionError("tar is not installed");
      argv = {tar, "--no-same-owner", "-x", "-f", archive, "-C", sandbox_real};
      break;
    }
    case ArchiveKind::kZip: {
      std::string unzip = FindTool({"/usr/bin/unzip", "/bin/unzip"});
      if (unzip.empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "cannot extract '", name, "': unzip is not installed"));
      }
      argv = {unzip, "-o", "-q", archive, "-d", sandbox_real};
      warnings_ok = true;
      break;
    }
    case ArchiveKind::kGzip: {
      std::string gzip = FindTool({"/bin/gzip", "/usr/bin/gzip"});
      if (gzip.empty()) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot extract '", name, "': gzip is not installed"));
      }
      std::string plain = BasenameOf(name.substr(0, name.size() - 3));
      if (plain.empty()) return absl::OkStatus();  // ".gz": nothing to name
      output_path = absl::StrCat(sandbox_real, "/", plain);
      ASSIGN_OR_RETURN(output,
                       TempFile::Create(sandbox_real, "." + plain + ".fetch-"));
      argv = {gzip, "-d", "-c", archive};
      break;
    }
  }
  std::string stderr_text;
  ASSIGN_OR_RETURN(int status,
                   RunTool(argv, output ? output->fd() : -1, &stderr_text));
  bool ok = WIFEXITED(status) && (WEXITSTATUS(status) == 0 ||
                                  (warnings_ok && WEXITSTATUS(status) == 1));
  if (!ok) {
    std::vector<absl::string_view> lines =
        absl::StrSplit(stderr_text, '\n', absl::SkipWhitespace());
    std::string detail = absl::StrJoin(lines, "; ");
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot extract '", name, "': ", BasenameOf(argv[0]), " failed (",
        DescribeExit(status), ")", detail.empty() ? "" : ": ", detail));
  }
  if (output) RETURN_IF_ERROR(output->Commit(0644, output_path));
  return absl::OkStatus();
}

absl::Status Annotate(const absl::Status& status, const std::string& uri) {
  return absl::Status(status.code(), absl::StrCat("failed to fetch '", uri,
                                                  "': ", status.message()));
}

// Removes what a previous Fetcher left in `cache_dir`.
void RemoveStaleCacheEntries(const std::string& cache_dir) {
  DIR* dir = opendir(cache_dir.c_str());
  if (dir == nullptr) return;
  while (dirent* entry = readdir(dir)) {
    if (absl::StartsWith(entry->d_name, kCacheEntryPrefix)) {
      unlinkat(dirfd(dir), entry->d_name, 0);
    }
  }
  closedir(dir);
}

absl::Status MakeDirs(const std::string& path) {
  std::string prefix;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    prefix += std::string(part);
    if (!prefix.empty() && mkdir(prefix.c_str(), 0755) != 0 &&
        errno != EEXIST) {
      return ErrnoStatus("cannot create directory", prefix, errno);
    }
    prefix += "/";
  }
  return absl::OkStatus();
}

}  // namespace

Fetcher::Fetcher(FetcherOptions options, monitoring::Registry* metrics)
    : options_(std::move(options)) {
  InitCurlOnce();
  if (metrics != nullptr) {
    succeeded_ = metrics->AddCounter("slave/fetcher/task_fetches_succeeded",
                                     "Fetches of all of a task's URIs that "
                                     "succeeded.");
    failed_ = metrics->AddCounter("slave/fetcher/task_fetches_failed",
                                  "Fetches of a task's URIs that failed.");
    cache_hits_ = metrics->AddCounter(
        "slave/fetcher/cache_hits",
        "URIs served from the fetcher cache without a download of their own.");
    bytes_fetched_ = metrics->AddCounter(
        "slave/fetcher/bytes_fetched",
        "Bytes downloaded or copied from URIs (not copies out of the cache).");
  }
  if (!options_.cache_dir.empty()) RemoveStaleCacheEntries(options_.cache_dir);
}

Fetcher::~Fetcher() = default;

absl::Status Fetcher::Fetch(const v1::CommandInfo& command,
                            const std::string& sandbox_dir) {
  absl::Status status = [&]() -> absl::Status {
    struct stat st;
    if (stat(sandbox_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("sandbox '", sandbox_dir, "' is not a directory"));
    }
    ASSIGN_OR_RETURN(std::string sandbox_real, RealPath(sandbox_dir));
    for (const v1::CommandInfo::URI& uri : command.uris()) {
      absl::Status fetched = FetchUri(uri, command.user(), sandbox_real);
      if (!fetched.ok()) return Annotate(fetched, uri.value());
    }
    return absl::OkStatus();
  }();
  if (status.ok()) {
    if (succeeded_ != nullptr) succeeded_->Increment();
  } else {
    if (failed_ != nullptr) failed_->Increment();
    LOG(WARNING) << "fetch into '" << sandbox_dir << "' failed: " << status;
  }
  return status;
}

absl::Status Fetcher::FetchUri(const v1::CommandInfo::URI& uri,
                               const std::string& user,
                               const std::string& sandbox_real) {
  ASSIGN_OR_RETURN(Source source, ParseSource(uri.value()));
  ASSIGN_OR_RETURN(std::string relative, RelativeDestination(uri, source));
  ASSIGN_OR_RETURN(std::string destination,
                   PrepareDestination(sandbox_real, relative));
  std::string name = BasenameOf(destination);
  ArchiveKind archive = uri.executable() || !uri.extract()
                            ? ArchiveKind::kNone
                            : ArchiveKindOf(name);
  mode_t mode = uri.executable() ? 0755 : 0644;
  std::string directory = destination.substr(0, destination.rfind('/'));

  if (uri.cache() && !options_.cache_dir.empty()) {
    std::shared_ptr<CacheEntry> entry;
    RETURN_IF_ERROR(
        AcquireCacheEntry(absl::StrCat(user, std::string(1, '\0'), uri.value()),
                          uri.value(), &entry));
    absl::Status used = [&]() -> absl::Status {
      if (archive != ArchiveKind::kNone) {
        // As Mesos: a cached archive is extracted straight from the cache.
        return Extract(archive, entry->path, name, sandbox_real);
      }
      ASSIGN_OR_RETURN(std::unique_ptr<TempFile> file,
                       TempFile::Create(directory, "." + name + ".fetch-"));
      RETURN_IF_ERROR(CopyLocal(entry->path, file->fd(),
                                std::numeric_limits<uint64_t>::max(),
                                absl::InfiniteFuture(),
                                absl::InfiniteDuration())
                          .status());
      return file->Commit(mode, destination);
    }();
    ReleaseCacheEntry(entry);
    if (used.ok()) VLOG(1) << "fetched '" << uri.value() << "' from the cache";
    return used;
  }

  ASSIGN_OR_RETURN(std::unique_ptr<TempFile> file,
                   TempFile::Create(directory, "." + name + ".fetch-"));
  ASSIGN_OR_RETURN(uint64_t bytes, Download(source, file->fd(), options_));
  if (bytes_fetched_ != nullptr) bytes_fetched_->Increment(bytes);
  RETURN_IF_ERROR(file->Commit(mode, destination));
  VLOG(1) << "fetched '" << uri.value() << "' (" << bytes << " bytes) to '"
          << destination << "'";
  return Extract(archive, destination, name, sandbox_real);
}

absl::Status Fetcher::AcquireCacheEntry(const std::string& key,
                                        const std::string& uri,
                                        std::shared_ptr<CacheEntry>* entry) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = cache_.find(key);
  if (it != cache_.end()) {
    std::shared_ptr<CacheEntry> found = it->second;
    ++found->pins;
    cv_.wait(lock,
             [&] { return found->state != CacheEntry::State::kDownloading; });
    if (found->state == CacheEntry::State::kFailed) {
      --found->pins;
      return found->failure;
    }
    found->last_use = ++use_tick_;
    if (cache_hits_ != nullptr) cache_hits_->Increment();
    *entry = std::move(found);
    return absl::OkStatus();
  }
  if (!cache_dir_ready_) {
    RETURN_IF_ERROR(MakeDirs(options_.cache_dir));
    cache_dir_ready_ = true;
  }
  auto created = std::make_shared<CacheEntry>();
  created->key = key;
  created->pins = 1;
  cache_.emplace(key, created);
  lock.unlock();

  // Download outside the lock; others asking for `key` wait on cv_.
  std::string path;
  absl::StatusOr<uint64_t> bytes = [&]() -> absl::StatusOr<uint64_t> {
    ASSIGN_OR_RETURN(Source source, ParseSource(uri));
    ASSIGN_OR_RETURN(std::unique_ptr<TempFile> file,
                     TempFile::Create(options_.cache_dir, kCacheEntryPrefix));
    ASSIGN_OR_RETURN(uint64_t size, Download(source, file->fd(), options_));
    RETURN_IF_ERROR(file->Commit(0644, ""));
    path = file->path();
    return size;
  }();

  lock.lock();
  if (!bytes.ok()) {
    created->state = CacheEntry::State::kFailed;
    created->failure = bytes.status();
    --created->pins;
    cache_.erase(key);  // still `created`: eviction skips downloading entries
    cv_.notify_all();
    return bytes.status();
  }
  created->state = CacheEntry::State::kReady;
  created->path = std::move(path);
  created->size = *bytes;
  created->last_use = ++use_tick_;
  cache_bytes_ += *bytes;
  if (bytes_fetched_ != nullptr) bytes_fetched_->Increment(*bytes);
  cv_.notify_all();
  EvictLocked();
  *entry = std::move(created);
  return absl::OkStatus();
}

void Fetcher::ReleaseCacheEntry(const std::shared_ptr<CacheEntry>& entry) {
  std::lock_guard<std::mutex> lock(mu_);
  --entry->pins;
  entry->last_use = ++use_tick_;
  EvictLocked();
}

void Fetcher::EvictLocked() {
  while (cache_bytes_ > options_.cache_size_bytes) {
    CacheEntry* victim = nullptr;
    for (const auto& [key, entry] : cache_) {
      if (entry->state == CacheEntry::State::kReady && entry->pins == 0 &&
          (victim == nullptr || entry->last_use < victim->last_use)) {
        victim = entry.get();
      }
    }
    if (victim == nullptr) return;  // everything left is in use
    if (unlink(victim->path.c_str()) != 0 && errno != ENOENT) {
      LOG(WARNING) << "fetcher cache: cannot remove '" << victim->path
                   << "': " << ErrnoText(errno);
    }
    VLOG(1) << "fetcher cache: evicted '" << victim->path << "' ("
            << victim->size << " bytes)";
    cache_bytes_ -= victim->size;
    std::string key = victim->key;  // erasing destroys *victim
    cache_.erase(key);
  }
}

}  // namespace cairn::agent
