// FilesService: Mesos's `/files/*` HTTP endpoints over a set of attached
// directories and files. The agent attaches task sandboxes and its log, the
// master its log directory; operators and UIs browse, read (page by page)
// and download what is attached, and nothing else.
//
//   files::FilesService files;
//   CHECK_OK(files.Attach(sandbox_dir,
//   "/var/lib/cairn/agent/sandboxes/f/e/c")); CHECK_OK(files.Attach(log_dir,
//   "/master/log")); files.Register(server);   // before or after
//   server.Start()
//
// Endpoints (GET; HEAD answers as GET without the body). Every error is
// JSON {"error": "...", "field": "<query parameter>"}; `jsonp=cb` wraps a
// 200's JSON as `cb(<json>)` (text/javascript), as Mesos does.
//   /files/browse?path=P     (also /files/browse.json)  a directory's entries,
//       sorted by name: [{"path","nlink","size","mtime","mode","uid","gid"}],
//       "path" the virtual path of the entry, "mode" as `ls -l` prints it
//       ("-rw-r--r--"), uid/gid as names when resolvable else numbers as
//       strings, mtime in seconds. A file yields [] (as Mesos).
//   /files/read?path=P&offset=N&length=M   (also /files/read.json)
//       {"data": "<bytes>", "offset": N}. Bytes go into the JSON string as
//       they are (only quotes, backslashes and controls escaped), as Mesos.
//       offset=-1 answers {"data": "", "offset": <file size>}; no length (or
//       length=-1) reads to the end; either way at most
//       `FilesOptions::max_read_length` bytes. Reading at or past the end
//       gives "" and the requested offset. A directory, or anything but a
//       regular file, is 400.
//   /files/download?path=P   (also /files/download.json)  the file's bytes;
//       Content-Type by extension (application/octet-stream otherwise) and
//       Content-Disposition: attachment; filename=<basename>. Files larger
//       than `inline_download_bytes` are streamed (chunked) from a thread of
//       this service, read piece by piece with pread, never whole.
//   /files/debug             (also /files/debug.json)  {virtual: real, ...}.
//
// Status codes: 400 missing/empty `path` or a bad offset, length or jsonp
// (the field named); 404 a path under no attachment, or one that does not
// exist; 403 a path that leaves its attachment (`..`, a symlink pointing
// outside) or cannot be opened for lack of permission; 503 when
// `max_streaming_downloads` large downloads are already running.
//
// Path safety. A request path is split into components; the longest
// attached virtual path that is a component-wise prefix of it picks the
// attachment, and the rest is resolved under the attachment's real path
// (canonical, fixed at Attach). The result, with `..` and symlinks resolved,
// must be the real path or lie under it (compared by components), else 403.
// After opening, the descriptor's own path (/proc/self/fd) is checked again,
// so a symlink swapped in between the check and the open does not escape.
// Files are opened with O_NONBLOCK, so a FIFO in a sandbox cannot hang a
// server thread.
//
// Thread safety: all methods may be called from any thread. The handlers
// share the service's state, so they stay valid after the FilesService is
// destroyed (they then serve what was attached, and refuse new streaming
// downloads); the destructor waits for running downloads to end.

#ifndef CAIRN_COMMON_FILES_HTTP_H_
#define CAIRN_COMMON_FILES_HTTP_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/http_server.h"

namespace cairn {
namespace files {

namespace internal {
struct FilesState;
}  // namespace internal

struct FilesOptions {
  // Most bytes one /files/read answers. Mesos reads at most 16 pages.
  size_t max_read_length = 16 * 4096;
  // Downloads up to this size are answered in one response with a
  // Content-Length; larger ones are streamed.
  size_t inline_download_bytes = 1 << 20;
  // Bytes read per pread (and sent per chunk) when streaming a download.
  size_t download_chunk_bytes = 256 << 10;
  // A streaming download waits while more than this is queued for its
  // client (slow reader), so memory per download stays bounded.
  size_t max_queued_download_bytes = 1 << 20;
  // Streaming downloads running at once; more get 503.
  int max_streaming_downloads = 16;
};

class FilesService {
 public:
  explicit FilesService(FilesOptions options = {});
  FilesService(const FilesService&) = delete;
  FilesService& operator=(const FilesService&) = delete;
  // Stops running downloads (their streams end early) and waits for them.
  ~FilesService();

  // Makes `real_path` (a directory or a file) visible as `virtual_path`, an
  // absolute path ("/master/log"; repeated and trailing slashes are
  // dropped). A later Attach of the same virtual path replaces the earlier.
  // Returns kInvalidArgument for a virtual path that is empty, relative or
  // contains "." or ".." components, kNotFound if `real_path` does not exist,
  // kPermissionDenied if it is not readable.
  absl::Status Attach(const std::string& real_path,
                      const std::string& virtual_path);

  // Removes the attachment at `virtual_path` (spelt as for Attach), if any.
  void Detach(const std::string& virtual_path);

  // Registers the GET routes listed at the top of this file on `server`.
  void Register(http::Server& server);

  // Streaming downloads running now (for tests).
  int TEST_StreamingDownloads() const;

 private:
  // Shared with the registered handlers and running downloads.
  std::shared_ptr<internal::FilesState> state_;
};

}  // namespace files
}  // namespace cairn

#endif  // CAIRN_COMMON_FILES_HTTP_H_
