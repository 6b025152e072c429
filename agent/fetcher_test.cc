#include "agent/fetcher.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "common/http_message.h"
#include "common/http_server.h"
#include "common/logging.h"
#include "gtest/gtest.h"
#include "monitoring/metrics.h"

namespace cairn::agent {
namespace {

std::string MakeScratchDir() {
  const char* tmp = getenv("TEST_TMPDIR");
  std::string path =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/fetchXXXXXX");
  CHECK_NE(mkdtemp(path.data()), nullptr);
  return path;
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// The names in `dir`, sorted, without "." and "..".
std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* entry = readdir(d)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// Runs `argv` in `cwd` and returns whether it exited 0.
bool RunIn(const std::vector<std::string>& argv, const std::string& cwd) {
  std::vector<char*> args;
  for (const std::string& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(cwd.c_str()) != 0) _exit(126);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

v1::CommandInfo::URI* AddUri(v1::CommandInfo* command,
                             const std::string& value) {
  v1::CommandInfo::URI* uri = command->add_uris();
  uri->set_value(value);
  return uri;
}

class FetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeScratchDir();
    sandbox_ = NewSandbox();
    cache_dir_ = root_ + "/cache";

    http::ServerOptions options;
    options.shutdown_grace = absl::Milliseconds(100);
    server_ = std::make_unique<http::Server>(options);
    server_->Handle("GET", "/*",
                    [this](http::Request request,
                           std::shared_ptr<http::Responder> responder) {
                      Serve(request, std::move(responder));
                    });
    ASSERT_TRUE(server_->Start().ok());
  }

  void TearDown() override { server_->Stop(); }

  std::string NewSandbox() {
    std::string dir = absl::StrCat(root_, "/sandbox", ++sandboxes_);
    CHECK_EQ(mkdir(dir.c_str(), 0755), 0);
    return dir;
  }

  std::string Url(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", server_->port(), path);
  }

  // Serves `body` at `path` (replacing what was there).
  void Put(const std::string& path, std::string body) {
    std::lock_guard<std::mutex> lock(mu_);
    files_[path] = std::move(body);
  }

  int Requests(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_[path];
  }

  // Builds `name` (a .tgz or .zip) holding app/run.sh and app/data.txt.
  // Returns "" if the tool is missing.
  std::string MakeArchive(const std::string& name) {
    std::string src = root_ + "/src-" + name;
    EXPECT_EQ(mkdir(src.c_str(), 0755), 0);
    EXPECT_EQ(mkdir((src + "/app").c_str(), 0755), 0);
    WriteFile(src + "/app/run.sh", "#!/bin/sh\necho hi\n");
    WriteFile(src + "/app/data.txt", "payload");
    std::string out = root_ + "/" + name;
    bool ok = absl::EndsWith(name, ".zip")
                  ? RunIn({"/usr/bin/zip", "-q", "-r", out, "app"}, src)
                  : RunIn({"/bin/tar", "-czf", out, "app"}, src);
    return ok ? ReadFile(out) : "";
  }

  Fetcher MakeFetcher(FetcherOptions options = {}) {
    return Fetcher(std::move(options), &metrics_);
  }

  uint64_t Metric(const std::string& name) {
    return metrics_.AddCounter(name, "")->value();
  }

  std::string root_;
  std::string sandbox_;
  std::string cache_dir_;
  int sandboxes_ = 0;
  monitoring::Registry metrics_;

  std::mutex mu_;
  std::map<std::string, std::string> files_;  // guarded by mu_
  std::map<std::string, int> requests_;       // guarded by mu_
  // Requests to /hang, never answered (destroyed after the server).
  std::vector<std::shared_ptr<http::Responder>> hung_;
  std::unique_ptr<http::Server> server_;

 private:
  void Serve(const http::Request& request,
             std::shared_ptr<http::Responder> responder) {
    std::lock_guard<std::mutex> lock(mu_);
    ++requests_[request.path];
    if (request.path == "/hang") {
      hung_.push_back(std::move(responder));
      return;
    }
    if (absl::StartsWith(request.path, "/redirect/")) {
      http::Response response;
      response.status = 302;
      response.headers.Set("Location",
                           Url(request.path.substr(strlen("/redirect"))));
      responder->Respond(std::move(response));
      return;
    }
    if (request.path == "/loop") {
      http::Response response;
      response.status = 302;
      response.headers.Set("Location", Url("/loop"));
      responder->Respond(std::move(response));
      return;
    }
    auto it = files_.find(request.path);
    if (it == files_.end()) {
      responder->Respond(http::Response::Text(404, "no such file"));
      return;
    }
    http::Response response;
    response.headers.Set("Content-Type", "application/octet-stream");
    response.body = it->second;
    responder->Respond(std::move(response));
  }
};

TEST_F(FetcherTest, DownloadsPlainFileOverHttp) {
  Put("/plain.txt", "hello world");
  Fetcher fetcher = MakeFetcher();
  v1::CommandInfo command;
  AddUri(&command, Url("/plain.txt"));

  ASSERT_TRUE(fetcher.Fetch(command, sandbox_).ok());

  EXPECT_EQ(ListDir(sandbox_), std::vector<std::string>{"plain.txt"});
  EXPECT_EQ(ReadFile(sandbox_ + "/plain.txt"), "hello world");
  EXPECT_EQ(ModeOf(sandbox_ + "/plain.txt"), 0644u);
  EXPECT_EQ(Metric("slave/fetcher/task_fetches_succeeded"), 1u);
  EXPECT_EQ(Metric("slave/fetcher/task_fetches_failed"), 0u);
  EXPECT_EQ(Metric("slave/fetcher/bytes_fetched"), 11u);
}

TEST_F(FetcherTest, StripsQueryStringFromName) {
  Put("/plain.txt", "v3");
  Fetcher fetcher = MakeFetcher();
  v1::CommandInfo command;
  AddUri(&command, Url("/plain.txt?version=3#top"));

  ASSERT_TRUE(fetcher.Fetch(command, sandbox_).ok());
  EXPECT_EQ(ReadFile(sandbox_ + "/plain.txt"), "v3");
}

TEST_F(FetcherTest, ExtractsTarGzAndKeepsArchive) {
  std::string archive = MakeArchive("app.tgz");
  ASSERT_FALSE(archive.empty());
  Put("/app.tgz", archive);
  Fetcher fetcher = MakeFetcher();
  v1::CommandInfo command;
  AddUri(&command, Url("/app.tgz"));

  ASSERT_TRUE(fetcher.Fetch(command, sandbox_).ok());

  EXPECT_EQ(ListDir(sandbox_), (std::vector<std::string>{"app", "app.tgz"}));
  EXPECT_EQ(ReadFile(sandbox_ + "/app/data.txt"), "payload");
  EXPECT_EQ(ReadFile(sandbox_ + "/app.tgz"), archive);
}

TEST_F(FetcherTest, ExtractsZip) {
  if (access("/usr/bin/zip", X_OK) != 0 ||
      (access("/usr/bin/unzip", X_OK) != 0 &&
       access("/bin/unzip", X_OK) != 0)) {
    GTEST_SKIP() << "zip/unzip not installed";
  }
  std::string archive = MakeArchive("app.zip");
  ASSERT_FALSE(archive.empty());
  Put("/app.zip", archive);
  Fetcher fetcher = MakeFetcher();
  v1::CommandInfo command;
  AddUri(&command, Url("/app.zip"));

  ASSERT_TRUE(fetcher.Fetch(command, sandbox_).ok());

  EXPECT_EQ(ListDir(sandbox_), (std::vector<std::string>{"app", "app.zip"}));
  EXPECT_EQ(ReadFile(sandbox_ + "/app/data.txt"), "payload");
}

TEST_F(FetcherTest, GunzipsSingleFile) {
  std::string plain = root_ + "/notes.txt";
  WriteFile(plain, "some notes");
  ASSERT_TRUE(RunIn({"/bin/gzip", "-k", plain}, root_));
  Put("/notes.txt.gz", ReadFile(plain + ".gz"));
  Fetcher fetcher = MakeFetcher();
  v1::CommandInfo command;
  AddUri(&command, Url("/notes.txt.gz"));

  ASSERT_TRUE(fetcher.Fetch(command, sandbox_).ok());

  EXPECT_EQ(ListDir(sandbox_),
            (std::vector<std::string>{"notes.txt", "notes.txt.gz"}));
  EXPECT_EQ(ReadFile(sandbox_ + "/notes.txt"), "some notes");
}

TEST_F(FetcherTest, ExtractFalseLeavesArchivePacked) {
  Put("/app.tgz", MakeArchive("app.tgz"));
  Fetcher fetcher = MakeFetcher();
  v1::CommandInfo command;
  AddUri(&command, Url("/app.tgz"))->set_extract(false);

  ASSERT_TRUE(fetcher.Fetch(command, sandbox_).ok());
  EXPECT_EQ(ListDir(sandbox_), std::vector<std::string>{"app.tgz"});
}

TEST_F(FetcherTest, ExecutableIsMode0755AndNotExtracted) {
  Put("/tool.tgz", MakeArchive("app.tgz"));
  Fetcher fetcher = MakeFetcher();
  v1::CommandInfo command;
  AddUri(&command, Url("/tool.tgz"))->set_executable(true);

  ASSERT_TRUE(fetcher.Fetch(command, sandbox_).ok());
  EXPECT_EQ(ListDir(sandbox_), std::vector<std::string>{"tool.tgz"});
  EXPECT_EQ(ModeOf(sandbox_ + "/tool.tgz"), 0755u);
}

TEST_F(FetcherTest, OutputFileNamesDestinationInSubdirectory) {
  Put("/download", "#!/bin/sh\n");
  Fetcher fetcher = MakeFetcher();
  v1::CommandInfo command;
  v1::CommandInfo::URI* uri = AddUri(&command, Url("/download"));
  uri->set_output_file("bin/./tool");
  uri->set_executable(true);

  ASSERT_TRUE(fetcher.Fetch(command, sandbox_).ok());
  EXPECT_EQ(ReadFile(sandbox_ + "/bin/tool"), "#!/bin/sh\n");
  EXPECT_EQ(ModeOf(sandbox_ + "/bin/tool"), 0755u);
}

TEST_F(FetcherTest, NotFoundNamesUriAndStatusAndLeavesNoFile) {
  Fetcher fetcher = MakeFetcher();
  v1::CommandInfo command;
  AddUri(&command, Url("/missing.tgz"));

  absl::Status status = fetcher.Fetch(command, sandbox_);

  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_EQ(status.message(),
            absl::StrCat("failed to fetch '", Url("/missing.tgz"),
                         "': HTTP 404 Not Found"));
  EXPECT_TRUE(ListDir(sandbox_).empty());
  EXPECT_EQ(Metric("slave/fetcher/task_fetches_failed"), 1u);
  EXPECT_EQ(Metric("slave/fetcher/task_fetches_succeeded"), 0u);
}

TEST_F(FetcherTest, StopsAtFirstFailingUri) {
  Put("/a.txt", "a");
  Put("/c.txt", "c");
  Fetcher fetcher = MakeFetcher();
  v1::CommandInfo command;
  AddUri(&command, Url("/a.txt"));
  AddUri(&command, Url("/b.txt"));
  AddUri(&command, Url("/c.txt"));

  absl::Status status = fetcher.Fetch(command, sandbox_);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), Url("/b.txt"))) << status;
  EXPECT_EQ(ListDir(sandbox_), std::vector<std::string>{"a.txt"});
  EXPECT_EQ(Requests("/c.txt"), 0);
}

TEST_F(FetcherTest, FollowsRedirect) {
  Put("/plain.txt", "moved here");
  Fetcher fetcher = MakeFetcher();
  v1::CommandInfo command;
  AddUri(&command, Url("/redirect/plain.txt"));

  ASSERT_TRUE(fetcher.Fetch(command, sandbox_).ok());
  EXPECT_EQ(ReadFile(sandbox_ + "/plain.txt"), "moved here");
  EXPECT_EQ(Requests("/redirect/plain.txt"), 1);
  EXPECT_EQ(Requests("/plain.txt"), 1);
}

TEST_F(FetcherTest, RedirectLoopIsBounded) {
  Fetcher fetcher = MakeFetcher();
  v1::CommandInfo command;
  AddUri(&command, Url("/loop"))->set_output_file("x");

  absl::Status status = fetcher.Fetch(command, sandbox_);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "redirects")) << status;
  EXPECT_LE(Requests("/loop"), 11);
  EXPECT_TRUE(ListDir(sandbox_).empty());
}

TEST_F(FetcherTest, TimeoutIsDeadlineExceeded) {
  FetcherOptions options;
  options.timeout = absl::Milliseconds(300);
  Fetcher fetcher = MakeFetcher(options);
  v1::CommandInfo command;
  AddUri(&command, Url("/hang"));

  absl::Status status = fetcher.Fetch(command, sandbox_);
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), Url("/hang"))) << status;
  EXPECT_TRUE(ListDir(sandbox_).empty());
}

TEST_F(FetcherTest, DownloadBeyondMaxBytesFailsAndLeavesNoFile) {
  Put("/big.bin", std::string(1000, 'x'));
  WriteFile(root_ + "/big.bin", std::string(1000, 'x'));
  FetcherOptions options;
  options.max_bytes = 100;
  Fetcher fetcher = MakeFetcher(options);

  for (const std::string& value : {Url("/big.bin"), root_ + "/big.bin"}) {
    v1::CommandInfo command;
    AddUri(&command, value);
    absl::Status status = fetcher.Fetch(command, sandbox_);
    EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
    EXPECT_TRUE(absl::StrContains(status.message(), value)) << status;
    EXPECT_TRUE(ListDir(sandbox_).empty());
  }
}

TEST_F(FetcherTest, CorruptArchiveIsAnError) {
  Put("/bad.tar.gz", "this is not a tarball");
  Fetcher fetcher = MakeFetcher();
  v1::CommandInfo command;
  AddUri(&command, Url("/bad.tar.gz"));

  absl::Status status = fetcher.Fetch(command, sandbox_);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), Url("/bad.tar.gz")));
  EXPECT_TRUE(absl::StrContains(status.message(), "cannot extract")) << status;
}

TEST_F(FetcherTest, RefusesOutputFileLeavingSandbox) {
  Put("/plain.txt", "x");
  std::string outside = root_ + "/outside";
  ASSERT_EQ(mkdir(outside.c_str(), 0755), 0);
  ASSERT_EQ(symlink(outside.c_str(), (sandbox_ + "/link").c_str()), 0);
  Fetcher fetcher = MakeFetcher();

  for (const char* output :
       {"../escape", "a/../../escape", "/tmp/escape", "", ".", "link/escape"}) {
    v1::CommandInfo command;
    AddUri(&command, Url("/plain.txt"))->set_output_file(output);
    absl::Status status = fetcher.Fetch(command, sandbox_);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
        << output << ": " << status;
    EXPECT_TRUE(absl::StrContains(status.message(), "output_file")) << status;
  }
  EXPECT_FALSE(Exists(root_ + "/escape"));
  EXPECT_TRUE(ListDir(outside).empty());
  EXPECT_EQ(Requests("/plain.txt"), 0);

  // A ".." that stays inside is fine.
  v1::CommandInfo command;
  AddUri(&command, Url("/plain.txt"))->set_output_file("a/../inside.txt");
  ASSERT_TRUE(fetcher.Fetch(command, sandbox_).ok());
  EXPECT_EQ(ReadFile(sandbox_ + "/inside.txt"), "x");
}

TEST_F(FetcherTest, CopiesFileUriAndLocalPath) {
  std::string local = root_ + "/local data.txt";
  WriteFile(local, "local bytes");
  Fetcher fetcher = MakeFetcher();
  v1::CommandInfo command;
  AddUri(&command, "file://" + root_ + "/local%20data.txt")
      ->set_output_file("from_uri.txt");
  AddUri(&command, local);

  ASSERT_TRUE(fetcher.Fetch(command, sandbox_).ok());
  EXPECT_EQ(ReadFile(sandbox_ + "/from_uri.txt"), "local bytes");
  EXPECT_EQ(ReadFile(sandbox_ + "/local data.txt"), "local bytes");
}

TEST_F(FetcherTest, MissingLocalFileIsNotFound) {
  Fetcher fetcher = MakeFetcher();
  v1::CommandInfo command;
  AddUri(&command, root_ + "/nope.txt");

  absl::Status status = fetcher.Fetch(command, sandbox_);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), root_ + "/nope.txt"));
}

TEST_F(FetcherTest, RefusesUnsupportedUris) {
  Fetcher fetcher = MakeFetcher();
  for (const std::string& value :
       {std::string("ftp://example.com/x.tgz"), std::string("relative/x.txt"),
        std::string(""), Url("/"), std::string("file://otherhost/x")}) {
    v1::CommandInfo command;
    AddUri(&command, value);
    absl::Status status = fetcher.Fetch(command, sandbox_);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
        << value << ": " << status;
    EXPECT_TRUE(absl::StartsWith(status.message(),
                                 absl::StrCat("failed to fetch '", value, "'")))
        << status;
  }
}

TEST_F(FetcherTest, MissingSandboxIsFailedPrecondition) {
  Fetcher fetcher = MakeFetcher();
  v1::CommandInfo command;
  AddUri(&command, Url("/plain.txt"));
  EXPECT_EQ(fetcher.Fetch(command, root_ + "/no-sandbox").code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(FetcherTest, CachedUriIsDownloadedOnce) {
  Put("/cached.txt", "cache me");
  FetcherOptions options;
  options.cache_dir = cache_dir_;
  Fetcher fetcher = MakeFetcher(options);
  v1::CommandInfo command;
  AddUri(&command, Url("/cached.txt"))->set_cache(true);

  ASSERT_TRUE(fetcher.Fetch(command, sandbox_).ok());
  std::string second = NewSandbox();
  ASSERT_TRUE(fetcher.Fetch(command, second).ok());

  EXPECT_EQ(Requests("/cached.txt"), 1);
  EXPECT_EQ(ReadFile(sandbox_ + "/cached.txt"), "cache me");
  EXPECT_EQ(ReadFile(second + "/cached.txt"), "cache me");
  EXPECT_EQ(Metric("slave/fetcher/cache_hits"), 1u);
  EXPECT_EQ(Metric("slave/fetcher/bytes_fetched"), 8u);
  EXPECT_EQ(ListDir(cache_dir_).size(), 1u);
}

TEST_F(FetcherTest, CachedArchiveIsExtractedFromCache) {
  Put("/app.tgz", MakeArchive("app.tgz"));
  FetcherOptions options;
  options.cache_dir = cache_dir_;
  Fetcher fetcher = MakeFetcher(options);
  v1::CommandInfo command;
  AddUri(&command, Url("/app.tgz"))->set_cache(true);

  ASSERT_TRUE(fetcher.Fetch(command, sandbox_).ok());
  std::string second = NewSandbox();
  ASSERT_TRUE(fetcher.Fetch(command, second).ok());

  EXPECT_EQ(Requests("/app.tgz"), 1);
  for (const std::string& dir : {sandbox_, second}) {
    EXPECT_EQ(ListDir(dir), std::vector<std::string>{"app"});
    EXPECT_EQ(ReadFile(dir + "/app/data.txt"), "payload");
  }
}

TEST_F(FetcherTest, ConcurrentCachedFetchesDownloadOnce) {
  Put("/shared.bin", std::string(64 << 10, 's'));
  FetcherOptions options;
  options.cache_dir = cache_dir_;
  Fetcher fetcher = MakeFetcher(options);
  v1::CommandInfo command;
  AddUri(&command, Url("/shared.bin"))->set_cache(true);

  constexpr int kThreads = 8;
  std::vector<std::string> sandboxes;
  for (int i = 0; i < kThreads; ++i) sandboxes.push_back(NewSandbox());
  std::vector<absl::Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back(
        [&, i] { results[i] = fetcher.Fetch(command, sandboxes[i]); });
  }
  for (std::thread& thread : threads) thread.join();

  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i];
    EXPECT_EQ(ReadFile(sandboxes[i] + "/shared.bin").size(), 64u << 10);
  }
  EXPECT_EQ(Requests("/shared.bin"), 1);
  EXPECT_EQ(Metric("slave/fetcher/cache_hits"), kThreads - 1u);
}

TEST_F(FetcherTest, FailedDownloadIsNotCached) {
  FetcherOptions options;
  options.cache_dir = cache_dir_;
  Fetcher fetcher = MakeFetcher(options);
  v1::CommandInfo command;
  AddUri(&command, Url("/later.txt"))->set_cache(true);

  EXPECT_EQ(fetcher.Fetch(command, sandbox_).code(),
            absl::StatusCode::kNotFound);
  Put("/later.txt", "now here");
  ASSERT_TRUE(fetcher.Fetch(command, sandbox_).ok());
  EXPECT_EQ(ReadFile(sandbox_ + "/later.txt"), "now here");
  EXPECT_EQ(Requests("/later.txt"), 2);
  EXPECT_EQ(ListDir(cache_dir_).size(), 1u);
}

TEST_F(FetcherTest, CacheEvictsLeastRecentlyUsed) {
  Put("/a.bin", std::string(60, 'a'));
  Put("/b.bin", std::string(60, 'b'));
  Put("/huge.bin", std::string(500, 'h'));
  FetcherOptions options;
  options.cache_dir = cache_dir_;
  options.cache_size_bytes = 100;  // room for one of a, b
  Fetcher fetcher = MakeFetcher(options);
  auto fetch = [&](const std::string& path) {
    v1::CommandInfo command;
    AddUri(&command, Url(path))->set_cache(true);
    absl::Status status = fetcher.Fetch(command, NewSandbox());
    EXPECT_TRUE(status.ok()) << status;
  };

  fetch("/a.bin");
  fetch("/b.bin");  // evicts a
  fetch("/b.bin");  // a hit
  fetch("/a.bin");  // downloads a again, evicts b
  EXPECT_EQ(Requests("/a.bin"), 2);
  EXPECT_EQ(Requests("/b.bin"), 1);
  EXPECT_EQ(Metric("slave/fetcher/cache_hits"), 1u);
  EXPECT_EQ(ListDir(cache_dir_).size(), 1u);

  fetch("/huge.bin");  // larger than the cache: used once, then evicted
  EXPECT_TRUE(ListDir(cache_dir_).empty());
}

TEST_F(FetcherTest, NewFetcherClearsStaleCacheEntries) {
  Put("/cached.txt", "cache me");
  FetcherOptions options;
  options.cache_dir = cache_dir_;
  v1::CommandInfo command;
  AddUri(&command, Url("/cached.txt"))->set_cache(true);
  {
    Fetcher fetcher = MakeFetcher(options);
    ASSERT_TRUE(fetcher.Fetch(command, sandbox_).ok());
  }
  ASSERT_EQ(ListDir(cache_dir_).size(), 1u);

  Fetcher fetcher = MakeFetcher(options);
  EXPECT_TRUE(ListDir(cache_dir_).empty());
  ASSERT_TRUE(fetcher.Fetch(command, NewSandbox()).ok());
  EXPECT_EQ(Requests("/cached.txt"), 2);
}

}  // namespace
}  // namespace cairn::agent
