#include "common/files_http.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "common/http_server.h"
#include "common/json_value.h"
#include "gtest/gtest.h"

namespace cairn {
namespace files {
namespace {

namespace fs = std::filesystem;

constexpr char kSandbox[] = "/var/lib/cairn/agent/sandboxes/f1/e1/c1";

// Query-string encoding of `s` ('/' kept, everything else not unreserved
// as %XX).
std::string Encode(absl::string_view s) {
  std::string out;
  for (const char c : s) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
        c == '.' || c == '_' || c == '~' || c == '/') {
      out += c;
    } else {
      absl::StrAppendFormat(&out, "%%%02X", static_cast<unsigned char>(c));
    }
  }
  return out;
}

void WriteFile(const fs::path& path, absl::string_view data,
               mode_t mode = 0644) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  ASSERT_TRUE(out.good()) << path;
  ASSERT_EQ(chmod(path.c_str(), mode), 0) << path;
}

// Every byte value, then a pattern of invalid UTF-8 and JSON specials.
std::string BinaryBytes() {
  std::string data;
  for (int i = 0; i < 256; ++i) data += static_cast<char>(i);
  data += std::string("\xff\xfe\"\\\0\x80\xc3", 7);
  return data;
}

// `n` deterministic bytes.
std::string Pattern(size_t n) {
  std::string data(n, '\0');
  uint32_t x = 12345;
  for (char& c : data) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return data;
}

std::string UserNameOf(uid_t uid) {
  passwd* pw = getpwuid(uid);
  return pw != nullptr ? pw->pw_name : absl::StrCat(uid);
}

class FilesHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr);
    root_ = fs::path(tmp) /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    sandbox_ = root_ / "sandbox";
    fs::create_directories(sandbox_ / "sub");
    ASSERT_EQ(chmod(sandbox_.c_str(), 0755), 0);
    ASSERT_EQ(chmod((sandbox_ / "sub").c_str(), 0755), 0);
    WriteFile(sandbox_ / "stdout", "hello world\n");
    WriteFile(sandbox_ / "data.json", "{\"a\":1}");
    WriteFile(sandbox_ / "binary.bin", BinaryBytes());
    WriteFile(sandbox_ / "sub" / "inner.txt", "inner");
    WriteFile(root_ / "secret.txt", "outside the sandbox");
    fs::create_symlink("/etc/passwd", sandbox_ / "passwd_link");
    fs::create_symlink("stdout", sandbox_ / "inner_link");
    fs::create_symlink(root_, sandbox_ / "outside_dir");

    service_ = std::make_unique<FilesService>(options_);
    ASSERT_TRUE(service_->Attach(sandbox_.string(), kSandbox).ok());
    service_->Register(server_);
    ASSERT_TRUE(server_.Start().ok());
  }

  void TearDown() override { server_.Stop(); }

  http::Response Get(const std::string& target) {
    absl::StatusOr<http::Response> r =
        client_.Request("GET", "127.0.0.1", server_.port(), target);
    EXPECT_TRUE(r.ok()) << target << ": " << r.status();
    return r.ok() ? *std::move(r) : http::Response{};
  }

  // GET endpoint?path=<path>&<extra>, `path` encoded.
  http::Response GetPath(const std::string& endpoint, const std::string& path,
                         const std::string& extra = "") {
    std::string target = absl::StrCat(endpoint, "?path=", Encode(path));
    if (!extra.empty()) absl::StrAppend(&target, "&", extra);
    return Get(target);
  }

  // The body of a 200 JSON answer, parsed.
  JsonValue Json(const http::Response& r) {
    EXPECT_EQ(r.status, 200) << r.body;
    absl::StatusOr<JsonValue> v = ParseJson(r.body);
    EXPECT_TRUE(v.ok()) << v.status() << ": " << r.body;
    return v.ok() ? *std::move(v) : JsonValue{};
  }

  // Expects an error answer with `status` whose JSON names `field`.
  void ExpectError(const http::Response& r, int status,
                   const std::string& field) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.headers.Get("Content-Type"), "application/json");
    absl::StatusOr<JsonValue> v = ParseJson(r.body);
    ASSERT_TRUE(v.ok()) << r.body;
    EXPECT_EQ(v->Text("field"), field) << r.body;
    EXPECT_TRUE(v->Text("error").has_value()) << r.body;
  }

  static std::string In(const std::string& name) {
    return absl::StrCat(kSandbox, "/", name);
  }

  fs::path root_;
  fs::path sandbox_;
  FilesOptions options_;
  std::unique_ptr<FilesService> service_;
  http::Server server_;  // after service_: stopped and destroyed first
  http::Client client_;
};

TEST_F(FilesHttpTest, ReadsWithOffsetAndLength) {
  JsonValue v = Json(GetPath("/files/read", In("stdout"), "offset=6&length=5"));
  EXPECT_EQ(v.Text("data"), "world");
  EXPECT_EQ(v.Uint("offset"), 6u);

  v = Json(GetPath("/files/read", In("stdout"), "offset=0"));
  EXPECT_EQ(v.Text("data"), "hello world\n");
  EXPECT_EQ(v.Uint("offset"), 0u);

  // length=-1 (Mesos's web UI) means no length.
  v = Json(GetPath("/files/read", In("stdout"), "offset=6&length=-1"));
  EXPECT_EQ(v.Text("data"), "world\n");
}

TEST_F(FilesHttpTest, ReadOffsetMinusOneAnswersTheSize) {
  JsonValue v = Json(GetPath("/files/read", In("stdout"), "offset=-1"));
  EXPECT_EQ(v.Text("data"), "");
  EXPECT_EQ(v.Uint("offset"), 12u);
  // No offset is the same as -1, as in Mesos.
  v = Json(GetPath("/files/read", In("stdout")));
  EXPECT_EQ(v.Text("data"), "");
  EXPECT_EQ(v.Uint("offset"), 12u);
}

TEST_F(FilesHttpTest, ReadAtOrPastTheEndIsEmpty) {
  JsonValue v = Json(GetPath("/files/read", In("stdout"), "offset=12"));
  EXPECT_EQ(v.Text("data"), "");
  EXPECT_EQ(v.Uint("offset"), 12u);
  v = Json(GetPath("/files/read", In("stdout"), "offset=1000&length=10"));
  EXPECT_EQ(v.Text("data"), "");
  EXPECT_EQ(v.Uint("offset"), 1000u);
}

TEST_F(FilesHttpTest, ReadWithoutLengthIsCappedAtMaxReadLength) {
  const std::string big = Pattern(options_.max_read_length * 2 + 17);
  WriteFile(sandbox_ / "big.bin", big);
  JsonValue v = Json(GetPath("/files/read", In("big.bin"), "offset=5"));
  EXPECT_EQ(v.Text("data"), big.substr(5, options_.max_read_length));
  // An explicit length is capped too.
  v = Json(GetPath("/files/read", In("big.bin"),
                   absl::StrCat("offset=0&length=", big.size())));
  EXPECT_EQ(v.Text("data"), big.substr(0, options_.max_read_length));
  // The last page is short.
  const size_t last = options_.max_read_length * 2;
  v = Json(
      GetPath("/files/read", In("big.bin"), absl::StrCat("offset=", last)));
  EXPECT_EQ(v.Text("data"), big.substr(last));
}

TEST_F(FilesHttpTest, BinaryBytesRoundTripThroughTheJsonString) {
  const JsonValue v =
      Json(GetPath("/files/read", In("binary.bin"), "offset=0"));
  EXPECT_EQ(v.Text("data"), BinaryBytes());
}

TEST_F(FilesHttpTest, ReadRejectsBadOffsetAndLength) {
  ExpectError(GetPath("/files/read", In("stdout"), "offset=abc"), 400,
              "offset");
  ExpectError(GetPath("/files/read", In("stdout"), "offset=-2"), 400, "offset");
  ExpectError(GetPath("/files/read", In("stdout"), "offset=1.5"), 400,
              "offset");
  ExpectError(GetPath("/files/read", In("stdout"), "offset="), 400, "offset");
  ExpectError(
      GetPath("/files/read", In("stdout"), "offset=99999999999999999999999"),
      400, "offset");
  ExpectError(GetPath("/files/read", In("stdout"), "offset=0&length=-5"), 400,
              "length");
  ExpectError(GetPath("/files/read", In("stdout"), "offset=0&length=x"), 400,
              "length");
}

TEST_F(FilesHttpTest, MissingOrEmptyPathIs400) {
  for (const char* endpoint :
       {"/files/read", "/files/browse", "/files/download"}) {
    SCOPED_TRACE(endpoint);
    ExpectError(Get(endpoint), 400, "path");
    ExpectError(Get(absl::StrCat(endpoint, "?path=")), 400, "path");
  }
}

TEST_F(FilesHttpTest, ReadOfADirectoryIs400) {
  ExpectError(GetPath("/files/read", In("sub"), "offset=0"), 400, "path");
  ExpectError(GetPath("/files/read", kSandbox, "offset=0"), 400, "path");
}

TEST_F(FilesHttpTest, UnknownPathsAre404) {
  ExpectError(GetPath("/files/read", In("nope"), "offset=0"), 404, "path");
  ExpectError(GetPath("/files/browse", In("nope")), 404, "path");
  ExpectError(GetPath("/files/download", In("nope")), 404, "path");
  ExpectError(GetPath("/files/read", "/not/attached", "offset=0"), 404, "path");
  ExpectError(GetPath("/files/read", In("stdout/below_a_file"), "offset=0"),
              404, "path");
}

TEST_F(FilesHttpTest, BrowseListsADirectory) {
  ASSERT_EQ(chmod((sandbox_ / "stdout").c_str(), 0640), 0);
  const JsonValue v = Json(GetPath("/files/browse", kSandbox));
  ASSERT_EQ(v.kind, JsonValue::Kind::kArray);
  std::vector<std::string> paths;
  for (const JsonValue& entry : v.items) paths.push_back(*entry.Text("path"));
  EXPECT_EQ(paths, (std::vector<std::string>{
                       In("binary.bin"), In("data.json"), In("inner_link"),
                       In("outside_dir"), In("passwd_link"), In("stdout"),
                       In("sub")}));

  const JsonValue& stdout_entry = v.items[5];
  EXPECT_EQ(stdout_entry.Text("mode"), "-rw-r-----");
  EXPECT_EQ(stdout_entry.Uint("size"), 12u);
  EXPECT_EQ(stdout_entry.Uint("nlink"), 1u);
  EXPECT_EQ(stdout_entry.Text("uid"), UserNameOf(getuid()));
  EXPECT_TRUE(stdout_entry.Text("gid").has_value());
  struct stat st {};
  ASSERT_EQ(stat((sandbox_ / "stdout").c_str(), &st), 0);
  EXPECT_EQ(stdout_entry.Uint("mtime"), static_cast<uint64_t>(st.st_mtime));

  EXPECT_EQ(v.items[6].Text("mode"), "drwxr-xr-x");
  // A symlink inside the sandbox is described by its target...
  EXPECT_EQ(v.items[2].Text("mode"), "-rw-r-----");
  EXPECT_EQ(v.items[2].Uint("size"), 12u);
  // ...one pointing outside by the link itself (nothing about the target).
  EXPECT_TRUE(absl::StartsWith(*v.items[4].Text("mode"), "l"));
  EXPECT_EQ(v.items[4].Uint("size"), std::string("/etc/passwd").size());
  EXPECT_TRUE(absl::StartsWith(*v.items[3].Text("mode"), "l"));

  // A subdirectory, with a trailing slash; and the .json variant.
  const JsonValue sub = Json(GetPath("/files/browse.json", In("sub/")));
  ASSERT_EQ(sub.items.size(), 1u);
  EXPECT_EQ(sub.items[0].Text("path"), In("sub/inner.txt"));
  EXPECT_EQ(sub.items[0].Text("mode"), "-rw-r--r--");
}

TEST_F(FilesHttpTest, DownloadSendsTheBytesWithHeaders) {
  http::Response r = GetPath("/files/download", In("data.json"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"a\":1}");
  EXPECT_EQ(r.headers.Get("Content-Type"), "application/json");
  EXPECT_EQ(r.headers.Get("Content-Disposition"),
            "attachment; filename=data.json");

  r = GetPath("/files/download.json", In("binary.bin"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, BinaryBytes());
  EXPECT_EQ(r.headers.Get("Content-Type"), "application/octet-stream");

  WriteFile(sandbox_ / "my \"file\".txt", "x");
  r = GetPath("/files/download", In("my \"file\".txt"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.Get("Content-Type"), "text/plain");
  EXPECT_EQ(r.headers.Get("Content-Disposition"),
            "attachment; filename=\"my \\\"file\\\".txt\"");

  ExpectError(GetPath("/files/download", In("sub")), 400, "path");
}

TEST_F(FilesHttpTest, DownloadStreamsALargeFile) {
  const std::string big = Pattern(options_.inline_download_bytes * 3 + 1234);
  WriteFile(sandbox_ / "big.bin", big);
  const http::Response r = GetPath("/files/download", In("big.bin"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.Get("Content-Disposition"),
            "attachment; filename=big.bin");
  EXPECT_EQ(r.body.size(), big.size());
  EXPECT_TRUE(r.body == big);
}

TEST_F(FilesHttpTest, DestroyingTheServiceEndsAStalledDownload) {
  FilesOptions options;
  options.inline_download_bytes = 1024;
  options.download_chunk_bytes = 16 << 10;
  options.max_queued_download_bytes = 64 << 10;
  auto service = std::make_unique<FilesService>(options);
  ASSERT_TRUE(service->Attach(sandbox_.string(), kSandbox).ok());
  http::Server server;
  service->Register(server);
  ASSERT_TRUE(server.Start().ok());
  const std::string big = Pattern(16 << 20);
  WriteFile(sandbox_ / "big.bin", big);

  // The client reads one chunk, then stops reading: the download waits for
  // it (socket buffers and the queue fill up) or, with large socket
  // buffers, may already have finished. Either way destruction returns.
  absl::StatusOr<std::unique_ptr<http::ClientStream>> stream =
      client_.OpenStream(
          "GET", "127.0.0.1", server.port(),
          absl::StrCat("/files/download?path=", Encode(In("big.bin"))));
  ASSERT_TRUE(stream.ok()) << stream.status();
  EXPECT_EQ((*stream)->status(), 200);
  absl::StatusOr<std::optional<std::string>> chunk =
      (*stream)->NextChunk(absl::Seconds(30));
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  ASSERT_TRUE(chunk->has_value());
  EXPECT_EQ(**chunk, big.substr(0, (*chunk)->size()));
  EXPECT_LE(service->TEST_StreamingDownloads(), 1);

  service.reset();  // waits for the download's thread

  // The stream ends (early, or complete), never hangs.
  size_t received = (*chunk)->size();
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    chunk = (*stream)->NextChunk(absl::Seconds(5));
    if (!chunk.ok() || !chunk->has_value()) break;
    received += (*chunk)->size();
  }
  ASSERT_TRUE(!chunk.ok() || !chunk->has_value()) << "stream did not end";
  EXPECT_LE(received, big.size());
  std::cout << "received " << received << " of " << big.size()
            << " bytes before the service was destroyed\n";
  server.Stop();
}

TEST_F(FilesHttpTest, DownloadsBeyondTheLimitGet503) {
  FilesOptions options;
  options.max_streaming_downloads = 0;
  options.inline_download_bytes = 10;
  FilesService service(options);
  ASSERT_TRUE(service.Attach(sandbox_.string(), kSandbox).ok());
  http::Server server;
  service.Register(server);
  ASSERT_TRUE(server.Start().ok());
  absl::StatusOr<http::Response> r = client_.Request(
      "GET", "127.0.0.1", server.port(),
      absl::StrCat("/files/download?path=", Encode(In("stdout"))));
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectError(*r, 503, "path");
  // Small files are still answered.
  r = client_.Request(
      "GET", "127.0.0.1", server.port(),
      absl::StrCat("/files/download?path=", Encode(In("data.json"))));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  server.Stop();
}

TEST_F(FilesHttpTest, DotDotInsideTheSandboxIsAllowed) {
  JsonValue v = Json(GetPath("/files/read", In("sub/../stdout"), "offset=0"));
  EXPECT_EQ(v.Text("data"), "hello world\n");
  v = Json(GetPath("/files/read", In("./sub//inner.txt"), "offset=0"));
  EXPECT_EQ(v.Text("data"), "inner");
  v = Json(GetPath("/files/read", In("inner_link"), "offset=0"));
  EXPECT_EQ(v.Text("data"), "hello world\n");
}

TEST_F(FilesHttpTest, EscapesAreRefused) {
  for (const char* endpoint :
       {"/files/read", "/files/browse", "/files/download"}) {
    SCOPED_TRACE(endpoint);
    // "..", plain and percent-encoded.
    ExpectError(GetPath(endpoint, In("../../etc/passwd"), "offset=0"), 403,
                "path");
    ExpectError(GetPath(endpoint, In("../secret.txt"), "offset=0"), 403,
                "path");
    ExpectError(GetPath(endpoint, In("sub/../../secret.txt"), "offset=0"), 403,
                "path");
    ExpectError(Get(absl::StrCat(endpoint, "?offset=0&path=", kSandbox,
                                 "/%2e%2e/%2e%2e%2fetc/passwd")),
                403, "path");
    ExpectError(Get(absl::StrCat(endpoint, "?offset=0&path=", kSandbox,
                                 "%2F%2E%2E%2Fsecret.txt")),
                403, "path");
    // Climbing out and back in by name is still climbing out.
    ExpectError(GetPath(endpoint, In("../sandbox/stdout"), "offset=0"), 403,
                "path");
    // Symlinks pointing outside.
    ExpectError(GetPath(endpoint, In("passwd_link"), "offset=0"), 403, "path");
    ExpectError(GetPath(endpoint, In("outside_dir/secret.txt"), "offset=0"),
                403, "path");
    ExpectError(GetPath(endpoint, In("outside_dir"), "offset=0"), 403, "path");
    // An absolute path under no attachment.
    ExpectError(GetPath(endpoint, "/etc/passwd", "offset=0"), 404, "path");
  }
}

TEST_F(FilesHttpTest, AFifoIsNotReadAndDoesNotHang) {
  ASSERT_EQ(mkfifo((sandbox_ / "fifo").c_str(), 0644), 0);
  ExpectError(GetPath("/files/read", In("fifo"), "offset=0"), 400, "path");
  ExpectError(GetPath("/files/download", In("fifo")), 400, "path");
}

TEST_F(FilesHttpTest, JsonpWrapsTheAnswer) {
  http::Response r =
      GetPath("/files/read", In("stdout"), "offset=0&jsonp=my.callback_1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.Get("Content-Type"), "text/javascript");
  ASSERT_TRUE(absl::StartsWith(r.body, "my.callback_1(")) << r.body;
  ASSERT_TRUE(absl::EndsWith(r.body, ")")) << r.body;
  absl::StatusOr<JsonValue> v = ParseJson(r.body.substr(
      strlen("my.callback_1("), r.body.size() - strlen("my.callback_1(") - 1));
  ASSERT_TRUE(v.ok()) << r.body;
  EXPECT_EQ(v->Text("data"), "hello world\n");

  r = GetPath("/files/browse", kSandbox, "jsonp=cb");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(absl::StartsWith(r.body, "cb([")) << r.body;

  ExpectError(GetPath("/files/read", In("stdout"), "jsonp=alert(1)//"), 400,
              "jsonp");
  ExpectError(GetPath("/files/read", In("stdout"), "jsonp="), 400, "jsonp");
}

TEST_F(FilesHttpTest, DebugShowsAttachmentsAndDetachRemovesThem) {
  ASSERT_TRUE(
      service_->Attach((sandbox_ / "stdout").string(), "/master//log/").ok());
  JsonValue v = Json(Get("/files/debug"));
  ASSERT_EQ(v.kind, JsonValue::Kind::kObject);
  EXPECT_EQ(v.Text(kSandbox), fs::canonical(sandbox_).string());
  EXPECT_EQ(v.Text("/master/log"), fs::canonical(sandbox_ / "stdout").string());
  EXPECT_EQ(v.fields.size(), 2u);
  EXPECT_EQ(Get("/files/debug.json").status, 200);

  // An attached file: read by its own virtual path, nothing below it.
  v = Json(GetPath("/files/read", "/master/log", "offset=0"));
  EXPECT_EQ(v.Text("data"), "hello world\n");
  ExpectError(GetPath("/files/read", "/master/log/x", "offset=0"), 404, "path");
  EXPECT_EQ(Json(GetPath("/files/browse", "/master/log")).items.size(), 0u);

  service_->Detach("/master/log");
  ExpectError(GetPath("/files/read", "/master/log", "offset=0"), 404, "path");
  v = Json(Get("/files/debug"));
  EXPECT_EQ(v.fields.size(), 1u);
}

TEST_F(FilesHttpTest, TheLongestAttachedPrefixWins) {
  fs::create_directories(root_ / "other");
  WriteFile(root_ / "other" / "inner.txt", "from other");
  ASSERT_TRUE(service_->Attach((root_ / "other").string(), In("sub")).ok());
  JsonValue v = Json(GetPath("/files/read", In("sub/inner.txt"), "offset=0"));
  EXPECT_EQ(v.Text("data"), "from other");
  // The inner attachment cannot be left towards the outer one.
  ExpectError(GetPath("/files/read", In("sub/../stdout"), "offset=0"), 403,
              "path");
}

TEST_F(FilesHttpTest, AttachValidatesItsArguments) {
  EXPECT_EQ(service_->Attach((root_ / "missing").string(), "/x").code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(service_->Attach(sandbox_.string(), "relative").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->Attach(sandbox_.string(), "").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->Attach(sandbox_.string(), "/a/../b").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FilesHttpTest, OnlyGetIsServed) {
  absl::StatusOr<http::Response> r =
      client_.Request("POST", "127.0.0.1", server_.port(),
                      absl::StrCat("/files/read?path=", Encode(In("stdout"))));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 405);
}

}  // namespace
}  // namespace files
}  // namespace cairn
